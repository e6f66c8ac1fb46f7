//! The shipped Shapes twins (models/), the vision transformers and the convolutional ones:
//! small enough to ship, and the paper's claim: for held-out prompts (combinations neither
//! model saw), the judge reads more of the prompt in the robust twin's pictures than in the
//! plain twin's, on the same seeds.

#[path = "../../../tests/common/mod.rs"]
mod common;

use std::rc::Rc;

use clipag::engine::Model;
use clipag::generate::DEFAULT_INIT_NOISE;
use clipag_shapes::eval::{Recipe, held_out_scenes, paint, score, settings};
use clipag_shapes::world::Scene;
use clipag_shapes::judge::Judge;
use clipag::weights::folder;

fn model(name: &str) -> Rc<Model> {
    let dir = common::shipped(name);
    let files = folder::read(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    let total: u64 = files.manifest.files.values().map(|f| f.bytes).sum();
    assert!(total <= 8_000_000, "{name} is {total} bytes");
    assert_eq!(files.manifest.license, "CC-BY-4.0");
    Rc::new(Model::load(&files, &burn::tensor::Device::flex().autodiff()).unwrap())
}

/// Held-out prompts painted in 40 steps by each twin, same seeds: the judge reads more of
/// the prompts' attributes in the robust twin's pictures than in the plain one's.
/// docs/shapes.md has the rates over 100 prompts x 2 seeds (the robust twin paints the
/// colour and the background at least 70% of the time, not yet a shape, size or place
/// above the plain twin); this is the same measurement, small enough for every test run,
/// and deterministic (same seeds, same CPU backend).
#[test]
fn robust_twin_paints_held_out_prompts_better_than_the_plain_one() {
    let (robust, plain) = (model("shapes-robust"), model("shapes-plain"));
    let judge = Judge::new();
    let (mut robust_right, mut plain_right, mut accepted) = (0, 0, 0);
    for scene in held_out_scenes(6, 21) {
        let caption = scene.caption();
        let r = score(&scene, &judge.judge(&pollster::block_on(paint(&robust, &caption, 0, &Recipe::default())).unwrap()));
        let p = score(&scene, &judge.judge(&pollster::block_on(paint(&plain, &caption, 0, &Recipe::default())).unwrap()));
        eprintln!("{caption:?}: robust {r:?}, plain {p:?} (colour, shape, background, place, size)");
        accepted += usize::from(r[0] && r[2]);
        robust_right += r.iter().filter(|ok| **ok).count();
        plain_right += p.iter().filter(|ok| **ok).count();
    }
    eprintln!("colour and background both right: {accepted} of 6; attributes right: robust {robust_right}, plain {plain_right}");
    assert!(robust_right > plain_right, "robust {robust_right} vs plain {plain_right} attributes right");
}

/// The generation issue's test on the project's own model, with the paper's learning rate
/// and start: the clean canvas's score rises well above where it started, with nothing
/// non-finite, for several prompts and seeds.
#[test]
fn robust_twin_raises_the_score_for_several_prompts_and_seeds() {
    let robust = model("shapes-robust");
    for (prompt, seed) in [("a large yellow star on a blue background", 1), ("two red circles", 2), ("a white heart at the top left", 3)] {
        let mut paper = Recipe::default();
        (paper.settings.steps, paper.settings.update.lr, paper.settings.canvas.init_noise) = (30, 0.0175, DEFAULT_INIT_NOISE);
        let (start, end, _) = common::run(&robust, settings(prompt, seed, &paper));
        eprintln!("{prompt:?} seed {seed}: score {start:.4} -> {end:.4}");
        // A tenth of the way from where it started to a perfect cosine of 1.
        assert!(end - start > 0.1 * (1.0 - start), "{prompt:?} seed {seed}: score went from {start} to {end}");
    }
}

/// The Fourier parameterisation paints on the project's own robust model: the clean
/// canvas climbs more than 0.02 in 60 steps (the bar the generation test set it on the shared
/// random fixture), and a tenth of the way to a perfect cosine.
#[test]
fn robust_twin_paints_with_the_fourier_parameterisation() {
    let robust = model("shapes-robust");
    let mut recipe = Recipe::default();
    recipe.settings.steps = 60;
    let mut s = settings("a large yellow star on a blue background", 4, &recipe);
    s.canvas.param = clipag::generate::Parameterisation::Fourier;
    let (start, end, _) = common::run(&robust, s);
    eprintln!("fourier: score {start:.4} -> {end:.4}");
    assert!(end > start + 0.02, "score went from {start} to {end}");
    assert!(end - start > 0.1 * (1.0 - start), "score went from {start} to {end}");
}

/// The Shapes issue's acceptance on a held-out prompt of the evaluation (orange on purple
/// was kept out of training), picked from its grid: on two seeds, the judge reads the
/// prompt's colour and background in the robust twin's picture, and fewer of the prompt's
/// attributes in the plain twin's. docs/shapes.md has the rates over 200 pictures; not every
/// prompt is accepted.
#[test]
fn the_judge_accepts_held_out_prompts_painted_by_the_robust_twin() {
    let (robust, plain) = (model("shapes-robust"), model("shapes-plain"));
    let judge = Judge::new();
    let scenes = held_out_scenes(100, 13);
    for wanted in ["a small orange circle at the top on a purple background"] {
        let scene = scenes.iter().find(|s| s.caption() == wanted).expect("an evaluation prompt");
        for seed in 0..2 {
            let r = score(scene, &judge.judge(&pollster::block_on(paint(&robust, wanted, seed, &Recipe::default())).unwrap()));
            let p = score(scene, &judge.judge(&pollster::block_on(paint(&plain, wanted, seed, &Recipe::default())).unwrap()));
            eprintln!("{wanted:?} seed {seed}: robust {r:?}, plain {p:?} (colour, shape, background, place, size)");
            let right = |v: &[bool; 5]| v.iter().filter(|ok| **ok).count();
            assert!(r[0] && r[2], "{wanted:?} seed {seed}: the judge does not accept the robust twin's picture ({r:?})");
            assert!(right(&p) < right(&r), "{wanted:?} seed {seed}: plain {p:?} judged no worse than robust {r:?}");
        }
    }
}

/// What "robust" means here, measured on the shipped twins: PGD (10 steps at the recipe's
/// 16/255) on 32 fresh scenes drives the plain twin's image-to-caption loss past a
/// uniform guess's (ln 32) and leaves the robust twin's far below it (docs/shapes.md has
/// both over 256 scenes for the ViT twins, over 64 for the convolutional ones).
fn pgd_breaks_the_plain_twin_and_not_the_robust_one(plain_name: &str, robust_name: &str) {
    use clipag_shapes::train::{Attack, Plan, Trainer};
    let dir = common::root().join("models");
    let plan = Plan { attack: Attack::Pgd, attack_steps: 10, ..Plan::default() };
    let attacked = |name: &str| Trainer::probe(plan.clone(), &dir.join(name)).unwrap().attacked_loss(32, 11).unwrap();
    let ((plain_clean, plain), (robust_clean, robust)) = (attacked(plain_name), attacked(robust_name));
    eprintln!("{plain_name} {plain_clean} -> {plain}, {robust_name} {robust_clean} -> {robust}");
    let chance = 32f32.ln();
    assert!(plain_clean < 0.5 && plain > chance, "plain: {plain_clean} -> {plain}");
    assert!(robust > robust_clean && robust < chance / 3.0, "robust: {robust_clean} -> {robust}");
    let lonely = Trainer::probe(plan, &dir.join(robust_name)).unwrap().attacked_loss(1, 11).unwrap_err();
    assert!(lonely.to_string().contains("--batch"), "{lonely}");
}

#[test]
fn pgd_breaks_the_plain_vit_twin_and_not_the_robust_one() {
    pgd_breaks_the_plain_twin_and_not_the_robust_one("shapes-plain", "shapes-robust");
}

#[test]
fn pgd_breaks_the_plain_convolutional_twin_and_not_the_robust_one() {
    pgd_breaks_the_plain_twin_and_not_the_robust_one("shapes-rn-plain", "shapes-rn-robust");
}

/// The recipe a shipped model recommends (its manifest's `recommended`: what the page and
/// `clipag generate` paint it with), as the evaluation runs it.
fn recommended_recipe(model: &Model) -> Recipe {
    let recommended = model.manifest.recommended.as_ref().expect("the built-in models recommend a recipe");
    Recipe::default().recommended_for(recommended, model.image_size()).unwrap()
}

/// Issue 33's acceptance on a held-out prompt of the evaluation, picked from its
/// pictures.csv (docs/shapes.md has the rates over 200 pictures; not every prompt is
/// accepted): the judge reads the prompt's shape and place in the convolutional robust
/// twin's picture, painted with its recommended recipe, and fewer of the prompt's
/// attributes in the plain twin's picture of the same prompt and seed.
#[test]
fn the_judge_reads_shape_and_place_in_the_convolutional_robust_twins_painting() {
    let (robust, plain) = (model("shapes-rn-robust"), model("shapes-rn-plain"));
    let judge = Judge::new();
    let scenes = held_out_scenes(100, 13);
    let (wanted, seed) = ACCEPTED;
    let scene: &Scene = scenes.iter().find(|s| s.caption() == wanted).expect("an evaluation prompt");
    let recipe = recommended_recipe(&robust);
    let r = score(scene, &judge.judge(&pollster::block_on(paint(&robust, wanted, seed, &recipe)).unwrap()));
    let p = score(scene, &judge.judge(&pollster::block_on(paint(&plain, wanted, seed, &recipe)).unwrap()));
    eprintln!("{wanted:?} seed {seed}: robust {r:?}, plain {p:?} (colour, shape, background, place, size)");
    let right = |v: &[bool; 5]| v.iter().filter(|ok| **ok).count();
    assert!(r[1] && r[3], "{wanted:?} seed {seed}: the judge does not read the shape and place in the robust twin's picture ({r:?})");
    assert!(right(&p) < right(&r), "{wanted:?} seed {seed}: plain {p:?} judged no worse than robust {r:?}");
}

/// The prompt and seed of the test above.
const ACCEPTED: (&str, u64) = ("a large white star at the bottom on a green background", 0);

/// Strokes (CLIPDraw's parameterisation, `--param strokes`) through the robust built-in
/// model: the held-out prompt above, painted in 64 curves with the model's recipe on two
/// seeds and read by the judge as the pixel paintings are. Strokes paint less of a prompt in
/// 40 steps than pixels do (docs/generation.md: over 20 held-out prompts x 2 seeds the judge
/// reads the colour in 45 % of the robust twin's, 25 % of the plain's), so this asks what
/// held there: the judge accepts (colour and background) at least one of the robust twin's
/// two, and reads more of the prompt in the robust twin's strokes than in the plain twin's.
#[test]
fn the_judge_reads_a_held_out_prompt_painted_in_strokes_by_the_robust_twin() {
    let (robust, plain) = (model("shapes-robust"), model("shapes-plain"));
    let judge = Judge::new();
    let wanted = "a small orange circle at the top on a purple background";
    let scene = held_out_scenes(100, 13).into_iter().find(|s| s.caption() == wanted).expect("an evaluation prompt");
    let mut recipe = Recipe::default();
    recipe.settings.canvas.param = clipag::generate::Parameterisation::Strokes;
    recipe.settings.canvas.strokes = 64;
    let right = |v: &[bool; 5]| v.iter().filter(|ok| **ok).count();
    let (mut accepted, mut robust_right, mut plain_right) = (0, 0, 0);
    for seed in 0..2 {
        let r = score(&scene, &judge.judge(&pollster::block_on(paint(&robust, wanted, seed, &recipe)).unwrap()));
        let p = score(&scene, &judge.judge(&pollster::block_on(paint(&plain, wanted, seed, &recipe)).unwrap()));
        eprintln!("strokes, {wanted:?} seed {seed}: robust {r:?}, plain {p:?} (colour, shape, background, place, size)");
        accepted += usize::from(r[0] && r[2]);
        (robust_right, plain_right) = (robust_right + right(&r), plain_right + right(&p));
    }
    assert!(accepted >= 1, "the judge accepts none of the robust twin's strokes");
    assert!(robust_right > plain_right, "attributes right: robust {robust_right}, plain {plain_right}");
}

/// An image prompt alone (no text): a clean render of a held-out scene is the target. The
/// picture moves toward the target's embedding: its cosine with it, measured apart from the
/// run (through `embed_image`), climbs at least a third of the way from the start's to 1.
#[test]
fn an_image_prompt_paints_toward_its_picture() {
    let robust = model("shapes-robust");
    let wanted = "a small orange circle at the top on a purple background";
    let scene = held_out_scenes(100, 13).into_iter().find(|s| s.caption() == wanted).expect("an evaluation prompt");
    let target = scene.render(robust.image_size());
    let mut s = Recipe::default().settings;
    s.size = Some(robust.image_size());
    s.objective.image_prompts = vec![clipag::generate::ImagePrompt { picture: target.clone(), weight: 1.0 }];
    let mut generator = pollster::block_on(clipag::generate::Generator::new(robust.clone(), s)).unwrap();
    let start = generator.current().clone();
    while !generator.is_done() {
        pollster::block_on(generator.step()).unwrap();
    }
    let embed = |p: &clipag::pixels::Pixels| pollster::block_on(robust.embed_image(p)).unwrap();
    let cosine = |a: &[f32], b: &[f32]| {
        let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
        dot / (a.iter().map(|x| x * x).sum::<f32>().sqrt() * b.iter().map(|y| y * y).sum::<f32>().sqrt())
    };
    let aim = embed(&target);
    let (before, after) = (cosine(&embed(&start), &aim), cosine(&embed(generator.best()), &aim));
    eprintln!("cosine with the target picture: {before:.4} at the start, {after:.4} painted (the run's own score {:.4})", generator.best_score());
    assert!((after - generator.best_score()).abs() < 1e-3, "the run's score is the cosine with its image prompt");
    assert!(after - before > (1.0 - before) / 3.0, "cosine with the target went from {before} to {after}");
}

/// Steering: a run's prompt changed halfway paints toward the new one from the next step on,
/// the canvas kept: the score for the new prompt climbs from where the change found it, and
/// the picture kept is one painted after the change. Only prompts may change mid-run.
#[test]
fn a_steered_run_paints_toward_its_new_prompt() {
    let robust = model("shapes-robust");
    let mut recipe = Recipe::default();
    recipe.settings.steps = 40;
    let mut generator = pollster::block_on(clipag::generate::Generator::new(robust, settings("a red circle on a white background", 1, &recipe))).unwrap();
    for _ in 0..20 {
        pollster::block_on(generator.step()).unwrap();
    }
    let patch = |json| serde_json::from_value::<clipag::generate::Patch>(json).unwrap();
    let refused = pollster::block_on(generator.steer(&patch(serde_json::json!({ "steps": 80 })))).unwrap_err();
    assert!(refused.to_string().contains("only the prompt and the negative prompt"), "{refused}");
    let before = generator.current_score();
    pollster::block_on(generator.steer(&patch(serde_json::json!({ "prompt": "a blue square on a yellow background", "negative": "red" })))).unwrap();
    let at_change = generator.current_score();
    assert_ne!(before, at_change, "the score is the new prompt's");
    let mut last = None;
    while !generator.is_done() {
        last = Some(pollster::block_on(generator.step()).unwrap());
    }
    let last = last.unwrap();
    eprintln!("score for the old prompt at the change {before:.4}, for the new {at_change:.4}, after 20 steps {:.4} (kept: step {})", last.score, last.best_step);
    assert!(last.score > at_change + 0.2 * (1.0 - at_change), "the new prompt's score went from {at_change} to {}", last.score);
    assert!(last.best_step >= 20, "the picture kept is from step {}, before the change", last.best_step);
}
