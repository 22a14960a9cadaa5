//! Where gnn-soup keeps things, after the XDG base-directory convention:
//! - **results** (run directories of the workbench, the demo's ingredients and runs) in the data
//!   directory, `$XDG_DATA_HOME/gnn-soup` (`~/.local/share/gnn-soup`): they are work, not cache,
//!   and a cache cleaner must not take them;
//! - what can be made again (downloaded datasets, imported copies of foreign checkpoints, METIS
//!   partitions) in the cache, `$XDG_CACHE_HOME/gnn-soup` (`~/.cache/gnn-soup`);
//! - the log in the state directory, `$XDG_STATE_HOME/gnn-soup` (`~/.local/state/gnn-soup`).
//!
//! Without `HOME` either, each falls back to a hidden directory in the current one.

use std::ffi::OsString;
use std::path::PathBuf;

/// `$<var>/gnn-soup`, else `$HOME/<home_default>/gnn-soup`, else `./<home_default>/gnn-soup`.
fn xdg(var: &str, home_default: &str) -> PathBuf {
    xdg_from(|name| std::env::var_os(name), var, home_default)
}

fn xdg_from(env: impl Fn(&str) -> Option<OsString>, var: &str, home_default: &str) -> PathBuf {
    let base = env(var)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| env("HOME").map(|h| PathBuf::from(h).join(home_default)))
        .unwrap_or_else(|| PathBuf::from(home_default));
    base.join("gnn-soup")
}

/// What can be made again: datasets, imports, partitions.
pub fn cache_dir() -> PathBuf {
    xdg("XDG_CACHE_HOME", ".cache")
}

/// Results: run directories and the demo's ingredients.
pub fn results_dir() -> PathBuf {
    xdg("XDG_DATA_HOME", ".local/share")
}

/// The log file's directory.
pub fn state_dir() -> PathBuf {
    xdg("XDG_STATE_HOME", ".local/state")
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    #[test]
    fn xdg_variables_win_and_empty_ones_are_ignored() {
        let env = |vars: &'static [(&'static str, &'static str)]| {
            move |name: &str| vars.iter().find(|(k, _)| *k == name).map(|(_, v)| v.into())
        };
        let set = env(&[("XDG_DATA_HOME", "/x/data"), ("XDG_STATE_HOME", ""), ("HOME", "/home/u")]);
        assert_eq!(
            super::xdg_from(set, "XDG_DATA_HOME", ".local/share"),
            Path::new("/x/data/gnn-soup")
        );
        assert_eq!(
            super::xdg_from(set, "XDG_STATE_HOME", ".local/state"),
            Path::new("/home/u/.local/state/gnn-soup")
        );
        assert_eq!(
            super::xdg_from(env(&[]), "XDG_CACHE_HOME", ".cache"),
            Path::new(".cache/gnn-soup")
        );
    }
}
