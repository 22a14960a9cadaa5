//! A small reader for the Python pickles (protocols 0-4, binary opcodes) that Planetoid ships:
//! scipy CSR matrices, numpy arrays and a `collections.defaultdict(list)`.
//!
//! It builds a generic value tree and never executes anything: a `GLOBAL` becomes a name, a
//! `REDUCE` an [`Value::Object`] holding the callable's name, its arguments and later `BUILD`
//! state, which the caller interprets (numpy's `_reconstruct`, scipy's `csr_matrix`).

use anyhow::{anyhow, bail, Context, Result};

#[derive(Debug, Clone)]
pub enum Value {
    None,
    Bool(bool),
    Int(i64),
    Float(f64),
    Bytes(Vec<u8>),
    Str(String),
    Tuple(Vec<Value>),
    List(Vec<Value>),
    Dict(Vec<(Value, Value)>),
    Global(String),
    /// A persistent id (`PERSID`/`BINPERSID`): what the pickler stored outside the pickle, such
    /// as a tensor's storage in a PyTorch `.pt` file.
    Persistent(Box<Value>),
    Object {
        class: String,
        args: Vec<Value>,
        state: Option<Box<Value>>,
        items: Vec<(Value, Value)>,
    },
}

impl Value {
    pub fn as_int(&self) -> Option<i64> {
        match self {
            Value::Int(v) => Some(*v),
            Value::Bool(b) => Some(*b as i64),
            _ => None,
        }
    }
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) => Some(s),
            Value::Bytes(b) => std::str::from_utf8(b).ok(),
            _ => None,
        }
    }
    /// Looks a string key up in a dict, or in an object's state dict.
    pub fn get(&self, key: &str) -> Option<&Value> {
        let entries = match self {
            Value::Dict(d) => d,
            Value::Object { state: Some(s), .. } => return s.get(key),
            _ => return None,
        };
        entries.iter().find(|(k, _)| k.as_str() == Some(key)).map(|(_, v)| v)
    }
    pub fn elems(&self) -> Option<&[Value]> {
        match self {
            Value::Tuple(v) | Value::List(v) => Some(v),
            _ => None,
        }
    }
}

enum Item {
    Mark,
    Val(Value),
}

/// How much a value weighs (elements and bytes), counted up to `limit`.
fn weight(v: &Value, limit: usize) -> usize {
    let mut total = 1;
    let mut pending = vec![v];
    while let Some(v) = pending.pop() {
        if total > limit {
            break;
        }
        match v {
            Value::Bytes(b) => total += b.len(),
            Value::Str(s) | Value::Global(s) => total += s.len(),
            Value::Tuple(xs) | Value::List(xs) => {
                total += xs.len();
                pending.extend(xs);
            }
            Value::Dict(kv) => {
                total += kv.len();
                pending.extend(kv.iter().flat_map(|(k, v)| [k, v]));
            }
            Value::Persistent(x) => pending.push(x),
            Value::Object { args, state, items, .. } => {
                total += args.len() + items.len();
                pending.extend(args);
                pending.extend(state.as_deref());
                pending.extend(items.iter().flat_map(|(k, v)| [k, v]));
            }
            _ => {}
        }
    }
    total
}

/// How deep values may nest. Cloning and dropping a value recurse once per level: a pickle of a
/// few KB nesting lists thousands deep overflowed the stack (found by fuzzing). Real files nest a
/// handful of levels.
const MAX_DEPTH: usize = 200;

/// Whether `v` nests deeper than `limit` (walked without recursion).
fn nested_deeper_than(v: &Value, limit: usize) -> bool {
    let mut pending = vec![(v, 1usize)];
    while let Some((v, depth)) = pending.pop() {
        if depth > limit {
            return true;
        }
        let children: Box<dyn Iterator<Item = &Value>> = match v {
            Value::Tuple(xs) | Value::List(xs) => Box::new(xs.iter()),
            Value::Dict(kv) => Box::new(kv.iter().flat_map(|(k, v)| [k, v])),
            Value::Persistent(x) => Box::new(std::iter::once(x.as_ref())),
            Value::Object { args, state, items, .. } => Box::new(
                args.iter().chain(state.as_deref()).chain(items.iter().flat_map(|(k, v)| [k, v])),
            ),
            _ => Box::new(std::iter::empty()),
        };
        pending.extend(children.map(|c| (c, depth + 1)));
    }
    false
}

pub fn parse(data: &[u8]) -> Result<Value> {
    let mut stack: Vec<Item> = Vec::new();
    let mut memo: std::collections::HashMap<u32, Value> = Default::default();
    // Memo references copy values: a pickle of a few bytes that references a value twice, then
    // that pair twice, and so on, would double memory per step. The copies are bounded by what
    // a pickle of this size can honestly hold.
    let budget = 64 * data.len() + (1 << 20);
    let mut copied = 0usize;
    let mut copy = |v: &Value| -> Result<Value> {
        copied += weight(v, budget);
        if copied > budget {
            bail!("the pickle's memo references expand beyond what its {} bytes can hold (a malicious or corrupt file?)", data.len());
        }
        Ok(v.clone())
    };
    let mut pos = 0usize;
    let take = |pos: &mut usize, n: usize| -> Result<&[u8]> {
        let end = pos
            .checked_add(n)
            .filter(|&e| e <= data.len())
            .ok_or_else(|| anyhow!("truncated pickle at byte {}", *pos))?;
        let s = &data[*pos..end];
        *pos = end;
        Ok(s)
    };
    fn pop(stack: &mut Vec<Item>) -> Result<Value> {
        match stack.pop() {
            Some(Item::Val(v)) if nested_deeper_than(&v, MAX_DEPTH) => {
                bail!("the pickle nests values more than {MAX_DEPTH} deep")
            }
            Some(Item::Val(v)) => Ok(v),
            Some(Item::Mark) => bail!("unexpected mark on the pickle stack"),
            None => bail!("pickle stack underflow"),
        }
    }
    fn pop_mark(stack: &mut Vec<Item>) -> Result<Vec<Value>> {
        let mut out = Vec::new();
        loop {
            match stack.pop() {
                Some(Item::Mark) => break,
                Some(Item::Val(v)) if nested_deeper_than(&v, MAX_DEPTH) => {
                    bail!("the pickle nests values more than {MAX_DEPTH} deep")
                }
                Some(Item::Val(v)) => out.push(v),
                None => bail!("pickle mark not found"),
            }
        }
        out.reverse();
        Ok(out)
    }
    fn top(stack: &mut [Item]) -> Result<&mut Value> {
        match stack.last_mut() {
            Some(Item::Val(v)) => Ok(v),
            _ => bail!("pickle stack has no value on top"),
        }
    }
    fn line(data: &[u8], pos: &mut usize) -> Result<String> {
        let rest = &data[*pos..];
        let nl = rest
            .iter()
            .position(|&b| b == b'\n')
            .ok_or_else(|| anyhow!("unterminated pickle line"))?;
        *pos += nl + 1;
        Ok(String::from_utf8_lossy(&rest[..nl]).into_owned())
    }
    fn set_items(target: &mut Value, pairs: Vec<(Value, Value)>) -> Result<()> {
        match target {
            Value::Dict(d) => d.extend(pairs),
            Value::Object { items, .. } => items.extend(pairs),
            _ => bail!("SETITEM on a value that is not a dict"),
        }
        Ok(())
    }
    fn append(target: &mut Value, vals: Vec<Value>) -> Result<()> {
        match target {
            Value::List(l) => l.extend(vals),
            _ => bail!("APPEND on a value that is not a list"),
        }
        Ok(())
    }

    loop {
        let op = *take(&mut pos, 1)?.first().unwrap();
        match op {
            0x80 => {
                take(&mut pos, 1)?;
            } // PROTO
            0x95 => {
                take(&mut pos, 8)?;
            } // FRAME
            b'.' => return pop(&mut stack), // STOP
            b'(' => stack.push(Item::Mark),
            b'N' => stack.push(Item::Val(Value::None)),
            0x88 => stack.push(Item::Val(Value::Bool(true))),
            0x89 => stack.push(Item::Val(Value::Bool(false))),
            b'J' => {
                let b = take(&mut pos, 4)?;
                stack.push(Item::Val(Value::Int(i32::from_le_bytes(b.try_into()?) as i64)))
            }
            b'K' => {
                let b = take(&mut pos, 1)?[0];
                stack.push(Item::Val(Value::Int(b as i64)))
            }
            b'M' => {
                let b = take(&mut pos, 2)?;
                stack.push(Item::Val(Value::Int(u16::from_le_bytes(b.try_into()?) as i64)))
            }
            0x8a => {
                // LONG1: little-endian two's complement
                let n = take(&mut pos, 1)?[0] as usize;
                let b = take(&mut pos, n)?;
                if n > 8 {
                    bail!("pickle integer wider than 64 bits");
                }
                let mut v: i64 = 0;
                for (i, &byte) in b.iter().enumerate() {
                    v |= (byte as i64) << (8 * i);
                }
                if n > 0 && n < 8 && b[n - 1] & 0x80 != 0 {
                    v -= 1i64 << (8 * n);
                }
                stack.push(Item::Val(Value::Int(v)))
            }
            b'I' => {
                let l = line(data, &mut pos)?;
                let v = match l.as_str() {
                    "00" => Value::Bool(false),
                    "01" => Value::Bool(true),
                    s => Value::Int(s.parse().context("bad INT opcode")?),
                };
                stack.push(Item::Val(v))
            }
            b'G' => {
                let b = take(&mut pos, 8)?;
                stack.push(Item::Val(Value::Float(f64::from_be_bytes(b.try_into()?))))
            }
            b'U' | 0x43 => {
                // SHORT_BINSTRING (py2 str) / SHORT_BINBYTES
                let n = take(&mut pos, 1)?[0] as usize;
                stack.push(Item::Val(Value::Bytes(take(&mut pos, n)?.to_vec())))
            }
            b'T' | b'B' => {
                let n = u32::from_le_bytes(take(&mut pos, 4)?.try_into()?) as usize;
                stack.push(Item::Val(Value::Bytes(take(&mut pos, n)?.to_vec())))
            }
            0x8e => {
                let n = u64::from_le_bytes(take(&mut pos, 8)?.try_into()?) as usize;
                stack.push(Item::Val(Value::Bytes(take(&mut pos, n)?.to_vec())))
            }
            b'X' => {
                let n = u32::from_le_bytes(take(&mut pos, 4)?.try_into()?) as usize;
                stack.push(Item::Val(Value::Str(
                    String::from_utf8_lossy(take(&mut pos, n)?).into_owned(),
                )))
            }
            0x8c => {
                let n = take(&mut pos, 1)?[0] as usize;
                stack.push(Item::Val(Value::Str(
                    String::from_utf8_lossy(take(&mut pos, n)?).into_owned(),
                )))
            }
            b'c' => {
                let module = line(data, &mut pos)?;
                let name = line(data, &mut pos)?;
                stack.push(Item::Val(Value::Global(format!("{module}.{name}"))))
            }
            0x93 => {
                let name = pop(&mut stack)?;
                let module = pop(&mut stack)?;
                stack.push(Item::Val(Value::Global(format!(
                    "{}.{}",
                    module.as_str().unwrap_or("?"),
                    name.as_str().unwrap_or("?")
                ))))
            }
            b')' => stack.push(Item::Val(Value::Tuple(vec![]))),
            0x85 => {
                let a = pop(&mut stack)?;
                stack.push(Item::Val(Value::Tuple(vec![a])))
            }
            0x86 => {
                let b = pop(&mut stack)?;
                let a = pop(&mut stack)?;
                stack.push(Item::Val(Value::Tuple(vec![a, b])))
            }
            0x87 => {
                let c = pop(&mut stack)?;
                let b = pop(&mut stack)?;
                let a = pop(&mut stack)?;
                stack.push(Item::Val(Value::Tuple(vec![a, b, c])))
            }
            b't' => {
                let v = pop_mark(&mut stack)?;
                stack.push(Item::Val(Value::Tuple(v)))
            }
            b']' => stack.push(Item::Val(Value::List(vec![]))),
            b'l' => {
                let v = pop_mark(&mut stack)?;
                stack.push(Item::Val(Value::List(v)))
            }
            b'}' => stack.push(Item::Val(Value::Dict(vec![]))),
            b'd' => {
                let v = pop_mark(&mut stack)?;
                let mut d = Vec::new();
                let mut it = v.into_iter();
                while let (Some(k), Some(v)) = (it.next(), it.next()) {
                    d.push((k, v));
                }
                stack.push(Item::Val(Value::Dict(d)))
            }
            b'a' => {
                let v = pop(&mut stack)?;
                append(top(&mut stack)?, vec![v])?
            }
            b'e' => {
                let v = pop_mark(&mut stack)?;
                append(top(&mut stack)?, v)?
            }
            b's' => {
                let v = pop(&mut stack)?;
                let k = pop(&mut stack)?;
                set_items(top(&mut stack)?, vec![(k, v)])?
            }
            b'u' => {
                let v = pop_mark(&mut stack)?;
                let mut pairs = Vec::new();
                let mut it = v.into_iter();
                while let (Some(k), Some(v)) = (it.next(), it.next()) {
                    pairs.push((k, v));
                }
                set_items(top(&mut stack)?, pairs)?
            }
            b'R' | 0x81 => {
                // REDUCE / NEWOBJ: record the call, do not perform it
                let args = pop(&mut stack)?;
                let callable = pop(&mut stack)?;
                let class = match callable {
                    Value::Global(g) => g,
                    other => bail!("pickle REDUCE on a non-global {other:?}"),
                };
                let args = match args {
                    Value::Tuple(a) => a,
                    other => vec![other],
                };
                stack.push(Item::Val(Value::Object { class, args, state: None, items: vec![] }))
            }
            b'Q' => {
                let id = pop(&mut stack)?;
                stack.push(Item::Val(Value::Persistent(Box::new(id))))
            }
            b'P' => {
                let id = line(data, &mut pos)?;
                stack.push(Item::Val(Value::Persistent(Box::new(Value::Str(id)))))
            }
            b'b' => {
                let st = pop(&mut stack)?;
                match top(&mut stack)? {
                    Value::Object { state, .. } => *state = Some(Box::new(st)),
                    _ => bail!("pickle BUILD on a non-object"),
                }
            }
            b'q' => {
                let k = take(&mut pos, 1)?[0] as u32;
                let v = copy(top(&mut stack)?)?;
                memo.insert(k, v);
            }
            b'r' => {
                let k = u32::from_le_bytes(take(&mut pos, 4)?.try_into()?);
                let v = copy(top(&mut stack)?)?;
                memo.insert(k, v);
            }
            0x94 => {
                let k = memo.len() as u32;
                let v = copy(top(&mut stack)?)?;
                memo.insert(k, v);
            }
            b'h' => {
                let k = take(&mut pos, 1)?[0] as u32;
                stack.push(Item::Val(copy(
                    memo.get(&k).ok_or_else(|| anyhow!("pickle memo {k} missing"))?,
                )?))
            }
            b'j' => {
                let k = u32::from_le_bytes(take(&mut pos, 4)?.try_into()?);
                stack.push(Item::Val(copy(
                    memo.get(&k).ok_or_else(|| anyhow!("pickle memo {k} missing"))?,
                )?))
            }
            b'0' => {
                pop(&mut stack)?;
            }
            other => bail!("unsupported pickle opcode 0x{other:02x} at byte {}", pos - 1),
        }
    }
}

/// A dense numeric array decoded from a pickled numpy `ndarray`.
#[derive(Debug, Clone)]
pub struct Array {
    pub shape: Vec<usize>,
    pub data: Vec<f64>,
}

/// Decodes `numpy.core.multiarray._reconstruct` + BUILD state
/// `(version, shape, dtype, is_fortran, raw_bytes)`.
pub fn ndarray(v: &Value) -> Result<Array> {
    let (class, state) = match v {
        Value::Object { class, state: Some(s), .. } => (class, s),
        _ => bail!("expected a pickled numpy array"),
    };
    if !class.ends_with("_reconstruct") {
        bail!("expected a numpy array, found {class}");
    }
    let st = state.elems().ok_or_else(|| anyhow!("numpy array state is not a tuple"))?;
    if st.len() < 5 {
        bail!("numpy array state has {} fields", st.len());
    }
    let shape: Vec<usize> = st[1]
        .elems()
        .ok_or_else(|| anyhow!("numpy shape is not a tuple"))?
        .iter()
        .map(|d| d.as_int().map(|x| x as usize).ok_or_else(|| anyhow!("bad numpy dim")))
        .collect::<Result<_>>()?;
    let (descr, big_endian) = match &st[2] {
        Value::Object { args, state, .. } => {
            let d = args
                .first()
                .and_then(|a| a.as_str())
                .ok_or_else(|| anyhow!("numpy dtype without a name"))?;
            let order = state.as_ref().and_then(|s| {
                s.elems().and_then(|e| e.get(1)).and_then(|o| o.as_str().map(str::to_owned))
            });
            (d.to_string(), order.as_deref() == Some(">"))
        }
        _ => bail!("numpy dtype is not an object"),
    };
    if st[3].as_int() == Some(1) && shape.len() > 1 {
        bail!("Fortran-ordered numpy arrays are not supported");
    }
    let raw = match &st[4] {
        Value::Bytes(b) => b.clone(),
        Value::Str(s) => s.chars().map(|c| c as u32 as u8).collect(), // py2 str decoded as latin-1
        _ => bail!("numpy data is not a byte string"),
    };
    let data = decode_numeric(&descr, big_endian, &raw)?;
    // Checked: a header claiming dims whose product wraps around must not pass for the data.
    let expected = shape.iter().try_fold(1usize, |n, &d| n.checked_mul(d));
    if expected != Some(data.len()) {
        bail!("numpy array holds {} values for shape {shape:?}", data.len());
    }
    Ok(Array { shape, data })
}

/// Decodes raw little/big-endian bytes of a numpy dtype code such as `f4`, `<i8`, `u1`, `b1`.
pub fn decode_numeric(descr: &str, big_endian: bool, raw: &[u8]) -> Result<Vec<f64>> {
    let code = descr.trim_start_matches(['<', '>', '|', '=']);
    let big = big_endian || descr.starts_with('>');
    macro_rules! conv {
        ($t:ty, $n:expr) => {{
            #[allow(clippy::modulo_one)] // one-byte types share the macro: the check is then moot
            if raw.len() % $n != 0 {
                bail!("{} bytes is not a whole number of {descr} values", raw.len());
            }
            raw.chunks_exact($n)
                .map(|c| {
                    let a: [u8; $n] = c.try_into().unwrap();
                    (if big { <$t>::from_be_bytes(a) } else { <$t>::from_le_bytes(a) }) as f64
                })
                .collect()
        }};
    }
    Ok(match code {
        "f4" => conv!(f32, 4),
        "f8" => conv!(f64, 8),
        "i1" => conv!(i8, 1),
        "u1" | "b1" => conv!(u8, 1),
        "i2" => conv!(i16, 2),
        "u2" => conv!(u16, 2),
        "i4" => conv!(i32, 4),
        "u4" => conv!(u32, 4),
        "i8" => conv!(i64, 8),
        "u8" => conv!(u64, 8),
        other => bail!("unsupported numpy dtype {other}"),
    })
}

/// A scipy CSR matrix decoded from its pickled state dict.
#[derive(Debug, Clone)]
pub struct Csr {
    pub rows: usize,
    pub cols: usize,
    pub indptr: Vec<usize>,
    pub indices: Vec<usize>,
    pub data: Vec<f64>,
}

impl Csr {
    pub fn validate(&self) -> Result<()> {
        if self.indptr.len() != self.rows + 1
            || self.indptr.last() != Some(&self.indices.len())
            || self.indices.len() != self.data.len()
        {
            bail!(
                "inconsistent CSR matrix ({} rows, {} indptr, {} indices, {} values)",
                self.rows,
                self.indptr.len(),
                self.indices.len(),
                self.data.len()
            );
        }
        if self.indptr.windows(2).any(|w| w[0] > w[1]) {
            bail!("CSR indptr is not non-decreasing");
        }
        if let Some(c) = self.indices.iter().find(|&&c| c >= self.cols) {
            bail!("CSR column {c} outside 0..{}", self.cols);
        }
        Ok(())
    }

    /// Writes the matrix densely into rows `row0..` of a row-major `[_, cols]` buffer.
    pub fn scatter_into(&self, out: &mut [f32], row0: usize) {
        for r in 0..self.rows {
            let base = (row0 + r) * self.cols;
            for k in self.indptr[r]..self.indptr[r + 1] {
                out[base + self.indices[k]] = self.data[k] as f32;
            }
        }
    }
}

pub fn csr_matrix(v: &Value) -> Result<Csr> {
    let class = match v {
        Value::Object { class, .. } => class.as_str(),
        _ => bail!("expected a pickled scipy sparse matrix"),
    };
    // copy_reg._reconstructor(csr_matrix, object, None): the class is the first argument.
    let real_class = match v {
        Value::Object { args, .. } if class.ends_with("_reconstructor") => match args.first() {
            Some(Value::Global(g)) => g.as_str(),
            _ => class,
        },
        _ => class,
    };
    if !real_class.contains("csr") {
        bail!("expected a scipy CSR matrix, found {real_class}");
    }
    let field = |k: &str| v.get(k).ok_or_else(|| anyhow!("CSR matrix without '{k}'"));
    let shape =
        field("_shape")?.elems().ok_or_else(|| anyhow!("CSR shape is not a tuple"))?.to_vec();
    let dim = |i: usize| {
        shape
            .get(i)
            .and_then(|d| d.as_int())
            .map(|d| d as usize)
            .ok_or_else(|| anyhow!("bad CSR shape"))
    };
    let ints = |k: &str| -> Result<Vec<usize>> {
        Ok(ndarray(field(k)?)?.data.into_iter().map(|x| x as usize).collect())
    };
    let csr = Csr {
        rows: dim(0)?,
        cols: dim(1)?,
        indptr: ints("indptr")?,
        indices: ints("indices")?,
        data: ndarray(field("data")?)?.data,
    };
    csr.validate()?;
    Ok(csr)
}

#[cfg(test)]
mod hostile_tests {
    /// Found by fuzzing: lists nested thousands deep overflowed the stack when cloned or dropped.
    #[test]
    fn deep_nesting_is_refused_not_a_stack_overflow() {
        let mut p = vec![0x80, 2];
        p.extend(std::iter::repeat_n(b']', 50_000)); // 50,000 empty lists
        p.extend(std::iter::repeat_n(b'a', 49_999)); // each appended into the one below
        p.push(b'.');
        let e = super::parse(&p).unwrap_err().to_string();
        assert!(e.contains("nests values more than"), "{e}");
        // A memo bomb stays refused too, and ordinary nesting reads.
        let shallow = [0x80, 2, b']', b']', b'a', b'.'];
        assert!(super::parse(&shallow).is_ok());
    }
}
