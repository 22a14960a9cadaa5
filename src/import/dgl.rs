//! DGL model layouts, as the paper's reference code saves them (`ingredient_<i>.pt`,
//! `initial_model.pt`: a `ModuleList` named `layers` of `GraphConv` or `SAGEConv`), and stacks of
//! DGL's stock `GATConv`. They are renamed to gnn-soup's (PyG's) names, with the one layout change
//! DGL makes: `GraphConv.weight` is `[in, out]`, PyG's `lin.weight` `[out, in]`.
//!
//! What a DGL model computes differs from PyG's in two ways that are part of the architecture
//! ([`defaults`]): DGL's `GraphConv`/`GATConv` add no self-loops (they aggregate over the graph as
//! it is), and the reference models place dropout differently from PyG's examples.

use std::collections::BTreeMap;

use anyhow::{bail, Result};
use tch::{Kind, Tensor};

use super::torch_file::StateDict;
use crate::model::{Activation, Arch, Dropouts};

/// A name split at its layer index: `model.layers.2.fc_self.weight` -> (`model.layers.`, 2,
/// `fc_self.weight`).
pub fn split(name: &str) -> Option<(&str, usize, &str)> {
    let mut start = 0;
    for part in name.split('.') {
        let end = start + part.len();
        if let Ok(i) = part.parse::<usize>() {
            let leaf = name.get(end + 1..)?;
            return Some((&name[..start], i, leaf));
        }
        start = end + 1;
    }
    None
}

/// The layer names that only DGL's layers have.
const DGL_LEAVES: &[&str] = &["fc_self.weight", "fc_neigh.weight", "attn_l", "attn_r", "fc.weight"];

/// The paper's own GAT (`models.GAT` in the reference code, from DGL's ogbn-products example).
const REFERENCE_GAT_LEAVES: &[&str] = &["src_fc.weight", "attn_src_fc.weight", "dst_fc.weight"];

/// Whether the state dict is the paper's own GAT (named as gnn-soup names [`Arch::PaperGat`]).
pub fn is_reference_gat(sd: &StateDict) -> bool {
    sd.iter()
        .any(|(n, _)| split(n).is_some_and(|(_, _, leaf)| REFERENCE_GAT_LEAVES.contains(&leaf)))
}

/// Whether the state dict is a DGL model: no PyG layer names, and a layer-indexed name ends as only
/// DGL's layers' names do, or `GraphConv`'s 2-D `weight` sits directly under the layer index.
pub fn is_dgl(sd: &StateDict) -> bool {
    let pyg = sd.iter().any(|(n, _)| {
        [".lin.weight", ".lin_l.weight", ".att_src", ".lin_src.weight"]
            .iter()
            .any(|m| n.ends_with(m))
    });
    !pyg && sd.iter().any(|(n, t)| match split(n) {
        Some((_, _, leaf)) => {
            DGL_LEAVES.contains(&leaf)
                || REFERENCE_GAT_LEAVES.contains(&leaf)
                || (leaf == "weight" && t.dim() == 2)
        }
        None => false,
    })
}

/// How a DGL model places dropout and self-loops, and its activation, given its architecture
/// and depth: what its state dict cannot say.
pub struct DglDefaults {
    pub input_dropout_off: Vec<usize>,
    pub add_self_loops: bool,
    pub activation: Activation,
    /// The paper's GAT: input and attention dropout as gnn-soup trains it (DGL's ogbn-arxiv
    /// example's input 0.1, no attention dropout), where the import does not say.
    pub dropouts: Dropouts,
}

/// The reference code's placement: its GCN drops every layer's input but the features; its
/// GraphSAGE (`feat_drop`) every layer's input but the last's with 3 or more layers, and nothing
/// with 2 or fewer; its GAT drops its features and every layer's output. A stack of DGL's
/// `GATConv` is taken as DGL's GAT examples build it: every layer's input dropped (`feat_drop`),
/// ELU inside every hidden layer (say otherwise with `--input-dropout-off`, `--activation`).
pub fn defaults(arch: Arch, layers: usize) -> DglDefaults {
    let input_dropout_off = match arch {
        Arch::Gcn => vec![0],
        Arch::Sage if layers <= 2 => (0..layers).collect(),
        Arch::Sage => vec![layers - 1],
        Arch::Gat | Arch::PaperGat => Vec::new(),
    };
    let activation = if arch == Arch::Gat { Activation::Elu } else { Activation::Relu };
    let dropouts = if arch == Arch::PaperGat {
        crate::train::TrainConfig::defaults(arch).dropouts
    } else {
        Dropouts::default()
    };
    DglDefaults { input_dropout_off, add_self_loops: false, activation, dropouts }
}

/// gnn-soup's (PyG's) name for DGL layer `i`'s tensor `leaf`, and whether it is the transpose
/// (`GraphConv.weight` is `[in, out]`). Every SAGE bias maps to `lin_l.bias` (older DGL versions
/// keep one on `fc_self` and on `fc_neigh`; they add up).
pub fn pyg_name(arch: Arch, i: usize, leaf: &str) -> Option<(String, bool)> {
    let (pyg, transpose) = match (arch, leaf) {
        (Arch::Gcn, "weight") => ("lin.weight", true),
        (Arch::Gcn | Arch::Gat, "bias") => ("bias", false),
        (Arch::Sage, "fc_neigh.weight") => ("lin_l.weight", false),
        (Arch::Sage, "fc_self.weight") => ("lin_r.weight", false),
        (Arch::Sage, "bias" | "fc_self.bias" | "fc_neigh.bias") => ("lin_l.bias", false),
        (Arch::Gat, "fc.weight") => ("lin.weight", false),
        (Arch::Gat, "attn_l") => ("att_src", false),
        (Arch::Gat, "attn_r") => ("att_dst", false),
        _ => return None,
    };
    Some((format!("convs.{i}.{pyg}"), transpose))
}

/// The canonical DGL names of one of gnn-soup's tensors (the inverse of [`pyg_name`]), as the
/// reference code's models name them (`layers.<i>.`).
pub fn dgl_name(arch: Arch, name: &str) -> Option<(String, bool)> {
    let rest = name.strip_prefix("convs.")?;
    let (i, leaf) = rest.split_once('.')?;
    let (dgl, transpose) = match (arch, leaf) {
        (Arch::Gcn, "lin.weight") => ("weight", true),
        (Arch::Gcn | Arch::Gat, "bias") => ("bias", false),
        (Arch::Sage, "lin_l.weight") => ("fc_neigh.weight", false),
        (Arch::Sage, "lin_r.weight") => ("fc_self.weight", false),
        // DGL 2.x's SAGEConv keeps its bias on fc_self (a separate `bias` is the "gcn"
        // aggregator's), which is what the reference's MinibatchGraphSAGE loads.
        (Arch::Sage, "lin_l.bias") => ("fc_self.bias", false),
        (Arch::Gat, "lin.weight") => ("fc.weight", false),
        (Arch::Gat, "att_src") => ("attn_l", false),
        (Arch::Gat, "att_dst") => ("attn_r", false),
        _ => return None,
    };
    Some((format!("layers.{i}.{dgl}"), transpose))
}

/// The state dict under PyG's names (`convs.<i>.lin.weight`, ...) and the architecture its
/// layers are. Names before the layer index (`layers.`, `model.layers.`) are dropped; every name
/// must share them.
pub fn to_pyg(sd: &StateDict) -> Result<(StateDict, Arch)> {
    let leaves_of_first: Vec<&str> = sd
        .iter()
        .filter_map(|(n, _)| split(n))
        .filter(|(_, i, _)| *i == 0)
        .map(|(_, _, leaf)| leaf)
        .collect();
    let arch = if leaves_of_first.contains(&"fc_neigh.weight") {
        Arch::Sage
    } else if leaves_of_first.contains(&"attn_l") {
        Arch::Gat
    } else if leaves_of_first.contains(&"weight") {
        Arch::Gcn
    } else {
        bail!("cannot tell the DGL layer from the first layer's names ({}): expected GraphConv weight, SAGEConv fc_neigh.weight or GATConv attn_l", leaves_of_first.join(", "));
    };
    let container =
        sd.iter().find_map(|(n, _)| split(n).map(|(c, _, _)| c.to_string())).unwrap_or_default();
    let mut out: BTreeMap<String, Tensor> = BTreeMap::new();
    let mut problems = Vec::new();
    // SAGE's bias: on fc_self (DGL 2.x, mean aggregator), a separate `bias` (the "gcn"
    // aggregator), or on fc_self and fc_neigh both (older DGL): they add up.
    let mut sage_bias: BTreeMap<usize, Tensor> = BTreeMap::new();
    for (name, t) in sd {
        let Some((_, i, leaf)) = split(name).filter(|(c, _, _)| *c == container) else {
            problems.push(format!("{name} {:?} (not under {container:?}<layer>.)", t.size()));
            continue;
        };
        match (arch, leaf, pyg_name(arch, i, leaf)) {
            (Arch::Sage, _, Some((name_l, _))) if name_l.ends_with(".lin_l.bias") => {
                let sum = match sage_bias.remove(&i) {
                    Some(b) if b.size() == t.size() => b + t,
                    Some(b) => {
                        problems.push(format!(
                            "{name} {:?} does not match the layer's other bias {:?}",
                            t.size(),
                            b.size()
                        ));
                        b
                    }
                    None => t.shallow_clone(),
                };
                sage_bias.insert(i, sum);
            }
            (Arch::Gcn, "weight", _) if t.dim() != 2 => {
                problems.push(format!("{name} {:?}: a GraphConv weight is [in, out]", t.size()))
            }
            (_, _, Some((pyg, transpose))) => {
                out.insert(pyg, if transpose { t.tr().contiguous() } else { t.shallow_clone() });
            }
            (Arch::Gat, "res_fc.weight" | "res_fc.bias", None) => problems.push(format!(
                "{name} {:?}: a residual connection, which gnn-soup's GAT does not have",
                t.size()
            )),
            (Arch::Sage, l, None) if l.starts_with("fc_pool") || l.starts_with("lstm") => problems
                .push(format!(
                    "{name} {:?}: a pool/LSTM aggregator; gnn-soup's GraphSAGE aggregates by mean",
                    t.size()
                )),
            _ => problems.push(format!("{name} {:?} is not part of a DGL {arch} layer", t.size())),
        }
    }
    for (i, b) in sage_bias {
        out.insert(format!("convs.{i}.lin_l.bias"), b);
    }
    // A SAGEConv or GATConv built with bias=False: a zero bias computes the same.
    let layers =
        (0..).take_while(|i| out.keys().any(|k| k.starts_with(&format!("convs.{i}.")))).count();
    for i in 0..layers {
        let (bias, width_of) = match arch {
            Arch::Sage => (format!("convs.{i}.lin_l.bias"), format!("convs.{i}.lin_l.weight")),
            _ => (format!("convs.{i}.bias"), format!("convs.{i}.lin.weight")),
        };
        if !out.contains_key(&bias) {
            if let Some(w) = out.get(&width_of) {
                // A weight of no dimension is refused by the layout check that follows.
                if let Some(&width) = w.size().first() {
                    out.insert(bias, Tensor::zeros([width], (Kind::Float, tch::Device::Cpu)));
                }
            }
        }
    }
    // DGL's GATConv keeps a bias per head; the last layer's heads are averaged (DGL's GAT
    // examples take `.mean(1)`), so its bias counts by its mean over the heads.
    if arch == Arch::Gat && layers > 0 {
        let last = layers - 1;
        let heads = out
            .get(&format!("convs.{last}.att_src"))
            .and_then(|a| a.size().get(1).copied())
            .unwrap_or(1);
        if let Some(b) = out.get(&format!("convs.{last}.bias")) {
            if heads > 1 && b.dim() == 1 && b.size()[0] % heads == 0 {
                let mean = b.view([heads, -1]).mean_dim(0, false, Kind::Float);
                out.insert(format!("convs.{last}.bias"), mean);
            }
        }
    }
    if !problems.is_empty() {
        bail!("not a DGL {arch} layout gnn-soup can read:\n  {}", problems.join("\n  "));
    }
    Ok((out.into_iter().collect(), arch))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sd(names: &[(&str, &[i64])]) -> StateDict {
        names
            .iter()
            .map(|(n, s)| (n.to_string(), Tensor::zeros(*s, (Kind::Float, tch::Device::Cpu))))
            .collect()
    }

    #[test]
    fn graphconv_weights_are_transposed_and_sage_biases_merged() {
        let gcn = sd(&[
            ("layers.0.weight", &[8, 16]),
            ("layers.0.bias", &[16]),
            ("layers.1.weight", &[16, 3]),
            ("layers.1.bias", &[3]),
        ]);
        assert!(is_dgl(&gcn));
        let (t, arch) = to_pyg(&gcn).unwrap();
        assert_eq!(arch, Arch::Gcn);
        let t: BTreeMap<_, _> = t.into_iter().collect();
        assert_eq!(t["convs.0.lin.weight"].size(), vec![16, 8]);
        // Older DGL: bias on fc_self and on fc_neigh; they add up.
        let mut old = sd(&[
            ("model.layers.0.fc_self.weight", &[4, 5]),
            ("model.layers.0.fc_neigh.weight", &[4, 5]),
        ]);
        old.push((
            "model.layers.0.fc_self.bias".into(),
            Tensor::ones([4], (Kind::Float, tch::Device::Cpu)),
        ));
        old.push((
            "model.layers.0.fc_neigh.bias".into(),
            Tensor::ones([4], (Kind::Float, tch::Device::Cpu)),
        ));
        let (t, arch) = to_pyg(&old).unwrap();
        let t: BTreeMap<_, _> = t.into_iter().collect();
        assert_eq!(arch, Arch::Sage);
        assert_eq!(t["convs.0.lin_l.bias"].sum(Kind::Float).double_value(&[]), 8.0);
    }

    #[test]
    fn pyg_models_are_not_taken_for_dgl_ones() {
        assert!(!is_dgl(&sd(&[
            ("convs.0.lin.weight", &[16, 8]),
            ("convs.0.bias", &[16]),
            ("bns.0.weight", &[16])
        ])));
        assert!(!is_dgl(&sd(&[("conv1.lin.weight", &[16, 8])])));
    }

    #[test]
    fn the_reference_gat_is_told_apart_and_a_residual_gatconv_is_refused_saying_why() {
        let gat = sd(&[
            ("convs.0.src_fc.weight", &[8, 4]),
            ("convs.0.dst_fc.weight", &[8, 4]),
            ("norms.0.weight", &[8]),
            ("pred_linear.weight", &[3, 8]),
        ]);
        assert!(is_dgl(&gat) && is_reference_gat(&gat));
        let multi = sd(&[
            ("gat_layers.0.fc.weight", &[6, 4]),
            ("gat_layers.0.attn_l", &[1, 2, 3]),
            ("gat_layers.0.attn_r", &[1, 2, 3]),
            ("gat_layers.0.res_fc.weight", &[6, 4]),
        ]);
        assert!(!is_reference_gat(&multi));
        let e = to_pyg(&multi).unwrap_err().to_string();
        assert!(e.contains("residual"), "{e}");
    }

    /// The last GATConv's heads are averaged, and so is its per-head bias.
    #[test]
    fn a_multi_head_last_layer_keeps_the_mean_of_its_bias() {
        let mut last = sd(&[
            ("layers.0.fc.weight", &[6, 4]),
            ("layers.0.attn_l", &[1, 2, 3]),
            ("layers.0.attn_r", &[1, 2, 3]),
        ]);
        last.push(("layers.0.bias".into(), Tensor::from_slice(&[1.0f32, 2.0, 3.0, 5.0, 6.0, 7.0])));
        let (t, arch) = to_pyg(&last).unwrap();
        assert_eq!(arch, Arch::Gat);
        let bias = &t.iter().find(|(n, _)| n == "convs.0.bias").unwrap().1;
        assert_eq!(Vec::<f32>::try_from(bias).unwrap(), vec![3.0, 4.0, 5.0]);
    }
}
