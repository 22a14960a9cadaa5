//! The models users bring (`tests/python/zoo.py`): OGB's ogbn-arxiv GCN with batch norm and its
//! ogbn-products GraphSAGE, a PyG GAT with batch norm whose last layer averages two heads, the
//! paper's reference GCN, GraphSAGE and GAT (its own `models.GAT`), and a stack of DGL's stock
//! GATConv. Each is imported with the flags that tell what its state dict cannot; gnn-soup's
//! evaluation of every ingredient is held to the source model's own outputs; every strategy runs
//! to the end on it; its LS soup, exported, loads into the source model and scores there what
//! gnn-soup reported. On ten of the paper's GAT ingredients, uniform and GIS equal the reference's
//! and LS lands within 0.3 point of the reference's LS.

mod common;

use std::path::{Path, PathBuf};

use gnn_soup::model::{self, GraphTensors};
use serde_json::Value;
use tch::{Device, Kind, Tensor};

fn zoo() -> (PathBuf, Value) {
    let planetoid = common::planetoid_dir();
    let dir = common::shared_fixture("zoo", |dir| {
        let out = common::run_python(
            "zoo.py",
            &["make", dir.to_str().unwrap(), planetoid.to_str().unwrap()],
        );
        std::fs::write(dir.join("zoo.json"), out.trim()).unwrap();
    });
    let zoo =
        serde_json::from_str(&std::fs::read_to_string(dir.join("zoo.json")).unwrap()).unwrap();
    (dir, zoo)
}

fn run_ok(args: &[&str]) -> String {
    let (ok, stdout, stderr) = common::run_bin(args);
    assert!(ok, "gnn-soup {args:?} failed:\n{stderr}");
    assert!(
        !stderr.contains("panicked") && !stderr.contains("internal error"),
        "gnn-soup {args:?}:\n{stderr}"
    );
    stdout
}

fn json_file(path: &Path) -> Value {
    serde_json::from_str(
        &std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display())),
    )
    .unwrap()
}

fn acc(v: &Value, key: &str) -> f64 {
    v[key].as_f64().unwrap_or_else(|| panic!("no {key} in {v}"))
}

const MODELS: [&str; 7] = [
    "ogb-arxiv-gcn",
    "ogb-products-sage",
    "pyg-gat-bn",
    "ref-gcn",
    "ref-sage",
    "ref-gat",
    "dgl-gat",
];

#[test]
fn every_model_of_the_zoo_evaluates_as_its_source_soups_with_every_strategy_and_exports_back() {
    let (_, zoo) = zoo();
    let planetoid = common::planetoid_dir();
    let data = ["--dataset", "cora", "--data-dir", planetoid.to_str().unwrap()];
    let tmp = tempfile::tempdir().unwrap();
    let graph = gnn_soup::data::load("cora", &common::data_opts(&planetoid)).unwrap();
    let gt = GraphTensors::new(&graph, Device::Cpu);
    for name in MODELS {
        let made = &zoo[name];
        let out = tmp.path().join(name);
        let mut args: Vec<String> = vec!["import".into()];
        let sources: Vec<String> = made["ingredients"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["file"].as_str().unwrap().to_string())
            .collect();
        args.extend(sources.iter().cloned());
        args.extend(
            [
                "--init",
                made["init"].as_str().unwrap(),
                "--row-normalize",
                "false",
                "--out",
                out.to_str().unwrap(),
                "--json",
            ]
            .map(String::from),
        );
        args.extend(data.map(String::from));
        args.extend(
            made["flags"].as_array().unwrap().iter().map(|f| f.as_str().unwrap().to_string()),
        );
        let report: Value =
            serde_json::from_str(&run_ok(&args.iter().map(String::as_str).collect::<Vec<_>>()))
                .unwrap();

        // Every ingredient computes what its source computed, and scores what it scored.
        let outputs: std::collections::BTreeMap<String, Tensor> =
            Tensor::read_safetensors(made["outputs"].as_str().unwrap())
                .unwrap()
                .into_iter()
                .collect();
        for (i, imported) in report["ingredients"].as_array().unwrap().iter().enumerate() {
            let path = imported["path"].as_str().unwrap();
            let ck = gnn_soup::checkpoint::load(Path::new(path)).unwrap();
            let logits = model::infer(&ck.meta.arch, &ck.params, &gt);
            let ours = if made["log_probs"].as_bool().unwrap() {
                logits.log_softmax(1, Kind::Float)
            } else {
                logits
            };
            let theirs = &outputs[&i.to_string()];
            let diff = (&ours - theirs).abs().max().double_value(&[]);
            // 1e-5 of the outputs' scale (at least 1): raw bag-of-words features give logits
            // past 100 here, where one float ulp is 1.5e-5.
            let scale = theirs.abs().max().double_value(&[]);
            assert!(diff <= 1e-5 * scale.max(1.0), "{name} ingredient {i}: max |gnn-soup - source| = {diff}, outputs up to {scale} ({})", ck.meta.arch.describe());
            assert!(scale > 0.1, "{name}: the source's outputs are all ~0");
            let source = &made["ingredients"][i];
            for k in ["val_acc", "test_acc"] {
                assert!(
                    (acc(imported, k) - acc(source, k)).abs() < 1e-6,
                    "{name} ingredient {i} {k}: {imported} vs the source's {source}"
                );
            }
        }

        // Every strategy runs to the end.
        let run = tmp.path().join(format!("{name}-run"));
        run_ok(&[
            "soup",
            "--ingredients",
            out.to_str().unwrap(),
            "--strategy",
            "all",
            "--epochs",
            "40",
            "--parts",
            "8",
            "--sample",
            "4",
            "--device",
            "cpu",
            "--out",
            run.to_str().unwrap(),
            "--data-dir",
            planetoid.to_str().unwrap(),
        ]);
        let comparison = json_file(&run.join("comparison.json"));
        let strategies: Vec<&str> = comparison
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["strategy"].as_str().unwrap())
            .collect();
        assert_eq!(strategies, ["uniform", "greedy", "gis", "ls", "pls", "ensemble"], "{name}");
        let ls = json_file(&run.join("report-ls.json"));
        assert_eq!(ls["partial"], false, "{name}");
        let ingredients = ls["ingredients"].as_array().unwrap();
        let vals: Vec<f64> = ingredients.iter().map(|i| acc(i, "val_acc")).collect();
        let mean_val = vals.iter().sum::<f64>() / vals.len() as f64;
        let lowest = vals.iter().copied().fold(f64::INFINITY, f64::min);
        // With batch norm (the statistics recomputed for the soup), at least the ingredients'
        // mean; every model, nowhere near broken.
        let floor = if report["arch"]["batch_norm"] == true { mean_val } else { lowest - 0.02 };
        assert!(
            acc(&ls, "val_acc") >= floor,
            "{name}: LS val {} under {floor} (ingredients {vals:?})",
            acc(&ls, "val_acc")
        );

        // The LS soup, exported under the source's names, loads into the source model.
        let exported = tmp.path().join(format!("{name}-ls.pt"));
        run_ok(&[
            "export",
            run.join("soup-ls.safetensors").to_str().unwrap(),
            "--out",
            exported.to_str().unwrap(),
            "--like",
            &sources[0],
        ]);
        let work = tmp.path().join("pyg");
        let back: Value = serde_json::from_str(
            common::run_python(
                "zoo.py",
                &[
                    "check",
                    name,
                    exported.to_str().unwrap(),
                    planetoid.to_str().unwrap(),
                    work.to_str().unwrap(),
                ],
            )
            .trim(),
        )
        .unwrap();
        for k in ["val_acc", "test_acc"] {
            assert!((acc(&back, k) - acc(&ls, k)).abs() < 1e-6, "{name}: the exported LS soup scores {back} in its source model, gnn-soup reported {} {}", acc(&ls, "val_acc"), acc(&ls, "test_acc"));
        }
    }
}

#[test]
fn on_the_papers_gat_uniform_and_gis_equal_the_reference_and_ls_is_within_0_3_point() {
    let (_, zoo) = zoo();
    let made = &zoo["ref-gat-10"];
    let planetoid = common::planetoid_dir();
    let tmp = tempfile::tempdir().unwrap();
    let folder = made["folder"].as_str().unwrap();
    let imported = tmp.path().join("ingredients");
    let mut args = vec!["import"];
    let sources: Vec<String> = (0..10).map(|i| format!("{folder}/ingredient_{i}.pt")).collect();
    args.extend(sources.iter().map(String::as_str));
    let init = format!("{folder}/initial_model.pt");
    let imported_s = imported.to_str().unwrap().to_string();
    args.extend([
        "--init",
        &init,
        "--row-normalize",
        "false",
        "--dropout",
        "0.5",
        "--input-dropout",
        "0.1",
        "--attention-dropout",
        "0.1",
        "--edge-dropout",
        "0.1",
        "--out",
        &imported_s,
    ]);
    args.extend(["--dataset", "cora", "--data-dir", planetoid.to_str().unwrap()]);
    run_ok(&args);
    for (strategy, extra) in [
        ("uniform", vec![]),
        ("gis", vec!["--granularity", "20"]),
        (
            "ls",
            vec![
                "--optimizer",
                "sgd",
                "--lr",
                "10",
                "--t0",
                "4",
                "--epochs",
                "30",
                "--init",
                "ones",
                "--no-dropout",
                "--seed",
                "0",
            ],
        ),
    ] {
        let run = tmp.path().join(strategy);
        let mut args = vec![
            "soup",
            "--ingredients",
            &imported_s,
            "--strategy",
            strategy,
            "--device",
            "cpu",
            "--out",
            run.to_str().unwrap(),
            "--data-dir",
            planetoid.to_str().unwrap(),
        ];
        args.extend(extra);
        run_ok(&args);
        let ours = json_file(&run.join(format!("report-{strategy}.json")));
        let reference = &made["soups"][strategy];
        let tolerance = if strategy == "ls" { 0.003 } else { 1e-6 };
        for k in ["val_acc", "test_acc"] {
            assert!(
                (acc(&ours, k) - acc(reference, k)).abs() <= tolerance,
                "{strategy} {k}: gnn-soup {} vs the reference {}",
                acc(&ours, k),
                acc(reference, k)
            );
        }
    }
}

/// gnn-soup trains the paper's GAT itself: its ingredients learn, soup, and export to a state
/// dict that the reference's model loads (strictly) and scores as gnn-soup scored it.
#[test]
fn the_papers_gat_trained_here_soups_and_loads_into_the_reference_model() {
    let planetoid = common::planetoid_dir();
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("trained");
    let data = ["--dataset", "cora", "--data-dir", planetoid.to_str().unwrap()];
    let mut args = vec![
        "train",
        "--arch",
        "paper-gat",
        "--heads",
        "4",
        "--attn-dst",
        "--ingredients",
        "2",
        "--epochs",
        "60",
        "--row-normalize",
        "false",
        "--device",
        "cpu",
        "--out",
        out.to_str().unwrap(),
    ];
    args.extend(data);
    run_ok(&args);
    let first = out.join("ingredient-00.safetensors");
    let eval: Value = serde_json::from_str(&run_ok(&[
        "eval",
        first.to_str().unwrap(),
        "--data-dir",
        planetoid.to_str().unwrap(),
        "--device",
        "cpu",
        "--json",
    ]))
    .unwrap();
    assert!(acc(&eval, "val_acc") > 0.6, "a paper-gat trained on Cora for 60 epochs: {eval}");
    let run = tmp.path().join("run");
    run_ok(&[
        "soup",
        "--ingredients",
        out.to_str().unwrap(),
        "--strategy",
        "all",
        "--epochs",
        "20",
        "--parts",
        "8",
        "--sample",
        "4",
        "--device",
        "cpu",
        "--out",
        run.to_str().unwrap(),
        "--data-dir",
        planetoid.to_str().unwrap(),
    ]);
    let exported = tmp.path().join("ingredient.pt");
    run_ok(&[
        "export",
        first.to_str().unwrap(),
        "--out",
        exported.to_str().unwrap(),
        "--layout",
        "dgl",
    ]);
    let work = tmp.path().join("pyg");
    let back: Value = serde_json::from_str(
        common::run_python(
            "zoo.py",
            &[
                "check",
                "ref-gat",
                exported.to_str().unwrap(),
                planetoid.to_str().unwrap(),
                work.to_str().unwrap(),
            ],
        )
        .trim(),
    )
    .unwrap();
    for k in ["val_acc", "test_acc"] {
        assert!(
            (acc(&back, k) - acc(&eval, k)).abs() < 1e-6,
            "the reference's GAT scores {back} with gnn-soup's weights, gnn-soup {eval}"
        );
    }
}
