//! Ingredient training, as the paper's trainer: one initial model is created and saved, every
//! ingredient starts from it and differs only by its seed (dropout draws). Full-batch Adam with
//! cross-entropy on the training nodes; the final epoch's weights are kept.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use serde::Serialize;
use tch::Device;

use crate::checkpoint::{self, CheckpointKind, CheckpointMeta, Manifest, ManifestEntry, INIT_FILE, MANIFEST};
use crate::data::Graph;
use crate::model::{self, Accuracies, Arch, ArchSpec, GraphTensors, ParamMap};
use crate::optim;

/// Model shape and optimisation settings of a training run.
#[derive(Debug, Clone, Serialize)]
pub struct TrainConfig {
    pub arch: Arch,
    pub layers: usize,
    pub hidden: i64,
    pub heads: i64,
    pub dropout: f64,
    pub batch_norm: bool,
    /// Row-normalise input features; None: when they are non-negative (bag-of-words).
    pub row_normalize: Option<bool>,
    /// Layers whose input is not dropped (the paper's DGL GCN: `[0]`); empty: every layer's.
    pub input_dropout_off: Vec<usize>,
    /// GCN/GAT layers add a self-loop per node (PyG); false: the graph as it is (DGL).
    pub add_self_loops: bool,
    pub epochs: usize,
    pub lr: f64,
    pub weight_decay: f64,
    pub ingredients: usize,
    pub seed: u64,
}

impl TrainConfig {
    /// Settings known to train well on the Planetoid graphs for each architecture
    /// (Kipf & Welling for GCN, Velickovic et al. for GAT).
    pub fn defaults(arch: Arch) -> TrainConfig {
        let base = TrainConfig {
            arch,
            layers: 2,
            hidden: 64,
            heads: 1,
            dropout: 0.5,
            batch_norm: false,
            row_normalize: None,
            input_dropout_off: Vec::new(),
            add_self_loops: true,
            epochs: 200,
            lr: 0.01,
            weight_decay: 5e-4,
            ingredients: 10,
            seed: 0,
        };
        match arch {
            Arch::Gcn | Arch::Sage => base,
            Arch::Gat => TrainConfig { hidden: 8, heads: 8, dropout: 0.6, lr: 0.005, ..base },
        }
    }

    pub fn spec_for(&self, g: &Graph) -> ArchSpec {
        ArchSpec {
            arch: self.arch,
            in_dim: g.num_features as i64,
            hidden: self.hidden,
            out_dim: g.num_classes as i64,
            layers: self.layers,
            heads: self.heads,
            dropout: self.dropout,
            batch_norm: self.batch_norm,
            row_normalize: self.row_normalize.unwrap_or_else(|| row_normalize_default(g)),
            input_dropout_off: self.input_dropout_off.clone(),
            add_self_loops: self.add_self_loops,
        }
    }

    pub fn validate(&self) -> Result<()> {
        if self.ingredients == 0 {
            bail!("--ingredients must be at least 1");
        }
        if self.epochs == 0 {
            bail!("--epochs must be at least 1");
        }
        if !self.lr.is_finite() || self.lr <= 0.0 || !self.weight_decay.is_finite() || self.weight_decay < 0.0 {
            bail!("--lr must be a positive number and --weight-decay a non-negative one (got {} and {})", self.lr, self.weight_decay);
        }
        if !(0.0..1.0).contains(&self.dropout) {
            bail!("--dropout must be in [0, 1), got {}", self.dropout);
        }
        Ok(())
    }
}

/// Refuses, before the first epoch, a full-batch training step that would not fit in the memory
/// left on `device` (a clear message rather than the kernel's out-of-memory killer):
/// activations as an LS step keeps them, plus building the graph's sparse operator.
fn check_fits(g: &Graph, spec: &ArchSpec, device: Device) -> Result<()> {
    use crate::engine::memory::{self, gib};
    let need = memory::fit_step_bytes(spec, g.num_nodes as u64, g.num_edges() as u64) + memory::operator_build_bytes(g.num_edges() as u64);
    if let Some(available) = memory::shortfall(device, need)? {
        bail!(
            "full-batch training of {} on {} ({} nodes, {} edges) needs about {:.1} GiB; {:.1} GiB is available on {}. Use a device with more memory, fewer or narrower layers (--layers, --hidden), or a smaller graph. (Set {}=1 to try anyway.)",
            spec.describe(),
            g.name,
            g.num_nodes,
            g.num_edges(),
            gib(need),
            gib(available),
            crate::device::device_name(device),
            memory::NO_MEMORY_CHECK_ENV
        );
    }
    Ok(())
}

/// What a watcher of training is told.
pub enum TrainEvent<'a> {
    IngredientStarted { index: usize, seed: u64 },
    Epoch { index: usize, epoch: usize, loss: f64, val_acc: f64 },
    IngredientDone { index: usize, path: &'a Path, acc: Accuracies },
    /// Finished by an earlier, interrupted run into the same folder: kept, not trained again.
    IngredientKept { index: usize, path: &'a Path },
}

#[derive(Debug, Clone, Serialize)]
pub struct TrainedIngredient {
    pub path: PathBuf,
    pub seed: u64,
    pub val_acc: f64,
    pub test_acc: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct TrainReport {
    pub dataset: String,
    pub dataset_fingerprint: String,
    pub arch: ArchSpec,
    pub init: PathBuf,
    pub ingredients: Vec<TrainedIngredient>,
    pub seconds: f64,
}

/// What an earlier, interrupted training into the same folder left that this one can keep: the
/// ingredients it finished (by index). Anything else already there is refused by name.
fn resumable(out: &Path, spec: &ArchSpec, cfg: &TrainConfig, g: &Graph, init_fp: &str, file_of: &dyn Fn(usize) -> PathBuf) -> Result<Vec<Option<TrainedIngredient>>> {
    let mut kept = vec![None; cfg.ingredients];
    let init_path = out.join(INIT_FILE);
    if out.join(MANIFEST).exists() {
        bail!("{} already exists (a finished training run); choose another --out or pass --overwrite", out.join(MANIFEST).display());
    }
    if !init_path.exists() {
        if let Some(existing) = (0..cfg.ingredients).map(file_of).find(|p| p.exists()) {
            bail!("{} already exists; choose another --out or pass --overwrite", existing.display());
        }
        return Ok(kept);
    }
    let same_run = |meta: &CheckpointMeta| {
        meta.arch == *spec && meta.dataset_fingerprint == g.fingerprint() && meta.init_fingerprint == init_fp && meta.extra.get("training") == serde_json::to_value(cfg).ok().as_ref()
    };
    let init_meta = checkpoint::read_meta(&init_path)?;
    if !same_run(&init_meta) {
        bail!("{} is from another training run (other settings, data or seed); choose another --out or pass --overwrite", init_path.display());
    }
    for (index, slot) in kept.iter_mut().enumerate() {
        let path = file_of(index);
        if !path.exists() {
            continue;
        }
        let ck = checkpoint::load(&path).with_context(|| format!("{} (from the interrupted run) cannot be kept", path.display()))?;
        let seed = cfg.seed + 1 + index as u64;
        match (same_run(&ck.meta) && ck.meta.seed == Some(seed), ck.meta.val_acc, ck.meta.test_acc) {
            (true, Some(val_acc), Some(test_acc)) => *slot = Some(TrainedIngredient { path, seed, val_acc, test_acc }),
            _ => bail!("{} is not this run's ingredient {index}; choose another --out or pass --overwrite", path.display()),
        }
    }
    Ok(kept)
}

/// Trains `cfg.ingredients` models from one shared initialisation and writes them to `out`.
/// An interrupted run into the same `out` (its init there, no manifest yet) is resumed: the
/// ingredients it finished are kept and only the missing ones are trained. A signal stops
/// training after the current epoch, keeping the finished ingredients
/// ([`crate::signals::Interrupted`]).
pub fn train_ingredients(
    g: &Graph,
    cfg: &TrainConfig,
    device: Device,
    out: &Path,
    overwrite: bool,
    on_event: &mut dyn FnMut(TrainEvent),
) -> Result<TrainReport> {
    cfg.validate()?;
    let spec = cfg.spec_for(g);
    spec.validate()?;
    let file_of = |i: usize| out.join(format!("ingredient-{i:02}.safetensors"));
    // The init depends on the seed alone, so an interrupted run's is recognised by its fingerprint.
    let init = spec.init(cfg.seed as i64, Device::Cpu);
    let init_fp = checkpoint::weights_fingerprint(&init);
    let kept = if overwrite { vec![None; cfg.ingredients] } else { resumable(out, &spec, cfg, g, &init_fp, &file_of)? };
    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;

    let start = Instant::now();
    check_fits(g, &spec, device)?;
    let gt = GraphTensors::new(g, device);
    let init = checkpoint::to_device(&init, device);
    let meta = |kind, seed, epochs, acc: Option<Accuracies>| CheckpointMeta {
        format_version: checkpoint::FORMAT_VERSION,
        kind,
        arch: spec.clone(),
        dataset: g.name.clone(),
        dataset_fingerprint: g.fingerprint().to_string(),
        init_fingerprint: init_fp.clone(),
        seed,
        epochs,
        val_acc: acc.map(|a| a.val),
        test_acc: acc.map(|a| a.test),
        tool_version: checkpoint::tool_version(),
        extra: [("training".to_string(), serde_json::to_value(cfg).unwrap())].into_iter().collect(),
    };
    let init_path = out.join(INIT_FILE);
    let resuming = kept.iter().any(Option::is_some) || (!overwrite && init_path.exists());
    if !resuming {
        checkpoint::save(&init_path, &init, &meta(CheckpointKind::Init, Some(cfg.seed), Some(0), None), overwrite)?;
    }

    let mut trained = Vec::new();
    for (index, earlier) in kept.into_iter().enumerate() {
        if let Some(done) = earlier {
            on_event(TrainEvent::IngredientKept { index, path: &done.path });
            trained.push(done);
            continue;
        }
        let seed = cfg.seed + 1 + index as u64;
        on_event(TrainEvent::IngredientStarted { index, seed });
        let params = train_one(&spec, &init, &gt, cfg, seed, &mut |epoch, loss, val_acc| on_event(TrainEvent::Epoch { index, epoch, loss, val_acc }))?;
        if crate::signals::interrupted() {
            return Err(crate::signals::Interrupted(format!(
                "{} of {} ingredients trained into {}; run the same command again to train the rest",
                trained.len(),
                cfg.ingredients,
                out.display()
            ))
            .into());
        }
        let acc = model::evaluate(&spec, &params, &gt);
        let path = file_of(index);
        checkpoint::save(&path, &params, &meta(CheckpointKind::Ingredient, Some(seed), Some(cfg.epochs), Some(acc)), overwrite)?;
        on_event(TrainEvent::IngredientDone { index, path: &path, acc });
        trained.push(TrainedIngredient { path, seed, val_acc: acc.val, test_acc: acc.test });
    }

    let manifest = Manifest {
        dataset: g.name.clone(),
        dataset_fingerprint: g.fingerprint().to_string(),
        arch: spec.clone(),
        init: INIT_FILE.to_string(),
        init_fingerprint: init_fp,
        ingredients: trained
            .iter()
            .map(|t| ManifestEntry { file: t.path.file_name().unwrap().to_string_lossy().into_owned(), seed: t.seed, val_acc: t.val_acc, test_acc: t.test_acc })
            .collect(),
        tool_version: checkpoint::tool_version(),
    };
    checkpoint::write_atomic(&out.join(MANIFEST), serde_json::to_string_pretty(&manifest)?.as_bytes())?;
    Ok(TrainReport {
        dataset: g.name.clone(),
        dataset_fingerprint: g.fingerprint().to_string(),
        arch: spec,
        init: init_path,
        ingredients: trained,
        seconds: start.elapsed().as_secs_f64(),
    })
}

/// How often validation accuracy is measured during training (every epoch on small graphs).
fn eval_every(num_nodes: i64, epochs: usize) -> usize {
    if num_nodes <= 50_000 {
        1
    } else {
        (epochs / 20).max(1)
    }
}

/// Whether input features are row-normalised when nothing says: when they are all non-negative
/// (bag-of-words counts, as on the Planetoid graphs; PyG's `NormalizeFeatures`).
pub fn row_normalize_default(g: &Graph) -> bool {
    g.features.iter().all(|&v| v >= 0.0)
}

/// Trains one ingredient from `init` with `seed`, returning its final weights.
pub fn train_one(
    spec: &ArchSpec,
    init: &ParamMap,
    g: &GraphTensors,
    cfg: &TrainConfig,
    seed: u64,
    on_epoch: &mut dyn FnMut(usize, f64, f64),
) -> Result<ParamMap> {
    model::rng::seed_thread(seed);
    let infos = spec.params();
    let mut params: ParamMap = init.iter().map(|(k, v)| (k.clone(), v.detach().copy())).collect();
    let trainable: Vec<String> = infos.iter().filter(|p| !p.role.is_buffer()).map(|p| p.name.clone()).collect();
    let leaves: Vec<tch::Tensor> = trainable.iter().map(|k| params[k].set_requires_grad(true)).collect();
    for (k, t) in trainable.iter().zip(&leaves) {
        params.insert(k.clone(), t.shallow_clone());
    }
    let adam = optim::adam(&leaves, cfg.lr, cfg.weight_decay)?;
    let every = eval_every(g.num_nodes, cfg.epochs);
    let mut val_acc = f64::NAN;
    for epoch in 0..cfg.epochs {
        let logits = model::forward(spec, &params, g, true);
        let loss = model::loss(&logits, &g.labels, &g.train_idx);
        loss.backward();
        optim::step(&adam)?;
        if (epoch + 1) % every == 0 || epoch + 1 == cfg.epochs {
            val_acc = model::evaluate(spec, &params, g).val;
        }
        on_epoch(epoch, loss.double_value(&[]), val_acc);
        // A signal: the caller discards this unfinished ingredient.
        if crate::signals::interrupted() {
            break;
        }
    }
    Ok(params.into_iter().map(|(k, v)| (k, v.detach())).collect())
}
