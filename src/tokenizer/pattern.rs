//! open_clip's word pattern, which splits cleaned text into the words BPE reads:
//! `<start_of_text>|<end_of_text>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+`,
//! matched by Python's `regex` module. Its `\p{L}` and `\p{N}` follow that module's Unicode
//! tables, which are newer than the Rust regex engine's (Unicode 16): the characters it
//! counts as letters or numbers and the Rust tables as neither are added to the classes
//! here, so that such a character stays a word of its own rather than joining a run of
//! punctuation (issue 37's cases found five). Listed by comparing every code point's class
//! in `regex` 2026.11.19 (open_clip 3.3.0's, through tools/torch-env.sh) with fancy-regex's.

/// Letters in Python's `regex` (Unicode 17 and its successor's drafts) that the Rust
/// tables do not know: inclusive ranges of code points.
const NEWER_LETTERS: [(u32, u32); 48] = [
    (0x558, 0x558), (0x58B, 0x58C), (0x88F, 0x88F), (0xC5C, 0xC5C), (0xCDC, 0xCDC),
    (0x208F, 0x208F), (0x209D, 0x209F), (0xA7CE, 0xA7CF), (0xA7D2, 0xA7D2), (0xA7D4, 0xA7D4),
    (0xA7DD, 0xA7DD), (0xA7E2, 0xA7E2), (0xA7F1, 0xA7F1), (0xAB6C, 0xAB6D), (0x107BB, 0x107BF),
    (0x10940, 0x10959), (0x10EC5, 0x10EC7), (0x10ED9, 0x10EEE), (0x11B0A, 0x11B0A),
    (0x11DB0, 0x11DDB), (0x11DF1, 0x11DF1), (0x16EA0, 0x16EB8), (0x16EBB, 0x16ED3),
    (0x16FF2, 0x16FF3), (0x187F8, 0x187FF), (0x18CD6, 0x18CDA), (0x18D09, 0x18D20),
    (0x18D80, 0x18DF2), (0x18E00, 0x19191), (0x191A0, 0x191D2), (0x1B123, 0x1B128),
    (0x1B168, 0x1B168), (0x1D6A6, 0x1D6A6), (0x1DF1F, 0x1DF24), (0x1DF2B, 0x1DF81),
    (0x1DF90, 0x1DF96), (0x1DFCD, 0x1DFFF), (0x1E6C0, 0x1E6DE), (0x1E6E0, 0x1E6E2),
    (0x1E6E4, 0x1E6E5), (0x1E6E7, 0x1E6ED), (0x1E6F0, 0x1E6F4), (0x1E6FE, 0x1E6FF),
    (0x2B73A, 0x2B73F), (0x2B81E, 0x2B81E), (0x2CEA2, 0x2CEAD), (0x323B0, 0x33479),
    (0x3D000, 0x3FC3F),
];
/// Numbers likewise.
const NEWER_NUMBERS: [(u32, u32); 5] = [
    (0x11DE0, 0x11DE9), (0x1246F, 0x1246F), (0x12475, 0x1247F), (0x12550, 0x12686),
    (0x16FF4, 0x16FF6),
];

/// A character class's extra members, `\x{A}-\x{B}` each.
fn extra(ranges: &[(u32, u32)]) -> String {
    ranges.iter().map(|(a, b)| format!("\\x{{{a:X}}}-\\x{{{b:X}}}")).collect()
}

/// open_clip's pattern less its names of the start and end tokens (which
/// `Tokenizer::encode` finds itself): what the byte-level BPE's pre-tokenizer splits with.
pub fn words() -> String {
    let (letters, numbers) = (extra(&NEWER_LETTERS), extra(&NEWER_NUMBERS));
    format!(r"'s|'t|'re|'ve|'m|'ll|'d|[\p{{L}}{letters}]+|[\p{{N}}{numbers}]|[^\s\p{{L}}\p{{N}}{letters}{numbers}]+")
}

/// open_clip's whole pattern, its names of the start and end tokens first (a prompt may
/// spell them, in any case, and they then stand for those tokens).
pub fn with_special_names() -> String {
    format!("{}|{}|{}", super::OPEN_CLIP_START, super::OPEN_CLIP_END, words())
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_letter_newer_than_the_rust_tables_is_a_word_of_its_own() {
        let pattern = tokenizers::utils::SysRegex::new(&super::words()).unwrap();
        // U+3247B, a CJK ideograph of Unicode 17, after "<".
        let text = "<\u{3247B}";
        let words: Vec<&str> = pattern.find_iter(text).map(|(a, b)| &text[a..b]).collect();
        assert_eq!(words, ["<", "\u{3247B}"]);
    }
}
