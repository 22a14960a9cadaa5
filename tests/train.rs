//! Ingredient training on the real Planetoid graphs: the accuracy floors of the foundation issue,
//! and checkpoints that reload here and in PyTorch Geometric to the same accuracy.

mod common;

use gnn_soup::checkpoint;
use gnn_soup::data;
use gnn_soup::model::{self, Arch, GraphTensors};
use gnn_soup::train::{train_ingredients, TrainConfig, TrainReport};
use tch::Device;

fn train(dataset: &str, arch: Arch, out: &std::path::Path) -> (data::Graph, TrainReport) {
    let dir = common::planetoid_dir();
    let g = data::load(dataset, &common::data_opts(&dir)).unwrap();
    let cfg = TrainConfig { ingredients: 10, ..TrainConfig::defaults(arch) };
    let report = train_ingredients(&g, &cfg, Device::Cpu, out, false, &mut |_| {}).unwrap();
    let mean_test = report.ingredients.iter().map(|i| i.test_acc).sum::<f64>() / 10.0;
    eprintln!("{dataset} {arch}: mean test {:.4} in {:.1}s", mean_test, report.seconds);
    (g, report)
}

fn mean_test(r: &TrainReport) -> f64 {
    r.ingredients.iter().map(|i| i.test_acc).sum::<f64>() / r.ingredients.len() as f64
}

#[test]
fn cora_gcn_reaches_80_percent_and_checkpoints_agree_with_pyg() {
    let tmp = tempfile::tempdir().unwrap();
    let (g, report) = train("cora", Arch::Gcn, tmp.path());
    assert!(mean_test(&report) >= 0.80, "mean test accuracy {:.4}", mean_test(&report));

    // every ingredient shares the saved initialisation
    let init = checkpoint::load(&report.init).unwrap();
    let init_fp = checkpoint::weights_fingerprint(&init.params);
    let gt = GraphTensors::new(&g, Device::Cpu);
    for ing in &report.ingredients {
        let ck = checkpoint::load(&ing.path).unwrap();
        assert_eq!(ck.meta.init_fingerprint, init_fp);
        assert_eq!(ck.meta.dataset_fingerprint, g.fingerprint());
        // reloading evaluates to the recorded accuracy exactly
        let acc = model::evaluate(&ck.meta.arch, &ck.params, &gt);
        assert_eq!((acc.val, acc.test), (ck.meta.val_acc.unwrap(), ck.meta.test_acc.unwrap()));
    }
    // ingredients differ (different dropout draws)
    let a = checkpoint::load(&report.ingredients[0].path).unwrap();
    let b = checkpoint::load(&report.ingredients[1].path).unwrap();
    assert_ne!(
        checkpoint::weights_fingerprint(&a.params),
        checkpoint::weights_fingerprint(&b.params)
    );

    // PyG loads the checkpoint into its own GCNConv model, on its own Cora, to the same accuracy.
    let dir = common::planetoid_dir();
    let work = tempfile::tempdir().unwrap();
    let first = &report.ingredients[0];
    let out = common::run_python(
        "pyg_eval.py",
        &[
            first.path.to_str().unwrap(),
            "cora",
            dir.to_str().unwrap(),
            work.path().to_str().unwrap(),
        ],
    );
    let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(v["edges"].as_u64(), Some(g.num_edges() as u64));
    assert!(
        (v["val_acc"].as_f64().unwrap() - first.val_acc).abs() < 1e-6,
        "PyG {v} vs ours {}",
        first.val_acc
    );
    assert!(
        (v["test_acc"].as_f64().unwrap() - first.test_acc).abs() < 1e-6,
        "PyG {v} vs ours {}",
        first.test_acc
    );
}

#[test]
fn cora_gat_reaches_80_percent() {
    let tmp = tempfile::tempdir().unwrap();
    let (_, report) = train("cora", Arch::Gat, tmp.path());
    assert!(mean_test(&report) >= 0.80, "mean test accuracy {:.4}", mean_test(&report));
}

#[test]
fn cora_sage_reaches_77_percent() {
    let tmp = tempfile::tempdir().unwrap();
    let (_, report) = train("cora", Arch::Sage, tmp.path());
    assert!(mean_test(&report) >= 0.77, "mean test accuracy {:.4}", mean_test(&report));
}

#[test]
fn citeseer_gcn_reaches_68_5_percent() {
    let tmp = tempfile::tempdir().unwrap();
    let (_, report) = train("citeseer", Arch::Gcn, tmp.path());
    assert!(mean_test(&report) >= 0.685, "mean test accuracy {:.4}", mean_test(&report));
}
