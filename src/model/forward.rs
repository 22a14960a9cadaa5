//! The functional forward `f(params, graph, train) -> logits` of every architecture, matching
//! PyG's `GCNConv`, `SAGEConv` (mean) and `GATConv` layer for layer.
//!
//! A model is: for each layer, dropout on its input (unless the architecture turns it off for
//! that layer: [`ArchSpec::drops_input`]), the convolution, then (except after the last layer)
//! batch norm when enabled and ReLU.

use tch::{Kind, Tensor};

use super::dropout::dropout;
use super::graph_tensors::GraphTensors;
use super::spec::{Arch, ArchSpec, ConvDims, ParamMap};

fn param<'a>(p: &'a ParamMap, name: &str) -> &'a Tensor {
    p.get(name).unwrap_or_else(|| panic!("parameter {name} missing (checkpoints are validated before use)"))
}

/// Logits `[num_nodes, out_dim]`. `train` turns on dropout and batch-norm batch statistics (which
/// also update the running statistics held in `params`).
pub fn forward(spec: &ArchSpec, params: &ParamMap, g: &GraphTensors, train: bool) -> Tensor {
    forward_from(spec, params, g, train, None)
}

/// As [`forward`], optionally with the first layer's weight-independent aggregation already done
/// (`A_hat X` for GCN, the neighbour mean of X for SAGE). Only exact when the first layer's input
/// dropout is inactive, which the caller guarantees.
pub fn forward_from(spec: &ArchSpec, params: &ParamMap, g: &GraphTensors, train: bool, first_aggregate: Option<&Tensor>) -> Tensor {
    let (input, sparse) = g.input(spec.row_normalize);
    let drop = train && spec.drops_input(0);
    let x = if sparse { sparse_dropout(input, spec.dropout, drop) } else { dropout(input, spec.dropout, drop) };
    let h = conv_train(spec, params, g, 0, x, sparse, first_aggregate, train);
    forward_after_conv(spec, params, g, h, 0, train)
}

/// The output of convolution `layer` alone (before batch norm and activation). `sparse`: `x`
/// is a sparse CSR matrix (raw features of a bag-of-words dataset).
pub fn conv(spec: &ArchSpec, params: &ParamMap, g: &GraphTensors, layer: usize, x: &Tensor, sparse: bool, pre: Option<&Tensor>) -> Tensor {
    conv_train(spec, params, g, layer, x.shallow_clone(), sparse, pre, false)
}

/// As [`conv`]; in training GAT also drops attention coefficients at the model's dropout rate
/// (the GAT paper's regulariser; PyG's `GATConv(dropout=...)`).
#[allow(clippy::too_many_arguments)]
/// Takes its input by value so that it can be freed as soon as it is no longer needed: full-graph
/// inference then holds about two activations at a time instead of three.
fn conv_train(spec: &ArchSpec, params: &ParamMap, g: &GraphTensors, layer: usize, x: Tensor, sparse: bool, pre: Option<&Tensor>, train: bool) -> Tensor {
    let x = Input { x, sparse };
    let attention_dropout = if train { spec.dropout } else { 0.0 };
    match spec.arch {
        Arch::Gcn => gcn_conv(params, layer, g, spec.add_self_loops, x, pre),
        Arch::Sage => sage_conv(params, layer, g, x, pre),
        Arch::Gat => gat_conv(params, layer, g, spec.add_self_loops, x, &spec.conv_dims()[layer], attention_dropout),
    }
}

/// A layer's input, dense or sparse.
struct Input {
    x: Tensor,
    sparse: bool,
}

/// `a + b`, in place when no backward pass records `a` (inference), saving a buffer.
fn plus(mut a: Tensor, b: &Tensor) -> Tensor {
    if a.requires_grad() || b.requires_grad() {
        a + b
    } else {
        let _ = a.g_add_(b);
        a
    }
}

/// ReLU, in place under the same condition as [`plus`].
fn relu(mut h: Tensor) -> Tensor {
    if h.requires_grad() {
        h.relu()
    } else {
        let _ = h.relu_();
        h
    }
}

impl Input {
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
pub fn forward_after_conv(spec: &ArchSpec, params: &ParamMap, g: &GraphTensors, mut h: Tensor, layer: usize, train: bool) -> Tensor {
    for j in layer..spec.layers {
        if j > layer {
            let x = dropout(&h, spec.dropout, train && spec.drops_input(j));
            drop(h);
            h = conv_train(spec, params, g, j, x, false, None, train);
        }
        if j + 1 < spec.layers {
            if spec.batch_norm {
                h = batch_norm(params, j, &h, train);
            }
            h = relu(h);
        }
    }
    h
}

/// The first layer's aggregation that does not depend on weights, for [`forward_from`].
pub fn first_aggregate(spec: &ArchSpec, g: &GraphTensors) -> Option<Tensor> {
    let _guard = tch::no_grad_guard();
    match spec.arch {
        Arch::Gcn => Some(g.gcn_propagate(spec.add_self_loops, g.features(spec.row_normalize))),
        Arch::Sage => Some(g.mean_aggregate(g.features(spec.row_normalize))),
        Arch::Gat => None,
    }
}

/// Whether the first convolution's output is linear in its weights (so a convex combination of
/// weights gives the same combination of outputs): true for GCN and SAGE, not GAT (attention).
pub fn first_conv_is_linear(spec: &ArchSpec) -> bool {
    spec.arch != Arch::Gat
}

/// Inverted dropout on a sparse CSR matrix: only stored values are dropped (zeros would stay
/// zero anyway), one random draw per non-zero instead of per entry.
fn sparse_dropout(x: &Tensor, p: f64, train: bool) -> Tensor {
    if !train || p == 0.0 {
        return x.shallow_clone();
    }
    let values = dropout(&x.values(), p, true);
    Tensor::sparse_csr_tensor_crow_col_value_size(&x.crow_indices(), &x.col_indices(), &values, x.size(), (x.kind(), x.device()))
}

fn gcn_conv(p: &ParamMap, i: usize, g: &GraphTensors, add_self_loops: bool, x: Input, pre: Option<&Tensor>) -> Tensor {
    let w = param(p, &format!("convs.{i}.lin.weight"));
    let b = param(p, &format!("convs.{i}.bias"));
    // A (X W^T) = (A X) W^T: aggregate on whichever side is narrower.
    let out = match pre {
        Some(ax) => ax.linear::<&Tensor>(w, None),
        None if w.size()[0] <= w.size()[1] || x.sparse => {
            let xw = x.lin(w);
            drop(x);
            g.gcn_propagate(add_self_loops, &xw)
        }
        None => {
            let ax = g.gcn_propagate(add_self_loops, &x.x);
            drop(x);
            ax.linear::<&Tensor>(w, None)
        }
    };
    plus(out, b)
}

fn sage_conv(p: &ParamMap, i: usize, g: &GraphTensors, x: Input, pre: Option<&Tensor>) -> Tensor {
    let wl = param(p, &format!("convs.{i}.lin_l.weight"));
    let bl = param(p, &format!("convs.{i}.lin_l.bias"));
    let wr = param(p, &format!("convs.{i}.lin_r.weight"));
    let root = x.lin(wr);
    let neigh = match pre {
        Some(mx) => mx.linear(wl, Some(bl)),
        None if wl.size()[0] < wl.size()[1] || x.sparse => plus(g.mean_aggregate(&x.lin(wl)), bl),
        None => g.mean_aggregate(&x.x).linear(wl, Some(bl)),
    };
    drop(x);
    plus(neigh, &root)
}

fn gat_conv(p: &ParamMap, i: usize, g: &GraphTensors, add_self_loops: bool, x: Input, d: &ConvDims, attention_dropout: f64) -> Tensor {
    let w = param(p, &format!("convs.{i}.lin.weight"));
    let att_src = param(p, &format!("convs.{i}.att_src"));
    let att_dst = param(p, &format!("convs.{i}.att_dst"));
    let bias = param(p, &format!("convs.{i}.bias"));
    let (heads, ch) = (d.heads, d.out);
    let n = g.num_nodes;
    let h = x.lin(w).view([n, heads, ch]);
    drop(x);
    let a_src = (&h * att_src).sum_dim_intlist(-1, false, Kind::Float); // [N, H]
    let a_dst = (&h * att_dst).sum_dim_intlist(-1, false, Kind::Float);
    let (src, dst) = g.gat_edges(add_self_loops);
    let (src, dst) = (&src, &dst);
    let e = a_src.index_select(0, src) + a_dst.index_select(0, dst); // [E, H]
    let e = e.maximum(&(&e * 0.2)); // LeakyReLU(0.2)
    let alpha = dropout(&segment_softmax(&e, dst, n), attention_dropout, attention_dropout > 0.0);
    let msg = h.index_select(0, src) * alpha.unsqueeze(-1); // [E, H, C]
    let out = Tensor::zeros([n, heads, ch], (Kind::Float, g.device)).index_add(0, dst, &msg);
    let out = if d.concat { out.view([n, heads * ch]) } else { out.mean_dim(1, false, Kind::Float) };
    plus(out, bias)
}

/// Softmax of edge scores `[E, H]` over the edges that share a target, as PyG's `softmax`
/// (the per-target maximum is subtracted, detached, for stability).
fn segment_softmax(e: &Tensor, index: &Tensor, n: i64) -> Tensor {
    let heads = e.size()[1];
    let max = Tensor::full([n, heads], f64::NEG_INFINITY, (Kind::Float, e.device())).index_reduce(0, index, &e.detach(), "amax", false);
    let ex = (e - max.index_select(0, index)).exp();
    let sum = Tensor::zeros([n, heads], (Kind::Float, e.device())).index_add(0, index, &ex);
    ex / (sum.index_select(0, index) + 1e-16)
}

fn batch_norm(p: &ParamMap, i: usize, x: &Tensor, train: bool) -> Tensor {
    let name = |s: &str| format!("bns.{i}.{s}");
    let (w, b) = (param(p, &name("weight")), param(p, &name("bias")));
    let (mean, var) = (param(p, &name("running_mean")), param(p, &name("running_var")));
    if train {
        let _g = tch::no_grad_guard();
        let _ = param(p, &name("num_batches_tracked")).shallow_clone().g_add_scalar_(1);
    }
    Tensor::batch_norm(x, Some(w), Some(b), Some(mean), Some(var), train, 0.1, 1e-5, false)
}

/// Fraction of `idx` nodes whose arg-max logit is the label.
pub fn accuracy(logits: &Tensor, labels: &Tensor, idx: &Tensor) -> f64 {
    let pred = logits.index_select(0, idx).argmax(1, false);
    let correct = pred.eq_tensor(&labels.index_select(0, idx)).to_kind(Kind::Double).mean(Kind::Double);
    correct.double_value(&[])
}

/// Mean cross-entropy over the `idx` nodes.
pub fn loss(logits: &Tensor, labels: &Tensor, idx: &Tensor) -> Tensor {
    logits.index_select(0, idx).cross_entropy_for_logits(&labels.index_select(0, idx))
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
    let _guard = tch::no_grad_guard();
    let logits = forward(spec, params, g, false);
    Accuracies { train: accuracy(&logits, &g.labels, &g.train_idx), val: accuracy(&logits, &g.labels, &g.val_idx), test: accuracy(&logits, &g.labels, &g.test_idx) }
}

#[cfg(test)]
mod placement_tests {
    use super::*;
    use crate::data::{self, DataOptions};
    use crate::model::{rng, GraphTensors};

    /// In training mode, an input whose dropout the architecture turns off is used as it is: a
    /// model with every layer's input dropout off computes in training what it computes in
    /// inference (no batch norm), and one with dropout left on the hidden layer does not.
    #[test]
    fn dropout_applies_only_where_the_architecture_places_it() {
        let g = data::load("csbm:nodes=120,train=30,val=30,test=30", &DataOptions { data_dir: ".".into(), split_seed: 0, download: false }).unwrap();
        let gt = GraphTensors::new(&g, tch::Device::Cpu);
        let mut spec = ArchSpec { arch: Arch::Gcn, in_dim: g.num_features as i64, hidden: 8, out_dim: g.num_classes as i64, layers: 2, heads: 1, dropout: 0.5, batch_norm: false, row_normalize: false, input_dropout_off: vec![0, 1], add_self_loops: true };
        let params = spec.init(1, tch::Device::Cpu);
        rng::seed_thread(1);
        let eval = forward(&spec, &params, &gt, false);
        assert!(forward(&spec, &params, &gt, true).allclose(&eval, 1e-6, 1e-6, false));
        spec.input_dropout_off = vec![0];
        assert!(!forward(&spec, &params, &gt, true).allclose(&eval, 1e-6, 1e-6, false), "the hidden layer's input is still dropped");
        assert!(spec.drops_input(1) && !spec.drops_input(0));
        assert!(spec.describe().contains("not on the input of layer 0"), "{}", spec.describe());
        spec.input_dropout_off = vec![2];
        assert!(spec.validate().is_err());
    }
}
