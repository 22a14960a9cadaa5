//! SIGINT, SIGTERM and SIGHUP (an SSH connection dropping) all mean "stop, keeping what you
//! have": the first one sets the flags that running work watches (a souping job stops after its
//! current step and saves the best soup so far; training stops after the current epoch, keeping
//! the finished ingredients), and the command ends with [`EXIT_INTERRUPTED`]. A second signal (a
//! user pressing Ctrl-C twice, `timeout` forwarding one) changes nothing: leaving while a step is
//! inside libtorch would lose the soup and crash in its destructors. A third ends the process at
//! once (`_exit(130)`, terminal restored first), saving nothing more.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Once};

/// The exit status of a command stopped by a signal (or cancelled) after saving a partial result.
pub const EXIT_INTERRUPTED: u8 = 3;

static INSTALL: Once = Once::new();
static SIGNALS: AtomicUsize = AtomicUsize::new(0);
static WATCHERS: Mutex<Vec<Arc<AtomicBool>>> = Mutex::new(Vec::new());
/// The workbench owns the terminal: no messages on stderr, and the terminal is restored before a
/// forced exit.
static TERMINAL_UI: AtomicBool = AtomicBool::new(false);

/// Installs the handler (once per process; later calls do nothing).
pub fn install() {
    INSTALL.call_once(|| {
        let installed = ctrlc::set_handler(|| {
            let n = SIGNALS.fetch_add(1, Ordering::SeqCst) + 1;
            let ui = TERMINAL_UI.load(Ordering::SeqCst);
            match n {
                1 if !ui => eprintln!("\nstopping: finishing the current step and saving what is done (a third signal quits at once, saving nothing more)"),
                2 if !ui => eprintln!("\nstill stopping: the current step ends, then the best soup so far is saved (one more signal quits at once)"),
                1 | 2 => {}
                _ => {
                    if ui {
                        ratatui::restore();
                    }
                    // _exit: no destructors run while another thread may be inside libtorch.
                    // SAFETY: ends the process; nothing after it runs.
                    unsafe { libc::_exit(130) }
                }
            }
            for flag in WATCHERS.lock().unwrap_or_else(|p| p.into_inner()).iter() {
                flag.store(true, Ordering::SeqCst);
            }
        });
        if let Err(e) = installed {
            tracing::warn!("signals will stop the process without saving: {e}");
        }
    });
}

/// Whether a signal has arrived.
pub fn interrupted() -> bool {
    SIGNALS.load(Ordering::SeqCst) > 0
}

/// How many signals have arrived.
pub fn count() -> usize {
    SIGNALS.load(Ordering::SeqCst)
}

/// Sets `flag` when a signal arrives (at once if one already has).
pub fn watch(flag: Arc<AtomicBool>) {
    if interrupted() {
        flag.store(true, Ordering::SeqCst);
    }
    WATCHERS.lock().unwrap_or_else(|p| p.into_inner()).push(flag);
}

/// The workbench has the terminal (true) or has given it back (false).
pub fn set_terminal_ui(on: bool) {
    TERMINAL_UI.store(on, Ordering::SeqCst);
}

/// A command stopped before the end, with what it saved: exits with [`EXIT_INTERRUPTED`].
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Interrupted(pub String);
