//! `gnn-soup soup` (headless souping with progress bars) and `gnn-soup eval`.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};

use anyhow::{bail, Context, Result};
use indicatif::ProgressBar;

use super::{percent, print_json, table::Table, EvalArgs, SoupArgs, StrategyChoice};
use crate::checkpoint;
use crate::data;
use crate::device::parse_device;
use crate::engine::{self, report::SoupReport, Event, JobSpec};
use crate::model::{self, GraphTensors};
use crate::progress;
use crate::soup::{SoupSettings, Strategy};

/// Settings for each strategy to run: defaults for the architecture/dataset, then overrides.
pub fn settings_from(args: &SoupArgs, arch: crate::model::Arch, dataset: &str) -> Vec<SoupSettings> {
    let strategies: Vec<Strategy> = match args.strategy {
        StrategyChoice::All => Strategy::ALL.to_vec(),
        StrategyChoice::One(s) => vec![s],
    };
    strategies
        .into_iter()
        .map(|strategy| {
            let mut s = SoupSettings::defaults(strategy, arch, dataset);
            if let Some(v) = args.granularity {
                s.granularity = v;
            }
            if let Some(v) = args.epochs {
                s.epochs = v;
            }
            if let Some(v) = args.lr {
                s.lr = v;
            }
            if let Some(v) = args.t0 {
                s.t0 = v;
            }
            if let Some(v) = args.init {
                s.init = v;
            }
            if let Some(v) = args.parts {
                s.parts = v;
            }
            if let Some(v) = args.sample {
                s.sample = v;
            }
            if let Some(v) = args.mix {
                s.mix = v;
            }
            if args.no_dropout {
                s.dropout = false;
            }
            if let Some(v) = args.holdout {
                s.holdout = v;
            }
            if let Some(v) = args.patience {
                s.patience = v;
            }
            s.seed = args.seed;
            s
        })
        .collect()
}

pub fn run(args: &SoupArgs) -> Result<()> {
    let device = parse_device(&args.device)?;
    let ingredients = checkpoint::list_ingredients(&args.ingredients)?;
    let meta = checkpoint::read_meta(&ingredients[0])?;
    let dataset = args.data.dataset.clone().unwrap_or_else(|| meta.dataset.clone());
    let strategies = settings_from(args, meta.arch.arch, &dataset);
    for s in &strategies {
        s.validate().with_context(|| format!("invalid settings for {}", s.strategy))?;
    }
    let job = JobSpec {
        ingredients,
        dataset: Some(dataset),
        data: args.data.options(),
        strategies,
        device,
        out_dir: Some(args.out.clone()),
        overwrite: args.overwrite,
    };
    let reports = execute(job)?;
    if args.json {
        return if reports.len() == 1 && !matches!(args.strategy, StrategyChoice::All) { print_json(&reports[0]) } else { print_json(&reports) };
    }
    if reports.len() > 1 {
        print!("{}", comparison_table(&reports));
        write_comparison(&args.out, &reports)?;
    } else if let Some(r) = reports.first() {
        print!("{}", comparison_table(std::slice::from_ref(r)));
    }
    Ok(())
}

/// Writes `comparison.md` and `comparison.json` into the run directory.
pub fn write_comparison(out: &std::path::Path, reports: &[SoupReport]) -> Result<()> {
    checkpoint::write_atomic(&out.join("comparison.md"), comparison_markdown(reports).as_bytes())?;
    let json: Vec<serde_json::Value> = reports.iter().map(summary_json).collect();
    checkpoint::write_atomic(&out.join("comparison.json"), serde_json::to_string_pretty(&json)?.as_bytes())?;
    eprintln!("wrote {} and {}", out.join("comparison.md").display(), out.join("comparison.json").display());
    Ok(())
}

/// Runs a job on the engine thread, showing progress on stderr; Ctrl-C cancels cleanly.
pub fn execute(job: JobSpec) -> Result<Vec<SoupReport>> {
    let handle = engine::spawn(job);
    // Ctrl-C asks the engine to stop after its current step (the partial soup is kept); a second
    // Ctrl-C exits at once.
    let flag = handle.cancel_flag();
    let presses = AtomicUsize::new(0);
    let _ = ctrlc::set_handler(move || {
        if presses.fetch_add(1, Ordering::SeqCst) > 0 {
            std::process::exit(130);
        }
        eprintln!("\ncancelling: finishing the current step (Ctrl-C again to quit now)");
        flag.store(true, Ordering::SeqCst);
    });
    let mut view = HeadlessView::default();
    for event in handle.events.iter() {
        view.show(&event);
    }
    handle.join()
}

/// Progress bars on a terminal, a few plain lines otherwise.
#[derive(Default)]
struct HeadlessView {
    bar: Option<ProgressBar>,
    steps: usize,
    last_line: HashMap<String, usize>,
}

impl HeadlessView {
    fn show(&mut self, e: &Event) {
        let tty = progress::stderr_is_terminal();
        match e {
            Event::Started { strategy, dataset, nodes, edges, device, ingredients, steps, .. } => {
                eprintln!("{strategy}: {} ingredients on {dataset} ({nodes} nodes, {edges} edges), {device}", ingredients.len());
                self.steps = *steps;
                self.bar = (*steps > 0).then(|| progress::steps_bar(*steps as u64, strategy.name()));
            }
            Event::Epoch { epoch, epochs, loss, val_acc, lr, .. } => {
                let msg = format!("loss {loss:.4} val {} lr {lr:.3}", percent(*val_acc));
                if let Some(b) = &self.bar {
                    b.set_position(*epoch as u64 + 1);
                    b.set_message(msg.clone());
                }
                if !tty && (epoch + 1) % (epochs / 10).max(1) == 0 {
                    eprintln!("  epoch {}/{epochs}: {msg}", epoch + 1);
                }
            }
            Event::Candidate { ingredient, factor, val_acc, accepted, step, steps } => {
                if let Some(b) = &self.bar {
                    b.set_position(*step as u64);
                }
                let line = format!("  candidate {step}/{steps}: ingredient {ingredient} factor {factor:.3} val {} {}", percent(*val_acc), if *accepted { "kept" } else { "rejected" });
                match &self.bar {
                    Some(b) if tty => b.println(line),
                    _ => eprintln!("{line}"),
                }
            }
            Event::PartitionSample { parts, .. } => {
                if let Some(b) = &self.bar {
                    b.set_prefix(format!("pls {:>3} parts", parts.len()));
                }
            }
            Event::Log { level, message } => {
                let n = self.last_line.entry(message.clone()).or_default();
                *n += 1;
                if *n <= 3 {
                    match &self.bar {
                        Some(b) if tty => b.println(format!("{level}: {message}")),
                        _ => eprintln!("{level}: {message}"),
                    }
                }
            }
            Event::Evaluation { .. } => {}
            Event::Finished { report } => {
                if let Some(b) = self.bar.take() {
                    b.finish_and_clear();
                }
                let partial = if report.partial { " (partial: cancelled)" } else { "" };
                eprintln!("{}: val {} test {} in {:.2}s{partial}", report.strategy, percent(report.val_acc), percent(report.test_acc), report.seconds);
            }
            Event::Failed { message } => {
                if let Some(b) = self.bar.take() {
                    b.finish_and_clear();
                }
                eprintln!("failed: {message}");
            }
        }
    }
}

fn mean(v: impl Iterator<Item = f64>) -> f64 {
    let v: Vec<f64> = v.collect();
    v.iter().sum::<f64>() / v.len().max(1) as f64
}

pub fn comparison_rows(reports: &[SoupReport]) -> Vec<[String; 7]> {
    let mut rows = Vec::new();
    if let Some(r) = reports.first() {
        let best = r.ingredients.iter().max_by(|a, b| a.val_acc.total_cmp(&b.val_acc));
        rows.push(["ingredients (mean)".into(), percent(mean(r.ingredients.iter().map(|i| i.val_acc))), percent(mean(r.ingredients.iter().map(|i| i.test_acc))), "-".into(), "-".into(), "-".into(), String::new()]);
        if let Some(b) = best {
            rows.push(["best ingredient (val)".into(), percent(b.val_acc), percent(b.test_acc), "-".into(), "-".into(), "-".into(), String::new()]);
        }
    }
    for r in reports {
        rows.push([
            r.strategy.to_string(),
            percent(r.val_acc),
            percent(r.test_acc),
            format!("{:.2}", r.seconds),
            format!("{:.0}", r.peak_rss_bytes as f64 / (1 << 20) as f64),
            r.peak_device_bytes.map_or("-".into(), |b| format!("{:.0}", b as f64 / (1 << 20) as f64)),
            if r.partial { "partial".into() } else { String::new() },
        ]);
    }
    rows
}

pub fn comparison_table(reports: &[SoupReport]) -> String {
    let mut t = Table::new(["strategy", "val", "test", "seconds", "peak RSS MiB", "peak GPU MiB", ""]);
    for r in comparison_rows(reports) {
        t.row(r);
    }
    t.render()
}

fn comparison_markdown(reports: &[SoupReport]) -> String {
    let mut s = String::from("| strategy | val | test | seconds | peak RSS MiB | peak GPU MiB | |\n|---|---|---|---|---|---|---|\n");
    for r in comparison_rows(reports) {
        s.push_str(&format!("| {} |\n", r.join(" | ")));
    }
    s
}

fn summary_json(r: &SoupReport) -> serde_json::Value {
    serde_json::json!({
        "strategy": r.strategy, "val_acc": r.val_acc, "test_acc": r.test_acc, "seconds": r.seconds,
        "peak_rss_bytes": r.peak_rss_bytes, "peak_device_bytes": r.peak_device_bytes, "partial": r.partial, "checkpoint": r.checkpoint,
    })
}

pub fn eval(args: &EvalArgs) -> Result<()> {
    let device = parse_device(&args.device)?;
    let ck = checkpoint::load(&args.checkpoint)?;
    let dataset = args.data.dataset.clone().unwrap_or_else(|| ck.meta.dataset.clone());
    let g = data::load(&dataset, &args.data.options())?;
    if g.num_features as i64 != ck.meta.arch.in_dim || g.num_classes as i64 > ck.meta.arch.out_dim {
        bail!(
            "{} expects {} features and {} classes; {dataset} has {} and {}",
            args.checkpoint.display(),
            ck.meta.arch.in_dim,
            ck.meta.arch.out_dim,
            g.num_features,
            g.num_classes
        );
    }
    if g.fingerprint() != ck.meta.dataset_fingerprint {
        eprintln!("warning: {} was trained on {} ({}); evaluating on {} ({})", args.checkpoint.display(), ck.meta.dataset, ck.meta.dataset_fingerprint, g.name, g.fingerprint());
    }
    let gt = GraphTensors::new(&g, device);
    let acc = model::evaluate(&ck.meta.arch, &checkpoint::to_device(&ck.params, device), &gt);
    if args.json {
        return print_json(&serde_json::json!({ "checkpoint": args.checkpoint, "dataset": g.name, "train_acc": acc.train, "val_acc": acc.val, "test_acc": acc.test }));
    }
    println!("{}: train {} val {} test {}", args.checkpoint.display(), percent(acc.train), percent(acc.val), percent(acc.test));
    Ok(())
}
