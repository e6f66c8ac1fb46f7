//! CLIP, both towers, as open_clip builds them; generic over the config (ViT-B/32, RN50,
//! the fixtures' tiny models, the project's own). The image tower is a vision transformer
//! (`vision`) or the ModifiedResNet (`resnet`), as the config says.

pub mod config;
pub mod loader;
pub mod tensors;
mod resnet;
mod text;
mod transformer;
mod vision;

use burn::module::Module;
use burn::tensor::{Device, Tensor, TensorData};

pub use config::{ClipConfig, ResNetConfig, TextConfig, VisionConfig, VisionTransformerConfig};
pub use loader::{Loader, Origins, ParamOrigin, WeightSource};
use resnet::ModifiedResNet;
use text::TextTransformer;
use vision::VisionTransformer;

use crate::{Error, Result};

/// CLIP's pixel normalisation, per RGB channel.
pub const MEAN: [f32; 3] = [0.481_454_66, 0.457_827_5, 0.408_210_73];
pub const STD: [f32; 3] = [0.268_629_54, 0.261_302_6, 0.275_777_1];

/// The image tower the config names.
#[derive(Module, Debug)]
enum ImageTower {
    Transformer(VisionTransformer),
    ResNet(ModifiedResNet),
}

impl ImageTower {
    fn load(w: &mut Loader, config: &ClipConfig) -> Result<Self> {
        Ok(match &config.vision {
            VisionConfig::Transformer(v) => ImageTower::Transformer(VisionTransformer::load(w, v, config)?),
            VisionConfig::ResNet(r) => ImageTower::ResNet(ModifiedResNet::load(w, r, config)?),
        })
    }

    fn forward(&self, pixels: Tensor<4>) -> Tensor<2> {
        match self {
            ImageTower::Transformer(tower) => tower.forward(pixels),
            ImageTower::ResNet(tower) => tower.forward(pixels),
        }
    }
}

#[derive(Module, Debug)]
pub struct Clip {
    visual: ImageTower,
    text: TextTransformer,
    image_size: usize,
    context_length: usize,
    vocab_size: usize,
}

impl Clip {
    /// The image tower stops learning (gradients flow to the text tower alone).
    pub fn freeze_vision(mut self) -> Self {
        self.visual = self.visual.freeze();
        self
    }

    /// Builds the model from named weights (open_clip's names) on `device`.
    pub fn load(config: &ClipConfig, source: &mut dyn WeightSource, device: &Device) -> Result<Self> {
        Self::build(config, &mut Loader::new(source, device))
    }

    fn build(config: &ClipConfig, w: &mut Loader) -> Result<Self> {
        config.validate()?;
        Ok(Self {
            visual: ImageTower::load(&mut w.at("visual"), config)?,
            text: TextTransformer::load(w, config)?,
            image_size: config.vision.image_size(),
            context_length: config.text.context_length,
            vocab_size: config.text.vocab_size,
        })
    }

    /// Builds a model to train: its parameters require gradients, and the returned origins
    /// say which open_clip tensor each came from (for `export`).
    pub fn trainable(config: &ClipConfig, source: &mut dyn WeightSource, device: &Device) -> Result<(Self, Origins)> {
        let origins = std::rc::Rc::new(std::cell::RefCell::new(Origins::default()));
        let mut w = Loader::trainable(source, device, origins.clone());
        let clip = Self::build(config, &mut w)?;
        drop(w);
        let origins = std::rc::Rc::try_unwrap(origins).expect("the loader is gone").into_inner();
        Ok((clip, origins))
    }

    /// The weights under open_clip's names, in open_clip's layouts (reads every parameter
    /// back synchronously: for native training tools).
    pub fn export(&self, origins: &Origins) -> Result<tensors::TensorMap> {
        struct Collect<'a> {
            origins: std::collections::HashMap<burn::module::ParamId, &'a ParamOrigin>,
            out: tensors::TensorMap,
            failed: Option<String>,
        }
        impl burn::module::ModuleVisitor for Collect<'_> {
            fn visit_float<const D: usize>(&mut self, param: &burn::module::Param<Tensor<D>>) {
                let Some(origin) = self.origins.get(&param.id) else { return };
                let value = param.val();
                let dims = value.dims().to_vec();
                match value.into_data().try_into_vec_as::<f32>() {
                    Ok(data) => {
                        let mut tensor = tensors::HostTensor::new(dims, data);
                        if origin.transposed {
                            tensor = tensor.transposed();
                        }
                        tensor.shape = origin.shape.clone();
                        self.out.insert(origin.name.clone(), tensor);
                    }
                    Err(e) => self.failed = Some(format!("{}: {e:?}", origin.name)),
                }
            }
        }
        let mut collect = Collect {
            origins: origins.params.iter().map(|o| (o.id, o)).collect(),
            out: origins.constants.clone(),
            failed: None,
        };
        self.visit(&mut collect);
        match collect.failed {
            Some(why) => Err(Error::Internal(format!("reading a result back from the device failed: {why}"))),
            None => Ok(collect.out),
        }
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
        // An id past the embedding table panics on the CPU and reads garbage on a GPU.
        if let Some(&id) = sequences.iter().flatten().find(|&&id| id as usize >= self.vocab_size) {
            return Err(Error::Invalid(format!("token id {id}, but the model embeds only ids 0 to {}", self.vocab_size - 1)));
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
