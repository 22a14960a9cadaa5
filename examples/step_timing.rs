//! Times the pieces of one training step on Cora (forward, backward, evaluation), to see where
//! the time goes: `cargo run --release --example step_timing -- ../shared/datasets/planetoid`.
use std::time::Instant;

use gnn_soup::data::{self, DataOptions};
use gnn_soup::model::{self, Arch, GraphTensors};
use gnn_soup::train::TrainConfig;

fn main() {
    let dir = std::env::args().nth(1).unwrap_or_else(|| "../shared/datasets/planetoid".into());
    let g = data::load("cora", &DataOptions { data_dir: dir.into(), split_seed: 0, download: false }).unwrap();
    for arch in [Arch::Gcn, Arch::Sage, Arch::Gat] {
        let cfg = TrainConfig::defaults(arch);
        let spec = cfg.spec_for(&g);
        let gt = GraphTensors::new(&g, tch::Device::Cpu);
        let params: model::ParamMap = spec.init(0, tch::Device::Cpu).into_iter().map(|(k, v)| (k, v.set_requires_grad(true))).collect();
        let time = |label: &str, f: &mut dyn FnMut()| {
            f();
            let t = Instant::now();
            for _ in 0..20 {
                f();
            }
            println!("{arch} {label:<10} {:.2} ms", t.elapsed().as_secs_f64() * 1000.0 / 20.0);
        };
        time("forward", &mut || {
            let _ = model::forward(&spec, &params, &gt, true);
        });
        time("fwd+bwd", &mut || {
            let l = model::loss(&model::forward(&spec, &params, &gt, true), &gt.labels, &gt.train_idx);
            l.backward();
        });
        time("evaluate", &mut || {
            let _ = model::evaluate(&spec, &params, &gt);
        });
    }
}
