//! One step of gradient ascent on a batch of canvases, the CLIPAG recipe's loop body: each
//! canvas's pixels (through its parameterisation), its views, their losses (global and patch
//! views mixed by the objective's weights, with the smoothness prior), the gradient, each
//! canvas's gradient clipped alone, the update. The generator runs it on one canvas and adds
//! the best-so-far and its reports; the Shapes training runs it on a batch to paint negatives.

use burn::tensor::{Device, Tensor};

use super::augment::Views;
use super::objective::{Objective, total_variation};
use super::optimise::{Update, clip_grad_norm};
use super::param::Canvas;
use super::settings::Settings;
use crate::model::Clip;
use crate::rng::Rng;
use crate::{Error, Result};

pub struct Ascent {
    canvas: Canvas,
    views: Views,
    objective: Objective,
    update: Update,
    patch_weight: f32,
    smoothness: f32,
    max_grad_norm: f32,
}

/// What one step gives back, all still on the device.
pub struct Stepped {
    /// The updated parameters, before projection (`Ascent::project`).
    pub updated: Tensor<4>,
    /// Their pixels, `[canvases, 3, size, size]`.
    pub pixels: Tensor<4>,
    /// The mean loss of each canvas's global views and of its patch views (of the canvases
    /// before the update), `[canvases]`; zeros where there are none.
    pub global_loss: Tensor<1>,
    pub patch_loss: Tensor<1>,
}

impl Ascent {
    /// The step `settings` describe for canvases of side `size`, seen by a model of
    /// resolution `model_size`, toward `objective`.
    pub fn new(settings: &Settings, objective: Objective, model_size: usize, size: usize, device: &Device) -> Self {
        Self {
            canvas: Canvas::new(&settings.canvas, size, device),
            views: Views::new(&settings.view, model_size, device),
            objective,
            update: Update::new(&settings.update),
            patch_weight: settings.objective.patch_weight,
            smoothness: settings.objective.smoothness,
            max_grad_norm: settings.update.max_grad_norm,
        }
    }

    pub fn canvas(&self) -> &Canvas {
        &self.canvas
    }

    pub fn views(&self) -> &Views {
        &self.views
    }

    pub fn objective(&self) -> &Objective {
        &self.objective
    }

    /// Aims the next steps at another objective (steering a run: the canvas and the
    /// optimiser's state go on as they were).
    pub fn set_objective(&mut self, objective: Objective) {
        self.objective = objective;
    }

    /// One step from `params` (`[canvases, planes, size, size]`) at `learning_rate`, each
    /// canvas's views drawn from `rng` in turn.
    pub fn step(&mut self, clip: &Clip, params: Tensor<4>, learning_rate: f32, rng: &mut Rng) -> Result<Stepped> {
        let canvases = params.dims()[0];
        let params = params.detach().require_grad();
        let pixels = self.canvas.pixels(params.clone());
        let seen = Tensor::cat((0..canvases).map(|i| self.views.sample(pixels.clone().narrow(0, i, 1), rng)).collect(), 0);
        let losses = self.objective.per_view(clip.encode_image(seen)?, canvases); // [canvases, views]
        let (global, patches) = (self.views.settings.views, self.views.settings.patch_views);
        let mean = |from: usize, count: usize| {
            if count == 0 { Tensor::<1>::zeros([canvases], &losses.device()) } else { losses.clone().narrow(1, from, count).mean_dim(1).squeeze_dim(1) }
        };
        let (global_loss, patch_loss) = (mean(0, global), mean(global, patches));
        // Each canvas's loss, summed: the canvases do not touch, so each gets its own gradient.
        let mut loss = (global_loss.clone() + patch_loss.clone() * self.patch_weight).sum();
        if self.smoothness > 0.0 {
            // The batch's mean total variation times the canvases is the sum of each's own.
            loss = loss + total_variation(pixels) * (self.smoothness * canvases as f32);
        }
        let grad = params
            .grad(&loss.backward())
            .ok_or_else(|| Error::Internal("the backward pass produced no canvas gradient".into()))?;
        self.update.set_learning_rate(learning_rate);
        let updated = self.update.step(params.detach(), clip_grad_norm(grad, self.max_grad_norm));
        let pixels = self.canvas.pixels(updated.clone());
        Ok(Stepped { updated, pixels, global_loss: global_loss.detach(), patch_loss: patch_loss.detach() })
    }

    /// The parameters to go on from, given the updated ones and their pixels read back to the
    /// host (`Canvas::project`: the pixel canvas thresholds them there).
    pub fn project(&self, updated: Tensor<4>, pixels: &mut [f32]) -> Tensor<4> {
        self.canvas.project(updated, pixels)
    }
}
