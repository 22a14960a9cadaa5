//! Model layouts: which architecture a state dict is, from its names and shapes alone, and its
//! tensors under gnn-soup's names (which are PyG's: `convs.<i>.lin.weight`,
//! `bns.<i>.running_mean`, ...). PyG models whose layers are attributes `conv1`, `conv2` (PyG's
//! examples) or that live under a prefix (`model.`, `module.` from DataParallel) are read, and
//! DGL models ([`super::dgl`]). Anything that does not fit is refused with the names that did not.

use std::collections::BTreeMap;

use anyhow::{bail, Result};
use tch::{Kind, Tensor};

use super::dgl;
use super::torch_file::StateDict;
use crate::model::{Activation, Arch, ArchSpec, Dropouts, ParamMap, ParamRole};

/// What the names and shapes cannot tell.
#[derive(Debug, Clone)]
pub struct LayoutOptions {
    /// Strip this prefix from every name (default: found from where `convs.`/`conv1.` start).
    pub prefix: Option<String>,
    /// Force the architecture instead of inferring it.
    pub arch: Option<Arch>,
    pub dropout: f64,
    pub row_normalize: bool,
    /// Layers whose input the source model does not drop. Default: from the layout (PyG's
    /// examples drop every layer's input; the reference's DGL models: [`dgl::defaults`]).
    pub input_dropout_off: Option<Vec<usize>>,
    /// Whether GCN/GAT layers add self-loops. Default: from the layout (PyG's do, DGL's do not).
    pub add_self_loops: Option<bool>,
    /// Between layers. Default: from the layout (ReLU, but ELU for a stack of DGL `GATConv`s,
    /// as DGL's GAT examples build them).
    pub activation: Option<Activation>,
    /// Input, attention and edge dropout, where the source model's differ from `dropout`.
    pub dropouts: Dropouts,
}

/// Where a state dict's layout comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    Pyg,
    Dgl,
}

impl Source {
    pub fn name(self) -> &'static str {
        match self {
            Source::Pyg => "pyg",
            Source::Dgl => "dgl",
        }
    }

    pub fn from_name(name: &str) -> Option<Source> {
        [Source::Pyg, Source::Dgl].into_iter().find(|s| s.name() == name)
    }
}

/// `name` under gnn-soup's naming: the prefix removed, `conv<N>.` -> `convs.<N-1>.`,
/// `bn<N>.` -> `bns.<N-1>.`, and older PyG GATConv's `lin_src` -> `lin`.
pub(super) fn rename(name: &str, prefix: &str) -> Option<String> {
    let rest = name.strip_prefix(prefix)?;
    let mut parts: Vec<String> = rest.split('.').map(str::to_string).collect();
    if let Some(first) = parts.first().cloned() {
        for (short, long) in [("conv", "convs"), ("bn", "bns")] {
            if let Some(n) =
                first.strip_prefix(short).and_then(|n| n.parse::<usize>().ok()).filter(|&n| n >= 1)
            {
                parts.splice(0..1, [long.to_string(), (n - 1).to_string()]);
            }
        }
    }
    if parts.len() == 4 && parts[0] == "convs" && parts[2] == "lin_src" {
        parts[2] = "lin".into();
    }
    Some(parts.join("."))
}

/// The prefix before the first layer's name (`""` for a bare model).
pub(super) fn find_prefix(names: &[&str]) -> String {
    for n in names {
        for marker in ["convs.0.", "conv1."] {
            if let Some(i) = n.find(marker) {
                if i == 0 || n.as_bytes()[i - 1] == b'.' {
                    return n[..i].to_string();
                }
            }
        }
    }
    String::new()
}

/// The state dict under gnn-soup's names, and the names that could not be renamed (outside the
/// prefix). Older GATConv's duplicate `lin_dst` (the same weights as `lin_src`) is dropped.
fn normalise(sd: &StateDict, prefix: &str) -> (BTreeMap<String, Tensor>, Vec<String>) {
    let mut out = BTreeMap::new();
    let mut outside = Vec::new();
    for (name, t) in sd {
        match rename(name, prefix) {
            Some(n)
                if n.contains(".lin_dst.")
                    && out.contains_key(&n.replace(".lin_dst.", ".lin.")) => {}
            Some(n) => {
                out.insert(n, t.shallow_clone());
            }
            None => outside.push(name.clone()),
        }
    }
    (out, outside)
}

fn shape(t: &Tensor) -> Vec<i64> {
    t.size()
}

/// The architecture the tensors describe.
fn infer_spec(t: &BTreeMap<String, Tensor>, opts: &LayoutOptions) -> Result<ArchSpec> {
    let layers =
        (0..).take_while(|i| t.keys().any(|k| k.starts_with(&format!("convs.{i}.")))).count();
    if layers == 0 {
        bail!("no graph convolution found (expected convs.<i>.* or conv<N>.* names)");
    }
    let has = |name: &str| t.contains_key(name);
    let arch = match opts.arch {
        Some(a) => a,
        None if has("convs.0.src_fc.weight") => Arch::PaperGat,
        None if has("convs.0.att_src") => Arch::Gat,
        None if has("convs.0.lin_l.weight") => Arch::Sage,
        None if has("convs.0.lin.weight") => Arch::Gcn,
        None => bail!("cannot tell the architecture from the first layer's names (GCNConv lin.weight, SAGEConv lin_l.weight, GATConv att_src)"),
    };
    let last = layers - 1;
    let dims = |name: String| t.get(&name).map(shape);
    let (in_dim, hidden, out_dim, heads, out_heads) = match arch {
        Arch::Gcn | Arch::Sage => {
            let w = |i: usize| {
                dims(format!(
                    "convs.{i}.{}",
                    if arch == Arch::Gcn { "lin.weight" } else { "lin_l.weight" }
                ))
            };
            let (Some(first), Some(lastw)) = (w(0), w(last)) else {
                bail!("a layer's weight is missing")
            };
            if first.len() != 2 || lastw.len() != 2 {
                bail!("a layer's weight should be [out, in]; the first is {first:?}, the last {lastw:?}");
            }
            (first[1], first[0], lastw[0], 1, 1)
        }
        Arch::Gat => {
            let (Some(w0), Some(a0), Some(al)) = (
                dims("convs.0.lin.weight".into()),
                dims("convs.0.att_src".into()),
                dims(format!("convs.{last}.att_src")),
            ) else {
                bail!("a GAT layer's lin.weight or att_src is missing")
            };
            if a0.len() != 3 || al.len() != 3 || w0.len() != 2 {
                bail!("att_src should be [1, heads, channels] and lin.weight [heads * channels, in], are {a0:?} and {w0:?}");
            }
            (w0[1], a0[2], al[2], if layers > 1 { a0[1] } else { 1 }, al[1])
        }
        Arch::PaperGat => {
            let (Some(w0), Some(a0), Some(pred)) = (
                dims("convs.0.src_fc.weight".into()),
                dims("convs.0.attn_src_fc.weight".into()),
                dims("pred_linear.weight".into()),
            ) else {
                bail!("the paper's GAT needs convs.0.src_fc.weight, convs.0.attn_src_fc.weight and pred_linear.weight")
            };
            if w0.len() != 2 || a0.len() != 2 || pred.len() != 2 || a0[0] <= 0 || w0[0] % a0[0] != 0
            {
                bail!("src_fc.weight should be [heads * hidden, in] and attn_src_fc.weight [heads, in], are {w0:?} and {a0:?}");
            }
            (w0[1], w0[0] / a0[0], pred[0], a0[0], 1)
        }
    };
    let paper_gat = arch == Arch::PaperGat;
    let spec = ArchSpec {
        arch,
        in_dim,
        hidden: if layers == 1 && !paper_gat { out_dim } else { hidden },
        out_dim,
        layers,
        heads,
        dropout: opts.dropout,
        batch_norm: paper_gat || t.keys().any(|k| k.starts_with("bns.")),
        row_normalize: opts.row_normalize,
        // What the names cannot tell: set by `read`, from the layout and the options.
        input_dropout_off: Vec::new(),
        add_self_loops: true,
        activation: Activation::Relu,
        out_heads,
        dropouts: Dropouts::default(),
        attn_dst: paper_gat && has("convs.0.attn_dst_fc.weight"),
    };
    Ok(spec)
}

/// Why a tensor cannot be a model's weight, if it cannot: weights are floating point and finite
/// (a batch norm's batch count is an integer). Refused here, naming the tensor, rather than
/// written and refused by `soup` later.
fn unusable(t: &Tensor, count: bool) -> Option<String> {
    let floating = matches!(t.kind(), Kind::Float | Kind::Double | Kind::Half | Kind::BFloat16);
    let integer =
        matches!(t.kind(), Kind::Int64 | Kind::Int | Kind::Int16 | Kind::Int8 | Kind::Uint8);
    if count {
        return (!integer && !floating).then(|| format!("is {:?}, not a count", t.kind()));
    }
    if !floating {
        return Some(format!("is {:?}: weights are floating point", t.kind()));
    }
    let finite = t.isfinite().all().int64_value(&[]) == 1;
    (!finite).then(|| "holds NaN or infinite values".to_string())
}

/// The architecture and the weights of a PyG- or DGL-layout state dict, and which layout it was,
/// or why it does not fit (every name that did not, with its shape).
pub fn read(sd: &StateDict, opts: &LayoutOptions) -> Result<(ArchSpec, ParamMap, Source)> {
    // The reference's GAT is a DGL model named as gnn-soup names it (`convs.<i>.src_fc`,
    // `norms.<i>`, `pred_linear`): only a prefix to strip, as for PyG's names.
    let reference_gat = dgl::is_reference_gat(sd);
    let (source, mut tensors, prefix, outside) = if dgl::is_dgl(sd) && !reference_gat {
        let stripped: StateDict = match &opts.prefix {
            Some(p) => sd
                .iter()
                .filter_map(|(n, t)| {
                    n.strip_prefix(p.as_str()).map(|n| (n.to_string(), t.shallow_clone()))
                })
                .collect(),
            None => sd.iter().map(|(n, t)| (n.clone(), t.shallow_clone())).collect(),
        };
        let (renamed, _) = dgl::to_pyg(&stripped)?;
        (Source::Dgl, renamed.into_iter().collect(), String::new(), Vec::new())
    } else {
        let names: Vec<&str> = sd.iter().map(|(n, _)| n.as_str()).collect();
        let prefix = opts.prefix.clone().unwrap_or_else(|| find_prefix(&names));
        let (tensors, outside) = normalise(sd, &prefix);
        (if reference_gat { Source::Dgl } else { Source::Pyg }, tensors, prefix, outside)
    };
    let mut spec = infer_spec(&tensors, opts)?;
    let (dropout_off, loops, activation, rates) = match source {
        Source::Pyg => (Vec::new(), true, Activation::Relu, Dropouts::default()),
        Source::Dgl => {
            let d = dgl::defaults(spec.arch, spec.layers);
            (d.input_dropout_off, d.add_self_loops, d.activation, d.dropouts)
        }
    };
    spec.input_dropout_off = opts.input_dropout_off.clone().unwrap_or(dropout_off);
    spec.add_self_loops = opts.add_self_loops.unwrap_or(loops);
    spec.activation = opts.activation.unwrap_or(activation);
    let given = opts.dropouts;
    spec.dropouts = Dropouts {
        input: given.input.or(rates.input),
        attention: given.attention.or(rates.attention),
        edge: given.edge,
    };
    spec.validate()?;
    let mut params = ParamMap::new();
    let mut problems: Vec<String> =
        outside.iter().map(|n| format!("{n} (outside the prefix {prefix:?})")).collect();
    for p in spec.params() {
        match tensors.remove(&p.name) {
            Some(t) if t.size() == p.shape => match unusable(&t, p.role == ParamRole::BatchCount) {
                Some(why) => problems.push(format!("{} {why}", p.name)),
                None => {
                    let kind =
                        if p.role == ParamRole::BatchCount { Kind::Int64 } else { Kind::Float };
                    params.insert(p.name, t.to_kind(kind));
                }
            },
            Some(t) => problems.push(format!(
                "{} has shape {:?}, {} needs {:?}",
                p.name,
                t.size(),
                spec.describe(),
                p.shape
            )),
            // PyTorch omits the batch count with track_running_stats off, and it does not
            // change a forward pass.
            None if p.role == ParamRole::BatchCount => {
                params.insert(p.name, Tensor::zeros([], (Kind::Int64, tch::Device::Cpu)));
            }
            None => problems.push(format!("{} is missing for {}", p.name, spec.describe())),
        }
    }
    problems.extend(
        tensors
            .iter()
            .map(|(n, t)| format!("{n} {:?} is not part of {}", t.size(), spec.describe())),
    );
    if !problems.is_empty() {
        bail!(
            "not a {} {} layout gnn-soup can read:\n  {}",
            source.name(),
            spec.arch,
            problems.join("\n  ")
        );
    }
    Ok((spec, params, source))
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

    fn opts() -> LayoutOptions {
        LayoutOptions {
            prefix: None,
            arch: None,
            dropout: 0.5,
            row_normalize: true,
            input_dropout_off: None,
            add_self_loops: None,
            activation: None,
            dropouts: Default::default(),
        }
    }

    #[test]
    fn pyg_example_names_under_a_prefix_are_read() {
        // PyG's examples: self.conv1 / self.conv2, here inside a wrapper module.
        let s = sd(&[
            ("model.conv1.lin.weight", &[16, 8]),
            ("model.conv1.bias", &[16]),
            ("model.conv2.lin.weight", &[3, 16]),
            ("model.conv2.bias", &[3]),
        ]);
        let (spec, params, _) = read(&s, &opts()).unwrap();
        assert_eq!(
            (spec.arch, spec.layers, spec.in_dim, spec.hidden, spec.out_dim, spec.batch_norm),
            (Arch::Gcn, 2, 8, 16, 3, false)
        );
        assert_eq!(params["convs.1.lin.weight"].size(), vec![3, 16]);
    }

    #[test]
    fn sage_gat_and_batch_norm_are_inferred() {
        let sage = sd(&[
            ("convs.0.lin_l.weight", &[4, 5]),
            ("convs.0.lin_l.bias", &[4]),
            ("convs.0.lin_r.weight", &[4, 5]),
            ("bns.0.weight", &[4]),
            ("bns.0.bias", &[4]),
            ("bns.0.running_mean", &[4]),
            ("bns.0.running_var", &[4]),
            ("convs.1.lin_l.weight", &[2, 4]),
            ("convs.1.lin_l.bias", &[2]),
            ("convs.1.lin_r.weight", &[2, 4]),
        ]);
        let (spec, params, _) = read(&sage, &opts()).unwrap();
        assert_eq!((spec.arch, spec.batch_norm), (Arch::Sage, true));
        assert_eq!(
            params["bns.0.num_batches_tracked"].kind(),
            Kind::Int64,
            "a missing batch count is filled"
        );
        let gat = sd(&[
            ("convs.0.att_src", &[1, 4, 3]),
            ("convs.0.att_dst", &[1, 4, 3]),
            ("convs.0.bias", &[12]),
            ("convs.0.lin.weight", &[12, 6]),
            ("convs.1.att_src", &[1, 1, 2]),
            ("convs.1.att_dst", &[1, 1, 2]),
            ("convs.1.bias", &[2]),
            ("convs.1.lin.weight", &[2, 12]),
        ]);
        let (spec, _, _) = read(&gat, &opts()).unwrap();
        assert_eq!((spec.arch, spec.heads, spec.hidden, spec.out_dim), (Arch::Gat, 4, 3, 2));
    }

    #[test]
    fn what_does_not_fit_is_named() {
        let s = sd(&[
            ("convs.0.lin.weight", &[16, 8]),
            ("convs.0.bias", &[16]),
            ("convs.1.lin.weight", &[3, 16]),
            ("convs.1.bias", &[3]),
            ("convs.1.extra", &[2]),
            ("head.weight", &[3, 3]),
        ]);
        let e = format!(
            "{:#}",
            read(&s, &LayoutOptions { prefix: Some(String::new()), ..opts() }).unwrap_err()
        );
        assert!(
            e.contains("convs.1.extra [2] is not part of")
                && e.contains("head.weight [3, 3] is not part of"),
            "{e}"
        );
        let wrong = sd(&[("convs.0.lin.weight", &[16, 8]), ("convs.0.bias", &[15])]);
        let e = format!("{:#}", read(&wrong, &opts()).unwrap_err());
        assert!(e.contains("convs.0.bias has shape [15]"), "{e}");
        let e = format!("{:#}", read(&sd(&[("fc.weight", &[2, 2])]), &opts()).unwrap_err());
        assert!(e.contains("no graph convolution"), "{e}");
    }
}
