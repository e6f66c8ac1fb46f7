//! A reader for the pickles inside PyTorch checkpoints that never executes anything.
//! (Over 400 lines because it is one machine: the opcodes, the few globals it allows and
//! their tests read best side by side.)
//!
//! Python's pickle is a small stack machine whose `GLOBAL` + `REDUCE` opcodes call arbitrary
//! functions; loading an untrusted checkpoint with `torch.load` can run any code. This reader
//! knows the handful of globals a tensor checkpoint needs (ordered dicts, tensor rebuilding,
//! storages, numpy scalars and their byte payloads) and builds plain values for them; any
//! other global, and any opcode outside the set below, is refused with an error naming it.

use std::collections::HashMap;

use crate::{Error, Result};

/// Element types of torch storages this reader accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StorageType {
    F64,
    F32,
    F16,
    BF16,
    I64,
}

impl StorageType {
    pub fn size(self) -> usize {
        match self {
            Self::F64 | Self::I64 => 8,
            Self::F32 => 4,
            Self::F16 | Self::BF16 => 2,
        }
    }
}

/// A tensor as the pickle describes it; its bytes live in the archive under `data/{key}`.
#[derive(Debug, Clone, PartialEq)]
pub struct TensorRef {
    pub storage: StorageType,
    pub key: String,
    pub offset: usize,
    pub shape: Vec<usize>,
    pub stride: Vec<usize>,
}

/// The callables a checkpoint may name; nothing else is ever accepted.
#[derive(Debug, Clone, PartialEq)]
pub enum Global {
    OrderedDict,
    RebuildTensor,
    RebuildParameter,
    Storage(StorageType),
    NumpyScalar,
    NumpyDtype,
    CodecsEncode,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    None,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Bytes(Vec<u8>),
    Tuple(Vec<Value>),
    List(Vec<Value>),
    Dict(Vec<(Value, Value)>),
    Global(Global),
    /// A persistent reference to a storage: type, archive key.
    Storage(StorageType, String),
    Tensor(TensorRef),
    /// A numpy dtype such as `<f8` (its byte order is set by a later BUILD).
    NumpyDtype(String),
}

impl Value {
    /// Looks a string key up in a dict.
    pub fn get(&self, key: &str) -> Option<&Value> {
        match self {
            Value::Dict(items) => items
                .iter()
                .find(|(k, _)| matches!(k, Value::Str(s) if s == key))
                .map(|(_, v)| v),
            _ => None,
        }
    }
}

fn refuse<T>(what: impl std::fmt::Display) -> Result<T> {
    Err(Error::file(format!("checkpoint pickle: {what}")))
}

fn global(module: &str, name: &str) -> Result<Global> {
    Ok(match (module, name) {
        ("collections", "OrderedDict") => Global::OrderedDict,
        ("torch._utils", "_rebuild_tensor_v2") => Global::RebuildTensor,
        ("torch._utils", "_rebuild_parameter") => Global::RebuildParameter,
        ("torch", "FloatStorage") => Global::Storage(StorageType::F32),
        ("torch", "DoubleStorage") => Global::Storage(StorageType::F64),
        ("torch", "HalfStorage") => Global::Storage(StorageType::F16),
        ("torch", "BFloat16Storage") => Global::Storage(StorageType::BF16),
        ("torch", "LongStorage") => Global::Storage(StorageType::I64),
        ("numpy.core.multiarray" | "numpy._core.multiarray", "scalar") => Global::NumpyScalar,
        ("numpy", "dtype") => Global::NumpyDtype,
        ("_codecs", "encode") => Global::CodecsEncode,
        _ => {
            return refuse(format!(
                "refusing the global '{module}.{name}': a weights checkpoint never needs it, \
                 and loading it could run code"
            ));
        }
    })
}

/// The deepest nesting of values a checkpoint may build: a state dict is about eight deep
/// (dict, tensor, its arguments); a deeper one is refused before its values (dropped, cloned
/// or read, each recursively) could overflow the stack.
pub const MAX_DEPTH: usize = 100;

/// Values a pickle may build or copy, beyond `WORK_PER_BYTE` for each of its bytes: a memo
/// read copies the value it names, so a few hundred bytes that read a value twice, memoise
/// the pair and repeat double it each time (an 825-byte pickle grew past 6 GB). Real
/// checkpoints build a few values per byte.
const BASE_WORK: usize = 4_000_000;
const WORK_PER_BYTE: usize = 16;

/// Reads a pickle (protocol 2 to 5) into a value, interpreting only what is listed above.
pub fn read(bytes: &[u8]) -> Result<Value> {
    let work = BASE_WORK.saturating_add(WORK_PER_BYTE.saturating_mul(bytes.len()));
    Machine { bytes, pos: 0, stack: Vec::new(), marks: Vec::new(), memo: HashMap::new(), work }.run()
}

struct Machine<'a> {
    bytes: &'a [u8],
    pos: usize,
    stack: Vec<Value>,
    marks: Vec<usize>,
    memo: HashMap<u32, Value>,
    /// Values (and every 64 bytes of text) it may still build, copy or nest.
    work: usize,
}

impl Machine<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8]> {
        let end = self.pos.checked_add(n).filter(|&end| end <= self.bytes.len());
        let Some(end) = end else {
            return refuse(format!("truncated at byte {} (wanted {n} more)", self.pos));
        };
        let slice = &self.bytes[self.pos..end];
        self.pos = end;
        Ok(slice)
    }

    fn u8(&mut self) -> Result<u8> {
        Ok(self.take(1)?[0])
    }

    fn u32(&mut self) -> Result<u32> {
        Ok(u32::from_le_bytes(self.take(4)?.try_into().unwrap()))
    }

    fn u64(&mut self) -> Result<usize> {
        let n = u64::from_le_bytes(self.take(8)?.try_into().unwrap());
        usize::try_from(n).or_else(|_| refuse("length too large"))
    }

    fn line(&mut self) -> Result<String> {
        let rest = &self.bytes[self.pos..];
        let Some(end) = rest.iter().position(|&b| b == b'\n') else {
            return refuse("unterminated GLOBAL name");
        };
        let text = String::from_utf8(rest[..end].to_vec()).or_else(|_| refuse("GLOBAL name is not UTF-8"))?;
        self.pos += end + 1;
        Ok(text)
    }

    fn text(&mut self, n: usize) -> Result<String> {
        String::from_utf8(self.take(n)?.to_vec()).or_else(|_| refuse("string is not UTF-8"))
    }

    fn pop(&mut self) -> Result<Value> {
        match self.stack.pop() {
            Some(v) => Ok(v),
            None => refuse(format!("stack underflow at byte {}", self.pos)),
        }
    }

    fn pop_mark(&mut self) -> Result<Vec<Value>> {
        let Some(mark) = self.marks.pop() else {
            return refuse(format!("no MARK before byte {}", self.pos));
        };
        if mark > self.stack.len() {
            return refuse("MARK beyond the stack");
        }
        Ok(self.stack.split_off(mark))
    }

    fn top(&mut self) -> Result<&mut Value> {
        let pos = self.pos;
        match self.stack.last_mut() {
            Some(v) => Ok(v),
            None => refuse(format!("empty stack at byte {pos}")),
        }
    }

    fn memo_get(&mut self, key: u32) -> Result<Value> {
        let Some(value) = self.memo.get(&key) else {
            return refuse(format!("memo {key} read before it was written"));
        };
        self.work = spend(self.work, value, 0)?;
        Ok(value.clone())
    }

    fn memo_put(&mut self, key: u32) -> Result<()> {
        let Some(value) = self.stack.last() else {
            return refuse("memoising an empty stack");
        };
        self.work = spend(self.work, value, 0)?;
        let value = value.clone();
        self.memo.insert(key, value);
        Ok(())
    }

    /// Charges `items`, about to be nested one level down in a container, against the work
    /// left, refusing them when they are already `MAX_DEPTH` deep.
    fn nest<'v>(&mut self, items: impl IntoIterator<Item = &'v Value>) -> Result<()> {
        for item in items {
            self.work = spend(self.work, item, 1)?;
        }
        Ok(())
    }

    fn run(mut self) -> Result<Value> {
        loop {
            let at = self.pos;
            let op = self.u8()?;
            match op {
                0x80 => {
                    let protocol = self.u8()?;
                    if !(2..=5).contains(&protocol) {
                        return refuse(format!("pickle protocol {protocol} is not supported"));
                    }
                }
                0x95 => {
                    self.take(8)?; // FRAME: a length hint only
                }
                b'.' => return self.pop(),
                b'(' => self.marks.push(self.stack.len()),
                b'0' => {
                    self.pop()?;
                }
                b'N' => self.stack.push(Value::None),
                0x88 => self.stack.push(Value::Bool(true)),
                0x89 => self.stack.push(Value::Bool(false)),
                b'J' => {
                    let v = i32::from_le_bytes(self.take(4)?.try_into().unwrap());
                    self.stack.push(Value::Int(v.into()));
                }
                b'K' => {
                    let v = self.u8()?;
                    self.stack.push(Value::Int(v.into()));
                }
                b'M' => {
                    let v = u16::from_le_bytes(self.take(2)?.try_into().unwrap());
                    self.stack.push(Value::Int(v.into()));
                }
                0x8a => {
                    let n = self.u8()? as usize;
                    let digits = self.take(n)?;
                    if n > 8 {
                        return refuse("integer wider than 64 bits");
                    }
                    let mut buf = if digits.last().is_some_and(|b| b & 0x80 != 0) { [0xff; 8] } else { [0; 8] };
                    buf[..n].copy_from_slice(digits);
                    self.stack.push(Value::Int(i64::from_le_bytes(buf)));
                }
                b'G' => {
                    let v = f64::from_be_bytes(self.take(8)?.try_into().unwrap());
                    self.stack.push(Value::Float(v));
                }
                b'X' => {
                    let n = self.u32()? as usize;
                    let s = self.text(n)?;
                    self.stack.push(Value::Str(s));
                }
                0x8c => {
                    let n = self.u8()? as usize;
                    let s = self.text(n)?;
                    self.stack.push(Value::Str(s));
                }
                0x8d => {
                    let n = self.u64()?;
                    let s = self.text(n)?;
                    self.stack.push(Value::Str(s));
                }
                b'B' => {
                    let n = self.u32()? as usize;
                    let b = self.take(n)?.to_vec();
                    self.stack.push(Value::Bytes(b));
                }
                b'C' => {
                    let n = self.u8()? as usize;
                    let b = self.take(n)?.to_vec();
                    self.stack.push(Value::Bytes(b));
                }
                0x8e => {
                    let n = self.u64()?;
                    let b = self.take(n)?.to_vec();
                    self.stack.push(Value::Bytes(b));
                }
                b')' => self.stack.push(Value::Tuple(Vec::new())),
                b't' => {
                    let items = self.pop_mark()?;
                    self.nest(&items)?;
                    self.stack.push(Value::Tuple(items));
                }
                0x85..=0x87 => {
                    let n = (op - 0x84) as usize;
                    if self.stack.len() < n {
                        return refuse(format!("stack underflow at byte {at}"));
                    }
                    let items = self.stack.split_off(self.stack.len() - n);
                    self.nest(&items)?;
                    self.stack.push(Value::Tuple(items));
                }
                b']' => self.stack.push(Value::List(Vec::new())),
                b'l' => {
                    let items = self.pop_mark()?;
                    self.nest(&items)?;
                    self.stack.push(Value::List(items));
                }
                b'a' => {
                    let item = self.pop()?;
                    self.nest([&item])?;
                    match self.top()? {
                        Value::List(list) => list.push(item),
                        _ => return refuse(format!("APPEND to a non-list at byte {at}")),
                    }
                }
                b'e' => {
                    let items = self.pop_mark()?;
                    self.nest(&items)?;
                    match self.top()? {
                        Value::List(list) => list.extend(items),
                        _ => return refuse(format!("APPENDS to a non-list at byte {at}")),
                    }
                }
                b'}' => self.stack.push(Value::Dict(Vec::new())),
                b'd' => {
                    let items = self.pop_mark()?;
                    self.nest(&items)?;
                    let dict = pairs(items)?;
                    self.stack.push(Value::Dict(dict));
                }
                b's' => {
                    let value = self.pop()?;
                    let key = self.pop()?;
                    self.nest([&key, &value])?;
                    match self.top()? {
                        Value::Dict(dict) => dict.push((key, value)),
                        _ => return refuse(format!("SETITEM on a non-dict at byte {at}")),
                    }
                }
                b'u' => {
                    let items = self.pop_mark()?;
                    self.nest(&items)?;
                    let new = pairs(items)?;
                    match self.top()? {
                        Value::Dict(dict) => dict.extend(new),
                        _ => return refuse(format!("SETITEMS on a non-dict at byte {at}")),
                    }
                }
                b'c' => {
                    let module = self.line()?;
                    let name = self.line()?;
                    self.stack.push(Value::Global(global(&module, &name)?));
                }
                0x93 => {
                    let name = self.pop()?;
                    let module = self.pop()?;
                    match (module, name) {
                        (Value::Str(m), Value::Str(n)) => self.stack.push(Value::Global(global(&m, &n)?)),
                        _ => return refuse(format!("STACK_GLOBAL without names at byte {at}")),
                    }
                }
                b'Q' => {
                    let pid = self.pop()?;
                    self.stack.push(persistent(pid)?);
                }
                b'R' => {
                    let args = self.pop()?;
                    let callable = self.pop()?;
                    let Value::Tuple(args) = args else {
                        return refuse(format!("REDUCE without an argument tuple at byte {at}"));
                    };
                    let Value::Global(callable) = callable else {
                        return refuse(format!("REDUCE of something not callable at byte {at}"));
                    };
                    self.stack.push(reduce(callable, args)?);
                }
                b'b' => {
                    let state = self.pop()?;
                    self.nest([&state])?;
                    match (self.top()?, state) {
                        (Value::NumpyDtype(code), Value::Tuple(state)) => {
                            // (version, byte order, ...): only little-endian data is read.
                            if let Some(Value::Str(order)) = state.get(1) {
                                if order == ">" {
                                    return refuse("big-endian numpy scalars are not supported");
                                }
                            }
                            let _ = code;
                        }
                        (Value::Dict(_), Value::None) => {}
                        (Value::Dict(dict), Value::Dict(more)) => dict.extend(more),
                        _ => return refuse(format!("BUILD on an unexpected object at byte {at}")),
                    }
                }
                b'q' => {
                    let key = self.u8()? as u32;
                    self.memo_put(key)?;
                }
                b'r' => {
                    let key = self.u32()?;
                    self.memo_put(key)?;
                }
                0x94 => {
                    let key = self.memo.len() as u32;
                    self.memo_put(key)?;
                }
                b'h' => {
                    let key = self.u8()? as u32;
                    let value = self.memo_get(key)?;
                    self.stack.push(value);
                }
                b'j' => {
                    let key = self.u32()?;
                    let value = self.memo_get(key)?;
                    self.stack.push(value);
                }
                other => {
                    return refuse(format!(
                        "opcode 0x{other:02x} at byte {at} is not one a weights checkpoint uses"
                    ));
                }
            }
        }
    }
}

/// `work` less what walking `value`, `level` deep, costs (a unit a value, and one for every
/// 64 bytes of text), refusing the pickle when that is more than is left or the value reaches
/// past `MAX_DEPTH`. The walk stops there, so it never recurses deeper than that.
fn spend(work: usize, value: &Value, level: usize) -> Result<usize> {
    if level > MAX_DEPTH {
        return refuse(format!("values nested more than {MAX_DEPTH} deep"));
    }
    let own = match value {
        Value::Str(s) => s.len() / 64,
        Value::Bytes(b) => b.len() / 64,
        _ => 0,
    };
    let Some(mut left) = work.checked_sub(1 + own) else {
        return refuse("it builds far more values than its size accounts for (a memo bomb?)");
    };
    match value {
        Value::Tuple(items) | Value::List(items) => {
            for item in items {
                left = spend(left, item, level + 1)?;
            }
        }
        Value::Dict(pairs) => {
            for (key, item) in pairs {
                left = spend(spend(left, key, level + 1)?, item, level + 1)?;
            }
        }
        _ => {}
    }
    Ok(left)
}

fn pairs(items: Vec<Value>) -> Result<Vec<(Value, Value)>> {
    if items.len() % 2 != 0 {
        return refuse("a dict with an odd number of items");
    }
    let mut out = Vec::with_capacity(items.len() / 2);
    let mut items = items.into_iter();
    while let (Some(k), Some(v)) = (items.next(), items.next()) {
        out.push((k, v));
    }
    Ok(out)
}

/// `('storage', storage_type, key, location, numel)`, torch's persistent id for a storage.
fn persistent(pid: Value) -> Result<Value> {
    match pid {
        Value::Tuple(items) => match items.as_slice() {
            [Value::Str(kind), Value::Global(Global::Storage(dtype)), Value::Str(key), ..] if kind == "storage" => {
                Ok(Value::Storage(*dtype, key.clone()))
            }
            _ => refuse("a persistent id that is not a torch storage"),
        },
        _ => refuse("a persistent id that is not a tuple"),
    }
}

fn as_usize(value: &Value, what: &str) -> Result<usize> {
    match value {
        Value::Int(i) if *i >= 0 => Ok(*i as usize),
        _ => refuse(format!("{what} is not a non-negative integer")),
    }
}

fn usizes(value: &Value, what: &str) -> Result<Vec<usize>> {
    match value {
        Value::Tuple(items) | Value::List(items) => items.iter().map(|v| as_usize(v, what)).collect(),
        _ => refuse(format!("{what} is not a tuple")),
    }
}

fn reduce(callable: Global, args: Vec<Value>) -> Result<Value> {
    match callable {
        Global::OrderedDict if args.is_empty() => Ok(Value::Dict(Vec::new())),
        Global::RebuildTensor => match args.as_slice() {
            [Value::Storage(storage, key), offset, shape, stride, ..] => Ok(Value::Tensor(TensorRef {
                storage: *storage,
                key: key.clone(),
                offset: as_usize(offset, "tensor offset")?,
                shape: usizes(shape, "tensor shape")?,
                stride: usizes(stride, "tensor stride")?,
            })),
            _ => refuse("_rebuild_tensor_v2 with unexpected arguments"),
        },
        Global::RebuildParameter => match args.into_iter().next() {
            Some(tensor @ Value::Tensor(_)) => Ok(tensor),
            _ => refuse("_rebuild_parameter without a tensor"),
        },
        Global::NumpyDtype => match args.first() {
            Some(Value::Str(code)) => Ok(Value::NumpyDtype(code.clone())),
            _ => refuse("numpy.dtype without a type code"),
        },
        Global::NumpyScalar => match args.as_slice() {
            [Value::NumpyDtype(code), Value::Bytes(bytes)] => numpy_scalar(code, bytes),
            _ => refuse("numpy scalar with unexpected arguments"),
        },
        Global::CodecsEncode => match args.as_slice() {
            // Protocol 2 spells bytes as _codecs.encode(text, 'latin1').
            [Value::Str(text), Value::Str(codec)] if codec == "latin1" || codec == "latin-1" => text
                .chars()
                .map(|c| u8::try_from(u32::from(c)).or_else(|_| refuse("latin1 text out of range")))
                .collect::<Result<Vec<u8>>>()
                .map(Value::Bytes),
            _ => refuse("_codecs.encode with something other than latin1 text"),
        },
        other => refuse(format!("{other:?} cannot be called with these arguments")),
    }
}

fn numpy_scalar(code: &str, bytes: &[u8]) -> Result<Value> {
    let fixed = |n: usize| -> Result<[u8; 8]> {
        if bytes.len() != n {
            return refuse(format!("numpy {code} scalar of {} bytes", bytes.len()));
        }
        let mut buf = [0u8; 8];
        buf[..n].copy_from_slice(bytes);
        Ok(buf)
    };
    Ok(match code {
        "f8" => Value::Float(f64::from_le_bytes(fixed(8)?)),
        "f4" => Value::Float(f32::from_le_bytes(fixed(4)?[..4].try_into().unwrap()).into()),
        "i8" | "u8" => Value::Int(i64::from_le_bytes(fixed(8)?)),
        "i4" => Value::Int(i32::from_le_bytes(fixed(4)?[..4].try_into().unwrap()).into()),
        "b1" => Value::Bool(fixed(1)?[0] != 0),
        other => return refuse(format!("numpy scalar of type '{other}'")),
    })
}
