//! Ingredient training, as the paper's trainer: one initial model is created and saved, every
//! ingredient starts from it and differs only by its seed (dropout draws, and the sampled
//! neighbours of minibatch training). Adam with cross-entropy on the training nodes, full-batch
//! or in minibatches over sampled blocks ([`crate::minibatch`]); the final epoch's weights are
//! kept.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use tch::Device;

use crate::checkpoint::{
    self, CheckpointKind, CheckpointMeta, Manifest, ManifestEntry, INIT_FILE, MANIFEST,
};
use crate::data::Graph;
use crate::minibatch::{sampled_accuracy, Minibatch, Sampler};
use crate::model::{
    self, Accuracies, Activation, Arch, ArchSpec, Dropouts, GraphTensors, ParamMap,
};
use crate::optim;

/// Model shape and optimisation settings of a training run.
#[derive(Debug, Clone, Serialize, Deserialize)]
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
    #[serde(default)]
    pub activation: Activation,
    /// Input, attention and edge dropout where they differ from `dropout`.
    #[serde(default)]
    pub dropouts: Dropouts,
    /// The paper's GAT: attention logits from the target's own map too.
    #[serde(default)]
    pub attn_dst: bool,
    pub epochs: usize,
    pub lr: f64,
    pub weight_decay: f64,
    pub ingredients: usize,
    pub seed: u64,
    /// Minibatches over sampled neighbours instead of full-batch steps.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub minibatch: Option<Minibatch>,
    /// Validation during training over sampled blocks instead of exact whole-graph inference.
    /// Not part of the run's identity (it changes no weight): a resumed run may choose another.
    #[serde(skip)]
    pub eval_minibatch: Option<Minibatch>,
}

/// The most ingredients one training run makes (the paper soups up to 50).
pub const MAX_INGREDIENTS: usize = 10_000;
/// The most epochs an ingredient trains.
pub const MAX_EPOCHS: usize = 1_000_000;

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
            activation: Activation::Relu,
            dropouts: Dropouts::default(),
            attn_dst: false,
            epochs: 200,
            lr: 0.01,
            weight_decay: 5e-4,
            ingredients: 10,
            seed: 0,
            minibatch: None,
            eval_minibatch: None,
        };
        match arch {
            Arch::Gcn | Arch::Sage => base,
            Arch::Gat => TrainConfig { hidden: 8, heads: 8, dropout: 0.6, lr: 0.005, ..base },
            // The reference's GAT as its trainer builds it: batch norm after every layer, the
            // graph as it is (DGL), features dropped at DGL's ogbn-arxiv example's 0.1.
            Arch::PaperGat => TrainConfig {
                hidden: 8,
                heads: 8,
                dropout: 0.6,
                lr: 0.005,
                batch_norm: true,
                add_self_loops: false,
                dropouts: Dropouts { input: Some(0.1), attention: Some(0.0), edge: 0.0 },
                ..base
            },
        }
    }

    pub fn spec_for(&self, g: &Graph) -> ArchSpec {
        ArchSpec {
            in_dim: g.num_features as i64,
            out_dim: g.num_classes as i64,
            row_normalize: self.row_normalize.unwrap_or_else(|| row_normalize_default(g)),
            ..self.spec_shape()
        }
    }

    pub fn validate(&self) -> Result<()> {
        // Upper bounds far above any sensible run: a typo (`--ingredients 1e12`) is named at
        // once instead of training until killed.
        if !(1..=MAX_INGREDIENTS).contains(&self.ingredients) {
            bail!("--ingredients must be from 1 to {MAX_INGREDIENTS} (got {})", self.ingredients);
        }
        if !(1..=MAX_EPOCHS).contains(&self.epochs) {
            bail!("--epochs must be from 1 to {MAX_EPOCHS} (got {})", self.epochs);
        }
        if !self.lr.is_finite()
            || self.lr <= 0.0
            || !self.weight_decay.is_finite()
            || self.weight_decay < 0.0
        {
            bail!("--lr must be a positive number and --weight-decay a non-negative one (got {} and {})", self.lr, self.weight_decay);
        }
        let d = &self.dropouts;
        model::spec::check_rates([
            ("--dropout", Some(self.dropout)),
            ("--input-dropout", d.input),
            ("--attention-dropout", d.attention),
            ("--edge-dropout", Some(d.edge)),
        ])?;
        for m in self.minibatch.iter().chain(&self.eval_minibatch) {
            m.validate(self.layers)?;
        }
        // What only some architectures have, checked on the model these settings describe.
        self.spec_shape().check_options()
    }

    /// The model without a graph's widths ([`TrainConfig::spec_for`] fills them in).
    fn spec_shape(&self) -> ArchSpec {
        ArchSpec {
            arch: self.arch,
            in_dim: 0,
            hidden: self.hidden,
            out_dim: 0,
            layers: self.layers,
            heads: self.heads,
            dropout: self.dropout,
            batch_norm: self.batch_norm,
            row_normalize: self.row_normalize.unwrap_or(false),
            input_dropout_off: self.input_dropout_off.clone(),
            add_self_loops: self.add_self_loops,
            activation: self.activation,
            out_heads: 1,
            dropouts: self.dropouts,
            attn_dst: self.attn_dst,
        }
    }
}

/// Each device of `devices` with how many workers share it.
fn workers_per_device(devices: &[Device]) -> Vec<(Device, usize)> {
    let mut per_device: Vec<(Device, usize)> = Vec::new();
    for &device in devices {
        match per_device.iter_mut().find(|(d, _)| *d == device) {
            Some((_, n)) => *n += 1,
            None => per_device.push((device, 1)),
        }
    }
    per_device
}

/// The first device of `devices` on which `each` bytes for each of its workers is more than
/// is left: a sentence saying so, naming `what`.
fn memory_shortfall(
    g: &Graph,
    what: &str,
    each: u64,
    devices: &[Device],
) -> Result<Option<(String, usize)>> {
    use crate::engine::memory::{self, gib};
    for (device, workers) in workers_per_device(devices) {
        let need = each * workers as u64;
        if let Some(available) = memory::shortfall(device, need)? {
            let name = crate::device::device_name(device);
            let shared = if workers > 1 {
                format!(" ({:.2} GiB for each of its {workers} workers on {name})", gib(each))
            } else {
                String::new()
            };
            return Ok(Some((
                format!(
                    "{what} on {} ({} nodes, {} edges) needs about {:.2} GiB{shared}; {:.2} GiB is available on {name}",
                    g.name,
                    g.num_nodes,
                    g.num_edges(),
                    gib(need),
                    gib(available),
                ),
                workers,
            )));
        }
    }
    Ok(None)
}

/// What one worker of minibatch training holds on its device: the graph (features, labels, the
/// in-adjacency), then the larger of a step over the largest blocks the fanout can give and the
/// exact whole-graph inference that evaluates the finished ingredient.
///
/// A block's sources are estimated as the distinct nodes among its draws if they fell uniformly
/// (`n (1 - e^(-draws/n))`); a step holds the gathered input features, each layer's output about
/// four times over (activation, dropout, gradients), and each layer's operator with its transpose.
fn minibatch_bytes(g: &Graph, spec: &ArchSpec, minibatch: &Minibatch) -> u64 {
    use crate::engine::memory;
    let (n, e) = (g.num_nodes as f64, g.num_edges() as u64);
    let mean_degree = (e as f64 / n.max(1.0)).max(1.0);
    let distinct = |draws: f64| n * (1.0 - (-draws / n.max(1.0)).exp());
    let hidden = (spec.hidden * spec.heads.max(1)) as f64;
    let maps = if spec.arch == Arch::Sage { 2.0 } else { 1.0 };
    let (mut targets, mut step) = (minibatch.batch_size as f64, 0.0);
    for (layer, fanout) in minibatch.fanout.iter().enumerate().rev() {
        let per_target = match fanout {
            crate::sampling::Fanout::All => mean_degree,
            crate::sampling::Fanout::At(k) => (*k as f64).min(mean_degree * 4.0),
        };
        // The paper's GAT's convolutions are all hidden-wide (a linear layer gives the classes).
        let last = layer + 1 == spec.layers && spec.arch != Arch::PaperGat;
        let width = if last { spec.out_dim as f64 } else { hidden };
        let edges = targets * per_target;
        let per_edge = if spec.arch.attends() { 40.0 + 12.0 * hidden } else { 40.0 };
        step += 16.0 * maps * targets * width + per_edge * edges;
        targets = distinct(targets + edges).max(targets);
    }
    step += 8.0 * targets * spec.in_dim as f64;
    // The whole graph's operator, built by the first exact validation, stays for the later steps.
    let graph =
        memory::graph_bytes(n as u64, e, g.num_features as u64) + memory::operator_build_bytes(e);
    let inference = memory::inference_bytes(spec, n as u64) + memory::attention_bytes(spec, e);
    graph + (step as u64).max(inference)
}

/// Refuses, before the first epoch, training that would not fit in the memory left on a device
/// of `devices` (a clear message rather than the kernel's out-of-memory killer).
fn check_fits(g: &Graph, cfg: &TrainConfig, devices: &[Device]) -> Result<()> {
    use crate::engine::memory;
    let spec = cfg.spec_for(g);
    let (n, e) = (g.num_nodes as u64, g.num_edges() as u64);
    // Full batch: activations as an LS step keeps them, plus building the graph's operator.
    let (what, each, advice) = match &cfg.minibatch {
        None => (
            format!("full-batch training of {}", spec.describe()),
            memory::fit_step_bytes(&spec, n, e) + memory::operator_build_bytes(e),
            "Use minibatches (--batch-size 1024 --fanout 10,...)",
        ),
        Some(m) => (
            format!("minibatch training of {} ({})", spec.describe(), m.describe()),
            minibatch_bytes(g, &spec, m),
            "Use smaller batches or fanouts (--batch-size, --fanout)",
        ),
    };
    let Some((reason, workers)) = memory_shortfall(g, &what, each, devices)? else {
        return Ok(());
    };
    let fewer = if workers > 1 { "fewer workers on it (--devices), " } else { "" };
    bail!(
        "{reason}. {advice}, a device with more memory, {fewer}fewer or narrower layers (--layers, --hidden), or a smaller graph. (Set {}=1 to try anyway.)",
        crate::engine::memory::NO_MEMORY_CHECK_ENV
    )
}

/// What a watcher of training is told. `worker` is the index of the device (in
/// [`TrainPlan::devices`]) that trains the ingredient.
pub enum TrainEvent<'a> {
    IngredientStarted {
        worker: usize,
        index: usize,
        seed: u64,
    },
    Epoch {
        worker: usize,
        index: usize,
        epoch: usize,
        loss: f64,
        val_acc: f64,
    },
    /// A minibatch step: `batch` of `batches` (from 1) in `epoch`.
    Batch {
        worker: usize,
        index: usize,
        epoch: usize,
        batch: usize,
        batches: usize,
        seeds_per_second: f64,
    },
    IngredientDone {
        worker: usize,
        index: usize,
        path: &'a Path,
        acc: Accuracies,
    },
    /// Finished by an earlier, interrupted run into the same folder: kept, not trained again.
    IngredientKept {
        index: usize,
        path: &'a Path,
    },
}

/// The file `train` writes its progress to, one [`TrainRecord`] per line, for `tui --attach`
/// (a shard writes `train-events-shard-I.jsonl`, so shards sharing a directory never share a file).
pub const TRAIN_EVENTS_FILE: &str = "train-events.jsonl";

/// The events file of `shard` (or of a whole run).
pub fn train_events_file(out: &Path, shard: Option<Shard>) -> PathBuf {
    match shard {
        Some(s) => out.join(format!("train-events-shard-{}.jsonl", s.index)),
        None => out.join(TRAIN_EVENTS_FILE),
    }
}

/// A line of a training run's events file: [`TrainEvent`]s, owned, with what the run is and how
/// it ended.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum TrainRecord {
    Started {
        dataset: String,
        model: String,
        ingredients: usize,
        epochs: usize,
        devices: Vec<String>,
        shard: Option<String>,
    },
    Ingredient {
        worker: usize,
        index: usize,
        seed: u64,
    },
    Epoch {
        worker: usize,
        index: usize,
        epoch: usize,
        loss: f64,
        #[serde(with = "crate::units::nan_as_null")]
        val_acc: f64,
    },
    Batch {
        worker: usize,
        index: usize,
        epoch: usize,
        batch: usize,
        batches: usize,
        seeds_per_second: f64,
    },
    Done {
        worker: usize,
        index: usize,
        val_acc: f64,
        test_acc: f64,
        file: PathBuf,
    },
    Kept {
        index: usize,
        file: PathBuf,
    },
    Finished {
        seconds: f64,
        complete: bool,
    },
    Failed {
        message: String,
    },
}

impl TrainRecord {
    pub fn from_event(e: &TrainEvent) -> TrainRecord {
        match *e {
            TrainEvent::IngredientStarted { worker, index, seed } => {
                TrainRecord::Ingredient { worker, index, seed }
            }
            TrainEvent::Epoch { worker, index, epoch, loss, val_acc } => {
                TrainRecord::Epoch { worker, index, epoch, loss, val_acc }
            }
            TrainEvent::Batch { worker, index, epoch, batch, batches, seeds_per_second } => {
                TrainRecord::Batch { worker, index, epoch, batch, batches, seeds_per_second }
            }
            TrainEvent::IngredientDone { worker, index, path, acc } => TrainRecord::Done {
                worker,
                index,
                val_acc: acc.val,
                test_acc: acc.test,
                file: path.to_path_buf(),
            },
            TrainEvent::IngredientKept { index, path } => {
                TrainRecord::Kept { index, file: path.to_path_buf() }
            }
        }
    }
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
    /// The ingredients in `out` (for a shard, its own share), in index order.
    pub ingredients: Vec<TrainedIngredient>,
    pub seconds: f64,
    /// Whether the manifest was written (not for a shard: `train --collect` writes it).
    pub complete: bool,
}

/// This process's share of a run split into `count` shards (a Slurm array): the ingredients whose
/// index `i` has `i % count == index`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    pub index: usize,
    pub count: usize,
}

impl Shard {
    /// `I/N` with `0 <= I < N` (`SLURM_ARRAY_TASK_ID` for `--array=0-(N-1)`).
    pub fn parse(text: &str) -> Result<Shard, String> {
        let (i, n) = text
            .split_once('/')
            .ok_or_else(|| format!("expected I/N (shard I of N, from 0), got {text:?}"))?;
        let (index, count) = match (i.trim().parse::<usize>(), n.trim().parse::<usize>()) {
            (Ok(i), Ok(n)) => (i, n),
            _ => return Err(format!("expected I/N with whole numbers, got {text:?}")),
        };
        if count == 0 || index >= count {
            return Err(format!(
                "shard {index} of {count} does not exist: I counts from 0 and must be below N"
            ));
        }
        Ok(Shard { index, count })
    }

    pub fn owns(&self, ingredient: usize) -> bool {
        ingredient % self.count == self.index
    }
}

impl std::fmt::Display for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

/// Where and what this process trains.
#[derive(Debug, Clone)]
pub struct TrainPlan {
    /// One worker per entry, each taking the next ingredient as it frees up; a device may repeat
    /// (`cpu,cpu`).
    pub devices: Vec<Device>,
    /// Only this share of the ingredients (the others are another process's); no manifest.
    pub shard: Option<Shard>,
    /// Replace what is in `out` instead of resuming or refusing.
    pub overwrite: bool,
}

impl TrainPlan {
    pub fn on(device: Device) -> TrainPlan {
        TrainPlan { devices: vec![device], shard: None, overwrite: false }
    }
}

/// The checkpoint file of ingredient `index`.
pub fn ingredient_file(out: &Path, index: usize) -> PathBuf {
    out.join(format!("ingredient-{index:02}.safetensors"))
}

/// Whether `meta` is a checkpoint of this training run: same model, data, init and settings.
/// What makes checkpoints one training run's: the model, the dataset, the training settings and
/// the shared init's fingerprint. Every checkpoint of the run records it, and a resumed run, a
/// joining shard and `collect` check against it. Plain data, so every worker thread shares it.
struct RunIdentity {
    spec: ArchSpec,
    cfg: TrainConfig,
    /// `cfg` as recorded in each checkpoint's metadata (`extra.training`).
    training: serde_json::Value,
    dataset: String,
    dataset_fingerprint: String,
    init_fp: String,
}

impl RunIdentity {
    /// The run of `cfg` on `g`, with its shared init. The init depends on the seed alone, so every
    /// worker, shard and resumed run makes the same one: its fingerprint is what they are checked
    /// against.
    fn new(g: &Graph, cfg: &TrainConfig) -> Result<(RunIdentity, ParamMap)> {
        cfg.validate()?;
        let spec = cfg.spec_for(g);
        spec.validate()?;
        let init = spec.init(cfg.seed as i64, Device::Cpu);
        let run = RunIdentity {
            init_fp: checkpoint::weights_fingerprint(&init),
            spec,
            cfg: cfg.clone(),
            training: serde_json::to_value(cfg)?,
            dataset: g.name.clone(),
            dataset_fingerprint: g.fingerprint().to_string(),
        };
        Ok((run, init))
    }

    /// The run whose init's metadata is `init` (read from `path`), for `collect`: no flag has to
    /// be repeated.
    fn recorded(path: &Path, init: CheckpointMeta) -> Result<RunIdentity> {
        let cfg: TrainConfig = init
            .extra
            .get("training")
            .cloned()
            .map(serde_json::from_value)
            .transpose()
            .with_context(|| format!("{}: unreadable training settings", path.display()))?
            .with_context(|| {
                format!(
                    "{} was not written by `gnn-soup train` (no training settings in it)",
                    path.display()
                )
            })?;
        Ok(RunIdentity {
            training: serde_json::to_value(&cfg)?,
            cfg,
            spec: init.arch,
            dataset: init.dataset,
            dataset_fingerprint: init.dataset_fingerprint,
            init_fp: init.init_fingerprint,
        })
    }

    /// The seed ingredient `index` trains with.
    fn seed_of(&self, index: usize) -> u64 {
        self.cfg.seed + 1 + index as u64
    }

    /// The metadata of one of this run's checkpoints.
    fn meta(
        &self,
        kind: CheckpointKind,
        seed: Option<u64>,
        epochs: Option<usize>,
        acc: Option<Accuracies>,
    ) -> CheckpointMeta {
        CheckpointMeta {
            format_version: checkpoint::FORMAT_VERSION,
            kind,
            arch: self.spec.clone(),
            dataset: self.dataset.clone(),
            dataset_fingerprint: self.dataset_fingerprint.clone(),
            init_fingerprint: self.init_fp.clone(),
            seed,
            epochs,
            val_acc: acc.map(|a| a.val),
            test_acc: acc.map(|a| a.test),
            tool_version: checkpoint::tool_version(),
            extra: [("training".to_string(), self.training.clone())].into_iter().collect(),
        }
    }

    /// Whether `meta` is one of this run's checkpoints.
    fn owns(&self, meta: &CheckpointMeta) -> bool {
        meta.arch == self.spec
            && meta.dataset_fingerprint == self.dataset_fingerprint
            && meta.init_fingerprint == self.init_fp
            && meta.extra.get("training") == Some(&self.training)
    }
}

/// The ingredient at `index` if it is this run's, finished (with its accuracies).
fn finished_ingredient(
    out: &Path,
    index: usize,
    run: &RunIdentity,
) -> Result<Option<TrainedIngredient>> {
    let path = ingredient_file(out, index);
    if !path.exists() {
        return Ok(None);
    }
    let meta = checkpoint::read_meta(&path)
        .with_context(|| format!("{} cannot be kept", path.display()))?;
    let seed = run.seed_of(index);
    match (run.owns(&meta) && meta.seed == Some(seed), meta.val_acc, meta.test_acc) {
        (true, Some(val_acc), Some(test_acc)) => {
            Ok(Some(TrainedIngredient { path, seed, val_acc, test_acc }))
        }
        _ => bail!(
            "{} is not this run's ingredient {index}; choose another --out or pass --overwrite",
            path.display()
        ),
    }
}

/// Writes the shared init into `out`, or checks the one there is this run's (another shard, or an
/// interrupted run, wrote it). Shards of an array may race to write it: the content is the same,
/// and a loser finds the winner's file and checks it.
fn ensure_init(out: &Path, init: &ParamMap, run: &RunIdentity, overwrite: bool) -> Result<PathBuf> {
    let path = out.join(INIT_FILE);
    let meta = run.meta(CheckpointKind::Init, Some(run.cfg.seed), Some(0), None);
    let verify = || -> Result<PathBuf> {
        let there = checkpoint::read_meta(&path)?;
        if !run.owns(&there) {
            bail!("{} is from another training run (other settings, data or seed: its fingerprint {} is not this run's {}); choose another --out or pass --overwrite", path.display(), there.init_fingerprint, run.init_fp);
        }
        Ok(path.clone())
    };
    if !overwrite && path.exists() {
        return verify();
    }
    match checkpoint::save(&path, init, &meta, overwrite) {
        Ok(()) => Ok(path),
        Err(_) if !overwrite && path.exists() => verify(),
        Err(e) => Err(e),
    }
}

/// What one worker tells the loop that collects results (owned: it crosses threads).
enum WorkerMsg {
    Started { worker: usize, index: usize, seed: u64 },
    Progress { worker: usize, index: usize, progress: Progress },
    Done { worker: usize, index: usize, path: PathBuf, acc: Accuracies },
    Failed(anyhow::Error),
}

/// Trains `cfg.ingredients` models from one shared initialisation on one device and writes them
/// with their manifest to `out` ([`train`] with one worker and no shard).
pub fn train_ingredients(
    g: &Graph,
    cfg: &TrainConfig,
    device: Device,
    out: &Path,
    overwrite: bool,
    on_event: &mut dyn FnMut(TrainEvent),
) -> Result<TrainReport> {
    train(g, cfg, &TrainPlan { overwrite, ..TrainPlan::on(device) }, out, on_event)
}

/// Trains the ingredients of `cfg` that `plan` gives this process, from one shared
/// initialisation, into `out`: one worker per device of the plan, each taking the next missing
/// ingredient as it frees up. Every ingredient is its own atomic file; the manifest is written
/// when all are there (never by a shard: `train --collect` does it once every shard is done).
/// An interrupted run into the same `out` is resumed: the ingredients it finished are kept and
/// only the missing ones trained. A signal stops training after the current epoch, keeping the
/// finished ingredients ([`crate::signals::Interrupted`]).
pub fn train(
    g: &Graph,
    cfg: &TrainConfig,
    plan: &TrainPlan,
    out: &Path,
    on_event: &mut dyn FnMut(TrainEvent),
) -> Result<TrainReport> {
    if plan.devices.is_empty() {
        bail!("no device to train on");
    }
    let (run, init) = RunIdentity::new(g, cfg)?;
    let mine = |i: &usize| plan.shard.is_none_or(|s| s.owns(*i));
    let init_path = out.join(INIT_FILE);
    if out.join(MANIFEST).exists() && !plan.overwrite {
        bail!(
            "{} already exists (a finished training run); choose another --out or pass --overwrite",
            out.join(MANIFEST).display()
        );
    }
    if !plan.overwrite && !init_path.exists() {
        if let Some(existing) =
            (0..cfg.ingredients).filter(mine).map(|i| ingredient_file(out, i)).find(|p| p.exists())
        {
            bail!(
                "{} already exists; choose another --out or pass --overwrite",
                existing.display()
            );
        }
    }
    check_fits(g, cfg, &plan.devices)?;
    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    let start = Instant::now();
    ensure_init(out, &init, &run, plan.overwrite)?;

    let mut done: std::collections::BTreeMap<usize, TrainedIngredient> =
        std::collections::BTreeMap::new();
    let mut todo = std::collections::VecDeque::new();
    for index in (0..cfg.ingredients).filter(mine) {
        match if plan.overwrite { None } else { finished_ingredient(out, index, &run)? } {
            Some(kept) => {
                on_event(TrainEvent::IngredientKept { index, path: &kept.path });
                done.insert(index, kept);
            }
            None => todo.push_back(index),
        }
    }
    let owned = done.len() + todo.len();
    run_workers(g, &run, plan, out, todo, &mut |msg| match msg {
        WorkerMsg::Started { worker, index, seed } => {
            on_event(TrainEvent::IngredientStarted { worker, index, seed })
        }
        WorkerMsg::Progress { worker, index, progress } => on_event(match progress {
            Progress::Epoch { epoch, loss, val_acc } => {
                TrainEvent::Epoch { worker, index, epoch, loss, val_acc }
            }
            Progress::Batch { epoch, batch, batches, seeds_per_second } => {
                TrainEvent::Batch { worker, index, epoch, batch, batches, seeds_per_second }
            }
        }),
        WorkerMsg::Done { worker, index, path, acc } => {
            on_event(TrainEvent::IngredientDone { worker, index, path: &path, acc });
            done.insert(
                index,
                TrainedIngredient {
                    path,
                    seed: run.seed_of(index),
                    val_acc: acc.val,
                    test_acc: acc.test,
                },
            );
        }
        WorkerMsg::Failed(_) => unreachable!("failures are returned by run_workers"),
    })?;
    if crate::signals::interrupted() || done.len() < owned {
        return Err(crate::signals::Interrupted(format!("{} of {owned} ingredients trained into {}; run the same command again to train the rest", done.len(), out.display())).into());
    }
    let trained: Vec<TrainedIngredient> = done.into_values().collect();
    let complete = plan.shard.is_none();
    if complete {
        write_manifest(out, &run, &trained)?;
    }
    Ok(TrainReport {
        dataset: run.dataset,
        dataset_fingerprint: run.dataset_fingerprint,
        arch: run.spec,
        init: init_path,
        ingredients: trained,
        seconds: start.elapsed().as_secs_f64(),
        complete,
    })
}

/// Runs one worker thread per device of `plan` over `todo`, passing their messages to `on_msg` on
/// this thread; the first failure stops the others after their current ingredient and is returned.
fn run_workers(
    g: &Graph,
    run: &RunIdentity,
    plan: &TrainPlan,
    out: &Path,
    todo: std::collections::VecDeque<usize>,
    on_msg: &mut dyn FnMut(WorkerMsg),
) -> Result<()> {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{mpsc, Mutex};
    if todo.is_empty() {
        return Ok(());
    }
    // Workers on the CPU share its cores: each gets its part of libtorch's threads, not all of them.
    let cpu_workers = plan.devices.iter().filter(|d| **d == Device::Cpu).count();
    if cpu_workers > 1 {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        tch::set_num_threads((cores / cpu_workers).max(1) as i32);
    }
    let queue = Mutex::new(todo);
    let stop = AtomicBool::new(false);
    // One sampler for every worker (host data only; each batch is made for its worker's device).
    let cfg = &run.cfg;
    let sampler = (cfg.minibatch.is_some() || cfg.eval_minibatch.is_some())
        .then(|| Sampler::new(g, &run.spec));
    let sampler = &sampler;
    let (tx, rx) = mpsc::channel::<WorkerMsg>();
    let mut failure = None;
    std::thread::scope(|scope| {
        for (worker, &device) in plan.devices.iter().enumerate() {
            let (tx, queue, stop) = (tx.clone(), &queue, &stop);
            let work_tx = tx.clone();
            let work = move || -> Result<()> {
                // Each worker makes the init itself (tensors do not cross threads) and checks it
                // is the one every other worker and the init file have.
                let (spec, cfg) = (&run.spec, &run.cfg);
                let init = spec.init(cfg.seed as i64, Device::Cpu);
                if checkpoint::weights_fingerprint(&init) != run.init_fp {
                    bail!(
                        "worker {worker} on {} made an init with another fingerprint than {}",
                        crate::device::device_name(device),
                        run.init_fp
                    );
                }
                let init = checkpoint::to_device(&init, device);
                let gt = GraphTensors::new(g, device);
                loop {
                    let next =
                        queue.lock().map_err(|_| anyhow::anyhow!("a worker panicked"))?.pop_front();
                    let Some(index) = next else { return Ok(()) };
                    if stop.load(Ordering::Relaxed) || crate::signals::interrupted() {
                        return Ok(());
                    }
                    let seed = run.seed_of(index);
                    let _ = work_tx.send(WorkerMsg::Started { worker, index, seed });
                    let Trained { params, accuracies } = train_one(
                        spec,
                        &init,
                        &gt,
                        sampler.as_ref(),
                        cfg,
                        seed,
                        &mut |progress| {
                            let _ = work_tx.send(WorkerMsg::Progress { worker, index, progress });
                        },
                    )?;
                    if crate::signals::interrupted() {
                        return Ok(());
                    }
                    let acc = accuracies.unwrap_or_else(|| model::evaluate(spec, &params, &gt));
                    let path = ingredient_file(out, index);
                    checkpoint::save(
                        &path,
                        &params,
                        &run.meta(
                            CheckpointKind::Ingredient,
                            Some(seed),
                            Some(cfg.epochs),
                            Some(acc),
                        ),
                        plan.overwrite,
                    )?;
                    let _ = work_tx.send(WorkerMsg::Done { worker, index, path, acc });
                }
            };
            std::thread::Builder::new()
                .name(format!("train-{worker}"))
                .stack_size(64 << 20)
                .spawn_scoped(scope, move || {
                    if let Err(e) = work() {
                        stop.store(true, Ordering::Relaxed);
                        let _ = tx.send(WorkerMsg::Failed(e.context(format!(
                            "worker {worker} ({})",
                            crate::device::device_name(device)
                        ))));
                    }
                })
                .map_err(|e| anyhow::anyhow!("cannot start training worker {worker}: {e}"))?;
        }
        drop(tx);
        for msg in rx {
            match msg {
                WorkerMsg::Failed(e) => {
                    failure.get_or_insert(e);
                }
                other => on_msg(other),
            }
        }
        Ok::<(), anyhow::Error>(())
    })?;
    match failure {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

fn write_manifest(out: &Path, run: &RunIdentity, trained: &[TrainedIngredient]) -> Result<()> {
    let manifest = Manifest {
        dataset: run.dataset.clone(),
        dataset_fingerprint: run.dataset_fingerprint.clone(),
        arch: run.spec.clone(),
        init: INIT_FILE.to_string(),
        init_fingerprint: run.init_fp.clone(),
        ingredients: trained
            .iter()
            .map(|t| ManifestEntry {
                file: t.path.file_name().unwrap_or_default().to_string_lossy().into_owned(),
                seed: t.seed,
                val_acc: t.val_acc,
                test_acc: t.test_acc,
            })
            .collect(),
        tool_version: checkpoint::tool_version(),
    };
    checkpoint::write_atomic(
        &out.join(MANIFEST),
        serde_json::to_string_pretty(&manifest)?.as_bytes(),
    )
}

/// Writes only the shared init of `cfg` on `g` into `out` (`train --init-only`, before a Slurm
/// array), or checks the one there; returns its path and fingerprint.
pub fn write_init(
    g: &Graph,
    cfg: &TrainConfig,
    out: &Path,
    overwrite: bool,
) -> Result<(PathBuf, String)> {
    let (run, init) = RunIdentity::new(g, cfg)?;
    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    let path = ensure_init(out, &init, &run, overwrite)?;
    Ok((path, run.init_fp))
}

/// Checks that every ingredient of the run whose init is in `out` is there and is that run's, and
/// writes the manifest (`train --collect`, after the shards of an array). The run's settings come
/// from the init's metadata, so no flag has to be repeated.
pub fn collect(out: &Path) -> Result<TrainReport> {
    let start = Instant::now();
    let init_path = out.join(INIT_FILE);
    let init = checkpoint::read_meta(&init_path).with_context(|| {
        format!(
            "{} holds no training run's init (run the shards, or `train --init-only`, first)",
            out.display()
        )
    })?;
    let run = RunIdentity::recorded(&init_path, init)?;
    let (mut found, mut missing) = (Vec::new(), Vec::new());
    for index in 0..run.cfg.ingredients {
        match finished_ingredient(out, index, &run)? {
            Some(t) => found.push(t),
            None => missing.push(format!("ingredient-{index:02}")),
        }
    }
    if !missing.is_empty() {
        bail!("{}: {} of {} ingredients are missing ({}): their shards have not finished, or failed; run them again (they resume) and collect once all are done", out.display(), missing.len(), run.cfg.ingredients, missing.join(", "));
    }
    write_manifest(out, &run, &found)?;
    Ok(TrainReport {
        dataset: run.dataset,
        dataset_fingerprint: run.dataset_fingerprint,
        arch: run.spec,
        init: init_path,
        ingredients: found,
        seconds: start.elapsed().as_secs_f64(),
        complete: true,
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

/// How far an ingredient's training is, as [`train_one`] reports it.
#[derive(Debug, Clone, Copy)]
pub enum Progress {
    /// A minibatch step finished: `batch` of the epoch's `batches` (from 1), and the seeds per
    /// second of the epoch so far.
    Batch { epoch: usize, batch: usize, batches: usize, seeds_per_second: f64 },
    /// An epoch finished, with its mean training loss and the latest validation accuracy (NaN
    /// before the first validation).
    Epoch { epoch: usize, loss: f64, val_acc: f64 },
}

/// A trained ingredient's weights, and its exact accuracies when the last epoch's validation
/// already computed them (exact inference on a large graph takes as long as an epoch or more).
pub struct Trained {
    pub params: ParamMap,
    pub accuracies: Option<Accuracies>,
}

/// Trains one ingredient from `init` with `seed`: full-batch, or in minibatches over blocks from
/// `sampler` when `cfg.minibatch` asks for it (the sampler is needed then, and for
/// `cfg.eval_minibatch`).
pub fn train_one(
    spec: &ArchSpec,
    init: &ParamMap,
    g: &GraphTensors,
    sampler: Option<&Sampler>,
    cfg: &TrainConfig,
    seed: u64,
    on_progress: &mut dyn FnMut(Progress),
) -> Result<Trained> {
    model::rng::seed_thread(seed);
    let infos = spec.params();
    let mut params: ParamMap = init.iter().map(|(k, v)| (k.clone(), v.detach().copy())).collect();
    let trainable: Vec<String> =
        infos.iter().filter(|p| !p.role.is_buffer()).map(|p| p.name.clone()).collect();
    let leaves: Vec<tch::Tensor> =
        trainable.iter().map(|k| params[k].set_requires_grad(true)).collect();
    for (k, t) in trainable.iter().zip(&leaves) {
        params.insert(k.clone(), t.shallow_clone());
    }
    let adam = optim::adam(&leaves, cfg.lr, cfg.weight_decay)?;
    let every = eval_every(g.num_nodes, cfg.epochs);
    let validates = |epoch: usize| (epoch + 1).is_multiple_of(every) || epoch + 1 == cfg.epochs;
    // Exact accuracies of the final weights, when the last validation measured them.
    let mut last_exact: Option<Accuracies> = None;
    let mut validate = |params: &ParamMap, epoch: usize| match (&cfg.eval_minibatch, sampler) {
        (Some(m), Some(s)) => sampled_accuracy(spec, params, g, s, s.val_nodes(), m, seed),
        (Some(_), None) => unreachable!("a sampler is made for sampled validation"),
        _ => {
            let acc = model::evaluate(spec, params, g);
            last_exact = (epoch + 1 == cfg.epochs).then_some(acc);
            acc.val
        }
    };
    let mut val_acc = f64::NAN;
    match (&cfg.minibatch, sampler) {
        (Some(minibatch), Some(sampler)) => {
            let mut loss_sum = tch::Tensor::zeros([], (tch::Kind::Float, g.device));
            let (mut seeds, mut started) = (0usize, Instant::now());
            let device = g.device;
            sampler.for_each_batch(
                minibatch,
                seed,
                cfg.epochs,
                device,
                &mut |epoch, index, batches, host| {
                    let batch = host.to_device(g, spec.row_normalize);
                    let logits = batch.forward(spec, &params, model::Mode::TRAIN);
                    let loss = logits.cross_entropy_for_logits(&batch.labels);
                    loss.backward();
                    optim::step(&adam)?;
                    // Summed on the device: reading each step's loss would wait for the device.
                    let _ = loss_sum.g_add_(&(loss.detach() * batch.seeds as f64));
                    seeds += batch.seeds;
                    let seconds = started.elapsed().as_secs_f64().max(1e-9);
                    on_progress(Progress::Batch {
                        epoch,
                        batch: index + 1,
                        batches,
                        seeds_per_second: seeds as f64 / seconds,
                    });
                    if index + 1 == batches {
                        if validates(epoch) {
                            val_acc = validate(&params, epoch);
                        }
                        let loss = loss_sum.double_value(&[]) / seeds.max(1) as f64;
                        on_progress(Progress::Epoch { epoch, loss, val_acc });
                        let _ = loss_sum.zero_();
                        (seeds, started) = (0, Instant::now());
                    }
                    // A signal: the caller discards this unfinished ingredient.
                    Ok(!crate::signals::interrupted())
                },
            )?;
        }
        (Some(_), None) => unreachable!("a sampler is made for minibatch training"),
        (None, _) => {
            for epoch in 0..cfg.epochs {
                let logits = model::forward(spec, &params, g, model::Mode::TRAIN);
                let loss = model::loss(&logits, &g.labels, &g.train_idx);
                loss.backward();
                optim::step(&adam)?;
                if validates(epoch) {
                    val_acc = validate(&params, epoch);
                }
                on_progress(Progress::Epoch { epoch, loss: loss.double_value(&[]), val_acc });
                if crate::signals::interrupted() {
                    break;
                }
            }
        }
    }
    Ok(Trained {
        params: params.into_iter().map(|(k, v)| (k, v.detach())).collect(),
        accuracies: last_exact,
    })
}
