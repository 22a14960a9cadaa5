//! The main job's ingredients: 10 GCNs on the embedded synthetic graph (`csbm`), trained on first
//! use and kept in the cache, so `make demo` and the workbench work on a fresh clone with no data.

use std::path::PathBuf;

use anyhow::{Context, Result};

use crate::checkpoint::MANIFEST;
use crate::data::{self, DataOptions, Graph};
use crate::model::Arch;
use crate::train::{train_ingredients, TrainConfig, TrainEvent, TrainReport};

/// The embedded dataset the demo trains and soups on.
pub const DATASET: &str = "csbm";
pub const ARCH: Arch = Arch::Gcn;

/// Where the demo's ingredients are kept.
pub fn ingredients_dir() -> PathBuf {
    data::cache_dir().join("demo").join("csbm-gcn")
}

/// How the demo's ingredients are trained: the defaults for a GCN.
pub fn train_config() -> TrainConfig {
    TrainConfig::defaults(ARCH)
}

/// Whether the ingredients are already there (their manifest is written last).
pub fn ingredients_present() -> bool {
    ingredients_dir().join(MANIFEST).is_file()
}

/// The demo's graph.
pub fn graph() -> Result<Graph> {
    data::load(DATASET, &DataOptions::default())
}

/// What [`ensure_ingredients`] found or made.
pub struct DemoIngredients {
    pub dir: PathBuf,
    /// The training report, when they were trained just now.
    pub trained: Option<TrainReport>,
}

/// The demo's ingredients: reused when their manifest is there, otherwise trained now (with
/// `progress` told every step).
pub fn ensure_ingredients(device: tch::Device, progress: &mut dyn FnMut(TrainEvent)) -> Result<DemoIngredients> {
    let dir = ingredients_dir();
    if ingredients_present() {
        return Ok(DemoIngredients { dir, trained: None });
    }
    let g = graph()?;
    let report = train_ingredients(&g, &train_config(), device, &dir, false, progress).with_context(|| format!("training the demo ingredients into {}", dir.display()))?;
    Ok(DemoIngredients { dir, trained: Some(report) })
}
