//! A run's state (the model, its optimiser, the step) and its step: the batch drawn from the
//! seed and the step, the adversarial pictures and painted negatives where the plan asks,
//! the loss, the update; checkpoints and the loop that reports progress.
use std::path::Path;
use std::time::Instant;

use burn::optim::{AdamWConfig, GradientsParams};
use burn::tensor::{Device, Tensor, TensorData};

use super::loss::{Goal, contrastive_loss, fit_targets, painted_loss, scalar, unit};
use super::{Objective, Plan, config_for, tokenizer_json};
use crate::world::Scene;
use clipag::model::{Clip, ClipConfig, Origins};
use clipag::rng::Rng;
use clipag::tokenizer::Tokenizer;
use clipag::weights::folder::{self, Description};
use clipag::weights::quant::Quantization;
use clipag::weights::random::RandomWeights;
use clipag::weights::tensors::TensorMap;
use clipag::{Error, Result};


/// The file in a checkpoint folder that records how far training got.
pub(super) const PROGRESS: &str = "training.json";

/// The state of a run: the model, its optimiser and the step it is at.
pub struct Trainer {
    pub plan: Plan,
    pub config: ClipConfig,
    pub(super) tokenizer: Tokenizer,
    pub(super) tokenizer_json: Vec<u8>,
    pub(super) device: Device,
    pub(super) model: Clip,
    pub(super) origins: Origins,
    pub(super) optimizer: burn::optim::ModuleOptimizer,
    /// The pre-trained model, frozen: FARE's reference.
    pub(super) reference: Option<Clip>,
    /// Whether the image tower is frozen (the alignment steps).
    pub(super) vision_frozen: bool,
    pub step: usize,
}

impl Trainer {
    /// A fresh model (random weights from the plan's seed).
    pub fn new(plan: Plan) -> Result<Self> {
        let tokenizer_json = tokenizer_json()?;
        let config = config_for(&plan)?;
        let device = plan.device.clone();
        let (model, origins) = Clip::trainable(&config, &mut RandomWeights::new(plan.seed), &device)?;
        Self::with_model(plan, config, tokenizer_json, device, model, origins, 0)
    }

    /// Resumes from a checkpoint folder written by `save_checkpoint` (the optimiser's moments
    /// start afresh; the data, drawn from the seed and the step, continues where it was).
    pub fn resume(plan: Plan, dir: &Path) -> Result<Self> {
        Self::from_checkpoint(plan, dir, false)
    }

    /// A model folder, shipped or a checkpoint, read as it is to be attacked (`attacked_loss`)
    /// rather than trained on.
    pub fn probe(plan: Plan, dir: &Path) -> Result<Self> {
        Self::from_folder(plan, dir, false, 0)
    }

    pub(super) fn with_model(
        plan: Plan,
        config: ClipConfig,
        tokenizer_json: Vec<u8>,
        device: Device,
        model: Clip,
        origins: Origins,
        step: usize,
    ) -> Result<Self> {
        let tokenizer = Tokenizer::from_json(&tokenizer_json, config.text.context_length)?;
        let optimizer = AdamWConfig::new().with_weight_decay(0.05).init();
        Ok(Self { plan, config, tokenizer, tokenizer_json, device, model, origins, optimizer, reference: None, vision_frozen: false, step })
    }

    /// Freezes the model in checkpoint folder `dir` as FARE's reference.
    pub fn set_reference(&mut self, dir: &Path) -> Result<()> {
        let files = folder::read(dir)?;
        let mut weights = clipag::weights::StoredWeights::parse(&files.weights)?;
        self.reference = Some(Clip::load(&files.manifest.config, &mut weights, &self.device)?);
        Ok(())
    }

    pub fn total_steps(&self) -> usize {
        self.aligning_from() + self.plan.align_steps
    }

    /// The step the text-alignment steps start at.
    pub(super) fn aligning_from(&self) -> usize {
        self.plan.pretrain_steps + self.plan.finetune_steps
    }

    /// Linear warm-up over 200 steps, then cosine decay to a tenth over pre-training and
    /// fine-tuning; the alignment steps keep that tenth (so adding them changes nothing before).
    pub(super) fn learning_rate(&self) -> f64 {
        if self.step >= self.aligning_from() {
            return self.plan.learning_rate * 0.1;
        }
        let total = self.aligning_from().max(1) as f64;
        let warm = (self.step as f64 + 1.0) / 200.0;
        let progress = self.step as f64 / total;
        let cosine = 0.1 + 0.9 * 0.5 * (1.0 + (std::f64::consts::PI * progress).cos());
        self.plan.learning_rate * warm.min(1.0) * cosine
    }

    /// One training step; returns its loss.
    pub fn step(&mut self) -> Result<f32> {
        let mut rng = step_rng(self.plan.seed, self.step);
        let (images, sequences, targets) = self.batch(self.plan.batch, &mut rng)?;
        let aligning = self.step >= self.aligning_from();
        if aligning && !self.vision_frozen {
            self.model = self.model.clone().freeze_vision();
            self.vision_frozen = true;
        }
        let adversarial = !aligning && self.step >= self.plan.pretrain_steps && self.plan.epsilon.is_some();
        let goal = match (adversarial, self.plan.objective) {
            (false, _) => None,
            (true, Objective::Tecoa) => Some(self.captions(&sequences, &targets)?),
            (true, Objective::Fare) => {
                let reference = self.reference.as_ref().ok_or_else(|| Error::Invalid("FARE needs the pre-trained model as its reference".into()))?;
                Some(Goal::Reference(unit(reference.encode_image(images.clone())?.detach())))
            }
        };
        let images = match (&goal, self.plan.epsilon) {
            (Some(goal), Some(epsilon)) => self.mixed(images, goal, epsilon, &mut rng)?,
            _ => images,
        };
        // Painted after the attack, so that the attack's draws are what they were without,
        // for the first captions of TeCoA's goal (`check_painting` refuses other objectives).
        let paintings = match (&goal, self.plan.painted_negatives) {
            (Some(Goal::Captions { texts, .. }), k) if k > 0 => Some(self.paint(texts.clone().narrow(0, 0, k), &mut rng)?),
            _ => None,
        };
        // FARE trains the image tower alone; otherwise both towers learn from the captions.
        let loss = match goal {
            Some(goal @ Goal::Reference(_)) => goal.loss(self.model.encode_image(images)?, self.plan.temperature),
            _ => {
                let (images, texts) = (self.model.encode_image(images)?, self.model.encode_text(&sequences)?);
                let loss = contrastive_loss(images.clone(), texts.clone(), &targets, self.plan.temperature);
                match paintings {
                    None => loss,
                    Some(paintings) => {
                        let k = paintings.dims()[0];
                        let painted = self.model.encode_image(paintings)?;
                        loss + painted_loss(images.narrow(0, 0, k), painted, texts.narrow(0, 0, k), self.plan.temperature)
                    }
                }
            }
        };
        let value = scalar(loss.clone())?;
        if !value.is_finite() {
            return Err(Error::Internal(format!("step {}: the loss is not finite", self.step)));
        }
        let grads = GradientsParams::from_grads(loss.backward(), &self.model);
        let lr = self.learning_rate();
        self.model = self.optimizer.step(lr, self.model.clone(), grads);
        self.step += 1;
        Ok(value)
    }

    /// `count` fresh scenes from `rng` (`Drawn`): their pictures `[count, 3, size, size]`,
    /// their captions' token ids, and which caption fits which picture (`fit_targets`).
    pub(super) fn batch(&self, count: usize, rng: &mut Rng) -> Result<(Tensor<4>, Vec<Vec<u32>>, Tensor<2>)> {
        let size = self.config.vision.image_size();
        let drawn = Drawn::new(count, size, &self.plan, &self.tokenizer, rng)?;
        let targets = fit_targets(&drawn, &self.device);
        let images = Tensor::<4>::from_data(TensorData::new(drawn.pixels, [count, 3, size, size]), &self.device);
        Ok((images, drawn.sequences, targets))
    }

    /// TeCoA's goal: the batch's captions as the model reads them now, held fixed.
    pub(super) fn captions(&self, sequences: &[Vec<u32>], targets: &Tensor<2>) -> Result<Goal> {
        Ok(Goal::Captions { texts: unit(self.model.encode_text(sequences)?.detach()), targets: targets.clone() })
    }

    /// Writes the model as a model folder (f32 for checkpoints, q8 for the shipped model).
    pub fn save(&self, dir: &Path, quantization: Quantization, name: &str, source: String) -> Result<()> {
        let weights: TensorMap = self.model.export(&self.origins)?;
        let description = Description {
            name: name.to_string(),
            license: "CC-BY-4.0".into(),
            source,
            recommended: None,
        };
        folder::write(dir, &self.config, &weights, quantization, &self.tokenizer_json, description)?;
        Ok(())
    }

    /// An f32 model folder plus `training.json` with the step reached.
    pub fn save_checkpoint(&self, dir: &Path) -> Result<()> {
        self.save(dir, Quantization::F32, "checkpoint", format!("clipag shapes training checkpoint ({:?})", self.plan))?;
        let progress = serde_json::json!({ "step": self.step }).to_string();
        std::fs::write(dir.join(PROGRESS), progress).map_err(|e| Error::Invalid(format!("{}: {e}", dir.display())))
    }
}

/// The step a checkpoint folder's `training.json` says training reached.
pub(super) fn progress(dir: &Path) -> Result<usize> {
    let progress = std::fs::read_to_string(dir.join(PROGRESS))
        .map_err(|e| Error::Invalid(format!("{}: not a training checkpoint ({e})", dir.display())))?;
    let step = serde_json::from_str::<serde_json::Value>(&progress)
        .ok()
        .and_then(|v| v["step"].as_u64())
        .ok_or_else(|| Error::Invalid(format!("{}: {PROGRESS} names no step", dir.display())))?;
    Ok(step as usize)
}

/// The random draws of training step `step`: each step's data depends only on the seed and
/// the step, so a resumed run sees the data it would have seen, and so does a trainer
/// outside this program reading `shapes batches`.
pub fn step_rng(seed: u64, step: usize) -> Rng {
    Rng::new(seed ^ (step as u64).wrapping_mul(0x9e37_79b9))
}

/// One batch of the world as training draws it from `rng`.
pub struct Drawn {
    pub scenes: Vec<Scene>,
    /// The pictures, `[count, 3, size, size]`, channels 0 to 1.
    pub pixels: Vec<f32>,
    /// Each caption's token ids, start and end tokens included.
    pub sequences: Vec<Vec<u32>>,
}

impl Drawn {
    /// `count` scenes (minimal pairs under `plan.minimal_pairs`), drawn at `size` pixels in
    /// shades of up to `plan.shades`, their captions tokenized.
    pub fn new(count: usize, size: usize, plan: &Plan, tokenizer: &Tokenizer, rng: &mut Rng) -> Result<Self> {
        let scenes: Vec<Scene> = if plan.minimal_pairs {
            let mut scenes: Vec<Scene> = (0..count / 2).flat_map(|_| <[Scene; 2]>::from(Scene::minimal_pair(rng))).collect();
            scenes.extend((scenes.len()..count).map(|_| Scene::random(rng, false)));
            scenes
        } else {
            (0..count).map(|_| Scene::random(rng, false)).collect()
        };
        let pixels: Vec<f32> = scenes.iter().flat_map(|s| s.render_shaded(size, plan.shades, rng).data).collect();
        let sequences = scenes.iter().map(|s| tokenizer.encode(&s.caption()).map(|t| t.ids)).collect::<Result<Vec<_>>>()?;
        Ok(Self { scenes, pixels, sequences })
    }

    /// `fits[i * count + j]`: whether picture i fits caption j (`Scene::fits`).
    pub fn fits(&self) -> Vec<bool> {
        self.scenes.iter().flat_map(|picture| self.scenes.iter().map(|described| picture.fits(described))).collect()
    }
}

/// Trains for `steps` more steps, printing progress every `report` steps and writing a
/// checkpoint to `checkpoints` every `checkpoint_every`.
pub fn run(trainer: &mut Trainer, until: usize, report: usize, checkpoint: Option<(&Path, usize)>) -> Result<()> {
    let started = Instant::now();
    let first = trainer.step;
    let mut recent = Vec::new();
    while trainer.step < until {
        recent.push(trainer.step()?);
        if trainer.step % report == 0 || trainer.step == until {
            let mean = recent.iter().sum::<f32>() / recent.len() as f32;
            let rate = (trainer.step - first) as f64 / started.elapsed().as_secs_f64();
            eprintln!(
                "step {}/{} loss {mean:.4} ({rate:.2} steps/s, {:.0} s)",
                trainer.step,
                trainer.total_steps(),
                started.elapsed().as_secs_f64()
            );
            recent.clear();
        }
        if let Some((dir, every)) = checkpoint {
            if trainer.step % every == 0 {
                trainer.save_checkpoint(dir)?;
            }
        }
    }
    Ok(())
}
