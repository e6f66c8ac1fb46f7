//! Bytes <-> weights. A model folder is what the browser downloads and the command line
//! loads: `manifest.json` (architecture, quantization, size and sha256 of each file, name,
//! licence), `weights.safetensors` and `tokenizer.json`. docs/formats.md has the details.

pub mod manifest;
pub mod pickle;
pub mod quant;
pub mod random;
/// Host tensors are the model's (`model::tensors`): what every reader here produces.
pub use crate::model::tensors;

#[cfg(not(target_family = "wasm"))]
pub mod blend;
#[cfg(not(target_family = "wasm"))]
pub mod convert;
#[cfg(not(target_family = "wasm"))]
pub mod folder;
#[cfg(not(target_family = "wasm"))]
pub mod torch;

use safetensors::SafeTensors;

pub use manifest::Manifest;
use tensors::HostTensor;

use crate::model::WeightSource;
use crate::{Error, Result};

/// A model folder's files as bytes (read from disk or downloaded), each checked against the
/// manifest's size and sha256 before anything reads it.
pub struct ModelFiles {
    pub manifest: Manifest,
    pub weights: Vec<u8>,
    pub tokenizer: Vec<u8>,
}

impl ModelFiles {
    pub fn new(manifest_json: &str, weights: Vec<u8>, tokenizer: Vec<u8>) -> Result<Self> {
        Self::verified(Manifest::parse(manifest_json)?, weights, tokenizer)
    }

    /// The files of an already parsed manifest, checked against it.
    pub fn verified(manifest: Manifest, weights: Vec<u8>, tokenizer: Vec<u8>) -> Result<Self> {
        manifest.verify(manifest::WEIGHTS, &weights)?;
        manifest.verify(manifest::TOKENIZER, &tokenizer)?;
        Ok(Self { manifest, weights, tokenizer })
    }
}

/// The largest safetensors header read (its JSON table of tensors): a CLIP's is tens of
/// kilobytes; the format allows 100 MB, which parsing would hold as 1.9 GB.
pub const MAX_SAFETENSORS_HEADER: u64 = 8 << 20;

/// A safetensors file's table, its header's size checked against `MAX_SAFETENSORS_HEADER`
/// before it is parsed.
pub fn safetensors_file(bytes: &[u8]) -> Result<SafeTensors<'_>> {
    let header = bytes.get(..8).map(|b| u64::from_le_bytes(b.try_into().expect("8 bytes")));
    if let Some(header) = header.filter(|&h| h > MAX_SAFETENSORS_HEADER) {
        return Err(Error::file(format!("not a valid safetensors file: a header of {header} bytes, more than the {MAX_SAFETENSORS_HEADER} any model's needs")));
    }
    SafeTensors::deserialize(bytes).map_err(|e| Error::file(format!("not a valid safetensors file: {e}")))
}

/// The tensors of a `weights.safetensors`, decoded one at a time as the model asks for them,
/// so that loading never holds more than one expanded tensor beside the file's bytes.
pub struct StoredWeights<'a> {
    file: SafeTensors<'a>,
}

impl<'a> StoredWeights<'a> {
    pub fn parse(bytes: &'a [u8]) -> Result<Self> {
        Ok(Self { file: safetensors_file(bytes)? })
    }

    pub fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .file
            .names()
            .into_iter()
            .filter(|n| !n.ends_with(".scale"))
            .map(str::to_string)
            .collect();
        names.sort();
        names
    }
}

impl WeightSource for StoredWeights<'_> {
    fn take(&mut self, name: &str, shape: &[usize]) -> Result<HostTensor> {
        let data = self
            .file
            .tensor(name)
            .map_err(|_| Error::file(format!("the file has no tensor '{name}'")))?;
        let scales = self.file.tensor(&format!("{name}.scale")).ok();
        let mut tensor = quant::decode(name, &data, scales.as_ref())?;
        // A 4-bit convolution is stored flattened to `[out, in * kh * kw]` (docs/formats.md).
        let flattened = tensor.shape.len() == 2 && shape.len() > 2 && tensor.shape[0] == shape[0];
        if flattened && tensor.numel() == shape.iter().product::<usize>() {
            tensor.shape = shape.to_vec();
        }
        Ok(tensor)
    }
}

/// Every tensor a model of `config` takes from `source`, by open_clip name and in the shape
/// the model asks for: the model's own loading code, run once on the CPU, says which.
pub fn loaded_tensors(config: &crate::model::ClipConfig, source: &mut dyn WeightSource) -> Result<tensors::TensorMap> {
    struct Recording<'a> {
        source: &'a mut dyn WeightSource,
        tensors: tensors::TensorMap,
    }
    impl WeightSource for Recording<'_> {
        fn take(&mut self, name: &str, shape: &[usize]) -> Result<HostTensor> {
            let tensor = self.source.take(name, shape)?;
            self.tensors.insert(name.to_string(), tensor.clone());
            Ok(tensor)
        }
    }
    let mut recording = Recording { source, tensors: tensors::TensorMap::new() };
    crate::model::Clip::load(config, &mut recording, &burn::tensor::Device::flex())?;
    Ok(recording.tensors)
}

impl WeightSource for tensors::TensorMap {
    fn take(&mut self, name: &str, _shape: &[usize]) -> Result<HostTensor> {
        self.remove(name)
            .ok_or_else(|| Error::file(format!("the checkpoint has no tensor '{name}', which the model needs")))
    }
}
