//! The architecture of a CLIP, in one plain struct: what every model folder's manifest
//! records and every reader produces. Field names follow open_clip's `model_cfg`.

use serde::{Deserialize, Serialize};

use crate::{Error, Result};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClipConfig {
    /// Size of the shared image-text embedding.
    pub embed_dim: usize,
    pub vision: VisionConfig,
    pub text: TextConfig,
    /// `x * sigmoid(1.702 x)` (OpenAI's original CLIP) instead of exact GELU.
    pub quick_gelu: bool,
}

/// The image tower, chosen as open_clip's `vision_cfg` chooses it: `layers` a number builds
/// a vision transformer, `layers` a list of four stage depths builds the `ModifiedResNet`
/// (CLIP's RN50 family). The manifest keeps that form, so folders written before the
/// ResNet existed read as they did.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum VisionConfig {
    Transformer(VisionTransformerConfig),
    ResNet(ResNetConfig),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VisionTransformerConfig {
    pub image_size: usize,
    pub patch_size: usize,
    pub width: usize,
    pub layers: usize,
    pub heads: usize,
    pub mlp_width: usize,
}

/// open_clip's `ModifiedResNet`: a stem of three convolutions (`width / 2`, `width / 2`,
/// `width` channels), four stages of Bottleneck blocks (`layers[i]` blocks of `width * 2^i`
/// planes, four times as many channels out), and attention pooling over the last stage's
/// `image_size / 32` squared positions, `width * 32` wide, in `heads` heads.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResNetConfig {
    pub image_size: usize,
    pub layers: Vec<usize>,
    pub width: usize,
    pub heads: usize,
}

impl VisionTransformerConfig {
    /// Patches along one side of the image.
    pub fn grid(&self) -> usize {
        self.image_size / self.patch_size
    }
}

impl ResNetConfig {
    /// Channels of the last stage, which the attention pool reads.
    pub fn features(&self) -> usize {
        self.width * 32
    }

    /// Positions along one side after the tower's five halvings.
    pub fn grid(&self) -> usize {
        self.image_size / 32
    }
}

impl<'de> Deserialize<'de> for VisionConfig {
    /// By `layers`, as open_clip decides; each form then reports its own missing or unknown
    /// fields (an untagged enum would only say that neither matched).
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        use serde::de::Error as _;
        let value = serde_json::Value::deserialize(deserializer)?;
        let tower = if value.get("layers").is_some_and(serde_json::Value::is_array) {
            serde_json::from_value(value).map(VisionConfig::ResNet)
        } else {
            serde_json::from_value(value).map(VisionConfig::Transformer)
        };
        tower.map_err(D::Error::custom)
    }
}

impl VisionConfig {
    pub fn image_size(&self) -> usize {
        match self {
            VisionConfig::Transformer(v) => v.image_size,
            VisionConfig::ResNet(r) => r.image_size,
        }
    }

    /// The tower's name in open_clip's words, for messages and model pickers.
    pub fn kind(&self) -> &'static str {
        match self {
            VisionConfig::Transformer(_) => "vision transformer",
            VisionConfig::ResNet(_) => "ModifiedResNet",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TextConfig {
    pub context_length: usize,
    pub vocab_size: usize,
    pub width: usize,
    pub layers: usize,
    pub heads: usize,
    pub mlp_width: usize,
}

impl ClipConfig {
    /// open_clip's `ViT-B-32`, the architecture of the CLIPAG checkpoint.
    pub fn vit_b_32() -> Self {
        Self {
            embed_dim: 512,
            vision: VisionConfig::Transformer(VisionTransformerConfig {
                image_size: 224,
                patch_size: 32,
                width: 768,
                layers: 12,
                heads: 12,
                mlp_width: 3072,
            }),
            text: Self::clip_text(),
            quick_gelu: false,
        }
    }

    /// open_clip's `RN50`, CLIP's first convolutional tower (heads = width * 32 / 64).
    pub fn rn50() -> Self {
        Self {
            embed_dim: 1024,
            vision: VisionConfig::ResNet(ResNetConfig { image_size: 224, layers: vec![3, 4, 6, 3], width: 64, heads: 32 }),
            text: Self::clip_text(),
            quick_gelu: false,
        }
    }

    /// The text tower every OpenAI and open_clip CLIP of these sizes shares.
    fn clip_text() -> TextConfig {
        TextConfig { context_length: 77, vocab_size: 49408, width: 512, layers: 12, heads: 8, mlp_width: 2048 }
    }

    /// Checks that the numbers describe a model this crate can build, within sizes that a
    /// browser can hold, so that a corrupt manifest fails here and not in an allocation.
    pub fn validate(&self) -> Result<()> {
        let t = &self.text;
        let mut checks: Vec<(bool, &str)> = vec![
            (self.embed_dim > 0 && self.embed_dim <= 4096, "embed_dim must be 1..=4096"),
            (t.width > 0 && t.width <= 4096 && t.heads > 0 && t.width % t.heads == 0, "text width must be a multiple of heads, at most 4096"),
            (t.layers > 0 && t.layers <= 64, "text layers must be 1..=64"),
            (t.context_length >= 3 && t.context_length <= 1024, "text context_length must be 3..=1024"),
            (t.vocab_size > 0 && t.vocab_size <= 1_000_000 && t.mlp_width > 0 && t.mlp_width <= 16384, "text vocab_size must be 1..=1000000 and mlp_width 1..=16384"),
        ];
        match &self.vision {
            VisionConfig::Transformer(v) => checks.extend([
                (v.patch_size > 0 && v.image_size % v.patch_size == 0, "vision image_size must be a multiple of patch_size"),
                (v.image_size > 0 && v.image_size <= 1024, "vision image_size must be 1..=1024"),
                (v.width > 0 && v.width <= 4096 && v.heads > 0 && v.width % v.heads == 0, "vision width must be a multiple of heads, at most 4096"),
                (v.layers > 0 && v.layers <= 64, "vision layers must be 1..=64"),
                (v.mlp_width > 0 && v.mlp_width <= 16384, "vision mlp_width must be 1..=16384"),
            ]),
            VisionConfig::ResNet(r) => checks.extend([
                (r.image_size >= 32 && r.image_size <= 1024 && r.image_size % 32 == 0, "a ResNet's image_size must be a multiple of 32, 32..=1024 (the tower halves it five times)"),
                (r.layers.len() == 4 && r.layers.iter().all(|&n| (1..=64).contains(&n)), "a ResNet's layers must be four stage depths, each 1..=64"),
                (r.width >= 2 && r.width <= 256 && r.width % 2 == 0, "a ResNet's width must be even, 2..=256"),
                (r.heads > 0 && r.features() % r.heads == 0, "a ResNet's heads must divide its attention pool's width (width * 32)"),
            ]),
        }
        match checks.iter().find(|(ok, _)| !ok) {
            Some((_, why)) => Err(Error::file(format!("model config: {why}"))),
            None => Ok(()),
        }
    }

    /// Reads open_clip's `open_clip_config.json` (`{"model_cfg": {...}}`) or a bare
    /// `model_cfg`; `vision_cfg.layers` as a list selects the ModifiedResNet, as in open_clip.
    /// Options open_clip has that change the architecture in ways this crate does not build
    /// (ConvNeXt or Hugging Face towers, layer scale, attention pooling...) are refused by
    /// name rather than silently ignored.
    pub fn from_open_clip_json(text: &str) -> Result<Self> {
        let json: serde_json::Value = serde_json::from_str(text)
            .map_err(|e| Error::file(format!("open_clip config is not JSON: {e}")))?;
        let cfg = json.get("model_cfg").unwrap_or(&json);
        let field = |obj: &serde_json::Value, path: &str, key: &str| -> Result<usize> {
            obj.get(key)
                .and_then(serde_json::Value::as_u64)
                .map(|n| n as usize)
                .ok_or_else(|| Error::file(format!("open_clip config: missing or non-integer field '{path}{key}'")))
        };
        let section = |key: &str| {
            cfg.get(key)
                .filter(|v| v.is_object())
                .ok_or_else(|| Error::file(format!("open_clip config: missing section '{key}'")))
        };
        let vision = section("vision_cfg")?;
        let text = section("text_cfg")?;
        for (name, obj, keys) in [
            ("vision_cfg", vision, &["timm_model_name", "ls_init_value", "attentional_pool", "no_ln_pre", "final_ln_after_pool", "patch_dropout", "attn_pooler_queries", "output_tokens", "act_kwargs", "norm_kwargs"][..]),
            ("text_cfg", text, &["hf_model_name", "ls_init_value", "embed_cls", "no_causal_mask", "proj_bias", "output_tokens", "act_kwargs", "norm_kwargs", "tokenizer_kwargs"][..]),
        ] {
            for key in keys {
                let set = obj.get(*key).is_some_and(|v| !(v.is_null() || v == &false || v == &0 || v == &0.0));
                if set {
                    return Err(Error::Invalid(format!(
                        "open_clip config: '{name}.{key}' is set, and this crate builds only the plain ViT or ModifiedResNet CLIP"
                    )));
                }
            }
        }
        let resnet_layers = vision.get("layers").and_then(serde_json::Value::as_array);
        // open_clip's ModifiedResNet has no pooling choice: it always pools by attention.
        let pools: &[(&str, &serde_json::Value, &str)] =
            if resnet_layers.is_some() { &[("text_cfg", text, "argmax")] } else { &[("vision_cfg", vision, "tok"), ("text_cfg", text, "argmax")] };
        for &(name, obj, allowed) in pools {
            if let Some(pool) = obj.get("pool_type").and_then(serde_json::Value::as_str) {
                if pool != allowed {
                    return Err(Error::Unsupported(format!("open_clip config: {name}.pool_type '{pool}' is not supported (only '{allowed}')")));
                }
            }
        }
        let image_size = match vision.get("image_size") {
            Some(serde_json::Value::Array(sides)) if sides.len() == 2 && sides[0] == sides[1] => {
                sides[0].as_u64().unwrap_or(0) as usize
            }
            _ => field(vision, "vision_cfg.", "image_size")?,
        };
        let head_width = |obj: &serde_json::Value| obj.get("head_width").and_then(serde_json::Value::as_u64).unwrap_or(64) as usize;
        let mlp_ratio = |obj: &serde_json::Value| obj.get("mlp_ratio").and_then(serde_json::Value::as_f64).unwrap_or(4.0);
        let v_width = field(vision, "vision_cfg.", "width")?;
        let t_width = field(text, "text_cfg.", "width")?;
        let vision_config = match resnet_layers {
            Some(stages) => {
                let layers = stages
                    .iter()
                    .map(|n| n.as_u64().map(|n| n as usize))
                    .collect::<Option<Vec<usize>>>()
                    .ok_or_else(|| Error::file("open_clip config: 'vision_cfg.layers' must be a number or a list of numbers"))?;
                // open_clip: `heads = width * 32 // head_width`.
                VisionConfig::ResNet(ResNetConfig { image_size, layers, width: v_width, heads: v_width * 32 / head_width(vision).max(1) })
            }
            None => VisionConfig::Transformer(VisionTransformerConfig {
                image_size,
                patch_size: field(vision, "vision_cfg.", "patch_size")?,
                width: v_width,
                layers: field(vision, "vision_cfg.", "layers")?,
                heads: v_width / head_width(vision).max(1),
                mlp_width: (v_width as f64 * mlp_ratio(vision)) as usize,
            }),
        };
        let config = Self {
            embed_dim: field(cfg, "", "embed_dim")?,
            vision: vision_config,
            text: TextConfig {
                context_length: text.get("context_length").and_then(serde_json::Value::as_u64).unwrap_or(77) as usize,
                vocab_size: text.get("vocab_size").and_then(serde_json::Value::as_u64).unwrap_or(49408) as usize,
                width: t_width,
                layers: field(text, "text_cfg.", "layers")?,
                heads: text.get("heads").and_then(serde_json::Value::as_u64).unwrap_or(8) as usize,
                mlp_width: (t_width as f64 * mlp_ratio(text)) as usize,
            },
            quick_gelu: cfg.get("quick_gelu").and_then(serde_json::Value::as_bool).unwrap_or(false),
        };
        config.validate()?;
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vit_b_32_is_valid() {
        ClipConfig::vit_b_32().validate().unwrap();
    }

    #[test]
    fn reads_open_clip_vit_b_32() {
        let json = r#"{"embed_dim": 512, "vision_cfg": {"image_size": 224, "layers": 12, "width": 768, "patch_size": 32},
                       "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 512, "heads": 8, "layers": 12}}"#;
        assert_eq!(ClipConfig::from_open_clip_json(json).unwrap(), ClipConfig::vit_b_32());
    }

    #[test]
    fn reads_open_clip_rn50_and_a_list_of_layers_picks_the_resnet() {
        let json = r#"{"embed_dim": 1024, "quick_gelu": false,
                       "vision_cfg": {"image_size": 224, "layers": [3, 4, 6, 3], "width": 64, "patch_size": null},
                       "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 512, "heads": 8, "layers": 12}}"#;
        assert_eq!(ClipConfig::from_open_clip_json(json).unwrap(), ClipConfig::rn50());
    }

    #[test]
    fn manifests_keep_open_clip_form_for_both_towers() {
        for config in [ClipConfig::vit_b_32(), ClipConfig::rn50()] {
            let json = serde_json::to_string(&config).unwrap();
            assert_eq!(serde_json::from_str::<ClipConfig>(&json).unwrap(), config);
        }
        let vit = serde_json::to_value(ClipConfig::vit_b_32()).unwrap();
        assert_eq!(vit["vision"]["layers"], 12);
        let rn = serde_json::to_value(ClipConfig::rn50()).unwrap();
        assert_eq!(rn["vision"]["layers"], serde_json::json!([3, 4, 6, 3]));
    }

    #[test]
    fn a_bad_vision_section_names_its_field() {
        let mut json = serde_json::to_value(ClipConfig::rn50()).unwrap();
        json["vision"]["patch_size"] = 32.into();
        let error = serde_json::from_value::<ClipConfig>(json).unwrap_err().to_string();
        assert!(error.contains("patch_size"), "{error}");
        let mut json = serde_json::to_value(ClipConfig::vit_b_32()).unwrap();
        json["vision"].as_object_mut().unwrap().remove("mlp_width");
        let error = serde_json::from_value::<ClipConfig>(json).unwrap_err().to_string();
        assert!(error.contains("mlp_width"), "{error}");
    }

    #[test]
    fn refuses_a_resnet_that_cannot_halve_five_times() {
        let mut config = ClipConfig::rn50();
        if let VisionConfig::ResNet(r) = &mut config.vision {
            r.image_size = 100;
        }
        let error = config.validate().unwrap_err().to_string();
        assert!(error.contains("multiple of 32"), "{error}");
    }

    #[test]
    fn refuses_convnext_towers() {
        let json = r#"{"embed_dim": 640, "vision_cfg": {"timm_model_name": "convnext_base", "image_size": 256},
                       "text_cfg": {"width": 640, "heads": 10, "layers": 12}}"#;
        let error = ClipConfig::from_open_clip_json(json).unwrap_err().to_string();
        assert!(error.contains("timm_model_name"), "{error}");
    }

    #[test]
    fn names_a_missing_field() {
        let json = r#"{"embed_dim": 512, "vision_cfg": {"image_size": 224, "layers": 12, "patch_size": 32},
                       "text_cfg": {"width": 512, "heads": 8, "layers": 12}}"#;
        let error = ClipConfig::from_open_clip_json(json).unwrap_err().to_string();
        assert!(error.contains("vision_cfg.width"), "{error}");
    }
}
