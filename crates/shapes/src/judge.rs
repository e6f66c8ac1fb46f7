//! The judge: reads a picture's background colour, object colour, place, size and shape from
//! its pixels, never from a model that guided a generation. Colours are the nearest named
//! colour; the object's colour is the most frequent one unlike the background, and the
//! object is the largest connected region of that colour (a painting's stray specks of it
//! are not the object); its shape is the template (a clean render's silhouette) it overlaps
//! most.

use super::world::{COLORS, PLACES, Place, SHAPES, Scene, Shape, Size, Object, color_distance as distance, nearest_color as nearest};
use clipag::pixels::Pixels;

/// What the judge sees in a picture.
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    pub background: usize,
    pub color: Option<usize>,
    pub shape: Option<Shape>,
    pub place: Option<Place>,
    pub size: Option<Size>,
}

/// Side of the silhouettes the shape is matched on.
const TEMPLATE: usize = 16;

pub struct Judge {
    /// Per shape: its silhouette, and the extent (largest side of its bounding box, as a
    /// fraction of the image) halfway between its small and large renders.
    templates: Vec<(Shape, Vec<bool>, f32)>,
}

impl Default for Judge {
    fn default() -> Self {
        Self::new()
    }
}

impl Judge {
    pub fn new() -> Self {
        // Every shape alone, centred, white on black, at both sizes: the references.
        let render = |shape, size| {
            let scene = Scene {
                objects: vec![Object { shape, color: 6, size, place: Place { x: 0, y: 0 } }],
                background: 7,
                says_size: true,
                says_place: true,
                says_background: true,
            };
            let image = scene.render(96);
            (0..96 * 96).map(|i| image.data[i] > 0.5).collect::<Vec<bool>>()
        };
        let templates = SHAPES
            .iter()
            .map(|&shape| {
                let large = render(shape, Size::Large);
                let small = render(shape, Size::Small);
                let threshold = (extent(&small, 96) + extent(&large, 96)) / 2.0;
                (shape, silhouette(&large, 96).expect("a drawn shape"), threshold)
            })
            .collect();
        Self { templates }
    }

    pub fn judge(&self, image: &Pixels) -> Verdict {
        let (h, w) = (image.height, image.width);
        let plane = h * w;
        let rgb = |i: usize| [image.data[i], image.data[plane + i], image.data[2 * plane + i]];
        // The background: the median colour of a two-pixel frame.
        let border: Vec<[f32; 3]> = (0..plane)
            .filter(|&i| {
                let (y, x) = (i / w, i % w);
                y < 2 || x < 2 || y + 2 >= h || x + 2 >= w
            })
            .map(rgb)
            .collect();
        let background_rgb = median(&border);
        let background = nearest(background_rgb);
        // The object: pixels clearly unlike the background, named by their nearest colour;
        // the most frequent name is the object's colour.
        let mut counts = [0usize; COLORS.len()];
        let names: Vec<Option<usize>> = (0..plane)
            .map(|i| {
                let c = rgb(i);
                if distance(c, background_rgb) < 0.3 {
                    return None;
                }
                let name = nearest(c);
                (name != background).then(|| {
                    counts[name] += 1;
                    name
                })
            })
            .collect();
        let (color, &count) = counts.iter().enumerate().max_by_key(|(_, n)| **n).expect("colours exist");
        if (count as f32) < 0.01 * plane as f32 {
            return Verdict { background, color: None, shape: None, place: None, size: None };
        }
        let mask = largest_region(&names.iter().map(|n| *n == Some(color)).collect::<Vec<_>>(), w);
        let area = mask.iter().filter(|m| **m).count();
        let (mut sx, mut sy) = (0.0f32, 0.0f32);
        for (i, _) in mask.iter().enumerate().filter(|(_, m)| **m) {
            sx += (i % w) as f32 + 0.5;
            sy += (i / w) as f32 + 0.5;
        }
        let (cx, cy) = (sx / area as f32 / w as f32, sy / area as f32 / h as f32);
        // Places are centred at 0.24, 0.5 and 0.76 of the side.
        let cell = |v: f32| if v < 0.37 { -1 } else if v > 0.63 { 1 } else { 0 };
        let place = PLACES.iter().copied().find(|p| p.x == cell(cx) && p.y == cell(cy));
        let best = silhouette(&mask, w).and_then(|s| {
            self.templates
                .iter()
                .map(|(shape, t, threshold)| (*shape, iou(&s, t), *threshold))
                .max_by(|a, b| a.1.total_cmp(&b.1))
        });
        let shape = best.map(|(shape, _, _)| shape);
        // Size by extent, against the matched shape's own midpoint (a heart is narrower than
        // a square of the same size).
        let size = best.map(|(_, _, threshold)| if extent(&mask, w) < threshold { Size::Small } else { Size::Large });
        Verdict { background, color: Some(color), shape, place, size }
    }
}

/// The larger side of the mask's bounding box, as a fraction of the image side.
fn extent(mask: &[bool], w: usize) -> f32 {
    let on: Vec<(usize, usize)> = (0..mask.len()).filter(|&i| mask[i]).map(|i| (i / w, i % w)).collect();
    let span = |f: fn(&(usize, usize)) -> usize| {
        on.iter().map(f).max().unwrap_or(0) + 1 - on.iter().map(f).min().unwrap_or(0)
    };
    span(|p| p.0).max(span(|p| p.1)) as f32 / w as f32
}

/// The mask's largest 8-connected region (a flood fill: a few lines, where an image-processing
/// crate would add a dependency for one function).
fn largest_region(mask: &[bool], w: usize) -> Vec<bool> {
    let h = mask.len() / w;
    let mut region = vec![0usize; mask.len()];
    let (mut best, mut best_size, mut next) = (0, 0, 0);
    for start in 0..mask.len() {
        if !mask[start] || region[start] != 0 {
            continue;
        }
        next += 1;
        region[start] = next;
        let (mut stack, mut size) = (vec![start], 0);
        while let Some(i) = stack.pop() {
            size += 1;
            let (y, x) = (i / w, i % w);
            for ny in y.saturating_sub(1)..=(y + 1).min(h - 1) {
                for nx in x.saturating_sub(1)..=(x + 1).min(w - 1) {
                    let j = ny * w + nx;
                    if mask[j] && region[j] == 0 {
                        region[j] = next;
                        stack.push(j);
                    }
                }
            }
        }
        if size > best_size {
            (best, best_size) = (next, size);
        }
    }
    region.iter().map(|&r| r == best && best != 0).collect()
}

/// The mask cropped to its bounding box and resampled to TEMPLATE x TEMPLATE.
fn silhouette(mask: &[bool], w: usize) -> Option<Vec<bool>> {
    let h = mask.len() / w;
    let on: Vec<(usize, usize)> = (0..mask.len()).filter(|&i| mask[i]).map(|i| (i / w, i % w)).collect();
    let (y0, y1) = (on.iter().map(|p| p.0).min()?, on.iter().map(|p| p.0).max()?);
    let (x0, x1) = (on.iter().map(|p| p.1).min()?, on.iter().map(|p| p.1).max()?);
    let (bh, bw) = ((y1 - y0 + 1) as f32, (x1 - x0 + 1) as f32);
    let _ = h;
    Some(
        (0..TEMPLATE * TEMPLATE)
            .map(|k| {
                let y = y0 + (((k / TEMPLATE) as f32 + 0.5) / TEMPLATE as f32 * bh) as usize;
                let x = x0 + (((k % TEMPLATE) as f32 + 0.5) / TEMPLATE as f32 * bw) as usize;
                mask[y.min(y1) * w + x.min(x1)]
            })
            .collect(),
    )
}

fn iou(a: &[bool], b: &[bool]) -> f32 {
    let both = a.iter().zip(b).filter(|(x, y)| **x && **y).count();
    let either = a.iter().zip(b).filter(|(x, y)| **x || **y).count();
    both as f32 / either.max(1) as f32
}

fn median(colors: &[[f32; 3]]) -> [f32; 3] {
    let mut out = [0.0; 3];
    for (c, slot) in out.iter_mut().enumerate() {
        let mut v: Vec<f32> = colors.iter().map(|p| p[c]).collect();
        v.sort_by(f32::total_cmp);
        *slot = v[v.len() / 2];
    }
    out
}
