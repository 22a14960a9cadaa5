//! Planetoid `ind.<name>.*` files (Cora, CiteSeer, PubMed), assembled exactly as PyTorch
//! Geometric's `read_planetoid_data` does, so node order, labels and the public split match PyG.

use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};

use super::graph::{symmetrize, Graph, GraphParts};
use super::pickle::{self, Value};

pub const NAMES: [&str; 3] = ["cora", "citeseer", "pubmed"];
pub const SUFFIXES: [&str; 8] = ["x", "tx", "allx", "y", "ty", "ally", "graph", "test.index"];

/// The directory inside `data_dir` that holds `ind.<name>.*`: `data_dir` itself, or PyG's
/// `<Name>/raw` / `<name>/raw` layout.
pub fn locate(data_dir: &Path, name: &str) -> Option<PathBuf> {
    let capitalised = match name {
        "citeseer" => "CiteSeer".to_string(),
        "pubmed" => "PubMed".to_string(),
        other => {
            let mut c = other.chars();
            c.next().map(|f| f.to_uppercase().collect::<String>() + c.as_str()).unwrap_or_default()
        }
    };
    [
        data_dir.to_path_buf(),
        data_dir.join(name),
        data_dir.join(name).join("raw"),
        data_dir.join(&capitalised).join("raw"),
    ]
    .into_iter()
    .find(|d| d.join(format!("ind.{name}.x")).is_file())
}

pub fn file_names(name: &str) -> Vec<String> {
    SUFFIXES.iter().map(|s| format!("ind.{name}.{s}")).collect()
}

pub fn load(dir: &Path, name: &str) -> Result<Graph> {
    let files = Files { dir, name };
    let (x, tx, allx) = (files.csr("x")?, files.csr("tx")?, files.csr("allx")?);
    let (y, ty, ally) = (files.dense("y")?, files.dense("ty")?, files.dense("ally")?);
    let num_features = allx.cols;
    if tx.cols != num_features || x.cols != num_features {
        bail!(
            "{}: feature widths differ between x ({}), tx ({}) and allx ({num_features})",
            dir.display(),
            x.cols,
            tx.cols
        );
    }
    let num_classes = ally.shape[1];
    if ty.shape[1] != num_classes || ty.shape[0] != tx.rows || ally.shape[0] != allx.rows {
        bail!("{}: label arrays do not match the feature matrices", dir.display());
    }
    // The training rows (y) are the first of the labelled ones (ally), with 500 validation rows
    // after them: checked before any range is built from y's header.
    if y.shape[1] != num_classes
        || y.shape[0] != x.rows
        || y.shape[0].saturating_add(500) > allx.rows
    {
        bail!(
            "{}: {:?} training labels for {} training rows of {} labelled ones (and 500 validation rows after them)",
            files.path("y").display(),
            y.shape,
            x.rows,
            allx.rows
        );
    }
    if num_classes == 0 || num_features == 0 {
        bail!("{}: the label arrays have no columns or the feature matrices none", dir.display());
    }
    if ally.data.len() != allx.rows * num_classes || ty.data.len() != tx.rows * num_classes {
        bail!(
            "{}: label arrays hold {} and {} values for {} and {} rows of {num_classes} classes",
            dir.display(),
            ally.data.len(),
            ty.data.len(),
            allx.rows,
            tx.rows
        );
    }
    let test_index = files.test_index(tx.rows)?;
    let mut sorted = test_index.clone();
    sorted.sort_unstable();
    // Sizes come from the files: the padded test range (CiteSeer) and the feature matrix are
    // bounded before anything is allocated from them.
    let test_span = sorted[sorted.len() - 1] - sorted[0] + 1;
    let rows = allx.rows.checked_add(if name == "citeseer" { test_span } else { tx.rows });
    if test_span > 4 * tx.rows.max(1) + 1000
        || rows
            .and_then(|r| r.checked_mul(num_features))
            .is_none_or(|v| v as u64 > super::graph::MAX_FEATURE_VALUES)
    {
        bail!("{}: the test index spans {test_span} nodes for {} test rows, or the features would exceed {} values", files.path("test.index").display(), tx.rows, super::graph::MAX_FEATURE_VALUES);
    }
    let (mut nodes, n) = assemble_nodes(name, &allx, &ally, &tx, &ty, &sorted);
    if test_index.iter().any(|&t| t >= n) {
        bail!("{}: a test index is beyond the {n} nodes", files.path("test.index").display());
    }
    nodes.reorder_test_rows(&test_index, &sorted);
    let (src, dst) = files.edges(n)?;
    let train: Vec<i64> = (0..y.shape[0] as i64).collect();
    let val: Vec<i64> = (y.shape[0] as i64..(y.shape[0] + 500) as i64).collect();
    let test: Vec<i64> = sorted.iter().map(|&t| t as i64).collect();
    Graph::new(GraphParts {
        name: name.to_string(),
        num_nodes: n,
        src,
        dst,
        features: nodes.features,
        num_features,
        labels: nodes.labels,
        train,
        val,
        test,
    })
    .with_context(|| format!("invalid Planetoid data in {}", dir.display()))
}

/// The `ind.<name>.*` files of one dataset.
struct Files<'a> {
    dir: &'a Path,
    name: &'a str,
}

impl Files<'_> {
    fn path(&self, s: &str) -> std::path::PathBuf {
        self.dir.join(format!("ind.{}.{s}", self.name))
    }

    fn read(&self, s: &str) -> Result<Value> {
        let p = self.path(s);
        let bytes = crate::fsio::read_regular(&p, super::graph::MAX_DATA_FILE_BYTES)?;
        pickle::parse(&bytes).with_context(|| format!("{} is not a readable pickle", p.display()))
    }

    fn csr(&self, s: &str) -> Result<pickle::Csr> {
        pickle::csr_matrix(&self.read(s)?)
            .with_context(|| format!("{}: not a feature matrix", self.path(s).display()))
    }

    fn dense(&self, s: &str) -> Result<pickle::Array> {
        let a = pickle::ndarray(&self.read(s)?)
            .with_context(|| format!("{}: not a label array", self.path(s).display()))?;
        if a.shape.len() != 2 {
            bail!(
                "{}: labels should be a 2-D one-hot array, shape is {:?}",
                self.path(s).display(),
                a.shape
            );
        }
        Ok(a)
    }

    /// `test.index`: one node id per line, one per test row.
    fn test_index(&self, test_rows: usize) -> Result<Vec<usize>> {
        let index_path = self.path("test.index");
        let index: Vec<usize> =
            crate::fsio::read_text(&index_path, super::graph::MAX_DATA_FILE_BYTES)?
                .lines()
                .filter(|l| !l.trim().is_empty())
                .map(|l| {
                    l.trim()
                        .parse::<usize>()
                        .map_err(|e| anyhow!("{}: bad index {l:?}: {e}", index_path.display()))
                })
                .collect::<Result<_>>()?;
        if index.len() != test_rows || index.is_empty() {
            bail!(
                "{}: {} test indices for {test_rows} test rows",
                index_path.display(),
                index.len()
            );
        }
        Ok(index)
    }

    /// `graph`: a dict of adjacency lists, as symmetrised edges without self loops.
    fn edges(&self, n: usize) -> Result<(Vec<i64>, Vec<i64>)> {
        let graph_path = self.path("graph");
        let adjacency = self.read("graph")?;
        let entries = match &adjacency {
            Value::Object { items, .. } => items,
            Value::Dict(d) => d,
            _ => bail!("{}: expected a dict of adjacency lists", graph_path.display()),
        };
        let mut pairs = Vec::new();
        for (k, v) in entries {
            let s = k
                .as_int()
                .ok_or_else(|| anyhow!("{}: non-integer node key", graph_path.display()))?;
            let neigh = v.elems().ok_or_else(|| {
                anyhow!("{}: adjacency of node {s} is not a list", graph_path.display())
            })?;
            for t in neigh {
                let t = t.as_int().ok_or_else(|| {
                    anyhow!("{}: non-integer neighbour of node {s}", graph_path.display())
                })?;
                pairs.push((s, t));
            }
        }
        if let Some(&(s, t)) =
            pairs.iter().find(|&&(s, t)| s < 0 || t < 0 || s as usize >= n || t as usize >= n)
        {
            bail!("{}: edge {s} -> {t} names a node beyond the {n} nodes", graph_path.display());
        }
        Ok(symmetrize(pairs))
    }
}

/// Node features (row-major) and labels.
struct Nodes {
    features: Vec<f32>,
    num_features: usize,
    labels: Vec<i64>,
}

impl Nodes {
    /// `x[test_index] = x[sorted_test_index]`, as PyG does (right-hand side read before writing).
    fn reorder_test_rows(&mut self, test_index: &[usize], sorted: &[usize]) {
        let f = self.num_features;
        let moved_x: Vec<Vec<f32>> =
            sorted.iter().map(|&s| self.features[s * f..(s + 1) * f].to_vec()).collect();
        let moved_y: Vec<i64> = sorted.iter().map(|&s| self.labels[s]).collect();
        for (k, &t) in test_index.iter().enumerate() {
            self.features[t * f..(t + 1) * f].copy_from_slice(&moved_x[k]);
            self.labels[t] = moved_y[k];
        }
    }
}

/// The `allx` rows then the test rows, and each node's label (the first maximum of its one-hot
/// row, like `torch.max`). CiteSeer has isolated test nodes without rows: PyG pads `tx`/`ty` to
/// the full index range, and so does this.
fn assemble_nodes(
    name: &str,
    allx: &pickle::Csr,
    ally: &pickle::Array,
    tx: &pickle::Csr,
    ty: &pickle::Array,
    sorted: &[usize],
) -> (Nodes, usize) {
    let (num_features, num_classes) = (allx.cols, ally.shape[1]);
    let (tmin, tmax) = (sorted[0], sorted[sorted.len() - 1]);
    let test_rows = if name == "citeseer" { tmax - tmin + 1 } else { tx.rows };
    let n = allx.rows + test_rows;
    let mut features = vec![0f32; n * num_features];
    allx.scatter_into(&mut features, 0);
    let mut labels_1hot = vec![0f64; n * num_classes];
    labels_1hot[..ally.data.len()].copy_from_slice(&ally.data);
    if name == "citeseer" {
        for (r, &dst) in sorted.iter().enumerate() {
            let row = allx.rows + dst - tmin;
            copy_csr_row(tx, r, &mut features[row * num_features..(row + 1) * num_features]);
            labels_1hot[row * num_classes..(row + 1) * num_classes]
                .copy_from_slice(&ty.data[r * num_classes..(r + 1) * num_classes]);
        }
    } else {
        tx.scatter_into(&mut features, allx.rows);
        labels_1hot[ally.data.len()..].copy_from_slice(&ty.data);
    }
    let labels = labels_1hot
        .chunks_exact(num_classes)
        .map(|row| {
            let mut best = 0;
            for (i, &v) in row.iter().enumerate() {
                if v > row[best] {
                    best = i;
                }
            }
            best as i64
        })
        .collect();
    (Nodes { features, num_features, labels }, n)
}

fn copy_csr_row(m: &pickle::Csr, r: usize, out: &mut [f32]) {
    for k in m.indptr[r]..m.indptr[r + 1] {
        out[m.indices[k]] = m.data[k] as f32;
    }
}
