//! The Shapes world, its judge and its trainer: deterministic pictures, captions the
//! tokenizer knows word for word, held-out combinations kept out of training, a judge that
//! reads clean pictures right, and training that runs, checkpoints and resumes.

use clipag::rng::Rng;
use clipag::generate::{Optimiser, Parameterisation};
use clipag_shapes::eval::{ATTRIBUTES, Recipe, held_out_scenes, judge_accuracy, scene_settings, settings};
use clipag_shapes::judge::Judge;
use clipag_shapes::train::{self, Attack, Objective, Plan, Trainer};
use clipag_shapes::eval::score;
use clipag_shapes::world::{COLORS, Object, PLACES, Place, SHAPES, Scene, Shape, Size};
use clipag::tokenizer::Tokenizer;

#[path = "../../../tests/common/mod.rs"]
mod common;
use common::temp_dir;

#[test]
fn same_seed_same_world() {
    let draw = |seed| {
        let mut rng = Rng::new(seed);
        (0..20).map(|_| Scene::random(&mut rng, false)).collect::<Vec<_>>()
    };
    assert_eq!(draw(3), draw(3));
    assert_ne!(draw(3), draw(4));
    let scene = &draw(3)[0];
    assert_eq!(scene.render(64), scene.render(64));
}

#[test]
fn captions_use_only_the_vocabulary() {
    let tokenizer = Tokenizer::from_json(&train::tokenizer_json().unwrap(), 16).unwrap();
    let unknown = 2; // <unk>
    let mut rng = Rng::new(1);
    for _ in 0..2000 {
        for held_out in [false, true] {
            let caption = Scene::random(&mut rng, held_out).caption();
            let tokens = tokenizer.encode(&caption).unwrap();
            assert!(!tokens.truncated && !tokens.ids.contains(&unknown), "{caption:?} -> {:?}", tokens.ids);
        }
    }
    // Words outside the world are unknown, not an error.
    assert!(tokenizer.encode("a purple cat").unwrap().ids.contains(&unknown));
}

#[test]
fn training_never_sees_a_held_out_combination() {
    let mut rng = Rng::new(2);
    for _ in 0..5000 {
        let scene = Scene::random(&mut rng, false);
        assert!(scene.objects.iter().all(|o| !o.held_out(scene.background)), "{}", scene.caption());
    }
    for scene in held_out_scenes(200, 3) {
        assert!(scene.objects[0].held_out(scene.background));
    }
}

#[test]
fn a_minimal_pair_differs_in_one_said_attribute() {
    let mut rng = Rng::new(4);
    let mut changed = [0usize; 3]; // shape, size, place
    for _ in 0..2000 {
        let (a, b) = Scene::minimal_pair(&mut rng);
        let (ca, cb) = (a.caption(), b.caption());
        assert!(a.objects.iter().chain(&b.objects).all(|o| !o.held_out(a.background)), "{ca} / {cb}");
        assert_eq!(a.background, b.background);
        let differing: Vec<usize> = a.objects.iter().zip(&b.objects).enumerate().filter(|(_, (x, y))| x != y).map(|(i, _)| i).collect();
        assert_eq!(differing.len(), 1, "{ca} / {cb}");
        let (x, y) = (a.objects[differing[0]], b.objects[differing[0]]);
        let which = [x.shape != y.shape, x.size != y.size, x.place != y.place];
        assert_eq!(which.iter().filter(|w| **w).count(), 1, "{ca} / {cb}");
        which.iter().zip(&mut changed).filter(|(w, _)| **w).for_each(|(_, n)| *n += 1);
        // Each caption fits its own picture only: the difference is said.
        assert!(a.fits(&a) && b.fits(&b) && !a.fits(&b) && !b.fits(&a), "{ca} / {cb}");
        assert_ne!(ca, cb);
    }
    assert!(changed.iter().all(|&n| n > 300), "{changed:?}");
}

#[test]
fn judge_reads_clean_pictures() {
    let tally = judge_accuracy(&Judge::new(), &held_out_scenes(400, 4), 64);
    for (a, name) in ATTRIBUTES.iter().enumerate() {
        eprintln!("judge {name}: {:.1}%", tally.percent(a));
        assert!(tally.percent(a) >= 97.0, "{name}: {:.1}%", tally.percent(a));
    }
}

/// A painting scatters specks of the object's colour over the canvas; the judge reads the
/// object, not the specks: a small square at the top left stays one, with a speck of its
/// red in each other corner and a few beside it.
#[test]
fn the_judge_reads_the_object_not_the_specks_of_its_colour() {
    let scene = Scene {
        objects: vec![Object { shape: Shape::Square, color: 0, size: Size::Small, place: Place { x: -1, y: -1 } }],
        background: 2,
        says_size: true,
        says_place: true,
        says_background: true,
    };
    let mut picture = scene.render(64);
    let plane = 64 * 64;
    for (y, x) in [(60, 60), (5, 58), (58, 4), (40, 44), (41, 45), (30, 50), (52, 30)] {
        for (c, v) in COLORS[0].1.iter().enumerate() {
            picture.data[c * plane + y * 64 + x] = *v as f32 / 255.0;
        }
    }
    let verdict = Judge::new().judge(&picture);
    assert_eq!(score(&scene, &verdict), [true; 5], "{verdict:?}");
}

/// Training on a GPU (wgpu; lavapipe here, as in CI) takes the CPU's steps: each step's data
/// and the attack's noise are drawn on the host from the seed, so the losses, clean and
/// adversarial, agree up to float rounding.
#[test]
fn training_on_the_gpu_takes_the_cpus_steps() {
    let gpu = pollster::block_on(clipag::device::open(clipag::device::BackendKind::Gpu)).expect("a GPU through wgpu (lavapipe here)");
    // Two clean steps, then one N-FGSM step (the recipe's attack).
    let plan = Plan { seed: 7, batch: 4, pretrain_steps: 2, finetune_steps: 1, ..Plan::default() };
    let losses = |plan: Plan| {
        let mut trainer = Trainer::new(plan).unwrap();
        (0..3).map(|_| trainer.step().unwrap()).collect::<Vec<f32>>()
    };
    let (cpu, gpu) = (losses(plan.clone()), losses(Plan { device: gpu.device, ..plan }));
    for (step, (c, g)) in cpu.iter().zip(&gpu).enumerate() {
        assert!(c.is_finite() && (c - g).abs() <= 1e-3 * c.abs().max(1.0), "step {step}: CPU {c}, GPU {g}");
    }
}

#[test]
fn training_steps_checkpoints_and_resumes() {
    let plan = Plan { seed: 5, batch: 8, pretrain_steps: 2, finetune_steps: 2, epsilon: Some(8.0 / 255.0), attack: Attack::Fgsm, noise: 2.0, shades: 32, ..Plan::default() };
    let mut trainer = Trainer::new(plan.clone()).unwrap();
    for _ in 0..3 {
        assert!(trainer.step().unwrap().is_finite());
    }
    let dir = temp_dir("checkpoint");
    trainer.save_checkpoint(&dir).unwrap();
    let mut resumed = Trainer::resume(plan.clone(), &dir).unwrap();
    assert_eq!(resumed.step, 3);
    assert!(resumed.step().unwrap().is_finite(), "an adversarial step after resuming");
    let mut noisy = Trainer::resume(Plan { attack: Attack::NoiseFgsm, ..plan.clone() }, &dir).unwrap();
    assert!(noisy.step().unwrap().is_finite(), "an N-FGSM step");
    let mut l2 = Trainer::resume(Plan { attack: Attack::L2, epsilon: Some(Attack::L2.budget(3.0).unwrap()), ..plan.clone() }, &dir).unwrap();
    assert!(l2.step().unwrap().is_finite(), "an L2 step");
    // FARE needs its reference, the pre-trained model, and says so.
    let mut fare = Trainer::resume(Plan { objective: Objective::Fare, ..plan.clone() }, &dir).unwrap();
    assert!(fare.step().unwrap_err().to_string().contains("reference"));
    fare.set_reference(&dir).unwrap();
    assert!(fare.step().unwrap().is_finite(), "a FARE step");
    // A budget that is no budget is refused, named as the user gave it.
    for attack in [Attack::Fgsm, Attack::NoiseFgsm, Attack::L2] {
        for given in [0.0, -3.0, f32::NAN] {
            let error = attack.budget(given).unwrap_err().to_string();
            assert!(error.contains("--epsilon") && error.contains(&given.to_string()), "{error}");
        }
    }
    // N-FGSM's start: the paper's 2 by default, a bad one refused, and none for the attacks
    // that start inside their ball.
    assert_eq!(Attack::NoiseFgsm.noise(None).unwrap(), Plan::default().noise);
    assert_eq!(Attack::NoiseFgsm.noise(Some(4.0)).unwrap(), 4.0);
    for given in [-1.0, f32::NAN] {
        let error = Attack::NoiseFgsm.noise(Some(given)).unwrap_err().to_string();
        assert!(error.contains("--noise") && error.contains(&given.to_string()), "{error}");
    }
    for attack in [Attack::Fgsm, Attack::L2] {
        assert!(attack.noise(Some(4.0)).unwrap_err().to_string().contains("--attack n-fgsm"));
    }
}

/// The evaluation's recipe with settings by name over its own, as `shapes eval` takes them.
fn recipe_with(patch: serde_json::Value) -> Recipe {
    Recipe::default().patched(&serde_json::from_value(patch).unwrap()).unwrap()
}

#[test]
fn the_evaluation_paints_with_the_recipe_it_names() {
    let recipe = recipe_with(serde_json::json!({
        "steps": 12, "size": 48, "views": 3, "patchViews": 5, "lr": 0.2, "initNoise": 0.0, "colourJitter": true, "cutout": false,
        "edgePadding": true, "noise": 0.05, "param": "fourier", "smoothness": 0.5, "decay": true
    }));
    let s = settings("a red star", 7, &recipe);
    assert_eq!((s.steps, s.size, s.view.views, s.view.patch_views, s.seed), (12, Some(48), 3, 5, 7));
    assert_eq!(
        (s.update.lr, s.update.decay, s.view.noise, s.view.colour_jitter, s.view.cutout, s.view.edge_padding, s.objective.smoothness),
        (0.2, true, 0.05, true, false, true, 0.5)
    );
    assert_eq!(s.canvas.param, Parameterisation::Fourier);
    s.validate().unwrap();
    // Under contrast, each rival is the caption with one attribute changed: never the
    // caption itself, never twice.
    let scene = held_out_scenes(1, 13).remove(0);
    let contrasted = scene_settings(&scene, 0, &recipe_with(serde_json::json!({ "contrast": 14.3, "optimiser": "normalised-gradient" })));
    assert_eq!((contrasted.objective.contrast, contrasted.update.optimiser), (Some(14.3), Optimiser::NormalisedGradient));
    let caption = scene.caption();
    let mut rivals: Vec<&str> = contrasted.objective.negative.iter().map(|p| p.text.as_str()).collect();
    let count = rivals.len();
    rivals.dedup();
    assert!(count == rivals.len() && !rivals.contains(&caption.as_str()), "{rivals:?}");
    // Every colour but the object's and the background's, every other shape, background,
    // place and size.
    assert_eq!(count, (COLORS.len() - 2) + (SHAPES.len() - 1) + (COLORS.len() - 2) + (PLACES.len() - 1) + 1, "{rivals:?}");
    contrasted.validate().unwrap();
    // A bare prompt has no rivals to paint against: refused, not painted without them.
    let bare = settings(&caption, 0, &recipe_with(serde_json::json!({ "contrast": 14.3 })));
    assert!(bare.validate().unwrap_err().to_string().contains("negative prompts"));
    let d = settings("a red star", 0, &Recipe::default());
    assert_eq!(
        (d.view.noise, d.update.decay, d.view.colour_jitter, d.view.cutout, d.view.edge_padding, d.canvas.param, d.objective.smoothness),
        (0.01, false, false, true, false, Parameterisation::Pixels, 0.3)
    );
    // From the clean render: the scene's own picture at the canvas's size is the start.
    let from_clean = scene_settings(&scene, 0, &Recipe { from_clean: true, ..Recipe::default() });
    assert!(matches!(&from_clean.canvas.start, Some(p) if *p == scene.render(Recipe::default().canvas())));
}
