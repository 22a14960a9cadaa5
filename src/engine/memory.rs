//! Memory telemetry: the process's resident-set high-water mark, resettable per job (Linux).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use tch::Device;

/// Resets the kernel's peak-RSS counter to the current RSS, so the next reading covers only what
/// follows (Linux >= 4.0; elsewhere a no-op and readings cover the whole process).
pub fn reset_peak_rss() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

/// Returns the free pages the allocator holds to the kernel (after a strategy, so that the next
/// one's memory reading starts from what is really in use). See `lib.rs` for why jemalloc keeps
/// freed pages at all.
pub fn return_free_host_memory() {
    crate::device::release_kept_cpu_blocks();
    // "arena.<MALLCTL_ARENAS_ALL>.purge": every arena's unused dirty pages.
    // SAFETY: a documented jemalloc control that takes and returns nothing.
    unsafe {
        tikv_jemalloc_sys::mallctl(
            c"arena.4096.purge".as_ptr(),
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            0,
        );
    }
}

/// While alive, every allocator arena hands freed pages back to the kernel at once instead of
/// keeping them for reuse: for work whose point is a low peak (PLS), whose buffers change size
/// every step so that kept pages fragment. Measured on the arxiv-shaped graph (GCN 3x256, K 32,
/// R 8): pages kept, 922 MiB added and 0.39 s an epoch; given back, 585 MiB and 0.56 s. Meanwhile
/// libtorch's blocks of 1 MiB or more are kept by size class within 5/4 of the live peak
/// ([`crate::device::keep_cpu_blocks`]), which wins back most of that time at the same peak
/// (20 epochs: 8.9-9.7 s before, 7.7-8.3 s with it; peak 1,035 MiB both).
pub struct ReturnFreedPages {
    /// The default for arenas created later, then each existing arena's setting.
    previous: (isize, Vec<isize>),
}

impl ReturnFreedPages {
    pub fn start() -> ReturnFreedPages {
        let default = set_dirty_decay_ms("arenas.dirty_decay_ms", 0);
        let arenas = (0..arena_count())
            .map(|i| set_dirty_decay_ms(&format!("arena.{i}.dirty_decay_ms"), 0))
            .collect();
        crate::device::keep_cpu_blocks(true);
        ReturnFreedPages { previous: (default, arenas) }
    }
}

impl Drop for ReturnFreedPages {
    fn drop(&mut self) {
        crate::device::keep_cpu_blocks(false);
        set_dirty_decay_ms("arenas.dirty_decay_ms", self.previous.0);
        for (i, &ms) in self.previous.1.iter().enumerate() {
            set_dirty_decay_ms(&format!("arena.{i}.dirty_decay_ms"), ms);
        }
    }
}

fn arena_count() -> u32 {
    let mut n: u32 = 0;
    let mut len = std::mem::size_of::<u32>();
    // SAFETY: "arenas.narenas" is an unsigned read into `n`, whose size is passed.
    let rc = unsafe {
        tikv_jemalloc_sys::mallctl(
            c"arenas.narenas".as_ptr(),
            &mut n as *mut u32 as *mut _,
            &mut len,
            std::ptr::null_mut(),
            0,
        )
    };
    if rc == 0 {
        n
    } else {
        0
    }
}

/// Sets a dirty-page decay time (an arena's, or the default of new ones) and returns the
/// previous one (jemalloc's default, 10 s, when it cannot be read).
fn set_dirty_decay_ms(control: &str, ms: isize) -> isize {
    let name = std::ffi::CString::new(control).expect("no NUL");
    let (mut old, mut len, mut new) = (10_000isize, std::mem::size_of::<isize>(), ms);
    // SAFETY: an ssize_t read into `old` and written from `new`, sizes passed; an arena that
    // does not exist (never initialised) returns an error and nothing is changed.
    unsafe {
        tikv_jemalloc_sys::mallctl(
            name.as_ptr(),
            &mut old as *mut isize as *mut _,
            &mut len,
            &mut new as *mut isize as *mut _,
            len,
        );
    }
    old
}

/// `VmHWM` of this process in bytes (0 where unavailable).
pub fn peak_rss_bytes() -> u64 {
    status_kib("VmHWM:").map_or(0, |k| k * 1024)
}

/// Current resident set in bytes.
pub fn rss_bytes() -> u64 {
    status_kib("VmRSS:").map_or(0, |k| k * 1024)
}

fn status_kib(key: &str) -> Option<u64> {
    kib_field("/proc/self/status", key)
}

/// A `key: N kB` line of a /proc file.
fn kib_field(file: &str, key: &str) -> Option<u64> {
    let text = std::fs::read_to_string(file).ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// Peak device memory of this process on CUDA, sampled through NVML while a strategy runs.
///
/// tch does not expose libtorch's allocator statistics, so this reads what the driver reports
/// for this process (summed over devices: the CUDA context plus libtorch's cached pool, as
/// `nvidia-smi` shows it) every 10 ms and keeps the largest reading; a spike shorter than that
/// can be missed. None on CPU, without NVML, or where the driver hides per-process figures
/// (some containers).
pub struct DevicePeakSampler {
    stop: Arc<AtomicBool>,
    peak: Arc<AtomicU64>,
    seen: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl DevicePeakSampler {
    pub fn start(device: Device) -> Option<DevicePeakSampler> {
        if !device.is_cuda() {
            return None;
        }
        let nvml = nvml_wrapper::Nvml::init().ok()?;
        let (stop, peak, seen) = (
            Arc::new(AtomicBool::new(false)),
            Arc::new(AtomicU64::new(0)),
            Arc::new(AtomicBool::new(false)),
        );
        let (s, p, v) = (stop.clone(), peak.clone(), seen.clone());
        let thread = std::thread::Builder::new()
            .name("device-memory".into())
            .spawn(move || loop {
                if let Some(bytes) = process_device_bytes(&nvml) {
                    p.fetch_max(bytes, Ordering::Relaxed);
                    v.store(true, Ordering::Relaxed);
                }
                if s.load(Ordering::Relaxed) {
                    return;
                }
                std::thread::sleep(std::time::Duration::from_millis(10));
            })
            .ok()?;
        Some(DevicePeakSampler { stop, peak, seen, thread: Some(thread) })
    }

    /// Stops sampling (after one last reading) and returns the peak, if any reading succeeded.
    pub fn finish(mut self) -> Option<u64> {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        self.seen.load(Ordering::Relaxed).then(|| self.peak.load(Ordering::Relaxed))
    }
}

impl Drop for DevicePeakSampler {
    /// A strategy that fails still stops its sampler.
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

extern "C" {
    fn gnn_soup_cuda_peak_allocated_bytes(device: i32) -> i64;
    fn gnn_soup_cuda_reset_peak(device: i32) -> i32;
}

/// Restarts libtorch's peak-allocation counter on a CUDA `device` (nothing elsewhere).
pub fn reset_libtorch_device_peak(device: Device) {
    if let Device::Cuda(i) = device {
        // SAFETY: plain integer in and out; the C++ side catches every exception.
        unsafe { gnn_soup_cuda_reset_peak(i as i32) };
    }
}

/// libtorch's own peak of allocated bytes on a CUDA `device` since the last reset (see
/// `csrc/device_memory.cpp`); None on CPU or without a CUDA allocator.
pub fn libtorch_device_peak(device: Device) -> Option<u64> {
    let Device::Cuda(i) = device else { return None };
    // SAFETY: as above.
    let peak = unsafe { gnn_soup_cuda_peak_allocated_bytes(i as i32) };
    u64::try_from(peak).ok()
}

/// This process's memory over every device NVML lists, or None when no device reports it.
fn process_device_bytes(nvml: &nvml_wrapper::Nvml) -> Option<u64> {
    let mut total = None;
    for i in 0..nvml.device_count().ok()? {
        if let Some(b) = nvml.device_by_index(i).ok().and_then(|d| process_bytes_on(&d)) {
            *total.get_or_insert(0) += b;
        }
    }
    total
}

/// This process's memory on one device, as the driver reports it (None when it is not listed
/// there or the driver hides per-process figures).
pub fn process_bytes_on(device: &nvml_wrapper::Device) -> Option<u64> {
    use nvml_wrapper::enums::device::UsedGpuMemory;
    let me = std::process::id();
    device.running_compute_processes().ok()?.into_iter().find(|p| p.pid == me).and_then(|p| match p
        .used_gpu_memory
    {
        UsedGpuMemory::Used(b) => Some(b),
        UsedGpuMemory::Unavailable => None,
    })
}

/// Set to skip the checks that refuse work which would not fit (when the estimate is wrong for
/// a setup, or swap is wanted).
pub const NO_MEMORY_CHECK_ENV: &str = "GNN_SOUP_NO_MEMORY_CHECK";

/// Caps what [`available_bytes`] reports (`20GiB`, `512MiB`): to share a machine, or to see
/// what a smaller one would refuse.
pub const MEMORY_LIMIT_ENV: &str = "GNN_SOUP_MEMORY_LIMIT";

/// What is available on `device` when `need` bytes do not fit there; None when they fit, when
/// the checks are off ([`NO_MEMORY_CHECK_ENV`]) or when nothing can be read. The one decision
/// behind every "would not fit" refusal.
pub fn shortfall(device: Device, need: u64) -> anyhow::Result<Option<u64>> {
    if std::env::var_os(NO_MEMORY_CHECK_ENV).is_some() {
        return Ok(None);
    }
    Ok(available_bytes(device)?.filter(|&available| need > available))
}

/// Bytes in GiB, for messages.
pub fn gib(bytes: u64) -> f64 {
    bytes as f64 / (1u64 << 30) as f64
}

/// Memory the job can still take on `device`: on the host the kernel's `MemAvailable`, capped
/// by the cgroup's limit (containers, Slurm jobs); on CUDA the device's free memory (NVML); in
/// both cases capped by [`MEMORY_LIMIT_ENV`]. None when it cannot be read.
pub fn available_bytes(device: Device) -> anyhow::Result<Option<u64>> {
    let limit = match std::env::var(MEMORY_LIMIT_ENV) {
        Ok(v) => Some(crate::units::parse_bytes(&v).ok_or_else(|| {
            anyhow::anyhow!("{MEMORY_LIMIT_ENV}={v:?} is not a size (like 20GiB or 512MiB)")
        })?),
        Err(_) => None,
    };
    Ok(match (measured_available_bytes(device), limit) {
        (Some(a), Some(l)) => Some(a.min(l)),
        (a, l) => a.or(l),
    })
}

/// NVML's view of CUDA device `cuda_index`. NVML numbers every GPU on the machine; CUDA numbers
/// those `CUDA_VISIBLE_DEVICES` lists (indices or `GPU-` UUIDs), in that order. Without it the two
/// orders agree for the identical cards of a GPU box (CUDA's default order puts faster cards
/// first, which only differs on mixed machines).
pub fn nvml_device_of(
    nvml: &nvml_wrapper::Nvml,
    cuda_index: usize,
) -> Option<nvml_wrapper::Device<'_>> {
    let Ok(visible) = std::env::var("CUDA_VISIBLE_DEVICES") else {
        return nvml.device_by_index(cuda_index as u32).ok();
    };
    let entry = visible.split(',').map(str::trim).nth(cuda_index)?;
    match entry.parse::<u32>() {
        Ok(i) => nvml.device_by_index(i).ok(),
        Err(_) => nvml.device_by_uuid(entry).ok(),
    }
}

fn measured_available_bytes(device: Device) -> Option<u64> {
    if let Device::Cuda(i) = device {
        let nvml = nvml_wrapper::Nvml::init().ok()?;
        return nvml_device_of(&nvml, i)?.memory_info().ok().map(|m| m.free);
    }
    let available = kib_field("/proc/meminfo", "MemAvailable:")? * 1024;
    let read = |f: &str| {
        std::fs::read_to_string(format!("/sys/fs/cgroup/{f}"))
            .ok()
            .and_then(|v| v.trim().parse::<u64>().ok())
    };
    let cgroup_left = match (read("memory.max"), read("memory.current")) {
        (Some(max), Some(current)) => Some(max.saturating_sub(current)),
        _ => None,
    };
    Some(cgroup_left.map_or(available, |c| c.min(available)))
}

/// What one LS step on `nodes` nodes and `edges` edges keeps alive at its peak (forward
/// activations held for the backward pass, dropout masks, the gradients flowing back), as
/// measured: GCN 3x256 on csbm-arxiv added 1,375 MiB, this gives 1,455 MiB.
pub fn fit_step_bytes(spec: &crate::model::ArchSpec, nodes: u64, edges: u64) -> u64 {
    use crate::model::Arch;
    let hidden = (spec.hidden * spec.heads.max(1)) as u64;
    let hidden_layers = spec.layers.saturating_sub(1) as u64;
    let per_node = spec.in_dim as u64 + 4 * hidden * hidden_layers + 2 * spec.out_dim as u64;
    let per_node = match spec.arch {
        Arch::Gcn => per_node,
        // Two linear maps per layer, and the aggregation of each.
        Arch::Sage => per_node + 2 * hidden * hidden_layers,
        Arch::Gat => per_node + hidden * hidden_layers,
        // Every layer is hidden-wide, with a residual map and batch norm's output beside it.
        Arch::PaperGat => per_node + 3 * hidden * spec.layers as u64,
    };
    // GAT keeps scores, softmax and messages per edge and head.
    let per_edge =
        if spec.arch.attends() { 4 * spec.heads.max(1) as u64 * spec.layers as u64 } else { 0 };
    4 * (nodes * per_node + edges * per_edge)
}

/// A graph's edges on the device and one sparse operator over them: the in-adjacency's column
/// indices (8 bytes an edge, built on the host and copied: 16 at the peak) and the operator's
/// values (4).
pub fn operator_build_bytes(edges: u64) -> u64 {
    20 * edges
}

/// A graph held on a device: its features, labels and in-adjacency.
pub fn graph_bytes(nodes: u64, edges: u64, features: u64) -> u64 {
    4 * nodes * features + 8 * nodes + 8 * (nodes + edges)
}

/// What exact whole-graph inference holds beside the graph: one layer's input and output, and
/// the sparse operator it builds.
pub fn exact_inference_bytes(spec: &crate::model::ArchSpec, nodes: u64, edges: u64) -> u64 {
    inference_bytes(spec, nodes) + operator_build_bytes(edges) + attention_bytes(spec, edges)
}

/// What attention over every edge holds at once (GAT infers over the whole graph, not in row
/// blocks): scores, coefficients and messages, per head.
pub fn attention_bytes(spec: &crate::model::ArchSpec, edges: u64) -> u64 {
    if spec.arch.attends() {
        4 * edges * spec.heads.max(1) as u64 * (2 * spec.hidden as u64 + 4)
    } else {
        0
    }
}

/// What full-graph inference holds: one layer's input and output.
pub fn inference_bytes(spec: &crate::model::ArchSpec, nodes: u64) -> u64 {
    let widest = (spec.hidden * spec.heads.max(1)).max(spec.in_dim).max(spec.out_dim) as u64;
    4 * nodes * 2 * widest
}
