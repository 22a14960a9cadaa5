//! Times the pieces of one training step (forward, backward, evaluation), to see where the time
//! goes: `cargo run --release --example step_timing -- [DATASET] [DATA_DIR] [LAYERS] [HIDDEN]`,
//! e.g. `cora ../shared/datasets/planetoid` or `csbm-arxiv . 3 256`.
use std::time::Instant;

use gnn_soup::data::{self, DataOptions};
use gnn_soup::model::{self, Arch, GraphTensors};
use gnn_soup::train::TrainConfig;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let arg = |i: usize, d: &str| args.get(i).cloned().unwrap_or_else(|| d.to_string());
    let (name, dir) = (arg(1, "cora"), arg(2, "../shared/datasets/planetoid"));
    let g =
        data::load(&name, &DataOptions { data_dir: dir.into(), split_seed: 0, download: false })
            .unwrap();
    for arch in [Arch::Gcn, Arch::Sage, Arch::Gat] {
        let mut cfg = TrainConfig::defaults(arch);
        if let Some(l) = args.get(3) {
            cfg.layers = l.parse().unwrap();
        }
        if let Some(h) = args.get(4) {
            cfg.hidden = h.parse().unwrap();
        }
        let spec = cfg.spec_for(&g);
        let gt = GraphTensors::new(&g, tch::Device::Cpu);
        let params: model::ParamMap = spec
            .init(0, tch::Device::Cpu)
            .into_iter()
            .map(|(k, v)| (k, v.set_requires_grad(true)))
            .collect();
        let time = |label: &str, f: &mut dyn FnMut()| {
            f();
            let t = Instant::now();
            for _ in 0..3 {
                f();
            }
            println!("{arch} {label:<10} {:.2} ms", t.elapsed().as_secs_f64() * 1000.0 / 3.0);
        };
        time("forward", &mut || {
            let _ = model::forward(&spec, &params, &gt, model::Mode::TRAIN);
        });
        time("fwd+bwd", &mut || {
            let l = model::loss(
                &model::forward(&spec, &params, &gt, model::Mode::TRAIN),
                &gt.labels,
                &gt.train_idx,
            );
            l.backward();
        });
        time("evaluate", &mut || {
            let _ = model::evaluate(&spec, &params, &gt);
        });
    }
}
