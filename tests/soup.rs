//! The souping engine on Cora with 10 trained GCN ingredients: the properties the engine issue
//! names, checked against the paper's definitions.

mod common;

use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use gnn_soup::checkpoint;
use gnn_soup::data;
use gnn_soup::engine::{self, report::SoupReport, Event, JobSpec};
use gnn_soup::model::{self, Arch, GraphTensors};
use gnn_soup::soup::{InitKind, IngredientStack, SoupSettings, Strategy};
use gnn_soup::train::{train_ingredients, TrainConfig};
use tch::Device;

/// Ten GCN ingredients on Cora, trained once for this test binary.
fn ingredients() -> Option<&'static (tempfile::TempDir, Vec<PathBuf>)> {
    static ING: OnceLock<Option<(tempfile::TempDir, Vec<PathBuf>)>> = OnceLock::new();
    ING.get_or_init(|| {
        let dir = common::planetoid_dir()?;
        let g = data::load("cora", &common::data_opts(&dir)).unwrap();
        let tmp = tempfile::tempdir().unwrap();
        let cfg = TrainConfig { ingredients: 10, ..TrainConfig::defaults(Arch::Gcn) };
        let r = train_ingredients(&g, &cfg, Device::Cpu, tmp.path(), false, &mut |_| {}).unwrap();
        let paths = r.ingredients.into_iter().map(|i| i.path).collect();
        Some((tmp, paths))
    })
    .as_ref()
}

fn settings(strategy: Strategy) -> SoupSettings {
    SoupSettings::defaults(strategy, Arch::Gcn, "cora")
}

fn job(paths: &[PathBuf], strategies: Vec<SoupSettings>, out: Option<PathBuf>) -> JobSpec {
    JobSpec {
        ingredients: paths.to_vec(),
        dataset: None,
        data: common::data_opts(&common::planetoid_dir().unwrap()),
        strategies,
        device: Device::Cpu,
        out_dir: out,
        overwrite: false,
    }
}

fn run(paths: &[PathBuf], strategies: Vec<SoupSettings>, out: Option<PathBuf>) -> Vec<SoupReport> {
    let h = engine::spawn(job(paths, strategies, out));
    for _ in h.events.iter() {}
    h.join().unwrap()
}

#[test]
fn every_strategy_meets_the_papers_properties() {
    let Some((_, paths)) = ingredients() else { return };
    let out = tempfile::tempdir().unwrap();
    let all: Vec<SoupSettings> = Strategy::ALL.iter().map(|&s| settings(s)).collect();
    let reports = run(paths, all, Some(out.path().to_path_buf()));
    assert_eq!(reports.len(), 6);
    let best_val = reports[0].ingredients.iter().map(|i| i.val_acc).fold(0.0, f64::max);
    let mean_test = reports[0].ingredients.iter().map(|i| i.test_acc).sum::<f64>() / 10.0;
    let g = data::load("cora", &common::data_opts(&common::planetoid_dir().unwrap())).unwrap();
    let gt = GraphTensors::new(&g, Device::Cpu);
    for r in &reports {
        eprintln!("{}: val {:.4} test {:.4} ({:.2}s)", r.strategy, r.val_acc, r.test_acc, r.seconds);
        assert!(!r.partial);
        assert!(r.test_acc >= mean_test - 0.01, "{}: test {:.4} vs mean ingredient {:.4}", r.strategy, r.test_acc, mean_test);
        if matches!(r.strategy, Strategy::Greedy | Strategy::Gis) {
            assert!(r.val_acc >= best_val, "{}: val {:.4} below the best ingredient's {:.4}", r.strategy, r.val_acc, best_val);
        }
        if r.strategy.makes_soup() {
            // weights are convex combinations, one list per tensor
            assert_eq!(r.weights.len(), 4);
            for w in r.weights.values() {
                assert_eq!(w.len(), 10);
                assert!((w.iter().sum::<f64>() - 1.0).abs() < 1e-4 && w.iter().all(|&x| x >= 0.0));
            }
            // the saved soup reloads and evaluates to the reported accuracy exactly
            let ck = checkpoint::load(r.checkpoint.as_ref().unwrap()).unwrap();
            let acc = model::evaluate(&ck.meta.arch, &ck.params, &gt);
            assert_eq!((acc.val, acc.test), (r.val_acc, r.test_acc), "{}", r.strategy);
            assert_eq!(ck.meta.kind, checkpoint::CheckpointKind::Soup);
        }
        let report_file = engine::report_file(out.path(), r.strategy);
        let saved: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(report_file).unwrap()).unwrap();
        assert_eq!(saved["strategy"], r.strategy.name());
        assert!(saved["peak_rss_bytes"].as_u64().unwrap() > 0);
    }
    let ls = reports.iter().find(|r| r.strategy == Strategy::Ls).unwrap();
    assert_eq!(ls.history.len(), settings(Strategy::Ls).epochs);
    assert!(out.path().join(engine::EVENTS_FILE).is_file());
}

#[test]
fn ls_with_ones_and_no_epochs_is_the_uniform_soup() {
    let Some((_, paths)) = ingredients() else { return };
    let ls = SoupSettings { epochs: 0, init: InitKind::Ones, ..settings(Strategy::Ls) };
    let out = tempfile::tempdir().unwrap();
    let reports = run(paths, vec![settings(Strategy::Uniform), ls], Some(out.path().to_path_buf()));
    let a = checkpoint::load(reports[0].checkpoint.as_ref().unwrap()).unwrap();
    let b = checkpoint::load(reports[1].checkpoint.as_ref().unwrap()).unwrap();
    for (k, t) in &a.params {
        let diff = (t - &b.params[k]).abs().max().double_value(&[]);
        assert!(diff <= 1e-6, "{k}: {diff}");
    }
    assert_eq!(reports[0].val_acc, reports[1].val_acc);
}

#[test]
fn ls_training_loss_goes_down() {
    let Some((_, paths)) = ingredients() else { return };
    let ls = SoupSettings { dropout: false, ..settings(Strategy::Ls) };
    let r = &run(paths, vec![ls], None)[0];
    let (first, last) = (r.history[0].loss, r.history.last().unwrap().loss);
    assert!(last < first, "loss {first} -> {last}");
}

#[test]
fn pls_over_all_parts_takes_the_same_first_step_as_ls() {
    let Some((_, paths)) = ingredients() else { return };
    let ls = SoupSettings { epochs: 1, dropout: false, init: InitKind::Normal, seed: 7, ..settings(Strategy::Ls) };
    let pls = SoupSettings { strategy: Strategy::Pls, parts: 4, sample: 4, lr: ls.lr, ..ls.clone() };
    let reports = run(paths, vec![ls, pls], None);
    let (a, b) = (&reports[0].weights, &reports[1].weights);
    // the step moved the weights away from their initialisation
    assert!(a.values().flatten().any(|&w| (w - 0.1).abs() > 1e-4));
    for (k, wa) in a {
        for (x, y) in wa.iter().zip(&b[k]) {
            assert!((x - y).abs() < 1e-5, "{k}: LS {x} vs PLS {y}");
        }
    }
    assert!((reports[0].history[0].loss - reports[1].history[0].loss).abs() < 1e-5);
}

#[test]
fn cancelling_ls_returns_quickly_with_a_partial_report() {
    let Some((_, paths)) = ingredients() else { return };
    let out = tempfile::tempdir().unwrap();
    let ls = SoupSettings { epochs: 1_000_000, ..settings(Strategy::Ls) };
    let h = engine::spawn(job(paths, vec![ls], Some(out.path().to_path_buf())));
    let mut epochs = 0;
    let mut cancelled_at = None;
    let mut finished = None;
    for e in h.events.iter() {
        match e {
            Event::Epoch { .. } => {
                epochs += 1;
                if epochs == 5 {
                    h.cancel();
                    cancelled_at = Some(Instant::now());
                }
            }
            Event::Finished { report } => finished = Some((Instant::now(), report)),
            _ => {}
        }
    }
    let (at, report) = finished.expect("a report after cancelling");
    let waited = at - cancelled_at.unwrap();
    assert!(waited < Duration::from_secs(1), "took {waited:?} to stop");
    assert!(report.partial);
    let saved: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(engine::report_file(out.path(), Strategy::Ls)).unwrap()).unwrap();
    assert_eq!(saved["partial"], true);
    assert!(h.join().is_ok());
}

#[test]
fn foreign_ingredient_is_refused_with_its_name() {
    let Some((_, paths)) = ingredients() else { return };
    let other = tempfile::tempdir().unwrap();
    let g = data::load("cora", &common::data_opts(&common::planetoid_dir().unwrap())).unwrap();
    let cfg = TrainConfig { ingredients: 1, epochs: 2, seed: 99, ..TrainConfig::defaults(Arch::Gcn) };
    let foreign = train_ingredients(&g, &cfg, Device::Cpu, other.path(), false, &mut |_| {}).unwrap().ingredients[0].path.clone();
    let mut mixed = paths[..3].to_vec();
    mixed.push(foreign.clone());
    let err = format!("{:#}", IngredientStack::load(&mixed, Device::Cpu).err().unwrap());
    assert!(err.contains(&foreign.display().to_string()) && err.contains("initial weights"), "{err}");
}

#[test]
fn soup_cli_json_has_the_documented_fields() {
    let Some((dir, _)) = ingredients() else { return };
    let out = tempfile::tempdir().unwrap();
    let planetoid = common::planetoid_dir().unwrap();
    let (ok, stdout, stderr) = common::run_bin(&[
        "soup", "--ingredients", dir.path().to_str().unwrap(), "--strategy", "gis", "--granularity", "5", "--device", "cpu",
        "--data-dir", planetoid.to_str().unwrap(), "--out", out.path().to_str().unwrap(), "--json",
    ]);
    assert!(ok, "{stderr}");
    let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    for k in ["strategy", "val_acc", "test_acc", "seconds", "peak_rss_bytes", "partial", "ingredients", "weights"] {
        assert!(v.get(k).is_some(), "missing {k}");
    }
    assert_eq!(v["ingredients"].as_array().unwrap().len(), 10);
    let soup = v["checkpoint"].as_str().unwrap();
    let (ok, stdout, stderr) = common::run_bin(&["eval", soup, "--data-dir", planetoid.to_str().unwrap(), "--device", "cpu", "--json"]);
    assert!(ok, "{stderr}");
    let e: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(e["test_acc"].as_f64(), v["test_acc"].as_f64());
}
