//! Bring your own ingredients: checkpoints made the way PyTorch Geometric users make them
//! (`tests/python/make_foreign_checkpoints.py`: PyG's own layers, trained on PyG's Cora, saved
//! with `torch.save(model.state_dict())` or as plain safetensors) and the way the paper's
//! reference code makes them (DGL layout and semantics, `tests/python/reference_soups.py`) are
//! imported, and gnn-soup measures on them exactly what Python measured; their soups are the
//! soups Python computes; exported soups load back into the Python models they came from.

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
fn import_and_check(
    tmp: &Path,
    files: &[&serde_json::Value],
    out: &str,
    extra: &[&str],
) -> std::path::PathBuf {
    let planetoid = common::planetoid_dir();
    let dir = tmp.join(out);
    let mut args = vec!["import"];
    let sources: Vec<String> =
        files.iter().map(|f| f["file"].as_str().unwrap().to_string()).collect();
    args.extend(sources.iter().map(String::as_str));
    args.extend([
        "--dataset",
        "cora",
        "--data-dir",
        planetoid.to_str().unwrap(),
        "--row-normalize",
        "true",
        "--out",
        dir.to_str().unwrap(),
        "--json",
    ]);
    args.extend(extra);
    let report = json(&run_ok(&args));
    assert_eq!(report["ingredients"].as_array().unwrap().len(), files.len());
    for (i, f) in files.iter().enumerate() {
        let path = report["ingredients"][i]["path"].as_str().unwrap().to_string();
        assert_same_accuracy(&report["ingredients"][i], f, &format!("import of {}", f["file"]));
        let eval = json(&run_ok(&[
            "eval",
            &path,
            "--data-dir",
            planetoid.to_str().unwrap(),
            "--device",
            "cpu",
            "--json",
        ]));
        assert_same_accuracy(&eval, f, &format!("eval of the import of {}", f["file"]));
    }
    dir
}

/// The checkpoints Python made (built once per test build) and what Python measured on them.
fn made() -> (std::path::PathBuf, serde_json::Value) {
    let planetoid = common::planetoid_dir();
    let dir = common::shared_fixture("foreign", |dir| {
        let out = common::run_python(
            "make_foreign_checkpoints.py",
            &[dir.to_str().unwrap(), planetoid.to_str().unwrap()],
        );
        std::fs::write(dir.join("made.json"), out.trim()).unwrap();
    });
    let made = json(&std::fs::read_to_string(dir.join("made.json")).unwrap());
    (dir, made)
}

/// What `check_export.py` measures on an exported file loaded into the Python model `kind`.
fn python_loads(
    kind: &str,
    exported: &Path,
    work: &Path,
    expected: Option<&str>,
) -> serde_json::Value {
    let planetoid = common::planetoid_dir();
    let mut args =
        vec![kind, exported.to_str().unwrap(), planetoid.to_str().unwrap(), work.to_str().unwrap()];
    args.extend(expected);
    json(common::run_python("check_export.py", &args).trim())
}

#[test]
fn pyg_checkpoints_import_and_compute_what_they_computed_in_pyg() {
    let tmp = tempfile::tempdir().unwrap();
    let planetoid = common::planetoid_dir();
    let (made_dir, made) = made();

    // Three GCNs from one init (.pt), imported with their init; their uniform soup is PyG's.
    let gcn: Vec<&serde_json::Value> = made["gcn"].as_array().unwrap().iter().collect();
    let init = made_dir.join("init.pt");
    let dir = import_and_check(tmp.path(), &gcn, "gcn", &["--init", init.to_str().unwrap()]);
    assert!(dir.join("init.safetensors").is_file());
    let soup = json(&run_ok(&[
        "soup",
        "--ingredients",
        dir.to_str().unwrap(),
        "--strategy",
        "uniform",
        "--data-dir",
        planetoid.to_str().unwrap(),
        "--device",
        "cpu",
        "--out",
        tmp.path().join("soup").to_str().unwrap(),
        "--json",
    ]));
    assert_same_accuracy(&soup, &made["gcn_uniform_soup"], "uniform soup of the imports");
    // The inspector finds the imported init and measures distances from it.
    let diversity = json(&run_ok(&["inspect", dir.to_str().unwrap(), "--json", "--diversity"]));
    assert!(
        diversity["ingredients"][0]["distance_from_init"].as_f64().unwrap() > 0.0,
        "{diversity}"
    );

    // GraphSAGE with batch norm (plain safetensors), GAT (a training checkpoint holding
    // model_state_dict), PyG's example style (conv1/conv2 inside a wrapper module).
    import_and_check(tmp.path(), &[&made["sage"]], "sage", &[]);
    import_and_check(tmp.path(), &[&made["gat"]], "gat", &["--dropout", "0.6"]);
    let example = import_and_check(tmp.path(), &[&made["example"]], "example", &[]);
    // Where the source drops: recorded in the architecture, and LS fits with it (the first
    // layer's input then stays whole, so its aggregation is computed once).
    let undropped = tmp.path().join("undropped");
    let (ok, stdout, stderr) = common::run_bin(&[
        "import",
        made["example"]["file"].as_str().unwrap(),
        made["gcn"][0]["file"].as_str().unwrap(),
        "--dataset",
        "cora",
        "--data-dir",
        planetoid.to_str().unwrap(),
        "--row-normalize",
        "true",
        "--input-dropout-off",
        "0",
        "--out",
        undropped.to_str().unwrap(),
        "--json",
    ]);
    assert!(ok, "{stderr}");
    assert_eq!(json(&stdout)["arch"]["input_dropout_off"], serde_json::json!([0]));
    let ls = json(&run_ok(&[
        "soup",
        "--ingredients",
        undropped.to_str().unwrap(),
        "--strategy",
        "ls",
        "--epochs",
        "3",
        "--data-dir",
        planetoid.to_str().unwrap(),
        "--device",
        "cpu",
        "--out",
        tmp.path().join("ls").to_str().unwrap(),
        "--json",
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
        [
            "soup",
            "--ingredients",
            folder.to_str().unwrap(),
            "--strategy",
            "uniform",
            "--dataset",
            "cora",
            "--data-dir",
            planetoid.to_str().unwrap(),
            "--device",
            "cpu",
            "--json",
            "--out",
        ]
        .iter()
        .map(|s| s.to_string())
        .chain([tmp.path().join(out).display().to_string()])
        .collect()
    };
    let args: Vec<String> = soup_args("fly1");
    let (ok, stdout, stderr) =
        common::run_bin_with(&args.iter().map(String::as_str).collect::<Vec<_>>(), &env);
    assert!(
        ok && stderr.contains("imported 3 foreign checkpoint(s)")
            && stderr.contains("with their init"),
        "{stderr}"
    );
    assert_same_accuracy(
        &json(&stdout),
        &made["gcn_uniform_soup"],
        "uniform soup of a foreign folder",
    );
    let args: Vec<String> = soup_args("fly2");
    let (ok, _, stderr) =
        common::run_bin_with(&args.iter().map(String::as_str).collect::<Vec<_>>(), &env);
    assert!(ok && stderr.contains("using the earlier import"), "{stderr}");
    let (ok, stdout, stderr) = common::run_bin_with(
        &[
            "eval",
            gcn[1]["file"].as_str().unwrap(),
            "--dataset",
            "cora",
            "--data-dir",
            planetoid.to_str().unwrap(),
            "--device",
            "cpu",
            "--json",
        ],
        &env,
    );
    assert!(ok, "{stderr}");
    assert_same_accuracy(&json(&stdout), gcn[1], "eval of a .pt file");
    let (ok, _, stderr) = common::run_bin_with(
        &["inspect", folder.to_str().unwrap(), "--data-dir", planetoid.to_str().unwrap()],
        &env,
    );
    assert!(!ok && stderr.contains("pass --dataset to import them"), "{stderr}");

    // Refused, with the file and the names that do not fit; nothing written.
    let bad = tmp.path().join("bad");
    let (ok, _, stderr) = common::run_bin(&[
        "import",
        made_dir.join("with-head.pt").to_str().unwrap(),
        "--dataset",
        "cora",
        "--data-dir",
        planetoid.to_str().unwrap(),
        "--out",
        bad.to_str().unwrap(),
    ]);
    assert!(
        !ok && stderr.contains("with-head.pt")
            && stderr.contains("head.weight [7, 7] is not part of"),
        "{stderr}"
    );
    assert!(!bad.exists(), "nothing is written when an import is refused");
    // Mixed architectures in one import are refused, naming both.
    let (ok, _, stderr) = common::run_bin(&[
        "import",
        made["gcn"][0]["file"].as_str().unwrap(),
        made["gat"]["file"].as_str().unwrap(),
        "--dataset",
        "cora",
        "--data-dir",
        planetoid.to_str().unwrap(),
        "--out",
        bad.to_str().unwrap(),
    ]);
    assert!(!ok && stderr.contains("must share an architecture"), "{stderr}");
    // A second import into the same folder does not replace the first.
    let (ok, _, stderr) = common::run_bin(&[
        "import",
        made["gcn"][0]["file"].as_str().unwrap(),
        "--dataset",
        "cora",
        "--data-dir",
        planetoid.to_str().unwrap(),
        "--out",
        dir.to_str().unwrap(),
    ]);
    assert!(!ok && stderr.contains("already exists"), "{stderr}");

    // Export: the uniform soup, named as its first ingredient's original file (found from the
    // soup's metadata), loads strictly into the PyG model and computes what gnn-soup computed.
    let exported = tmp.path().join("soup.pt");
    run_ok(&[
        "export",
        tmp.path().join("soup/soup-uniform.safetensors").to_str().unwrap(),
        "--out",
        exported.to_str().unwrap(),
    ]);
    assert_same_accuracy(
        &python_loads("pyg-gcn", &exported, tmp.path(), None),
        &made["gcn_uniform_soup"],
        "the exported soup in PyG",
    );
    // PyG's example layout (conv1/conv2 under model.) comes back under its own names.
    let exported = tmp.path().join("example.pt");
    run_ok(&[
        "export",
        example.join("ingredient-00.safetensors").to_str().unwrap(),
        "--out",
        exported.to_str().unwrap(),
    ]);
    assert_same_accuracy(
        &python_loads("pyg-example", &exported, tmp.path(), None),
        &made["example"],
        "the exported example model in PyG",
    );
    let (ok, _, stderr) = common::run_bin(&[
        "export",
        example.join("ingredient-00.safetensors").to_str().unwrap(),
        "--out",
        exported.to_str().unwrap(),
    ]);
    assert!(
        !ok && stderr.contains("already exists"),
        "an export does not replace a file unasked: {stderr}"
    );
}

#[test]
fn the_reference_codes_dgl_checkpoints_import_and_soup_as_the_reference_does() {
    let tmp = tempfile::tempdir().unwrap();
    let planetoid = common::planetoid_dir();
    let (made_dir, made) = made();
    let data = ["--dataset", "cora", "--data-dir", planetoid.to_str().unwrap()];

    // The reference's folder as it leaves it: ingredient_<i>.pt and initial_model.pt, GraphConv
    // weights [in, out]. Imported with the reference's semantics (no self-loops, no dropout on
    // the features), each computes what it computed in Python.
    let gcn: Vec<&serde_json::Value> = made["dgl_gcn"].as_array().unwrap().iter().collect();
    let dir = import_and_check(
        tmp.path(),
        &gcn,
        "gcn",
        &["--init", made_dir.join("dgl/initial_model.pt").to_str().unwrap()],
    );
    let meta = json(&run_ok(&[
        "inspect",
        dir.join("ingredient-00.safetensors").to_str().unwrap(),
        "--json",
    ]));
    let arch = &meta["meta"]["arch"];
    assert_eq!(
        (arch["input_dropout_off"].clone(), arch["add_self_loops"].clone()),
        (serde_json::json!([0]), serde_json::json!(false)),
        "{meta}"
    );
    // Its 2-layer GraphSAGE (fc_self, fc_neigh, bias) has no dropout at all.
    let sage = import_and_check(tmp.path(), &[&made["dgl_sage"]], "sage", &[]);
    let meta = json(&run_ok(&[
        "inspect",
        sage.join("ingredient-00.safetensors").to_str().unwrap(),
        "--json",
    ]));
    assert_eq!(meta["meta"]["arch"]["input_dropout_off"], serde_json::json!([0, 1]), "{meta}");

    // The uniform soup is Python's; LS (dropout off so that it is deterministic) gives the
    // weights the reference's loop gives, and exported, loads into the reference's model.
    let soup = |strategy: &str, out: &str, extra: &[&str]| {
        let mut args = vec![
            "soup",
            "--ingredients",
            dir.to_str().unwrap(),
            "--strategy",
            strategy,
            "--device",
            "cpu",
            "--json",
            "--out",
        ];
        let out = tmp.path().join(out);
        args.push(out.to_str().unwrap());
        args.extend(&data[2..]);
        args.extend(extra);
        json(&run_ok(&args))
    };
    assert_same_accuracy(
        &soup("uniform", "uniform", &[]),
        &made["dgl_uniform_soup"],
        "uniform soup of the DGL imports",
    );
    let ls = soup(
        "ls",
        "ls",
        &["--epochs", "10", "--lr", "11", "--t0", "4", "--init", "ones", "--no-dropout"],
    );
    assert_same_accuracy(&ls, &made["dgl_ls_soup"], "LS of the DGL imports");
    let exported = tmp.path().join("ls.pt");
    run_ok(&[
        "export",
        tmp.path().join("ls/soup-ls.safetensors").to_str().unwrap(),
        "--out",
        exported.to_str().unwrap(),
    ]);
    let back = python_loads("dgl-gcn", &exported, tmp.path(), made["dgl_ls_soup"]["file"].as_str());
    assert_same_accuracy(
        &back,
        &made["dgl_ls_soup"],
        "the exported LS soup in the reference's model",
    );
    assert!(
        back["max_abs_diff"].as_f64().unwrap() < 1e-5,
        "LS weights differ from the reference loop's: {back}"
    );

    // On the fly: a folder of the reference's files, numbered as it numbers them.
    let folder = tmp.path().join("reference-folder");
    std::fs::create_dir_all(&folder).unwrap();
    for (i, g) in gcn.iter().enumerate() {
        std::fs::copy(
            g["file"].as_str().unwrap(),
            folder.join(format!("ingredient_{}.pt", [2, 9, 10][i])),
        )
        .unwrap();
    }
    std::fs::copy(made_dir.join("dgl/initial_model.pt"), folder.join("initial_model.pt")).unwrap();
    let cache = tmp.path().join("cache");
    let (ok, stdout, stderr) = common::run_bin_with(
        &[
            "soup",
            "--ingredients",
            folder.to_str().unwrap(),
            "--strategy",
            "uniform",
            "--dataset",
            "cora",
            "--device",
            "cpu",
            "--json",
            "--out",
            tmp.path().join("fly").to_str().unwrap(),
        ],
        &[("XDG_CACHE_HOME", cache.to_str().unwrap())],
    );
    assert!(ok && stderr.contains("with their init"), "{stderr}");
    let report = json(&stdout);
    let names: Vec<String> = report["ingredients"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["path"].as_str().unwrap_or_default().to_string())
        .collect();
    assert_same_accuracy(
        &report,
        &made["dgl_uniform_soup"],
        "uniform soup of the reference's folder",
    );
    let (ok, stdout, _) = common::run_bin(&["inspect", &names[2], "--json"]);
    assert!(
        ok && stdout.contains("ingredient_10.pt"),
        "the third ingredient is ingredient_10.pt (numbered order): {stdout}"
    );

    // A truncated state dict of the paper's own GAT (tensors missing): refused, naming them.
    let gat = tmp.path().join("reference-gat.safetensors");
    let t = |shape: &[i64]| tch::Tensor::zeros(shape, (tch::Kind::Float, tch::Device::Cpu));
    tch::Tensor::write_safetensors(
        &[
            ("convs.0.src_fc.weight", t(&[8, 1433])),
            ("convs.0.dst_fc.weight", t(&[8, 1433])),
            ("convs.0.attn_src_fc.weight", t(&[1, 1433])),
            ("norms.0.weight", t(&[8])),
            ("pred_linear.weight", t(&[7, 8])),
        ],
        &gat,
    )
    .unwrap();
    let gat_out = tmp.path().join("gat");
    let mut args = vec!["import", gat.to_str().unwrap(), "--out", gat_out.to_str().unwrap()];
    args.extend(data);
    let (ok, _, stderr) = common::run_bin(&args);
    assert!(
        !ok && stderr.contains("reference-gat.safetensors")
            && stderr.contains("paper-gat")
            && stderr.contains("convs.0.dst_fc.bias is missing")
            && stderr.contains("node_encoder.weight is missing"),
        "{stderr}"
    );
}

#[test]
fn what_is_not_a_state_dict_gets_a_clear_error() {
    let tmp = tempfile::tempdir().unwrap();
    let planetoid = common::planetoid_dir();
    let garbage = tmp.path().join("garbage.pt");
    std::fs::write(&garbage, b"\x80\x02not a zip").unwrap();
    let (ok, _, stderr) = common::run_bin(&[
        "import",
        garbage.to_str().unwrap(),
        "--dataset",
        "cora",
        "--data-dir",
        planetoid.to_str().unwrap(),
        "--out",
        tmp.path().join("o").to_str().unwrap(),
    ]);
    assert!(
        !ok && stderr.contains("garbage.pt")
            && stderr.contains("legacy format")
            && stderr.contains("torch.save(torch.load(OLD), NEW)"),
        "{stderr}"
    );
    let (ok, _, stderr) = common::run_bin(&[
        "import",
        "/nonexistent.pt",
        "--dataset",
        "cora",
        "--data-dir",
        planetoid.to_str().unwrap(),
        "--out",
        tmp.path().join("o").to_str().unwrap(),
    ]);
    assert!(!ok && stderr.contains("/nonexistent.pt"), "{stderr}");
    let (ok, _, stderr) = common::run_bin(&[
        "import",
        garbage.to_str().unwrap(),
        "--out",
        tmp.path().join("o").to_str().unwrap(),
    ]);
    assert!(!ok && stderr.contains("--dataset is required"), "{stderr}");
    assert!(!tmp.path().join("o").exists());
}
