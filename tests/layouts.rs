//! The other published layouts convert to the same model: Hugging Face transformers' CLIP,
//! and a full-size ViT-B/32 in the CLIPAG layout (random weights written by the project),
//! which must shrink at q8 and run forward and backward.

mod common;

use std::time::Instant;

use clipag::engine::Model;
use clipag::model::ClipConfig;
use clipag::pixels::Pixels;
use clipag::weights::quant::Quantization;
use clipag::weights::random::RandomWeights;
use clipag::weights::tensors::{HostTensor, TensorMap};
use clipag::weights::{convert, folder, torch};
use common::*;

fn options(quantization: Quantization) -> convert::Options {
    convert::Options { quantization, quick_gelu: false, config: None, name: None, license: None, tokenizer: None, recommended: None, source: None }
}

fn read_open_clip_fixture() -> TensorMap {
    read_safetensors(&tiny().join("open_clip_model.safetensors"))
}

fn read_safetensors(path: &std::path::Path) -> TensorMap {
    let bytes = std::fs::read(path).unwrap();
    let file = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    file.tensors()
        .into_iter()
        .map(|(name, v)| {
            let data = v.data().chunks_exact(4).map(|b| f32::from_le_bytes(b.try_into().unwrap())).collect();
            (name, HostTensor::new(v.shape().to_vec(), data))
        })
        .collect()
}

fn write_safetensors(path: &std::path::Path, tensors: &TensorMap) {
    let bytes: Vec<(String, Vec<u8>, Vec<usize>)> = tensors
        .iter()
        .map(|(n, t)| (n.clone(), t.data.iter().flat_map(|v| v.to_le_bytes()).collect(), t.shape.clone()))
        .collect();
    let views = bytes
        .iter()
        .map(|(n, b, s)| (n.clone(), safetensors::tensor::TensorView::new(safetensors::Dtype::F32, s.clone(), b).unwrap()));
    std::fs::write(path, safetensors::serialize(views, None).unwrap()).unwrap();
}

/// The fixture's weights renamed as transformers' `CLIPModel` names them (its
/// `modeling_clip.py`), with its `config.json`.
fn hugging_face_fixture(dir: &std::path::Path) {
    let oc = read_open_clip_fixture();
    let mut hf = TensorMap::new();
    let put = |hf: &mut TensorMap, name: String, t: HostTensor| {
        hf.insert(name, t);
    };
    for (tower, prefix, layers) in [("text_model", "", 2), ("vision_model", "visual.", 2)] {
        for i in 0..layers {
            let o = format!("{prefix}transformer.resblocks.{i}");
            let h = format!("{tower}.encoder.layers.{i}");
            for (part, name) in [("weight", "in_proj_weight"), ("bias", "in_proj_bias")] {
                let t = &oc[&format!("{o}.attn.{name}")];
                let third = t.data.len() / 3;
                let mut shape = t.shape.clone();
                shape[0] /= 3;
                for (j, qkv) in ["q_proj", "k_proj", "v_proj"].iter().enumerate() {
                    let data = t.data[j * third..(j + 1) * third].to_vec();
                    put(&mut hf, format!("{h}.self_attn.{qkv}.{part}"), HostTensor::new(shape.clone(), data));
                }
            }
            for (from, to) in [("attn.out_proj", "self_attn.out_proj"), ("ln_1", "layer_norm1"), ("ln_2", "layer_norm2"), ("mlp.c_fc", "mlp.fc1"), ("mlp.c_proj", "mlp.fc2")] {
                for part in ["weight", "bias"] {
                    put(&mut hf, format!("{h}.{to}.{part}"), oc[&format!("{o}.{from}.{part}")].clone());
                }
            }
        }
    }
    for (from, to) in [
        ("token_embedding.weight", "text_model.embeddings.token_embedding.weight"),
        ("positional_embedding", "text_model.embeddings.position_embedding.weight"),
        ("ln_final.weight", "text_model.final_layer_norm.weight"),
        ("ln_final.bias", "text_model.final_layer_norm.bias"),
        ("visual.class_embedding", "vision_model.embeddings.class_embedding"),
        ("visual.conv1.weight", "vision_model.embeddings.patch_embedding.weight"),
        ("visual.positional_embedding", "vision_model.embeddings.position_embedding.weight"),
        ("visual.ln_pre.weight", "vision_model.pre_layrnorm.weight"),
        ("visual.ln_pre.bias", "vision_model.pre_layrnorm.bias"),
        ("visual.ln_post.weight", "vision_model.post_layernorm.weight"),
        ("visual.ln_post.bias", "vision_model.post_layernorm.bias"),
        ("logit_scale", "logit_scale"),
    ] {
        put(&mut hf, to.into(), oc[from].clone());
    }
    put(&mut hf, "text_projection.weight".into(), oc["text_projection"].transposed());
    put(&mut hf, "visual_projection.weight".into(), oc["visual.proj"].transposed());
    write_safetensors(&dir.join("model.safetensors"), &hf);
    // The text tower's size is the fixture's (tools/make_fixtures.py keeps it small).
    let text_width = oc["ln_final.weight"].shape[0];
    let config = serde_json::json!({
        "architectures": ["CLIPModel"], "model_type": "clip", "projection_dim": 32,
        "text_config": {"hidden_size": text_width, "intermediate_size": 4 * text_width, "num_attention_heads": 2, "num_hidden_layers": 2,
                        "max_position_embeddings": 77, "vocab_size": 49408, "hidden_act": "gelu"},
        "vision_config": {"hidden_size": 128, "intermediate_size": 512, "num_attention_heads": 2, "num_hidden_layers": 2,
                          "image_size": 64, "patch_size": 16, "hidden_act": "gelu"}
    });
    std::fs::write(dir.join("config.json"), config.to_string()).unwrap();
}

#[test]
fn hugging_face_layout_matches_open_clip() {
    let src = temp_dir("hf-src");
    hugging_face_fixture(&src);
    let out = temp_dir("hf-out");
    convert::convert(&src, &out, &options(Quantization::F32)).unwrap();
    let device = burn::tensor::Device::flex().autodiff();
    let model = Model::load(&folder::read(&out).unwrap(), &device).unwrap();
    for (i, prompt) in prompts().iter().enumerate() {
        let e = pollster::block_on(model.embed_text(prompt)).unwrap();
        assert!(cosine(&e, &row("text_embeddings", i)) >= 0.99999, "prompt {i}");
    }
    for i in 0..3 {
        let image = Pixels::new(64, 64, row("images", i)).unwrap();
        let e = pollster::block_on(model.embed_image(&image)).unwrap();
        assert!(cosine(&e, &row("image_embeddings", i)) >= 0.99999, "image {i}");
    }
}

/// A full-size architecture with random weights, written in the CLIPAG layout: the converter
/// reads the architecture off the tensors, q8 is at most 30% of the f32 checkpoint, and the
/// model loads and takes a forward and backward pass on the CPU.
fn full_size_converts_small_and_runs(name: &str, config: ClipConfig) {
    let dir = temp_dir(name);
    let t = Instant::now();
    let tensors = RandomWeights::tensors(&config, 7).unwrap();
    let pt = dir.join(format!("{name}_random.pt"));
    torch::write_clipag_layout(std::io::BufWriter::new(std::fs::File::create(&pt).unwrap()), &tensors, "random").unwrap();
    drop(tensors);
    let written = t.elapsed();

    let t = Instant::now();
    let out = dir.join("q8");
    let manifest = convert::convert(&pt, &out, &options(Quantization::Q8)).unwrap();
    let converted = t.elapsed();
    assert_eq!(manifest.config, config, "the architecture is read off the tensor names and shapes");
    let f32_bytes = std::fs::metadata(&pt).unwrap().len();
    let q8_bytes = manifest.files.values().map(|f| f.bytes).sum::<u64>();
    let ratio = q8_bytes as f64 / f32_bytes as f64;
    assert!(ratio <= 0.30, "q8 is {ratio:.3} of f32");

    let t = Instant::now();
    let device = burn::tensor::Device::flex().autodiff();
    let model = Model::load(&folder::read(&out).unwrap(), &device).unwrap();
    let loaded = t.elapsed();
    let image = Pixels::new(224, 224, (0..3 * 224 * 224).map(|i| ((i % 997) as f32) / 997.0).collect()).unwrap();
    let t = Instant::now();
    let result = pollster::block_on(model.pixel_gradient(&image, "a photo of a cat")).unwrap();
    let step = t.elapsed();
    assert!(result.cosine.is_finite());
    assert!(result.grad.iter().all(|g| g.is_finite()) && result.grad.iter().any(|g| *g != 0.0));
    eprintln!(
        "{name}: f32 checkpoint {:.0} MB (written in {written:.1?}), q8 folder {:.0} MB = {:.1}% (converted in {converted:.1?}); \
         loaded on the CPU in {loaded:.1?}; one forward+backward {step:.1?}",
        f32_bytes as f64 / 1e6, q8_bytes as f64 / 1e6, 100.0 * ratio
    );
}

#[test]
fn vit_b_32_in_the_clipag_layout_converts_small_and_runs() {
    full_size_converts_small_and_runs("ViT-B-32", ClipConfig::vit_b_32());
}

#[test]
fn rn50_in_the_clipag_layout_converts_small_and_runs() {
    full_size_converts_small_and_runs("RN50", ClipConfig::rn50());
}

/// Shapes the converter reads sizes from, of the wrong rank or disagreeing, are refused by
/// name instead of panicking as they are indexed (issue 35): a 1-D patch embedding in a
/// checkpoint with no config, query and key projections of different sizes and a 1-D
/// projection in a Hugging Face one.
#[test]
fn shapes_of_the_wrong_rank_or_that_disagree_are_refused_by_name() {
    let dir = temp_dir("bad-shapes");
    let mut tensors = read_open_clip_fixture();
    let conv1 = tensors.get_mut("visual.conv1.weight").unwrap();
    conv1.shape = vec![conv1.data.len()];
    let pt = dir.join("flat-conv1.pt");
    torch::write_clipag_layout(std::fs::File::create(&pt).unwrap(), &tensors, "flat conv1").unwrap();
    let error = convert::convert(&pt, &dir.join("out-pt"), &options(Quantization::F32)).unwrap_err().to_string();
    assert!(error.contains("'visual.conv1.weight' has shape") && error.contains("4-D"), "{error}");

    for (name, spoil) in [
        ("text_model.encoder.layers.0.self_attn.k_proj.weight", "alike"),
        ("visual_projection.weight", "a matrix"),
    ] {
        let src = temp_dir(&format!("bad-hf-{spoil}"));
        hugging_face_fixture(&src);
        let path = src.join("model.safetensors");
        let mut hf = read_safetensors(&path);
        let tensor = hf.get_mut(name).unwrap();
        let keep = tensor.data.len() / 2;
        *tensor = HostTensor::new(vec![keep], tensor.data[..keep].to_vec());
        write_safetensors(&path, &hf);
        let error = convert::convert(&src, &src.join("out"), &options(Quantization::F32)).unwrap_err().to_string();
        assert!(error.contains(spoil), "{name}: {error}");
    }
}
