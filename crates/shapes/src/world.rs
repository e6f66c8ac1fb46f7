//! The synthetic world of captioned pictures the Shapes models learn from: one or two
//! coloured shapes, each of a size and at a place, on a coloured background, described by a
//! small grammar ("a small red star at the top left on a blue background", "two green
//! circles"). Drawn with tiny-skia (anti-aliased), deterministically from a seed.
//! (Over 400 lines because it is the world's whole specification: its vocabulary, grammar,
//! held-out combinations and drawing, which must agree with each other.)

use tiny_skia::{Color, FillRule, Paint, PathBuilder, Pixmap, Transform};

use clipag::pixels::Pixels;
use clipag::rng::Rng;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Shape {
    Circle,
    Square,
    Triangle,
    Star,
    Heart,
}

pub const SHAPES: [Shape; 5] = [Shape::Circle, Shape::Square, Shape::Triangle, Shape::Star, Shape::Heart];

impl Shape {
    pub fn name(self) -> &'static str {
        match self {
            Shape::Circle => "circle",
            Shape::Square => "square",
            Shape::Triangle => "triangle",
            Shape::Star => "star",
            Shape::Heart => "heart",
        }
    }

    fn plural(self) -> &'static str {
        match self {
            Shape::Circle => "circles",
            Shape::Square => "squares",
            Shape::Triangle => "triangles",
            Shape::Star => "stars",
            Shape::Heart => "hearts",
        }
    }
}

/// The named colours, as drawn. Chosen far apart, so that a colour is a fact, not a judgement.
pub const COLORS: [(&str, [u8; 3]); 8] = [
    ("red", [220, 30, 30]),
    ("green", [30, 160, 50]),
    ("blue", [30, 70, 220]),
    ("yellow", [245, 215, 30]),
    ("orange", [245, 130, 20]),
    ("purple", [135, 45, 185]),
    ("white", [245, 245, 245]),
    ("black", [20, 20, 20]),
];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Size {
    Small,
    Large,
}

pub const SIZES: [Size; 2] = [Size::Small, Size::Large];

impl Size {
    pub fn name(self) -> &'static str {
        match self {
            Size::Small => "small",
            Size::Large => "large",
        }
    }

    /// Radius as a fraction of the image side.
    pub fn radius(self) -> f32 {
        match self {
            Size::Small => 0.12,
            Size::Large => 0.21,
        }
    }
}

/// Where an object sits: a 3 x 3 grid of places.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Place {
    /// -1 left, 0 centre, 1 right.
    pub x: i8,
    /// -1 top, 0 centre, 1 bottom.
    pub y: i8,
}

pub const PLACES: [Place; 9] = [
    Place { x: 0, y: 0 },
    Place { x: -1, y: 0 },
    Place { x: 1, y: 0 },
    Place { x: 0, y: -1 },
    Place { x: 0, y: 1 },
    Place { x: -1, y: -1 },
    Place { x: 1, y: -1 },
    Place { x: -1, y: 1 },
    Place { x: 1, y: 1 },
];

impl Place {
    pub fn phrase(self) -> &'static str {
        match (self.x, self.y) {
            (0, 0) => "in the centre",
            (-1, 0) => "on the left",
            (1, 0) => "on the right",
            (0, -1) => "at the top",
            (0, 1) => "at the bottom",
            (-1, -1) => "at the top left",
            (1, -1) => "at the top right",
            (-1, 1) => "at the bottom left",
            _ => "at the bottom right",
        }
    }

    /// Centre in [0, 1] image coordinates.
    pub fn center(self) -> (f32, f32) {
        (0.5 + 0.26 * self.x as f32, 0.5 + 0.26 * self.y as f32)
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Object {
    pub shape: Shape,
    /// Index into `COLORS`.
    pub color: usize,
    pub size: Size,
    pub place: Place,
}

/// A picture and the words that describe it.
#[derive(Debug, Clone, PartialEq)]
pub struct Scene {
    pub objects: Vec<Object>,
    /// Index into `COLORS`.
    pub background: usize,
    /// Which attributes the caption mentions (the picture has them all).
    pub says_size: bool,
    pub says_place: bool,
    pub says_background: bool,
}

/// Attribute combinations kept out of training, so that evaluation asks for pictures the
/// models never saw: five (colour, shape) pairs and four (colour, background) pairs.
pub const HELD_OUT_COLOR_SHAPE: [(usize, Shape); 5] =
    [(5, Shape::Star), (3, Shape::Triangle), (1, Shape::Heart), (0, Shape::Square), (2, Shape::Circle)];
pub const HELD_OUT_COLOR_BACKGROUND: [(usize, usize); 4] = [(0, 2), (3, 7), (6, 1), (4, 5)];

impl Object {
    pub fn held_out(&self, background: usize) -> bool {
        HELD_OUT_COLOR_SHAPE.contains(&(self.color, self.shape))
            || HELD_OUT_COLOR_BACKGROUND.contains(&(self.color, background))
    }
}

impl Scene {
    /// A random scene; `held_out` picks scenes made only of held-out combinations (for
    /// evaluation) or none of them (for training).
    pub fn random(rng: &mut Rng, held_out: bool) -> Self {
        loop {
            let scene = Self::any(rng);
            let any_held = scene.objects.iter().any(|o| o.held_out(scene.background));
            let all_held = scene.objects.iter().all(|o| o.held_out(scene.background));
            if (held_out && all_held && scene.objects.len() == 1) || (!held_out && !any_held) {
                return scene;
            }
        }
    }

    /// A minimal pair for training: a random scene and a copy with one attribute of one
    /// object drawn again (shape, size or place; a shape when there are two objects), both
    /// captioned so that the difference is said. A batch of random scenes rarely holds two
    /// pictures alike but for a shape or a place, so it rarely asks the model which one a
    /// caption means; a pair asks it every time (hard negatives, as NegCLIP, Yuksekgonul et
    /// al. 2023, makes them from captions), and an attack on one half is pushed toward the
    /// other half's caption.
    pub fn minimal_pair(rng: &mut Rng) -> (Self, Self) {
        loop {
            let mut first = Self::random(rng, false);
            let mut second = first.clone();
            if let [object] = second.objects.as_mut_slice() {
                match pick(rng, 3) {
                    0 => object.shape = SHAPES[pick(rng, SHAPES.len())],
                    1 => {
                        object.size = if object.size == Size::Small { Size::Large } else { Size::Small };
                        (first.says_size, second.says_size) = (true, true);
                    }
                    _ => {
                        object.place = PLACES[pick(rng, PLACES.len())];
                        (first.says_place, second.says_place) = (true, true);
                    }
                }
            } else {
                second.objects[1].shape = SHAPES[pick(rng, SHAPES.len())];
            }
            let held_out = second.objects.iter().any(|o| o.held_out(second.background));
            if second != first && !held_out {
                return (first, second);
            }
        }
    }

    fn any(rng: &mut Rng) -> Self {
        let background = pick(rng, COLORS.len());
        let other_color = |rng: &mut Rng| loop {
            let c = pick(rng, COLORS.len());
            if c != background {
                return c;
            }
        };
        let count = if rng.uniform() < 0.75 { 1 } else { 2 };
        let mut objects = Vec::with_capacity(count);
        if count == 1 {
            objects.push(Object {
                shape: SHAPES[pick(rng, SHAPES.len())],
                color: other_color(rng),
                size: SIZES[pick(rng, SIZES.len())],
                place: PLACES[pick(rng, PLACES.len())],
            });
        } else {
            // Two objects side by side (left and right), or two alike ("two green circles").
            let same = rng.uniform() < 0.5;
            let first = Object { shape: SHAPES[pick(rng, SHAPES.len())], color: other_color(rng), size: Size::Small, place: Place { x: -1, y: 0 } };
            let second = if same {
                Object { place: Place { x: 1, y: 0 }, ..first }
            } else {
                Object { shape: SHAPES[pick(rng, SHAPES.len())], color: other_color(rng), size: Size::Small, place: Place { x: 1, y: 0 } }
            };
            objects.extend([first, second]);
        }
        let single = objects.len() == 1;
        Self {
            objects,
            background,
            says_size: single && rng.uniform() < 0.6,
            says_place: single && rng.uniform() < 0.6,
            says_background: rng.uniform() < 0.8,
        }
    }

    /// Whether this picture fits `described`'s caption: the same objects, and every attribute
    /// that caption mentions. A picture fits many captions ("a red star" fits every red
    /// star), which training counts as matches rather than as mistakes.
    pub fn fits(&self, described: &Scene) -> bool {
        self.objects.len() == described.objects.len()
            && self.objects.iter().zip(&described.objects).all(|(a, b)| {
                a.shape == b.shape
                    && a.color == b.color
                    && (!described.says_size || a.size == b.size)
                    && (!described.says_place || a.place == b.place)
            })
            && (!described.says_background || self.background == described.background)
    }

    pub fn caption(&self) -> String {
        let background = if self.says_background { format!(" on a {} background", COLORS[self.background].0) } else { String::new() };
        match self.objects.as_slice() {
            [o] => {
                let size = if self.says_size { format!("{} ", o.size.name()) } else { String::new() };
                let place = if self.says_place { format!(" {}", o.place.phrase()) } else { String::new() };
                format!("a {size}{} {}{place}{background}", COLORS[o.color].0, o.shape.name())
            }
            [a, b] if a.shape == b.shape && a.color == b.color => {
                format!("two {} {}{background}", COLORS[a.color].0, a.shape.plural())
            }
            [a, b] => format!(
                "a {} {} and a {} {}{background}",
                COLORS[a.color].0,
                a.shape.name(),
                COLORS[b.color].0,
                b.shape.name()
            ),
            _ => unreachable!("scenes hold one or two objects"),
        }
    }

    /// The picture, `size` pixels a side, in the named colours exactly.
    pub fn render(&self, size: usize) -> Pixels {
        self.render_in(size, &self.colors().map(|c| COLORS[c].1).collect::<Vec<_>>())
    }

    /// The picture with each colour drawn as a random shade of its name (see `shade`): the
    /// background and every object up to `spread`/255 off its named colour in each channel.
    pub fn render_shaded(&self, size: usize, spread: u8, rng: &mut Rng) -> Pixels {
        self.render_in(size, &self.colors().map(|c| shade(c, spread, rng)).collect::<Vec<_>>())
    }

    /// The picture's colours (indices into `COLORS`): the background's, then each object's.
    fn colors(&self) -> impl Iterator<Item = usize> + '_ {
        std::iter::once(self.background).chain(self.objects.iter().map(|o| o.color))
    }

    /// The picture in the given colours: the background's first, then each object's.
    fn render_in(&self, size: usize, colours: &[[u8; 3]]) -> Pixels {
        let mut pixmap = Pixmap::new(size as u32, size as u32).expect("a non-empty image");
        let [r, g, b] = colours[0];
        pixmap.fill(Color::from_rgba8(r, g, b, 255));
        for (object, &rgb) in self.objects.iter().zip(&colours[1..]) {
            draw(&mut pixmap, object, rgb, size as f32);
        }
        let plane = size * size;
        let mut data = vec![0.0; 3 * plane];
        for (i, p) in pixmap.pixels().iter().enumerate() {
            // Fully opaque, so premultiplied equals straight colour.
            data[i] = p.red() as f32 / 255.0;
            data[plane + i] = p.green() as f32 / 255.0;
            data[2 * plane + i] = p.blue() as f32 / 255.0;
        }
        Pixels { height: size, width: size, data }
    }
}

fn draw(pixmap: &mut Pixmap, object: &Object, [red, green, blue]: [u8; 3], side: f32) {
    let (cx, cy) = object.place.center();
    let (cx, cy, r) = (cx * side, cy * side, object.size.radius() * side);
    let mut pb = PathBuilder::new();
    match object.shape {
        Shape::Circle => pb.push_circle(cx, cy, r),
        Shape::Square => {
            let h = r * 0.85;
            pb.move_to(cx - h, cy - h);
            pb.line_to(cx + h, cy - h);
            pb.line_to(cx + h, cy + h);
            pb.line_to(cx - h, cy + h);
            pb.close();
        }
        Shape::Triangle => {
            pb.move_to(cx, cy - r);
            pb.line_to(cx + r * 0.95, cy + r * 0.75);
            pb.line_to(cx - r * 0.95, cy + r * 0.75);
            pb.close();
        }
        Shape::Star => {
            for k in 0..10 {
                let radius = if k % 2 == 0 { r } else { r * 0.42 };
                let angle = -std::f32::consts::FRAC_PI_2 + k as f32 * std::f32::consts::PI / 5.0;
                let (x, y) = (cx + radius * angle.cos(), cy + radius * angle.sin());
                if k == 0 { pb.move_to(x, y) } else { pb.line_to(x, y) }
            }
            pb.close();
        }
        Shape::Heart => {
            pb.move_to(cx, cy + r * 0.9);
            pb.cubic_to(cx - r * 1.3, cy + r * 0.05, cx - r * 0.85, cy - r * 1.05, cx, cy - r * 0.45);
            pb.cubic_to(cx + r * 0.85, cy - r * 1.05, cx + r * 1.3, cy + r * 0.05, cx, cy + r * 0.9);
            pb.close();
        }
    }
    let path = pb.finish().expect("a closed shape");
    let mut paint = Paint::default();
    paint.set_color_rgba8(red, green, blue, 255);
    paint.anti_alias = true;
    pixmap.fill_path(&path, &paint, FillRule::Winding, Transform::identity(), None);
}

/// The named colour nearest to `rgb` (channels 0 to 1): what a colour's name means, for the
/// judge and for the shades the world draws.
pub fn nearest_color(rgb: [f32; 3]) -> usize {
    COLORS
        .iter()
        .enumerate()
        .map(|(i, (_, named))| (i, color_distance(rgb, named.map(|v| v as f32 / 255.0))))
        .min_by(|a, b| a.1.total_cmp(&b.1))
        .map(|(i, _)| i)
        .expect("colours exist")
}

/// Euclidean distance between two colours (channels 0 to 1).
pub fn color_distance(a: [f32; 3], b: [f32; 3]) -> f32 {
    ((a[0] - b[0]).powi(2) + (a[1] - b[1]).powi(2) + (a[2] - b[2]).powi(2)).sqrt()
}

/// A random shade of named colour `color`: each channel moved uniformly by up to `spread`
/// (in 1/255), drawn again until the colour's nearest name is still its own. A world drawn in
/// exact named colours never shows the model anything between them, so what it makes of an
/// olive or a lime is arbitrary, and gradient ascent paints just such colours; shades teach it
/// where one name ends and the next begins, the boundaries the judge reads by.
pub fn shade(color: usize, spread: u8, rng: &mut Rng) -> [u8; 3] {
    let named = COLORS[color].1;
    if spread == 0 {
        // No draws: a world without shades stays the one earlier runs were trained on.
        return named;
    }
    loop {
        let rgb = named.map(|v| (v as i64 + rng.int(-(spread as i64), spread as i64)).clamp(0, 255) as u8);
        if nearest_color(rgb.map(|v| v as f32 / 255.0)) == color {
            return rgb;
        }
    }
}

/// A uniform index below `n`.
fn pick(rng: &mut Rng, n: usize) -> usize {
    rng.int(0, n as i64 - 1) as usize
}

/// Every word a caption can use: the Shapes tokenizer's vocabulary.
pub fn vocabulary() -> Vec<String> {
    let mut words: Vec<String> = ["a", "two", "and", "on", "background", "in", "the", "at", "centre", "left", "right", "top", "bottom"]
        .iter()
        .map(|w| w.to_string())
        .collect();
    words.extend(COLORS.iter().map(|(name, _)| name.to_string()));
    words.extend(SIZES.iter().map(|s| s.name().to_string()));
    words.extend(SHAPES.iter().flat_map(|s| [s.name().to_string(), s.plural().to_string()]));
    words
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shades_keep_their_name_and_vary() {
        let mut rng = Rng::new(5);
        for color in 0..COLORS.len() {
            let shades: Vec<[u8; 3]> = (0..200).map(|_| shade(color, 64, &mut rng)).collect();
            assert!(shades.iter().all(|s| nearest_color(s.map(|v| v as f32 / 255.0)) == color), "{}", COLORS[color].0);
            let off = shades.iter().filter(|s| **s != COLORS[color].1).count();
            assert!(off > 190, "{}: {off} of 200 shades differ from the named colour", COLORS[color].0);
            assert!(shades.iter().all(|s| (0..3).all(|c| (s[c] as i32 - COLORS[color].1[c] as i32).abs() <= 64)));
        }
        assert_eq!(shade(3, 0, &mut rng), COLORS[3].1);
    }

    #[test]
    fn a_shaded_render_moves_only_the_colours() {
        let scene = Scene::random(&mut Rng::new(2), false);
        let (exact, shaded) = (scene.render(64), scene.render_shaded(64, 48, &mut Rng::new(3)));
        assert_ne!(exact.data, shaded.data);
        // No spread is the exact render, and takes no draws (earlier runs' data stays theirs).
        let mut rng = Rng::new(7);
        assert_eq!(scene.render_shaded(64, 0, &mut rng).data, exact.data);
        assert_eq!(rng.next_u64(), Rng::new(7).next_u64());
        // The same pixels are named alike: the shapes did not move.
        let plane = 64 * 64;
        let names = |p: &Pixels| -> Vec<usize> { (0..plane).map(|i| nearest_color([p.data[i], p.data[plane + i], p.data[2 * plane + i]])).collect() };
        let same = names(&exact).iter().zip(names(&shaded)).filter(|(a, b)| **a == *b).count();
        assert!(same as f32 > 0.97 * plane as f32, "{same} of {plane} pixels keep their name");
    }
}
