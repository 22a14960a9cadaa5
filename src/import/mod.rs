//! Bring your own ingredients: checkpoints trained elsewhere (PyTorch Geometric models saved with
//! `torch.save(model.state_dict(), ...)`, the paper's reference DGL models, or plain
//! `.safetensors` state dicts) become gnn-soup ingredients (safetensors with metadata), after
//! their architecture is inferred from their names and shapes ([`layout`], [`dgl`]) and they are
//! checked against the dataset. [`export`] goes the other way.

pub mod dgl;
pub mod export;
pub mod layout;
pub mod torch_file;

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde::Serialize;
use tch::{Device, Tensor};

use crate::checkpoint::{self, CheckpointKind, CheckpointMeta, INIT_FILE};
use crate::data::Graph;
use crate::model::{self, ArchSpec, GraphTensors, ParamMap};
pub use layout::{LayoutOptions, Source};
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
    // Through the reader that refuses what is not a regular file (a FIFO would block libtorch).
    crate::fsio::open_regular(path, checkpoint::MAX_CHECKPOINT_BYTES)?;
    Tensor::read_safetensors(path)
        .with_context(|| format!("{}: not a readable safetensors file", path.display()))
}

/// One imported checkpoint.
#[derive(Debug, Clone, Serialize)]
pub struct Imported {
    pub source: PathBuf,
    pub path: PathBuf,
    /// Measured on the dataset (None when the import was not asked to evaluate).
    pub val_acc: Option<f64>,
    pub test_acc: Option<f64>,
}

/// What [`import`] wrote.
#[derive(Debug, Clone, Serialize)]
pub struct ImportReport {
    pub arch: ArchSpec,
    /// The layout the checkpoints were in.
    pub layout: Source,
    pub dataset: String,
    pub init: Option<PathBuf>,
    pub ingredients: Vec<Imported>,
}

fn read_model(
    path: &Path,
    opts: &LayoutOptions,
    g: &Graph,
) -> Result<(ArchSpec, ParamMap, Source)> {
    let sd = read_foreign(path)?;
    let (spec, params, source) =
        layout::read(&sd, opts).with_context(|| format!("{}", path.display()))?;
    if spec.in_dim != g.num_features as i64 || spec.out_dim < g.num_classes as i64 {
        bail!(
            "{}: a model for {} features and {} classes; {} has {} features and {} classes",
            path.display(),
            spec.in_dim,
            spec.out_dim,
            g.name,
            g.num_features,
            g.num_classes
        );
    }
    Ok((spec, params, source))
}

/// Imports `sources` (in order) as `out/ingredient-NN.safetensors`, with `init` (their shared
/// initial weights, when known) as `out/init.safetensors`. Every one must have the same
/// architecture. Nothing is replaced without `overwrite`. `evaluate`: measure each one's
/// accuracy (a full-graph inference pass each, on the CPU; an on-the-fly import leaves it to the
/// soup, which measures them anyway).
pub fn import(
    sources: &[PathBuf],
    init: Option<&Path>,
    g: &Graph,
    opts: &LayoutOptions,
    out: &Path,
    overwrite: bool,
    evaluate: bool,
) -> Result<ImportReport> {
    if sources.is_empty() {
        bail!("nothing to import");
    }
    let targets: Vec<PathBuf> =
        (0..sources.len()).map(|i| out.join(format!("ingredient-{i:02}.safetensors"))).collect();
    let init_target = init.map(|_| out.join(INIT_FILE));
    for t in targets.iter().chain(init_target.as_ref()) {
        crate::fsio::check_replaceable(t)?;
    }
    if !overwrite {
        if let Some(t) = targets.iter().chain(init_target.as_ref()).find(|t| t.exists()) {
            bail!("{} already exists; choose another --out or pass --overwrite", t.display());
        }
    }
    // Read and check everything before writing anything.
    let models: Vec<(ArchSpec, ParamMap, Source)> =
        sources.iter().map(|s| read_model(s, opts, g)).collect::<Result<_>>()?;
    let spec = models[0].0.clone();
    let layout_source = models[0].2;
    if let Some((i, (other, _, _))) = models.iter().enumerate().find(|(_, (s, _, _))| *s != spec) {
        bail!(
            "{} is a {}, {} a {}: ingredients must share an architecture",
            sources[0].display(),
            spec.describe(),
            sources[i].display(),
            other.describe()
        );
    }
    let init_model = init.map(|p| read_model(p, opts, g)).transpose()?;
    if let (Some(p), Some((s, _, _))) = (init, &init_model) {
        if *s != spec {
            bail!(
                "{}: the initial weights are a {}, the ingredients a {}",
                p.display(),
                s.describe(),
                spec.describe()
            );
        }
    }
    let init_fingerprint = init_model
        .as_ref()
        .map_or(UNKNOWN_INIT.to_string(), |(_, p, _)| checkpoint::weights_fingerprint(p));
    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    let gt = GraphTensors::new(g, Device::Cpu);
    // Recorded absolute, so that `export` finds the original from anywhere.
    let absolute = |p: &Path| p.canonicalize().unwrap_or_else(|_| p.to_path_buf());
    let meta =
        |kind: CheckpointKind, source: &Path, acc: Option<model::Accuracies>| CheckpointMeta {
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
            extra: [
                ("imported_from".to_string(), serde_json::json!(absolute(source))),
                ("layout".to_string(), serde_json::json!(layout_source.name())),
            ]
            .into_iter()
            .collect(),
        };
    let init_path = match (init, &init_model) {
        (Some(src), Some((_, params, _))) => {
            let path = out.join(INIT_FILE);
            checkpoint::save(&path, params, &meta(CheckpointKind::Init, src, None), overwrite)?;
            Some(path)
        }
        _ => None,
    };
    let mut ingredients = Vec::new();
    for ((source, (_, params, _)), path) in sources.iter().zip(&models).zip(targets) {
        let acc = evaluate.then(|| model::evaluate(&spec, params, &gt));
        checkpoint::save(&path, params, &meta(CheckpointKind::Ingredient, source, acc), overwrite)?;
        ingredients.push(Imported {
            source: source.clone(),
            path,
            val_acc: acc.map(|a| a.val),
            test_acc: acc.map(|a| a.test),
        });
    }
    Ok(ImportReport {
        arch: spec,
        layout: layout_source,
        dataset: g.name.clone(),
        init: init_path,
        ingredients,
    })
}

/// Whether `path` has a name a foreign checkpoint has and is not a gnn-soup checkpoint.
fn is_foreign(path: &Path) -> bool {
    let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
    match ext {
        "pt" | "pth" | "bin" => true,
        // A plain state dict; a corrupt file is not foreign but broken, and says so where read.
        "safetensors" => checkpoint::read_meta(path)
            .is_err_and(|e| e.downcast_ref::<checkpoint::NoMetadata>().is_some()),
        _ => false,
    }
}

/// File names the shared initial weights go by: ours, and the paper's reference code's.
const INIT_NAMES: &[&str] = &["init.pt", "init.pth", "initial_model.pt", "init.safetensors"];

/// The foreign checkpoints at `path` (a file, or a folder's in name order) and the shared
/// initial weights among them (`init.pt`, `initial_model.pt`), or None when `path` holds
/// gnn-soup checkpoints.
pub fn foreign_at(path: &Path) -> Result<Option<(Vec<PathBuf>, Option<PathBuf>)>> {
    if path.is_file() {
        return Ok(is_foreign(path).then(|| (vec![path.to_path_buf()], None)));
    }
    if !path.is_dir() {
        return Ok(None);
    }
    let mut files: Vec<PathBuf> = std::fs::read_dir(path)
        .with_context(|| format!("cannot list {}", path.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file())
        .collect();
    // `ingredient_10.pt` after `ingredient_9.pt`, as the reference numbers them: the order decides
    // ranking ties in greedy and GIS.
    files.sort_by_key(|f| natural_key(f));
    let ours = files.iter().any(|f| {
        f.extension().is_some_and(|e| e == "safetensors") && checkpoint::read_meta(f).is_ok()
    });
    let foreign: Vec<PathBuf> = files.into_iter().filter(|f| is_foreign(f)).collect();
    if ours || foreign.is_empty() {
        return Ok(None);
    }
    let is_init = |f: &PathBuf| {
        f.file_name().and_then(|n| n.to_str()).is_some_and(|n| INIT_NAMES.contains(&n))
    };
    let init = foreign.iter().find(|f| is_init(f)).cloned();
    Ok(Some((foreign.into_iter().filter(|f| !is_init(f)).collect(), init)))
}

/// The options an on-the-fly import uses: PyG's example defaults for what names cannot tell.
pub fn default_options(g: &Graph) -> LayoutOptions {
    LayoutOptions {
        prefix: None,
        arch: None,
        dropout: 0.5,
        row_normalize: crate::train::row_normalize_default(g),
        input_dropout_off: None,
        add_self_loops: None,
        activation: None,
        dropouts: Default::default(),
    }
}

/// A file name as text and number runs, so that names sort as people number them.
fn natural_key(path: &Path) -> Vec<(String, u128)> {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let mut key = Vec::new();
    let mut text = String::new();
    let mut chars = name.chars().peekable();
    while let Some(c) = chars.next() {
        if c.is_ascii_digit() {
            let mut digits = c.to_string();
            while let Some(d) = chars.peek().filter(|d| d.is_ascii_digit()) {
                digits.push(*d);
                chars.next();
            }
            key.push((std::mem::take(&mut text), digits.parse().unwrap_or(u128::MAX)));
        } else {
            text.push(c);
        }
    }
    key.push((text, 0));
    key
}

/// Imports `sources` (and `init`) with `opts` into a folder under `cache_root` named by their
/// contents' stamps (path, size, modification time), the dataset and the options; an earlier
/// import of the same files is reused. Returns the folder and whether it was reused.
pub fn import_cached(
    sources: &[PathBuf],
    init: Option<&Path>,
    g: &Graph,
    opts: &LayoutOptions,
    cache_root: &Path,
) -> Result<(PathBuf, bool)> {
    let mut h = blake3::Hasher::new();
    for p in sources.iter().map(PathBuf::as_path).chain(init) {
        let canonical = p.canonicalize().with_context(|| format!("cannot read {}", p.display()))?;
        let m = std::fs::metadata(&canonical)?;
        let modified = m
            .modified()
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_nanos());
        h.update(format!("{}\0{}\0{modified}\0", canonical.display(), m.len()).as_bytes());
    }
    h.update(format!("{}\0{:?}", g.fingerprint(), opts).as_bytes());
    let dir = cache_root.join(&h.finalize().to_hex()[..16]);
    let done = dir.join(".imported");
    if done.is_file() {
        return Ok((dir, true));
    }
    // A half-finished earlier import is started over.
    let _ = std::fs::remove_dir_all(&dir);
    import(sources, init, g, opts, &dir, false, false)?;
    std::fs::write(&done, b"")?;
    Ok((dir, false))
}

#[cfg(test)]
mod tests {
    #[test]
    fn numbered_files_sort_by_number() {
        let mut names = vec!["ingredient_10.pt", "ingredient_9.pt", "ingredient_0.pt", "a.pt"];
        names.sort_by_key(|n| super::natural_key(std::path::Path::new(n)));
        assert_eq!(names, ["a.pt", "ingredient_0.pt", "ingredient_9.pt", "ingredient_10.pt"]);
    }
}
