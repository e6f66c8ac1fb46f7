//! open_clip's text tower: token and positional embeddings, causal blocks, a final norm,
//! and the end-of-text token's state, projected, as the text embedding.

use burn::module::{Module, Param};
use burn::nn::{Embedding, LayerNorm, Linear};
use burn::tensor::{Int, Tensor, TensorData};

use super::config::ClipConfig;
use super::loader::Loader;
use super::transformer::ResidualAttentionBlock;
use crate::Result;

#[derive(Module, Debug)]
pub struct TextTransformer {
    token_embedding: Embedding,
    positional_embedding: Param<Tensor<2>>,
    blocks: Vec<ResidualAttentionBlock>,
    ln_final: LayerNorm,
    text_projection: Linear,
}

impl TextTransformer {
    pub fn load(w: &mut Loader, config: &ClipConfig) -> Result<Self> {
        let t = &config.text;
        let mut blocks = Vec::with_capacity(t.layers);
        for i in 0..t.layers {
            let mut at = w.at(&format!("transformer.resblocks.{i}"));
            blocks.push(ResidualAttentionBlock::load(&mut at, t.width, t.heads, t.mlp_width, config.quick_gelu)?);
        }
        Ok(Self {
            token_embedding: w.at("token_embedding").embedding(t.vocab_size, t.width)?,
            positional_embedding: w.param("positional_embedding", [t.context_length, t.width])?,
            blocks,
            ln_final: w.at("ln_final").layer_norm(t.width)?,
            text_projection: w.projection("text_projection", t.width, config.embed_dim)?,
        })
    }

    /// Embeds token sequences that each end with the end-of-text token (open_clip pools at
    /// the highest id, which is that token). Attention is causal, so nothing after it can
    /// change its state: sequences are cut there rather than padded to the full context.
    pub fn forward(&self, sequences: &[Vec<u32>]) -> Tensor<2> {
        let device = self.positional_embedding.device();
        let batch = sequences.len();
        let length = sequences.iter().map(Vec::len).max().unwrap_or(1);
        let mut ids = vec![0i32; batch * length];
        for (row, sequence) in ids.chunks_mut(length).zip(sequences) {
            for (slot, &id) in row.iter_mut().zip(sequence) {
                *slot = id as i32;
            }
        }
        let ids = Tensor::<2, Int>::from_data(TensorData::new(ids, [batch, length]), &device);
        let positions = self.positional_embedding.val().narrow(0, 0, length);
        let mut x = self.token_embedding.forward(ids) + positions.unsqueeze();
        for block in &self.blocks {
            x = block.forward(x, true);
        }
        let x = self.ln_final.forward(x);
        let width = x.dims()[2];
        let ends: Vec<i32> = sequences
            .iter()
            .enumerate()
            .map(|(b, s)| (b * length + s.len() - 1) as i32)
            .collect();
        let ends = Tensor::<1, Int>::from_data(TensorData::new(ends, [batch]), &device);
        let pooled = x.reshape([batch * length, width]).select(0, ends);
        self.text_projection.forward(pooled)
    }
}
