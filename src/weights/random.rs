//! Random weights of any architecture, for benchmarks and for tests of full-size loading
//! (no real checkpoint can be fetched here). Deterministic from a seed; scaled like a
//! trained network's (unit norm gains, small biases, matrices of variance 1/fan-in), so
//! activations stay finite through deep stacks.

use super::tensors::{HostTensor, TensorMap};
use crate::Result;
use crate::rng::Rng;
use crate::model::{ClipConfig, WeightSource};

pub struct RandomWeights {
    rng: Rng,
}

impl RandomWeights {
    pub fn new(seed: u64) -> Self {
        Self { rng: Rng::new(seed) }
    }

    /// Every tensor a model of `config` loads, by open_clip name: the names come from the
    /// model's own loading code, run once on the CPU.
    pub fn tensors(config: &ClipConfig, seed: u64) -> Result<TensorMap> {
        super::loaded_tensors(config, &mut RandomWeights::new(seed))
    }
}

impl WeightSource for RandomWeights {
    fn take(&mut self, name: &str, shape: &[usize]) -> Result<HostTensor> {
        let numel = shape.iter().product();
        let (center, spread) = if is_norm_gain(name) || name.ends_with("running_var") {
            (1.0, 0.1)
        } else if name.ends_with("bias") || name.ends_with("running_mean") {
            (0.0, 0.02)
        } else {
            (0.0, (3.0 / fan_in(shape) as f32).sqrt())
        };
        let data = (0..numel).map(|_| center + spread * self.rng.range(-1.0, 1.0)).collect();
        Ok(HostTensor::new(shape.to_vec(), data))
    }
}

/// A layer norm's or a batch norm's gain (open_clip's `ln_*`, the ResNet's `bn*` and
/// `downsample.1`), drawn near one as a trained network's are.
fn is_norm_gain(name: &str) -> bool {
    let Some(module) = name.strip_suffix(".weight") else { return false };
    let last = module.rsplit('.').next().unwrap_or(module);
    last.starts_with("ln_") || last.starts_with("bn") || module.ends_with("downsample.1")
}

/// The inputs each output sums over: a matrix `[out, in]` reads its last dimension, a
/// convolution `[out, channels, kh, kw]` all but its first (open_clip's `conv1` sums over
/// 3 x p x p pixels, not p). Vectors and embedding tables use their length/width.
fn fan_in(shape: &[usize]) -> usize {
    match shape {
        [] => 1,
        [.., last] if shape.len() <= 2 => *last,
        [_, rest @ ..] => rest.iter().product(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn variance(t: &HostTensor) -> f32 {
        t.data.iter().map(|x| x * x).sum::<f32>() / t.data.len() as f32
    }

    #[test]
    fn matrices_and_convolutions_have_variance_one_over_fan_in() {
        let mut random = RandomWeights::new(3);
        let matrix = random.take("mlp.c_fc.weight", &[512, 128]).unwrap();
        let conv = random.take("visual.conv1.weight", &[128, 3, 8, 8]).unwrap();
        for (tensor, fan_in) in [(matrix, 128.0), (conv, 192.0)] {
            let ratio = variance(&tensor) * fan_in;
            assert!((ratio - 1.0).abs() < 0.05, "variance x fan-in = {ratio}");
        }
    }
}
