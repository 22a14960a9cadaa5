//! Times full-graph inference three ways on one dataset and ingredient: the whole-graph forward,
//! and inference in row blocks of two sizes (`cargo run --release --example infer_timing -- DIR
//! DATASET`).
use std::time::Instant;

use gnn_soup::data::{self, DataOptions};
use gnn_soup::model::{self, GraphTensors};
use gnn_soup::soup::IngredientStack;

fn main() {
    std::thread::Builder::new().stack_size(64 << 20).spawn(run).unwrap().join().unwrap();
}

fn run() {
    let args: Vec<String> = std::env::args().collect();
    let dir = std::path::PathBuf::from(&args[1]);
    let stack =
        IngredientStack::load(&[dir.join("ingredient-00.safetensors")], tch::Device::Cpu).unwrap();
    let data_dir = std::env::var("GNN_SOUP_DATA_DIR").unwrap_or_else(|_| ".".into());
    let g = data::load(
        &args[2],
        &DataOptions { data_dir: data_dir.into(), split_seed: 0, download: false },
    )
    .unwrap();
    let gt = GraphTensors::new(&g, tch::Device::Cpu);
    let (spec, params) = (&stack.spec, stack.ingredient(0));
    let n = gt.num_nodes;
    let time = |label: &str, f: &dyn Fn() -> tch::Tensor| {
        let _ = f();
        let mut v: Vec<f64> = (0..5)
            .map(|_| {
                let t = Instant::now();
                let _ = f();
                t.elapsed().as_secs_f64()
            })
            .collect();
        v.sort_by(f64::total_cmp);
        println!("{label:<32} {:8.1} ms", v[2] * 1000.0);
    };
    time("whole-graph forward", &|| {
        tch::no_grad(|| model::forward(spec, &params, &gt, model::Mode::EVAL))
    });
    time("one block", &|| model::infer_in_blocks(spec, &params, &gt, None, n));
    time("blocks of 65,536", &|| model::infer_in_blocks(spec, &params, &gt, None, 65_536));
    time("blocks of 16,384", &|| model::infer_in_blocks(spec, &params, &gt, None, 16_384));
    time("blocks of 4,096", &|| model::infer_in_blocks(spec, &params, &gt, None, 4_096));
}
