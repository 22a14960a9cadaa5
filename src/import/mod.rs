//! Bring your own ingredients: checkpoints trained elsewhere (PyTorch Geometric models saved with
//! `torch.save(model.state_dict(), ...)`, or plain `.safetensors` state dicts) become gnn-soup
//! ingredients (safetensors with metadata), after their architecture is inferred from their
//! names and shapes ([`layout`]) and they are checked against the dataset.
//!
//! Not yet: the paper's DGL layouts, and soup/inspect/eval reading foreign folders directly.

pub mod layout;
pub mod torch_file;

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde::Serialize;
use tch::{Device, Tensor};

use crate::checkpoint::{self, CheckpointKind, CheckpointMeta, INIT_FILE};
use crate::data::Graph;
use crate::model::{self, ArchSpec, GraphTensors, ParamMap};
pub use layout::LayoutOptions;
use torch_file::StateDict;

/// The init fingerprint of ingredients imported without their shared initial weights.
pub const UNKNOWN_INIT: &str = "unknown";

/// A foreign checkpoint's tensors: a `torch.save` file, or a `.safetensors` state dict that
/// gnn-soup did not write.
pub fn read_foreign(path: &Path) -> Result<StateDict> {
    let is_safetensors = path.extension().is_some_and(|e| e == "safetensors");
    if !is_safetensors {
        return torch_file::read_state_dict(path);
    }
    if checkpoint::read_meta(path).is_ok() {
        bail!("{}: already a gnn-soup checkpoint; use it as it is", path.display());
    }
    Tensor::read_safetensors(path).with_context(|| format!("{}: not a readable safetensors file", path.display()))
}

/// One imported checkpoint.
#[derive(Debug, Clone, Serialize)]
pub struct Imported {
    pub source: PathBuf,
    pub path: PathBuf,
    pub val_acc: f64,
    pub test_acc: f64,
}

/// What [`import`] wrote.
#[derive(Debug, Clone, Serialize)]
pub struct ImportReport {
    pub arch: ArchSpec,
    pub dataset: String,
    pub init: Option<PathBuf>,
    pub ingredients: Vec<Imported>,
}

fn read_model(path: &Path, opts: &LayoutOptions, g: &Graph) -> Result<(ArchSpec, ParamMap)> {
    let sd = read_foreign(path)?;
    let (spec, params) = layout::read_pyg(&sd, opts).with_context(|| format!("{}", path.display()))?;
    if spec.in_dim != g.num_features as i64 || spec.out_dim < g.num_classes as i64 {
        bail!("{}: a model for {} features and {} classes; {} has {} features and {} classes", path.display(), spec.in_dim, spec.out_dim, g.name, g.num_features, g.num_classes);
    }
    Ok((spec, params))
}

/// Imports `sources` (in order) as `out/ingredient-NN.safetensors`, with `init` (their shared
/// initial weights, when known) as `out/init.safetensors`. Every one must have the same
/// architecture. Nothing is replaced without `overwrite`.
pub fn import(sources: &[PathBuf], init: Option<&Path>, g: &Graph, opts: &LayoutOptions, out: &Path, overwrite: bool) -> Result<ImportReport> {
    if sources.is_empty() {
        bail!("nothing to import");
    }
    let targets: Vec<PathBuf> = (0..sources.len()).map(|i| out.join(format!("ingredient-{i:02}.safetensors"))).collect();
    if !overwrite {
        if let Some(t) = targets.iter().chain(init.map(|_| out.join(INIT_FILE)).as_ref()).find(|t| t.exists()) {
            bail!("{} already exists; choose another --out or pass --overwrite", t.display());
        }
    }
    // Read and check everything before writing anything.
    let models: Vec<(ArchSpec, ParamMap)> = sources.iter().map(|s| read_model(s, opts, g)).collect::<Result<_>>()?;
    let spec = models[0].0.clone();
    if let Some((i, (other, _))) = models.iter().enumerate().find(|(_, (s, _))| *s != spec) {
        bail!("{} is a {}, {} a {}: ingredients must share an architecture", sources[0].display(), spec.describe(), sources[i].display(), other.describe());
    }
    let init_model = init.map(|p| read_model(p, opts, g)).transpose()?;
    if let (Some(p), Some((s, _))) = (init, &init_model) {
        if *s != spec {
            bail!("{}: the initial weights are a {}, the ingredients a {}", p.display(), s.describe(), spec.describe());
        }
    }
    let init_fingerprint = init_model.as_ref().map_or(UNKNOWN_INIT.to_string(), |(_, p)| checkpoint::weights_fingerprint(p));
    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    let gt = GraphTensors::new(g, Device::Cpu);
    let meta = |kind: CheckpointKind, source: &Path, acc: Option<model::Accuracies>| CheckpointMeta {
        format_version: checkpoint::FORMAT_VERSION,
        kind,
        arch: spec.clone(),
        dataset: g.name.clone(),
        dataset_fingerprint: g.fingerprint().to_string(),
        init_fingerprint: init_fingerprint.clone(),
        seed: None,
        epochs: None,
        val_acc: acc.as_ref().map(|a| a.val),
        test_acc: acc.as_ref().map(|a| a.test),
        tool_version: checkpoint::tool_version(),
        extra: [("imported_from".to_string(), serde_json::json!(source)), ("layout".to_string(), serde_json::json!("pyg"))].into_iter().collect(),
    };
    let init_path = match (init, &init_model) {
        (Some(src), Some((_, params))) => {
            let path = out.join(INIT_FILE);
            checkpoint::save(&path, params, &meta(CheckpointKind::Init, src, None), overwrite)?;
            Some(path)
        }
        _ => None,
    };
    let mut ingredients = Vec::new();
    for ((source, (_, params)), path) in sources.iter().zip(&models).zip(targets) {
        let acc = model::evaluate(&spec, params, &gt);
        checkpoint::save(&path, params, &meta(CheckpointKind::Ingredient, source, Some(acc)), overwrite)?;
        ingredients.push(Imported { source: source.clone(), path, val_acc: acc.val, test_acc: acc.test });
    }
    Ok(ImportReport { arch: spec, dataset: g.name.clone(), init: init_path, ingredients })
}
