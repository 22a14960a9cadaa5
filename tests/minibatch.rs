//! Minibatch training over sampled blocks: with every neighbour taken, a block computes the
//! whole graph's rows and a minibatch step is the full-batch step; sampled fanouts train models
//! that still classify Cora; the same seed gives the same ingredient.

mod common;

use gnn_soup::data::{self, Graph};
use gnn_soup::minibatch::{Minibatch, Sampler};
use gnn_soup::model::{self, Arch, ArchSpec, GraphTensors, Mode, ParamMap};
use gnn_soup::sampling::Fanout;
use gnn_soup::train::{train_one, TrainConfig};
use rand::SeedableRng;
use tch::{Device, Tensor};

fn csbm() -> Graph {
    data::load(
        "csbm:nodes=400,train=120,val=60,test=60,homophily=0.7",
        &common::data_opts(std::path::Path::new(".")),
    )
    .unwrap()
}

/// Every architecture's layouts that a block must reproduce: PyG's GCN (self-loops added) and
/// DGL's (the graph as it is), GraphSAGE, PyG's GAT; three layers, no dropout, no batch norm.
fn configs() -> Vec<TrainConfig> {
    let base = |arch| TrainConfig {
        layers: 3,
        hidden: 16,
        dropout: 0.0,
        epochs: 3,
        ingredients: 1,
        ..TrainConfig::defaults(arch)
    };
    vec![
        base(Arch::Gcn),
        TrainConfig { add_self_loops: false, ..base(Arch::Gcn) },
        base(Arch::Sage),
        TrainConfig { heads: 2, hidden: 8, ..base(Arch::Gat) },
    ]
}

fn max_diff(a: &Tensor, b: &Tensor) -> f64 {
    (a - b).abs().max().double_value(&[])
}

/// A forward pass over full-fanout blocks gives the whole graph's logits at the seeds, in the
/// seeds' order, for every layout (the block operators against the whole graph's rows).
#[test]
fn full_fanout_blocks_give_the_whole_graphs_rows() {
    let g = csbm();
    let gt = GraphTensors::new(&g, Device::Cpu);
    let seeds: Vec<i64> = (0..g.num_nodes as i64).rev().step_by(7).collect();
    for cfg in configs() {
        let spec = cfg.spec_for(&g);
        let params = spec.init(4, Device::Cpu);
        let whole = tch::no_grad(|| model::forward(&spec, &params, &gt, Mode::EVAL));
        let want = whole.index_select(0, &Tensor::from_slice(&seeds));
        let sampler = Sampler::new(&g, &spec);
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        let batch = sampler.batch(&seeds, &[Fanout::All; 3], &mut rng, false, Device::Cpu);
        let got = tch::no_grad(|| {
            batch.to_device(&gt, spec.row_normalize).forward(&spec, &params, Mode::EVAL)
        });
        assert_eq!(got.size(), want.size(), "{}", spec.describe());
        let diff = max_diff(&got, &want);
        assert!(diff < 1e-4, "{}: {diff}", spec.describe());
        assert!(want.abs().max().double_value(&[]) > 1e-2, "{}: logits ~0", spec.describe());
        // A sampled fanout computes something else (it is an estimate).
        let sampled = sampler.batch(&seeds, &[Fanout::At(2); 3], &mut rng, false, Device::Cpu);
        let estimate = tch::no_grad(|| {
            sampled.to_device(&gt, spec.row_normalize).forward(&spec, &params, Mode::EVAL)
        });
        assert!(max_diff(&estimate, &want) > 1e-3, "{}: fanout 2 is exact?", spec.describe());
    }
}

fn train(g: &Graph, cfg: &TrainConfig, seed: u64) -> ParamMap {
    let spec = cfg.spec_for(g);
    let gt = GraphTensors::new(g, Device::Cpu);
    let init = spec.init(cfg.seed as i64, Device::Cpu);
    let sampler = Sampler::new(g, &spec);
    train_one(&spec, &init, &gt, Some(&sampler), cfg, seed, &mut |_| {}).unwrap().params
}

fn params_diff(spec: &ArchSpec, a: &ParamMap, b: &ParamMap) -> f64 {
    spec.params().iter().map(|p| max_diff(&a[&p.name], &b[&p.name])).fold(0.0, f64::max)
}

/// Three Adam steps in one minibatch holding every training node, with every neighbour, give
/// the weights three full-batch steps give: the same loss, the same gradients.
#[test]
fn a_full_fanout_minibatch_step_is_the_full_batch_step() {
    let g = csbm();
    for cfg in configs() {
        let spec = cfg.spec_for(&g);
        let full = train(&g, &cfg, 9);
        let minibatch = Some(Minibatch { batch_size: g.train.len(), fanout: vec![Fanout::All; 3] });
        let batched = train(&g, &TrainConfig { minibatch, ..cfg.clone() }, 9);
        let moved = params_diff(&spec, &full, &spec.init(cfg.seed as i64, Device::Cpu));
        assert!(moved > 1e-3, "{}: training moved nothing ({moved})", spec.describe());
        let diff = params_diff(&spec, &full, &batched);
        assert!(diff < 1e-5, "{}: {diff}", spec.describe());
    }
}

/// Sampled minibatch training is reproducible from its seed, differs with another, and still
/// trains: on Cora, a 2-layer GCN with fanout 5,5 in batches of 32 classifies the test nodes as
/// a full-batch one does (about 81%).
#[test]
fn sampled_minibatch_training_is_seeded_and_trains_cora() {
    let dir = common::planetoid_dir();
    let g = data::load("cora", &common::data_opts(&dir)).unwrap();
    let cfg = TrainConfig {
        epochs: 60,
        ingredients: 1,
        minibatch: Some(Minibatch { batch_size: 32, fanout: vec![Fanout::At(5); 2] }),
        ..TrainConfig::defaults(Arch::Gcn)
    };
    let spec = cfg.spec_for(&g);
    let short = TrainConfig { epochs: 2, ..cfg.clone() };
    let (a, b, c) = (train(&g, &short, 3), train(&g, &short, 3), train(&g, &short, 4));
    assert_eq!(params_diff(&spec, &a, &b), 0.0, "same seed, other weights");
    assert!(params_diff(&spec, &a, &c) > 1e-4, "another seed, same weights");
    let params = train(&g, &cfg, 3);
    let acc = model::evaluate(&spec, &params, &GraphTensors::new(&g, Device::Cpu));
    eprintln!("cora minibatch gcn: val {:.4} test {:.4}", acc.val, acc.test);
    assert!(acc.test >= 0.75, "test accuracy {:.4}", acc.test);
}

/// Sampled validation with every neighbour is exact inference's accuracy; the batch norm of the
/// paper's GAT (batch statistics always) runs on blocks too.
#[test]
fn sampled_validation_with_full_fanout_is_exact() {
    let g = csbm();
    let gt = GraphTensors::new(&g, Device::Cpu);
    for cfg in configs() {
        let spec = cfg.spec_for(&g);
        let params = spec.init(2, Device::Cpu);
        let sampler = Sampler::new(&g, &spec);
        let all = Minibatch { batch_size: 17, fanout: vec![Fanout::All; 3] };
        let sampled =
            gnn_soup::minibatch::sampled_accuracy(&spec, &params, &gt, &sampler, &g.val, &all, 0);
        let exact = model::evaluate(&spec, &params, &gt).val;
        assert!((sampled - exact).abs() < 1e-9, "{}: {sampled} vs {exact}", spec.describe());
    }
    let cfg = TrainConfig {
        layers: 2,
        epochs: 2,
        minibatch: Some(Minibatch { batch_size: 50, fanout: vec![Fanout::At(3); 2] }),
        ..TrainConfig::defaults(Arch::PaperGat)
    };
    let params = train(&g, &cfg, 1);
    let logits = model::infer(&cfg.spec_for(&g), &params, &gt);
    assert_eq!(logits.size(), [g.num_nodes as i64, g.num_classes as i64]);
    assert!(logits.isfinite().all().int64_value(&[]) == 1);
}

/// The command line: `train --batch-size --fanout` records the minibatch settings in every
/// checkpoint (a resumed run with another fanout is another run and is refused), writes the
/// per-step progress to the events file, and refuses a fanout list of the wrong length; `eval`
/// over full-fanout blocks gives exact inference's accuracies.
#[test]
fn train_and_eval_in_minibatches_from_the_command_line() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("run");
    let out_arg = out.to_str().unwrap();
    let train = |fanout: &str| {
        common::run_bin_generated(
            &[
                "train",
                "--dataset",
                "csbm:nodes=1500,train=300,val=300,test=300",
                "--ingredients",
                "2",
                "--epochs",
                "3",
                "--batch-size",
                "64",
                "--fanout",
                fanout,
                "--device",
                "cpu",
                "--out",
                out_arg,
            ],
            tmp.path(),
        )
    };
    let (ok, _, stderr) = train("-1,4");
    assert!(ok, "{stderr}");
    assert!(stderr.contains("batches of 64, fanout -1,4"), "{stderr}");
    let meta = gnn_soup::checkpoint::read_meta(&out.join("ingredient-01.safetensors")).unwrap();
    assert_eq!(
        meta.extra["training"]["minibatch"],
        serde_json::json!({"batch_size": 64, "fanout": [-1, 4]})
    );
    let events = std::fs::read_to_string(out.join("train-events.jsonl")).unwrap();
    let batches: Vec<serde_json::Value> = events
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|r| r["event"] == "batch")
        .collect();
    let per_epoch = meta_train_nodes(tmp.path()).div_ceil(64);
    // At most one step a second is written, and each epoch's last: 2 ingredients x 3 epochs.
    let last_steps = batches.iter().filter(|b| b["batch"] == per_epoch).count();
    assert_eq!(last_steps, 2 * 3, "{events}");
    assert!(batches.len() <= 2 * 3 * per_epoch, "{events}");
    for b in &batches {
        assert!(b["batches"] == per_epoch && b["seeds_per_second"].as_f64().unwrap() > 0.0, "{b}");
    }

    std::fs::remove_file(out.join("manifest.json")).unwrap();
    let (ok, _, stderr) = train("5,4");
    assert!(!ok && stderr.contains("another training run"), "{stderr}");

    let (ok, _, stderr) = train("5,4,3");
    assert!(!ok && stderr.contains("3 fanouts for a model of 2 layers"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");

    let file = out.join("ingredient-00.safetensors");
    let eval = |extra: &[&str]| {
        let mut args = vec!["eval", file.to_str().unwrap(), "--device", "cpu", "--json"];
        args.extend_from_slice(extra);
        let (ok, stdout, stderr) = common::run_bin_generated(&args, tmp.path());
        assert!(ok, "{stderr}");
        serde_json::from_str::<serde_json::Value>(&stdout).unwrap()
    };
    let exact = eval(&[]);
    let sampled = eval(&["--eval-batch-size", "100", "--eval-fanout", "-1,-1"]);
    assert_eq!((exact["exact"].as_bool(), sampled["exact"].as_bool()), (Some(true), Some(false)));
    for split in ["train_acc", "val_acc", "test_acc"] {
        let (a, b) = (exact[split].as_f64().unwrap(), sampled[split].as_f64().unwrap());
        assert!((a - b).abs() < 1e-9, "{split}: {a} vs {b}");
    }
}

/// The training nodes of `csbm:nodes=1500,...` as the binary generates it (same cache directory).
fn meta_train_nodes(data: &std::path::Path) -> usize {
    data::load("csbm:nodes=1500,train=300,val=300,test=300", &common::data_opts(data))
        .unwrap()
        .train
        .len()
}
