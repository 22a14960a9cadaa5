//! Contextual stochastic block model (CSBM): the standard synthetic node-classification graph.
//! Seeded, so the same settings always give the same graph (and the same fingerprint).

use anyhow::{bail, Context, Result};
use rand::{Rng, SeedableRng};
use rand_distr::StandardNormal;
use serde::{Deserialize, Serialize};

use super::graph::{symmetrize, Graph, GraphParts};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CsbmConfig {
    pub nodes: usize,
    pub classes: usize,
    /// Average number of stored (directed, symmetrised) edges per node.
    pub degree: f64,
    /// Probability that an edge is drawn inside its source's class (otherwise to a uniform node).
    pub homophily: f64,
    pub features: usize,
    /// Standard deviation of the per-feature Gaussian noise around the class mean (means are N(0,1)).
    pub noise: f64,
    /// Split sizes: a fraction of the nodes when below 1, a node count otherwise.
    pub train: f64,
    pub val: f64,
    pub test: f64,
    pub seed: u64,
}

/// Bounds on a generated graph (its sizes come from the command line).
const MAX_NODES: usize = 100_000_000;
const MAX_FEATURES: usize = 100_000;
const MAX_FEATURE_VALUES: f64 = 4e9;
const MAX_EDGES: f64 = 4e9;

impl CsbmConfig {
    /// The small embedded default (the demo's graph): trains in seconds, and hard enough (low
    /// homophily, noisy features, 10 training labels a class) that ingredients disagree and the
    /// strategies separate (measured with `scripts/demo-spread.sh`; docs/performance.md, "The main job").
    pub fn small() -> Self {
        CsbmConfig {
            nodes: 2000,
            classes: 5,
            degree: 6.0,
            homophily: 0.4,
            features: 32,
            noise: 5.0,
            train: 50.0,
            val: 500.0,
            test: 1000.0,
            seed: 0,
        }
    }
    /// Shaped like ogbn-arxiv: 169,343 nodes, 1,166,243 edges drawn (symmetrised ~2.3 M), 128 features, 40 classes.
    pub fn arxiv() -> Self {
        CsbmConfig {
            nodes: 169_343,
            classes: 40,
            degree: 2.0 * 1_166_243.0 / 169_343.0,
            homophily: 0.65,
            features: 128,
            noise: 4.0,
            train: 0.537,
            val: 0.176,
            test: 0.287,
            seed: 0,
        }
    }
    /// Shaped like ogbn-products: 2,449,029 nodes, 61,859,140 edges drawn, 100 features, 47 classes.
    pub fn products() -> Self {
        CsbmConfig {
            nodes: 2_449_029,
            classes: 47,
            degree: 2.0 * 61_859_140.0 / 2_449_029.0,
            homophily: 0.8,
            features: 100,
            noise: 4.0,
            train: 0.08,
            val: 0.016,
            test: 0.904,
            seed: 0,
        }
    }

    /// Applies `key=value,...` overrides on top of `self`.
    pub fn with_overrides(mut self, text: &str) -> Result<Self> {
        for pair in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (k, v) = pair
                .split_once('=')
                .with_context(|| format!("csbm setting {pair:?} is not key=value"))?;
            let num = || {
                v.parse::<f64>().with_context(|| format!("csbm setting {k}: {v:?} is not a number"))
            };
            let int = || {
                v.parse::<usize>()
                    .with_context(|| format!("csbm setting {k}: {v:?} is not a whole number"))
            };
            match k {
                "nodes" => self.nodes = int()?,
                "classes" => self.classes = int()?,
                "degree" => self.degree = num()?,
                "homophily" => self.homophily = num()?,
                "features" => self.features = int()?,
                "noise" => self.noise = num()?,
                "train" => self.train = num()?,
                "val" => self.val = num()?,
                "test" => self.test = num()?,
                "seed" => self.seed = v.parse().with_context(|| format!("csbm seed {v:?} is not a whole number"))?,
                other => bail!("unknown csbm setting {other:?} (nodes, classes, degree, homophily, features, noise, train, val, test, seed)"),
            }
        }
        self.validate()?;
        Ok(self)
    }

    pub fn validate(&self) -> Result<()> {
        if self.nodes < 2 || self.classes < 2 || self.features == 0 {
            bail!("csbm needs at least 2 nodes, 2 classes and 1 feature");
        }
        if self.classes > self.nodes {
            bail!("csbm: {} classes for {} nodes", self.classes, self.nodes);
        }
        if !(0.0..=1.0).contains(&self.homophily) {
            bail!("csbm homophily must be in 0..1, got {}", self.homophily);
        }
        if !self.degree.is_finite()
            || self.degree < 0.0
            || !self.noise.is_finite()
            || self.noise < 0.0
        {
            bail!("csbm degree and noise must be non-negative numbers");
        }
        // Sizes come from the command line: bounded before anything is allocated from them.
        if self.nodes > MAX_NODES
            || self.features > MAX_FEATURES
            || (self.nodes as f64) * (self.features as f64) > MAX_FEATURE_VALUES
        {
            bail!("csbm: {} nodes x {} features is more than this tool generates ({MAX_NODES} nodes, {MAX_FEATURES} features, {MAX_FEATURE_VALUES:e} values)", self.nodes, self.features);
        }
        if self.nodes as f64 * self.degree > MAX_EDGES {
            bail!(
                "csbm: {} nodes of degree {} is more than {MAX_EDGES:e} edges",
                self.nodes,
                self.degree
            );
        }
        if [self.train, self.val, self.test].iter().any(|s| !s.is_finite() || *s < 0.0) {
            bail!("csbm split sizes must be non-negative numbers (a fraction below 1, or a count)");
        }
        let total: usize = [self.train, self.val, self.test]
            .iter()
            .map(|&s| self.count(s))
            .fold(0usize, usize::saturating_add);
        if total > self.nodes
            || [self.train, self.val, self.test].iter().any(|&s| self.count(s) == 0)
        {
            bail!(
                "csbm split train={} val={} test={} does not fit {} nodes",
                self.train,
                self.val,
                self.test,
                self.nodes
            );
        }
        Ok(())
    }

    /// A split size as a node count: a fraction of the nodes below 1, a count from 1 on.
    fn count(&self, size: f64) -> usize {
        if size < 1.0 {
            (size * self.nodes as f64).round() as usize
        } else {
            size as usize
        }
    }

    pub fn generate(&self, name: &str) -> Result<Graph> {
        self.validate()?;
        let mut rng = rand::rngs::StdRng::seed_from_u64(self.seed);
        let (n, c, f) = (self.nodes, self.classes, self.features);
        let labels: Vec<i64> = (0..n).map(|_| rng.gen_range(0..c) as i64).collect();
        let mut members: Vec<Vec<i64>> = vec![Vec::new(); c];
        for (i, &l) in labels.iter().enumerate() {
            members[l as usize].push(i as i64);
        }

        let draws = (n as f64 * self.degree / 2.0).round() as usize;
        let mut pairs = Vec::with_capacity(draws);
        for _ in 0..draws {
            let u = rng.gen_range(0..n);
            let v = if rng.gen::<f64>() < self.homophily {
                let same = &members[labels[u] as usize];
                same[rng.gen_range(0..same.len())] as usize
            } else {
                rng.gen_range(0..n)
            };
            pairs.push((u as i64, v as i64));
        }
        let (src, dst) = symmetrize(pairs);

        let means: Vec<f32> = (0..c * f).map(|_| rng.sample::<f32, _>(StandardNormal)).collect();
        let noise = self.noise as f32;
        let mut features = Vec::with_capacity(n * f);
        for &l in &labels {
            let mean = &means[l as usize * f..(l as usize + 1) * f];
            features.extend(mean.iter().map(|&m| m + noise * rng.sample::<f32, _>(StandardNormal)));
        }

        let mut order: Vec<i64> = (0..n as i64).collect();
        rand::seq::SliceRandom::shuffle(order.as_mut_slice(), &mut rng);
        let (nt, nv, ns) = (self.count(self.train), self.count(self.val), self.count(self.test));
        let take = |from: usize, len: usize| {
            let mut s = order[from..from + len].to_vec();
            s.sort_unstable();
            s
        };
        let (train, val, test) = (take(0, nt), take(nt, nv), take(nt + nv, ns));
        Graph::new(GraphParts {
            name: name.to_string(),
            num_nodes: n,
            src,
            dst,
            features,
            num_features: f,
            labels,
            train,
            val,
            test,
        })
    }
}
