//! Parameterisation: what the optimiser changes, and how it becomes the canvas's pixels.
//! Also the initial canvas: low-frequency noise or a start image. Strokes, the third kind,
//! are drawn in `strokes`.

use std::f32::consts::PI;

use burn::tensor::activation::sigmoid;
use burn::tensor::{Device, Tensor, TensorData};

use serde::{Deserialize, Serialize};

use super::optimise::threshold;
use super::strokes::Strokes;
use crate::pixels::Pixels;
use crate::rng::Rng;
use crate::{Error, Result};

/// How the optimised variables become pixels.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[cfg_attr(cli, derive(clap::ValueEnum))]
pub enum Parameterisation {
    /// The pixels themselves, as in the paper.
    #[default]
    Pixels,
    /// Lucid's: a 1/f-scaled Fourier spectrum in a decorrelated colour space, through a
    /// sigmoid.
    Fourier,
    /// CLIPDraw's: cubic Bézier strokes (`strokes` of them) with a width, colour and
    /// opacity, over a background colour, rasterised differentiably; also written as an SVG.
    Strokes,
}

/// CLIPDraw's number of strokes.
pub const DEFAULT_STROKES: usize = 256;
/// More strokes than this are refused: each is a row of every rasterising tensor.
pub const MAX_STROKES: usize = 2048;

/// The initial noise's amplitude (of its coarsest field): the paper's.
pub const DEFAULT_INIT_NOISE: f32 = 0.35;

/// The canvas: what is optimised, how it is kept a picture, and where it starts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
#[cfg_attr(cli, derive(clap::Args))]
pub struct CanvasSettings {
    /// How the optimised variables become pixels: `pixels` (the paper's), `fourier` or
    /// `strokes`.
    #[cfg_attr(cli, arg(long, value_enum))]
    pub param: Parameterisation,
    /// After each step, pixels are brought back into [0, 1] by dynamic thresholding at this
    /// percentile (every pixel divided by the percentile's excess); 0: plain clamping.
    #[cfg_attr(cli, arg(long))]
    pub threshold: f32,
    /// Candidates for the initial noise; the best by score for the prompt is the start.
    #[cfg_attr(cli, arg(long))]
    pub candidates: usize,
    /// Amplitude of the initial noise (of its coarsest field; finer ones fall as 1/f); 0 is
    /// a flat mid-grey start.
    #[cfg_attr(cli, arg(long))]
    pub init_noise: f32,
    /// Strokes only: how many curves paint the canvas (CLIPDraw's 256); they start as
    /// CLIPDraw's, short, thin and of random colours, the best of `candidates` draws.
    #[cfg_attr(cli, arg(long))]
    pub strokes: usize,
    /// A picture to start from instead of noise (resized to the canvas). Given as a file
    /// (`--init`, the page's start image), not by name.
    #[serde(skip)]
    #[cfg_attr(cli, arg(skip))]
    pub start: Option<Pixels>,
}

/// The paper's canvas.
impl Default for CanvasSettings {
    fn default() -> Self {
        Self { param: Parameterisation::Pixels, threshold: 0.95, candidates: 16, init_noise: DEFAULT_INIT_NOISE, strokes: DEFAULT_STROKES, start: None }
    }
}

impl CanvasSettings {
    pub fn validate(&self) -> Result<()> {
        if !(self.threshold.is_finite() && (0.0..=1.0).contains(&self.threshold)) {
            return Err(Error::Invalid(format!("the threshold percentile must be in (0, 1], or 0 for none, not {}", self.threshold)));
        }
        if !(1..=256).contains(&self.candidates) {
            return Err(Error::Invalid(format!("the initial candidates must be 1 to 256, not {}", self.candidates)));
        }
        if !(self.init_noise.is_finite() && (0.0..=1.0).contains(&self.init_noise)) {
            return Err(Error::Invalid(format!("the initial noise must be 0 to 1, not {}", self.init_noise)));
        }
        if !(1..=MAX_STROKES).contains(&self.strokes) {
            return Err(Error::Invalid(format!("the strokes must be 1 to {MAX_STROKES}, not {}", self.strokes)));
        }
        if self.param == Parameterisation::Strokes && self.start.is_some() {
            return Err(Error::Invalid("a start image cannot start a strokes canvas: strokes start from random curves".into()));
        }
        Ok(())
    }
}

/// Lucid's colour correlation (square root of the ImageNet colour covariance), scaled so its
/// largest column norm is 1: decorrelated parameters become natural colours.
const COLOR_CORRELATION: [[f32; 3]; 3] = [[0.26, 0.09, 0.02], [0.27, 0.00, -0.05], [0.27, -0.09, 0.03]];
const COLOR_MAX_NORM: f32 = 0.4619; // max column norm of the matrix above

/// The optimised variables of a canvas and how they map to pixels.
pub struct Canvas {
    kind: Parameterisation,
    /// Pixels only: the dynamic thresholding's percentile (0: clamping).
    threshold: f32,
    size: usize,
    /// Fourier only: cos and sin bases `[size, size]` and the 1/f spectrum scale.
    basis: Option<FourierBasis>,
    /// Strokes only: their rasteriser.
    strokes: Option<Strokes>,
}

struct FourierBasis {
    cos: Tensor<2>,
    sin: Tensor<2>,
    scale: Tensor<3>,
}

impl Canvas {
    pub fn new(settings: &CanvasSettings, size: usize, device: &Device) -> Self {
        let kind = settings.param;
        let basis = (kind == Parameterisation::Fourier).then(|| FourierBasis::new(size, device));
        let strokes = (kind == Parameterisation::Strokes).then(|| Strokes::new(settings.strokes, size, device));
        Self { kind, threshold: settings.threshold, size, basis, strokes }
    }

    /// The strokes, when the canvas is made of them.
    pub fn strokes(&self) -> Option<&Strokes> {
        self.strokes.as_ref()
    }

    /// After an update: `pixels` (the updated parameters' pixels, read back to the host, one
    /// canvas after another) are made pictures again, and the parameters to go on from are returned. Pixels are
    /// thresholded on the host, which holds them already (the percentile needs a sort, which
    /// WebGPU backends do not offer), and become the parameters; a Fourier spectrum's sigmoid
    /// keeps its pixels in range, and its parameters stay as updated; strokes are kept within
    /// their limits on the device.
    pub fn project(&self, updated: Tensor<4>, pixels: &mut [f32]) -> Tensor<4> {
        match self.kind {
            Parameterisation::Pixels => {
                let s = self.size;
                // Each canvas by its own percentile.
                for canvas in pixels.chunks_mut(3 * s * s) {
                    threshold(canvas, (self.threshold > 0.0).then_some(self.threshold));
                }
                let canvases = pixels.len() / (3 * s * s);
                Tensor::from_data(TensorData::new(pixels.to_vec(), [canvases, 3, s, s]), &updated.device())
            }
            Parameterisation::Fourier => updated,
            Parameterisation::Strokes => match &self.strokes {
                Some(strokes) => strokes.project(updated),
                None => updated,
            },
        }
    }

    /// The parameters that give `pixels` (`[3, size, size]` in [0, 1]): pixels and Fourier
    /// only (strokes start from random curves, `Strokes::random`; `validate` refuses a start
    /// image for them).
    pub fn params_for(&self, pixels: &Pixels, device: &Device) -> Tensor<4> {
        let s = self.size;
        let data = match self.kind {
            Parameterisation::Fourier => self.fourier_params_for(pixels),
            _ => pixels.data.clone(),
        };
        let planes = data.len() / (s * s);
        Tensor::from_data(TensorData::new(data, [1, planes, s, s]), device)
    }

    /// Pixels `[canvases, 3, size, size]` from parameters (differentiable).
    pub fn pixels(&self, params: Tensor<4>) -> Tensor<4> {
        // Spectra and strokes become pixels a canvas at a time.
        let each = |one: &dyn Fn(Tensor<4>) -> Tensor<4>| {
            let canvases = params.dims()[0];
            if canvases == 1 {
                return one(params.clone());
            }
            Tensor::cat((0..canvases).map(|i| one(params.clone().narrow(0, i, 1))).collect(), 0)
        };
        match (&self.basis, &self.strokes) {
            (Some(basis), _) => each(&|p| basis.pixels(p)),
            (_, Some(strokes)) => each(&|p| strokes.render(p)),
            _ => params,
        }
    }

    /// Fourier parameters (real and imaginary spectra, 6 planes) for given pixels: the
    /// inverse of `pixels`, so that a start image can be edited in this parameterisation.
    fn fourier_params_for(&self, pixels: &Pixels) -> Vec<f32> {
        let s = self.size;
        let n = s * s;
        // Undo the sigmoid, then the colour correlation (its inverse, computed once here).
        let logit: Vec<f32> = pixels.data.iter().map(|p| {
            let p = p.clamp(0.01, 0.99);
            (p / (1.0 - p)).ln()
        }).collect();
        let inverse = invert3(COLOR_CORRELATION.map(|row| row.map(|v| v / COLOR_MAX_NORM)));
        let mut decorrelated = vec![0.0; 3 * n];
        for i in 0..n {
            for c in 0..3 {
                decorrelated[c * n + i] = (0..3).map(|k| inverse[c][k] * logit[k * n + i]).sum();
            }
        }
        // Forward DFT, separably (rows, then columns): Z = DFT(x) / n, divided by the scale.
        let mut out = vec![0.0; 6 * n];
        let scale = spectrum_scale(s);
        let (cos, sin): (Vec<f32>, Vec<f32>) = (0..s).map(|k| {
            let angle = 2.0 * PI * k as f32 / s as f32;
            (angle.cos(), angle.sin())
        }).unzip();
        for c in 0..3 {
            let x = &decorrelated[c * n..(c + 1) * n];
            let (mut row_re, mut row_im) = (vec![0.0f32; n], vec![0.0f32; n]);
            for y in 0..s {
                for v in 0..s {
                    for xx in 0..s {
                        let k = (v * xx) % s;
                        row_re[y * s + v] += x[y * s + xx] * cos[k];
                        row_im[y * s + v] -= x[y * s + xx] * sin[k];
                    }
                }
            }
            for u in 0..s {
                for v in 0..s {
                    let (mut re, mut im) = (0.0f32, 0.0f32);
                    for y in 0..s {
                        let k = (u * y) % s;
                        // (a + ib)(cos - i sin)
                        re += row_re[y * s + v] * cos[k] + row_im[y * s + v] * sin[k];
                        im += row_im[y * s + v] * cos[k] - row_re[y * s + v] * sin[k];
                    }
                    let at = u * s + v;
                    out[c * n + at] = re / (n as f32 * scale[at]);
                    out[(3 + c) * n + at] = im / (n as f32 * scale[at]);
                }
            }
        }
        out
    }
}

impl FourierBasis {
    fn new(s: usize, device: &Device) -> Self {
        let matrix = |f: fn(f32) -> f32| {
            let data: Vec<f32> = (0..s * s)
                .map(|i| f(2.0 * PI * ((i / s) * (i % s) % s) as f32 / s as f32))
                .collect();
            Tensor::<2>::from_data(TensorData::new(data, [s, s]), device)
        };
        let scale = Tensor::<1>::from_data(TensorData::new(spectrum_scale(s), [s * s]), device).reshape([1, s, s]);
        Self { cos: matrix(f32::cos), sin: matrix(f32::sin), scale }
    }

    /// `Re(F Z F)` for each colour plane, where `F = cos + i sin` and `Z` is the 1/f-scaled
    /// spectrum; then Lucid's colour correlation and a sigmoid.
    fn pixels(&self, params: Tensor<4>) -> Tensor<4> {
        let [_, _, s, _] = params.dims();
        let planes: Tensor<3> = params.squeeze_dim(0);
        let re = planes.clone().narrow(0, 0, 3) * self.scale.clone();
        let im = planes.narrow(0, 3, 3) * self.scale.clone();
        let c = self.cos.clone().unsqueeze::<3>();
        let sn = self.sin.clone().unsqueeze::<3>();
        let spatial = c.clone().matmul(re.clone()).matmul(c.clone())
            - sn.clone().matmul(re).matmul(sn.clone())
            - c.clone().matmul(im.clone()).matmul(sn.clone())
            - sn.matmul(im).matmul(c);
        let flat = spatial.reshape([3, s * s]);
        let matrix: Vec<f32> = COLOR_CORRELATION.iter().flatten().map(|v| v / COLOR_MAX_NORM).collect();
        let matrix = Tensor::<2>::from_data(TensorData::new(matrix, [3, 3]), &flat.device());
        sigmoid(matrix.matmul(flat)).reshape([1, 3, s, s])
    }
}

/// Lucid's spectrum scale: 1 / max(frequency, 1 / size), frequencies in cycles per image.
fn spectrum_scale(s: usize) -> Vec<f32> {
    let freq = |k: usize| {
        let k = if k > s / 2 { s - k } else { k };
        k as f32 / s as f32
    };
    (0..s * s)
        .map(|i| {
            let f = (freq(i / s).powi(2) + freq(i % s).powi(2)).sqrt();
            1.0 / f.max(1.0 / s as f32) / s as f32
        })
        .collect()
}

fn invert3(m: [[f32; 3]; 3]) -> [[f32; 3]; 3] {
    let det = m[0][0] * (m[1][1] * m[2][2] - m[1][2] * m[2][1]) - m[0][1] * (m[1][0] * m[2][2] - m[1][2] * m[2][0])
        + m[0][2] * (m[1][0] * m[2][1] - m[1][1] * m[2][0]);
    let c = |r0: usize, c0: usize, r1: usize, c1: usize| m[r0][c0] * m[r1][c1] - m[r0][c1] * m[r1][c0];
    [
        [c(1, 1, 2, 2) / det, -c(0, 1, 2, 2) / det, c(0, 1, 1, 2) / det],
        [-c(1, 0, 2, 2) / det, c(0, 0, 2, 2) / det, -c(0, 0, 1, 2) / det],
        [c(1, 0, 2, 1) / det, -c(0, 0, 2, 1) / det, c(0, 0, 1, 1) / det],
    ]
}

/// Low-frequency coloured noise: random colour fields at 2, 4, 8 and 16 cells a side,
/// upsampled smoothly and summed with amplitudes falling as 1/f, around mid-grey. A stand-in
/// for the paper's Gaussian fitted to downsampled natural images, which needs a dataset.
/// `amplitude` is the coarsest field's.
pub fn low_frequency_noise(size: usize, amplitude: f32, rng: &mut Rng) -> Pixels {
    let mut data = vec![0.5f32; 3 * size * size];
    for octave in 1..=4u32 {
        let cells = 1usize << octave;
        let amplitude = amplitude / octave as f32;
        for c in 0..3 {
            let grid: Vec<f32> = (0..(cells + 1) * (cells + 1)).map(|_| rng.normal()).collect();
            for y in 0..size {
                for x in 0..size {
                    // Smooth (cosine) interpolation between grid points.
                    let gy = y as f32 / size as f32 * cells as f32;
                    let gx = x as f32 / size as f32 * cells as f32;
                    let (y0, x0) = (gy.floor() as usize, gx.floor() as usize);
                    let (ty, tx) = (smooth(gy - y0 as f32), smooth(gx - x0 as f32));
                    let at = |yy: usize, xx: usize| grid[yy * (cells + 1) + xx];
                    let top = at(y0, x0) * (1.0 - tx) + at(y0, x0 + 1) * tx;
                    let bottom = at(y0 + 1, x0) * (1.0 - tx) + at(y0 + 1, x0 + 1) * tx;
                    data[c * size * size + y * size + x] += amplitude * (top * (1.0 - ty) + bottom * ty);
                }
            }
        }
    }
    for v in &mut data {
        *v = v.clamp(0.0, 1.0);
    }
    Pixels { height: size, width: size, data }
}

fn smooth(t: f32) -> f32 {
    (1.0 - (PI * t).cos()) / 2.0
}
