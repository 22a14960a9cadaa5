//! GNN models (GCN, GraphSAGE, GAT, and the paper's own GAT) as functional forwards over named
//! parameter maps (PyG's names; the paper's GAT keeps its own), so a soup can pass mixed weights
//! without building a module.

pub mod dropout;
pub mod forward;
pub mod graph_tensors;
pub mod propagation;
pub mod rng;
mod sparse_ops;
pub mod spec;
pub mod targets;

pub use forward::{
    accuracy, conv, evaluate, first_aggregate, first_conv_is_linear, forward, forward_after_conv,
    forward_from, forward_input, forward_planned, infer, infer_in_blocks, infer_targets, loss,
    recalibrate_batch_norm, Accuracies, BatchNormMode, Mode, INFERENCE_BLOCK_ROWS,
};
pub use graph_tensors::GraphTensors;
pub use propagation::{BlockGraph, Propagation};
pub use sparse_ops::{csr_mm, sparse_kernel};
pub use spec::{Activation, Arch, ArchSpec, Dropouts, ParamInfo, ParamMap, ParamRole};
pub use targets::TargetPlan;
