//! Internal errors (panics: bugs, or libtorch refusing something) reach the user as one line that
//! says what failed and where the whole story was written: the panic's full message (libtorch's
//! include its C++ frames) and a Rust backtrace go to a file, not over the user's terminal.

use std::any::Any;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// The process's report, once a panic has written one, for [`summary`] to point at. One file a
/// process: a panic caught on another thread than the one that panicked (a training worker's
/// inside its scope, the command's thread joined by `main`) still finds it, and every panic of
/// the process is in it.
static REPORT: Mutex<Option<PathBuf>> = Mutex::new(None);

/// Where crash reports go: beside the log file (`$XDG_STATE_HOME/gnn-soup/crashes`).
pub fn reports_dir() -> PathBuf {
    crate::paths::state_dir().join("crashes")
}

/// Replaces the default panic hook (which prints the message and, with `RUST_BACKTRACE`, a
/// backtrace on stderr) with one that writes both to a file in [`reports_dir`]. Whoever catches
/// the panic prints [`summary`]. The binary installs it; a library user keeps their own hook.
pub fn install_hook() {
    std::panic::set_hook(Box::new(|info| {
        let thread = std::thread::current().name().unwrap_or("unnamed").to_string();
        let location =
            info.location().map(|l| format!("{}:{}", l.file(), l.line())).unwrap_or_default();
        let message = message_of(info.payload());
        let backtrace = std::backtrace::Backtrace::force_capture();
        let text = format!("gnn-soup {} panicked on thread '{thread}' at {location}:\n{message}\n\nbacktrace:\n{backtrace}\n", env!("CARGO_PKG_VERSION"));
        // A panic while the lock is held elsewhere (it never is for long) must not hang.
        let mut report = match REPORT.try_lock() {
            Ok(r) => r,
            Err(_) => return eprintln!("{text}"),
        };
        let path = report.clone().unwrap_or_else(|| {
            let secs = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs());
            reports_dir().join(format!("crash-{secs}-{}.txt", std::process::id()))
        });
        if append_report(&path, &text) {
            *report = Some(path);
        } else {
            // Nowhere to write it: the user still gets the whole message rather than nothing.
            eprintln!("{text}");
        }
    }));
}

fn append_report(path: &Path, text: &str) -> bool {
    let write = || -> std::io::Result<()> {
        std::fs::create_dir_all(path.parent().unwrap_or(Path::new(".")))?;
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)?
            .write_all(format!("{text}\n").as_bytes())
    };
    write().is_ok()
}

/// A panic payload's message, whole.
fn message_of(payload: &(dyn Any + Send)) -> String {
    payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "unknown panic".into())
}

/// One line for a caught panic: `panicked: ` (which tests look for), the first line of its
/// message (libtorch's messages go on with C++ frames), and the report [`install_hook`] wrote,
/// if any.
pub fn summary(payload: &(dyn Any + Send)) -> String {
    let message = message_of(payload);
    let first = message.lines().map(str::trim).find(|l| !l.is_empty()).unwrap_or("unknown panic");
    // tch wraps libtorch's errors as `Torch("...")`: the useful part is inside.
    let first = first
        .trim_start_matches("called `Result::unwrap()` on an `Err` value: ")
        .trim_start_matches("Torch(\"")
        .trim_end_matches("\")");
    let report = REPORT.lock().ok().and_then(|r| r.clone());
    match report {
        Some(path) => format!("panicked: {first} (full report: {})", path.display()),
        None => format!("panicked: {first}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_summary_is_the_first_line_and_names_the_report() {
        let payload: Box<dyn Any + Send> = Box::new("Torch(\"The function 'native_batch_norm' is not differentiable\nException raised from foo\nframe #0: bar".to_string());
        assert_eq!(
            summary(payload.as_ref()),
            "panicked: The function 'native_batch_norm' is not differentiable"
        );
        let one_line: Box<dyn Any + Send> = Box::new("Torch(\"shape mismatch\")".to_string());
        assert_eq!(summary(one_line.as_ref()), "panicked: shape mismatch");
        // Once a report is written, every summary of the process names it, on any thread.
        *REPORT.lock().unwrap() = Some(PathBuf::from("/tmp/crash-1.txt"));
        let elsewhere = std::thread::spawn(move || summary(payload.as_ref())).join().unwrap();
        assert_eq!(elsewhere, "panicked: The function 'native_batch_norm' is not differentiable (full report: /tmp/crash-1.txt)");
        *REPORT.lock().unwrap() = None;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("crashes/crash.txt");
        assert!(append_report(&path, "one") && append_report(&path, "two"));
        assert_eq!(std::fs::read_to_string(path).unwrap(), "one\ntwo\n");
    }
}
