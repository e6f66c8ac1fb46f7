//! open_clip's `ModifiedResNet` (CLIP's RN50 family): a stem of three 3 x 3 convolutions
//! (the first with stride 2) and a 2 x 2 average pool; four stages of Bottleneck blocks
//! whose stride is an average pool before the third convolution (and before the shortcut's
//! 1 x 1 convolution), not a strided convolution; then attention pooling, where the mean of
//! the last stage's positions, with a positional embedding of its own, attends to them all.
//!
//! Batch norm is read in its inference form and folded into the convolution before it at
//! load (`Loader::conv_bn`): the same function, one operation fewer per layer.

use burn::module::{Module, Param};
use burn::nn::Linear;
use burn::tensor::Tensor;
use burn::tensor::activation::relu;
use burn::tensor::module::{attention, avg_pool2d, conv2d};
use burn::tensor::ops::{AttentionModuleOptions, AvgPoolOptions, ConvOptions};

use super::config::{ClipConfig, ResNetConfig};
use super::loader::Loader;
use crate::Result;

/// A convolution without bias followed by batch norm, folded: `conv(x) * scale + shift`
/// as one convolution with a bias.
#[derive(Module, Debug)]
pub struct ConvBn {
    weight: Param<Tensor<4>>,
    bias: Param<Tensor<1>>,
    stride: usize,
    padding: usize,
}

impl ConvBn {
    pub fn new(weight: Param<Tensor<4>>, bias: Param<Tensor<1>>, stride: usize, padding: usize) -> Self {
        Self { weight, bias, stride, padding }
    }

    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let options = ConvOptions::new([self.stride; 2], [self.padding; 2], [1, 1], 1);
        conv2d(x, self.weight.val(), Some(self.bias.val()), options)
    }
}

/// PyTorch's `nn.AvgPool2d(k)`: k x k windows, stride k, no padding, floor.
fn avg_pool(x: Tensor<4>, k: usize) -> Tensor<4> {
    if k == 1 { x } else { avg_pool2d(x, AvgPoolOptions::new([k, k])) }
}

#[derive(Module, Debug)]
pub struct Bottleneck {
    conv1: ConvBn,
    conv2: ConvBn,
    conv3: ConvBn,
    /// The shortcut's pool and 1 x 1 convolution, where the block changes stride or width.
    downsample: Option<ConvBn>,
    stride: usize,
}

/// Channels out of a block: four times its planes.
const EXPANSION: usize = 4;

impl Bottleneck {
    fn load(w: &mut Loader, inplanes: usize, planes: usize, stride: usize) -> Result<Self> {
        let out = planes * EXPANSION;
        let downsample = if stride > 1 || inplanes != out {
            Some(w.at("downsample").conv_bn("0", "1", [out, inplanes, 1, 1], 1, 0)?)
        } else {
            None
        };
        Ok(Self {
            conv1: w.conv_bn("conv1", "bn1", [planes, inplanes, 1, 1], 1, 0)?,
            conv2: w.conv_bn("conv2", "bn2", [planes, planes, 3, 3], 1, 1)?,
            conv3: w.conv_bn("conv3", "bn3", [out, planes, 1, 1], 1, 0)?,
            downsample,
            stride,
        })
    }

    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let out = relu(self.conv1.forward(x.clone()));
        let out = relu(self.conv2.forward(out));
        let out = self.conv3.forward(avg_pool(out, self.stride));
        let identity = match &self.downsample {
            Some(conv) => conv.forward(avg_pool(x, self.stride)),
            None => x,
        };
        relu(out + identity)
    }
}

/// `AttentionPool2d`: the positions' mean as the one query, every position (and the mean)
/// as keys and values, multi-head attention with its own q, k, v and output projections.
#[derive(Module, Debug)]
pub struct AttentionPool {
    positional_embedding: Param<Tensor<2>>,
    q_proj: Linear,
    k_proj: Linear,
    v_proj: Linear,
    c_proj: Linear,
    heads: usize,
}

impl AttentionPool {
    fn load(w: &mut Loader, r: &ResNetConfig, embed_dim: usize) -> Result<Self> {
        let width = r.features();
        Ok(Self {
            positional_embedding: w.param("positional_embedding", [r.grid() * r.grid() + 1, width])?,
            q_proj: w.at("q_proj").linear(width, width)?,
            k_proj: w.at("k_proj").linear(width, width)?,
            v_proj: w.at("v_proj").linear(width, width)?,
            c_proj: w.at("c_proj").linear(width, embed_dim)?,
            heads: r.heads,
        })
    }

    /// `[batch, width, g, g]` -> `[batch, embed_dim]`. open_clip computes every position's
    /// output and keeps the first (the mean's); only that query is computed here.
    fn forward(&self, x: Tensor<4>) -> Tensor<2> {
        let [batch, width, h, w] = x.dims();
        let tokens = x.reshape([batch, width, h * w]).swap_dims(1, 2);
        let mean = tokens.clone().mean_dim(1);
        let x = Tensor::cat(vec![mean, tokens], 1) + self.positional_embedding.val().unsqueeze();
        let (count, head_dim) = (h * w + 1, width / self.heads);
        let split = |t: Tensor<3>, length: usize| t.reshape([batch, length, self.heads, head_dim]).swap_dims(1, 2);
        let query = split(self.q_proj.forward(x.clone().narrow(1, 0, 1)), 1);
        let key = split(self.k_proj.forward(x.clone()), count);
        let value = split(self.v_proj.forward(x), count);
        let options = AttentionModuleOptions { scale: None, softcap: None, is_causal: false };
        let pooled = attention(query, key, value, None, None, options).swap_dims(1, 2).reshape([batch, width]);
        self.c_proj.forward(pooled)
    }
}

#[derive(Module, Debug)]
pub struct ModifiedResNet {
    conv1: ConvBn,
    conv2: ConvBn,
    conv3: ConvBn,
    stages: Vec<Vec<Bottleneck>>,
    attnpool: AttentionPool,
}

impl ModifiedResNet {
    pub fn load(w: &mut Loader, r: &ResNetConfig, config: &ClipConfig) -> Result<Self> {
        let (half, width) = (r.width / 2, r.width);
        let conv1 = w.conv_bn("conv1", "bn1", [half, 3, 3, 3], 2, 1)?;
        let conv2 = w.conv_bn("conv2", "bn2", [half, half, 3, 3], 1, 1)?;
        let conv3 = w.conv_bn("conv3", "bn3", [width, half, 3, 3], 1, 1)?;
        let mut inplanes = width;
        let mut stages = Vec::with_capacity(r.layers.len());
        for (i, &blocks) in r.layers.iter().enumerate() {
            let planes = width << i;
            let mut stage = Vec::with_capacity(blocks);
            for b in 0..blocks {
                // The first block of every stage after the first halves the grid.
                let stride = if i > 0 && b == 0 { 2 } else { 1 };
                stage.push(Bottleneck::load(&mut w.at(&format!("layer{}.{b}", i + 1)), inplanes, planes, stride)?);
                inplanes = planes * EXPANSION;
            }
            stages.push(stage);
        }
        let attnpool = AttentionPool::load(&mut w.at("attnpool"), r, config.embed_dim)?;
        Ok(Self { conv1, conv2, conv3, stages, attnpool })
    }

    /// `pixels`: normalised images `[batch, 3, size, size]`; returns `[batch, embed_dim]`.
    pub fn forward(&self, pixels: Tensor<4>) -> Tensor<2> {
        let x = relu(self.conv1.forward(pixels));
        let x = relu(self.conv2.forward(x));
        let mut x = avg_pool(relu(self.conv3.forward(x)), 2);
        for block in self.stages.iter().flatten() {
            x = block.forward(x);
        }
        self.attnpool.forward(x)
    }
}
