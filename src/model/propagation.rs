//! What a forward pass propagates over: the whole graph, where every layer maps the N nodes to
//! themselves, or a minibatch's sampled blocks ([`BlockGraph`]), where layer `l` maps its
//! block's sources to its targets and only the seeds' outputs come out of the last one. The
//! layer code of `forward.rs` is written once against [`Propagation`] and serves both.

use tch::{Device, Kind, Tensor};

use super::graph_tensors::{GraphTensors, Operator};

/// The message passing of each layer of a forward pass.
pub trait Propagation {
    /// The rows of layer `layer`'s output. Its input has these rows first (a block's targets come
    /// first among its sources), which is how a node's own representation is found.
    fn targets(&self, layer: usize) -> i64;
    /// Where each of layer `layer`'s output rows finds its own node among the input's rows, when
    /// not in the first `targets` rows (a [`super::TargetPlan`]'s layers number their input
    /// apart from their output).
    fn own_rows(&self, _layer: usize) -> Option<&Tensor> {
        None
    }
    /// GCN's normalised aggregation of `x` for layer `layer`.
    fn propagate_gcn(&self, layer: usize, add_self_loops: bool, x: &Tensor) -> Tensor;
    /// The mean of each target's in-neighbours' rows of `x` (GraphSAGE).
    fn aggregate_mean(&self, layer: usize, x: &Tensor) -> Tensor;
    /// The (source, target) edges GAT attends over in layer `layer`, grouped by target.
    fn attention_edges(&self, layer: usize, add_self_loops: bool) -> (Tensor, Tensor);
}

impl Propagation for GraphTensors {
    fn targets(&self, _layer: usize) -> i64 {
        self.num_nodes
    }

    fn propagate_gcn(&self, _layer: usize, add_self_loops: bool, x: &Tensor) -> Tensor {
        self.gcn_propagate(add_self_loops, x)
    }

    fn aggregate_mean(&self, _layer: usize, x: &Tensor) -> Tensor {
        self.mean_aggregate(x)
    }

    fn attention_edges(&self, _layer: usize, add_self_loops: bool) -> (Tensor, Tensor) {
        self.gat_edges(add_self_loops)
    }
}

/// A CSR matrix's three tensors and its size, on the host until [`BlockGraph::new`] moves it.
pub struct CsrParts {
    pub crow: Tensor,
    pub col: Tensor,
    pub values: Tensor,
    pub size: [i64; 2],
}

impl CsrParts {
    fn on(&self, device: Device) -> Tensor {
        let to = |t: &Tensor| t.to_device_(device, t.kind(), true, false);
        Tensor::sparse_csr_tensor_crow_col_value_size(
            &to(&self.crow),
            &to(&self.col),
            &to(&self.values),
            self.size,
            (Kind::Float, device),
        )
    }
}

/// One layer's block as the architecture needs it: the sparse operator (GCN, SAGE) with its
/// transpose where the backward pass will multiply by it, or the edge lists (GAT).
pub enum LayerParts {
    Operator { matrix: CsrParts, transpose: Option<CsrParts> },
    Edges { src: Tensor, dst: Tensor },
}

/// A minibatch's blocks on a device, input layer first.
pub struct BlockGraph {
    layers: Vec<(i64, Layer)>,
}

enum Layer {
    Operator(Operator),
    Edges(Tensor, Tensor),
}

impl BlockGraph {
    /// Moves each layer's parts (`targets`, parts) to `device`; non-blocking, so a pinned host
    /// buffer's copy overlaps the work already queued on a CUDA device.
    pub fn new(layers: &[(i64, LayerParts)], device: Device) -> BlockGraph {
        let layers = layers
            .iter()
            .map(|(targets, parts)| {
                let layer = match parts {
                    LayerParts::Operator { matrix, transpose } => {
                        Layer::Operator(Operator::with_transpose(
                            matrix.on(device),
                            transpose.as_ref().map(|t| t.on(device)),
                        ))
                    }
                    LayerParts::Edges { src, dst } => Layer::Edges(
                        src.to_device_(device, Kind::Int64, true, false),
                        dst.to_device_(device, Kind::Int64, true, false),
                    ),
                };
                (*targets, layer)
            })
            .collect();
        BlockGraph { layers }
    }

    fn operator(&self, layer: usize) -> &Operator {
        match &self.layers[layer].1 {
            Layer::Operator(op) => op,
            Layer::Edges(..) => panic!("block {layer} was built with edge lists, not an operator"),
        }
    }
}

impl Propagation for BlockGraph {
    fn targets(&self, layer: usize) -> i64 {
        self.layers[layer].0
    }

    fn propagate_gcn(&self, layer: usize, _add_self_loops: bool, x: &Tensor) -> Tensor {
        // The block's operator already holds the self-loops it was built with.
        self.operator(layer).apply(x)
    }

    fn aggregate_mean(&self, layer: usize, x: &Tensor) -> Tensor {
        self.operator(layer).apply(x)
    }

    fn attention_edges(&self, layer: usize, _add_self_loops: bool) -> (Tensor, Tensor) {
        match &self.layers[layer].1 {
            Layer::Edges(src, dst) => (src.shallow_clone(), dst.shallow_clone()),
            Layer::Operator(_) => panic!("block {layer} was built as an operator, not edge lists"),
        }
    }
}
