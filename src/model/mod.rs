//! CLIP, both towers, as open_clip builds them; generic over the config (ViT-B/32, the
//! fixtures' tiny models, the project's own).

pub mod config;
pub mod loader;
mod text;
mod transformer;
mod vision;

use burn::module::Module;
use burn::tensor::{Device, Tensor, TensorData};

pub use config::{ClipConfig, TextConfig, VisionConfig};
pub use loader::{Loader, WeightSource};
use text::TextTransformer;
use vision::VisionTransformer;

use crate::{Error, Result};

/// CLIP's pixel normalisation, per RGB channel.
pub const MEAN: [f32; 3] = [0.481_454_66, 0.457_827_5, 0.408_210_73];
pub const STD: [f32; 3] = [0.268_629_54, 0.261_302_6, 0.275_777_1];

#[derive(Module, Debug)]
pub struct Clip {
    visual: VisionTransformer,
    text: TextTransformer,
    image_size: usize,
    context_length: usize,
}

impl Clip {
    /// Builds the model from named weights (open_clip's names) on `device`.
    pub fn load(config: &ClipConfig, source: &mut dyn WeightSource, device: &Device) -> Result<Self> {
        config.validate()?;
        let mut w = Loader::new(source, device);
        Ok(Self {
            visual: VisionTransformer::load(&mut w.at("visual"), config)?,
            text: TextTransformer::load(&mut w, config)?,
            image_size: config.vision.image_size,
            context_length: config.text.context_length,
        })
    }

    pub fn image_size(&self) -> usize {
        self.image_size
    }

    pub fn context_length(&self) -> usize {
        self.context_length
    }

    /// Image embeddings (before normalisation) of pixels in [0, 1], `[batch, 3, size, size]`
    /// at the model's resolution. CLIP's normalisation happens here, so a gradient taken
    /// through this is with respect to the pixels a person sees.
    pub fn encode_image(&self, pixels: Tensor<4>) -> Result<Tensor<2>> {
        let [_, channels, height, width] = pixels.dims();
        if channels != 3 || height != self.image_size || width != self.image_size {
            return Err(Error::Invalid(format!(
                "the model takes [batch, 3, {s}, {s}] pixels, not [batch, {channels}, {height}, {width}]",
                s = self.image_size
            )));
        }
        let device = pixels.device();
        let mean = Tensor::<1>::from_data(TensorData::new(MEAN.to_vec(), [3]), &device).reshape([1, 3, 1, 1]);
        let std = Tensor::<1>::from_data(TensorData::new(STD.to_vec(), [3]), &device).reshape([1, 3, 1, 1]);
        Ok(self.visual.forward((pixels - mean) / std))
    }

    /// Text embeddings (before normalisation) of tokenized prompts, each a sequence from the
    /// start token to the end token, at most the context length.
    pub fn encode_text(&self, sequences: &[Vec<u32>]) -> Result<Tensor<2>> {
        if sequences.is_empty() {
            return Err(Error::Invalid("no text to embed".into()));
        }
        if let Some(s) = sequences.iter().find(|s| s.len() < 2 || s.len() > self.context_length) {
            return Err(Error::Invalid(format!(
                "a token sequence of length {} (the model takes 2 to {})",
                s.len(),
                self.context_length
            )));
        }
        Ok(self.text.forward(sequences))
    }
}

/// Cosine similarity of each row of `a` with the matching row of `b` (or with `b`'s single
/// row, broadcast): `[batch]`.
pub fn cosine(a: Tensor<2>, b: Tensor<2>) -> Tensor<1> {
    let dot = (a.clone() * b.clone()).sum_dim(1);
    let norms = (a.square().sum_dim(1) * b.square().sum_dim(1)).sqrt();
    (dot / norms).squeeze_dim(1)
}
