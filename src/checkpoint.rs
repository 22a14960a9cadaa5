//! Checkpoints: safetensors files holding a PyG-style state dict (`convs.0.lin.weight`, ...) plus
//! metadata under the key `gnn_soup` (JSON): architecture, dataset and its fingerprint, the
//! fingerprint of the shared initial weights, seed, epochs, accuracies, tool version.
//!
//! PyG reads them with `safetensors.torch.load_file` + `model.load_state_dict`. Loading here
//! validates everything and names the file and the problem on failure.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use safetensors::tensor::{Dtype, SafeTensors, TensorView};
use serde::{Deserialize, Serialize};
use tch::{Device, Kind, Tensor};

use crate::model::{ArchSpec, ParamMap, ParamRole};

pub const FORMAT_VERSION: u32 = 1;
pub const META_KEY: &str = "gnn_soup";
pub const MANIFEST: &str = "manifest.json";
pub const INIT_FILE: &str = "init.safetensors";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CheckpointKind {
    /// The shared initial weights every ingredient starts from.
    Init,
    Ingredient,
    Soup,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckpointMeta {
    pub format_version: u32,
    pub kind: CheckpointKind,
    pub arch: ArchSpec,
    pub dataset: String,
    pub dataset_fingerprint: String,
    /// Fingerprint of the shared initial weights (for `init` itself: its own).
    pub init_fingerprint: String,
    pub seed: Option<u64>,
    pub epochs: Option<usize>,
    pub val_acc: Option<f64>,
    pub test_acc: Option<f64>,
    pub tool_version: String,
    /// Anything else worth keeping (training settings, soup strategy and ingredients).
    #[serde(default)]
    pub extra: BTreeMap<String, serde_json::Value>,
}

pub struct Checkpoint {
    pub path: PathBuf,
    pub meta: CheckpointMeta,
    /// On the CPU; move with [`to_device`].
    pub params: ParamMap,
}

/// A content hash of parameter values (in name order), independent of file layout.
pub fn weights_fingerprint(params: &ParamMap) -> String {
    let mut h = blake3::Hasher::new();
    for (name, t) in params {
        h.update(name.as_bytes());
        h.update(&tensor_bytes(t));
    }
    h.finalize().to_hex()[..16].to_string()
}

fn tensor_bytes(t: &Tensor) -> Vec<u8> {
    let t = t.to_device(Device::Cpu).contiguous();
    let n = t.numel();
    let mut out = vec![0u8; n * t.kind().elt_size_in_bytes()];
    t.copy_data_u8(&mut out, n);
    out
}

fn dtype_of(kind: Kind) -> Result<Dtype> {
    Ok(match kind {
        Kind::Float => Dtype::F32,
        Kind::Int64 => Dtype::I64,
        Kind::Double => Dtype::F64,
        other => bail!("cannot store tensors of kind {other:?}"),
    })
}

pub fn to_device(params: &ParamMap, device: Device) -> ParamMap {
    params.iter().map(|(k, v)| (k.clone(), v.to_device(device))).collect()
}

/// Writes `params` with `meta` to `path` through a temporary file. Refuses to replace an existing
/// file unless `overwrite`.
pub fn save(path: &Path, params: &ParamMap, meta: &CheckpointMeta, overwrite: bool) -> Result<()> {
    if path.exists() && !overwrite {
        bail!(
            "{} already exists; not overwriting it (pass --overwrite to replace it)",
            path.display()
        );
    }
    let mut md = std::collections::HashMap::new();
    md.insert(META_KEY.to_string(), serde_json::to_string(meta)?);
    md.insert("format".to_string(), "pt".to_string());
    let bytes = safetensors_bytes(params.iter().map(|(k, t)| (k.as_str(), t)), Some(md))
        .with_context(|| format!("serialising {}", path.display()))?;
    write_atomic(path, &bytes)
}

/// Named tensors (f32, f64 or i64) as the bytes of a safetensors file with `metadata`: gnn-soup's
/// checkpoints, and plain state dicts for `export`.
pub fn safetensors_bytes<'a>(
    tensors: impl Iterator<Item = (&'a str, &'a Tensor)>,
    metadata: Option<std::collections::HashMap<String, String>>,
) -> Result<Vec<u8>> {
    let data: Vec<(String, Vec<u8>, Dtype, Vec<usize>)> = tensors
        .map(|(k, t)| {
            Ok((
                k.to_string(),
                tensor_bytes(&t.detach()),
                dtype_of(t.kind())?,
                t.size().iter().map(|&d| d as usize).collect(),
            ))
        })
        .collect::<Result<_>>()?;
    let views: Vec<(String, TensorView)> = data
        .iter()
        .map(|(k, bytes, dt, shape)| {
            Ok((
                k.clone(),
                TensorView::new(*dt, shape.clone(), bytes).map_err(|e| anyhow!("{k}: {e:?}"))?,
            ))
        })
        .collect::<Result<_>>()?;
    safetensors::serialize(views, &metadata).map_err(|e| anyhow!("{e:?}"))
}

pub use crate::fsio::write_atomic;

/// The largest safetensors header read: the format's own limit.
const MAX_HEADER_BYTES: u64 = 100_000_000;

/// The largest checkpoint read: far above any GNN's weights, far below what a wrong path (a disk
/// image, a device) would make the tool read.
pub const MAX_CHECKPOINT_BYTES: u64 = 16 << 30;

/// The largest manifest read.
const MAX_MANIFEST_BYTES: u64 = 64 << 20;

/// A checkpoint's metadata, from its header alone (8 bytes of length, then the JSON header: a few
/// KB), so listing a folder of large checkpoints reads almost nothing.
pub fn read_meta(path: &Path) -> Result<CheckpointMeta> {
    use std::io::Read;
    let (mut file, size) = crate::fsio::open_regular(path, MAX_CHECKPOINT_BYTES)?;
    let mut len = [0u8; 8];
    file.read_exact(&mut len).map_err(|_| {
        anyhow!(
            "{}: not a safetensors file (shorter than its 8-byte header length)",
            path.display()
        )
    })?;
    let n = u64::from_le_bytes(len);
    if n > MAX_HEADER_BYTES || n + 8 > size {
        bail!(
            "{}: not a safetensors file (its header claims {n} bytes; the file has {size})",
            path.display()
        );
    }
    let mut header = vec![0u8; n as usize];
    file.read_exact(&mut header)
        .with_context(|| format!("cannot read the header of {}", path.display()))?;
    let header: serde_json::Value = serde_json::from_slice(&header).map_err(|e| {
        anyhow!("{}: not a safetensors file (header is not JSON: {e})", path.display())
    })?;
    let md: Option<std::collections::HashMap<String, String>> = match header.get("__metadata__") {
        Some(m) => Some(
            serde_json::from_value(m.clone())
                .map_err(|e| anyhow!("{}: corrupt safetensors metadata ({e})", path.display()))?,
        ),
        None => None,
    };
    parse_meta(path, md.as_ref())
}

/// A readable safetensors file without gnn-soup's metadata: a plain state dict from elsewhere
/// (importable), as opposed to a corrupt file.
#[derive(Debug, thiserror::Error)]
#[error("{0}: no gnn-soup metadata (not written by gnn-soup?)")]
pub struct NoMetadata(pub String);

fn parse_meta(
    path: &Path,
    md: Option<&std::collections::HashMap<String, String>>,
) -> Result<CheckpointMeta> {
    let text =
        md.and_then(|m| m.get(META_KEY)).ok_or_else(|| NoMetadata(path.display().to_string()))?;
    let meta: CheckpointMeta = serde_json::from_str(text)
        .with_context(|| format!("{}: unreadable gnn-soup metadata", path.display()))?;
    if meta.format_version > FORMAT_VERSION {
        bail!(
            "{}: checkpoint format {} is newer than this tool understands ({FORMAT_VERSION})",
            path.display(),
            meta.format_version
        );
    }
    meta.arch
        .validate()
        .with_context(|| format!("{}: invalid architecture in metadata", path.display()))?;
    Ok(meta)
}

/// Loads and validates a checkpoint: metadata, every expected tensor present with the right shape
/// and type, nothing unexpected, no NaN or infinite values.
pub fn load(path: &Path) -> Result<Checkpoint> {
    let bytes = crate::fsio::read_regular(path, MAX_CHECKPOINT_BYTES)?;
    load_bytes(path, &bytes)
}

/// [`load`] of a checkpoint's bytes (`path` names it in messages; also the fuzz target's entry).
pub fn load_bytes(path: &Path, bytes: &[u8]) -> Result<Checkpoint> {
    let st = SafeTensors::deserialize(bytes).map_err(|e| {
        anyhow!("{}: corrupt or truncated safetensors file ({e:?})", path.display())
    })?;
    let (_, md) = SafeTensors::read_metadata(bytes)
        .map_err(|e| anyhow!("{}: corrupt safetensors header ({e:?})", path.display()))?;
    let meta = parse_meta(path, md.metadata().as_ref())?;

    let expected = meta.arch.params();
    let mut params = ParamMap::new();
    for p in &expected {
        let view = st.tensor(&p.name).map_err(|_| {
            anyhow!("{}: tensor {} is missing for {}", path.display(), p.name, meta.arch.describe())
        })?;
        let shape: Vec<i64> = view.shape().iter().map(|&d| d as i64).collect();
        if shape != p.shape {
            bail!(
                "{}: tensor {} has shape {:?}, expected {:?} for {}",
                path.display(),
                p.name,
                shape,
                p.shape,
                meta.arch.describe()
            );
        }
        let kind = match (view.dtype(), p.role) {
            (Dtype::I64, ParamRole::BatchCount) => Kind::Int64,
            (Dtype::F32, r) if r != ParamRole::BatchCount => Kind::Float,
            (dt, _) => bail!(
                "{}: tensor {} has dtype {dt:?}, expected {}",
                path.display(),
                p.name,
                if p.role == ParamRole::BatchCount { "I64" } else { "F32" }
            ),
        };
        let t = Tensor::f_from_data_size(view.data(), &shape, kind)
            .with_context(|| format!("{}: tensor {}", path.display(), p.name))?;
        if kind == Kind::Float && !bool::try_from(t.isfinite().all())? {
            bail!("{}: tensor {} holds NaN or infinite values", path.display(), p.name);
        }
        params.insert(p.name.clone(), t);
    }
    if let Some(extra) = st.names().into_iter().find(|n| !params.contains_key(*n)) {
        bail!("{}: unexpected tensor {extra} for {}", path.display(), meta.arch.describe());
    }
    Ok(Checkpoint { path: path.to_path_buf(), meta, params })
}

/// The checkpoint files a path names: the file itself, or a directory's ingredients (its manifest
/// order when there is one, else every `*.safetensors` but `init.safetensors`, sorted).
pub fn list_ingredients(path: &Path) -> Result<Vec<PathBuf>> {
    if path.is_file() {
        return Ok(vec![path.to_path_buf()]);
    }
    if !path.is_dir() {
        bail!("{}: no such file or directory", path.display());
    }
    let manifest = path.join(MANIFEST);
    if manifest.is_file() {
        let m: Manifest =
            serde_json::from_str(&crate::fsio::read_text(&manifest, MAX_MANIFEST_BYTES)?)
                .with_context(|| format!("{}: unreadable manifest", manifest.display()))?;
        let files: Vec<PathBuf> = m.ingredients.iter().map(|e| path.join(&e.file)).collect();
        if let Some(missing) = files.iter().find(|f| !f.is_file()) {
            bail!("{}: lists {} which does not exist", manifest.display(), missing.display());
        }
        return Ok(files);
    }
    let named: Vec<PathBuf> = std::fs::read_dir(path)
        .with_context(|| format!("cannot list {}", path.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.extension().is_some_and(|e| e == "safetensors")
                && p.file_name().is_some_and(|n| n != INIT_FILE)
        })
        .collect();
    // An entry that is not a file (a directory, a dangling or looping link) is skipped, saying
    // so, instead of failing the whole folder.
    let (mut files, junk): (Vec<PathBuf>, Vec<PathBuf>) =
        named.into_iter().partition(|p| p.is_file());
    for j in &junk {
        tracing::warn!("skipping {}: not a readable file", j.display());
    }
    files.sort();
    if files.is_empty() {
        bail!("{}: no .safetensors checkpoints found", path.display());
    }
    Ok(files)
}

/// `manifest.json` of a training run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Manifest {
    pub dataset: String,
    pub dataset_fingerprint: String,
    pub arch: ArchSpec,
    pub init: String,
    pub init_fingerprint: String,
    pub ingredients: Vec<ManifestEntry>,
    pub tool_version: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ManifestEntry {
    pub file: String,
    pub seed: u64,
    pub val_acc: f64,
    pub test_acc: f64,
}

/// Loads a set of ingredients, refusing one that cannot be souped with the first (naming both
/// files and why).
pub fn load_compatible(paths: &[PathBuf]) -> Result<Vec<Checkpoint>> {
    if paths.is_empty() {
        bail!("no ingredients given");
    }
    let mut cks: Vec<Checkpoint> = Vec::with_capacity(paths.len());
    for p in paths {
        let ck = load(p)?;
        if let Some(first) = cks.first() {
            if let Some(why) = incompatibility(&first.meta, &ck.meta) {
                bail!("{} cannot be souped with {}: {why}", p.display(), first.path.display());
            }
        }
        cks.push(ck);
    }
    Ok(cks)
}

/// Why two checkpoints cannot be souped together, if they cannot.
pub fn incompatibility(a: &CheckpointMeta, b: &CheckpointMeta) -> Option<String> {
    if a.arch != b.arch {
        return Some(format!(
            "architecture differs: {} vs {}",
            a.arch.describe(),
            b.arch.describe()
        ));
    }
    if a.dataset_fingerprint != b.dataset_fingerprint {
        return Some(format!(
            "trained on different data: {} ({}) vs {} ({})",
            a.dataset, a.dataset_fingerprint, b.dataset, b.dataset_fingerprint
        ));
    }
    if a.init_fingerprint != b.init_fingerprint {
        return Some(format!(
            "different initial weights ({} vs {}): souping needs a shared initialisation",
            a.init_fingerprint, b.init_fingerprint
        ));
    }
    None
}

pub fn tool_version() -> String {
    format!("gnn-soup {}", env!("CARGO_PKG_VERSION"))
}
