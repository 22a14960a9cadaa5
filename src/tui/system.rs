//! CPU, RAM and GPU readings for the dashboard. NVML is initialised once; without an NVIDIA
//! driver the panel says so plainly instead of failing.

use nvml_wrapper::Nvml;
use sysinfo::System;

/// One reading, as display lines.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    pub cpu_ram: String,
    pub gpu: String,
}

pub struct Monitor {
    sys: Option<System>,
    nvml: Option<Nvml>,
}

impl Default for Monitor {
    fn default() -> Self {
        Monitor::new()
    }
}

impl Monitor {
    pub fn new() -> Monitor {
        let mut sys = System::new().ok();
        if let Some(s) = sys.as_mut() {
            s.refresh_cpu_usage();
        }
        Monitor { sys, nvml: Nvml::init().ok() }
    }

    pub fn sample(&mut self) -> Snapshot {
        let gib = |b: u64| b as f64 / (1u64 << 30) as f64;
        let me = format!("this process {:.2} GiB", gib(crate::engine::memory::rss_bytes()));
        let cpu_ram = match self.sys.as_mut() {
            Some(sys) => {
                sys.refresh_cpu_usage();
                sys.refresh_memory();
                format!(
                    "CPU {:.0}%  RAM {:.1}/{:.1} GiB  {me}",
                    sys.global_cpu_usage(),
                    gib(sys.used_memory()),
                    gib(sys.total_memory())
                )
            }
            None => format!("CPU/RAM unavailable  {me}"),
        };
        Snapshot { cpu_ram, gpu: self.gpu_line() }
    }

    fn gpu_line(&self) -> String {
        let Some(nvml) = &self.nvml else { return "no NVIDIA GPU found (NVML unavailable)".into() };
        let count = nvml.device_count().unwrap_or(0);
        if count == 0 {
            return "no NVIDIA GPU found".into();
        }
        let mut parts = Vec::new();
        for i in 0..count {
            let Ok(d) = nvml.device_by_index(i) else { continue };
            let mem = d
                .memory_info()
                .map(|m| {
                    format!(
                        "{:.1}/{:.1} GiB",
                        m.used as f64 / (1u64 << 30) as f64,
                        m.total as f64 / (1u64 << 30) as f64
                    )
                })
                .unwrap_or_else(|_| "?".into());
            let util =
                d.utilization_rates().map(|u| format!("{}%", u.gpu)).unwrap_or_else(|_| "?".into());
            let mine = crate::engine::memory::process_bytes_on(&d)
                .map(|b| format!(", this process {:.2} GiB", b as f64 / (1u64 << 30) as f64))
                .unwrap_or_default();
            parts.push(format!("GPU{i} {mem} util {util}{mine}"));
        }
        parts.join("; ")
    }
}
