//! The painted negatives: pictures the twin paints for captions as it is now, by signed
//! ascent steps or by the generation's own step (`Ascent`) with the evaluation's settings.
use burn::tensor::{Tensor, TensorData};

use super::Trainer;
use super::loss::unit;
use clipag::generate::ascent::Ascent;
use clipag::generate::objective::Objective as PaintingObjective;
use clipag::generate::param::low_frequency_noise;
use clipag::rng::Rng;
use clipag::{Error, Result};


/// Each painting step's move per pixel: the evaluation's learning rate, which AdamW's first
/// steps move by.
pub(super) const PAINTING_STEP: f32 = 0.05;
/// The painting's start: the generation's low-frequency noise at the evaluation's amplitude.
pub(super) const PAINTING_START_NOISE: f32 = 0.1;


impl Trainer {
    /// One picture per caption (rows of `texts`, unit embeddings), painted by the twin as it
    /// is now from low-frequency noise: by `paint_signed` or, under `painting_views`, as the
    /// evaluation paints (`paint_through_views`).
    pub(super) fn paint(&self, texts: Tensor<2>, rng: &mut Rng) -> Result<Tensor<4>> {
        let size = self.config.vision.image_size();
        let count = texts.dims()[0];
        let start: Vec<f32> = (0..count).flat_map(|_| low_frequency_noise(size, PAINTING_START_NOISE, rng).data).collect();
        let start = Tensor::<4>::from_data(TensorData::new(start, [count, 3, size, size]), &self.device);
        let painted = if self.plan.painting_views { self.paint_through_views(start, texts, rng)? } else { self.paint_signed(start, texts)? };
        Ok(painted.detach())
    }

    /// `painting_steps` signed steps up each picture's cosine with its caption, kept in
    /// [0, 1]: the generation's loop without its views, the cheapest stand-in for it.
    pub(super) fn paint_signed(&self, mut pictures: Tensor<4>, texts: Tensor<2>) -> Result<Tensor<4>> {
        for _ in 0..self.plan.painting_steps {
            let canvas = pictures.clone().detach().require_grad();
            let cosines = (unit(self.model.encode_image(canvas.clone())?) * texts.clone()).sum();
            let grad = canvas.grad(&cosines.backward()).ok_or_else(|| Error::Internal("the painting produced no gradient".into()))?;
            pictures = (pictures + grad.sign() * PAINTING_STEP).clamp(0.0, 1.0);
        }
        Ok(pictures)
    }

    /// `painting_steps` of the generation's step (`Ascent`) on every picture at once, with
    /// the evaluation's settings, each picture toward its own caption. Unlike the evaluation
    /// it starts from one draw of noise rather than the best of several, keeps the last canvas
    /// rather than the one of lowest loss, and holds the learning rate.
    pub(super) fn paint_through_views(&self, pictures: Tensor<4>, texts: Tensor<2>, rng: &mut Rng) -> Result<Tensor<4>> {
        let settings = crate::eval::evaluation_settings();
        let size = self.config.vision.image_size();
        let mut ascent = Ascent::new(&settings, PaintingObjective::each_toward(texts), size, size, &self.device);
        let mut params = pictures;
        for _ in 0..self.plan.painting_steps {
            let stepped = ascent.step(&self.model, params, settings.update.lr, rng)?;
            let mut host = stepped.pixels.into_data().try_to_vec_as::<f32>().map_err(|e| Error::Internal(format!("reading a result back from the device failed: {e:?}")))?;
            params = ascent.project(stepped.updated, &mut host);
        }
        Ok(params)
    }
}
