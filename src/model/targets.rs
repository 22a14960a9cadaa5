//! Passes that compute only what the logits of a set of target nodes depend on: inference at the
//! validation split, for the strategies that score many candidate soups by their validation
//! accuracy (GIS, greedy, the fit's validation passes), and LS/PLS's fitting passes, whose loss
//! covers the fitting nodes only ([`TargetPlan::for_training`], [`Planned`]).
//!
//! The last layer is needed only at the targets, the layer before only at the nodes those read
//! (their in-neighbours, and themselves for GraphSAGE's root term), and so on down. On an
//! arxiv-shaped graph whose validation split is 18% of the nodes, the last layer then maps and
//! aggregates 18% of the rows and the one before it 91%; the layers below still take every node.
//! Each restricted layer multiplies by its operator's rows at its outputs, with the columns
//! renumbered to the rows the layer below computed, so every activation stays compact.

use tch::{Kind, Tensor};

use super::graph_tensors::{GraphTensors, Operator};
use super::propagation::Propagation;
use super::spec::{Arch, ArchSpec};

/// One layer's share of a [`TargetPlan`]: which rows it computes and from where.
pub(super) struct LayerRows {
    /// The nodes whose output the layer computes, ascending (global ids).
    pub(super) nodes: Tensor,
    /// The layer's operator at those rows, over the rows of its input: a CSR matrix
    /// `[nodes, input rows]` (the input rows are every node for the first layer, else the
    /// `nodes` of the layer below).
    pub(super) operator: Operator,
    /// Each output row's own position among the input rows (GraphSAGE's root term reads it).
    pub(super) own_rows: Option<Tensor>,
}

impl LayerRows {
    pub(super) fn len(&self) -> i64 {
        self.nodes.size()[0]
    }
}

/// Which rows each layer of a pass must compute for the logits of a set of target nodes.
pub struct TargetPlan {
    /// For each layer, `None` where it computes every node from every node of its input.
    pub(super) layers: Vec<Option<LayerRows>>,
    /// Each node's row in the logits a pass with this plan returns ([`super::infer_targets`],
    /// [`super::forward_planned`]), -1 for non-targets.
    position: Tensor,
}

impl TargetPlan {
    /// The plan for `targets` (global node ids, in any order, repeats allowed) of `g` under
    /// `spec`, for inference. The attention architectures, whose inference runs over the whole
    /// graph, compute every node.
    pub fn new(spec: &ArchSpec, g: &GraphTensors, targets: &Tensor) -> TargetPlan {
        Self::build(spec, g, targets, 1.0)
    }

    /// As [`TargetPlan::new`], for a training pass ([`super::forward_planned`]): a layer that
    /// would compute more than half of the nodes computes all of them. Restricted, such a layer
    /// saves little (the arxiv-shaped graph's middle layer would keep 91% of its rows) and keeps
    /// one more activation for the backward pass (the aggregate, which otherwise comes after the
    /// linear map, or GraphSAGE's root rows); whole, its dropout draws are the whole-graph pass's.
    /// The last layer too: with that many targets the whole-graph pass, which maps to the classes
    /// before it aggregates, is the cheaper one.
    pub fn for_training(spec: &ArchSpec, g: &GraphTensors, targets: &Tensor) -> TargetPlan {
        Self::build(spec, g, targets, 0.5)
    }

    /// The plan that computes every node at every layer.
    pub fn whole(spec: &ArchSpec, g: &GraphTensors) -> TargetPlan {
        TargetPlan {
            layers: (0..spec.layers).map(|_| None).collect(),
            position: Tensor::arange(g.num_nodes, (Kind::Int64, g.device)),
        }
    }

    /// `whole_above`: the fraction of the nodes above which a layer computes every node.
    fn build(spec: &ArchSpec, g: &GraphTensors, targets: &Tensor, whole_above: f64) -> TargetPlan {
        let _guard = tch::no_grad_guard();
        let n = g.num_nodes;
        let device = g.device;
        let operator = match spec.arch {
            Arch::Gcn => g.gcn_operator(spec.add_self_loops),
            Arch::Sage => g.mean_operator(),
            Arch::Gat | Arch::PaperGat => return Self::whole(spec, g),
        };
        let mut need = nodes_of(&[targets], n);
        if need.size()[0] as f64 > whole_above * n as f64 {
            return Self::whole(spec, g);
        }
        let position = positions(&need, n);
        let mut layers: Vec<Option<LayerRows>> = (0..spec.layers).map(|_| None).collect();
        let reads_itself = spec.arch == Arch::Sage;
        for layer in (0..spec.layers).rev() {
            // (`need` is ascending and distinct: all of it is every node, in order.)
            let rows =
                if need.size()[0] == n { operator.rows(0, n) } else { operator.select_rows(&need) };
            // What this layer reads from the layer below: every node for the first layer (its
            // input, the features, is whole anyway).
            let input = (layer > 0).then(|| {
                let sources = rows.col_indices();
                if reads_itself {
                    nodes_of(&[&sources, &need], n)
                } else {
                    nodes_of(&[&sources], n)
                }
            });
            let input = input.filter(|i| {
                let rows = i.size()[0];
                rows < n && rows as f64 <= whole_above * n as f64
            });
            if need.size()[0] < n || input.is_some() {
                // Renumber the operator's columns, and the root rows, to the input's rows.
                let renumber = input.as_ref().map(|input| positions(input, n));
                let in_rows = input.as_ref().map_or(n, |i| i.size()[0]);
                let col = match &renumber {
                    Some(at) => at.index_select(0, &rows.col_indices()),
                    None => rows.col_indices(),
                };
                // 32-bit indices where they fit: the plan is kept beside a pass's activations.
                let index_kind = if in_rows.max(col.size()[0]) < i32::MAX as i64 {
                    Kind::Int
                } else {
                    Kind::Int64
                };
                let matrix = Tensor::sparse_csr_tensor_crow_col_value_size(
                    &rows.crow_indices().to_kind(index_kind),
                    &col.to_kind(index_kind),
                    &rows.values(),
                    [need.size()[0], in_rows],
                    (Kind::Float, device),
                );
                let own_rows = reads_itself.then(|| match &renumber {
                    Some(at) => at.index_select(0, &need),
                    None => need.shallow_clone(),
                });
                layers[layer] = Some(LayerRows {
                    nodes: need.shallow_clone(),
                    operator: Operator::with_transpose(matrix, None),
                    own_rows,
                });
            }
            if layer == 0 {
                break;
            }
            need = input.unwrap_or_else(|| Tensor::arange(n, (Kind::Int64, device)));
        }
        TargetPlan { layers, position }
    }

    /// How many rows each layer computes (for reports and tests): `n` where it takes every node.
    pub fn rows_per_layer(&self, n: i64) -> Vec<i64> {
        self.layers.iter().map(|l| l.as_ref().map_or(n, LayerRows::len)).collect()
    }

    /// The rows of the `idx` nodes (all of them targets of this plan) in logits computed with it.
    fn rows_of(&self, idx: &Tensor) -> Tensor {
        let rows = self.position.index_select(0, idx);
        debug_assert!(
            idx.numel() == 0 || rows.min().int64_value(&[]) >= 0,
            "a plan's logits asked at a non-target"
        );
        rows
    }

    /// Fraction of the `idx` nodes (all of them targets of this plan) whose arg-max logit in
    /// `logits` (from [`super::infer_targets`] or [`super::forward_planned`] with this plan) is
    /// their label.
    pub fn accuracy(&self, logits: &Tensor, labels: &Tensor, idx: &Tensor) -> f64 {
        accuracy_at(logits, &self.rows_of(idx), labels, idx)
    }

    /// Mean cross-entropy over the `idx` nodes (targets of this plan) of `logits` computed with it.
    pub fn loss(&self, logits: &Tensor, labels: &Tensor, idx: &Tensor) -> Tensor {
        loss_at(logits, &self.rows_of(idx), labels, idx)
    }

    /// The rows of the first layer's aggregation `pre` (one per node) that the plan's first
    /// layer computes.
    pub fn first_rows(&self, pre: &Tensor) -> Tensor {
        match &self.layers[0] {
            Some(r) => pre.index_select(0, &r.nodes),
            None => pre.shallow_clone(),
        }
    }
}

/// A graph seen through a [`TargetPlan`]: the message passing of a forward pass (training
/// included) that computes each layer at the plan's rows only.
pub(super) struct Planned<'a> {
    pub(super) graph: &'a GraphTensors,
    pub(super) plan: &'a TargetPlan,
}

impl Planned<'_> {
    fn rows(&self, layer: usize) -> Option<&LayerRows> {
        self.plan.layers[layer].as_ref()
    }
}

impl Propagation for Planned<'_> {
    fn targets(&self, layer: usize) -> i64 {
        self.rows(layer).map_or(self.graph.num_nodes, LayerRows::len)
    }

    fn own_rows(&self, layer: usize) -> Option<&Tensor> {
        self.rows(layer).and_then(|r| r.own_rows.as_ref())
    }

    fn propagate_gcn(&self, layer: usize, add_self_loops: bool, x: &Tensor) -> Tensor {
        // A restricted operator was made from the spec's own (self-loops as it says).
        match self.rows(layer) {
            Some(r) => r.operator.apply(x),
            None => self.graph.gcn_propagate(add_self_loops, x),
        }
    }

    fn aggregate_mean(&self, layer: usize, x: &Tensor) -> Tensor {
        match self.rows(layer) {
            Some(r) => r.operator.apply(x),
            None => self.graph.mean_aggregate(x),
        }
    }

    fn attention_edges(&self, layer: usize, add_self_loops: bool) -> (Tensor, Tensor) {
        // An attention architecture's plan computes every node.
        debug_assert!(self.rows(layer).is_none());
        self.graph.gat_edges(add_self_loops)
    }
}

/// Fraction of the `idx` nodes whose arg-max logit, read at `logit_rows` (row `k` of `logits`
/// for node `idx[k]`), is their label.
pub(super) fn accuracy_at(
    logits: &Tensor,
    logit_rows: &Tensor,
    labels: &Tensor,
    idx: &Tensor,
) -> f64 {
    let pred = logits.index_select(0, logit_rows).argmax(1, false);
    let correct =
        pred.eq_tensor(&labels.index_select(0, idx)).to_kind(Kind::Double).mean(Kind::Double);
    correct.double_value(&[])
}

/// Mean cross-entropy over the `idx` nodes, their logits read at `logit_rows` (as
/// [`accuracy_at`]).
pub(super) fn loss_at(
    logits: &Tensor,
    logit_rows: &Tensor,
    labels: &Tensor,
    idx: &Tensor,
) -> Tensor {
    logits.index_select(0, logit_rows).cross_entropy_for_logits(&labels.index_select(0, idx))
}

/// Each of `n` nodes' position in `nodes` (distinct), -1 where it is not there.
fn positions(nodes: &Tensor, n: i64) -> Tensor {
    let options = (Kind::Int64, nodes.device());
    let mut at = Tensor::full([n], -1, options);
    let _ = at.index_copy_(0, nodes, &Tensor::arange(nodes.size()[0], options));
    at
}

/// The distinct nodes among `lists` (of `n`), ascending.
fn nodes_of(lists: &[&Tensor], n: i64) -> Tensor {
    let device = lists[0].device();
    let mut seen = Tensor::zeros([n], (Kind::Bool, device));
    for list in lists {
        let _ = seen.index_fill_(0, list, 1);
    }
    seen.nonzero().squeeze_dim(1)
}
