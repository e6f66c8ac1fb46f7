//! PyTorch checkpoints (`torch.save` since 1.6): a zip archive holding `*/data.pkl`, the
//! pickled object, and `*/data/{key}`, the raw little-endian bytes of each storage. Read with
//! the safe pickle reader; written for the project's own test and benchmark checkpoints.

use std::io::{Read, Seek, Write};

use super::pickle::{self, StorageType, TensorRef, Value};
use super::tensors::{HostTensor, TensorMap};
use crate::{Error, Result};

fn invalid(what: impl std::fmt::Display) -> Error {
    Error::file(format!("PyTorch checkpoint: {what}"))
}

/// Reads the pickled object and every tensor in it. The tensors are those of the state dict:
/// under `state_dict` if the object has one (the CLIPAG layout), else the object itself,
/// with any `module.` prefix (left by DistributedDataParallel) removed.
pub fn read_state_dict(reader: impl Read + Seek) -> Result<TensorMap> {
    let mut archive = zip::ZipArchive::new(reader).map_err(|e| {
        invalid(format!(
            "not a zip archive ({e}); checkpoints saved before PyTorch 1.6 must be re-saved"
        ))
    })?;
    let pickle_name = (0..archive.len())
        .filter_map(|i| archive.name_for_index(i).map(str::to_string))
        .find(|name| name.ends_with("/data.pkl") || name == "data.pkl")
        .ok_or_else(|| invalid("no data.pkl in the archive"))?;
    let prefix = pickle_name.trim_end_matches("data.pkl").to_string();
    let object = pickle::read(&read_entry(&mut archive, &pickle_name)?)?;

    let state = object.get("state_dict").unwrap_or(&object);
    let Value::Dict(items) = state else {
        return Err(invalid("the checkpoint holds no dict of tensors"));
    };
    let mut tensors = TensorMap::new();
    for (key, value) in items {
        let (Value::Str(name), Value::Tensor(tensor)) = (key, value) else {
            continue; // metadata beside the weights (epoch, losses, names)
        };
        let name = name.strip_prefix("module.").unwrap_or(name);
        let bytes = read_entry(&mut archive, &format!("{prefix}data/{}", tensor.key))?;
        tensors.insert(name.to_string(), gather(tensor, &bytes).map_err(|e| invalid(format!("{name}: {e}")))?);
    }
    if tensors.is_empty() {
        return Err(invalid("the state dict holds no tensors"));
    }
    Ok(tensors)
}

/// Deflate's largest ratio is about 1032 to 1: an entry that claims more than this many
/// bytes for each stored one is not what its bytes can hold (a decompression bomb, or a lie).
const MAX_RATIO: u64 = 1100;
/// Where reading an entry starts its buffer, however large the entry says it is.
const FIRST_BUFFER: u64 = 64 << 20;

/// An entry's bytes. Its declared size is believed only as far as its stored bytes can back
/// it, the buffer grows as bytes arrive, and nothing past the declared size is read.
fn read_entry(archive: &mut zip::ZipArchive<impl Read + Seek>, name: &str) -> Result<Vec<u8>> {
    let entry = archive
        .by_name(name)
        .map_err(|e| invalid(format!("missing {name}: {e}")))?;
    let (size, stored) = (entry.size(), entry.compressed_size());
    if size > stored.max(1).saturating_mul(MAX_RATIO) {
        return Err(invalid(format!("{name} claims {size} bytes from {stored} stored: more than any compression gives")));
    }
    let mut bytes = Vec::with_capacity(size.min(FIRST_BUFFER) as usize);
    entry
        .take(size)
        .read_to_end(&mut bytes)
        .map_err(|e| invalid(format!("reading {name}: {e} (is the file truncated?)")))?;
    if bytes.len() as u64 != size {
        return Err(invalid(format!("{name} holds {} bytes where it claims {size} (is the file truncated?)", bytes.len())));
    }
    Ok(bytes)
}

/// Copies a (possibly strided) view out of its storage into a dense f32 tensor.
fn gather(tensor: &TensorRef, storage: &[u8]) -> std::result::Result<HostTensor, String> {
    if tensor.shape.len() != tensor.stride.len() {
        return Err("shape and stride differ in length".into());
    }
    let size = tensor.storage.size();
    let elements = storage.len() / size;
    // Checked: a view's numbers are the file's, and wrapping arithmetic would let one claim
    // elements it does not have.
    let numel = tensor.shape.iter().try_fold(1usize, |n, &d| n.checked_mul(d)).ok_or("its shape's element count overflows")?;
    // A weight never repeats its storage's elements (a stride of 0 would let a 4-byte storage
    // claim any number of them): a view holds at most what its storage does.
    if numel > elements {
        return Err(format!("a view of {numel} elements of a storage of {elements}"));
    }
    let reach = tensor
        .shape
        .iter()
        .zip(&tensor.stride)
        .try_fold(tensor.offset, |at, (&n, &s)| n.saturating_sub(1).checked_mul(s).and_then(|step| at.checked_add(step)))
        .ok_or("its offset and strides overflow")?;
    if numel > 0 && reach >= elements {
        return Err(format!("view reaches element {reach} of a storage of {elements}"));
    }
    let read = |i: usize| -> f32 {
        let b = &storage[i * size..(i + 1) * size];
        match tensor.storage {
            StorageType::F32 => f32::from_le_bytes(b.try_into().unwrap()),
            StorageType::F64 => f64::from_le_bytes(b.try_into().unwrap()) as f32,
            StorageType::F16 => half::f16::from_le_bytes(b.try_into().unwrap()).to_f32(),
            StorageType::BF16 => half::bf16::from_le_bytes(b.try_into().unwrap()).to_f32(),
            StorageType::I64 => i64::from_le_bytes(b.try_into().unwrap()) as f32,
        }
    };
    let mut data = Vec::with_capacity(numel);
    let mut index = vec![0usize; tensor.shape.len()];
    for _ in 0..numel {
        let at = tensor.offset + index.iter().zip(&tensor.stride).map(|(i, s)| i * s).sum::<usize>();
        data.push(read(at));
        for d in (0..index.len()).rev() {
            index[d] += 1;
            if index[d] < tensor.shape[d] {
                break;
            }
            index[d] = 0;
        }
    }
    Ok(HostTensor::new(tensor.shape.clone(), data))
}

/// Writes `tensors` (f32) as a checkpoint in the CLIPAG layout: a dict with numpy scalars
/// `epoch` and `best_loss`, a `name`, and `state_dict` whose keys carry a `module.` prefix,
/// pickled with protocol 2 as `torch.save` does.
pub fn write_clipag_layout(writer: impl Write + Seek, tensors: &TensorMap, name: &str) -> Result<()> {
    let mut zip = zip::ZipWriter::new(writer);
    let stored = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Stored)
        .large_file(true);
    let io = |e: std::io::Error| invalid(format!("writing: {e}"));
    let zip_err = |e: zip::result::ZipError| invalid(format!("writing: {e}"));

    let mut p = PickleWriter::default();
    p.raw(&[0x80, 2, b'}']); // PROTO 2, EMPTY_DICT
    p.raw(b"(");
    p.str("epoch");
    p.numpy_scalar("i8", &7i64.to_le_bytes());
    p.str("name");
    p.str(name);
    p.str("best_loss");
    p.numpy_scalar("f8", &0.5f64.to_le_bytes());
    p.str("state_dict");
    p.raw(b"ccollections\nOrderedDict\n)R(");
    for (index, (key, tensor)) in tensors.iter().enumerate() {
        p.str(&format!("module.{key}"));
        p.raw(b"ctorch._utils\n_rebuild_tensor_v2\n(");
        // Persistent id ('storage', torch.FloatStorage, key, 'cpu', numel).
        p.raw(b"(");
        p.str("storage");
        p.raw(b"ctorch\nFloatStorage\n");
        p.str(&index.to_string());
        p.str("cpu");
        p.int(tensor.data.len());
        p.raw(b"tQ"); // TUPLE, BINPERSID
        p.int(0);
        p.raw(b"(");
        for &d in &tensor.shape {
            p.int(d);
        }
        p.raw(b"t(");
        let mut stride = 1;
        let mut strides = vec![0; tensor.shape.len()];
        for (s, d) in strides.iter_mut().zip(&tensor.shape).rev() {
            *s = stride;
            stride *= d;
        }
        for s in strides {
            p.int(s);
        }
        p.raw(b"t\x89ccollections\nOrderedDict\n)RtR"); // requires_grad, hooks; TUPLE, REDUCE
    }
    p.raw(b"u"); // SETITEMS into the OrderedDict
    p.raw(b"u."); // SETITEMS into the top dict, STOP

    zip.start_file("archive/data.pkl", stored).map_err(zip_err)?;
    zip.write_all(&p.bytes).map_err(io)?;
    zip.start_file("archive/byteorder", stored).map_err(zip_err)?;
    zip.write_all(b"little").map_err(io)?;
    for (index, tensor) in tensors.values().enumerate() {
        zip.start_file(format!("archive/data/{index}"), stored).map_err(zip_err)?;
        for v in &tensor.data {
            zip.write_all(&v.to_le_bytes()).map_err(io)?;
        }
    }
    zip.start_file("archive/version", stored).map_err(zip_err)?;
    zip.write_all(b"3\n").map_err(io)?;
    zip.finish().map_err(zip_err)?;
    Ok(())
}

#[derive(Default)]
struct PickleWriter {
    bytes: Vec<u8>,
}

impl PickleWriter {
    fn raw(&mut self, b: &[u8]) {
        self.bytes.extend_from_slice(b);
    }

    fn str(&mut self, s: &str) {
        self.bytes.push(b'X');
        self.bytes.extend_from_slice(&(s.len() as u32).to_le_bytes());
        self.bytes.extend_from_slice(s.as_bytes());
    }

    fn int(&mut self, v: usize) {
        match u32::try_from(v) {
            Ok(v) if v <= i32::MAX as u32 => {
                self.bytes.push(b'J');
                self.bytes.extend_from_slice(&(v as i32).to_le_bytes());
            }
            _ => {
                self.bytes.extend_from_slice(&[0x8a, 8]);
                self.bytes.extend_from_slice(&(v as i64).to_le_bytes());
            }
        }
    }

    /// `numpy.core.multiarray.scalar(numpy.dtype(code), _codecs.encode(bytes, 'latin1'))`.
    fn numpy_scalar(&mut self, code: &str, payload: &[u8]) {
        self.raw(b"cnumpy.core.multiarray\nscalar\ncnumpy\ndtype\n");
        self.str(code);
        self.raw(b"\x89\x88\x87R"); // False, True, TUPLE3, REDUCE
        self.raw(b"(K\x03");
        self.str("<");
        self.raw(b"NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00tb"); // dtype state, BUILD
        self.raw(b"c_codecs\nencode\n");
        let latin1: String = payload.iter().map(|&b| b as char).collect();
        self.str(&latin1);
        self.str("latin1");
        self.raw(b"\x86R\x86R"); // TUPLE2 REDUCE (bytes), TUPLE2 REDUCE (scalar)
    }
}

#[cfg(test)]
mod tests {
    use std::io::{Cursor, Write};

    use super::{StorageType, TensorRef, gather, read_entry};

    fn view(offset: usize, shape: &[usize], stride: &[usize]) -> TensorRef {
        TensorRef { storage: StorageType::F32, key: "0".into(), offset, shape: shape.to_vec(), stride: stride.to_vec() }
    }

    #[test]
    fn a_view_is_refused_when_it_claims_more_than_its_storage_or_its_numbers_overflow() {
        let storage = 1.5f32.to_le_bytes().repeat(6);
        // A 2 x 3 view reads, transposed too.
        assert_eq!(gather(&view(0, &[3, 2], &[1, 3]), &storage).unwrap().shape, vec![3, 2]);
        // A stride of 0 would let one element stand for 2^40 (an allocation of 4 TiB).
        let error = gather(&view(0, &[1 << 20, 1 << 20], &[0, 0]), &storage).unwrap_err();
        assert!(error.contains("storage of 6"), "{error}");
        // A shape whose product wraps, and strides near 2^63 whose reach wraps.
        assert!(gather(&view(0, &[1 << 33, 1 << 33, 0], &[0, 0, 0]), &storage).unwrap_err().contains("overflows"));
        assert!(gather(&view(0, &[3, 2], &[1 << 63, 1]), &storage).unwrap_err().contains("overflow"));
        assert!(gather(&view(usize::MAX, &[1], &[1]), &storage).unwrap_err().contains("reaches element"));
    }

    #[test]
    fn an_entry_claiming_more_than_its_stored_bytes_can_hold_is_not_read() {
        let mut zip = zip::ZipWriter::new(Cursor::new(Vec::new()));
        let stored = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
        zip.start_file("archive/data/0", stored).unwrap();
        zip.write_all(&[1, 2, 3, 4]).unwrap();
        let mut bytes = zip.finish().unwrap().into_inner();
        let read = |bytes: &[u8]| read_entry(&mut zip::ZipArchive::new(Cursor::new(bytes.to_vec())).unwrap(), "archive/data/0");
        assert_eq!(read(&bytes).unwrap(), [1, 2, 3, 4]);
        // The uncompressed size, in the local header (offset 22) and the central directory's
        // (offset 24), made 4 GiB less 16 bytes: preallocating it would be the first harm.
        let claim = 0xFFFF_FFF0u32.to_le_bytes();
        for (signature, offset) in [([0x50, 0x4b, 0x03, 0x04], 22), ([0x50, 0x4b, 0x01, 0x02], 24)] {
            let at = bytes.windows(4).position(|w| w == signature).unwrap() + offset;
            bytes[at..at + 4].copy_from_slice(&claim);
        }
        let error = read(&bytes).unwrap_err().to_string();
        assert!(error.contains("claims 4294967280 bytes from 4 stored"), "{error}");
    }
}
