//! A loaded model (CLIP on a device, its tokenizer, its manifest) and what the command line
//! and the page ask of it: embeddings, and the gradient of the image-text cosine with
//! respect to the pixels, the quantity CLIPAG ascends.

use burn::module::Module as _;
use burn::tensor::{Device, Tensor, TensorData};

use crate::model::{Clip, cosine};
use crate::pixels::Pixels;
use crate::tokenizer::{Tokenizer, Tokens};
use crate::weights::manifest::{TOKENIZER, WEIGHTS};
use crate::weights::{Manifest, ModelFiles, StoredWeights};
use crate::{Error, Result};

pub struct Model {
    pub manifest: Manifest,
    pub clip: Clip,
    /// The same weights off the autodiff device, for passes no backward pass follows: on the
    /// autodiff device such a pass is never freed (measured on the CPU: about 250 KB a text
    /// embedding, 340 KB an image embedding, for the 1.5 MB Shapes model).
    inference: Clip,
    pub tokenizer: Tokenizer,
    device: Device,
}

/// What `pixel_gradient` computes.
#[derive(Debug, Clone)]
pub struct PixelGradient {
    pub cosine: f32,
    /// d cosine / d pixels, `[3, size, size]`.
    pub grad: Vec<f32>,
}

impl PixelGradient {
    /// The gradient as a safetensors file (tensor `grad`, `[3, size, size]` f32, the cosine in
    /// its metadata), the form `clipag grad` writes and the parity tests read.
    pub fn to_safetensors(&self) -> Result<Vec<u8>> {
        let size = ((self.grad.len() / 3) as f64).sqrt() as usize;
        let bytes: Vec<u8> = self.grad.iter().flat_map(|v| v.to_le_bytes()).collect();
        let view = safetensors::tensor::TensorView::new(safetensors::Dtype::F32, vec![3, size, size], &bytes)
            .map_err(|e| Error::Internal(format!("the gradient as safetensors: {e}")))?;
        let metadata = [("cosine".to_string(), self.cosine.to_string())].into_iter().collect();
        safetensors::serialize([("grad", view)], Some(metadata)).map_err(|e| Error::Internal(format!("the gradient as safetensors: {e}")))
    }
}

impl Model {
    /// Builds the model from verified model-folder bytes on `device` (autodiff enabled).
    pub fn load(files: &ModelFiles, device: &Device) -> Result<Self> {
        let config = &files.manifest.config;
        let mut weights = StoredWeights::parse(&files.weights).map_err(|e| e.at(WEIGHTS))?;
        let clip = Clip::load(config, &mut weights, device).map_err(|e| e.at(WEIGHTS))?;
        let tokenizer = Tokenizer::from_json(&files.tokenizer, config.text.context_length).map_err(|e| e.at(TOKENIZER))?;
        // Every id the tokenizer can give must have an embedding: the count of its tokens
        // says nothing of how large their ids are.
        if let Some(largest) = tokenizer.largest_id().filter(|&id| id as usize >= config.text.vocab_size) {
            return Err(Error::File {
                path: TOKENIZER.into(),
                why: format!("a token with id {largest}, but the model embeds only ids 0 to {}", config.text.vocab_size - 1),
            });
        }
        Ok(Self::assemble(files.manifest.clone(), clip, tokenizer, device))
    }

    /// A model of `config` with random weights (for benchmarks: the work per step depends on
    /// the architecture, not on what the weights learned).
    pub fn random(config: &crate::model::ClipConfig, tokenizer_json: &[u8], device: &Device, seed: u64) -> Result<Self> {
        let clip = Clip::load(config, &mut crate::weights::random::RandomWeights::new(seed), device)?;
        let tokenizer = Tokenizer::from_json(tokenizer_json, config.text.context_length)?;
        let manifest = Manifest {
            format: crate::weights::manifest::FORMAT.into(),
            version: crate::weights::manifest::VERSION,
            name: "random weights".into(),
            license: "none".into(),
            source: format!("random weights, seed {seed}"),
            quantization: crate::weights::quant::Quantization::F32,
            config: config.clone(),
            files: Default::default(),
            recommended: None,
        };
        Ok(Self::assemble(manifest, clip, tokenizer, device))
    }

    /// The one place a model is put together, so the inference weights are always the
    /// trainable ones seen off the autodiff device.
    fn assemble(manifest: Manifest, clip: Clip, tokenizer: Tokenizer, device: &Device) -> Self {
        Self { manifest, inference: clip.valid(), clip, tokenizer, device: device.clone() }
    }

    pub fn device(&self) -> &Device {
        &self.device
    }

    pub fn image_size(&self) -> usize {
        self.clip.image_size()
    }

    pub fn tokenize(&self, text: &str) -> Result<Tokens> {
        self.tokenizer.encode(text)
    }

    /// The text embedding, before normalisation.
    pub async fn embed_text(&self, text: &str) -> Result<Vec<f32>> {
        let tokens = self.tokenize(text)?;
        finite("text embedding", read(self.inference.encode_text(&[tokens.ids])?).await?)
    }

    /// The image embedding, before normalisation, of an image at the model's resolution.
    pub async fn embed_image(&self, image: &Pixels) -> Result<Vec<f32>> {
        finite("image embedding", read(self.inference.encode_image(self.upload(image)?.inner())?).await?)
    }

    /// cos(image embedding, text embedding) and its gradient with respect to the pixels.
    pub async fn pixel_gradient(&self, image: &Pixels, text: &str) -> Result<PixelGradient> {
        let tokens = self.tokenize(text)?;
        let text = self.clip.encode_text(&[tokens.ids])?.detach();
        let pixels = self.upload(image)?.require_grad();
        let score = cosine(self.clip.encode_image(pixels.clone())?, text);
        let grads = score.backward();
        let grad = pixels
            .grad(&grads)
            .ok_or_else(|| Error::Internal("the backward pass produced no pixel gradient".into()))?;
        let cosine = finite("cosine", read(score).await?)?[0];
        Ok(PixelGradient { cosine, grad: finite("pixel gradient", read(grad).await?)? })
    }

    fn upload(&self, image: &Pixels) -> Result<Tensor<4>> {
        let size = self.image_size();
        if image.height != size || image.width != size {
            return Err(Error::Invalid(format!(
                "the model takes {size}x{size} images, not {}x{}",
                image.height, image.width
            )));
        }
        Ok(Tensor::from_data(TensorData::new(image.data.clone(), [1, 3, size, size]), &self.device))
    }
}

/// `values`, if every one is finite. Finite weights can still overflow (a weight of 3e38
/// does): such a model's results are an error, never a NaN passed on as a number.
fn finite(what: &str, values: Vec<f32>) -> Result<Vec<f32>> {
    match values.iter().all(|v| v.is_finite()) {
        true => Ok(values),
        false => Err(Error::file(format!("the model gives a non-finite {what}: its weights overflow (is the file sound?)"))),
    }
}

/// Reads a tensor back to the host (asynchronously: browsers cannot block on the GPU).
pub async fn read<const D: usize>(tensor: Tensor<D>) -> Result<Vec<f32>> {
    let data = tensor
        .into_data_async()
        .await
        .map_err(Error::from)?;
    data.try_into_vec_as::<f32>().map_err(|e| Error::Internal(format!("reading a result back from the device failed: {e:?}")))
}
