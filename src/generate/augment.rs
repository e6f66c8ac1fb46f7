//! Views: each step, the canvas is seen through many random views, and the loss is averaged
//! over them, so the gradient follows what stays recognisable under change rather than
//! adversarial pixel patterns. As in the paper: global views (the whole canvas, plus noise)
//! and patch views (random crops), each through DiffAugment (colour, translation, resize,
//! cutout). All views are one batch at the model's resolution.

use burn::tensor::ops::{GridSampleOptions, GridSamplePaddingMode};
use burn::tensor::{Device, Tensor, TensorData};

use serde::{Deserialize, Serialize};

use super::settings::non_negative;
use super::settings::MAX_VIEWS;
use crate::rng::Rng;
use crate::{Error, Result};

/// How the canvas is seen each step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
#[cfg_attr(cli, derive(clap::Args))]
pub struct ViewSettings {
    /// Global views per step: the whole canvas, with noise.
    #[cfg_attr(cli, arg(long))]
    pub views: usize,
    /// Patch views per step: random crops of the canvas.
    #[cfg_attr(cli, arg(long))]
    pub patch_views: usize,
    /// Side of a patch crop as a fraction of the canvas (128 of 224 in the paper).
    #[cfg_attr(cli, arg(long))]
    pub patch_fraction: f32,
    /// Standard deviation of the noise added to each global view.
    #[cfg_attr(cli, arg(long))]
    pub noise: f32,
    /// DiffAugment's colour policy (brightness, saturation, contrast) on every view. Off, the
    /// views keep the canvas's colours: for a model whose world has a few flat named colours,
    /// a brightness shift of up to 0.5 turns one named colour into another.
    #[cfg_attr(cli, arg(long))]
    pub colour_jitter: bool,
    /// DiffAugment's cutout on every view: a square of half the view's side set to black.
    /// Off, no view hides part of the canvas (on the Shapes world, ascent from the prompt's
    /// own picture then kept its one object far more often: docs/shapes-log.md).
    #[cfg_attr(cli, arg(long))]
    pub cutout: bool,
    /// Where the views' translation and zoom look past the canvas, repeat its edge pixels
    /// (off, as DiffAugment: black, which ascent on the Shapes world answered with bright
    /// frames round the canvas: docs/shapes-log.md).
    #[cfg_attr(cli, arg(long))]
    pub edge_padding: bool,
}

/// The paper's views.
impl Default for ViewSettings {
    fn default() -> Self {
        Self {
            views: 32,
            patch_views: 32,
            patch_fraction: 128.0 / 224.0,
            noise: 0.01,
            colour_jitter: true,
            cutout: true,
            edge_padding: false,
        }
    }
}

impl ViewSettings {
    pub fn count(&self) -> usize {
        self.views + self.patch_views
    }

    pub fn validate(&self) -> Result<()> {
        if self.count() == 0 {
            return Err(Error::Invalid("at least one view (global or patch) is needed".into()));
        }
        if self.views > MAX_VIEWS || self.patch_views > MAX_VIEWS {
            return Err(Error::Invalid(format!("at most {MAX_VIEWS} views of each kind")));
        }
        non_negative("the view noise", self.noise)?;
        if !(self.patch_fraction.is_finite() && self.patch_fraction > 0.0 && self.patch_fraction <= 1.0) {
            return Err(Error::Invalid(format!("the patch fraction must be in (0, 1], not {}", self.patch_fraction)));
        }
        Ok(())
    }
}

/// The views a step takes of the canvas, at the model's resolution.
pub struct Views {
    pub settings: ViewSettings,
    model_size: usize,
    /// The sampling grid of the whole image, `[1, size, size, 2]` in grid_sample's [-1, 1]
    /// coordinates, built once.
    base_grid: Tensor<4>,
}

/// The random draws of one step, one per view (or per step, for the resize).
struct Draws {
    /// Crop boxes in [-1, 1] coordinates: centre and half-size.
    crop_center: Vec<[f32; 2]>,
    crop_half: Vec<f32>,
    brightness: Vec<f32>,
    saturation: Vec<f32>,
    contrast: Vec<f32>,
    /// Translation in pixels at the model's resolution.
    shift: Vec<[f32; 2]>,
    cutout_center: Vec<[f32; 2]>,
    /// One zoom for the whole batch (DiffAugment's resize).
    zoom: f32,
}

impl Views {
    /// Views as `settings` asks for, resampled to the model's resolution `model_size`.
    pub fn new(settings: &ViewSettings, model_size: usize, device: &Device) -> Self {
        Self { settings: settings.clone(), model_size, base_grid: identity_grid(model_size, device) }
    }

    pub fn count(&self) -> usize {
        self.settings.count()
    }

    /// The canvas resampled to the model's resolution, unaugmented: `[1, 3, m, m]`.
    pub fn clean(&self, canvas: Tensor<4>) -> Tensor<4> {
        let [_, _, size, _] = canvas.dims();
        if size == self.model_size {
            return canvas;
        }
        canvas.grid_sample_2d(self.base_grid.clone(), GridSampleOptions::default())
    }

    /// All views of `canvas` (`[1, 3, size, size]`): `[global + patch, 3, m, m]`, global first.
    pub fn sample(&self, canvas: Tensor<4>, rng: &mut Rng) -> Tensor<4> {
        let n = self.count();
        let m = self.model_size;
        let device = canvas.device();
        let draws = self.draw(rng);

        // 1. What each view sees of the canvas: all of it, or a crop, at the model's size.
        let center = per_view(draws.crop_center.iter().flatten().copied().collect(), [n, 1, 1, 2], &device);
        let half = per_view(draws.crop_half.clone(), [n, 1, 1, 1], &device);
        let grid = self.base_grid.clone() * half + center;
        let [_, c, h, w] = canvas.dims();
        let mut x = canvas.expand([n, c, h, w]).grid_sample_2d(grid, GridSampleOptions::default());

        // Noise on the global views only. Drawn on the host from the generation's own seeded
        // generator: a device's random numbers come from one generator per process, which
        // another generation running alongside would advance.
        if self.settings.views > 0 && self.settings.noise > 0.0 {
            let mut noise: Vec<f32> = (0..self.settings.views * 3 * m * m).map(|_| self.settings.noise * rng.normal()).collect();
            noise.resize(n * 3 * m * m, 0.0);
            x = x + per_view(noise, [n, 3, m, m], &device);
        }

        // 2. DiffAugment colour: brightness, saturation, contrast.
        x = x + per_view(draws.brightness.clone(), [n, 1, 1, 1], &device);
        let mean = x.clone().mean_dim(1);
        x = (x - mean.clone()) * per_view(draws.saturation.clone(), [n, 1, 1, 1], &device) + mean;
        let mean = x.clone().mean_dim(1).mean_dim(2).mean_dim(3);
        x = (x - mean.clone()) * per_view(draws.contrast.clone(), [n, 1, 1, 1], &device) + mean;

        // 3. DiffAugment translation (whole pixels, zero padding) and resize (one zoom about the
        //    centre): one more resampling.
        let shift: Vec<f32> = draws.shift.iter().flat_map(|[dx, dy]| [-2.0 * dx / m as f32, -2.0 * dy / m as f32]).collect();
        let grid = self.base_grid.clone() / draws.zoom + per_view(shift, [n, 1, 1, 2], &device);
        let mut options = GridSampleOptions::default();
        if self.settings.edge_padding {
            options.padding_mode = GridSamplePaddingMode::Border;
        }
        x = x.grid_sample_2d(grid, options);

        // 4. DiffAugment cutout: one square of half the side set to zero.
        if !self.settings.cutout {
            return x;
        }
        let coords = self.base_grid.clone().swap_dims(1, 3).swap_dims(2, 3); // [1, 2, m, m]: x then y
        let cut = per_view(draws.cutout_center.iter().flatten().copied().collect(), [n, 2, 1, 1], &device);
        let inside = (coords - cut).abs().lower_elem(0.5).int().sum_dim(1).equal_elem(2); // [n, 1, m, m]
        x.mask_fill(inside.expand([n, 3, m, m]), 0.0)
    }

    fn draw(&self, rng: &mut Rng) -> Draws {
        let n = self.count();
        let m = self.model_size as f32;
        let mut d = Draws {
            crop_center: Vec::with_capacity(n),
            crop_half: Vec::with_capacity(n),
            brightness: Vec::with_capacity(n),
            saturation: Vec::with_capacity(n),
            contrast: Vec::with_capacity(n),
            shift: Vec::with_capacity(n),
            cutout_center: Vec::with_capacity(n),
            zoom: rng.range(0.8, 1.2),
        };
        // DiffAugment translates by up to 1/8 of the side, in whole pixels.
        let max_shift = (m * 0.125 + 0.5).floor() as i64;
        for view in 0..n {
            if view < self.settings.views {
                d.crop_center.push([0.0, 0.0]);
                d.crop_half.push(1.0);
            } else {
                let half = self.settings.patch_fraction;
                d.crop_center.push([rng.range(-1.0 + half, 1.0 - half), rng.range(-1.0 + half, 1.0 - half)]);
                d.crop_half.push(half);
            }
            // Drawn even when unused, so that the other draws do not depend on it.
            let (brightness, saturation, contrast) = (rng.range(-0.5, 0.5), rng.range(0.0, 2.0), rng.range(0.5, 1.5));
            let jitter = self.settings.colour_jitter;
            d.brightness.push(if jitter { brightness } else { 0.0 });
            d.saturation.push(if jitter { saturation } else { 1.0 });
            d.contrast.push(if jitter { contrast } else { 1.0 });
            d.shift.push([rng.int(-max_shift, max_shift) as f32, rng.int(-max_shift, max_shift) as f32]);
            // Cutout centres anywhere in the view (the square may fall partly outside).
            d.cutout_center.push([rng.range(-1.0, 1.0), rng.range(-1.0, 1.0)]);
        }
        d
    }
}

fn per_view<const D: usize>(values: Vec<f32>, shape: [usize; D], device: &Device) -> Tensor<D> {
    Tensor::from_data(TensorData::new(values, shape), device)
}

/// grid_sample's identity grid for a `size` x `size` output: pixel centres in [-1, 1]
/// (align_corners = false), `[1, size, size, 2]` with x first.
fn identity_grid(size: usize, device: &Device) -> Tensor<4> {
    let mut data = Vec::with_capacity(size * size * 2);
    let coord = |i: usize| (2 * i + 1) as f32 / size as f32 - 1.0;
    for y in 0..size {
        for x in 0..size {
            data.push(coord(x));
            data.push(coord(y));
        }
    }
    Tensor::from_data(TensorData::new(data, [1, size, size, 2]), device)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn device() -> Device {
        Device::flex().autodiff()
    }

    fn values(t: Tensor<4>) -> Vec<f32> {
        t.into_data().try_to_vec_as::<f32>().unwrap()
    }

    /// Views at a model resolution of 16.
    fn views(global: usize, patch: usize, noise: f32, colour_jitter: bool, cutout: bool, device: &Device) -> Views {
        let s = ViewSettings { views: global, patch_views: patch, patch_fraction: 0.5, noise, colour_jitter, cutout, edge_padding: false };
        Views::new(&s, 16, device)
    }

    fn grey(device: &Device) -> Tensor<4> {
        Tensor::<4>::from_data(TensorData::new(vec![0.5f32; 3 * 16 * 16], [1, 3, 16, 16]), device)
    }

    #[test]
    fn identity_grid_samples_every_pixel_exactly_and_passes_the_gradient_back() {
        let device = device();
        let data: Vec<f32> = (0..3 * 8 * 8).map(|i| (i as f32 * 0.37).sin()).collect();
        let x = Tensor::<4>::from_data(TensorData::new(data.clone(), [1, 3, 8, 8]), &device).require_grad();
        let y = x.clone().grid_sample_2d(identity_grid(8, &device), GridSampleOptions::default());
        let sampled = values(y.clone());
        assert!(sampled.iter().zip(&data).all(|(a, b)| (a - b).abs() < 1e-6));
        let weights: Vec<f32> = (0..3 * 8 * 8).map(|i| (i as f32 * 0.11).cos()).collect();
        let w = Tensor::<4>::from_data(TensorData::new(weights.clone(), [1, 3, 8, 8]), &device);
        let grads = (y * w).sum().backward();
        let grad = values(x.grad(&grads).unwrap());
        assert!(grad.iter().zip(&weights).all(|(a, b)| (a - b).abs() < 1e-6), "{grad:?}");
    }

    #[test]
    fn views_keep_the_gradient_flowing_to_the_canvas() {
        let device = device();
        let views = views(2, 2, 0.01, true, true, &device);
        let canvas = Tensor::<4>::from_data(TensorData::new(vec![0.5f32; 3 * 32 * 32], [1, 3, 32, 32]), &device).require_grad();
        let sampled = views.sample(canvas.clone(), &mut Rng::new(1));
        assert_eq!(sampled.dims(), [4, 3, 16, 16]);
        let grads = sampled.sum().backward();
        let grad = values(canvas.grad(&grads).unwrap());
        assert!(grad.iter().all(|g| g.is_finite()) && grad.iter().any(|g| *g != 0.0));
    }

    #[test]
    fn without_colour_jitter_views_only_move_and_hide_pixels() {
        let device = device();
        let canvas = grey(&device);
        let brightest = |colour_jitter| {
            values(views(4, 4, 0.0, colour_jitter, true, &device).sample(canvas.clone(), &mut Rng::new(1))).into_iter().fold(0.0f32, f32::max)
        };
        // Resampling and padding blend the grey with black at most; jitter brightens some views.
        assert!(brightest(false) <= 0.5 + 1e-6, "{}", brightest(false));
        assert!(brightest(true) > 0.55, "{}", brightest(true));
    }

    #[test]
    fn cutout_only_blanks_squares_of_what_the_views_would_see() {
        let device = device();
        let data: Vec<f32> = (0..3 * 16 * 16).map(|i| 0.2 + 0.6 * ((i as f32 * 0.37).sin() * 0.5 + 0.5)).collect();
        let canvas = Tensor::<4>::from_data(TensorData::new(data, [1, 3, 16, 16]), &device);
        // The same draws either way: cutout only decides whether its square is applied.
        let seen = |cutout| values(views(4, 4, 0.0, false, cutout, &device).sample(canvas.clone(), &mut Rng::new(3)));
        let (with, without) = (seen(true), seen(false));
        assert!(with.iter().zip(&without).all(|(w, o)| *w == *o || *w == 0.0));
        let blanked = with.iter().zip(&without).filter(|(w, o)| **w == 0.0 && **o != 0.0).count();
        // Each of 8 views loses up to a quarter of its 3 x 16 x 16 values.
        assert!(blanked > 8 * 3 * 16, "{blanked}");
    }

    #[test]
    fn edge_padding_shows_no_black_past_the_canvas() {
        let device = device();
        let darkest = |edge_padding| {
            let mut views = views(8, 0, 0.0, false, false, &device);
            views.settings.edge_padding = edge_padding;
            values(views.sample(grey(&device), &mut Rng::new(5))).into_iter().fold(1.0f32, f32::min)
        };
        // Eight translations of up to two pixels: some view looks past an edge.
        assert!(darkest(false) < 0.01, "{}", darkest(false));
        assert!((darkest(true) - 0.5).abs() < 1e-5, "{}", darkest(true));
    }
}
