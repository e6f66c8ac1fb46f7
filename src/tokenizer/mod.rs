//! CLIP's tokenizer: open_clip's text cleaning, then byte-level BPE on the `tokenizers`
//! crate from the `tokenizer.json` each model folder ships, then start and end tokens and
//! open_clip's truncation (keep the first 75 tokens, then the end token).

pub mod clean;
pub mod pattern;
#[cfg(not(target_family = "wasm"))]
pub mod vocab;

use crate::{Error, Result};
use tokenizers::models::ModelWrapper;

pub const START_OF_TEXT: &str = "<|startoftext|>";
pub const END_OF_TEXT: &str = "<|endoftext|>";

/// open_clip's names of its start and end tokens.
const OPEN_CLIP_START: &str = "<start_of_text>";
const OPEN_CLIP_END: &str = "<end_of_text>";

/// Prompts longer than this are refused rather than cleaned: only the first 75 tokens count
/// (a few hundred characters), and cleaning repeats ftfy's fixes until the text stops
/// changing, one level of a chained entity (`&amp;amp;...`) a pass, so its time grows with
/// the square of the length: 98 s at 100,000 characters, a second or so at this cap.
pub const MAX_PROMPT_CHARS: usize = 10_000;

pub struct Tokenizer {
    inner: tokenizers::Tokenizer,
    context_length: usize,
    end: u32,
    /// The id that stands for every word outside the vocabulary, where there is one: a
    /// word-level vocabulary (the Shapes world's) has it; CLIP's byte-level BPE reads any
    /// text and has none.
    unknown: Option<u32>,
    /// For a byte-level BPE (CLIP's): open_clip's whole word pattern and the start token's
    /// id, to find where a prompt spells open_clip's names of the start and end tokens.
    spelled: Option<(tokenizers::utils::SysRegex, u32)>,
}

/// A tokenized prompt: start token, text tokens, end token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tokens {
    pub ids: Vec<u32>,
    /// Whether the text was longer than the context and its tail was dropped.
    pub truncated: bool,
    /// The words of the text the vocabulary lacks (each read as the unknown token), in the
    /// order they first appear, once each.
    pub unknown: Vec<String>,
}

/// A special token some template post-processor in `json` uses without defining it, if any:
/// each object with a `special_tokens` map and `single` / `pair` templates is checked.
fn undefined_template_token(json: &serde_json::Value) -> Option<String> {
    match json {
        serde_json::Value::Array(items) => items.iter().find_map(undefined_template_token),
        serde_json::Value::Object(map) => {
            if let Some(serde_json::Value::Object(defined)) = map.get("special_tokens") {
                let used = ["single", "pair"].iter().filter_map(|k| map.get(*k)?.as_array()).flatten();
                for piece in used {
                    if let Some(id) = piece.get("SpecialToken").and_then(|t| t.get("id")).and_then(|id| id.as_str()) {
                        if !defined.contains_key(id) {
                            return Some(id.to_string());
                        }
                    }
                }
            }
            map.values().find_map(undefined_template_token)
        }
        _ => None,
    }
}

impl Tokenizer {
    pub fn from_json(bytes: &[u8], context_length: usize) -> Result<Self> {
        // The tokenizers crate panics (in the page, the engine's end) on two kinds of file that
        // fuzzing found: malformed JSON inside its "decoder" (an `expect`), and a template
        // post-processor naming a special token it does not define (at the first encode).
        let json: serde_json::Value = serde_json::from_slice(bytes).map_err(|e| Error::file(format!("not a tokenizer: not JSON ({e})")))?;
        if let Some(token) = undefined_template_token(&json) {
            return Err(Error::file(format!("not a tokenizer: its post-processor's template uses the special token '{token}', which it does not define")));
        }
        let mut inner = tokenizers::Tokenizer::from_bytes(bytes)
            .map_err(|e| Error::file(format!("not a tokenizer: {e}")))?;
        let end = inner
            .token_to_id(END_OF_TEXT)
            .ok_or_else(|| Error::file(format!("the tokenizer has no {END_OF_TEXT} token")))?;
        let unknown_token = match inner.get_model() {
            ModelWrapper::WordLevel(model) => Some(model.unk_token.clone()),
            ModelWrapper::WordPiece(model) => Some(model.unk_token.clone()),
            ModelWrapper::BPE(model) => model.unk_token.clone(),
            // No converter here writes a Unigram model, and the crate keeps its unknown id private.
            ModelWrapper::Unigram(_) => None,
        };
        let unknown = unknown_token.and_then(|token| inner.token_to_id(&token));
        let spelled = match inner.get_model() {
            ModelWrapper::BPE(_) => Some(open_clip_words(&mut inner)?),
            _ => None,
        };
        Ok(Self { inner, context_length, end, unknown, spelled })
    }

    /// The most tokens a sequence holds, start and end included.
    pub fn context_length(&self) -> usize {
        self.context_length
    }

    /// What a person should know about how the model read a text (`tokens`, from `encode`),
    /// one sentence each: the words it does not know (and, for a closed vocabulary, the ones
    /// it does) and a tail past the context. Empty when it read all of the text.
    pub fn notes(&self, tokens: &Tokens) -> Vec<String> {
        let mut notes = Vec::new();
        if !tokens.unknown.is_empty() {
            let quoted: Vec<String> = tokens.unknown.iter().map(|w| format!("'{w}'")).collect();
            let mut note = match quoted.as_slice() {
                [word] => format!("the model does not know the word {word} and reads it as an unknown word"),
                words => format!("the model does not know the words {} and reads each as an unknown word", words.join(", ")),
            };
            if let Some(words) = self.words() {
                note += &format!("; the words it knows are: {}", words.join(", "));
            }
            notes.push(note);
        }
        if tokens.truncated {
            notes.push(format!("the text is longer than the model's {} tokens; the rest was cut", self.context_length));
        }
        notes
    }

    /// The words the model knows, sorted, when its vocabulary is a closed list of words (the
    /// Shapes world's); `None` for a vocabulary that reads any text, such as CLIP's BPE.
    pub fn words(&self) -> Option<Vec<String>> {
        let ModelWrapper::WordLevel(model) = self.inner.get_model() else { return None };
        let special = |token: &str| token == START_OF_TEXT || token == END_OF_TEXT || token == model.unk_token;
        let mut words: Vec<String> = self.inner.get_vocab(false).into_keys().filter(|w| !special(w)).collect();
        words.sort();
        Some(words)
    }

    /// The largest id the tokenizer can give (a vocabulary's ids need not be 0 to its count
    /// less one: a tokenizer.json may name any number).
    pub fn largest_id(&self) -> Option<u32> {
        self.inner.get_vocab(true).into_values().max()
    }

    pub fn vocab_size(&self) -> usize {
        self.inner.get_vocab_size(true)
    }

    /// Tokenizes one prompt as open_clip does. An empty prompt is just the start and end
    /// tokens, as in open_clip; a long one is cut to the context length.
    pub fn encode(&self, text: &str) -> Result<Tokens> {
        if text.chars().count() > MAX_PROMPT_CHARS {
            return Err(Error::Invalid(format!(
                "the prompt is {} characters long; at most {MAX_PROMPT_CHARS} are accepted",
                text.chars().count()
            )));
        }
        let cleaned = clean::clean(text);
        if let Some((pattern, start)) = &self.spelled {
            if cleaned.contains(OPEN_CLIP_START) || cleaned.contains(OPEN_CLIP_END) {
                return self.encode_spelled(&cleaned, pattern, *start);
            }
        }
        let encoding = self
            .inner
            .encode(cleaned.as_str(), true)
            .map_err(|e| Error::Invalid(format!("tokenizing failed: {e}")))?;
        let mut unknown: Vec<String> = Vec::new();
        if let Some(unknown_id) = self.unknown {
            let offsets = encoding.get_offsets();
            for (_, &(start, end)) in encoding.get_ids().iter().zip(offsets).filter(|&(&id, _)| id == unknown_id) {
                // Offsets are byte ranges of the text given to the tokenizer, the cleaned one.
                let word = cleaned.get(start..end).unwrap_or_default().to_string();
                if !unknown.contains(&word) {
                    unknown.push(word);
                }
            }
        }
        Ok(self.cut(encoding.get_ids().to_vec(), unknown))
    }

    /// open_clip's truncation: a sequence past the context keeps its first tokens and ends
    /// with the end token.
    fn cut(&self, mut ids: Vec<u32>, unknown: Vec<String>) -> Tokens {
        let truncated = ids.len() > self.context_length;
        if truncated {
            ids.truncate(self.context_length - 1);
            ids.push(self.end);
        }
        Tokens { ids, truncated, unknown }
    }

    /// A cleaned text that spells open_clip's start or end token: where open_clip's word
    /// pattern reads the name as a word (not inside a run of punctuation, "!!<end_of_text>"),
    /// it is that token; the text between is tokenized as usual.
    fn encode_spelled(&self, cleaned: &str, pattern: &tokenizers::utils::SysRegex, start: u32) -> Result<Tokens> {
        let mut ids = vec![start];
        let mut from = 0;
        let piece = |ids: &mut Vec<u32>, text: &str| -> Result<()> {
            let encoding = self.inner.encode(text, false).map_err(|e| Error::Invalid(format!("tokenizing failed: {e}")))?;
            ids.extend_from_slice(encoding.get_ids());
            Ok(())
        };
        for (at, to) in pattern.find_iter(cleaned) {
            let id = match &cleaned[at..to] {
                OPEN_CLIP_START => start,
                OPEN_CLIP_END => self.end,
                _ => continue,
            };
            piece(&mut ids, &cleaned[from..at])?;
            ids.push(id);
            from = to;
        }
        piece(&mut ids, &cleaned[from..])?;
        ids.push(self.end);
        Ok(self.cut(ids, Vec::new()))
    }
}

/// Makes a byte-level BPE tokenizer read text as open_clip does, whatever its file says:
/// - no normalizer: `clean` is open_clip's whole normalisation, and a file's NFC after it
///   would change what `html.unescape` produced (`&#x2F929;`, a compatibility ideograph);
/// - words split by open_clip's pattern less the start and end tokens' names, then the byte
///   map (files written before had HF's names in the pattern, so a prompt spelling
///   "<|endoftext|>" read as one word);
/// - a prompt's text never read as a special token (open_clip's tokenizer has no such step;
///   its own names are found by `encode_spelled`).
/// Returns open_clip's whole pattern and the start token's id.
fn open_clip_words(inner: &mut tokenizers::Tokenizer) -> Result<(tokenizers::utils::SysRegex, u32)> {
    use tokenizers::pre_tokenizers::byte_level::ByteLevel;
    use tokenizers::pre_tokenizers::sequence::Sequence;
    use tokenizers::pre_tokenizers::split::{Split, SplitPattern};
    use tokenizers::{PreTokenizerWrapper, SplitDelimiterBehavior};
    let start = inner.token_to_id(START_OF_TEXT).ok_or_else(|| Error::file(format!("the tokenizer has no {START_OF_TEXT} token")))?;
    let split = Split::new(SplitPattern::Regex(pattern::words()), SplitDelimiterBehavior::Removed, true)
        .map_err(|e| Error::Internal(format!("the word pattern: {e}")))?;
    inner.with_pre_tokenizer(Some(Sequence::new(vec![
        PreTokenizerWrapper::Split(split),
        PreTokenizerWrapper::ByteLevel(ByteLevel::new(false, true, false)),
    ])));
    inner.with_normalizer(None::<tokenizers::NormalizerWrapper>);
    inner.set_encode_special_tokens(true);
    let pattern = tokenizers::utils::SysRegex::new(&pattern::with_special_names()).map_err(|e| Error::Internal(format!("open_clip's word pattern: {e}")))?;
    Ok((pattern, start))
}
