//! The terminal dashboard (ratatui + crossterm on a tokio task). One loop owns the state and
//! waits on key presses, engine events and a 100 ms redraw tick; the engine runs on its own
//! thread and never waits for the screen. `ratatui::init` restores the terminal on panic too.

pub mod app;
pub mod screens;
pub mod setup;
pub mod system;
pub mod ui;

use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use futures_util::StreamExt;
use ratatui::crossterm::event::{Event as TermEvent, EventStream, KeyCode, KeyEventKind, KeyModifiers};
use tokio::sync::mpsc;

use crate::engine::{self, Event, JobHandle, JobSpec};
use app::{Action, App, Key};

/// Where the dashboard's events come from.
pub enum Source {
    /// A job started here.
    Live(JobSpec),
    /// A run directory written by another process (followed live, or replayed when finished).
    Attach(PathBuf),
}

/// Reads `events.jsonl` from the start and keeps following it, like `tail -f`.
fn follow(path: PathBuf, tx: mpsc::UnboundedSender<Msg>) {
    let mut waited = 0;
    let file = loop {
        match std::fs::File::open(&path) {
            Ok(f) => break f,
            Err(_) if waited < 50 => {
                std::thread::sleep(Duration::from_millis(200));
                waited += 1;
            }
            Err(e) => {
                let _ = tx.send(Msg::Engine(Event::Failed { message: format!("cannot read {}: {e}", path.display()) }));
                return;
            }
        }
    };
    let mut reader = std::io::BufReader::new(file);
    // A line still being written stays in `line` until its newline arrives.
    let mut line = String::new();
    loop {
        match reader.read_line(&mut line) {
            Ok(0) => std::thread::sleep(Duration::from_millis(200)),
            Ok(_) if !line.ends_with('\n') => std::thread::sleep(Duration::from_millis(50)),
            Ok(_) => {
                if let Ok(e) = serde_json::from_str::<Event>(line.trim()) {
                    if tx.send(Msg::Engine(e)).is_err() {
                        return;
                    }
                }
                line.clear();
            }
            Err(_) => return,
        }
    }
}

fn key_of(code: KeyCode, mods: KeyModifiers) -> Option<Key> {
    Some(match code {
        KeyCode::Char('c') if mods.contains(KeyModifiers::CONTROL) => Key::Interrupt,
        KeyCode::Char(c) => Key::Char(c),
        KeyCode::Esc => Key::Esc,
        KeyCode::Tab => Key::Tab,
        KeyCode::Up => Key::Up,
        KeyCode::Down => Key::Down,
        KeyCode::Left => Key::Left,
        KeyCode::Right => Key::Right,
        KeyCode::Enter => Key::Enter,
        KeyCode::Backspace => Key::Backspace,
        _ => return None,
    })
}

/// A directory under `runs_dir` named after the time, that does not exist yet.
pub fn new_run_dir(runs_dir: &Path) -> PathBuf {
    let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let mut dir = runs_dir.join(format!("run-{secs}"));
    let mut n = 1;
    while dir.exists() {
        n += 1;
        dir = runs_dir.join(format!("run-{secs}-{n}"));
    }
    dir
}

/// What the workbench needs to start jobs of its own.
pub struct Session {
    pub data: crate::data::DataOptions,
    /// Each job writes into a new directory here (or into `fixed_out` for the first job).
    pub runs_dir: PathBuf,
    pub fixed_out: Option<PathBuf>,
}

/// Messages the event loop waits on besides keys and the redraw tick.
enum Msg {
    Engine(Event),
    /// The job's event stream closed (it finished, failed or was cancelled).
    JobEnded,
    Inspected(Result<crate::inspect::DiversityReport, String>),
}

/// Runs the workbench until the user quits; returns the session's reports. `start` runs first:
/// a job (or a run directory to follow) to show on the dashboard straight away.
pub fn run(mut app: App, start: Option<Source>, session: Session, log_file: Option<&Path>) -> Result<Vec<engine::report::SoupReport>> {
    let (tx, rx) = mpsc::unbounded_channel();
    app.log_file = log_file.map(|p| p.display().to_string());
    let mut workbench = Workbench { tx, handle: None, session, jobs: 0 };
    match start {
        Some(Source::Live(job)) => workbench.start(&mut app, job)?,
        Some(Source::Attach(dir)) => {
            app.run_dir = Some(dir.display().to_string());
            let path = dir.join(engine::EVENTS_FILE);
            let tx = workbench.tx.clone();
            std::thread::Builder::new().name("attach".into()).spawn(move || follow(path, tx)).context("cannot start the follower")?;
        }
        None => {}
    }
    let rt = tokio::runtime::Builder::new_current_thread().enable_time().build()?;
    let mut terminal = ratatui::init();
    let result = rt.block_on(event_loop(&mut terminal, &mut app, rx, &mut workbench));
    ratatui::restore();
    result?;
    if let Some(h) = workbench.handle.take() {
        h.cancel();
        if let Err(e) = h.join() {
            tracing::warn!("the job ended with an error: {e:#}");
        }
    }
    Ok(app.results)
}

/// Starts jobs and background work for the event loop.
struct Workbench {
    tx: mpsc::UnboundedSender<Msg>,
    handle: Option<JobHandle>,
    session: Session,
    jobs: usize,
}

impl Workbench {
    fn start(&mut self, app: &mut App, job: JobSpec) -> Result<()> {
        let run_dir = job.out_dir.clone().unwrap_or_default();
        let mut h = engine::spawn(job);
        let events = h.take_events();
        let tx = self.tx.clone();
        std::thread::Builder::new()
            .name("engine-events".into())
            .spawn(move || {
                for e in events.iter() {
                    if tx.send(Msg::Engine(e)).is_err() {
                        return;
                    }
                }
                let _ = tx.send(Msg::JobEnded);
            })
            .context("cannot start the event bridge")?;
        self.handle = Some(h);
        self.jobs += 1;
        app.job_started(run_dir.display().to_string());
        Ok(())
    }

    /// A new run directory for a job started from the setup screen.
    fn next_run_dir(&self) -> PathBuf {
        if self.jobs == 0 {
            if let Some(d) = &self.session.fixed_out {
                return d.clone();
            }
        }
        new_run_dir(&self.session.runs_dir)
    }

    fn act(&mut self, app: &mut App, action: Action) -> Option<Result<()>> {
        match action {
            Action::None => {}
            Action::Quit => return Some(Ok(())),
            Action::Cancel => match &self.handle {
                Some(h) => {
                    h.cancel();
                    app.logs.push(("info".into(), "stopping after the current step...".into()));
                }
                None => return Some(Ok(())),
            },
            Action::Start { ingredients, dataset, device, settings } => {
                let device = match crate::device::parse_device(&device) {
                    Ok(d) => d,
                    Err(e) => {
                        if let Some(s) = &mut app.setup {
                            s.message = Some(format!("{e:#}"));
                        }
                        return None;
                    }
                };
                let job = JobSpec { ingredients, dataset: Some(dataset), data: self.session.data.clone(), strategies: settings, device, out_dir: Some(self.next_run_dir()), overwrite: false };
                if let Err(e) = self.start(app, job) {
                    app.logs.push(("error".into(), format!("{e:#}")));
                }
            }
            Action::Inspect(paths) => {
                let tx = self.tx.clone();
                let spawned = std::thread::Builder::new().name("inspect".into()).spawn(move || {
                    let _ = tx.send(Msg::Inspected(crate::inspect::analyse(&paths).map_err(|e| format!("{e:#}"))));
                });
                if let Err(e) = spawned {
                    app.inspection = app::Inspection::Failed(e.to_string());
                }
            }
            Action::Save { report, dest } => {
                let message = match save_result(app, report, &dest) {
                    Ok(m) => ("info", m),
                    Err(e) => ("error", format!("not saved: {e:#}")),
                };
                app.logs.push((message.0.into(), message.1));
            }
        }
        None
    }
}

/// Copies result `i`'s soup (when it has one) and report into `dest`, never replacing a file.
fn save_result(app: &App, i: usize, dest: &Path) -> Result<String> {
    let report = app.results.get(i).context("no such result")?;
    let dir = app.result_dirs.get(i).cloned().flatten().context("this result has no run directory (attached run?)")?;
    let files: Vec<PathBuf> = [engine::soup_file(&dir, report.strategy), engine::report_file(&dir, report.strategy)].into_iter().filter(|p| p.is_file()).collect();
    if files.is_empty() {
        anyhow::bail!("{} holds no files for {}", dir.display(), report.strategy);
    }
    std::fs::create_dir_all(dest).with_context(|| format!("cannot create {}", dest.display()))?;
    let targets: Vec<PathBuf> = files.iter().map(|f| dest.join(f.file_name().unwrap_or_default())).collect();
    if let Some(t) = targets.iter().find(|t| t.exists()) {
        anyhow::bail!("{} already exists (choose another directory)", t.display());
    }
    for (from, to) in files.iter().zip(&targets) {
        let bytes = std::fs::read(from).with_context(|| format!("cannot read {}", from.display()))?;
        crate::checkpoint::write_atomic(to, &bytes)?;
    }
    let names: Vec<String> = targets.iter().map(|t| t.file_name().unwrap_or_default().to_string_lossy().into_owned()).collect();
    Ok(format!("saved {} to {}", names.join(" and "), dest.display()))
}

async fn event_loop(terminal: &mut ratatui::DefaultTerminal, app: &mut App, mut rx: mpsc::UnboundedReceiver<Msg>, workbench: &mut Workbench) -> Result<()> {
    let mut keys = EventStream::new();
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    let mut monitor = system::Monitor::new();
    let mut snapshot = monitor.sample();
    let mut sampled = Instant::now();
    loop {
        tokio::select! {
            _ = tick.tick() => {
                if sampled.elapsed() >= Duration::from_secs(1) {
                    snapshot = monitor.sample();
                    sampled = Instant::now();
                }
                terminal.draw(|f| ui::draw(f, app, &snapshot))?;
            }
            m = rx.recv() => match m {
                Some(Msg::Engine(e)) => {
                    let ends = matches!(e, Event::Finished { .. } | Event::Failed { .. });
                    app.apply(&e);
                    // A followed run has no job handle: its last report ends it.
                    if ends && workbench.handle.is_none() {
                        app.finish();
                    }
                }
                Some(Msg::JobEnded) => {
                    app.finish();
                    if let Some(h) = workbench.handle.take() {
                        // Its error, if any, already arrived as a Failed event.
                        let _ = h.join();
                    }
                }
                Some(Msg::Inspected(r)) => {
                    app.inspection = match r {
                        Ok(d) => app::Inspection::Ready(Box::new(d)),
                        Err(e) => app::Inspection::Failed(e),
                    };
                }
                None => {}
            },
            k = keys.next() => match k {
                Some(Ok(TermEvent::Key(k))) if k.kind == KeyEventKind::Press => {
                    if let Some(key) = key_of(k.code, k.modifiers) {
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
