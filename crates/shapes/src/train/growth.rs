//! A twin's start from a model folder: read as it is, or grown (deeper, wider MLPs,
//! rescaled or low-passed patch embedding) so that the grown tower starts as the
//! pre-trained one.
use std::path::Path;

use super::{Plan, Trainer, progress};
use clipag::model::{Clip, VisionConfig, WeightSource};
use clipag::weights::folder;
use clipag::weights::random::RandomWeights;
use clipag::weights::tensors::HostTensor;
use clipag::{Error, Result};

impl Trainer {
    /// Starts a twin from the pre-training in `dir` with `plan.deeper_vision` more vision
    /// blocks, vision MLPs `plan.wider_vision_mlp` wide and its patch embedding scaled by
    /// `plan.patch_scale`, the grown tower computing what the pre-trained one did at first
    /// (see `Grown`); and, changing what it computes, its patches' positions times
    /// `plan.position_scale` and its patch filters cut to `plan.patch_low_pass` frequencies
    /// (with none of them, as `resume`).
    pub fn grown(plan: Plan, dir: &Path) -> Result<Self> {
        Self::from_checkpoint(plan, dir, true)
    }

    pub(super) fn from_checkpoint(plan: Plan, dir: &Path, grow: bool) -> Result<Self> {
        let step = progress(dir)?;
        Self::from_folder(plan, dir, grow, step)
    }

    /// `grow`: apply the plan's growth (a twin's start), or read the folder as it is.
    pub(super) fn from_folder(plan: Plan, dir: &Path, grow: bool, step: usize) -> Result<Self> {
        let (added_vision_blocks, mlp_width, patch_scale, position_scale, patch_low_pass) = if grow {
            (plan.deeper_vision, plan.wider_vision_mlp, plan.patch_scale, plan.position_scale, plan.patch_low_pass)
        } else {
            (0, 0, 1.0, 1.0, 0)
        };
        for (factor, what) in [(patch_scale, "the patch embedding's scale (--patch-scale)"), (position_scale, "the positions' scale (--position-scale)")] {
            if !(factor.is_finite() && factor > 0.0) {
                return Err(Error::Invalid(format!("{what} must be a positive number, not {factor}")));
            }
        }
        let files = folder::read(dir)?;
        let mut config = files.manifest.config.clone();
        let stored = match &mut config.vision {
            VisionConfig::Transformer(vision) => {
                let stored = vision.clone();
                if plan.vision_width > 0 && plan.vision_width != stored.width {
                    return Err(Error::Invalid(format!(
                        "{} holds an image tower {} wide, not the {} asked for (--vision-width): a residual stream cannot change width after pre-training",
                        dir.display(),
                        stored.width,
                        plan.vision_width
                    )));
                }
                vision.layers += added_vision_blocks;
                if mlp_width > 0 {
                    if mlp_width < stored.mlp_width {
                        return Err(Error::Invalid(format!(
                            "the vision MLPs can grow, not shrink: {mlp_width} is narrower than the pre-training's {}",
                            stored.mlp_width
                        )));
                    }
                    vision.mlp_width = mlp_width;
                }
                Some(stored)
            }
            VisionConfig::ResNet(_) => {
                let grows = added_vision_blocks > 0 || mlp_width > 0 || patch_low_pass > 0 || plan.vision_width > 0;
                if grows || patch_scale != 1.0 || position_scale != 1.0 {
                    return Err(Error::Invalid(format!(
                        "{} holds a ModifiedResNet: growing, widening and rescaling a tower are the ViT's options",
                        dir.display()
                    )));
                }
                None
            }
        };
        config.validate()?;
        let device = plan.device.clone();
        let inner = clipag::weights::StoredWeights::parse(&files.weights)?;
        let mut weights = Grown {
            inner,
            layers: stored.as_ref().map_or(0, |v| v.layers),
            mlp_width: stored.as_ref().map_or(0, |v| v.mlp_width),
            patch_scale,
            position_scale,
            patch_low_pass,
            random: RandomWeights::new(plan.seed),
        };
        let (model, origins) = Clip::trainable(&config, &mut weights, &device)?;
        Self::with_model(plan, config, files.tokenizer.clone(), device, model, origins, step)
    }
}

/// Stored weights, grown where the model asks for a larger image tower than they hold, so
/// that the grown tower starts as the pre-trained one (function-preserving growth, as in
/// Net2Net, Chen, Goodfellow and Shlens 2016):
/// - deeper: each block past the stored ones is a copy of the last stored block with its
///   attention's and its MLP's output projections zero, so it adds nothing to the residual
///   stream;
/// - wider MLPs: each MLP's new hidden units get random input weights (as a fresh model's)
///   and zero output weights, so they add nothing either;
/// - rescaled patch embedding: `conv1` and the patches' positional embeddings times one
///   factor, which `ln_pre` divides out again.
///
/// Not growths, done here because they too change the stored weights as they load, and
/// not keeping the function: the patches' positions times a further factor, and the
/// low-passed patch filters (`low_pass`).
///
/// The zero projections get gradients at once and open the new parts as training goes.
pub(super) struct Grown<'a> {
    inner: clipag::weights::StoredWeights<'a>,
    /// How many vision blocks the stored weights hold.
    layers: usize,
    /// The stored vision MLPs' hidden width.
    mlp_width: usize,
    /// Factor on the patch tokens' parts: the patch embedding and the patches' positions.
    patch_scale: f32,
    /// Further factor on the patches' positions alone.
    position_scale: f32,
    /// Frequencies kept in each direction of each patch filter (`low_pass`); 0 keeps all.
    patch_low_pass: usize,
    /// Draws the new hidden units' input weights.
    random: RandomWeights,
}

impl WeightSource for Grown<'_> {
    fn take(&mut self, name: &str, shape: &[usize]) -> Result<HostTensor> {
        const BLOCKS: &str = "visual.transformer.resblocks.";
        let Some((index, field)) = name
            .strip_prefix(BLOCKS)
            .and_then(|rest| rest.split_once('.'))
            .and_then(|(index, field)| Some((index.parse::<usize>().ok()?, field)))
        else {
            let mut tensor = self.inner.take(name, shape)?;
            // `ln_pre` normalises each token alone, so the patch tokens can shrink while the
            // class token (row 0 of the positions), whose small norm `ln_pre`'s epsilon
            // would start to matter for, keeps its size.
            match name {
                "visual.conv1.weight" => {
                    tensor.data.iter_mut().for_each(|v| *v *= self.patch_scale);
                    if self.patch_low_pass > 0 {
                        low_pass(&mut tensor.data, shape[3], self.patch_low_pass);
                    }
                }
                "visual.positional_embedding" => {
                    let factor = self.patch_scale * self.position_scale;
                    tensor.data[shape[1]..].iter_mut().for_each(|v| *v *= factor);
                }
                _ => {}
            }
            return Ok(tensor);
        };
        if index >= self.layers && (field.starts_with("attn.out_proj.") || field.starts_with("mlp.c_proj.")) {
            return Ok(HostTensor::new(shape.to_vec(), vec![0.0; shape.iter().product()]));
        }
        let stored = self.inner.take(&format!("{BLOCKS}{}.{field}", index.min(self.layers.saturating_sub(1))), shape)?;
        match field {
            // `[hidden, width]`: new rows below the stored ones.
            "mlp.c_fc.weight" if shape[0] > self.mlp_width => {
                let fresh = self.random.take(name, &[shape[0] - self.mlp_width, shape[1]])?;
                Ok(HostTensor::new(shape.to_vec(), [stored.data, fresh.data].concat()))
            }
            "mlp.c_fc.bias" if shape[0] > self.mlp_width => {
                Ok(HostTensor::new(shape.to_vec(), [stored.data, vec![0.0; shape[0] - self.mlp_width]].concat()))
            }
            // `[width, hidden]`: new zero columns right of the stored ones.
            "mlp.c_proj.weight" if shape[1] > self.mlp_width => {
                let (rows, old, new) = (shape[0], self.mlp_width, shape[1]);
                let mut data = vec![0.0; rows * new];
                for r in 0..rows {
                    data[r * new..r * new + old].copy_from_slice(&stored.data[r * old..(r + 1) * old]);
                }
                Ok(HostTensor::new(shape.to_vec(), data))
            }
            _ => Ok(stored),
        }
    }
}

/// Keeps the lowest `keep` x `keep` frequencies of each `size` x `size` block in `blocks`
/// (row-major, one after another): with the orthonormal DCT-II basis `d` (rows the cosines,
/// lowest first) and `l` the projection onto its first `keep` rows, each block `b` becomes
/// `l b l`. A flat block is its first basis function, so it stays as it is.
pub(super) fn low_pass(blocks: &mut [f32], size: usize, keep: usize) {
    let n = size as f64;
    let basis = |k: usize, i: usize| {
        let scale = if k == 0 { (1.0 / n).sqrt() } else { (2.0 / n).sqrt() };
        scale * (std::f64::consts::PI * (i as f64 + 0.5) * k as f64 / n).cos()
    };
    // `l[i][j]`: the sum over kept frequencies of d[k][i] d[k][j].
    let l: Vec<f64> =
        (0..size * size).map(|ij| (0..keep.min(size)).map(|k| basis(k, ij / size) * basis(k, ij % size)).sum()).collect();
    let product = |a: &[f64], b: &[f64]| -> Vec<f64> {
        (0..size * size).map(|ij| (0..size).map(|k| a[ij / size * size + k] * b[k * size + ij % size]).sum()).collect()
    };
    for block in blocks.chunks_mut(size * size) {
        let b: Vec<f64> = block.iter().map(|&v| v as f64).collect();
        let kept = product(&product(&l, &b), &l);
        block.iter_mut().zip(kept).for_each(|(v, k)| *v = k as f32);
    }
}
