//! Architecture descriptions and the PyG-compatible parameter layout they imply.

use std::collections::BTreeMap;

use anyhow::{bail, Result};
use serde::{Deserialize, Serialize};
use tch::{Device, Kind, Tensor};

/// Named parameters (and batch-norm buffers) of one model, keyed as in a PyG state dict.
pub type ParamMap = BTreeMap<String, Tensor>;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Arch {
    Gcn,
    Sage,
    /// A stack of PyG `GATConv` layers (or DGL's stock `GATConv`).
    Gat,
    /// The paper's reference GAT (`models.GAT` of its code, DGL's ogbn-arxiv GAT): per layer a
    /// `GATConv` with a residual `dst_fc`, attention from its own linear maps of the input, then
    /// batch norm without running statistics, ReLU and dropout; a final linear `pred_linear`.
    #[serde(rename = "paper-gat")]
    #[value(name = "paper-gat")]
    PaperGat,
}

impl Arch {
    pub fn name(self) -> &'static str {
        match self {
            Arch::Gcn => "gcn",
            Arch::Sage => "sage",
            Arch::Gat => "gat",
            Arch::PaperGat => "paper-gat",
        }
    }

    /// Whether its layers attend over edges (GAT-like: multi-head, no first-layer shortcut).
    pub fn attends(self) -> bool {
        matches!(self, Arch::Gat | Arch::PaperGat)
    }

    /// The architecture whose row of the paper's souping table applies: the paper's GAT rows
    /// were measured on its own GAT.
    pub fn paper_family(self) -> Arch {
        match self {
            Arch::PaperGat => Arch::Gat,
            a => a,
        }
    }
}

/// The nonlinearity between layers.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize, clap::ValueEnum,
)]
#[serde(rename_all = "lowercase")]
pub enum Activation {
    /// gnn-soup's own models, OGB's examples, PyG's GCN and GraphSAGE examples, the paper's.
    #[default]
    Relu,
    /// GAT examples, DGL's (`activation=F.elu` inside each hidden `GATConv`) and PyG's.
    Elu,
}

impl Activation {
    fn is_relu(&self) -> bool {
        *self == Activation::Relu
    }
}

/// Dropout rates other than the one between layers, where a model has them.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct Dropouts {
    /// On the input features (None: the model's `dropout`). The paper's GAT: `input_drop`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input: Option<f64>,
    /// On attention coefficients (None: the model's `dropout`, as PyG's `GATConv(dropout=p)`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attention: Option<f64>,
    /// Fraction of edges left out of each attention softmax (the paper's GAT: `edge_drop`).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub edge: f64,
}

impl Dropouts {
    fn is_default(&self) -> bool {
        *self == Dropouts::default()
    }
}

fn is_zero(x: &f64) -> bool {
    *x == 0.0
}

fn one() -> i64 {
    1
}

fn is_one(x: &i64) -> bool {
    *x == 1
}

fn is_false(b: &bool) -> bool {
    !*b
}

impl std::fmt::Display for Arch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// A model as `convs.<i>` (and `bns.<i>` between convolutions when batch norm is on).
///
/// For GAT, `hidden` is the width of each head; hidden layers concatenate `heads` heads, and the
/// output layer has one head, as in the GAT paper's transductive models.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ArchSpec {
    pub arch: Arch,
    pub in_dim: i64,
    pub hidden: i64,
    pub out_dim: i64,
    pub layers: usize,
    pub heads: i64,
    pub dropout: f64,
    pub batch_norm: bool,
    /// Divide each node's input features by their sum first (PyG's `NormalizeFeatures`), as
    /// the GCN and GAT papers do for bag-of-words features.
    #[serde(default)]
    pub row_normalize: bool,
    /// Layers whose input is not dropped (dropout is part of a model's definition: it decides
    /// what LS/PLS fit while the model stays in training mode). Empty: dropout before every
    /// layer, as gnn-soup trains and PyG's examples do; the paper's DGL GCN has `[0]`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub input_dropout_off: Vec<usize>,
    /// Whether GCN and GAT layers add a self-loop per node before aggregating, as PyG's
    /// `GCNConv`/`GATConv` do. DGL's `GraphConv`/`GATConv` (the paper's reference code) aggregate
    /// over the graph as it is, with degrees clamped at 1. SAGE never adds any.
    #[serde(default = "yes", skip_serializing_if = "is_yes")]
    pub add_self_loops: bool,
    /// Between layers.
    #[serde(default, skip_serializing_if = "Activation::is_relu")]
    pub activation: Activation,
    /// GAT: heads of the last layer, averaged (DGL's GAT examples, PyG's `concat=False`).
    #[serde(default = "one", skip_serializing_if = "is_one")]
    pub out_heads: i64,
    #[serde(default, skip_serializing_if = "Dropouts::is_default")]
    pub dropouts: Dropouts,
    /// The paper's GAT: attention logits also from the target node's own map (`attn_dst_fc`).
    #[serde(default, skip_serializing_if = "is_false")]
    pub attn_dst: bool,
}

fn yes() -> bool {
    true
}

fn is_yes(b: &bool) -> bool {
    *b
}

/// Bounds on what an architecture may claim (a checkpoint's metadata, a command line): far above
/// any real GNN, low enough that nothing is sized from a corrupt number.
const MAX_LAYERS: usize = 64;
const MAX_HEADS: i64 = 64;
const MAX_WIDTH: i64 = 1 << 24;
const MAX_PARAMETERS: i64 = 1 << 34;

/// Every dropout rate in [0, 1), or an error naming the first that is not (`names` as the caller
/// calls them: flags, or the rates' names).
pub fn check_rates<const N: usize>(rates: [(&str, Option<f64>); N]) -> Result<()> {
    for (name, rate) in rates {
        if let Some(p) = rate.filter(|p| !(0.0..1.0).contains(p)) {
            bail!("{name} must be in [0, 1), got {p}");
        }
    }
    Ok(())
}

/// What a parameter is, which decides its initialisation and how a soup treats it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParamRole {
    Weight,
    Bias,
    Attention,
    BnWeight,
    BnBias,
    RunningMean,
    RunningVar,
    BatchCount,
}

impl ParamRole {
    /// Batch-norm running statistics: buffers, not trained by gradient.
    pub fn is_buffer(self) -> bool {
        matches!(self, ParamRole::RunningMean | ParamRole::RunningVar | ParamRole::BatchCount)
    }
}

#[derive(Debug, Clone)]
pub struct ParamInfo {
    pub name: String,
    pub shape: Vec<i64>,
    pub role: ParamRole,
    /// The conv/bn layer index this parameter belongs to.
    pub layer: usize,
}

/// One convolution's shape.
#[derive(Debug, Clone, Copy)]
pub struct ConvDims {
    pub input: i64,
    /// Channels per head.
    pub out: i64,
    pub heads: i64,
    pub concat: bool,
}

impl ConvDims {
    pub fn output_width(&self) -> i64 {
        if self.concat {
            self.out * self.heads
        } else {
            self.out
        }
    }
}

impl ArchSpec {
    /// `layers` 2 of width 16 (one head), dropout 0.5 on every layer's input, no batch norm,
    /// PyG's self-loops, ReLU: a starting point that tests and examples change field by field.
    pub fn plain(arch: Arch, in_dim: i64, out_dim: i64) -> ArchSpec {
        ArchSpec {
            arch,
            in_dim,
            hidden: 16,
            out_dim,
            layers: 2,
            heads: 1,
            dropout: 0.5,
            batch_norm: false,
            row_normalize: false,
            input_dropout_off: vec![],
            add_self_loops: true,
            activation: Default::default(),
            out_heads: 1,
            dropouts: Default::default(),
            attn_dst: false,
        }
    }

    /// Checks the description before anything is sized from it (it may come from a file): counts
    /// within sane bounds, and the parameter count computed without overflow.
    pub fn validate(&self) -> Result<()> {
        if self.layers == 0 {
            bail!("a model needs at least one layer");
        }
        if self.layers > MAX_LAYERS {
            bail!("{} layers: more than the {MAX_LAYERS} a GNN can sensibly have", self.layers);
        }
        if self.in_dim <= 0 || self.out_dim <= 0 || self.hidden <= 0 || self.heads <= 0 {
            bail!("input, output, hidden and head counts must be positive");
        }
        if [self.in_dim, self.out_dim, self.hidden].iter().any(|&d| d > MAX_WIDTH)
            || self.heads > MAX_HEADS
        {
            bail!("widths above {MAX_WIDTH} or more than {MAX_HEADS} heads (in {}, hidden {}, out {}, heads {})", self.in_dim, self.hidden, self.out_dim, self.heads);
        }
        let widest = self
            .hidden
            .checked_mul(self.heads)
            .and_then(|w| w.max(self.in_dim).checked_mul(w.max(self.out_dim)));
        match widest.and_then(|per_layer| per_layer.checked_mul(self.layers as i64)) {
            Some(n) if n <= MAX_PARAMETERS => {}
            _ => bail!(
                "about {} parameters or more: more than the {MAX_PARAMETERS} this tool handles",
                widest.unwrap_or(i64::MAX)
            ),
        }
        if !(1..=MAX_HEADS).contains(&self.out_heads) {
            bail!("the last layer's heads must be 1 to {MAX_HEADS}, got {}", self.out_heads);
        }
        if self.out_heads != 1 && self.arch != Arch::Gat {
            bail!(
                "only a GAT averages several heads in its last layer ({} has {} there)",
                self.arch,
                self.out_heads
            );
        }
        let d = &self.dropouts;
        check_rates([
            ("dropout", Some(self.dropout)),
            ("input dropout", d.input),
            ("attention dropout", d.attention),
            ("edge dropout", Some(d.edge)),
        ])?;
        self.check_options()?;
        if let Some(l) = self.input_dropout_off.iter().find(|&&l| l >= self.layers) {
            bail!(
                "input dropout turned off for layer {l}, but the model has {} layers",
                self.layers
            );
        }
        Ok(())
    }

    /// Refuses what this architecture would silently not do: options only some models have.
    pub fn check_options(&self) -> Result<()> {
        let paper_gat = self.arch == Arch::PaperGat;
        if paper_gat && !self.batch_norm {
            bail!("the paper's GAT has batch norm after every layer");
        }
        if self.dropouts.edge > 0.0 && !paper_gat {
            bail!("edge dropout is part of the paper's GAT (paper-gat), not of {}", self.arch);
        }
        if self.dropouts.attention.is_some() && !self.arch.attends() {
            bail!("attention dropout is part of GAT models, not of {}", self.arch);
        }
        if self.attn_dst && !paper_gat {
            bail!(
                "target attention (attn_dst_fc) is part of the paper's GAT (paper-gat), not of {}",
                self.arch
            );
        }
        Ok(())
    }

    /// The graph convolutions' shapes. The paper's GAT keeps every convolution hidden-wide
    /// (its classes come from `pred_linear` after them); the others end in the classes.
    pub fn conv_dims(&self) -> Vec<ConvDims> {
        let heads = if self.arch.attends() { self.heads } else { 1 };
        let mut dims = Vec::with_capacity(self.layers);
        let mut input = self.in_dim;
        for i in 0..self.layers {
            let last = i + 1 == self.layers && self.arch != Arch::PaperGat;
            let d = if last {
                ConvDims {
                    input,
                    out: self.out_dim,
                    heads: if self.arch == Arch::Gat { self.out_heads } else { 1 },
                    concat: false,
                }
            } else {
                ConvDims { input, out: self.hidden, heads, concat: true }
            };
            input = d.output_width();
            dims.push(d);
        }
        dims
    }

    /// Every tensor of the model with its PyG name and shape, in a fixed order.
    pub fn params(&self) -> Vec<ParamInfo> {
        let mut out = Vec::new();
        let mut push = |name: String, shape: Vec<i64>, role: ParamRole, layer: usize| {
            out.push(ParamInfo { name, shape, role, layer })
        };
        let dims = self.conv_dims();
        if self.arch == Arch::PaperGat {
            // Defined by the reference model, never used by its forward; kept so that a soup
            // exports to a state dict the model loads.
            push(
                "node_encoder.weight".into(),
                vec![self.hidden, self.in_dim],
                ParamRole::Weight,
                0,
            );
            push("node_encoder.bias".into(), vec![self.hidden], ParamRole::Bias, 0);
        }
        for (i, d) in dims.iter().enumerate() {
            let c = format!("convs.{i}");
            match self.arch {
                Arch::Gcn => {
                    push(format!("{c}.lin.weight"), vec![d.out, d.input], ParamRole::Weight, i);
                    push(format!("{c}.bias"), vec![d.out], ParamRole::Bias, i);
                }
                Arch::Sage => {
                    push(format!("{c}.lin_l.weight"), vec![d.out, d.input], ParamRole::Weight, i);
                    push(format!("{c}.lin_l.bias"), vec![d.out], ParamRole::Bias, i);
                    push(format!("{c}.lin_r.weight"), vec![d.out, d.input], ParamRole::Weight, i);
                }
                Arch::Gat => {
                    push(format!("{c}.att_src"), vec![1, d.heads, d.out], ParamRole::Attention, i);
                    push(format!("{c}.att_dst"), vec![1, d.heads, d.out], ParamRole::Attention, i);
                    push(format!("{c}.bias"), vec![d.output_width()], ParamRole::Bias, i);
                    push(
                        format!("{c}.lin.weight"),
                        vec![d.heads * d.out, d.input],
                        ParamRole::Weight,
                        i,
                    );
                }
                Arch::PaperGat => {
                    let width = d.heads * d.out;
                    push(format!("{c}.src_fc.weight"), vec![width, d.input], ParamRole::Weight, i);
                    push(format!("{c}.dst_fc.weight"), vec![width, d.input], ParamRole::Weight, i);
                    push(format!("{c}.dst_fc.bias"), vec![width], ParamRole::Bias, i);
                    push(
                        format!("{c}.attn_src_fc.weight"),
                        vec![d.heads, d.input],
                        ParamRole::Attention,
                        i,
                    );
                    if self.attn_dst {
                        push(
                            format!("{c}.attn_dst_fc.weight"),
                            vec![d.heads, d.input],
                            ParamRole::Attention,
                            i,
                        );
                    }
                    // BatchNorm1d(track_running_stats=False): no buffers.
                    push(format!("norms.{i}.weight"), vec![width], ParamRole::BnWeight, i);
                    push(format!("norms.{i}.bias"), vec![width], ParamRole::BnBias, i);
                    continue;
                }
            }
            if self.batch_norm && i + 1 < dims.len() {
                let b = format!("bns.{i}");
                let w = d.output_width();
                push(format!("{b}.weight"), vec![w], ParamRole::BnWeight, i);
                push(format!("{b}.bias"), vec![w], ParamRole::BnBias, i);
                push(format!("{b}.running_mean"), vec![w], ParamRole::RunningMean, i);
                push(format!("{b}.running_var"), vec![w], ParamRole::RunningVar, i);
                push(format!("{b}.num_batches_tracked"), vec![], ParamRole::BatchCount, i);
            }
        }
        if self.arch == Arch::PaperGat {
            let width = self.hidden * self.heads;
            push(
                "pred_linear.weight".into(),
                vec![self.out_dim, width],
                ParamRole::Weight,
                self.layers,
            );
            push("pred_linear.bias".into(), vec![self.out_dim], ParamRole::Bias, self.layers);
        }
        out
    }

    /// Whether batch norm keeps running statistics for inference (the paper's GAT's does not:
    /// it normalises with the batch's statistics in evaluation too).
    pub fn has_running_stats(&self) -> bool {
        self.batch_norm && self.arch != Arch::PaperGat
    }

    /// The dropout rate on layer `layer`'s input in training (0: none). The paper's GAT drops
    /// its features at `input_drop` and, after each layer's activation, at `dropout` (so the
    /// input of `pred_linear`, "layer" `layers`, is dropped too).
    pub fn input_dropout(&self, layer: usize) -> f64 {
        if self.input_dropout_off.contains(&layer) {
            0.0
        } else if layer == 0 {
            self.dropouts.input.unwrap_or(self.dropout)
        } else {
            self.dropout
        }
    }

    /// The dropout rate on attention coefficients in training.
    pub fn attention_dropout(&self) -> f64 {
        self.dropouts.attention.unwrap_or(self.dropout)
    }

    /// Fresh weights, initialised as PyG does (Glorot for conv weights and attention, zeros for
    /// biases, identity batch norm), from `seed` alone.
    pub fn init(&self, seed: i64, device: Device) -> ParamMap {
        use rand::distributions::{Distribution, Uniform};
        let mut rng = <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(seed as u64);
        let _guard = tch::no_grad_guard();
        let mut map = ParamMap::new();
        for p in self.params() {
            let t = match p.role {
                ParamRole::Weight | ParamRole::Attention => {
                    // glorot: U(-a, a), a = sqrt(6 / (fan_in + fan_out)) over the last two dims
                    let n = p.shape.len();
                    let a = (6.0 / (p.shape[n - 2] + p.shape[n - 1]) as f64).sqrt();
                    let u = Uniform::new_inclusive(-a as f32, a as f32);
                    let values: Vec<f32> =
                        (0..p.shape.iter().product::<i64>()).map(|_| u.sample(&mut rng)).collect();
                    Tensor::from_slice(&values).view(p.shape.as_slice()).to_device(device)
                }
                ParamRole::Bias | ParamRole::BnBias | ParamRole::RunningMean => {
                    Tensor::zeros(p.shape.as_slice(), (Kind::Float, device))
                }
                ParamRole::BnWeight | ParamRole::RunningVar => {
                    Tensor::ones(p.shape.as_slice(), (Kind::Float, device))
                }
                ParamRole::BatchCount => Tensor::zeros(p.shape.as_slice(), (Kind::Int64, device)),
            };
            map.insert(p.name, t);
        }
        map
    }

    pub fn num_parameters(&self) -> i64 {
        self.params()
            .iter()
            .filter(|p| !p.role.is_buffer())
            .map(|p| p.shape.iter().product::<i64>())
            .sum()
    }

    /// Whether dropout (in training mode) applies to layer `layer`'s input.
    pub fn drops_input(&self, layer: usize) -> bool {
        self.input_dropout(layer) > 0.0
    }

    /// Whether anything random happens in training mode (dropout of any kind).
    pub fn has_dropout(&self) -> bool {
        // The paper's GAT also drops the input of its final linear layer, "layer" `layers`.
        let inputs = if self.arch == Arch::PaperGat { self.layers + 1 } else { self.layers };
        (0..inputs).any(|l| self.drops_input(l))
            || (self.arch.attends() && self.attention_dropout() > 0.0)
            || self.dropouts.edge > 0.0
    }

    /// A one-line human description, e.g. `gcn 2x64 (1433 -> 7), dropout 0.5`.
    pub fn describe(&self) -> String {
        let mut heads =
            if self.arch.attends() { format!(", {} heads", self.heads) } else { String::new() };
        if self.out_heads != 1 {
            heads += &format!(" ({} averaged in the last layer)", self.out_heads);
        }
        if self.attn_dst {
            heads += ", target attention";
        }
        let d = &self.dropouts;
        let mut rates: Vec<String> = Vec::new();
        rates.extend(d.input.map(|p| format!("input {p}")));
        rates.extend(d.attention.map(|p| format!("attention {p}")));
        if d.edge > 0.0 {
            rates.push(format!("edges {}", d.edge));
        }
        let rates =
            if rates.is_empty() { String::new() } else { format!(" ({})", rates.join(", ")) };
        let act = if self.activation == Activation::Elu { ", ELU" } else { "" };
        let bn = match (self.batch_norm, self.has_running_stats()) {
            (true, true) => ", batch norm",
            (true, false) => ", batch norm without running statistics",
            (false, _) => "",
        };
        let norm = if self.row_normalize { ", row-normalised input" } else { "" };
        let off = if self.input_dropout_off.is_empty() {
            String::new()
        } else {
            format!(
                " (not on the input of layer {})",
                self.input_dropout_off.iter().map(|l| l.to_string()).collect::<Vec<_>>().join(", ")
            )
        };
        let loops = if self.add_self_loops || self.arch == Arch::Sage {
            ""
        } else {
            ", no self-loops added"
        };
        format!(
            "{} {}x{} ({} -> {}){heads}{act}, dropout {}{rates}{off}{bn}{norm}{loops}",
            self.arch, self.layers, self.hidden, self.in_dim, self.out_dim, self.dropout
        )
    }
}
