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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
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
                    let owner = self
                        .names
                        .iter()
                        .position(|n| *n == format!("bns.{}.weight", self.layers[k]))
                        .expect("batch norm weight");
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
    /// (a convex combination of valid statistics is valid) but without a gradient: they are
    /// buffers, which batch norm in training mode updates in place, and which no loss should
    /// move; the batch counter takes the maximum.
    pub fn mix(&self, alpha: &Tensor, group_of: &[usize]) -> ParamMap {
        let n = self.len() as i64;
        let mut out = ParamMap::new();
        for (k, s) in self.stacked.iter().enumerate() {
            let combine = || {
                let shape = &s.size()[1..];
                let w = alpha.get(group_of[k] as i64).unsqueeze(0); // [1, N]
                w.matmul(&s.view([n, -1])).view(shape)
            };
            let t = match self.roles[k] {
                ParamRole::BatchCount => s.amax([0i64].as_slice(), false),
                r if r.is_buffer() => tch::no_grad(combine),
                _ => combine(),
            };
            out.insert(self.names[k].clone(), t);
        }
        out
    }

    /// Mixes with one weight per ingredient for every tensor (uniform, greedy, GIS).
    pub fn mix_global(&self, weights: &[f64]) -> ParamMap {
        let row =
            Tensor::from_slice(weights).to_kind(Kind::Float).to_device(self.device).unsqueeze(0);
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checkpoint::{CheckpointKind, CheckpointMeta};
    use crate::model::{Arch, ArchSpec};

    /// Two ingredients of a 2-layer GCN with batch norm, from two seeds, saved and stacked.
    fn stack() -> (tempfile::TempDir, IngredientStack) {
        let spec = ArchSpec { hidden: 4, batch_norm: true, ..ArchSpec::plain(Arch::Gcn, 3, 2) };
        let dir = tempfile::tempdir().unwrap();
        let paths: Vec<PathBuf> = (0..2)
            .map(|i| {
                let meta = CheckpointMeta {
                    format_version: checkpoint::FORMAT_VERSION,
                    kind: CheckpointKind::Ingredient,
                    arch: spec.clone(),
                    dataset: "d".into(),
                    dataset_fingerprint: "f".into(),
                    init_fingerprint: "i".into(),
                    seed: Some(i),
                    epochs: None,
                    val_acc: None,
                    test_acc: None,
                    tool_version: checkpoint::tool_version(),
                    extra: Default::default(),
                };
                let path = dir.path().join(format!("ingredient-{i}.safetensors"));
                checkpoint::save(&path, &spec.init(i as i64 + 1, Device::Cpu), &meta, false)
                    .unwrap();
                path
            })
            .collect();
        let stack = IngredientStack::load(&paths, Device::Cpu).unwrap();
        (dir, stack)
    }

    #[test]
    fn groups_per_tensor_layer_and_ingredient_with_batch_norm_buffers_following_their_layer() {
        let (_dir, s) = stack();
        let (tensor, of_tensor) = s.groups(MixGranularity::Tensor);
        assert!(
            !tensor.iter().any(|n| n.contains("running") || n.contains("num_batches")),
            "buffers have no group: {tensor:?}"
        );
        let bn_weight = s.names.iter().position(|n| n == "bns.0.weight").unwrap();
        let running_mean = s.names.iter().position(|n| n == "bns.0.running_mean").unwrap();
        assert_eq!(of_tensor[running_mean], of_tensor[bn_weight]);
        let (layer, of_layer) = s.groups(MixGranularity::Layer);
        assert_eq!(layer, vec!["layer 0", "layer 1"]);
        let conv1 = s.names.iter().position(|n| n == "convs.1.lin.weight").unwrap();
        assert_eq!((of_layer[bn_weight], of_layer[conv1]), (0, 1));
        let (one, of_one) = s.groups(MixGranularity::Ingredient);
        assert_eq!(one, vec!["all"]);
        assert!(of_one.iter().all(|&g| g == 0));
    }

    #[test]
    fn mixing_with_a_one_hot_row_gives_that_ingredient() {
        let (_dir, s) = stack();
        let (names, of) = s.groups(MixGranularity::Tensor);
        let alpha = Tensor::zeros([names.len() as i64, 2], (Kind::Float, Device::Cpu));
        let _ = alpha.select(1, 1).fill_(1.0);
        let mixed = s.mix(&alpha, &of);
        for (name, t) in s.ingredient(1) {
            let diff = (&mixed[&name].to_kind(Kind::Double) - t.to_kind(Kind::Double))
                .abs()
                .max()
                .double_value(&[]);
            assert!(diff < 1e-6, "{name}: {diff}");
        }
        let half = s.mix_global(&[0.5, 0.5]);
        let w = "convs.0.lin.weight";
        let want = (s.ingredient(0)[w].shallow_clone() + s.ingredient(1)[w].shallow_clone()) * 0.5;
        assert!(half[w].allclose(&want, 1e-6, 1e-6, false));
    }

    /// Property, over 200 random points of the simplex per mixing granularity: every mixed
    /// tensor is the convex combination sum_i w_i x_i of the ingredients (to 1e-5) and so lies
    /// between their elementwise minimum and maximum.
    #[test]
    fn simplex_weights_give_the_convex_combination() {
        use rand::{Rng, SeedableRng};
        let (_dir, s) = stack();
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        for mix in [MixGranularity::Tensor, MixGranularity::Layer, MixGranularity::Ingredient] {
            let (names, of) = s.groups(mix);
            for _ in 0..200 {
                let raw: Vec<f32> =
                    (0..names.len() * 2).map(|_| rng.gen_range(-6.0..6.0)).collect();
                let alpha =
                    Tensor::from_slice(&raw).view([names.len() as i64, 2]).softmax(1, Kind::Float);
                let mixed = s.mix(&alpha, &of);
                for (k, name) in s.names.iter().enumerate() {
                    if s.roles[k] == ParamRole::BatchCount {
                        continue;
                    }
                    let (a, b) = (
                        s.ingredient(0)[name].shallow_clone(),
                        s.ingredient(1)[name].shallow_clone(),
                    );
                    let w = alpha.get(of[k] as i64);
                    let want = &a * w.get(0) + &b * w.get(1);
                    let got = &mixed[name];
                    assert!(
                        got.allclose(&want, 1e-5, 1e-5, false),
                        "{name}: not the convex combination"
                    );
                    let (lo, hi) = (a.minimum(&b) - 1e-5, a.maximum(&b) + 1e-5);
                    assert!(
                        bool::try_from(got.ge_tensor(&lo).all()).unwrap()
                            && bool::try_from(got.le_tensor(&hi).all()).unwrap(),
                        "{name}: outside its ingredients' range"
                    );
                }
            }
        }
    }
}
