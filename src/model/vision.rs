//! open_clip's `VisionTransformer`: the image is cut into patches, each projected to a token
//! (open_clip's `conv1`, a convolution whose stride is its kernel, which is exactly a matmul
//! over flattened patches); a class token and positional embeddings are added; the blocks
//! run; the class token, normalised and projected, is the image embedding.

use burn::module::{Module, Param};
use burn::nn::{LayerNorm, Linear};
use burn::tensor::Tensor;

use super::config::{ClipConfig, VisionTransformerConfig};
use super::loader::Loader;
use super::transformer::ResidualAttentionBlock;
use crate::Result;

#[derive(Module, Debug)]
pub struct VisionTransformer {
    patch_embedding: Linear,
    class_embedding: Param<Tensor<1>>,
    positional_embedding: Param<Tensor<2>>,
    ln_pre: LayerNorm,
    blocks: Vec<ResidualAttentionBlock>,
    ln_post: LayerNorm,
    proj: Linear,
    patch_size: usize,
}

impl VisionTransformer {
    pub fn load(w: &mut Loader, v: &VisionTransformerConfig, config: &ClipConfig) -> Result<Self> {
        let p = v.patch_size;
        let patch_len = 3 * p * p;
        // conv1.weight [width, 3, p, p] read row by row is [width, 3*p*p] in (channel, y, x)
        // order, the order `patches` flattens each patch in.
        let conv = w.host("conv1.weight", &[v.width, 3, p, p])?;
        let flat = super::tensors::HostTensor::new(vec![v.width, patch_len], conv.data);
        let patch_embedding = Linear { weight: w.upload("conv1.weight", flat.transposed(), true, &[v.width, 3, p, p]), bias: None };
        let tokens = v.grid() * v.grid() + 1;
        let mut blocks = Vec::with_capacity(v.layers);
        for i in 0..v.layers {
            let mut at = w.at(&format!("transformer.resblocks.{i}"));
            blocks.push(ResidualAttentionBlock::load(&mut at, v.width, v.heads, v.mlp_width, config.quick_gelu)?);
        }
        Ok(Self {
            patch_embedding,
            class_embedding: w.param("class_embedding", [v.width])?,
            positional_embedding: w.param("positional_embedding", [tokens, v.width])?,
            ln_pre: w.at("ln_pre").layer_norm(v.width)?,
            blocks,
            ln_post: w.at("ln_post").layer_norm(v.width)?,
            proj: w.projection("proj", v.width, config.embed_dim)?,
            patch_size: p,
        })
    }

    /// `pixels`: normalised images `[batch, 3, size, size]`; returns `[batch, embed_dim]`.
    pub fn forward(&self, pixels: Tensor<4>) -> Tensor<2> {
        let [batch, _, size, _] = pixels.dims();
        let x = self.patch_embedding.forward(patches(pixels, self.patch_size));
        let width = x.dims()[2];
        let class = self.class_embedding.val().reshape([1, 1, width]).expand([batch, 1, width]);
        let x = Tensor::cat(vec![class, x], 1) + self.positional_embedding.val().unsqueeze();
        debug_assert_eq!(x.dims()[1], (size / self.patch_size).pow(2) + 1);
        let mut x = self.ln_pre.forward(x);
        for block in &self.blocks {
            x = block.forward(x, false);
        }
        let class_token = x.narrow(1, 0, 1).squeeze_dim::<2>(1);
        self.proj.forward(self.ln_post.forward(class_token))
    }
}

/// `[batch, 3, g*p, g*p]` -> `[batch, g*g, 3*p*p]`: patches in row-major order, each
/// flattened as (channel, y, x).
fn patches(pixels: Tensor<4>, p: usize) -> Tensor<3> {
    let [batch, channels, size, _] = pixels.dims();
    let g = size / p;
    pixels
        .reshape([batch, channels, g, p, g, p])
        .permute([0, 2, 4, 1, 3, 5])
        .reshape([batch, g * g, channels * p * p])
}
