//! Dataset loaders: Planetoid against the known sizes, OGB and npz against fixtures written here,
//! the synthetic generator's determinism, and clear errors on bad input.

mod common;

use std::io::Write;
use std::path::Path;

use gnn_soup::data::{self, DatasetSpec, Graph};

#[test]
fn cora_matches_known_sizes() {
    let dir = common::planetoid_dir();
    let g = data::load("cora", &common::data_opts(&dir)).unwrap();
    assert_eq!(g.num_nodes, 2708);
    assert_eq!(g.num_edges(), 10_556);
    assert_eq!(g.num_features, 1433);
    assert_eq!(g.num_classes, 7);
    assert_eq!((g.train.len(), g.val.len(), g.test.len()), (140, 500, 1000));
    assert_eq!(g.train, (0..140).collect::<Vec<i64>>());
    assert_eq!(g.val, (140..640).collect::<Vec<i64>>());
    // PyG's Cora: the first training node has label 3, class counts are these.
    assert_eq!(g.labels[0], 3);
    assert_eq!(g.info().class_counts, vec![351, 217, 418, 818, 426, 298, 180]);
    // Cora features are binary word indicators.
    assert!(g.features.iter().all(|&v| v == 0.0 || v == 1.0));
    assert_eq!(g.features.iter().filter(|&&v| v == 1.0).count(), 49_216);
}

#[test]
fn citeseer_matches_known_sizes() {
    let dir = common::planetoid_dir();
    let g = data::load("citeseer", &common::data_opts(&dir)).unwrap();
    assert_eq!(g.num_nodes, 3327);
    assert_eq!(g.num_edges(), 9104);
    assert_eq!(g.num_features, 3703);
    assert_eq!(g.num_classes, 6);
    assert_eq!((g.train.len(), g.val.len(), g.test.len()), (120, 500, 1000));
    assert_eq!(g.info().isolated_nodes, 48);
}

#[test]
fn fingerprint_is_stable_and_content_based() {
    let dir = common::planetoid_dir();
    let a = data::load("cora", &common::data_opts(&dir)).unwrap();
    let b = data::load("cora", &common::data_opts(&dir)).unwrap();
    assert_eq!(a.fingerprint(), b.fingerprint());
    let c = data::load("citeseer", &common::data_opts(&dir)).unwrap();
    assert_ne!(a.fingerprint(), c.fingerprint());
}

#[test]
fn corrupt_planetoid_file_names_the_file() {
    let dir = common::planetoid_dir();
    let tmp = tempfile::tempdir().unwrap();
    for f in data::planetoid::file_names("cora") {
        std::fs::copy(dir.join(&f), tmp.path().join(&f)).unwrap();
    }
    let victim = tmp.path().join("ind.cora.allx");
    let bytes = std::fs::read(&victim).unwrap();
    std::fs::write(&victim, &bytes[..bytes.len() / 2]).unwrap();
    let err = format!("{:#}", data::load("cora", &common::data_opts(tmp.path())).unwrap_err());
    assert!(err.contains("ind.cora.allx"), "{err}");
}

#[test]
fn missing_planetoid_offline_says_what_to_put_where() {
    let tmp = tempfile::tempdir().unwrap();
    let err = format!("{:#}", data::load("pubmed", &common::data_opts(tmp.path())).unwrap_err());
    assert!(
        err.contains("ind.pubmed.graph") && err.contains(&tmp.path().display().to_string()),
        "{err}"
    );
}

/// A small graph with a directed edge list, to be written in other layouts.
fn fixture_graph() -> (Graph, Vec<(i64, i64)>) {
    let n = 30usize;
    let f = 4usize;
    let directed: Vec<(i64, i64)> = (0..n as i64)
        .flat_map(|i| [(i, (i + 1) % n as i64), (i, (i * 7 + 3) % n as i64)])
        .collect();
    let (src, dst) = data::graph::symmetrize(directed.iter().copied());
    let features: Vec<f32> = (0..n * f).map(|k| (k as f32 * 0.37).sin()).collect();
    let labels: Vec<i64> = (0..n as i64).map(|i| i % 3).collect();
    let g = Graph::new(data::GraphParts {
        name: "fixture".into(),
        num_nodes: n,
        src,
        dst,
        features,
        num_features: f,
        labels,
        train: (0..10).collect(),
        val: (10..20).collect(),
        test: (20..30).collect(),
    })
    .unwrap();
    (g, directed)
}

fn write_gz(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let mut enc = flate2::write::GzEncoder::new(
        std::fs::File::create(path).unwrap(),
        flate2::Compression::fast(),
    );
    enc.write_all(text.as_bytes()).unwrap();
    enc.finish().unwrap();
}

fn write_ogb(dir: &Path, g: &Graph, directed: &[(i64, i64)]) {
    let lines = |v: &[i64]| v.iter().map(|x| format!("{x}\n")).collect::<String>();
    write_gz(&dir.join("raw/num-node-list.csv.gz"), &format!("{}\n", g.num_nodes));
    write_gz(&dir.join("raw/num-edge-list.csv.gz"), &format!("{}\n", directed.len()));
    write_gz(
        &dir.join("raw/edge.csv.gz"),
        &directed.iter().map(|(a, b)| format!("{a},{b}\n")).collect::<String>(),
    );
    let feats: String = g
        .features
        .chunks(g.num_features)
        .map(|r| r.iter().map(|v| format!("{v:e}")).collect::<Vec<_>>().join(",") + "\n")
        .collect();
    write_gz(&dir.join("raw/node-feat.csv.gz"), &feats);
    write_gz(&dir.join("raw/node-label.csv.gz"), &lines(&g.labels));
    write_gz(&dir.join("split/time/train.csv.gz"), &lines(&g.train));
    write_gz(&dir.join("split/time/valid.csv.gz"), &lines(&g.val));
    write_gz(&dir.join("split/time/test.csv.gz"), &lines(&g.test));
}

fn assert_same_graph(a: &Graph, b: &Graph) {
    assert_eq!(a.num_nodes, b.num_nodes);
    assert_eq!((&a.src, &a.dst), (&b.src, &b.dst));
    assert_eq!(a.features, b.features);
    assert_eq!(a.labels, b.labels);
    assert_eq!((&a.train, &a.val, &a.test), (&b.train, &b.val, &b.test));
}

#[test]
fn ogb_directory_and_zip_read_the_same_graph() {
    let (g, directed) = fixture_graph();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("arxiv");
    write_ogb(&dir, &g, &directed);
    let from_dir = data::load("ogbn-arxiv", &common::data_opts(tmp.path())).unwrap();
    assert_same_graph(&g, &from_dir);

    // The official archive layout: arxiv/raw/... inside arxiv.zip.
    let zip_dir = tempfile::tempdir().unwrap();
    let zip_path = zip_dir.path().join("arxiv.zip");
    let mut zw = zip::ZipWriter::new(std::fs::File::create(&zip_path).unwrap());
    for rel in [
        "raw/num-node-list.csv.gz",
        "raw/num-edge-list.csv.gz",
        "raw/edge.csv.gz",
        "raw/node-feat.csv.gz",
        "raw/node-label.csv.gz",
        "split/time/train.csv.gz",
        "split/time/valid.csv.gz",
        "split/time/test.csv.gz",
    ] {
        zw.start_file(format!("arxiv/{rel}"), zip::write::SimpleFileOptions::default()).unwrap();
        zw.write_all(&std::fs::read(dir.join(rel)).unwrap()).unwrap();
    }
    zw.finish().unwrap();
    let from_zip = data::load("ogbn-arxiv", &common::data_opts(zip_dir.path())).unwrap();
    assert_same_graph(&g, &from_zip);
    assert_eq!(from_zip.fingerprint(), from_dir.fingerprint());
    // A path works as a dataset name too.
    let by_path = data::load(zip_path.to_str().unwrap(), &common::data_opts(tmp.path())).unwrap();
    assert_same_graph(&g, &by_path);
}

#[test]
fn ogb_bad_row_names_file_and_line() {
    let (g, directed) = fixture_graph();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("arxiv");
    write_ogb(&dir, &g, &directed);
    write_gz(&dir.join("raw/edge.csv.gz"), "0,1\n1,2\n2,x\n");
    let err =
        format!("{:#}", data::load("ogbn-arxiv", &common::data_opts(tmp.path())).unwrap_err());
    assert!(err.contains("edge.csv.gz") && err.contains("line 3"), "{err}");
}

fn npy(descr: &str, shape: &[usize], data: &[u8]) -> Vec<u8> {
    let shape_s = match shape {
        [n] => format!("({n},)"),
        s => format!("({})", s.iter().map(|d| d.to_string()).collect::<Vec<_>>().join(", ")),
    };
    let mut header =
        format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape_s}, }}");
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(' ');
    }
    header.push('\n');
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    out.extend_from_slice(&(header.len() as u16).to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    out.extend_from_slice(data);
    out
}

fn le<T: Copy, const N: usize>(v: &[T], f: impl Fn(T) -> [u8; N]) -> Vec<u8> {
    v.iter().flat_map(|&x| f(x)).collect()
}

#[test]
fn npz_reads_csr_and_draws_a_seeded_per_class_split() {
    // 400 nodes in 4 classes, a ring adjacency, CSR attributes.
    let n = 400usize;
    let mut indptr = vec![0i32];
    let mut indices = Vec::new();
    for i in 0..n {
        indices.push(((i + 1) % n) as i32);
        indptr.push(indices.len() as i32);
    }
    let adj_data = vec![1f32; n];
    let attr_indptr: Vec<i64> = (0..=n as i64).collect();
    let attr_indices: Vec<i64> = (0..n as i64).map(|i| i % 5).collect();
    let attr_data: Vec<f32> = (0..n).map(|i| i as f32).collect();
    let labels: Vec<i64> = (0..n as i64).map(|i| i % 4).collect();
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("toy.npz");
    let mut zw = zip::ZipWriter::new(std::fs::File::create(&path).unwrap());
    let mut put = |name: &str, bytes: Vec<u8>| {
        zw.start_file(format!("{name}.npy"), zip::write::SimpleFileOptions::default()).unwrap();
        zw.write_all(&bytes).unwrap();
    };
    put("adj_data", npy("<f4", &[n], &le(&adj_data, f32::to_le_bytes)));
    put("adj_indices", npy("<i4", &[n], &le(&indices, i32::to_le_bytes)));
    put("adj_indptr", npy("<i4", &[n + 1], &le(&indptr, i32::to_le_bytes)));
    put("adj_shape", npy("<i8", &[2], &le(&[n as i64, n as i64], i64::to_le_bytes)));
    put("attr_data", npy("<f4", &[n], &le(&attr_data, f32::to_le_bytes)));
    put("attr_indices", npy("<i8", &[n], &le(&attr_indices, i64::to_le_bytes)));
    put("attr_indptr", npy("<i8", &[n + 1], &le(&attr_indptr, i64::to_le_bytes)));
    put("attr_shape", npy("<i8", &[2], &le(&[n as i64, 5], i64::to_le_bytes)));
    put("labels", npy("<i8", &[n], &le(&labels, i64::to_le_bytes)));
    zw.finish().unwrap();

    let spec = format!("npz:{}", path.display());
    let g = data::load(&spec, &common::data_opts(tmp.path())).unwrap();
    assert_eq!(g.num_nodes, n);
    assert_eq!(g.num_edges(), 2 * n); // ring, symmetrised
    assert_eq!(g.num_features, 5);
    assert_eq!(g.features[7 * 5 + 2], 7.0);
    assert_eq!((g.train.len(), g.val.len(), g.test.len()), (80, 120, 200));
    for c in 0..4 {
        assert_eq!(g.train.iter().filter(|&&i| g.labels[i as usize] == c).count(), 20);
        assert_eq!(g.val.iter().filter(|&&i| g.labels[i as usize] == c).count(), 30);
    }
    let again = data::load(&spec, &common::data_opts(tmp.path())).unwrap();
    assert_eq!(g.train, again.train);
    let other =
        data::load(&spec, &data::DataOptions { split_seed: 1, ..common::data_opts(tmp.path()) })
            .unwrap();
    assert_ne!(g.train, other.train);
}

#[test]
fn npz_without_required_arrays_is_a_clear_error() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("empty.npz");
    let mut zw = zip::ZipWriter::new(std::fs::File::create(&path).unwrap());
    zw.start_file("labels.npy", zip::write::SimpleFileOptions::default()).unwrap();
    zw.write_all(&npy("<i8", &[1], &0i64.to_le_bytes())).unwrap();
    zw.finish().unwrap();
    let err = format!(
        "{:#}",
        data::load(&format!("npz:{}", path.display()), &common::data_opts(tmp.path())).unwrap_err()
    );
    assert!(err.contains("empty.npz") && err.contains("adj_shape"), "{err}");
    let not_zip = tmp.path().join("bad.npz");
    std::fs::write(&not_zip, b"hello").unwrap();
    let err = format!(
        "{:#}",
        data::load(&format!("npz:{}", not_zip.display()), &common::data_opts(tmp.path()))
            .unwrap_err()
    );
    assert!(err.contains("bad.npz"), "{err}");
}

#[test]
fn csbm_is_seeded_and_configurable() {
    let opts = common::data_opts(Path::new("."));
    let a = data::load("csbm", &opts).unwrap();
    let b = data::load("csbm", &opts).unwrap();
    assert_eq!(a.fingerprint(), b.fingerprint());
    assert_eq!((a.num_nodes, a.num_classes, a.num_features), (2000, 5, 32));
    let c = data::load("csbm:seed=1", &opts).unwrap();
    assert_ne!(a.fingerprint(), c.fingerprint());
    let d = data::load(
        "csbm:nodes=500,classes=3,features=8,degree=10,homophily=0.9,train=30,val=50,test=100",
        &opts,
    )
    .unwrap();
    assert_eq!((d.num_nodes, d.num_classes, d.num_features), (500, 3, 8));
    assert_eq!((d.train.len(), d.val.len(), d.test.len()), (30, 50, 100));
    let avg = d.num_edges() as f64 / 500.0;
    assert!((avg - 10.0).abs() < 1.0, "average degree {avg}");
    // homophily 0.9 (plus chance hits): most edges stay inside a class
    let same = d
        .src
        .iter()
        .zip(&d.dst)
        .filter(|(s, t)| d.labels[**s as usize] == d.labels[**t as usize])
        .count();
    assert!(same as f64 / d.num_edges() as f64 > 0.88);
    for bad in ["csbm:nodes=x", "csbm:colour=3", "csbm:homophily=2", "csbm:train=5000"] {
        assert!(DatasetSpec::parse(bad).is_err(), "{bad} should be rejected");
    }
    assert!(DatasetSpec::parse("imagenet").is_err());
}
