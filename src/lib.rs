//! gnn-soup: souping graph neural networks.
//!
//! Layers of the crate, bottom up:
//! - [`data`]: datasets (Planetoid, OGB, npz, synthetic CSBM) as one [`data::Graph`] type;
//! - [`model`]: GCN, GraphSAGE and GAT as functional forwards over PyG-named parameter maps;
//! - [`checkpoint`]: safetensors ingredients with validated metadata;
//! - [`train`]: ingredient training from one shared initialisation;
//! - [`import`]: checkpoints trained elsewhere (PyG `.pt`, plain safetensors) as ingredients;
//! - [`soup`]: the souping strategies (uniform, greedy, GIS, LS, PLS, ensemble);
//! - [`engine`]: runs a souping job off the caller's thread and streams events;
//! - [`tui`]: the terminal dashboard over the engine's events;
//! - [`demo`]: the main job's ingredients (the embedded synthetic graph);
//! - [`cli`]: the `gnn-soup` command line.
//!
//! No module imports one that imports it back (`tests/architecture.rs` checks it).

pub mod checkpoint;
pub mod cli;
pub mod data;
pub mod demo;
pub mod device;
pub mod engine;
pub mod fsio;
pub mod import;
pub mod inspect;
pub mod model;
pub mod optim;
pub mod progress;
pub mod signals;
pub mod soup;
pub mod train;
pub mod tui;
pub mod units;
