//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `../shared/datasets/planetoid` (or `GNN_SOUP_PLANETOID_DIR`). A test that needs it fails when
/// it is missing, saying where it looked: a test that passes without its data proves nothing.
pub fn planetoid_dir() -> PathBuf {
    let dir = std::env::var_os("GNN_SOUP_PLANETOID_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join("../shared/datasets/planetoid"));
    assert!(
        dir.join("ind.cora.x").is_file(),
        "the Planetoid files (ind.cora.*, ind.citeseer.*) are not at {}: this test needs them. Check out the project with its shared/ folder beside it, or set GNN_SOUP_PLANETOID_DIR",
        dir.display()
    );
    dir
}

/// The Python of the project's virtual environment (torch, torch_geometric, safetensors).
pub fn python() -> PathBuf {
    let p = std::env::var_os("GNN_SOUP_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join(".venv/bin/python"));
    assert!(
        p.exists(),
        "{} not found: run scripts/setup.sh (the README's test command does)",
        p.display()
    );
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

/// The binary under test: cargo's build of it, or `GNN_SOUP_BIN` (the GPU bundle runs its test
/// binary far from the build tree, next to its own copy of gnn-soup).
pub fn bin() -> Command {
    Command::new(std::env::var_os("GNN_SOUP_BIN").unwrap_or(env!("CARGO_BIN_EXE_gnn-soup").into()))
}

/// Runs the binary, returning (exit success, stdout, stderr).
pub fn run_bin(args: &[&str]) -> (bool, String, String) {
    run_bin_with(args, &[])
}

/// [`run_bin`] with extra environment variables for the child alone.
pub fn run_bin_with(args: &[&str], env: &[(&str, &str)]) -> (bool, String, String) {
    let mut cmd = bin();
    cmd.args(args).env("GNN_SOUP_DATA_DIR", planetoid_dir());
    for (k, v) in env {
        cmd.env(k, v);
    }
    output_of(cmd)
}

/// [`run_bin`] for generated datasets alone (`csbm...`): no Planetoid files needed, so it also
/// runs where only the test binary was copied; `data` holds the generated graphs' cache.
pub fn run_bin_generated(args: &[&str], data: &Path) -> (bool, String, String) {
    let mut cmd = bin();
    cmd.args(args).env("GNN_SOUP_DATA_DIR", data);
    output_of(cmd)
}

fn output_of(mut cmd: Command) -> (bool, String, String) {
    let out = cmd.output().expect("gnn-soup did not start");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

pub fn data_opts(dir: &Path) -> gnn_soup::data::DataOptions {
    gnn_soup::data::DataOptions { data_dir: dir.to_path_buf(), split_seed: 0, download: false }
}

/// A directory built once per test build and shared by the test processes that need it (nextest
/// runs each test in its own process, so an in-process `OnceLock` would rebuild it per test).
/// The first caller builds it under an exclusive lock while the others wait; a rebuilt test
/// binary or a changed Python helper (tests/python) gets a fresh one, so it never outlives the
/// code that made it.
pub fn shared_fixture(name: &str, build: impl FnOnce(&Path)) -> PathBuf {
    use std::os::unix::io::AsRawFd;
    let exe = std::env::current_exe().expect("the test binary's path");
    let modified = |p: &Path| {
        std::fs::metadata(p)
            .and_then(|m| m.modified())
            .map(|t| t.duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_nanos())
            .unwrap_or(0)
    };
    let helpers = std::fs::read_dir(repo().join("tests/python"))
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| modified(&e.path()))
        .max()
        .unwrap_or(0);
    let stamp = modified(&exe).max(helpers);
    let stem = exe.file_stem().unwrap_or_default().to_string_lossy().into_owned();
    let root = repo().join("target/test-fixtures");
    let dir = root.join(format!("{stem}-{stamp}")).join(name);
    std::fs::create_dir_all(dir.parent().unwrap()).unwrap();
    let lock = std::fs::File::create(dir.with_extension("lock")).unwrap();
    // SAFETY: flock on a descriptor this function owns; released when `lock` is dropped.
    assert_eq!(
        unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX) },
        0,
        "cannot lock {}",
        dir.display()
    );
    let done = dir.join(".complete");
    if !done.is_file() {
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        build(&dir);
        std::fs::write(&done, b"").unwrap();
        // Fixtures of earlier builds of this binary are stale: remove them.
        for old in std::fs::read_dir(&root).into_iter().flatten().flatten() {
            let n = old.file_name().to_string_lossy().into_owned();
            if n.starts_with(&format!("{stem}-")) && old.path() != dir.parent().unwrap() {
                let _ = std::fs::remove_dir_all(old.path());
            }
        }
    }
    dir
}

/// Waits for `child` (started with its stderr piped) at most `limit`: its exit code (None when a
/// signal ended it) and stderr, or None when it was still running (it is then killed).
pub fn wait_deadline(
    child: &mut std::process::Child,
    limit: std::time::Duration,
) -> Option<(Option<i32>, String)> {
    let start = std::time::Instant::now();
    loop {
        if let Some(status) = child.try_wait().expect("waiting for gnn-soup") {
            let mut err = String::new();
            use std::io::Read;
            child.stderr.take().map(|mut e| e.read_to_string(&mut err));
            return Some((status.code(), err));
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}
