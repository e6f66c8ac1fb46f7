//! What a run trains: the Shapes architecture, the plan of a run (its steps, attack,
//! objective, growth and painted negatives) and its checks.
use burn::tensor::Device;

use super::{Attack, Objective};
use crate::world::vocabulary;
use clipag::model::{ClipConfig, ResNetConfig, TextConfig, VisionConfig, VisionTransformerConfig};
use clipag::{Error, Result};

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
pub(super) fn vit() -> VisionTransformerConfig {
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
    clipag::tokenizer::vocab::word_tokenizer_json(&vocabulary())
}

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

/// The share of an adversarial batch left clean, from the command line's (None: none).
pub fn clean_share(given: Option<f32>) -> Result<f32> {
    match given {
        None => Ok(0.0),
        Some(v) if (0.0..1.0).contains(&v) => Ok(v),
        Some(v) => Err(Error::Invalid(format!("--clean-share is the share of each batch left clean: at least 0 and less than 1, not {v}"))),
    }
}
