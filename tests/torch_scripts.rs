//! The scripts that pick a torch refuse clearly, before they change or run anything, when the
//! Python they are given cannot supply a torch gnn-soup builds against: `scripts/setup.sh` under
//! `GNN_SOUP_TORCH=system`, and the GPU bundle's runner (`scripts/gpu-runner.sh`, `run.sh` in the
//! bundle `make gpu-bundle` builds), which needs the exact torch its binaries were built against.
//! Fast: nothing is built or installed. The scripts run from copies laid out as in the repository
//! or the bundle, with a stand-in `torch` package on PYTHONPATH in front of any real one.
//! Last, the binary names the torch it was built against, and `devices` what libtorch sees.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

/// A bundle without its binaries: the runner, its shell library and the torch version "2.11".
fn bundle_layout(dir: &Path) -> PathBuf {
    let root = dir.join("bundle");
    std::fs::create_dir_all(root.join("lib")).unwrap();
    let repo = common::repo();
    std::fs::copy(repo.join("scripts/gpu-runner.sh"), root.join("run.sh")).unwrap();
    std::fs::copy(repo.join("scripts/lib/torch.sh"), root.join("lib/torch.sh")).unwrap();
    std::fs::copy(repo.join("scripts/torch-versions.tsv"), root.join("torch-versions.tsv"))
        .unwrap();
    std::fs::write(root.join("torch-version"), "2.11\n").unwrap();
    root
}

/// A `torch` package with `__version__` = `version`, or one whose import fails as a missing
/// torch's does (`None`).
fn stand_in_torch(dir: &Path, version: Option<&str>) -> PathBuf {
    let site = dir.join("site");
    std::fs::create_dir_all(site.join("torch/lib")).unwrap();
    let init = match version {
        Some(v) => format!("__version__ = {v:?}\n"),
        None => "raise ModuleNotFoundError(\"No module named 'torch'\")\n".into(),
    };
    std::fs::write(site.join("torch/__init__.py"), init).unwrap();
    site
}

/// Copies `files` of the repository into `root`, keeping their relative paths.
fn copy_from_repo(root: &Path, files: &[&str]) {
    for f in files {
        let to = root.join(f);
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::copy(common::repo().join(f), to).unwrap();
    }
}

/// Runs the bundle's run.sh with `python` and the stand-in torch: (exit code, stderr, whether the
/// OUT_DIR it was given exists afterwards).
fn run(python: &str, torch: Option<&str>) -> (Option<i32>, String, bool) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let bundle = bundle_layout(dir);
    let site = stand_in_torch(dir, torch);
    let out_dir = dir.join("out");
    let out = Command::new("bash")
        .arg(bundle.join("run.sh"))
        .arg(&out_dir)
        .env("PYTHON", python)
        .env("PYTHONPATH", &site)
        .output()
        .expect("bash did not start");
    (out.status.code(), String::from_utf8_lossy(&out.stderr).into_owned(), out_dir.exists())
}

#[test]
fn the_runner_refuses_a_python_without_torch() {
    let (code, stderr, ran) = run("python3", None);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("has no torch"), "{stderr}");
    assert!(stderr.contains("built against torch 2.11"), "{stderr}");
    assert!(stderr.contains("pip install 'torch==2.11.*'"), "{stderr}");
    assert!(!ran, "nothing may run before the torch check, yet OUT_DIR was made");
}

#[test]
fn the_runner_refuses_another_torch_version_and_names_the_one_it_needs() {
    let (code, stderr, ran) = run("python3", Some("2.13.0+cu130"));
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("has torch 2.13.0+cu130"), "{stderr}");
    assert!(stderr.contains("built against torch 2.11 and runs only with it"), "{stderr}");
    assert!(stderr.contains("GPU_BUNDLE_TORCH=2.13.0 make gpu-bundle"), "{stderr}");
    assert!(!ran, "OUT_DIR was made");
}

#[test]
fn the_runner_refuses_a_missing_python() {
    let (code, stderr, _) = run("/nonexistent/python3", Some("2.11.0"));
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("/nonexistent/python3 not found"), "{stderr}");
}

/// The right version passes the check and the runner goes on to the binaries (absent here).
#[test]
fn the_runner_accepts_the_torch_it_was_built_against() {
    let (code, stderr, ran) = run("python3", Some("2.11.0+cu130"));
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("gnn-soup missing: the bundle is incomplete"), "{stderr}");
    assert!(!stderr.contains("has torch"), "{stderr}");
    assert!(!ran, "OUT_DIR was made");
}

/// `scripts/setup.sh` with `GNN_SOUP_TORCH=mode` and python3 seeing the stand-in torch, from a copy
/// of the scripts in a scratch "repository": (exit code, stderr, whether it made a .venv there).
fn setup(mode: &str, torch: Option<&str>) -> (Option<i32>, String, bool) {
    let tmp = tempfile::tempdir().unwrap();
    let repo = tmp.path().join("repo");
    copy_from_repo(
        &repo,
        &["scripts/setup.sh", "scripts/lib/torch.sh", "scripts/torch-versions.tsv"],
    );
    let site = stand_in_torch(tmp.path(), torch);
    let out = Command::new("bash")
        .arg(repo.join("scripts/setup.sh"))
        .env("GNN_SOUP_TORCH", mode)
        .env("PYTHON", "python3")
        .env("PYTHONPATH", &site)
        .output()
        .expect("bash did not start");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
        repo.join(".venv").exists(),
    )
}

#[test]
fn setup_refuses_an_unsupported_system_torch_and_names_the_supported_ones() {
    let (code, stderr, made_venv) = setup("system", Some("2.10.0"));
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("has torch 2.10.0"), "{stderr}");
    assert!(stderr.contains("gnn-soup builds against torch 2.11, 2.12, 2.13"), "{stderr}");
    assert!(stderr.contains("GNN_SOUP_TORCH=pypi"), "{stderr}");
    assert!(!made_venv, "set-up went on after refusing");
}

#[test]
fn setup_refuses_system_when_python_has_no_torch() {
    let (code, stderr, made_venv) = setup("system", None);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("has no torch"), "{stderr}");
    assert!(stderr.contains("one of 2.11, 2.12, 2.13"), "{stderr}");
    assert!(!made_venv);
}

#[test]
fn setup_refuses_an_unknown_choice() {
    let (code, stderr, made_venv) = setup("conda", Some("2.13.0"));
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("GNN_SOUP_TORCH=conda: use system"), "{stderr}");
    assert!(!made_venv);
}

/// The binary names the torch it was built against (`build.rs` reads it from libtorch's headers),
/// and `devices` reports what the libtorch it loaded sees, as JSON and as text.
#[test]
fn the_build_names_its_torch_and_devices_reports_what_libtorch_sees() {
    let torch = env!("GNN_SOUP_TORCH_VERSION");
    let data = tempfile::tempdir().unwrap();
    assert!(
        ["2.11.", "2.12.", "2.13."].iter().any(|v| torch.starts_with(v)),
        "built against {torch:?}"
    );
    let (ok, stdout, stderr) = common::run_bin_generated(&["--version"], data.path());
    assert!(ok, "{stderr}");
    assert!(stdout.contains(&format!("(torch {torch})")), "{stdout}");

    let (ok, stdout, stderr) = common::run_bin_generated(&["devices", "--json"], data.path());
    assert!(ok, "{stderr}");
    let report: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(report["torch_version"], torch);
    let cuda = tch::Cuda::is_available();
    assert_eq!(report["cuda_available"], cuda);
    let count = if cuda { tch::Cuda::device_count() as usize } else { 0 };
    assert_eq!(report["cuda_devices"].as_array().unwrap().len(), count, "{report}");
    // The CPU's sparse kernel: gnn-soup's own on an x86 CPU with AVX2 (this project's machines).
    let kernel = report["cpu_sparse_kernel"].as_str().unwrap();
    #[cfg(target_arch = "x86_64")]
    if std::env::var_os("GNN_SOUP_SPMM").is_none() {
        let want = if is_x86_feature_detected!("avx512f") {
            "avx512"
        } else if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
            "avx2"
        } else {
            "libtorch"
        };
        assert_eq!(kernel, want, "{report}");
    }

    let (ok, stdout, stderr) = common::run_bin_generated(&["devices"], data.path());
    assert!(ok, "{stderr}");
    assert!(stdout.contains(&format!("built against torch {torch}")), "{stdout}");
    let expected =
        if count == 0 { "no CUDA device".to_string() } else { format!("{count} CUDA device(s)") };
    assert!(stdout.contains(&expected), "{stdout}");
    assert!(stdout.contains(&format!("CPU: {} threads", report["cpu_threads"])), "{stdout}");
    assert!(stdout.contains(kernel), "{stdout}");
}
