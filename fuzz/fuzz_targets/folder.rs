//! A model folder's other two files: the manifest (its config, recommendation and file
//! list) and a tokenizer.json, the input split at its first zero byte.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let at = data.iter().position(|&b| b == 0).unwrap_or(data.len());
    let (manifest, tokenizer) = (&data[..at], data.get(at + 1..).unwrap_or_default());
    if let Ok(text) = std::str::from_utf8(manifest) {
        if let Ok(manifest) = clipag::weights::Manifest::parse(text) {
            let _ = manifest.to_json();
        }
    }
    if let Ok(tokenizer) = clipag::tokenizer::Tokenizer::from_json(tokenizer, 77) {
        let _ = tokenizer.encode("a red circle");
        let _ = tokenizer.largest_id();
    }
});
