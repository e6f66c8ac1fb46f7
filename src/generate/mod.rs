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
pub mod strokes;

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
pub use objective::{ImagePrompt, ObjectiveSettings};
pub use optimise::UpdateSettings;
pub use param::{CanvasSettings, DEFAULT_INIT_NOISE};
pub use settings::{NEGATIVE_WEIGHT, Optimiser, Parameterisation, Patch, Prompt, Settings, weighted};

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
    /// The parameters of `best` (for strokes, whose SVG is made from them).
    best_params: Tensor<4>,
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

        let (params, start) = match (ascent.canvas().strokes(), &settings.canvas.start) {
            (Some(strokes), _) => {
                // CLIPDraw's random curves, the best of the candidates.
                let candidates: Vec<Tensor<4>> = (0..settings.canvas.candidates).map(|_| strokes.random(&mut rng, &device)).collect();
                let batch = ascent.canvas().pixels(Tensor::cat(candidates.clone(), 0));
                let data = crate::engine::read(batch).await?;
                let pictures = data.chunks(3 * size * size).map(|c| Pixels::new(size, size, c.to_vec())).collect::<Result<Vec<_>>>()?;
                let scores = score_all(&model, views, objective, &pictures).await?;
                let best = (0..pictures.len()).max_by(|&a, &b| scores[a].total_cmp(&scores[b])).unwrap_or(0);
                (candidates.into_iter().nth(best), pictures.into_iter().nth(best).expect("there is at least one candidate"))
            }
            (None, Some(image)) => (None, image.resized(size)),
            (None, None) => {
                let amplitude = settings.canvas.init_noise;
                let candidates: Vec<Pixels> =
                    (0..settings.canvas.candidates).map(|_| low_frequency_noise(size, amplitude, &mut rng)).collect();
                let scores = score_all(&model, views, objective, &candidates).await?;
                let best = (0..candidates.len()).max_by(|&a, &b| scores[a].total_cmp(&scores[b])).unwrap_or(0);
                (None, candidates.into_iter().nth(best).expect("there is at least one candidate"))
            }
        };
        let start_score = score_all(&model, views, objective, std::slice::from_ref(&start)).await?[0];
        let params = params.unwrap_or_else(|| ascent.canvas().params_for(&start, &device));
        Ok(Self {
            model,
            ascent,
            rng,
            best_params: params.clone(),
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

    /// `best` as an SVG document, when the canvas is made of strokes.
    pub async fn best_svg(&self) -> Result<Option<String>> {
        let Some(strokes) = self.ascent.canvas().strokes() else { return Ok(None) };
        let values = crate::engine::read(strokes.values(self.best_params.clone())).await?;
        Ok(Some(strokes.svg(&values)))
    }

    /// Steers the run: the prompts, negative prompts and their weights in `patch` (nothing
    /// else may change mid-run) aim the steps from the next one on, the canvas and the
    /// optimiser's state kept. The picture kept so far was the best for the old prompts: the
    /// next step's canvas starts the new best. The current score is recomputed for the new
    /// prompts.
    pub async fn steer(&mut self, patch: &Patch) -> Result<()> {
        const STEERABLE: [&str; 2] = ["prompt", "negative"];
        if let Some(name) = patch.0.keys().find(|name| !STEERABLE.contains(&name.as_str())) {
            return Err(Error::Invalid(format!("only the prompt and the negative prompt can change while a picture paints, not '{name}'")));
        }
        let settings = self.settings.patched(patch)?;
        settings.validate()?;
        let objective = Objective::new(&self.model, &settings.objective)?;
        self.ascent.set_objective(objective);
        self.settings = settings;
        self.current_score =
            score_all(&self.model, self.ascent.views(), self.ascent.objective(), std::slice::from_ref(&self.current)).await?[0];
        self.best_global_loss = f32::INFINITY;
        Ok(())
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
            self.best_params = self.params.clone();
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
