//! Internal errors (panics: bugs, or libtorch refusing something) reach the user as one line that
//! says what failed and where the whole story was written: the panic's full message (libtorch's
//! include its C++ frames) and a Rust backtrace go to a file, not over the user's terminal.

use std::any::Any;
use std::cell::RefCell;
use std::io::Write;
use std::path::{Path, PathBuf};

thread_local! {
    /// The report written for this thread's last panic, for [`summary`] to point at.
    static LAST_REPORT: RefCell<Option<PathBuf>> = const { RefCell::new(None) };
}

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
        let location = info.location().map(|l| format!("{}:{}", l.file(), l.line())).unwrap_or_default();
        let message = message_of(info.payload());
        let backtrace = std::backtrace::Backtrace::force_capture();
        let text = format!("gnn-soup {} panicked on thread '{thread}' at {location}:\n{message}\n\nbacktrace:\n{backtrace}\n", env!("CARGO_PKG_VERSION"));
        let written = write_report(&reports_dir(), &text);
        if written.is_none() {
            // Nowhere to write it: the user still gets the whole message rather than nothing.
            eprintln!("{text}");
        }
        LAST_REPORT.with(|r| *r.borrow_mut() = written);
    }));
}

fn write_report(dir: &Path, text: &str) -> Option<PathBuf> {
    std::fs::create_dir_all(dir).ok()?;
    let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let path = dir.join(format!("crash-{secs}-{}.txt", std::process::id()));
    let mut file = std::fs::OpenOptions::new().create(true).append(true).open(&path).ok()?;
    file.write_all(text.as_bytes()).ok()?;
    Some(path)
}

/// A panic payload's message, whole.
fn message_of(payload: &(dyn Any + Send)) -> String {
    payload.downcast_ref::<String>().cloned().or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string())).unwrap_or_else(|| "unknown panic".into())
}

/// One line for a caught panic: `panicked: ` (which tests look for), the first line of its
/// message (libtorch's messages go on with C++ frames), and the report [`install_hook`] wrote on
/// this thread, if any.
pub fn summary(payload: &(dyn Any + Send)) -> String {
    let message = message_of(payload);
    let first = message.lines().map(str::trim).find(|l| !l.is_empty()).unwrap_or("unknown panic");
    // tch wraps libtorch's errors as `Torch("...")`: the useful part is inside.
    let first = first.trim_start_matches("called `Result::unwrap()` on an `Err` value: ").trim_start_matches("Torch(\"");
    match LAST_REPORT.with(|r| r.borrow_mut().take()) {
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
        LAST_REPORT.with(|r| *r.borrow_mut() = Some(PathBuf::from("/tmp/crash-1.txt")));
        assert_eq!(summary(payload.as_ref()), "panicked: The function 'native_batch_norm' is not differentiable (full report: /tmp/crash-1.txt)");
        // The report is named once: a later panic without one does not point at the old one.
        assert_eq!(summary(payload.as_ref()), "panicked: The function 'native_batch_norm' is not differentiable");
        let dir = tempfile::tempdir().unwrap();
        let path = write_report(dir.path(), "the whole story").unwrap();
        assert_eq!(std::fs::read_to_string(path).unwrap(), "the whole story");
    }
}
