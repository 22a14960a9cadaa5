//! The terminal workbench (ratatui + crossterm on a tokio task). One loop owns the state and
//! waits on key presses, engine events and a 100 ms redraw tick; the engine runs on its own
//! thread, sends its events straight into the loop's channel and never waits for the screen.
//! `ratatui::try_init` restores the terminal on panic too.
//!
//! Files: [`state`] (what is shown), [`app`] (messages and keys -> state and actions: the only
//! place state changes), [`setup`]
//! (the setup screen's browser and form), [`view`] (drawing, one file per screen), [`attach`]
//! (following another process's run), [`keys`], [`widgets`], [`system`] (CPU/RAM/GPU readings).

pub mod app;
pub mod attach;
pub mod keymap;
pub mod keys;
pub mod setup;
pub mod state;
pub mod system;
pub mod view;
pub mod widgets;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use futures_util::StreamExt;
use ratatui::crossterm::event::{Event as TermEvent, EventStream, KeyEventKind};
use tokio::sync::mpsc;

use crate::engine::{self, report::SoupReport, Event, EventSink, JobHandle, JobSpec};
use crate::soup::LogLevel;
use app::{Action, App, Message};
use keys::Key;

/// Where the dashboard's events come from.
pub enum Source {
    /// A job started here.
    Live(JobSpec),
    /// A run directory written by another process (followed live, or replayed when finished).
    Attach(PathBuf),
    /// A training run's events file, written by another process (`train`).
    AttachTraining(PathBuf),
}

/// What the workbench needs to start jobs of its own.
pub struct Session {
    pub data: crate::data::DataOptions,
    /// Each job writes into a new directory here (or into `fixed_out` for the first job).
    pub runs_dir: PathBuf,
    pub fixed_out: Option<PathBuf>,
    /// Every job evaluates its ingredients again ([`JobSpec::reevaluate`]).
    pub reevaluate: bool,
}

/// The engine's events, sent straight into the event loop's channel.
struct LoopSink(mpsc::UnboundedSender<Message>);

impl EventSink for LoopSink {
    fn event(&self, e: Event) {
        let _ = self.0.send(Message::Engine(e));
    }
    fn closed(&self) {
        let _ = self.0.send(Message::JobEnded);
    }
}

/// What the session produced: every finished run's report and the directory it was written to.
pub struct SessionResults {
    pub reports: Vec<SoupReport>,
    pub dirs: Vec<PathBuf>,
}

/// Runs the workbench until the user quits. `start` runs first: a job (or a run directory to
/// follow) to show on the dashboard straight away.
pub fn run(
    mut app: App,
    start: Option<Source>,
    session: Session,
    log_file: Option<&Path>,
) -> Result<SessionResults> {
    let (tx, mut rx) = mpsc::unbounded_channel();
    app.set_display(log_file.map(|p| p.display().to_string()), crate::progress::color_disabled());
    let rt = tokio::runtime::Builder::new_current_thread().enable_time().build()?;
    // The terminal first, before any job starts: one that cannot be set up is an error to report
    // (not a panic), and nothing is left running behind it.
    crate::signals::set_terminal_ui(true);
    let mut terminal = match ratatui::try_init() {
        Ok(t) => t,
        Err(e) => {
            crate::signals::set_terminal_ui(false);
            anyhow::bail!("cannot use this terminal ({e}); over SSH, run `ssh -t` to have one");
        }
    };
    let mut workbench = Workbench { tx, handle: None, session, jobs: 0 };
    if let Err(e) = workbench.begin(&mut app, start) {
        ratatui::restore();
        crate::signals::set_terminal_ui(false);
        return Err(e);
    }
    let result = rt.block_on(event_loop(&mut terminal, &mut app, &mut rx, &mut workbench));
    ratatui::restore();
    crate::signals::set_terminal_ui(false);
    // Also when the loop failed (a hung-up terminal cannot be drawn on): the job still stops
    // cleanly and saves its best result before the process ends.
    if let Some(h) = workbench.handle.take() {
        h.cancel();
        if let Err(e) = h.join() {
            tracing::warn!("the job ended with an error: {e:#}");
        }
        // Its last events (the partial report) arrived after the loop ended.
        while let Ok(m) = rx.try_recv() {
            if let Message::Engine(_) = m {
                app.update(m);
            }
        }
    }
    result?;
    let finished: Vec<_> =
        app.runs.into_iter().filter_map(|r| r.report.map(|rep| (rep, r.dir))).collect();
    Ok(SessionResults {
        dirs: finished.iter().filter_map(|(_, d)| d.clone()).collect(),
        reports: finished.into_iter().map(|(r, _)| r).collect(),
    })
}

/// Starts jobs and background work for the event loop.
struct Workbench {
    tx: mpsc::UnboundedSender<Message>,
    handle: Option<JobHandle>,
    session: Session,
    jobs: usize,
}

impl Workbench {
    fn start(&mut self, app: &mut App, job: JobSpec) {
        let run_dir = job.out_dir.clone().unwrap_or_default();
        self.handle = Some(engine::spawn(job, LoopSink(self.tx.clone())));
        self.jobs += 1;
        app.update(Message::JobStarted(run_dir.display().to_string()));
    }

    /// What the dashboard shows first: a job started here, or a run followed from its file.
    fn begin(&mut self, app: &mut App, start: Option<Source>) -> Result<()> {
        match start {
            Some(Source::Live(job)) => self.start(app, job),
            Some(Source::Attach(dir)) => {
                let path = dir.join(engine::EVENTS_FILE);
                let tx = self.tx.clone();
                std::thread::Builder::new()
                    .name("attach".into())
                    .spawn(move || {
                        attach::follow(
                            path,
                            |e| tx.send(Message::Engine(e)).is_ok(),
                            |message| Event::Failed { message },
                        )
                    })
                    .context("cannot start the follower")?;
            }
            Some(Source::AttachTraining(path)) => {
                let tx = self.tx.clone();
                std::thread::Builder::new()
                    .name("attach".into())
                    .spawn(move || {
                        attach::follow(
                            path,
                            |r| tx.send(Message::Train(r)).is_ok(),
                            |message| crate::train::TrainRecord::Failed { message },
                        )
                    })
                    .context("cannot start the follower")?;
            }
            None => {}
        }
        Ok(())
    }

    /// The run directory for a job started from the setup screen.
    fn next_run_dir(&self) -> PathBuf {
        match &self.session.fixed_out {
            Some(d) if self.jobs == 0 => d.clone(),
            _ => engine::new_run_dir(&self.session.runs_dir),
        }
    }

    fn act(&mut self, app: &mut App, action: Action) -> Option<Result<()>> {
        match action {
            Action::None => {}
            Action::Quit => return Some(Ok(())),
            Action::Cancel => match &self.handle {
                Some(h) => {
                    h.cancel();
                    let line = "stopping after the current step...".into();
                    app.update(Message::Log(LogLevel::Info, line));
                }
                None => return Some(Ok(())),
            },
            Action::Start { ingredients, dataset, device, settings } => {
                match crate::device::parse_device(&device) {
                    Ok(device) => {
                        let job = JobSpec {
                            ingredients,
                            dataset: Some(dataset),
                            data: self.session.data.clone(),
                            strategies: settings,
                            device,
                            out_dir: Some(self.next_run_dir()),
                            overwrite: false,
                            resume: false,
                            reevaluate: self.session.reevaluate,
                        };
                        self.start(app, job);
                    }
                    Err(e) => app.update(Message::StartRefused(format!("{e:#}"))),
                }
            }
            Action::Inspect(paths) => {
                let tx = self.tx.clone();
                let spawned = std::thread::Builder::new().name("inspect".into()).spawn(move || {
                    let _ = tx.send(Message::Inspected(
                        crate::inspect::analyse(&paths).map_err(|e| format!("{e:#}")),
                    ));
                });
                if let Err(e) = spawned {
                    app.update(Message::Inspected(Err(e.to_string())));
                }
            }
            Action::Save { run, dest } => {
                let message = match save_result(app, run, &dest) {
                    Ok(m) => (LogLevel::Info, m),
                    Err(e) => (LogLevel::Error, format!("not saved: {e:#}")),
                };
                app.update(Message::Log(message.0, message.1));
            }
        }
        None
    }
}

/// Copies run `i`'s soup (when it has one) and report into `dest`, never replacing a file.
fn save_result(app: &App, i: usize, dest: &Path) -> Result<String> {
    let run = app.runs.get(i).context("no such run")?;
    let report = run.report.as_ref().context("this run has not finished")?;
    let dir = run.dir.clone().context(
        "this run was written by another process: its files are in its own run directory",
    )?;
    let files: Vec<PathBuf> =
        [engine::soup_file(&dir, report.strategy), engine::report_file(&dir, report.strategy)]
            .into_iter()
            .filter(|p| p.is_file())
            .collect();
    if files.is_empty() {
        anyhow::bail!("{} holds no files for {}", dir.display(), report.strategy);
    }
    std::fs::create_dir_all(dest).with_context(|| format!("cannot create {}", dest.display()))?;
    let targets: Vec<PathBuf> =
        files.iter().map(|f| dest.join(f.file_name().unwrap_or_default())).collect();
    if let Some(t) = targets.iter().find(|t| t.exists()) {
        anyhow::bail!("{} already exists (choose another directory)", t.display());
    }
    for (from, to) in files.iter().zip(&targets) {
        let bytes = crate::fsio::read_regular(from, crate::checkpoint::MAX_CHECKPOINT_BYTES)?;
        crate::checkpoint::write_atomic(to, &bytes)?;
    }
    let names: Vec<String> = targets
        .iter()
        .map(|t| t.file_name().unwrap_or_default().to_string_lossy().into_owned())
        .collect();
    Ok(format!("saved {} to {}", names.join(" and "), dest.display()))
}

async fn event_loop(
    terminal: &mut ratatui::DefaultTerminal,
    app: &mut App,
    rx: &mut mpsc::UnboundedReceiver<Message>,
    workbench: &mut Workbench,
) -> Result<()> {
    let mut keys = EventStream::new();
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    let mut monitor = system::Monitor::new();
    let mut snapshot = monitor.sample();
    let mut sampled = Instant::now();
    loop {
        tokio::select! {
            _ = tick.tick() => {
                // SIGTERM / SIGHUP / SIGINT: leave (the job is stopped and saved on the way out).
                if crate::signals::interrupted() {
                    return Ok(());
                }
                if sampled.elapsed() >= Duration::from_secs(1) {
                    snapshot = monitor.sample();
                    sampled = Instant::now();
                }
                terminal.draw(|f| view::draw(f, app, &snapshot))?;
            }
            m = rx.recv() => match m {
                Some(Message::JobEnded) => {
                    app.update(Message::JobEnded);
                    if let Some(h) = workbench.handle.take() {
                        // Its error, if any, already arrived as a Failed event.
                        let _ = h.join();
                    }
                }
                Some(m) => app.update(m),
                None => {}
            },
            k = keys.next() => match k {
                Some(Ok(TermEvent::Key(k))) if k.kind == KeyEventKind::Press => {
                    if let Some(key) = Key::from_terminal(k.code, k.modifiers) {
                        let action = app.on_key(key);
                        if let Some(done) = workbench.act(app, action) {
                            return done;
                        }
                    }
                }
                Some(Err(e)) => return Err(e.into()),
                None => return Ok(()),
                _ => {}
            },
        }
    }
}
