//! The converter end to end on a small input: the bytes as a `.pt` checkpoint, converted to a
//! model folder at q8 (the architecture read off the tensors, then quantized and written).
#![no_main]

use std::path::PathBuf;
use std::sync::OnceLock;

use clipag::weights::convert;
use clipag::weights::quant::Quantization;

fn scratch() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("clipag-fuzz-convert-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    })
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let input = scratch().join("input.pt");
    std::fs::write(&input, data).unwrap();
    let options = convert::Options {
        quantization: Quantization::Q8,
        quick_gelu: false,
        config: None,
        name: None,
        license: None,
        tokenizer: None,
        recommended: None,
        source: None,
    };
    let out = scratch().join("out");
    let _ = std::fs::remove_dir_all(&out);
    let _ = convert::convert(&input, &out, &options);
});
