//! The JSON report of one strategy run (schema: docs/files.md, "Report schema").

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

pub use crate::soup::{CandidateRecord, EpochRecord, HoldoutResult};
use crate::soup::{SoupSettings, Strategy};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct IngredientResult {
    pub path: PathBuf,
    pub val_acc: f64,
    pub test_acc: f64,
    /// The accuracies are the ones recorded in the checkpoint on this dataset (same fingerprint),
    /// not evaluated by this job (`--reevaluate` evaluates every ingredient).
    #[serde(default)]
    pub recorded: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SoupReport {
    pub strategy: Strategy,
    pub dataset: String,
    pub dataset_fingerprint: String,
    pub device: String,
    pub settings: SoupSettings,
    /// Accuracy of the soup (for `ensemble`, of the averaged logits) on the full graph.
    pub val_acc: f64,
    pub test_acc: f64,
    /// Souping wall time, loading excluded.
    pub seconds: f64,
    /// Of `seconds`, the strategy alone: without the final evaluation of the soup (what the
    /// reference code's souping call returns after, for a like-for-like timing).
    #[serde(default)]
    pub fit_seconds: f64,
    pub load_seconds: f64,
    /// High-water mark of this process's resident memory during the strategy (the kernel's
    /// counter is restarted when it starts).
    pub peak_rss_bytes: u64,
    /// High-water mark before the strategy started: loading the dataset and ingredients, their
    /// full-graph evaluations, and earlier strategies of the same job.
    #[serde(default)]
    pub load_peak_rss_bytes: u64,
    /// Resident memory when the strategy started (dataset, ingredients, libtorch): the souping
    /// itself added `peak_rss_bytes - rss_start_bytes` at most.
    pub rss_start_bytes: u64,
    /// CUDA only: peak device memory of this process as the driver sees it (NVML: the CUDA
    /// context and libtorch's whole cached pool), where it can be read.
    pub peak_device_bytes: Option<u64>,
    /// CUDA only: the most bytes libtorch's caching allocator had handed out at once during the
    /// strategy (`torch.cuda.max_memory_allocated`'s counter).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peak_device_allocated_bytes: Option<u64>,
    /// Cancelled before the end: the best soup so far.
    pub partial: bool,
    pub ingredients: Vec<IngredientResult>,
    pub uniform: IngredientAccuracy,
    /// Final mixing weights, tensor name -> weight per ingredient (weighted strategies).
    pub weights: BTreeMap<String, Vec<f64>>,
    pub history: Vec<EpochRecord>,
    pub candidates: Vec<CandidateRecord>,
    pub holdout: Option<HoldoutResult>,
    /// How the strategy decided (greedy/GIS: the ranking and its tie rule).
    #[serde(default)]
    pub notes: Vec<String>,
    /// The souped checkpoint, when written.
    pub checkpoint: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct IngredientAccuracy {
    pub val_acc: f64,
    pub test_acc: f64,
}
