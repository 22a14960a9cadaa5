//! What the headless commands share: running a souping job with progress on stderr, training
//! with progress bars, and the comparison table of a job's reports.

use std::collections::HashMap;
use std::path::Path;

use anyhow::Result;
use indicatif::ProgressBar;

use super::output::{percent, Table};
use crate::checkpoint;
use crate::data::Graph;
use crate::device::device_name;
use crate::engine::{self, report::SoupReport, Event, JobSpec};
use crate::progress;
use crate::train::{TrainConfig, TrainEvent, TrainReport, TrainedIngredient};
use crate::units::mib;

/// Runs a job on the engine thread, showing progress on stderr. A signal (Ctrl-C, SIGTERM,
/// SIGHUP) stops it after its current step with the best soup so far saved ([`crate::signals`]).
pub fn execute(job: JobSpec) -> Result<Vec<SoupReport>> {
    let (handle, events) = engine::spawn_with_channel(job);
    crate::signals::watch(handle.cancel_flag());
    let mut view =
        HeadlessView { previous: Some(std::time::Instant::now()), ..HeadlessView::default() };
    for event in events.iter() {
        view.show(&event);
    }
    handle.join()
}

/// `tui --attach` without a terminal (`ssh host gnn-soup tui --attach RUN` without `-t`, a pipe):
/// the run's events as the headless `soup` shows them, on stderr, until every strategy of its job
/// has ended (`job.json` says which), the events file can no longer be read, or a signal (which
/// closes this viewer only: the run goes on in its own process).
pub fn follow_run_as_text(dir: &Path) -> Result<()> {
    let strategies: Option<Vec<String>> = engine::job_for_resume(dir, tch::Device::Cpu)
        .ok()
        .map(|job| job.strategies.iter().map(|s| s.strategy.to_string()).collect());
    eprintln!("following {} (no terminal: plain lines; Ctrl-C stops following)", dir.display());
    let mut view = HeadlessView::default();
    let mut ended: Vec<String> = Vec::new();
    follow_lines(
        dir.join(engine::EVENTS_FILE),
        |message| Event::Failed { message },
        |e| {
            view.show(e);
            let strategy = match e {
                Event::Finished { report } => Some(report.strategy.to_string()),
                Event::Failed { .. } => view.current.clone(),
                _ => None,
            };
            if let Some(s) = strategy.filter(|s| !ended.contains(s)) {
                ended.push(s);
            }
            strategies.as_ref().is_some_and(|all| all.iter().all(|s| ended.contains(s)))
        },
    )
}

/// As [`follow_run_as_text`], for a training run's events file: a line per ingredient, until the
/// run finishes or fails.
pub fn follow_training_as_text(file: &Path) -> Result<()> {
    use crate::train::TrainRecord as R;
    eprintln!("following {} (no terminal: plain lines; Ctrl-C stops following)", file.display());
    follow_lines(
        file.to_path_buf(),
        |message| R::Failed { message },
        |r| {
            match r {
                R::Started { dataset, model, ingredients, epochs, .. } => {
                    eprintln!("training {ingredients} {model} ingredients on {dataset}, {epochs} epochs each")
                }
                R::Done { index, val_acc, test_acc, file, .. } => eprintln!(
                    "ingredient {}: val {} test {}  -> {}",
                    index + 1,
                    percent(*val_acc),
                    percent(*test_acc),
                    file.display()
                ),
                R::Kept { index, file } => {
                    eprintln!(
                        "ingredient {}: kept from an earlier run  -> {}",
                        index + 1,
                        file.display()
                    )
                }
                R::Finished { seconds, complete } => eprintln!(
                    "training {} in {seconds:.1}s",
                    if *complete { "finished" } else { "stopped early" }
                ),
                R::Failed { message } => eprintln!("failed: {message}"),
                R::Ingredient { .. } | R::Epoch { .. } | R::Batch { .. } => {}
            }
            matches!(r, R::Finished { .. } | R::Failed { .. })
        },
    )
}

/// Follows an events file on another thread, handing each record to `on` until it says the run
/// has ended, the file cannot be read any more, or a signal arrives.
fn follow_lines<T: serde::de::DeserializeOwned + Send + 'static>(
    path: std::path::PathBuf,
    failed: fn(String) -> T,
    mut on: impl FnMut(&T) -> bool,
) -> Result<()> {
    use std::sync::mpsc::RecvTimeoutError;
    crate::signals::install();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .name("attach".into())
        .spawn(move || crate::tui::attach::follow(path, |e| tx.send(e).is_ok(), failed))?;
    while !crate::signals::interrupted() {
        match rx.recv_timeout(std::time::Duration::from_millis(200)) {
            Ok(e) if on(&e) => return Ok(()),
            Ok(_) | Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => return Ok(()),
        }
    }
    Ok(())
}

/// Progress bars on a terminal, a few plain lines otherwise.
#[derive(Default)]
struct HeadlessView {
    bar: Option<ProgressBar>,
    /// The strategy running now.
    current: Option<String>,
    last_line: HashMap<String, usize>,
    /// When the previous event arrived: evaluations that took a while are reported.
    previous: Option<std::time::Instant>,
}

/// An evaluation of an ingredient (or the uniform soup) before souping is reported when it took
/// longer than this: on a large graph each is a full-graph pass, and minutes pass before the
/// first epoch.
const REPORT_EVALUATIONS_OVER: std::time::Duration = std::time::Duration::from_secs(2);

impl HeadlessView {
    fn println(&self, line: String) {
        match &self.bar {
            Some(b) if progress::stderr_is_terminal() => b.println(line),
            _ => eprintln!("{line}"),
        }
    }

    fn show(&mut self, e: &Event) {
        let took = self.previous.replace(std::time::Instant::now()).map(|t| t.elapsed());
        match e {
            Event::Started {
                strategy, dataset, nodes, edges, device, ingredients, steps, ..
            } => {
                eprintln!("{strategy}: {} ingredients on {dataset} ({nodes} nodes, {edges} edges), {device}", ingredients.len());
                self.current = Some(strategy.to_string());
                self.bar =
                    (*steps > 0).then(|| progress::steps_bar(*steps as u64, strategy.name()));
            }
            Event::Epoch { epoch, epochs, loss, val_acc, lr, .. } => {
                let msg = format!("loss {loss:.4} val {} lr {lr:.3}", percent(*val_acc));
                if let Some(b) = &self.bar {
                    b.set_position(*epoch as u64 + 1);
                    b.set_message(msg.clone());
                }
                if !progress::stderr_is_terminal() && (epoch + 1) % (epochs / 10).max(1) == 0 {
                    eprintln!("  epoch {}/{epochs}: {msg}", epoch + 1);
                }
            }
            Event::Candidate { ingredient, factor, val_acc, accepted, step, steps } => {
                if let Some(b) = &self.bar {
                    b.set_position(*step as u64);
                }
                self.println(format!("  candidate {step}/{steps}: ingredient {ingredient} factor {factor:.3} val {} {}", percent(*val_acc), if *accepted { "kept" } else { "rejected" }));
            }
            Event::PartitionSample { parts, .. } => {
                if let Some(b) = &self.bar {
                    b.set_prefix(format!("pls {:>3} parts", parts.len()));
                }
            }
            Event::Log { level, message } => {
                // A message repeated every epoch is shown three times, not hundreds.
                let n = self.last_line.entry(message.clone()).or_default();
                *n += 1;
                if *n <= 3 {
                    self.println(format!("{level}: {message}"));
                }
            }
            Event::Evaluation { what, val_acc, test_acc } => {
                if let Some(took) = took.filter(|t| *t > REPORT_EVALUATIONS_OVER) {
                    self.println(format!(
                        "  evaluated {}: val {} test {} ({:.1}s)",
                        String::from(*what),
                        percent(*val_acc),
                        percent(*test_acc),
                        took.as_secs_f64()
                    ));
                }
            }
            Event::Finished { report } => {
                if let Some(b) = self.bar.take() {
                    b.finish_and_clear();
                }
                let partial = if report.partial { " (partial: cancelled)" } else { "" };
                eprintln!(
                    "{}: val {} test {} in {:.2}s{partial}",
                    report.strategy,
                    percent(report.val_acc),
                    percent(report.test_acc),
                    report.seconds
                );
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

const COMPARISON_HEADER: [&str; 7] =
    ["strategy", "val", "test", "seconds", "peak RSS MiB", "peak GPU MiB", ""];

/// The rows of the comparison: the ingredients' mean and best, then one row per report.
pub fn comparison_rows(reports: &[SoupReport]) -> Vec<[String; 7]> {
    let mut rows = Vec::new();
    if let Some(r) = reports.first() {
        let dash = || "-".to_string();
        rows.push([
            "ingredients (mean)".into(),
            percent(mean(r.ingredients.iter().map(|i| i.val_acc))),
            percent(mean(r.ingredients.iter().map(|i| i.test_acc))),
            dash(),
            dash(),
            dash(),
            String::new(),
        ]);
        if let Some(b) = r.ingredients.iter().max_by(|a, b| a.val_acc.total_cmp(&b.val_acc)) {
            rows.push([
                "best ingredient (val)".into(),
                percent(b.val_acc),
                percent(b.test_acc),
                dash(),
                dash(),
                dash(),
                String::new(),
            ]);
        }
    }
    for r in reports {
        rows.push([
            r.strategy.to_string(),
            percent(r.val_acc),
            percent(r.test_acc),
            format!("{:.2}", r.seconds),
            mib(r.peak_rss_bytes),
            r.peak_device_bytes.map_or("-".into(), mib),
            if r.partial { "partial".into() } else { String::new() },
        ]);
    }
    rows
}

pub fn comparison_table(reports: &[SoupReport]) -> String {
    let mut t = Table::new(COMPARISON_HEADER);
    for r in comparison_rows(reports) {
        t.row(r);
    }
    t.render()
}

fn comparison_markdown(reports: &[SoupReport]) -> String {
    let mut s = format!(
        "| {} |\n|{}\n",
        COMPARISON_HEADER.join(" | "),
        "---|".repeat(COMPARISON_HEADER.len())
    );
    for r in comparison_rows(reports) {
        s.push_str(&format!("| {} |\n", r.join(" | ")));
    }
    s
}

fn summary_json(r: &SoupReport) -> serde_json::Value {
    serde_json::json!({
        "strategy": r.strategy, "val_acc": r.val_acc, "test_acc": r.test_acc, "seconds": r.seconds,
        "peak_rss_bytes": r.peak_rss_bytes, "peak_device_bytes": r.peak_device_bytes, "peak_device_allocated_bytes": r.peak_device_allocated_bytes, "partial": r.partial, "checkpoint": r.checkpoint,
    })
}

/// The reports a job finished, and its error: a job whose strategies failed in part still
/// returns the others' reports ([`engine::StrategiesFailed`]).
pub fn split_outcome(result: Result<Vec<SoupReport>>) -> (Vec<SoupReport>, Option<anyhow::Error>) {
    match result {
        Ok(reports) => (reports, None),
        Err(e) => match e.downcast::<engine::StrategiesFailed>() {
            Ok(failed) => {
                let reports = failed.reports.clone();
                (reports, Some(failed.into()))
            }
            Err(e) => (Vec::new(), Some(e)),
        },
    }
}

/// Ok when the job ran to its end; [`crate::signals::Interrupted`] (exit status 3) when a signal
/// or a cancel stopped it with partial results saved in `out`.
pub fn completed(reports: &[SoupReport], out: &Path) -> Result<()> {
    if crate::signals::interrupted() || reports.iter().any(|r| r.partial) {
        let what = if reports.iter().any(|r| r.partial) {
            "the best soup so far is saved (its report says partial)"
        } else {
            "the finished strategies' results are saved"
        };
        return Err(crate::signals::Interrupted(format!(
            "stopped before the end; {what} in {}",
            out.display()
        ))
        .into());
    }
    Ok(())
}

/// Comparison files a run would write into `out`, refused when they exist (without overwrite).
pub fn check_comparison_free(out: &Path, overwrite: bool) -> Result<()> {
    if overwrite {
        return Ok(());
    }
    for name in ["comparison.md", "comparison.json"] {
        let p = out.join(name);
        if p.exists() || p.is_symlink() {
            anyhow::bail!(
                "{} already exists; choose another --out or pass --overwrite",
                p.display()
            );
        }
    }
    Ok(())
}

/// Writes `comparison.md` and `comparison.json` into the run directory.
pub fn write_comparison(out: &Path, reports: &[SoupReport]) -> Result<()> {
    checkpoint::write_atomic(&out.join("comparison.md"), comparison_markdown(reports).as_bytes())?;
    let json: Vec<serde_json::Value> = reports.iter().map(summary_json).collect();
    checkpoint::write_atomic(
        &out.join("comparison.json"),
        serde_json::to_string_pretty(&json)?.as_bytes(),
    )?;
    eprintln!(
        "wrote {} and {}",
        out.join("comparison.md").display(),
        out.join("comparison.json").display()
    );
    Ok(())
}

/// The line printed before training starts.
pub fn announce_training(
    g: &Graph,
    cfg: &TrainConfig,
    devices: &[tch::Device],
    shard: Option<crate::train::Shard>,
) {
    let on = devices.iter().map(|d| device_name(*d)).collect::<Vec<_>>().join(", ");
    let workers =
        if devices.len() > 1 { format!(" ({} workers)", devices.len()) } else { String::new() };
    let share = shard.map_or(String::new(), |s| {
        format!(", shard {s}: ingredients i with i % {} == {}", s.count, s.index)
    });
    let steps = cfg.minibatch.as_ref().map_or(String::new(), |m| format!(", {}", m.describe()));
    eprintln!(
        "training {} {} ingredients on {} ({} nodes, {} edges){steps} on {on}{workers}{share}",
        cfg.ingredients,
        cfg.arch,
        g.name,
        g.num_nodes,
        g.num_edges()
    );
}

/// Training progress: on a terminal a bar per worker (the ingredient it trains, its epoch, loss
/// and validation accuracy); a line per finished ingredient otherwise (and on a terminal too
/// unless `quiet`), naming the worker's device when there are several.
pub fn training_progress(
    epochs: usize,
    ingredients: usize,
    devices: &[tch::Device],
    quiet: bool,
) -> impl FnMut(TrainEvent) {
    let names: Vec<String> = devices.iter().map(|d| device_name(*d)).collect();
    let several = names.len() > 1;
    let terminal = progress::stderr_is_terminal();
    let multi = indicatif::MultiProgress::with_draw_target(if terminal {
        indicatif::ProgressDrawTarget::stderr_with_hz(10)
    } else {
        indicatif::ProgressDrawTarget::hidden()
    });
    // A line per finished ingredient: above the bars on a terminal (not with `quiet`), plain on
    // stderr in a log.
    let line_out = multi.clone();
    let done_line = move |line: String| match (terminal, quiet) {
        (true, true) => {}
        (true, false) => {
            let _ = line_out.println(line);
        }
        (false, _) => eprintln!("{line}"),
    };
    let mut bars: Vec<Option<ProgressBar>> = vec![None; names.len()];
    // Each worker's latest epoch summary, kept beside the minibatch steps of the next epoch.
    let mut summaries: Vec<String> = vec![String::new(); names.len()];
    move |ev| match ev {
        TrainEvent::IngredientStarted { worker, index, seed } => {
            let label = if several {
                format!("w{worker} {} #{}/{ingredients}", names[worker], index + 1)
            } else {
                format!("ingredient {}/{ingredients}", index + 1)
            };
            if let Some(old) = bars[worker].take() {
                old.finish_and_clear();
            }
            bars[worker] = Some(multi.add(progress::steps_bar(epochs as u64, &label)));
            tracing::info!(worker, index, seed, "ingredient started");
        }
        TrainEvent::Epoch { worker, epoch, loss, val_acc, .. } => {
            summaries[worker] = format!("loss {loss:.4} val {}", percent(val_acc));
            if let Some(b) = &bars[worker] {
                b.set_position(epoch as u64 + 1);
                b.set_message(summaries[worker].clone());
            }
        }
        TrainEvent::Batch { worker, batch, batches, seeds_per_second, .. } => {
            if let Some(b) = &bars[worker] {
                b.set_message(format!(
                    "{}  batch {batch}/{batches}, {seeds_per_second:.0} seeds/s",
                    summaries[worker]
                ));
            }
        }
        TrainEvent::IngredientDone { worker, index, path, acc } => {
            if let Some(b) = bars[worker].take() {
                b.finish_and_clear();
            }
            let on = if several {
                format!(" on worker {worker} ({})", names[worker])
            } else {
                String::new()
            };
            done_line(format!(
                "ingredient {}/{ingredients}{on}: val {} test {}  -> {}",
                index + 1,
                percent(acc.val),
                percent(acc.test),
                path.display()
            ));
        }
        TrainEvent::IngredientKept { index, path } => eprintln!(
            "ingredient {}/{ingredients}: kept from the interrupted run  -> {}",
            index + 1,
            path.display()
        ),
    }
}

/// The table of trained ingredients, with their mean and the best by validation accuracy (the
/// one a user would pick without looking at the test set: its test accuracy, not the highest).
pub fn print_training_summary(report: &TrainReport) {
    let mut t = Table::new(["ingredient", "seed", "val", "test"]);
    for i in &report.ingredients {
        t.row([
            i.path.file_name().unwrap_or_default().to_string_lossy().into_owned(),
            i.seed.to_string(),
            percent(i.val_acc),
            percent(i.test_acc),
        ]);
    }
    let k = report.ingredients.len() as f64;
    let mean = |f: fn(&TrainedIngredient) -> f64| report.ingredients.iter().map(f).sum::<f64>() / k;
    t.row([
        "mean".to_string(),
        String::new(),
        percent(mean(|i| i.val_acc)),
        percent(mean(|i| i.test_acc)),
    ]);
    // Ties broken as the soup table's "best ingredient (val)" breaks them.
    if let Some(b) = report.ingredients.iter().max_by(|a, b| a.val_acc.total_cmp(&b.val_acc)) {
        t.row([
            "best (val)".to_string(),
            b.seed.to_string(),
            percent(b.val_acc),
            percent(b.test_acc),
        ]);
    }
    println!("{}: {}", report.dataset, report.arch.describe());
    print!("{}", t.render());
}

/// The demo's ingredients, trained here with progress on first use.
pub fn demo_ingredients(device: tch::Device) -> Result<std::path::PathBuf> {
    let cfg = crate::demo::train_config();
    if !crate::demo::ingredients_present() {
        announce_training(&crate::demo::graph()?, &cfg, &[device], None);
    }
    let got = crate::demo::ensure_ingredients(
        device,
        &mut training_progress(cfg.epochs, cfg.ingredients, &[device], false),
    )?;
    match &got.trained {
        Some(report) => {
            eprintln!("trained {} ingredients in {:.1}s", report.ingredients.len(), report.seconds);
            print_training_summary(report);
        }
        None => eprintln!("using the demo ingredients in {}", got.dir.display()),
    }
    Ok(got.dir)
}

/// The ingredient checkpoints to soup: `flag`'s (`--ingredients`), else the recipe's (a
/// directory, one checkpoint, or a list), each imported on the fly when gnn-soup did not write it.
/// None when neither names any.
pub fn ingredients_of(
    flag: Option<&Path>,
    recipe: Option<&crate::recipe::Recipe>,
    data: &super::args::DataArgs,
) -> Result<Option<Vec<std::path::PathBuf>>> {
    use crate::recipe::Ingredients;
    let listed: Vec<&Path> = match (flag, recipe.and_then(|r| r.ingredients.as_ref())) {
        (Some(path), _) => vec![path],
        (None, Some(Ingredients::Path(path))) => vec![path.as_path()],
        (None, Some(Ingredients::Files(files))) => files.iter().map(|f| f.as_path()).collect(),
        (None, None) => return Ok(None),
    };
    let mut all = Vec::new();
    for path in listed {
        all.extend(crate::checkpoint::list_ingredients(&resolve_ingredients(path, data)?)?);
    }
    Ok(Some(all))
}

/// `path` as gnn-soup ingredients: as it is, or, when it holds checkpoints gnn-soup did not write
/// (PyG `.pt`, plain `.safetensors`), imported on the fly with the defaults of `gnn-soup import`
/// into the cache, saying so.
pub fn resolve_ingredients(
    path: &Path,
    data: &super::args::DataArgs,
) -> Result<std::path::PathBuf> {
    let Some((sources, init)) = crate::import::foreign_at(path)? else {
        return Ok(path.to_path_buf());
    };
    let Some(dataset) = &data.dataset else {
        anyhow::bail!("{} holds checkpoints gnn-soup did not write: pass --dataset to import them on the fly (or run `gnn-soup import` first to choose how)", path.display());
    };
    let g = crate::data::load(dataset, &data.options())?;
    let opts = crate::import::default_options(&g);
    let (dir, reused) = crate::import::import_cached(
        &sources,
        init.as_deref(),
        &g,
        &opts,
        &crate::paths::cache_dir().join("imports"),
    )?;
    let what = format!(
        "{} foreign checkpoint(s) from {}{}",
        sources.len(),
        path.display(),
        if init.is_some() { " with their init" } else { "" }
    );
    if reused {
        eprintln!("using the earlier import of {what} in {}", dir.display());
    } else {
        let first = checkpoint::read_meta(&checkpoint::list_ingredients(&dir)?[0])?;
        let layout = first.extra.get("layout").and_then(|l| l.as_str()).unwrap_or("pyg");
        eprintln!("imported {what} into {} as {layout}-layout models: {} (`gnn-soup import` chooses otherwise)", dir.display(), first.arch.describe());
    }
    // A single file stays a single ingredient.
    Ok(if path.is_file() { checkpoint::list_ingredients(&dir)?.remove(0) } else { dir })
}
