//! What training minimises: CLIP's contrastive loss with every fitting caption a positive,
//! the adversarial steps' goal (TeCoA's captions or FARE's reference embeddings) and the
//! painted negatives' loss.
use burn::tensor::{Device, Tensor, TensorData};

use super::Drawn;
pub(super) use clipag::generate::objective::unit;
use clipag::{Error, Result};

/// What the robust twin's adversarial steps minimise, and their attack maximises.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Objective {
    /// TeCoA (Mao et al., "Understanding zero-shot adversarial robustness for large-scale
    /// models", 2023), the loss CLIPAG fine-tunes with: the contrastive loss between the
    /// adversarial pictures and the batch's captions.
    Tecoa,
    /// FARE (Schlarmann et al., "Robust CLIP", 2024): the adversarial picture's embedding
    /// pulled toward what the pre-trained model makes of the clean picture, the text tower
    /// untouched. It asks the model to keep what it knew rather than to re-learn it from the
    /// captions, which TeCoA's twins did not manage for shapes and places.
    Fare,
}

/// What an adversarial step's pictures are scored against.
pub(super) enum Goal {
    /// The batch's captions (unit embeddings, held fixed) and which fits which picture.
    Captions { texts: Tensor<2>, targets: Tensor<2> },
    /// The pre-trained model's unit embeddings of the clean pictures.
    Reference(Tensor<2>),
}

impl Goal {
    pub(super) fn loss(&self, images: Tensor<2>, temperature: f32) -> Tensor<1> {
        match self {
            Goal::Captions { texts, targets } => cross_entropy(unit(images).matmul(texts.clone().transpose()) / temperature, targets.clone()),
            Goal::Reference(reference) => (unit(images) - reference.clone()).square().sum_dim(1).mean(),
        }
    }

    /// The goal of the batch's first `count` pictures.
    pub(super) fn first(&self, count: usize) -> Goal {
        match self {
            Goal::Captions { texts, targets } => Goal::Captions { texts: texts.clone(), targets: targets.clone().narrow(0, 0, count) },
            Goal::Reference(reference) => Goal::Reference(reference.clone().narrow(0, 0, count)),
        }
    }
}

/// `targets[i][j]`: 1 where picture i fits caption j, each row normalised to sum to 1.
pub(super) fn fit_targets(drawn: &Drawn, device: &Device) -> Tensor<2> {
    let n = drawn.scenes.len();
    let mut data: Vec<f32> = drawn.fits().into_iter().map(f32::from).collect();
    for row in data.chunks_mut(n) {
        let total: f32 = row.iter().sum();
        row.iter_mut().for_each(|v| *v /= total);
    }
    Tensor::from_data(TensorData::new(data, [n, n]), device)
}

/// Soft-target cross-entropy over rows, averaged.
pub(super) fn cross_entropy(logits: Tensor<2>, targets: Tensor<2>) -> Tensor<1> {
    let log_probs = burn::tensor::activation::log_softmax(logits, 1);
    (log_probs * targets).sum_dim(1).neg().mean()
}

/// CLIP's symmetric contrastive loss, with every fitting caption (and picture) a positive.
pub(super) fn contrastive_loss(images: Tensor<2>, texts: Tensor<2>, targets: &Tensor<2>, temperature: f32) -> Tensor<1> {
    let logits = unit(images).matmul(unit(texts).transpose()) / temperature;
    // Text j's positives are the pictures that fit it: the column of fits, normalised.
    let fits = targets.clone().greater_elem(0.0).float();
    let by_text = fits.clone().transpose() / fits.transpose().sum_dim(1);
    (cross_entropy(logits.clone(), targets.clone()) + cross_entropy(logits.transpose(), by_text)) / 2.0
}

/// For each caption (row of `texts`), the cross-entropy of its picture against its
/// painting: low when the caption's cosine with its picture is well above that with the
/// picture the twin painted for it.
pub(super) fn painted_loss(pictures: Tensor<2>, paintings: Tensor<2>, texts: Tensor<2>, temperature: f32) -> Tensor<1> {
    let texts = unit(texts);
    let right = (unit(pictures) * texts.clone()).sum_dim(1);
    let painted = (unit(paintings) * texts).sum_dim(1);
    let logits = Tensor::cat(vec![right, painted], 1) / temperature;
    let [count, _] = logits.dims();
    let targets = Tensor::<2>::from_data(TensorData::new([1.0f32, 0.0].repeat(count), [count, 2]), &logits.device());
    cross_entropy(logits, targets)
}

/// A loss's value, read back from the device.
pub(super) fn scalar(loss: Tensor<1>) -> Result<f32> {
    Ok(loss.into_data().try_into_vec_as::<f32>().map_err(|e| Error::Internal(format!("reading a result back from the device failed: {e:?}")))?[0])
}
