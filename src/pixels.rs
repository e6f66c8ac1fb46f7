//! Images as the engine sees them: RGB planes of f32 in [0, 1], `[3, height, width]`.

use crate::{Error, Result};

/// The largest picture read, on a side and in all: a start image or an image prompt is
/// resized to the canvas anyway, and 16 megapixels are 192 MB as f32 planes.
pub const MAX_SIDE: usize = 8192;
pub const MAX_PIXELS: usize = 16 << 20;

#[derive(Debug, Clone, PartialEq)]
pub struct Pixels {
    pub height: usize,
    pub width: usize,
    /// Row-major RGB planes: all of red, then green, then blue.
    pub data: Vec<f32>,
}

impl Pixels {
    pub fn new(height: usize, width: usize, data: Vec<f32>) -> Result<Self> {
        if height == 0 || width == 0 || data.len() != 3 * height * width {
            return Err(Error::Invalid(format!(
                "an image of {height}x{width} pixels needs {} values, got {}",
                3 * height * width,
                data.len()
            )));
        }
        Ok(Self { height, width, data })
    }

    /// Decodes a PNG, JPEG or other format the `image` crate reads; alpha is dropped. Its
    /// size is checked from its header before anything is decoded: a small file may declare
    /// a huge picture (a 514 KB PNG of 23000 x 23000 grey pixels would need 8.3 GB here).
    pub fn decode(bytes: &[u8]) -> Result<Self> {
        let unreadable = |e: image::ImageError| Error::Invalid(format!("the image could not be read: {e}"));
        let reader = || image::ImageReader::new(std::io::Cursor::new(bytes)).with_guessed_format().map_err(|e| Error::Invalid(format!("the image could not be read: {e}")));
        let (width, height) = reader()?.into_dimensions().map_err(unreadable)?;
        if width as usize > MAX_SIDE || height as usize > MAX_SIDE || width as usize * height as usize > MAX_PIXELS {
            return Err(Error::Invalid(format!(
                "an image of {width} x {height} pixels: at most {MAX_SIDE} on a side and {} megapixels are read",
                MAX_PIXELS >> 20
            )));
        }
        let mut reader = reader()?;
        let mut limits = image::Limits::default();
        // The decoder's own buffers: 16-bit RGBA at the largest size accepted.
        limits.max_alloc = Some(8 * MAX_PIXELS as u64);
        reader.limits(limits);
        let image = reader.decode().map_err(unreadable)?.to_rgb8();
        let (width, height) = (image.width() as usize, image.height() as usize);
        let mut data = vec![0.0; 3 * height * width];
        for (i, pixel) in image.pixels().enumerate() {
            for c in 0..3 {
                data[c * height * width + i] = pixel[c] as f32 / 255.0;
            }
        }
        Self::new(height, width, data)
    }

    /// Resamples to `size` x `size` (bicubic, as CLIP's preprocessing does; no crop).
    pub fn resized(&self, size: usize) -> Self {
        if self.height == size && self.width == size {
            return self.clone();
        }
        let plane = self.height * self.width;
        let mut data = Vec::with_capacity(3 * size * size);
        for c in 0..3 {
            let channel = image::ImageBuffer::<image::Luma<f32>, Vec<f32>>::from_raw(
                self.width as u32,
                self.height as u32,
                self.data[c * plane..(c + 1) * plane].to_vec(),
            )
            .expect("the plane has width x height values");
            let resized = image::imageops::resize(&channel, size as u32, size as u32, image::imageops::FilterType::CatmullRom);
            data.extend(resized.into_raw().into_iter().map(|v| v.clamp(0.0, 1.0)));
        }
        Self { height: size, width: size, data }
    }

    /// Interleaved 8-bit RGBA, as a browser canvas's ImageData wants it. Values outside
    /// [0, 1] are clamped and anything not finite shows as black, so no NaN reaches a screen.
    pub fn to_rgba(&self) -> Vec<u8> {
        let plane = self.height * self.width;
        let byte = |v: f32| if v.is_finite() { (v.clamp(0.0, 1.0) * 255.0).round() as u8 } else { 0 };
        let mut rgba = Vec::with_capacity(4 * plane);
        for i in 0..plane {
            rgba.extend([byte(self.data[i]), byte(self.data[plane + i]), byte(self.data[2 * plane + i]), 255]);
        }
        rgba
    }

    /// From interleaved 8-bit RGBA (alpha ignored).
    pub fn from_rgba(height: usize, width: usize, rgba: &[u8]) -> Result<Self> {
        let plane = height * width;
        if rgba.len() != 4 * plane {
            return Err(Error::Invalid(format!("{} RGBA bytes for a {width}x{height} image", rgba.len())));
        }
        let mut data = vec![0.0; 3 * plane];
        for (i, px) in rgba.chunks_exact(4).enumerate() {
            for c in 0..3 {
                data[c * plane + i] = px[c] as f32 / 255.0;
            }
        }
        Self::new(height, width, data)
    }

    /// Encodes as an 8-bit RGBA PNG.
    pub fn to_png(&self) -> Result<Vec<u8>> {
        let mut png = Vec::new();
        image::codecs::png::PngEncoder::new(&mut png)
            .write_image(&self.to_rgba(), self.width as u32, self.height as u32, image::ExtendedColorType::Rgba8)
            .map_err(|e| Error::Invalid(format!("encoding a PNG: {e}")))?;
        Ok(png)
    }

    /// An animated GIF of `frames` (all of one size), `delay_ms` apart, looping.
    pub fn gif(frames: &[Pixels], delay_ms: u32) -> Result<Vec<u8>> {
        let mut gif = Vec::new();
        {
            let mut encoder = image::codecs::gif::GifEncoder::new_with_speed(&mut gif, 10);
            encoder
                .set_repeat(image::codecs::gif::Repeat::Infinite)
                .map_err(|e| Error::Invalid(format!("encoding a GIF: {e}")))?;
            for frame in frames {
                let buffer = image::RgbaImage::from_raw(frame.width as u32, frame.height as u32, frame.to_rgba())
                    .expect("RGBA of width x height");
                let delay = image::Delay::from_numer_denom_ms(delay_ms, 1);
                encoder
                    .encode_frame(image::Frame::from_parts(buffer, 0, 0, delay))
                    .map_err(|e| Error::Invalid(format!("encoding a GIF: {e}")))?;
            }
        }
        Ok(gif)
    }
}

use image::ImageEncoder;

#[cfg(test)]
mod tests {
    use super::{MAX_SIDE, Pixels};

    /// A PNG chunk: length, type, data, and the CRC-32 of type and data.
    fn chunk(kind: &[u8; 4], data: &[u8]) -> Vec<u8> {
        let crc = kind.iter().chain(data).fold(!0u32, |mut crc, &byte| {
            crc ^= u32::from(byte);
            for _ in 0..8 {
                crc = if crc & 1 == 1 { (crc >> 1) ^ 0xEDB8_8320 } else { crc >> 1 };
            }
            crc
        });
        [&(data.len() as u32).to_be_bytes()[..], kind, data, &(!crc).to_be_bytes()].concat()
    }

    /// A grey 8-bit PNG that declares `side` x `side` pixels and holds one empty row.
    fn declared_png(side: u32) -> Vec<u8> {
        let header = [&side.to_be_bytes()[..], &side.to_be_bytes(), &[8, 0, 0, 0, 0]].concat();
        let idat = [0x78, 0x01, 0x01, 0x00, 0x00, 0xff, 0xff, 0x00, 0x00, 0x00, 0x01];
        [&b"\x89PNG\r\n\x1a\n"[..], &chunk(b"IHDR", &header), &chunk(b"IDAT", &idat), &chunk(b"IEND", &[])].concat()
    }

    #[test]
    fn a_picture_larger_than_the_caps_is_refused_from_its_header() {
        // 23000 x 23000 grey (issue 35: its conversion needed 8.3 GB), refused at once.
        let started = std::time::Instant::now();
        let error = Pixels::decode(&declared_png(23_000)).unwrap_err().to_string();
        assert!(error.contains("23000 x 23000 pixels") && error.contains(&format!("at most {MAX_SIDE}")), "{error}");
        assert!(started.elapsed().as_secs() < 2);
        // Within the side's cap but past the pixels' (8000^2 = 64 megapixels).
        let error = Pixels::decode(&declared_png(8000)).unwrap_err().to_string();
        assert!(error.contains("8000 x 8000 pixels"), "{error}");
        // The header is read as the decoder reads it: a small declared picture gets as far as
        // its (here truncated) data.
        let error = Pixels::decode(&declared_png(4)).unwrap_err().to_string();
        assert!(error.contains("could not be read"), "{error}");
    }
}
