//! Signals and interruption: SIGINT, SIGTERM and SIGHUP (a dropped SSH connection) during LS, PLS
//! and GIS stop `soup` with the best soup so far and its report written and marked partial,
//! `events.jsonl` ending in that report, and exit status 3. An interrupted `train` is resumed by
//! the same command, and a stopped soup by `soup --resume`. The workbench, signalled in tmux
//! during LS, PLS or GIS, leaves the alternate screen, shows the cursor again and saves the run.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn ingredients() -> PathBuf {
    common::shared_fixture("signal-ingredients", |dir| {
        let (ok, _, stderr) = common::run_bin(&[
            "train",
            "--dataset",
            "csbm:nodes=600,train=60,val=200,test=200",
            "--ingredients",
            "3",
            "--epochs",
            "5",
            "--device",
            "cpu",
            "--out",
            dir.join("run").to_str().unwrap(),
        ]);
        assert!(ok, "{stderr}");
    })
    .join("run")
}

/// A started gnn-soup, killed if the test fails before it ends (no orphan keeps training).
struct Running(Option<Child>);

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(c) = &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn spawn(args: &[&str], cache: &Path) -> Running {
    spawn_with(args, cache, &[])
}

fn spawn_with(args: &[&str], cache: &Path, env: &[(&str, &str)]) -> Running {
    let mut command = common::bin();
    command.args(args).env("XDG_CACHE_HOME", cache).envs(env.iter().copied());
    Running(Some(
        command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("gnn-soup did not start"),
    ))
}

/// Strategies are held at this step (`GNN_SOUP_TEST_HOLD_AT_STEP`: an LS/PLS epoch, a GIS
/// interpolation point) and signalled there, so where they stop does not depend on the machine.
const HOLD: (&str, &str) = ("GNN_SOUP_TEST_HOLD_AT_STEP", "3");
const HELD: &str = "holding at step 3";

fn signal(child: &Running, sig: i32) {
    // SAFETY: kill(2) on a child this test started and has not reaped.
    assert_eq!(unsafe { libc::kill(child.0.as_ref().unwrap().id() as i32, sig) }, 0);
}

/// Waits (up to `limit`) until `path` holds `text`.
fn wait_for_text(path: &Path, text: &str, limit: Duration) {
    let start = Instant::now();
    let holds = |bytes: Vec<u8>| bytes.windows(text.len()).any(|w| w == text.as_bytes());
    while !std::fs::read(path).is_ok_and(holds) {
        assert!(start.elapsed() < limit, "{} never showed {text:?}", path.display());
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The exit code (None: killed) and stderr, waiting at most `limit`.
fn finish(mut running: Running, limit: Duration) -> (Option<i32>, String) {
    let mut child = running.0.take().unwrap();
    common::wait_deadline(&mut child, limit)
        .unwrap_or_else(|| panic!("still running {limit:?} after the signal"))
}

#[test]
fn a_signal_during_ls_pls_or_gis_saves_the_partial_soup_and_exits_3() {
    let run = ingredients();
    let tmp = tempfile::tempdir().unwrap();
    // Budgets no machine finishes; the signal is sent while the strategy is held mid-way.
    let cases: [(&str, &[&str], i32, &str); 3] = [
        ("ls", &["--epochs", "1000000"], libc::SIGTERM, "SIGTERM"),
        ("pls", &["--epochs", "1000000", "--parts", "4", "--sample", "2"], libc::SIGHUP, "SIGHUP"),
        ("gis", &["--granularity", "1000"], libc::SIGINT, "SIGINT"),
    ];
    for (strategy, extra, sig, sig_name) in cases {
        let out = tmp.path().join(strategy);
        let mut args = vec![
            "soup",
            "--ingredients",
            run.to_str().unwrap(),
            "--strategy",
            strategy,
            "--device",
            "cpu",
            "--out",
            out.to_str().unwrap(),
        ];
        args.extend(extra);
        let child = spawn_with(&args, &tmp.path().join("cache"), &[HOLD]);
        let events = out.join("events.jsonl");
        wait_for_text(&events, HELD, Duration::from_secs(120));
        signal(&child, sig);
        let (code, stderr) = finish(child, Duration::from_secs(30));
        assert_eq!(
            code,
            Some(3),
            "{strategy} after {sig_name}: exit status 3 (interrupted, partial result):\n{stderr}"
        );
        assert!(
            stderr.contains("interrupted: stopped before the end") && !stderr.contains("panicked"),
            "{stderr}"
        );
        let report: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(out.join(format!("report-{strategy}.json"))).unwrap(),
        )
        .unwrap();
        assert_eq!(report["partial"], true, "{strategy}: the report says partial");
        assert!(
            out.join(format!("soup-{strategy}.safetensors")).is_file(),
            "{strategy}: the best soup so far is saved"
        );
        let log = std::fs::read_to_string(&events).unwrap();
        let last: serde_json::Value = serde_json::from_str(log.lines().last().unwrap()).unwrap();
        assert_eq!(
            (last["event"].as_str(), last["report"]["partial"].as_bool()),
            (Some("finished"), Some(true)),
            "{strategy}: events.jsonl ends with the partial report"
        );
    }
}

/// Ctrl-C pressed twice (or `timeout` forwarding a second signal) while LS is inside a step:
/// the process still ends cleanly, with the best soup so far saved and exit status 3; it used
/// to exit at once under libtorch, which then panicked, and saved nothing.
#[test]
fn a_second_signal_still_saves_the_partial_soup() {
    let run = ingredients();
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("ls");
    let args = [
        "soup",
        "--ingredients",
        run.to_str().unwrap(),
        "--strategy",
        "ls",
        "--epochs",
        "1000000",
        "--device",
        "cpu",
        "--out",
        out.to_str().unwrap(),
    ];
    // Held at step 3 until two signals arrived: the second is sent once the first was handled
    // (two sent at once may reach the process as one).
    let held = [HOLD, ("GNN_SOUP_TEST_HOLD_UNTIL_SIGNALS", "2")];
    let child = spawn_with(&args, &tmp.path().join("cache"), &held);
    let events = out.join("events.jsonl");
    wait_for_text(&events, HELD, Duration::from_secs(120));
    signal(&child, libc::SIGINT);
    wait_for_text(&events, "held after signal 1", Duration::from_secs(60));
    signal(&child, libc::SIGINT);
    let (code, stderr) = finish(child, Duration::from_secs(30));
    assert_eq!(code, Some(3), "{stderr}");
    assert!(stderr.contains("still stopping") && !stderr.contains("panicked"), "{stderr}");
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("report-ls.json")).unwrap())
            .unwrap();
    assert_eq!(report["partial"], true);
    assert!(out.join("soup-ls.safetensors").is_file(), "the best soup so far is saved");
}

/// `soup --resume RUN_DIR` after a SIGTERM continues LS and PLS from their saved state and ends
/// on the weights an uninterrupted run with the same seed ends on. The fit is held at a chosen
/// epoch and signalled there.
#[test]
fn a_stopped_ls_or_pls_resumes_to_the_uninterrupted_result() {
    let run = ingredients();
    let tmp = tempfile::tempdir().unwrap();
    for (strategy, epochs, hold_at) in [("ls", "300", 137u64), ("pls", "200", 71)] {
        let out = |name: &str| tmp.path().join(format!("{strategy}-{name}"));
        let args = |dir: &Path| -> Vec<String> {
            [
                "soup",
                "--ingredients",
                run.to_str().unwrap(),
                "--strategy",
                strategy,
                "--epochs",
                epochs,
                "--parts",
                "4",
                "--sample",
                "2",
                "--seed",
                "3",
                "--device",
                "cpu",
                "--out",
                dir.to_str().unwrap(),
            ]
            .iter()
            .map(|s| s.to_string())
            .collect()
        };
        let stopped = out("stopped");
        let a = args(&stopped);
        let hold = hold_at.to_string();
        let child = spawn_with(
            &a.iter().map(String::as_str).collect::<Vec<_>>(),
            &tmp.path().join("cache"),
            &[(HOLD.0, &hold)],
        );
        wait_for_text(
            &stopped.join("events.jsonl"),
            &format!("holding at step {hold_at}"),
            Duration::from_secs(120),
        );
        signal(&child, libc::SIGTERM);
        let (code, stderr) = finish(child, Duration::from_secs(30));
        assert_eq!(code, Some(3), "{stderr}");
        let state: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(stopped.join(format!("state-{strategy}.json"))).unwrap(),
        )
        .unwrap();
        let at = state["next_epoch"].as_u64().unwrap();
        assert_eq!(at, hold_at, "{strategy}: stopped where it was held");

        let (ok, _, stderr) =
            common::run_bin(&["soup", "--resume", stopped.to_str().unwrap(), "--device", "cpu"]);
        assert!(ok && stderr.contains(&format!("resuming at epoch {at}")), "{stderr}");
        assert!(
            !stopped.join(format!("state-{strategy}.json")).exists(),
            "the state goes once the fit is done"
        );
        let whole = out("whole");
        let w = args(&whole);
        let (ok, _, stderr) = common::run_bin(&w.iter().map(String::as_str).collect::<Vec<_>>());
        assert!(ok, "{stderr}");
        let resumed =
            gnn_soup::checkpoint::load(&stopped.join(format!("soup-{strategy}.safetensors")))
                .unwrap();
        let uninterrupted =
            gnn_soup::checkpoint::load(&whole.join(format!("soup-{strategy}.safetensors")))
                .unwrap();
        for (name, t) in &uninterrupted.params {
            let diff = (t - &resumed.params[name]).abs().max().double_value(&[]);
            assert!(diff <= 1e-6, "{strategy} {name}: the resumed soup differs by {diff}");
        }
        let report: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(stopped.join(format!("report-{strategy}.json"))).unwrap(),
        )
        .unwrap();
        assert_eq!(
            (report["partial"].as_bool(), report["history"].as_array().unwrap().len()),
            (Some(false), epochs.parse().unwrap())
        );
    }
}

#[test]
fn an_interrupted_train_is_resumed_by_the_same_command() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("run");
    let args = [
        "train",
        "--dataset",
        "csbm",
        "--ingredients",
        "3",
        "--epochs",
        "100000",
        "--device",
        "cpu",
        "--out",
        out.to_str().unwrap(),
    ];
    let child = spawn(&args, &tmp.path().join("cache"));
    // 100,000 epochs: no machine finishes the first ingredient before the signal.
    wait_for_text(&out.join("init.safetensors"), "gnn_soup", Duration::from_secs(60));
    signal(&child, libc::SIGTERM);
    let (code, stderr) = finish(child, Duration::from_secs(30));
    assert_eq!(code, Some(3), "{stderr}");
    assert!(
        stderr.contains("0 of 3 ingredients trained")
            && stderr.contains("run the same command again"),
        "{stderr}"
    );
    assert!(!out.join("manifest.json").exists() && !out.join("ingredient-00.safetensors").exists());
    // The same command (fewer epochs would be another run: refused) resumes; here it finishes
    // the three with a short budget by running it with the same settings but a quick stop.
    let (ok, _, stderr) = common::run_bin(&[
        "train",
        "--dataset",
        "csbm",
        "--ingredients",
        "3",
        "--epochs",
        "5",
        "--device",
        "cpu",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(
        !ok && stderr.contains("init.safetensors is from another training run"),
        "other settings are not mixed in: {stderr}"
    );
    let quick = tmp.path().join("quick");
    let short = [
        "train",
        "--dataset",
        "csbm",
        "--ingredients",
        "3",
        "--epochs",
        "3",
        "--device",
        "cpu",
        "--out",
        quick.to_str().unwrap(),
    ];
    let (ok, _, stderr) = common::run_bin(&short);
    assert!(ok, "{stderr}");
    // Take ingredient 2 away and drop the manifest, as an interruption after two would leave it.
    std::fs::remove_file(quick.join("ingredient-02.safetensors")).unwrap();
    std::fs::remove_file(quick.join("manifest.json")).unwrap();
    let kept = std::fs::read(quick.join("ingredient-00.safetensors")).unwrap();
    let (ok, _, stderr) = common::run_bin(&short);
    assert!(
        ok && stderr.contains("ingredient 1/3: kept from the interrupted run")
            && stderr.contains("ingredient 3/3: val"),
        "{stderr}"
    );
    assert_eq!(
        std::fs::read(quick.join("ingredient-00.safetensors")).unwrap(),
        kept,
        "finished ingredients are kept as they were"
    );
    assert!(
        quick.join("manifest.json").is_file() && quick.join("ingredient-02.safetensors").is_file()
    );
}

#[test]
fn the_workbench_signalled_in_tmux_restores_the_terminal_and_saves_the_run() {
    let found = Command::new("tmux").arg("-V").output().is_ok_and(|o| o.status.success());
    assert!(
        found,
        "this test drives the workbench through tmux: install tmux (apt-get install tmux)"
    );
    let run = ingredients();
    let tmp = tempfile::tempdir().unwrap();
    let tmux = |args: &[&str]| {
        String::from_utf8_lossy(&Command::new("tmux").args(args).output().unwrap().stdout)
            .trim()
            .to_string()
    };
    let cases: [(&str, &str, i32); 3] = [
        ("ls", "--epochs 1000000", libc::SIGTERM),
        ("pls", "--epochs 1000000 --parts 4 --sample 2", libc::SIGHUP),
        ("gis", "--granularity 1000", libc::SIGINT),
    ];
    for (strategy, flags, sig) in cases {
        let out = tmp.path().join(format!("tui-{strategy}"));
        let name = format!("gnn-soup-signal-{}-{strategy}", std::process::id());
        let command = format!(
            "env XDG_CACHE_HOME={cache} {hold}={step} {bin} tui --ingredients {ing} --strategy {strategy} {flags} --device cpu --run --out {out}; echo EXITED $?; sleep 60",
            hold = HOLD.0,
            step = HOLD.1,
            cache = tmp.path().join("cache").display(),
            bin = env!("CARGO_BIN_EXE_gnn-soup"),
            ing = run.display(),
            out = out.display(),
        );
        let started = Command::new("tmux")
            .args(["new-session", "-d", "-s", &name, "-x", "120", "-y", "36", &command])
            .output()
            .unwrap();
        assert!(started.status.success());
        let _cleanup = KillSession(name.clone());
        wait_for_text(&out.join("events.jsonl"), HELD, Duration::from_secs(120));
        assert_eq!(
            tmux(&["display", "-p", "-t", &name, "#{alternate_on}"]),
            "1",
            "{strategy}: the workbench is on the alternate screen"
        );
        let pid: i32 = tmux(&["display", "-p", "-t", &name, "#{pane_pid}"]).parse().unwrap();
        // The pane runs `sh -c "env ... gnn-soup ..."`: signal gnn-soup itself.
        let child = Command::new("pgrep").args(["-P", &pid.to_string()]).output().unwrap();
        let gnn: i32 = String::from_utf8_lossy(&child.stdout)
            .trim()
            .lines()
            .next()
            .expect("gnn-soup runs in the pane")
            .parse()
            .unwrap();
        // SAFETY: kill(2) on the process this test started in the pane.
        assert_eq!(unsafe { libc::kill(gnn, sig) }, 0);
        let start = Instant::now();
        while !tmux(&["capture-pane", "-p", "-t", &name]).contains("EXITED") {
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "{strategy}: the workbench did not end after signal {sig}:\n{}",
                tmux(&["capture-pane", "-p", "-t", &name])
            );
            std::thread::sleep(Duration::from_millis(200));
        }
        let screen = tmux(&["capture-pane", "-p", "-t", &name]);
        assert!(screen.contains("EXITED 3"), "{strategy}: exit status 3:\n{screen}");
        assert_eq!(
            tmux(&["display", "-p", "-t", &name, "#{alternate_on}"]),
            "0",
            "{strategy}: the alternate screen is left"
        );
        assert_eq!(
            tmux(&["display", "-p", "-t", &name, "#{cursor_flag}"]),
            "1",
            "{strategy}: the cursor is shown again"
        );
        let report: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(out.join(format!("report-{strategy}.json"))).unwrap(),
        )
        .unwrap();
        assert_eq!(report["partial"], true, "{strategy}");
    }
}

struct KillSession(String);

impl Drop for KillSession {
    fn drop(&mut self) {
        let _ = Command::new("tmux").args(["kill-session", "-t", &self.0]).output();
    }
}
