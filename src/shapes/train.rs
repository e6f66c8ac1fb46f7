//! Training the Shapes CLIPs: contrastive pre-training from scratch on the synthetic world,
//! then either adversarial fine-tuning (the robust twin) or the same number of clean steps
//! (the plain twin). In Rust on burn, on the project's own model code, on the CPU or a GPU.
//! (1,400 lines of six concerns: plan, attacks, growth, loss, trainer, twins. Issue 34 splits
//! it by concern as the Shapes lab moves to its own crate; not done yet.)

use std::path::Path;
use std::time::Instant;

use burn::optim::{AdamWConfig, GradientsParams};
use burn::tensor::{Device, Tensor, TensorData};

use super::world::{Scene, vocabulary};
use crate::generate::ascent::Ascent;
use crate::generate::objective::Objective as PaintingObjective;
use crate::generate::param::low_frequency_noise;
use crate::model::{Clip, ClipConfig, Origins, ResNetConfig, TextConfig, VisionConfig, VisionTransformerConfig, WeightSource};
use crate::rng::Rng;
use crate::tokenizer::Tokenizer;
use crate::weights::folder::{self, Description};
use crate::weights::quant::Quantization;
use crate::weights::random::RandomWeights;
use crate::weights::tensors::{HostTensor, TensorMap};
use crate::{Error, Result};

/// The Shapes architecture: a small ViT (64-pixel images in 8-pixel patches) and a small
/// text transformer over the caption vocabulary.
pub fn config() -> ClipConfig {
    // The grammar's words, plus the start, end and unknown tokens.
    let vocab_size = vocabulary().len() + 3;
    ClipConfig {
        embed_dim: 64,
        vision: VisionConfig::Transformer(vit()),
        text: TextConfig { context_length: 16, vocab_size, width: 128, layers: 3, heads: 4, mlp_width: 512 },
        quick_gelu: false,
    }
}

/// The shipped Shapes ViT.
fn vit() -> VisionTransformerConfig {
    VisionTransformerConfig { image_size: 64, patch_size: 8, width: 128, layers: 4, heads: 4, mlp_width: 512 }
}

/// The architecture a fresh run of `plan` pre-trains: the Shapes text tower beside the
/// plan's ModifiedResNet (`plan.resnet`), or beside the Shapes ViT with an image tower
/// whose residual stream is `plan.vision_width` wide (0: the shipped 128), its MLPs four
/// times that and its heads 32 wide, as the shipped tower's. The width is chosen before
/// pre-training: unlike depth or MLP width (`Grown`), a trained residual stream cannot
/// widen and compute what it did.
pub fn config_for(plan: &Plan) -> Result<ClipConfig> {
    let mut config = config();
    let width = plan.vision_width;
    match &plan.resnet {
        Some(_) if width > 0 => return Err(Error::Invalid("--vision-width is the ViT's: a ResNet's width is --resnet-width".into())),
        Some(resnet) => config.vision = VisionConfig::ResNet(resnet.clone()),
        None if width > 0 => {
            // The shipped tower's proportions, derived rather than restated: heads 32 wide, MLPs 4 x.
            let shipped = vit();
            let (head_width, mlp_ratio) = (shipped.width / shipped.heads, shipped.mlp_width / shipped.width);
            if width % head_width != 0 {
                return Err(Error::Invalid(format!(
                    "the vision width (--vision-width) must be a multiple of {head_width}, the heads' width, not {width}"
                )));
            }
            let vision = VisionTransformerConfig { width, heads: width / head_width, mlp_width: mlp_ratio * width, ..shipped };
            config.vision = VisionConfig::Transformer(vision);
        }
        None => {}
    }
    config.validate()?;
    Ok(config)
}

pub fn tokenizer_json() -> Result<Vec<u8>> {
    crate::tokenizer::vocab::word_tokenizer_json(&vocabulary())
}

/// The file in a checkpoint folder that records how far training got.
const PROGRESS: &str = "training.json";

/// Each painting step's move per pixel: the evaluation's learning rate, which AdamW's first
/// steps move by.
const PAINTING_STEP: f32 = 0.05;
/// The painting's start: the generation's low-frequency noise at the evaluation's amplitude.
const PAINTING_START_NOISE: f32 = 0.1;

/// How a run trains.
#[derive(Debug, Clone)]
pub struct Plan {
    pub seed: u64,
    pub batch: usize,
    pub learning_rate: f64,
    /// Clean contrastive steps from scratch.
    pub pretrain_steps: usize,
    /// Steps after pre-training: adversarial for the robust twin, clean for the plain one.
    pub finetune_steps: usize,
    /// Budget of the adversarial images, on pixel values 0 to 1: the L-infinity radius for
    /// FGSM and N-FGSM, the L2 radius of the whole image's change for L2 (None: the plain twin).
    pub epsilon: Option<f32>,
    pub attack: Attack,
    /// PGD's steps per adversarial picture (the other attacks take one).
    pub attack_steps: usize,
    /// N-FGSM's random start, as a multiple of epsilon (the paper's default is 2): uniform
    /// noise of this many epsilon before the signed step.
    pub noise: f32,
    /// Share of each adversarial step's batch left clean (0: all adversarial). A mixed batch
    /// is meant to keep what clean images teach (places, shapes) while the rest teaches
    /// robustness.
    pub clean_share: f32,
    /// Batches made of minimal pairs (`Scene::minimal_pair`) rather than independent scenes.
    pub minimal_pairs: bool,
    /// Each picture's colours drawn as random shades of their names, up to this many 1/255
    /// off in each channel (`world::shade`; 0: the named colours exactly).
    pub shades: u8,
    /// What the adversarial steps minimise and their attack maximises.
    pub objective: Objective,
    /// Vision blocks added on top of the pre-trained image tower when a twin starts from
    /// the pre-training (see `Grown`); 0 keeps the architecture.
    pub deeper_vision: usize,
    /// The vision MLPs' hidden width when a twin starts from the pre-training (see
    /// `Grown`); 0, or the pre-training's own width, keeps the architecture.
    pub wider_vision_mlp: usize,
    /// The image tower's residual-stream width for pre-training from scratch
    /// (`config_for`; 0: the shipped 128). A run that resumes or starts a twin
    /// reads the width from its checkpoint.
    pub vision_width: usize,
    /// Pre-train open_clip's ModifiedResNet of this shape as the image tower instead of
    /// the ViT (its batch norm folded into its convolutions, which then train with a bias:
    /// `Loader::conv_bn`). The growth and rescaling options are the ViT's.
    pub resnet: Option<ResNetConfig>,
    /// Factor on the patch embedding (`conv1`) and the patches' positional embeddings when
    /// a twin starts from the pre-training (see `Grown`); 1 leaves them. `ln_pre`
    /// normalises each patch token, so the tower computes what it did, but AdamW's steps
    /// are about the learning rate whatever a weight's size: at a tenth of the size they
    /// move ten times as far relative to it. The pre-training leaves the patch filters
    /// nearly as drawn (random, neighbouring weights uncorrelated), and a robust tower
    /// needs filters that the attack's pixel-level pattern cannot sway.
    pub patch_scale: f32,
    /// When a twin starts from the pre-training, each patch filter (`conv1`, one 8 x 8 block
    /// per colour channel) keeps only its lowest `patch_low_pass` x `patch_low_pass`
    /// frequencies (`low_pass`); 0 leaves them. Flat patches, most of this world's, read as
    /// before. A random filter's response to a flat change of colour is a small part of
    /// what a signed pattern of the same size moves it by; a smooth filter's is most of it.
    pub patch_low_pass: usize,
    /// Further factor on the patches' positional embeddings alone when a twin starts from
    /// the pre-training; 1 leaves them. Unlike `patch_scale` it changes what the tower
    /// computes: each patch token is its content plus its place, and N-FGSM's start noise
    /// (up to 64/255 a pixel) moves the shipped pre-training's content part about five
    /// times as far as the places differ (docs/shapes.md), so under attack a token hardly
    /// says where it is.
    pub position_scale: f32,
    /// Steps after the fine-tuning that train the text tower alone on clean pictures, the
    /// image tower fixed: they teach the captions what the twin's image tower now reads,
    /// without touching the image tower whose gradients paint.
    pub align_steps: usize,
    /// Captions of each adversarial batch that also get a picture painted for them by the
    /// twin itself, as a negative (0: none). Robust training asks the twin to keep the
    /// right picture's caption within a budget of it; a painting starts from noise and goes
    /// wherever the twin's gradient leads, and docs/shapes.md found those the shipped twin
    /// scores as high as the right picture while they are wrong in shape and place. The
    /// loss then asks, for each such caption, that its picture score above its painting
    /// (contrastive divergence, as energy-based models train).
    pub painted_negatives: usize,
    /// Steps that paint each negative from low-frequency noise, toward its caption's
    /// cosine: signed gradient-ascent steps of `PAINTING_STEP`, or the evaluation's steps
    /// under `painting_views`.
    pub painting_steps: usize,
    /// Paint the negatives as the evaluation paints (`eval::evaluation_settings()`: its views,
    /// AdamW, smoothness and thresholding) rather than by signed steps without views:
    /// docs/shapes.md found that the twin learnt to tell its cheap paintings from the right
    /// pictures and that this did not carry over to the evaluation's. Sixteen views a step
    /// cost sixteen times the cheap painting's passes.
    pub painting_views: bool,
    /// Temperature of the contrastive softmax (CLIP's initial 0.07).
    pub temperature: f32,
    /// Where the tensors live: burn-flex on the CPU (the shipped twins), or a GPU through
    /// wgpu, with autodiff either way. The data and the attacks' noise are drawn on the host
    /// from the seed, so a run on either computes the same steps up to float rounding.
    pub device: Device,
}

impl Plan {
    /// Refuses painted negatives that cannot be drawn: more than a batch holds, none of
    /// painting, a twin without captions to paint for (FARE) or without adversarial steps.
    pub fn check_painting(&self) -> Result<()> {
        let k = self.painted_negatives;
        if k == 0 {
            return Ok(());
        }
        let fail = |why: String| Err(Error::Invalid(why));
        if k > self.batch {
            return fail(format!("--painted-negatives {k} is more than a batch of {} holds", self.batch));
        }
        if self.painting_steps == 0 {
            return fail("--painting-steps must be at least 1 to paint a negative".into());
        }
        if self.objective != Objective::Tecoa {
            return fail("painted negatives are scored against their captions: they need --objective tecoa".into());
        }
        Ok(())
    }
}

impl Default for Plan {
    /// The shipped twins' recipe (docs/shapes.md, "What the shipped twins took"), so that
    /// `clipag shapes train` with no options follows it.
    fn default() -> Self {
        Plan {
            seed: 1,
            batch: 128,
            learning_rate: 1e-3,
            pretrain_steps: 2250,
            finetune_steps: 900,
            epsilon: Some(16.0 / 255.0),
            attack: Attack::NoiseFgsm,
            attack_steps: 3,
            noise: 4.0,
            clean_share: 0.0,
            minimal_pairs: false,
            shades: 0,
            objective: Objective::Tecoa,
            deeper_vision: 0,
            wider_vision_mlp: 0,
            vision_width: 0,
            resnet: None,
            patch_scale: 1.0,
            patch_low_pass: 0,
            position_scale: 1.0,
            align_steps: 0,
            painted_negatives: 0,
            painting_steps: 10,
            painting_views: false,
            temperature: 0.07,
            device: Device::flex().autodiff(),
        }
    }
}

/// How the robust twin's adversarial images are made; the single-step attacks cost one extra
/// forward and backward pass per training step, PGD one per attack step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Attack {
    /// FGSM with a random start (Wong, Rice and Kolter, "Fast is better than free", 2020):
    /// from a uniform point in the ball, one signed step of 1.25 epsilon, projected back.
    Fgsm,
    /// N-FGSM (de Jorge et al., "Make some noise", 2022): from uniform noise of twice epsilon,
    /// one signed step of epsilon, not projected; it avoids the catastrophic overfitting that
    /// FGSM suffers at budgets above about 8/255.
    #[value(name = "n-fgsm")]
    NoiseFgsm,
    /// FGSM with a random start under an L2 budget (the threat model of most work on
    /// perceptually aligned gradients, e.g. Santurkar et al. 2019): from a uniform radius in a
    /// random direction, one step of 1.25 epsilon along the normalised gradient, projected
    /// back into the ball. An L-infinity step moves every pixel alike, the L2 step puts its
    /// budget where the gradient is.
    L2,
    /// PGD (Madry et al., 2018; the attack TeCoA trains against): from a uniform point in
    /// the L-infinity ball, `attack_steps` signed steps of 2.5 epsilon / steps, each projected
    /// back. Several steps find the loss's maximum where a single step can be misled by a
    /// gradient that is steep only near the clean picture.
    Pgd,
}

impl Attack {
    /// The budget on pixel values 0 to 1, from the command line's: L-infinity radii are given
    /// in steps of 1/255, L2 radii as they are.
    pub fn budget(self, given: f32) -> Result<f32> {
        if !(given.is_finite() && given > 0.0) {
            return Err(Error::Invalid(format!("the adversarial budget (--epsilon) must be a positive number, not {given}")));
        }
        Ok(match self {
            Attack::Fgsm | Attack::NoiseFgsm | Attack::Pgd => given / 255.0,
            Attack::L2 => given,
        })
    }

    /// N-FGSM's random start from the command line's multiple of epsilon (None: the shipped
    /// twin's 4; the paper's default is 2). The other attacks start inside their ball, so a
    /// start given for them is refused rather than ignored.
    pub fn noise(self, given: Option<f32>) -> Result<f32> {
        match (self, given) {
            (_, None) => Ok(Plan::default().noise),
            (Attack::NoiseFgsm, Some(v)) if v.is_finite() && v >= 0.0 => Ok(v),
            (Attack::NoiseFgsm, Some(v)) => Err(Error::Invalid(format!(
                "N-FGSM's random start (--noise) must be zero or a positive multiple of epsilon, not {v}"
            ))),
            (_, Some(_)) => Err(Error::Invalid("--noise is N-FGSM's random start: use it with --attack n-fgsm".into())),
        }
    }

    /// PGD's steps from the command line's (None: `Plan::default().attack_steps`); the
    /// single-step attacks refuse them rather than ignore them.
    pub fn steps(self, given: Option<usize>) -> Result<usize> {
        match (self, given) {
            (_, None) => Ok(Plan::default().attack_steps),
            (Attack::Pgd, Some(steps)) if steps > 0 => Ok(steps),
            (Attack::Pgd, Some(steps)) => Err(Error::Invalid(format!("PGD needs at least one step (--attack-steps), not {steps}"))),
            (_, Some(_)) => Err(Error::Invalid("--attack-steps is PGD's: use it with --attack pgd".into())),
        }
    }

    pub fn describe(self, epsilon: f32, noise: f32, steps: usize) -> String {
        match self {
            Attack::Fgsm => format!("FGSM with random start, L-inf {epsilon:.4} = {:.1}/255", epsilon * 255.0),
            Attack::NoiseFgsm => format!("N-FGSM, L-inf {epsilon:.4} = {:.1}/255, start noise {noise} epsilon", epsilon * 255.0),
            Attack::L2 => format!("FGSM with random start, L2 {epsilon}"),
            Attack::Pgd => format!("PGD, {steps} steps, L-inf {epsilon:.4} = {:.1}/255", epsilon * 255.0),
        }
    }
}

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
enum Goal {
    /// The batch's captions (unit embeddings, held fixed) and which fits which picture.
    Captions { texts: Tensor<2>, targets: Tensor<2> },
    /// The pre-trained model's unit embeddings of the clean pictures.
    Reference(Tensor<2>),
}

impl Goal {
    fn loss(&self, images: Tensor<2>, temperature: f32) -> Tensor<1> {
        match self {
            Goal::Captions { texts, targets } => cross_entropy(unit(images).matmul(texts.clone().transpose()) / temperature, targets.clone()),
            Goal::Reference(reference) => (unit(images) - reference.clone()).square().sum_dim(1).mean(),
        }
    }

    /// The goal of the batch's first `count` pictures.
    fn first(&self, count: usize) -> Goal {
        match self {
            Goal::Captions { texts, targets } => Goal::Captions { texts: texts.clone(), targets: targets.clone().narrow(0, 0, count) },
            Goal::Reference(reference) => Goal::Reference(reference.clone().narrow(0, 0, count)),
        }
    }
}

/// The share of an adversarial batch left clean, from the command line's (None: none).
pub fn clean_share(given: Option<f32>) -> Result<f32> {
    match given {
        None => Ok(0.0),
        Some(v) if (0.0..1.0).contains(&v) => Ok(v),
        Some(v) => Err(Error::Invalid(format!("--clean-share is the share of each batch left clean: at least 0 and less than 1, not {v}"))),
    }
}

/// Which twins a run trains (both start from the shared pre-training).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Twins {
    Both,
    Plain,
    Robust,
}

/// The state of a run: the model, its optimiser and the step it is at.
pub struct Trainer {
    pub plan: Plan,
    pub config: ClipConfig,
    tokenizer: Tokenizer,
    tokenizer_json: Vec<u8>,
    device: Device,
    model: Clip,
    origins: Origins,
    optimizer: burn::optim::ModuleOptimizer,
    /// The pre-trained model, frozen: FARE's reference.
    reference: Option<Clip>,
    /// Whether the image tower is frozen (the alignment steps).
    vision_frozen: bool,
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

    /// Starts a twin from the pre-training in `dir` with `plan.deeper_vision` more vision
    /// blocks, vision MLPs `plan.wider_vision_mlp` wide and its patch embedding scaled by
    /// `plan.patch_scale`, the grown tower computing what the pre-trained one did at first
    /// (see `Grown`); and, changing what it computes, its patches' positions times
    /// `plan.position_scale` and its patch filters cut to `plan.patch_low_pass` frequencies
    /// (with none of them, as `resume`).
    pub fn grown(plan: Plan, dir: &Path) -> Result<Self> {
        Self::from_checkpoint(plan, dir, true)
    }

    fn from_checkpoint(plan: Plan, dir: &Path, grow: bool) -> Result<Self> {
        let step = progress(dir)?;
        Self::from_folder(plan, dir, grow, step)
    }

    /// `grow`: apply the plan's growth (a twin's start), or read the folder as it is.
    fn from_folder(plan: Plan, dir: &Path, grow: bool, step: usize) -> Result<Self> {
        let (added_vision_blocks, mlp_width, patch_scale, position_scale, patch_low_pass) = if grow {
            (plan.deeper_vision, plan.wider_vision_mlp, plan.patch_scale, plan.position_scale, plan.patch_low_pass)
        } else {
            (0, 0, 1.0, 1.0, 0)
        };
        for (factor, what) in [(patch_scale, "the patch embedding's scale (--patch-scale)"), (position_scale, "the positions' scale (--position-scale)")] {
            if !(factor.is_finite() && factor > 0.0) {
                return Err(Error::Invalid(format!("{what} must be a positive number, not {factor}")));
            }
        }
        let files = folder::read(dir)?;
        let mut config = files.manifest.config.clone();
        let stored = match &mut config.vision {
            VisionConfig::Transformer(vision) => {
                let stored = vision.clone();
                if plan.vision_width > 0 && plan.vision_width != stored.width {
                    return Err(Error::Invalid(format!(
                        "{} holds an image tower {} wide, not the {} asked for (--vision-width): a residual stream cannot change width after pre-training",
                        dir.display(),
                        stored.width,
                        plan.vision_width
                    )));
                }
                vision.layers += added_vision_blocks;
                if mlp_width > 0 {
                    if mlp_width < stored.mlp_width {
                        return Err(Error::Invalid(format!(
                            "the vision MLPs can grow, not shrink: {mlp_width} is narrower than the pre-training's {}",
                            stored.mlp_width
                        )));
                    }
                    vision.mlp_width = mlp_width;
                }
                Some(stored)
            }
            VisionConfig::ResNet(_) => {
                let grows = added_vision_blocks > 0 || mlp_width > 0 || patch_low_pass > 0 || plan.vision_width > 0;
                if grows || patch_scale != 1.0 || position_scale != 1.0 {
                    return Err(Error::Invalid(format!(
                        "{} holds a ModifiedResNet: growing, widening and rescaling a tower are the ViT's options",
                        dir.display()
                    )));
                }
                None
            }
        };
        config.validate()?;
        let device = plan.device.clone();
        let inner = crate::weights::StoredWeights::parse(&files.weights)?;
        let mut weights = Grown {
            inner,
            layers: stored.as_ref().map_or(0, |v| v.layers),
            mlp_width: stored.as_ref().map_or(0, |v| v.mlp_width),
            patch_scale,
            position_scale,
            patch_low_pass,
            random: RandomWeights::new(plan.seed),
        };
        let (model, origins) = Clip::trainable(&config, &mut weights, &device)?;
        Self::with_model(plan, config, files.tokenizer.clone(), device, model, origins, step)
    }

    fn with_model(
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
        let mut weights = crate::weights::StoredWeights::parse(&files.weights)?;
        self.reference = Some(Clip::load(&files.manifest.config, &mut weights, &self.device)?);
        Ok(())
    }

    pub fn total_steps(&self) -> usize {
        self.aligning_from() + self.plan.align_steps
    }

    /// The step the text-alignment steps start at.
    fn aligning_from(&self) -> usize {
        self.plan.pretrain_steps + self.plan.finetune_steps
    }

    /// Linear warm-up over 200 steps, then cosine decay to a tenth over pre-training and
    /// fine-tuning; the alignment steps keep that tenth (so adding them changes nothing before).
    fn learning_rate(&self) -> f64 {
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
    fn batch(&self, count: usize, rng: &mut Rng) -> Result<(Tensor<4>, Vec<Vec<u32>>, Tensor<2>)> {
        let size = self.config.vision.image_size();
        let drawn = Drawn::new(count, size, &self.plan, &self.tokenizer, rng)?;
        let targets = fit_targets(&drawn, &self.device);
        let images = Tensor::<4>::from_data(TensorData::new(drawn.pixels, [count, 3, size, size]), &self.device);
        Ok((images, drawn.sequences, targets))
    }

    /// TeCoA's goal: the batch's captions as the model reads them now, held fixed.
    fn captions(&self, sequences: &[Vec<u32>], targets: &Tensor<2>) -> Result<Goal> {
        Ok(Goal::Captions { texts: unit(self.model.encode_text(sequences)?.detach()), targets: targets.clone() })
    }

    /// One picture per caption (rows of `texts`, unit embeddings), painted by the twin as it
    /// is now from low-frequency noise: by `paint_signed` or, under `painting_views`, as the
    /// evaluation paints (`paint_through_views`).
    fn paint(&self, texts: Tensor<2>, rng: &mut Rng) -> Result<Tensor<4>> {
        let size = self.config.vision.image_size();
        let count = texts.dims()[0];
        let start: Vec<f32> = (0..count).flat_map(|_| low_frequency_noise(size, PAINTING_START_NOISE, rng).data).collect();
        let start = Tensor::<4>::from_data(TensorData::new(start, [count, 3, size, size]), &self.device);
        let painted = if self.plan.painting_views { self.paint_through_views(start, texts, rng)? } else { self.paint_signed(start, texts)? };
        Ok(painted.detach())
    }

    /// `painting_steps` signed steps up each picture's cosine with its caption, kept in
    /// [0, 1]: the generation's loop without its views, the cheapest stand-in for it.
    fn paint_signed(&self, mut pictures: Tensor<4>, texts: Tensor<2>) -> Result<Tensor<4>> {
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
    fn paint_through_views(&self, pictures: Tensor<4>, texts: Tensor<2>, rng: &mut Rng) -> Result<Tensor<4>> {
        let settings = super::eval::evaluation_settings();
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

    /// The batch's first images made adversarial, its last `clean_share` left clean (the
    /// attack runs on the adversarial ones only, against every caption of the batch).
    fn mixed(&self, images: Tensor<4>, goal: &Goal, epsilon: f32, rng: &mut Rng) -> Result<Tensor<4>> {
        let count = images.dims()[0];
        let clean = ((count as f32 * self.plan.clean_share).round() as usize).min(count);
        if clean == 0 {
            return self.attack(images, goal, epsilon, rng);
        }
        if clean == count {
            return Ok(images);
        }
        let attacked = count - clean;
        let adversarial = self.attack(images.clone().narrow(0, 0, attacked), &goal.first(attacked), epsilon, rng)?;
        Ok(Tensor::cat(vec![adversarial, images.narrow(0, attacked, clean)], 0))
    }

    /// One gradient step that increases the goal's loss from a random start (see `Attack`),
    /// the result kept in [0, 1].
    fn attack(&self, images: Tensor<4>, goal: &Goal, epsilon: f32, rng: &mut Rng) -> Result<Tensor<4>> {
        let dims = images.dims();
        let count = dims.iter().product::<usize>();
        let start = match self.plan.attack {
            Attack::Fgsm | Attack::Pgd => (0..count).map(|_| rng.range(-epsilon, epsilon)).collect(),
            Attack::NoiseFgsm => {
                let noise = self.plan.noise * epsilon;
                (0..count).map(|_| rng.range(-noise, noise)).collect()
            }
            Attack::L2 => {
                // A random direction per image, at a uniform fraction of the radius.
                let per_image = count / dims[0];
                let mut start: Vec<f32> = (0..count).map(|_| rng.normal()).collect();
                for image in start.chunks_mut(per_image) {
                    let norm = image.iter().map(|v| v * v).sum::<f32>().sqrt().max(1e-12);
                    let radius = epsilon * rng.uniform();
                    image.iter_mut().for_each(|v| *v *= radius / norm);
                }
                start
            }
        };
        let mut delta = Tensor::<4>::from_data(TensorData::new(start, dims), &self.device);
        let steps = if self.plan.attack == Attack::Pgd { self.plan.attack_steps } else { 1 };
        for _ in 0..steps {
            let grad = self.input_gradient(images.clone(), delta.clone(), goal)?;
            delta = match self.plan.attack {
                Attack::Fgsm => (delta + grad.sign() * (1.25 * epsilon)).clamp(-epsilon, epsilon),
                Attack::NoiseFgsm => delta + grad.sign() * epsilon,
                Attack::L2 => {
                    let delta = delta + grad.clone() / image_norm(grad) * (1.25 * epsilon);
                    let scale = (image_norm(delta.clone()).recip() * epsilon).clamp_max(1.0);
                    delta * scale
                }
                Attack::Pgd => (delta + grad.sign() * (2.5 * epsilon / steps as f32)).clamp(-epsilon, epsilon),
            };
        }
        Ok((images + delta).clamp(0.0, 1.0).detach())
    }

    /// The gradient of the goal's loss at the pictures moved by `delta`, with respect to it.
    fn input_gradient(&self, images: Tensor<4>, delta: Tensor<4>, goal: &Goal) -> Result<Tensor<4>> {
        let delta = delta.detach().require_grad();
        let adversarial = (images + delta.clone()).clamp(0.0, 1.0);
        let loss = goal.loss(self.model.encode_image(adversarial)?, self.plan.temperature);
        delta.grad(&loss.backward()).ok_or_else(|| Error::Internal("the attack produced no gradient".into()))
    }

    /// How much the plan's attack raises the image-to-caption loss (TeCoA's, which the
    /// robust twin trains on) of `count` fresh scenes drawn from `seed`: (clean, attacked),
    /// nothing updated. A single-step attack that finds much less than PGD's several steps
    /// on the same model is misled by the model's gradient at the clean picture.
    pub fn attacked_loss(&self, count: usize, seed: u64) -> Result<(f32, f32)> {
        let epsilon = self.plan.epsilon.ok_or_else(|| Error::Invalid("an attack needs a budget".into()))?;
        if count < 2 {
            // One scene's caption has no rival: its loss is zero, attacked or not.
            return Err(Error::Invalid(format!("an attack's batch (--batch) needs at least 2 scenes, not {count}")));
        }
        let mut rng = Rng::new(seed);
        let (images, sequences, targets) = self.batch(count, &mut rng)?;
        let goal = self.captions(&sequences, &targets)?;
        let clean = scalar(goal.loss(self.model.encode_image(images.clone())?, self.plan.temperature))?;
        let attacked = self.attack(images, &goal, epsilon, &mut rng)?;
        Ok((clean, scalar(goal.loss(self.model.encode_image(attacked)?, self.plan.temperature))?))
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
/// A loss's value, read back from the device.
fn scalar(loss: Tensor<1>) -> Result<f32> {
    Ok(loss.into_data().try_into_vec_as::<f32>().map_err(|e| Error::Internal(format!("reading a result back from the device failed: {e:?}")))?[0])
}

fn progress(dir: &Path) -> Result<usize> {
    let progress = std::fs::read_to_string(dir.join(PROGRESS))
        .map_err(|e| Error::Invalid(format!("{}: not a training checkpoint ({e})", dir.display())))?;
    let step = serde_json::from_str::<serde_json::Value>(&progress)
        .ok()
        .and_then(|v| v["step"].as_u64())
        .ok_or_else(|| Error::Invalid(format!("{}: {PROGRESS} names no step", dir.display())))?;
    Ok(step as usize)
}

/// Stored weights, grown where the model asks for a larger image tower than they hold, so
/// that the grown tower starts as the pre-trained one (function-preserving growth, as in
/// Net2Net, Chen, Goodfellow and Shlens 2016):
/// - deeper: each block past the stored ones is a copy of the last stored block with its
///   attention's and its MLP's output projections zero, so it adds nothing to the residual
///   stream;
/// - wider MLPs: each MLP's new hidden units get random input weights (as a fresh model's)
///   and zero output weights, so they add nothing either;
/// - rescaled patch embedding: `conv1` and the patches' positional embeddings times one
///   factor, which `ln_pre` divides out again.
///
/// Not growths, done here because they too change the stored weights as they load, and
/// not keeping the function: the patches' positions times a further factor, and the
/// low-passed patch filters (`low_pass`).
///
/// The zero projections get gradients at once and open the new parts as training goes.
struct Grown<'a> {
    inner: crate::weights::StoredWeights<'a>,
    /// How many vision blocks the stored weights hold.
    layers: usize,
    /// The stored vision MLPs' hidden width.
    mlp_width: usize,
    /// Factor on the patch tokens' parts: the patch embedding and the patches' positions.
    patch_scale: f32,
    /// Further factor on the patches' positions alone.
    position_scale: f32,
    /// Frequencies kept in each direction of each patch filter (`low_pass`); 0 keeps all.
    patch_low_pass: usize,
    /// Draws the new hidden units' input weights.
    random: RandomWeights,
}

impl WeightSource for Grown<'_> {
    fn take(&mut self, name: &str, shape: &[usize]) -> Result<HostTensor> {
        const BLOCKS: &str = "visual.transformer.resblocks.";
        let Some((index, field)) = name
            .strip_prefix(BLOCKS)
            .and_then(|rest| rest.split_once('.'))
            .and_then(|(index, field)| Some((index.parse::<usize>().ok()?, field)))
        else {
            let mut tensor = self.inner.take(name, shape)?;
            // `ln_pre` normalises each token alone, so the patch tokens can shrink while the
            // class token (row 0 of the positions), whose small norm `ln_pre`'s epsilon
            // would start to matter for, keeps its size.
            match name {
                "visual.conv1.weight" => {
                    tensor.data.iter_mut().for_each(|v| *v *= self.patch_scale);
                    if self.patch_low_pass > 0 {
                        low_pass(&mut tensor.data, shape[3], self.patch_low_pass);
                    }
                }
                "visual.positional_embedding" => {
                    let factor = self.patch_scale * self.position_scale;
                    tensor.data[shape[1]..].iter_mut().for_each(|v| *v *= factor);
                }
                _ => {}
            }
            return Ok(tensor);
        };
        if index >= self.layers && (field.starts_with("attn.out_proj.") || field.starts_with("mlp.c_proj.")) {
            return Ok(HostTensor::new(shape.to_vec(), vec![0.0; shape.iter().product()]));
        }
        let stored = self.inner.take(&format!("{BLOCKS}{}.{field}", index.min(self.layers.saturating_sub(1))), shape)?;
        match field {
            // `[hidden, width]`: new rows below the stored ones.
            "mlp.c_fc.weight" if shape[0] > self.mlp_width => {
                let fresh = self.random.take(name, &[shape[0] - self.mlp_width, shape[1]])?;
                Ok(HostTensor::new(shape.to_vec(), [stored.data, fresh.data].concat()))
            }
            "mlp.c_fc.bias" if shape[0] > self.mlp_width => {
                Ok(HostTensor::new(shape.to_vec(), [stored.data, vec![0.0; shape[0] - self.mlp_width]].concat()))
            }
            // `[width, hidden]`: new zero columns right of the stored ones.
            "mlp.c_proj.weight" if shape[1] > self.mlp_width => {
                let (rows, old, new) = (shape[0], self.mlp_width, shape[1]);
                let mut data = vec![0.0; rows * new];
                for r in 0..rows {
                    data[r * new..r * new + old].copy_from_slice(&stored.data[r * old..(r + 1) * old]);
                }
                Ok(HostTensor::new(shape.to_vec(), data))
            }
            _ => Ok(stored),
        }
    }
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

/// `targets[i][j]`: 1 where picture i fits caption j, each row normalised to sum to 1.
fn fit_targets(drawn: &Drawn, device: &Device) -> Tensor<2> {
    let n = drawn.scenes.len();
    let mut data: Vec<f32> = drawn.fits().into_iter().map(f32::from).collect();
    for row in data.chunks_mut(n) {
        let total: f32 = row.iter().sum();
        row.iter_mut().for_each(|v| *v /= total);
    }
    Tensor::from_data(TensorData::new(data, [n, n]), device)
}

/// Each image's L2 norm, `[n, 1, 1, 1]`.
fn image_norm(x: Tensor<4>) -> Tensor<4> {
    x.square().sum_dim(1).sum_dim(2).sum_dim(3).sqrt().clamp_min(1e-12)
}

fn unit(x: Tensor<2>) -> Tensor<2> {
    let norm = x.clone().square().sum_dim(1).sqrt().clamp_min(1e-12);
    x / norm
}

/// Soft-target cross-entropy over rows, averaged.
fn cross_entropy(logits: Tensor<2>, targets: Tensor<2>) -> Tensor<1> {
    let log_probs = burn::tensor::activation::log_softmax(logits, 1);
    (log_probs * targets).sum_dim(1).neg().mean()
}

/// Keeps the lowest `keep` x `keep` frequencies of each `size` x `size` block in `blocks`
/// (row-major, one after another): with the orthonormal DCT-II basis `d` (rows the cosines,
/// lowest first) and `l` the projection onto its first `keep` rows, each block `b` becomes
/// `l b l`. A flat block is its first basis function, so it stays as it is.
fn low_pass(blocks: &mut [f32], size: usize, keep: usize) {
    let n = size as f64;
    let basis = |k: usize, i: usize| {
        let scale = if k == 0 { (1.0 / n).sqrt() } else { (2.0 / n).sqrt() };
        scale * (std::f64::consts::PI * (i as f64 + 0.5) * k as f64 / n).cos()
    };
    // `l[i][j]`: the sum over kept frequencies of d[k][i] d[k][j].
    let l: Vec<f64> =
        (0..size * size).map(|ij| (0..keep.min(size)).map(|k| basis(k, ij / size) * basis(k, ij % size)).sum()).collect();
    let product = |a: &[f64], b: &[f64]| -> Vec<f64> {
        (0..size * size).map(|ij| (0..size).map(|k| a[ij / size * size + k] * b[k * size + ij % size]).sum()).collect()
    };
    for block in blocks.chunks_mut(size * size) {
        let b: Vec<f64> = block.iter().map(|&v| v as f64).collect();
        let kept = product(&product(&l, &b), &l);
        block.iter_mut().zip(kept).for_each(|(v, k)| *v = k as f32);
    }
}

/// CLIP's symmetric contrastive loss, with every fitting caption (and picture) a positive.
fn contrastive_loss(images: Tensor<2>, texts: Tensor<2>, targets: &Tensor<2>, temperature: f32) -> Tensor<1> {
    let logits = unit(images).matmul(unit(texts).transpose()) / temperature;
    // Text j's positives are the pictures that fit it: the column of fits, normalised.
    let fits = targets.clone().greater_elem(0.0).float();
    let by_text = fits.clone().transpose() / fits.transpose().sum_dim(1);
    (cross_entropy(logits.clone(), targets.clone()) + cross_entropy(logits.transpose(), by_text)) / 2.0
}

/// For each caption (row of `texts`), the cross-entropy of its picture against its
/// painting: low when the caption's cosine with its picture is well above that with the
/// picture the twin painted for it.
fn painted_loss(pictures: Tensor<2>, paintings: Tensor<2>, texts: Tensor<2>, temperature: f32) -> Tensor<1> {
    let texts = unit(texts);
    let right = (unit(pictures) * texts.clone()).sum_dim(1);
    let painted = (unit(paintings) * texts).sum_dim(1);
    let logits = Tensor::cat(vec![right, painted], 1) / temperature;
    let [count, _] = logits.dims();
    let targets = Tensor::<2>::from_data(TensorData::new([1.0f32, 0.0].repeat(count), [count, 2]), &logits.device());
    cross_entropy(logits, targets)
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

/// The whole recipe, one command: clean pre-training, then from that checkpoint the plain
/// twin (more clean steps) and the robust twin (adversarial steps), each written as a q8
/// model folder under `out` (`shapes-plain`, `shapes-robust`). Every phase checkpoints
/// under `checkpoints` and a rerun resumes the phase it stopped in.
pub fn twins(plan: &Plan, which: Twins, out: &Path, checkpoints: &Path, checkpoint_every: usize) -> Result<()> {
    plan.check_painting()?;
    let pre_dir = checkpoints.join("pretrain");
    let done = |dir: &Path, step: usize| progress(dir).is_ok_and(|reached| reached >= step);
    let start = |dir: &Path, fallback: &Path, plan: Plan| -> Result<Trainer> {
        if dir.join(PROGRESS).is_file() {
            eprintln!("resuming from {}", dir.display());
            Trainer::resume(plan, dir)
        } else if fallback.join(PROGRESS).is_file() {
            Trainer::grown(plan, fallback)
        } else {
            Trainer::new(plan)
        }
    };
    let pre_plan = Plan { epsilon: None, ..plan.clone() };
    if !done(&pre_dir, plan.pretrain_steps) {
        eprintln!("pre-training: {} clean steps", plan.pretrain_steps);
        let mut trainer = start(&pre_dir, &pre_dir, pre_plan)?;
        run(&mut trainer, plan.pretrain_steps, 50, Some((&pre_dir, checkpoint_every)))?;
        trainer.save_checkpoint(&pre_dir)?;
    }
    let mut twins = vec![("shapes-plain", None), ("shapes-robust", plan.epsilon)];
    twins.retain(|(_, epsilon)| match which {
        Twins::Both => true,
        Twins::Plain => epsilon.is_none(),
        Twins::Robust => epsilon.is_some(),
    });
    for (name, epsilon) in twins {
        let dir = checkpoints.join(name);
        let twin = Plan { epsilon, ..plan.clone() };
        let mut trainer = start(&dir, &pre_dir, twin)?;
        if epsilon.is_some() && plan.objective == Objective::Fare {
            trainer.set_reference(&pre_dir)?;
        }
        let kind = match epsilon {
            Some(e) if plan.clean_share > 0.0 => {
                format!("adversarial ({}; {:.0}% of each batch clean)", plan.attack.describe(e, plan.noise, plan.attack_steps), plan.clean_share * 100.0)
            }
            Some(e) => format!("adversarial ({})", plan.attack.describe(e, plan.noise, plan.attack_steps)),
            None => "clean".to_string(),
        };
        // The manifest's source says how the batches were drawn, as it says the attack.
        let kind = if plan.minimal_pairs { format!("{kind} minimal-pair") } else { kind };
        let kind = if plan.shades > 0 { format!("{kind} (colours shaded up to {}/255)", plan.shades) } else { kind };
        let kind = if plan.deeper_vision > 0 { format!("{kind} ({} vision blocks added)", plan.deeper_vision) } else { kind };
        let kind = if plan.wider_vision_mlp > 0 { format!("{kind} (vision MLPs widened to {})", plan.wider_vision_mlp) } else { kind };
        let kind = match &trainer.config.vision {
            VisionConfig::Transformer(v) if v.width != vit().width => format!("{kind} (image tower {} wide)", v.width),
            VisionConfig::ResNet(r) => format!("{kind} (ModifiedResNet image tower, layers {:?}, width {}, {} px)", r.layers, r.width, r.image_size),
            VisionConfig::Transformer(_) => kind,
        };
        let kind = if plan.patch_scale != 1.0 { format!("{kind} (patch embedding scaled by {})", plan.patch_scale) } else { kind };
        let kind = if plan.position_scale != 1.0 { format!("{kind} (patch positions scaled by {})", plan.position_scale) } else { kind };
        let kind = if plan.patch_low_pass > 0 {
            format!("{kind} (patch filters cut to their lowest {0} x {0} frequencies)", plan.patch_low_pass)
        } else {
            kind
        };
        let kind = match (epsilon, plan.objective) {
            (Some(_), Objective::Fare) => format!("{kind} FARE (embeddings pulled to the pre-trained model's)"),
            _ => kind,
        };
        let kind = match (epsilon, plan.painted_negatives) {
            (Some(_), k) if k > 0 => {
                let how = if plan.painting_views { "steps of the evaluation's painting" } else { "ascent steps" };
                format!("{kind} (with {k} of its own paintings a batch as negatives, {} {how} each)", plan.painting_steps)
            }
            _ => kind,
        };
        eprintln!("{name}: {} {kind} steps", plan.finetune_steps);
        let total = trainer.total_steps();
        run(&mut trainer, total, 50, Some((&dir, checkpoint_every)))?;
        trainer.save_checkpoint(&dir)?;
        let aligned = match plan.align_steps {
            0 => String::new(),
            n => format!(", then {n} steps of the text tower alone on clean pictures"),
        };
        let source = format!(
            "trained by `clipag shapes train` from seed {}: {} clean contrastive steps, then {} {kind} steps{aligned}, batch {}",
            plan.seed, plan.pretrain_steps, plan.finetune_steps, plan.batch
        );
        let title = if epsilon.is_some() { "Shapes (robust)" } else { "Shapes (plain)" };
        trainer.save(&out.join(name), Quantization::Q8, title, source)?;
        eprintln!("wrote {}", out.join(name).display());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The Shapes ViT of a config these tests built.
    fn tower(config: &ClipConfig) -> &VisionTransformerConfig {
        match &config.vision {
            VisionConfig::Transformer(vision) => vision,
            VisionConfig::ResNet(_) => panic!("these tests train the ViT"),
        }
    }

    /// The change each attack makes to a batch, per image: (largest |change|, L2 norm).
    fn changes(attack: Attack, epsilon: f32, noise: f32) -> Vec<(f32, f32)> {
        let plan = Plan { seed: 3, batch: 4, pretrain_steps: 0, finetune_steps: 1, epsilon: Some(epsilon), attack, noise, ..Plan::default() };
        let trainer = Trainer::new(plan).unwrap();
        let mut rng = Rng::new(9);
        let (images, sequences, targets) = trainer.batch(4, &mut rng).unwrap();
        let pixels = images.clone().into_data().try_into_vec_as::<f32>().unwrap();
        let goal = trainer.captions(&sequences, &targets).unwrap();
        let attacked = trainer.attack(images, &goal, epsilon, &mut rng).unwrap();
        let attacked = attacked.into_data().try_into_vec_as::<f32>().unwrap();
        let per_image = 3 * 64 * 64;
        pixels
            .chunks(per_image)
            .zip(attacked.chunks(per_image))
            .map(|(a, b)| {
                let d: Vec<f32> = a.iter().zip(b).map(|(x, y)| y - x).collect();
                (d.iter().fold(0.0f32, |m, v| m.max(v.abs())), d.iter().map(|v| v * v).sum::<f32>().sqrt())
            })
            .collect()
    }

    #[test]
    fn a_mixed_batch_leaves_its_clean_share_untouched() {
        let plan = Plan { seed: 3, batch: 4, pretrain_steps: 0, finetune_steps: 1, clean_share: 0.5, ..Plan::default() };
        let trainer = Trainer::new(plan).unwrap();
        let mut rng = Rng::new(9);
        let (images, sequences, targets) = trainer.batch(4, &mut rng).unwrap();
        let pixels = images.clone().into_data().try_into_vec_as::<f32>().unwrap();
        let goal = trainer.captions(&sequences, &targets).unwrap();
        let mixed = trainer.mixed(images, &goal, 16.0 / 255.0, &mut rng).unwrap();
        let mixed = mixed.into_data().try_into_vec_as::<f32>().unwrap();
        let per_image = 3 * 64 * 64;
        let moved: Vec<bool> = pixels.chunks(per_image).zip(mixed.chunks(per_image)).map(|(a, b)| a != b).collect();
        assert_eq!(moved, [true, true, false, false]);
        assert_eq!(clean_share(None).unwrap(), 0.0);
        for given in [1.0, -0.1, f32::NAN] {
            assert!(clean_share(Some(given)).unwrap_err().to_string().contains("--clean-share"));
        }
    }

    #[test]
    fn fare_starts_at_zero_and_its_attack_moves_the_embeddings_away() {
        let plan = Plan { seed: 3, batch: 4, pretrain_steps: 0, finetune_steps: 1, objective: Objective::Fare, ..Plan::default() };
        let mut trainer = Trainer::new(plan).unwrap();
        let dir = std::env::temp_dir().join(format!("clipag-fare-{}", std::process::id()));
        trainer.save_checkpoint(&dir).unwrap();
        trainer.set_reference(&dir).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        let mut rng = Rng::new(9);
        let (images, _, _) = trainer.batch(4, &mut rng).unwrap();
        let reference = trainer.reference.as_ref().unwrap().encode_image(images.clone()).unwrap();
        let goal = Goal::Reference(unit(reference.detach()));
        let value = |images: Tensor<4>| goal.loss(trainer.model.encode_image(images).unwrap(), 0.07).into_data().try_into_vec_as::<f32>().unwrap()[0];
        // The reference is the model itself: nothing to pull toward on clean pictures.
        assert!(value(images.clone()) < 1e-6, "{}", value(images.clone()));
        let attacked = trainer.attack(images, &goal, 16.0 / 255.0, &mut rng).unwrap();
        assert!(value(attacked) > 1e-4);
    }

    #[test]
    fn a_low_pass_keeps_flat_and_slow_blocks_and_drops_fast_ones() {
        let wave = |f: f32| (0..64).map(|i| ((i % 8) as f32 * f).cos()).collect::<Vec<f32>>();
        let flat = vec![0.7; 64];
        // DCT-II's cosine of frequency k at pixel x of 8.
        let cosine = |k: usize, x: usize| (std::f32::consts::PI * (x as f32 + 0.5) * k as f32 / 8.0).cos();
        let slow: Vec<f32> = (0..64).map(|i| cosine(1, i % 8)).collect();
        let checker: Vec<f32> = (0..64).map(|i| cosine(7, i % 8) * cosine(6, i / 8)).collect();
        let mut blocks = [flat.clone(), slow.clone(), checker, wave(1.3)].concat();
        low_pass(&mut blocks, 8, 2);
        let close = |a: &[f32], b: &[f32]| a.iter().zip(b).all(|(x, y)| (x - y).abs() < 1e-5);
        assert!(close(&blocks[..64], &flat) && close(&blocks[64..128], &slow));
        assert!(blocks[128..192].iter().all(|v| v.abs() < 1e-5), "{:?}", &blocks[128..192]);
        // A projection: once more changes nothing, and it only takes energy away.
        let once = blocks[192..].to_vec();
        let energy = |b: &[f32]| b.iter().map(|v| v * v).sum::<f32>();
        assert!(energy(&once) < energy(&wave(1.3)) && energy(&once) > 0.0);
        low_pass(&mut blocks[192..], 8, 2);
        assert!(close(&blocks[192..], &once));
        // Keeping every frequency keeps every block.
        let mut all = wave(1.3);
        low_pass(&mut all, 8, 8);
        assert!(close(&all, &wave(1.3)));
    }

    #[test]
    fn a_wider_image_tower_is_pre_trained_from_scratch_and_resumes_at_its_width() {
        let plan = Plan { seed: 3, batch: 4, pretrain_steps: 1, finetune_steps: 0, epsilon: None, vision_width: 192, ..Plan::default() };
        let mut trainer = Trainer::new(plan.clone()).unwrap();
        let vision = tower(&trainer.config);
        assert_eq!((vision.width, vision.heads, vision.mlp_width), (192, 6, 768));
        assert!(trainer.step().unwrap().is_finite());
        let dir = std::env::temp_dir().join(format!("clipag-wide-{}", std::process::id()));
        trainer.save_checkpoint(&dir).unwrap();
        let resumed = Trainer::resume(Plan { vision_width: 0, ..plan.clone() }, &dir).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!((resumed.step, tower(&resumed.config).width), (1, 192));
        let odd = Trainer::new(Plan { vision_width: 100, ..plan }).err().unwrap();
        assert!(odd.to_string().contains("multiple of 32"), "{odd}");
    }

    #[test]
    fn a_resnet_twin_trains_and_exports_as_open_clip_names_with_identity_batch_norm() {
        let resnet = ResNetConfig { image_size: 32, layers: vec![1, 1, 1, 1], width: 4, heads: 2 };
        let plan = Plan { seed: 3, batch: 4, pretrain_steps: 1, finetune_steps: 0, epsilon: None, resnet: Some(resnet), ..Plan::default() };
        let mut trainer = Trainer::new(plan.clone()).unwrap();
        assert!(trainer.step().unwrap().is_finite());
        let exported = trainer.model.export(&trainer.origins).unwrap();
        assert_eq!(exported["visual.layer1.0.bn1.weight"].data, vec![1.0; 4]);
        assert_eq!(exported["visual.layer1.0.downsample.1.running_mean"].data, vec![0.0; 16]);
        assert!(exported.contains_key("visual.attnpool.positional_embedding"));
        // The folder written from it reads back as the model that trained.
        let dir = std::env::temp_dir().join(format!("clipag-resnet-{}", std::process::id()));
        trainer.save_checkpoint(&dir).unwrap();
        let resumed = Trainer::resume(plan.clone(), &dir).unwrap();
        let deeper = Trainer::grown(Plan { deeper_vision: 1, ..plan }, &dir).err().unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(deeper.to_string().contains("ModifiedResNet"), "{deeper}");
        let (images, _, _) = trainer.batch(2, &mut Rng::new(9)).unwrap();
        let embed = |t: &Trainer| t.model.encode_image(images.clone()).unwrap().into_data().try_into_vec_as::<f32>().unwrap();
        let (before, after) = (embed(&trainer), embed(&resumed));
        let worst = before.iter().zip(&after).fold(0.0f32, |m, (a, b)| m.max((a - b).abs()));
        assert!(worst < 1e-4, "the exported ResNet computes differently by {worst}");
    }

    #[test]
    fn a_grown_tower_starts_as_the_pre_trained_one() {
        let plan = Plan { seed: 3, batch: 4, pretrain_steps: 0, finetune_steps: 1, epsilon: None, deeper_vision: 2, wider_vision_mlp: 1024, patch_scale: 0.1, ..Plan::default() };
        let trainer = Trainer::new(plan.clone()).unwrap();
        let dir = std::env::temp_dir().join(format!("clipag-deepen-{}", std::process::id()));
        trainer.save_checkpoint(&dir).unwrap();
        let deeper = Trainer::grown(Plan { patch_scale: 1.0, ..plan.clone() }, &dir).unwrap();
        let scaled = Trainer::grown(plan.clone(), &dir).unwrap();
        let narrower = Trainer::grown(Plan { wider_vision_mlp: 256, ..plan.clone() }, &dir).err().unwrap();
        let rewidened = Trainer::grown(Plan { vision_width: 256, ..plan.clone() }, &dir).err().unwrap();
        let placed = Trainer::grown(Plan { position_scale: 3.0, ..plan.clone() }, &dir).unwrap();
        let unplaced = Trainer::grown(Plan { position_scale: f32::NAN, ..plan.clone() }, &dir).err().unwrap();
        let unscaled = Trainer::grown(Plan { patch_scale: 0.0, ..plan }, &dir).err().unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(narrower.to_string().contains("grow, not shrink"), "{narrower}");
        assert!(rewidened.to_string().contains("--vision-width"), "{rewidened}");
        assert!(unscaled.to_string().contains("--patch-scale"), "{unscaled}");
        assert!(unplaced.to_string().contains("--position-scale"), "{unplaced}");
        assert_eq!(tower(&deeper.config).layers, tower(&trainer.config).layers + 2);
        assert_eq!((tower(&trainer.config).mlp_width, tower(&deeper.config).mlp_width), (512, 1024));
        let (images, _, _) = trainer.batch(4, &mut Rng::new(9)).unwrap();
        let before = trainer.model.encode_image(images.clone()).unwrap().into_data().try_into_vec_as::<f32>().unwrap();
        let after = deeper.model.encode_image(images.clone()).unwrap().into_data().try_into_vec_as::<f32>().unwrap();
        let worst = before.iter().zip(&after).fold(0.0f32, |m, (a, b)| m.max((a - b).abs()));
        assert!(worst < 1e-5, "the added blocks changed the embeddings by {worst}");
        let rescaled = scaled.model.encode_image(images).unwrap().into_data().try_into_vec_as::<f32>().unwrap();
        let worst = before.iter().zip(&rescaled).fold(0.0f32, |m, (a, b)| m.max((a - b).abs()));
        let largest = before.iter().fold(0.0f32, |m, v| m.max(v.abs()));
        // Not exact: `ln_pre`'s epsilon (1e-5) against patch tokens whose variance the
        // tenth brings to about 1e-2 in this random model (a trained one's are far larger).
        assert!(worst < 1e-3 * largest, "the patch scale changed the embeddings by {worst} (largest {largest})");
        // The added blocks are real parameters that train: the export holds them.
        let names = deeper.model.export(&deeper.origins).unwrap();
        assert!(names.contains_key("visual.transformer.resblocks.5.mlp.c_proj.weight"));
        // The new hidden units are not dead: their input weights are drawn, not zero.
        let c_fc = &names["visual.transformer.resblocks.0.mlp.c_fc.weight"];
        assert_eq!(c_fc.shape, [1024, 128]);
        assert!(c_fc.data[512 * 128..].iter().any(|v| *v != 0.0));
        // The patch embedding is a tenth of the pre-trained one.
        let before = trainer.model.export(&trainer.origins).unwrap();
        let ratio = scaled.model.export(&scaled.origins).unwrap()["visual.conv1.weight"].data[7] / before["visual.conv1.weight"].data[7];
        assert!((ratio - 0.1).abs() < 1e-6, "{ratio}");
        // The position scale multiplies the patches' positions on top of the patch scale and
        // leaves the class token's.
        let (stored, placed) = (&before["visual.positional_embedding"], &placed.model.export(&placed.origins).unwrap()["visual.positional_embedding"]);
        let width = stored.shape[1];
        assert_eq!(placed.data[..width], stored.data[..width]);
        let ratio = placed.data[width + 5] / stored.data[width + 5];
        assert!((ratio - 0.3).abs() < 1e-5, "{ratio}");
    }

    #[test]
    fn alignment_steps_train_the_text_tower_alone() {
        let plan = Plan { seed: 3, batch: 4, learning_rate: 1e-2, pretrain_steps: 1, finetune_steps: 0, align_steps: 2, ..Plan::default() };
        let mut trainer = Trainer::new(plan).unwrap();
        assert_eq!(trainer.total_steps(), 3);
        let (images, sequences, _) = trainer.batch(4, &mut Rng::new(9)).unwrap();
        let embed = |t: &Trainer| {
            let image = t.model.encode_image(images.clone()).unwrap().into_data().try_into_vec_as::<f32>().unwrap();
            let text = t.model.encode_text(&sequences).unwrap().into_data().try_into_vec_as::<f32>().unwrap();
            (image, text)
        };
        // The pre-training step moves both towers.
        let start = embed(&trainer);
        trainer.step().unwrap();
        let pretrained = embed(&trainer);
        assert!(pretrained.0 != start.0 && pretrained.1 != start.1);
        // The alignment steps (at a tenth of the rate) move the text tower only.
        assert!((trainer.learning_rate() - 1e-3).abs() < 1e-12);
        trainer.step().unwrap();
        trainer.step().unwrap();
        let aligned = embed(&trainer);
        assert_eq!(aligned.0, pretrained.0, "the image tower moved");
        assert!(aligned.1 != pretrained.1, "the text tower did not move");
    }

    #[test]
    fn each_attack_stays_in_its_budget_and_moves_the_images() {
        for (max, _) in changes(Attack::Fgsm, 8.0 / 255.0, 2.0) {
            assert!(max <= 8.0 / 255.0 + 1e-6 && max > 4.0 / 255.0, "FGSM: {max}");
        }
        // N-FGSM is not projected: noise of 2 epsilon plus a step of epsilon.
        for (max, _) in changes(Attack::NoiseFgsm, 8.0 / 255.0, 2.0) {
            assert!(max <= 24.0 / 255.0 + 1e-6 && max > 16.0 / 255.0, "N-FGSM: {max}");
        }
        // The shipped twin's start of four epsilon.
        for (max, _) in changes(Attack::NoiseFgsm, 8.0 / 255.0, 4.0) {
            assert!(max <= 40.0 / 255.0 + 1e-6 && max > 32.0 / 255.0, "N-FGSM from 4 epsilon: {max}");
        }
        for (_, norm) in changes(Attack::L2, 3.0, 2.0) {
            // Clamping to [0, 1] can only shorten the change; the step alone is 1.25 epsilon
            // before projection, so the result lies on or near the sphere.
            assert!(norm <= 3.0 + 1e-3 && norm > 1.5, "L2: {norm}");
        }
        // PGD is projected after every step.
        for (max, _) in changes(Attack::Pgd, 8.0 / 255.0, 2.0) {
            assert!(max <= 8.0 / 255.0 + 1e-6 && max > 4.0 / 255.0, "PGD: {max}");
        }
    }

    #[test]
    fn pgd_raises_the_loss_it_attacks_step_by_step() {
        let loss_after = |attack_steps: usize| {
            let plan = Plan { seed: 3, batch: 4, pretrain_steps: 0, finetune_steps: 1, attack: Attack::Pgd, attack_steps, ..Plan::default() };
            let trainer = Trainer::new(plan).unwrap();
            let mut rng = Rng::new(9);
            let (images, sequences, targets) = trainer.batch(4, &mut rng).unwrap();
            let goal = trainer.captions(&sequences, &targets).unwrap();
            let loss = |images| scalar(goal.loss(trainer.model.encode_image(images).unwrap(), 0.07)).unwrap();
            let clean = loss(images.clone());
            (clean, loss(trainer.attack(images, &goal, 16.0 / 255.0, &mut rng).unwrap()))
        };
        let (clean, one) = loss_after(1);
        let (_, three) = loss_after(3);
        assert!(one > clean && three > one, "clean {clean}, PGD-1 {one}, PGD-3 {three}");
        assert!(Attack::Pgd.steps(Some(0)).unwrap_err().to_string().contains("--attack-steps"));
        assert!(Attack::NoiseFgsm.steps(Some(3)).unwrap_err().to_string().contains("--attack pgd"));
        assert_eq!(Attack::Pgd.steps(None).unwrap(), Plan::default().attack_steps);
    }

    /// Each picture's cosine with its caption, of four fresh captions, painted from the same
    /// draws of noise in no steps (the start) and in `steps`.
    fn painted_cosines(mut trainer: Trainer, steps: usize) -> (Vec<f32>, Vec<f32>) {
        let mut cosines = |steps: usize| {
            trainer.plan.painting_steps = steps;
            let mut rng = Rng::new(9);
            let (_, sequences, _) = trainer.batch(4, &mut rng).unwrap();
            let texts = unit(trainer.model.encode_text(&sequences).unwrap().detach());
            let paintings = trainer.paint(texts.clone(), &mut rng).unwrap();
            let cosines = (unit(trainer.model.encode_image(paintings).unwrap()) * texts).sum_dim(1);
            cosines.into_data().try_into_vec_as::<f32>().unwrap()
        };
        (cosines(0), cosines(steps))
    }

    #[test]
    fn painting_raises_each_paintings_cosine_with_its_caption() {
        let plan = Plan { seed: 3, batch: 4, pretrain_steps: 0, finetune_steps: 1, ..Plan::default() };
        let (start, painted) = painted_cosines(Trainer::new(plan.clone()).unwrap(), 3);
        assert!(start.iter().zip(&painted).all(|(s, p)| p > s), "signed steps: start {start:?}, painted {painted:?}");
        // Through views, the cosine of the picture itself rises as the views' does only for a
        // twin whose gradients paint: the shipped robust one.
        let robust = Path::new(env!("CARGO_MANIFEST_DIR")).join("models/shapes-robust");
        let trainer = Trainer::probe(Plan { painting_views: true, ..plan }, &robust).unwrap();
        let (start, painted) = painted_cosines(trainer, 5);
        assert!(start.iter().zip(&painted).all(|(s, p)| p > s), "views: start {start:?}, painted {painted:?}");
    }

    #[test]
    fn each_picture_is_painted_toward_its_own_caption_through_the_views() {
        // Two captions that share no colour: each painting must end nearer its own caption
        // than the other's (a mix-up of which views go with which caption would not).
        let robust = Path::new(env!("CARGO_MANIFEST_DIR")).join("models/shapes-robust");
        let plan = Plan { batch: 2, painting_steps: 10, painting_views: true, ..Plan::default() };
        let trainer = Trainer::probe(plan, &robust).unwrap();
        let captions = ["a red circle on a blue background", "a green square on a white background"];
        let sequences: Vec<Vec<u32>> = captions.iter().map(|c| trainer.tokenizer.encode(c).unwrap().ids).collect();
        let texts = unit(trainer.model.encode_text(&sequences).unwrap().detach());
        let paintings = trainer.paint(texts.clone(), &mut Rng::new(9)).unwrap();
        let similarity = unit(trainer.model.encode_image(paintings).unwrap()).matmul(texts.transpose());
        let s = similarity.into_data().try_into_vec_as::<f32>().unwrap(); // [picture, caption]
        assert!(s[0] > s[1] && s[3] > s[2], "cosines, picture by caption: {s:?}");
    }

    #[test]
    fn the_painted_loss_asks_the_right_picture_to_score_above_the_painting() {
        let device = Device::flex().autodiff();
        let rows = |v: [f32; 4]| Tensor::<2>::from_data(TensorData::new(v.to_vec(), [2, 2]), &device);
        let (texts, like, unlike) = (rows([1.0, 0.0, 0.0, 1.0]), rows([1.0, 0.1, 0.1, 1.0]), rows([0.0, 1.0, 1.0, 0.0]));
        let loss = |pictures, paintings| scalar(painted_loss(pictures, paintings, texts.clone(), 0.07)).unwrap();
        let (ahead, behind) = (loss(like.clone(), unlike.clone()), loss(unlike, like));
        assert!(ahead < 0.01 && behind > 10.0, "ahead {ahead}, behind {behind}");
    }

    #[test]
    fn painted_negatives_change_the_step_and_are_refused_where_they_cannot_be_drawn() {
        let step = |painted_negatives: usize| {
            let plan = Plan { seed: 3, batch: 4, pretrain_steps: 0, finetune_steps: 1, painted_negatives, painting_steps: 2, ..Plan::default() };
            plan.check_painting().unwrap();
            Trainer::new(plan).unwrap().step().unwrap()
        };
        let (without, with) = (step(0), step(2));
        assert!(without.is_finite() && with.is_finite() && with > without, "without {without}, with {with}");
        let refused = |plan: Plan| plan.check_painting().unwrap_err().to_string();
        let plan = Plan { batch: 4, painted_negatives: 2, ..Plan::default() };
        assert!(refused(Plan { painted_negatives: 5, ..plan.clone() }).contains("more than a batch"));
        assert!(refused(Plan { painting_steps: 0, ..plan.clone() }).contains("--painting-steps"));
        assert!(refused(Plan { objective: Objective::Fare, ..plan }).contains("--objective tecoa"));
    }
}
