//! What only a GPU can check. Ignored by default (the CI machine has none); run on a CUDA machine
//! with `cargo test --release --test cuda -- --include-ignored`, or from the GPU bundle
//! (`make gpu-bundle`, docs/gpu.md), whose runner skips them, saying so, where there is no GPU.
//! Each test fails, saying so, when CUDA is not there: none passes by skipping. Generated data
//! only, so the test binary runs wherever it is copied.

mod common;

use gnn_soup::data;
use gnn_soup::model::{self, GraphTensors};
use gnn_soup::soup::IngredientStack;
use tch::{Device, Kind, Tensor};

fn cuda() -> Device {
    assert!(
        tch::Cuda::is_available(),
        "these tests need CUDA: libtorch sees no CUDA device (tch::Cuda::is_available() is false)"
    );
    Device::Cuda(0)
}

fn train(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let (ok, _, stderr) = common::run_bin_generated(
        &[
            "train",
            "--dataset",
            "csbm:nodes=3000",
            "--hidden",
            "64",
            "--ingredients",
            "3",
            "--epochs",
            "20",
            "--device",
            "cuda",
            "--out",
            dir.to_str().unwrap(),
        ],
        &dir.with_extension("data"),
    );
    assert!(ok, "{stderr}");
    (0..3).map(|i| dir.join(format!("ingredient-{i:02}.safetensors"))).collect()
}

/// The same ingredients give the same logits on the GPU as on the CPU, for every architecture's
/// forward (the sparse products, GAT's segment softmax) and the gradient through the sparse
/// product with a given transpose.
#[test]
#[ignore = "needs CUDA; scripts/gpu-check.sh runs it"]
fn forward_and_sparse_gradients_match_the_cpu() {
    let gpu = cuda();
    let data_dir = tempfile::tempdir().unwrap();
    let g = data::load("csbm:nodes=2000", &common::data_opts(data_dir.path())).unwrap();
    let (cpu_g, gpu_g) = (GraphTensors::new(&g, Device::Cpu), GraphTensors::new(&g, gpu));
    for arch in [model::Arch::Gcn, model::Arch::Sage, model::Arch::Gat] {
        let spec = gnn_soup::train::TrainConfig::defaults(arch).spec_for(&g);
        let params = spec.init(3, Device::Cpu);
        let on_gpu: model::ParamMap =
            params.iter().map(|(k, v)| (k.clone(), v.to_device(gpu))).collect();
        let a = model::forward(&spec, &params, &cpu_g, model::Mode::EVAL);
        let b = model::forward(&spec, &on_gpu, &gpu_g, model::Mode::EVAL).to_device(Device::Cpu);
        assert!(
            a.allclose(&b, 1e-4, 1e-4, false),
            "{arch}: max difference {}",
            (&a - &b).abs().max().double_value(&[])
        );
    }
    for (name, graph) in [("cpu", &cpu_g), ("cuda", &gpu_g)] {
        let x = Tensor::ones([g.num_nodes as i64, 4], (Kind::Float, graph.device))
            .set_requires_grad(true);
        graph.mean_aggregate(&x).sum(Kind::Float).backward();
        // d/dx_j of sum_i mean_{k in N(i)} x_k = sum over j's out-neighbours i of 1/deg(i).
        let total = x.grad().sum(Kind::Double).double_value(&[]);
        let with_neighbours =
            g.dst.iter().collect::<std::collections::BTreeSet<_>>().len() as f64 * 4.0;
        assert!(
            (total - with_neighbours).abs() < 1e-2,
            "{name}: gradient mass {total}, expected {with_neighbours}"
        );
    }
}

/// A soup run on `--device cuda` matches the CPU's (LS without dropout, to float tolerance) and
/// reports its device memory both ways: NVML's view of the process and
/// libtorch's allocator counter, the first at least the second.
#[test]
#[ignore = "needs CUDA; scripts/gpu-check.sh runs it"]
fn soups_on_the_gpu_match_the_cpu_and_report_device_memory() {
    cuda();
    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path().join("run");
    let paths = train(&run);
    let soup = |device: &str| {
        let out = tmp.path().join(format!("soup-{device}"));
        let (ok, stdout, stderr) = common::run_bin_generated(
            &[
                "soup",
                "--ingredients",
                run.to_str().unwrap(),
                "--strategy",
                "ls",
                "--epochs",
                "20",
                "--no-dropout",
                "--device",
                device,
                "--json",
                "--out",
                out.to_str().unwrap(),
            ],
            &tmp.path().join("data"),
        );
        assert!(ok, "{stderr}");
        serde_json::from_str::<serde_json::Value>(&stdout).unwrap()
    };
    let (cpu, gpu) = (soup("cpu"), soup("cuda"));
    {
        let (c, g) = (&cpu, &gpu);
        let (vc, vg) = (c["val_acc"].as_f64().unwrap(), g["val_acc"].as_f64().unwrap());
        assert!((vc - vg).abs() <= 0.002, "{}: val {vc} on CPU, {vg} on CUDA", c["strategy"]);
        let nvml = g["peak_device_bytes"].as_u64();
        let allocator = g["peak_device_allocated_bytes"]
            .as_u64()
            .unwrap_or_else(|| panic!("no libtorch peak in {g}"));
        assert!(allocator > 0);
        if let Some(nvml) = nvml {
            assert!(
                nvml >= allocator,
                "NVML saw {nvml} bytes, less than libtorch's allocator peak {allocator}"
            );
        }
    }
    let stack = IngredientStack::load(&paths, Device::Cuda(0)).unwrap();
    assert_eq!(stack.device, Device::Cuda(0));
}

/// `train --devices all` runs a worker on every GPU (two workers on the one GPU when there is only
/// one, which still exercises the pool on CUDA), every worker trains, and the ingredients agree
/// with one worker's within float rounding (GPU sums need not be bitwise reproducible).
#[test]
#[ignore = "needs CUDA; scripts/gpu-check.sh runs it"]
fn a_pool_of_gpu_workers_trains_every_ingredient() {
    let _ = cuda();
    let n = tch::Cuda::device_count() as usize;
    let devices = if n > 1 { "all".to_string() } else { "cuda:0,cuda:0".to_string() };
    let dir = tempfile::tempdir().unwrap();
    let (pool, one) = (dir.path().join("pool"), dir.path().join("one"));
    let args = |out: &std::path::Path, devices: &str| {
        vec![
            "train".to_string(),
            "--dataset".into(),
            "csbm:nodes=3000".into(),
            "--ingredients".into(),
            "4".into(),
            "--epochs".into(),
            "20".into(),
            "--devices".into(),
            devices.into(),
            "--out".into(),
            out.display().to_string(),
        ]
    };
    let run = |a: Vec<String>| {
        let out = common::bin()
            .args(&a)
            .env("GNN_SOUP_DATA_DIR", dir.path().join("data"))
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let log = run(args(&pool, &devices));
    assert!(
        log.contains("on worker 0") && log.contains("on worker 1"),
        "every worker trained: {log}"
    );
    run(args(&one, "cuda:0"));
    for i in 0..4 {
        let f = format!("ingredient-{i:02}.safetensors");
        let (a, b) = (
            gnn_soup::checkpoint::load(&pool.join(&f)).unwrap(),
            gnn_soup::checkpoint::load(&one.join(&f)).unwrap(),
        );
        for (name, t) in &a.params {
            let diff = (t - &b.params[name]).abs().max().double_value(&[]);
            assert!(diff < 1e-3, "{f} {name}: {diff}");
        }
    }
}
