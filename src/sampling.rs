//! Neighbour sampling for minibatch training (issue 26; not yet used by `train`): per-layer
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

/// How many in-neighbours one layer samples per target.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fanout {
    All,
    At(usize),
}

impl Fanout {
    /// `15,10,5` (one per layer, input layer first); `-1` is every neighbour.
    pub fn parse_list(text: &str) -> Result<Vec<Fanout>> {
        let fanouts = text
            .split(',')
            .map(|f| match f.trim() {
                "-1" => Ok(Fanout::All),
                n => match n.parse::<usize>() {
                    Ok(k) if k > 0 => Ok(Fanout::At(k)),
                    _ => {
                        bail!("fanout {n:?}: expected a positive count, or -1 for every neighbour")
                    }
                },
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
    /// Each edge's weight for the mean over a target's sampled in-neighbours (GraphSAGE's
    /// aggregation on the block), in `col`'s order.
    pub fn mean_weights(&self) -> Vec<f32> {
        self.crow
            .windows(2)
            .flat_map(|w| {
                let deg = (w[1] - w[0]) as usize;
                std::iter::repeat_n(1.0 / deg as f32, deg)
            })
            .collect()
    }

    /// Each edge's weight under DGL's `GraphConv(norm="both")` on the block:
    /// `1 / sqrt(out-degree of the source in the block * in-degree of the target in the block)`,
    /// degrees clamped to at least 1 as DGL does.
    pub fn gcn_both_weights(&self) -> Vec<f32> {
        let mut out_degree = vec![0u32; self.src.len()];
        for &s in &self.col {
            out_degree[s as usize] += 1;
        }
        self.crow
            .windows(2)
            .flat_map(|w| {
                let in_degree = (w[1] - w[0]).max(1) as f32;
                let out = &out_degree;
                self.col[w[0] as usize..w[1] as usize]
                    .iter()
                    .map(move |&s| 1.0 / (out[s as usize].max(1) as f32 * in_degree).sqrt())
            })
            .collect()
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
/// `batch_size` (the last one smaller), as DGL's `DataLoader(shuffle=True)` draws its seeds.
pub fn epoch_batches(train: &[i64], batch_size: usize, rng: &mut impl Rng) -> Vec<Vec<i64>> {
    use rand::seq::SliceRandom;
    let mut order = train.to_vec();
    order.shuffle(rng);
    order.chunks(batch_size.max(1)).map(<[i64]>::to_vec).collect()
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
        let weights = block.mean_weights();
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

    /// DGL's `norm="both"` on a block counts degrees inside the block: a source that sends to two
    /// of the block's targets has out-degree 2 there whatever its degree in the whole graph.
    #[test]
    fn gcn_both_weights_use_the_blocks_own_degrees() {
        // 0 -> 2, 1 -> 2, 1 -> 3: targets 2 and 3; source 1 sends to both.
        let a = InAdjacency::from_edges(4, &[0, 1, 1], &[2, 2, 3]);
        let block = &sample_blocks(&a, &[2, 3], &[Fanout::All], &mut StdRng::seed_from_u64(0))[0];
        assert_eq!(block.src, vec![2, 3, 0, 1]);
        let w = block.gcn_both_weights();
        // target 2 (in-degree 2): from 0 (out 1) and 1 (out 2); target 3 (in-degree 1): from 1.
        let expected =
            [1.0 / (1.0f32 * 2.0).sqrt(), 1.0 / (2.0f32 * 2.0).sqrt(), 1.0 / (2.0f32 * 1.0).sqrt()];
        for (got, want) in w.iter().zip(expected) {
            assert!((got - want).abs() < 1e-6, "{w:?}");
        }
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
