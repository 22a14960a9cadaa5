//! End to end: the real binary in a tmux pane. Trains three tiny ingredients, opens the
//! workbench on them, selects them and LS with keys, starts it, waits for the result, and checks
//! the results table on screen against the report the run wrote.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

struct Session(String);

impl Session {
    fn tmux(&self, args: &[&str]) -> String {
        let out = Command::new("tmux").args(args).output().expect("tmux did not start");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
    fn keys(&self, keys: &[&str]) {
        for k in keys {
            self.tmux(&["send-keys", "-t", &self.0, k]);
            // one key at a time, as a person would type, so none is read as an escape sequence
            std::thread::sleep(Duration::from_millis(150));
        }
    }
    fn screen(&self) -> String {
        self.tmux(&["capture-pane", "-p", "-t", &self.0])
    }
    /// Waits until the pane shows `text`, or panics with what it shows.
    fn wait_for(&self, text: &str, timeout: Duration) -> String {
        let start = Instant::now();
        loop {
            let s = self.screen();
            if s.contains(text) {
                return s;
            }
            assert!(
                start.elapsed() < timeout,
                "waited {timeout:?} for {text:?}; the pane shows:\n{s}"
            );
            std::thread::sleep(Duration::from_millis(250));
        }
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        let _ = Command::new("tmux").args(["kill-session", "-t", &self.0]).output();
    }
}

#[test]
fn select_ingredients_and_ls_with_keys_and_read_the_results() {
    let found = Command::new("tmux").arg("-V").output().is_ok_and(|o| o.status.success());
    assert!(found, "this test drives the TUI through tmux: install tmux (apt-get install tmux)");
    let tmp = tempfile::tempdir().unwrap();
    let ingredients = tmp.path().join("ingredients");
    let run = tmp.path().join("run");
    let (ok, _, stderr) = common::run_bin(&[
        "train",
        "--dataset",
        "csbm:nodes=300,train=60,val=100,test=100",
        "--epochs",
        "5",
        "--ingredients",
        "3",
        "--device",
        "cpu",
        "--out",
        ingredients.to_str().unwrap(),
    ]);
    assert!(ok, "{stderr}");

    let name = format!("gnn-soup-e2e-{}", std::process::id());
    let session = Session(name.clone());
    let command = format!(
        "env XDG_CACHE_HOME={cache} {bin} tui --ingredients {ing} --device cpu --out {run}; echo EXITED $?; sleep 60",
        cache = tmp.path().join("cache").display(),
        bin = env!("CARGO_BIN_EXE_gnn-soup"),
        ing = ingredients.display(),
        run = run.display(),
    );
    let out = Command::new("tmux")
        .args(["new-session", "-d", "-s", &name, "-x", "120", "-y", "36", &command])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "tmux new-session failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );

    let s = session.wait_for("3 selected", Duration::from_secs(30));
    assert!(s.contains("ingredient-00 ") && s.contains("x the shared initial weights"), "{s}");
    // a: all -> none, a: none -> all; space on the first one drops it, space again takes it back
    session.keys(&["a"]);
    session.wait_for("0 selected", Duration::from_secs(5));
    session.keys(&["a"]);
    session.wait_for("3 selected", Duration::from_secs(5));
    // Into the form: strategy from "all" to "ls", 30 epochs, then Enter starts.
    session.keys(&["Tab", "Down", "Right"]);
    session.wait_for("< ls >", Duration::from_secs(5));
    session.keys(&["Down", "Down", "BSpace", "BSpace", "BSpace", "3", "0"]);
    let s = session.wait_for("epochs      30", Duration::from_secs(5));
    assert!(s.contains("ready: 3 ingredient(s), 1 strategy run(s)"), "{s}");
    session.keys(&["Enter"]);

    let s = session.wait_for("[done]", Duration::from_secs(120));
    let report: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(run.join("report-ls.json")).expect("the run wrote its report"),
    )
    .unwrap();
    assert_eq!(report["history"].as_array().unwrap().len(), 30, "30 epochs as typed");
    let (val, test) = (report["val_acc"].as_f64().unwrap(), report["test_acc"].as_f64().unwrap());
    let seconds = format!("{:.1}s", report["seconds"].as_f64().unwrap());
    let row = s
        .lines()
        .find(|l| (l.contains(" ls ") || l.contains(">ls ")) && l.contains(&seconds))
        .unwrap_or_else(|| panic!("no ls row with {seconds} in the results table:\n{s}"));
    assert!(
        row.contains(&format!("{:.2}%", 100.0 * val))
            && row.contains(&format!("{:.2}%", 100.0 * test)),
        "row {row:?} vs report {val} {test}\n{s}"
    );
    assert!(s.contains("ls on ") && s.contains("30/30"), "{s}");
    assert!(Path::new(&run.join("soup-ls.safetensors")).is_file());

    // q quits once the job is done; the comparison table is printed on the restored terminal.
    session.keys(&["q"]);
    let s = session.wait_for("EXITED 0", Duration::from_secs(15));
    assert!(s.contains("strategy") && s.contains("ls"), "{s}");
}
