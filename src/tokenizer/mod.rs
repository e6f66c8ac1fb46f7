//! CLIP's tokenizer: open_clip's text cleaning, then byte-level BPE on the `tokenizers`
//! crate from the `tokenizer.json` each model folder ships, then start and end tokens and
//! open_clip's truncation (keep the first 75 tokens, then the end token).

pub mod clean;
#[cfg(not(target_family = "wasm"))]
pub mod vocab;

use crate::{Error, Result};

pub const START_OF_TEXT: &str = "<|startoftext|>";
pub const END_OF_TEXT: &str = "<|endoftext|>";

/// Prompts longer than this are refused rather than cleaned: nobody types a megabyte, and
/// only the first 75 tokens count anyway.
pub const MAX_PROMPT_CHARS: usize = 100_000;

pub struct Tokenizer {
    inner: tokenizers::Tokenizer,
    context_length: usize,
    end: u32,
}

/// A tokenized prompt: start token, text tokens, end token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tokens {
    pub ids: Vec<u32>,
    /// Whether the text was longer than the context and its tail was dropped.
    pub truncated: bool,
}

impl Tokenizer {
    pub fn from_json(bytes: &[u8], context_length: usize) -> Result<Self> {
        let inner = tokenizers::Tokenizer::from_bytes(bytes)
            .map_err(|e| Error::Invalid(format!("tokenizer.json could not be read: {e}")))?;
        let end = inner
            .token_to_id(END_OF_TEXT)
            .ok_or_else(|| Error::Invalid(format!("tokenizer.json has no {END_OF_TEXT} token")))?;
        Ok(Self { inner, context_length, end })
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
        let encoding = self
            .inner
            .encode(cleaned.as_str(), true)
            .map_err(|e| Error::Invalid(format!("tokenizing failed: {e}")))?;
        let mut ids = encoding.get_ids().to_vec();
        let truncated = ids.len() > self.context_length;
        if truncated {
            ids.truncate(self.context_length - 1);
            ids.push(self.end);
        }
        Ok(Tokens { ids, truncated })
    }
}
