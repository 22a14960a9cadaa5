//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `../shared/datasets/planetoid`, or None (with a note) when this checkout has no shared folder.
pub fn planetoid_dir() -> Option<PathBuf> {
    let dir = std::env::var_os("GNN_SOUP_PLANETOID_DIR").map(PathBuf::from).unwrap_or_else(|| repo().join("../shared/datasets/planetoid"));
    if dir.join("ind.cora.x").is_file() {
        Some(dir)
    } else {
        eprintln!("skipping: Planetoid files not found at {} (set GNN_SOUP_PLANETOID_DIR)", dir.display());
        None
    }
}

/// The Python of the project's virtual environment (torch, torch_geometric, safetensors).
pub fn python() -> PathBuf {
    let p = std::env::var_os("GNN_SOUP_PYTHON").map(PathBuf::from).unwrap_or_else(|| repo().join(".venv/bin/python"));
    assert!(p.exists(), "{} not found: run scripts/setup.sh (the README's test command does)", p.display());
    p
}

/// Runs a script from tests/python and returns its stdout; panics with its stderr on failure.
pub fn run_python(script: &str, args: &[&str]) -> String {
    let out = Command::new(python())
        .arg(repo().join("tests/python").join(script))
        .args(args)
        .env("PYTHONWARNINGS", "ignore")
        .output()
        .expect("python did not start");
    assert!(out.status.success(), "{script} failed:\n{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

pub fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_gnn-soup"))
}

/// Runs the binary, returning (exit success, stdout, stderr).
pub fn run_bin(args: &[&str]) -> (bool, String, String) {
    let out = bin().args(args).env("GNN_SOUP_DATA_DIR", planetoid_dir().unwrap_or_else(|| repo())).output().expect("gnn-soup did not start");
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
}

pub fn data_opts(dir: &Path) -> gnn_soup::data::DataOptions {
    gnn_soup::data::DataOptions { data_dir: dir.to_path_buf(), split_seed: 0, download: false }
}
