//! PLS partitions: METIS k-way on the whole graph, balancing validation nodes and edges (two
//! vertex-weight constraints), computed once per dataset and K and cached on disk.

use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use rand::seq::index::sample;
use rand::Rng;

use crate::data::Graph;
use crate::model::graph_tensors::InAdjacency;

pub struct Partition {
    pub k: usize,
    /// Part of every node.
    pub part: Vec<u32>,
    /// Nodes of each part, ascending.
    pub members: Vec<Vec<i64>>,
    /// The whole graph's in-adjacency: the sources of the edges into `v` are
    /// `sources[offsets[v]..offsets[v + 1]]`, ascending (4 bytes an edge: 0.5 GB on a
    /// products-sized graph where a list of pairs took 2 GB).
    offsets: Vec<i64>,
    sources: Vec<u32>,
}

/// One epoch's subgraph: the union of the chosen parts with the edges between them.
pub struct Subgraph {
    pub parts: Vec<usize>,
    /// Global ids of the subgraph's nodes, ascending (local id = position).
    pub nodes: Vec<i64>,
    /// Its edges in local ids, as an in-adjacency with ascending rows.
    pub edges: InAdjacency,
}

impl Subgraph {
    pub fn num_edges(&self) -> usize {
        self.edges.col.len()
    }
}

impl Partition {
    pub fn from_assignment(g: &Graph, k: usize, part: Vec<u32>) -> Result<Partition> {
        if part.len() != g.num_nodes {
            bail!("partition has {} entries for {} nodes", part.len(), g.num_nodes);
        }
        let mut members = vec![Vec::new(); k];
        for (v, &p) in part.iter().enumerate() {
            members
                .get_mut(p as usize)
                .ok_or_else(|| anyhow!("part {p} outside 0..{k}"))?
                .push(v as i64);
        }
        if g.num_nodes > u32::MAX as usize {
            bail!("{} nodes: PLS partitions number nodes in 32 bits", g.num_nodes);
        }
        let InAdjacency { crow: offsets, col } =
            InAdjacency::from_edges(g.num_nodes, &g.src, &g.dst);
        let sources = col.into_iter().map(|s| s as u32).collect();
        Ok(Partition { k, part, members, offsets, sources })
    }

    /// Builds the subgraph of `chosen` parts: their nodes, the edges inside each part and the cut
    /// edges between two chosen parts (edges to unchosen parts are dropped).
    pub fn subgraph(&self, chosen: &[usize]) -> Subgraph {
        let mut in_sub = vec![false; self.k];
        for &p in chosen {
            in_sub[p] = true;
        }
        let mut nodes: Vec<i64> =
            chosen.iter().flat_map(|&p| self.members[p].iter().copied()).collect();
        nodes.sort_unstable();
        // Global -> local node numbers: a dense table (4 bytes a node) is several times faster
        // than a hash map for the ~10^5-10^6 lookups of a step.
        let mut local = vec![0u32; self.part.len()];
        for (i, &v) in nodes.iter().enumerate() {
            local[v as usize] = i as u32;
        }
        // Rows in ascending node order, sources ascending within a row: the subgraph's
        // in-adjacency directly, with no sort.
        let mut crow = Vec::with_capacity(nodes.len() + 1);
        let mut col = Vec::new();
        crow.push(0);
        for &v in &nodes {
            let v = v as usize;
            for &s in &self.sources[self.offsets[v] as usize..self.offsets[v + 1] as usize] {
                if in_sub[self.part[s as usize] as usize] {
                    col.push(local[s as usize] as i64);
                }
            }
            crow.push(col.len() as i64);
        }
        Subgraph { parts: chosen.to_vec(), nodes, edges: InAdjacency { crow, col } }
    }

    /// R of the K parts, uniformly without replacement, in ascending order.
    pub fn sample(&self, r: usize, rng: &mut impl Rng) -> Vec<usize> {
        let mut parts = sample(rng, self.k, r.min(self.k)).into_vec();
        parts.sort_unstable();
        parts
    }
}

/// Where the partition of `g` into `k` parts is cached. The `m2` names partitions made as
/// [`metis_partition`] makes them now (one refinement iteration); files from before, without it,
/// are not read, so that a PLS run gets the same parts on every machine.
pub fn cache_path(g: &Graph, k: usize) -> PathBuf {
    crate::paths::cache_dir().join("partitions").join(format!("{}-k{k}-m2.part", g.fingerprint()))
}

/// The cached partition of `g` into `k` parts, computing (and caching) it when missing.
pub fn get_or_compute(g: &Graph, k: usize, cache: &Path) -> Result<(Partition, bool)> {
    if let Ok(bytes) = std::fs::read(cache) {
        if bytes.len() == 4 * g.num_nodes {
            let part: Vec<u32> =
                bytes.chunks_exact(4).map(|c| u32::from_le_bytes(c.try_into().unwrap())).collect();
            if part.iter().all(|&p| (p as usize) < k) {
                return Ok((Partition::from_assignment(g, k, part)?, true));
            }
        }
        tracing::warn!("ignoring unreadable partition cache {}", cache.display());
    }
    let part = metis_partition(g, k)?;
    let bytes: Vec<u8> = part.iter().flat_map(|p| p.to_le_bytes()).collect();
    if let Err(e) = crate::checkpoint::write_atomic(cache, &bytes) {
        tracing::warn!("could not cache the partition at {}: {e:#}", cache.display());
    }
    Ok((Partition::from_assignment(g, k, part)?, false))
}

/// METIS k-way with two balance constraints per vertex: "is a validation node" and degree + 1
/// (so each part gets a fair share of validation nodes and of edges). One refinement iteration per
/// level, as DGL's METIS call (what the paper's reference partitions with) makes: on the
/// arxiv-shaped graph, K 32, about half the time of METIS's default 10 iterations for 46% of the
/// edges cut instead of 44% (DGL's own call, with its three constraints, cuts 73%;
/// `scripts/bench-metis.sh`, docs/performance.md).
pub fn metis_partition(g: &Graph, k: usize) -> Result<Vec<u32>> {
    if k < 2 || k > g.num_nodes {
        bail!("cannot split {} nodes into {k} parts", g.num_nodes);
    }
    let n = g.num_nodes;
    let mut xadj: Vec<metis::Idx> = vec![0; n + 1];
    for &s in &g.src {
        xadj[s as usize + 1] += 1;
    }
    for i in 0..n {
        xadj[i + 1] += xadj[i];
    }
    // graph edges are sorted by (src, dst), so dst in order is the CSR adjacency
    let adjncy: Vec<metis::Idx> = g.dst.iter().map(|&d| d as metis::Idx).collect();
    let mut is_val = vec![false; n];
    for &v in &g.val {
        is_val[v as usize] = true;
    }
    let vwgt: Vec<metis::Idx> =
        (0..n).flat_map(|v| [is_val[v] as metis::Idx, xadj[v + 1] - xadj[v] + 1]).collect();
    let mut part = vec![0 as metis::Idx; n];
    metis::Graph::new(2, k as metis::Idx, &xadj, &adjncy)
        .map_err(|e| anyhow!("METIS rejected the graph: {e:?}"))?
        .set_vwgt(&vwgt)
        .set_option(metis::option::Seed(0))
        .set_option(metis::option::NIter(1))
        .part_kway(&mut part)
        .map_err(|e| anyhow!("METIS failed to partition into {k} parts: {e:?}"))
        .context("partitioning for PLS")?;
    Ok(part.into_iter().map(|p| p as u32).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::{Graph, GraphParts};

    /// A subgraph's edges as (source, target) pairs of global ids, sorted.
    fn global_edges(s: &Subgraph) -> Vec<(i64, i64)> {
        let mut edges = Vec::new();
        for (target, w) in s.edges.crow.windows(2).enumerate() {
            for &source in &s.edges.col[w[0] as usize..w[1] as usize] {
                edges.push((s.nodes[source as usize], s.nodes[target]));
            }
        }
        edges.sort_unstable();
        edges
    }

    /// A path 0-1-2-3-4-5 (both directions), split into parts {0,1}, {2,3}, {4,5}.
    fn path_graph() -> Graph {
        let (mut src, mut dst) = (Vec::new(), Vec::new());
        for v in 0..5i64 {
            src.extend([v, v + 1]);
            dst.extend([v + 1, v]);
        }
        Graph::new(GraphParts {
            name: "path".into(),
            num_nodes: 6,
            src,
            dst,
            features: vec![0.0; 6],
            num_features: 1,
            labels: vec![0, 1, 0, 1, 0, 1],
            train: vec![0],
            val: vec![1],
            test: vec![2],
        })
        .unwrap()
    }

    #[test]
    fn a_subgraph_keeps_edges_inside_and_between_chosen_parts_only() {
        let p = Partition::from_assignment(&path_graph(), 3, vec![0, 0, 1, 1, 2, 2]).unwrap();
        assert_eq!(p.members, vec![vec![0, 1], vec![2, 3], vec![4, 5]]);
        // Parts 0 and 2: nodes 0,1,4,5; edges 0-1 and 4-5 only (the cut 1-2 and 3-4 go to part 1).
        let s = p.subgraph(&[0, 2]);
        assert_eq!(s.nodes, vec![0, 1, 4, 5]);
        assert_eq!(global_edges(&s), vec![(0, 1), (1, 0), (4, 5), (5, 4)]);
        // Parts 0 and 1: the cut edge 1-2 between them is kept, both ways, in local ids.
        let s = p.subgraph(&[0, 1]);
        assert_eq!(s.nodes, vec![0, 1, 2, 3]);
        assert_eq!(s.num_edges(), 6);
        assert!(global_edges(&s).contains(&(1, 2)));
        // Every part: the whole graph.
        assert_eq!(p.subgraph(&[0, 1, 2]).num_edges(), 10);
    }

    #[test]
    fn sampling_draws_distinct_sorted_parts_and_refuses_bad_assignments() {
        let p = Partition::from_assignment(&path_graph(), 3, vec![0, 0, 1, 1, 2, 2]).unwrap();
        let mut rng = <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(1);
        for _ in 0..20 {
            let s = p.sample(2, &mut rng);
            assert!(s.len() == 2 && s[0] < s[1] && s[1] < 3, "{s:?}");
        }
        assert_eq!(p.sample(9, &mut rng), vec![0, 1, 2]);
        assert!(Partition::from_assignment(&path_graph(), 3, vec![0; 5]).is_err());
        assert!(Partition::from_assignment(&path_graph(), 2, vec![0, 0, 1, 1, 2, 2]).is_err());
    }

    /// Property, over 300 random graphs, assignments and choices of parts: a subgraph holds
    /// exactly the chosen parts' nodes and exactly the edges whose two ends are in chosen parts.
    #[test]
    fn subgraphs_are_the_induced_graph_of_the_chosen_parts() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(3);
        for _ in 0..300 {
            let n = rng.gen_range(2..60usize);
            let k = rng.gen_range(1..=n.min(8));
            // sorted by source, as loaders give them (repeats and self-loops allowed)
            let mut edges: Vec<(i64, i64)> = (0..rng.gen_range(0..4 * n))
                .map(|_| (rng.gen_range(0..n as i64), rng.gen_range(0..n as i64)))
                .collect();
            edges.sort_unstable();
            let (src, dst): (Vec<i64>, Vec<i64>) = edges.iter().copied().unzip();
            let g = Graph::new(GraphParts {
                name: "random".into(),
                num_nodes: n,
                src,
                dst,
                features: vec![0.0; n],
                num_features: 1,
                labels: vec![0; n],
                train: vec![0],
                val: vec![0],
                test: vec![0],
            })
            .unwrap();
            let part: Vec<u32> = (0..n).map(|_| rng.gen_range(0..k as u32)).collect();
            let p = Partition::from_assignment(&g, k, part.clone()).unwrap();
            let chosen = p.sample(rng.gen_range(1..=k), &mut rng);
            let s = p.subgraph(&chosen);
            let inside = |v: i64| chosen.contains(&(part[v as usize] as usize));
            let want_nodes: Vec<i64> = (0..n as i64).filter(|&v| inside(v)).collect();
            assert_eq!(s.nodes, want_nodes);
            let got = global_edges(&s);
            let mut want: Vec<(i64, i64)> =
                edges.iter().copied().filter(|&(a, b)| inside(a) && inside(b)).collect();
            want.sort_unstable();
            // rows are in order and each row's sources ascending
            assert!(s
                .edges
                .crow
                .windows(2)
                .all(|w| s.edges.col[w[0] as usize..w[1] as usize].is_sorted()));
            assert_eq!(got, want, "n {n}, k {k}, parts {chosen:?}");
        }
    }
}
