//! Image decoding for start images and image prompts: PNG, JPEG, GIF from any bytes, then
//! resized to a canvas as a run would.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(pixels) = clipag::pixels::Pixels::decode(data) {
        let _ = pixels.resized(16);
    }
});
