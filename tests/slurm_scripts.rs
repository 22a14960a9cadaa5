//! `gnn-soup slurm train`: the scripts it writes, run by a stand-in `sbatch` that executes each
//! job at once (every array task in turn, with its SLURM_ARRAY_TASK_ID), so the whole chain (init,
//! shards, collect, soup) runs in the ordinary suite. `make test-slurm` runs it on a real Slurm.

mod common;

use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

const FAKE_SBATCH: &str = r#"#!/usr/bin/env bash
# A stand-in for sbatch: runs the job now (each array task in turn) and prints a job id.
set -euo pipefail
echo "sbatch $*" >> "$FAKE_SBATCH_LOG"
script=""
for a in "$@"; do case "$a" in --*) ;; *) script="$a" ;; esac; done
# The --chdir value is one quoted word; bash reads it back (and would run whatever escaped it).
eval "chdir=$(sed -n "s/^#SBATCH --chdir=//p" "$script")"
last=$(sed -n "s/^#SBATCH --array=0-//p" "$script")
cd "$chdir"
if [ -n "$last" ]; then
  for i in $(seq 0 "$last"); do SLURM_ARRAY_TASK_ID=$i bash "$script" >> "$FAKE_SBATCH_LOG" 2>&1; done
else
  bash "$script" >> "$FAKE_SBATCH_LOG" 2>&1
fi
echo $(( $(wc -l < "$FAKE_SBATCH_LOG") + 100 ))
"#;

/// A stand-in for the gnn-soup binary the scripts run: records where it ran and its arguments,
/// NUL-separated, one file a call, in order.
const STUB_GNN_SOUP: &str = r#"#!/usr/bin/env bash
n=$(ls "$STUB_CALLS" | wc -l)
printf '%s\0' "$PWD" "$@" > "$STUB_CALLS/$(printf %03d "$n")"
"#;

/// Shell metacharacters of every kind, none of them a backslash or a line break: a command
/// substitution, backticks, `;`, `&&`, both quotes, a glob, `#`, a Slurm log pattern. Any of them
/// run as shell creates a file named PWNED.
const NASTY: &str = r#"a $(touch PWNED) `touch PWNED`; touch PWNED && x 'q' "d" * # %A"#;

/// As [`NASTY`], with no whitespace (the form an `#SBATCH` option value may take).
const NASTY_WORD: &str = r#"$(touch${IFS}PWNED)`touch${IFS}PWNED`;touch${IFS}PWNED&&'q'"d"*#%j"#;

/// A directory holding a stand-in `sbatch`, and the log it appends to.
fn fake_sbatch(root: &Path) -> (PathBuf, PathBuf) {
    let bin_dir = root.join("sbatch-bin");
    std::fs::create_dir_all(&bin_dir).unwrap();
    let sbatch = bin_dir.join("sbatch");
    std::fs::write(&sbatch, FAKE_SBATCH).unwrap();
    std::fs::set_permissions(&sbatch, std::fs::Permissions::from_mode(0o755)).unwrap();
    (bin_dir, root.join("sbatch.log"))
}

fn path_with(bin_dir: &Path) -> String {
    format!("{}:{}", bin_dir.display(), std::env::var("PATH").unwrap_or_default())
}

/// Every file or folder under `dir` named exactly PWNED (what an injected `touch PWNED` makes).
fn pwned(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let path = entry.path();
            if entry.file_name() == "PWNED" {
                found.push(path.clone());
            }
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                stack.push(path);
            }
        }
    }
    found
}

/// Every path under `dir`, sorted.
fn tree(dir: &Path) -> Vec<PathBuf> {
    let mut all = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                stack.push(entry.path());
            }
            all.push(entry.path());
        }
    }
    all.sort();
    all
}

/// The arguments sbatch takes from a script's `#SBATCH` lines, read as its own parser reads them
/// (a stand-in written here after Slurm's `get_argument`, src/sbatch/opt.c): whitespace
/// separates, `'` and `"` group, `\` takes the next character as it is, an unquoted `#` ends the
/// line; the first line that is neither blank nor a comment ends the header.
fn sbatch_directives(script: &str) -> Vec<String> {
    let mut args = Vec::new();
    for line in script.lines() {
        let Some(rest) = line.strip_prefix("#SBATCH") else {
            if line.trim().is_empty() || line.trim_start().starts_with('#') {
                continue;
            }
            break;
        };
        let mut chars = rest.chars().peekable();
        'line: loop {
            while chars.next_if(|c| c.is_whitespace()).is_some() {}
            let mut arg = String::new();
            let mut quote = None;
            let mut comment = false;
            while let Some(c) = chars.next() {
                match (quote, c) {
                    (_, '\\') => arg.extend(chars.next()),
                    (Some(q), c) if c == q => quote = None,
                    (Some(_), c) => arg.push(c),
                    (None, '\'' | '"') => quote = Some(c),
                    (None, '#') => {
                        comment = true;
                        break;
                    }
                    (None, c) if c.is_whitespace() => break,
                    (None, c) => arg.push(c),
                }
            }
            assert!(quote.is_none(), "sbatch refuses an unmatched quote: {line}");
            if arg.is_empty() {
                break 'line;
            }
            args.push(arg);
            if comment {
                break 'line;
            }
        }
    }
    args
}

#[test]
fn the_scripts_train_every_shard_collect_and_soup() {
    let dir = tempfile::tempdir().unwrap();
    let (bin_dir, log) = fake_sbatch(dir.path());
    // Real training into directories whose names are shell metacharacters: they must reach
    // `train` and `soup` as they are, and run nothing.
    let run = format!("run {NASTY}");
    let soup = format!("soup {NASTY} \\");
    let out = common::bin()
        .current_dir(dir.path())
        .env("PATH", path_with(&bin_dir))
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
            &soup,
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
            &run,
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
    let run_dir = dir.path().join(&run);
    let script = std::fs::read_to_string(run_dir.join("slurm/train.sbatch")).unwrap();
    for line in [
        "#SBATCH --array=0-1",
        "#SBATCH --gres='gpu:1'",
        "#SBATCH --time='1:00:00'",
        "#SBATCH --partition='short'",
        "--shard \"${SLURM_ARRAY_TASK_ID}/2\"",
    ] {
        assert!(script.contains(line), "{line} missing from\n{script}");
    }
    // Every shard's ingredients, collected, then souped.
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run_dir.join("manifest.json")).unwrap())
            .unwrap();
    assert_eq!(manifest["ingredients"].as_array().map(Vec::len), Some(4));
    let report: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join(&soup).join("report-uniform.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(report["ingredients"].as_array().map(Vec::len), Some(4));
    assert_eq!(pwned(dir.path()), Vec::<PathBuf>::new(), "a value ran as a command\n{log_text}");
}

/// Every user-given value a script holds (the working directory, the binary's path, the script
/// directory, the training arguments, --out, the soup's arguments, every #SBATCH option) full of
/// shell metacharacters: the scripts run (stand-ins for sbatch and for the gnn-soup they call) and
/// nothing in them runs; each command gets exactly its arguments, and sbatch exactly its options.
#[test]
fn metacharacters_in_every_value_reach_the_commands_intact() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().canonicalize().unwrap();
    let (sbatch_dir, log) = fake_sbatch(&root);
    let cwd = root.join(format!("cwd {NASTY}"));
    std::fs::create_dir_all(&cwd).unwrap();
    // The binary under a nasty path of its own: a hard link (or a copy), which the scripts name
    // (its path is this process's), replaced by a recording stand-in once they are written.
    let exe = root.join(format!("bin {NASTY}")).join("gnn-soup");
    std::fs::create_dir_all(exe.parent().unwrap()).unwrap();
    let real = env!("CARGO_BIN_EXE_gnn-soup");
    if std::fs::hard_link(real, &exe).is_err() {
        std::fs::copy(real, &exe).unwrap();
    }
    let with_backslash = format!("{NASTY} \\ end");
    let out_dir = format!("run {with_backslash}");
    let soup_out = format!("soup {with_backslash}");
    let strategy = format!("uniform {with_backslash}");
    let recipe = format!("recipe {with_backslash}.toml");
    let script_dir = format!("scripts {NASTY}");
    let option = |name: &str| format!("{name}{NASTY_WORD}");
    let (partition, account, mem, gres, time) =
        (option("p"), option("a"), option("m"), option("g"), option("t"));
    let train_args: Vec<String> = [
        "--dataset",
        &format!("csbm {with_backslash}"),
        "--data-dir",
        &format!("data {with_backslash}"),
        "--epochs",
        "5",
        "--out",
        &out_dir,
    ]
    .map(String::from)
    .to_vec();
    let out = std::process::Command::new(&exe)
        .current_dir(&cwd)
        .args(["slurm", "train", "--array", "2", "--cpus-per-task", "3"])
        .args(["--partition", &partition, "--account", &account, "--mem", &mem])
        .args(["--gres", &gres, "--time", &time, "--script-dir", &script_dir])
        .args(["--soup-out", &soup_out, "--soup-strategy", &strategy, "--soup-recipe", &recipe])
        .arg("--")
        .args(&train_args)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let printed = String::from_utf8(out.stdout).unwrap();

    std::fs::remove_file(&exe).unwrap();
    std::fs::write(&exe, STUB_GNN_SOUP).unwrap();
    std::fs::set_permissions(&exe, std::fs::Permissions::from_mode(0o755)).unwrap();
    let calls_dir = root.join("calls");
    std::fs::create_dir_all(&calls_dir).unwrap();
    // What `slurm train` printed is the command that submits: run it as printed.
    let submit = std::process::Command::new("bash")
        .arg("-c")
        .arg(printed.trim_end())
        .current_dir(&root)
        .env("PATH", path_with(&sbatch_dir))
        .env("FAKE_SBATCH_LOG", &log)
        .env("STUB_CALLS", &calls_dir)
        .output()
        .unwrap();
    let log_text = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(
        submit.status.success(),
        "{printed}\n{}\n{log_text}",
        String::from_utf8_lossy(&submit.stderr)
    );
    assert_eq!(pwned(&root), Vec::<PathBuf>::new(), "a value ran as a command\n{log_text}");
    assert_eq!(pwned(&std::env::current_dir().unwrap()), Vec::<PathBuf>::new());

    let scripts = cwd.join(&script_dir);
    let submitted = String::from_utf8_lossy(&submit.stdout);
    assert!(
        submitted.contains("(2 tasks)")
            && submitted.contains(&format!("logs: {}/\n", scripts.display())),
        "{submitted}"
    );

    // Each call of gnn-soup: where it ran, and its arguments, exactly.
    let mut calls: Vec<PathBuf> =
        std::fs::read_dir(&calls_dir).unwrap().map(|e| e.unwrap().path()).collect();
    calls.sort();
    let calls: Vec<Vec<String>> = calls
        .iter()
        .map(|f| {
            let bytes = std::fs::read(f).unwrap();
            let text = String::from_utf8(bytes).unwrap();
            text.strip_suffix('\0').unwrap().split('\0').map(String::from).collect()
        })
        .collect();
    let call = |args: &[&str]| -> Vec<String> {
        std::iter::once(cwd.display().to_string())
            .chain(args.iter().map(|a| a.to_string()))
            .collect()
    };
    let train = |extra: &[&str]| {
        let mut args = vec!["train"];
        args.extend(train_args.iter().map(String::as_str));
        args.extend(extra);
        call(&args)
    };
    let recipe_abs = cwd.join(&recipe).display().to_string();
    let expected = vec![
        train(&["--init-only"]),
        train(&["--shard", "0/2"]),
        train(&["--shard", "1/2"]),
        call(&["train", "--collect", &out_dir]),
        call(&[
            "soup",
            "--ingredients",
            &out_dir,
            "--strategy",
            &strategy,
            "--recipe",
            &recipe_abs,
            "--out",
            &soup_out,
        ]),
    ];
    assert_eq!(calls, expected, "{log_text}");

    // What sbatch reads from each script's #SBATCH lines, exactly (the %A of the folder's name
    // written %%A, so that Slurm does not take it for the job's id).
    let logs = scripts.display().to_string().replace('%', "%%");
    let shared = [
        format!("--chdir={}", cwd.display()),
        format!("--partition={partition}"),
        format!("--account={account}"),
        format!("--mem={mem}"),
    ];
    let mut expected =
        vec!["--job-name=gnn-soup-train".to_string(), format!("--output={logs}/train-%A_%a.log")];
    expected.extend(shared.iter().cloned());
    expected.extend([
        "--array=0-1".to_string(),
        format!("--gres={gres}"),
        format!("--time={time}"),
        "--cpus-per-task=3".to_string(),
    ]);
    let text = std::fs::read_to_string(scripts.join("train.sbatch")).unwrap();
    assert_eq!(sbatch_directives(&text), expected, "{text}");
    let mut expected =
        vec!["--job-name=gnn-soup-collect".to_string(), format!("--output={logs}/collect-%j.log")];
    expected.extend(shared.iter().cloned());
    let text = std::fs::read_to_string(scripts.join("collect.sbatch")).unwrap();
    assert_eq!(sbatch_directives(&text), expected, "{text}");
}

/// A value that cannot be written where it goes (a line break or another control character in an
/// #SBATCH option, a path or a comment; what sbatch would misread) is refused by the option's
/// name, as bad input (exit 1), before anything is written.
#[test]
fn values_a_script_cannot_hold_are_refused_and_nothing_is_written() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().canonicalize().unwrap();
    let plain = root.join("plain");
    let odd_cwd = root.join("cwd\nhostname");
    let backslash_cwd = root.join("cwd\\x");
    for d in [&plain, &odd_cwd, &backslash_cwd] {
        std::fs::create_dir_all(d).unwrap();
    }
    let before = tree(&root);
    let cases: &[(&Path, &[&str], &[&str], &str)] = &[
        (&plain, &["--partition", "gpu\n#SBATCH --wrap=hostname"], &[], "--partition"),
        (&plain, &["--partition", "gpu\nhostname"], &[], "control character"),
        (&plain, &["--gres", "gpu:1\rx"], &[], "--gres"),
        (&plain, &["--time", "1:00:00\u{1b}[2J"], &[], "--time"),
        (&plain, &["--account", "lab\u{7f}"], &[], "--account"),
        (&plain, &["--mem", "32G\ntouch PWNED"], &[], "--mem"),
        (&plain, &["--partition", "gpu short"], &[], "whitespace"),
        (&plain, &["--partition", "gpu\\x"], &[], "backslash"),
        (&plain, &["--partition", ""], &[], "--partition is empty"),
        (&plain, &["--account", "hetjob"], &[], "heterogeneous"),
        (&plain, &[], &["--out", "run\ntouch PWNED"], "--out"),
        (&plain, &["--script-dir", "s\n#SBATCH --x"], &[], "--script-dir"),
        (&plain, &["--script-dir", "s\\x"], &[], "--script-dir"),
        (&plain, &[], &["--out", "run\\x"], "--out"),
        (&odd_cwd, &[], &[], "the current directory"),
        (&backslash_cwd, &[], &[], "the current directory"),
    ];
    for (cwd, options, train, name) in cases {
        let out = common::bin()
            .current_dir(cwd)
            .args(["slurm", "train", "--array", "2", "--soup-out", "soup"])
            .args(*options)
            .arg("--")
            .args(if train.is_empty() { &["--out", "run"][..] } else { train })
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{options:?} {train:?}: {stderr}");
        assert!(stderr.contains(name), "{options:?} {train:?}: no {name:?} in {stderr}");
        assert!(!stderr.contains("panicked") && !stderr.contains("internal error"), "{stderr}");
        assert!(out.stdout.is_empty(), "{}", String::from_utf8_lossy(&out.stdout));
        assert_eq!(tree(&root), before, "{options:?} {train:?} wrote something");
    }
    // A path that is not UTF-8 could not be written into a script as it is.
    let out = common::bin()
        .current_dir(&plain)
        .args(["slurm", "train", "--array", "2", "--script-dir"])
        .arg(std::ffi::OsStr::from_bytes(b"s\xff"))
        .args(["--", "--out", "run"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("--script-dir") && stderr.contains("not valid UTF-8"), "{stderr}");
    assert_eq!(tree(&root), before, "a non-UTF-8 --script-dir wrote something");
}

/// The three scripts are written together or not at all: one that cannot be replaced leaves the
/// others as they were.
#[test]
fn the_scripts_are_written_all_or_none() {
    let dir = tempfile::tempdir().unwrap();
    let scripts = dir.path().join("x/slurm");
    std::fs::create_dir_all(scripts.join("collect.sbatch")).unwrap();
    let out = common::bin()
        .current_dir(dir.path())
        .args(["slurm", "train", "--array", "2", "--overwrite", "--", "--out", "x"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("collect.sbatch") && stderr.contains("directory"), "{stderr}");
    let left: Vec<_> =
        std::fs::read_dir(&scripts).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(left, ["collect.sbatch"], "a script was written beside the refused one");
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
