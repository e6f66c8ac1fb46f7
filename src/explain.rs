//! Explaining a picture: the model's zero-shot scores for a list of captions, and for each
//! caption the map of where its score's gradient falls on the pixels. A robust model's pixel
//! gradients are meant to be readable (the perceptually aligned gradients the paper paints
//! with): the map shows it, or shows that a plain model's are noise.

use serde::Serialize;

use crate::engine::Model;
use crate::pixels::Pixels;
use crate::{Error, Result};

/// CLIP's logit scale at the end of its training (OpenAI's, the cap open_clip clamps to):
/// the zero-shot probabilities are a softmax of the cosines times this.
pub const LOGIT_SCALE: f32 = 100.0;
/// More captions than this are refused: each costs a forward and a backward pass.
pub const MAX_CAPTIONS: usize = 256;

/// One caption's reading of the picture.
#[derive(Debug, Clone, Serialize)]
pub struct Reading {
    pub caption: String,
    /// cos(image embedding, caption embedding).
    pub cosine: f32,
    /// The caption's zero-shot probability among the captions given.
    pub probability: f32,
    /// Where the cosine's gradient falls: each pixel's gradient length over its colours,
    /// in [0, 1] (`magnitude`), `[size * size]` row by row (at the model's resolution).
    #[serde(skip)]
    pub saliency: Vec<f32>,
}

/// The readings of `picture` (resized to the model's resolution) for `captions`, most
/// probable first.
pub async fn explain(model: &Model, picture: &Pixels, captions: &[String]) -> Result<Vec<Reading>> {
    if captions.is_empty() {
        return Err(Error::Invalid("a caption is needed to explain a picture (or the model's own vocabulary)".into()));
    }
    if captions.len() > MAX_CAPTIONS {
        return Err(Error::Invalid(format!("at most {MAX_CAPTIONS} captions can be read at once, not {}", captions.len())));
    }
    if let Some(empty) = captions.iter().position(|c| c.trim().is_empty()) {
        return Err(Error::Invalid(format!("caption {} is empty", empty + 1)));
    }
    let size = model.image_size();
    let picture = picture.resized(size);
    let mut readings = Vec::with_capacity(captions.len());
    for caption in captions {
        let gradient = model.pixel_gradient(&picture, caption).await?;
        readings.push(Reading { caption: caption.clone(), cosine: gradient.cosine, probability: 0.0, saliency: magnitude(&gradient.grad, size) });
    }
    let top = readings.iter().map(|r| r.cosine).fold(f32::NEG_INFINITY, f32::max);
    let weights: Vec<f32> = readings.iter().map(|r| ((r.cosine - top) * LOGIT_SCALE).exp()).collect();
    let total: f32 = weights.iter().sum();
    for (reading, weight) in readings.iter_mut().zip(weights) {
        reading.probability = weight / total;
    }
    readings.sort_by(|a, b| b.cosine.total_cmp(&a.cosine));
    Ok(readings)
}

/// The model's own words as captions, when its vocabulary is a closed list (the Shapes
/// world's); a vocabulary that reads any text has no such list.
pub fn vocabulary(model: &Model) -> Result<Vec<String>> {
    model.tokenizer.words().ok_or_else(|| {
        Error::Invalid("this model reads any text, so it has no list of words to explain with: give captions".into())
    })
}

/// Each pixel's gradient length over its three colour planes, divided by the 99th
/// percentile's and capped at 1 (so that a few pixels do not leave the rest black).
fn magnitude(grad: &[f32], size: usize) -> Vec<f32> {
    let n = size * size;
    let lengths: Vec<f32> = (0..n).map(|i| (0..3).map(|c| grad[c * n + i].powi(2)).sum::<f32>().sqrt()).collect();
    let mut sorted = lengths.clone();
    sorted.sort_by(f32::total_cmp);
    let level = sorted[(n - 1) * 99 / 100];
    let level = if level > 0.0 { level } else { sorted[n - 1] };
    if level > 0.0 { lengths.iter().map(|l| (l / level).min(1.0)).collect() } else { lengths }
}

/// The picture beside each reading's map (white where the gradient is largest), one tile
/// each, in a row: what `clipag explain --saliency` writes.
pub fn saliency_strip(picture: &Pixels, readings: &[Reading], size: usize) -> Result<Pixels> {
    let picture = picture.resized(size);
    let tiles = 1 + readings.len();
    let (width, n) = (tiles * size, size * size);
    let mut data = vec![0.0f32; 3 * size * width];
    for tile in 0..tiles {
        for c in 0..3 {
            for y in 0..size {
                for x in 0..size {
                    let value = match tile {
                        0 => picture.data[c * n + y * size + x],
                        t => readings[t - 1].saliency[y * size + x],
                    };
                    data[c * size * width + y * width + tile * size + x] = value;
                }
            }
        }
    }
    Ok(Pixels { height: size, width, data })
}

#[cfg(test)]
mod tests {
    use super::magnitude;

    #[test]
    fn the_map_is_each_pixel_s_gradient_length_against_the_99th_percentile() {
        // Pixel 0's gradient (3, 4, 0): its length is 5, over the colour planes.
        let mut grad = vec![0.0f32; 300];
        (grad[0], grad[100]) = (3.0, 4.0);
        assert_eq!(magnitude(&grad, 10)[0], 1.0);
        assert!(magnitude(&vec![0.0; 300], 10).iter().all(|v| *v == 0.0));
        // A hundred pixels, one of them far above the rest: it is capped, the rest spread.
        let mut grad = vec![0.0f32; 300];
        for i in 0..100 {
            grad[i] = i as f32;
        }
        grad[99] = 1e6;
        let map = magnitude(&grad, 10);
        assert_eq!((map[99], map[98]), (1.0, 1.0));
        assert!((map[49] - 49.0 / 98.0).abs() < 1e-6, "{}", map[49]);
    }
}
