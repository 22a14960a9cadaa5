//! Checkpoint validation and the command line's behaviour on good and bad input.

mod common;

use std::path::{Path, PathBuf};

use gnn_soup::checkpoint::{self, CheckpointMeta};
use gnn_soup::data;
use gnn_soup::model::{Arch, ParamMap};
use gnn_soup::train::{train_ingredients, TrainConfig};
use tch::{Device, Tensor};

/// Two quick ingredients on a small synthetic graph.
fn quick_ingredients(out: &Path) -> Vec<PathBuf> {
    let g =
        data::load("csbm:nodes=300,train=60,val=100,test=100", &common::data_opts(Path::new(".")))
            .unwrap();
    let cfg = TrainConfig { ingredients: 2, epochs: 5, ..TrainConfig::defaults(Arch::Gcn) };
    train_ingredients(&g, &cfg, Device::Cpu, out, false, &mut |_| {})
        .unwrap()
        .ingredients
        .into_iter()
        .map(|i| i.path)
        .collect()
}

fn rewrite(src: &Path, dst: &Path, edit: impl FnOnce(&mut ParamMap, &mut CheckpointMeta)) {
    let mut ck = checkpoint::load(src).unwrap();
    edit(&mut ck.params, &mut ck.meta);
    checkpoint::save(dst, &ck.params, &ck.meta, true).unwrap();
}

fn load_err(p: &Path) -> String {
    format!("{:#}", checkpoint::load(p).err().unwrap_or_else(|| panic!("{} loaded", p.display())))
}

#[test]
fn bad_checkpoints_are_rejected_with_the_file_and_the_problem() {
    let tmp = tempfile::tempdir().unwrap();
    let files = quick_ingredients(&tmp.path().join("run"));
    let good = &files[0];
    let bad = |name: &str| tmp.path().join(name);

    let truncated = bad("truncated.safetensors");
    let bytes = std::fs::read(good).unwrap();
    std::fs::write(&truncated, &bytes[..bytes.len() - 100]).unwrap();
    let e = load_err(&truncated);
    assert!(e.contains("truncated.safetensors") && e.contains("corrupt"), "{e}");

    // The metadata comes from the header alone: a file cut short in its tensor data still lists
    // (the setup browser reads only this), while loading it is refused.
    let meta = checkpoint::read_meta(&truncated).unwrap();
    assert_eq!(meta, checkpoint::read_meta(good).unwrap());
    let header_len = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let short = bad("header-only.safetensors");
    std::fs::write(&short, &bytes[..8 + header_len]).unwrap();
    assert!(checkpoint::read_meta(&short).is_ok());
    let cut_header = bad("cut-header.safetensors");
    std::fs::write(&cut_header, &bytes[..8 + header_len / 2]).unwrap();
    let e = format!("{:#}", checkpoint::read_meta(&cut_header).unwrap_err());
    assert!(e.contains("cut-header.safetensors") && e.contains("header claims"), "{e}");

    let garbage = bad("garbage.safetensors");
    std::fs::write(&garbage, b"definitely not a checkpoint").unwrap();
    assert!(load_err(&garbage).contains("garbage.safetensors"));

    let shape = bad("shape.safetensors");
    rewrite(good, &shape, |p, _| {
        p.insert(
            "convs.0.lin.weight".into(),
            Tensor::zeros([3, 3], (tch::Kind::Float, Device::Cpu)),
        );
    });
    let e = load_err(&shape);
    assert!(
        e.contains("shape.safetensors")
            && e.contains("convs.0.lin.weight")
            && e.contains("shape [3, 3]"),
        "{e}"
    );

    let nan = bad("nan.safetensors");
    rewrite(good, &nan, |p, _| {
        let w = p["convs.1.bias"].copy();
        let _ = w.get(0).fill_(f64::NAN);
        p.insert("convs.1.bias".into(), w);
    });
    let e = load_err(&nan);
    assert!(
        e.contains("nan.safetensors") && e.contains("convs.1.bias") && e.contains("NaN"),
        "{e}"
    );

    let missing = bad("missing.safetensors");
    rewrite(good, &missing, |p, _| {
        p.remove("convs.1.bias");
    });
    assert!(load_err(&missing).contains("convs.1.bias is missing"));

    let extra = bad("extra.safetensors");
    rewrite(good, &extra, |p, _| {
        p.insert("convs.9.bias".into(), Tensor::zeros([2], (tch::Kind::Float, Device::Cpu)));
    });
    assert!(load_err(&extra).contains("unexpected tensor convs.9.bias"));

    let plain = bad("plain.safetensors");
    let ck = checkpoint::load(good).unwrap();
    Tensor::write_safetensors(
        &ck.params.iter().map(|(k, v)| (k.clone(), v.shallow_clone())).collect::<Vec<_>>(),
        &plain,
    )
    .unwrap();
    assert!(load_err(&plain).contains("no gnn-soup metadata"));

    // a checkpoint of another architecture is incompatible, with the reason
    let other = bad("other.safetensors");
    rewrite(good, &other, |_, m| m.dataset_fingerprint = "0000".into());
    let reason =
        checkpoint::incompatibility(&ck.meta, &checkpoint::read_meta(&other).unwrap()).unwrap();
    assert!(reason.contains("different data"), "{reason}");
    assert!(
        checkpoint::incompatibility(&ck.meta, &checkpoint::read_meta(&files[1]).unwrap()).is_none()
    );
}

#[test]
fn cli_reports_errors_without_panicking_and_never_overwrites() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("run");
    let out_s = out.to_str().unwrap();
    let args = [
        "train",
        "--dataset",
        "csbm:nodes=300,train=60,val=100,test=100",
        "--epochs",
        "3",
        "--ingredients",
        "2",
        "--device",
        "cpu",
        "--out",
        out_s,
        "--json",
    ];
    let (ok, stdout, stderr) = common::run_bin(&args);
    assert!(ok, "{stderr}");
    let v: serde_json::Value =
        serde_json::from_str(&stdout).expect("train --json prints one JSON document");
    let ings = v["ingredients"].as_array().unwrap();
    assert_eq!(ings.len(), 2);
    for i in ings {
        let acc = i["val_acc"].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&acc));
        assert!(Path::new(i["path"].as_str().unwrap()).is_file());
    }
    assert!(v["seconds"].as_f64().unwrap() > 0.0);

    let before = std::fs::read(out.join("ingredient-00.safetensors")).unwrap();
    let (ok, _, stderr) = common::run_bin(&args);
    assert!(!ok && stderr.contains("already exists"), "{stderr}");
    assert_eq!(
        before,
        std::fs::read(out.join("ingredient-00.safetensors")).unwrap(),
        "existing checkpoint was modified"
    );

    let (ok, stdout, stderr) = common::run_bin(&["inspect", out_s, "--json"]);
    assert!(ok, "{stderr}");
    let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(v.as_array().unwrap().len(), 3, "init + 2 ingredients");
    assert_eq!(v[1]["meta"]["arch"]["arch"], "gcn");
    assert!(v[1]["tensors"].as_array().unwrap().iter().any(|t| t["name"] == "convs.0.lin.weight"));

    // The diversity figures agree with numpy's, computed from the files independently.
    let (ok, stdout, stderr) = common::run_bin(&["inspect", out_s, "--json", "--diversity"]);
    assert!(ok, "{stderr}");
    let d: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(d["cosine_of"], "updates");
    let files: Vec<String> =
        ["init.safetensors", "ingredient-00.safetensors", "ingredient-01.safetensors"]
            .iter()
            .map(|f| out.join(f).display().to_string())
            .collect();
    let reference: serde_json::Value = serde_json::from_str(&common::run_python(
        "diversity.py",
        &[&files[0], &files[1], &files[2]],
    ))
    .unwrap();
    let close = |a: &serde_json::Value, b: &serde_json::Value| {
        let (a, b) = (a.as_f64().unwrap(), b.as_f64().unwrap());
        assert!((a - b).abs() <= 1e-9 * b.abs().max(1.0), "{a} vs numpy {b}");
    };
    close(&d["distance"][0][1], &reference["distance"]);
    close(&d["distance"][1][0], &reference["distance"]);
    close(&d["cosine"][0][1], &reference["cosine"]);
    close(&d["cosine"][1][1], &serde_json::json!(1.0));
    for i in 0..2 {
        close(&d["ingredients"][i]["distance_from_init"], &reference["from_init"][i]);
        close(&d["ingredients"][i]["norm"], &reference["norm"][i]);
    }
    assert!(
        reference["distance"].as_f64().unwrap() > 0.0
            && reference["cosine"].as_f64().unwrap() < 1.0 - 1e-6,
        "ingredients that differ"
    );
    let (ok, stdout, _) = common::run_bin(&["inspect", out_s]);
    assert!(ok && stdout.contains("distance from init") && stdout.contains("cosine"), "{stdout}");

    let broken = tmp.path().join("broken.safetensors");
    std::fs::write(&broken, b"\x10\x00\x00\x00\x00\x00\x00\x00{\"a\":").unwrap();
    let (ok, _, stderr) = common::run_bin(&["inspect", broken.to_str().unwrap()]);
    assert!(
        !ok && stderr.contains("broken.safetensors") && !stderr.contains("panicked"),
        "{stderr}"
    );

    let (ok, _, stderr) = common::run_bin(&["train", "--dataset", "nosuchdata", "--out", out_s]);
    assert!(!ok && stderr.contains("unknown dataset") && !stderr.contains("panicked"), "{stderr}");
    let (ok, _, stderr) = common::run_bin(&["train", "--device", "cuda:7", "--out", out_s]);
    assert!(!ok && stderr.contains("cuda:7") && !stderr.contains("panicked"), "{stderr}");
}

#[test]
fn data_info_json_has_the_documented_fields() {
    let dir = common::planetoid_dir();
    let (ok, stdout, stderr) = common::run_bin(&[
        "data",
        "info",
        "--dataset",
        "cora",
        "--data-dir",
        dir.to_str().unwrap(),
        "--json",
    ]);
    assert!(ok, "{stderr}");
    let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    for (k, want) in [
        ("nodes", 2708),
        ("edges", 10556),
        ("features", 1433),
        ("classes", 7),
        ("train", 140),
        ("val", 500),
        ("test", 1000),
    ] {
        assert_eq!(v[k].as_u64(), Some(want), "{k}");
    }
}
