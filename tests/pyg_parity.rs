//! Layer parity with PyTorch Geometric: PyG models with fixed random weights on a small directed
//! graph (tests/python/make_parity_fixtures.py) must give the same eval-mode logits here.

mod common;

use std::collections::BTreeMap;

use gnn_soup::model::graph_tensors::InAdjacency;
use gnn_soup::model::{self, ArchSpec, GraphTensors, ParamMap};
use tch::{Device, Kind, Tensor};

#[test]
fn logits_match_pyg_for_every_architecture() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("parity.safetensors");
    common::run_python("make_parity_fixtures.py", &[path.to_str().unwrap()]);

    let bytes = std::fs::read(&path).unwrap();
    let (_, md) = safetensors::SafeTensors::read_metadata(&bytes).unwrap();
    let cases: BTreeMap<String, ArchSpec> =
        serde_json::from_str(&md.metadata().as_ref().unwrap()["cases"]).unwrap();
    let tensors: BTreeMap<String, Tensor> =
        Tensor::read_safetensors(&path).unwrap().into_iter().collect();
    let x = tensors["x"].shallow_clone();
    let n = x.size()[0];
    let split = Tensor::arange(n, (Kind::Int64, Device::Cpu));
    let endpoints = |k: &str| Vec::<i64>::try_from(&tensors[k]).unwrap();
    let symmetric = gnn_soup::data::graph::edges_symmetric(&endpoints("src"), &endpoints("dst"));
    let g = GraphTensors::from_parts(
        x,
        Tensor::zeros([n], (Kind::Int64, Device::Cpu)),
        InAdjacency::from_edges(n as usize, &endpoints("src"), &endpoints("dst")),
        [split.shallow_clone(), split.shallow_clone(), split],
        symmetric,
    );
    assert_eq!(cases.len(), 6, "gcn, sage, gat, each with and without batch norm");
    for (case, spec) in &cases {
        let prefix = format!("{case}/");
        let params: ParamMap = tensors
            .iter()
            .filter_map(|(k, v)| {
                k.strip_prefix(&prefix)
                    .filter(|k| !k.starts_with("__"))
                    .map(|k| (k.to_string(), v.shallow_clone()))
            })
            .collect();
        let expected_names: Vec<String> = spec.params().into_iter().map(|p| p.name).collect();
        assert_eq!(
            params.keys().cloned().collect::<Vec<_>>(),
            {
                let mut e = expected_names.clone();
                e.sort();
                e
            },
            "{case}: PyG state-dict keys"
        );
        for p in spec.params() {
            assert_eq!(params[&p.name].size(), p.shape, "{case}: shape of {}", p.name);
        }
        let want = &tensors[&format!("{case}/__logits")];
        let got = tch::no_grad(|| model::forward(spec, &params, &g, model::Mode::EVAL));
        let diff = (&got - want).abs().max().double_value(&[]);
        assert!(diff <= 1e-4, "{case}: max |ours - PyG| = {diff}");
        // and the comparison is not vacuous
        assert!(want.abs().max().double_value(&[]) > 0.1, "{case}: reference logits are all ~0");
    }
}
