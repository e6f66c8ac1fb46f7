//! The evaluation behind docs/shapes.md: how well the judge reads clean pictures, how well
//! each model retrieves captions zero-shot (here), how the evaluation paints (`recipe`) and
//! the whole report over held-out prompts, its tables, grid and pictures (`report`).

mod recipe;
mod report;

pub use recipe::{Recipe, differences, evaluation_settings, paint, rivals, run, scene_settings, settings};
pub use report::{Options, Report, grid, painting_name, parse_painting_name, rejudge, report};

use super::judge::{Judge, Verdict};
use super::world::{COLORS, PLACES, SHAPES, SIZES, Scene};
use clipag::engine::Model;
use clipag::rng::Rng;
use clipag::Result;

/// The attributes the judge reads, in the order tables list them.
pub const ATTRIBUTES: [&str; 5] = ["colour", "shape", "background", "place", "size"];

/// Per-attribute accuracy, as counts.
#[derive(Debug, Clone, Default)]
pub struct Tally {
    pub right: [usize; 5],
    pub total: usize,
}

impl Tally {
    pub fn add(&mut self, right: [bool; 5]) {
        for (r, ok) in self.right.iter_mut().zip(right) {
            *r += usize::from(ok);
        }
        self.total += 1;
    }

    pub fn percent(&self, attribute: usize) -> f64 {
        100.0 * self.right[attribute] as f64 / self.total.max(1) as f64
    }
}

/// Which attributes of `scene`'s (single) object the verdict gets right.
pub fn score(scene: &Scene, verdict: &Verdict) -> [bool; 5] {
    let o = &scene.objects[0];
    [
        verdict.color == Some(o.color),
        verdict.shape == Some(o.shape),
        verdict.background == scene.background,
        verdict.place == Some(o.place),
        verdict.size == Some(o.size),
    ]
}

/// The seed the painted prompts are drawn from: prompt `i` is `held_out_scenes(n, PROMPTS_SEED)[i]`
/// for every `n > i`.
pub const PROMPTS_SEED: u64 = 13;

/// Held-out single-object scenes whose captions name every attribute.
pub fn held_out_scenes(count: usize, seed: u64) -> Vec<Scene> {
    let mut rng = Rng::new(seed);
    (0..count)
        .map(|_| {
            let mut scene = Scene::random(&mut rng, true);
            scene.says_size = true;
            scene.says_place = true;
            scene.says_background = true;
            scene
        })
        .collect()
}

/// The judge on clean renders of held-out scenes.
pub fn judge_accuracy(judge: &Judge, scenes: &[Scene], size: usize) -> Tally {
    let mut tally = Tally::default();
    for scene in scenes {
        tally.add(score(scene, &judge.judge(&scene.render(size))));
    }
    tally
}

/// Zero-shot retrieval: for each attribute, the caption with the true value must score above
/// the same caption with every other value.
pub async fn zero_shot(model: &Model, scenes: &[Scene]) -> Result<Tally> {
    let mut tally = Tally::default();
    let size = model.image_size();
    for scene in scenes {
        let image = model.embed_image(&scene.render(size)).await?;
        let mut right = [false; 5];
        for (attribute, slot) in right.iter_mut().enumerate() {
            let variants = variants(scene, attribute);
            let mut best = (f32::NEG_INFINITY, false);
            for (variant, truth) in variants {
                let text = model.embed_text(&variant.caption()).await?;
                let cos = cosine(&image, &text);
                if cos > best.0 {
                    best = (cos, truth);
                }
            }
            *slot = best.1;
        }
        tally.add(right);
    }
    Ok(tally)
}

/// The scene with one attribute set to each of its values (and whether that one is true).
fn variants(scene: &Scene, attribute: usize) -> Vec<(Scene, bool)> {
    let with = |f: &dyn Fn(&mut Scene)| {
        let mut s = scene.clone();
        f(&mut s);
        s
    };
    let o = scene.objects[0];
    let all: Vec<Scene> = match attribute {
        0 => (0..COLORS.len()).filter(|&c| c != scene.background).map(|c| with(&|s| s.objects[0].color = c)).collect(),
        1 => SHAPES.iter().map(|&sh| with(&|s| s.objects[0].shape = sh)).collect(),
        2 => (0..COLORS.len()).filter(|&c| c != o.color).map(|c| with(&|s| s.background = c)).collect(),
        3 => PLACES.iter().map(|&p| with(&|s| s.objects[0].place = p)).collect(),
        _ => SIZES.iter().map(|&z| with(&|s| s.objects[0].size = z)).collect(),
    };
    all.into_iter().map(|s| {
        let truth = s == *scene;
        (s, truth)
    }).collect()
}

fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let na: f32 = a.iter().map(|x| x * x).sum::<f32>().sqrt();
    let nb: f32 = b.iter().map(|x| x * x).sum::<f32>().sqrt();
    dot / (na * nb)
}
