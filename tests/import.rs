//! Bring your own ingredients: checkpoints made the way PyTorch Geometric users make them
//! (`tests/python/make_foreign_checkpoints.py`: PyG's own layers, trained on PyG's Cora, saved
//! with `torch.save(model.state_dict())` or as plain safetensors) are imported, and gnn-soup
//! measures on them exactly what PyG measured; their uniform soup is the soup PyG computes.

mod common;

use std::path::Path;

fn run_ok(args: &[&str]) -> String {
    let (ok, stdout, stderr) = common::run_bin(args);
    assert!(ok, "gnn-soup {args:?} failed:\n{stderr}");
    stdout
}

fn json(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

fn assert_same_accuracy(ours: &serde_json::Value, pyg: &serde_json::Value, what: &str) {
    for k in ["val_acc", "test_acc"] {
        let (a, b) = (ours[k].as_f64().unwrap(), pyg[k].as_f64().unwrap());
        assert!((a - b).abs() < 1e-6, "{what} {k}: gnn-soup {a} vs PyG {b}");
    }
}

/// Imports `files` into `out` and checks each ingredient's accuracy, read back by `eval`,
/// against what PyG measured.
fn import_and_check(tmp: &Path, files: &[&serde_json::Value], out: &str, extra: &[&str]) -> std::path::PathBuf {
    let planetoid = common::planetoid_dir();
    let dir = tmp.join(out);
    let mut args = vec!["import"];
    let sources: Vec<String> = files.iter().map(|f| f["file"].as_str().unwrap().to_string()).collect();
    args.extend(sources.iter().map(String::as_str));
    args.extend(["--dataset", "cora", "--data-dir", planetoid.to_str().unwrap(), "--row-normalize", "true", "--out", dir.to_str().unwrap(), "--json"]);
    args.extend(extra);
    let report = json(&run_ok(&args));
    assert_eq!(report["ingredients"].as_array().unwrap().len(), files.len());
    for (i, f) in files.iter().enumerate() {
        let path = report["ingredients"][i]["path"].as_str().unwrap().to_string();
        assert_same_accuracy(&report["ingredients"][i], f, &format!("import of {}", f["file"]));
        let eval = json(&run_ok(&["eval", &path, "--data-dir", planetoid.to_str().unwrap(), "--device", "cpu", "--json"]));
        assert_same_accuracy(&eval, f, &format!("eval of the import of {}", f["file"]));
    }
    dir
}

#[test]
fn pyg_checkpoints_import_and_compute_what_they_computed_in_pyg() {
    let tmp = tempfile::tempdir().unwrap();
    let planetoid = common::planetoid_dir();
    let made = json(common::run_python("make_foreign_checkpoints.py", &[tmp.path().to_str().unwrap(), planetoid.to_str().unwrap()]).trim());

    // Three GCNs from one init (.pt), imported with their init; their uniform soup is PyG's.
    let gcn: Vec<&serde_json::Value> = made["gcn"].as_array().unwrap().iter().collect();
    let init = tmp.path().join("init.pt");
    let dir = import_and_check(tmp.path(), &gcn, "gcn", &["--init", init.to_str().unwrap()]);
    assert!(dir.join("init.safetensors").is_file());
    let soup = json(&run_ok(&[
        "soup", "--ingredients", dir.to_str().unwrap(), "--strategy", "uniform", "--data-dir", planetoid.to_str().unwrap(), "--device", "cpu", "--out", tmp.path().join("soup").to_str().unwrap(), "--json",
    ]));
    assert_same_accuracy(&soup, &made["gcn_uniform_soup"], "uniform soup of the imports");
    // The inspector finds the imported init and measures distances from it.
    let diversity = json(&run_ok(&["inspect", dir.to_str().unwrap(), "--json", "--diversity"]));
    assert!(diversity["ingredients"][0]["distance_from_init"].as_f64().unwrap() > 0.0, "{diversity}");

    // GraphSAGE with batch norm (plain safetensors), GAT (a training checkpoint holding
    // model_state_dict), PyG's example style (conv1/conv2 inside a wrapper module).
    import_and_check(tmp.path(), &[&made["sage"]], "sage", &[]);
    import_and_check(tmp.path(), &[&made["gat"]], "gat", &["--dropout", "0.6"]);
    let example = import_and_check(tmp.path(), &[&made["example"]], "example", &[]);
    // Where the source drops: recorded in the architecture, and LS fits with it (the first
    // layer's input then stays whole, so its aggregation is computed once).
    let undropped = tmp.path().join("undropped");
    let (ok, stdout, stderr) = common::run_bin(&[
        "import", made["example"]["file"].as_str().unwrap(), made["gcn"][0]["file"].as_str().unwrap(), "--dataset", "cora", "--data-dir", planetoid.to_str().unwrap(), "--row-normalize", "true",
        "--input-dropout-off", "0", "--out", undropped.to_str().unwrap(), "--json",
    ]);
    assert!(ok, "{stderr}");
    assert_eq!(json(&stdout)["arch"]["input_dropout_off"], serde_json::json!([0]));
    let ls = json(&run_ok(&[
        "soup", "--ingredients", undropped.to_str().unwrap(), "--strategy", "ls", "--epochs", "3", "--data-dir", planetoid.to_str().unwrap(), "--device", "cpu", "--out", tmp.path().join("ls").to_str().unwrap(), "--json",
    ]));
    assert_eq!(ls["history"].as_array().unwrap().len(), 3);
    assert!(example.join("ingredient-00.safetensors").is_file());

    // soup, eval and inspect take foreign checkpoints directly: imported on the fly (into the
    // cache, said on stderr; reused the next time), the reference's initial_model.pt as the init.
    let folder = tmp.path().join("foreign");
    std::fs::create_dir_all(&folder).unwrap();
    for g in &gcn {
        let f = Path::new(g["file"].as_str().unwrap());
        std::fs::copy(f, folder.join(f.file_name().unwrap())).unwrap();
    }
    std::fs::copy(&init, folder.join("initial_model.pt")).unwrap();
    let cache = tmp.path().join("cache");
    let env = [("XDG_CACHE_HOME", cache.to_str().unwrap())];
    let soup_args = |out: &str| -> Vec<String> {
        ["soup", "--ingredients", folder.to_str().unwrap(), "--strategy", "uniform", "--dataset", "cora", "--data-dir", planetoid.to_str().unwrap(), "--device", "cpu", "--json", "--out"]
            .iter()
            .map(|s| s.to_string())
            .chain([tmp.path().join(out).display().to_string()])
            .collect()
    };
    let args: Vec<String> = soup_args("fly1");
    let (ok, stdout, stderr) = common::run_bin_with(&args.iter().map(String::as_str).collect::<Vec<_>>(), &env);
    assert!(ok && stderr.contains("imported 3 foreign checkpoint(s)") && stderr.contains("with their init"), "{stderr}");
    assert_same_accuracy(&json(&stdout), &made["gcn_uniform_soup"], "uniform soup of a foreign folder");
    let args: Vec<String> = soup_args("fly2");
    let (ok, _, stderr) = common::run_bin_with(&args.iter().map(String::as_str).collect::<Vec<_>>(), &env);
    assert!(ok && stderr.contains("using the earlier import"), "{stderr}");
    let (ok, stdout, stderr) = common::run_bin_with(&["eval", gcn[1]["file"].as_str().unwrap(), "--dataset", "cora", "--data-dir", planetoid.to_str().unwrap(), "--device", "cpu", "--json"], &env);
    assert!(ok, "{stderr}");
    assert_same_accuracy(&json(&stdout), gcn[1], "eval of a .pt file");
    let (ok, _, stderr) = common::run_bin_with(&["inspect", folder.to_str().unwrap(), "--data-dir", planetoid.to_str().unwrap()], &env);
    assert!(!ok && stderr.contains("pass --dataset to import them"), "{stderr}");

    // Refused, with the file and the names that do not fit; nothing written.
    let bad = tmp.path().join("bad");
    let (ok, _, stderr) = common::run_bin(&["import", tmp.path().join("with-head.pt").to_str().unwrap(), "--dataset", "cora", "--data-dir", planetoid.to_str().unwrap(), "--out", bad.to_str().unwrap()]);
    assert!(!ok && stderr.contains("with-head.pt") && stderr.contains("head.weight [7, 7] is not part of"), "{stderr}");
    assert!(!bad.exists(), "nothing is written when an import is refused");
    // Mixed architectures in one import are refused, naming both.
    let (ok, _, stderr) = common::run_bin(&[
        "import", made["gcn"][0]["file"].as_str().unwrap(), made["gat"]["file"].as_str().unwrap(), "--dataset", "cora", "--data-dir", planetoid.to_str().unwrap(), "--out", bad.to_str().unwrap(),
    ]);
    assert!(!ok && stderr.contains("must share an architecture"), "{stderr}");
    // A second import into the same folder does not replace the first.
    let (ok, _, stderr) = common::run_bin(&["import", made["gcn"][0]["file"].as_str().unwrap(), "--dataset", "cora", "--data-dir", planetoid.to_str().unwrap(), "--out", dir.to_str().unwrap()]);
    assert!(!ok && stderr.contains("already exists"), "{stderr}");
}

#[test]
fn what_is_not_a_state_dict_gets_a_clear_error() {
    let tmp = tempfile::tempdir().unwrap();
    let planetoid = common::planetoid_dir();
    let garbage = tmp.path().join("garbage.pt");
    std::fs::write(&garbage, b"\x80\x02not a zip").unwrap();
    let (ok, _, stderr) = common::run_bin(&["import", garbage.to_str().unwrap(), "--dataset", "cora", "--data-dir", planetoid.to_str().unwrap(), "--out", tmp.path().join("o").to_str().unwrap()]);
    assert!(!ok && stderr.contains("garbage.pt") && stderr.contains("legacy format") && stderr.contains("torch.save(torch.load(OLD), NEW)"), "{stderr}");
    let (ok, _, stderr) = common::run_bin(&["import", "/nonexistent.pt", "--dataset", "cora", "--data-dir", planetoid.to_str().unwrap(), "--out", tmp.path().join("o").to_str().unwrap()]);
    assert!(!ok && stderr.contains("/nonexistent.pt"), "{stderr}");
    let (ok, _, stderr) = common::run_bin(&["import", garbage.to_str().unwrap(), "--out", tmp.path().join("o").to_str().unwrap()]);
    assert!(!ok && stderr.contains("--dataset is required"), "{stderr}");
    assert!(!tmp.path().join("o").exists());
}
