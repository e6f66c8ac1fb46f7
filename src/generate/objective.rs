//! The objective: how far each view's embedding is from the prompts (1 - cosine, weighted),
//! plus how close it is to the negative prompts; and the score a person reads, the clean
//! canvas's cosine to the prompts.

use burn::tensor::{Tensor, TensorData};

use super::settings::Prompt;
use crate::engine::Model;
use crate::Result;

pub struct Objective {
    /// Unit text embeddings `[prompts, embed]` and their weights (summing to 1), `[prompts, 1]`.
    positives: Tensor<2>,
    positive_weights: Tensor<2>,
    negatives: Option<(Tensor<2>, Tensor<2>)>,
}

impl Objective {
    pub fn new(model: &Model, prompts: &[Prompt], negatives: &[Prompt]) -> Result<Self> {
        let embed = |prompts: &[Prompt], normalise_weights: bool| -> Result<(Tensor<2>, Tensor<2>)> {
            let sequences = prompts.iter().map(|p| model.tokenize(&p.text).map(|t| t.ids)).collect::<Result<Vec<_>>>()?;
            let embeddings = unit(model.clip.encode_text(&sequences)?.detach());
            let total: f32 = if normalise_weights { prompts.iter().map(|p| p.weight).sum() } else { 1.0 };
            let weights: Vec<f32> = prompts.iter().map(|p| p.weight / total).collect();
            let weights = Tensor::from_data(TensorData::new(weights, [prompts.len(), 1]), &embeddings.device());
            Ok((embeddings, weights))
        };
        let (positives, positive_weights) = embed(prompts, true)?;
        let negatives = if negatives.is_empty() { None } else { Some(embed(negatives, false)?) };
        Ok(Self { positives, positive_weights, negatives })
    }

    /// The loss of each view, `[views]`, from image embeddings `[views, embed]`.
    pub fn per_view(&self, image_embeddings: Tensor<2>) -> Tensor<1> {
        let images = unit(image_embeddings);
        let cosines = images.clone().matmul(self.positives.clone().transpose()); // [views, prompts]
        let mut loss = (cosines.neg() + 1.0).matmul(self.positive_weights.clone());
        if let Some((negatives, weights)) = &self.negatives {
            loss = loss + images.matmul(negatives.clone().transpose()).matmul(weights.clone());
        }
        loss.squeeze_dim(1)
    }

    /// The weighted cosine of each image to the prompts, `[images]`.
    pub fn score(&self, image_embeddings: Tensor<2>) -> Tensor<1> {
        unit(image_embeddings)
            .matmul(self.positives.clone().transpose())
            .matmul(self.positive_weights.clone())
            .squeeze_dim(1)
    }
}

/// Rows scaled to unit length.
fn unit(x: Tensor<2>) -> Tensor<2> {
    let norm = x.clone().square().sum_dim(1).sqrt().clamp_min(1e-12);
    x / norm
}
