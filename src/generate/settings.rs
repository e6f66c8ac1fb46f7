//! Every knob of a generation, with the paper's defaults (docs/generation.md says where each
//! comes from), checked before any work starts.

use serde::{Deserialize, Serialize};

use crate::pixels::Pixels;
use crate::tokenizer::MAX_PROMPT_CHARS;
use crate::{Error, Result};

/// A text the picture is pulled toward (or, as a negative, pushed away from), with its weight.
#[derive(Debug, Clone, PartialEq)]
pub struct Prompt {
    pub text: String,
    pub weight: f32,
}

/// How the optimised variables become pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Parameterisation {
    /// The pixels themselves, as in the paper.
    Pixels,
    /// Lucid's: a 1/f-scaled Fourier spectrum in a decorrelated colour space, through a
    /// sigmoid.
    Fourier,
}

/// How a step moves the canvas parameters along the (clipped) gradient.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Optimiser {
    /// PyTorch's AdamW, as in the paper.
    AdamW,
    /// The gradient scaled to a root mean square of the learning rate (L2 steepest ascent).
    NormalisedGradient,
}

/// Where the canvas starts.
#[derive(Debug, Clone, PartialEq)]
pub enum Init {
    /// Low-frequency coloured noise: the best of `candidates` draws by score for the prompt.
    /// `amplitude` is the coarsest field's (finer ones fall as 1/f); 0 is a flat mid-grey.
    Noise { candidates: usize, amplitude: f32 },
    /// A picture to edit toward the prompt (resized to the canvas).
    Image(Pixels),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    pub prompts: Vec<Prompt>,
    pub negatives: Vec<Prompt>,
    pub steps: usize,
    /// Side of the square canvas, in pixels; views are resampled to the model's resolution.
    pub size: usize,
    pub global_views: usize,
    pub patch_views: usize,
    /// Weight of the patch views' loss against the global views'.
    pub patch_weight: f32,
    /// Side of a patch crop as a fraction of the canvas (128 of 224 in the paper).
    pub patch_fraction: f32,
    /// Standard deviation of the noise added to each global view.
    pub noise: f32,
    /// DiffAugment's colour policy on every view (the paper's recipe). Off, the views keep
    /// the canvas's colours: for a model whose world has a few flat named colours, a
    /// brightness shift of up to 0.5 turns one named colour into another.
    pub colour_jitter: bool,
    /// DiffAugment's cutout on every view (the paper's recipe): a square of half the view's
    /// side set to black. Off, no view hides part of the canvas (on the Shapes world, ascent
    /// from the prompt's own picture then kept its one object far more often:
    /// docs/shapes.md).
    pub cutout: bool,
    /// Where the views' translation and zoom look past the canvas, repeat its edge pixels
    /// (off, as DiffAugment: black, which ascent on the Shapes world answered with bright
    /// frames round the canvas: docs/shapes.md).
    pub edge_padding: bool,
    /// Weight of the canvas's total variation in the loss (0: none, the paper's recipe): a
    /// prior for flat regions with sharp edges, against the pixel-level noise and scattered
    /// blobs that ascent paints where the model does not mind them.
    pub smoothness: f32,
    /// `Some(scale)`: the negatives are rivals, as captions are in CLIP's training: each
    /// view's loss is the cross-entropy of each prompt against them, cosines times `scale`
    /// (CLIP's logit scale), so only what tells the prompt from its rivals is painted; the
    /// negatives' weights are not used. `None`: the paper's cosine, with the negatives'
    /// cosines added at their weights.
    pub contrast: Option<f32>,
    pub learning_rate: f32,
    /// Cosine decay of the learning rate to zero over the steps (off: constant, as the
    /// paper): a picture found early at the full rate is then refined in ever smaller steps,
    /// as ascent from the prompt's own render at a fifth of the rate kept it (docs/shapes.md).
    pub decay: bool,
    pub weight_decay: f32,
    /// The gradient's L2 norm is clipped to this before each step.
    pub max_grad_norm: f32,
    /// Dynamic thresholding percentile (None: plain clamping to [0, 1]).
    pub threshold: Option<f32>,
    pub seed: u64,
    pub init: Init,
    pub parameterisation: Parameterisation,
    pub optimiser: Optimiser,
    /// A snapshot is marked every this many steps.
    pub snapshot_every: usize,
}

/// The settings a model folder recommends for painting with it (its manifest's
/// `recommended`, in the page's names): where a person sets nothing, they replace the
/// paper's. The built-in Shapes models carry the recipe measured best for them
/// (docs/shapes.md); a converted CLIPAG carries none and paints with the paper's.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Recommended {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub steps: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub views: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub patch_views: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lr: Option<f32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub candidates: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub init_noise: Option<f32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub smoothness: Option<f32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub colour_jitter: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cutout: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub edge_padding: Option<bool>,
}

impl Recommended {
    /// `settings` with every recommended value in place of its own.
    pub fn apply(&self, s: &mut Settings) {
        s.steps = self.steps.unwrap_or(s.steps);
        s.global_views = self.views.unwrap_or(s.global_views);
        s.patch_views = self.patch_views.unwrap_or(s.patch_views);
        s.learning_rate = self.lr.unwrap_or(s.learning_rate);
        s.smoothness = self.smoothness.unwrap_or(s.smoothness);
        s.colour_jitter = self.colour_jitter.unwrap_or(s.colour_jitter);
        s.cutout = self.cutout.unwrap_or(s.cutout);
        s.edge_padding = self.edge_padding.unwrap_or(s.edge_padding);
        if let Init::Noise { candidates, amplitude } = &mut s.init {
            *candidates = self.candidates.unwrap_or(*candidates);
            *amplitude = self.init_noise.unwrap_or(*amplitude);
        }
    }

    /// Every value a recommendation can name, as `settings` has it: what a page shows as
    /// a model's defaults.
    pub fn from_settings(s: &Settings) -> Self {
        let (candidates, init_noise) = match s.init {
            Init::Noise { candidates, amplitude } => (Some(candidates), Some(amplitude)),
            Init::Image(_) => (None, None),
        };
        Self {
            steps: Some(s.steps),
            views: Some(s.global_views),
            patch_views: Some(s.patch_views),
            lr: Some(s.learning_rate),
            candidates,
            init_noise,
            smoothness: Some(s.smoothness),
            colour_jitter: Some(s.colour_jitter),
            cutout: Some(s.cutout),
            edge_padding: Some(s.edge_padding),
        }
    }

    /// Refuses a recommendation that could not paint (checked where a folder is written and
    /// read, so a bad manifest fails on load, not on Generate).
    pub fn validate(&self) -> Result<()> {
        let mut settings = Settings::paper("a recommendation", 64);
        self.apply(&mut settings);
        settings.validate().map_err(|e| Error::Invalid(format!("the model's recommended settings: {e}")))
    }
}

/// Canvases larger than this on a side are refused: views are resampled from the canvas every
/// step, and a browser's GPU memory is finite.
pub const MAX_SIZE: usize = 1024;
pub const MAX_VIEWS: usize = 256;
pub const MAX_STEPS: usize = 10_000;
/// The initial noise's amplitude (of its coarsest field).
pub const DEFAULT_INIT_NOISE: f32 = 0.35;
/// The paper's noise on each global view (a standard deviation).
pub const DEFAULT_VIEW_NOISE: f32 = 0.01;

impl Settings {
    /// The paper's recipe for one prompt, on a canvas of `size` (the model's resolution).
    pub fn paper(prompt: &str, size: usize) -> Self {
        Self {
            prompts: vec![Prompt { text: prompt.to_string(), weight: 1.0 }],
            negatives: Vec::new(),
            steps: 100,
            size,
            global_views: 32,
            patch_views: 32,
            patch_weight: 5.0,
            patch_fraction: 128.0 / 224.0,
            noise: DEFAULT_VIEW_NOISE,
            colour_jitter: true,
            cutout: true,
            edge_padding: false,
            smoothness: 0.0,
            contrast: None,
            learning_rate: 0.0175,
            decay: false,
            weight_decay: 0.01,
            max_grad_norm: 0.001,
            threshold: Some(0.95),
            seed: 0,
            init: Init::Noise { candidates: 16, amplitude: DEFAULT_INIT_NOISE },
            parameterisation: Parameterisation::Pixels,
            optimiser: Optimiser::AdamW,
            snapshot_every: 10,
        }
    }

    /// The learning rate of step `step` (from 0).
    pub fn learning_rate_at(&self, step: usize) -> f32 {
        if !self.decay {
            return self.learning_rate;
        }
        let progress = step as f32 / self.steps.max(1) as f32;
        self.learning_rate * 0.5 * (1.0 + (std::f32::consts::PI * progress).cos())
    }

    /// Refuses settings that cannot give a picture, naming the setting.
    pub fn validate(&self) -> Result<()> {
        let fail = |what: String| Err(Error::Invalid(what));
        if self.prompts.is_empty() {
            return fail("a prompt is needed".into());
        }
        for (kind, prompts) in [("prompt", &self.prompts), ("negative prompt", &self.negatives)] {
            for p in prompts {
                if p.text.trim().is_empty() {
                    return fail(format!("a {kind} is empty"));
                }
                if p.text.chars().count() > MAX_PROMPT_CHARS {
                    return fail(format!("a {kind} is longer than {MAX_PROMPT_CHARS} characters"));
                }
                if !(p.weight.is_finite() && p.weight > 0.0) {
                    return fail(format!("the {kind} '{}' has weight {}; weights must be positive numbers", p.text, p.weight));
                }
            }
        }
        if !(1..=MAX_STEPS).contains(&self.steps) {
            return fail(format!("steps must be 1 to {MAX_STEPS}, not {}", self.steps));
        }
        if !(8..=MAX_SIZE).contains(&self.size) {
            return fail(format!("the canvas must be 8 to {MAX_SIZE} pixels on a side, not {}", self.size));
        }
        if self.global_views + self.patch_views == 0 {
            return fail("at least one view (global or patch) is needed".into());
        }
        if self.global_views > MAX_VIEWS || self.patch_views > MAX_VIEWS {
            return fail(format!("at most {MAX_VIEWS} views of each kind"));
        }
        let positive = |name: &str, v: f32| -> Result<()> {
            if v.is_finite() && v > 0.0 { Ok(()) } else { fail(format!("{name} must be a positive number, not {v}")) }
        };
        let non_negative = |name: &str, v: f32| -> Result<()> {
            if v.is_finite() && v >= 0.0 { Ok(()) } else { fail(format!("{name} must be zero or a positive number, not {v}")) }
        };
        positive("the learning rate", self.learning_rate)?;
        positive("the gradient norm limit", self.max_grad_norm)?;
        non_negative("the weight decay", self.weight_decay)?;
        non_negative("the patch weight", self.patch_weight)?;
        non_negative("the view noise", self.noise)?;
        non_negative("the smoothness", self.smoothness)?;
        if let Some(scale) = self.contrast {
            positive("the contrast's logit scale", scale)?;
            if self.negatives.is_empty() {
                return fail("contrast needs negative prompts to rival the prompt".into());
            }
        }
        if !(self.patch_fraction.is_finite() && self.patch_fraction > 0.0 && self.patch_fraction <= 1.0) {
            return fail(format!("the patch fraction must be in (0, 1], not {}", self.patch_fraction));
        }
        if let Some(p) = self.threshold {
            if !(p.is_finite() && p > 0.0 && p <= 1.0) {
                return fail(format!("the threshold percentile must be in (0, 1], not {p}"));
            }
        }
        if self.snapshot_every == 0 {
            return fail("snapshots must be every 1 step or more".into());
        }
        match &self.init {
            Init::Noise { candidates, .. } if !(1..=256).contains(candidates) => {
                fail(format!("the initial candidates must be 1 to 256, not {candidates}"))
            }
            Init::Noise { amplitude, .. } if !(amplitude.is_finite() && (0.0..=1.0).contains(amplitude)) => {
                fail(format!("the initial noise must be 0 to 1, not {amplitude}"))
            }
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Settings;

    #[test]
    fn the_cosine_decay_starts_at_the_rate_halves_midway_and_ends_near_zero() {
        let mut s = Settings::paper("a red star", 64);
        s.steps = 40;
        let rate = s.learning_rate;
        assert_eq!(s.learning_rate_at(39), rate, "constant unless asked");
        s.decay = true;
        assert_eq!(s.learning_rate_at(0), rate);
        assert!((s.learning_rate_at(20) - rate / 2.0).abs() < 1e-6);
        assert!(s.learning_rate_at(39) < rate * 0.01);
    }
}
