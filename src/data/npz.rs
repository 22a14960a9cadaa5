//! The gnn-benchmark `.npz` layout (PyG's CitationFull, Amazon, Coauthor): CSR adjacency, CSR or
//! dense attributes, labels; no split, so a seeded random 20/30 per-class train/val split is drawn.

use std::io::{Read, Write};
use std::path::Path;

use anyhow::{anyhow, bail, Context, Result};
use rand::seq::SliceRandom;
use rand::SeedableRng;

use super::graph::{check_labels, symmetrize, Graph, GraphParts};
use super::pickle::{decode_numeric, Csr};

/// A numeric array read from a `.npy` member.
pub struct Npy {
    pub shape: Vec<usize>,
    pub data: Vec<f64>,
}

/// Parses a `.npy` file (format versions 1-3, numeric dtypes, C order).
pub fn parse_npy(bytes: &[u8]) -> Result<Npy> {
    if bytes.len() < 10 || &bytes[..6] != b"\x93NUMPY" {
        bail!("not a .npy array (bad magic)");
    }
    let (header_len, start) = match bytes[6] {
        1 => (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10),
        2 | 3 => {
            if bytes.len() < 12 {
                bail!("truncated .npy header");
            }
            (u32::from_le_bytes(bytes[8..12].try_into()?) as usize, 12)
        }
        v => bail!("unsupported .npy version {v}"),
    };
    let header = std::str::from_utf8(
        bytes.get(start..start + header_len).ok_or_else(|| anyhow!("truncated .npy header"))?,
    )?;
    let field = |key: &str| -> Result<&str> {
        let at = header
            .find(&format!("'{key}'"))
            .ok_or_else(|| anyhow!(".npy header without '{key}'"))?;
        Ok(header[at + key.len() + 2..].trim_start_matches([':', ' ']))
    };
    let descr = field("descr")?;
    let descr = descr
        .strip_prefix('\'')
        .and_then(|d| d.split('\'').next())
        .ok_or_else(|| anyhow!("bad .npy descr"))?;
    if field("fortran_order")?.starts_with("True") {
        bail!("Fortran-ordered .npy arrays are not supported");
    }
    let shape_text = field("shape")?;
    let shape_text = shape_text
        .strip_prefix('(')
        .and_then(|s| s.split(')').next())
        .ok_or_else(|| anyhow!("bad .npy shape"))?;
    let shape: Vec<usize> = shape_text
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| s.parse::<usize>())
        .collect::<Result<_, _>>()?;
    if descr.contains('O') {
        bail!("array of Python objects (dtype {descr}) cannot be read");
    }
    let data = decode_numeric(descr, false, &bytes[start + header_len..])?;
    let expected = shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d));
    if expected != Some(data.len()) {
        bail!("{} values for shape {shape:?}", data.len());
    }
    Ok(Npy { shape, data })
}

/// The largest dimension a CSR shape may claim (nodes or feature columns).
const MAX_DIM: f64 = 1e9;

pub fn load(path: &Path, name: &str, split_seed: u64) -> Result<Graph> {
    let (file, _) = crate::fsio::open_regular(path, super::graph::MAX_DATA_FILE_BYTES)?;
    load_from(file, path, name, split_seed)
}

/// [`load`] from any seekable reader (`path` names it in messages; the fuzz target's entry).
pub fn load_from(
    file: impl Read + std::io::Seek,
    path: &Path,
    name: &str,
    split_seed: u64,
) -> Result<Graph> {
    let mut archive = zip::ZipArchive::new(file)
        .with_context(|| format!("{} is not an .npz (zip) archive", path.display()))?;
    let mut array = |key: &str| -> Result<Option<Npy>> {
        let member = format!("{key}.npy");
        let Ok(mut f) = archive.by_name(&member) else { return Ok(None) };
        // The declared size is checked before reading (a deflate bomb), and enforced while reading.
        let cap = super::graph::MAX_FEATURE_VALUES * 8;
        if f.size() > cap {
            bail!(
                "{}: {member} claims {} bytes, more than a dataset array can hold",
                path.display(),
                f.size()
            );
        }
        let mut bytes = Vec::with_capacity(f.size() as usize);
        (&mut f)
            .take(cap)
            .read_to_end(&mut bytes)
            .with_context(|| format!("{}: cannot read {member}", path.display()))?;
        parse_npy(&bytes).map(Some).with_context(|| format!("{}: {member}", path.display()))
    };
    if let Some(edge_index) = array("edge_index")? {
        return edge_index_layout(edge_index, &mut array, path, name, split_seed);
    }
    let required = |a: Option<Npy>, key: &str| {
        a.ok_or_else(|| anyhow!("{}: no '{key}' array (neither a gnn-benchmark npz, with adj_*, nor one with edge_index, x, y)", path.display()))
    };
    let csr = |prefix: &str, array: &mut dyn FnMut(&str) -> Result<Option<Npy>>| -> Result<Csr> {
        let get = |k: &str, a: &mut dyn FnMut(&str) -> Result<Option<Npy>>| -> Result<Npy> {
            a(&format!("{prefix}_{k}"))?
                .ok_or_else(|| anyhow!("{}: no '{prefix}_{k}' array", path.display()))
        };
        let shape = get("shape", array)?.data;
        let dim = |i: usize| -> Result<usize> {
            let d = *shape.get(i).ok_or_else(|| {
                anyhow!("{}: {prefix}_shape has {} dimensions", path.display(), shape.len())
            })?;
            if !(0.0..=MAX_DIM).contains(&d) || d.fract() != 0.0 {
                bail!("{}: {prefix}_shape claims a dimension of {d}", path.display());
            }
            Ok(d as usize)
        };
        let m = Csr {
            rows: dim(0)?,
            cols: dim(1)?,
            indptr: get("indptr", array)?.data.iter().map(|&v| v as usize).collect(),
            indices: get("indices", array)?.data.iter().map(|&v| v as usize).collect(),
            data: get("data", array)?.data,
        };
        m.validate().with_context(|| format!("{}: {prefix} matrix", path.display()))?;
        Ok(m)
    };

    let adj = csr("adj", &mut array)?;
    let n = adj.rows;
    if adj.cols != n {
        bail!("{}: adjacency is {}x{}, not square", path.display(), adj.rows, adj.cols);
    }
    let mut pairs = Vec::with_capacity(adj.indices.len());
    for r in 0..n {
        for k in adj.indptr[r]..adj.indptr[r + 1] {
            pairs.push((r as i64, adj.indices[k] as i64));
        }
    }
    let (src, dst) = symmetrize(pairs);

    let (features, num_features) = if let Some(dense) = array("attr_matrix")? {
        if dense.shape.len() != 2 || dense.shape[0] != n {
            bail!("{}: attr_matrix has shape {:?} for {n} nodes", path.display(), dense.shape);
        }
        (dense.data.iter().map(|&v| v as f32).collect(), dense.shape[1])
    } else {
        let attr = csr("attr", &mut array)?;
        if attr.rows != n {
            bail!("{}: {} attribute rows for {n} nodes", path.display(), attr.rows);
        }
        let values = n
            .checked_mul(attr.cols)
            .filter(|&v| v as u64 <= super::graph::MAX_FEATURE_VALUES)
            .with_context(|| {
                format!(
                    "{}: {n} nodes x {} attribute columns is more than {} feature values",
                    path.display(),
                    attr.cols,
                    super::graph::MAX_FEATURE_VALUES
                )
            })?;
        let mut f = vec![0f32; values];
        attr.scatter_into(&mut f, 0);
        (f, attr.cols)
    };
    let labels_arr = required(array("labels")?, "labels")?;
    if labels_arr.shape.len() != 1 || labels_arr.data.len() != n {
        bail!("{}: labels have shape {:?} for {n} nodes", path.display(), labels_arr.shape);
    }
    if let Some(bad) = labels_arr.data.iter().find(|v| !v.is_finite() || v.fract() != 0.0) {
        bail!("{}: label {bad} is not a class number", path.display());
    }
    let labels: Vec<i64> = labels_arr.data.iter().map(|&v| v as i64).collect();
    check_labels(&labels, n).with_context(|| format!("{}: labels", path.display()))?;
    let (train, val, test) = per_class_split(&labels, 20, 30, split_seed);
    Graph::new(GraphParts {
        name: name.to_string(),
        num_nodes: n,
        src,
        dst,
        features,
        num_features,
        labels,
        train,
        val,
        test,
    })
    .with_context(|| format!("invalid npz data in {}", path.display()))
}

/// The layout `gnn-soup data export` writes, and what `np.savez(path, edge_index=..., x=..., y=...)`
/// makes from a PyTorch Geometric `Data` (how Flickr or Reddit come in): `edge_index` `[2, E]`
/// (source, target; kept as given, so an undirected graph lists both directions, as PyG's do),
/// `x` `[N, F]`, `y` `[N]`, and the split as `train_idx`/`val_idx`/`test_idx`, or as boolean
/// `train_mask`/`val_mask`/`test_mask`, or else a seeded 20/30 per-class split.
fn edge_index_layout(
    ei: Npy,
    array: &mut dyn FnMut(&str) -> Result<Option<Npy>>,
    path: &Path,
    name: &str,
    split_seed: u64,
) -> Result<Graph> {
    let p = path.display();
    let mut get = |key: &str| -> Result<Npy> {
        array(key)?.ok_or_else(|| {
            anyhow!("{p}: has edge_index but no '{key}' array (expected edge_index, x, y)")
        })
    };
    let x = get("x")?;
    let y = get("y")?;
    if x.shape.len() != 2 {
        bail!("{p}: x has shape {:?}, expected [nodes, features]", x.shape);
    }
    let (n, num_features) = (x.shape[0], x.shape[1]);
    if ei.shape.len() != 2 || ei.shape[0] != 2 {
        bail!("{p}: edge_index has shape {:?}, expected [2, edges]", ei.shape);
    }
    let node = |v: f64| -> Result<i64> {
        if v.fract() != 0.0 || v < 0.0 || v >= n as f64 {
            bail!("{p}: edge_index holds {v}, not a node of 0..{n}");
        }
        Ok(v as i64)
    };
    let e = ei.shape[1];
    let src = ei.data[..e].iter().map(|&v| node(v)).collect::<Result<Vec<_>>>()?;
    let dst = ei.data[e..].iter().map(|&v| node(v)).collect::<Result<Vec<_>>>()?;
    // y may be [N] or PyG's [N, 1].
    if y.data.len() != n || y.shape.iter().product::<usize>() != n {
        bail!("{p}: y has shape {:?} for {n} nodes", y.shape);
    }
    if let Some(bad) = y.data.iter().find(|v| !v.is_finite() || v.fract() != 0.0) {
        bail!("{p}: label {bad} in y is not a class number");
    }
    let labels: Vec<i64> = y.data.iter().map(|&v| v as i64).collect();
    check_labels(&labels, n).with_context(|| format!("{p}: y"))?;
    let mut split = |kind: &str| -> Result<Option<Vec<i64>>> {
        if let Some(idx) = array(&format!("{kind}_idx"))? {
            return idx
                .data
                .iter()
                .map(|&v| node(v))
                .collect::<Result<Vec<_>>>()
                .map(Some)
                .with_context(|| format!("{p}: {kind}_idx"));
        }
        match array(&format!("{kind}_mask"))? {
            Some(mask) if mask.data.len() == n => {
                Ok(Some((0..n as i64).filter(|&i| mask.data[i as usize] != 0.0).collect()))
            }
            Some(mask) => bail!("{p}: {kind}_mask has {} entries for {n} nodes", mask.data.len()),
            None => Ok(None),
        }
    };
    let (train, val, test) = match (split("train")?, split("val")?, split("test")?) {
        (Some(train), Some(val), Some(test)) => (train, val, test),
        (None, None, None) => per_class_split(&labels, 20, 30, split_seed),
        _ => bail!("{p}: has some of train/val/test (as _idx or _mask) but not all three"),
    };
    let features = x.data.iter().map(|&v| v as f32).collect();
    Graph::new(GraphParts {
        name: name.to_string(),
        num_nodes: n,
        src,
        dst,
        features,
        num_features,
        labels,
        train,
        val,
        test,
    })
    .with_context(|| format!("invalid npz data in {p}"))
}

/// The usual protocol for splitless datasets: per class, `train_per_class` random training nodes,
/// `val_per_class` validation nodes, the rest test. Seeded, so the split is reproducible.
pub fn per_class_split(
    labels: &[i64],
    train_per_class: usize,
    val_per_class: usize,
    seed: u64,
) -> (Vec<i64>, Vec<i64>, Vec<i64>) {
    let classes = labels.iter().copied().max().map_or(0, |m| m as usize + 1);
    let mut by_class: Vec<Vec<i64>> = vec![Vec::new(); classes];
    for (i, &l) in labels.iter().enumerate() {
        by_class[l as usize].push(i as i64);
    }
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let (mut train, mut val, mut test) = (Vec::new(), Vec::new(), Vec::new());
    for nodes in &mut by_class {
        nodes.shuffle(&mut rng);
        let t = train_per_class.min(nodes.len());
        let v = val_per_class.min(nodes.len() - t);
        train.extend_from_slice(&nodes[..t]);
        val.extend_from_slice(&nodes[t..t + v]);
        test.extend_from_slice(&nodes[t + v..]);
    }
    for s in [&mut train, &mut val, &mut test] {
        s.sort_unstable();
    }
    (train, val, test)
}

/// Writes `g` as an `.npz` that NumPy and PyTorch Geometric read directly (`np.load`), for
/// taking a graph (a synthetic one especially) to other tools: `edge_index` `[2, E]` (source,
/// target; int64), `x` `[N, F]` (float32), `y`, `train_idx`, `val_idx`, `test_idx` (int64).
/// Uncompressed, written through a temporary file renamed into place.
pub fn write_graph(g: &Graph, path: &Path) -> Result<()> {
    let (n, f) = (g.num_nodes, g.num_features);
    crate::fsio::write_atomic_with(path, |file| {
        let mut zip = zip::ZipWriter::new(std::io::BufWriter::new(file));
        let opts = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Stored)
            .large_file(true);
        let mut member =
            |name: &str, descr: &str, shape: &[usize], chunks: &[&[u8]]| -> Result<()> {
                zip.start_file(format!("{name}.npy"), opts)?;
                zip.write_all(&npy_header(descr, shape))?;
                for c in chunks {
                    zip.write_all(c)?;
                }
                Ok(())
            };
        let e = g.src.len();
        member("edge_index", "<i8", &[2, e], &[as_bytes(&g.src), as_bytes(&g.dst)])?;
        member("x", "<f4", &[n, f], &[as_bytes(&g.features)])?;
        member("y", "<i8", &[n], &[as_bytes(&g.labels)])?;
        for (name, idx) in [("train_idx", &g.train), ("val_idx", &g.val), ("test_idx", &g.test)] {
            member(name, "<i8", &[idx.len()], &[as_bytes(idx)])?;
        }
        zip.finish()?.flush()?;
        Ok(())
    })
}

/// The header of a version-1 `.npy` array (padded so the data starts at a multiple of 64).
fn npy_header(descr: &str, shape: &[usize]) -> Vec<u8> {
    let dims: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
    let shape =
        if dims.len() == 1 { format!("({},)", dims[0]) } else { format!("({})", dims.join(", ")) };
    let mut dict = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}");
    while (10 + dict.len() + 1) % 64 != 0 {
        dict.push(' ');
    }
    dict.push('\n');
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    out.extend_from_slice(&(dict.len() as u16).to_le_bytes());
    out.extend_from_slice(dict.as_bytes());
    out
}

/// The little-endian bytes of plain numbers (this crate builds for little-endian targets only).
fn as_bytes<T: Copy>(v: &[T]) -> &[u8] {
    // SAFETY: i64/f32 have no padding and every byte pattern is a valid u8; the slice borrows `v`.
    unsafe { std::slice::from_raw_parts(v.as_ptr() as *const u8, std::mem::size_of_val(v)) }
}

#[cfg(test)]
mod write_tests {
    use super::*;

    #[test]
    fn a_written_graph_reads_back_array_by_array() {
        let g = super::super::load(
            "csbm:nodes=50,train=10,val=10,test=10",
            &super::super::DataOptions { data_dir: ".".into(), split_seed: 0, download: false },
        )
        .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("g.npz");
        write_graph(&g, &path).unwrap();
        let mut zip = zip::ZipArchive::new(std::fs::File::open(&path).unwrap()).unwrap();
        let mut read = |name: &str| {
            let mut bytes = Vec::new();
            zip.by_name(&format!("{name}.npy")).unwrap().read_to_end(&mut bytes).unwrap();
            parse_npy(&bytes).unwrap()
        };
        let ei = read("edge_index");
        assert_eq!(ei.shape, vec![2, g.src.len()]);
        assert_eq!(ei.data[..g.src.len()].iter().map(|&v| v as i64).collect::<Vec<_>>(), g.src);
        assert_eq!(ei.data[g.src.len()..].iter().map(|&v| v as i64).collect::<Vec<_>>(), g.dst);
        let x = read("x");
        assert_eq!(x.shape, vec![g.num_nodes, g.num_features]);
        assert_eq!(x.data.iter().map(|&v| v as f32).collect::<Vec<_>>(), g.features);
        assert_eq!(read("y").data.iter().map(|&v| v as i64).collect::<Vec<_>>(), g.labels);
        assert_eq!(read("val_idx").data.iter().map(|&v| v as i64).collect::<Vec<_>>(), g.val);
        assert!(dir.path().read_dir().unwrap().count() == 1, "no temporary file left");
        // And `--dataset npz:FILE` reads it back as the same graph.
        let back = load(&path, &g.name, 0).unwrap();
        assert_eq!(back.fingerprint(), g.fingerprint());
    }

    /// An npz as `np.savez` makes it from a PyG `Data`: masks for the split, y as [N, 1].
    fn savez(path: &Path, arrays: &[(&str, &str, Vec<usize>, Vec<u8>)]) {
        let mut zip = zip::ZipWriter::new(std::fs::File::create(path).unwrap());
        for (name, descr, shape, bytes) in arrays {
            zip.start_file(format!("{name}.npy"), zip::write::SimpleFileOptions::default())
                .unwrap();
            zip.write_all(&npy_header(descr, shape)).unwrap();
            zip.write_all(bytes).unwrap();
        }
        zip.finish().unwrap();
    }

    #[test]
    fn a_pyg_style_npz_with_masks_loads_and_mistakes_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("flickr.npz");
        let i8s = |v: &[i64]| as_bytes(v).to_vec();
        let edges = i8s(&[0, 1, 1, 2, 1, 0, 2, 1]);
        let x = as_bytes(&[1f32, 0., 0., 1., 1., 1.]).to_vec();
        let mask = |m: [u8; 3]| ("", "|b1", vec![3], m.to_vec());
        let (train, val, test) = (mask([1, 0, 0]), mask([0, 1, 0]), mask([0, 0, 1]));
        savez(
            &path,
            &[
                ("edge_index", "<i8", vec![2, 4], edges.clone()),
                ("x", "<f4", vec![3, 2], x.clone()),
                ("y", "<i8", vec![3, 1], i8s(&[0, 1, 0])),
                ("train_mask", train.1, train.2, train.3),
                ("val_mask", val.1, val.2, val.3.clone()),
                ("test_mask", test.1, test.2, test.3),
            ],
        );
        let g = load(&path, "flickr", 0).unwrap();
        assert_eq!((g.num_nodes, g.num_features, g.src.len()), (3, 2, 4));
        assert_eq!(
            (g.train.clone(), g.val.clone(), g.test.clone(), g.labels.clone()),
            (vec![0], vec![1], vec![2], vec![0, 1, 0])
        );
        // Only part of the split: refused, not silently replaced.
        savez(
            &path,
            &[
                ("edge_index", "<i8", vec![2, 4], edges.clone()),
                ("x", "<f4", vec![3, 2], x.clone()),
                ("y", "<i8", vec![3], i8s(&[0, 1, 0])),
                ("val_mask", "|b1", vec![3], val.3),
            ],
        );
        assert!(format!("{:#}", load(&path, "f", 0).unwrap_err()).contains("not all three"));
        // An edge to a node that does not exist.
        savez(
            &path,
            &[
                ("edge_index", "<i8", vec![2, 4], i8s(&[0, 1, 1, 7, 1, 0, 2, 1])),
                ("x", "<f4", vec![3, 2], x),
                ("y", "<i8", vec![3], i8s(&[0, 1, 0])),
            ],
        );
        assert!(format!("{:#}", load(&path, "f", 0).unwrap_err())
            .contains("edge_index holds 7, not a node of 0..3"));
    }
}
