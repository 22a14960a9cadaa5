//! Saved state is input: `soup --resume RUN_DIR` reads `job.json`, the finished reports and an
//! interrupted LS/PLS's `state-<strategy>.json`, and a tampered (or corrupted) run directory must
//! get what any hostile file gets. Each case starts from a real stopped run (held at an epoch by
//! `GNN_SOUP_TEST_HOLD_AT_STEP` and stopped with SIGTERM), edits one saved file, and resumes it:
//! the tool must exit 1 with one message naming the file and the problem, never panic, stay under
//! a 1 GiB data limit, end before a deadline, and leave every file of the run as it was. An
//! untampered stopped run still resumes (with early stopping and Adam's state for LS, SGD for PLS;
//! `tests/signals.rs` checks the default settings against an uninterrupted run).

mod common;

use std::collections::BTreeMap;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

/// Three tiny GCN ingredients on a small synthetic graph (nothing to download).
fn ingredients() -> PathBuf {
    common::shared_fixture("resume-ingredients", |dir| {
        let out = dir.join("run");
        let (code, stderr) = run(
            &[
                "train",
                "--dataset",
                "csbm:nodes=400,features=8,classes=3,train=60,val=100,test=200",
                "--ingredients",
                "3",
                "--epochs",
                "3",
                "--hidden",
                "8",
                "--device",
                "cpu",
                "--out",
                out.to_str().unwrap(),
            ],
            dir,
            &[],
        );
        assert_eq!(code, Some(0), "{stderr}");
    })
    .join("run")
}

/// LS and PLS run 30 epochs; the stopped runs are held and signalled at this one.
const EPOCHS: usize = 30;
const HOLD_AT: usize = 6;

/// The run directory of a soup stopped by SIGTERM at epoch [`HOLD_AT`] of its learned strategy,
/// made once per test build. `ls`: uniform and greedy finished first (their results are what a
/// refused resume must leave alone), LS with Adam (`auto`) and early stopping on held-out nodes;
/// `pls`: PLS with the paper's SGD, 4 parts, 2 sampled per epoch.
fn stopped(kind: &str) -> PathBuf {
    common::shared_fixture(&format!("stopped-{kind}"), |dir| {
        let recipe = dir.join("recipe.toml");
        let text = match kind {
            "ls" => format!(
                "strategy = [\"uniform\", \"greedy\", \"ls\"]\n[ls]\nepochs = {EPOCHS}\noptimizer = \"auto\"\nholdout = 0.2\npatience = 50\nseed = 1\n"
            ),
            _ => format!(
                "strategy = \"pls\"\n[pls]\nepochs = {EPOCHS}\nlr = 5.0\nparts = 4\nsample = 2\nseed = 1\n"
            ),
        };
        std::fs::write(&recipe, text).unwrap();
        let out = dir.join("run");
        let ing = ingredients();
        let args = [
            "soup",
            "--recipe",
            recipe.to_str().unwrap(),
            "--ingredients",
            ing.to_str().unwrap(),
            "--device",
            "cpu",
            "--out",
            out.to_str().unwrap(),
        ];
        let mut child = command(&args, dir, &[("GNN_SOUP_TEST_HOLD_AT_STEP", &HOLD_AT.to_string())])
            .spawn()
            .expect("gnn-soup did not start");
        let held = format!("holding at step {HOLD_AT}");
        let start = Instant::now();
        while !std::fs::read_to_string(out.join("events.jsonl")).is_ok_and(|t| t.contains(&held)) {
            if start.elapsed() > Duration::from_secs(120) {
                let _ = child.kill();
                let _ = child.wait();
                panic!("{kind}: the soup never reached epoch {HOLD_AT}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        // SAFETY: kill(2) on a child this test started and has not reaped.
        assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGTERM) }, 0);
        let (code, stderr) = common::wait_deadline(&mut child, Duration::from_secs(60))
            .expect("the stopped soup did not end");
        assert_eq!(code, Some(3), "{kind}: stopped with a partial result:\n{stderr}");
        let state: Value = read_json(&out.join(format!("state-{kind}.json")));
        assert_eq!(state["next_epoch"], json!(HOLD_AT), "{kind}: stopped where it was held");
    })
    .join("run")
}

/// gnn-soup with `args`, its caches and crash reports under `home`, stdout discarded, stderr piped,
/// under a 1 GiB data-segment limit (an input that makes it allocate beyond that fails the case).
fn command(args: &[&str], home: &Path, env: &[(&str, &str)]) -> std::process::Command {
    let mut cmd = common::bin();
    cmd.args(args)
        .env("XDG_CACHE_HOME", home.join("cache"))
        .env("XDG_STATE_HOME", home.join("state"))
        .env("NO_COLOR", "1")
        .env_remove("GNN_SOUP_TEST_HOLD_AT_STEP")
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    // SAFETY: setrlimit is async-signal-safe; called in the child between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            let limit = libc::rlimit { rlim_cur: 1 << 30, rlim_max: 1 << 30 };
            if libc::setrlimit(libc::RLIMIT_DATA, &limit) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    cmd
}

/// Runs gnn-soup to its end, or kills it after 60 s: (exit code, stderr).
fn run(args: &[&str], home: &Path, env: &[(&str, &str)]) -> (Option<i32>, String) {
    let mut child = command(args, home, env).spawn().expect("gnn-soup did not start");
    common::wait_deadline(&mut child, Duration::from_secs(60))
        .unwrap_or((None, "(killed after 60 s: it hung)".into()))
}

fn read_json(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn write_json(path: &Path, v: &Value) {
    std::fs::write(path, serde_json::to_vec(v).unwrap()).unwrap();
}

/// A copy of the stopped run `kind` in `to`.
fn copy_run(kind: &str, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(stopped(kind)).unwrap().flatten() {
        std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
    }
}

/// Every entry of `dir` but `events.jsonl` (which a resume appends to), with its bytes (or what
/// it is, when it is not a regular file).
fn contents(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .filter(|e| e.file_name() != "events.jsonl")
        .map(|e| {
            let m = std::fs::symlink_metadata(e.path()).unwrap();
            let bytes = if m.is_file() {
                std::fs::read(e.path()).unwrap()
            } else {
                format!("{:?}", m.file_type()).into_bytes()
            };
            (e.file_name().to_string_lossy().into_owned(), bytes)
        })
        .collect()
}

/// Edits the JSON file `name` of the run in `dir`.
fn edit(dir: &Path, name: &str, f: impl FnOnce(&mut Value)) {
    let path = dir.join(name);
    let mut v = read_json(&path);
    f(&mut v);
    write_json(&path, &v);
}

type Tamper = Box<dyn Fn(&Path)>;

struct Case {
    name: &'static str,
    /// The stopped run it starts from: "ls" or "pls".
    run: &'static str,
    tamper: Tamper,
    /// The file the message must name.
    file: &'static str,
    /// What the message must say about it.
    says: String,
}

fn state(kind: &'static str, f: impl Fn(&mut Value) + 'static) -> Tamper {
    Box::new(move |d: &Path| edit(d, &format!("state-{kind}.json"), &f))
}

fn job(f: impl Fn(&mut Value) + 'static) -> Tamper {
    Box::new(move |d: &Path| edit(d, "job.json", &f))
}

/// The state's vectors (logits, best weights, Adam's moments for the logits) with `n` values.
fn resize_vectors(s: &mut Value, n: usize) {
    let resize = |v: &mut Value| {
        let first = v[0].clone();
        *v = Value::Array(vec![first; n]);
    };
    resize(&mut s["logits"]);
    if s["best"].is_array() {
        resize(&mut s["best"][2]);
    }
    if s["adam"].is_object() {
        resize(&mut s["adam"]["m"][0]);
        resize(&mut s["adam"]["v"][0]);
    }
}

fn cases() -> Vec<Case> {
    let case = |name, run, tamper, file, says: &str| Case {
        name,
        run,
        tamper,
        file,
        says: says.to_string(),
    };
    vec![
        // --- the tamperings of the issue ---
        case(
            "best weights of the wrong length",
            "ls",
            state("ls", |s| {
                s["best"][2].as_array_mut().unwrap().pop();
            }),
            "state-ls.json",
            "the best epoch's weights has",
        ),
        case(
            "Adam's moments of the wrong length",
            "ls",
            state("ls", |s| s["adam"]["m"][0].as_array_mut().unwrap().push(json!(0.5))),
            "state-ls.json",
            "Adam's m for the logits has",
        ),
        case(
            "logits of the wrong length",
            "ls",
            state("ls", |s| {
                s["logits"].as_array_mut().unwrap().pop();
            }),
            "state-ls.json",
            "logits has",
        ),
        case(
            "negative seconds",
            "ls",
            state("ls", |s| s["history"][HOLD_AT - 1]["seconds"] = json!(-5.0)),
            "state-ls.json",
            "seconds -5 is not a time the fit has run",
        ),
        case(
            "huge seconds",
            "pls",
            state("pls", |s| {
                let last = s["history"].as_array().unwrap().len() - 1;
                s["history"][last]["seconds"] = json!(1e300)
            }),
            "state-pls.json",
            "seconds 1e300 is not a time the fit has run",
        ),
        case(
            "a history of millions of records",
            "ls",
            Box::new(|d: &Path| {
                let path = d.join("state-ls.json");
                let mut s = read_json(&path);
                s["history"] = json!([]);
                let text = serde_json::to_string(&s).unwrap();
                let record = r#"{"epoch":0,"loss":1.0,"val_acc":0.5,"select_acc":0.5,"lr":0.5,"seconds":0.0}"#;
                let n = 1_500_000;
                let mut many = String::with_capacity(n * (record.len() + 1) + 16);
                many.push_str("\"history\":[");
                for i in 0..n {
                    if i > 0 {
                        many.push(',');
                    }
                    many.push_str(record);
                }
                many.push(']');
                std::fs::write(&path, text.replace("\"history\":[]", &many)).unwrap();
            }),
            "state-ls.json",
            "such a file can sensibly hold",
        ),
        case(
            "more records than epochs, within the size bound",
            "ls",
            state("ls", |s| {
                let one = s["history"][0].clone();
                s["history"] = Value::Array(vec![one; 5000]);
            }),
            "state-ls.json",
            &format!("history has 5000 records but next_epoch is {HOLD_AT}"),
        ),
        case(
            "next_epoch of 10^12 (PLS would replay that many draws)",
            "pls",
            state("pls", |s| s["next_epoch"] = json!(1_000_000_000_000u64)),
            "state-pls.json",
            "next_epoch is 1000000000000 but the fit has 30 epochs",
        ),
        case(
            "complete after a third of its epochs",
            "ls",
            state("ls", |s| s["next_epoch"] = json!(EPOCHS)),
            "state-ls.json",
            "next_epoch is 30 but the fit has 30 epochs",
        ),
        case(
            "PLS complete after a third of its epochs",
            "pls",
            state("pls", |s| s["next_epoch"] = json!(EPOCHS)),
            "state-pls.json",
            "a finished fit leaves no state",
        ),
        case(
            "no strategies in job.json",
            "ls",
            job(|j| j["strategies"] = json!([])),
            "job.json",
            "lists no strategy to run",
        ),
        // --- more of the same class ---
        case(
            "no ingredients in job.json",
            "ls",
            job(|j| j["ingredients"] = json!([])),
            "job.json",
            "lists no ingredients",
        ),
        case(
            "zero epochs in job.json",
            "ls",
            job(|j| j["strategies"][2]["epochs"] = json!(0)),
            "job.json",
            "--epochs: expected a whole number",
        ),
        case(
            "R > K in job.json",
            "pls",
            job(|j| j["strategies"][0]["sample"] = json!(9)),
            "job.json",
            "cannot exceed K",
        ),
        case(
            "a strategy listed twice in job.json",
            "ls",
            job(|j| {
                let ls = j["strategies"][2].clone();
                j["strategies"].as_array_mut().unwrap().push(ls);
            }),
            "job.json",
            "lists ls twice",
        ),
        case(
            "job.json not JSON",
            "ls",
            Box::new(|d: &Path| {
                std::fs::write(d.join("job.json"), b"{\"ingredients\": [").unwrap()
            }),
            "job.json",
            "unreadable",
        ),
        case(
            "a truncated state",
            "ls",
            Box::new(|d: &Path| {
                let p = d.join("state-ls.json");
                let bytes = std::fs::read(&p).unwrap();
                std::fs::write(&p, &bytes[..bytes.len() / 2]).unwrap();
            }),
            "state-ls.json",
            "not a saved LS/PLS state gnn-soup can read",
        ),
        case(
            "a state that is a FIFO",
            "ls",
            Box::new(|d: &Path| {
                let p = d.join("state-ls.json");
                std::fs::remove_file(&p).unwrap();
                let c = std::ffi::CString::new(p.to_str().unwrap()).unwrap();
                // SAFETY: mkfifo on a path this test owns.
                assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
            }),
            "state-ls.json",
            "not a regular file",
        ),
        case(
            "a state linked to /dev/zero",
            "pls",
            Box::new(|d: &Path| {
                let p = d.join("state-pls.json");
                std::fs::remove_file(&p).unwrap();
                std::os::unix::fs::symlink("/dev/zero", &p).unwrap();
            }),
            "state-pls.json",
            "not a regular file",
        ),
        case(
            "another number of ingredients",
            "ls",
            state("ls", |s| {
                let groups = s["groups"].as_u64().unwrap() as usize;
                s["ingredients"] = json!(2);
                resize_vectors(s, groups * 2);
            }),
            "state-ls.json",
            "mixes 2 ingredients; this run has 3",
        ),
        case(
            // Consistent in itself: only the loaded ingredients tell it is wrong.
            "another number of groups of weights",
            "ls",
            state("ls", |s| {
                assert_ne!(s["groups"], json!(1));
                s["groups"] = json!(1);
                resize_vectors(s, 3);
            }),
            "state-ls.json",
            "mixes 1 groups of weights; this run has",
        ),
        case(
            "an infinite logit",
            "ls",
            state("ls", |s| s["logits"][0] = json!(1e39)),
            "state-ls.json",
            "logits: value 0 is inf",
        ),
        case(
            "an accuracy of 7",
            "ls",
            state("ls", |s| s["history"][2]["val_acc"] = json!(7.0)),
            "state-ls.json",
            "val_acc 7 is not an accuracy",
        ),
        case(
            "a best epoch after next_epoch",
            "ls",
            state("ls", |s| s["best"][1] = json!(HOLD_AT + 3)),
            "state-ls.json",
            "the best epoch 9 is not in the history",
        ),
        case(
            "since_best beyond the history",
            "ls",
            state("ls", |s| s["since_best"] = json!(1_000_000)),
            "state-ls.json",
            "since_best is 1000000 but",
        ),
        case(
            "no Adam state for an auto fit",
            "ls",
            state("ls", |s| {
                s.as_object_mut().unwrap().remove("adam");
            }),
            "state-ls.json",
            "holds no Adam state but this run's optimizer is auto",
        ),
        case(
            "Adam's step count off",
            "ls",
            state("ls", |s| s["adam"]["steps"] = json!(u64::MAX)),
            "state-ls.json",
            "Adam has taken 18446744073709551615 steps but the history has 6 records",
        ),
        case(
            "Adam state for an SGD fit",
            "pls",
            state("pls", |s| {
                let n = s["logits"].as_array().unwrap().len();
                s["adam"] =
                    json!({"steps": 1, "m": [vec![0.0; n], [0.0]], "v": [vec![0.0; n], [0.0]]});
            }),
            "state-pls.json",
            "holds Adam's moments but this run's optimizer is sgd",
        ),
        case(
            "PLS records out of order",
            "pls",
            state("pls", |s| {
                let h = s["history"].as_array_mut().unwrap();
                h.swap(0, 1);
            }),
            "state-pls.json",
            "out of order",
        ),
        case(
            "a finished report of another strategy",
            "ls",
            Box::new(|d: &Path| {
                std::fs::copy(d.join("report-greedy.json"), d.join("report-uniform.json")).unwrap();
            }),
            "report-uniform.json",
            "a report of greedy, not uniform",
        ),
        case(
            "a report that is a directory",
            "ls",
            Box::new(|d: &Path| {
                std::fs::remove_file(d.join("report-ls.json")).unwrap();
                std::fs::create_dir(d.join("report-ls.json")).unwrap();
            }),
            "report-ls.json",
            "a directory",
        ),
    ]
}

#[test]
fn a_tampered_run_directory_is_refused_by_name_and_left_as_it_was() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path();
    let mut failures = Vec::new();
    for (i, c) in cases().into_iter().enumerate() {
        let dir = home.join(format!("case-{i}"));
        copy_run(c.run, &dir);
        (c.tamper)(&dir);
        let before = contents(&dir);
        let started = Instant::now();
        let (code, stderr) =
            run(&["soup", "--resume", dir.to_str().unwrap(), "--device", "cpu"], home, &[]);
        let took = started.elapsed();
        let named = format!("{}: ", dir.join(c.file).display());
        let problems: Vec<String> = [
            (code != Some(1)).then(|| format!("exit code {code:?}, not 1")),
            (!stderr.contains(&named)).then(|| format!("the message does not name {named:?}")),
            (!stderr.contains(&c.says)).then(|| format!("the message does not say {:?}", c.says)),
            ["panicked", "RUST_BACKTRACE", "stack backtrace", "internal error"]
                .iter()
                .find(|w| stderr.contains(*w))
                .map(|w| format!("stderr says {w:?}")),
            (took > Duration::from_secs(30)).then(|| format!("took {took:?}")),
            (contents(&dir) != before).then(|| "the run directory changed".to_string()),
            home.join("state/gnn-soup/crashes")
                .exists()
                .then(|| "a crash report was written".to_string()),
        ]
        .into_iter()
        .flatten()
        .collect();
        if !problems.is_empty() {
            failures.push(format!(
                "{}: {}\n  stderr: {}",
                c.name,
                problems.join("; "),
                stderr.trim()
            ));
        }
        // One clear line (two for the groups, found once the ingredients are loaded: the job's
        // `failed:` event and the exit's `error:`), no progress noise.
        let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
        if !lines.iter().all(|l| l.starts_with("error: ") || l.starts_with("failed: "))
            || lines.len() > 2
        {
            failures.push(format!("{}: not one clear message:\n{stderr}", c.name));
        }
    }
    assert!(failures.is_empty(), "{} cases failed:\n{}", failures.len(), failures.join("\n"));
}

#[test]
fn an_untampered_stopped_run_still_resumes() {
    let tmp = tempfile::tempdir().unwrap();
    for kind in ["ls", "pls"] {
        let dir = tmp.path().join(kind);
        copy_run(kind, &dir);
        let before = contents(&dir);
        let (code, stderr) =
            run(&["soup", "--resume", dir.to_str().unwrap(), "--device", "cpu"], tmp.path(), &[]);
        assert_eq!(code, Some(0), "{kind}:\n{stderr}");
        assert!(stderr.contains(&format!("resuming at epoch {HOLD_AT}")), "{kind}:\n{stderr}");
        assert!(!dir.join(format!("state-{kind}.json")).exists(), "{kind}: the state goes");
        let report = read_json(&dir.join(format!("report-{kind}.json")));
        assert_eq!(report["partial"], json!(false), "{kind}");
        assert_eq!(report["history"].as_array().unwrap().len(), EPOCHS, "{kind}");
        if kind == "ls" {
            let after = contents(&dir);
            for kept in [
                "report-uniform.json",
                "soup-uniform.safetensors",
                "report-greedy.json",
                "soup-greedy.safetensors",
            ] {
                assert_eq!(after.get(kept), before.get(kept), "{kept} is kept as it was");
            }
            assert!(stderr.contains("uniform finished in the earlier run: kept"), "{stderr}");
        }
    }
}
