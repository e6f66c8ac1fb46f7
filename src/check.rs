//! The device check: one small forward and backward pass, the same computation the product
//! does at scale (a matmul, a non-linearity, a reduction, then the gradient with respect to
//! the input). The page runs it on start to prove WebGPU computes gradients; native code runs
//! it too, and the browser test compares the two.
//!
//! `loss = mean(tanh(x W + b)^2)`, gradient with respect to `x`.

use burn::tensor::{Device, Tensor, TensorData};
use serde::Serialize;

use crate::device::DeviceInfo;
use crate::engine::read;
use crate::{Error, Result};

pub const ROWS: usize = 16;
pub const INPUTS: usize = 32;
pub const OUTPUTS: usize = 24;

/// What the check computed, with the device that computed it.
#[derive(Debug, Clone, Serialize)]
pub struct CheckReport {
    pub device: DeviceInfo,
    pub loss: f32,
    /// d loss / d x, row-major `[ROWS, INPUTS]`.
    pub grad: Vec<f32>,
}

/// Deterministic inputs, smooth and of mixed sign so that tanh is neither linear nor saturated.
pub fn inputs() -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let x = (0..ROWS * INPUTS)
        .map(|k| (0.37 * k as f32).sin() * 1.5)
        .collect();
    let w = (0..INPUTS * OUTPUTS)
        .map(|k| (0.11 * k as f32 + 0.5).cos() * 0.3)
        .collect();
    let b = (0..OUTPUTS).map(|k| 0.05 * k as f32 - 0.6).collect();
    (x, w, b)
}

/// Runs the check on `device` (which must have autodiff enabled).
pub async fn run(device: &Device, info: &DeviceInfo) -> Result<CheckReport> {
    let (x, w, b) = inputs();
    let x = Tensor::<2>::from_data(TensorData::new(x, [ROWS, INPUTS]), device).require_grad();
    let w = Tensor::<2>::from_data(TensorData::new(w, [INPUTS, OUTPUTS]), device);
    let b = Tensor::<1>::from_data(TensorData::new(b, [OUTPUTS]), device);

    let y = x.clone().matmul(w).add(b.unsqueeze()).tanh();
    let loss = y.square().mean();
    let grads = loss.backward();
    let grad = x
        .grad(&grads)
        .ok_or_else(|| Error::Internal("the backward pass produced no input gradient".into()))?;

    let loss = read(loss).await?;
    let grad = read(grad).await?;
    Ok(CheckReport {
        device: info.clone(),
        loss: loss[0],
        grad,
    })
}

/// The same loss and gradient in plain f64 arithmetic, derived by hand:
/// `d loss / d x = (2 / N) * (y * (1 - y^2)) W^T`, with `N = ROWS * OUTPUTS`.
pub fn reference() -> (f64, Vec<f64>) {
    let (x, w, b) = inputs();
    let n = (ROWS * OUTPUTS) as f64;
    let mut loss = 0.0;
    let mut grad = vec![0.0; ROWS * INPUTS];
    for r in 0..ROWS {
        for o in 0..OUTPUTS {
            let z: f64 = (0..INPUTS)
                .map(|i| x[r * INPUTS + i] as f64 * w[i * OUTPUTS + o] as f64)
                .sum::<f64>()
                + b[o] as f64;
            let y = z.tanh();
            loss += y * y / n;
            let dz = 2.0 / n * y * (1.0 - y * y);
            for i in 0..INPUTS {
                grad[r * INPUTS + i] += dz * w[i * OUTPUTS + o] as f64;
            }
        }
    }
    (loss, grad)
}
