//! Minibatch training and evaluation over sampled blocks, for graphs whose full-batch step does
//! not fit (as the paper's products ingredients were trained): each step takes a batch of seed
//! nodes, samples a block per layer ([`crate::sampling`]), moves it to the device and runs the
//! same layer code as a full-graph pass, over the blocks ([`BlockGraph`]).
//!
//! Sampling runs on the host in a producer thread, a few batches ahead of the training step
//! (a bounded queue), so it overlaps the step's compute. Bound for CUDA, its tensors are pinned
//! and copied without blocking.

use std::sync::mpsc;

use anyhow::{bail, Result};
use rand::rngs::StdRng;
use rand::SeedableRng;
use serde::{Deserialize, Serialize};
use tch::{Device, Kind, Tensor};

use crate::data::Graph;
use crate::model::graph_tensors::InAdjacency;
use crate::model::propagation::{CsrParts, LayerParts};
use crate::model::{self, Arch, ArchSpec, BlockGraph, GraphTensors, Mode, ParamMap};
use crate::sampling::{
    batches_per_epoch, epoch_batches, sample_blocks, Block, BlockMatrix, Degrees, Fanout,
};

/// Batches of `batch_size` seeds, each layer sampling `fanout[layer]` in-neighbours per target
/// (input layer first).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Minibatch {
    pub batch_size: usize,
    pub fanout: Vec<Fanout>,
}

/// Seeds per batch when the size is not given, and in-neighbours per layer when the fanout is
/// not: DGL's and PyG's usual minibatch settings.
pub const DEFAULT_BATCH_SIZE: usize = 1024;
pub const DEFAULT_FANOUT: usize = 10;

/// Batches queued ahead of the training step: enough to hide a slow sample, few enough that
/// the queue's memory stays a few batches'.
const QUEUE_DEPTH: usize = 4;

impl Minibatch {
    /// `batch_size` (default [`DEFAULT_BATCH_SIZE`]) and `fanout` (default
    /// [`DEFAULT_FANOUT`] per layer) for a model of `layers` layers, checked.
    pub fn new(
        batch_size: Option<usize>,
        fanout: Option<Vec<Fanout>>,
        layers: usize,
    ) -> Result<Minibatch> {
        let m = Minibatch {
            batch_size: batch_size.unwrap_or(DEFAULT_BATCH_SIZE),
            fanout: fanout.unwrap_or_else(|| vec![Fanout::At(DEFAULT_FANOUT); layers]),
        };
        m.validate(layers)?;
        Ok(m)
    }

    pub fn validate(&self, layers: usize) -> Result<()> {
        if self.batch_size == 0 {
            bail!("the batch size must be at least 1");
        }
        if self.fanout.len() != layers {
            bail!(
                "{} fanouts for a model of {layers} layers: give one per layer, input layer first (e.g. {})",
                self.fanout.len(),
                vec!["10"; layers].join(",")
            );
        }
        Ok(())
    }

    /// `batches of 1024, fanout 15,10,5`.
    pub fn describe(&self) -> String {
        format!("batches of {}, fanout {}", self.batch_size, Fanout::list_text(&self.fanout))
    }
}

/// What sampling needs of a graph, on the host: its in-adjacency and degrees, and how the
/// architecture's layers aggregate.
pub struct Sampler {
    adjacency: InAdjacency,
    degrees: Degrees,
    aggregation: Aggregation,
    train: Vec<i64>,
    val: Vec<i64>,
}

#[derive(Clone, Copy)]
enum Aggregation {
    Gcn { self_loops: bool },
    Mean,
    Attention { self_loops: bool },
}

/// One sampled batch on the host: the nodes whose input features it reads, its seeds, and each
/// layer's block as `(targets, parts)`.
pub struct HostBatch {
    pub input_nodes: Tensor,
    pub seeds: Tensor,
    pub layers: Vec<(i64, LayerParts)>,
}

/// A batch on the device: its blocks, input features and the seeds' labels.
pub struct DeviceBatch {
    pub blocks: BlockGraph,
    pub input: Tensor,
    pub labels: Tensor,
    pub seeds: usize,
}

impl Sampler {
    /// The sampler of `spec`'s blocks on `g` (shared by every worker: it holds no tensor).
    pub fn new(g: &Graph, spec: &ArchSpec) -> Sampler {
        let adjacency = InAdjacency::from_edges(g.num_nodes, &g.src, &g.dst);
        let degrees = Degrees::of(&adjacency);
        let self_loops = spec.add_self_loops;
        let aggregation = match spec.arch {
            Arch::Gcn => Aggregation::Gcn { self_loops },
            Arch::Sage => Aggregation::Mean,
            Arch::Gat | Arch::PaperGat => Aggregation::Attention { self_loops },
        };
        Sampler { adjacency, degrees, aggregation, train: g.train.clone(), val: g.val.clone() }
    }

    /// The validation nodes.
    pub fn val_nodes(&self) -> &[i64] {
        &self.val
    }

    /// Samples the blocks of one batch of `seeds` for `device` (on the host; pinned for a CUDA
    /// device). `backward`: the batch is for a training step, whose backward pass needs the
    /// transposes of every layer's operator but the first (the features need no gradient).
    pub fn batch(
        &self,
        seeds: &[i64],
        fanout: &[Fanout],
        rng: &mut StdRng,
        backward: bool,
        device: Device,
    ) -> HostBatch {
        let host = Host { pin: device.is_cuda().then_some(device) };
        let blocks = sample_blocks(&self.adjacency, seeds, fanout, rng);
        let layers = blocks
            .iter()
            .enumerate()
            .map(|(layer, block)| {
                // The first layer's input (the features) needs no gradient, unless the layer maps
                // it before aggregating, which it does when the block does not shrink.
                let shrinks = block.src.len() > block.dst.len();
                let parts = self.layer_parts(block, backward && (layer > 0 || !shrinks), host);
                (block.dst.len() as i64, parts)
            })
            .collect();
        HostBatch { input_nodes: host.ids(&blocks[0].src), seeds: host.ids(seeds), layers }
    }

    fn layer_parts(&self, block: &Block, transpose: bool, host: Host) -> LayerParts {
        let matrix = match self.aggregation {
            Aggregation::Gcn { self_loops } => block.gcn_matrix(&self.degrees, self_loops),
            Aggregation::Mean => block.mean_matrix(),
            Aggregation::Attention { self_loops } => {
                let (src, dst) = block.attention_edges(self_loops);
                return LayerParts::Edges { src: host.ids(&src), dst: host.ids(&dst) };
            }
        };
        LayerParts::Operator {
            transpose: transpose.then(|| host.csr(&matrix.transpose())),
            matrix: host.csr(&matrix),
        }
    }

    /// Runs `consume` on the batches of `epochs` epochs over the training nodes (reshuffled each
    /// epoch by the generator seeded with `seed`), sampled in a producer thread ahead of it.
    /// `consume` gets the epoch, the batch's index and the epoch's batch count; returning false
    /// stops both.
    pub fn for_each_batch(
        &self,
        minibatch: &Minibatch,
        seed: u64,
        epochs: usize,
        device: Device,
        consume: &mut dyn FnMut(usize, usize, usize, HostBatch) -> Result<bool>,
    ) -> Result<()> {
        let train = &self.train;
        let batches = batches_per_epoch(train.len(), minibatch.batch_size);
        std::thread::scope(|scope| {
            let (tx, rx) = mpsc::sync_channel::<HostBatch>(QUEUE_DEPTH);
            let producer = std::thread::Builder::new()
                .name("sampler".into())
                .spawn_scoped(scope, move || {
                    let mut rng = StdRng::seed_from_u64(seed);
                    for _ in 0..epochs {
                        for seeds in epoch_batches(train, minibatch.batch_size, &mut rng) {
                            let batch =
                                self.batch(&seeds, &minibatch.fanout, &mut rng, true, device);
                            if tx.send(batch).is_err() {
                                return; // the consumer stopped
                            }
                        }
                    }
                })
                .map_err(|e| anyhow::anyhow!("cannot start the sampling thread: {e}"))?;
            let mut consumed = || -> Result<()> {
                for epoch in 0..epochs {
                    for index in 0..batches {
                        let Ok(batch) = rx.recv() else { return Ok(()) }; // it panicked: below
                        if !consume(epoch, index, batches, batch)? {
                            return Ok(());
                        }
                    }
                }
                Ok(())
            };
            let result = consumed();
            drop(rx); // a producer blocked on a full queue stops
                      // Joined here, so that its panic is this error rather than the scope's panic.
            if producer.join().is_err() {
                bail!("the sampling thread failed (the log file has its panic)");
            }
            result
        })
    }
}

/// Where a batch's host tensors are made: pinned when bound for a CUDA device (`pin`), so its
/// copy there can run without blocking.
#[derive(Clone, Copy)]
struct Host {
    pin: Option<Device>,
}

impl Host {
    fn tensor(self, t: Tensor) -> Tensor {
        match self.pin {
            Some(device) => t.pin_memory(device),
            None => t,
        }
    }

    fn ids(self, ids: &[i64]) -> Tensor {
        self.tensor(Tensor::from_slice(ids))
    }

    fn csr(self, m: &BlockMatrix) -> CsrParts {
        CsrParts {
            crow: self.ids(&m.crow),
            col: self.ids(&m.col),
            values: self.tensor(Tensor::from_slice(&m.values)),
            size: [m.rows as i64, m.cols as i64],
        }
    }
}

impl HostBatch {
    /// Moves the batch to `g`'s device and gathers its input features (row-normalised or not)
    /// and its seeds' labels there.
    pub fn to_device(&self, g: &GraphTensors, row_normalize: bool) -> DeviceBatch {
        let device = g.device;
        let move_ids = |t: &Tensor| t.to_device_(device, Kind::Int64, true, false);
        let seeds = move_ids(&self.seeds);
        DeviceBatch {
            blocks: BlockGraph::new(&self.layers, device),
            input: g.features(row_normalize).index_select(0, &move_ids(&self.input_nodes)),
            labels: g.labels.index_select(0, &seeds),
            seeds: seeds.size()[0] as usize,
        }
    }
}

impl DeviceBatch {
    /// The seeds' logits.
    pub fn forward(&self, spec: &ArchSpec, params: &ParamMap, mode: Mode) -> Tensor {
        model::forward_input(spec, params, &self.blocks, &self.input, false, mode, None)
    }
}

/// Accuracy on the `nodes` by inference over sampled blocks, `minibatch.batch_size` nodes at a
/// time (in order) with `minibatch.fanout` (full fanout gives exact inference's accuracy,
/// batch norm aside: it normalises with running statistics either way). Cheaper than a
/// whole-graph pass when `nodes` are few (validation during training).
pub fn sampled_accuracy(
    spec: &ArchSpec,
    params: &ParamMap,
    g: &GraphTensors,
    sampler: &Sampler,
    nodes: &[i64],
    minibatch: &Minibatch,
    seed: u64,
) -> f64 {
    let _guard = tch::no_grad_guard();
    let mut rng = StdRng::seed_from_u64(seed);
    let mut correct = 0i64;
    for seeds in nodes.chunks(minibatch.batch_size.max(1)) {
        let batch = sampler
            .batch(seeds, &minibatch.fanout, &mut rng, false, g.device)
            .to_device(g, spec.row_normalize);
        let predicted = batch.forward(spec, params, Mode::EVAL).argmax(1, false);
        correct += predicted.eq_tensor(&batch.labels).sum(Kind::Int64).int64_value(&[]);
    }
    if nodes.is_empty() {
        return f64::NAN;
    }
    correct as f64 / nodes.len() as f64
}

/// Accuracies on the three splits of `graph` by [`sampled_accuracy`].
pub fn sampled_accuracies(
    spec: &ArchSpec,
    params: &ParamMap,
    g: &GraphTensors,
    graph: &Graph,
    minibatch: &Minibatch,
    seed: u64,
) -> model::Accuracies {
    let sampler = Sampler::new(graph, spec);
    let on = |nodes: &[i64]| sampled_accuracy(spec, params, g, &sampler, nodes, minibatch, seed);
    model::Accuracies { train: on(&graph.train), val: on(&graph.val), test: on(&graph.test) }
}
