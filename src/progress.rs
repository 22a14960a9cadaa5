//! Terminal conventions for headless work: progress bars, and whether colour is wanted.
//!
//! Progress bars for long headless work. They draw on stderr only when it is a terminal, so logs
//! and pipes stay clean.

use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

pub fn stderr_is_terminal() -> bool {
    std::io::stderr().is_terminal()
}

/// Whether the user asked for no colour (`NO_COLOR` set and not empty: no-color.org).
pub fn color_disabled() -> bool {
    std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty())
}

fn target() -> ProgressDrawTarget {
    if stderr_is_terminal() {
        ProgressDrawTarget::stderr_with_hz(10)
    } else {
        ProgressDrawTarget::hidden()
    }
}

/// A byte counter for downloads; a spinner when the size is unknown.
pub fn bytes_bar(total: Option<u64>, label: &str) -> ProgressBar {
    let bar = ProgressBar::with_draw_target(total, target());
    let template = if total.is_some() {
        "{prefix} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}"
    } else {
        "{prefix} {spinner} {bytes} {bytes_per_sec}"
    };
    bar.set_style(ProgressStyle::with_template(template).unwrap().progress_chars("=> "));
    bar.set_prefix(label.to_string());
    bar
}

/// A step counter (epochs, candidates, partitions) with a free-text message for live figures.
pub fn steps_bar(total: u64, label: &str) -> ProgressBar {
    let bar = ProgressBar::with_draw_target(Some(total), target());
    bar.set_style(
        ProgressStyle::with_template(
            "{prefix:>14} [{bar:30}] {pos}/{len} {elapsed_precise} eta {eta} {msg}",
        )
        .unwrap()
        .progress_chars("=> "),
    );
    bar.set_prefix(label.to_string());
    bar
}
