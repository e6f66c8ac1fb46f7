//! The evaluation behind docs/shapes.md: how well the judge reads clean pictures, how well
//! each model retrieves captions zero-shot, and what the judge sees in pictures each model
//! paints for held-out prompts. (Over 400 lines: the measurements and the report that prints
//! them; issue 34 moves the Shapes lab to its own crate, where this splits by measurement.)

use std::rc::Rc;

use super::judge::{Judge, Verdict};
use super::world::{COLORS, PLACES, SHAPES, SIZES, Scene};
use crate::engine::Model;
use crate::generate::{Generator, Patch, Prompt, Settings};
use crate::pixels::Pixels;
use crate::rng::Rng;
use crate::Result;

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
        .map(|(name, value)| format!("{name} {}", crate::generate::settings::shown(value)))
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

/// What `report` measures.
pub struct Options {
    pub prompts: usize,
    pub seeds: u64,
    /// Seeds run from this one: a long evaluation can be split between processes (one per
    /// core) by seed, and their pictures.csv joined.
    pub first_seed: u64,
    pub recipe: Recipe,
    pub judge_scenes: usize,
    /// Rows of the image grid.
    pub grid_rows: usize,
}

/// What `report` writes.
pub struct Report {
    /// docs/shapes.md's tables (markdown).
    pub tables: String,
    /// Rows of: the prompt's clean render, the plain model's painting, the robust model's.
    pub grid: Pixels,
    /// One line per painting: what was asked, what the judge read, and whether it matches.
    pub pictures_csv: String,
    /// Every painting, named by `painting_name`.
    pub paintings: Vec<(String, Pixels)>,
}

/// Runs the whole evaluation.
pub async fn report(plain: Rc<Model>, robust: Rc<Model>, options: &Options) -> Result<Report> {
    let judge = Judge::new();
    let mut md = String::new();
    let size = robust.image_size();

    let judged = judge_accuracy(&judge, &held_out_scenes(options.judge_scenes, 11), size);
    md += &format!("### The judge on {} clean held-out renders\n\n", judged.total);
    md += &table(&[("judge", &judged)]);

    let scenes = held_out_scenes(options.judge_scenes.min(200), 12);
    let plain_zero = zero_shot(&plain, &scenes).await?;
    let robust_zero = zero_shot(&robust, &scenes).await?;
    md += &format!(
        "\n### Zero-shot retrieval on {} clean held-out renders\n\nFor each attribute, the caption with the true value against the same caption with every other value.\n\n",
        scenes.len()
    );
    md += &table(&[("plain", &plain_zero), ("robust", &robust_zero)]);

    let prompts = held_out_scenes(options.prompts, PROMPTS_SEED);
    let mut painted = [Tally::default(), Tally::default()];
    let mut grid_rows = Vec::new();
    let mut paintings = Vec::new();
    let mut csv = format!("{},score,clean score\n", readings_header());
    let started = std::time::Instant::now();
    for (i, scene) in prompts.iter().enumerate() {
        let caption = scene.caption();
        let clean = scene.render(size);
        // The render's cosine with its caption, under each model: the same for every seed.
        let mut clean_scores = [0.0; 2];
        for (k, model) in [&plain, &robust].into_iter().enumerate() {
            clean_scores[k] = cosine(&model.embed_image(&clean).await?, &model.embed_text(&caption).await?);
        }
        for seed in options.first_seed..options.first_seed + options.seeds {
            let mut row = vec![clean.clone()];
            for (k, model) in [&plain, &robust].into_iter().enumerate() {
                let (picture, painted_score) = run(model, scene_settings(scene, seed, &options.recipe)).await?;
                let clean_score = clean_scores[k];
                let name = ["plain", "robust"][k];
                let (right, readings) = readings(scene, seed, name, &judge.judge(&picture));
                painted[k].add(right);
                csv += &format!("{readings},{painted_score:.4},{clean_score:.4}\n");
                paintings.push((painting_name(i, seed, name), picture.clone()));
                row.push(picture);
            }
            if seed == options.first_seed && grid_rows.len() < options.grid_rows {
                grid_rows.push((caption.clone(), row));
            }
        }
        eprintln!("painted {}/{} prompts ({:.0} s)", i + 1, prompts.len(), started.elapsed().as_secs_f64());
    }
    let r = &options.recipe.settings;
    md += &format!(
        "\n### The judge on pictures painted for {} held-out prompts x {} seeds{}\n\nSettings where not the paper's: {}{}.\n\n",
        prompts.len(),
        options.seeds,
        if options.first_seed > 0 { format!(" (from seed {})", options.first_seed) } else { String::new() },
        differences(r, &Settings::default()),
        if options.recipe.from_clean { "; each painting from the prompt's clean render" } else { "" },
    );
    md += &table(&[("plain", &painted[0]), ("robust", &painted[1])]);
    md += "\n### The grid (rows top to bottom)\n\n| row | prompt |\n| --- | --- |\n";
    for (i, (caption, _)) in grid_rows.iter().enumerate() {
        md += &format!("| {} | {caption} |\n", i + 1);
    }
    let grid = grid(&grid_rows.into_iter().map(|(_, row)| row).collect::<Vec<_>>(), 2);
    Ok(Report { tables: md, grid, pictures_csv: csv, paintings })
}

/// The judge's readings of paintings already made, each `(prompt index, seed, model,
/// picture)` as `report` names them: a change to the judge is measured on the same pictures
/// without painting them again. Returns a table (a row per model, in the order first seen)
/// and pictures.csv's columns of what was asked and what was read.
pub fn rejudge(paintings: &[(usize, u64, String, Pixels)]) -> (String, String) {
    let judge = Judge::new();
    let scenes = held_out_scenes(paintings.iter().map(|p| p.0 + 1).max().unwrap_or(0), PROMPTS_SEED);
    let mut tallies: Vec<(&str, Tally)> = Vec::new();
    let mut csv = readings_header() + "\n";
    for (i, seed, model, picture) in paintings {
        let (right, line) = readings(&scenes[*i], *seed, model, &judge.judge(picture));
        csv += &line;
        csv += "\n";
        let k = tallies.iter().position(|(name, _)| name == model).unwrap_or_else(|| {
            tallies.push((model, Tally::default()));
            tallies.len() - 1
        });
        tallies[k].1.add(right);
    }
    let rows: Vec<(&str, &Tally)> = tallies.iter().map(|(name, tally)| (*name, tally)).collect();
    (table(&rows), csv)
}

/// The file name (without `.png`) `report`'s caller gives a painting: `p{prompt}-s{seed}-{model}`.
pub fn painting_name(prompt: usize, seed: u64, model: &str) -> String {
    format!("p{prompt:03}-s{seed}-{model}")
}

/// `painting_name`'s prompt index, seed and model, from a name it made.
pub fn parse_painting_name(name: &str) -> Option<(usize, u64, String)> {
    let mut parts = name.splitn(3, '-');
    let prompt = parts.next()?.strip_prefix('p')?.parse().ok()?;
    let seed = parts.next()?.strip_prefix('s')?.parse().ok()?;
    Some((prompt, seed, parts.next()?.to_string()))
}

/// pictures.csv's first columns: what was asked, whether the judge read it, what it read.
fn readings_header() -> String {
    format!("prompt,seed,model,{},{}", ATTRIBUTES.join(","), ATTRIBUTES.map(|a| format!("judged {a}")).join(","))
}

/// Which attributes `verdict` gets right, and its line under `readings_header`.
fn readings(scene: &Scene, seed: u64, model: &str, verdict: &Verdict) -> ([bool; 5], String) {
    let right = score(scene, verdict);
    let line = format!(
        "\"{}\",{seed},{model},{},{}",
        scene.caption(),
        right.map(|r| if r { "1" } else { "0" }).join(","),
        named(verdict).join(",")
    );
    (right, line)
}

/// The judge's reading in the world's words, in `ATTRIBUTES` order ("none" where it saw no object).
fn named(verdict: &Verdict) -> [&'static str; 5] {
    [
        verdict.color.map_or("none", |c| COLORS[c].0),
        verdict.shape.map_or("none", |s| s.name()),
        COLORS[verdict.background].0,
        verdict.place.map_or("none", |p| p.phrase()),
        verdict.size.map_or("none", |s| s.name()),
    ]
}

fn table(rows: &[(&str, &Tally)]) -> String {
    let mut md = format!("| | {} |\n| --- |{}\n", ATTRIBUTES.join(" | "), " --- |".repeat(ATTRIBUTES.len()));
    for (name, tally) in rows {
        // Nothing judged (`--prompts 0`) is no measurement, not 0%.
        let cell = |a| if tally.total == 0 { "-".to_string() } else { format!("{:.1}%", tally.percent(a)) };
        let cells: Vec<String> = (0..ATTRIBUTES.len()).map(cell).collect();
        md += &format!("| {name} | {} |\n", cells.join(" | "));
    }
    md
}

/// Pictures in rows, each scaled up `zoom` times (nearest), 4-pixel white gutters.
pub fn grid(rows: &[Vec<Pixels>], zoom: usize) -> Pixels {
    let cell = rows.first().and_then(|r| r.first()).map(|p| p.height * zoom).unwrap_or(1);
    let columns = rows.iter().map(Vec::len).max().unwrap_or(1);
    let gutter = 4;
    let (h, w) = (rows.len() * (cell + gutter) + gutter, columns * (cell + gutter) + gutter);
    let mut data = vec![1.0f32; 3 * h * w];
    for (r, row) in rows.iter().enumerate() {
        for (c, picture) in row.iter().enumerate() {
            let (y0, x0) = (gutter + r * (cell + gutter), gutter + c * (cell + gutter));
            let plane = picture.height * picture.width;
            for y in 0..cell {
                for x in 0..cell {
                    let source = (y / zoom) * picture.width + x / zoom;
                    for ch in 0..3 {
                        data[ch * h * w + (y0 + y) * w + x0 + x] = picture.data[ch * plane + source];
                    }
                }
            }
        }
    }
    Pixels { height: h, width: w, data }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_table_marks_what_was_never_judged() {
        let mut one = Tally::default();
        one.add([true, false, true, false, true]);
        let md = table(&[("none", &Tally::default()), ("one", &one)]);
        assert!(md.contains("| none | - | - | - | - | - |"), "{md}");
        assert!(md.contains("| one | 100.0% | 0.0% | 100.0% | 0.0% | 100.0% |"), "{md}");
    }
}
