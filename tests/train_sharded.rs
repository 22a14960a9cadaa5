//! Training beyond one worker: a pool of workers on several devices (here `cpu,cpu`), shards of a
//! run in one shared directory (as a Slurm array trains it) and `collect`, each checked against
//! the same run trained by one worker in one process: the same files, the same weights.

mod common;

use std::path::Path;

use gnn_soup::checkpoint;
use gnn_soup::data::{self, Graph};
use gnn_soup::model::Arch;
use gnn_soup::train::{collect, train, write_init, Shard, TrainConfig, TrainPlan};
use tch::Device;

const DATASET: &str = "csbm:nodes=400,train=60,val=100,test=100";

fn graph() -> Graph {
    data::load(DATASET, &common::data_opts(Path::new("."))).unwrap()
}

fn config() -> TrainConfig {
    TrainConfig { ingredients: 5, epochs: 15, ..TrainConfig::defaults(Arch::Gcn) }
}

/// Every tensor of every ingredient of `a` equals `b`'s, bit for bit, and so do the manifests.
fn assert_same_run(a: &Path, b: &Path) {
    let (ma, mb) =
        (checkpoint::list_ingredients(a).unwrap(), checkpoint::list_ingredients(b).unwrap());
    assert_eq!(ma.len(), mb.len());
    for (x, y) in ma.iter().zip(&mb) {
        assert_eq!(x.file_name(), y.file_name());
        let (cx, cy) = (checkpoint::load(x).unwrap(), checkpoint::load(y).unwrap());
        assert_eq!(cx.meta.seed, cy.meta.seed);
        assert_eq!(cx.meta.init_fingerprint, cy.meta.init_fingerprint);
        for (name, t) in &cx.params {
            assert!(
                t.equal(&cy.params[name]),
                "{} {name} differs from {}",
                x.display(),
                y.display()
            );
        }
    }
    let manifest = |d: &Path| std::fs::read_to_string(d.join(checkpoint::MANIFEST)).unwrap();
    let strip = |m: String| {
        m.lines().filter(|l| !l.contains("tool_version")).collect::<Vec<_>>().join("\n")
    };
    assert_eq!(strip(manifest(a)), strip(manifest(b)));
}

#[test]
fn a_pool_of_workers_trains_what_one_worker_trains() {
    let g = graph();
    let dir = tempfile::tempdir().unwrap();
    let (pool, one) = (dir.path().join("pool"), dir.path().join("one"));
    let mut workers_seen = std::collections::BTreeSet::new();
    let report = train(
        &g,
        &config(),
        &TrainPlan { devices: vec![Device::Cpu, Device::Cpu], shard: None, overwrite: false },
        &pool,
        &mut |e| {
            if let gnn_soup::train::TrainEvent::IngredientDone { worker, .. } = e {
                workers_seen.insert(worker);
            }
        },
    )
    .unwrap();
    assert!(report.complete && report.ingredients.len() == 5);
    assert_eq!(workers_seen.len(), 2, "both workers trained");
    // The pool gave each CPU worker half the cores; one worker in this process now uses the same
    // thread count, so the arithmetic, and the weights, are the same bit for bit.
    train(&g, &config(), &TrainPlan::on(Device::Cpu), &one, &mut |_| {}).unwrap();
    assert_same_run(&pool, &one);
}

#[test]
fn shards_in_one_directory_collect_into_the_single_process_run() {
    let g = graph();
    let dir = tempfile::tempdir().unwrap();
    let (shared, one) = (dir.path().join("shared"), dir.path().join("one"));
    let (init, fp) = write_init(&g, &config(), &shared, false).unwrap();
    assert!(init.is_file());
    // Collecting before the shards ran names what is missing.
    let err = format!("{:#}", collect(&shared).unwrap_err());
    assert!(err.contains("5 of 5 ingredients are missing (ingredient-00, ingredient-01, ingredient-02, ingredient-03, ingredient-04)"), "{err}");
    for index in [2, 0, 1] {
        let shard = Shard { index, count: 3 };
        let r = train(
            &g,
            &config(),
            &TrainPlan { devices: vec![Device::Cpu], shard: Some(shard), overwrite: false },
            &shared,
            &mut |_| {},
        )
        .unwrap();
        assert!(!r.complete, "a shard writes no manifest");
        let mine: Vec<u64> = r.ingredients.iter().map(|i| i.seed - 1).collect();
        assert_eq!(
            mine,
            (0..5).filter(|i| i % 3 == index as u64).collect::<Vec<_>>(),
            "shard {shard} trains its share"
        );
        assert!(!shared.join(checkpoint::MANIFEST).exists());
        if index == 2 {
            let err = format!("{:#}", collect(&shared).unwrap_err());
            assert!(err.contains("4 of 5 ingredients are missing (ingredient-00, ingredient-01, ingredient-03, ingredient-04)"), "{err}");
        }
    }
    // A shard run again finds its share done and trains nothing.
    let again = train(
        &g,
        &config(),
        &TrainPlan {
            devices: vec![Device::Cpu],
            shard: Some(Shard { index: 1, count: 3 }),
            overwrite: false,
        },
        &shared,
        &mut |e| {
            assert!(
                matches!(e, gnn_soup::train::TrainEvent::IngredientKept { .. }),
                "nothing is trained again"
            );
        },
    );
    assert_eq!(again.unwrap().ingredients.len(), 2);
    let report = collect(&shared).unwrap();
    assert_eq!(report.ingredients.len(), 5);
    train(&g, &config(), &TrainPlan::on(Device::Cpu), &one, &mut |_| {}).unwrap();
    assert_same_run(&shared, &one);
    assert_eq!(
        checkpoint::read_meta(&one.join(checkpoint::INIT_FILE)).unwrap().init_fingerprint,
        fp
    );
}

#[test]
fn a_shard_refuses_an_init_of_another_run_and_bad_shards_are_refused() {
    let g = graph();
    let dir = tempfile::tempdir().unwrap();
    write_init(&g, &TrainConfig { seed: 7, ..config() }, dir.path(), false).unwrap();
    let err = format!(
        "{:#}",
        train(
            &g,
            &config(),
            &TrainPlan {
                devices: vec![Device::Cpu],
                shard: Some(Shard { index: 0, count: 2 }),
                overwrite: false
            },
            dir.path(),
            &mut |_| {}
        )
        .unwrap_err()
    );
    assert!(err.contains("init.safetensors is from another training run"), "{err}");
    assert_eq!(Shard::parse("2/3"), Ok(Shard { index: 2, count: 3 }));
    assert!(Shard::parse("3/3").unwrap_err().contains("must be below N"));
    assert!(Shard::parse("1-3").unwrap_err().contains("expected I/N"));
    // On the command line: the same refusals, and --collect of a directory with no run.
    let (ok, _, stderr) =
        common::run_bin(&["train", "--dataset", DATASET, "--shard", "3/3", "--out", "x"]);
    assert!(!ok && stderr.contains("must be below N"), "{stderr}");
    let (ok, _, stderr) =
        common::run_bin(&["train", "--collect", dir.path().join("nothing").to_str().unwrap()]);
    assert!(!ok && stderr.contains("holds no training run's init"), "{stderr}");
}

#[test]
fn train_writes_its_events_for_the_viewer_and_the_viewer_reads_them() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let (ok, _, stderr) = common::run_bin(&[
        "train",
        "--dataset",
        DATASET,
        "--ingredients",
        "3",
        "--epochs",
        "4",
        "--devices",
        "cpu,cpu",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(ok, "{stderr}");
    assert!(
        stderr.contains("on worker 0 (cpu)") || stderr.contains("on worker 1 (cpu)"),
        "{stderr}"
    );
    let text = std::fs::read_to_string(out.join(gnn_soup::train::TRAIN_EVENTS_FILE)).unwrap();
    let records: Vec<gnn_soup::train::TrainRecord> =
        text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    use gnn_soup::train::TrainRecord as R;
    assert!(
        matches!(&records[0], R::Started { ingredients: 3, epochs: 4, devices, .. } if devices.len() == 2)
    );
    assert_eq!(records.iter().filter(|r| matches!(r, R::Epoch { .. })).count(), 12);
    assert!(matches!(records.last(), Some(R::Finished { complete: true, .. })));
    let mut view = gnn_soup::tui::state::TrainingView::default();
    for r in &records {
        view.apply(r);
    }
    assert_eq!(view.done.len(), 3);
    assert_eq!(view.workers.iter().map(|w| w.finished).sum::<usize>(), 3);
    assert!(view.workers.iter().all(|w| w.ingredient.is_none()));
    // A shard writes a file of its own, so shards sharing a directory never share one.
    let (ok, _, stderr) = common::run_bin(&[
        "train",
        "--dataset",
        DATASET,
        "--ingredients",
        "3",
        "--epochs",
        "2",
        "--shard",
        "1/2",
        "--out",
        dir.path().join("shared").to_str().unwrap(),
    ]);
    assert!(ok, "{stderr}");
    assert!(dir.path().join("shared/train-events-shard-1.jsonl").is_file());
}

#[test]
fn workers_sharing_a_device_are_checked_for_memory_together() {
    // csbm:nodes=40000 with 3x256 GCN layers needs about 0.32 GiB a worker: under a 480 MiB
    // limit one worker fits and two on the same device do not.
    let tmp = tempfile::tempdir().unwrap();
    let train = |devices: &str, out: &str| {
        let out = tmp.path().join(out);
        let args = [
            "train",
            "--dataset",
            "csbm:nodes=40000",
            "--hidden",
            "256",
            "--layers",
            "3",
            "--ingredients",
            "1",
            "--epochs",
            "1",
            "--devices",
            devices,
            "--out",
            out.to_str().unwrap(),
        ];
        let (ok, _, stderr) = common::run_bin_with(&args, &[("GNN_SOUP_MEMORY_LIMIT", "480MiB")]);
        (ok, stderr, out)
    };
    let (ok, stderr, _) = train("cpu", "one");
    assert!(ok, "{stderr}");
    let (ok, stderr, out) = train("cpu,cpu", "two");
    assert!(!ok, "{stderr}");
    assert!(
        stderr.contains("needs about 0.63 GiB (0.32 GiB for each of its 2 workers on cpu)")
            && stderr.contains("fewer workers on it (--devices)")
            && !stderr.contains("panicked"),
        "{stderr}"
    );
    assert!(!out.join("ingredient-00.safetensors").exists());
}
