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
            let Ok(n) = n.parse::<usize>() else { bail!("unknown device {text:?}: expected cpu, cuda, cuda:N or auto") };
            if n >= cuda_count() {
                bail!("--device {text}: this machine has {} CUDA device(s)", cuda_count());
            }
            Ok(Device::Cuda(n))
        }
    }
}

pub fn device_name(d: Device) -> String {
    match d {
        Device::Cpu => "cpu".into(),
        Device::Cuda(n) => format!("cuda:{n}"),
        other => format!("{other:?}").to_lowercase(),
    }
}
