//! `cargo bench`: the hot paths, on generated data so they run on a fresh clone.
//!
//! The graph is `csbm:nodes=20000,features=128,classes=10,degree=10` (20,000 nodes, ~200,000
//! edges); the models are 2x64 (GAT 8 heads of 8). The souping benchmarks use 10 GCN
//! ingredients trained for 20 epochs from one init, made on first use under
//! `target/bench-fixtures/` (a few seconds). Side-by-side figures against the reference Python
//! approach come from `scripts/bench-reference.sh` and `scripts/bench-large.sh` instead
//! (docs/performance.md).
//!
//! `cargo bench -- forward` runs the benchmarks whose name contains `forward`.

use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::OnceLock;

use divan::Bencher;
use gnn_soup::checkpoint;
use gnn_soup::data::{self, DataOptions, Graph};
use gnn_soup::model::{self, Arch, ArchSpec, GraphTensors, ParamMap};
use gnn_soup::soup::learned::Fit;
use gnn_soup::soup::{
    IngredientStack, MixGranularity, OptimizerKind, SoupContext, SoupSettings, Strategy,
};
use gnn_soup::train::{train_ingredients, TrainConfig};
use tch::{Device, Kind, Tensor};

const GRAPH: &str = "csbm:nodes=20000,features=128,classes=10,degree=10";

fn main() {
    gnn_soup::device::silence_beta_warnings();
    // libtorch's CPU work is slower on the process's main thread (see src/main.rs): run there
    // as the binary runs its commands, on a thread of its own.
    std::thread::Builder::new().stack_size(64 << 20).spawn(divan::main).unwrap().join().unwrap();
}

// Fixtures are made once per thread and kept: tensors cannot be shared between threads, and
// divan runs every benchmark on the one thread `main` starts.
fn graph() -> &'static (Graph, GraphTensors) {
    thread_local! {
        static G: &'static (Graph, GraphTensors) = Box::leak(Box::new({
            let g = data::load(GRAPH, &DataOptions { data_dir: ".".into(), split_seed: 0, download: false }).unwrap();
            let gt = GraphTensors::new(&g, Device::Cpu);
            (g, gt)
        }));
    }
    G.with(|g| *g)
}

fn spec(arch: Arch) -> ArchSpec {
    TrainConfig::defaults(arch).spec_for(&graph().0)
}

fn trainable(spec: &ArchSpec) -> ParamMap {
    spec.init(0, Device::Cpu).into_iter().map(|(k, v)| (k, v.set_requires_grad(true))).collect()
}

const ARCHS: [Arch; 3] = [Arch::Gcn, Arch::Sage, Arch::Gat];

/// One training-mode forward pass over the whole graph.
#[divan::bench(args = ARCHS)]
fn forward(b: Bencher, arch: Arch) {
    let (_, gt) = graph();
    let spec = spec(arch);
    let params = trainable(&spec);
    b.bench_local(|| model::forward(&spec, &params, gt, model::Mode::TRAIN));
}

/// Forward, cross-entropy on the training nodes, backward: one training step without the update.
#[divan::bench(args = ARCHS)]
fn forward_backward(b: Bencher, arch: Arch) {
    let (_, gt) = graph();
    let spec = spec(arch);
    let params = trainable(&spec);
    b.bench_local(|| {
        model::loss(
            &model::forward(&spec, &params, gt, model::Mode::TRAIN),
            &gt.labels,
            &gt.train_idx,
        )
        .backward()
    });
}

/// The ingredients the souping benchmarks mix.
fn ingredients() -> &'static IngredientStack {
    thread_local! { static S: &'static IngredientStack = Box::leak(Box::new(make_ingredients())); }
    S.with(|s| *s)
}

fn make_ingredients() -> IngredientStack {
    {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/bench-fixtures/core-gcn");
        if !dir.join(checkpoint::MANIFEST).is_file() {
            let cfg =
                TrainConfig { ingredients: 10, epochs: 20, ..TrainConfig::defaults(Arch::Gcn) };
            train_ingredients(&graph().0, &cfg, Device::Cpu, &dir, true, &mut |_| {}).unwrap();
        }
        IngredientStack::load(&checkpoint::list_ingredients(&dir).unwrap(), Device::Cpu).unwrap()
    }
}

/// The mixing contraction: softmax weights [tensors, 10] applied to every stacked tensor.
#[divan::bench]
fn mix(b: Bencher) {
    let stack = ingredients();
    let (names, group_of) = stack.groups(MixGranularity::Tensor);
    let alpha = Tensor::ones([names.len() as i64, stack.len() as i64], (Kind::Float, Device::Cpu))
        .softmax(1, Kind::Float);
    b.bench_local(|| stack.mix(&alpha, &group_of));
}

/// One epoch of the real fit (gnn_soup::soup::learned::Fit): LS's full-graph step, or PLS's
/// step on R = 8 of K = 32 parts with its subgraph assembled from the partition. The paper's way
/// (SGD, dropout on while fitting), the heavier path and the one the reference comparisons use.
#[divan::bench(args = [Strategy::Ls, Strategy::Pls])]
fn learned_epoch(b: Bencher, strategy: Strategy) {
    let (g, gt) = graph();
    let stack = ingredients();
    let settings = SoupSettings {
        optimizer: OptimizerKind::Sgd,
        dropout: true,
        ..SoupSettings::defaults(strategy, Arch::Gcn, GRAPH)
    };
    let cancel = AtomicBool::new(false);
    let val = vec![0.0; stack.len()];
    let ctx = SoupContext {
        stack,
        graph: g,
        gt,
        settings: &settings,
        progress: &|_| {},
        cancel: &cancel,
        ingredient_val: &val,
        resume: None,
        save_state: None,
    };
    let mut fit = Fit::prepare(&ctx).unwrap();
    let mut epoch = 0;
    b.bench_local(|| {
        fit.step(epoch).unwrap();
        epoch += 1;
    });
}

/// gnn-soup's dropout (a byte mask kept for the backward pass) against libtorch's (a float mask),
/// on a [20000, 256] activation.
#[divan::bench(args = ["gnn-soup", "libtorch"])]
fn dropout(b: Bencher, which: &str) {
    let h = Tensor::randn([20_000, 256], (Kind::Float, Device::Cpu)).set_requires_grad(true);
    match which {
        "gnn-soup" => b.bench_local(|| model::dropout::dropout(&h, 0.5, true)),
        _ => b.bench_local(|| h.dropout(0.5, true)),
    }
}

/// Files of every format gnn-soup reads, written once from the ingredients and the graph.
fn files() -> &'static (tempfile::TempDir, PathBuf, PathBuf, PathBuf) {
    static F: OnceLock<(tempfile::TempDir, PathBuf, PathBuf, PathBuf)> = OnceLock::new();
    F.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let safetensors = ingredients().paths[0].clone();
        let ck = checkpoint::load(&safetensors).unwrap();
        let pt = dir.path().join("state_dict.pt");
        let named: Vec<(String, Tensor)> =
            ck.params.iter().map(|(k, v)| (k.clone(), v.shallow_clone())).collect();
        std::fs::write(&pt, gnn_soup::import::torch_file::state_dict_bytes(&named).unwrap())
            .unwrap();
        let npz = dir.path().join("graph.npz");
        data::npz::write_graph(&graph().0, &npz).unwrap();
        (dir, safetensors, pt, npz)
    })
}

/// A gnn-soup checkpoint (safetensors with validated metadata).
#[divan::bench]
fn read_checkpoint(b: Bencher) {
    let path = &files().1;
    b.bench_local(|| checkpoint::load(path).unwrap());
}

/// A PyTorch `torch.save(state_dict)` file (zip + pickle), as `gnn-soup import` reads it.
#[divan::bench]
fn read_torch_state_dict(b: Bencher) {
    let path = &files().2;
    b.bench_local(|| gnn_soup::import::torch_file::read_state_dict(path).unwrap());
}

/// The graph as an .npz as `gnn-soup data export` writes it (edge_index, x, y, splits): 20,000
/// nodes x 128 features.
#[divan::bench(sample_count = 20)]
fn read_npz(b: Bencher) {
    let path = &files().3;
    b.bench_local(|| data::npz::load(path, "bench", 0).unwrap());
}
