//! Strokes: the canvas as N cubic Bézier curves, each with a width, a colour and an opacity,
//! over a background colour: CLIPDraw's parameterisation (Frans, Soros and Witkowski 2021),
//! which the paper's notebooks drive with a robust CLIP. The curves are rasterised with
//! tensor ops, so the views, objective and update that paint pixels paint strokes too, on
//! WebGPU and natively alike.
//!
//! Rasterising: each pixel's coverage by a stroke is a one-pixel linear ramp of its distance
//! to the curve (what an antialiasing rasteriser's area coverage is across a straight edge),
//! times the stroke's opacity; strokes are composited over the background in order ("over").
//! The distance is to the curve point at the parameter `t*` nearest the pixel, `t*` found
//! (with no gradient) on a 16-segment polyline of the curve; the gradient then reaches the
//! control points through the Bernstein weights at `t*` (at the nearest point the distance
//! does not change with `t`, so holding `t*` still is the derivative's first order).
//! Compositing is closed-form, so every stroke is one row of a batched tensor: each stroke's
//! visible share is its alpha times the product of `1 - alpha` of the strokes above it, a sum
//! of logarithms that a triangular matrix product forms for all strokes at once.
//!
//! The parameters are one tensor `[1, 1, 1 + N, 13]`: row 0 the background colour, then a
//! row per stroke (`x0 y0 x1 y1 x2 y2 x3 y3 width r g b a`, positions and width in canvas
//! units). Each column is scaled so that the step an update takes at the paper's learning
//! rate is CLIPDraw's for its group (points 1 px, width 0.1 px of a 224-pixel canvas, colour
//! 0.01): CLIPDraw's per-group learning rates, under one optimiser.

use burn::tensor::{Device, Tensor, TensorData};

use super::optimise::DEFAULT_LR;
use crate::rng::Rng;

/// Columns of a stroke's row: 4 control points, the width, RGBA.
pub const FEATURES: usize = 13;
const WIDTH: usize = 8;
const COLOUR: usize = 9;
const OPACITY: usize = 12;
/// Segments of the polyline on which each pixel's nearest curve parameter is sought.
const SEGMENTS: usize = 16;
/// CLIPDraw's canvas, on which its learning rates and widths are in pixels.
const CLIPDRAW_SIZE: f32 = 224.0;
/// An alpha of exactly 1 would make the compositing's logarithm infinite.
const MAX_ALPHA: f32 = 0.9999;

/// The strokes a canvas is made of, and how they become pixels.
pub struct Strokes {
    count: usize,
    size: usize,
    /// Per column, value = parameter * scale + offset, then clamped to [min, max];
    /// `[1 + N, 13]` each, so the clamp needs no broadcasting.
    scale: Tensor<2>,
    offset: Tensor<2>,
    min: Tensor<2>,
    max: Tensor<2>,
    /// Pixel centres in canvas units, `[1, size * size]`, row by row.
    px: Tensor<2>,
    py: Tensor<2>,
    /// `[N, N]`, 1 where the column's stroke is drawn after (above) the row's.
    above: Tensor<2>,
    /// The cubic Bernstein weights at the polyline's vertices, `[4, SEGMENTS + 1]`.
    vertices: Tensor<2>,
}

/// A column's group: its scale (the value's step per unit of an update at the paper's rate),
/// offset (where weight decay pulls it) and bounds.
fn column(c: usize, size: usize) -> (f32, f32, f32, f32) {
    let pixel = 1.0 / size as f32;
    match c {
        // Points may wander a little off the canvas (a curve's tail can leave it), no further.
        0..WIDTH => (1.0 / CLIPDRAW_SIZE / DEFAULT_LR, 0.5, -0.5, 1.5),
        // CLIPDraw's widths: 1 pixel to 50 pixels of 224.
        WIDTH => (0.1 / CLIPDRAW_SIZE / DEFAULT_LR, 0.0, pixel, 50.0 / CLIPDRAW_SIZE),
        _ => (0.01 / DEFAULT_LR, 0.0, 0.0, 1.0),
    }
}

impl Strokes {
    pub fn new(count: usize, size: usize, device: &Device) -> Self {
        let rows = 1 + count;
        let table = |pick: fn((f32, f32, f32, f32)) -> f32| {
            let data: Vec<f32> = (0..rows * FEATURES).map(|i| pick(column(i % FEATURES, size))).collect();
            Tensor::<2>::from_data(TensorData::new(data, [rows, FEATURES]), device)
        };
        let centres = |across: bool| {
            let data: Vec<f32> = (0..size * size).map(|i| ((if across { i % size } else { i / size }) as f32 + 0.5) / size as f32).collect();
            Tensor::<2>::from_data(TensorData::new(data, [1, size * size]), device)
        };
        let above: Vec<f32> = (0..count * count).map(|i| f32::from(i % count > i / count)).collect();
        let vertices: Vec<f32> = (0..4)
            .flat_map(|k| (0..=SEGMENTS).map(move |j| bernstein(k, j as f32 / SEGMENTS as f32)))
            .collect();
        Self {
            count,
            size,
            scale: table(|c| c.0),
            offset: table(|c| c.1),
            min: table(|c| c.2),
            max: table(|c| c.3),
            px: centres(true),
            py: centres(false),
            above: Tensor::from_data(TensorData::new(above, [count, count]), device),
            vertices: Tensor::from_data(TensorData::new(vertices, [4, SEGMENTS + 1]), device),
        }
    }

    /// The strokes' values (`[1 + N, 13]`, clamped to their limits) from parameters.
    pub fn values(&self, params: Tensor<4>) -> Tensor<2> {
        let rows = params.dims()[2];
        let values = params.reshape([rows, FEATURES]) * self.scale.clone() + self.offset.clone();
        values.max_pair(self.min.clone()).min_pair(self.max.clone())
    }

    /// Parameters kept within the strokes' limits (after an update).
    pub fn project(&self, params: Tensor<4>) -> Tensor<4> {
        let shape = params.dims();
        ((self.values(params) - self.offset.clone()) / self.scale.clone()).reshape(shape)
    }

    /// Parameters for values `[1 + N, 13]` given on the host.
    pub fn params_for(&self, values: &[f32], device: &Device) -> Tensor<4> {
        let values = Tensor::<2>::from_data(TensorData::new(values.to_vec(), [1 + self.count, FEATURES]), device);
        ((values - self.offset.clone()) / self.scale.clone()).reshape([1, 1, 1 + self.count, FEATURES])
    }

    /// CLIPDraw's start: each curve's first point anywhere, each next within 0.05 of the last
    /// on either axis, 1 pixel wide, of a random colour and opacity, over white.
    pub fn random(&self, rng: &mut Rng, device: &Device) -> Tensor<4> {
        let mut values = vec![0.0f32; (1 + self.count) * FEATURES];
        values[COLOUR..COLOUR + 3].fill(1.0);
        for row in values.chunks_mut(FEATURES).skip(1) {
            let (mut x, mut y) = (rng.uniform(), rng.uniform());
            for point in 0..4 {
                if point > 0 {
                    x += 0.1 * (rng.uniform() - 0.5);
                    y += 0.1 * (rng.uniform() - 0.5);
                }
                row[2 * point] = x;
                row[2 * point + 1] = y;
            }
            row[WIDTH] = 1.0 / self.size as f32;
            for c in COLOUR..=OPACITY {
                row[c] = rng.uniform();
            }
        }
        self.params_for(&values, device)
    }

    /// The strokes' pixels, `[1, 3, size, size]` (differentiable in the parameters).
    pub fn render(&self, params: Tensor<4>) -> Tensor<4> {
        let (n, s) = (self.count, self.size);
        let values = self.values(params);
        let background = values.clone().narrow(0, 0, 1).narrow(1, COLOUR, 3); // [1, 3]
        let strokes = values.narrow(0, 1, n);
        let points = strokes.clone().narrow(1, 0, WIDTH).reshape([n, 4, 2]);
        let xs: Tensor<2> = points.clone().narrow(2, 0, 1).squeeze_dim(2); // [n, 4]
        let ys: Tensor<2> = points.narrow(2, 1, 1).squeeze_dim(2);
        let t = self.nearest_parameter(xs.clone().detach(), ys.clone().detach()); // [n, s*s]

        // The curve's point at t, through the Bernstein weights (held still).
        let u = t.clone().neg() + 1.0;
        let weights = [u.clone().powi_scalar(3), u.clone().square() * t.clone() * 3.0, u * t.clone().square() * 3.0, t.powi_scalar(3)];
        let at = |coords: &Tensor<2>| {
            weights.iter().enumerate().map(|(k, w)| w.clone() * coords.clone().narrow(1, k, 1)).reduce(|a, b| a + b).expect("four weights")
        };
        let (dx, dy) = (self.px.clone() - at(&xs), self.py.clone() - at(&ys));
        let distance = (dx.square() + dy.square() + 1e-12).sqrt(); // [n, s*s]

        let half_width = strokes.clone().narrow(1, WIDTH, 1) / 2.0;
        let coverage = ((half_width - distance) * s as f32 + 0.5).clamp(0.0, 1.0);
        let alpha = (coverage * strokes.clone().narrow(1, OPACITY, 1)).clamp_max(MAX_ALPHA);
        // log of each stroke's transmittance; a stroke's visible share is its alpha times the
        // transmittance of every stroke above it.
        let clear = (alpha.clone().neg() + 1.0).log();
        let visible = alpha * self.above.clone().matmul(clear.clone()).exp();
        let colours = strokes.narrow(1, COLOUR, 3).transpose(); // [3, n]
        let behind = clear.sum_dim(0).exp(); // [1, s*s]: what the background shows through
        let pixels = colours.matmul(visible) + background.transpose() * behind;
        pixels.reshape([1, 3, s, s])
    }

    /// For each stroke and pixel, the curve parameter of the nearest point on the curve's
    /// polyline, `[n, s*s]`; computed off the autodiff graph.
    fn nearest_parameter(&self, xs: Tensor<2>, ys: Tensor<2>) -> Tensor<2> {
        let (qx, qy) = (xs.clone().matmul(self.vertices.clone()), ys.clone().matmul(self.vertices.clone())); // [n, SEGMENTS + 1]
        let (px, py) = (self.px.clone(), self.py.clone());
        let mut best: Option<(Tensor<2>, Tensor<2>)> = None;
        for k in 0..SEGMENTS {
            let (ax, ay) = (qx.clone().narrow(1, k, 1), qy.clone().narrow(1, k, 1));
            let (abx, aby) = (qx.clone().narrow(1, k + 1, 1) - ax.clone(), qy.clone().narrow(1, k + 1, 1) - ay.clone());
            let length = abx.clone().square() + aby.clone().square() + 1e-12;
            let (apx, apy) = (px.clone() - ax, py.clone() - ay);
            let along = ((apx.clone() * abx.clone() + apy.clone() * aby.clone()) / length).clamp(0.0, 1.0);
            let distance = (apx - along.clone() * abx).square() + (apy - along.clone() * aby).square();
            let t = (along + k as f32) / SEGMENTS as f32;
            best = Some(match best {
                None => (distance, t),
                Some((nearest, at)) => {
                    let closer = distance.clone().lower(nearest.clone());
                    (nearest.mask_where(closer.clone(), distance), at.mask_where(closer, t))
                }
            });
        }
        let t = best.expect("at least one segment").1;
        // One Newton step toward the true curve's nearest point, from the polyline's: the
        // root of (B(t) - p) . B'(t), kept in [0, 1] and skipped where the curve bends away.
        let coefficient = |c: &Tensor<2>, k: usize| c.clone().narrow(1, k, 1);
        let (u, t2) = (t.clone().neg() + 1.0, t.clone().square());
        let axis = |c: &Tensor<2>, p: &Tensor<2>| {
            let [p0, p1, p2, p3] = [0, 1, 2, 3].map(|k| coefficient(c, k));
            let at = u.clone().powi_scalar(3) * p0.clone() + u.clone().square() * t.clone() * p1.clone() * 3.0
                + u.clone() * t2.clone() * p2.clone() * 3.0 + t.clone().powi_scalar(3) * p3.clone();
            let first = (u.clone().square() * (p1.clone() - p0.clone()) + u.clone() * t.clone() * (p2.clone() - p1.clone()) * 2.0
                + t2.clone() * (p3.clone() - p2.clone())) * 3.0;
            let second = (u.clone() * (p2.clone() - p1.clone() * 2.0 + p0) + t.clone() * (p3 - p2 * 2.0 + p1)) * 6.0;
            let off = at - p.clone();
            (off.clone() * first.clone(), first.square() + off * second)
        };
        let (slope_x, bend_x) = axis(&xs, &px);
        let (slope_y, bend_y) = axis(&ys, &py);
        let (slope, bend) = (slope_x + slope_y, bend_x + bend_y);
        let step = slope / bend.clone().clamp_min(1e-12);
        (t.clone() - step).clamp(0.0, 1.0).mask_where(bend.lower_equal_elem(1e-12), t)
    }

    /// The strokes (`values`, `[1 + N, 13]` as `values` gives them, read back) as an SVG
    /// document of the canvas's size: what `render` paints, for any SVG renderer.
    pub fn svg(&self, values: &[f32]) -> String {
        let s = self.size as f32;
        let hex = |rgb: &[f32]| rgb.iter().map(|c| format!("{:02x}", (c.clamp(0.0, 1.0) * 255.0).round() as u8)).collect::<String>();
        let mut svg = format!(
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{0}\" height=\"{0}\" viewBox=\"0 0 {0} {0}\">\n<rect width=\"{0}\" height=\"{0}\" fill=\"#{1}\"/>\n",
            self.size,
            hex(&values[COLOUR..COLOUR + 3])
        );
        for row in values.chunks(FEATURES).skip(1) {
            let p: Vec<String> = row[..WIDTH].iter().map(|v| format!("{:.3}", v * s)).collect();
            svg += &format!(
                "<path d=\"M{} {}C{} {} {} {} {} {}\" fill=\"none\" stroke=\"#{}\" stroke-opacity=\"{:.4}\" stroke-width=\"{:.3}\" stroke-linecap=\"round\"/>\n",
                p[0], p[1], p[2], p[3], p[4], p[5], p[6], p[7],
                hex(&row[COLOUR..COLOUR + 3]),
                row[OPACITY],
                row[WIDTH] * s
            );
        }
        svg + "</svg>\n"
    }
}

/// The cubic Bernstein polynomial `k` at `t`.
fn bernstein(k: usize, t: f32) -> f32 {
    let u = 1.0 - t;
    match k {
        0 => u * u * u,
        1 => 3.0 * u * u * t,
        2 => 3.0 * u * t * t,
        _ => t * t * t,
    }
}

#[cfg(test)]
mod tests {
    use burn::tensor::{Device, Tensor};

    use super::{COLOUR, FEATURES, OPACITY, Strokes, WIDTH};
    use crate::rng::Rng;

    fn read<const D: usize>(t: Tensor<D>) -> Vec<f32> {
        t.into_data().try_to_vec_as::<f32>().unwrap()
    }

    /// Values for `count` strokes: curves across the canvas, 1 to 6 pixels wide, of random
    /// colours and opacities, over a random background.
    fn some_strokes(count: usize, size: usize, rng: &mut Rng) -> Vec<f32> {
        let mut values = vec![0.0f32; (1 + count) * FEATURES];
        for row in values.chunks_mut(FEATURES).skip(1) {
            for v in &mut row[..WIDTH] {
                *v = rng.range(0.1, 0.9);
            }
            row[WIDTH] = rng.range(1.0, 6.0) / size as f32;
            for c in COLOUR..=OPACITY {
                row[c] = rng.range(0.2, 1.0);
            }
        }
        for c in COLOUR..COLOUR + 3 {
            values[c] = rng.uniform();
        }
        values
    }

    #[test]
    fn the_rasteriser_s_gradient_is_its_finite_difference() {
        let (size, count) = (24, 3);
        let device = Device::flex().autodiff();
        let strokes = Strokes::new(count, size, &device);
        let mut rng = Rng::new(7);
        let values = some_strokes(count, size, &mut rng);
        let base = read(strokes.params_for(&values, &device));
        // A smooth function of the pixels: their sum against fixed random weights.
        let weights: Vec<f32> = (0..3 * size * size).map(|_| rng.range(-1.0, 1.0)).collect();
        let weights = Tensor::<4>::from_data(burn::tensor::TensorData::new(weights, [1, 3, size, size]), &device);
        let params = |p: &[f32]| Tensor::<4>::from_data(burn::tensor::TensorData::new(p.to_vec(), [1, 1, 1 + count, FEATURES]), &device);
        let loss = |p: Tensor<4>| (strokes.render(p) * weights.clone()).sum();

        let x = params(&base).require_grad();
        let grad = read(x.grad(&loss(x.clone()).backward()).unwrap());
        let h = 2e-3;
        // Every parameter a stroke uses, and the background's colour.
        let checked: Vec<usize> = (COLOUR..COLOUR + 3).chain(FEATURES..(1 + count) * FEATURES).collect();
        let (mut analytic, mut numeric) = (Vec::new(), Vec::new());
        for &i in &checked {
            let (mut up, mut down) = (base.clone(), base.clone());
            up[i] += h;
            down[i] -= h;
            let difference = (read(loss(params(&up)))[0] - read(loss(params(&down)))[0]) / (2.0 * h);
            analytic.push(grad[i]);
            numeric.push(difference);
        }
        let largest = numeric.iter().fold(0f32, |m, v| m.max(v.abs()));
        let worst = analytic.iter().zip(&numeric).map(|(a, n)| (a - n).abs()).fold(0f32, f32::max);
        let dot: f32 = analytic.iter().zip(&numeric).map(|(a, n)| a * n).sum();
        let norms = analytic.iter().map(|a| a * a).sum::<f32>().sqrt() * numeric.iter().map(|n| n * n).sum::<f32>().sqrt();
        eprintln!("largest {largest}, worst difference {worst}, cosine {}", dot / norms);
        for ((i, a), n) in checked.iter().zip(&analytic).zip(&numeric) {
            eprintln!("column {:2}: autodiff {a:9.4}, finite difference {n:9.4}", i % FEATURES);
        }
        // The coverage ramp's corners and the nearest-point search (held still in the
        // gradient) make a finite difference that straddles them a little off.
        for ((i, a), n) in checked.iter().zip(&analytic).zip(&numeric) {
            assert!((a - n).abs() <= 0.05 * largest, "parameter {} (column {}): autodiff {a}, finite difference {n}", i, i % FEATURES);
        }
        assert!(dot / norms > 0.999, "cosine {}", dot / norms);
    }

    #[test]
    fn the_svg_rendered_by_resvg_is_the_rasterised_picture() {
        let size = 64;
        let device = Device::flex();
        let strokes = Strokes::new(40, size, &device);
        let values = some_strokes(40, size, &mut Rng::new(3));
        let ours = read(strokes.render(strokes.params_for(&values, &device)));
        let svg = strokes.svg(&values);

        let tree = resvg::usvg::Tree::from_str(&svg, &resvg::usvg::Options::default()).unwrap();
        let mut pixmap = resvg::tiny_skia::Pixmap::new(size as u32, size as u32).unwrap();
        resvg::render(&tree, resvg::tiny_skia::Transform::default(), &mut pixmap.as_mut());
        let n = size * size;
        let theirs: Vec<f32> = (0..3 * n).map(|i| pixmap.data()[4 * (i % n) + i / n] as f32 / 255.0).collect();
        let mean = ours.iter().zip(&theirs).map(|(a, b)| (a - b).abs()).sum::<f32>() / ours.len() as f32;
        let mut sorted: Vec<f32> = ours.iter().zip(&theirs).map(|(a, b)| (a - b).abs()).collect();
        sorted.sort_by(f32::total_cmp);
        eprintln!("mean absolute difference {mean}, 99th percentile {}, largest {}", sorted[sorted.len() * 99 / 100], sorted[sorted.len() - 1]);
        assert!(mean < 0.01, "mean absolute difference {mean}");
    }

    #[test]
    fn projected_strokes_stay_within_their_limits() {
        let (size, count) = (16, 4);
        let device = Device::flex();
        let strokes = Strokes::new(count, size, &device);
        let wild: Vec<f32> = (0..(1 + count) * FEATURES).map(|i| if i % 2 == 0 { 1e3 } else { -1e3 }).collect();
        let params = Tensor::<4>::from_data(burn::tensor::TensorData::new(wild, [1, 1, 1 + count, FEATURES]), &device);
        let values = read(strokes.values(strokes.project(params)));
        for row in values.chunks(FEATURES).skip(1) {
            assert!(row[..WIDTH].iter().all(|v| (-0.5..=1.5).contains(v)), "{row:?}");
            assert!(row[WIDTH] >= 1.0 / size as f32 - 1e-6 && row[WIDTH] <= 50.0 / 224.0 + 1e-6, "{row:?}");
            assert!(row[COLOUR..=OPACITY].iter().all(|v| (0.0..=1.0).contains(v)), "{row:?}");
        }
        let pixels = read(strokes.render(strokes.project(strokes.random(&mut Rng::new(1), &device))));
        assert!(pixels.iter().all(|v| v.is_finite() && (0.0..=1.0 + 1e-5).contains(v)));
    }
}
