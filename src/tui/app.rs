//! The workbench: its state (see [`super::state`]) fed by engine events, and one key handler per
//! screen. Keys return an [`Action`] for the event loop to carry out; nothing here touches
//! tensors or the terminal, so it is tested with plain values.

use std::path::PathBuf;
use std::time::Duration;

use super::keymap::{self, Command, Context, Situation};
use super::keys::Key;
use super::setup::{Setup, SetupAction, SetupFocus};
use super::state::{Inspection, JobView, Modal, Panel, RunView, Screen, Ui, Weights};
use crate::engine::{Evaluated, Event};
use crate::soup::{CandidateRecord, LogLevel, SoupSettings};

/// What a key press asks the event loop to do.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    None,
    /// Stop the running job (the engine keeps the best soup so far).
    Cancel,
    Quit,
    /// Start a job from the setup screen.
    Start {
        ingredients: Vec<PathBuf>,
        dataset: String,
        device: String,
        settings: Vec<SoupSettings>,
    },
    /// Measure the diversity of these ingredients (off the UI thread).
    Inspect(Vec<PathBuf>),
    /// Copy run `run`'s soup and report into the directory `dest`.
    Save {
        run: usize,
        dest: PathBuf,
    },
}

/// Everything that changes the workbench's state besides a key press: the engine's events and
/// what the event loop learns from the threads it started. The loop hands each to
/// [`App::update`]; nothing else writes the state.
#[derive(Debug)]
pub enum Message {
    Engine(Event),
    /// A record of a training run followed from its events file.
    Train(crate::train::TrainRecord),
    /// A job was started here, writing into this directory.
    JobStarted(String),
    /// The job's thread ended (it finished, failed or was cancelled).
    JobEnded,
    Inspected(Result<crate::inspect::DiversityReport, String>),
    Log(LogLevel, String),
    /// The setup screen's start was refused (a device that cannot be used, ...).
    StartRefused(String),
}

#[derive(Debug, Default)]
pub struct App {
    pub title: String,
    pub job: JobView,
    /// Every strategy run of this session, oldest first.
    pub runs: Vec<RunView>,
    pub logs: Vec<(LogLevel, String)>,
    pub ui: Ui,
    /// The setup screen (None when attached to a run started elsewhere).
    pub setup: Option<Setup>,
    pub inspection: Inspection,
    /// Viewing a run another process writes: closing the viewer leaves it running.
    pub attached: bool,
    pub log_file: Option<String>,
    /// Following a training run instead of a soup job (`tui --attach` on a training directory).
    pub training: Option<super::state::TrainingView>,
    /// The index in `runs` of the current job's first run.
    job_first_run: usize,
}

impl App {
    /// A dashboard for a job that is already running here.
    pub fn new(title: impl Into<String>) -> App {
        App {
            title: title.into(),
            job: JobView { running: true, ..Default::default() },
            ..Default::default()
        }
    }

    /// A viewer of a run directory written by another process.
    pub fn attached(title: impl Into<String>, run_dir: String) -> App {
        let mut app = App::new(title);
        app.attached = true;
        app.job.run_dir = Some(run_dir);
        app
    }

    /// A viewer of a training run another process writes (its events file).
    pub fn training(title: impl Into<String>, events_file: String) -> App {
        let mut app = App::attached(title, events_file);
        app.training = Some(super::state::TrainingView::default());
        app
    }

    /// A session that opens on the setup screen.
    pub fn with_setup(title: impl Into<String>, setup: Setup) -> App {
        App {
            title: title.into(),
            setup: Some(setup),
            ui: Ui { screen: Screen::Setup, ..Default::default() },
            ..Default::default()
        }
    }

    /// Where the log goes (for the help box) and whether to draw without colours.
    pub fn set_display(&mut self, log_file: Option<String>, monochrome: bool) {
        self.log_file = log_file;
        self.ui.monochrome = monochrome;
    }

    /// The run the dashboard's panels show: the one selected, or the latest.
    pub fn shown_run(&self) -> Option<&RunView> {
        match self.ui.selected {
            Some(i) => self.runs.get(i),
            None => self.runs.last(),
        }
    }

    pub fn shown_index(&self) -> Option<usize> {
        self.ui.selected.or(self.runs.len().checked_sub(1))
    }

    /// Selects run `i` (the latest means: follow new runs).
    fn select(&mut self, i: usize) {
        self.ui.selected = if i + 1 >= self.runs.len() { None } else { Some(i) };
        self.ui.weights_scroll = 0;
    }

    /// A job was started here: clear what belonged to the previous job (the session's runs stay).
    pub fn job_started(&mut self, run_dir: String) {
        self.ui.screen = Screen::Dashboard;
        self.ui.selected = None;
        self.job_first_run = self.runs.len();
        self.job = JobView { running: true, run_dir: Some(run_dir), ..Default::default() };
    }

    /// The job ended (its event stream closed). After several strategies (`all`), the dashboard
    /// shows the best by validation accuracy, not the last (the ensemble, with no weights or
    /// curves), unless the user picked a run meanwhile.
    pub fn finish(&mut self) {
        self.job.running = false;
        let several = self.runs.len() > self.job_first_run + 1;
        if !self.attached && self.ui.selected.is_none() && several {
            if let Some((i, run)) = self.best_of_job() {
                let line = format!(
                    "showing {}, the best by validation accuracy ({:.2}%); [ ] selects another run",
                    run.strategy,
                    100.0 * run.report.as_ref().map_or(f64::NAN, |r| r.val_acc)
                );
                self.select(i);
                self.log(LogLevel::Info, line);
            }
        }
    }

    /// The current job's finished soup with the highest validation accuracy; on a tie the learned
    /// one (it has curves), then the earlier. The ensemble is a reference point, not a soup.
    fn best_of_job(&self) -> Option<(usize, &RunView)> {
        let key = |r: &RunView| {
            let val = r.report.as_ref().map_or(f64::NEG_INFINITY, |rep| rep.val_acc);
            (val, r.strategy.is_learned())
        };
        let mut best: Option<(usize, &RunView)> = None;
        for (i, run) in self.runs.iter().enumerate().skip(self.job_first_run) {
            if run.report.is_none() || run.strategy == crate::soup::Strategy::Ensemble {
                continue;
            }
            if best.is_none_or(|(_, b)| key(run) > key(b)) {
                best = Some((i, run));
            }
        }
        best
    }

    /// Carries out a [`Message`].
    pub fn update(&mut self, message: Message) {
        match message {
            Message::Engine(e) => {
                let ends = matches!(e, Event::Finished { .. } | Event::Failed { .. });
                self.apply(&e);
                // A followed run has no thread of ours to end: its last report ends it.
                if ends && self.attached {
                    self.finish();
                }
            }
            Message::Train(record) => {
                if let Some(t) = &mut self.training {
                    t.apply(&record);
                }
            }
            Message::JobStarted(run_dir) => self.job_started(run_dir),
            Message::JobEnded => self.finish(),
            Message::Inspected(result) => {
                self.inspection = match result {
                    Ok(d) => Inspection::Ready(Box::new(d)),
                    Err(e) => Inspection::Failed(e),
                }
            }
            Message::Log(level, line) => self.log(level, line),
            Message::StartRefused(why) => match &mut self.setup {
                Some(s) => s.message = Some(why),
                None => self.log(LogLevel::Error, why),
            },
        }
    }

    fn log(&mut self, level: LogLevel, message: impl Into<String>) {
        self.logs.push((level, message.into()));
    }

    pub fn apply(&mut self, e: &Event) {
        match e {
            Event::Started {
                strategy,
                dataset,
                nodes,
                edges,
                device,
                ingredients,
                groups,
                steps,
                parts,
            } => {
                let job = &mut self.job;
                (job.dataset, job.nodes, job.edges, job.device, job.ingredients) =
                    (dataset.clone(), *nodes, *edges, device.clone(), ingredients.clone());
                job.running = true;
                let dir = job.run_dir.as_ref().filter(|_| !self.attached).map(PathBuf::from);
                self.runs.push(RunView::new(*strategy, groups.clone(), *steps, *parts, dir));
            }
            Event::Epoch { epoch, loss, val_acc, lr, weights, seconds, .. } => {
                if let Some(run) = self.runs.last_mut() {
                    run.step = epoch + 1;
                    run.loss.push((*epoch as f64, *loss));
                    if val_acc.is_finite() {
                        run.val.push((*epoch as f64, *val_acc));
                    }
                    run.lr = *lr;
                    // An events file from elsewhere may be malformed: ragged rows are not drawn.
                    let width = weights.first().map_or(0, Vec::len);
                    if weights.iter().all(|r| r.len() == width) {
                        run.weights.rows = weights.clone();
                    }
                    run.elapsed = Duration::from_secs_f64(*seconds);
                }
            }
            Event::Candidate { ingredient, factor, val_acc, accepted, step, .. } => {
                if let Some(run) = self.runs.last_mut() {
                    run.step = *step;
                    run.candidates.push(CandidateRecord {
                        ingredient: *ingredient,
                        factor: *factor,
                        val_acc: *val_acc,
                        accepted: *accepted,
                    });
                }
            }
            Event::PartitionSample { parts, nodes, edges, .. } => {
                if let Some(run) = self.runs.last_mut() {
                    for &p in parts {
                        if let Some(u) = run.part_uses.get_mut(p) {
                            *u += 1;
                        }
                    }
                    run.last_sample = parts.clone();
                    run.last_subgraph = (*nodes, *edges);
                }
            }
            Event::Evaluation { what, val_acc, test_acc } => match what {
                Evaluated::UniformSoup => self.job.uniform_acc = Some((*val_acc, *test_acc)),
                Evaluated::Ingredient(_) => self.job.ingredient_acc.push((*val_acc, *test_acc)),
            },
            Event::Log { level, message } => self.log(*level, message.clone()),
            Event::Finished { report } => {
                let line = format!(
                    "{} finished: val {:.2}% test {:.2}%{}",
                    report.strategy,
                    100.0 * report.val_acc,
                    100.0 * report.test_acc,
                    if report.partial { " (partial)" } else { "" }
                );
                if let Some(run) =
                    self.runs.last_mut().filter(|r| r.strategy == report.strategy && !r.finished())
                {
                    run.step = run.steps;
                    if !report.weights.is_empty() {
                        run.weights = Weights::from_report(&report.weights, &run.weights.groups);
                    }
                    run.candidates = report.candidates.clone();
                    run.report = Some((**report).clone());
                }
                self.log(LogLevel::Info, line);
            }
            Event::Failed { message } => {
                self.job.failed = Some(message.clone());
                self.job.running = false;
                self.log(LogLevel::Error, message.clone());
            }
        }
    }

    /// What keys care about: is a job running, is it followed from elsewhere, is there a setup
    /// screen to go back to.
    pub fn situation(&self) -> Situation {
        Situation {
            running: self.job.running,
            attached: self.attached,
            setup: self.setup.is_some(),
        }
    }

    /// Where keys go now: the box over the screen, or the screen.
    pub fn key_context(&self) -> Context {
        match &self.ui.modal {
            Some(Modal::Help) => Context::Help,
            Some(Modal::ConfirmStop) => Context::ConfirmStop,
            Some(Modal::SavePrompt(_)) => Context::SavePrompt,
            None => self.screen_context(),
        }
    }

    /// The screen shown (the part of it with the focus), under any box.
    pub fn screen_context(&self) -> Context {
        if self.training.is_some() {
            return Context::TrainingViewer;
        }
        match self.ui.screen {
            Screen::Setup => match self.setup.as_ref().map(|s| s.focus) {
                Some(SetupFocus::Form) => Context::Form,
                _ => Context::Browser,
            },
            Screen::Inspect => Context::Inspector,
            Screen::Dashboard => Context::Dashboard,
        }
    }

    /// A key press, dispatched through the keymap: a key the table does not bind in the current
    /// context does nothing.
    pub fn on_key(&mut self, key: Key) -> Action {
        let situation = self.situation();
        if keymap::command(Context::Anywhere, key, &situation) == Some(Command::Interrupt) {
            return self.interrupt();
        }
        let context = self.key_context();
        let command = keymap::command(context, key, &situation);
        if let Some(modal) = self.ui.modal.take() {
            return self.modal_command(modal, command, key);
        }
        let Some(command) = command else { return Action::None };
        match context {
            Context::TrainingViewer => Action::Quit,
            Context::Browser | Context::Form => self.setup_command(command, key),
            Context::Inspector => self.inspect_command(command, key),
            _ => self.dashboard_command(command, key),
        }
    }

    /// Ctrl-C, from anywhere: ask to stop a running job (a second one stops it), else quit.
    fn interrupt(&mut self) -> Action {
        let confirming = self.ui.modal == Some(Modal::ConfirmStop);
        self.ui.modal = None;
        if !self.job.running || self.attached {
            return Action::Quit;
        }
        if confirming {
            return Action::Cancel;
        }
        self.ui.screen = Screen::Dashboard;
        self.ui.modal = Some(Modal::ConfirmStop);
        Action::None
    }

    /// A key while a box is open: the help and "stop?" boxes close on any key, the save box
    /// stays open while the destination is typed.
    fn modal_command(&mut self, modal: Modal, command: Option<Command>, key: Key) -> Action {
        match (modal, command) {
            (Modal::ConfirmStop, Some(Command::Confirm)) if self.job.running => Action::Cancel,
            (Modal::ConfirmStop, Some(Command::Confirm)) => Action::Quit,
            (Modal::SavePrompt(dest), Some(Command::Confirm)) => Action::Save {
                run: self.shown_index().unwrap_or(0),
                dest: PathBuf::from(dest.trim()),
            },
            (Modal::SavePrompt(mut dest), command) => {
                match (command, key) {
                    (Some(Command::Dismiss), _) => return Action::None,
                    (Some(Command::Erase), _) => {
                        dest.pop();
                    }
                    (Some(Command::Type), Key::Char(c)) => dest.push(c),
                    _ => {}
                }
                self.ui.modal = Some(Modal::SavePrompt(dest));
                Action::None
            }
            _ => Action::None,
        }
    }

    fn dashboard_command(&mut self, command: Command, key: Key) -> Action {
        match command {
            Command::Quit => return Action::Quit,
            Command::AskStop => self.ui.modal = Some(Modal::ConfirmStop),
            Command::ToSetup => self.ui.screen = Screen::Setup,
            Command::NewRun if self.job.running => {
                self.log(LogLevel::Info, "a job is running: stop it (q) before starting another")
            }
            Command::NewRun => self.ui.screen = Screen::Setup,
            Command::Save => match self.shown_run() {
                Some(r) if r.finished() => {
                    self.ui.modal = Some(Modal::SavePrompt(format!("./soups/{}", r.strategy)))
                }
                Some(r) => self.log(
                    LogLevel::Info,
                    format!("{} has not finished: nothing to save yet", r.strategy),
                ),
                None => self.log(LogLevel::Info, "no result to save yet"),
            },
            Command::SelectRun => self.step_selection(key == Key::Char(']')),
            Command::Help => self.ui.modal = Some(Modal::Help),
            Command::NextPanel => self.ui.focus = self.ui.focus.next(),
            Command::ToggleWindow => self.ui.whole_run = !self.ui.whole_run,
            Command::Move => {
                if let Some(up) = key.vertical() {
                    self.scroll(up);
                }
            }
            _ => {}
        }
        Action::None
    }

    fn step_selection(&mut self, forward: bool) {
        if let Some(at) = self.shown_index() {
            let next =
                if forward { (at + 1).min(self.runs.len() - 1) } else { at.saturating_sub(1) };
            self.select(next);
        }
    }

    /// Up/down in the focused panel: weights and the log scroll, results select a run.
    fn scroll(&mut self, up: bool) {
        let ui = &mut self.ui;
        match ui.focus {
            Panel::Weights => {
                let rows = self.shown_run().map_or(0, |r| r.weights.ingredients());
                let ui = &mut self.ui;
                ui.weights_scroll = if up {
                    ui.weights_scroll.saturating_sub(1)
                } else {
                    (ui.weights_scroll + 1).min(rows.saturating_sub(1))
                };
            }
            Panel::Results | Panel::Curves | Panel::Progress => self.step_selection(!up),
            // the log scrolls back in time going up
            Panel::Log => {
                ui.log_scroll = if up {
                    ui.log_scroll.saturating_add(1).min(self.logs.len().saturating_sub(1))
                } else {
                    ui.log_scroll.saturating_sub(1)
                }
            }
        }
    }

    fn setup_command(&mut self, command: Command, key: Key) -> Action {
        let Some(setup) = &mut self.setup else { return Action::None };
        if command == Command::Help {
            self.ui.modal = Some(Modal::Help);
            return Action::None;
        }
        match setup.on_command(command, key) {
            SetupAction::None => Action::None,
            SetupAction::Start { .. } if self.job.running => {
                setup.message = Some("a job is running: stop it first".into());
                Action::None
            }
            SetupAction::Start { ingredients, dataset, device, settings } => {
                Action::Start { ingredients, dataset, device, settings }
            }
            SetupAction::Inspect(paths) => {
                self.ui.screen = Screen::Inspect;
                self.ui.inspect_scroll = 0;
                self.inspection = Inspection::Loading(paths.len());
                Action::Inspect(paths)
            }
            SetupAction::Back => {
                if self.job.running || !self.runs.is_empty() || self.job.failed.is_some() {
                    self.ui.screen = Screen::Dashboard;
                }
                Action::None
            }
            SetupAction::Quit if self.job.running => {
                self.ui.screen = Screen::Dashboard;
                self.ui.modal = Some(Modal::ConfirmStop);
                Action::None
            }
            SetupAction::Quit => Action::Quit,
        }
    }

    fn inspect_command(&mut self, command: Command, key: Key) -> Action {
        let ui = &mut self.ui;
        match command {
            Command::Back => ui.screen = Screen::Setup,
            Command::ToggleMatrix => ui.inspect_distance = !ui.inspect_distance,
            Command::Help => ui.modal = Some(Modal::Help),
            Command::Move => match key.vertical() {
                Some(true) => ui.inspect_scroll = ui.inspect_scroll.saturating_sub(1),
                Some(false) => ui.inspect_scroll += 1,
                None => {}
            },
            _ => {}
        }
        Action::None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::soup::Strategy;

    fn started(strategy: Strategy) -> Event {
        Event::Started {
            strategy,
            dataset: "d".into(),
            nodes: 1,
            edges: 1,
            device: "cpu".into(),
            ingredients: vec!["a".into(), "b".into()],
            groups: vec!["all".into()],
            steps: 2,
            parts: None,
        }
    }

    /// Found by fuzzing the events reader: an events file claiming 4e15 PLS parts aborted the
    /// viewer allocating a counter per part; ragged weight rows are ignored.
    #[test]
    fn absurd_or_ragged_events_from_a_file_are_survived() {
        let mut app = App::attached("t", "/r".into());
        let Event::Started {
            strategy,
            dataset,
            nodes,
            edges,
            device,
            ingredients,
            groups,
            steps,
            ..
        } = started(Strategy::Pls)
        else {
            unreachable!()
        };
        app.apply(&Event::Started {
            strategy,
            dataset,
            nodes,
            edges,
            device,
            ingredients,
            groups,
            steps,
            parts: Some(4_000_000_000_000_000),
        });
        assert!(app.runs[0].part_uses.len() <= 1 << 16);
        app.apply(&Event::Epoch {
            epoch: 0,
            epochs: 2,
            loss: 1.0,
            val_acc: f64::NAN,
            select_acc: None,
            lr: 1.0,
            weights: vec![vec![0.5, 0.5], vec![1.0]],
            seconds: 0.1,
        });
        assert!(app.runs[0].weights.rows.is_empty(), "ragged rows are not taken");
        assert_eq!(app.runs[0].weights.mean(), Vec::<f64>::new());
    }

    #[test]
    fn an_attached_viewer_closes_without_asking() {
        let mut app = App::attached("t", "/r".into());
        app.apply(&started(Strategy::Ls));
        assert_eq!(app.on_key(Key::Char('q')), Action::Quit);
        assert_eq!(app.on_key(Key::Interrupt), Action::Quit);
        assert_eq!(app.on_key(Key::Esc), Action::Quit);
        assert!(app.runs[0].dir.is_none(), "a followed run's files are not this session's to save");
    }

    #[test]
    fn selection_follows_new_runs_until_the_user_picks_one() {
        let mut app = App::new("t");
        app.apply(&started(Strategy::Greedy));
        app.apply(&started(Strategy::Ls));
        assert_eq!(app.shown_index(), Some(1));
        app.on_key(Key::Char('['));
        assert_eq!(app.shown_index(), Some(0));
        app.apply(&started(Strategy::Pls));
        assert_eq!(
            app.shown_run().unwrap().strategy,
            Strategy::Greedy,
            "a picked run stays picked"
        );
        app.on_key(Key::Char(']'));
        app.on_key(Key::Char(']'));
        assert_eq!(app.ui.selected, None, "back at the latest: following again");
    }
}
