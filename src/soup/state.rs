//! The state of an LS/PLS fit that a stopped run leaves behind and a resumed one continues from.

use serde::{Deserialize, Serialize};

use super::progress::EpochRecord;

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
