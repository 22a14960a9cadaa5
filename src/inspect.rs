//! Ingredient diversity: how far apart a set of ingredients are, before souping them.
//!
//! Souping averages weights, so it helps when ingredients differ (else the soup is one of them)
//! but stay in one basin (else the average is a worse model). The figures here let a user judge
//! that and spot a weak or foreign ingredient: per-tensor norms, pairwise distances, the cosine
//! similarity of what training changed, and each one's distance from the shared initial weights.
//! Used by `gnn-soup inspect DIR` and the TUI's inspector.

use std::path::{Path, PathBuf};

use anyhow::Result;
use serde::Serialize;
use tch::{Kind, Tensor};

use crate::checkpoint::{self, CheckpointKind};
use crate::model::ParamMap;

#[derive(Debug, Clone, Serialize)]
pub struct IngredientSummary {
    pub path: PathBuf,
    pub seed: Option<u64>,
    pub val_acc: Option<f64>,
    pub test_acc: Option<f64>,
    /// L2 norm of all floating-point parameters together.
    pub norm: f64,
    /// L2 distance from the shared initial weights (None when `init.safetensors` is not found).
    pub distance_from_init: Option<f64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct TensorNorms {
    pub name: String,
    /// One per ingredient, in order.
    pub norms: Vec<f64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct DiversityReport {
    pub ingredients: Vec<IngredientSummary>,
    /// The shared initial weights used for `distance_from_init` and the cosines, when found.
    pub init: Option<PathBuf>,
    pub tensors: Vec<TensorNorms>,
    /// Pairwise L2 distance between the ingredients' weights `[i][j]`.
    pub distance: Vec<Vec<f64>>,
    /// Pairwise cosine similarity `[i][j]` of what `cosine_of` names.
    pub cosine: Vec<Vec<f64>>,
    /// "updates" (weights minus the shared init: what training changed) when the init is found,
    /// else "weights" (close to 1 for ingredients from one init, so less telling).
    pub cosine_of: String,
}

/// The shared initial weights next to `first` (`init.safetensors` in its directory) when that
/// file is the init the ingredients name.
pub fn find_init(first: &Path, init_fingerprint: &str) -> Option<PathBuf> {
    let candidate = first.parent()?.join(checkpoint::INIT_FILE);
    let meta = checkpoint::read_meta(&candidate).ok()?;
    (meta.kind == CheckpointKind::Init && meta.init_fingerprint == init_fingerprint)
        .then_some(candidate)
}

/// Floating-point parameters in name order, flattened into one f64 vector (batch-norm counters
/// are integers and left out).
fn flatten(params: &ParamMap) -> Tensor {
    let parts: Vec<Tensor> = params
        .values()
        .filter(|t| t.is_floating_point())
        .map(|t| t.to_kind(Kind::Double).view([-1]))
        .collect();
    Tensor::cat(&parts, 0)
}

fn matrix(t: &Tensor) -> Vec<Vec<f64>> {
    let n = t.size()[0];
    (0..n).map(|i| Vec::<f64>::try_from(t.get(i)).unwrap_or_default()).collect()
}

/// Loads the checkpoints (CPU) and measures them. Fails, naming the files, when two cannot be
/// souped together, since their distances would then mean nothing.
pub fn analyse(paths: &[PathBuf]) -> Result<DiversityReport> {
    let checkpoints = checkpoint::load_compatible(paths)?;
    let _guard = tch::no_grad_guard();
    let init_path = find_init(&paths[0], &checkpoints[0].meta.init_fingerprint);
    let init = match &init_path {
        Some(p) => Some(flatten(&checkpoint::load(p)?.params)),
        None => None,
    };
    let flat =
        Tensor::stack(&checkpoints.iter().map(|c| flatten(&c.params)).collect::<Vec<_>>(), 0);
    let distance = matrix(&Tensor::cdist(&flat, &flat, 2.0, None::<i64>));
    let (updates, cosine_of) = match &init {
        Some(i) => (&flat - i.unsqueeze(0), "updates"),
        None => (flat.shallow_clone(), "weights"),
    };
    let unit = &updates / updates.norm_scalaropt_dim(2, [1], true).clamp_min(1e-300);
    let cosine = matrix(&unit.mm(&unit.tr()));
    let norms = Vec::<f64>::try_from(flat.norm_scalaropt_dim(2, [1], false)).unwrap_or_default();
    let from_init: Option<Vec<f64>> = init.as_ref().map(|i| {
        Vec::<f64>::try_from((&flat - i.unsqueeze(0)).norm_scalaropt_dim(2, [1], false))
            .unwrap_or_default()
    });
    let ingredients = checkpoints
        .iter()
        .enumerate()
        .map(|(k, c)| IngredientSummary {
            path: c.path.clone(),
            seed: c.meta.seed,
            val_acc: c.meta.val_acc,
            test_acc: c.meta.test_acc,
            norm: norms[k],
            distance_from_init: from_init.as_ref().map(|d| d[k]),
        })
        .collect();
    let tensors = checkpoints[0]
        .params
        .iter()
        .filter(|(_, t)| t.is_floating_point())
        .map(|(name, _)| TensorNorms {
            name: name.clone(),
            norms: checkpoints
                .iter()
                .map(|c| c.params[name].to_kind(Kind::Double).norm().double_value(&[]))
                .collect(),
        })
        .collect();
    Ok(DiversityReport {
        ingredients,
        init: init_path,
        tensors,
        distance,
        cosine,
        cosine_of: cosine_of.into(),
    })
}

impl DiversityReport {
    /// The ingredient least like the others: lowest mean cosine to the rest (None under 3).
    pub fn outlier(&self) -> Option<usize> {
        let n = self.cosine.len();
        if n < 3 {
            return None;
        }
        let mean = |i: usize| {
            (0..n).filter(|&j| j != i).map(|j| self.cosine[i][j]).sum::<f64>() / (n - 1) as f64
        };
        (0..n).min_by(|&a, &b| mean(a).total_cmp(&mean(b)))
    }

    /// Mean off-diagonal cosine: near 1, the ingredients barely differ; near 0, they went their
    /// own ways.
    pub fn mean_cosine(&self) -> f64 {
        let n = self.cosine.len();
        if n < 2 {
            return f64::NAN;
        }
        let total: f64 = (0..n)
            .flat_map(|i| (0..n).filter(move |&j| j != i).map(move |j| (i, j)))
            .map(|(i, j)| self.cosine[i][j])
            .sum();
        total / (n * (n - 1)) as f64
    }
}
