//! Builds modules from named weights: each module asks for its tensors by their open_clip
//! names, relative to where it sits in the tree (as candle's `VarBuilder` does), and gets
//! them checked against the shape the config implies. Weights load as constants: the
//! product's gradients are with respect to pixels, never weights.

use std::cell::RefCell;
use std::rc::Rc;

use burn::module::{Param, ParamId};
use burn::nn::{Embedding, EmbeddingConfig, LayerNorm, LayerNormConfig, Linear};
use burn::tensor::{Device, Tensor, TensorData};

use super::resnet::ConvBn;
use super::tensors::{HostTensor, TensorMap};
use crate::{Error, Result};

/// Where weights come from: a source yields each tensor, by full open_clip name, once.
/// `shape` is what the model expects; sources that store shapes are checked against it.
pub trait WeightSource {
    fn take(&mut self, name: &str, shape: &[usize]) -> Result<HostTensor>;
}

/// Which open_clip tensor a parameter came from, and how: `transposed` (PyTorch's
/// `[out, in]` as burn's `[in, out]`), then reshaped from `shape`. Recorded while loading a
/// trainable model, so that training can write its weights back under open_clip's names.
#[derive(Debug, Clone)]
pub struct ParamOrigin {
    pub id: ParamId,
    pub name: String,
    pub transposed: bool,
    pub shape: Vec<usize>,
}

/// What a trainable model was built from: each parameter's origin, and the open_clip
/// tensors that no parameter holds but an export must write (a folded batch norm's, which
/// export as the identity).
#[derive(Debug, Default)]
pub struct Origins {
    pub params: Vec<ParamOrigin>,
    pub constants: TensorMap,
}

/// PyTorch's `BatchNorm2d` epsilon, which open_clip's ModifiedResNet keeps.
pub const BATCH_NORM_EPS: f64 = 1e-5;

pub struct Loader<'a> {
    source: &'a mut dyn WeightSource,
    device: &'a Device,
    prefix: String,
    /// Set for training: parameters require gradients and their origins are recorded.
    origins: Option<Rc<RefCell<Origins>>>,
}

impl<'a> Loader<'a> {
    /// Weights as constants: the product's gradients are with respect to pixels only.
    pub fn new(source: &'a mut dyn WeightSource, device: &'a Device) -> Self {
        Self { source, device, prefix: String::new(), origins: None }
    }

    /// Weights to train: they require gradients, and `origins` learns where each came from.
    pub fn trainable(source: &'a mut dyn WeightSource, device: &'a Device, origins: Rc<RefCell<Origins>>) -> Self {
        Self { source, device, prefix: String::new(), origins: Some(origins) }
    }

    /// The loader for a child module (`at("ln_1")` under `visual.` is `visual.ln_1.`).
    pub fn at(&mut self, name: &str) -> Loader<'_> {
        Loader {
            source: &mut *self.source,
            device: self.device,
            prefix: format!("{}{name}.", self.prefix),
            origins: self.origins.clone(),
        }
    }

    pub fn device(&self) -> &Device {
        self.device
    }

    /// A tensor with the given shape, on the host.
    pub fn host(&mut self, name: &str, shape: &[usize]) -> Result<HostTensor> {
        let full = format!("{}{name}", self.prefix);
        let tensor = self.source.take(&full, shape)?;
        if tensor.shape != shape {
            return Err(Error::file(format!(
                "'{full}' has shape {:?} where the model config implies {shape:?}",
                tensor.shape
            )));
        }
        if let Some(bad) = tensor.data.iter().position(|v| !v.is_finite()) {
            return Err(Error::file(format!("'{full}' holds a non-finite value at element {bad}")));
        }
        Ok(tensor)
    }

    pub fn param<const D: usize>(&mut self, name: &str, shape: [usize; D]) -> Result<Param<Tensor<D>>> {
        let tensor = self.host(name, &shape)?;
        Ok(self.upload(name, tensor, false, &shape))
    }

    /// Puts a tensor on the device as a parameter. `name`, `transposed` and `shape` say how
    /// it relates to the open_clip tensor it came from.
    pub fn upload<const D: usize>(&self, name: &str, tensor: HostTensor, transposed: bool, shape: &[usize]) -> Param<Tensor<D>> {
        let data = TensorData::new(tensor.data, tensor.shape);
        let param = Param::from_data(data, self.device).set_require_grad(self.origins.is_some());
        if let Some(origins) = &self.origins {
            origins.borrow_mut().params.push(ParamOrigin {
                id: param.id,
                name: format!("{}{name}", self.prefix),
                transposed,
                shape: shape.to_vec(),
            });
        }
        param
    }

    /// PyTorch's `nn.Linear` (`weight` `[out, in]`, `bias` `[out]`) as burn's (`[in, out]`).
    pub fn linear(&mut self, d_in: usize, d_out: usize) -> Result<Linear> {
        self.linear_named("weight", "bias", d_in, d_out)
    }

    pub fn linear_named(&mut self, weight: &str, bias: &str, d_in: usize, d_out: usize) -> Result<Linear> {
        let matrix = self.host(weight, &[d_out, d_in])?.transposed();
        Ok(Linear { weight: self.upload(weight, matrix, true, &[d_out, d_in]), bias: Some(self.param(bias, [d_out])?) })
    }

    /// A matrix used as `x @ matrix` (open_clip's `proj`, `text_projection`), bias-free.
    pub fn projection(&mut self, name: &str, d_in: usize, d_out: usize) -> Result<Linear> {
        let weight = self.host(name, &[d_in, d_out])?;
        Ok(Linear { weight: self.upload(name, weight, false, &[d_in, d_out]), bias: None })
    }

    /// A bias-free convolution `conv` (`shape` `[out, in, kh, kw]`) and the batch norm `bn`
    /// after it, in inference form (running statistics), folded into one convolution:
    /// weights times `gamma / sqrt(var + eps)` per output channel, bias `beta - mean` times
    /// that. A trained fold exports as the convolution and an identity batch norm.
    pub fn conv_bn(&mut self, conv: &str, bn: &str, shape: [usize; 4], stride: usize, padding: usize) -> Result<ConvBn> {
        let weight_name = format!("{conv}.weight");
        let mut weight = self.host(&weight_name, &shape)?;
        let out = shape[0];
        let mut norm = self.at(bn);
        let [gamma, beta, mean, var] = ["weight", "bias", "running_mean", "running_var"].map(|n| norm.host(n, &[out]));
        let (gamma, beta, mean, var) = (gamma?, beta?, mean?, var?);
        if let Some(bad) = var.data.iter().position(|v| *v < 0.0) {
            return Err(Error::file(format!("'{}{bn}.running_var' is negative at element {bad}", self.prefix)));
        }
        let mut bias = vec![0.0f32; out];
        for (o, row) in weight.data.chunks_mut(shape[1] * shape[2] * shape[3]).enumerate() {
            let scale = gamma.data[o] as f64 / (var.data[o] as f64 + BATCH_NORM_EPS).sqrt();
            row.iter_mut().for_each(|v| *v = (*v as f64 * scale) as f32);
            bias[o] = (beta.data[o] as f64 - mean.data[o] as f64 * scale) as f32;
        }
        let bias = norm.upload("bias", HostTensor::new(vec![out], bias), false, &[out]);
        norm.constants([
            ("weight", 1.0),
            ("running_mean", 0.0),
            ("running_var", (1.0 - BATCH_NORM_EPS) as f32),
        ]
        .map(|(name, value)| (name, HostTensor::new(vec![out], vec![value; out]))));
        let weight = self.upload(&weight_name, weight, false, &shape);
        Ok(ConvBn::new(weight, bias, stride, padding))
    }

    /// Records tensors an export writes beside the parameters (training only).
    fn constants<const N: usize>(&self, tensors: [(&str, HostTensor); N]) {
        if let Some(origins) = &self.origins {
            let mut origins = origins.borrow_mut();
            for (name, tensor) in tensors {
                origins.constants.insert(format!("{}{name}", self.prefix), tensor);
            }
        }
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
