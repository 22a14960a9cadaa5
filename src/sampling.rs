//! Neighbour sampling for minibatch training: per-layer
//! message-flow blocks sampled on the in-adjacency, as DGL's `MultiLayerNeighborSampler` builds
//! them. The last block's targets are the minibatch's seeds; each block's sources are the next
//! earlier block's targets; the first block's sources are the nodes whose input features the
//! minibatch reads.
//!
//! Sampling draws, for every target, at most `fanout` of its in-neighbours without replacement
//! (all of them when it has no more, or for [`Fanout::All`]), from a generator the caller seeds,
//! so a run is reproducible whatever the threads or shards.

use std::collections::HashMap;

use anyhow::{bail, Result};
use rand::seq::index::sample;
use rand::Rng;

use crate::model::graph_tensors::InAdjacency;

/// How many in-neighbours one layer samples per target. Written as a number, `-1` for every one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(into = "i64", try_from = "i64")]
pub enum Fanout {
    All,
    At(usize),
}

impl From<Fanout> for i64 {
    fn from(f: Fanout) -> i64 {
        match f {
            Fanout::All => -1,
            Fanout::At(k) => k as i64,
        }
    }
}

impl TryFrom<i64> for Fanout {
    type Error = String;
    fn try_from(k: i64) -> Result<Fanout, String> {
        match k {
            -1 => Ok(Fanout::All),
            k if k > 0 => Ok(Fanout::At(k as usize)),
            k => Err(format!("fanout {k}: expected a positive count, or -1 for every neighbour")),
        }
    }
}

impl Fanout {
    /// `15,10,5`, `-1` for every neighbour: as [`Fanout::parse_list`] reads it.
    pub fn list_text(fanouts: &[Fanout]) -> String {
        fanouts.iter().map(|&f| i64::from(f).to_string()).collect::<Vec<_>>().join(",")
    }

    /// `15,10,5` (one per layer, input layer first); `-1` is every neighbour.
    pub fn parse_list(text: &str) -> Result<Vec<Fanout>> {
        let fanouts = text
            .split(',')
            .map(|f| match f.trim().parse::<i64>() {
                Ok(k) => Fanout::try_from(k).map_err(anyhow::Error::msg),
                Err(_) => {
                    bail!("fanout {f:?}: expected a positive count, or -1 for every neighbour")
                }
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(fanouts)
    }
}

/// One layer's bipartite graph: messages flow from `src` nodes to `dst` nodes along the sampled
/// edges. Local ids index `dst` (rows) and `src` (columns); `src` starts with `dst`, in the same
/// order, so a target's own representation is row `i` of the layer's input, as DGL's blocks keep
/// it for GraphSAGE's self term.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Block {
    /// Global ids of the targets.
    pub dst: Vec<i64>,
    /// Global ids of the sources: the targets, then each sampled neighbour not among them, in the
    /// order first drawn.
    pub src: Vec<i64>,
    /// The sampled edges in CSR over targets: `col[crow[i]..crow[i + 1]]` are the local source
    /// ids of target `i`'s sampled in-neighbours, ascending by global id.
    pub crow: Vec<i64>,
    pub col: Vec<i64>,
}

impl Block {
    /// The mean over each target's sampled in-neighbours (GraphSAGE's aggregation on the block).
    pub fn mean_matrix(&self) -> BlockMatrix {
        let values = self
            .crow
            .windows(2)
            .flat_map(|w| {
                let k = (w[1] - w[0]) as usize;
                std::iter::repeat_n(1.0 / k as f32, k)
            })
            .collect();
        self.matrix(self.crow.clone(), self.col.clone(), values)
    }

    /// GCN's propagation on the block, weighted as the whole graph's operator weighs each edge
    /// (PyG's `gcn_norm` with `self_loops`, DGL's `norm="both"` without) and scaled by
    /// `degree / sampled` per target, so that the block's sum estimates the whole graph's
    /// without bias and equals it under full fanout. The degrees are the whole graph's, not the
    /// block's (DGL's `GraphConv` on a block counts the block's): training then normalises as
    /// the full-graph inference, evaluation and souping of the ingredient will.
    pub fn gcn_matrix(&self, degrees: &Degrees, self_loops: bool) -> BlockMatrix {
        let loops = usize::from(self_loops);
        let mut crow = Vec::with_capacity(self.crow.len());
        let mut col = Vec::with_capacity(self.col.len() + loops * self.dst.len());
        let mut values = Vec::with_capacity(col.capacity());
        crow.push(0);
        for (i, &v) in self.dst.iter().enumerate() {
            let (lo, hi) = (self.crow[i] as usize, self.crow[i + 1] as usize);
            let in_v = degrees.in_degree[v as usize] as f32;
            let scale = if hi > lo { in_v / (hi - lo) as f32 } else { 0.0 };
            for &s in &self.col[lo..hi] {
                let u = self.src[s as usize] as usize;
                let norm = if self_loops {
                    ((degrees.in_degree[u] as f32 + 1.0) * (in_v + 1.0)).sqrt()
                } else {
                    (degrees.out_degree[u].max(1) as f32 * in_v.max(1.0)).sqrt()
                };
                col.push(s);
                values.push(scale / norm);
            }
            if self_loops {
                col.push(i as i64);
                values.push(1.0 / (in_v + 1.0));
            }
            crow.push(col.len() as i64);
        }
        self.matrix(crow, col, values)
    }

    /// The edges GAT attends over on the block, as (local sources, local targets): with
    /// `self_loops` the sampled loops replaced by one per target (PyG's `GATConv`), otherwise
    /// the sampled edges as they are (DGL's).
    pub fn attention_edges(&self, self_loops: bool) -> (Vec<i64>, Vec<i64>) {
        let (mut src, mut dst) = (Vec::with_capacity(self.col.len()), Vec::new());
        dst.reserve(self.col.len());
        for i in 0..self.dst.len() {
            for &s in &self.col[self.crow[i] as usize..self.crow[i + 1] as usize] {
                if !(self_loops && self.src[s as usize] == self.dst[i]) {
                    src.push(s);
                    dst.push(i as i64);
                }
            }
        }
        if self_loops {
            src.extend(0..self.dst.len() as i64);
            dst.extend(0..self.dst.len() as i64);
        }
        (src, dst)
    }

    fn matrix(&self, crow: Vec<i64>, col: Vec<i64>, values: Vec<f32>) -> BlockMatrix {
        BlockMatrix { rows: self.dst.len(), cols: self.src.len(), crow, col, values }
    }
}

/// The whole graph's in- and out-degrees (edges as given, no self-loops added), which a block's
/// GCN weights are taken from.
pub struct Degrees {
    pub in_degree: Vec<u32>,
    pub out_degree: Vec<u32>,
}

impl Degrees {
    pub fn of(adjacency: &InAdjacency) -> Degrees {
        let in_degree = adjacency.crow.windows(2).map(|w| (w[1] - w[0]) as u32).collect();
        let mut out_degree = vec![0u32; adjacency.crow.len() - 1];
        for &s in &adjacency.col {
            out_degree[s as usize] += 1;
        }
        Degrees { in_degree, out_degree }
    }
}

/// A block's sparse operator on the host, in CSR form: `rows` targets by `cols` sources.
#[derive(Clone, Debug, PartialEq)]
pub struct BlockMatrix {
    pub rows: usize,
    pub cols: usize,
    pub crow: Vec<i64>,
    pub col: Vec<i64>,
    pub values: Vec<f32>,
}

impl BlockMatrix {
    /// The transpose, in CSR form (a counting sort by column): what the backward pass
    /// multiplies by, made on the host beside the sampling rather than on the device.
    pub fn transpose(&self) -> BlockMatrix {
        let mut crow = vec![0i64; self.cols + 1];
        for &c in &self.col {
            crow[c as usize + 1] += 1;
        }
        for c in 0..self.cols {
            crow[c + 1] += crow[c];
        }
        let mut next = crow[..self.cols].to_vec();
        let mut col = vec![0i64; self.col.len()];
        let mut values = vec![0f32; self.col.len()];
        for r in 0..self.rows {
            for e in self.crow[r] as usize..self.crow[r + 1] as usize {
                let at = &mut next[self.col[e] as usize];
                col[*at as usize] = r as i64;
                values[*at as usize] = self.values[e];
                *at += 1;
            }
        }
        BlockMatrix { rows: self.cols, cols: self.rows, crow, col, values }
    }
}

/// The blocks of one minibatch, input layer first (`fanouts` in the same order): the last
/// block's targets are `seeds`.
pub fn sample_blocks(
    adjacency: &InAdjacency,
    seeds: &[i64],
    fanouts: &[Fanout],
    rng: &mut impl Rng,
) -> Vec<Block> {
    let mut blocks = Vec::with_capacity(fanouts.len());
    let mut targets = seeds.to_vec();
    for &fanout in fanouts.iter().rev() {
        let block = sample_block(adjacency, targets, fanout, rng);
        targets = block.src.clone();
        blocks.push(block);
    }
    blocks.reverse();
    blocks
}

fn sample_block(
    adjacency: &InAdjacency,
    dst: Vec<i64>,
    fanout: Fanout,
    rng: &mut impl Rng,
) -> Block {
    let mut local: HashMap<i64, i64> =
        dst.iter().enumerate().map(|(i, &v)| (v, i as i64)).collect();
    let mut src = dst.clone();
    let mut crow = Vec::with_capacity(dst.len() + 1);
    let mut col = Vec::new();
    crow.push(0);
    for &v in &dst {
        let row = &adjacency.col
            [adjacency.crow[v as usize] as usize..adjacency.crow[v as usize + 1] as usize];
        let mut picked: Vec<i64> = match fanout {
            Fanout::At(k) if k < row.len() => {
                sample(rng, row.len(), k).into_iter().map(|i| row[i]).collect()
            }
            _ => row.to_vec(),
        };
        picked.sort_unstable();
        for u in picked {
            let id = *local.entry(u).or_insert_with(|| {
                src.push(u);
                src.len() as i64 - 1
            });
            col.push(id);
        }
        crow.push(col.len() as i64);
    }
    Block { dst, src, crow, col }
}

/// One epoch's minibatches: the training nodes shuffled by `rng` and cut into batches of
/// `batch_size` (the last one smaller), as DGL's `DataLoader(shuffle=True)` draws its seeds;
/// a last batch of one seed joins the one before (batch norm over one row has no variance).
pub fn epoch_batches(train: &[i64], batch_size: usize, rng: &mut impl Rng) -> Vec<Vec<i64>> {
    use rand::seq::SliceRandom;
    let mut order = train.to_vec();
    order.shuffle(rng);
    let mut batches: Vec<Vec<i64>> = order.chunks(batch_size.max(1)).map(<[i64]>::to_vec).collect();
    if batches.len() > 1 && batches.last().is_some_and(|b| b.len() == 1) {
        let last = batches.pop().unwrap_or_default();
        if let Some(before) = batches.last_mut() {
            before.extend(last);
        }
    }
    batches
}

/// How many batches [`epoch_batches`] makes of `train` nodes.
pub fn batches_per_epoch(train: usize, batch_size: usize) -> usize {
    let n = train.div_ceil(batch_size.max(1));
    if n > 1 && train % batch_size.max(1) == 1 {
        n - 1
    } else {
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    /// A random directed graph of `n` nodes, about `m` edges, no duplicates, as its in-adjacency.
    fn random_graph(n: usize, m: usize, seed: u64) -> InAdjacency {
        let mut rng = StdRng::seed_from_u64(seed);
        let mut edges: Vec<(i64, i64)> =
            (0..m).map(|_| (rng.gen_range(0..n) as i64, rng.gen_range(0..n) as i64)).collect();
        edges.sort_unstable();
        edges.dedup();
        let (src, dst): (Vec<i64>, Vec<i64>) = edges.into_iter().unzip();
        InAdjacency::from_edges(n, &src, &dst)
    }

    fn neighbours(a: &InAdjacency, v: i64) -> &[i64] {
        &a.col[a.crow[v as usize] as usize..a.crow[v as usize + 1] as usize]
    }

    fn globals(b: &Block, i: usize) -> Vec<i64> {
        b.col[b.crow[i] as usize..b.crow[i + 1] as usize]
            .iter()
            .map(|&s| b.src[s as usize])
            .collect()
    }

    #[test]
    fn each_target_gets_at_most_fanout_distinct_neighbours_of_its_own() {
        let a = random_graph(500, 6000, 1);
        let seeds: Vec<i64> = (0..64).map(|i| i * 7).collect();
        let fanouts = [Fanout::At(3), Fanout::At(5)];
        let blocks = sample_blocks(&a, &seeds, &fanouts, &mut StdRng::seed_from_u64(2));
        assert_eq!(blocks.len(), 2);
        assert_eq!(blocks[1].dst, seeds);
        assert_eq!(blocks[0].dst, blocks[1].src, "each block's sources are the next one's targets");
        for (block, fanout) in blocks.iter().zip([3, 5]) {
            assert_eq!(&block.src[..block.dst.len()], &block.dst[..], "targets come first");
            for (i, &v) in block.dst.iter().enumerate() {
                let got = globals(block, i);
                let all = neighbours(&a, v);
                assert_eq!(got.len(), all.len().min(fanout), "node {v}");
                assert!(got.windows(2).all(|w| w[0] < w[1]), "distinct, ascending: {got:?}");
                assert!(got.iter().all(|u| all.contains(u)), "{got:?} not all in {all:?}");
            }
        }
    }

    #[test]
    fn the_same_seed_samples_the_same_blocks_and_another_seed_others() {
        let a = random_graph(400, 8000, 3);
        let seeds: Vec<i64> = (0..50).collect();
        let fanouts = [Fanout::At(2), Fanout::At(2)];
        let draw = |s| sample_blocks(&a, &seeds, &fanouts, &mut StdRng::seed_from_u64(s));
        assert_eq!(draw(7), draw(7));
        assert_ne!(draw(7), draw(8));
    }

    #[test]
    fn full_fanout_takes_the_whole_neighbourhood_and_its_mean_is_the_full_graphs() {
        let a = random_graph(300, 3000, 4);
        let seeds: Vec<i64> = (0..300).step_by(3).collect();
        let block = &sample_blocks(&a, &seeds, &[Fanout::All], &mut StdRng::seed_from_u64(0))[0];
        let x: Vec<f32> = (0..300).map(|v| (v as f32 * 0.37).sin()).collect();
        let mean = block.mean_matrix();
        let weights = &mean.values;
        for (i, &v) in block.dst.iter().enumerate() {
            let all = neighbours(&a, v);
            assert_eq!(globals(block, i), all, "node {v}");
            let (lo, hi) = (block.crow[i] as usize, block.crow[i + 1] as usize);
            let on_block: f32 =
                (lo..hi).map(|e| weights[e] * x[block.src[block.col[e] as usize] as usize]).sum();
            let on_graph = if all.is_empty() {
                0.0
            } else {
                all.iter().map(|&u| x[u as usize]).sum::<f32>() / all.len() as f32
            };
            assert!((on_block - on_graph).abs() < 1e-5, "node {v}: {on_block} vs {on_graph}");
        }
    }

    /// A block's GCN weights are the whole graph's operator's, scaled by degree over sampled
    /// count: with full fanout the block's rows are the whole graph's rows, for PyG's
    /// normalisation with self-loops and DGL's without; with fanout 1, an edge weighs its
    /// target's degree times its whole-graph weight. The transpose is the dense one's.
    #[test]
    fn gcn_block_weights_are_the_whole_graphs_scaled_by_the_sampled_share() {
        // 0 -> 2, 1 -> 2, 1 -> 3, 3 -> 2: in-degrees [0, 0, 3, 1], out-degrees [1, 2, 0, 1].
        let a = InAdjacency::from_edges(4, &[0, 1, 1, 3], &[2, 2, 3, 2]);
        let degrees = Degrees::of(&a);
        assert_eq!(
            (degrees.in_degree.clone(), degrees.out_degree.clone()),
            (vec![0, 0, 3, 1], vec![1, 2, 0, 1])
        );
        let block = &sample_blocks(&a, &[2, 3], &[Fanout::All], &mut StdRng::seed_from_u64(0))[0];
        assert_eq!(block.src, vec![2, 3, 0, 1]);
        let dense = |m: &BlockMatrix| {
            let mut d = vec![vec![0f32; m.cols]; m.rows];
            for (r, row) in d.iter_mut().enumerate() {
                for e in m.crow[r] as usize..m.crow[r + 1] as usize {
                    row[m.col[e] as usize] += m.values[e];
                }
            }
            d
        };
        let close = |got: &[Vec<f32>], want: &[Vec<f32>]| {
            got.iter().flatten().zip(want.iter().flatten()).all(|(g, w)| (g - w).abs() < 1e-6)
        };
        let s = |x: f32| 1.0 / x.sqrt();
        // PyG: (A + I), degrees in + 1. Row of 2 over sources [2, 3, 0, 1]; row of 3.
        let pyg = vec![
            vec![0.25, s(2.0 * 4.0), s(1.0 * 4.0), s(1.0 * 4.0)],
            vec![0.0, 0.5, 0.0, s(1.0 * 2.0)],
        ];
        let got = dense(&block.gcn_matrix(&degrees, true));
        assert!(close(&got, &pyg), "{got:?}");
        // DGL: out-degree of the source, in-degree of the target, clamped at 1.
        let dgl = vec![
            vec![0.0, s(1.0 * 3.0), s(1.0 * 3.0), s(2.0 * 3.0)],
            vec![0.0, 0.0, 0.0, s(2.0 * 1.0)],
        ];
        let m = block.gcn_matrix(&degrees, false);
        assert!(close(&dense(&m), &dgl), "{:?}", dense(&m));
        let t = dense(&m.transpose());
        assert!((0..4).all(|c| (0..2).all(|r| t[c][r] == dense(&m)[r][c])), "{t:?}");
        // One neighbour of node 2's three: weight 3 times its whole-graph weight.
        let one = &sample_blocks(&a, &[2], &[Fanout::At(1)], &mut StdRng::seed_from_u64(3))[0];
        let m = one.gcn_matrix(&degrees, false);
        let u = one.src[one.col[0] as usize] as usize;
        let want = 3.0 * s(degrees.out_degree[u] as f32 * 3.0);
        assert!((m.values[0] - want).abs() < 1e-6, "{} vs {want}", m.values[0]);
        // GAT's edges: loops replaced by one per target.
        let looped = InAdjacency::from_edges(3, &[0, 1, 1], &[1, 1, 2]);
        let b = &sample_blocks(&looped, &[1, 2], &[Fanout::All], &mut StdRng::seed_from_u64(0))[0];
        assert_eq!(b.src, vec![1, 2, 0]);
        assert_eq!(b.attention_edges(true), (vec![2, 0, 0, 1], vec![0, 1, 0, 1]));
        assert_eq!(b.attention_edges(false), (vec![2, 0, 0], vec![0, 0, 1]));
    }

    #[test]
    fn epoch_batches_cover_every_training_node_once() {
        let train: Vec<i64> = (0..1000).map(|i| i * 3).collect();
        let batches = epoch_batches(&train, 128, &mut StdRng::seed_from_u64(5));
        assert_eq!(batches.len(), 8);
        assert!(batches[..7].iter().all(|b| b.len() == 128) && batches[7].len() == 1000 - 7 * 128);
        let mut all: Vec<i64> = batches.concat();
        assert_ne!(all, train, "shuffled");
        all.sort_unstable();
        assert_eq!(all, train);
        let sizes = |n: i64| {
            let train: Vec<i64> = (0..n).collect();
            let b = epoch_batches(&train, 4, &mut StdRng::seed_from_u64(1));
            assert_eq!(b.len(), batches_per_epoch(n as usize, 4));
            b.iter().map(Vec::len).collect::<Vec<_>>()
        };
        assert_eq!(sizes(9), vec![4, 5], "a lone last seed joins the batch before");
        assert_eq!((sizes(1), sizes(10), sizes(8)), (vec![1], vec![4, 4, 2], vec![4, 4]));
    }

    #[test]
    fn fanout_lists_parse_and_bad_ones_are_refused() {
        assert_eq!(
            Fanout::parse_list("15, 10,-1").unwrap(),
            vec![Fanout::At(15), Fanout::At(10), Fanout::All]
        );
        for bad in ["0", "x", "3,,3", "-2"] {
            assert!(Fanout::parse_list(bad).is_err(), "{bad}");
        }
    }
}
