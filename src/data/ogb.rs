//! OGB node-property-prediction raw layout (`raw/*.csv.gz`, `split/<type>/*.csv.gz`), read from
//! an unpacked directory or straight from the official zip. Edges are symmetrised (ogbn-arxiv is
//! directed, ogbn-products is stored in one direction).

use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use flate2::read::MultiGzDecoder;

use super::graph::{symmetrize, Graph, GraphParts};

/// The short name used by the official archives: `ogbn-arxiv` -> `arxiv`.
pub fn short_name(name: &str) -> &str {
    name.strip_prefix("ogbn-").unwrap_or(name)
}

/// Where `data_dir` holds `name`: an unpacked directory (`arxiv/` or `ogbn_arxiv/`) or the zip.
pub fn locate(data_dir: &Path, name: &str) -> Option<PathBuf> {
    let short = short_name(name);
    let candidates = [
        data_dir.join(short),
        data_dir.join(format!("ogbn_{short}")),
        data_dir.join(name),
        data_dir.join(format!("{short}.zip")),
    ];
    candidates.into_iter().find(|p| {
        if p.extension().is_some_and(|e| e == "zip") {
            p.is_file()
        } else {
            p.join("raw").is_dir()
        }
    })
}

/// Files of one OGB dataset, from a directory or a zip archive.
enum Source {
    Dir(PathBuf),
    Zip { path: PathBuf, archive: zip::ZipArchive<std::fs::File>, prefix: String },
}

/// The most a `.csv.gz` member may expand by (numbers in CSV compress about 3 to 10 times).
const MAX_GZIP_RATIO: u64 = 100;

impl Source {
    fn open(path: &Path) -> Result<Source> {
        if path.is_dir() {
            return Ok(Source::Dir(path.to_path_buf()));
        }
        let (file, _) = crate::fsio::open_regular(path, super::graph::MAX_DATA_FILE_BYTES)?;
        let archive = zip::ZipArchive::new(file)
            .with_context(|| format!("{} is not a readable zip archive", path.display()))?;
        // The archive holds `<short>/raw/...`; find that prefix instead of assuming it.
        let prefix = archive
            .file_names()
            .find_map(|n| n.find("raw/edge.csv.gz").map(|i| n[..i].to_string()))
            .ok_or_else(|| anyhow!("{}: no raw/edge.csv.gz inside the archive", path.display()))?;
        Ok(Source::Zip { path: path.to_path_buf(), archive, prefix })
    }

    fn describe(&self, rel: &str) -> String {
        match self {
            Source::Dir(d) => d.join(rel).display().to_string(),
            Source::Zip { path, prefix, .. } => format!("{}:{prefix}{rel}", path.display()),
        }
    }

    fn exists(&mut self, rel: &str) -> bool {
        match self {
            Source::Dir(d) => d.join(rel).is_file(),
            Source::Zip { archive, prefix, .. } => {
                archive.index_for_name(&format!("{prefix}{rel}")).is_some()
            }
        }
    }

    fn list_dirs(&mut self, rel: &str) -> Vec<String> {
        match self {
            Source::Dir(d) => std::fs::read_dir(d.join(rel))
                .map(|it| {
                    it.filter_map(|e| e.ok())
                        .filter(|e| e.path().is_dir())
                        .map(|e| e.file_name().to_string_lossy().into_owned())
                        .collect()
                })
                .unwrap_or_default(),
            Source::Zip { archive, prefix, .. } => {
                let base = format!("{prefix}{rel}/");
                let mut out: Vec<String> = archive
                    .file_names()
                    .filter_map(|n| {
                        n.strip_prefix(&base)
                            .and_then(|r| r.split_once('/'))
                            .map(|(d, _)| d.to_string())
                    })
                    .collect();
                out.sort();
                out.dedup();
                out
            }
        }
    }

    /// Decompressed bytes of one `.csv.gz` member.
    fn read_gz(&mut self, rel: &str) -> Result<Vec<u8>> {
        let what = self.describe(rel);
        let mut out = Vec::new();
        // A gzip stream is decompressed up to what CSV of numbers can expand to from its size
        // (a few KB of "gzip bomb" must not fill memory).
        let limit = |compressed: u64| {
            compressed
                .saturating_mul(MAX_GZIP_RATIO)
                .clamp(64 << 20, super::graph::MAX_DATA_FILE_BYTES)
        };
        let cap = match self {
            Source::Dir(d) => {
                let (f, size) =
                    crate::fsio::open_regular(&d.join(rel), super::graph::MAX_DATA_FILE_BYTES)?;
                let cap = limit(size);
                MultiGzDecoder::new(BufReader::with_capacity(1 << 20, f))
                    .take(cap + 1)
                    .read_to_end(&mut out)
                    .map(|_| cap)
            }
            Source::Zip { archive, prefix, .. } => {
                let member = archive
                    .by_name(&format!("{prefix}{rel}"))
                    .with_context(|| format!("missing {what}"))?;
                let cap = limit(member.compressed_size());
                MultiGzDecoder::new(BufReader::with_capacity(1 << 20, member))
                    .take(cap + 1)
                    .read_to_end(&mut out)
                    .map(|_| cap)
            }
        }
        .with_context(|| format!("{what}: not a valid gzip file"))?;
        if out.len() as u64 > cap {
            bail!("{what}: decompresses to more than {cap} bytes (a corrupt or malicious file?)");
        }
        Ok(out)
    }
}

/// Parses a comma-separated numeric file in one pass over its bytes, returning the values and
/// the number of columns (every row must have the same count). Public for the fuzz targets.
pub fn parse_csv<T: std::str::FromStr>(bytes: &[u8], what: &str) -> Result<(Vec<T>, usize)> {
    let mut values = Vec::with_capacity(bytes.len() / 8);
    let mut columns = 0usize;
    for (row, line) in bytes.split(|&b| b == b'\n').enumerate() {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            continue;
        }
        let before = values.len();
        for field in line.split(|&b| b == b',') {
            let s = std::str::from_utf8(field)
                .map_err(|_| anyhow!("{what}: line {} is not text", row + 1))?;
            values.push(
                s.trim()
                    .parse::<T>()
                    .map_err(|_| anyhow!("{what}: line {}: {s:?} is not a number", row + 1))?,
            );
        }
        let width = values.len() - before;
        if columns == 0 {
            columns = width;
        } else if width != columns {
            bail!("{what}: line {} has {width} values, earlier lines {columns}", row + 1);
        }
    }
    Ok((values, columns))
}

pub fn load(path: &Path, name: &str) -> Result<Graph> {
    let mut src = Source::open(path)?;
    let read_ints = |src: &mut Source, rel: &str| -> Result<(Vec<i64>, usize)> {
        let bytes = src.read_gz(rel)?;
        parse_csv::<i64>(&bytes, &src.describe(rel))
    };

    let (num_nodes_v, _) = read_ints(&mut src, "raw/num-node-list.csv.gz")?;
    let num_nodes = *num_nodes_v
        .first()
        .ok_or_else(|| anyhow!("{} is empty", src.describe("raw/num-node-list.csv.gz")))?
        as usize;

    let (edges, width) = read_ints(&mut src, "raw/edge.csv.gz")?;
    if width != 2 {
        bail!("{}: expected 2 columns (src,dst), found {width}", src.describe("raw/edge.csv.gz"));
    }
    if let Some(bad) = edges.iter().find(|&&v| v < 0 || v as usize >= num_nodes) {
        bail!("{}: node {bad} outside 0..{num_nodes}", src.describe("raw/edge.csv.gz"));
    }
    let (src_e, dst_e) = symmetrize(edges.chunks_exact(2).map(|c| (c[0], c[1])));

    let feat_bytes = src.read_gz("raw/node-feat.csv.gz")?;
    let (features, num_features) =
        parse_csv::<f32>(&feat_bytes, &src.describe("raw/node-feat.csv.gz"))?;
    drop(feat_bytes);
    if num_nodes.checked_mul(num_features) != Some(features.len()) {
        bail!(
            "{}: {} rows for {num_nodes} nodes",
            src.describe("raw/node-feat.csv.gz"),
            features.len() / num_features.max(1)
        );
    }

    let (labels, _) = read_ints(&mut src, "raw/node-label.csv.gz")?;
    if labels.len() != num_nodes {
        bail!(
            "{}: {} labels for {num_nodes} nodes",
            src.describe("raw/node-label.csv.gz"),
            labels.len()
        );
    }

    let split_types = src.list_dirs("split");
    let split_type = split_types
        .iter()
        .find(|t| src.exists(&format!("split/{t}/train.csv.gz")))
        .cloned()
        .ok_or_else(|| anyhow!("{}: no split/<type>/train.csv.gz", src.describe("")))?;
    let mut split = |part: &str| -> Result<Vec<i64>> {
        Ok(read_ints(&mut src, &format!("split/{split_type}/{part}.csv.gz"))?.0)
    };
    let (train, val, test) = (split("train")?, split("valid")?, split("test")?);

    Graph::new(GraphParts {
        name: name.to_string(),
        num_nodes,
        src: src_e,
        dst: dst_e,
        features,
        num_features,
        labels,
        train,
        val,
        test,
    })
    .with_context(|| format!("invalid OGB data in {}", path.display()))
}
