//! Where an LS epoch's time goes, piece by piece, on real ingredients:
//! `cargo run --release --example ls_epoch_profile -- INGREDIENT_DIR [DATASET] [REPEATS] [ONLY]`,
//! where ONLY times just the pieces whose label contains it (for `perf record` on one piece).
use std::time::Instant;

use gnn_soup::data::{self, DataOptions};
use gnn_soup::model::{self, GraphTensors};
use gnn_soup::soup::IngredientStack;
use tch::{Kind, Tensor};

fn main() {
    // As the binary does (src/main.rs), unless GNN_SOUP_PLAIN_ALLOCATOR is set (to compare).
    if std::env::var_os("GNN_SOUP_PLAIN_ALLOCATOR").is_none() {
        gnn_soup::device::reuse_cpu_blocks();
    }
    // On a thread of its own, as the binary runs its commands (see src/main.rs: libtorch's CPU
    // work is much slower on the main thread).
    std::thread::spawn(body).join().unwrap()
}

fn body() {
    let args: Vec<String> = std::env::args().collect();
    let dir = std::path::PathBuf::from(&args[1]);
    let dataset = args.get(2).cloned().unwrap_or_else(|| "csbm-arxiv".into());
    let repeats: usize = args.get(3).map_or(3, |r| r.parse().unwrap());
    let only = args.get(4).cloned().unwrap_or_default();
    let mut paths: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with("ingredient-"))
        // Exported copies (`ingredient-00.pt`) may sit beside the checkpoints.
        .filter(|p| p.extension().is_some_and(|e| e == "safetensors"))
        .collect();
    paths.sort();
    let stack = IngredientStack::load(&paths, tch::Device::Cpu).unwrap();
    let data_dir = std::env::var("GNN_SOUP_DATA_DIR").unwrap_or_else(|_| ".".into());
    let g = data::load(
        &dataset,
        &DataOptions { data_dir: data_dir.into(), split_seed: 0, download: false },
    )
    .unwrap();
    let gt = GraphTensors::new(&g, tch::Device::Cpu);
    let spec = &stack.spec;
    let (_, group_of) = stack.groups(gnn_soup::soup::MixGranularity::Tensor);
    let pre = model::first_aggregate(spec, &gt);
    let _ = gt.gcn_adj(spec.add_self_loops);
    let logits_a = Tensor::ones(
        [group_of.iter().max().unwrap() + 1, stack.len()].map(|v| v as i64),
        (Kind::Float, tch::Device::Cpu),
    )
    .set_requires_grad(true);
    let time = |label: &str, f: &mut dyn FnMut()| {
        if !label.contains(only.as_str()) {
            return;
        }
        f();
        let mut v: Vec<f64> = (0..repeats)
            .map(|_| {
                let t = Instant::now();
                f();
                t.elapsed().as_secs_f64()
            })
            .collect();
        v.sort_by(f64::total_cmp);
        println!("{label:<40} {:8.1} ms", v[v.len() / 2] * 1000.0);
    };
    let single: model::ParamMap = stack
        .ingredient(0)
        .into_iter()
        .map(|(k, v)| (k, v.copy().set_requires_grad(true)))
        .collect();
    time("single model fwd (train)", &mut || {
        let _ = model::forward(spec, &single, &gt, model::Mode::TRAIN);
    });
    time("single model fwd+bwd (train)", &mut || {
        model::loss(
            &model::forward(spec, &single, &gt, model::Mode::TRAIN),
            &gt.labels,
            &gt.val_idx,
        )
        .backward();
    });
    time("single model fwd+bwd, first aggregate reused", &mut || {
        model::loss(
            &model::forward_from(spec, &single, &gt, model::Mode::TRAIN, pre.as_ref()),
            &gt.labels,
            &gt.val_idx,
        )
        .backward();
    });
    time("mix", &mut || {
        let _ = stack.mix(&logits_a.softmax(1, Kind::Float), &group_of);
    });
    time("LS step: mix + fwd", &mut || {
        let p = stack.mix(&logits_a.softmax(1, Kind::Float), &group_of);
        let _ = model::forward_from(spec, &p, &gt, model::Mode::TRAIN, pre.as_ref());
    });
    time("LS step: mix + fwd + bwd", &mut || {
        let p = stack.mix(&logits_a.softmax(1, Kind::Float), &group_of);
        model::loss(
            &model::forward_from(spec, &p, &gt, model::Mode::TRAIN, pre.as_ref()),
            &gt.labels,
            &gt.val_idx,
        )
        .backward();
    });
    // As the fit runs it (for models without batch norm, as these are): through the plan of the
    // fitting nodes, and with the first aggregation reused only where the model does not drop
    // the first layer's input (the lines above reuse it regardless).
    let plan = model::TargetPlan::for_training(spec, &gt, &gt.val_idx);
    let fit_mode = model::Mode { dropout: true, batch_norm: model::BatchNormMode::Running };
    let pre_rows = pre.as_ref().filter(|_| !spec.drops_input(0)).map(|p| plan.first_rows(p));
    time("LS step: mix + fwd + bwd, as the fit runs it", &mut || {
        let p = stack.mix(&logits_a.softmax(1, Kind::Float), &group_of);
        let logits = model::forward_planned(spec, &p, &gt, &plan, fit_mode, pre_rows.as_ref());
        plan.loss(&logits, &gt.labels, &gt.val_idx).backward();
    });
    time("LS step without dropout", &mut || {
        let p = stack.mix(&logits_a.softmax(1, Kind::Float), &group_of);
        model::loss(
            &model::forward_from(spec, &p, &gt, model::Mode::EVAL, pre.as_ref()),
            &gt.labels,
            &gt.val_idx,
        )
        .backward();
    });
    time("evaluation pass", &mut || {
        let p = tch::no_grad(|| stack.mix(&logits_a.softmax(1, Kind::Float), &group_of));
        let _ = model::evaluate(spec, &p, &gt);
    });
    let h = Tensor::randn([g.num_nodes as i64, 256], (Kind::Float, tch::Device::Cpu));
    let w = Tensor::randn([256, 256], (Kind::Float, tch::Device::Cpu));
    let adj = gt.gcn_adj(spec.add_self_loops).shallow_clone();
    time("dense [N,256]x[256,256]", &mut || {
        let _ = h.mm(&w);
    });
    time("sparse adj x [N,256], libtorch", &mut || {
        let _ = adj.mm(&h);
    });
    time("sparse adj x [N,256], gnn-soup's kernel", &mut || {
        let _ = model::csr_mm(&adj, &h);
    });
    let hg = h.copy().set_requires_grad(true);
    time("sparse adj x [N,256] fwd+bwd", &mut || {
        adj.mm(&hg).sum(Kind::Float).backward();
    });
    time("operator x [N,256] fwd+bwd (given transpose)", &mut || {
        gt.gcn_propagate(spec.add_self_loops, &hg).sum(Kind::Float).backward();
    });
    time("dropout mask [N,256]", &mut || {
        let _ = model::dropout::dropout(&h, 0.5, true);
    });
    time("libtorch dropout [N,256]", &mut || {
        let _ = h.dropout(0.5, true);
    });
}
