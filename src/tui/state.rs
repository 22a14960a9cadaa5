//! What the workbench shows, in three parts: the job's view model ([`JobView`]: what is running,
//! on what), the session's runs ([`RunView`]: one per strategy run, with its curves, weights,
//! candidates, partitions and report) and the UI's own state ([`Ui`]: screen, focused panel,
//! modal, scroll positions). Nothing here touches tensors or the terminal.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::engine::report::SoupReport;
use crate::inspect::DiversityReport;
use crate::soup::{CandidateRecord, Strategy};

/// The screens: setup (pick ingredients and a strategy), the ingredient inspector, and the live
/// dashboard with the session's results.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Screen {
    #[default]
    Dashboard,
    Setup,
    Inspect,
}

/// The dashboard panels Tab cycles through (the focused one is highlighted and scrolls).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Panel {
    #[default]
    Weights,
    Curves,
    Progress,
    Results,
    Log,
}

impl Panel {
    pub const ALL: [Panel; 5] =
        [Panel::Weights, Panel::Curves, Panel::Progress, Panel::Results, Panel::Log];
    pub fn next(self) -> Panel {
        let i = Panel::ALL.iter().position(|&p| p == self).unwrap_or(0);
        Panel::ALL[(i + 1) % Panel::ALL.len()]
    }
}

/// A box over the current screen that takes the keys until it closes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Modal {
    Help,
    /// "Stop the job?" (y / n).
    ConfirmStop,
    /// The save destination being typed.
    SavePrompt(String),
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

/// The job being run (or followed): what it runs on, and how it is going.
#[derive(Debug, Default)]
pub struct JobView {
    pub dataset: String,
    pub nodes: usize,
    pub edges: usize,
    pub device: String,
    pub ingredients: Vec<String>,
    /// (val, test) of each ingredient and of the uniform soup, measured before the strategies.
    pub ingredient_acc: Vec<(f64, f64)>,
    pub uniform_acc: Option<(f64, f64)>,
    pub running: bool,
    pub failed: Option<String>,
    /// Where the job writes its files.
    pub run_dir: Option<String>,
}

/// The mixing weights of a run: one column per weight group, one value per ingredient.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Weights {
    /// Column labels (tensor or layer names, or "all").
    pub groups: Vec<String>,
    /// `[group][ingredient]`.
    pub rows: Vec<Vec<f64>>,
}

impl Weights {
    pub fn ingredients(&self) -> usize {
        self.rows.first().map_or(0, Vec::len)
    }

    /// Mean weight of each ingredient over the groups.
    pub fn mean(&self) -> Vec<f64> {
        (0..self.ingredients())
            .map(|i| self.rows.iter().map(|row| row[i]).sum::<f64>() / self.rows.len() as f64)
            .collect()
    }

    pub fn max(&self) -> f64 {
        self.rows.iter().flatten().cloned().fold(0.0, f64::max)
    }

    /// A report's final weights (tensor name -> weight per ingredient) as columns: tensors that
    /// share their weights (one group for a layer, or the whole model for the baselines) form
    /// one column, named by what they have in common; columns follow the run's group order.
    pub fn from_report(weights: &BTreeMap<String, Vec<f64>>, order: &[String]) -> Weights {
        let rank = |name: &str| {
            order
                .iter()
                .position(|g| g == name || name.starts_with(&format!("{g}.")))
                .unwrap_or(usize::MAX)
        };
        let mut names: Vec<&String> = weights.keys().collect();
        names.sort_by_key(|n| (rank(n), n.as_str()));
        let mut columns: Vec<(Vec<&str>, &Vec<f64>)> = Vec::new();
        for n in names {
            let row = &weights[n];
            match columns.iter_mut().find(|(_, r)| *r == row) {
                Some((members, _)) => members.push(n),
                None => columns.push((vec![n], row)),
            }
        }
        let single = columns.len() == 1 && weights.len() > 1;
        Weights {
            groups: columns
                .iter()
                .map(|(members, _)| if single { "all".to_string() } else { common_name(members) })
                .collect(),
            rows: columns.into_iter().map(|(_, r)| r.clone()).collect(),
        }
    }
}

/// What names share: `convs.0.lin.weight` and `convs.0.bias` -> `convs.0`.
fn common_name(names: &[&str]) -> String {
    if names.len() == 1 {
        return names[0].to_string();
    }
    let parts: Vec<Vec<&str>> = names.iter().map(|n| n.split('.').collect()).collect();
    let shared = (0..parts[0].len())
        .take_while(|&i| parts.iter().all(|p| p.get(i) == parts[0].get(i)))
        .count();
    if shared == 0 {
        format!("{} (+{})", names[0], names.len() - 1)
    } else {
        format!("{}.*", parts[0][..shared].join("."))
    }
}

/// One strategy run of this session: everything its panels show, kept after it ends.
#[derive(Debug, Clone)]
pub struct RunView {
    pub strategy: Strategy,
    pub steps: usize,
    pub step: usize,
    /// (epoch, loss) and (epoch, val accuracy), LS/PLS.
    pub loss: Vec<(f64, f64)>,
    pub val: Vec<(f64, f64)>,
    pub lr: f64,
    /// The current weights while it runs; the final ones after.
    pub weights: Weights,
    pub candidates: Vec<CandidateRecord>,
    /// PLS: K, how often each part was sampled, the last sample and its subgraph's size.
    pub parts: Option<usize>,
    pub part_uses: Vec<usize>,
    pub last_sample: Vec<usize>,
    pub last_subgraph: (usize, usize),
    pub report: Option<SoupReport>,
    /// The run directory its files went to (None when followed from elsewhere).
    pub dir: Option<PathBuf>,
    /// When it started here (None for a replay: the ETA then comes from the epochs' times).
    pub started: Option<Instant>,
    /// Time since its start, as the engine measured it.
    pub elapsed: Duration,
}

impl RunView {
    pub fn new(
        strategy: Strategy,
        groups: Vec<String>,
        steps: usize,
        parts: Option<usize>,
        dir: Option<PathBuf>,
    ) -> RunView {
        /// More PLS parts than any run uses; beyond it parts are not counted one by one.
        const MAX_PARTS_SHOWN: usize = 1 << 16;
        RunView {
            strategy,
            steps,
            step: 0,
            loss: Vec::new(),
            val: Vec::new(),
            lr: 0.0,
            weights: Weights { groups, rows: Vec::new() },
            candidates: Vec::new(),
            parts,
            // The count comes from an events file that may be corrupt: bounded (found by fuzzing:
            // a claimed 4e15 parts aborted the viewer).
            part_uses: vec![0; parts.unwrap_or(0).min(MAX_PARTS_SHOWN)],
            last_sample: Vec::new(),
            last_subgraph: (0, 0),
            report: None,
            dir,
            started: Some(Instant::now()),
            elapsed: Duration::ZERO,
        }
    }

    pub fn finished(&self) -> bool {
        self.report.is_some()
    }

    /// Estimated time left, from the average step so far.
    pub fn eta(&self) -> Option<Duration> {
        if self.finished() || self.step == 0 || self.steps <= self.step {
            return None;
        }
        let so_far =
            self.elapsed.as_secs_f64().max(self.started.map_or(0.0, |s| s.elapsed().as_secs_f64()));
        Some(Duration::from_secs_f64(so_far / self.step as f64 * (self.steps - self.step) as f64))
    }
}

/// The UI's own state: where the user is and what they look at.
#[derive(Debug, Default)]
pub struct Ui {
    pub screen: Screen,
    pub focus: Panel,
    pub modal: Option<Modal>,
    /// The run every dashboard panel shows (None: the latest, following new runs).
    pub selected: Option<usize>,
    /// Curves show the recent window (last 50 epochs) or the whole run.
    pub whole_run: bool,
    pub log_scroll: usize,
    pub weights_scroll: usize,
    pub inspect_scroll: usize,
    /// The inspector's matrix: distances (true) or cosines.
    pub inspect_distance: bool,
    /// No colour (`NO_COLOR`): every cell drawn in the terminal's own colours; what had a
    /// background colour (selections, highlights) is drawn reversed instead.
    pub monochrome: bool,
}

/// A training run followed from its events file (`tui --attach` on a training directory): what
/// each worker trains and how far it is, and every finished ingredient.
#[derive(Debug, Default)]
pub struct TrainingView {
    pub dataset: String,
    pub model: String,
    pub ingredients: usize,
    pub epochs: usize,
    pub devices: Vec<String>,
    pub shard: Option<String>,
    pub workers: Vec<WorkerView>,
    /// Finished ingredients, by index: the worker that trained it (None: kept from an earlier,
    /// interrupted run), validation and test accuracy.
    pub done: std::collections::BTreeMap<usize, (Option<usize>, f64, f64)>,
    /// Seconds, and whether the manifest was written (not by a shard).
    pub finished: Option<(f64, bool)>,
    pub failed: Option<String>,
}

/// One training worker (one device).
#[derive(Debug, Default, Clone)]
pub struct WorkerView {
    /// The ingredient it trains now (None: idle, or done).
    pub ingredient: Option<usize>,
    pub epoch: usize,
    pub loss: f64,
    pub val_acc: f64,
    /// Minibatch training: the latest step (batch, of batches) and the epoch's seeds per second.
    pub batch: Option<(usize, usize, f64)>,
    /// Ingredients it finished.
    pub finished: usize,
}

impl TrainingView {
    pub fn apply(&mut self, r: &crate::train::TrainRecord) {
        use crate::train::TrainRecord as R;
        let worker = |v: &mut TrainingView, w: usize| -> usize {
            if v.workers.len() <= w {
                v.workers.resize(w + 1, WorkerView::default());
            }
            w
        };
        match r {
            R::Started { dataset, model, ingredients, epochs, devices, shard } => {
                (
                    self.dataset,
                    self.model,
                    self.ingredients,
                    self.epochs,
                    self.devices,
                    self.shard,
                ) = (
                    dataset.clone(),
                    model.clone(),
                    *ingredients,
                    *epochs,
                    devices.clone(),
                    shard.clone(),
                );
                self.workers = vec![WorkerView::default(); devices.len()];
            }
            R::Ingredient { worker: w, index, .. } => {
                let w = worker(self, *w);
                self.workers[w] = WorkerView {
                    ingredient: Some(*index),
                    epoch: 0,
                    loss: f64::NAN,
                    val_acc: f64::NAN,
                    batch: None,
                    finished: self.workers[w].finished,
                };
            }
            R::Epoch { worker: w, index, epoch, loss, val_acc } => {
                let w = worker(self, *w);
                let v = &mut self.workers[w];
                (v.ingredient, v.epoch, v.loss) = (Some(*index), epoch + 1, *loss);
                if val_acc.is_finite() {
                    v.val_acc = *val_acc;
                }
            }
            R::Batch { worker: w, index, batch, batches, seeds_per_second, .. } => {
                let w = worker(self, *w);
                let v = &mut self.workers[w];
                (v.ingredient, v.batch) =
                    (Some(*index), Some((*batch, *batches, *seeds_per_second)));
            }
            R::Done { worker: w, index, val_acc, test_acc, .. } => {
                let w = worker(self, *w);
                self.workers[w].ingredient = None;
                self.workers[w].finished += 1;
                self.done.insert(*index, (Some(w), *val_acc, *test_acc));
            }
            R::Kept { index, .. } => {
                self.done.entry(*index).or_insert((None, f64::NAN, f64::NAN));
            }
            R::Finished { seconds, complete } => {
                self.finished = Some((*seconds, *complete));
                for v in &mut self.workers {
                    v.ingredient = None;
                }
            }
            R::Failed { message } => self.failed = Some(message.clone()),
        }
    }

    /// How many ingredients this run (or shard) trains: every one, or its share.
    pub fn owned(&self) -> usize {
        match self.shard.as_deref().and_then(|s| crate::train::Shard::parse(s).ok()) {
            Some(s) => (0..self.ingredients).filter(|i| s.owns(*i)).count(),
            None => self.ingredients,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report_weights_become_one_column_per_group() {
        let w = |v: [f64; 2]| v.to_vec();
        // A baseline: every tensor shares one row.
        let global: BTreeMap<String, Vec<f64>> =
            [("convs.0.bias", w([0.5, 0.5])), ("convs.0.lin.weight", w([0.5, 0.5]))]
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect();
        let g = Weights::from_report(&global, &["all".into()]);
        assert_eq!(g.groups, vec!["all"]);
        assert_eq!(g.rows, vec![w([0.5, 0.5])]);
        // Per layer: tensors of a layer share a row; columns in the model's order.
        let layered: BTreeMap<String, Vec<f64>> = [
            ("convs.0.bias", w([0.2, 0.8])),
            ("convs.0.lin.weight", w([0.2, 0.8])),
            ("convs.1.bias", w([0.6, 0.4])),
            ("convs.1.lin.weight", w([0.6, 0.4])),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        let l = Weights::from_report(&layered, &["convs.1".into(), "convs.0".into()]);
        assert_eq!(l.groups, vec!["convs.1.*", "convs.0.*"]);
        assert!(
            l.mean().iter().zip([0.4, 0.6]).all(|(a, b)| (a - b).abs() < 1e-12),
            "{:?}",
            l.mean()
        );
        // Per tensor, in the order the run named its groups.
        let per: BTreeMap<String, Vec<f64>> =
            [("convs.0.bias", w([0.1, 0.9])), ("convs.0.lin.weight", w([0.3, 0.7]))]
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect();
        let p = Weights::from_report(&per, &["convs.0.lin.weight".into(), "convs.0.bias".into()]);
        assert_eq!(p.groups, vec!["convs.0.lin.weight", "convs.0.bias"]);
    }

    #[test]
    fn panels_cycle() {
        let mut p = Panel::default();
        for _ in 0..Panel::ALL.len() {
            p = p.next();
        }
        assert_eq!(p, Panel::default());
    }
}
