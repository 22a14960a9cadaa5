//! `gnn-soup train` and the demo job.

use std::path::Path;

use anyhow::{Context, Result};
use indicatif::ProgressBar;
use serde_json::json;

use super::{percent, print_json, table::Table, DemoArgs, TrainArgs};
use crate::data::{self, DataOptions, Graph};
use crate::device::{device_name, parse_device};
use crate::model::Arch;
use crate::progress;
use crate::train::{train_ingredients, TrainConfig, TrainEvent, TrainReport};

pub fn config_from(args: &TrainArgs) -> TrainConfig {
    let d = TrainConfig::defaults(args.arch);
    TrainConfig {
        arch: args.arch,
        layers: args.layers.unwrap_or(d.layers),
        hidden: args.hidden.unwrap_or(d.hidden),
        heads: args.heads.unwrap_or(d.heads),
        dropout: args.dropout.unwrap_or(d.dropout),
        batch_norm: args.batch_norm,
        row_normalize: args.row_normalize,
        epochs: args.epochs.unwrap_or(d.epochs),
        lr: args.lr.unwrap_or(d.lr),
        weight_decay: args.weight_decay.unwrap_or(d.weight_decay),
        ingredients: args.ingredients,
        seed: args.seed,
    }
}

pub fn run(args: &TrainArgs) -> Result<()> {
    let cfg = config_from(args);
    cfg.validate()?;
    let device = parse_device(&args.device)?;
    let g = data::load(args.data.dataset_or_default(), &args.data.options())?;
    let report = train_with_progress(&g, &cfg, device, &args.out, args.overwrite, args.json)?;
    if args.json {
        return print_json(&json!({
            "dataset": report.dataset,
            "dataset_fingerprint": report.dataset_fingerprint,
            "arch": report.arch,
            "device": device_name(device),
            "init": report.init,
            "ingredients": report.ingredients,
            "seconds": report.seconds,
        }));
    }
    print_summary(&report);
    Ok(())
}

/// Trains with a progress bar per ingredient on a terminal, and one line per ingredient otherwise.
pub fn train_with_progress(g: &Graph, cfg: &TrainConfig, device: tch::Device, out: &Path, overwrite: bool, quiet: bool) -> Result<TrainReport> {
    eprintln!(
        "training {} {} ingredients on {} ({} nodes, {} edges) on {}",
        cfg.ingredients,
        cfg.arch,
        g.name,
        g.num_nodes,
        g.num_edges(),
        device_name(device)
    );
    let mut bar: Option<ProgressBar> = None;
    let n = cfg.ingredients;
    let report = train_ingredients(g, cfg, device, out, overwrite, &mut |ev| match ev {
        TrainEvent::IngredientStarted { index, seed } => {
            bar = Some(progress::steps_bar(cfg.epochs as u64, &format!("ingredient {}/{n}", index + 1)));
            tracing::info!(index, seed, "ingredient started");
        }
        TrainEvent::Epoch { epoch, loss, val_acc, .. } => {
            if let Some(b) = &bar {
                b.set_position(epoch as u64 + 1);
                b.set_message(format!("loss {loss:.4} val {}", percent(val_acc)));
            }
        }
        TrainEvent::IngredientDone { index, path, acc } => {
            if let Some(b) = bar.take() {
                b.finish_and_clear();
            }
            if !quiet || !progress::stderr_is_terminal() {
                eprintln!("ingredient {}/{n}: val {} test {}  -> {}", index + 1, percent(acc.val), percent(acc.test), path.display());
            }
        }
    })?;
    eprintln!("trained {} ingredients in {:.1}s", report.ingredients.len(), report.seconds);
    Ok(report)
}

pub fn print_summary(report: &TrainReport) {
    let mut t = Table::new(["ingredient", "seed", "val", "test"]);
    for i in &report.ingredients {
        t.row([i.path.file_name().unwrap_or_default().to_string_lossy().into_owned(), i.seed.to_string(), percent(i.val_acc), percent(i.test_acc)]);
    }
    let k = report.ingredients.len() as f64;
    let mean = |f: fn(&crate::train::TrainedIngredient) -> f64| report.ingredients.iter().map(f).sum::<f64>() / k;
    let best = |f: fn(&crate::train::TrainedIngredient) -> f64| report.ingredients.iter().map(f).fold(f64::MIN, f64::max);
    t.row(["mean".to_string(), String::new(), percent(mean(|i| i.val_acc)), percent(mean(|i| i.test_acc))]);
    t.row(["best".to_string(), String::new(), percent(best(|i| i.val_acc)), percent(best(|i| i.test_acc))]);
    println!("{}: {}", report.dataset, report.arch.describe());
    print!("{}", t.render());
}

/// The demo's ingredients (10 GCN on the embedded `csbm` graph), trained on first use and kept
/// in the cache.
pub fn demo_ingredients(device: tch::Device) -> Result<std::path::PathBuf> {
    let dir = data::cache_dir().join("demo").join("csbm-gcn");
    if dir.join(crate::checkpoint::MANIFEST).is_file() {
        eprintln!("using the demo ingredients in {}", dir.display());
    } else {
        let g = data::load("csbm", &DataOptions::default())?;
        let report = train_with_progress(&g, &TrainConfig::defaults(Arch::Gcn), device, &dir, false, false)
            .with_context(|| format!("training the demo ingredients into {}", dir.display()))?;
        print_summary(&report);
    }
    Ok(dir)
}

/// The README's main job: every strategy on the demo ingredients. On a terminal it opens the
/// dashboard; otherwise it runs headless and prints the comparison table.
pub fn demo(args: &DemoArgs) -> Result<()> {
    use std::io::IsTerminal;
    let device = parse_device(&args.device)?;
    if args.out.is_none() && std::io::stdout().is_terminal() {
        return super::tui_cmd::run(&super::TuiArgs {
            ingredients: None,
            strategy: super::StrategyChoice::All,
            attach: None,
            data: super::DataArgs { dataset: None, data_dir: None, split_seed: 0, offline: false },
            device: args.device.clone(),
            out: None,
            run: true,
        });
    }
    let base = args.out.clone().unwrap_or_else(|| data::cache_dir().join("demo"));
    let ingredients = demo_ingredients(device)?;
    let opts = DataOptions::default();
    let g = data::load("csbm", &opts)?;
    let paths = crate::checkpoint::list_ingredients(&ingredients)?;
    let run_dir = base.join("last-run");
    let strategies = crate::soup::SoupSettings::all_defaults(Arch::Gcn, "csbm");
    let job = crate::engine::JobSpec { ingredients: paths, dataset: None, data: opts, strategies, device, out_dir: Some(run_dir.clone()), overwrite: true };
    let reports = super::soup_cmd::execute(job)?;
    println!("\nsouping {} ingredients on {} ({}):", reports.first().map_or(0, |r| r.ingredients.len()), g.name, device_name(device));
    print!("{}", super::soup_cmd::comparison_table(&reports));
    super::soup_cmd::write_comparison(&run_dir, &reports)?;
    Ok(())
}
