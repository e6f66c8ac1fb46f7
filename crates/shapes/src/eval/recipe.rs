//! How the evaluation paints: its preset of the generation's settings, a recipe's changes to
//! it, and a painting of a prompt or a scene (with its rivals under contrast).

use std::rc::Rc;

use crate::world::Scene;
use clipag::engine::Model;
use clipag::generate::{Generator, Patch, Prompt, Settings};
use clipag::pixels::Pixels;
use clipag::Result;

use super::{ATTRIBUTES, variants};

/// How the evaluation paints: fewer views than the paper's 32 + 32 (hundreds of pictures must
/// fit a CPU), and the learning rate, start noise and views that painted best on this
/// 64-pixel world (docs/shapes.md has the sweep: a faster rate than the paper's, a quieter
/// start, no colour jitter: a shift in brightness turns one of its flat colours into another).
/// A preset of `Settings`; the prompt and seed are each painting's.
pub fn evaluation_settings() -> Settings {
    let mut s = Settings { steps: 40, size: Some(64), ..Settings::default() };
    (s.view.views, s.view.patch_views, s.view.colour_jitter) = (8, 8, false);
    (s.canvas.candidates, s.canvas.init_noise) = (8, 0.1);
    s.update.lr = 0.05;
    s.objective.smoothness = 0.3;
    s
}

/// How the evaluation paints: its settings, and where each painting starts.
#[derive(Debug, Clone)]
pub struct Recipe {
    /// The settings every painting takes (its prompt and seed aside).
    pub settings: Settings,
    /// Start each painting from the prompt's clean render rather than noise: not a way to
    /// paint, a check of the recipe: whether its ascent keeps a picture that the model
    /// already scores high, or paints it over.
    pub from_clean: bool,
}

impl Default for Recipe {
    fn default() -> Self {
        Self { settings: evaluation_settings(), from_clean: false }
    }
}

impl Recipe {
    /// This recipe with `patch` over its settings.
    pub fn patched(&self, patch: &Patch) -> Result<Self> {
        Ok(Self { settings: self.settings.patched(patch)?, from_clean: self.from_clean })
    }

    /// This recipe with a model's recommended values in place of its own (what the page and
    /// `clipag generate` paint that model with), on a canvas of the model's `size`.
    pub fn recommended_for(&self, recommended: &Patch, size: usize) -> Result<Self> {
        let mut recipe = self.patched(recommended)?;
        recipe.settings.size = Some(size);
        Ok(recipe)
    }

    /// Side of the canvas painted.
    pub fn canvas(&self) -> usize {
        self.settings.size.unwrap_or(64)
    }
}

pub fn settings(prompt: &str, seed: u64, recipe: &Recipe) -> Settings {
    let mut s = recipe.settings.clone();
    s.objective.prompt = vec![Prompt { text: prompt.to_string(), weight: 1.0 }];
    s.size = Some(recipe.canvas());
    s.seed = seed;
    s
}

/// The settings of `a` that differ from `b`'s, by name (`views 8, lr 0.05`), the prompts and
/// the seed aside (each painting's own).
pub fn differences(a: &Settings, b: &Settings) -> String {
    let (a, b) = (a.by_name(), b.by_name());
    a.iter()
        .filter(|(name, value)| !["prompt", "negative", "seed"].contains(&name.as_str()) && b.get(*name) != Some(value))
        .map(|(name, value)| format!("{name} {}", clipag::generate::settings::shown(value)))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The captions of `scene` with one attribute of its object changed: what the prompt is told
/// apart from in zero-shot retrieval, and what it is painted against under contrast
/// (`ObjectiveSettings::contrast`).
pub fn rivals(scene: &Scene) -> Vec<String> {
    let caption = scene.caption();
    let mut rivals: Vec<String> = (0..ATTRIBUTES.len())
        .flat_map(|attribute| variants(scene, attribute))
        .map(|(variant, _)| variant.caption())
        .filter(|c| *c != caption)
        .collect();
    rivals.sort();
    rivals.dedup();
    rivals
}

/// The settings for painting `scene`'s caption: `settings`, and its rivals under contrast.
pub fn scene_settings(scene: &Scene, seed: u64, recipe: &Recipe) -> Settings {
    let mut s = settings(&scene.caption(), seed, recipe);
    if s.objective.contrast.is_some() {
        s.objective.negative = rivals(scene).into_iter().map(|text| Prompt { text, weight: 1.0 }).collect();
    }
    if recipe.from_clean {
        s.canvas.start = Some(scene.render(recipe.canvas()));
    }
    s
}

/// Paints `prompt` with `model`; returns the picture (the paper's output: lowest global loss).
/// A bare prompt has no rivals: under contrast this is refused (use
/// `run(scene_settings(..))`).
pub async fn paint(model: &Rc<Model>, prompt: &str, seed: u64, recipe: &Recipe) -> Result<Pixels> {
    Ok(run(model, settings(prompt, seed, recipe)).await?.0)
}

/// Paints with `settings`; returns the picture with the lowest global loss, at the model's
/// resolution (where the judge reads it), and its score (cosine with the prompt).
pub async fn run(model: &Rc<Model>, settings: Settings) -> Result<(Pixels, f32)> {
    let mut generator = Generator::new(model.clone(), settings).await?;
    while !generator.is_done() {
        generator.step().await?;
    }
    Ok((generator.best().resized(model.image_size()), generator.best_score()))
}
