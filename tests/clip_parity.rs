//! The model computes what open_clip computes (tests/fixtures/tiny-clip, a ViT, and tiny-rn,
//! the ModifiedResNet, made by tools/make_fixtures.py; the larger ../shared/fixtures too,
//! where they are beside the checkout): text and image embeddings and the pixel gradient, from both
//! published layouts, at every precision, on the CPU and on the GPU (lavapipe here).

mod common;

use clipag::device::{self, BackendKind};
use clipag::engine::Model;
use clipag::pixels::Pixels;
use clipag::weights::{folder, quant::Quantization};
use common::*;
use std::path::Path;

struct Figures {
    text_cos: f64,
    image_cos: f64,
    grad_cos: f64,
    grad_rel: f64,
}

/// Worst-case figures over the fixture's prompts, images and gradients, for the model folder
/// `dir` converted from the fixture in `fixture`.
fn figures_of(fixture: &Path, dir: &Path, backend: BackendKind) -> Figures {
    let compute = pollster::block_on(device::open(backend)).unwrap();
    let model = Model::load(&folder::read(dir).unwrap(), &compute.device).unwrap();
    let prompts = prompts_of(fixture);
    let mut f = Figures { text_cos: 1.0, image_cos: 1.0, grad_cos: 1.0, grad_rel: 0.0 };
    for (i, prompt) in prompts.iter().enumerate() {
        let embedding = pollster::block_on(model.embed_text(prompt)).unwrap();
        f.text_cos = f.text_cos.min(cosine(&embedding, &row_of(fixture, "text_embeddings", i)));
    }
    let size = model.image_size();
    for i in 0..3 {
        let image = Pixels::new(size, size, row_of(fixture, "images", i)).unwrap();
        let embedding = pollster::block_on(model.embed_image(&image)).unwrap();
        f.image_cos = f.image_cos.min(cosine(&embedding, &row_of(fixture, "image_embeddings", i)));
        let grad = pollster::block_on(model.pixel_gradient(&image, &prompts[i])).unwrap().grad;
        let want = row_of(fixture, "pixel_grad", i);
        f.grad_cos = f.grad_cos.min(cosine(&grad, &want));
        f.grad_rel = f.grad_rel.max(relative_error(&grad, &want));
    }
    eprintln!(
        "{} {backend:?}: text cos {:.7}, image cos {:.7}, grad cos {:.7}, grad rel L2 {:.2e}",
        dir.display(), f.text_cos, f.image_cos, f.grad_cos, f.grad_rel
    );
    f
}

fn figures(dir: &Path, backend: BackendKind) -> Figures {
    figures_of(&tiny(), dir, backend)
}

fn assert_f32_parity(f: Figures) {
    assert!(f.text_cos >= 0.99999, "text cosine {}", f.text_cos);
    assert!(f.image_cos >= 0.99999, "image cosine {}", f.image_cos);
    assert!(f.grad_cos >= 0.9999, "gradient cosine {}", f.grad_cos);
    assert!(f.grad_rel <= 1e-3, "gradient relative error {}", f.grad_rel);
}

#[test]
fn token_ids_match_open_clip() {
    let dir = converted("checkpoint.pt", Quantization::F32);
    let files = folder::read(&dir).unwrap();
    let tokenizer = clipag::tokenizer::Tokenizer::from_json(&files.tokenizer, 77).unwrap();
    for (i, prompt) in prompts().iter().enumerate() {
        let ids = tokenizer.encode(prompt).unwrap().ids;
        let mut want: Vec<u32> = row("token_ids", i).iter().map(|&v| v as u32).collect();
        while want.last() == Some(&0) {
            want.pop(); // padding
        }
        assert_eq!(ids, want, "prompt {prompt:?}");
    }
}

#[test]
fn f32_from_checkpoint_matches_open_clip_on_cpu() {
    assert_f32_parity(figures(&converted("checkpoint.pt", Quantization::F32), BackendKind::Cpu));
}

#[test]
fn f32_from_safetensors_matches_open_clip_on_cpu() {
    assert_f32_parity(figures(&converted("open_clip_model.safetensors", Quantization::F32), BackendKind::Cpu));
}

#[test]
fn f32_matches_open_clip_on_gpu() {
    assert_f32_parity(figures(&converted("checkpoint.pt", Quantization::F32), BackendKind::Gpu));
}

/// The cross-check: the same bounds on the shared copies of both fixtures (made the same
/// way, with wider towers), where they are beside the checkout.
#[test]
fn f32_matches_the_shared_open_clip_fixtures() {
    let Some(shared) = shared_fixtures() else { return };
    for fixture in [shared.join("tiny-clip"), shared.join("tiny-rn")] {
        let dir = converted_from(&fixture, "open_clip_model.safetensors", Quantization::F32);
        assert_f32_parity(figures_of(&fixture, &dir, BackendKind::Cpu));
    }
}

#[test]
fn q8_stays_close_to_open_clip() {
    let f = figures(&converted("checkpoint.pt", Quantization::Q8), BackendKind::Cpu);
    assert!(f.text_cos >= 0.995 && f.image_cos >= 0.995, "embedding cosines {} {}", f.text_cos, f.image_cos);
    assert!(f.grad_cos >= 0.98, "gradient cosine {}", f.grad_cos);
}

/// The issue asks for q4's figures to be reported (they are printed and in docs/formats.md);
/// the bounds here only catch a broken encoding.
#[test]
fn q4_figures() {
    let f = figures(&converted("checkpoint.pt", Quantization::Q4), BackendKind::Cpu);
    assert!(f.text_cos >= 0.9 && f.image_cos >= 0.9 && f.grad_cos >= 0.5, "q4 is broken");
}

#[test]
fn f16_stays_close_to_open_clip() {
    let f = figures(&converted("checkpoint.pt", Quantization::F16), BackendKind::Cpu);
    assert!(f.text_cos >= 0.9999 && f.image_cos >= 0.9999 && f.grad_cos >= 0.999);
}

#[test]
fn png_images_give_the_reference_pixels() {
    for i in 0..3 {
        let bytes = std::fs::read(tiny().join(format!("image{i}.png"))).unwrap();
        let pixels = Pixels::decode(&bytes).unwrap();
        let want = row("images", i);
        let max = pixels.data.iter().zip(&want).map(|(a, b)| (a - b).abs()).fold(0.0, f32::max);
        assert!(max < 1e-6, "image{i}.png differs by {max}");
    }
}

// The ModifiedResNet (tiny-rn): the same bounds as the ViT's.

fn rn(source: &str, quantization: Quantization) -> std::path::PathBuf {
    converted_from(&tiny_rn(), source, quantization)
}

#[test]
fn resnet_f32_from_checkpoint_matches_open_clip_on_cpu() {
    assert_f32_parity(figures_of(&tiny_rn(), &rn("checkpoint.pt", Quantization::F32), BackendKind::Cpu));
}

#[test]
fn resnet_f32_from_safetensors_matches_open_clip_on_cpu() {
    assert_f32_parity(figures_of(&tiny_rn(), &rn("open_clip_model.safetensors", Quantization::F32), BackendKind::Cpu));
}

#[test]
fn resnet_f32_matches_open_clip_on_gpu() {
    assert_f32_parity(figures_of(&tiny_rn(), &rn("checkpoint.pt", Quantization::F32), BackendKind::Gpu));
}

#[test]
fn resnet_is_read_off_the_tensor_names_and_from_the_config_alike() {
    let from_names = folder::read(&rn("checkpoint.pt", Quantization::F32)).unwrap().manifest.config;
    let from_config = folder::read(&rn("open_clip_model.safetensors", Quantization::F32)).unwrap().manifest.config;
    // The checkpoint has no config beside it: its heads are read as width / 64, where the
    // fixture's config says head_width 16 (32 heads). Everything the weights hold agrees.
    let (clipag::model::VisionConfig::ResNet(a), clipag::model::VisionConfig::ResNet(b)) = (&from_names.vision, &from_config.vision) else {
        panic!("tiny-rn is a ModifiedResNet: {:?} / {:?}", from_names.vision, from_config.vision);
    };
    assert_eq!((a.image_size, &a.layers, a.width), (b.image_size, &b.layers, b.width));
    assert_eq!((b.layers.as_slice(), b.width, b.heads), ([1, 2, 1, 1].as_slice(), 16, 32));
}

#[test]
fn resnet_q8_stays_close_to_open_clip_and_shrinks() {
    let q8 = rn("checkpoint.pt", Quantization::Q8);
    let f = figures_of(&tiny_rn(), &q8, BackendKind::Cpu);
    assert!(f.text_cos >= 0.995 && f.image_cos >= 0.995, "embedding cosines {} {}", f.text_cos, f.image_cos);
    assert!(f.grad_cos >= 0.98, "gradient cosine {}", f.grad_cos);
    let bytes = |dir: &Path| folder::read(dir).unwrap().weights.len() as f64;
    let ratio = bytes(&q8) / bytes(&rn("checkpoint.pt", Quantization::F32));
    eprintln!("tiny-rn weights: q8 is {:.1}% of f32", ratio * 100.0);
    assert!(ratio <= 0.30, "q8 weights are {:.1}% of f32's", ratio * 100.0);
}

#[test]
fn resnet_f16_and_q4_figures() {
    let f16 = figures_of(&tiny_rn(), &rn("checkpoint.pt", Quantization::F16), BackendKind::Cpu);
    assert!(f16.text_cos >= 0.9999 && f16.image_cos >= 0.9999 && f16.grad_cos >= 0.999);
    // As the ViT's q4: printed (docs/formats.md), the bounds only catch a broken encoding.
    let q4 = figures_of(&tiny_rn(), &rn("checkpoint.pt", Quantization::Q4), BackendKind::Cpu);
    assert!(q4.text_cos >= 0.9 && q4.image_cos >= 0.9 && q4.grad_cos >= 0.5, "q4 is broken");
}
