//! The terminal dashboard (ratatui + crossterm on a tokio task). One loop owns the state and
//! waits on key presses, engine events and a 100 ms redraw tick; the engine runs on its own
//! thread and never waits for the screen. `ratatui::init` restores the terminal on panic too.

pub mod app;
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
fn follow(path: PathBuf, tx: mpsc::UnboundedSender<Option<Event>>) {
    let mut waited = 0;
    let file = loop {
        match std::fs::File::open(&path) {
            Ok(f) => break f,
            Err(_) if waited < 50 => {
                std::thread::sleep(Duration::from_millis(200));
                waited += 1;
            }
            Err(e) => {
                let _ = tx.send(Some(Event::Failed { message: format!("cannot read {}: {e}", path.display()) }));
                return;
            }
        }
    };
    let mut reader = std::io::BufReader::new(file);
    let mut line = String::new();
    loop {
        line.clear();
        match reader.read_line(&mut line) {
            Ok(0) => std::thread::sleep(Duration::from_millis(200)),
            Ok(_) if !line.ends_with('\n') => {
                // a line still being written: wait for the rest
                std::thread::sleep(Duration::from_millis(50));
                let mut rest = String::new();
                let _ = reader.read_line(&mut rest);
                line.push_str(&rest);
                if let Ok(e) = serde_json::from_str::<Event>(line.trim()) {
                    if tx.send(Some(e)).is_err() {
                        return;
                    }
                }
            }
            Ok(_) => {
                if let Ok(e) = serde_json::from_str::<Event>(line.trim()) {
                    if tx.send(Some(e)).is_err() {
                        return;
                    }
                }
            }
            Err(_) => return,
        }
    }
}

fn key_of(code: KeyCode, mods: KeyModifiers) -> Option<Key> {
    Some(match code {
        KeyCode::Char('c') if mods.contains(KeyModifiers::CONTROL) => Key::Char('q'),
        KeyCode::Char(c) => Key::Char(c),
        KeyCode::Esc => Key::Esc,
        KeyCode::Tab => Key::Tab,
        KeyCode::Up => Key::Up,
        KeyCode::Down => Key::Down,
        KeyCode::Enter => Key::Enter,
        _ => return None,
    })
}

/// Runs the dashboard until the user quits; returns the reports of a live job.
pub fn run(source: Source, title: &str, log_file: Option<&Path>) -> Result<Vec<engine::report::SoupReport>> {
    let (tx, rx) = mpsc::unbounded_channel();
    let mut app = App::new(title);
    app.log_file = log_file.map(|p| p.display().to_string());
    let mut handle: Option<JobHandle> = None;
    match source {
        Source::Live(job) => {
            app.run_dir = job.out_dir.as_ref().map(|d| d.display().to_string());
            let mut h = engine::spawn(job);
            let events = h.take_events();
            std::thread::Builder::new()
                .name("engine-events".into())
                .spawn(move || {
                    for e in events.iter() {
                        if tx.send(Some(e)).is_err() {
                            return;
                        }
                    }
                    let _ = tx.send(None);
                })
                .context("cannot start the event bridge")?;
            handle = Some(h);
        }
        Source::Attach(dir) => {
            app.run_dir = Some(dir.display().to_string());
            let path = dir.join(engine::EVENTS_FILE);
            std::thread::Builder::new().name("attach".into()).spawn(move || follow(path, tx)).context("cannot start the follower")?;
        }
    }
    let rt = tokio::runtime::Builder::new_current_thread().enable_time().build()?;
    let mut terminal = ratatui::init();
    let result = rt.block_on(event_loop(&mut terminal, &mut app, rx, handle.as_ref()));
    ratatui::restore();
    result?;
    match handle {
        Some(h) => {
            h.cancel();
            h.join()
        }
        None => Ok(Vec::new()),
    }
}

async fn event_loop(
    terminal: &mut ratatui::DefaultTerminal,
    app: &mut App,
    mut rx: mpsc::UnboundedReceiver<Option<Event>>,
    handle: Option<&JobHandle>,
) -> Result<()> {
    let mut keys = EventStream::new();
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    let mut monitor = system::Monitor::new();
    let mut snapshot = monitor.sample();
    let mut sampled = Instant::now();
    let mut events_open = true;
    loop {
        tokio::select! {
            _ = tick.tick() => {
                if sampled.elapsed() >= Duration::from_secs(1) {
                    snapshot = monitor.sample();
                    sampled = Instant::now();
                }
                terminal.draw(|f| ui::draw(f, app, &snapshot))?;
            }
            e = rx.recv(), if events_open => match e {
                Some(Some(e)) => {
                    let ends = matches!(e, Event::Finished { .. } | Event::Failed { .. });
                    app.apply(&e);
                    if ends && handle.is_none() {
                        app.finish();
                    }
                }
                _ => {
                    events_open = false;
                    app.finish();
                }
            },
            k = keys.next() => match k {
                Some(Ok(TermEvent::Key(k))) if k.kind == KeyEventKind::Press => {
                    if let Some(key) = key_of(k.code, k.modifiers) {
                        match app.on_key(key) {
                            Action::Quit => return Ok(()),
                            Action::Cancel => {
                                if let Some(h) = handle {
                                    h.cancel();
                                    app.logs.push(("info".into(), "stopping after the current step...".into()));
                                } else {
                                    return Ok(());
                                }
                            }
                            Action::None => {}
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
