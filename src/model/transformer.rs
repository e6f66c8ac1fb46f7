//! open_clip's `ResidualAttentionBlock`: pre-norm multi-head self-attention and an MLP, each
//! added back to the residual stream. Both towers are stacks of these.

use burn::module::Module;
use burn::nn::{LayerNorm, Linear};
use burn::tensor::Tensor;
use burn::tensor::activation::{gelu, sigmoid};
use burn::tensor::module::attention;
use burn::tensor::ops::AttentionModuleOptions;

use super::loader::Loader;
use crate::Result;

#[derive(Module, Debug)]
pub struct ResidualAttentionBlock {
    ln_1: LayerNorm,
    attn: Attention,
    ln_2: LayerNorm,
    mlp: Mlp,
}

impl ResidualAttentionBlock {
    pub fn load(w: &mut Loader, width: usize, heads: usize, mlp_width: usize, quick_gelu: bool) -> Result<Self> {
        Ok(Self {
            ln_1: w.at("ln_1").layer_norm(width)?,
            attn: Attention::load(&mut w.at("attn"), width, heads)?,
            ln_2: w.at("ln_2").layer_norm(width)?,
            mlp: Mlp {
                c_fc: w.at("mlp.c_fc").linear(width, mlp_width)?,
                c_proj: w.at("mlp.c_proj").linear(mlp_width, width)?,
                quick_gelu,
            },
        })
    }

    /// `x` is `[batch, tokens, width]`; `causal` lets each token see only those before it.
    pub fn forward(&self, x: Tensor<3>, causal: bool) -> Tensor<3> {
        let x = x.clone() + self.attn.forward(self.ln_1.forward(x), causal);
        x.clone() + self.mlp.forward(self.ln_2.forward(x))
    }
}

/// `nn.MultiheadAttention` as open_clip uses it: one input projection for query, key and
/// value together (`in_proj_weight`), scaled dot-product attention per head, an output
/// projection.
#[derive(Module, Debug)]
pub struct Attention {
    in_proj: Linear,
    out_proj: Linear,
    heads: usize,
}

impl Attention {
    fn load(w: &mut Loader, width: usize, heads: usize) -> Result<Self> {
        Ok(Self {
            in_proj: w.linear_named("in_proj_weight", "in_proj_bias", width, 3 * width)?,
            out_proj: w.at("out_proj").linear(width, width)?,
            heads,
        })
    }

    fn forward(&self, x: Tensor<3>, causal: bool) -> Tensor<3> {
        let [batch, tokens, width] = x.dims();
        let head_dim = width / self.heads;
        // [batch, tokens, 3, heads, head_dim] -> three of [batch, heads, tokens, head_dim]
        let qkv = self
            .in_proj
            .forward(x)
            .reshape([batch, tokens, 3, self.heads, head_dim])
            .permute([2, 0, 3, 1, 4]);
        let part = |i: usize| qkv.clone().narrow(0, i, 1).squeeze_dim::<4>(0);
        let options = AttentionModuleOptions { scale: None, softcap: None, is_causal: causal };
        let context = attention(part(0), part(1), part(2), None, None, options);
        let context = context.swap_dims(1, 2).reshape([batch, tokens, width]);
        self.out_proj.forward(context)
    }
}

#[derive(Module, Debug)]
pub struct Mlp {
    c_fc: Linear,
    c_proj: Linear,
    quick_gelu: bool,
}

impl Mlp {
    fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        let h = self.c_fc.forward(x);
        let h = if self.quick_gelu { h.clone() * sigmoid(h * 1.702) } else { gelu(h) };
        self.c_proj.forward(h)
    }
}
