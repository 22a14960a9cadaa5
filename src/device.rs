//! Choosing where tensors live: `cpu`, `cuda`, `cuda:N` or `auto` (CUDA when available).

use anyhow::{bail, Result};
use tch::Device;

/// Parses a device name and checks that it exists on this machine.
pub fn parse_device(text: &str) -> Result<Device> {
    let t = text.trim().to_ascii_lowercase();
    let cuda_count = || tch::Cuda::device_count() as usize;
    match t.as_str() {
        "cpu" => Ok(Device::Cpu),
        "auto" => Ok(if tch::Cuda::is_available() { Device::Cuda(0) } else { Device::Cpu }),
        "cuda" | "gpu" => {
            if !tch::Cuda::is_available() {
                bail!("--device {text}: no CUDA device is available here (libtorch sees none); use --device cpu");
            }
            Ok(Device::Cuda(0))
        }
        other => {
            let Some(n) = other.strip_prefix("cuda:") else {
                bail!("unknown device {text:?}: expected cpu, cuda, cuda:N or auto");
            };
            let Ok(n) = n.parse::<usize>() else {
                bail!("unknown device {text:?}: expected cpu, cuda, cuda:N or auto")
            };
            if n >= cuda_count() {
                bail!("--device {text}: this machine has {} CUDA device(s)", cuda_count());
            }
            Ok(Device::Cuda(n))
        }
    }
}

/// `--devices`: a comma-separated list of devices (one training worker each; a device may repeat,
/// `cpu,cpu`), or `all`: every CUDA device libtorch sees, else the CPU.
pub fn parse_devices(text: &str) -> Result<Vec<Device>> {
    if text.trim().eq_ignore_ascii_case("all") {
        let n = if tch::Cuda::is_available() { tch::Cuda::device_count() as usize } else { 0 };
        return Ok(if n == 0 { vec![Device::Cpu] } else { (0..n).map(Device::Cuda).collect() });
    }
    let devices = text
        .split(',')
        .filter(|d| !d.trim().is_empty())
        .map(parse_device)
        .collect::<Result<Vec<_>>>()?;
    if devices.is_empty() {
        bail!("--devices {text:?}: expected a list such as cuda:0,cuda:1 or cpu,cpu, or all");
    }
    Ok(devices)
}

pub fn device_name(d: Device) -> String {
    match d {
        Device::Cpu => "cpu".into(),
        Device::Cuda(n) => format!("cuda:{n}"),
        other => format!("{other:?}").to_lowercase(),
    }
}

extern "C" {
    fn gnn_soup_install_reusing_cpu_allocator();
    fn gnn_soup_release_kept_cpu_blocks();
    fn gnn_soup_keep_cpu_blocks(on: bool);
    fn gnn_soup_cpu_allocator_stats(
        reused: *mut u64,
        fresh: *mut u64,
        released: *mut u64,
        kept_bytes: *mut u64,
        peak_live_bytes: *mut u64,
    );
}

/// Installs gnn-soup's CPU allocator for libtorch (`csrc/cpu_allocator.cpp`), which can keep
/// freed blocks of 1 MiB or more for reuse while [`keep_cpu_blocks`] has it on (PLS), and
/// otherwise hands them straight back as libtorch's own does. Call it at the start of the
/// process; tensors allocated before keep libtorch's allocator.
pub fn reuse_cpu_blocks() {
    // SAFETY: registers a static allocator with libtorch; no arguments.
    unsafe { gnn_soup_install_reusing_cpu_allocator() }
}

/// Has the allocator of [`reuse_cpu_blocks`] keep freed blocks of 1 MiB or more and hand them
/// out again for requests of their size class or a little under, within 5/4 of the peak of the
/// live blocks (on), or free
/// them at once (off). Either way, what it kept so far is given back and the peak restarts.
/// For PLS, whose low peak has jemalloc give pages back at once (`engine::memory`).
pub fn keep_cpu_blocks(on: bool) {
    // SAFETY: a flag and the allocator's own locked state.
    unsafe { gnn_soup_keep_cpu_blocks(on) }
}

/// Gives back every block [`keep_cpu_blocks`] had kept, and restarts the peak that bounds what it
/// keeps from what is in use now (a no-op before it is installed).
pub fn release_kept_cpu_blocks() {
    // SAFETY: no arguments; the allocator locks its own state.
    unsafe { gnn_soup_release_kept_cpu_blocks() }
}

/// What the reusing CPU allocator did so far (see [`reuse_cpu_blocks`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CpuBlockStats {
    /// Requests served with a kept block.
    pub reused: u64,
    /// Requests of a kept size served with new memory.
    pub fresh: u64,
    /// Kept blocks given back (where a request finds none of its size and taking new memory
    /// beside them would pass `peak_live_bytes`).
    pub released: u64,
    /// Bytes kept now.
    pub kept_bytes: u64,
    /// The most bytes of blocks of the kept sizes in use at once.
    pub peak_live_bytes: u64,
}

pub fn cpu_block_stats() -> CpuBlockStats {
    let [mut reused, mut fresh, mut released, mut kept_bytes, mut peak_live_bytes] = [0; 5];
    // SAFETY: five valid out-pointers for the call.
    unsafe {
        gnn_soup_cpu_allocator_stats(
            &mut reused,
            &mut fresh,
            &mut released,
            &mut kept_bytes,
            &mut peak_live_bytes,
        )
    };
    CpuBlockStats { reused, fresh, released, kept_bytes, peak_live_bytes }
}

/// libtorch prints a "beta feature" warning the first time a process uses sparse CSR tensors
/// and `index_reduce`, over whatever the terminal shows. Those warnings are printed once per
/// process, so trigger them here with stderr pointed at /dev/null.
pub fn silence_beta_warnings() {
    use std::os::fd::AsRawFd;
    let Ok(null) = std::fs::OpenOptions::new().write(true).open("/dev/null") else { return };
    // SAFETY: plain descriptor juggling on this process's own stderr, restored before returning.
    unsafe {
        let saved = libc::dup(2);
        if saved < 0 {
            return;
        }
        libc::dup2(null.as_raw_fd(), 2);
        let _ = std::panic::catch_unwind(|| {
            let _g = tch::no_grad_guard();
            let t = tch::Tensor::eye(2, (tch::Kind::Float, Device::Cpu));
            let _ = t.to_sparse_csr(None::<i64>).mm(&t);
            let idx = tch::Tensor::from_slice(&[0i64, 1]);
            let _ = t.index_reduce(0, &idx, &t, "amax", false);
        });
        libc::dup2(saved, 2);
        libc::close(saved);
    }
}
