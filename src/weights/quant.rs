//! How a weight is stored in a model folder: f32, f16, or quantized to 8 or 4 bits with
//! per-row or per-block scales. Quantization is for the download; every tensor is expanded
//! back to f32 when a model loads, so gradients and numerics are those of the f32 model
//! up to the rounding below. docs/formats.md describes the bytes.

use half::f16;
use serde::{Deserialize, Serialize};

use super::tensors::HostTensor;
use crate::{Error, Result};

/// Elements sharing one scale in the 4-bit encoding.
pub const Q4_BLOCK: usize = 32;

/// The precision a model folder is converted at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Quantization {
    F32,
    F16,
    Q8,
    Q4,
}

impl std::str::FromStr for Quantization {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        match s {
            "f32" => Ok(Self::F32),
            "f16" => Ok(Self::F16),
            "q8" => Ok(Self::Q8),
            "q4" => Ok(Self::Q4),
            other => Err(Error::Invalid(format!("unknown quantization '{other}': use f32, f16, q8 or q4"))),
        }
    }
}

/// The encoding of one tensor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    F32,
    F16,
    /// i8 values, one f32 scale per row (per output channel of a linear layer).
    Q8,
    /// 4-bit values packed two to a byte, one f16 scale per block of 32 along a row.
    Q4,
}

impl Quantization {
    /// The encoding of tensor `name` at this setting. Vectors (biases, norms, the class
    /// embedding) stay f32 at every setting: they are a tiny part of the bytes and an error
    /// in them shifts every activation. At q4, only the big matrices of the blocks and the
    /// patch embedding go to 4 bits; the token and positional embeddings and the final
    /// projections keep 8, which costs little and keeps embeddings close to f32.
    pub fn encoding(self, name: &str, shape: &[usize]) -> Encoding {
        if shape.len() < 2 {
            return Encoding::F32;
        }
        match self {
            Quantization::F32 => Encoding::F32,
            Quantization::F16 => Encoding::F16,
            Quantization::Q8 => Encoding::Q8,
            Quantization::Q4 => {
                let block_matrix = name.contains(".resblocks.") && name.ends_with("weight");
                let patch = name == "visual.conv1.weight";
                // The ResNet's stages and attention pool hold nearly all of its weights; the
                // first filters of its stem (3 x 3 x 3 inputs, odd) keep 8 bits.
                let resnet = (name.starts_with("visual.layer") || name.starts_with("visual.attnpool.")) && name.ends_with("weight");
                let even_rows = rows_cols(shape).1 % 2 == 0;
                if (block_matrix || patch || resnet) && even_rows { Encoding::Q4 } else { Encoding::Q8 }
            }
        }
    }
}

/// A tensor as stored: its data bytes and, for quantized encodings, its scale bytes.
pub struct Encoded {
    pub dtype: safetensors::Dtype,
    pub shape: Vec<usize>,
    pub data: Vec<u8>,
    pub scales: Option<(safetensors::Dtype, Vec<usize>, Vec<u8>)>,
}

fn rows_cols(shape: &[usize]) -> (usize, usize) {
    let rows = shape[0];
    (rows, shape[1..].iter().product())
}

pub fn encode(tensor: &HostTensor, encoding: Encoding) -> Encoded {
    use safetensors::Dtype;
    match encoding {
        Encoding::F32 => Encoded {
            dtype: Dtype::F32,
            shape: tensor.shape.clone(),
            data: tensor.data.iter().flat_map(|v| v.to_le_bytes()).collect(),
            scales: None,
        },
        Encoding::F16 => Encoded {
            dtype: Dtype::F16,
            shape: tensor.shape.clone(),
            data: tensor.data.iter().flat_map(|v| f16::from_f32(*v).to_le_bytes()).collect(),
            scales: None,
        },
        Encoding::Q8 => {
            let (rows, cols) = rows_cols(&tensor.shape);
            let mut data = Vec::with_capacity(tensor.numel());
            let mut scales = Vec::with_capacity(rows * 4);
            for row in tensor.data.chunks(cols.max(1)).take(rows) {
                let max = row.iter().fold(0f32, |m, v| m.max(v.abs()));
                let scale = if max > 0.0 { max / 127.0 } else { 1.0 };
                data.extend(row.iter().map(|v| (v / scale).round().clamp(-127.0, 127.0) as i8 as u8));
                scales.extend(scale.to_le_bytes());
            }
            Encoded { dtype: Dtype::I8, shape: tensor.shape.clone(), data, scales: Some((Dtype::F32, vec![rows], scales)) }
        }
        Encoding::Q4 => {
            let (rows, cols) = rows_cols(&tensor.shape);
            let blocks = cols.div_ceil(Q4_BLOCK);
            let mut data = vec![0u8; rows * cols / 2];
            let mut scales = Vec::with_capacity(rows * blocks * 2);
            for (r, row) in tensor.data.chunks(cols).enumerate() {
                for (b, block) in row.chunks(Q4_BLOCK).enumerate() {
                    let max = block.iter().fold(0f32, |m, v| m.max(v.abs()));
                    // Round the scale to f16 first, so that quantizing uses the scale that
                    // decoding will.
                    let scale = f16::from_f32(if max > 0.0 { max / 7.0 } else { 1.0 });
                    scales.extend(scale.to_le_bytes());
                    let scale = scale.to_f32();
                    for (i, v) in block.iter().enumerate() {
                        let q = ((v / scale).round().clamp(-8.0, 7.0) as i32 + 8) as u8;
                        let at = r * cols + b * Q4_BLOCK + i;
                        data[at / 2] |= if at % 2 == 0 { q } else { q << 4 };
                    }
                }
            }
            // The last side is halved; where it is odd (a ResNet's 3 x 3 and 1 x 1 filters)
            // the tensor is stored flattened, `[out, in * kh * kw / 2]`, and takes its shape
            // back when the model asks for it.
            let shape = match tensor.shape.last() {
                Some(last) if last % 2 == 0 => {
                    let mut shape = tensor.shape.clone();
                    *shape.last_mut().unwrap() /= 2;
                    shape
                }
                _ => vec![rows, cols / 2],
            };
            Encoded { dtype: Dtype::U8, shape, data, scales: Some((Dtype::F16, vec![rows, blocks], scales)) }
        }
    }
}

/// Decodes a stored tensor back to f32. `scales` is the companion `{name}.scale` tensor.
pub fn decode(
    name: &str,
    data: &safetensors::tensor::TensorView,
    scales: Option<&safetensors::tensor::TensorView>,
) -> Result<HostTensor> {
    use safetensors::Dtype;
    let bad = |why: String| Error::file(format!("tensor '{name}': {why}"));
    let bytes = data.data();
    let shape = data.shape().to_vec();
    let need_scales = |dtype: Dtype, want: &[usize]| -> Result<Vec<f32>> {
        let s = scales.ok_or_else(|| bad("quantized but has no scales".into()))?;
        if s.dtype() != dtype || s.shape() != want {
            return Err(bad(format!("scales are {:?} {:?}, expected {dtype:?} {want:?}", s.dtype(), s.shape())));
        }
        Ok(match dtype {
            Dtype::F32 => s.data().chunks_exact(4).map(|b| f32::from_le_bytes(b.try_into().unwrap())).collect(),
            _ => s.data().chunks_exact(2).map(|b| f16::from_le_bytes(b.try_into().unwrap()).to_f32()).collect(),
        })
    };
    match data.dtype() {
        Dtype::F32 => Ok(HostTensor::new(shape, bytes.chunks_exact(4).map(|b| f32::from_le_bytes(b.try_into().unwrap())).collect())),
        Dtype::F16 => Ok(HostTensor::new(shape, bytes.chunks_exact(2).map(|b| f16::from_le_bytes(b.try_into().unwrap()).to_f32()).collect())),
        Dtype::I8 => {
            if shape.len() < 2 {
                return Err(bad("an 8-bit vector".into()));
            }
            let (rows, cols) = rows_cols(&shape);
            let scales = need_scales(Dtype::F32, &[rows])?;
            let values = bytes
                .iter()
                .enumerate()
                .map(|(i, &q)| q as i8 as f32 * scales[i / cols.max(1)])
                .collect();
            Ok(HostTensor::new(shape, values))
        }
        Dtype::U8 => {
            if shape.len() < 2 {
                return Err(bad("a 4-bit vector".into()));
            }
            let mut full = shape.clone();
            *full.last_mut().unwrap() *= 2;
            let (rows, cols) = rows_cols(&full);
            let blocks = cols.div_ceil(Q4_BLOCK);
            let scales = need_scales(Dtype::F16, &[rows, blocks])?;
            let values = (0..rows * cols)
                .map(|at| {
                    let byte = bytes[at / 2];
                    let q = if at % 2 == 0 { byte & 0x0f } else { byte >> 4 };
                    let (r, c) = (at / cols, at % cols);
                    (q as i32 - 8) as f32 * scales[r * blocks + c / Q4_BLOCK]
                })
                .collect();
            Ok(HostTensor::new(full, values))
        }
        other => Err(bad(format!("stored as {other:?}, which no encoding uses"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(encoding: Encoding) -> (HostTensor, HostTensor) {
        let shape = vec![3, 64];
        let data: Vec<f32> = (0..192).map(|i| ((i as f32) * 0.731).sin() * (1.0 + (i / 64) as f32)).collect();
        let tensor = HostTensor::new(shape, data);
        let encoded = encode(&tensor, encoding);
        let mut views = vec![("t".to_string(), safetensors::tensor::TensorView::new(encoded.dtype, encoded.shape.clone(), &encoded.data).unwrap())];
        if let Some((dtype, shape, bytes)) = &encoded.scales {
            views.push(("t.scale".into(), safetensors::tensor::TensorView::new(*dtype, shape.clone(), bytes).unwrap()));
        }
        let scales = views.get(1).map(|(_, v)| v);
        let decoded = decode("t", &views[0].1, scales).unwrap();
        (tensor, decoded)
    }

    fn max_error(a: &HostTensor, b: &HostTensor) -> f32 {
        a.data.iter().zip(&b.data).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
    }

    #[test]
    fn f32_is_exact() {
        let (a, b) = round_trip(Encoding::F32);
        assert_eq!(a, b);
    }

    #[test]
    fn q8_error_is_within_half_a_step() {
        let (a, b) = round_trip(Encoding::Q8);
        assert_eq!(a.shape, b.shape);
        // The largest row spans +-3, so a step is 3/127.
        assert!(max_error(&a, &b) <= 0.5 * 3.0 / 127.0 + 1e-6, "{}", max_error(&a, &b));
    }

    #[test]
    fn q4_error_is_within_half_a_step() {
        let (a, b) = round_trip(Encoding::Q4);
        assert_eq!(a.shape, b.shape);
        assert!(max_error(&a, &b) <= 0.5 * 3.0 / 7.0 * 1.001, "{}", max_error(&a, &b));
    }
}
