//! The dashboard's state: fed by engine events and keys, read by the drawing code. One owner,
//! no locks; nothing here touches tensors or the terminal, so it is tested with plain values.

use std::time::{Duration, Instant};

use crate::engine::report::SoupReport;
use crate::engine::Event;
use crate::soup::Strategy;

/// What a key press asks the event loop to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    None,
    /// Stop the running job (the engine keeps the best soup so far).
    Cancel,
    Quit,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Key {
    Char(char),
    Esc,
    Tab,
    Up,
    Down,
    Enter,
}

/// The panels Tab cycles through (the focused one is highlighted and scrolls).
pub const PANELS: [&str; 4] = ["curves", "weights", "progress", "log"];

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
    /// (epoch, loss) and (epoch, val accuracy) of the current strategy.
    pub loss: Vec<(f64, f64)>,
    pub val: Vec<(f64, f64)>,
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
    /// Where the run writes its files, shown in the footer.
    pub run_dir: Option<String>,
    pub log_file: Option<String>,
}

impl App {
    pub fn new(title: impl Into<String>) -> App {
        App { title: title.into(), running: true, ..Default::default() }
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
                self.loss.clear();
                self.val.clear();
                self.weights.clear();
                self.candidates.clear();
                self.parts = *parts;
                self.part_uses = vec![0; parts.unwrap_or(0)];
                self.last_sample.clear();
                self.running = true;
                self.started = Some(Instant::now());
            }
            Event::Epoch { epoch, loss, val_acc, lr, weights, seconds, .. } => {
                self.step = epoch + 1;
                self.loss.push((*epoch as f64, *loss));
                if val_acc.is_finite() {
                    self.val.push((*epoch as f64, *val_acc));
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
                if !self.running {
                    Action::Quit
                } else {
                    Action::None
                }
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
            Key::Up | Key::Char('k') => {
                self.log_scroll = self.log_scroll.saturating_add(1).min(self.logs.len().saturating_sub(1));
                Action::None
            }
            Key::Down | Key::Char('j') => {
                self.log_scroll = self.log_scroll.saturating_sub(1);
                Action::None
            }
            _ => Action::None,
        }
    }
}
