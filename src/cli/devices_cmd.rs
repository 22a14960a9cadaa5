//! `gnn-soup devices`: what this build computes on. The first thing to run on a new GPU box (the
//! GPU bundle's runner starts with it): which torch the binary was built against, whether the
//! libtorch it loaded sees CUDA, and each device's name and memory as NVML reports them.

use anyhow::Result;
use serde::Serialize;

use super::output::print_json;
use crate::engine::memory::nvml_device_of;
use crate::units::mib;

#[derive(Serialize)]
struct Report {
    gnn_soup_version: &'static str,
    /// The torch whose headers and libraries this binary was built against.
    torch_version: &'static str,
    /// libtorch's CPU threads.
    cpu_threads: i32,
    /// What multiplies sparse by dense matrices on the CPU: gnn-soup's "avx512" or "avx2"
    /// kernel, or "libtorch" (other CPUs, or `GNN_SOUP_SPMM=libtorch`).
    cpu_sparse_kernel: &'static str,
    cuda_available: bool,
    cudnn_available: bool,
    cuda_devices: Vec<CudaDevice>,
    /// Why NVML gave no names or memory, when it did not (no driver library, no permission).
    nvml_error: Option<String>,
}

#[derive(Serialize)]
struct CudaDevice {
    name: String,
    index: usize,
    total_bytes: Option<u64>,
    free_bytes: Option<u64>,
}

pub fn run(json: bool) -> Result<()> {
    let report = probe();
    if json {
        return print_json(&report);
    }
    println!("gnn-soup {}, built against torch {}", report.gnn_soup_version, report.torch_version);
    let products = match report.cpu_sparse_kernel {
        "libtorch" => "libtorch's sparse products".to_string(),
        kernel => format!("sparse products by gnn-soup's {kernel} kernel"),
    };
    println!("CPU: {} threads, {products}", report.cpu_threads);
    if report.cuda_devices.is_empty() {
        println!("no CUDA device: libtorch sees none; everything runs on the CPU (--device cpu)");
    } else {
        let cudnn = if report.cudnn_available { "cuDNN available" } else { "no cuDNN" };
        println!("{} CUDA device(s), {cudnn}:", report.cuda_devices.len());
        for d in &report.cuda_devices {
            let memory = match (d.total_bytes, d.free_bytes) {
                (Some(t), Some(f)) => format!("{} MiB total, {} MiB free", mib(t), mib(f)),
                _ => "memory unknown".into(),
            };
            println!("  cuda:{}  {}  {memory}", d.index, d.name);
        }
    }
    if let Some(why) = &report.nvml_error {
        println!("NVML: {why} (device names, memory and the dashboard's GPU panel need it)");
    }
    Ok(())
}

fn probe() -> Report {
    let cuda_available = tch::Cuda::is_available();
    let count = if cuda_available { tch::Cuda::device_count() as usize } else { 0 };
    let nvml = nvml_wrapper::Nvml::init();
    let nvml_error = match &nvml {
        Err(e) if count > 0 => Some(format!("unavailable: {e}")),
        _ => None,
    };
    let cuda_devices = (0..count)
        .map(|index| {
            let nvml_device = nvml.as_ref().ok().and_then(|n| nvml_device_of(n, index));
            let memory = nvml_device.as_ref().and_then(|d| d.memory_info().ok());
            CudaDevice {
                name: nvml_device
                    .and_then(|d| d.name().ok())
                    .unwrap_or_else(|| "(name unknown)".into()),
                index,
                total_bytes: memory.as_ref().map(|m| m.total),
                free_bytes: memory.as_ref().map(|m| m.free),
            }
        })
        .collect();
    Report {
        cpu_threads: tch::get_num_threads(),
        cpu_sparse_kernel: crate::model::sparse_kernel(),
        gnn_soup_version: env!("CARGO_PKG_VERSION"),
        torch_version: env!("GNN_SOUP_TORCH_VERSION"),
        cuda_available,
        cudnn_available: cuda_available && tch::Cuda::cudnn_is_available(),
        cuda_devices,
        nvml_error,
    }
}
