//! CLIP's tokenizer (open_clip's cleaning, then BPE) on any text.
#![no_main]

use std::sync::OnceLock;

use clipag::tokenizer::Tokenizer;

fn clip() -> &'static Tokenizer {
    static CLIP: OnceLock<Tokenizer> = OnceLock::new();
    CLIP.get_or_init(|| Tokenizer::from_json(&clipag::tokenizer::vocab::clip_tokenizer_json().unwrap(), 77).unwrap())
}

libfuzzer_sys::fuzz_target!(|text: &str| {
    if let Ok(tokens) = clip().encode(text) {
        assert!((2..=77).contains(&tokens.ids.len()), "{} ids", tokens.ids.len());
    }
});
