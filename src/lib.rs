//! gnn-soup: souping graph neural networks.
//!
//! Layers of the crate, bottom up:
//! - [`data`]: datasets (Planetoid, OGB, npz, synthetic CSBM) as one [`data::Graph`] type;
//! - [`model`]: GCN, GraphSAGE, GAT and the paper's GAT as functional forwards over named
//!   parameter maps (PyG's names; the paper's GAT's own);
//! - [`checkpoint`]: safetensors ingredients with validated metadata;
//! - [`train`]: ingredient training from one shared initialisation;
//! - [`sampling`]: neighbour sampling into per-layer blocks (host only);
//! - [`minibatch`]: minibatch training steps and evaluation over sampled blocks;
//! - [`import`]: checkpoints trained elsewhere (PyG `.pt`, plain safetensors) as ingredients;
//! - [`soup`]: the souping strategies (uniform, greedy, GIS, LS, PLS, ensemble);
//! - [`engine`]: runs a souping job off the caller's thread and streams events;
//! - [`recipe`]: a souping job described in a TOML file or a report, to rerun;
//! - [`tui`]: the terminal dashboard over the engine's events;
//! - [`demo`]: the main job's ingredients (the embedded synthetic graph);
//! - [`cli`]: the `gnn-soup` command line;
//! - [`paths`]: where results, cache and the log live (XDG);
//! - [`crash`]: an internal error as one line for the user and a report in a file.
//!
//! No module imports one that imports it back (`tests/architecture.rs` checks it).

// The allocator. Every large activation is freed and allocated again each training step;
// glibc maps each one fresh and unmaps it when freed, so the kernel faulted in and zeroed the same
// gigabytes every step (a third of an LS epoch on the arxiv-shaped graph). jemalloc keeps freed
// pages for reuse (and gives them back after a few idle seconds, or at once through
// `engine::memory::return_free_host_memory`). With its unprefixed symbols it also serves
// libtorch's own allocations, which are the ones that matter.
// `oversize_threshold:0`: by default jemalloc serves blocks over 8 MiB from an arena that gives
// them back at once, which is exactly the churn to avoid (measured: 9.9 M page faults in 6 LS
// epochs with it, 0.7 M without; 2.9 s an epoch against 1.6 s). `muzzy_decay_ms:0`: pages
// given back are given back for real (`MADV_DONTNEED`), not left resident as `MADV_FREE` ones.
// `thp:always`: jemalloc's mappings ask for transparent huge pages (where the kernel's mode is
// `madvise`), so a fresh 2 MiB takes one fault instead of 512 (PLS, which gives its pages back
// every step, 0.72 -> 0.56 s an epoch; LS 1.5 -> 1.2 s).
// PLS has jemalloc give pages back at once (`engine::memory::ReturnFreedPages`); meanwhile
// libtorch's blocks of 1 MiB or more are reused by size class within the peak of the live ones
// (`device::keep_cpu_blocks`; the binary installs that allocator at start).
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// jemalloc's start-up options (it reads this symbol; `MALLOC_CONF` in the environment still
/// overrides them).
#[export_name = "malloc_conf"]
pub static JEMALLOC_OPTIONS: &[u8; 49] = b"oversize_threshold:0,muzzy_decay_ms:0,thp:always\0";

pub mod checkpoint;
pub mod cli;
pub mod crash;
pub mod data;
pub mod demo;
pub mod device;
pub mod engine;
pub mod fsio;
pub mod import;
pub mod inspect;
pub mod minibatch;
pub mod model;
pub mod optim;
pub mod paths;
pub mod progress;
pub mod recipe;
pub mod sampling;
pub mod signals;
pub mod soup;
pub mod train;
pub mod tui;
pub mod units;
