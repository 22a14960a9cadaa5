//! Memory telemetry: the process's resident-set high-water mark, resettable per job (Linux).

use tch::Device;

/// Resets the kernel's peak-RSS counter to the current RSS, so the next reading covers only what
/// follows (Linux >= 4.0; elsewhere a no-op and readings cover the whole process).
pub fn reset_peak_rss() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
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
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status.lines().find_map(|l| l.strip_prefix(key)).and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// Peak device memory on CUDA. libtorch's allocator statistics are not exposed through tch, so
/// this is not measured yet (None), on CPU as on CUDA.
pub fn peak_device_bytes(_device: Device) -> Option<u64> {
    None
}
