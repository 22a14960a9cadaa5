//! The state of an LS/PLS fit that a stopped run leaves behind and a resumed one continues from.
//!
//! The run directory is input like any other file: `soup --resume` reads the state through
//! [`FitState::load`] alone, which bounds what it reads, parses it and checks every field against
//! the job before anything is built from it (a vector of the wrong length would be a shape panic in
//! libtorch, a negative duration a panic in `std`, a `next_epoch` of 10^12 hours of replayed PLS
//! draws, a state claiming its last epoch a finished fit of a third of its epochs).

use std::path::Path;

use anyhow::Result;
use serde::{Deserialize, Serialize};

use super::progress::EpochRecord;
use super::settings::{OptimizerKind, SoupSettings, Strategy};

/// Everything an LS/PLS fit needs to continue where it stopped, as of the start of
/// `next_epoch`: the mixing logits and temperature, this thread's random stream (dropout), the
/// early-stopping bookkeeping and the history so far. The engine keeps it in the run directory
/// (`state-<strategy>.json`) while the fit runs; `soup --resume` hands it back.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FitState {
    pub next_epoch: usize,
    pub groups: usize,
    pub ingredients: usize,
    pub logits: Vec<f32>,
    pub beta: f32,
    pub stream: u64,
    #[serde(with = "crate::units::nan_as_null")]
    pub val_acc: f64,
    /// (held-out accuracy, epoch, weights) of the best epoch so far, with early stopping.
    pub best: Option<(f64, usize, Vec<f32>)>,
    pub since_best: usize,
    pub history: Vec<EpochRecord>,
    /// `--optimizer auto`: Adam's moments, so the resumed fit takes the steps the stopped one
    /// would have (SGD has no state).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub adam: Option<crate::optim::AdamState>,
}

/// What a saved state must agree with: the settings of the fit it continues and the shape of its
/// mixing weights.
#[derive(Debug, Clone, Copy)]
pub struct Expected<'a> {
    pub settings: &'a SoupSettings,
    /// How many ingredients the run soups.
    pub ingredients: usize,
    /// How many groups of weights it mixes: known once the ingredients are loaded (it depends on
    /// their tensors and `--mix`); None checks everything else.
    pub groups: Option<usize>,
}

/// The longest a fit's clock can have run, in seconds (about 300 years): a larger `seconds` in
/// the history is not a duration this run measured (and overflows `std::time::Duration`).
const MAX_SECONDS: f64 = 1e10;

impl FitState {
    /// The most bytes a saved state of a fit with `settings` can sensibly hold: its vectors (far
    /// under the base for any real model and ingredient count) and one history record per epoch
    /// (about 130 bytes each; 512 allowed), at most 1 GiB.
    pub fn max_bytes(settings: &SoupSettings) -> u64 {
        (64u64 << 20).saturating_add((settings.epochs as u64).saturating_mul(512)).min(1 << 30)
    }

    /// Reads `path` (a regular file of at most [`FitState::max_bytes`]), parses it and checks it
    /// against `expected` ([`FitState::check`]). Every error names the file and the problem.
    pub fn load(path: &Path, expected: &Expected) -> Result<FitState> {
        let text = crate::fsio::read_text(path, Self::max_bytes(expected.settings))?;
        Self::parse(&text, expected)
            .map_err(|problem| anyhow::anyhow!("{}: {problem}", path.display()))
    }

    /// Parses a saved state and checks it ([`FitState::check`]); the problem in words.
    pub fn parse(text: &str, expected: &Expected) -> Result<FitState, String> {
        let state: FitState = serde_json::from_str(text)
            .map_err(|e| format!("not a saved LS/PLS state gnn-soup can read ({e})"))?;
        state.check(expected)?;
        Ok(state)
    }

    /// Whether this state is one the fit `expected` describes could have saved: the shapes of its
    /// vectors, its progress against the epochs, every history record, the early-stopping and
    /// optimiser bookkeeping. These are the fit's own invariants at any point it saves (the start
    /// of an epoch before the last one), so a state that breaks one was not written by this run.
    pub fn check(&self, expected: &Expected) -> Result<(), String> {
        let s = expected.settings;
        let strategy = s.strategy;
        if !strategy.is_learned() {
            return Err(format!("{strategy} keeps no fit state"));
        }
        // The shape of the mixing weights.
        if self.ingredients != expected.ingredients {
            return Err(format!(
                "mixes {} ingredients; this run has {}",
                self.ingredients, expected.ingredients
            ));
        }
        if self.groups == 0 {
            return Err("mixes 0 groups of weights".into());
        }
        if let Some(groups) = expected.groups.filter(|&g| g != self.groups) {
            return Err(format!("mixes {} groups of weights; this run has {groups}", self.groups));
        }
        let len = self
            .groups
            .checked_mul(self.ingredients)
            .ok_or_else(|| format!("{} groups of {} ingredients", self.groups, self.ingredients))?;
        let shape = format!("{} groups x {} ingredients", self.groups, self.ingredients);
        vector("logits", &self.logits, len, &shape, None)?;
        if !self.beta.is_finite() {
            return Err(format!("beta is {}", self.beta));
        }

        // Progress: a fit saves at the start of an epoch it has yet to take.
        if self.next_epoch >= s.epochs {
            return Err(format!(
                "next_epoch is {} but the fit has {} epochs (0 to {}); a finished fit leaves no state",
                self.next_epoch,
                s.epochs,
                s.epochs - 1
            ));
        }
        let records = self.history.len();
        match strategy {
            // One record per epoch.
            Strategy::Ls if records != self.next_epoch => {
                return Err(format!(
                    "history has {records} records but next_epoch is {}",
                    self.next_epoch
                ))
            }
            // PLS skips an epoch whose sampled parts hold no fitting node: at most one each.
            Strategy::Pls if records > self.next_epoch => {
                return Err(format!(
                    "history has {records} records but next_epoch is only {}",
                    self.next_epoch
                ))
            }
            _ => {}
        }
        let holdout = s.holdout > 0.0;
        let mut after = None;
        for (i, r) in self.history.iter().enumerate() {
            let at = |what: String| format!("history record {i} (epoch {}): {what}", r.epoch);
            let in_order = match strategy {
                Strategy::Ls => r.epoch == i,
                _ => after.is_none_or(|a| r.epoch > a) && r.epoch < self.next_epoch,
            };
            if !in_order {
                return Err(at(format!(
                    "out of order (records follow the epochs 0 to next_epoch {} - 1)",
                    self.next_epoch
                )));
            }
            after = Some(r.epoch);
            if !(r.loss.is_finite() && r.loss >= 0.0) {
                return Err(at(format!("loss {} is not a cross-entropy", num(r.loss))));
            }
            if !(r.lr.is_finite() && r.lr >= 0.0) {
                return Err(at(format!("lr {} is not a learning rate", num(r.lr))));
            }
            if !(r.seconds.is_finite() && (0.0..=MAX_SECONDS).contains(&r.seconds)) {
                return Err(at(format!(
                    "seconds {} is not a time the fit has run (0 to {MAX_SECONDS:e})",
                    num(r.seconds)
                )));
            }
            if !accuracy_or_nan(r.val_acc) {
                return Err(at(format!("val_acc {} is not an accuracy", num(r.val_acc))));
            }
            match (r.select_acc, holdout) {
                (Some(a), true) if !(0.0..=1.0).contains(&a) => {
                    return Err(at(format!("select_acc {} is not an accuracy", num(a))))
                }
                (Some(_), false) => {
                    return Err(at(
                        "has a held-out accuracy but this run holds out no nodes (holdout 0)"
                            .into(),
                    ))
                }
                (None, true) => {
                    return Err(at(format!(
                        "has no held-out accuracy but this run holds out nodes (holdout {})",
                        s.holdout
                    )))
                }
                _ => {}
            }
        }
        if !accuracy_or_nan(self.val_acc) {
            return Err(format!("val_acc {} is not an accuracy", num(self.val_acc)));
        }

        // Early stopping: the best epoch is the first record's or a later better one, and
        // since_best counts the records after it.
        match &self.best {
            Some(_) if !holdout => {
                return Err("has a best epoch but this run holds out no nodes (holdout 0)".into())
            }
            Some((acc, epoch, weights)) => {
                if !(0.0..=1.0).contains(acc) {
                    return Err(format!(
                        "the best epoch's accuracy {} is not an accuracy",
                        num(*acc)
                    ));
                }
                if !self.history.iter().any(|r| r.epoch == *epoch) {
                    return Err(format!(
                        "the best epoch {epoch} is not in the history (next_epoch {})",
                        self.next_epoch
                    ));
                }
                vector("the best epoch's weights", weights, len, &shape, Some((0.0, 1.0)))?;
                let later = self.history.iter().filter(|r| r.epoch > *epoch).count();
                if self.since_best != later {
                    return Err(format!(
                        "since_best is {} but {later} records follow the best epoch {epoch}",
                        self.since_best
                    ));
                }
            }
            None if holdout && records > 0 => {
                return Err(format!(
                    "history has {records} records but no best epoch (holdout {})",
                    s.holdout
                ))
            }
            None if self.since_best != 0 => {
                return Err(format!("since_best is {} without a best epoch", self.since_best))
            }
            None => {}
        }
        if holdout && self.since_best >= s.patience {
            return Err(format!(
                "since_best {} reaches the patience {}: the fit would have stopped early",
                self.since_best, s.patience
            ));
        }

        // The optimiser: Adam's moments for the logits and beta, one step per record.
        match (&self.adam, s.optimizer) {
            (None, OptimizerKind::Auto) => {
                Err("holds no Adam state but this run's optimizer is auto".into())
            }
            (Some(_), OptimizerKind::Sgd) => {
                Err("holds Adam's moments but this run's optimizer is sgd".into())
            }
            (Some(adam), OptimizerKind::Auto) => {
                for (name, moments, range) in
                    [("m", &adam.m, None), ("v", &adam.v, Some((0.0, f32::INFINITY)))]
                {
                    if moments.len() != 2 {
                        return Err(format!(
                            "Adam's {name} has {} vectors; the fit has 2 (logits, beta)",
                            moments.len()
                        ));
                    }
                    vector(
                        &format!("Adam's {name} for the logits"),
                        &moments[0],
                        len,
                        &shape,
                        range,
                    )?;
                    vector(&format!("Adam's {name} for beta"), &moments[1], 1, "one value", range)?;
                }
                if adam.steps != records as u64 {
                    return Err(format!(
                        "Adam has taken {} steps but the history has {records} records",
                        adam.steps
                    ));
                }
                Ok(())
            }
            (None, OptimizerKind::Sgd) => Ok(()),
        }
    }
}

/// `x` for a message: as written when it is ordinary, in exponent form when it is not (1e300,
/// not 301 digits).
fn num(x: f64) -> String {
    if x == 0.0 || (1e-6..1e9).contains(&x.abs()) {
        format!("{x}")
    } else {
        format!("{x:e}")
    }
}

/// An accuracy in [0, 1], or NaN where it was not measured yet.
fn accuracy_or_nan(a: f64) -> bool {
    a.is_nan() || (0.0..=1.0).contains(&a)
}

/// `v` holds `len` finite values (within `range` when given).
fn vector(
    what: &str,
    v: &[f32],
    len: usize,
    shape: &str,
    range: Option<(f32, f32)>,
) -> Result<(), String> {
    if v.len() != len {
        return Err(format!("{what} has {} values; {shape} is {len}", v.len()));
    }
    let bad = |x: f32| !x.is_finite() || range.is_some_and(|(lo, hi)| !(lo..=hi).contains(&x));
    if let Some(i) = v.iter().position(|&x| bad(x)) {
        let within = range.map_or(String::new(), |(lo, hi)| format!(" in [{lo}, {hi}]"));
        return Err(format!("{what}: value {i} is {}, not a finite number{within}", v[i]));
    }
    Ok(())
}
