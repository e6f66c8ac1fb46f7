//! Builds modules from named weights: each module asks for its tensors by their open_clip
//! names, relative to where it sits in the tree (as candle's `VarBuilder` does), and gets
//! them checked against the shape the config implies. Weights load as constants: the
//! product's gradients are with respect to pixels, never weights.

use burn::module::Param;
use burn::nn::{Embedding, EmbeddingConfig, LayerNorm, LayerNormConfig, Linear};
use burn::tensor::{Device, Tensor, TensorData};

use crate::weights::tensors::HostTensor;
use crate::{Error, Result};

/// Where weights come from: a source yields each tensor, by full open_clip name, once.
/// `shape` is what the model expects; sources that store shapes are checked against it.
pub trait WeightSource {
    fn take(&mut self, name: &str, shape: &[usize]) -> Result<HostTensor>;
}

pub struct Loader<'a> {
    source: &'a mut dyn WeightSource,
    device: &'a Device,
    prefix: String,
}

impl<'a> Loader<'a> {
    pub fn new(source: &'a mut dyn WeightSource, device: &'a Device) -> Self {
        Self { source, device, prefix: String::new() }
    }

    /// The loader for a child module (`at("ln_1")` under `visual.` is `visual.ln_1.`).
    pub fn at(&mut self, name: &str) -> Loader<'_> {
        Loader { source: &mut *self.source, device: self.device, prefix: format!("{}{name}.", self.prefix) }
    }

    pub fn device(&self) -> &Device {
        self.device
    }

    /// A tensor with the given shape, on the host.
    pub fn host(&mut self, name: &str, shape: &[usize]) -> Result<HostTensor> {
        let full = format!("{}{name}", self.prefix);
        let tensor = self.source.take(&full, shape)?;
        if tensor.shape != shape {
            return Err(Error::Invalid(format!(
                "weights: '{full}' has shape {:?} where the model config implies {shape:?}",
                tensor.shape
            )));
        }
        if let Some(bad) = tensor.data.iter().position(|v| !v.is_finite()) {
            return Err(Error::Invalid(format!("weights: '{full}' holds a non-finite value at element {bad}")));
        }
        Ok(tensor)
    }

    pub fn param<const D: usize>(&mut self, name: &str, shape: [usize; D]) -> Result<Param<Tensor<D>>> {
        let tensor = self.host(name, &shape)?;
        Ok(self.upload(tensor))
    }

    pub fn upload<const D: usize>(&self, tensor: HostTensor) -> Param<Tensor<D>> {
        let data = TensorData::new(tensor.data, tensor.shape);
        Param::from_data(data, self.device).set_require_grad(false)
    }

    /// PyTorch's `nn.Linear` (`weight` `[out, in]`, `bias` `[out]`) as burn's (`[in, out]`).
    pub fn linear(&mut self, d_in: usize, d_out: usize) -> Result<Linear> {
        self.linear_named("weight", "bias", d_in, d_out)
    }

    pub fn linear_named(&mut self, weight: &str, bias: &str, d_in: usize, d_out: usize) -> Result<Linear> {
        let weight = self.host(weight, &[d_out, d_in])?.transposed();
        Ok(Linear { weight: self.upload(weight), bias: Some(self.param(bias, [d_out])?) })
    }

    /// A matrix used as `x @ matrix` (open_clip's `proj`, `text_projection`), bias-free.
    pub fn projection(&mut self, name: &str, d_in: usize, d_out: usize) -> Result<Linear> {
        let weight = self.host(name, &[d_in, d_out])?;
        Ok(Linear { weight: self.upload(weight), bias: None })
    }

    pub fn layer_norm(&mut self, width: usize) -> Result<LayerNorm> {
        let mut norm = LayerNormConfig::new(width).init(self.device);
        norm.gamma = self.param("weight", [width])?;
        norm.beta = Some(self.param("bias", [width])?);
        Ok(norm)
    }

    pub fn embedding(&mut self, rows: usize, width: usize) -> Result<Embedding> {
        let mut embedding = EmbeddingConfig::new(rows, width).init(self.device);
        embedding.weight = self.param("weight", [rows, width])?;
        Ok(embedding)
    }
}
