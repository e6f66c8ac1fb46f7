//! Generator-free text-to-image: gradient ascent on a canvas through a robust CLIP, the
//! CLIPAG recipe. Four seams, as in Lucid: `param` (how variables become pixels), `augment`
//! (the views), `objective` (what is maximised) and `optimise` (the update); `ascent` is the
//! one step that joins them, and this loop adds the start, the best-so-far and the reports.

pub mod ascent;
pub mod augment;
pub mod objective;
pub mod optimise;
pub mod param;
pub mod settings;

use std::rc::Rc;

use burn::tensor::{Tensor, TensorData, Transaction};

use crate::engine::Model;
use crate::pixels::Pixels;
use crate::rng::Rng;
use crate::{Error, Result};
use ascent::Ascent;
use augment::Views;
use objective::Objective;
use param::low_frequency_noise;
pub use augment::ViewSettings;
pub use objective::ObjectiveSettings;
pub use optimise::UpdateSettings;
pub use param::{CanvasSettings, DEFAULT_INIT_NOISE};
pub use settings::{NEGATIVE_WEIGHT, Optimiser, Parameterisation, Patch, Prompt, Settings};

/// What one step did, for the page's plot and the command line's progress.
#[derive(Debug, Clone, serde::Serialize)]
pub struct StepReport {
    /// Steps done so far (1 after the first).
    pub step: usize,
    pub steps: usize,
    /// The clean canvas's weighted cosine to the prompts, after this step.
    pub score: f32,
    /// The losses of the views this step (of the canvas before the update).
    pub global_loss: f32,
    pub patch_loss: f32,
    /// The step whose canvas had the lowest global loss so far, and its score.
    pub best_step: usize,
    pub best_score: f32,
    /// Whether this step is one of the snapshots (every `snapshot_every` steps, and the last).
    pub snapshot: bool,
    /// Seconds of this step spent waiting for results to come back from the device.
    pub sync_seconds: f64,
    pub done: bool,
}

pub struct Generator {
    model: Rc<Model>,
    settings: Settings,
    ascent: Ascent,
    rng: Rng,
    params: Tensor<4>,
    /// The current canvas in host memory (`[3, size, size]`), as last read back.
    current: Pixels,
    current_score: f32,
    best: Pixels,
    best_global_loss: f32,
    best_step: usize,
    best_score: f32,
    step: usize,
}

impl Generator {
    /// Checks the settings, embeds the prompts and picks the initial canvas. A canvas size
    /// left unset becomes the model's resolution.
    pub async fn new(model: Rc<Model>, mut settings: Settings) -> Result<Self> {
        settings.validate()?;
        let size = settings.size_or(model.image_size());
        settings.size = Some(size);
        let device = model.device().clone();
        let mut rng = Rng::new(settings.seed);
        let objective = Objective::new(&model, &settings.objective)?;
        let ascent = Ascent::new(&settings, objective, model.image_size(), size, &device);
        let (views, objective) = (ascent.views(), ascent.objective());

        let start = match &settings.canvas.start {
            Some(image) => image.resized(size),
            None => {
                let amplitude = settings.canvas.init_noise;
                let candidates: Vec<Pixels> =
                    (0..settings.canvas.candidates).map(|_| low_frequency_noise(size, amplitude, &mut rng)).collect();
                let scores = score_all(&model, views, objective, &candidates).await?;
                let best = (0..candidates.len()).max_by(|&a, &b| scores[a].total_cmp(&scores[b])).unwrap_or(0);
                candidates.into_iter().nth(best).expect("there is at least one candidate")
            }
        };
        let start_score = score_all(&model, views, objective, std::slice::from_ref(&start)).await?[0];
        let params = ascent.canvas().params_for(&start, &device);
        Ok(Self {
            model,
            ascent,
            rng,
            params,
            best: start.clone(),
            current: start,
            current_score: start_score,
            best_global_loss: f32::INFINITY,
            best_step: 0,
            best_score: start_score,
            step: 0,
            settings,
        })
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// Side of the canvas in pixels.
    pub fn size(&self) -> usize {
        self.settings.size.expect("set when the generator was made")
    }

    pub fn is_done(&self) -> bool {
        self.step >= self.settings.steps
    }

    /// The canvas now (after the last step).
    pub fn current(&self) -> &Pixels {
        &self.current
    }

    /// The score of the canvas now.
    pub fn current_score(&self) -> f32 {
        self.current_score
    }

    /// The canvas with the lowest global loss seen: the paper's output.
    pub fn best(&self) -> &Pixels {
        &self.best
    }

    /// The score of `best`.
    pub fn best_score(&self) -> f32 {
        self.best_score
    }

    /// One optimisation step (`Ascent::step`), then the canvas read back, kept if it is the
    /// best so far, and scored.
    pub async fn step(&mut self) -> Result<StepReport> {
        if self.is_done() {
            return Err(Error::Invalid("the generation has already done all its steps".into()));
        }
        let learning_rate = self.settings.learning_rate_at(self.step);
        let stepped = self.ascent.step(&self.model.clip, self.params.clone(), learning_rate, &mut self.rng)?;

        // This step's losses and the updated canvas, in one read back.
        let waiting = crate::clock::seconds();
        let read = Transaction::default()
            .register(stepped.global_loss)
            .register(stepped.patch_loss)
            .register(stepped.pixels)
            .execute_async()
            .await
            .map_err(Error::from)?;
        let mut sync_seconds = crate::clock::seconds() - waiting;
        let values = |d: &TensorData| d.try_to_vec_as::<f32>().map_err(|e| Error::Internal(format!("reading a result back from the device failed: {e:?}")));
        let (global_loss, patch_loss) = (values(&read[0])?[0], values(&read[1])?[0]);
        let mut host = values(&read[2])?;
        if !(global_loss.is_finite() && patch_loss.is_finite()) || host.iter().any(|v| !v.is_finite()) {
            return Err(Error::Internal(format!(
                "step {} produced a non-finite value (global loss {global_loss}); the canvas is kept as it was",
                self.step + 1
            )));
        }

        // The loss just computed belongs to the canvas before this update.
        if global_loss < self.best_global_loss {
            self.best_global_loss = global_loss;
            self.best = self.current.clone();
            self.best_step = self.step;
            self.best_score = self.current_score;
        }

        self.params = self.ascent.project(stepped.updated, &mut host);
        let size = self.size();
        let current = Pixels::new(size, size, host)?;
        let waiting = crate::clock::seconds();
        let score = score_all(&self.model, self.ascent.views(), self.ascent.objective(), std::slice::from_ref(&current)).await?[0];
        sync_seconds += crate::clock::seconds() - waiting;
        self.current = current;
        self.current_score = score;
        self.step += 1;
        let done = self.is_done();
        Ok(StepReport {
            step: self.step,
            steps: self.settings.steps,
            score,
            global_loss,
            patch_loss,
            best_step: self.best_step,
            best_score: self.best_score,
            snapshot: done || self.step % self.settings.snapshot_every == 0,
            sync_seconds,
            done,
        })
    }
}

/// The clean score of each image (all at the canvas size).
async fn score_all(model: &Model, views: &Views, objective: &Objective, images: &[Pixels]) -> Result<Vec<f32>> {
    let size = images[0].height;
    let data: Vec<f32> = images.iter().flat_map(|p| p.data.iter().copied()).collect();
    let batch = Tensor::<4>::from_data(TensorData::new(data, [images.len(), 3, size, size]), model.device());
    let clean = if size == model.image_size() {
        batch
    } else {
        Tensor::cat(images.iter().enumerate().map(|(i, _)| views.clean(batch.clone().narrow(0, i, 1))).collect(), 0)
    };
    crate::engine::read(objective.score(model.clip.encode_image(clean)?)).await
}
