//! A graph moved to a device once, with the sparse operators each architecture needs built on
//! first use and kept.
//!
//! The edges are held once, as the in-adjacency in CSR form (row `v` lists the sources of the
//! edges into `v`), built by a counting sort on the host: no coordinate list is stacked, sorted
//! or coalesced (on a products-sized graph that took several GiB). Every operator is a set of
//! values over that structure (or over a copy with self-loops added).

use std::cell::OnceCell;

use tch::{Device, Kind, Tensor};

use super::sparse_ops::{csr_mm, spmm};
use crate::data::Graph;

/// The in-adjacency of `n` nodes in CSR form: `col[crow[v]..crow[v + 1]]` are the sources of
/// the edges into `v`, in the order the edges were given (ascending when they were sorted by
/// source, as every loader gives them).
pub struct InAdjacency {
    pub crow: Vec<i64>,
    pub col: Vec<i64>,
}

impl InAdjacency {
    /// A counting sort of the edges `src[k] -> dst[k]` by target: two passes, no comparison sort.
    pub fn from_edges(n: usize, src: &[i64], dst: &[i64]) -> InAdjacency {
        let mut crow = vec![0i64; n + 1];
        for &d in dst {
            crow[d as usize + 1] += 1;
        }
        for v in 0..n {
            crow[v + 1] += crow[v];
        }
        let mut next = crow[..n].to_vec();
        let mut col = vec![0i64; src.len()];
        for (&s, &d) in src.iter().zip(dst) {
            let at = &mut next[d as usize];
            col[*at as usize] = s;
            *at += 1;
        }
        InAdjacency { crow, col }
    }

    /// Whether every edge's reverse is an edge too, when this is the in-adjacency of the edges
    /// `src -> dst` sorted by (source, target), as every loader stores them: the edges are then
    /// their own out-adjacency, and symmetry is that the two adjacencies are the same arrays (a
    /// linear comparison; a products-sized graph's binary searches took most of a minute).
    /// None for unsorted edges.
    pub fn mirrors(&self, src: &[i64], dst: &[i64]) -> Option<bool> {
        let sorted = src.windows(2).zip(dst.windows(2)).all(|(s, d)| (s[0], d[0]) <= (s[1], d[1]));
        if !sorted {
            return None;
        }
        let mut out_starts = vec![0i64; self.crow.len()];
        for &s in src {
            out_starts[s as usize + 1] += 1;
        }
        for v in 1..out_starts.len() {
            out_starts[v] += out_starts[v - 1];
        }
        Some(out_starts == self.crow && self.col == dst)
    }

    /// The same with a self-loop added to every node, placed among a row's sources in order
    /// (the rows are expected sorted; an unsorted row gets its loop at some position, which
    /// changes nothing but the order of a sum).
    pub fn with_self_loops(&self) -> InAdjacency {
        let n = self.crow.len() - 1;
        let mut crow = Vec::with_capacity(n + 1);
        let mut col = Vec::with_capacity(self.col.len() + n);
        crow.push(0);
        for v in 0..n {
            let row = &self.col[self.crow[v] as usize..self.crow[v + 1] as usize];
            let at = row.partition_point(|&s| s < v as i64);
            col.extend_from_slice(&row[..at]);
            col.push(v as i64);
            col.extend_from_slice(&row[at..]);
            crow.push(col.len() as i64);
        }
        InAdjacency { crow, col }
    }
}

/// An in-adjacency's index tensors on a device.
struct Structure {
    crow: Tensor,
    col: Tensor,
}

impl Structure {
    fn new(adj: InAdjacency, device: Device) -> Structure {
        Structure {
            crow: Tensor::from_slice(&adj.crow).to_device(device),
            col: Tensor::from_slice(&adj.col).to_device(device),
        }
    }

    fn to_host(&self) -> InAdjacency {
        let host = |t: &Tensor| {
            Vec::<i64>::try_from(&t.to_device(Device::Cpu)).expect("an int64 index tensor")
        };
        InAdjacency { crow: host(&self.crow), col: host(&self.col) }
    }

    fn num_nodes(&self) -> i64 {
        self.crow.size()[0] - 1
    }

    /// Edges into each node.
    fn in_degree(&self) -> Tensor {
        self.crow.diff(1, 0, None::<Tensor>, None::<Tensor>)
    }

    /// Edges out of each node.
    fn out_degree(&self) -> Tensor {
        self.col.bincount(None::<Tensor>, self.num_nodes())
    }

    /// `per_row[v]` repeated over row `v`'s entries: one value per edge, no per-edge index.
    fn by_row(&self, per_row: &Tensor) -> Tensor {
        let entries = self.col.size()[0];
        per_row.repeat_interleave_self_tensor(&self.in_degree(), 0, Some(entries))
    }

    /// `per_node[source]` for every entry.
    fn by_col(&self, per_node: &Tensor) -> Tensor {
        per_node.index_select(0, &self.col)
    }

    fn matrix(&self, values: &Tensor) -> Tensor {
        let n = self.num_nodes();
        Tensor::sparse_csr_tensor_crow_col_value_size(
            &self.crow,
            &self.col,
            values,
            [n, n],
            (Kind::Float, values.device()),
        )
    }
}

/// How an operator's transpose (for the backward pass) is had.
enum Transpose {
    /// The operator is symmetric.
    Itself,
    /// The structure is symmetric and the transpose's entry in row `v`, column `u` is the
    /// operator's in row `u`: `factor[u]` for an operator whose values depend on the row only.
    SameStructure { factor: Tensor },
    /// Converted once by libtorch.
    Converted,
}

/// A sparse propagation operator (CSR) and, built on first need, its transpose, which the
/// backward pass multiplies by (see [`spmm`]).
pub(super) struct Operator {
    matrix: Tensor,
    transpose_by: Transpose,
    transpose: OnceCell<Tensor>,
}

impl Operator {
    fn new(matrix: Tensor, transpose_by: Transpose) -> Operator {
        Operator { matrix, transpose_by, transpose: OnceCell::new() }
    }

    /// An operator whose transpose is already at hand (a sampled block's, made on the host),
    /// or not needed (`None`: the operator is only applied to inputs without a gradient).
    pub(super) fn with_transpose(matrix: Tensor, transpose: Option<Tensor>) -> Operator {
        Operator {
            matrix,
            transpose_by: Transpose::Converted,
            transpose: transpose.map_or_else(OnceCell::new, OnceCell::from),
        }
    }

    /// `matrix x`.
    pub(super) fn apply(&self, x: &Tensor) -> Tensor {
        if !x.requires_grad() {
            return csr_mm(&self.matrix, x);
        }
        let transpose = match &self.transpose_by {
            Transpose::Itself => &self.matrix,
            by => self.transpose.get_or_init(|| {
                let _g = tch::no_grad_guard();
                match by {
                    Transpose::SameStructure { factor } => {
                        let (crow, col) = (self.matrix.crow_indices(), self.matrix.col_indices());
                        let values = factor.index_select(0, &col);
                        Tensor::sparse_csr_tensor_crow_col_value_size(
                            &crow,
                            &col,
                            &values,
                            self.matrix.size(),
                            (Kind::Float, values.device()),
                        )
                    }
                    _ => self.matrix.transpose(0, 1).to_sparse_csr(None::<i64>),
                }
            }),
        };
        spmm(&self.matrix, transpose, x)
    }

    /// Rows `start..start + len` of the operator: a CSR matrix over the same index and value
    /// storage (only the `len + 1` row offsets are new).
    pub(super) fn rows(&self, start: i64, len: i64) -> Tensor {
        let (crow, col, values) =
            (self.matrix.crow_indices(), self.matrix.col_indices(), self.matrix.values());
        let first = crow.int64_value(&[start]);
        let last = crow.int64_value(&[start + len]);
        let offsets = crow.narrow(0, start, len + 1) - first;
        let cols = self.matrix.size()[1];
        Tensor::sparse_csr_tensor_crow_col_value_size(
            &offsets,
            &col.narrow(0, first, last - first),
            &values.narrow(0, first, last - first),
            [len, cols],
            (Kind::Float, values.device()),
        )
    }

    /// The operator's rows `rows` (ascending or not), in that order: a CSR matrix with the
    /// operator's columns.
    pub(super) fn select_rows(&self, rows: &Tensor) -> Tensor {
        let (crow, col, values) =
            (self.matrix.crow_indices(), self.matrix.col_indices(), self.matrix.values());
        let starts = crow.index_select(0, rows);
        let counts = crow.index_select(0, &(rows + 1)) - &starts;
        let entries = counts.sum(Kind::Int64).int64_value(&[]);
        let zero = Tensor::zeros([1], (Kind::Int64, crow.device()));
        let offsets = Tensor::cat(&[zero, counts.cumsum(0, Kind::Int64)], 0);
        // Entry k of the result is the operator's entry `starts[r] + (k - offsets[r])`, where r
        // is its row: one shift per row, repeated over the row's entries.
        let shift = (&starts - offsets.narrow(0, 0, rows.size()[0])).repeat_interleave_self_tensor(
            &counts,
            0,
            Some(entries),
        );
        let taken = Tensor::arange(entries, (Kind::Int64, crow.device())) + shift;
        Tensor::sparse_csr_tensor_crow_col_value_size(
            &offsets,
            &col.index_select(0, &taken),
            &values.index_select(0, &taken),
            [rows.size()[0], self.matrix.size()[1]],
            (Kind::Float, values.device()),
        )
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
    /// The edges, as the in-adjacency on `device`.
    edges: Structure,
    /// Every edge's reverse is an edge too (what every loader gives): the GCN operators are then
    /// their own transposes, and the mean operator's transpose shares its structure.
    pub symmetric: bool,
    gcn_adj: OnceCell<Operator>,
    gcn_adj_as_is: OnceCell<Operator>,
    mean_adj: OnceCell<Operator>,
    /// GAT's edge lists, as given and with self-loops.
    gat_edges: [OnceCell<(Tensor, Tensor)>; 2],
}

impl GraphTensors {
    pub fn new(g: &Graph, device: Device) -> GraphTensors {
        let long = |v: &[i64]| Tensor::from_slice(v).to_device(device);
        let edges = InAdjacency::from_edges(g.num_nodes, &g.src, &g.dst);
        let symmetric = edges
            .mirrors(&g.src, &g.dst)
            .unwrap_or_else(|| crate::data::graph::edges_symmetric(&g.src, &g.dst));
        GraphTensors::from_parts(
            Tensor::from_slice(&g.features)
                .view([g.num_nodes as i64, g.num_features as i64])
                .to_device(device),
            long(&g.labels),
            edges,
            [long(&g.train), long(&g.val), long(&g.test)],
            symmetric,
        )
    }

    /// Builds from features, labels and splits on one device and the edges as an in-adjacency
    /// (used for PLS subgraphs: the subgraph a set of nodes induces in a symmetric graph is
    /// symmetric too). The node count is the number of feature rows.
    pub fn from_parts(
        x: Tensor,
        labels: Tensor,
        edges: InAdjacency,
        splits: [Tensor; 3],
        symmetric: bool,
    ) -> GraphTensors {
        let device = x.device();
        let num_nodes = x.size()[0];
        assert_eq!(
            edges.crow.len() as i64,
            num_nodes + 1,
            "an in-adjacency of {} rows for {num_nodes} nodes",
            edges.crow.len().saturating_sub(1)
        );
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
            edges: Structure::new(edges, device),
            symmetric,
            gcn_adj: OnceCell::new(),
            gcn_adj_as_is: OnceCell::new(),
            mean_adj: OnceCell::new(),
            gat_edges: [OnceCell::new(), OnceCell::new()],
        }
    }

    pub fn num_edges(&self) -> i64 {
        self.edges.col.size()[0]
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
        let sparse =
            if row_normalize { self.normalized().1.as_ref() } else { self.x_sparse.as_ref() };
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

    /// GCN's propagation `A x`, aggregating over in-neighbours (see [`GraphTensors::gcn_adj`]).
    pub fn gcn_propagate(&self, add_self_loops: bool, x: &Tensor) -> Tensor {
        self.gcn_operator(add_self_loops).apply(x)
    }

    /// Rows `start..start + len` of GCN's propagation matrix (for inference in row blocks).
    pub fn gcn_rows(&self, add_self_loops: bool, start: i64, len: i64) -> Tensor {
        self.gcn_operator(add_self_loops).rows(start, len)
    }

    /// The mean of each node's in-neighbours' rows of `x` (0 without any).
    pub fn mean_aggregate(&self, x: &Tensor) -> Tensor {
        self.mean_operator().apply(x)
    }

    /// Rows `start..start + len` of the mean operator.
    pub fn mean_rows(&self, start: i64, len: i64) -> Tensor {
        self.mean_operator().rows(start, len)
    }

    /// The GCN propagation matrix, with `A[dst, src]` so that `adj.mm(x)` aggregates over
    /// in-neighbours. `add_self_loops`: D^-1/2 (A + I) D^-1/2 as PyG's `gcn_norm`; otherwise
    /// DGL's `GraphConv(norm="both")` on the graph as it is: each edge weighs
    /// out_deg(src)^-1/2 in_deg(dst)^-1/2, degrees clamped at 1. Symmetric when the edges are.
    pub fn gcn_adj(&self, add_self_loops: bool) -> &Tensor {
        &self.gcn_operator(add_self_loops).matrix
    }

    pub(super) fn gcn_operator(&self, add_self_loops: bool) -> &Operator {
        let cell = if add_self_loops { &self.gcn_adj } else { &self.gcn_adj_as_is };
        cell.get_or_init(|| {
            let _g = tch::no_grad_guard();
            let inverse_sqrt =
                |degree: Tensor| degree.to_kind(Kind::Float).clamp_min(1.0).pow_tensor_scalar(-0.5);
            let transpose_by =
                if self.symmetric { Transpose::Itself } else { Transpose::Converted };
            if add_self_loops {
                // With self-loops every node's in- and out-degree agree on PyG's symmetric
                // graphs; PyG uses the in-degree on both sides, and so does this.
                let s = Structure::new(self.edges.to_host().with_self_loops(), self.device);
                let d = inverse_sqrt(s.in_degree());
                let values = s.by_row(&d) * s.by_col(&d);
                Operator::new(s.matrix(&values), transpose_by)
            } else {
                let s = &self.edges;
                let values = s.by_row(&inverse_sqrt(s.in_degree()))
                    * s.by_col(&inverse_sqrt(s.out_degree()));
                Operator::new(s.matrix(&values), transpose_by)
            }
        })
    }

    /// Row-normalised adjacency: `adj.mm(x)` is the mean over in-neighbours (0 without any).
    /// Never symmetric (rows sum to 1, columns do not): its transpose is built when needed,
    /// sharing the structure when the edges are symmetric.
    pub(super) fn mean_operator(&self) -> &Operator {
        self.mean_adj.get_or_init(|| {
            let _g = tch::no_grad_guard();
            let s = &self.edges;
            let inverse = s.in_degree().to_kind(Kind::Float).clamp_min(1.0).reciprocal();
            let values = s.by_row(&inverse);
            let transpose_by = if self.symmetric {
                Transpose::SameStructure { factor: inverse }
            } else {
                Transpose::Converted
            };
            Operator::new(s.matrix(&values), transpose_by)
        })
    }

    /// The edges GAT attends over, as (sources, targets) grouped by target: with
    /// `add_self_loops`, existing loops replaced by one per node (PyG's GATConv); otherwise the
    /// graph as it is (DGL's GATConv).
    pub fn gat_edges(&self, add_self_loops: bool) -> (Tensor, Tensor) {
        let (src, dst) = self.gat_edges[add_self_loops as usize].get_or_init(|| {
            let s = &self.edges;
            let targets = Tensor::arange(self.num_nodes, (Kind::Int64, self.device));
            let (src, dst) = (s.col.shallow_clone(), s.by_row(&targets));
            if !add_self_loops {
                return (src, dst);
            }
            let keep = src.ne_tensor(&dst);
            (
                Tensor::cat(&[src.masked_select(&keep), targets.shallow_clone()], 0),
                Tensor::cat(&[dst.masked_select(&keep), targets], 0),
            )
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

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    fn random_edges(
        rng: &mut rand::rngs::StdRng,
        n: usize,
        symmetric: bool,
    ) -> (Vec<i64>, Vec<i64>) {
        let pairs: Vec<(i64, i64)> = (0..rng.gen_range(0..4 * n))
            .map(|_| (rng.gen_range(0..n as i64), rng.gen_range(0..n as i64)))
            .collect();
        if symmetric {
            crate::data::graph::symmetrize(pairs)
        } else {
            let mut pairs = pairs;
            pairs.sort_unstable();
            pairs.dedup();
            pairs.into_iter().filter(|(a, b)| a != b).unzip()
        }
    }

    /// Property, over 200 random edge lists: row `v` of the in-adjacency is the sources of the
    /// edges into `v` in the order given, and with self-loops it is those and `v`, ascending.
    #[test]
    fn the_in_adjacency_lists_each_nodes_sources() {
        let (src, dst) = ([1, 0], [0, 1]);
        assert_eq!(InAdjacency::from_edges(2, &src, &dst).mirrors(&src, &dst), None, "unsorted");
        let mut rng = rand::rngs::StdRng::seed_from_u64(5);
        for _ in 0..200 {
            let n = rng.gen_range(1..40usize);
            let symmetric = rng.gen_bool(0.5);
            let (src, dst) = random_edges(&mut rng, n, symmetric);
            let adj = InAdjacency::from_edges(n, &src, &dst);
            let sorted = src.iter().zip(&dst).collect::<Vec<_>>().is_sorted();
            assert_eq!(
                adj.mirrors(&src, &dst),
                sorted.then(|| crate::data::graph::edges_symmetric(&src, &dst)),
                "{src:?} {dst:?}"
            );
            let looped = adj.with_self_loops();
            assert_eq!((adj.crow.len(), looped.crow.len()), (n + 1, n + 1));
            for v in 0..n {
                let want: Vec<i64> =
                    src.iter().zip(&dst).filter(|(_, &d)| d == v as i64).map(|(&s, _)| s).collect();
                assert_eq!(
                    &adj.col[adj.crow[v] as usize..adj.crow[v + 1] as usize],
                    want.as_slice()
                );
                let mut with_loop = want.clone();
                with_loop.push(v as i64);
                with_loop.sort_unstable();
                assert_eq!(
                    &looped.col[looped.crow[v] as usize..looped.crow[v + 1] as usize],
                    with_loop.as_slice()
                );
            }
        }
    }

    /// The operators against dense matrices built here from their definitions, on a directed and
    /// an undirected graph: values, row blocks, and the gradient through each (which takes the
    /// transpose: itself, the same structure, or a converted one).
    #[test]
    fn operators_match_their_dense_definitions_with_gradients_and_row_blocks() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(8);
        let n = 30usize;
        for symmetric in [true, false] {
            let (src, dst) = random_edges(&mut rng, n, symmetric);
            let x = Tensor::randn([n as i64, 4], (Kind::Float, Device::Cpu));
            let g = GraphTensors::from_parts(
                x,
                Tensor::zeros([n as i64], (Kind::Int64, Device::Cpu)),
                InAdjacency::from_edges(n, &src, &dst),
                [
                    Tensor::arange(2, (Kind::Int64, Device::Cpu)),
                    Tensor::arange(2, (Kind::Int64, Device::Cpu)),
                    Tensor::arange(2, (Kind::Int64, Device::Cpu)),
                ],
                crate::data::graph::edges_symmetric(&src, &dst),
            );
            assert_eq!(g.symmetric, symmetric);
            let mut a = vec![vec![0f32; n]; n];
            for (&s, &d) in src.iter().zip(&dst) {
                a[d as usize][s as usize] += 1.0;
            }
            let in_deg: Vec<f32> = (0..n).map(|v| a[v].iter().sum()).collect();
            let out_deg: Vec<f32> = (0..n).map(|u| (0..n).map(|v| a[v][u]).sum()).collect();
            let dense = |f: &dyn Fn(usize, usize) -> f32| {
                Tensor::from_slice(&(0..n * n).map(|k| f(k / n, k % n)).collect::<Vec<f32>>())
                    .view([n as i64, n as i64])
            };
            let gcn_loops = dense(&|v, u| {
                (a[v][u] + (v == u) as u8 as f32) / ((in_deg[v] + 1.0) * (in_deg[u] + 1.0)).sqrt()
            });
            let gcn_as_is =
                dense(&|v, u| a[v][u] / (in_deg[v].max(1.0) * out_deg[u].max(1.0)).sqrt());
            let mean = dense(&|v, u| a[v][u] / in_deg[v].max(1.0));
            let y = Tensor::randn([n as i64, 3], (Kind::Float, Device::Cpu));
            type Apply<'a> = &'a dyn Fn(&Tensor) -> Tensor;
            type Rows<'a> = &'a dyn Fn(i64, i64) -> Tensor;
            let cases: [(&Tensor, Apply, Rows); 3] = [
                (&gcn_loops, &|t| g.gcn_propagate(true, t), &|s, l| g.gcn_rows(true, s, l)),
                (&gcn_as_is, &|t| g.gcn_propagate(false, t), &|s, l| g.gcn_rows(false, s, l)),
                (&mean, &|t| g.mean_aggregate(t), &|s, l| g.mean_rows(s, l)),
            ];
            for (k, (want, apply, rows)) in cases.into_iter().enumerate() {
                let leaf = y.copy().set_requires_grad(true);
                let got = apply(&leaf);
                assert!(
                    got.allclose(&want.mm(&y), 1e-5, 1e-5, false),
                    "operator {k}, symmetric {symmetric}"
                );
                got.sum(Kind::Float).backward();
                let grad = want.tr().mm(&Tensor::ones([n as i64, 3], (Kind::Float, Device::Cpu)));
                assert!(
                    leaf.grad().allclose(&grad, 1e-5, 1e-5, false),
                    "gradient of operator {k}, symmetric {symmetric}"
                );
                let block = rows(11, 9).to_dense(None, false);
                assert!(
                    block.allclose(&want.narrow(0, 11, 9), 1e-6, 1e-6, false),
                    "rows of operator {k}"
                );
            }
        }
    }
}
