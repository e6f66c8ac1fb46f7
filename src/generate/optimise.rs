//! The update: AdamW (or, as an option, a normalised gradient step) on the canvas
//! parameters after clipping the gradient's norm, then, for pixels, dynamic thresholding.
//!
//! AdamW is written out here rather than taken from burn's optimisers: burn's work on
//! modules, clip per parameter tensor and default to different constants (eps 1e-5), while
//! the paper's update is PyTorch's AdamW (betas 0.9/0.999, eps 1e-8, decoupled weight decay)
//! on one tensor, followed by a thresholding that rewrites that tensor. The few lines below
//! are that update, exactly.

use burn::tensor::Tensor;
use serde::{Deserialize, Serialize};

use super::settings::{non_negative, positive};
use crate::Result;

/// How a step moves the canvas parameters along the (clipped) gradient.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[cfg_attr(cli, derive(clap::ValueEnum))]
pub enum Optimiser {
    /// PyTorch's AdamW, as in the paper.
    #[default]
    #[serde(rename = "adamw")]
    #[cfg_attr(cli, value(name = "adamw"))]
    AdamW,
    /// The gradient scaled to a root mean square of the learning rate (L2 steepest ascent).
    NormalisedGradient,
}

/// The update each step makes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
#[cfg_attr(cli, derive(clap::Args))]
pub struct UpdateSettings {
    /// The optimiser's learning rate.
    #[cfg_attr(cli, arg(long))]
    pub lr: f32,
    /// Cosine decay of the learning rate to zero over the steps (off: constant, as the
    /// paper): a picture found early at the full rate is then refined in ever smaller steps,
    /// as ascent from the prompt's own render at a fifth of the rate kept it (docs/shapes-log.md).
    #[cfg_attr(cli, arg(long))]
    pub decay: bool,
    /// AdamW's decoupled weight decay.
    #[cfg_attr(cli, arg(long))]
    pub weight_decay: f32,
    /// The gradient's L2 norm is clipped to this before each step.
    #[cfg_attr(cli, arg(long))]
    pub max_grad_norm: f32,
    /// `adamw` (the paper's) or `normalised-gradient`.
    #[cfg_attr(cli, arg(long, value_enum))]
    pub optimiser: Optimiser,
}

/// The paper's learning rate.
pub const DEFAULT_LR: f32 = 0.0175;

/// The paper's update.
impl Default for UpdateSettings {
    fn default() -> Self {
        Self { lr: DEFAULT_LR, decay: false, weight_decay: 0.01, max_grad_norm: 0.001, optimiser: Optimiser::AdamW }
    }
}

impl UpdateSettings {
    /// The learning rate of step `step` (from 0) of `steps`.
    pub fn learning_rate_at(&self, step: usize, steps: usize) -> f32 {
        if !self.decay {
            return self.lr;
        }
        let progress = step as f32 / steps.max(1) as f32;
        self.lr * 0.5 * (1.0 + (std::f32::consts::PI * progress).cos())
    }

    pub fn validate(&self) -> Result<()> {
        positive("the learning rate", self.lr)?;
        positive("the gradient norm limit", self.max_grad_norm)?;
        non_negative("the weight decay", self.weight_decay)
    }
}

pub struct AdamW {
    learning_rate: f32,
    weight_decay: f32,
    beta1: f32,
    beta2: f32,
    eps: f32,
    moments: Option<(Tensor<4>, Tensor<4>)>,
    steps: i32,
}

impl AdamW {
    pub fn new(learning_rate: f32, weight_decay: f32) -> Self {
        Self { learning_rate, weight_decay, beta1: 0.9, beta2: 0.999, eps: 1e-8, moments: None, steps: 0 }
    }

    pub fn step(&mut self, param: Tensor<4>, grad: Tensor<4>) -> Tensor<4> {
        self.steps += 1;
        let (m, v) = match self.moments.take() {
            Some((m, v)) => (m * self.beta1 + grad.clone() * (1.0 - self.beta1), v * self.beta2 + grad.square() * (1.0 - self.beta2)),
            None => (grad.clone() * (1.0 - self.beta1), grad.square() * (1.0 - self.beta2)),
        };
        let m_hat = m.clone() / (1.0 - self.beta1.powi(self.steps));
        let v_hat = v.clone() / (1.0 - self.beta2.powi(self.steps));
        self.moments = Some((m, v));
        let decayed = param * (1.0 - self.learning_rate * self.weight_decay);
        decayed - m_hat / (v_hat.sqrt() + self.eps) * self.learning_rate
    }
}

/// Steepest ascent in L2 (the step robust-classifier synthesis takes, Santurkar et al. 2019):
/// each canvas's gradient scaled so its root mean square is the learning rate. Unlike Adam, which moves
/// every pixel about equally, a pixel moves in proportion to its own gradient.
pub struct NormalisedGradient {
    learning_rate: f32,
}

impl NormalisedGradient {
    pub fn new(learning_rate: f32) -> Self {
        Self { learning_rate }
    }

    pub fn step(&mut self, param: Tensor<4>, grad: Tensor<4>) -> Tensor<4> {
        // Each canvas (a row of the batch) by its own.
        let rms = grad.clone().square().mean_dim(1).mean_dim(2).mean_dim(3).sqrt().clamp_min(1e-20);
        param - grad / rms * self.learning_rate
    }
}

/// The update a generation runs (`UpdateSettings::optimiser`).
pub enum Update {
    AdamW(AdamW),
    NormalisedGradient(NormalisedGradient),
}

impl Update {
    pub fn new(settings: &UpdateSettings) -> Self {
        match settings.optimiser {
            Optimiser::AdamW => Update::AdamW(AdamW::new(settings.lr, settings.weight_decay)),
            Optimiser::NormalisedGradient => Update::NormalisedGradient(NormalisedGradient::new(settings.lr)),
        }
    }

    pub fn step(&mut self, param: Tensor<4>, grad: Tensor<4>) -> Tensor<4> {
        match self {
            Update::AdamW(a) => a.step(param, grad),
            Update::NormalisedGradient(n) => n.step(param, grad),
        }
    }

    /// The learning rate of the next steps (a schedule's).
    pub fn set_learning_rate(&mut self, learning_rate: f32) {
        match self {
            Update::AdamW(a) => a.learning_rate = learning_rate,
            Update::NormalisedGradient(n) => n.learning_rate = learning_rate,
        }
    }
}

/// PyTorch's `clip_grad_norm_`, canvas by canvas: scales each canvas's gradient (a row of
/// the batch) so its L2 norm is at most `max_norm`.
pub fn clip_grad_norm(grad: Tensor<4>, max_norm: f32) -> Tensor<4> {
    let norms = grad.clone().square().sum_dim(1).sum_dim(2).sum_dim(3).sqrt(); // [canvases, 1, 1, 1]
    grad * (norms + 1e-6).recip().mul_scalar(max_norm).clamp_max(1.0)
}

/// Pixels in host memory brought back into [0, 1] after a step: by dynamic thresholding at
/// percentile `threshold`, or, without one, by clamping.
pub fn threshold(pixels: &mut [f32], threshold: Option<f32>) {
    match threshold {
        Some(p) => dynamic_threshold(pixels, threshold_level(pixels, p)),
        None => pixels.iter_mut().for_each(|v| *v = v.clamp(0.0, 1.0)),
    }
}

/// The percentile `p` of `|2x - 1|` over pixels in host memory (linear interpolation between
/// order statistics, as `torch.quantile`).
pub fn threshold_level(pixels: &[f32], p: f32) -> f32 {
    let mut magnitudes: Vec<f32> = pixels.iter().map(|x| (2.0 * x - 1.0).abs()).collect();
    let position = p * (magnitudes.len() - 1) as f32;
    let low = position.floor() as usize;
    let (_, below, rest) = magnitudes.select_nth_unstable_by(low, f32::total_cmp);
    let below = *below;
    let above = if low + 1 < pixels.len() { rest.iter().copied().fold(f32::INFINITY, f32::min) } else { below };
    below + (above - below) * (position - low as f32)
}

/// Imagen's dynamic thresholding, as the paper applies it after each step: in [-1, 1], with
/// `s` the percentile level, values beyond `s` are clamped and everything is divided by `s`
/// when `s > 1`; then back to [0, 1]. (When `s <= 1` this is a clamp to [0, 1].)
pub fn dynamic_threshold(pixels: &mut [f32], level: f32) {
    let s = level.max(1.0);
    for p in pixels {
        *p = ((2.0 * *p - 1.0).clamp(-s, s) / s + 1.0) / 2.0;
    }
}

#[cfg(test)]
mod tests {
    use burn::tensor::{Device, Tensor, TensorData};

    use super::{AdamW, NormalisedGradient, clip_grad_norm};

    fn tensor(values: &[f32]) -> Tensor<4> {
        Tensor::from_data(TensorData::new(values.to_vec(), [1, 1, 1, values.len()]), &Device::flex())
    }

    fn values(t: Tensor<4>) -> Vec<f32> {
        t.into_data().try_to_vec_as::<f32>().unwrap()
    }

    #[test]
    fn a_normalised_step_moves_each_pixel_by_its_own_gradient_and_adam_s_first_moves_all_alike() {
        let grad = [4.0, -2.0, 0.0, 0.5];
        let moved = values(NormalisedGradient::new(0.1).step(tensor(&[0.0; 4]), tensor(&grad)));
        let rms = (moved.iter().map(|v| v * v).sum::<f32>() / 4.0).sqrt();
        assert!((rms - 0.1).abs() < 1e-6, "{moved:?}");
        let k = moved[0] / -grad[0];
        assert!(k > 0.0 && moved.iter().zip(grad).all(|(m, g)| (m + k * g).abs() < 1e-6), "{moved:?} is not a multiple of -{grad:?}");
        // Adam's first step is the learning rate times the gradient's sign, wherever it is
        // not zero: a pixel the model hardly minds moves as far as one it minds most.
        let adam = values(AdamW::new(0.1, 0.0).step(tensor(&[0.0; 4]), tensor(&grad)));
        assert!(adam.iter().zip(grad).all(|(a, g)| g == 0.0 || (a + 0.1 * g.signum()).abs() < 1e-5), "{adam:?}");
    }

    #[test]
    fn each_canvas_s_gradient_is_clipped_by_its_own_norm() {
        // Two canvases of one value each: a gradient of norm 5 and one of norm 0.5.
        let grad = Tensor::<4>::from_data(TensorData::new(vec![5.0f32, 0.5], [2, 1, 1, 1]), &Device::flex());
        let clipped = values(clip_grad_norm(grad, 1.0));
        assert!((clipped[0] - 1.0).abs() < 1e-5 && (clipped[1] - 0.5).abs() < 1e-6, "{clipped:?}");
    }
}
