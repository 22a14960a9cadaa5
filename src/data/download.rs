//! Fetching named datasets from their canonical public locations into the data directory.
//!
//! Base URLs can be overridden (`GNN_SOUP_PLANETOID_URL`, `GNN_SOUP_OGB_URL`) for mirrors and
//! tests. Every file is written to a temporary name and renamed when complete, so an interrupted
//! download never leaves a truncated dataset behind.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context, Result};

use super::{ogb, planetoid};

pub const PLANETOID_URL: &str = "https://github.com/kimiyoung/planetoid/raw/master/data";
pub const OGB_URL: &str = "http://snap.stanford.edu/ogb/data/nodeproppred";

fn base(var: &str, default: &str) -> String {
    std::env::var(var)
        .ok()
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| default.to_string())
        .trim_end_matches('/')
        .to_string()
}

pub fn planetoid_base() -> String {
    base("GNN_SOUP_PLANETOID_URL", PLANETOID_URL)
}
pub fn ogb_base() -> String {
    base("GNN_SOUP_OGB_URL", OGB_URL)
}

pub fn missing_planetoid_message(dir: &Path, name: &str) -> String {
    format!(
        "dataset {name} not found in {} and not downloaded; put these files there (from {}): {}",
        dir.display(),
        planetoid_base(),
        planetoid::file_names(name).join(", ")
    )
}

pub fn missing_ogb_message(dir: &Path, name: &str) -> String {
    let short = ogb::short_name(name);
    format!(
        "dataset {name} not found in {}; put the official archive there as {short}.zip (from {}/{short}.zip), or unpack it to {}/{short}/",
        dir.display(),
        ogb_base(),
        dir.display()
    )
}

/// Downloads the eight `ind.<name>.*` files into `dir`; returns `dir`.
pub fn planetoid(dir: &Path, name: &str) -> Result<PathBuf> {
    let base = planetoid_base();
    eprintln!("downloading {name} from {base} into {}", dir.display());
    for file in planetoid::file_names(name) {
        fetch(&format!("{base}/{file}"), &dir.join(&file))
            .with_context(|| missing_planetoid_message(dir, name))?;
    }
    Ok(dir.to_path_buf())
}

/// Downloads `<short>.zip` into `dir`; the loader reads it without unpacking.
pub fn ogb(dir: &Path, name: &str) -> Result<PathBuf> {
    let short = ogb::short_name(name);
    let url = format!("{}/{short}.zip", ogb_base());
    eprintln!("downloading {name} from {url} into {}", dir.display());
    let dest = dir.join(format!("{short}.zip"));
    fetch(&url, &dest).with_context(|| missing_ogb_message(dir, name))?;
    Ok(dest)
}

/// GETs `url` into `dest` through a temporary file, with a progress bar on a terminal.
pub fn fetch(url: &str, dest: &Path) -> Result<()> {
    if let Some(parent) = dest.parent() {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("cannot create {}", parent.display()))?;
    }
    let agent = ureq::AgentBuilder::new()
        .timeout_connect(Duration::from_secs(15))
        .timeout_read(Duration::from_secs(60))
        .build();
    let response = match agent.get(url).call() {
        Ok(r) => r,
        Err(ureq::Error::Status(code, _)) => bail!("GET {url}: HTTP {code}"),
        Err(e) => bail!("GET {url}: {e}"),
    };
    let total: Option<u64> = response.header("Content-Length").and_then(|v| v.parse().ok());
    let bar = crate::progress::bytes_bar(
        total,
        &format!("{}", dest.file_name().unwrap_or_default().to_string_lossy()),
    );
    let tmp = dest.with_extension(format!(
        "{}.part",
        dest.extension().map(|e| e.to_string_lossy().into_owned()).unwrap_or_default()
    ));
    // Neither the partial file nor the target may be a FIFO, a device or a directory: opening a
    // FIFO for writing would block, a rename would replace what is there.
    crate::fsio::check_replaceable(&tmp)?;
    crate::fsio::check_replaceable(dest)?;
    let result = (|| -> Result<u64> {
        let mut out = std::fs::File::create(&tmp)
            .with_context(|| format!("cannot write {}", tmp.display()))?;
        let mut reader = response.into_reader();
        let mut buf = vec![0u8; 1 << 16];
        let mut got = 0u64;
        loop {
            let n = reader
                .read(&mut buf)
                .with_context(|| format!("GET {url}: connection broke after {got} bytes"))?;
            if n == 0 {
                break;
            }
            out.write_all(&buf[..n])?;
            got += n as u64;
            bar.set_position(got);
        }
        out.sync_all()?;
        Ok(got)
    })();
    bar.finish_and_clear();
    match result {
        Ok(got) => {
            if let Some(t) = total {
                if got != t {
                    let _ = std::fs::remove_file(&tmp);
                    bail!("GET {url}: got {got} of {t} bytes");
                }
            }
            std::fs::rename(&tmp, dest)
                .with_context(|| format!("cannot move {} into place", tmp.display()))?;
            Ok(())
        }
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            Err(e)
        }
    }
}
