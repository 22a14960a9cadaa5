//! The souping engine: a job (ingredients, dataset, strategies, device) runs on its own thread,
//! owns every tensor, and streams [`Event`]s to whoever watches (progress bars, the TUI) and to
//! `events.jsonl` in the run directory. Cancellation is a shared flag checked every step.

pub mod event;
pub mod memory;
pub mod report;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use tch::Device;

pub use event::{Evaluated, Event};
use report::{IngredientAccuracy, IngredientResult, SoupReport};

use crate::checkpoint::{self, CheckpointKind, CheckpointMeta};
use crate::data::{self, DataOptions, Graph};
use crate::device::device_name;
use crate::fsio::JsonLines;
use crate::model::{self, ArchSpec, GraphTensors, ParamMap};
use crate::soup::state::Expected;
use crate::soup::{
    self, FitState, IngredientStack, LogLevel, Progress, SoupContext, SoupSettings, Strategy,
};

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
    /// Continue the run in `out_dir` ([`job_for_resume`]): finished strategies are kept, an
    /// interrupted LS/PLS continues from its saved state, `events.jsonl` is appended to.
    pub resume: bool,
    /// Evaluate every ingredient on the graph, even one whose checkpoint records its accuracies
    /// on this very dataset (same fingerprint: structure, features, labels and splits), which are
    /// otherwise reused: on a products-sized graph the evaluations take minutes.
    pub reevaluate: bool,
}

pub const EVENTS_FILE: &str = "events.jsonl";

pub fn soup_file(out: &Path, strategy: soup::Strategy) -> PathBuf {
    out.join(format!("soup-{strategy}.safetensors"))
}
pub fn report_file(out: &Path, strategy: soup::Strategy) -> PathBuf {
    out.join(format!("report-{strategy}.json"))
}

/// Where a job's events go: a channel, the workbench's event loop, a test's vector.
pub trait EventSink: Send + 'static {
    fn event(&self, e: Event);
    /// The job's thread is ending: no event follows.
    fn closed(&self) {}
}

impl EventSink for mpsc::Sender<Event> {
    fn event(&self, e: Event) {
        let _ = self.send(e);
    }
}

/// A running job.
pub struct JobHandle {
    cancel: Arc<AtomicBool>,
    thread: Option<JoinHandle<Result<Vec<SoupReport>>>>,
}

impl JobHandle {
    /// Asks the job to stop after its current step; it still reports the best soup so far.
    pub fn cancel(&self) {
        self.cancel.store(true, Ordering::Relaxed);
    }
    pub fn cancel_flag(&self) -> Arc<AtomicBool> {
        self.cancel.clone()
    }
    /// Waits for the job; a panic inside it becomes an error.
    pub fn join(mut self) -> Result<Vec<SoupReport>> {
        match self.thread.take().expect("joined once").join() {
            Ok(r) => r,
            Err(p) => bail!("the souping job failed: {}", panic_message(&p)),
        }
    }
}

fn panic_message(p: &Box<dyn std::any::Any + Send>) -> String {
    crate::crash::summary(p.as_ref())
}

/// Starts `job` on a named thread, its events going straight to `sink`.
pub fn spawn(job: JobSpec, sink: impl EventSink) -> JobHandle {
    let cancel = Arc::new(AtomicBool::new(false));
    let flag = cancel.clone();
    let thread = std::thread::Builder::new()
        .name("soup-engine".into())
        .spawn(move || {
            let emit = |e: Event| sink.event(e);
            // run_job reports its own errors as events; a panic outside its guards still gets one.
            let result = match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                run_job(&job, &flag, &emit)
            })) {
                Ok(r) => r,
                Err(p) => {
                    let e = anyhow::anyhow!("the souping job failed: {}", panic_message(&p));
                    emit(Event::Failed { message: format!("{e:#}") });
                    Err(e)
                }
            };
            sink.closed();
            result
        })
        .expect("cannot start the engine thread");
    JobHandle { cancel, thread: Some(thread) }
}

/// [`spawn`] with a channel to read the events from (the headless CLI, tests).
pub fn spawn_with_channel(job: JobSpec) -> (JobHandle, mpsc::Receiver<Event>) {
    let (tx, rx) = mpsc::channel();
    (spawn(job, tx), rx)
}

/// A directory under `runs_dir` named after the time, that does not exist yet.
pub fn new_run_dir(runs_dir: &Path) -> PathBuf {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let mut dir = runs_dir.join(format!("run-{secs}"));
    let mut n = 1;
    while dir.exists() {
        n += 1;
        dir = runs_dir.join(format!("run-{secs}-{n}"));
    }
    dir
}

/// Appends every event to `events.jsonl` as it happens (for `tui --attach`), then forwards it.
struct EventLog<'a> {
    file: Option<JsonLines>,
    forward: &'a dyn Fn(Event),
}

impl EventLog<'_> {
    fn emit(&self, e: Event) {
        if let Some(f) = &self.file {
            f.write(&e);
        }
        (self.forward)(e);
    }
}

/// Everything a job loads once and every strategy shares.
struct Loaded {
    graph: Graph,
    stack: IngredientStack,
    gt: GraphTensors,
    load_seconds: f64,
    /// The ingredients' and the uniform soup's accuracies, carried by every report.
    ingredients: Vec<IngredientResult>,
    uniform: IngredientAccuracy,
}

/// Some strategies of a job failed; the others' reports are kept (the CLI still prints and
/// writes them).
#[derive(Debug, thiserror::Error)]
#[error("{}", failures.join("\n"))]
pub struct StrategiesFailed {
    pub reports: Vec<SoupReport>,
    pub failures: Vec<String>,
}

/// `f()`, with a panic turned into an error (a bug must not take the run's other results down).
fn catching<T>(f: impl FnOnce() -> Result<T>) -> Result<T> {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
        Ok(r) => r,
        Err(p) => Err(anyhow::anyhow!("internal error (please report it): {}", panic_message(&p))),
    }
}

/// Runs a job on the calling thread (the CLI and the workbench use [`spawn`]). Every error also
/// becomes a `failed` event, in `events.jsonl` once it exists. A strategy that fails does not stop
/// the ones after it; the job then ends in [`StrategiesFailed`] carrying the finished reports.
pub fn run_job(
    job: &JobSpec,
    cancel: &AtomicBool,
    forward: &dyn Fn(Event),
) -> Result<Vec<SoupReport>> {
    let fail = |e: anyhow::Error, emit: &dyn Fn(Event)| {
        emit(Event::Failed { message: format!("{e:#}") });
        e
    };
    if job.ingredients.is_empty() {
        return Err(fail(anyhow::anyhow!("no ingredients to soup"), forward));
    }
    if job.strategies.is_empty() {
        return Err(fail(anyhow::anyhow!("no strategy to run"), forward));
    }
    for s in &job.strategies {
        s.validate()
            .with_context(|| format!("invalid settings for {}", s.strategy))
            .map_err(|e| fail(e, forward))?;
    }
    let log = EventLog { file: open_run_dir(job).map_err(|e| fail(e, forward))?, forward };
    let emit = |e: Event| log.emit(e);
    let loaded = catching(|| load(job, &emit)).map_err(|e| fail(e, &emit))?;
    // What only the graph can tell is checked before any strategy spends time.
    for s in job.strategies.iter().filter(|s| s.strategy == Strategy::Pls) {
        if s.parts > loaded.graph.num_nodes {
            return Err(fail(
                anyhow::anyhow!(
                    "--parts {}: {} has only {} nodes",
                    s.parts,
                    loaded.graph.name,
                    loaded.graph.num_nodes
                ),
                &emit,
            ));
        }
    }
    // A resumed run's finished reports and saved states, checked against the loaded ingredients
    // before any strategy spends time: a refused one stops the run with nothing changed.
    let plans = job
        .strategies
        .iter()
        .map(|s| {
            let groups = s.strategy.is_learned().then(|| loaded.stack.groups(s.mix).0.len());
            resume_plan(job, s, groups)
        })
        .collect::<Result<Vec<_>>>()
        .map_err(|e| fail(e, &emit))?;
    let mut reports = Vec::new();
    let mut failures = Vec::new();
    for (settings, plan) in job.strategies.iter().zip(plans) {
        let resume = match plan {
            Plan::Kept(done) => {
                emit(Event::Log {
                    level: LogLevel::Info,
                    message: format!("{} finished in the earlier run: kept", settings.strategy),
                });
                emit(Event::Finished { report: done.clone() });
                reports.push(*done);
                continue;
            }
            Plan::Run(state) => state,
        };
        let done = catching(|| {
            let (report, params) =
                run_strategy(job, &loaded, settings, resume.as_ref(), cancel, &emit)?;
            match &job.out_dir {
                Some(dir) => save(dir, job.overwrite, &loaded, report, params.as_ref()),
                None => Ok(report),
            }
        });
        match done {
            Ok(report) => {
                emit(Event::Finished { report: Box::new(report.clone()) });
                reports.push(report);
            }
            Err(e) => failures.push(format!(
                "{:#}",
                fail(e.context(format!("{} failed", settings.strategy)), &emit)
            )),
        }
        if cancel.load(Ordering::Relaxed) {
            break;
        }
    }
    if failures.is_empty() {
        Ok(reports)
    } else {
        Err(StrategiesFailed { reports, failures }.into())
    }
}

/// Checks that no result would be replaced (without `overwrite`), creates the run directory and
/// opens its `events.jsonl`.
fn open_run_dir(job: &JobSpec) -> Result<Option<JsonLines>> {
    let Some(dir) = &job.out_dir else { return Ok(None) };
    let path = dir.join(EVENTS_FILE);
    if job.resume {
        // The same run, continued: its log goes on.
        return JsonLines::append(&path).map(Some);
    }
    // events.jsonl too: another run's log is a result (tui --attach replays it). Checked before
    // any work, so that a run that cannot write its results leaves nothing behind.
    let results = job
        .strategies
        .iter()
        .flat_map(|s| [soup_file(dir, s.strategy), report_file(dir, s.strategy)])
        .chain([path.clone(), dir.join(JOB_FILE)]);
    for p in results {
        crate::fsio::check_replaceable(&p)?;
        if !job.overwrite && p != dir.join(JOB_FILE) && (p.exists() || p.is_symlink()) {
            bail!("{} already exists; choose another --out or pass --overwrite", p.display());
        }
    }
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let saved = SavedJob {
        ingredients: job
            .ingredients
            .iter()
            .map(|p| p.canonicalize().unwrap_or_else(|_| p.clone()))
            .collect(),
        dataset: job.dataset.clone(),
        data_dir: job.data.data_dir.canonicalize().unwrap_or_else(|_| job.data.data_dir.clone()),
        split_seed: job.data.split_seed,
        strategies: job.strategies.clone(),
    };
    checkpoint::write_atomic(
        &dir.join(JOB_FILE),
        serde_json::to_string_pretty(&saved)?.as_bytes(),
    )?;
    JsonLines::create(&path).map(Some)
}

/// What a run directory records of its job (`job.json`), so that `soup --resume` can continue it.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct SavedJob {
    ingredients: Vec<PathBuf>,
    dataset: Option<String>,
    data_dir: PathBuf,
    split_seed: u64,
    strategies: Vec<SoupSettings>,
}

pub const JOB_FILE: &str = "job.json";

/// Where an LS/PLS fit keeps its state while it runs (removed when it finishes).
pub fn state_file(out: &Path, strategy: soup::Strategy) -> PathBuf {
    out.join(format!("state-{strategy}.json"))
}

/// The job of the run in `dir`, to continue it on `device`: the strategies that finished are
/// kept, an interrupted LS/PLS goes on from its saved state, the others run. What the directory
/// holds is input like any other file and is checked before anything is built from it: `job.json`
/// ([`job_from_saved`]), the finished reports and the saved states, here all but the states'
/// groups of weights, which need the ingredients loaded ([`run_job`] checks those before any
/// strategy runs). A refused file stops the resume with its name and the problem.
pub fn job_for_resume(dir: &Path, device: Device) -> Result<JobSpec> {
    let path = dir.join(JOB_FILE);
    let text = crate::fsio::read_text(&path, 64 << 20)
        .with_context(|| format!("{} is not a run directory gnn-soup can resume", dir.display()))?;
    let job = job_from_saved(&text, dir, device)
        .map_err(|problem| anyhow::anyhow!("{}: {problem}", path.display()))?;
    for settings in &job.strategies {
        resume_plan(&job, settings, None)?;
    }
    Ok(job)
}

/// The job a run directory's `job.json` (its `text`) records, checked: some ingredients, at least
/// one strategy, each once, each with settings that pass their own validation. The problem in
/// words.
pub fn job_from_saved(text: &str, dir: &Path, device: Device) -> Result<JobSpec, String> {
    let saved: SavedJob = serde_json::from_str(text).map_err(|e| format!("unreadable ({e})"))?;
    if saved.ingredients.is_empty() {
        return Err("lists no ingredients".into());
    }
    if saved.strategies.is_empty() {
        return Err("lists no strategy to run".into());
    }
    for (i, s) in saved.strategies.iter().enumerate() {
        if saved.strategies[..i].iter().any(|earlier| earlier.strategy == s.strategy) {
            return Err(format!("lists {} twice", s.strategy));
        }
        s.validate().map_err(|e| format!("invalid settings for {}: {e}", s.strategy))?;
    }
    Ok(JobSpec {
        ingredients: saved.ingredients,
        dataset: saved.dataset,
        data: DataOptions {
            data_dir: saved.data_dir,
            split_seed: saved.split_seed,
            download: false,
        },
        strategies: saved.strategies,
        device,
        out_dir: Some(dir.to_path_buf()),
        overwrite: true,
        resume: true,
        reevaluate: false,
    })
}

/// What a resumed run does with one of its strategies.
enum Plan {
    /// It finished in the earlier run: its report is kept.
    Kept(Box<SoupReport>),
    /// It runs; an interrupted LS/PLS from its saved state.
    Run(Option<FitState>),
}

/// What `job` does with the strategy of `settings`: without `resume`, run it; resuming, keep its
/// finished report, or continue its saved state, checked against the job (and against `groups`,
/// the groups of weights it mixes, once the ingredients are loaded). A saved state that fails a
/// check is refused, not dropped: the run stops, naming the file and the problem, and the user
/// decides (removing it starts the strategy over).
fn resume_plan(job: &JobSpec, settings: &SoupSettings, groups: Option<usize>) -> Result<Plan> {
    let Some(dir) = job.out_dir.as_deref().filter(|_| job.resume) else {
        return Ok(Plan::Run(None));
    };
    let strategy = settings.strategy;
    if let Some(done) = finished_report(dir, strategy)? {
        return Ok(Plan::Kept(Box::new(done)));
    }
    let path = state_file(dir, strategy);
    if !strategy.is_learned() || is_absent(&path) {
        return Ok(Plan::Run(None));
    }
    let expected = Expected { settings, ingredients: job.ingredients.len(), groups };
    FitState::load(&path, &expected).map(|s| Plan::Run(Some(s))).map_err(|e| {
        anyhow::anyhow!(
            "{e:#} (remove the file to start {strategy} over, or soup again without --resume)"
        )
    })
}

/// Nothing at all is at `path` (a dangling link, a directory or a FIFO there is something).
fn is_absent(path: &Path) -> bool {
    matches!(std::fs::symlink_metadata(path), Err(e) if e.kind() == std::io::ErrorKind::NotFound)
}

/// A strategy's finished (not partial) report in `dir`, if it has one. A report there that
/// cannot be read, or is another strategy's, is refused: resuming would redo it over the file, or
/// keep the wrong one.
fn finished_report(dir: &Path, strategy: soup::Strategy) -> Result<Option<SoupReport>> {
    let path = report_file(dir, strategy);
    if is_absent(&path) {
        return Ok(None);
    }
    let refuse =
        |problem: String| anyhow::anyhow!("{problem} (remove the file to run {strategy} again)");
    let text = crate::fsio::read_text(&path, 256 << 20).map_err(|e| refuse(format!("{e:#}")))?;
    let report = serde_json::from_str::<SoupReport>(&text)
        .map_err(|e| refuse(format!("{}: not a gnn-soup report ({e})", path.display())))?;
    if report.strategy != strategy {
        return Err(refuse(format!(
            "{}: a report of {}, not {strategy}",
            path.display(),
            report.strategy
        )));
    }
    Ok(Some(report).filter(|r| !r.partial))
}

/// Loads the dataset (checking it is the one the ingredients were trained on) and the
/// ingredients, and measures the accuracies every report carries.
fn load(job: &JobSpec, emit: &dyn Fn(Event)) -> Result<Loaded> {
    let load_start = Instant::now();
    let first_meta = checkpoint::read_meta(&job.ingredients[0])?;
    let dataset = job.dataset.clone().unwrap_or_else(|| first_meta.dataset.clone());
    let graph = data::load(&dataset, &job.data)
        .with_context(|| format!("loading dataset {dataset} for the ingredients"))?;
    if graph.fingerprint() != first_meta.dataset_fingerprint {
        bail!(
            "{} was trained on {} (fingerprint {}), but {dataset} loads as fingerprint {}: not the same data",
            job.ingredients[0].display(),
            first_meta.dataset,
            first_meta.dataset_fingerprint,
            graph.fingerprint()
        );
    }
    // The widths are checked here, before libtorch sees them: a mismatch there is a C++ trace.
    let spec = &first_meta.arch;
    if spec.in_dim != graph.num_features as i64 {
        bail!(
            "{} takes {} input features; {dataset} has {}",
            job.ingredients[0].display(),
            spec.in_dim,
            graph.num_features
        );
    }
    if spec.out_dim < graph.num_classes as i64 {
        bail!(
            "{} predicts {} classes; {dataset} has {}",
            job.ingredients[0].display(),
            spec.out_dim,
            graph.num_classes
        );
    }
    let stack = IngredientStack::load(&job.ingredients, job.device)?;
    if stack.len() == 1 {
        emit(Event::Log {
            level: LogLevel::Warn,
            message: format!(
                "only one ingredient ({}): every soup of it is that model",
                job.ingredients[0].display()
            ),
        });
    }
    let gt = GraphTensors::new(&graph, job.device);
    // A job of learned strategies none of which fits stops here, before the ingredients' full-graph
    // evaluations (minutes on a large graph); otherwise each is checked again when its turn comes.
    let fits: Vec<Result<()>> =
        job.strategies.iter().map(|s| check_fits(job.device, &graph, &stack.spec, s)).collect();
    if fits.iter().all(Result::is_err) {
        if let Some(Err(e)) = fits.into_iter().next() {
            return Err(e.context(format!("{} failed", job.strategies[0].strategy)));
        }
    }
    let load_seconds = load_start.elapsed().as_secs_f64();

    let mut ingredients = Vec::with_capacity(stack.len());
    for i in 0..stack.len() {
        let recorded = recorded_accuracies(&stack.metas[i], &graph, job.reevaluate);
        let acc = match recorded {
            Some(acc) => acc,
            None => model::evaluate(&stack.spec, &stack.ingredient(i), &gt),
        };
        emit(Event::Evaluation {
            what: Evaluated::Ingredient(i),
            val_acc: acc.val,
            test_acc: acc.test,
        });
        ingredients.push(IngredientResult {
            path: stack.paths[i].clone(),
            val_acc: acc.val,
            test_acc: acc.test,
            recorded: recorded.is_some(),
        });
    }
    let n = stack.len();
    // In the log file (and the report's `recorded`), not on the terminal: a job refused later
    // says one thing there, its reason.
    let reused = ingredients.iter().filter(|i| i.recorded).count();
    if reused > 0 {
        tracing::info!(
            "{reused} of {n} ingredients: the accuracies recorded in their checkpoints on this \
             dataset (same fingerprint), not evaluated again (--reevaluate does)"
        );
    }
    let acc = model::evaluate(&stack.spec, &stack.mix_global(&vec![1.0 / n as f64; n]), &gt);
    emit(Event::Evaluation { what: Evaluated::UniformSoup, val_acc: acc.val, test_acc: acc.test });
    Ok(Loaded {
        graph,
        stack,
        gt,
        load_seconds,
        ingredients,
        uniform: IngredientAccuracy { val_acc: acc.val, test_acc: acc.test },
    })
}

/// The accuracies `train`, `import` or `collect` recorded in an ingredient's checkpoint, when they
/// were measured on this graph: same content fingerprint (structure, features, labels, splits),
/// so the same full-graph evaluation of the same weights would give them again.
fn recorded_accuracies(
    meta: &checkpoint::CheckpointMeta,
    graph: &data::Graph,
    reevaluate: bool,
) -> Option<model::Accuracies> {
    if reevaluate || meta.dataset_fingerprint != graph.fingerprint() {
        return None;
    }
    let (val, test) = (meta.val_acc?, meta.test_acc?);
    let valid = |a: f64| (0.0..=1.0).contains(&a);
    (valid(val) && valid(test)).then_some(model::Accuracies { train: f64::NAN, val, test })
}

/// Refuses, before it starts, a learned strategy whose step would not fit in the memory left on
/// its device: a clear message instead of the kernel's out-of-memory killer hours later (or
/// libtorch's allocation error on a GPU), with what PLS would need instead.
fn check_fits(
    device: Device,
    graph: &Graph,
    spec: &ArchSpec,
    settings: &SoupSettings,
) -> Result<()> {
    if !settings.strategy.is_learned() {
        return Ok(());
    }
    let (nodes, edges) = (graph.num_nodes as u64, graph.num_edges() as u64);
    let pls_need = |parts: usize, sample: usize| {
        let share = |v: u64| v * sample as u64 / parts.max(1) as u64;
        memory::fit_step_bytes(spec, share(nodes), share(edges))
            .max(memory::inference_bytes(spec, nodes))
    };
    let need = match settings.strategy {
        Strategy::Pls => pls_need(settings.parts, settings.sample),
        _ => memory::fit_step_bytes(spec, nodes, edges),
    };
    let Some(available) = memory::shortfall(device, need)? else { return Ok(()) };
    let gib = memory::gib;
    let place = if device.is_cuda() {
        format!("free on {}", device_name(device))
    } else {
        "available in memory".to_string()
    };
    let advice = match settings.strategy {
        Strategy::Pls => format!(
            "sample fewer parts per step (--sample {}) or split into more (--parts {})",
            (settings.sample / 2).max(1),
            settings.parts * 2
        ),
        _ => {
            let (k, r) = (settings.parts.max(2), settings.sample.min(settings.parts.max(2)));
            format!("PLS fits the graph part by part: --strategy pls needs about {:.1} GiB with --parts {k} --sample {r}", gib(pls_need(k, r)))
        }
    };
    bail!(
        "{} on {} ({nodes} nodes, {edges} edges) needs about {:.1} GiB for one step's activations; {:.1} GiB is {place}. {advice}. (Set {}=1 to try anyway.)",
        settings.strategy,
        graph.name,
        gib(need),
        gib(available),
        memory::NO_MEMORY_CHECK_ENV
    )
}

/// Runs one strategy, timed and memory-sampled, and scores its result on the full graph.
fn run_strategy(
    job: &JobSpec,
    loaded: &Loaded,
    settings: &SoupSettings,
    resume: Option<&FitState>,
    cancel: &AtomicBool,
    emit: &dyn Fn(Event),
) -> Result<(SoupReport, Option<ParamMap>)> {
    let Loaded { graph, stack, gt, .. } = loaded;
    check_fits(job.device, graph, &stack.spec, settings)?;
    let strategy = settings.strategy;
    emit(Event::Started {
        strategy,
        dataset: graph.name.clone(),
        nodes: graph.num_nodes,
        edges: graph.num_edges(),
        device: device_name(job.device),
        ingredients: stack.paths.iter().map(|p| p.display().to_string()).collect(),
        groups: if strategy.is_learned() {
            stack.groups(settings.mix).0
        } else {
            vec!["all".into()]
        },
        steps: match strategy {
            s if s.is_learned() => settings.epochs,
            s if s.tries_candidates() => stack.len() - 1,
            _ => 0,
        },
        parts: (strategy == Strategy::Pls).then_some(settings.parts),
    });
    // What an earlier strategy freed goes back first, so this one's reading is its own.
    memory::return_free_host_memory();
    // PLS is there to keep the peak low, and its subgraphs change size every step: pages kept
    // for reuse would fragment. The others repeat the same buffers and keep them. (Meanwhile
    // libtorch's large blocks are reused within the live peak: `device::keep_cpu_blocks`.)
    let _low_peak = (strategy == Strategy::Pls).then(memory::ReturnFreedPages::start);
    let load_peak_rss_bytes = memory::peak_rss_bytes();
    memory::reset_peak_rss();
    let rss_start_bytes = memory::rss_bytes();
    let device_peak = memory::DevicePeakSampler::start(job.device);
    memory::reset_libtorch_device_peak(job.device);
    let start = Instant::now();
    let ingredient_val: Vec<f64> = loaded.ingredients.iter().map(|i| i.val_acc).collect();
    let progress = |p: Progress| emit(p.into());
    // LS/PLS keep their state in the run directory while they fit, for `soup --resume`.
    let state_path =
        job.out_dir.as_deref().filter(|_| strategy.is_learned()).map(|d| state_file(d, strategy));
    let save_state = |s: &FitState| {
        if let Some(p) = &state_path {
            let written = serde_json::to_vec(s)
                .map_err(anyhow::Error::from)
                .and_then(|b| checkpoint::write_atomic(p, &b));
            if let Err(e) = written {
                tracing::warn!("cannot save the fit's state for --resume: {e:#}");
            }
        }
    };
    let ctx = SoupContext {
        stack,
        graph,
        gt,
        settings,
        progress: &progress,
        cancel,
        ingredient_val: &ingredient_val,
        resume,
        save_state: Some(&save_state),
    };
    let outcome = soup::run_strategy(&ctx)?;
    let fit_seconds = start.elapsed().as_secs_f64();
    if let Some(p) = state_path.as_deref().filter(|_| !outcome.partial) {
        let _ = std::fs::remove_file(p);
    }
    let (val_acc, test_acc) = {
        let logits = match (&outcome.params, &outcome.logits) {
            (Some(p), _) => model::infer(&stack.spec, p, gt),
            (None, Some(l)) => l.shallow_clone(),
            (None, None) => bail!("{strategy} produced no result"),
        };
        (
            model::accuracy(&logits, &gt.labels, &gt.val_idx),
            model::accuracy(&logits, &gt.labels, &gt.test_idx),
        )
    };
    let report = SoupReport {
        strategy,
        dataset: graph.name.clone(),
        dataset_fingerprint: graph.fingerprint().to_string(),
        device: device_name(job.device),
        settings: settings.clone(),
        val_acc,
        test_acc,
        seconds: start.elapsed().as_secs_f64(),
        fit_seconds,
        load_seconds: loaded.load_seconds,
        peak_rss_bytes: memory::peak_rss_bytes(),
        load_peak_rss_bytes,
        rss_start_bytes,
        peak_device_bytes: device_peak.and_then(memory::DevicePeakSampler::finish),
        peak_device_allocated_bytes: memory::libtorch_device_peak(job.device),
        partial: outcome.partial,
        ingredients: loaded.ingredients.clone(),
        uniform: loaded.uniform,
        weights: outcome.weights,
        history: outcome.history,
        candidates: outcome.candidates,
        holdout: outcome.holdout,
        notes: outcome.notes,
        checkpoint: None,
    };
    Ok((report, outcome.params))
}

/// Where imported ingredients came from (their layout and original files), kept on the soup so
/// that `gnn-soup export` can write it back under the original names.
fn provenance(metas: &[CheckpointMeta]) -> Vec<(String, serde_json::Value)> {
    let sources: Vec<&serde_json::Value> =
        metas.iter().filter_map(|m| m.extra.get("imported_from")).collect();
    if sources.len() != metas.len() {
        return Vec::new();
    }
    let mut out = vec![("imported_from".to_string(), serde_json::json!(sources))];
    out.extend(metas[0].extra.get("layout").map(|l| ("layout".to_string(), l.clone())));
    out
}

/// Writes the souped checkpoint (when there is one) and the report into the run directory.
fn save(
    dir: &Path,
    overwrite: bool,
    loaded: &Loaded,
    mut report: SoupReport,
    params: Option<&ParamMap>,
) -> Result<SoupReport> {
    let settings = &report.settings;
    if let Some(params) = params {
        let path = soup_file(dir, settings.strategy);
        let meta = CheckpointMeta {
            format_version: checkpoint::FORMAT_VERSION,
            kind: CheckpointKind::Soup,
            arch: loaded.stack.spec.clone(),
            dataset: report.dataset.clone(),
            dataset_fingerprint: report.dataset_fingerprint.clone(),
            init_fingerprint: loaded.stack.metas[0].init_fingerprint.clone(),
            seed: Some(settings.seed),
            epochs: settings.strategy.is_learned().then_some(report.history.len()),
            val_acc: Some(report.val_acc),
            test_acc: Some(report.test_acc),
            tool_version: checkpoint::tool_version(),
            extra: [
                ("strategy".to_string(), serde_json::json!(settings.strategy)),
                ("ingredients".to_string(), serde_json::json!(loaded.stack.paths)),
                ("partial".to_string(), serde_json::json!(report.partial)),
            ]
            .into_iter()
            .chain(provenance(&loaded.stack.metas))
            .collect(),
        };
        checkpoint::save(&path, params, &meta, overwrite)?;
        report.checkpoint = Some(path);
    }
    let path = report_file(dir, report.strategy);
    checkpoint::write_atomic(&path, serde_json::to_string_pretty(&report)?.as_bytes())?;
    Ok(report)
}
