//! The souping engine with 10 trained GCN ingredients, on Cora and on a synthetic graph: the
//! properties the engine issue names, checked against the paper's definitions.

mod common;

use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use gnn_soup::checkpoint;
use gnn_soup::data::{self, DataOptions};
use gnn_soup::engine::{self, report::SoupReport, Event, JobSpec};
use gnn_soup::model::{self, Arch, GraphTensors};
use gnn_soup::soup::{IngredientStack, InitKind, OptimizerKind, SoupSettings, Strategy};
use gnn_soup::train::{train_ingredients, TrainConfig};
use tch::Device;

/// Ten GCN ingredients from one shared init on a dataset, trained once per test build and
/// shared by every test process ([`common::shared_fixture`]).
struct Fixture {
    dir: PathBuf,
    paths: Vec<PathBuf>,
    dataset: &'static str,
    data: DataOptions,
}

fn train_fixture(name: &str, dataset: &'static str, data: DataOptions, epochs: usize) -> Fixture {
    let dir = common::shared_fixture(name, |dir| {
        let g = data::load(dataset, &data).unwrap();
        let cfg = TrainConfig { ingredients: 10, epochs, ..TrainConfig::defaults(Arch::Gcn) };
        train_ingredients(&g, &cfg, Device::Cpu, dir, false, &mut |_| {}).unwrap();
    });
    let paths = checkpoint::list_ingredients(&dir).unwrap();
    assert_eq!(paths.len(), 10);
    Fixture { dir, paths, dataset, data }
}

/// Cora (real data, `../shared`): fails, saying what is missing, when it is not there.
fn cora() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        train_fixture("cora-gcn", "cora", common::data_opts(&common::planetoid_dir()), 200)
    })
}

/// A small synthetic graph: always available, trained in seconds.
fn synthetic() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        train_fixture(
            "csbm-gcn",
            "csbm:nodes=800,train=80,val=200,test=300,homophily=0.6,noise=3",
            common::data_opts(std::path::Path::new(".")),
            60,
        )
    })
}

fn settings(f: &Fixture, strategy: Strategy) -> SoupSettings {
    SoupSettings::defaults(strategy, Arch::Gcn, f.dataset)
}

fn job(
    f: &Fixture,
    paths: &[PathBuf],
    strategies: Vec<SoupSettings>,
    out: Option<PathBuf>,
) -> JobSpec {
    JobSpec {
        ingredients: paths.to_vec(),
        dataset: None,
        data: f.data.clone(),
        strategies,
        device: Device::Cpu,
        out_dir: out,
        overwrite: false,
        resume: false,
        reevaluate: false,
    }
}

fn run(f: &Fixture, strategies: Vec<SoupSettings>, out: Option<PathBuf>) -> Vec<SoupReport> {
    let (h, events) = engine::spawn_with_channel(job(f, &f.paths, strategies, out));
    for _ in events.iter() {}
    h.join().unwrap()
}

/// The paper's properties of every strategy, on fixture `f`.
fn every_strategy_meets_the_papers_properties(f: &Fixture) {
    let out = tempfile::tempdir().unwrap();
    let all: Vec<SoupSettings> = Strategy::ALL.iter().map(|&s| settings(f, s)).collect();
    let reports = run(f, all, Some(out.path().to_path_buf()));
    assert_eq!(reports.len(), 6);
    let best_val = reports[0].ingredients.iter().map(|i| i.val_acc).fold(0.0, f64::max);
    let mean_test = reports[0].ingredients.iter().map(|i| i.test_acc).sum::<f64>() / 10.0;
    let g = data::load(f.dataset, &f.data).unwrap();
    let gt = GraphTensors::new(&g, Device::Cpu);
    for r in &reports {
        eprintln!(
            "{} {}: val {:.4} test {:.4} ({:.2}s)",
            f.dataset, r.strategy, r.val_acc, r.test_acc, r.seconds
        );
        assert!(!r.partial);
        assert!(
            r.test_acc >= mean_test - 0.01,
            "{}: test {:.4} vs mean ingredient {:.4}",
            r.strategy,
            r.test_acc,
            mean_test
        );
        if matches!(r.strategy, Strategy::Greedy | Strategy::Gis) {
            assert!(
                r.val_acc >= best_val,
                "{}: val {:.4} below the best ingredient's {:.4}",
                r.strategy,
                r.val_acc,
                best_val
            );
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
        let saved: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(report_file).unwrap()).unwrap();
        assert_eq!(saved["strategy"], r.strategy.name());
        assert!(saved["peak_rss_bytes"].as_u64().unwrap() > 0);
        // the settings block reads back as the settings that ran
        let back: SoupSettings = serde_json::from_value(saved["settings"].clone()).unwrap();
        assert_eq!(back, r.settings);
    }
    let ls = reports.iter().find(|r| r.strategy == Strategy::Ls).unwrap();
    assert_eq!(ls.history.len(), settings(f, Strategy::Ls).epochs);
    assert!(out.path().join(engine::EVENTS_FILE).is_file());
}

#[test]
fn every_strategy_meets_the_papers_properties_on_cora() {
    every_strategy_meets_the_papers_properties(cora());
}

#[test]
fn every_strategy_meets_the_papers_properties_on_a_synthetic_graph() {
    every_strategy_meets_the_papers_properties(synthetic());
}

/// A run is reproduced by its seed alone: the same settings give the same weights, also when
/// two runs overlap on two threads (no process-wide generator involved).
#[test]
fn a_seed_reproduces_ls_and_pls_even_when_runs_overlap() {
    let f = synthetic();
    let both = |seed: u64| {
        vec![
            SoupSettings { epochs: 5, init: InitKind::Normal, seed, ..settings(f, Strategy::Ls) },
            SoupSettings { epochs: 5, parts: 4, sample: 2, seed, ..settings(f, Strategy::Pls) },
        ]
    };
    // Alone first (this also caches the partition), then two at once.
    let alone = run(f, both(3), None);
    let other_thread = std::thread::spawn(move || run(synthetic(), both(3), None));
    let here = run(f, both(3), None);
    let there = other_thread.join().unwrap();
    for runs in [&here, &there] {
        for (x, y) in alone.iter().zip(runs.iter()) {
            assert_eq!(x.weights, y.weights, "{}", x.strategy);
            assert_eq!(
                x.history.iter().map(|h| h.loss).collect::<Vec<_>>(),
                y.history.iter().map(|h| h.loss).collect::<Vec<_>>(),
                "{}",
                x.strategy
            );
        }
    }
    let other = run(f, both(4), None);
    assert_ne!(other[0].weights, alone[0].weights, "another seed, other weights");
}

#[test]
fn ls_with_ones_and_no_movement_is_the_uniform_soup() {
    let f = cora();
    // One step at a negligible rate: LS's starting point (epochs 0 is refused as a setting).
    let ls = SoupSettings {
        epochs: 1,
        optimizer: OptimizerKind::Sgd,
        lr: 1e-12,
        init: InitKind::Ones,
        ..settings(f, Strategy::Ls)
    };
    let out = tempfile::tempdir().unwrap();
    let reports = run(f, vec![settings(f, Strategy::Uniform), ls], Some(out.path().to_path_buf()));
    let a = checkpoint::load(reports[0].checkpoint.as_ref().unwrap()).unwrap();
    let b = checkpoint::load(reports[1].checkpoint.as_ref().unwrap()).unwrap();
    for (k, t) in &a.params {
        let diff = (t - &b.params[k]).abs().max().double_value(&[]);
        assert!(diff <= 1e-6, "{k}: {diff}");
    }
    assert_eq!(reports[0].val_acc, reports[1].val_acc);
}

/// `--optimizer auto` (Adam at a fixed step) does not read `lr`: the same run whatever it is, and
/// its loss goes down.
#[test]
fn ls_with_the_auto_optimizer_ignores_lr_and_its_loss_goes_down() {
    use gnn_soup::soup::OptimizerKind;
    let f = synthetic();
    let auto = |lr: f64| SoupSettings {
        dropout: false,
        epochs: 30,
        optimizer: OptimizerKind::Auto,
        lr,
        ..settings(f, Strategy::Ls)
    };
    let (a, b) = (&run(f, vec![auto(1.0)], None)[0], &run(f, vec![auto(500.0)], None)[0]);
    assert_eq!(a.weights, b.weights);
    assert_eq!(a.settings.optimizer, OptimizerKind::Auto);
    let (first, last) = (a.history[0].loss, a.history.last().unwrap().loss);
    assert!(last < first, "loss {first} -> {last}");
}

#[test]
fn ls_training_loss_goes_down() {
    let f = cora();
    let ls = SoupSettings { dropout: false, ..settings(f, Strategy::Ls) };
    let r = &run(f, vec![ls], None)[0];
    let (first, last) = (r.history[0].loss, r.history.last().unwrap().loss);
    assert!(last < first, "loss {first} -> {last}");
}

/// `fit-validation off` makes no validation pass during the fit (as the reference code); on (the
/// default) Cora gets a measurement every epoch. The soup's own accuracy is the final evaluation's.
#[test]
fn fit_validation_off_measures_nothing_during_the_fit() {
    let f = cora();
    let pls = SoupSettings { epochs: 4, ..settings(f, Strategy::Pls) };
    let off = SoupSettings { fit_validation: false, ..pls.clone() };
    let (on, off) = (&run(f, vec![pls], None)[0], &run(f, vec![off], None)[0]);
    let measured =
        |r: &SoupReport| r.history.iter().map(|h| h.val_acc.is_finite()).collect::<Vec<_>>();
    assert_eq!(measured(on), vec![true; 4]);
    assert_eq!(measured(off), vec![false; 4]);
    assert_eq!(on.val_acc, off.val_acc, "the same soup either way");
    assert!(off.val_acc > 0.5, "the soup is scored after the fit: {}", off.val_acc);
}

#[test]
fn pls_over_all_parts_takes_the_same_first_step_as_ls() {
    let f = cora();
    // The paper's SGD: `auto` steps PLS's noisier gradients by a smaller fixed step than LS's.
    let ls = SoupSettings {
        epochs: 1,
        dropout: false,
        optimizer: gnn_soup::soup::OptimizerKind::Sgd,
        init: InitKind::Normal,
        seed: 7,
        ..settings(f, Strategy::Ls)
    };
    let pls =
        SoupSettings { strategy: Strategy::Pls, parts: 4, sample: 4, lr: ls.lr, ..ls.clone() };
    let reports = run(f, vec![ls, pls], None);
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
    let f = cora();
    let out = tempfile::tempdir().unwrap();
    let ls = SoupSettings { epochs: 1_000_000, ..settings(f, Strategy::Ls) };
    let (h, events) =
        engine::spawn_with_channel(job(f, &f.paths, vec![ls], Some(out.path().to_path_buf())));
    let mut epochs = 0;
    let mut cancelled_at = None;
    let mut finished = None;
    for e in events.iter() {
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
    // An epoch on Cora takes milliseconds: seconds of margin for a loaded machine.
    assert!(waited < Duration::from_secs(5), "took {waited:?} to stop");
    assert!(report.partial);
    let saved: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(engine::report_file(out.path(), Strategy::Ls)).unwrap(),
    )
    .unwrap();
    assert_eq!(saved["partial"], true);
    assert!(h.join().is_ok());
}

#[test]
fn foreign_ingredient_is_refused_with_its_name() {
    let f = cora();
    let other = tempfile::tempdir().unwrap();
    let g = data::load("cora", &f.data).unwrap();
    let cfg =
        TrainConfig { ingredients: 1, epochs: 2, seed: 99, ..TrainConfig::defaults(Arch::Gcn) };
    let foreign = train_ingredients(&g, &cfg, Device::Cpu, other.path(), false, &mut |_| {})
        .unwrap()
        .ingredients[0]
        .path
        .clone();
    let mut mixed = f.paths[..3].to_vec();
    mixed.push(foreign.clone());
    let err = format!("{:#}", IngredientStack::load(&mixed, Device::Cpu).err().unwrap());
    assert!(
        err.contains(&foreign.display().to_string()) && err.contains("initial weights"),
        "{err}"
    );
}

#[test]
fn soup_cli_json_has_the_documented_fields() {
    let f = cora();
    let dir = &f.dir;
    let out = tempfile::tempdir().unwrap();
    let planetoid = common::planetoid_dir();
    let (ok, stdout, stderr) = common::run_bin(&[
        "soup",
        "--ingredients",
        dir.to_str().unwrap(),
        "--strategy",
        "gis",
        "--granularity",
        "5",
        "--device",
        "cpu",
        "--data-dir",
        planetoid.to_str().unwrap(),
        "--out",
        out.path().to_str().unwrap(),
        "--json",
    ]);
    assert!(ok, "{stderr}");
    let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    for k in [
        "strategy",
        "val_acc",
        "test_acc",
        "seconds",
        "peak_rss_bytes",
        "partial",
        "ingredients",
        "weights",
    ] {
        assert!(v.get(k).is_some(), "missing {k}");
    }
    assert_eq!(v["ingredients"].as_array().unwrap().len(), 10);
    let soup = v["checkpoint"].as_str().unwrap();
    let (ok, stdout, stderr) = common::run_bin(&[
        "eval",
        soup,
        "--data-dir",
        planetoid.to_str().unwrap(),
        "--device",
        "cpu",
        "--json",
    ]);
    assert!(ok, "{stderr}");
    let e: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(e["test_acc"].as_f64(), v["test_acc"].as_f64());
}

#[test]
fn a_recipe_runs_and_its_report_reruns_to_the_same_soup() {
    let f = synthetic();
    let dir = tempfile::tempdir().unwrap();
    let recipe = dir.path().join("r.toml");
    let text = format!(
        "description = \"test\"\ningredients = {:?}\ndataset = {:?}\nstrategy = [\"gis\", \"ls\"]\nout = \"run\"\ndevice = \"cpu\"\n\
         [settings]\nlr = 3\n[gis]\ngranularity = 3\n[ls]\nepochs = 6\nt0 = 2\n",
        f.dir, f.dataset
    );
    std::fs::write(&recipe, text).unwrap();
    let (ok, stdout, stderr) =
        common::run_bin(&["soup", "--recipe", recipe.to_str().unwrap(), "--json"]);
    assert!(ok, "{stderr}");
    let reports: Vec<serde_json::Value> = serde_json::from_str(&stdout).unwrap();
    assert_eq!(reports.len(), 2);
    let (gis, ls) = (&reports[0], &reports[1]);
    assert_eq!(
        (gis["strategy"].as_str(), gis["settings"]["granularity"].as_u64()),
        (Some("gis"), Some(3))
    );
    assert_eq!(
        (
            ls["settings"]["epochs"].as_u64(),
            ls["settings"]["lr"].as_f64(),
            ls["settings"]["t0"].as_u64()
        ),
        (Some(6), Some(3.0), Some(2))
    );
    assert!(
        ls["settings"]["source"].as_str().unwrap().starts_with("recipe "),
        "{}",
        ls["settings"]["source"]
    );
    // The run directory is relative to the recipe.
    let report = dir.path().join("run/report-ls.json");
    assert!(report.is_file());
    // The report reruns LS to the same soup; a flag overrides it.
    let rerun = dir.path().join("rerun");
    let (ok, stdout, stderr) = common::run_bin(&[
        "soup",
        "--recipe",
        report.to_str().unwrap(),
        "--out",
        rerun.to_str().unwrap(),
        "--device",
        "cpu",
        "--json",
    ]);
    assert!(ok, "{stderr}");
    let again: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(again["strategy"], "ls");
    assert_eq!(again["test_acc"], ls["test_acc"]);
    assert_eq!(again["weights"], ls["weights"]);
    let shorter = dir.path().join("shorter");
    let (ok, stdout, stderr) = common::run_bin(&[
        "soup",
        "--recipe",
        report.to_str().unwrap(),
        "--epochs",
        "2",
        "--out",
        shorter.to_str().unwrap(),
        "--device",
        "cpu",
        "--json",
    ]);
    assert!(ok, "{stderr}");
    let short: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(
        (short["settings"]["epochs"].as_u64(), short["history"].as_array().map(Vec::len)),
        (Some(2), Some(2))
    );
    // The workbench takes the same recipes; without a terminal, --run soups headless.
    let in_tui = dir.path().join("tui");
    let (ok, _, stderr) = common::run_bin(&[
        "tui",
        "--recipe",
        report.to_str().unwrap(),
        "--run",
        "--out",
        in_tui.to_str().unwrap(),
        "--device",
        "cpu",
    ]);
    assert!(ok, "{stderr}");
    let tui: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(in_tui.join("report-ls.json")).unwrap())
            .unwrap();
    assert_eq!((&tui["weights"], &tui["test_acc"]), (&ls["weights"], &ls["test_acc"]));
    assert!(
        !in_tui.join("report-gis.json").exists(),
        "the report's one strategy, not the workbench's default of all"
    );
    // A recipe without ingredients asks for them, naming the recipe.
    let bare = dir.path().join("bare.toml");
    std::fs::write(&bare, "strategy = \"ls\"\n").unwrap();
    let (ok, _, stderr) = common::run_bin(&[
        "soup",
        "--recipe",
        bare.to_str().unwrap(),
        "--out",
        shorter.to_str().unwrap(),
    ]);
    assert!(
        !ok && stderr.contains("--ingredients is needed: the recipe")
            && stderr.contains("bare.toml"),
        "{stderr}"
    );
}

/// A job takes each ingredient's accuracies from its checkpoint when `train` recorded them on the
/// same dataset (same fingerprint), instead of evaluating every ingredient again (minutes on a
/// products-sized graph); `reevaluate` computes them, and gets exactly what was recorded. One
/// copy's recorded accuracies are altered, so only a reuse can report them.
#[test]
fn recorded_ingredient_accuracies_are_reused_unless_reevaluate_is_asked() {
    let f = synthetic();
    let tmp = tempfile::tempdir().unwrap();
    let recorded: Vec<_> = f.paths[..2].iter().map(|p| checkpoint::read_meta(p).unwrap()).collect();
    let paths: Vec<PathBuf> = (0..2)
        .map(|i| {
            let mut ck = checkpoint::load(&f.paths[i]).unwrap();
            if i == 0 {
                (ck.meta.val_acc, ck.meta.test_acc) = (Some(0.125), Some(0.375));
            }
            let to = tmp.path().join(format!("ingredient-{i:02}.safetensors"));
            checkpoint::save(&to, &ck.params, &ck.meta, false).unwrap();
            to
        })
        .collect();
    let run = |reevaluate: bool| {
        let job =
            JobSpec { reevaluate, ..job(f, &paths, vec![settings(f, Strategy::Uniform)], None) };
        let (h, events) = engine::spawn_with_channel(job);
        for _ in events.iter() {}
        h.join().unwrap().remove(0)
    };

    let reused = run(false);
    let accuracies =
        |r: &SoupReport, i: usize| (r.ingredients[i].val_acc, r.ingredients[i].test_acc);
    assert_eq!(accuracies(&reused, 0), (0.125, 0.375));
    assert_eq!(
        accuracies(&reused, 1),
        (recorded[1].val_acc.unwrap(), recorded[1].test_acc.unwrap())
    );
    assert!(reused.ingredients.iter().all(|i| i.recorded), "the report says so");

    // The same count of correct nodes; the mean itself may differ in its last bit (libtorch's
    // reduction order depends on its thread count, which training sets per worker).
    let evaluated = run(true);
    for (i, meta) in recorded.iter().enumerate() {
        let (val, test) = accuracies(&evaluated, i);
        assert!(
            (val - meta.val_acc.unwrap()).abs() < 1e-9
                && (test - meta.test_acc.unwrap()).abs() < 1e-9,
            "ingredient {i}: evaluated ({val}, {test}), train recorded {:?}",
            (meta.val_acc, meta.test_acc)
        );
    }
    assert!(evaluated.ingredients.iter().all(|i| !i.recorded));
}
