//! open_clip's text cleaning, which runs before BPE: `ftfy.fix_text`, then `html.unescape`
//! twice, then white-space folding and lower case. The same prompt must give the same ids
//! here as in open_clip, so each step follows the Python it replaces; comments name it.
//!
//! Not done: ftfy's mojibake repair (`fix_encoding` and its helpers), which guesses at text
//! decoded in the wrong encoding ("cafÃ©" -> "café"). It needs ftfy's statistical tables
//! of encodings and is a heuristic; prompts typed into a page rarely have mojibake. The
//! tokenizer test lists every fixture case it affects.

use unicode_normalization::UnicodeNormalization;

/// The whole of open_clip's `_clean_lower`: `whitespace_clean(basic_clean(text)).lower()`.
pub fn clean(text: &str) -> String {
    let text = fix_text(text);
    let text = html_unescape(&html_unescape(&text));
    fold_whitespace(&text).to_lowercase()
}

/// Python's `str.isspace()`, which `\s`, `strip()` and `split()` use: Unicode White_Space
/// plus the four ASCII separators U+1C..U+1F that Rust's `char::is_whitespace` leaves out.
fn is_python_space(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

/// `re.sub(r'\s+', ' ', text).strip()`.
fn fold_whitespace(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for word in text.split(is_python_space).filter(|w| !w.is_empty()) {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(word);
    }
    out
}

/// `ftfy.fix_text` with its default settings, less mojibake repair. Text is fixed one line at
/// a time; once a line holds '<', HTML unescaping stays off for the rest (ftfy's "auto").
fn fix_text(text: &str) -> String {
    let mut unescape = true;
    let mut out = String::with_capacity(text.len());
    for segment in text.split_inclusive('\n') {
        if segment.contains('<') {
            unescape = false;
        }
        let mut segment = segment.to_string();
        // ftfy repeats its fixes until the text stops changing.
        loop {
            let fixed = fix_segment(&segment, unescape);
            if fixed == segment {
                break;
            }
            segment = fixed;
        }
        out.push_str(&segment);
    }
    out
}

fn fix_segment(text: &str, unescape: bool) -> String {
    let text = if unescape { ftfy_unescape_html(text) } else { text.to_string() };
    let text: String = text
        .chars()
        .map(fix_c1_control)
        .flat_map(|c| expand_latin_ligature(c).chars().collect::<Vec<_>>())
        .map(fix_character_width)
        .map(uncurl_quote)
        .collect();
    let text = fix_line_breaks(&text);
    let text = remove_terminal_escapes(&text);
    let text: String = text.chars().filter(|&c| !is_removed_control(c)).collect();
    text.nfc().collect()
}

/// ftfy's `fix_c1_controls`: a C1 control character (U+80..U+9F) is read as the
/// Windows-1252 byte it most likely was, as browsers do; the five bytes Windows-1252 leaves
/// undefined stay as they are ("sloppy" Windows-1252).
fn fix_c1_control(c: char) -> char {
    const WINDOWS_1252: [char; 32] = [
        '€', '\u{81}', '‚', 'ƒ', '„', '…', '†', '‡', 'ˆ', '‰', 'Š', '‹', 'Œ', '\u{8d}', 'Ž',
        '\u{8f}', '\u{90}', '‘', '’', '“', '”', '•', '–', '—', '˜', '™', 'š', '›', 'œ', '\u{9d}',
        'ž', 'Ÿ',
    ];
    match c as u32 {
        0x80..=0x9f => WINDOWS_1252[c as usize - 0x80],
        _ => c,
    }
}

/// ftfy's `fix_latin_ligatures`: single-character Latin ligatures become their letters.
fn expand_latin_ligature(c: char) -> std::borrow::Cow<'static, str> {
    let expanded = match c {
        'Ĳ' => "IJ",
        'ĳ' => "ij",
        'ŉ' => "ʼn",
        'Ǳ' => "DZ",
        'ǲ' => "Dz",
        'ǳ' => "dz",
        'Ǆ' => "DŽ",
        'ǅ' => "Dž",
        'ǆ' => "dž",
        'Ǉ' => "LJ",
        'ǈ' => "Lj",
        'ǉ' => "lj",
        'Ǌ' => "NJ",
        'ǋ' => "Nj",
        'ǌ' => "nj",
        'ﬀ' => "ff",
        'ﬁ' => "fi",
        'ﬂ' => "fl",
        'ﬃ' => "ffi",
        'ﬄ' => "ffl",
        'ﬅ' => "ſt",
        'ﬆ' => "st",
        _ => return c.to_string().into(),
    };
    expanded.into()
}

/// ftfy's `fix_character_width`: fullwidth and halfwidth forms (U+FF01..U+FFEF) become their
/// usual forms, by compatibility normalisation of that block alone; U+3000 becomes a space.
fn fix_character_width(c: char) -> char {
    match c as u32 {
        0x3000 => ' ',
        0xff01..=0xffef => {
            let mut normal = std::iter::once(c).nfkc();
            match (normal.next(), normal.next()) {
                (Some(single), None) => single,
                _ => c,
            }
        }
        _ => c,
    }
}

/// ftfy's `uncurl_quotes`.
fn uncurl_quote(c: char) -> char {
    match c {
        '\u{2bc}' | '\u{2018}'..='\u{201b}' => '\'',
        '\u{201c}'..='\u{201f}' => '"',
        _ => c,
    }
}

/// ftfy's `fix_line_breaks`: every line-break convention becomes "\n".
fn fix_line_breaks(text: &str) -> String {
    text.replace("\r\n", "\n")
        .replace(['\r', '\u{2028}', '\u{2029}', '\u{85}'], "\n")
}

/// ftfy's `remove_terminal_escapes`: ANSI sequences `ESC [ digits-and-semicolons letter`.
fn remove_terminal_escapes(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("\u{1b}[") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let params = after
            .find(|c: char| !(c.is_ascii_digit() || c == ';'))
            .unwrap_or(after.len());
        match after[params..].chars().next() {
            Some(letter) if letter.is_ascii_alphabetic() => {
                rest = &after[params + 1..];
            }
            _ => {
                out.push('\u{1b}');
                rest = &rest[start + 1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// ftfy's `remove_control_chars`: control characters nobody means to type, except the ones
/// that make white space.
fn is_removed_control(c: char) -> bool {
    matches!(c as u32,
        0x00..=0x08 | 0x0b | 0x0e..=0x1f | 0x7f | 0x206a..=0x206f | 0xfeff | 0xfff9..=0xfffc)
}

/// ftfy's own `unescape_html`: only `&name;` and `&#number;` forms that end in a semicolon,
/// plus upper-cased names of lower-case entities (`&EACUTE;` is "É").
fn ftfy_unescape_html(text: &str) -> String {
    replace_matches(text, |rest| {
        // `&#?[0-9A-Za-z]{1,24};`
        let body = rest[1..].strip_prefix('#').unwrap_or(&rest[1..]);
        let hash = body.len() != rest.len() - 1;
        let len = body
            .bytes()
            .take_while(u8::is_ascii_alphanumeric)
            .take(25)
            .count();
        if !(1..=24).contains(&len) || body.as_bytes().get(len) != Some(&b';') {
            return None;
        }
        let matched = &rest[..1 + usize::from(hash) + len + 1];
        let name = &matched[1..];
        let replacement = if hash {
            // A numeric reference counts only if html.unescape consumes it whole.
            let unescaped = html_unescape(matched);
            if unescaped.contains(';') { matched.to_string() } else { unescaped }
        } else if let Some(value) = entities::named(name) {
            value.to_string()
        } else if let Some(value) = entities::upper_cased(name) {
            value
        } else {
            matched.to_string()
        };
        Some((matched.len(), replacement))
    })
}

/// Python's `html.unescape`: every character reference HTML5 knows, with or without its
/// semicolon where HTML5 allows, numeric references mapped as the HTML5 parser maps them.
pub fn html_unescape(text: &str) -> String {
    if !text.contains('&') {
        return text.to_string();
    }
    replace_matches(text, |rest| {
        let body = &rest[1..];
        if let Some(number) = body.strip_prefix('#') {
            // `#[0-9]+;?` or `#[xX][0-9a-fA-F]+;?`
            let (digits, radix, prefix) = match number.strip_prefix(['x', 'X']) {
                Some(hex) => (hex, 16, 2),
                None => (number, 10, 1),
            };
            let len = digits.bytes().take_while(|b| (*b as char).is_digit(radix)).count();
            if len == 0 {
                return None;
            }
            let semicolon = usize::from(digits.as_bytes().get(len) == Some(&b';'));
            let value = u32::from_str_radix(&digits[..len], radix).unwrap_or(u32::MAX);
            Some((1 + prefix + len + semicolon, numeric_reference(value)))
        } else {
            // `[^\t\n\f <&#;]{1,32};?`, then the longest name HTML5 knows.
            let len: usize = body
                .chars()
                .take_while(|c| !matches!(c, '\t' | '\n' | '\u{c}' | ' ' | '<' | '&' | '#' | ';'))
                .take(32)
                .map(char::len_utf8)
                .sum();
            if len == 0 {
                return None;
            }
            let semicolon = usize::from(body.as_bytes().get(len) == Some(&b';'));
            let name = &body[..len + semicolon];
            if let Some(value) = entities::named(name) {
                return Some((1 + name.len(), value.to_string()));
            }
            // Legacy names without a semicolon may be a prefix ("&notit" is "¬it").
            let prefix_ends = name.char_indices().map(|(i, _)| i).filter(|&i| i >= 2).rev();
            for end in prefix_ends {
                if let Some(value) = entities::named(&name[..end]) {
                    return Some((1 + name.len(), format!("{value}{}", &name[end..])));
                }
            }
            Some((1 + name.len(), format!("&{name}")))
        }
    })
}

/// What the HTML5 parser (and so Python) makes of `&#value;`.
fn numeric_reference(value: u32) -> String {
    // Windows-1252 meanings of the C1 range, and two more fix-ups, from the HTML5 spec.
    const INVALID: [(u32, &str); 34] = [
        (0x00, "\u{fffd}"), (0x0d, "\r"), (0x80, "€"), (0x81, "\u{81}"), (0x82, "‚"),
        (0x83, "ƒ"), (0x84, "„"), (0x85, "…"), (0x86, "†"), (0x87, "‡"), (0x88, "ˆ"),
        (0x89, "‰"), (0x8a, "Š"), (0x8b, "‹"), (0x8c, "Œ"), (0x8d, "\u{8d}"), (0x8e, "Ž"),
        (0x8f, "\u{8f}"), (0x90, "\u{90}"), (0x91, "‘"), (0x92, "’"), (0x93, "“"), (0x94, "”"),
        (0x95, "•"), (0x96, "–"), (0x97, "—"), (0x98, "˜"), (0x99, "™"), (0x9a, "š"),
        (0x9b, "›"), (0x9c, "œ"), (0x9d, "\u{9d}"), (0x9e, "ž"), (0x9f, "Ÿ"),
    ];
    if let Some((_, text)) = INVALID.iter().find(|(code, _)| *code == value) {
        return text.to_string();
    }
    let Some(c) = char::from_u32(value) else {
        return "\u{fffd}".into(); // a surrogate or beyond U+10FFFF
    };
    let noncharacter = (0xfdd0..=0xfdef).contains(&value) || (value & 0xfffe) == 0xfffe;
    let control = matches!(value, 0x01..=0x08 | 0x0b | 0x0e..=0x1f | 0x7f..=0x9f);
    if noncharacter || control { String::new() } else { c.to_string() }
}

/// Rewrites `text`, offering `replace` each '&' position; it answers with how many bytes it
/// consumed and what stands in their place, or None to keep the '&'.
fn replace_matches(text: &str, replace: impl Fn(&str) -> Option<(usize, String)>) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find('&') {
        out.push_str(&rest[..start]);
        rest = &rest[start..];
        match replace(rest) {
            Some((consumed, replacement)) => {
                out.push_str(&replacement);
                rest = &rest[consumed..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

mod entities {
    /// HTML5's named character references that may appear without their semicolon (the
    /// "legacy" ones of the WHATWG table; Python's `html.entities.html5` lists them twice).
    const LEGACY: [&str; 106] = [
        "AElig", "AMP", "Aacute", "Acirc", "Agrave", "Aring", "Atilde", "Auml", "COPY", "Ccedil",
        "ETH", "Eacute", "Ecirc", "Egrave", "Euml", "GT", "Iacute", "Icirc", "Igrave", "Iuml", "LT",
        "Ntilde", "Oacute", "Ocirc", "Ograve", "Oslash", "Otilde", "Ouml", "QUOT", "REG", "THORN",
        "Uacute", "Ucirc", "Ugrave", "Uuml", "Yacute", "aacute", "acirc", "acute", "aelig", "agrave",
        "amp", "aring", "atilde", "auml", "brvbar", "ccedil", "cedil", "cent", "copy", "curren",
        "deg", "divide", "eacute", "ecirc", "egrave", "eth", "euml", "frac12", "frac14", "frac34",
        "gt", "iacute", "icirc", "iexcl", "igrave", "iquest", "iuml", "laquo", "lt", "macr", "micro",
        "middot", "nbsp", "not", "ntilde", "oacute", "ocirc", "ograve", "ordf", "ordm", "oslash",
        "otilde", "ouml", "para", "plusmn", "pound", "quot", "raquo", "reg", "sect", "shy", "sup1",
        "sup2", "sup3", "szlig", "thorn", "times", "uacute", "ucirc", "ugrave", "uml", "uuml",
        "yacute", "yen", "yuml",
    ];

    /// The references whose character is two code points (`&bne;` is "=" and U+20E5,
    /// `&fjlig;` "fj"): html-escape's table keeps only the first, Python's all (issue 37's
    /// cases found them; the 93 are the whole of the WHATWG list's, compared with Python's
    /// `html.entities.html5`, which agrees with html-escape's on every other entity).
    const MULTIPLE: [(&str, &str); 93] = [
        ("NotEqualTilde", "\u{2242}\u{0338}"), ("NotGreaterFullEqual", "\u{2267}\u{0338}"),
        ("NotGreaterGreater", "\u{226B}\u{0338}"), ("NotGreaterSlantEqual", "\u{2A7E}\u{0338}"),
        ("NotHumpDownHump", "\u{224E}\u{0338}"), ("NotHumpEqual", "\u{224F}\u{0338}"),
        ("NotLeftTriangleBar", "\u{29CF}\u{0338}"), ("NotLessLess", "\u{226A}\u{0338}"),
        ("NotLessSlantEqual", "\u{2A7D}\u{0338}"), ("NotNestedGreaterGreater", "\u{2AA2}\u{0338}"),
        ("NotNestedLessLess", "\u{2AA1}\u{0338}"), ("NotPrecedesEqual", "\u{2AAF}\u{0338}"),
        ("NotRightTriangleBar", "\u{29D0}\u{0338}"), ("NotSquareSubset", "\u{228F}\u{0338}"),
        ("NotSquareSuperset", "\u{2290}\u{0338}"), ("NotSubset", "\u{2282}\u{20D2}"),
        ("NotSucceedsEqual", "\u{2AB0}\u{0338}"), ("NotSucceedsTilde", "\u{227F}\u{0338}"),
        ("NotSuperset", "\u{2283}\u{20D2}"), ("ThickSpace", "\u{205F}\u{200A}"),
        ("acE", "\u{223E}\u{0333}"), ("bne", "\u{003D}\u{20E5}"), ("bnequiv", "\u{2261}\u{20E5}"),
        ("caps", "\u{2229}\u{FE00}"), ("cups", "\u{222A}\u{FE00}"), ("fjlig", "\u{0066}\u{006A}"),
        ("gesl", "\u{22DB}\u{FE00}"), ("gvertneqq", "\u{2269}\u{FE00}"),
        ("gvnE", "\u{2269}\u{FE00}"), ("lates", "\u{2AAD}\u{FE00}"), ("lesg", "\u{22DA}\u{FE00}"),
        ("lvertneqq", "\u{2268}\u{FE00}"), ("lvnE", "\u{2268}\u{FE00}"),
        ("nGg", "\u{22D9}\u{0338}"), ("nGt", "\u{226B}\u{20D2}"), ("nGtv", "\u{226B}\u{0338}"),
        ("nLl", "\u{22D8}\u{0338}"), ("nLt", "\u{226A}\u{20D2}"), ("nLtv", "\u{226A}\u{0338}"),
        ("nang", "\u{2220}\u{20D2}"), ("napE", "\u{2A70}\u{0338}"), ("napid", "\u{224B}\u{0338}"),
        ("nbump", "\u{224E}\u{0338}"), ("nbumpe", "\u{224F}\u{0338}"),
        ("ncongdot", "\u{2A6D}\u{0338}"), ("nedot", "\u{2250}\u{0338}"),
        ("nesim", "\u{2242}\u{0338}"), ("ngE", "\u{2267}\u{0338}"), ("ngeqq", "\u{2267}\u{0338}"),
        ("ngeqslant", "\u{2A7E}\u{0338}"), ("nges", "\u{2A7E}\u{0338}"),
        ("nlE", "\u{2266}\u{0338}"), ("nleqq", "\u{2266}\u{0338}"),
        ("nleqslant", "\u{2A7D}\u{0338}"), ("nles", "\u{2A7D}\u{0338}"),
        ("notinE", "\u{22F9}\u{0338}"), ("notindot", "\u{22F5}\u{0338}"),
        ("nparsl", "\u{2AFD}\u{20E5}"), ("npart", "\u{2202}\u{0338}"), ("npre", "\u{2AAF}\u{0338}"),
        ("npreceq", "\u{2AAF}\u{0338}"), ("nrarrc", "\u{2933}\u{0338}"),
        ("nrarrw", "\u{219D}\u{0338}"), ("nsce", "\u{2AB0}\u{0338}"), ("nsubE", "\u{2AC5}\u{0338}"),
        ("nsubset", "\u{2282}\u{20D2}"), ("nsubseteqq", "\u{2AC5}\u{0338}"),
        ("nsucceq", "\u{2AB0}\u{0338}"), ("nsupE", "\u{2AC6}\u{0338}"),
        ("nsupset", "\u{2283}\u{20D2}"), ("nsupseteqq", "\u{2AC6}\u{0338}"),
        ("nvap", "\u{224D}\u{20D2}"), ("nvge", "\u{2265}\u{20D2}"), ("nvgt", "\u{003E}\u{20D2}"),
        ("nvle", "\u{2264}\u{20D2}"), ("nvlt", "\u{003C}\u{20D2}"), ("nvltrie", "\u{22B4}\u{20D2}"),
        ("nvrtrie", "\u{22B5}\u{20D2}"), ("nvsim", "\u{223C}\u{20D2}"),
        ("race", "\u{223D}\u{0331}"), ("smtes", "\u{2AAC}\u{FE00}"), ("sqcaps", "\u{2293}\u{FE00}"),
        ("sqcups", "\u{2294}\u{FE00}"), ("varsubsetneq", "\u{228A}\u{FE00}"),
        ("varsubsetneqq", "\u{2ACB}\u{FE00}"), ("varsupsetneq", "\u{228B}\u{FE00}"),
        ("varsupsetneqq", "\u{2ACC}\u{FE00}"), ("vnsub", "\u{2282}\u{20D2}"),
        ("vnsup", "\u{2283}\u{20D2}"), ("vsubnE", "\u{2ACB}\u{FE00}"),
        ("vsubne", "\u{228A}\u{FE00}"), ("vsupnE", "\u{2ACC}\u{FE00}"),
        ("vsupne", "\u{228B}\u{FE00}"),
    ];

    /// A named character reference as Python's `html.entities.html5` keys it: `name;` for
    /// every entity, bare `name` for the legacy ones. html-escape's table (the WHATWG list)
    /// gives the characters, `MULTIPLE` those it cuts short.
    pub fn named(name: &str) -> Option<&'static str> {
        let stem = match name.strip_suffix(';') {
            Some(stem) => stem,
            None if LEGACY.contains(&name) => name,
            None => return None,
        };
        if let Some((_, characters)) = MULTIPLE.iter().find(|(key, _)| *key == stem) {
            return Some(characters);
        }
        let table = &html_escape::NAMED_ENTITIES;
        table
            .binary_search_by(|(key, _)| (*key).cmp(stem.as_bytes()))
            .ok()
            .map(|i| table[i].1)
    }

    /// ftfy's upper-case variants: `&EACUTE;` for an entity whose name is all lower case,
    /// standing for the upper case of its character, where `html.unescape` would leave the
    /// upper-cased reference alone.
    pub fn upper_cased(name: &str) -> Option<String> {
        let stem = name.strip_suffix(';')?;
        let lower = format!("{};", stem.to_lowercase());
        if lower.to_uppercase() != name || lower == name {
            return None;
        }
        let reference = format!("&{name}");
        if super::html_unescape(&reference) != reference {
            return None;
        }
        named(&lower).map(str::to_uppercase)
    }
}
