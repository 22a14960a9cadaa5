//! Reading PyTorch's `torch.save` files (the zip format, the default since PyTorch 1.6) in Rust,
//! without Python: the pickle (`data.pkl`) is parsed into a value tree and never executed; each
//! tensor's storage is read from its own zip entry (`data/<key>`) and viewed with the size,
//! stride and offset the pickle records.

use std::io::Read;
use std::path::Path;

use anyhow::{anyhow, bail, Context, Result};
use tch::{Kind, Tensor};

use crate::data::pickle::{self, Value};

/// A state dict: tensor names and tensors, in the file's order.
pub type StateDict = Vec<(String, Tensor)>;

/// The largest file read (a GNN's weights are megabytes; this keeps a wrong path from filling
/// memory).
const MAX_BYTES: u64 = 8 << 30;

/// The state dict in a `.pt` file: the file's top-level dict of tensors, or the dict of tensors
/// under `state_dict` / `model_state_dict` / `model` in a training checkpoint.
pub fn read_state_dict(path: &Path) -> Result<StateDict> {
    let (file, _) = crate::fsio::open_regular(path, MAX_BYTES)?;
    let mut head = [0u8; 4];
    let _ = (&file).read(&mut head);
    if head != *b"PK\x03\x04" {
        bail!(
            "{}: not a zip-format PyTorch file (the legacy format of PyTorch < 1.6 is not read); re-save it with a current PyTorch: torch.save(torch.load(OLD), NEW)",
            path.display()
        );
    }
    let mut zip = zip::ZipArchive::new(file)
        .map_err(|e| anyhow!("{}: not a readable zip ({e})", path.display()))?;
    let names: Vec<String> = zip.file_names().map(str::to_string).collect();
    let pkl = names
        .iter()
        .find(|n| n.ends_with("/data.pkl") || *n == "data.pkl")
        .ok_or_else(|| anyhow!("{}: no data.pkl inside: not a torch.save file", path.display()))?
        .clone();
    let root = pkl.strip_suffix("data.pkl").unwrap_or("").to_string();
    if let Some(order) = names.iter().find(|n| **n == format!("{root}byteorder")) {
        let mut s = String::new();
        zip.by_name(order)?.read_to_string(&mut s)?;
        if s.trim() != "little" {
            bail!(
                "{}: tensors stored {} endian; only little endian is read",
                path.display(),
                s.trim()
            );
        }
    }
    let mut bytes = Vec::new();
    zip.by_name(&pkl)?.read_to_end(&mut bytes)?;
    let value = pickle::parse(&bytes)
        .with_context(|| format!("{}: data.pkl is not a readable pickle", path.display()))?;
    let dict = state_dict_value(&value).ok_or_else(|| {
        anyhow!(
            "{}: holds no dict of tensors (a whole pickled model? save model.state_dict() instead)",
            path.display()
        )
    })?;
    let mut out = Vec::with_capacity(dict.len());
    for (k, v) in dict {
        let name = k
            .as_str()
            .ok_or_else(|| anyhow!("{}: a state-dict key is not a string", path.display()))?
            .to_string();
        let t = rebuild_tensor(v, &mut |key| {
            let mut data = Vec::new();
            zip.by_name(&format!("{root}data/{key}"))
                .map_err(|_| anyhow!("no storage data/{key}"))?
                .read_to_end(&mut data)?;
            Ok(data)
        })
        .with_context(|| format!("{}: tensor {name}", path.display()))?;
        out.push((name, t));
    }
    Ok(out)
}

/// The (key, value) pairs of a dict or `OrderedDict` value.
fn dict_items(v: &Value) -> Option<&[(Value, Value)]> {
    match v {
        Value::Dict(d) => Some(d),
        Value::Object { class, items, .. } if class.ends_with("OrderedDict") => Some(items),
        _ => None,
    }
}

fn is_tensor(v: &Value) -> bool {
    matches!(v, Value::Object { class, .. } if class.starts_with("torch._utils._rebuild"))
}

/// The dict of tensors: the value itself, or one level down under a usual key.
fn state_dict_value(v: &Value) -> Option<&[(Value, Value)]> {
    let items = dict_items(v)?;
    if !items.is_empty() && items.iter().all(|(_, t)| is_tensor(t)) {
        return Some(items);
    }
    for key in ["state_dict", "model_state_dict", "model"] {
        if let Some((_, inner)) = items.iter().find(|(k, _)| k.as_str() == Some(key)) {
            if let Some(d) =
                dict_items(inner).filter(|d| !d.is_empty() && d.iter().all(|(_, t)| is_tensor(t)))
            {
                return Some(d);
            }
        }
    }
    None
}

fn kind_of(storage: &str) -> Result<(Kind, usize)> {
    Ok(match storage.rsplit('.').next().unwrap_or("") {
        "FloatStorage" => (Kind::Float, 4),
        "DoubleStorage" => (Kind::Double, 8),
        "HalfStorage" => (Kind::Half, 2),
        "BFloat16Storage" => (Kind::BFloat16, 2),
        "LongStorage" => (Kind::Int64, 8),
        "IntStorage" => (Kind::Int, 4),
        "ShortStorage" => (Kind::Int16, 2),
        "CharStorage" => (Kind::Int8, 1),
        "ByteStorage" => (Kind::Uint8, 1),
        "BoolStorage" => (Kind::Bool, 1),
        other => bail!("storage type {other} is not read"),
    })
}

fn ints(v: &Value) -> Option<Vec<i64>> {
    v.elems()?.iter().map(Value::as_int).collect()
}

/// `_rebuild_tensor_v2(storage, offset, size, stride, ...)` (possibly wrapped in
/// `_rebuild_parameter`) as a contiguous tensor.
fn rebuild_tensor(
    v: &Value,
    read_storage: &mut dyn FnMut(&str) -> Result<Vec<u8>>,
) -> Result<Tensor> {
    let Value::Object { class, args, .. } = v else { bail!("not a tensor") };
    if class.ends_with("_rebuild_parameter") {
        return rebuild_tensor(
            args.first().ok_or_else(|| anyhow!("empty parameter"))?,
            read_storage,
        );
    }
    if !class.ends_with("_rebuild_tensor_v2") {
        bail!("{class} is not read (a quantized or sparse tensor?)");
    }
    let [storage, offset, size, stride, ..] = args.as_slice() else {
        bail!("a tensor with {} arguments", args.len())
    };
    let Value::Persistent(id) = storage else { bail!("a tensor without a storage") };
    let id = id.elems().ok_or_else(|| anyhow!("unreadable storage id"))?;
    let [_tag, kind, key, _location, numel, ..] = id else {
        bail!("a storage id of {} fields", id.len())
    };
    let storage_type = match kind {
        Value::Global(g) => g.clone(),
        other => other.as_str().unwrap_or("").to_string(),
    };
    let (kind, width) = kind_of(&storage_type)?;
    let key = key
        .as_str()
        .map(str::to_string)
        .or_else(|| key.as_int().map(|i| i.to_string()))
        .ok_or_else(|| anyhow!("unreadable storage key"))?;
    let numel = numel.as_int().ok_or_else(|| anyhow!("unreadable storage size"))?;
    let (offset, size, stride) = (
        offset.as_int().unwrap_or(0),
        ints(size).ok_or_else(|| anyhow!("unreadable size"))?,
        ints(stride).ok_or_else(|| anyhow!("unreadable stride"))?,
    );
    if size.len() != stride.len() || size.iter().chain(&stride).any(|&x| x < 0) || offset < 0 {
        bail!("size {size:?}, stride {stride:?} and offset {offset} do not describe a tensor");
    }
    // The last element the view touches must lie inside the storage.
    let last = offset + size.iter().zip(&stride).map(|(&n, &s)| (n - 1).max(0) * s).sum::<i64>();
    let empty = size.contains(&0);
    if !empty && last >= numel {
        bail!("its view reaches element {last} of a storage of {numel}");
    }
    let data = read_storage(&key)?;
    if data.len() != numel as usize * width {
        bail!("storage {key} holds {} bytes, not {numel} x {width}", data.len());
    }
    let flat = Tensor::f_from_data_size(&data, &[numel], kind)?;
    if empty {
        return Ok(Tensor::f_zeros(&size, (kind, tch::Device::Cpu))?);
    }
    Ok(flat.f_as_strided(&size, &stride, Some(offset))?.f_contiguous()?)
}

/// The bytes of a `torch.save(state_dict, ...)` file: the zip format PyTorch has written since
/// 1.6, holding a protocol-2 pickle of an `OrderedDict` of tensors (each rebuilt by
/// `torch._utils._rebuild_tensor_v2` from its own storage record), which `torch.load` reads with
/// its default `weights_only=True`.
pub fn state_dict_bytes(sd: &[(String, Tensor)]) -> Result<Vec<u8>> {
    use std::io::Write;
    use zip::write::SimpleFileOptions;
    let mut storages: Vec<Vec<u8>> = Vec::with_capacity(sd.len());
    let mut p = Pickle::default();
    p.raw(&[0x80, 2]); // PROTO 2
    p.global("collections", "OrderedDict");
    p.raw(b")R"); // EMPTY_TUPLE, REDUCE: OrderedDict()
    p.raw(b"(");
    for (i, (name, t)) in sd.iter().enumerate() {
        let t = t.to_device(tch::Device::Cpu).contiguous();
        let storage_type = match t.kind() {
            Kind::Float => "FloatStorage",
            Kind::Double => "DoubleStorage",
            Kind::Half => "HalfStorage",
            Kind::BFloat16 => "BFloat16Storage",
            Kind::Int64 => "LongStorage",
            Kind::Int => "IntStorage",
            Kind::Bool => "BoolStorage",
            Kind::Uint8 => "ByteStorage",
            other => bail!("tensor {name}: {other:?} is not written"),
        };
        let numel = t.numel();
        let mut bytes = vec![0u8; numel * t.kind().elt_size_in_bytes()];
        t.f_copy_data_u8(&mut bytes, numel)?;
        storages.push(bytes);
        let size = t.size();
        let mut stride = vec![1i64; size.len()];
        for d in (0..size.len().saturating_sub(1)).rev() {
            stride[d] = stride[d + 1] * size[d + 1].max(1);
        }
        p.string(name);
        p.global("torch._utils", "_rebuild_tensor_v2");
        p.raw(b"((");
        p.string("storage");
        p.global("torch", storage_type);
        p.string(&i.to_string());
        p.string("cpu");
        p.int(numel as i64);
        p.raw(b"tQ"); // TUPLE, BINPERSID
        p.int(0); // storage offset
        p.ints(&size);
        p.ints(&stride);
        p.raw(&[0x89]); // requires_grad = False
        p.global("collections", "OrderedDict");
        p.raw(b")R"); // backward hooks: OrderedDict()
        p.raw(b"tR"); // the arguments' TUPLE, REDUCE
    }
    p.raw(b"u."); // SETITEMS, STOP
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let stored = SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    let entry = |zip: &mut zip::ZipWriter<_>, name: &str, bytes: &[u8]| -> Result<()> {
        zip.start_file(format!("archive/{name}"), stored)?;
        zip.write_all(bytes)?;
        Ok(())
    };
    entry(&mut zip, "data.pkl", &p.0)?;
    entry(&mut zip, "byteorder", b"little")?;
    for (i, bytes) in storages.iter().enumerate() {
        entry(&mut zip, &format!("data/{i}"), bytes)?;
    }
    entry(&mut zip, "version", b"3\n")?;
    Ok(zip.finish()?.into_inner())
}

/// A protocol-2 pickle being written.
#[derive(Default)]
struct Pickle(Vec<u8>);

impl Pickle {
    fn raw(&mut self, b: &[u8]) {
        self.0.extend_from_slice(b);
    }

    fn global(&mut self, module: &str, name: &str) {
        self.raw(format!("c{module}\n{name}\n").as_bytes());
    }

    fn string(&mut self, s: &str) {
        self.raw(b"X"); // BINUNICODE
        self.raw(&(s.len() as u32).to_le_bytes());
        self.raw(s.as_bytes());
    }

    fn int(&mut self, v: i64) {
        if let Ok(small) = i32::try_from(v) {
            self.raw(b"J"); // BININT
            self.raw(&small.to_le_bytes());
        } else {
            self.raw(&[0x8a, 8]); // LONG1, 8 bytes
            self.raw(&v.to_le_bytes());
        }
    }

    fn ints(&mut self, v: &[i64]) {
        self.raw(b"(");
        for &x in v {
            self.int(x);
        }
        self.raw(b"t");
    }
}

#[cfg(test)]
mod write_tests {
    use super::*;

    /// What is written reads back (through the same reader users' files go through).
    #[test]
    fn a_written_state_dict_reads_back() {
        let sd: StateDict = vec![
            (
                "convs.0.lin.weight".into(),
                Tensor::arange(12, (Kind::Float, tch::Device::Cpu)).view([3, 4]),
            ),
            ("bns.0.num_batches_tracked".into(), Tensor::from(7i64)),
            ("big".into(), Tensor::zeros([2], (Kind::Double, tch::Device::Cpu))),
        ];
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.pt");
        std::fs::write(&path, state_dict_bytes(&sd).unwrap()).unwrap();
        let back = read_state_dict(&path).unwrap();
        assert_eq!(back.len(), 3);
        for ((a, x), (b, y)) in sd.iter().zip(&back) {
            assert_eq!(a, b);
            assert_eq!(x.kind(), y.kind());
            assert!(x.equal(y), "{a}");
        }
    }
}
