//! The functional forward `f(params, graph, mode) -> logits` of every architecture, matching
//! PyG's `GCNConv`, `SAGEConv` (mean) and `GATConv` layer for layer, and the paper's reference
//! GAT (its `models.GAT`) as its code computes it.
//!
//! A model is: for each layer, dropout on its input (unless the architecture turns it off for
//! that layer: [`ArchSpec::drops_input`]), the convolution, then (except after the last layer)
//! batch norm when enabled and the activation (ReLU, or ELU). The paper's GAT differs: batch
//! norm and the activation follow every layer, and a linear layer gives the classes
//! ([`paper_gat_forward`]).

use tch::{Kind, Tensor};

use super::dropout::{dropout, keep_mask};
use super::graph_tensors::GraphTensors;
use super::propagation::Propagation;
use super::sparse_ops::{bias_relu_dropout, csr_mm, csr_mm_out};
use super::spec::{Activation, Arch, ArchSpec, ConvDims, ParamMap};
use super::targets::{LayerRows, Planned, TargetPlan};

fn param<'a>(p: &'a ParamMap, name: &str) -> &'a Tensor {
    p.get(name).unwrap_or_else(|| {
        panic!("parameter {name} missing (checkpoints are validated before use)")
    })
}

/// What a forward pass does differently in training: two separate decisions, since LS/PLS may
/// fit with dropout off while batch norm keeps the batch's statistics (as the reference's model,
/// which stays in training mode, does).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mode {
    /// Dropout on layer inputs (and GAT's attention coefficients and edges) is active.
    pub dropout: bool,
    pub batch_norm: BatchNormMode,
}

/// Which statistics batch norm normalises with. Batch norm without running statistics (the
/// paper's GAT) always uses the batch's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BatchNormMode {
    /// The running statistics held in the parameters (inference).
    Running,
    /// The statistics of this pass's nodes (the whole graph, or a sampled subgraph), updating
    /// the running ones as PyTorch's training mode does (momentum 0.1).
    Batch,
    /// The batch's, and the running statistics set to them: [`recalibrate_batch_norm`].
    Recalibrate,
}

impl Mode {
    /// Training an ingredient.
    pub const TRAIN: Mode = Mode { dropout: true, batch_norm: BatchNormMode::Batch };
    /// Inference.
    pub const EVAL: Mode = Mode { dropout: false, batch_norm: BatchNormMode::Running };

    /// Whether a pass of `spec` in this mode normalises with its own rows' statistics.
    pub fn batch_statistics(&self, spec: &ArchSpec) -> bool {
        spec.batch_norm && self.batch_norm != BatchNormMode::Running
    }
}

/// Logits `[num_nodes, out_dim]` of the whole graph `g` in `mode`.
pub fn forward(spec: &ArchSpec, params: &ParamMap, g: &GraphTensors, mode: Mode) -> Tensor {
    forward_from(spec, params, g, mode, None)
}

/// As [`forward`], optionally with the first layer's weight-independent aggregation already done
/// (`A_hat X` for GCN, the neighbour mean of X for SAGE). Only exact when the first layer's input
/// dropout is inactive, which the caller guarantees.
pub fn forward_from(
    spec: &ArchSpec,
    params: &ParamMap,
    g: &GraphTensors,
    mode: Mode,
    first_aggregate: Option<&Tensor>,
) -> Tensor {
    let (input, sparse) = g.input(spec.row_normalize);
    forward_input(spec, params, g, input, sparse, mode, first_aggregate)
}

/// The logits of `g`'s last layer's targets (every node of a whole graph; a minibatch's seeds
/// for sampled blocks), given the first layer's `input` for its sources (`sparse`: a CSR matrix).
pub fn forward_input(
    spec: &ArchSpec,
    params: &ParamMap,
    g: &dyn Propagation,
    input: &Tensor,
    sparse: bool,
    mode: Mode,
    first_aggregate: Option<&Tensor>,
) -> Tensor {
    let x = if sparse {
        sparse_dropout(input, spec.input_dropout(0), mode.dropout)
    } else {
        dropout(input, spec.input_dropout(0), mode.dropout)
    };
    if spec.arch == Arch::PaperGat {
        return paper_gat_forward(spec, params, g, x, sparse, mode.dropout);
    }
    let (h, bias) = conv_unbiased(spec, params, g, 0, x, sparse, first_aggregate, mode.dropout);
    layers_after(spec, params, g, h, bias, 0, mode)
}

/// Logits at the targets of `plan` (its rows, ascending by node: score them with
/// [`TargetPlan::loss`] and [`TargetPlan::accuracy`]), in training as in inference, each layer
/// computing only the rows the targets depend on. `first_aggregate`: as [`forward_from`]'s, at the
/// plan's first-layer rows ([`TargetPlan::first_rows`]). The plan must come from `spec` and `g`;
/// with batch statistics, only a [`TargetPlan::whole`] normalises over the graph's rows.
pub fn forward_planned(
    spec: &ArchSpec,
    params: &ParamMap,
    g: &GraphTensors,
    plan: &TargetPlan,
    mode: Mode,
    first_aggregate: Option<&Tensor>,
) -> Tensor {
    assert!(
        !mode.batch_statistics(spec) || plan.layers.iter().all(Option::is_none),
        "batch statistics of a plan's rows are not the graph's"
    );
    let (input, sparse) = g.input(spec.row_normalize);
    forward_input(spec, params, &Planned { graph: g, plan }, input, sparse, mode, first_aggregate)
}

/// The output of convolution `layer` alone (before batch norm and activation). `sparse`: `x`
/// is a sparse CSR matrix (raw features of a bag-of-words dataset).
pub fn conv(
    spec: &ArchSpec,
    params: &ParamMap,
    g: &dyn Propagation,
    layer: usize,
    x: &Tensor,
    sparse: bool,
    pre: Option<&Tensor>,
) -> Tensor {
    let (out, bias) = conv_unbiased(spec, params, g, layer, x.shallow_clone(), sparse, pre, false);
    with_bias(out, bias)
}

/// As [`conv`], with the convolution's bias left to add (`None` when it is already in): a hidden
/// layer then adds it in the same pass as its ReLU ([`layers_after`]). With `dropout`, GAT also
/// drops attention coefficients at the model's dropout rate (the GAT paper's regulariser; PyG's
/// `GATConv(dropout=...)`).
///
/// Takes its input by value so that it can be freed as soon as it is no longer needed: full-graph
/// inference then holds about two activations at a time instead of three.
#[allow(clippy::too_many_arguments)] // one layer's inputs; a struct would only rename them
fn conv_unbiased<'p>(
    spec: &ArchSpec,
    params: &'p ParamMap,
    g: &dyn Propagation,
    layer: usize,
    x: Tensor,
    sparse: bool,
    pre: Option<&Tensor>,
    dropout: bool,
) -> (Tensor, Option<&'p Tensor>) {
    let x = Input { x, sparse };
    let attention_dropout = if dropout { spec.attention_dropout() } else { 0.0 };
    match spec.arch {
        Arch::Gcn => gcn_conv(params, layer, g, spec.add_self_loops, x, pre),
        Arch::Sage => sage_conv(params, layer, g, x, pre),
        Arch::Gat => (
            gat_conv(
                params,
                layer,
                g,
                spec.add_self_loops,
                x,
                &spec.conv_dims()[layer],
                attention_dropout,
            ),
            None,
        ),
        Arch::PaperGat => (paper_gat_conv(spec, params, layer, g, x, dropout), None),
    }
}

fn with_bias(out: Tensor, bias: Option<&Tensor>) -> Tensor {
    match bias {
        Some(b) => plus(out, b),
        None => out,
    }
}

/// Whether layer `layer` has fewer output rows than input rows (a sampled block).
fn shrinks(g: &dyn Propagation, layer: usize, x: &Input) -> bool {
    g.targets(layer) < x.x.size()[0]
}

/// A layer's input, dense or sparse.
struct Input {
    x: Tensor,
    sparse: bool,
}

/// `a + b` in place, saving an activation-sized buffer (in training too: `a` is always a
/// product's fresh output, which no backward pass reads; autograd's version counters would
/// refuse the backward pass if one did). A leaf that requires a gradient cannot be changed in
/// place and is added to.
fn plus(mut a: Tensor, b: &Tensor) -> Tensor {
    if a.requires_grad() && a.is_leaf() {
        a + b
    } else {
        let _ = a.g_add_(b);
        a
    }
}

/// The activation between layers, in place under the same condition as [`plus`] (the backward
/// passes of ReLU and ELU read their output, not their input).
fn activation(spec: &ArchSpec, mut h: Tensor) -> Tensor {
    let in_place = !(h.requires_grad() && h.is_leaf());
    match (spec.activation, in_place) {
        (Activation::Relu, true) => {
            let _ = h.relu_();
            h
        }
        (Activation::Relu, false) => h.relu(),
        (Activation::Elu, true) => {
            let _ = h.elu_();
            h
        }
        (Activation::Elu, false) => h.elu(),
    }
}

impl Input {
    /// The rows of the layer's `targets` (the first ones: a block lists its targets first
    /// among its sources), for a node's own term; the input itself on a whole graph.
    fn targets(&self, targets: i64) -> Input {
        if self.x.size()[0] == targets {
            return Input { x: self.x.shallow_clone(), sparse: self.sparse };
        }
        assert!(!self.sparse, "a sampled block's input is dense");
        Input { x: self.x.narrow(0, 0, targets), sparse: false }
    }

    /// `x W^T`
    fn lin(&self, w: &Tensor) -> Tensor {
        if self.sparse {
            self.x.mm(&w.tr())
        } else {
            self.x.linear::<&Tensor>(w, None)
        }
    }
}

/// The rest of the forward pass given the output `h` of convolution `layer`.
pub fn forward_after_conv(
    spec: &ArchSpec,
    params: &ParamMap,
    g: &dyn Propagation,
    h: Tensor,
    layer: usize,
    mode: Mode,
) -> Tensor {
    layers_after(spec, params, g, h, None, layer, mode)
}

/// As [`forward_after_conv`], with convolution `layer`'s `bias` still to add to `h`.
fn layers_after<'p>(
    spec: &ArchSpec,
    params: &'p ParamMap,
    g: &dyn Propagation,
    mut h: Tensor,
    mut bias: Option<&'p Tensor>,
    mut layer: usize,
    mode: Mode,
) -> Tensor {
    while layer + 1 < spec.layers {
        let next_dropout = if mode.dropout { spec.input_dropout(layer + 1) } else { 0.0 };
        let x = match bias {
            Some(b) if fuses(spec, &h, b, next_dropout) => fused_hidden(h, b, next_dropout),
            _ => {
                let mut h = with_bias(h, bias);
                if spec.batch_norm {
                    h = batch_norm(params, layer, &h, mode.batch_norm);
                }
                let h = activation(spec, h);
                dropout(&h, next_dropout, true)
            }
        };
        layer += 1;
        (h, bias) = conv_unbiased(spec, params, g, layer, x, false, None, mode.dropout);
    }
    with_bias(h, bias)
}

/// Whether a hidden layer's bias, ReLU and the next layer's input dropout (at rate `p`) can run
/// as one pass ([`bias_relu_dropout`]): on CPU, in float, without batch norm between. The
/// environment variable `GNN_SOUP_UNFUSED` (any value) turns it off, for comparisons.
fn fuses(spec: &ArchSpec, h: &Tensor, bias: &Tensor, p: f64) -> bool {
    static UNFUSED: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    let cpu_float = |t: &Tensor| t.device() == tch::Device::Cpu && t.kind() == Kind::Float;
    spec.activation == Activation::Relu
        && !spec.batch_norm
        && p < 1.0
        && cpu_float(h)
        && cpu_float(bias)
        && h.dim() == 2
        && !*UNFUSED.get_or_init(|| std::env::var_os("GNN_SOUP_UNFUSED").is_some())
}

/// `dropout(relu(h + b), p)` in one pass; the mask drawn as [`dropout`] draws it, so the result
/// is the unfused one's.
fn fused_hidden(h: Tensor, b: &Tensor, p: f64) -> Tensor {
    if p <= 0.0 {
        return bias_relu_dropout(&h, b, None, 1.0);
    }
    let mask = keep_mask(&h.size(), p);
    bias_relu_dropout(&h, b, Some(&mask), 1.0 / (1.0 - p))
}

/// The first layer's aggregation that does not depend on weights, for [`forward_from`].
pub fn first_aggregate(spec: &ArchSpec, g: &GraphTensors) -> Option<Tensor> {
    let _guard = tch::no_grad_guard();
    match spec.arch {
        Arch::Gcn => Some(g.gcn_propagate(spec.add_self_loops, g.features(spec.row_normalize))),
        Arch::Sage => Some(g.mean_aggregate(g.features(spec.row_normalize))),
        Arch::Gat | Arch::PaperGat => None,
    }
}

/// Whether the first convolution's output is linear in its weights (so a convex combination of
/// weights gives the same combination of outputs): true for GCN and SAGE, not GAT (attention).
pub fn first_conv_is_linear(spec: &ArchSpec) -> bool {
    !spec.arch.attends()
}

/// Inverted dropout on a sparse CSR matrix: only stored values are dropped (zeros would stay
/// zero anyway), one random draw per non-zero instead of per entry.
fn sparse_dropout(x: &Tensor, p: f64, train: bool) -> Tensor {
    if !train || p == 0.0 {
        return x.shallow_clone();
    }
    let values = dropout(&x.values(), p, true);
    Tensor::sparse_csr_tensor_crow_col_value_size(
        &x.crow_indices(),
        &x.col_indices(),
        &values,
        x.size(),
        (x.kind(), x.device()),
    )
}

fn gcn_conv<'p>(
    p: &'p ParamMap,
    i: usize,
    g: &dyn Propagation,
    add_self_loops: bool,
    x: Input,
    pre: Option<&Tensor>,
) -> (Tensor, Option<&'p Tensor>) {
    let w = param(p, &format!("convs.{i}.lin.weight"));
    let b = param(p, &format!("convs.{i}.bias"));
    // A (X W^T) = (A X) W^T: aggregate on whichever side is narrower; on a sampled block,
    // whose targets are a fraction of its sources, aggregating first maps fewer rows.
    let out = match pre {
        Some(ax) => ax.linear::<&Tensor>(w, None),
        None if x.sparse || (w.size()[0] <= w.size()[1] && !shrinks(g, i, &x)) => {
            let xw = x.lin(w);
            drop(x);
            g.propagate_gcn(i, add_self_loops, &xw)
        }
        None => {
            let ax = g.propagate_gcn(i, add_self_loops, &x.x);
            drop(x);
            ax.linear::<&Tensor>(w, None)
        }
    };
    (out, Some(b))
}

fn sage_conv<'p>(
    p: &'p ParamMap,
    i: usize,
    g: &dyn Propagation,
    x: Input,
    pre: Option<&Tensor>,
) -> (Tensor, Option<&'p Tensor>) {
    let wl = param(p, &format!("convs.{i}.lin_l.weight"));
    let bl = param(p, &format!("convs.{i}.lin_l.bias"));
    let wr = param(p, &format!("convs.{i}.lin_r.weight"));
    let root = match g.own_rows(i) {
        // A sparse input's rows cannot be taken cheaply: its root term is mapped whole.
        Some(own) if x.sparse => x.lin(wr).index_select(0, own),
        Some(own) => x.x.index_select(0, own).linear::<&Tensor>(wr, None),
        None => x.targets(g.targets(i)).lin(wr),
    };
    let neigh = match pre {
        Some(mx) => mx.linear::<&Tensor>(wl, None),
        None if x.sparse || (wl.size()[0] < wl.size()[1] && !shrinks(g, i, &x)) => {
            g.aggregate_mean(i, &x.lin(wl))
        }
        None => g.aggregate_mean(i, &x.x).linear::<&Tensor>(wl, None),
    };
    drop(x);
    (plus(neigh, &root), Some(bl))
}

fn gat_conv(
    p: &ParamMap,
    i: usize,
    g: &dyn Propagation,
    add_self_loops: bool,
    x: Input,
    d: &ConvDims,
    attention_dropout: f64,
) -> Tensor {
    let w = param(p, &format!("convs.{i}.lin.weight"));
    let att_src = param(p, &format!("convs.{i}.att_src"));
    let att_dst = param(p, &format!("convs.{i}.att_dst"));
    let bias = param(p, &format!("convs.{i}.bias"));
    let (heads, ch) = (d.heads, d.out);
    let n = g.targets(i);
    let h = x.lin(w).view([-1, heads, ch]);
    drop(x);
    let a_src = (&h * att_src).sum_dim_intlist(-1, false, Kind::Float); // [sources, H]
    let a_dst = (&h.narrow(0, 0, n) * att_dst).sum_dim_intlist(-1, false, Kind::Float);
    let (src, dst) = g.attention_edges(i, add_self_loops);
    let (src, dst) = (&src, &dst);
    let e = a_src.index_select(0, src) + a_dst.index_select(0, dst); // [E, H]
    let out = attend(&h, e, src, dst, n, attention_dropout);
    let out =
        if d.concat { out.view([n, heads * ch]) } else { out.mean_dim(1, false, Kind::Float) };
    plus(out, bias)
}

/// The paper's GAT (its `models.GAT`), given its input `x` after input dropout: per layer its
/// `GATConv` ([`paper_gat_conv`]), batch norm with the statistics of the nodes at hand (it keeps
/// no running ones: in evaluation too), the activation, dropout; then `pred_linear`.
fn paper_gat_forward(
    spec: &ArchSpec,
    params: &ParamMap,
    g: &dyn Propagation,
    x: Tensor,
    sparse: bool,
    dropout_on: bool,
) -> Tensor {
    let mut h = x;
    for i in 0..spec.layers {
        let out = paper_gat_conv(
            spec,
            params,
            i,
            g,
            Input { x: h, sparse: sparse && i == 0 },
            dropout_on,
        );
        let (w, b) = (
            param(params, &format!("norms.{i}.weight")),
            param(params, &format!("norms.{i}.bias")),
        );
        let normed = Tensor::batch_norm(
            &out,
            Some(w),
            Some(b),
            None::<&Tensor>,
            None::<&Tensor>,
            true,
            0.1,
            1e-5,
            false,
        );
        drop(out);
        let activated = activation(spec, normed);
        h = dropout(&activated, spec.input_dropout(i + 1), dropout_on);
    }
    h.linear(param(params, "pred_linear.weight"), Some(param(params, "pred_linear.bias")))
}

/// One layer of the paper's GAT: messages `src_fc(x)` weighted by attention over each node's
/// in-edges, attention logits `LeakyReLU_0.2(attn_src_fc(x_j) [+ attn_dst_fc(x_i)])`, softmax per
/// target; in training a fraction of edges is left out of the softmax (edge dropout) and the
/// coefficients are dropped (attention dropout); then the residual `dst_fc(x_i)` (with its bias)
/// is added. Heads flattened: `[N, heads * hidden]`.
fn paper_gat_conv(
    spec: &ArchSpec,
    p: &ParamMap,
    i: usize,
    g: &dyn Propagation,
    x: Input,
    dropout_on: bool,
) -> Tensor {
    let c = format!("convs.{i}");
    let (heads, ch, n) = (spec.heads, spec.hidden, g.targets(i));
    let h = x.lin(param(p, &format!("{c}.src_fc.weight"))).view([-1, heads, ch]);
    let own = x.targets(n);
    let residual =
        own.lin(param(p, &format!("{c}.dst_fc.weight"))) + param(p, &format!("{c}.dst_fc.bias"));
    let a_src = x.lin(param(p, &format!("{c}.attn_src_fc.weight"))); // [sources, H]
    let a_dst = spec.attn_dst.then(|| own.lin(param(p, &format!("{c}.attn_dst_fc.weight"))));
    drop((x, own));
    let (src, dst) = g.attention_edges(i, spec.add_self_loops);
    let (src, dst) = if dropout_on && spec.dropouts.edge > 0.0 {
        // The reference drops int(E * edge_drop) edges by a permutation; a Bernoulli keep mask
        // from gnn-soup's own (resumable) random stream drops as many on average.
        let keep = super::dropout::keep_mask(&[src.size()[0]], spec.dropouts.edge)
            .to_device(src.device())
            .nonzero()
            .view([-1]);
        (src.index_select(0, &keep), dst.index_select(0, &keep))
    } else {
        (src, dst)
    };
    let mut e = a_src.index_select(0, &src);
    if let Some(a_dst) = &a_dst {
        // Out of place on purpose: `e` is in the autograd graph of the mixing weights.
        #[allow(clippy::assign_op_pattern)]
        {
            e = e + a_dst.index_select(0, &dst);
        }
    }
    let attention_dropout = if dropout_on { spec.attention_dropout() } else { 0.0 };
    let out = attend(&h, e, &src, &dst, n, attention_dropout).view([n, heads * ch]);
    plus(out, &residual)
}

/// Attention over each node's in-edges `src -> dst`, as both GATs compute it: LeakyReLU(0.2) of
/// the edge scores `e` `[E, H]`, a softmax over each target's edges, attention dropout, and the
/// sum of the messages `h[src]` (`h`: `[sources, H, C]`) weighted by it: `[n, H, C]` for the
/// `n` targets.
fn attend(
    h: &Tensor,
    e: Tensor,
    src: &Tensor,
    dst: &Tensor,
    n: i64,
    attention_dropout: f64,
) -> Tensor {
    let e = e.maximum(&(&e * 0.2));
    let alpha = dropout(&segment_softmax(&e, dst, n), attention_dropout, attention_dropout > 0.0);
    let msg = h.index_select(0, src) * alpha.unsqueeze(-1); // [E, H, C]
    let size = h.size();
    Tensor::zeros([n, size[1], size[2]], (h.kind(), h.device())).index_add(0, dst, &msg)
}

/// Softmax of edge scores `[E, H]` over the edges that share a target, as PyG's `softmax`
/// (the per-target maximum is subtracted, detached, for stability).
fn segment_softmax(e: &Tensor, index: &Tensor, n: i64) -> Tensor {
    let heads = e.size()[1];
    let max = Tensor::full([n, heads], f64::NEG_INFINITY, (Kind::Float, e.device())).index_reduce(
        0,
        index,
        &e.detach(),
        "amax",
        false,
    );
    let ex = (e - max.index_select(0, index)).exp();
    let sum = Tensor::zeros([n, heads], (Kind::Float, e.device())).index_add(0, index, &ex);
    ex / (sum.index_select(0, index) + 1e-16)
}

/// Batch norm `bns.<i>` (PyTorch's `BatchNorm1d`, eps 1e-5). With the batch's statistics it
/// updates the running ones in place, as a module in training mode does; they must then not
/// require a gradient (a soup mixes them without one: [`crate::soup::IngredientStack::mix`]).
fn batch_norm(p: &ParamMap, i: usize, x: &Tensor, mode: BatchNormMode) -> Tensor {
    let name = |s: &str| format!("bns.{i}.{s}");
    let (w, b) = (param(p, &name("weight")), param(p, &name("bias")));
    let (mean, var) = (param(p, &name("running_mean")), param(p, &name("running_var")));
    let momentum = match mode {
        BatchNormMode::Running => {
            return Tensor::batch_norm(
                x,
                Some(w),
                Some(b),
                Some(mean),
                Some(var),
                false,
                0.1,
                1e-5,
                false,
            )
        }
        BatchNormMode::Batch => 0.1,
        BatchNormMode::Recalibrate => 1.0,
    };
    {
        let _g = tch::no_grad_guard();
        let _ = param(p, &name("num_batches_tracked")).shallow_clone().g_add_scalar_(1);
    }
    Tensor::batch_norm(x, Some(w), Some(b), Some(mean), Some(var), true, momentum, 1e-5, false)
}

/// Sets the running statistics in `params` (in place) to those of the model's own activations
/// on the whole graph `g`, without dropout. A soup's mixed running statistics are a convex
/// combination of its ingredients', not the statistics of the soup's activations: after LS or PLS
/// fitted the weights with batch statistics, this makes inference normalise as the fit did (on
/// Cora, OGB's GCN with batch norm: LS val 72.4% with mixed statistics, under its ingredients'
/// mean, tests/zoo.rs). Nothing to do for models without running statistics.
pub fn recalibrate_batch_norm(spec: &ArchSpec, params: &ParamMap, g: &GraphTensors) {
    if spec.has_running_stats() {
        let _ = tch::no_grad(|| {
            forward(
                spec,
                params,
                g,
                Mode { dropout: false, batch_norm: BatchNormMode::Recalibrate },
            )
        });
    }
}

/// Rows per block of full-graph inference: a block's temporary is then 16 MiB at 256 features,
/// and each product stays large enough to keep every core busy.
pub const INFERENCE_BLOCK_ROWS: i64 = 16_384;

/// Inference-mode logits of the whole graph (no dropout, running batch-norm statistics, no
/// autograd), computed as PyG's and DGL's large-graph inference does: layer by layer, each
/// layer's output filled in blocks of rows, so that at most one layer's input and output (and
/// one block's temporaries) are held, whatever the graph's size. GAT, whose attention runs over
/// edges, takes the whole-graph [`forward`].
pub fn infer(spec: &ArchSpec, params: &ParamMap, g: &GraphTensors) -> Tensor {
    infer_in_blocks(spec, params, g, None, INFERENCE_BLOCK_ROWS)
}

/// [`infer`] with a chosen block size (tests use small blocks to cross many block edges).
pub fn infer_in_blocks(
    spec: &ArchSpec,
    params: &ParamMap,
    g: &GraphTensors,
    first_conv: Option<Tensor>,
    block_rows: i64,
) -> Tensor {
    infer_rows(spec, params, g, first_conv, block_rows, None)
}

/// Inference-mode logits at the targets of `plan` only (its rows, ascending by node; score them
/// with [`TargetPlan::accuracy`]), computing at each layer only the rows the targets depend on.
/// `first_conv`: the first convolution's output (before batch norm and activation) for every
/// node, where the caller has it (GIS forms it by interpolation).
pub fn infer_targets(
    spec: &ArchSpec,
    params: &ParamMap,
    g: &GraphTensors,
    plan: &TargetPlan,
    first_conv: Option<Tensor>,
) -> Tensor {
    infer_rows(spec, params, g, first_conv, INFERENCE_BLOCK_ROWS, Some(plan))
}

fn infer_rows(
    spec: &ArchSpec,
    params: &ParamMap,
    g: &GraphTensors,
    first_conv: Option<Tensor>,
    block_rows: i64,
    plan: Option<&TargetPlan>,
) -> Tensor {
    let _guard = tch::no_grad_guard();
    if spec.arch.attends() {
        assert!(
            plan.is_none_or(|p| p.layers.iter().all(Option::is_none)),
            "attention is inferred over the whole graph"
        );
        return match first_conv {
            // Only GCN and SAGE are given a first convolution (first_conv_is_linear); a GAT's
            // would be, the paper's GAT's could not (its layers end in pred_linear).
            Some(h) => {
                assert!(
                    spec.arch == Arch::Gat,
                    "{} takes no precomputed first convolution",
                    spec.arch
                );
                forward_after_conv(spec, params, g, h, 0, Mode::EVAL)
            }
            None => forward(spec, params, g, Mode::EVAL),
        };
    }
    let rows = |layer: usize| plan.and_then(|p| p.layers[layer].as_ref());
    let mut h = match first_conv {
        Some(h) => {
            let h = match rows(0) {
                Some(r) => h.index_select(0, &r.nodes),
                None => h,
            };
            for (start, len) in blocks(h.size()[0], block_rows) {
                let _ = activate(spec, params, 0, h.narrow(0, start, len));
            }
            h
        }
        None => {
            let (input, sparse) = g.input(spec.row_normalize);
            layer_in_blocks(spec, params, g, 0, input, sparse, block_rows, rows(0))
        }
    };
    for layer in 1..spec.layers {
        h = layer_in_blocks(spec, params, g, layer, &h, false, block_rows, rows(layer));
    }
    h
}

/// `(start, len)` of each block of `block_rows` rows covering `n` rows.
fn blocks(n: i64, block_rows: i64) -> impl Iterator<Item = (i64, i64)> {
    let step = block_rows.max(1);
    (0..n).step_by(step as usize).map(move |start| (start, step.min(n - start)))
}

/// Batch norm and ReLU after convolution `layer` (none after the last), in place on `h`.
fn activate(spec: &ArchSpec, params: &ParamMap, layer: usize, mut h: Tensor) -> Tensor {
    if layer + 1 < spec.layers {
        if spec.batch_norm {
            let normed = batch_norm(params, layer, &h, BatchNormMode::Running);
            h.copy_(&normed);
        }
        return activation(spec, h);
    }
    h
}

/// Layer `layer` of inference (convolution, then batch norm and ReLU unless it is the last)
/// for the whole graph, or for the rows `only` names, its output filled a block of rows at a
/// time. A block needs all of its rows' in-neighbours, so the layer's input stays whole. Where
/// the layer narrows (its output is smaller than its input) or the input is sparse, the input's
/// linear map is taken once for all rows first; otherwise each block aggregates its rows'
/// neighbours first.
#[allow(clippy::too_many_arguments)] // one layer's inputs; a struct would only rename them
fn layer_in_blocks(
    spec: &ArchSpec,
    params: &ParamMap,
    g: &GraphTensors,
    layer: usize,
    x: &Tensor,
    sparse: bool,
    block_rows: i64,
    only: Option<&LayerRows>,
) -> Tensor {
    let input = Input { x: x.shallow_clone(), sparse };
    let n = only.map_or(g.num_nodes, LayerRows::len);
    // The block's rows of the layer's operator, and of a tensor over the input's rows holding
    // each output row's own term (GraphSAGE's root).
    let operator_rows = |start: i64, len: i64| match only {
        Some(r) => r.operator.rows(start, len),
        None if spec.arch == Arch::Gcn => g.gcn_rows(spec.add_self_loops, start, len),
        None => g.mean_rows(start, len),
    };
    let own_rows = |t: &Tensor, start: i64, len: i64| match only.and_then(|r| r.own_rows.as_ref()) {
        Some(at) => t.index_select(0, &at.narrow(0, start, len)),
        None => t.narrow(0, start, len),
    };
    // Each block is written straight into its rows of the output (a contiguous view).
    match spec.arch {
        Arch::Gcn => {
            let w = param(params, &format!("convs.{layer}.lin.weight"));
            let b = param(params, &format!("convs.{layer}.bias"));
            let out = Tensor::empty([n, w.size()[0]], (Kind::Float, g.device));
            // Mapped whole only where that is smaller than the input (not merely as small:
            // the mapped copy would be a third activation-sized buffer).
            let mapped = (w.size()[0] < w.size()[1] || sparse).then(|| input.lin(w));
            for (start, len) in blocks(n, block_rows) {
                let rows = out.narrow(0, start, len);
                let a = operator_rows(start, len);
                match &mapped {
                    Some(xw) => csr_mm_out(&rows, &a, xw),
                    None => {
                        let _ = csr_mm(&a, x).linear_out::<&Tensor>(&rows, w, None);
                    }
                }
                let _ = activate(spec, params, layer, plus(rows, b));
            }
            out
        }
        Arch::Sage => {
            let wl = param(params, &format!("convs.{layer}.lin_l.weight"));
            let bl = param(params, &format!("convs.{layer}.lin_l.bias"));
            let wr = param(params, &format!("convs.{layer}.lin_r.weight"));
            let out = Tensor::empty([n, wl.size()[0]], (Kind::Float, g.device));
            let mapped = (wl.size()[0] < wl.size()[1] || sparse).then(|| input.lin(wl));
            // Rows of a sparse input cannot be taken cheaply: its root term is mapped whole.
            let root = sparse.then(|| input.lin(wr));
            for (start, len) in blocks(n, block_rows) {
                let rows = out.narrow(0, start, len);
                let m = operator_rows(start, len);
                match &mapped {
                    Some(xw) => csr_mm_out(&rows, &m, xw),
                    None => {
                        let _ = csr_mm(&m, x).linear_out::<&Tensor>(&rows, wl, None);
                    }
                }
                let mut rows = plus(rows, bl);
                let _ = match &root {
                    Some(r) => rows.g_add_(&own_rows(r, start, len)),
                    None => rows.addmm_(&own_rows(x, start, len), &wr.tr()),
                };
                let _ = activate(spec, params, layer, rows);
            }
            out
        }
        Arch::Gat | Arch::PaperGat => unreachable!("GAT infers over the whole graph"),
    }
}

/// Fraction of `idx` nodes whose arg-max logit is the label.
pub fn accuracy(logits: &Tensor, labels: &Tensor, idx: &Tensor) -> f64 {
    super::targets::accuracy_at(logits, idx, labels, idx)
}

/// Mean cross-entropy over the `idx` nodes.
pub fn loss(logits: &Tensor, labels: &Tensor, idx: &Tensor) -> Tensor {
    super::targets::loss_at(logits, idx, labels, idx)
}

/// Accuracies of one model on the three splits.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Accuracies {
    pub train: f64,
    pub val: f64,
    pub test: f64,
}

/// Evaluates in inference mode (no dropout, running batch-norm statistics, no autograd).
pub fn evaluate(spec: &ArchSpec, params: &ParamMap, g: &GraphTensors) -> Accuracies {
    let logits = infer(spec, params, g);
    Accuracies {
        train: accuracy(&logits, &g.labels, &g.train_idx),
        val: accuracy(&logits, &g.labels, &g.val_idx),
        test: accuracy(&logits, &g.labels, &g.test_idx),
    }
}

/// A generated graph for tests (`csbm:...` with its own options).
#[cfg(test)]
fn test_graph(spec: &str) -> crate::data::Graph {
    let options = crate::data::DataOptions { data_dir: ".".into(), split_seed: 0, download: false };
    crate::data::load(spec, &options).unwrap()
}

#[cfg(test)]
mod placement_tests {
    use super::*;
    use crate::model::{rng, GraphTensors};

    /// In training mode, an input whose dropout the architecture turns off is used as it is: a
    /// model with every layer's input dropout off computes in training what it computes in
    /// inference (no batch norm), and one with dropout left on the hidden layer does not.
    #[test]
    fn dropout_applies_only_where_the_architecture_places_it() {
        let g = test_graph("csbm:nodes=120,train=30,val=30,test=30");
        let gt = GraphTensors::new(&g, tch::Device::Cpu);
        let mut spec = ArchSpec {
            hidden: 8,
            input_dropout_off: vec![0, 1],
            ..ArchSpec::plain(Arch::Gcn, g.num_features as i64, g.num_classes as i64)
        };
        let params = spec.init(1, tch::Device::Cpu);
        rng::seed_thread(1);
        let eval = forward(&spec, &params, &gt, Mode::EVAL);
        assert!(forward(&spec, &params, &gt, Mode::TRAIN).allclose(&eval, 1e-6, 1e-6, false));
        spec.input_dropout_off = vec![0];
        assert!(
            !forward(&spec, &params, &gt, Mode::TRAIN).allclose(&eval, 1e-6, 1e-6, false),
            "the hidden layer's input is still dropped"
        );
        assert!(spec.drops_input(1) && !spec.drops_input(0));
        assert!(spec.describe().contains("not on the input of layer 0"), "{}", spec.describe());
        spec.input_dropout_off = vec![2];
        assert!(spec.validate().is_err());
    }

    /// The training forward ends each hidden layer (bias, ReLU, the next layer's input dropout)
    /// in one pass; its logits and gradients are those of the steps done one by one with the
    /// same dropout masks.
    #[test]
    fn fused_hidden_layers_are_the_steps_one_by_one() {
        let g = test_graph("csbm:nodes=300,train=30,val=30,test=30");
        let gt = GraphTensors::new(&g, tch::Device::Cpu);
        for arch in [Arch::Gcn, Arch::Sage] {
            let spec = ArchSpec {
                hidden: 24,
                layers: 3,
                ..ArchSpec::plain(arch, g.num_features as i64, g.num_classes as i64)
            };
            let params: ParamMap = spec
                .init(2, tch::Device::Cpu)
                .into_iter()
                .map(|(k, v)| (k, v.set_requires_grad(true)))
                .collect();
            rng::seed_thread(7);
            let fused = forward(&spec, &params, &gt, Mode::TRAIN);
            rng::seed_thread(7);
            let mut x = dropout(&gt.x, spec.input_dropout(0), true);
            let mut apart = None;
            for layer in 0..spec.layers {
                let h = conv(&spec, &params, &gt, layer, &x, false, None);
                if layer + 1 == spec.layers {
                    apart = Some(h);
                    break;
                }
                x = dropout(&h.relu(), spec.input_dropout(layer + 1), true);
            }
            let apart = apart.unwrap();
            let diff = (&fused - &apart).abs().max().double_value(&[]);
            assert!(diff < 1e-5, "{arch:?}: logits differ by {diff}");
            let names: Vec<&String> = params.keys().collect();
            let leaves: Vec<&Tensor> = names.iter().map(|n| &params[*n]).collect();
            let grads = |logits: &Tensor| {
                Tensor::run_backward(
                    &[loss(logits, &gt.labels, &gt.train_idx)],
                    &leaves,
                    false,
                    false,
                )
            };
            for ((name, got), want) in names.iter().zip(grads(&fused)).zip(grads(&apart)) {
                let diff = (&got - &want).abs().max().double_value(&[]);
                assert!(diff < 1e-5, "{arch:?}: the gradient of {name} differs by {diff}");
            }
        }
    }
}

#[cfg(test)]
mod inference_tests {
    use super::*;
    use crate::model::GraphTensors;

    /// Inference in row blocks gives the whole-graph forward's logits, for GCN and SAGE, with and
    /// without batch norm, self-loops and sparse (row-normalised) input, with blocks that do not
    /// divide the node count; and from a given first convolution's output as well.
    #[test]
    fn inference_in_row_blocks_is_the_whole_graph_forward() {
        let g = test_graph("csbm:nodes=300,train=30,val=30,test=30,homophily=0.6,noise=3");
        let gt = GraphTensors::new(&g, tch::Device::Cpu);
        // Bag-of-words features, stored sparse.
        let bow = GraphTensors::from_parts(
            gt.x.gt(5.0).to_kind(Kind::Float),
            gt.labels.shallow_clone(),
            crate::model::graph_tensors::InAdjacency::from_edges(g.num_nodes, &g.src, &g.dst),
            [gt.train_idx.shallow_clone(), gt.val_idx.shallow_clone(), gt.test_idx.shallow_clone()],
            true,
        );
        assert!(bow.x_sparse.is_some() && gt.x_sparse.is_none());
        let (mut checked, mut dropout_checked, mut first_restricted) = (0, 0, 0);
        for arch in [Arch::Gcn, Arch::Sage] {
            for (batch_norm, add_self_loops, row_normalize, graph) in [
                (false, true, false, &gt),
                (true, false, false, &gt),
                (false, true, true, &bow),
                (true, true, false, &bow),
            ] {
                let spec = ArchSpec {
                    hidden: 24,
                    layers: 3,
                    batch_norm,
                    row_normalize,
                    add_self_loops,
                    ..ArchSpec::plain(arch, graph.x.size()[1], g.num_classes as i64)
                };
                let params = spec.init(3, tch::Device::Cpu);
                if batch_norm {
                    // running statistics away from 0 and 1, so that batch norm does something
                    for (name, t) in &params {
                        let value = if name.ends_with("running_mean") {
                            Tensor::randn_like(t) * 0.1
                        } else if name.ends_with("running_var") {
                            Tensor::rand_like(t) + 0.5
                        } else {
                            continue;
                        };
                        tch::no_grad(|| t.shallow_clone().copy_(&value));
                    }
                }
                let want = tch::no_grad(|| forward(&spec, &params, graph, Mode::EVAL));
                for block_rows in [7, 64, 1000] {
                    let got = infer_in_blocks(&spec, &params, graph, None, block_rows);
                    let diff = (&got - &want).abs().max().double_value(&[]);
                    assert!(diff < 1e-4, "{arch:?} bn {batch_norm} loops {add_self_loops} sparse {row_normalize}, blocks of {block_rows}: {diff}");
                }
                let (input, sparse) = graph.input(spec.row_normalize);
                let first = tch::no_grad(|| conv(&spec, &params, graph, 0, input, sparse, None));
                let diff = (infer_in_blocks(&spec, &params, graph, Some(first.copy()), 50) - &want)
                    .abs()
                    .max()
                    .double_value(&[]);
                assert!(diff < 1e-4, "{arch:?} from the first convolution: {diff}");
                check_targeted(&spec, &params, graph, &want, &first);
                let (with_dropout, first) = check_planned_training(&spec, &params, graph);
                dropout_checked += with_dropout;
                first_restricted += first;
                assert!(want.abs().max().double_value(&[]) > 1e-3, "{arch:?} bn {batch_norm} loops {add_self_loops} sparse {row_normalize}: logits are all ~0: {}", want.abs().max().double_value(&[]));
                checked += 1;
            }
        }
        assert_eq!(checked, 8);
        // (the graph is small enough that some training plans restrict only the last layer, and
        // a few targets' plans restrict every layer)
        assert!(dropout_checked > 0 && first_restricted > 0);
    }

    /// Inference at a few targets gives the whole graph's logits there, and accuracy the same,
    /// with the last layer computed at the targets only: for the validation split and for an
    /// unsorted list with a repeat.
    fn check_targeted(
        spec: &ArchSpec,
        params: &ParamMap,
        g: &GraphTensors,
        want: &Tensor,
        first: &Tensor,
    ) {
        let listed = Tensor::from_slice(&[250i64, 3, 77, 3, 120]);
        for idx in [&g.val_idx, &listed] {
            let mut nodes = Vec::<i64>::try_from(idx).unwrap();
            nodes.sort_unstable();
            nodes.dedup();
            let nodes_t = Tensor::from_slice(&nodes);
            let plan = TargetPlan::new(spec, g, idx);
            let rows = plan.rows_per_layer(g.num_nodes);
            assert_eq!(rows[spec.layers - 1], nodes.len() as i64, "{:?}: {rows:?}", spec.arch);
            assert!(rows[spec.layers - 2] < g.num_nodes, "{:?}: {rows:?}", spec.arch);
            for from_first in [false, true] {
                // (a copy: inference activates the first convolution's output in place)
                let first = from_first.then(|| first.copy());
                let got = infer_targets(spec, params, g, &plan, first);
                assert_eq!(got.size(), [nodes.len() as i64, spec.out_dim]);
                let diff = (&got - want.index_select(0, &nodes_t)).abs().max().double_value(&[]);
                assert!(
                    diff < 1e-4,
                    "{:?} at {nodes:?}, first given {from_first}: {diff}",
                    spec.arch
                );
                assert_eq!(
                    plan.accuracy(&got, &g.labels, idx),
                    accuracy(want, &g.labels, idx),
                    "{:?}",
                    spec.arch
                );
            }
        }
    }

    /// A training pass through a plan of some targets gives the whole graph's loss there and the
    /// same gradient for every parameter, with and without the first layer's aggregation done
    /// beforehand: for the validation split, for a few nodes (an unsorted list with a repeat:
    /// every layer restricted) and for three quarters of the nodes (a training plan computes them
    /// all); and, where the plan restricts only the last layer, the same loss with dropout on
    /// (the layers below draw their masks as the whole graph's pass does). Returns how many plans
    /// were checked with dropout, and how many restricted the first layer.
    fn check_planned_training(
        spec: &ArchSpec,
        params: &ParamMap,
        g: &GraphTensors,
    ) -> (usize, usize) {
        let (mut dropout_checked, mut first_restricted) = (0, 0);
        let pass = |plan: Option<&TargetPlan>, idx: &Tensor, pre: bool, dropout: bool| {
            let ps: ParamMap = params
                .iter()
                .map(|(k, v)| {
                    let learned = v.kind() == Kind::Float && !k.contains("running_");
                    (k.clone(), v.detach().copy().set_requires_grad(learned))
                })
                .collect();
            let mode = Mode { dropout, batch_norm: BatchNormMode::Running };
            let pre = if pre { first_aggregate(spec, g) } else { None };
            crate::model::rng::seed_thread(5);
            let loss = match plan {
                Some(plan) => {
                    let pre = pre.map(|t| plan.first_rows(&t));
                    let logits = forward_planned(spec, &ps, g, plan, mode, pre.as_ref());
                    plan.loss(&logits, &g.labels, idx)
                }
                None => loss(&forward_from(spec, &ps, g, mode, pre.as_ref()), &g.labels, idx),
            };
            loss.backward();
            let grads: Vec<(String, Tensor)> = ps
                .iter()
                .filter(|(_, t)| t.grad().defined())
                .map(|(k, t)| (k.clone(), t.grad()))
                .collect();
            (loss.double_value(&[]), grads)
        };
        let n = g.num_nodes;
        let listed = Tensor::from_slice(&[250i64, 3, 77, 3, 120]);
        let most = Tensor::arange(n * 3 / 4, (Kind::Int64, g.device));
        for (idx, distinct) in [(&g.val_idx, g.val_idx.size()[0]), (&listed, 4), (&most, n * 3 / 4)]
        {
            for training in [false, true] {
                let plan = if training {
                    TargetPlan::for_training(spec, g, idx)
                } else {
                    TargetPlan::new(spec, g, idx)
                };
                let rows = plan.rows_per_layer(n);
                let last = if training && 2 * distinct > n { n } else { distinct };
                assert_eq!(rows[spec.layers - 1], last, "{:?}: {rows:?}", spec.arch);
                first_restricted += usize::from(rows[0] < n);
                for pre in [false, true] {
                    let (want, want_grads) = pass(None, idx, pre, false);
                    let (got, got_grads) = pass(Some(&plan), idx, pre, false);
                    assert!(
                        (got - want).abs() < 1e-5,
                        "{:?} {rows:?} pre {pre}: loss {got} against {want}",
                        spec.arch
                    );
                    assert_eq!(got_grads.len(), want_grads.len());
                    assert!(want_grads.len() >= 2 * spec.layers);
                    for ((name, a), (_, b)) in got_grads.iter().zip(&want_grads) {
                        let diff = (a - b).abs().max().double_value(&[]);
                        assert!(
                            diff < 1e-5,
                            "{:?} {rows:?} pre {pre}: gradient of {name} off by {diff}",
                            spec.arch
                        );
                    }
                }
                if rows[..spec.layers - 1].iter().all(|&r| r == n) {
                    let (want, _) = pass(None, idx, false, true);
                    let (got, _) = pass(Some(&plan), idx, false, true);
                    assert!(
                        (got - want).abs() < 1e-5,
                        "{:?} with dropout: loss {got} against {want}",
                        spec.arch
                    );
                    dropout_checked += 1;
                }
            }
        }
        (dropout_checked, first_restricted)
    }

    /// On a graph without edges, GCN without self-loops reads nothing from the layer below: the
    /// plan's lower layers compute no rows, and the logits are still the whole graph's.
    #[test]
    fn targeted_inference_without_edges() {
        let g = test_graph("csbm:nodes=60,train=10,val=10,test=10,degree=0");
        assert_eq!(g.src.len(), 0);
        let gt = GraphTensors::new(&g, tch::Device::Cpu);
        let spec = ArchSpec {
            layers: 3,
            add_self_loops: false,
            ..ArchSpec::plain(Arch::Gcn, gt.x.size()[1], g.num_classes as i64)
        };
        let params = spec.init(1, tch::Device::Cpu);
        let plan = TargetPlan::new(&spec, &gt, &gt.val_idx);
        assert_eq!(plan.rows_per_layer(gt.num_nodes), vec![0, 0, 10]);
        let want = tch::no_grad(|| forward(&spec, &params, &gt, Mode::EVAL));
        let got = infer_targets(&spec, &params, &gt, &plan, None);
        let diff = (&got - want.index_select(0, &gt.val_idx)).abs().max().double_value(&[]);
        assert!(diff < 1e-6, "{diff}");
        assert_eq!(
            plan.accuracy(&got, &gt.labels, &gt.val_idx),
            accuracy(&want, &gt.labels, &gt.val_idx)
        );
    }

    /// GAT attends over the whole graph: its plan computes every node, and gives its logits.
    #[test]
    fn targeted_inference_of_gat_is_the_whole_graph() {
        let g = test_graph("csbm:nodes=200,train=20,val=20,test=20");
        let gt = GraphTensors::new(&g, tch::Device::Cpu);
        let spec = ArchSpec {
            hidden: 8,
            heads: 2,
            ..ArchSpec::plain(Arch::Gat, gt.x.size()[1], g.num_classes as i64)
        };
        let params = spec.init(1, tch::Device::Cpu);
        let plan = TargetPlan::new(&spec, &gt, &gt.val_idx);
        assert_eq!(plan.rows_per_layer(gt.num_nodes), vec![gt.num_nodes; 2]);
        let want = tch::no_grad(|| forward(&spec, &params, &gt, Mode::EVAL));
        let got = infer_targets(&spec, &params, &gt, &plan, None);
        assert!((&got - &want).abs().max().double_value(&[]) < 1e-5);
        assert_eq!(
            plan.accuracy(&got, &gt.labels, &gt.val_idx),
            accuracy(&want, &gt.labels, &gt.val_idx)
        );
    }
}
