//! `gnn-soup slurm train`: the scripts it writes, run by a stand-in `sbatch` that executes each
//! job at once (every array task in turn, with its SLURM_ARRAY_TASK_ID), so the whole chain (init,
//! shards, collect, soup) runs in the ordinary suite. `make test-slurm` runs it on a real Slurm.

mod common;

use std::os::unix::fs::PermissionsExt;

const FAKE_SBATCH: &str = r#"#!/usr/bin/env bash
# A stand-in for sbatch: runs the job now (each array task in turn) and prints a job id.
set -euo pipefail
echo "sbatch $*" >> "$FAKE_SBATCH_LOG"
script=""
for a in "$@"; do case "$a" in --*) ;; *) script="$a" ;; esac; done
chdir=$(sed -n "s/^#SBATCH --chdir=//p" "$script" | tr -d "'")
last=$(sed -n "s/^#SBATCH --array=0-//p" "$script")
cd "$chdir"
if [ -n "$last" ]; then
  for i in $(seq 0 "$last"); do SLURM_ARRAY_TASK_ID=$i bash "$script" >> "$FAKE_SBATCH_LOG" 2>&1; done
else
  bash "$script" >> "$FAKE_SBATCH_LOG" 2>&1
fi
echo $(( $(wc -l < "$FAKE_SBATCH_LOG") + 100 ))
"#;

#[test]
fn the_scripts_train_every_shard_collect_and_soup() {
    let dir = tempfile::tempdir().unwrap();
    let bin_dir = dir.path().join("bin");
    std::fs::create_dir_all(&bin_dir).unwrap();
    let sbatch = bin_dir.join("sbatch");
    std::fs::write(&sbatch, FAKE_SBATCH).unwrap();
    std::fs::set_permissions(&sbatch, std::fs::Permissions::from_mode(0o755)).unwrap();
    let log = dir.path().join("sbatch.log");
    let path = format!("{}:{}", bin_dir.display(), std::env::var("PATH").unwrap_or_default());
    let out = common::bin()
        .current_dir(dir.path())
        .env("PATH", path)
        .env("FAKE_SBATCH_LOG", &log)
        .args([
            "slurm",
            "train",
            "--array",
            "2",
            "--gres",
            "gpu:1",
            "--time",
            "1:00:00",
            "--partition",
            "short",
            "--soup-out",
            "soup",
            "--soup-strategy",
            "uniform",
            "--submit",
            "--",
        ])
        .args([
            "--dataset",
            "csbm:nodes=300,train=60,val=100,test=100",
            "--ingredients",
            "4",
            "--epochs",
            "5",
            "--device",
            "cpu",
            "--out",
            "run",
        ])
        .output()
        .unwrap();
    let log_text = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(out.status.success(), "{}\n{log_text}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("submitted: training array")
            && stdout.contains("(2 tasks)")
            && stdout.contains("collect and soup"),
        "{stdout}"
    );
    // The collecting job waited for the array.
    let calls: Vec<&str> = log_text.lines().filter(|l| l.starts_with("sbatch ")).collect();
    assert_eq!(calls.len(), 2, "{log_text}");
    assert!(calls[0].contains("--parsable") && calls[0].ends_with("train.sbatch"), "{}", calls[0]);
    assert!(
        calls[1].contains("--dependency=afterok:") && calls[1].ends_with("collect.sbatch"),
        "{}",
        calls[1]
    );
    let script = std::fs::read_to_string(dir.path().join("run/slurm/train.sbatch")).unwrap();
    for line in [
        "#SBATCH --array=0-1",
        "#SBATCH --gres=gpu:1",
        "#SBATCH --time=1:00:00",
        "#SBATCH --partition=short",
        "--shard \"${SLURM_ARRAY_TASK_ID}/2\"",
    ] {
        assert!(script.contains(line), "{line} missing from\n{script}");
    }
    // Every shard's ingredients, collected, then souped.
    let manifest: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join("run/manifest.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(manifest["ingredients"].as_array().map(Vec::len), Some(4));
    let report: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join("soup/report-uniform.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(report["ingredients"].as_array().map(Vec::len), Some(4));
}

#[test]
fn training_arguments_are_checked_before_anything_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let run = |extra: &[&str]| {
        let out = common::bin()
            .current_dir(dir.path())
            .args(["slurm", "train", "--array", "2", "--"])
            .args(extra)
            .output()
            .unwrap();
        (out.status.success(), String::from_utf8_lossy(&out.stderr).into_owned())
    };
    let (ok, err) = run(&["--dataset", "csbm"]);
    assert!(
        !ok && err.contains("not valid `gnn-soup train` arguments") && err.contains("--out"),
        "{err}"
    );
    let (ok, err) = run(&["--out", "x", "--shard", "0/2"]);
    assert!(!ok && err.contains("leave --shard"), "{err}");
    let (ok, err) = run(&["--out", "x", "--epochs", "many"]);
    assert!(!ok && err.contains("not valid `gnn-soup train` arguments"), "{err}");
    assert!(!dir.path().join("x").exists(), "nothing written");
    // Without --submit: the scripts and the command that submits them; not twice over.
    let (ok, err) = run(&["--out", "x"]);
    assert!(ok, "{err}");
    assert!(dir.path().join("x/slurm/submit.sh").is_file());
    let (ok, err) = run(&["--out", "x"]);
    assert!(!ok && err.contains("already exists (pass --overwrite"), "{err}");
}
