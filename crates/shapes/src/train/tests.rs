use std::path::Path;

use burn::tensor::{Device, Tensor, TensorData};
use clipag::model::{ClipConfig, ResNetConfig, VisionConfig, VisionTransformerConfig};
use clipag::rng::Rng;

use super::growth::low_pass;
use super::loss::{Goal, painted_loss, scalar, unit};
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
    let robust = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models/shapes-robust");
    let trainer = Trainer::probe(Plan { painting_views: true, ..plan }, &robust).unwrap();
    let (start, painted) = painted_cosines(trainer, 5);
    assert!(start.iter().zip(&painted).all(|(s, p)| p > s), "views: start {start:?}, painted {painted:?}");
}

#[test]
fn each_picture_is_painted_toward_its_own_caption_through_the_views() {
    // Two captions that share no colour: each painting must end nearer its own caption
    // than the other's (a mix-up of which views go with which caption would not).
    let robust = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models/shapes-robust");
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
