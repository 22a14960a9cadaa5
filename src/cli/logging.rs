//! Where log lines go: stderr, or a file while the dashboard owns the terminal.

use std::path::PathBuf;

/// The log file used while the dashboard owns the terminal.
pub fn log_file() -> PathBuf {
    crate::paths::state_dir().join("gnn-soup.log")
}

/// Logs filtered by `RUST_LOG` (default: warnings): to stderr, or to [`log_file`] when the
/// dashboard owns the terminal (nothing may be printed over it).
pub fn init_logging(to_file: bool) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let file = to_file.then(|| {
        let path = log_file();
        let _ = std::fs::create_dir_all(path.parent().unwrap_or(std::path::Path::new(".")));
        std::fs::OpenOptions::new().create(true).append(true).open(path).ok()
    });
    match file.flatten() {
        Some(f) => {
            let _ = tracing_subscriber::fmt()
                .with_env_filter(filter)
                .with_ansi(false)
                .with_writer(std::sync::Mutex::new(f))
                .try_init();
        }
        None => {
            // Escape codes only for a person at a terminal: not into files, pipes or `NO_COLOR`.
            let ansi = crate::progress::stderr_is_terminal() && !crate::progress::color_disabled();
            let _ = tracing_subscriber::fmt()
                .with_env_filter(filter)
                .with_ansi(ansi)
                .with_writer(std::io::stderr)
                .try_init();
        }
    }
}
