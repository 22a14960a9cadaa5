//! The one in-memory graph type every loader produces and every model consumes.

use anyhow::{bail, Context, Result};
use serde::Serialize;

/// Everything a loader produces; `Graph::new` validates it.
///
/// Edges flow `src[k] -> dst[k]`; a node aggregates over its in-neighbours. Loaders store
/// graphs symmetrised, de-duplicated and without self-loops (the models add self-loops where
/// their definition asks for them).
#[derive(Debug, Clone)]
pub struct GraphParts {
    pub name: String,
    pub num_nodes: usize,
    pub src: Vec<i64>,
    pub dst: Vec<i64>,
    /// Row-major `[num_nodes, num_features]`.
    pub features: Vec<f32>,
    pub num_features: usize,
    pub labels: Vec<i64>,
    pub train: Vec<i64>,
    pub val: Vec<i64>,
    pub test: Vec<i64>,
}

/// A validated node-classification graph held in host memory; its parts are read through
/// `Deref` (`g.src`, `g.labels`, ...).
#[derive(Debug, Clone)]
pub struct Graph {
    parts: GraphParts,
    pub num_classes: usize,
    fingerprint: String,
}

impl std::ops::Deref for Graph {
    type Target = GraphParts;
    fn deref(&self) -> &GraphParts {
        &self.parts
    }
}

/// Summary printed by `gnn-soup data info`.
#[derive(Debug, Clone, Serialize)]
pub struct GraphInfo {
    pub name: String,
    pub nodes: usize,
    pub edges: usize,
    pub features: usize,
    pub classes: usize,
    pub train: usize,
    pub val: usize,
    pub test: usize,
    pub average_degree: f64,
    pub isolated_nodes: usize,
    pub class_counts: Vec<usize>,
    pub fingerprint: String,
}

/// The largest dataset file read (ogbn-papers100M's zip is 57 GiB; everything else is far less).
pub const MAX_DATA_FILE_BYTES: u64 = 64 << 30;

/// The most feature values a dataset may claim (16 GB of floats).
pub const MAX_FEATURE_VALUES: u64 = 4 << 30;

/// Labels are class numbers: non-negative, and fewer classes than nodes (a label of 10^12 would
/// otherwise size a vector of that many classes).
pub fn check_labels(labels: &[i64], num_nodes: usize) -> Result<()> {
    if let Some(bad) = labels.iter().find(|&&l| l < 0) {
        bail!("negative label {bad}");
    }
    if let Some(bad) = labels.iter().find(|&&l| l as u64 >= num_nodes.max(2) as u64) {
        bail!("label {bad} for {num_nodes} nodes: more classes than nodes (a corrupt label?)");
    }
    Ok(())
}

impl Graph {
    /// Validates the parts (index ranges, sizes, finite features) and fingerprints the content.
    pub fn new(p: GraphParts) -> Result<Graph> {
        let n = p.num_nodes;
        if n == 0 {
            bail!("{}: graph has no nodes", p.name);
        }
        if p.src.len() != p.dst.len() {
            bail!("{}: {} edge sources but {} targets", p.name, p.src.len(), p.dst.len());
        }
        if let Some(bad) = p.src.iter().chain(&p.dst).find(|&&v| v < 0 || v as usize >= n) {
            bail!("{}: edge endpoint {bad} outside 0..{n}", p.name);
        }
        if p.num_features == 0 || p.features.len() != n * p.num_features {
            bail!(
                "{}: feature matrix has {} values, expected {n} nodes x {} features",
                p.name,
                p.features.len(),
                p.num_features
            );
        }
        if p.features.iter().any(|v| !v.is_finite()) {
            bail!("{}: feature matrix holds NaN or infinite values", p.name);
        }
        if p.labels.len() != n {
            bail!("{}: {} labels for {n} nodes", p.name, p.labels.len());
        }
        check_labels(&p.labels, n).with_context(|| p.name.clone())?;
        let num_classes = p.labels.iter().copied().max().unwrap_or(0) as usize + 1;
        let mut seen = vec![false; num_classes];
        for &l in &p.labels {
            seen[l as usize] = true;
        }
        let empty = seen.iter().filter(|s| !**s).count();
        if empty > 0 {
            tracing::warn!(
                "{}: {empty} of {num_classes} classes have no node (gaps in the label numbers)",
                p.name
            );
        }
        for (split, idx) in [("train", &p.train), ("val", &p.val), ("test", &p.test)] {
            if idx.is_empty() {
                bail!("{}: the {split} split is empty", p.name);
            }
            if let Some(bad) = idx.iter().find(|&&v| v < 0 || v as usize >= n) {
                bail!("{}: {split} index {bad} outside 0..{n}", p.name);
            }
        }
        let fingerprint = fingerprint(&p);
        Ok(Graph { parts: p, num_classes, fingerprint })
    }

    pub fn num_edges(&self) -> usize {
        self.src.len()
    }

    /// A short content hash of structure, features, labels and splits: two graphs with the same
    /// fingerprint are the same data, whatever file they came from.
    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }

    pub fn info(&self) -> GraphInfo {
        let mut class_counts = vec![0usize; self.num_classes];
        for &l in &self.labels {
            class_counts[l as usize] += 1;
        }
        let mut has_edge = vec![false; self.num_nodes];
        for (&s, &d) in self.src.iter().zip(&self.dst) {
            has_edge[s as usize] = true;
            has_edge[d as usize] = true;
        }
        GraphInfo {
            name: self.name.clone(),
            nodes: self.num_nodes,
            edges: self.num_edges(),
            features: self.num_features,
            classes: self.num_classes,
            train: self.train.len(),
            val: self.val.len(),
            test: self.test.len(),
            average_degree: self.num_edges() as f64 / self.num_nodes as f64,
            isolated_nodes: has_edge.iter().filter(|&&h| !h).count(),
            class_counts,
            fingerprint: self.fingerprint.clone(),
        }
    }
}

fn fingerprint(p: &GraphParts) -> String {
    let mut h = blake3::Hasher::new();
    let mut put = |tag: &str, bytes: &[u8]| {
        h.update(tag.as_bytes());
        h.update(&(bytes.len() as u64).to_le_bytes());
        h.update(bytes);
    };
    put("n", &(p.num_nodes as u64).to_le_bytes());
    put("f", &(p.num_features as u64).to_le_bytes());
    put("src", as_bytes(&p.src));
    put("dst", as_bytes(&p.dst));
    put("x", as_bytes(&p.features));
    put("y", as_bytes(&p.labels));
    put("train", as_bytes(&p.train));
    put("val", as_bytes(&p.val));
    put("test", as_bytes(&p.test));
    h.finalize().to_hex()[..16].to_string()
}

fn as_bytes<T: Copy>(v: &[T]) -> &[u8] {
    // SAFETY: only used with plain numeric types (i64, f32) that have no padding.
    unsafe { std::slice::from_raw_parts(v.as_ptr() as *const u8, std::mem::size_of_val(v)) }
}

/// Whether every edge's reverse is an edge too. Every loader gives its edges sorted by (source,
/// target) ([`symmetrize`]): each reverse is then found by a binary search among its source's
/// few edges, located through a table of where each source's edges start, with no copy of the
/// edges (2 GB on a products-sized graph); other edge lists are sorted into a copy first.
pub fn edges_symmetric(src: &[i64], dst: &[i64]) -> bool {
    let pack = |a: i64, b: i64| (a as u64) << 32 | (b as u64 & 0xffff_ffff);
    let sorted = src.iter().zip(dst).map(|(&s, &d)| pack(s, d)).is_sorted();
    // Sorted with repeats: a repeated edge needs a repeated reverse, which binary search
    // cannot count; loaders never repeat one.
    let repeats = || src.windows(2).zip(dst.windows(2)).any(|(s, d)| s[0] == s[1] && d[0] == d[1]);
    if sorted && !repeats() {
        let nodes = src.iter().chain(dst).map(|&v| v as usize + 1).max().unwrap_or(0);
        let mut starts = vec![0usize; nodes + 1];
        for &s in src {
            starts[s as usize + 1] += 1;
        }
        for v in 0..nodes {
            starts[v + 1] += starts[v];
        }
        let has = |s: i64, d: i64| {
            dst[starts[s as usize]..starts[s as usize + 1]].binary_search(&d).is_ok()
        };
        return src.iter().zip(dst).all(|(&s, &d)| has(d, s));
    }
    let mut forward: Vec<u64> = src.iter().zip(dst).map(|(&s, &d)| pack(s, d)).collect();
    let mut reverse: Vec<u64> = src.iter().zip(dst).map(|(&s, &d)| pack(d, s)).collect();
    forward.sort_unstable();
    reverse.sort_unstable();
    forward == reverse
}

/// Turns any edge list into the stored form: both directions, sorted by (src, dst), without
/// duplicates or self-loops. Endpoints must be non-negative and below 2^32.
pub fn symmetrize(pairs: impl IntoIterator<Item = (i64, i64)>) -> (Vec<i64>, Vec<i64>) {
    // Packing a pair into one u64 makes the sort of tens of millions of edges several times faster.
    let mut keys: Vec<u64> = Vec::new();
    for (a, b) in pairs {
        if a != b {
            let (a, b) = (a as u64, b as u64);
            keys.push(a << 32 | b);
            keys.push(b << 32 | a);
        }
    }
    keys.sort_unstable();
    keys.dedup();
    keys.iter().map(|&k| ((k >> 32) as i64, (k & 0xffff_ffff) as i64)).unzip()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn symmetry_is_every_edge_having_its_reverse() {
        let (src, dst) = symmetrize([(0, 1), (1, 2), (2, 2), (3, 0)]);
        assert!(edges_symmetric(&src, &dst));
        assert!(!edges_symmetric(&[0, 1, 1], &[1, 0, 2]), "1 -> 2 has no 2 -> 1");
        assert!(!edges_symmetric(&[0, 0], &[1, 1]), "a repeated edge is not its reverse");
        assert!(edges_symmetric(&[], &[]));
        // Unsorted lists take the sorting path and agree.
        assert!(edges_symmetric(&[2, 0, 1, 1], &[1, 1, 0, 2]));
        assert!(!edges_symmetric(&[2, 0, 1], &[1, 1, 0]), "2 -> 1 has no 1 -> 2");
        assert!(edges_symmetric(&[0, 0, 1, 1], &[1, 1, 0, 0]), "repeats matched by repeats");
    }
}
