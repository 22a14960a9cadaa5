//! Datasets: one in-memory [`Graph`] type and the loaders that produce it.
//!
//! A dataset is named by a spec string (see [`DatasetSpec`]); `--data-dir` (or
//! `GNN_SOUP_DATA_DIR`) says where named datasets live, and missing ones are downloaded there
//! from their canonical public location when the network allows.

pub mod download;
pub mod graph;
pub mod npz;
pub mod ogb;
pub mod pickle;
pub mod planetoid;
pub mod synthetic;

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

pub use graph::{Graph, GraphInfo, GraphParts};
pub use synthetic::CsbmConfig;

/// What `--dataset` names.
#[derive(Debug, Clone, PartialEq)]
pub enum DatasetSpec {
    /// `cora`, `citeseer`, `pubmed`
    Planetoid(String),
    /// `ogbn-arxiv`, `ogbn-products`, any `ogbn-*`
    Ogb(String),
    /// An OGB directory or zip given by path.
    OgbPath(PathBuf),
    /// `npz:<file>` (or a path ending in `.npz`)
    Npz(PathBuf),
    /// `csbm`, `csbm-arxiv`, `csbm-products`, `csbm:key=value,...`
    Csbm { name: String, config: CsbmConfig },
}

impl DatasetSpec {
    pub fn parse(text: &str) -> Result<DatasetSpec> {
        let t = text.trim();
        let lower = t.to_ascii_lowercase();
        if planetoid::NAMES.contains(&lower.as_str()) {
            return Ok(DatasetSpec::Planetoid(lower));
        }
        if lower.starts_with("ogbn-") {
            return Ok(DatasetSpec::Ogb(lower));
        }
        if let Some(p) = t.strip_prefix("npz:") {
            return Ok(DatasetSpec::Npz(PathBuf::from(p)));
        }
        let csbm = |base: CsbmConfig, overrides: &str| -> Result<DatasetSpec> {
            Ok(DatasetSpec::Csbm { name: t.to_string(), config: base.with_overrides(overrides)? })
        };
        match lower.split_once(':').map_or((lower.as_str(), ""), |(a, b)| (a, b)) {
            ("csbm", o) => return csbm(CsbmConfig::small(), o),
            ("csbm-arxiv", o) => return csbm(CsbmConfig::arxiv(), o),
            ("csbm-products", o) => return csbm(CsbmConfig::products(), o),
            _ => {}
        }
        let path = Path::new(t);
        if path.extension().is_some_and(|e| e == "npz") {
            return Ok(DatasetSpec::Npz(path.to_path_buf()));
        }
        if path.is_dir() && path.join("raw").is_dir()
            || path.extension().is_some_and(|e| e == "zip")
        {
            return Ok(DatasetSpec::OgbPath(path.to_path_buf()));
        }
        let guess = suggestion(&lower).map(|g| format!("did you mean {g}? ")).unwrap_or_default();
        bail!(
            "unknown dataset {t:?}: {guess}expected cora, citeseer, pubmed, ogbn-<name>, npz:<file>, csbm, csbm-arxiv, \
             csbm-products, csbm:key=value,..., or the path of an OGB directory/zip"
        )
    }
}

/// The known dataset name closest to a mistyped one (at most two edits away).
fn suggestion(typed: &str) -> Option<&'static str> {
    const KNOWN: &[&str] = &[
        "cora",
        "citeseer",
        "pubmed",
        "csbm",
        "csbm-arxiv",
        "csbm-products",
        "ogbn-arxiv",
        "ogbn-products",
        "ogbn-papers100m",
        "ogbn-proteins",
    ];
    KNOWN
        .iter()
        .map(|k| (edit_distance(typed, k), *k))
        .filter(|(d, _)| *d <= 2)
        .min()
        .map(|(_, k)| k)
}

/// Levenshtein distance.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = (prev + usize::from(ca != *cb)).min(row[j] + 1).min(cur + 1);
            prev = cur;
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod suggestion_tests {
    #[test]
    fn a_typo_gets_the_name_it_meant() {
        assert_eq!(super::suggestion("coar"), Some("cora"));
        assert_eq!(super::suggestion("citseer"), Some("citeseer"));
        assert_eq!(super::suggestion("imagenet"), None);
        let e = super::DatasetSpec::parse("coar").unwrap_err().to_string();
        assert!(e.contains("did you mean cora?"), "{e}");
    }
}

/// Where datasets are looked for and how splitless ones are split.
#[derive(Debug, Clone)]
pub struct DataOptions {
    pub data_dir: PathBuf,
    /// Seed of the random per-class split for datasets that ship none (npz).
    pub split_seed: u64,
    /// Download missing named datasets into `data_dir`.
    pub download: bool,
}

impl Default for DataOptions {
    fn default() -> Self {
        DataOptions { data_dir: default_data_dir(), split_seed: 0, download: true }
    }
}

/// `$GNN_SOUP_DATA_DIR`, else `$XDG_CACHE_HOME/gnn-soup/datasets`, else `~/.cache/gnn-soup/datasets`.
pub fn default_data_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("GNN_SOUP_DATA_DIR") {
        return PathBuf::from(d);
    }
    crate::paths::cache_dir().join("datasets")
}

pub fn load(spec_text: &str, opts: &DataOptions) -> Result<Graph> {
    let spec = DatasetSpec::parse(spec_text)?;
    load_spec(&spec, opts)
}

pub fn load_spec(spec: &DatasetSpec, opts: &DataOptions) -> Result<Graph> {
    match spec {
        DatasetSpec::Planetoid(name) => {
            let dir = match planetoid::locate(&opts.data_dir, name) {
                Some(d) => d,
                None if opts.download => download::planetoid(&opts.data_dir, name)?,
                None => bail!("{}", download::missing_planetoid_message(&opts.data_dir, name)),
            };
            planetoid::load(&dir, name)
        }
        DatasetSpec::Ogb(name) => {
            let path = match ogb::locate(&opts.data_dir, name) {
                Some(p) => p,
                None if opts.download => download::ogb(&opts.data_dir, name)?,
                None => bail!("{}", download::missing_ogb_message(&opts.data_dir, name)),
            };
            ogb::load(&path, name)
        }
        DatasetSpec::OgbPath(p) => {
            let name = p
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_else(|| "ogb".into());
            ogb::load(p, &name)
        }
        DatasetSpec::Npz(p) => {
            let name = format!("npz:{}", p.display());
            npz::load(p, &name, opts.split_seed)
        }
        DatasetSpec::Csbm { name, config } => {
            config.generate(name).with_context(|| format!("generating {name}"))
        }
    }
}
