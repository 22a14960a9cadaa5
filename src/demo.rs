//! The main job: 10 GCNs on the embedded synthetic graph (`csbm`), trained on first use and kept
//! with the results (`paths::results_dir`), so `make demo` and the workbench work on a fresh clone
//! with no data; souped as `assets/recipes/demo.toml` says.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::checkpoint::MANIFEST;
use crate::data::{self, DataOptions, Graph};
use crate::model::Arch;
use crate::recipe::Recipe;
use crate::train::{train_ingredients, TrainConfig, TrainEvent, TrainReport};

/// The embedded dataset the demo trains and soups on.
pub const DATASET: &str = "csbm";
pub const ARCH: Arch = Arch::Gcn;
/// The demo's ingredients' dropout: high, so that they disagree (see the recipe's comment).
pub const DROPOUT: f64 = 0.8;

/// The demo's recipe, built into the binary (the file stays in `assets/` for users to copy).
const RECIPE: &str = include_str!("../assets/recipes/demo.toml");

/// Where the demo's ingredients are kept (named by what they are, so a changed recipe trains
/// new ones instead of reusing old ones).
pub fn ingredients_dir() -> PathBuf {
    crate::paths::results_dir().join("demo").join("csbm-gcn-dropout0.8")
}

/// How the demo's ingredients are trained: the defaults for a GCN, with dropout [`DROPOUT`].
pub fn train_config() -> TrainConfig {
    TrainConfig { dropout: DROPOUT, ..TrainConfig::defaults(ARCH) }
}

/// How the demo soups: `assets/recipes/demo.toml`.
pub fn recipe() -> Recipe {
    // A test loads the file itself; a failure here would be a broken build, not bad input.
    Recipe::from_toml(RECIPE, Path::new("assets/recipes/demo.toml"))
        .expect("assets/recipes/demo.toml is a valid recipe")
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
pub fn ensure_ingredients(
    device: tch::Device,
    progress: &mut dyn FnMut(TrainEvent),
) -> Result<DemoIngredients> {
    let dir = ingredients_dir();
    if ingredients_present() {
        return Ok(DemoIngredients { dir, trained: None });
    }
    let g = graph()?;
    let report = train_ingredients(&g, &train_config(), device, &dir, false, progress)
        .with_context(|| format!("training the demo ingredients into {}", dir.display()))?;
    Ok(DemoIngredients { dir, trained: Some(report) })
}
