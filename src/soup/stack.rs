//! Ingredients stacked per parameter (`[N, ...]`, frozen, on the device) and mixed by one
//! contraction per tensor. Every strategy mixes through here.

use std::path::PathBuf;

use anyhow::Result;
use serde::{Deserialize, Serialize};
use tch::{Device, Kind, Tensor};

use crate::checkpoint::{self, CheckpointMeta};
use crate::model::{ArchSpec, ParamMap, ParamRole};

/// How finely mixing weights are learned: one row of weights per tensor (the paper), per layer,
/// or a single row shared by the whole model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum MixGranularity {
    Tensor,
    Layer,
    Ingredient,
}

pub struct IngredientStack {
    pub spec: ArchSpec,
    pub paths: Vec<PathBuf>,
    pub metas: Vec<CheckpointMeta>,
    /// Parameter names in the spec's order, and what each is.
    pub names: Vec<String>,
    pub roles: Vec<ParamRole>,
    layers: Vec<usize>,
    /// `[N, ...shape]` per parameter.
    pub stacked: Vec<Tensor>,
    pub device: Device,
}

impl IngredientStack {
    /// Loads and validates every checkpoint, and refuses a set that cannot be souped together
    /// (naming the first file that does not match the first one, and why).
    pub fn load(paths: &[PathBuf], device: Device) -> Result<IngredientStack> {
        let cks = checkpoint::load_compatible(paths)?;
        let spec = cks[0].meta.arch.clone();
        let infos = spec.params();
        let stacked = infos
            .iter()
            .map(|info| {
                let parts: Vec<&Tensor> = cks.iter().map(|c| &c.params[&info.name]).collect();
                Tensor::stack(&parts, 0).to_device(device)
            })
            .collect();
        Ok(IngredientStack {
            spec,
            paths: paths.to_vec(),
            names: infos.iter().map(|i| i.name.clone()).collect(),
            roles: infos.iter().map(|i| i.role).collect(),
            layers: infos.iter().map(|i| i.layer).collect(),
            metas: cks.into_iter().map(|c| c.meta).collect(),
            stacked,
            device,
        })
    }

    pub fn len(&self) -> usize {
        self.paths.len()
    }

    pub fn is_empty(&self) -> bool {
        self.paths.is_empty()
    }

    /// The learnable groups at a granularity: their names, and each parameter's group. Batch-norm
    /// running statistics have no group of their own: they follow their layer's batch-norm
    /// weight (see [`IngredientStack::mix`]).
    pub fn groups(&self, g: MixGranularity) -> (Vec<String>, Vec<usize>) {
        let mut names = Vec::new();
        let mut of = Vec::with_capacity(self.names.len());
        for (k, name) in self.names.iter().enumerate() {
            let key = match (g, self.roles[k]) {
                (_, r) if r.is_buffer() => {
                    // follow this layer's batch-norm weight
                    let owner = self.names.iter().position(|n| *n == format!("bns.{}.weight", self.layers[k])).expect("batch norm weight");
                    of.push(of[owner]);
                    continue;
                }
                (MixGranularity::Tensor, _) => name.clone(),
                (MixGranularity::Layer, _) => format!("layer {}", self.layers[k]),
                (MixGranularity::Ingredient, _) => "all".to_string(),
            };
            let idx = names.iter().position(|n| *n == key).unwrap_or_else(|| {
                names.push(key.clone());
                names.len() - 1
            });
            of.push(idx);
        }
        (names, of)
    }

    /// The soup `sum_i alpha[group(p), i] * W_i[p]` for every parameter `p`; differentiable in
    /// `alpha` (`[groups, N]`). Running means and variances mix with their layer's coefficients
    /// (a convex combination of valid statistics is valid); the batch counter takes the maximum.
    pub fn mix(&self, alpha: &Tensor, group_of: &[usize]) -> ParamMap {
        let n = self.len() as i64;
        let mut out = ParamMap::new();
        for (k, s) in self.stacked.iter().enumerate() {
            let t = if self.roles[k] == ParamRole::BatchCount {
                s.amax([0i64].as_slice(), false)
            } else {
                let shape = &s.size()[1..];
                let w = alpha.get(group_of[k] as i64).unsqueeze(0); // [1, N]
                w.matmul(&s.view([n, -1])).view(shape)
            };
            out.insert(self.names[k].clone(), t);
        }
        out
    }

    /// Mixes with one weight per ingredient for every tensor (uniform, greedy, GIS).
    pub fn mix_global(&self, weights: &[f64]) -> ParamMap {
        let row = Tensor::from_slice(weights).to_kind(Kind::Float).to_device(self.device).unsqueeze(0);
        self.mix(&row, &vec![0; self.names.len()])
    }

    /// Ingredient `i` as a parameter map (views into the stack).
    pub fn ingredient(&self, i: usize) -> ParamMap {
        self.names.iter().zip(&self.stacked).map(|(k, s)| (k.clone(), s.get(i as i64))).collect()
    }

    /// Bytes held by the stacked weights.
    pub fn bytes(&self) -> u64 {
        self.stacked.iter().map(|s| (s.numel() * s.kind().elt_size_in_bytes()) as u64).sum()
    }
}
