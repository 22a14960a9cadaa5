//! The souping engine: a job (ingredients, dataset, strategies, device) runs on its own thread,
//! owns every tensor, and streams [`Event`]s to whoever watches (progress bars, the TUI) and to
//! `events.jsonl` in the run directory. Cancellation is a shared flag checked every step.

pub mod event;
pub mod memory;
pub mod report;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use tch::Device;

pub use event::Event;
use report::{IngredientAccuracy, IngredientResult, SoupReport};

use crate::checkpoint::{self, CheckpointKind, CheckpointMeta};
use crate::data::{self, DataOptions};
use crate::device::device_name;
use crate::model::{self, GraphTensors};
use crate::soup::{self, IngredientStack, SoupContext, SoupSettings};

/// What to soup, on what, how, and where results go.
#[derive(Debug, Clone)]
pub struct JobSpec {
    pub ingredients: Vec<PathBuf>,
    /// Dataset to soup on; None: the one recorded in the checkpoints.
    pub dataset: Option<String>,
    pub data: DataOptions,
    /// One entry per strategy to run, in order, on the same loaded ingredients.
    pub strategies: Vec<SoupSettings>,
    pub device: Device,
    /// Run directory: souped checkpoints, reports and `events.jsonl`. None: nothing written.
    pub out_dir: Option<PathBuf>,
    pub overwrite: bool,
}

pub const EVENTS_FILE: &str = "events.jsonl";

pub fn soup_file(out: &Path, strategy: soup::Strategy) -> PathBuf {
    out.join(format!("soup-{strategy}.safetensors"))
}
pub fn report_file(out: &Path, strategy: soup::Strategy) -> PathBuf {
    out.join(format!("report-{strategy}.json"))
}

/// A running job.
pub struct JobHandle {
    pub events: mpsc::Receiver<Event>,
    cancel: Arc<AtomicBool>,
    thread: Option<JoinHandle<Result<Vec<SoupReport>>>>,
}

impl JobHandle {
    /// Asks the job to stop after its current step; it still reports the best soup so far.
    pub fn cancel(&self) {
        self.cancel.store(true, Ordering::Relaxed);
    }
    /// Moves the event receiver out (to another thread); the handle keeps cancel and join.
    pub fn take_events(&mut self) -> mpsc::Receiver<Event> {
        std::mem::replace(&mut self.events, mpsc::channel().1)
    }
    pub fn cancel_flag(&self) -> Arc<AtomicBool> {
        self.cancel.clone()
    }
    /// Waits for the job; a panic inside it becomes an error.
    pub fn join(mut self) -> Result<Vec<SoupReport>> {
        match self.thread.take().expect("joined once").join() {
            Ok(r) => r,
            Err(p) => bail!("the souping job panicked: {}", panic_message(&p)),
        }
    }
}

fn panic_message(p: &Box<dyn std::any::Any + Send>) -> String {
    p.downcast_ref::<String>().cloned().or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string())).unwrap_or_else(|| "unknown panic".into())
}

/// Starts `job` on a named thread.
pub fn spawn(job: JobSpec) -> JobHandle {
    let (tx, rx) = mpsc::channel();
    let cancel = Arc::new(AtomicBool::new(false));
    let flag = cancel.clone();
    let thread = std::thread::Builder::new()
        .name("soup-engine".into())
        .spawn(move || {
            let tx = Mutex::new(tx);
            let emit = |e: Event| {
                let _ = tx.lock().unwrap().send(e);
            };
            let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run_job(&job, &flag, &emit)));
            let result = match result {
                Ok(r) => r,
                Err(p) => Err(anyhow::anyhow!("the souping job panicked: {}", panic_message(&p))),
            };
            if let Err(e) = &result {
                emit(Event::Failed { message: format!("{e:#}") });
            }
            result
        })
        .expect("cannot start the engine thread");
    JobHandle { events: rx, cancel, thread: Some(thread) }
}

/// Appends every event to `events.jsonl` as it happens (for `tui --attach`), then forwards it.
struct EventLog<'a> {
    file: Option<Mutex<std::fs::File>>,
    forward: &'a dyn Fn(Event),
}

impl EventLog<'_> {
    fn emit(&self, e: Event) {
        if let Some(f) = &self.file {
            if let Ok(line) = serde_json::to_string(&e) {
                let mut f = f.lock().unwrap();
                let _ = writeln!(f, "{line}");
                let _ = f.flush();
            }
        }
        (self.forward)(e);
    }
}

/// Runs a job on the calling thread (the CLI and tests use [`spawn`]).
pub fn run_job(job: &JobSpec, cancel: &AtomicBool, forward: &dyn Fn(Event)) -> Result<Vec<SoupReport>> {
    if job.ingredients.is_empty() {
        bail!("no ingredients to soup");
    }
    for s in &job.strategies {
        s.validate()?;
    }
    let file = match &job.out_dir {
        Some(dir) => {
            if !job.overwrite {
                for s in &job.strategies {
                    for p in [soup_file(dir, s.strategy), report_file(dir, s.strategy)] {
                        if p.exists() {
                            bail!("{} already exists; choose another --out or pass --overwrite", p.display());
                        }
                    }
                }
            }
            std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
            let path = dir.join(EVENTS_FILE);
            let f = std::fs::OpenOptions::new().create(true).write(true).truncate(true).open(&path).with_context(|| format!("cannot write {}", path.display()))?;
            Some(Mutex::new(f))
        }
        None => None,
    };
    let log = EventLog { file, forward };
    let emit = |e: Event| log.emit(e);

    let load_start = Instant::now();
    let first_meta = checkpoint::read_meta(&job.ingredients[0])?;
    let dataset = job.dataset.clone().unwrap_or_else(|| first_meta.dataset.clone());
    let graph = data::load(&dataset, &job.data).with_context(|| format!("loading dataset {dataset} for the ingredients"))?;
    if graph.fingerprint() != first_meta.dataset_fingerprint {
        bail!(
            "{} was trained on {} (fingerprint {}), but {dataset} loads as fingerprint {}: not the same data",
            job.ingredients[0].display(),
            first_meta.dataset,
            first_meta.dataset_fingerprint,
            graph.fingerprint()
        );
    }
    let stack = IngredientStack::load(&job.ingredients, job.device)?;
    let gt = GraphTensors::new(&graph, job.device);
    let load_seconds = load_start.elapsed().as_secs_f64();

    // Every report carries the ingredients' and the uniform soup's accuracies: measure them once.
    let mut ingredients = Vec::with_capacity(stack.len());
    for i in 0..stack.len() {
        let acc = model::evaluate(&stack.spec, &stack.ingredient(i), &gt);
        emit(Event::Evaluation { what: format!("ingredient {i}"), val_acc: acc.val, test_acc: acc.test });
        ingredients.push(IngredientResult { path: stack.paths[i].clone(), val_acc: acc.val, test_acc: acc.test });
    }
    let n = stack.len();
    let uniform_acc = model::evaluate(&stack.spec, &stack.mix_global(&vec![1.0 / n as f64; n]), &gt);
    emit(Event::Evaluation { what: "uniform soup".into(), val_acc: uniform_acc.val, test_acc: uniform_acc.test });
    let ingredient_val: Vec<f64> = ingredients.iter().map(|i| i.val_acc).collect();

    let mut reports = Vec::new();
    for settings in &job.strategies {
        let (groups, _) = stack.groups(settings.mix);
        let steps = match settings.strategy {
            soup::Strategy::Ls | soup::Strategy::Pls => settings.epochs,
            soup::Strategy::Greedy | soup::Strategy::Gis => n - 1,
            _ => 0,
        };
        emit(Event::Started {
            strategy: settings.strategy,
            dataset: graph.name.clone(),
            nodes: graph.num_nodes,
            edges: graph.num_edges(),
            device: device_name(job.device),
            ingredients: stack.paths.iter().map(|p| p.display().to_string()).collect(),
            groups: if settings.strategy.makes_soup() && matches!(settings.strategy, soup::Strategy::Ls | soup::Strategy::Pls) { groups } else { vec!["all".into()] },
            steps,
            parts: (settings.strategy == soup::Strategy::Pls).then_some(settings.parts),
        });
        memory::reset_peak_rss();
        let rss_start_bytes = memory::rss_bytes();
        let device_peak = memory::DevicePeakSampler::start(job.device);
        let start = Instant::now();
        let ctx = SoupContext { stack: &stack, graph: &graph, gt: &gt, settings, emit: &emit, cancel, ingredient_val: &ingredient_val };
        let outcome = soup::run_strategy(&ctx)?;
        let (val_acc, test_acc) = {
            let _g = tch::no_grad_guard();
            let logits = match (&outcome.params, &outcome.logits) {
                (Some(p), _) => model::forward(&stack.spec, p, &gt, false),
                (None, Some(l)) => l.shallow_clone(),
                (None, None) => bail!("{} produced no result", settings.strategy),
            };
            (model::accuracy(&logits, &gt.labels, &gt.val_idx), model::accuracy(&logits, &gt.labels, &gt.test_idx))
        };
        let seconds = start.elapsed().as_secs_f64();
        let peak_device_bytes = device_peak.and_then(memory::DevicePeakSampler::finish);
        let mut report = SoupReport {
            strategy: settings.strategy,
            dataset: graph.name.clone(),
            dataset_fingerprint: graph.fingerprint().to_string(),
            device: device_name(job.device),
            settings: settings.clone(),
            val_acc,
            test_acc,
            seconds,
            load_seconds,
            peak_rss_bytes: memory::peak_rss_bytes(),
            rss_start_bytes,
            peak_device_bytes,
            partial: outcome.partial,
            ingredients: ingredients.clone(),
            uniform: IngredientAccuracy { val_acc: uniform_acc.val, test_acc: uniform_acc.test },
            weights: outcome.weights,
            history: outcome.history,
            candidates: outcome.candidates,
            holdout: outcome.holdout,
            checkpoint: None,
        };
        if let Some(dir) = &job.out_dir {
            if let Some(params) = &outcome.params {
                let path = soup_file(dir, settings.strategy);
                let meta = CheckpointMeta {
                    format_version: checkpoint::FORMAT_VERSION,
                    kind: CheckpointKind::Soup,
                    arch: stack.spec.clone(),
                    dataset: graph.name.clone(),
                    dataset_fingerprint: graph.fingerprint().to_string(),
                    init_fingerprint: stack.metas[0].init_fingerprint.clone(),
                    seed: Some(settings.seed),
                    epochs: matches!(settings.strategy, soup::Strategy::Ls | soup::Strategy::Pls).then_some(report.history.len()),
                    val_acc: Some(val_acc),
                    test_acc: Some(test_acc),
                    tool_version: checkpoint::tool_version(),
                    extra: [
                        ("strategy".to_string(), serde_json::json!(settings.strategy)),
                        ("ingredients".to_string(), serde_json::json!(stack.paths)),
                        ("partial".to_string(), serde_json::json!(outcome.partial)),
                    ]
                    .into_iter()
                    .collect(),
                };
                checkpoint::save(&path, params, &meta, job.overwrite)?;
                report.checkpoint = Some(path);
            }
            let path = report_file(dir, settings.strategy);
            checkpoint::write_atomic(&path, serde_json::to_string_pretty(&report)?.as_bytes())?;
        }
        emit(Event::Finished { report: Box::new(report.clone()) });
        reports.push(report);
        if cancel.load(Ordering::Relaxed) {
            break;
        }
    }
    Ok(reports)
}
