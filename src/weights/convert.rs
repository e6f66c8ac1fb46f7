//! `clipag convert`: the checkpoints robust-CLIP authors publish, turned into model folders.
//!
//! Three layouts are read, all into open_clip's tensor names:
//! 1. a PyTorch checkpoint as CLIPAG publishes it (a zip pickle with numpy scalars beside a
//!    `state_dict` whose keys carry a `module.` prefix), read by the safe pickle reader;
//! 2. open_clip's `open_clip_model.safetensors` + `open_clip_config.json` (FARE, TeCoA);
//! 3. Hugging Face transformers' `model.safetensors` + `config.json`.
//! A model folder of this project converts too (to another precision, name or
//! recommendation), keeping its own tokenizer and recommendation unless told otherwise.

use std::path::{Path, PathBuf};

use super::folder::{self, Description};
use super::quant::Quantization;
use super::tensors::{HostTensor, TensorMap};
use super::Manifest;
use crate::model::{ClipConfig, ResNetConfig, TextConfig, VisionConfig, VisionTransformerConfig};
use crate::{Error, Result};

pub struct Options {
    pub quantization: Quantization,
    /// QuickGELU, for checkpoints whose files do not record the activation.
    pub quick_gelu: bool,
    /// An open_clip config for a checkpoint that has none beside it.
    pub config: Option<PathBuf>,
    pub name: Option<String>,
    pub license: Option<String>,
    /// A `tokenizer.json` to ship in place of CLIP's BPE, for a model trained on a
    /// vocabulary of its own (the Shapes twins trained by tools/shapes_torch.py).
    pub tokenizer: Option<PathBuf>,
    /// How to paint with the model, recorded in its manifest (a `Patch` of settings).
    pub recommended: Option<super::manifest::Patch>,
    /// Where the weights came from, in place of the converted file's name.
    pub source: Option<String>,
}

/// Where a checkpoint's architecture came from; the activation flag applies only where the
/// files do not record one.
struct Checkpoint {
    tensors: TensorMap,
    config: ClipConfig,
    activation_recorded: bool,
    kind: &'static str,
    /// A model folder's own tokenizer and recommendation.
    tokenizer: Option<Vec<u8>>,
    recommended: Option<super::manifest::Patch>,
}

fn invalid(what: impl std::fmt::Display) -> Error {
    Error::Invalid(what.to_string())
}

/// The file at `path` is at fault, for `why`.
fn bad_file(path: &Path, why: impl std::fmt::Display) -> Error {
    Error::file(why.to_string()).at(path.display())
}

fn read_file(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| bad_file(path, e))
}

fn read_text(path: &Path) -> Result<String> {
    String::from_utf8(read_file(path)?).map_err(|_| bad_file(path, "not UTF-8 text"))
}

/// Converts `src` (a file or a folder) into a model folder at `out`.
pub fn convert(src: &Path, out: &Path, options: &Options) -> Result<Manifest> {
    let mut checkpoint = read_checkpoint(src, options)?;
    if !checkpoint.activation_recorded {
        checkpoint.config.quick_gelu = options.quick_gelu;
    } else if options.quick_gelu && !checkpoint.config.quick_gelu {
        return Err(invalid("--quick-gelu contradicts the checkpoint's config, which records GELU"));
    }
    let config = checkpoint.config;
    config.validate()?;

    // Building the model on the CPU proves every tensor is there with the right shape before
    // anything is written, and tells which tensors the model uses: only those are kept.
    let used = super::loaded_tensors(&config, &mut checkpoint.tensors)?;

    let stem = src.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    let description = Description {
        name: options.name.clone().unwrap_or(stem),
        license: options.license.clone().unwrap_or_else(|| "unknown: see the source of the weights".into()),
        source: format!(
            "{} ({}), converted by clipag {} at {:?}",
            options.source.clone().unwrap_or_else(|| src.file_name().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default()),
            checkpoint.kind,
            env!("CARGO_PKG_VERSION"),
            options.quantization
        ),
        recommended: options.recommended.clone().or(checkpoint.recommended),
    };
    let tokenizer = match (&options.tokenizer, checkpoint.tokenizer) {
        (Some(path), _) => own_tokenizer(path, &config)?,
        (None, Some(bytes)) => bytes,
        (None, None) => crate::tokenizer::vocab::clip_tokenizer_json()?,
    };
    folder::write(out, &config, &used, options.quantization, &tokenizer, description)
}

/// A tokenizer.json the model's text tower can read: it parses, and its ids fit the
/// token embedding.
fn own_tokenizer(path: &Path, config: &ClipConfig) -> Result<Vec<u8>> {
    let bytes = read_file(path)?;
    let tokenizer = crate::tokenizer::Tokenizer::from_json(&bytes, config.text.context_length)
        .map_err(|e| e.at(path.display()))?;
    if tokenizer.vocab_size() > config.text.vocab_size {
        return Err(bad_file(
            path,
            format!("{} tokens, more than the model's {} token embeddings", tokenizer.vocab_size(), config.text.vocab_size),
        ));
    }
    Ok(bytes)
}

fn read_checkpoint(src: &Path, options: &Options) -> Result<Checkpoint> {
    if src.is_dir() {
        let has = |name: &str| src.join(name).is_file();
        if has("manifest.json") {
            return read_model_folder(src);
        }
        if has("open_clip_model.safetensors") && has("open_clip_config.json") {
            return read_open_clip(&src.join("open_clip_model.safetensors"), &src.join("open_clip_config.json"));
        }
        if has("model.safetensors") && has("config.json") {
            return read_hugging_face(&src.join("model.safetensors"), &src.join("config.json"));
        }
        return Err(invalid(format!(
            "{}: no open_clip_model.safetensors + open_clip_config.json, nor model.safetensors + config.json",
            src.display()
        )));
    }
    let bytes = read_file(src)?;
    let beside = |name: &str| src.parent().map(|p| p.join(name)).filter(|p| p.is_file());
    if bytes.starts_with(b"PK\x03\x04") {
        return read_torch(src, bytes, options.config.clone().or_else(|| beside("open_clip_config.json")));
    }
    if bytes.first() == Some(&0x80) {
        return Err(Error::Unsupported(format!(
            "{}: a PyTorch checkpoint in the format before PyTorch 1.6; load and re-save it with a newer torch",
            src.display()
        )));
    }
    if src.extension().is_some_and(|e| e == "safetensors") {
        if let Some(config) = options.config.clone().or_else(|| beside("open_clip_config.json")) {
            return read_open_clip(src, &config);
        }
        if let Some(config) = beside("config.json") {
            return read_hugging_face(src, &config);
        }
        return Err(bad_file(src, "a safetensors file needs its open_clip_config.json (or Hugging Face config.json) beside it"));
    }
    Err(bad_file(src, "neither a PyTorch checkpoint nor a safetensors file"))
}

/// A model folder of this project, every tensor expanded to f32.
fn read_model_folder(src: &Path) -> Result<Checkpoint> {
    let files = folder::read(src)?;
    let weights = src.join(super::manifest::WEIGHTS);
    let tensors = super::loaded_tensors(&files.manifest.config, &mut super::StoredWeights::parse(&files.weights).map_err(|e| e.at(weights.display()))?)
        .map_err(|e| e.at(weights.display()))?;
    Ok(Checkpoint {
        tensors,
        config: files.manifest.config,
        activation_recorded: true,
        kind: "model folder",
        tokenizer: Some(files.tokenizer),
        recommended: files.manifest.recommended,
    })
}

fn read_torch(src: &Path, bytes: Vec<u8>, config: Option<PathBuf>) -> Result<Checkpoint> {
    let tensors = super::torch::read_state_dict(std::io::Cursor::new(bytes))
        .map_err(|e| e.at(src.display()))?;
    let (config, activation_recorded) = match config {
        Some(path) => open_clip_config(&path)?,
        None => (infer_config(&tensors)?, false),
    };
    Ok(Checkpoint { tensors, config, activation_recorded, kind: "PyTorch checkpoint", tokenizer: None, recommended: None })
}

fn open_clip_config(path: &Path) -> Result<(ClipConfig, bool)> {
    let text = read_text(path)?;
    let config = ClipConfig::from_open_clip_json(&text).map_err(|e| e.at(path.display()))?;
    let json: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
    let recorded = json.get("model_cfg").unwrap_or(&json).get("quick_gelu").is_some();
    Ok((config, recorded))
}

fn read_open_clip(weights: &Path, config: &Path) -> Result<Checkpoint> {
    let (config, activation_recorded) = open_clip_config(config)?;
    let tensors = read_safetensors(weights)?;
    Ok(Checkpoint { tensors, config, activation_recorded, kind: "open_clip safetensors", tokenizer: None, recommended: None })
}

/// Every floating-point tensor of a safetensors file, as f32.
fn read_safetensors(path: &Path) -> Result<TensorMap> {
    use safetensors::Dtype;
    let bytes = read_file(path)?;
    let file = super::safetensors_file(&bytes).map_err(|e| e.at(path.display()))?;
    let mut tensors = TensorMap::new();
    for (name, view) in file.tensors() {
        let data: Vec<f32> = match view.dtype() {
            Dtype::F32 => view.data().chunks_exact(4).map(|b| f32::from_le_bytes(b.try_into().unwrap())).collect(),
            Dtype::F16 => view.data().chunks_exact(2).map(|b| half::f16::from_le_bytes(b.try_into().unwrap()).to_f32()).collect(),
            Dtype::BF16 => view.data().chunks_exact(2).map(|b| half::bf16::from_le_bytes(b.try_into().unwrap()).to_f32()).collect(),
            _ => continue, // integer buffers (position ids) are not weights
        };
        tensors.insert(name, HostTensor::new(view.shape().to_vec(), data));
    }
    Ok(tensors)
}

/// Reads the architecture off the tensors' shapes, for a checkpoint with no config. Head
/// counts are not in the weights: they are taken as width / 64, as in every open_clip ViT
/// and CLIP text config, and a ResNet's attention pool as its width / 64 too (open_clip's
/// default `head_width`, OpenAI's RN models'); `--config` overrides.
fn infer_config(t: &TensorMap) -> Result<ClipConfig> {
    // Each tensor's shape, of the rank a CLIP's has, so that reading its sizes cannot fail.
    let shape = |name: &str, rank: usize| {
        let tensor = t.get(name).ok_or_else(|| Error::file(format!("cannot infer the architecture: no tensor '{name}' (pass --config)")))?;
        match tensor.shape.len() == rank && tensor.shape.iter().all(|&d| d > 0) {
            true => Ok(tensor.shape.clone()),
            false => Err(Error::file(format!("cannot infer the architecture: '{name}' has shape {:?}, where a CLIP's is {rank}-D", tensor.shape))),
        }
    };
    let layers = |prefix: &str| (0..).take_while(|i| t.contains_key(&format!("{prefix}transformer.resblocks.{i}.ln_1.weight"))).count();
    let side = |tokens: usize| ((tokens.saturating_sub(1)) as f64).sqrt() as usize;
    let vision = if t.contains_key("visual.attnpool.positional_embedding") {
        // open_clip's ModifiedResNet: stage i holds `visual.layer{i}.{block}.*`.
        let pool = shape("visual.attnpool.positional_embedding", 2)?;
        let stages = (1..=4)
            .map(|i| (0..).take_while(|b| t.contains_key(&format!("visual.layer{i}.{b}.conv1.weight"))).count())
            .collect();
        VisionConfig::ResNet(ResNetConfig { image_size: side(pool[0]) * 32, layers: stages, width: shape("visual.conv3.weight", 4)?[0], heads: (pool[1] / 64).max(1) })
    } else {
        let conv = shape("visual.conv1.weight", 4)?;
        let (v_width, patch) = (conv[0], conv[2]);
        VisionConfig::Transformer(VisionTransformerConfig {
            image_size: side(shape("visual.positional_embedding", 2)?[0]) * patch,
            patch_size: patch,
            width: v_width,
            layers: layers("visual."),
            heads: (v_width / 64).max(1),
            mlp_width: shape("visual.transformer.resblocks.0.mlp.c_fc.weight", 2)?[0],
        })
    };
    let token_embedding = shape("token_embedding.weight", 2)?;
    let t_width = token_embedding[1];
    Ok(ClipConfig {
        embed_dim: shape("text_projection", 2)?[1],
        vision,
        text: TextConfig {
            context_length: shape("positional_embedding", 2)?[0],
            vocab_size: token_embedding[0],
            width: t_width,
            layers: layers(""),
            heads: (t_width / 64).max(1),
            mlp_width: shape("transformer.resblocks.0.mlp.c_fc.weight", 2)?[0],
        },
        quick_gelu: false,
    })
}

/// Hugging Face `CLIPModel`: its config and its tensor names, mapped to open_clip's.
fn read_hugging_face(weights: &Path, config_path: &Path) -> Result<Checkpoint> {
    let json: serde_json::Value = serde_json::from_str(&read_text(config_path)?)
        .map_err(|e| bad_file(config_path, format!("not JSON: {e}")))?;
    let section = |key: &str| json.get(key).cloned().unwrap_or(serde_json::Value::Object(Default::default()));
    let (text, vision) = (section("text_config"), section("vision_config"));
    // transformers' CLIPTextConfig / CLIPVisionConfig defaults, for fields a config omits.
    let get = |obj: &serde_json::Value, key: &str, default: u64| obj.get(key).and_then(|v| v.as_u64()).unwrap_or(default) as usize;
    let act = |obj: &serde_json::Value| obj.get("hidden_act").and_then(|v| v.as_str()).unwrap_or("quick_gelu").to_string();
    let (text_act, vision_act) = (act(&text), act(&vision));
    if text_act != vision_act || !["gelu", "quick_gelu"].contains(&text_act.as_str()) {
        return Err(Error::Unsupported(format!("{}: activations '{text_act}'/'{vision_act}' are not supported", config_path.display())));
    }
    let config = ClipConfig {
        embed_dim: get(&json, "projection_dim", 512),
        vision: VisionConfig::Transformer(VisionTransformerConfig {
            image_size: get(&vision, "image_size", 224),
            patch_size: get(&vision, "patch_size", 32),
            width: get(&vision, "hidden_size", 768),
            layers: get(&vision, "num_hidden_layers", 12),
            heads: get(&vision, "num_attention_heads", 12),
            mlp_width: get(&vision, "intermediate_size", 3072),
        }),
        text: TextConfig {
            context_length: get(&text, "max_position_embeddings", 77),
            vocab_size: get(&text, "vocab_size", 49408),
            width: get(&text, "hidden_size", 512),
            layers: get(&text, "num_hidden_layers", 12),
            heads: get(&text, "num_attention_heads", 8),
            mlp_width: get(&text, "intermediate_size", 2048),
        },
        quick_gelu: text_act == "quick_gelu",
    };
    let vision_layers = get(&vision, "num_hidden_layers", 12);
    let tensors = hugging_face_to_open_clip(read_safetensors(weights)?, config.text.layers, vision_layers)?;
    Ok(Checkpoint { tensors, config, activation_recorded: true, kind: "Hugging Face transformers", tokenizer: None, recommended: None })
}

/// transformers' `CLIPModel` names -> open_clip's. Query, key and value projections are
/// stacked into open_clip's single `in_proj`; the projections are transposed (transformers
/// stores them as bias-free `nn.Linear`, open_clip as matrices applied on the right).
fn hugging_face_to_open_clip(mut hf: TensorMap, text_layers: usize, vision_layers: usize) -> Result<TensorMap> {
    let mut take = |name: &str| hf.remove(name).ok_or_else(|| Error::file(format!("the Hugging Face checkpoint has no tensor '{name}'")));
    let mut out = TensorMap::new();
    let blocks = |out: &mut TensorMap, take: &mut dyn FnMut(&str) -> Result<HostTensor>, hf: &str, oc: &str, layers: usize| -> Result<()> {
        for i in 0..layers {
            let (h, o) = (format!("{hf}.encoder.layers.{i}"), format!("{oc}transformer.resblocks.{i}"));
            for (part, open_clip) in [("weight", "in_proj_weight"), ("bias", "in_proj_bias")] {
                let q = take(&format!("{h}.self_attn.q_proj.{part}"))?;
                let k = take(&format!("{h}.self_attn.k_proj.{part}"))?;
                let v = take(&format!("{h}.self_attn.v_proj.{part}"))?;
                // Stacked into one, they must be alike: a first axis each, of one shape.
                if q.shape.is_empty() || q.shape != k.shape || k.shape != v.shape {
                    return Err(Error::file(format!(
                        "{h}.self_attn: query, key and value {part}s of shapes {:?}, {:?} and {:?}, where a CLIP's are alike",
                        q.shape, k.shape, v.shape
                    )));
                }
                let mut shape = q.shape.clone();
                shape[0] *= 3;
                let data = [q.data, k.data, v.data].concat();
                out.insert(format!("{o}.attn.{open_clip}"), HostTensor::new(shape, data));
            }
            for (from, to) in [
                ("self_attn.out_proj", "attn.out_proj"),
                ("layer_norm1", "ln_1"),
                ("layer_norm2", "ln_2"),
                ("mlp.fc1", "mlp.c_fc"),
                ("mlp.fc2", "mlp.c_proj"),
            ] {
                for part in ["weight", "bias"] {
                    out.insert(format!("{o}.{to}.{part}"), take(&format!("{h}.{from}.{part}"))?);
                }
            }
        }
        Ok(())
    };
    blocks(&mut out, &mut take, "text_model", "", text_layers)?;
    blocks(&mut out, &mut take, "vision_model", "visual.", vision_layers)?;
    let renames = [
        ("text_model.embeddings.token_embedding.weight", "token_embedding.weight"),
        ("text_model.embeddings.position_embedding.weight", "positional_embedding"),
        ("text_model.final_layer_norm.weight", "ln_final.weight"),
        ("text_model.final_layer_norm.bias", "ln_final.bias"),
        ("vision_model.embeddings.class_embedding", "visual.class_embedding"),
        ("vision_model.embeddings.patch_embedding.weight", "visual.conv1.weight"),
        ("vision_model.embeddings.position_embedding.weight", "visual.positional_embedding"),
        ("vision_model.pre_layrnorm.weight", "visual.ln_pre.weight"),
        ("vision_model.pre_layrnorm.bias", "visual.ln_pre.bias"),
        ("vision_model.post_layernorm.weight", "visual.ln_post.weight"),
        ("vision_model.post_layernorm.bias", "visual.ln_post.bias"),
    ];
    for (from, to) in renames {
        out.insert(to.to_string(), take(from)?);
    }
    for (from, to) in [("text_projection.weight", "text_projection"), ("visual_projection.weight", "visual.proj")] {
        let projection = take(from)?;
        if projection.shape.len() != 2 {
            return Err(Error::file(format!("the Hugging Face checkpoint's '{from}' has shape {:?}, where a CLIP's is a matrix", projection.shape)));
        }
        out.insert(to.into(), projection.transposed());
    }
    Ok(out)
}
