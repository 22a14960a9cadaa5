//! Export: a gnn-soup checkpoint (a soup, or any ingredient) as the state dict of the model it
//! came from, so that `model.load_state_dict(torch.load("soup.pt"))` works in PyG, or in the
//! reference's DGL code. Canonical names (`convs.<i>` for PyG, `layers.<i>` for DGL), or the names
//! of a template: one of the original checkpoints, whose every tensor name is filled (a model
//! with `conv1`/`conv2` under `model.`, an older GATConv's `lin_src`/`lin_dst`, ...).

use std::collections::BTreeSet;

use anyhow::{bail, Result};

use super::dgl;
use super::layout::{find_prefix, rename};
use super::torch_file::StateDict;
use super::Source;
use crate::model::{Arch, ArchSpec, ParamMap};
use tch::Tensor;

/// The names to export under.
pub enum Names<'a> {
    /// gnn-soup's own names in a layout (PyG's `convs.<i>...`, the reference's `layers.<i>...`).
    Canonical(Source),
    /// Those of this state dict (one of the checkpoints the soup was made from).
    Like(&'a StateDict),
}

/// `params` as a state dict named by `names`. Every tensor of the model must find a name and
/// every template name a tensor of the same shape, else the error lists what did not.
pub fn export(spec: &ArchSpec, params: &ParamMap, names: Names) -> Result<StateDict> {
    match names {
        Names::Canonical(Source::Pyg) => {
            Ok(params.iter().map(|(n, t)| (n.clone(), t.shallow_clone())).collect())
        }
        Names::Canonical(Source::Dgl) => {
            let mut out = Vec::new();
            let mut problems = Vec::new();
            if spec.arch == Arch::PaperGat {
                // The reference's GAT is named as gnn-soup names it.
                return Ok(params.iter().map(|(n, t)| (n.clone(), t.shallow_clone())).collect());
            }
            for (name, t) in params {
                match dgl::dgl_name(spec.arch, name) {
                    Some((dgl, transpose)) => out.push((
                        dgl,
                        if transpose { t.tr().contiguous() } else { per_head_bias(spec, name, t) },
                    )),
                    None => problems.push(name.clone()),
                }
            }
            if !problems.is_empty() {
                bail!("the reference's DGL {} has no place for {} (batch norm is not part of its models)", spec.arch, problems.join(", "));
            }
            Ok(out)
        }
        Names::Like(template) => like(spec, params, template),
    }
}

/// DGL's `GATConv` keeps a bias per head; gnn-soup's last GAT layer averages its heads and keeps
/// their mean bias, which, repeated for every head, computes the same.
fn per_head_bias(spec: &ArchSpec, name: &str, t: &Tensor) -> Tensor {
    let last_bias = format!("convs.{}.bias", spec.layers - 1);
    if spec.arch == Arch::Gat && spec.out_heads > 1 && name == last_bias {
        t.repeat([spec.out_heads])
    } else {
        t.shallow_clone()
    }
}

fn like(spec: &ArchSpec, params: &ParamMap, template: &StateDict) -> Result<StateDict> {
    // The reference's GAT is named as gnn-soup names it: only a prefix differs.
    let is_dgl = dgl::is_dgl(template) && spec.arch != Arch::PaperGat;
    let names: Vec<&str> = template.iter().map(|(n, _)| n.as_str()).collect();
    let prefix = find_prefix(&names);
    let mut out = Vec::with_capacity(template.len());
    let mut problems = Vec::new();
    let mut used = BTreeSet::new();
    for (name, t) in template {
        // (our name, transposed?, zero: a second SAGE bias in older DGL, whose sum is kept once)
        let mapped = if is_dgl {
            dgl::split(name).and_then(|(_, i, leaf)| dgl::pyg_name(spec.arch, i, leaf)).map(
                |(ours, tr)| {
                    let zero = leaf_of(name) == "fc_neigh.bias"
                        && template.iter().any(|(n, _)| {
                            n == &name.replace("fc_neigh.bias", "fc_self.bias")
                                || n == &name.replace("fc_neigh.bias", "bias")
                        });
                    (ours, tr, zero)
                },
            )
        } else {
            rename(name, &prefix).map(|n| {
                (n.replace(".lin_src.", ".lin.").replace(".lin_dst.", ".lin."), false, false)
            })
        };
        let Some((ours, transpose, zero)) = mapped else {
            problems.push(format!("{name} {:?} has no counterpart in the soup", t.size()));
            continue;
        };
        let Some(value) = params.get(&ours) else {
            problems.push(format!(
                "{name} {:?}: the soup has no {ours} ({})",
                t.size(),
                spec.describe()
            ));
            continue;
        };
        let value = if transpose {
            value.tr().contiguous()
        } else if is_dgl {
            per_head_bias(spec, &ours, value)
        } else {
            value.shallow_clone()
        };
        if value.size() != t.size() {
            problems.push(format!(
                "{name}: the template's is {:?}, the soup's {:?}",
                t.size(),
                value.size()
            ));
            continue;
        }
        used.insert(ours);
        out.push((name.clone(), if zero { value.zeros_like() } else { value.to_kind(t.kind()) }));
    }
    // A tensor the template has no place for (e.g. batch norm it does not have) would be lost.
    problems.extend(
        params
            .iter()
            .filter(|(n, _)| !used.contains(*n) && !n.ends_with("num_batches_tracked"))
            .map(|(n, t)| format!("the soup's {n} {:?} has no place in the template", t.size())),
    );
    if !problems.is_empty() {
        bail!("the template does not fit the soup:\n  {}", problems.join("\n  "));
    }
    Ok(out)
}

fn leaf_of(name: &str) -> &str {
    dgl::split(name).map_or("", |(_, _, leaf)| leaf)
}

/// The bytes of `sd` in the format `path`'s extension names: `.safetensors` (a plain state dict)
/// or `torch.save`'s zip (`.pt`, `.pth`, `.bin`).
pub fn file_bytes(sd: &StateDict, path: &std::path::Path) -> Result<Vec<u8>> {
    match path.extension().and_then(|e| e.to_str()) {
        Some("safetensors") => {
            crate::checkpoint::safetensors_bytes(sd.iter().map(|(n, t)| (n.as_str(), t)), None)
        }
        Some("pt" | "pth" | "bin") => super::torch_file::state_dict_bytes(sd),
        _ => bail!(
            "{}: name the format by the extension: .pt (torch.save) or .safetensors",
            path.display()
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Arch;
    use tch::{Device, Kind, Tensor};

    fn spec(arch: Arch) -> ArchSpec {
        ArchSpec { hidden: 4, ..ArchSpec::plain(arch, 5, 3) }
    }

    #[test]
    fn dgl_names_round_trip_through_the_importer() {
        for arch in [Arch::Gcn, Arch::Sage, Arch::Gat] {
            let s = spec(arch);
            let params = s.init(3, Device::Cpu);
            let dgl_sd = export(&s, &params, Names::Canonical(Source::Dgl)).unwrap();
            assert!(dgl_sd.iter().all(|(n, _)| n.starts_with("layers.")), "{arch}");
            let (back, a) = dgl::to_pyg(&dgl_sd).unwrap();
            assert_eq!(a, arch);
            for (n, t) in back {
                assert!(t.equal(&params[&n]), "{arch} {n}");
            }
            // And with the DGL export as the template, the same names come back.
            let again = export(&s, &params, Names::Like(&dgl_sd)).unwrap();
            assert_eq!(
                again.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>(),
                dgl_sd.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>()
            );
        }
    }

    #[test]
    fn a_template_with_other_names_is_filled_and_a_misfit_refused() {
        let s = spec(Arch::Gcn);
        let params = s.init(1, Device::Cpu);
        let z = |shape: &[i64]| Tensor::zeros(shape, (Kind::Float, Device::Cpu));
        let template: StateDict = vec![
            ("model.conv1.lin.weight".into(), z(&[4, 5])),
            ("model.conv1.bias".into(), z(&[4])),
            ("model.conv2.lin.weight".into(), z(&[3, 4])),
            ("model.conv2.bias".into(), z(&[3])),
        ];
        let out = export(&s, &params, Names::Like(&template)).unwrap();
        assert!(out[2].1.equal(&params["convs.1.lin.weight"]));
        let short: StateDict =
            template[..2].iter().map(|(n, t)| (n.clone(), t.shallow_clone())).collect();
        let e = export(&s, &params, Names::Like(&short)).unwrap_err().to_string();
        assert!(e.contains("convs.1.lin.weight") && e.contains("no place in the template"), "{e}");
    }
}
