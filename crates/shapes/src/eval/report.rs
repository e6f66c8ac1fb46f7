//! The whole evaluation, one report: the judge on clean renders, zero-shot retrieval, and
//! the judge on each twin's paintings of held-out prompts, as docs/shapes.md's tables, a grid
//! and one line per painting.

use std::rc::Rc;

use crate::judge::{Judge, Verdict};
use crate::world::{COLORS, Scene};
use clipag::engine::Model;
use clipag::generate::Settings;
use clipag::pixels::Pixels;
use clipag::Result;

use super::recipe::{Recipe, differences, run, scene_settings};
use super::{ATTRIBUTES, PROMPTS_SEED, Tally, cosine, held_out_scenes, judge_accuracy, score, zero_shot};

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
