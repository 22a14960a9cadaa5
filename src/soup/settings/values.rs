//! The values one strategy run reads: every setting of every strategy, in one struct.

use super::choices::{InitKind, OptimizerKind, Strategy};
use crate::soup::stack::MixGranularity;

/// Every setting of every strategy; each strategy reads its own. Serialised (in reports) and read
/// back through [`SETTINGS`].
#[derive(Debug, Clone, PartialEq)]
pub struct SoupSettings {
    pub strategy: Strategy,
    /// GIS: interpolation points in [0, 1].
    pub granularity: usize,
    /// LS/PLS: optimisation steps (one per epoch).
    pub epochs: usize,
    /// The paper's SGD (`lr` read) or the scale-free `auto` (Adam; `lr` not read).
    pub optimizer: OptimizerKind,
    pub lr: f64,
    /// Cosine annealing with warm restarts: period in epochs.
    pub t0: usize,
    pub init: InitKind,
    /// PLS: K parts, R sampled per epoch.
    pub parts: usize,
    pub sample: usize,
    pub mix: MixGranularity,
    /// LS/PLS: keep dropout active while fitting the weights, as the reference code does.
    pub dropout: bool,
    /// LS/PLS: batch norm normalises with the fitted nodes' own statistics while fitting (the
    /// reference's model stays in training mode), not with the mixed running statistics.
    pub batch_stats: bool,
    /// Fraction of validation nodes held out to pick the best epoch (0 = off, the paper).
    pub holdout: f64,
    /// Epochs without improvement on the held-out nodes before stopping (with `holdout`).
    pub patience: usize,
    /// LS/PLS: measure validation accuracy during the fit (an extra inference pass where the
    /// fitting pass cannot give it). Off, the soup is scored only after the fit.
    pub fit_validation: bool,
    pub seed: u64,
    /// Where the defaults came from (the paper's table row, or the general defaults).
    pub source: String,
}
