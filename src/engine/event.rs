//! What a running soup job tells whoever watches it: plain numbers, serialisable, so the same
//! stream feeds progress bars, the TUI and the `events.jsonl` file of a run directory.

use serde::{Deserialize, Serialize};

use super::report::SoupReport;
use crate::soup::Strategy;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// A strategy starts: what runs and how big it is.
    Started {
        strategy: Strategy,
        dataset: String,
        nodes: usize,
        edges: usize,
        device: String,
        ingredients: Vec<String>,
        /// Names of the rows of the mixing-weight matrix (tensors, layers or "all").
        groups: Vec<String>,
        /// Epochs for LS/PLS, candidates for greedy/GIS, else 0.
        steps: usize,
        /// PLS: K.
        parts: Option<usize>,
    },
    /// One LS/PLS step.
    Epoch {
        epoch: usize,
        epochs: usize,
        loss: f64,
        val_acc: f64,
        /// Accuracy on the held-out selection nodes, when early stopping is on.
        select_acc: Option<f64>,
        lr: f64,
        /// Current mixing weights, `[group][ingredient]`.
        weights: Vec<Vec<f64>>,
        seconds: f64,
    },
    /// A greedy/GIS trial of adding an ingredient.
    Candidate { ingredient: usize, factor: f64, val_acc: f64, accepted: bool, step: usize, steps: usize },
    /// A PLS sample: which of the K parts form this epoch's subgraph.
    PartitionSample { epoch: usize, parts: Vec<usize>, nodes: usize, edges: usize, val_nodes: usize },
    /// An accuracy measured along the way (ingredients, uniform soup).
    Evaluation { what: String, val_acc: f64, test_acc: f64 },
    /// A warning or note for the log pane.
    Log { level: String, message: String },
    /// A strategy finished (possibly partial, after cancellation).
    Finished { report: Box<SoupReport> },
    /// A strategy failed; the job stops.
    Failed { message: String },
}
