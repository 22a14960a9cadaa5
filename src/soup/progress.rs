//! What a strategy tells whoever watches while it runs, and the records it hands back. The
//! strategies own these types; the engine wraps [`Progress`] into its event stream.

use serde::{Deserialize, Serialize};

/// How much a log line matters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogLevel {
    Info,
    Warn,
    Error,
}

impl LogLevel {
    pub fn name(self) -> &'static str {
        match self {
            LogLevel::Info => "info",
            LogLevel::Warn => "warn",
            LogLevel::Error => "error",
        }
    }
}

impl std::fmt::Display for LogLevel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// One step of a running strategy.
#[derive(Debug, Clone, PartialEq)]
pub enum Progress {
    /// One LS/PLS step; `weights` are the current mixing weights, `[group][ingredient]`.
    Epoch { epochs: usize, record: EpochRecord, weights: Vec<Vec<f64>> },
    /// A greedy/GIS trial of adding an ingredient (`step` of `steps`).
    Candidate { record: CandidateRecord, step: usize, steps: usize },
    /// A PLS sample: which of the K parts form this epoch's subgraph.
    PartitionSample {
        epoch: usize,
        parts: Vec<usize>,
        nodes: usize,
        edges: usize,
        val_nodes: usize,
    },
    /// A warning or note.
    Log { level: LogLevel, message: String },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpochRecord {
    pub epoch: usize,
    /// The loss, and the accuracies below, all at the weights the epoch starts from (the ones
    /// its step's gradient is taken at).
    pub loss: f64,
    /// NaN until first measured (large graphs measure every few epochs).
    #[serde(with = "crate::units::nan_as_null")]
    pub val_acc: f64,
    /// Accuracy on the held-out selection nodes, when early stopping is on.
    pub select_acc: Option<f64>,
    pub lr: f64,
    pub seconds: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CandidateRecord {
    pub ingredient: usize,
    pub factor: f64,
    pub val_acc: f64,
    pub accepted: bool,
}

/// Early stopping on held-out validation nodes (beyond the paper).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HoldoutResult {
    pub fit_nodes: usize,
    pub select_nodes: usize,
    pub best_epoch: usize,
    /// Accuracy of the returned soup on the nodes the weights were fitted on.
    pub fit_acc: f64,
    /// ... and on the held-out nodes used only to pick the epoch.
    pub select_acc: f64,
    pub stopped_early: bool,
}
