//! The workbench's state: fed by engine events and keys, read by the drawing code. One owner,
//! no locks; nothing here touches tensors or the terminal, so it is tested with plain values.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use super::setup::{Setup, SetupAction};
use crate::engine::report::SoupReport;
use crate::engine::Event;
use crate::inspect::DiversityReport;
use crate::soup::{SoupSettings, Strategy};

/// What a key press asks the event loop to do.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    None,
    /// Stop the running job (the engine keeps the best soup so far).
    Cancel,
    Quit,
    /// Start a job from the setup screen.
    Start { ingredients: Vec<PathBuf>, dataset: String, device: String, settings: Vec<SoupSettings> },
    /// Measure the diversity of these ingredients (off the UI thread).
    Inspect(Vec<PathBuf>),
    /// Copy result `report`'s soup and report into the directory `dest`.
    Save { report: usize, dest: PathBuf },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Key {
    Char(char),
    Esc,
    Tab,
    Up,
    Down,
    Left,
    Right,
    Enter,
    Backspace,
    /// Ctrl-C: stop or quit from anywhere, even while typing in the form.
    Interrupt,
}

/// The screens: setup (pick ingredients and a strategy), the ingredient inspector, and the live
/// dashboard with the session's results.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Screen {
    #[default]
    Dashboard,
    Setup,
    Inspect,
}

/// The inspector's content.
#[derive(Debug, Default)]
pub enum Inspection {
    #[default]
    Idle,
    /// Loading this many checkpoints.
    Loading(usize),
    Ready(Box<DiversityReport>),
    Failed(String),
}

/// The loss and validation curves of one strategy run in this session.
#[derive(Debug, Clone)]
pub struct RunCurves {
    pub strategy: Strategy,
    /// (epoch, loss) and (epoch, val accuracy).
    pub loss: Vec<(f64, f64)>,
    pub val: Vec<(f64, f64)>,
}

/// The dashboard panels Tab cycles through (the focused one is highlighted and scrolls).
pub const PANELS: [&str; 5] = ["curves", "weights", "progress", "results", "log"];

#[derive(Debug, Clone)]
pub struct CandidateRow {
    pub ingredient: usize,
    pub factor: f64,
    pub val_acc: f64,
    pub accepted: bool,
}

#[derive(Debug, Default)]
pub struct App {
    pub title: String,
    pub strategy: Option<Strategy>,
    pub dataset: String,
    pub nodes: usize,
    pub edges: usize,
    pub device: String,
    pub ingredients: Vec<String>,
    pub groups: Vec<String>,
    pub steps: usize,
    pub step: usize,
    /// Curves of every strategy run this session, the current one last.
    pub runs: Vec<RunCurves>,
    /// Which run the curves panel shows (None: the latest).
    pub shown_run: Option<usize>,
    pub lr: f64,
    /// Mixing weights `[group][ingredient]` after the latest epoch.
    pub weights: Vec<Vec<f64>>,
    pub candidates: Vec<CandidateRow>,
    pub parts: Option<usize>,
    pub part_uses: Vec<usize>,
    pub last_sample: Vec<usize>,
    pub last_subgraph: (usize, usize),
    pub ingredient_acc: Vec<(f64, f64)>,
    pub uniform_acc: Option<(f64, f64)>,
    pub logs: Vec<(String, String)>,
    pub results: Vec<SoupReport>,
    /// The run directory each result was written to (None when followed from elsewhere).
    pub result_dirs: Vec<Option<PathBuf>>,
    pub failed: Option<String>,
    pub running: bool,
    pub started: Option<Instant>,
    pub elapsed: Duration,
    // view state
    pub focus: usize,
    pub help: bool,
    pub confirm_quit: bool,
    /// Curves show the recent window (last 50 epochs) or the whole run.
    pub whole_run: bool,
    pub log_scroll: usize,
    pub weights_scroll: usize,
    /// The selected row of the results table (what `s` saves).
    pub results_cursor: usize,
    /// The save destination being typed, while the save prompt is open.
    pub save_prompt: Option<String>,
    /// Where the run writes its files, shown in the footer.
    pub run_dir: Option<String>,
    pub log_file: Option<String>,
    pub screen: Screen,
    /// The setup screen (None when attached to a run started elsewhere).
    pub setup: Option<Setup>,
    pub inspection: Inspection,
    pub inspect_scroll: usize,
    /// The inspector's matrix: distances (true) or cosines.
    pub inspect_distance: bool,
}

impl App {
    /// A dashboard for a job that is already running (or a run directory being followed).
    pub fn new(title: impl Into<String>) -> App {
        App { title: title.into(), running: true, ..Default::default() }
    }

    /// A session that opens on the setup screen.
    pub fn with_setup(title: impl Into<String>, setup: Setup) -> App {
        App { title: title.into(), running: false, screen: Screen::Setup, setup: Some(setup), ..Default::default() }
    }

    /// The curves the dashboard shows.
    pub fn shown_curves(&self) -> Option<&RunCurves> {
        match self.shown_run {
            Some(i) => self.runs.get(i),
            None => self.runs.last(),
        }
    }

    /// A job was started from the setup screen: clear what belonged to the previous job (the
    /// session's results and curves stay).
    pub fn job_started(&mut self, run_dir: String) {
        self.screen = Screen::Dashboard;
        self.running = true;
        self.failed = None;
        self.ingredient_acc.clear();
        self.uniform_acc = None;
        self.shown_run = None;
        self.run_dir = Some(run_dir);
    }

    pub fn apply(&mut self, e: &Event) {
        match e {
            Event::Started { strategy, dataset, nodes, edges, device, ingredients, groups, steps, parts } => {
                self.strategy = Some(*strategy);
                self.dataset = dataset.clone();
                self.nodes = *nodes;
                self.edges = *edges;
                self.device = device.clone();
                self.ingredients = ingredients.clone();
                self.groups = groups.clone();
                self.steps = *steps;
                self.step = 0;
                // Only LS and PLS have epochs: the others keep the last curves on screen.
                if matches!(strategy, Strategy::Ls | Strategy::Pls) {
                    self.runs.push(RunCurves { strategy: *strategy, loss: Vec::new(), val: Vec::new() });
                    self.shown_run = None;
                }
                self.lr = 0.0;
                self.weights.clear();
                self.weights_scroll = 0;
                self.candidates.clear();
                self.parts = *parts;
                self.part_uses = vec![0; parts.unwrap_or(0)];
                self.last_sample.clear();
                self.running = true;
                self.started = Some(Instant::now());
            }
            Event::Epoch { epoch, loss, val_acc, lr, weights, seconds, .. } => {
                self.step = epoch + 1;
                if let Some(run) = self.runs.last_mut() {
                    run.loss.push((*epoch as f64, *loss));
                    if val_acc.is_finite() {
                        run.val.push((*epoch as f64, *val_acc));
                    }
                }
                self.lr = *lr;
                self.weights = weights.clone();
                self.elapsed = Duration::from_secs_f64(*seconds);
            }
            Event::Candidate { ingredient, factor, val_acc, accepted, step, .. } => {
                self.step = *step;
                self.candidates.push(CandidateRow { ingredient: *ingredient, factor: *factor, val_acc: *val_acc, accepted: *accepted });
            }
            Event::PartitionSample { parts, nodes, edges, .. } => {
                for &p in parts {
                    if let Some(u) = self.part_uses.get_mut(p) {
                        *u += 1;
                    }
                }
                self.last_sample = parts.clone();
                self.last_subgraph = (*nodes, *edges);
            }
            Event::Evaluation { what, val_acc, test_acc } => {
                if what == "uniform soup" {
                    self.uniform_acc = Some((*val_acc, *test_acc));
                } else if what.starts_with("ingredient") {
                    self.ingredient_acc.push((*val_acc, *test_acc));
                }
            }
            Event::Log { level, message } => self.logs.push((level.clone(), message.clone())),
            Event::Finished { report } => {
                self.step = self.steps;
                self.results.push((**report).clone());
                // The newest result is the one `s` saves unless the user picks another.
                self.results_cursor = self.results.len() - 1;
                self.result_dirs.push(self.run_dir.as_ref().map(PathBuf::from));
                self.logs.push(("info".into(), format!("{} finished: val {:.2}% test {:.2}%{}", report.strategy, 100.0 * report.val_acc, 100.0 * report.test_acc, if report.partial { " (partial)" } else { "" })));
            }
            Event::Failed { message } => {
                self.failed = Some(message.clone());
                self.running = false;
                self.logs.push(("error".into(), message.clone()));
            }
        }
    }

    /// The job ended (its event stream closed).
    pub fn finish(&mut self) {
        self.running = false;
    }

    /// Estimated time left for the current strategy, from the average step so far.
    pub fn eta(&self) -> Option<Duration> {
        if !self.running || self.step == 0 || self.steps <= self.step {
            return None;
        }
        let per = self.elapsed.as_secs_f64().max(self.started.map_or(0.0, |s| s.elapsed().as_secs_f64())) / self.step as f64;
        Some(Duration::from_secs_f64(per * (self.steps - self.step) as f64))
    }

    /// Mean weight of each ingredient over all groups.
    pub fn mean_weights(&self) -> Vec<f64> {
        let n = self.weights.first().map_or(0, Vec::len);
        (0..n).map(|i| self.weights.iter().map(|row| row[i]).sum::<f64>() / self.weights.len() as f64).collect()
    }

    pub fn on_key(&mut self, key: Key) -> Action {
        if key == Key::Interrupt {
            self.help = false;
            self.save_prompt = None;
            if !self.running {
                return Action::Quit;
            }
            if self.confirm_quit {
                self.confirm_quit = false;
                return Action::Cancel;
            }
            self.screen = Screen::Dashboard;
            self.confirm_quit = true;
            return Action::None;
        }
        match self.screen {
            Screen::Setup if !self.confirm_quit && !self.help => return self.setup_key(key),
            Screen::Inspect if !self.help => return self.inspect_key(key),
            _ => {}
        }
        if let Some(dest) = &mut self.save_prompt {
            match key {
                Key::Enter => {
                    let dest = PathBuf::from(dest.trim());
                    self.save_prompt = None;
                    return Action::Save { report: self.results_cursor, dest };
                }
                Key::Esc => self.save_prompt = None,
                Key::Backspace => {
                    dest.pop();
                }
                Key::Char(c) if !c.is_control() => dest.push(c),
                _ => {}
            }
            return Action::None;
        }
        if self.confirm_quit {
            self.confirm_quit = false;
            return match key {
                Key::Char('y') | Key::Char('Y') | Key::Enter => {
                    if self.running {
                        Action::Cancel
                    } else {
                        Action::Quit
                    }
                }
                _ => Action::None,
            };
        }
        if self.help {
            self.help = false;
            return Action::None;
        }
        match key {
            Key::Char('q') => {
                if self.running {
                    self.confirm_quit = true;
                    Action::None
                } else {
                    Action::Quit
                }
            }
            Key::Esc => {
                if self.running {
                    Action::None
                } else if self.setup.is_some() {
                    self.screen = Screen::Setup;
                    Action::None
                } else {
                    Action::Quit
                }
            }
            Key::Char('n') => {
                if self.running {
                    self.logs.push(("info".into(), "a job is running: stop it (q) before starting another".into()));
                } else if self.setup.is_some() {
                    self.screen = Screen::Setup;
                }
                Action::None
            }
            Key::Char('s') => {
                match self.results.get(self.results_cursor) {
                    Some(r) => self.save_prompt = Some(format!("./soups/{}", r.strategy)),
                    None => self.logs.push(("info".into(), "no result to save yet".into())),
                }
                Action::None
            }
            Key::Char('[') | Key::Char(']') => {
                let n = self.runs.len();
                if n > 0 {
                    let at = self.shown_run.unwrap_or(n - 1);
                    let next = if key == Key::Char(']') { (at + 1).min(n - 1) } else { at.saturating_sub(1) };
                    self.shown_run = if next + 1 == n { None } else { Some(next) };
                }
                Action::None
            }
            Key::Char('?') => {
                self.help = true;
                Action::None
            }
            Key::Tab => {
                self.focus = (self.focus + 1) % PANELS.len();
                Action::None
            }
            Key::Char('w') => {
                self.whole_run = !self.whole_run;
                Action::None
            }
            Key::Up | Key::Char('k') | Key::Down | Key::Char('j') => {
                let up = matches!(key, Key::Up | Key::Char('k'));
                match PANELS[self.focus] {
                    "weights" => self.weights_scroll = if up { self.weights_scroll.saturating_sub(1) } else { (self.weights_scroll + 1).min(self.mean_weights().len().saturating_sub(1)) },
                    "results" => self.results_cursor = if up { self.results_cursor.saturating_sub(1) } else { (self.results_cursor + 1).min(self.results.len().saturating_sub(1)) },
                    // the log scrolls back in time going up
                    _ => self.log_scroll = if up { self.log_scroll.saturating_add(1).min(self.logs.len().saturating_sub(1)) } else { self.log_scroll.saturating_sub(1) },
                }
                Action::None
            }
            _ => Action::None,
        }
    }

    fn setup_key(&mut self, key: Key) -> Action {
        if key == Key::Char('?') && self.setup.as_ref().is_some_and(|s| s.focus == super::setup::SetupFocus::Browser) {
            self.help = true;
            return Action::None;
        }
        let Some(setup) = &mut self.setup else { return Action::None };
        match setup.on_key(key) {
            SetupAction::None => Action::None,
            SetupAction::Start { ingredients, dataset, device, settings } => {
                if self.running {
                    setup.message = Some("a job is running: stop it first".into());
                    return Action::None;
                }
                Action::Start { ingredients, dataset, device, settings }
            }
            SetupAction::Inspect(paths) => {
                self.screen = Screen::Inspect;
                self.inspection = Inspection::Loading(paths.len());
                self.inspect_scroll = 0;
                Action::Inspect(paths)
            }
            SetupAction::Back => {
                if self.running || !self.results.is_empty() || !self.runs.is_empty() || self.failed.is_some() {
                    self.screen = Screen::Dashboard;
                }
                Action::None
            }
            SetupAction::Quit => {
                if self.running {
                    self.screen = Screen::Dashboard;
                    self.confirm_quit = true;
                    Action::None
                } else {
                    Action::Quit
                }
            }
        }
    }

    fn inspect_key(&mut self, key: Key) -> Action {
        match key {
            Key::Esc | Key::Char('q') | Key::Char('i') => self.screen = Screen::Setup,
            Key::Up | Key::Char('k') => self.inspect_scroll = self.inspect_scroll.saturating_sub(1),
            Key::Down | Key::Char('j') => self.inspect_scroll += 1,
            Key::Char('m') => self.inspect_distance = !self.inspect_distance,
            Key::Char('?') => self.help = true,
            _ => {}
        }
        Action::None
    }
}
