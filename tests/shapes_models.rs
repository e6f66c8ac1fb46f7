//! The shipped Shapes twins (models/): small enough to ship, and the paper's claim in one
//! test: for held-out prompts (combinations neither model saw), the judge reads more of the
//! prompt in the robust twin's pictures than in the plain twin's, on the same seeds.

mod common;

use std::path::Path;
use std::rc::Rc;

use clipag::engine::Model;
use clipag::shapes::eval::{Recipe, held_out_scenes, paint, score, settings};
use clipag::shapes::judge::Judge;
use clipag::weights::folder;

fn model(name: &str) -> Rc<Model> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("models").join(name);
    let files = folder::read(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    let total: u64 = files.manifest.files.values().map(|f| f.bytes).sum();
    assert!(total <= 8_000_000, "{name} is {total} bytes");
    assert_eq!(files.manifest.license, "CC-BY-4.0");
    Rc::new(Model::load(&files, &burn::tensor::Device::flex().autodiff()).unwrap())
}

/// Held-out prompts painted in 40 steps by each twin, same seeds: the judge reads more of
/// the prompts' attributes in the robust twin's pictures than in the plain one's.
/// docs/shapes.md has the rates over 100 prompts x 2 seeds (the robust twin is not yet at
/// the 70% colour and background the project aims for); this is the same measurement, small
/// enough for every test run, and deterministic (same seeds, same CPU backend).
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

/// The generation issue's test on the project's own model: the clean canvas's score rises
/// well above where it started, with nothing non-finite, for several prompts and seeds.
#[test]
fn robust_twin_raises_the_score_for_several_prompts_and_seeds() {
    let robust = model("shapes-robust");
    for (prompt, seed) in [("a large yellow star on a blue background", 1), ("two red circles", 2), ("a white heart at the top left", 3)] {
        let (start, end, _) = common::run(&robust, settings(prompt, seed, &Recipe { steps: 30, ..Recipe::default() }));
        eprintln!("{prompt:?} seed {seed}: score {start:.4} -> {end:.4}");
        assert!(end > start + 0.1, "{prompt:?} seed {seed}: score went from {start} to {end}");
    }
}
