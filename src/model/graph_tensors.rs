//! A graph moved to a device once, with the sparse operators each architecture needs built on
//! first use and kept.

use std::cell::OnceCell;

use tch::{Device, Kind, Tensor};

use super::sparse_ops::spmm;
use crate::data::Graph;

/// A sparse propagation operator (CSR) and, built on first need, its transpose, which the
/// backward pass multiplies by (see [`spmm`]).
struct Operator {
    matrix: Tensor,
    transpose: OnceCell<Tensor>,
    symmetric: bool,
}

impl Operator {
    fn new(matrix: Tensor, symmetric: bool) -> Operator {
        Operator { matrix, transpose: OnceCell::new(), symmetric }
    }

    /// `matrix x`.
    fn apply(&self, x: &Tensor) -> Tensor {
        if !x.requires_grad() {
            return self.matrix.mm(x);
        }
        let transpose = if self.symmetric {
            &self.matrix
        } else {
            self.transpose.get_or_init(|| {
                let _g = tch::no_grad_guard();
                self.matrix.transpose(0, 1).to_sparse_csr(None::<i64>)
            })
        };
        spmm(&self.matrix, transpose, x)
    }
}

pub struct GraphTensors {
    pub num_nodes: i64,
    pub device: Device,
    pub x: Tensor,
    /// The features as a sparse CSR tensor when they are mostly zeros (bag-of-words datasets):
    /// the first layer then multiplies sparse, and dropout draws one number per non-zero.
    pub x_sparse: Option<Tensor>,
    /// Row-normalised features (dense, and sparse when `x_sparse` is), built on first use.
    normalized: OnceCell<(Tensor, Option<Tensor>)>,
    pub labels: Tensor,
    pub train_idx: Tensor,
    pub val_idx: Tensor,
    pub test_idx: Tensor,
    /// Edge endpoints (source -> target), int64 on `device`.
    pub src: Tensor,
    pub dst: Tensor,
    /// Every edge's reverse is an edge too (what every loader gives): the GCN operators are then
    /// their own transposes.
    pub symmetric: bool,
    gcn_adj: OnceCell<Operator>,
    gcn_adj_as_is: OnceCell<Operator>,
    mean_adj: OnceCell<Operator>,
    gat_edges: OnceCell<(Tensor, Tensor)>,
}

impl GraphTensors {
    pub fn new(g: &Graph, device: Device) -> GraphTensors {
        let long = |v: &[i64]| Tensor::from_slice(v).to_device(device);
        GraphTensors::from_parts(
            g.num_nodes as i64,
            Tensor::from_slice(&g.features).view([g.num_nodes as i64, g.num_features as i64]).to_device(device),
            long(&g.labels),
            long(&g.src),
            long(&g.dst),
            [long(&g.train), long(&g.val), long(&g.test)],
            crate::data::graph::edges_symmetric(&g.src, &g.dst),
        )
    }

    /// Builds from tensors already on one device (used for PLS subgraphs: the subgraph a set of
    /// nodes induces in a symmetric graph is symmetric too).
    pub fn from_parts(num_nodes: i64, x: Tensor, labels: Tensor, src: Tensor, dst: Tensor, splits: [Tensor; 3], symmetric: bool) -> GraphTensors {
        let device = x.device();
        let x_sparse = sparse_if_mostly_zero(&x);
        let [train_idx, val_idx, test_idx] = splits;
        GraphTensors {
            num_nodes,
            device,
            x,
            x_sparse,
            normalized: OnceCell::new(),
            labels,
            train_idx,
            val_idx,
            test_idx,
            src,
            dst,
            symmetric,
            gcn_adj: OnceCell::new(),
            gcn_adj_as_is: OnceCell::new(),
            mean_adj: OnceCell::new(),
            gat_edges: OnceCell::new(),
        }
    }

    /// The dense features the first layer sees (row-normalised or not).
    pub fn features(&self, row_normalize: bool) -> &Tensor {
        if row_normalize {
            &self.normalized().0
        } else {
            &self.x
        }
    }

    /// The features to feed the first layer, and whether they are sparse (CSR).
    pub fn input(&self, row_normalize: bool) -> (&Tensor, bool) {
        let sparse = if row_normalize { self.normalized().1.as_ref() } else { self.x_sparse.as_ref() };
        match sparse {
            Some(s) => (s, true),
            None => (self.features(row_normalize), false),
        }
    }

    fn normalized(&self) -> &(Tensor, Option<Tensor>) {
        self.normalized.get_or_init(|| {
            let _g = tch::no_grad_guard();
            // as PyG's NormalizeFeatures: x / max(row sum, 1)
            let x = &self.x / self.x.sum_dim_intlist(1, true, Kind::Float).clamp_min(1.0);
            let sparse = self.x_sparse.as_ref().map(|_| x.to_sparse_csr(None::<i64>));
            (x, sparse)
        })
    }

    fn sparse(&self, rows: &Tensor, cols: &Tensor, values: &Tensor) -> Tensor {
        let n = self.num_nodes;
        let indices = Tensor::stack(&[rows, cols], 0);
        // CSR makes sparse x dense products several times faster than COO on CPU.
        Tensor::sparse_coo_tensor_indices_size(&indices, values, [n, n], (Kind::Float, self.device), false)
            .coalesce()
            .to_sparse_csr(None::<i64>)
    }

    /// GCN's propagation `A x`, aggregating over in-neighbours (see [`GraphTensors::gcn_adj`]).
    pub fn gcn_propagate(&self, add_self_loops: bool, x: &Tensor) -> Tensor {
        self.gcn_operator(add_self_loops).apply(x)
    }

    /// The mean of each node's in-neighbours' rows of `x` (0 without any).
    pub fn mean_aggregate(&self, x: &Tensor) -> Tensor {
        self.mean_operator().apply(x)
    }

    /// The GCN propagation matrix, with `A[dst, src]` so that `adj.mm(x)` aggregates over
    /// in-neighbours. `add_self_loops`: D^-1/2 (A + I) D^-1/2 as PyG's `gcn_norm`; otherwise
    /// DGL's `GraphConv(norm="both")` on the graph as it is: each edge weighs
    /// out_deg(src)^-1/2 in_deg(dst)^-1/2, degrees clamped at 1. Symmetric when the edges are.
    pub fn gcn_adj(&self, add_self_loops: bool) -> &Tensor {
        &self.gcn_operator(add_self_loops).matrix
    }

    fn gcn_operator(&self, add_self_loops: bool) -> &Operator {
        let cell = if add_self_loops { &self.gcn_adj } else { &self.gcn_adj_as_is };
        cell.get_or_init(|| {
            let _g = tch::no_grad_guard();
            let (src, dst) = if add_self_loops {
                let loops = Tensor::arange(self.num_nodes, (Kind::Int64, self.device));
                (Tensor::cat(&[&self.src, &loops], 0), Tensor::cat(&[&self.dst, &loops], 0))
            } else {
                (self.src.shallow_clone(), self.dst.shallow_clone())
            };
            let degree = |of: &Tensor| {
                let ones = Tensor::ones([of.size()[0]], (Kind::Float, self.device));
                Tensor::zeros([self.num_nodes], (Kind::Float, self.device)).index_add(0, of, &ones).clamp_min(1.0).pow_tensor_scalar(-0.5)
            };
            // With self-loops every node's in- and out-degree agree on PyG's symmetric graphs;
            // PyG uses the in-degree on both sides, and so does this.
            let (src_norm, dst_norm) = if add_self_loops {
                let d = degree(&dst);
                (d.shallow_clone(), d)
            } else {
                (degree(&src), degree(&dst))
            };
            let w = src_norm.index_select(0, &src) * dst_norm.index_select(0, &dst);
            Operator::new(self.sparse(&dst, &src, &w), self.symmetric)
        })
    }

    /// Row-normalised adjacency: `adj.mm(x)` is the mean over in-neighbours (0 without any).
    /// Never symmetric (rows sum to 1, columns do not): its transpose is built when needed.
    fn mean_operator(&self) -> &Operator {
        self.mean_adj.get_or_init(|| {
            let _g = tch::no_grad_guard();
            let ones = Tensor::ones([self.src.size()[0]], (Kind::Float, self.device));
            let deg = Tensor::zeros([self.num_nodes], (Kind::Float, self.device)).index_add(0, &self.dst, &ones);
            let w = deg.clamp_min(1.0).reciprocal().index_select(0, &self.dst);
            Operator::new(self.sparse(&self.dst, &self.src, &w), false)
        })
    }

    /// The edges GAT attends over: with `add_self_loops`, existing loops replaced by one per
    /// node (PyG's GATConv); otherwise the graph as it is (DGL's GATConv).
    pub fn gat_edges(&self, add_self_loops: bool) -> (Tensor, Tensor) {
        if !add_self_loops {
            return (self.src.shallow_clone(), self.dst.shallow_clone());
        }
        let (src, dst) = self.gat_edges.get_or_init(|| {
            let keep = self.src.ne_tensor(&self.dst);
            let loops = Tensor::arange(self.num_nodes, (Kind::Int64, self.device));
            (Tensor::cat(&[self.src.masked_select(&keep), loops.shallow_clone()], 0), Tensor::cat(&[self.dst.masked_select(&keep), loops], 0))
        });
        (src.shallow_clone(), dst.shallow_clone())
    }
}

/// Below this share of non-zeros, features are also kept sparse.
const SPARSE_FEATURES_BELOW: f64 = 0.1;

fn sparse_if_mostly_zero(x: &Tensor) -> Option<Tensor> {
    let _g = tch::no_grad_guard();
    let numel = x.numel() as f64;
    if numel == 0.0 {
        return None;
    }
    let nonzero = x.count_nonzero(None::<i64>).int64_value(&[]) as f64;
    (nonzero / numel < SPARSE_FEATURES_BELOW).then(|| x.to_sparse_csr(None::<i64>))
}
