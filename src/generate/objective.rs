//! The objective: how far each view's embedding is from the prompts (1 - cosine, weighted),
//! plus how close it is to the negative prompts, or, under contrast, how far each prompt is
//! from winning against the negatives (CLIP's cross-entropy); and the score a person reads,
//! the clean canvas's cosine to the prompts.

use burn::tensor::{Tensor, TensorData};

use serde::{Deserialize, Serialize};

use super::settings::{Prompt, check_prompts, negative_prompts, non_negative, positive, positive_prompts};
use crate::engine::Model;
use crate::pixels::Pixels;
use crate::{Error, Result};

/// What is maximised: the terms of the loss and their weights.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
#[cfg_attr(cli, derive(clap::Args))]
pub struct ObjectiveSettings {
    /// What to paint. Repeat for several prompts; `TEXT::WEIGHT` weighs one (default 1).
    #[serde(deserialize_with = "positive_prompts")]
    #[cfg_attr(cli, arg(long))]
    pub prompt: Vec<Prompt>,
    /// What to steer away from (repeatable, `TEXT::WEIGHT`, default weight 0.3).
    #[serde(deserialize_with = "negative_prompts")]
    #[cfg_attr(cli, arg(long))]
    pub negative: Vec<Prompt>,
    /// Weight of the patch views' loss against the global views'.
    #[cfg_attr(cli, arg(long))]
    pub patch_weight: f32,
    /// Weight of the canvas's total variation in the loss (0: none, the paper's recipe): a
    /// prior for flat regions with sharp edges, against the pixel-level noise and scattered
    /// blobs that ascent paints where the model does not mind them.
    #[cfg_attr(cli, arg(long))]
    pub smoothness: f32,
    /// The negatives as rivals, as captions are in CLIP's training: each view's loss is the
    /// cross-entropy of each prompt against them, cosines times this logit scale, so only what
    /// tells the prompt from its rivals is painted (the negatives' weights are not used).
    /// None: the paper's cosine, with the negatives' cosines added at their weights.
    #[cfg_attr(cli, arg(long))]
    pub contrast: Option<f32>,
    /// Pictures to paint toward, each with its weight: their image embeddings (through the
    /// same model) join the prompts' as targets, weighed with them. Given as files
    /// (`--image-prompt PNG[::W]`, the page's image prompt), not by name.
    #[serde(skip)]
    #[cfg_attr(cli, arg(skip))]
    pub image_prompts: Vec<ImagePrompt>,
}

/// A picture the canvas is pulled toward, with its weight.
#[derive(Debug, Clone, PartialEq)]
pub struct ImagePrompt {
    pub picture: Pixels,
    pub weight: f32,
}

/// The paper's objective (with no prompt yet): the patch views weigh five times the global ones.
impl Default for ObjectiveSettings {
    fn default() -> Self {
        Self { prompt: Vec::new(), negative: Vec::new(), patch_weight: 5.0, smoothness: 0.0, contrast: None, image_prompts: Vec::new() }
    }
}

impl ObjectiveSettings {
    pub fn validate(&self) -> Result<()> {
        if self.prompt.is_empty() && self.image_prompts.is_empty() {
            return Err(Error::Invalid("a prompt is needed (a text, or an image prompt)".into()));
        }
        for (i, image) in self.image_prompts.iter().enumerate() {
            if !(image.weight.is_finite() && image.weight > 0.0) {
                return Err(Error::Invalid(format!("image prompt {} has weight {}; weights must be positive numbers", i + 1, image.weight)));
            }
        }
        check_prompts("prompt", &self.prompt)?;
        check_prompts("negative prompt", &self.negative)?;
        non_negative("the patch weight", self.patch_weight)?;
        non_negative("the smoothness", self.smoothness)?;
        if let Some(scale) = self.contrast {
            positive("the contrast's logit scale", scale)?;
            if self.negative.is_empty() {
                return Err(Error::Invalid("contrast needs negative prompts to rival the prompt".into()));
            }
        }
        Ok(())
    }
}

pub struct Objective {
    aim: Aim,
    negatives: Negatives,
}

/// What the canvases are painted toward.
enum Aim {
    /// Every canvas toward the same prompts: unit text embeddings `[prompts, embed]` and their
    /// weights (summing to 1), `[prompts, 1]`.
    Prompts(Tensor<2>, Tensor<2>),
    /// Each canvas toward its own unit embedding, a row of `[canvases, embed]`.
    EachCanvas(Tensor<2>),
}

/// What the negative prompts do to the loss (`Settings::contrast` chooses).
enum Negatives {
    None,
    /// Unit embeddings `[negatives, embed]`, each cosine added at its weight `[negatives, 1]`.
    Pushed(Tensor<2>, Tensor<2>),
    /// Unit embeddings `[negatives, embed]`, rivals in a cross-entropy at this logit scale.
    Rivals(Tensor<2>, f32),
}

impl Objective {
    pub fn new(model: &Model, settings: &ObjectiveSettings) -> Result<Self> {
        let (prompts, negatives, contrast) = (&settings.prompt, &settings.negative, settings.contrast);
        // The texts' embeddings (before normalisation), off the graph.
        let texts = |prompts: &[Prompt]| -> Result<Tensor<2>> {
            let sequences = prompts.iter().map(|p| model.tokenize(&p.text).map(|t| t.ids)).collect::<Result<Vec<_>>>()?;
            Ok(model.clip.encode_text(&sequences)?.detach())
        };
        // The negatives' unit embeddings and their weights, as written.
        let embed = |prompts: &[Prompt]| -> Result<(Tensor<2>, Tensor<2>)> {
            let embeddings = unit(texts(prompts)?);
            let weights: Vec<f32> = prompts.iter().map(|p| p.weight).collect();
            let weights = Tensor::from_data(TensorData::new(weights, [prompts.len(), 1]), &embeddings.device());
            Ok((embeddings, weights))
        };
        // The targets: the prompts' text embeddings, then the image prompts' image
        // embeddings, their weights normalised together.
        let mut targets = Vec::new();
        if !prompts.is_empty() {
            targets.push(texts(prompts)?);
        }
        if !settings.image_prompts.is_empty() {
            let size = model.image_size();
            let data: Vec<f32> = settings.image_prompts.iter().flat_map(|i| i.picture.resized(size).data).collect();
            let pictures = Tensor::<4>::from_data(TensorData::new(data, [settings.image_prompts.len(), 3, size, size]), model.device());
            targets.push(model.clip.encode_image(pictures)?.detach());
        }
        let positives = unit(Tensor::cat(targets, 0));
        let weights: Vec<f32> = prompts.iter().map(|p| p.weight).chain(settings.image_prompts.iter().map(|i| i.weight)).collect();
        let total: f32 = weights.iter().sum();
        let count = weights.len();
        let positive_weights = Tensor::from_data(TensorData::new(weights.into_iter().map(|w| w / total).collect(), [count, 1]), model.device());
        let negatives = match (negatives.is_empty(), contrast) {
            (true, _) => Negatives::None,
            (false, None) => {
                let (embeddings, weights) = embed(negatives)?;
                Negatives::Pushed(embeddings, weights)
            }
            (false, Some(scale)) => Negatives::Rivals(embed(negatives)?.0, scale),
        };
        Ok(Self { aim: Aim::Prompts(positives, positive_weights), negatives })
    }

    /// Each canvas toward its own embedding (rows of `targets`, `[canvases, embed]`, unit
    /// length), with no negatives: how the Shapes training paints a caption per picture.
    pub fn each_toward(targets: Tensor<2>) -> Self {
        Self { aim: Aim::EachCanvas(targets), negatives: Negatives::None }
    }

    /// The loss of each view, `[canvases, views]`, from image embeddings `[canvases * views,
    /// embed]` (each canvas's views together, in order).
    pub fn per_view(&self, image_embeddings: Tensor<2>, canvases: usize) -> Tensor<2> {
        let images = unit(image_embeddings);
        let views = images.dims()[0] / canvases;
        let loss = match &self.aim {
            Aim::EachCanvas(targets) => {
                let [_, width] = targets.dims();
                let targets = targets.clone().unsqueeze_dim::<3>(1).expand([canvases, views, width]).reshape([canvases * views, width]);
                (images * targets).sum_dim(1).neg() + 1.0
            }
            Aim::Prompts(positives, positive_weights) => {
                let cosines = images.clone().matmul(positives.clone().transpose()); // [views, prompts]
                let distance = |cosines: Tensor<2>| (cosines.neg() + 1.0).matmul(positive_weights.clone());
                match &self.negatives {
                    Negatives::None => distance(cosines),
                    Negatives::Pushed(negatives, weights) => {
                        distance(cosines) + images.matmul(negatives.clone().transpose()).matmul(weights.clone())
                    }
                    Negatives::Rivals(negatives, scale) => {
                        let rivals = images.matmul(negatives.clone().transpose()) * *scale; // [views, negatives]
                        rival_cross_entropy(cosines * *scale, rivals).matmul(positive_weights.clone())
                    }
                }
            }
        };
        loss.reshape([canvases, views])
    }

    /// The weighted cosine of each image to the prompts (or of each canvas to its own
    /// target), `[images]`.
    pub fn score(&self, image_embeddings: Tensor<2>) -> Tensor<1> {
        let images = unit(image_embeddings);
        match &self.aim {
            Aim::Prompts(positives, weights) => images.matmul(positives.clone().transpose()).matmul(weights.clone()).squeeze_dim(1),
            Aim::EachCanvas(targets) => (images * targets.clone()).sum_dim(1).squeeze_dim(1),
        }
    }
}

/// The canvas's total variation: the mean absolute difference between neighbouring pixels,
/// across and down, over channels (`[1]`). The anisotropic L1 form of Rudin, Osher and
/// Fatemi's prior, as Mahendran and Vedaldi used it to invert networks: it favours flat
/// regions and keeps edges sharp.
pub fn total_variation(pixels: Tensor<4>) -> Tensor<1> {
    let [_, _, h, w] = pixels.dims();
    let across = (pixels.clone().narrow(3, 1, w - 1) - pixels.clone().narrow(3, 0, w - 1)).abs().mean();
    let down = (pixels.clone().narrow(2, 1, h - 1) - pixels.narrow(2, 0, h - 1)).abs().mean();
    across + down
}

/// `[views, prompts]`: for each view and prompt, `-log softmax` of the prompt's logit among
/// itself and the view's rival logits (`[views, rivals]`). Shifted by each view's largest
/// logit, so a logit scale of 100 (OpenAI's CLIP) does not overflow `exp`.
fn rival_cross_entropy(prompts: Tensor<2>, rivals: Tensor<2>) -> Tensor<2> {
    let top = prompts.clone().max_dim(1).max_pair(rivals.clone().max_dim(1)); // [views, 1]
    let rivals = (rivals - top.clone()).exp().sum_dim(1); // [views, 1]
    let own = prompts - top; // [views, prompts]
    (own.clone().exp() + rivals).log() - own
}

/// Rows scaled to unit length (embeddings, before a cosine).
pub fn unit(x: Tensor<2>) -> Tensor<2> {
    let norm = x.clone().square().sum_dim(1).sqrt().clamp_min(1e-12);
    x / norm
}

#[cfg(test)]
mod tests {
    use burn::tensor::{Device, Tensor, TensorData};

    use super::{rival_cross_entropy, total_variation};

    fn canvas(size: usize, value: impl Fn(usize, usize, usize) -> f32) -> Tensor<4> {
        let data: Vec<f32> = (0..3 * size * size).map(|i| value(i / (size * size), i / size % size, i % size)).collect();
        Tensor::from_data(TensorData::new(data, [1, 3, size, size]), &Device::flex().autodiff())
    }

    fn read(t: Tensor<1>) -> f32 {
        t.into_data().try_to_vec_as::<f32>().unwrap()[0]
    }

    #[test]
    fn total_variation_is_zero_on_a_flat_canvas_and_counts_edges() {
        assert_eq!(read(total_variation(canvas(8, |c, _, _| 0.2 * c as f32))), 0.0);
        // A vertical edge of height 1 in every channel: 1 of the 7 differences across each
        // row, none down.
        let edge = total_variation(canvas(8, |_, _, x| f32::from(x >= 4)));
        assert!((read(edge) - 1.0 / 7.0).abs() < 1e-6);
        // A checkerboard of step 1: every difference is 1, across and down.
        let checks = total_variation(canvas(8, |_, y, x| ((x + y) % 2) as f32));
        assert!((read(checks) - 2.0).abs() < 1e-6);
    }

    fn logits(rows: &[&[f32]]) -> Tensor<2> {
        let data: Vec<f32> = rows.iter().flat_map(|r| r.iter().copied()).collect();
        Tensor::from_data(TensorData::new(data, [rows.len(), rows[0].len()]), &Device::flex().autodiff())
    }

    fn values(t: Tensor<2>) -> Vec<f32> {
        t.into_data().try_to_vec_as::<f32>().unwrap()
    }

    #[test]
    fn rival_cross_entropy_is_clip_s_loss_and_survives_openai_s_logit_scale() {
        // A prompt level with its three rivals: log 4. Far ahead of them: almost 0. Far
        // behind one: about the gap.
        let loss = values(rival_cross_entropy(logits(&[&[2.0], &[9.0], &[1.0]]), logits(&[&[2.0, 2.0, 2.0], &[0.0, 0.0, 0.0], &[6.0, 0.0, 0.0]])));
        assert!((loss[0] - 4f32.ln()).abs() < 1e-5, "{loss:?}");
        assert!(loss[1] < 1e-3 && (loss[2] - 5.0).abs() < 0.02, "{loss:?}");
        // Cosines near 1 at logit scale 100: exp alone would overflow f32.
        let loss = values(rival_cross_entropy(logits(&[&[95.0, 99.0]]), logits(&[&[99.0, 97.0]])));
        assert!(loss.iter().all(|l| l.is_finite()), "{loss:?}");
        assert!((loss[1] - (1.0 + 1.0 + (-2f32).exp()).ln()).abs() < 1e-4, "{loss:?}");
    }

    #[test]
    fn descending_the_rival_loss_raises_the_prompt_and_lowers_the_strongest_rival() {
        let (prompt, rivals) = (logits(&[&[1.0]]).require_grad(), logits(&[&[3.0, -2.0]]).require_grad());
        let grads = rival_cross_entropy(prompt.clone(), rivals.clone()).sum().backward();
        let (p, r) = (values(prompt.grad(&grads).unwrap()), values(rivals.grad(&grads).unwrap()));
        // The softmax: the prompt's gradient is its probability minus 1, each rival's its own.
        assert!(p[0] < -0.8 && r[0] > 0.8 && r[1] > 0.0 && r[1] < 0.01, "{p:?} {r:?}");
        assert!((p[0] + r[0] + r[1]).abs() < 1e-5, "{p:?} {r:?}");
    }

    #[test]
    fn descending_total_variation_flattens_a_speck() {
        let x = canvas(8, |_, y, x| f32::from(x == 3 && y == 3)).require_grad();
        let grads = total_variation(x.clone()).backward();
        let grad = x.grad(&grads).unwrap().into_data().try_to_vec_as::<f32>().unwrap();
        // The speck's own gradient points down, its neighbours' up.
        assert!(grad[3 * 8 + 3] > 0.0 && grad[3 * 8 + 2] < 0.0 && grad[2 * 8 + 3] < 0.0);
    }
}
