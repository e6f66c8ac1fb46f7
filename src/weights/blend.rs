//! Weight interpolation between two models of one architecture: every tensor
//! `(1 - t) * a + t * b`. Two fine-tunings of one pre-training (the Shapes twins) often lie
//! in one basin, so the line between them trades what each learnt (WiSE-FT, Wortsman et al.
//! 2022; robust soups, Croce et al. 2023) without training anything.

use super::tensors::{HostTensor, TensorMap};
use super::{ModelFiles, StoredWeights};
use crate::model::WeightSource;
use crate::{Error, Result};

/// The tensors of `(1 - t) * a + t * b`. The two must share their architecture, tokenizer,
/// tensor names and shapes; `t` must be finite (0 gives `a`, 1 gives `b`; outside [0, 1]
/// extrapolates, which is allowed on purpose).
pub fn blend(a: &ModelFiles, b: &ModelFiles, t: f32) -> Result<TensorMap> {
    if !t.is_finite() {
        return Err(Error::Invalid(format!("blend: the weight must be a finite number, not {t}")));
    }
    if a.manifest.config != b.manifest.config {
        return Err(Error::Invalid("blend: the two models have different architectures".into()));
    }
    if a.tokenizer != b.tokenizer {
        return Err(Error::Invalid("blend: the two models have different tokenizers".into()));
    }
    let mut from = StoredWeights::parse(&a.weights)?;
    let mut to = StoredWeights::parse(&b.weights)?;
    let names = from.names();
    if names != to.names() {
        return Err(Error::Invalid("blend: the two models have different tensors".into()));
    }
    let mut out = TensorMap::new();
    for name in names {
        let x = from.take(&name, &[])?;
        let y = to.take(&name, &[])?;
        if x.shape != y.shape {
            return Err(Error::Invalid(format!("blend: '{name}' has shape {:?} in one model and {:?} in the other", x.shape, y.shape)));
        }
        let data = x.data.iter().zip(&y.data).map(|(x, y)| x + t * (y - x)).collect();
        out.insert(name, HostTensor::new(x.shape, data));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::weights::folder::{self, Description};
    use crate::weights::quant::Quantization;

    fn model(dir: &std::path::Path, value: f32) -> ModelFiles {
        // The built-in model's architecture: small, and a real one.
        let manifest = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/models/shapes-robust/manifest.json"));
        let config = crate::weights::Manifest::parse(manifest).unwrap().config;
        let mut tensors = crate::weights::random::RandomWeights::tensors(&config, 1).unwrap();
        for t in tensors.values_mut() {
            t.data.fill(value);
        }
        let description = Description { name: "m".into(), license: "CC0-1.0".into(), source: "test".into(), recommended: None };
        folder::write(dir, &config, &tensors, Quantization::F32, br#"{"test":1}"#, description).unwrap();
        folder::read(dir).unwrap()
    }

    #[test]
    fn interpolates_every_tensor_and_refuses_a_mismatch() {
        let dir = std::env::temp_dir().join(format!("clipag-blend-{}", std::process::id()));
        let a = model(&dir.join("a"), 1.0);
        let b = model(&dir.join("b"), 3.0);
        let mixed = blend(&a, &b, 0.25).unwrap();
        assert!(!mixed.is_empty());
        assert!(mixed.values().all(|t| t.data.iter().all(|&v| v == 1.5)));
        assert!(blend(&a, &b, f32::NAN).is_err());

        let mut other = model(&dir.join("c"), 3.0);
        other.tokenizer = b"{}".to_vec();
        let err = blend(&a, &other, 0.5).unwrap_err().to_string();
        assert!(err.contains("tokenizers"), "{err}");
        std::fs::remove_dir_all(&dir).ok();
    }
}
