//! Builds a model folder's `tokenizer.json` from CLIP's BPE merges file
//! (`bpe_simple_vocab_16e6.txt.gz`, shipped in `assets/`), the way open_clip's
//! `SimpleTokenizer` builds its vocabulary: the 256 byte symbols, the same with the
//! end-of-word mark `</w>`, one token per merge, then the two special tokens.

use std::io::Read;

use tokenizers::decoders::byte_level::ByteLevel as ByteLevelDecoder;
use tokenizers::decoders::wordpiece::WordPiece;
use tokenizers::models::bpe::{BPE, Vocab};
use tokenizers::models::wordlevel::WordLevel;
use tokenizers::pre_tokenizers::whitespace::Whitespace;
use tokenizers::normalizers::replace::ReplacePattern;
use tokenizers::normalizers::{Lowercase, NFC, Replace, Sequence as NormalizerSequence};
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::pre_tokenizers::sequence::Sequence as PreTokenizerSequence;
use tokenizers::pre_tokenizers::split::{Split, SplitPattern};
use tokenizers::processors::template::TemplateProcessing;
use tokenizers::{AddedToken, PreTokenizerWrapper, SplitDelimiterBehavior, TokenizerBuilder};

use super::{END_OF_TEXT, START_OF_TEXT, pattern};
use crate::{Error, Result};

/// CLIP's merges, as open_clip ships them (MIT licence, see assets/README.md).
pub const CLIP_MERGES_GZ: &[u8] = include_bytes!("../../assets/bpe_simple_vocab_16e6.txt.gz");

/// open_clip keeps the first 49152 - 256 - 2 merges of the file.
const MERGES: usize = 49152 - 256 - 2;


/// GPT-2's and CLIP's reversible map from bytes to printable characters.
fn bytes_to_unicode() -> Vec<char> {
    let mut printable: Vec<u32> = (b'!' as u32..=b'~' as u32)
        .chain(0xa1..=0xac)
        .chain(0xae..=0xff)
        .collect();
    let mut chars = printable.clone();
    let mut extra = 0;
    for b in 0..256u32 {
        if !printable.contains(&b) {
            printable.push(b);
            chars.push(256 + extra);
            extra += 1;
        }
    }
    chars.into_iter().map(|c| char::from_u32(c).unwrap()).collect()
}

/// The `tokenizer.json` of CLIP's tokenizer, as bytes.
pub fn clip_tokenizer_json() -> Result<Vec<u8>> {
    let mut text = String::new();
    flate2::read::GzDecoder::new(CLIP_MERGES_GZ)
        .read_to_string(&mut text)
        .map_err(|e| Error::Invalid(format!("the bundled CLIP merges are unreadable: {e}")))?;
    let merges: Vec<(String, String)> = text
        .lines()
        .skip(1)
        .take(MERGES)
        .map(|line| {
            let (a, b) = line.split_once(' ').expect("a merge is two symbols");
            (a.to_string(), b.to_string())
        })
        .collect();

    let symbols = bytes_to_unicode();
    let mut tokens: Vec<String> = symbols.iter().map(char::to_string).collect();
    tokens.extend(symbols.iter().map(|c| format!("{c}</w>")));
    tokens.extend(merges.iter().map(|(a, b)| format!("{a}{b}")));
    tokens.push(START_OF_TEXT.into());
    tokens.push(END_OF_TEXT.into());
    let vocab: Vocab = tokens.iter().enumerate().map(|(i, t)| (t.clone(), i as u32)).collect();
    let start = vocab[START_OF_TEXT];
    let end = vocab[END_OF_TEXT];

    let bpe = BPE::builder()
        .vocab_and_merges(vocab, merges)
        .end_of_word_suffix("</w>".into())
        .build()
        .map_err(|e| Error::Invalid(format!("building the BPE model: {e}")))?;
    // open_clip's pattern less its names of the start and end tokens, which
    // `Tokenizer::encode` finds (another user of this file reads them as text).
    let split = Split::new(SplitPattern::Regex(pattern::words()), SplitDelimiterBehavior::Removed, true)
        .map_err(|e| Error::Invalid(format!("the word pattern: {e}")))?;
    let whitespace = Replace::new(ReplacePattern::Regex(r"\s+".into()), " ")
        .map_err(|e| Error::Invalid(format!("the white-space pattern: {e}")))?;
    // The normalizer and pre-tokenizers make the file usable on its own by other
    // `tokenizers` users; this crate cleans text first (tokenizer::clean) and reads a BPE
    // file without its normalizer (`Tokenizer::from_json`).
    let tokenizer = TokenizerBuilder::new()
        .with_model(bpe)
        .with_normalizer(Some(NormalizerSequence::new(vec![NFC.into(), whitespace.into(), Lowercase.into()])))
        .with_pre_tokenizer(Some(PreTokenizerSequence::new(vec![
            PreTokenizerWrapper::Split(split),
            PreTokenizerWrapper::ByteLevel(ByteLevel::new(false, true, false)),
        ])))
        .with_post_processor(Some(start_end_template(start, end)?))
        .with_decoder(Some(ByteLevelDecoder::default()))
        .build()
        .map_err(|e| Error::Invalid(format!("building the tokenizer: {e}")))?;
    finish(tokenizer.into())
}

/// A word-level tokenizer for a closed vocabulary (the Shapes world's captions): the two
/// special tokens, `<unk>` for any other word, then `words`; white space and punctuation
/// split words, and text is lower-cased (after the same cleaning as CLIP's).
pub fn word_tokenizer_json(words: &[String]) -> Result<Vec<u8>> {
    let mut tokens = vec![START_OF_TEXT.to_string(), END_OF_TEXT.to_string(), UNKNOWN.to_string()];
    tokens.extend(words.iter().cloned());
    let vocab: Vocab = tokens.iter().enumerate().map(|(i, t)| (t.clone(), i as u32)).collect();
    let model = WordLevel::builder()
        .vocab(vocab)
        .unk_token(UNKNOWN.into())
        .build()
        .map_err(|e| Error::Invalid(format!("building the word model: {e}")))?;
    let tokenizer = TokenizerBuilder::new()
        .with_model(model)
        .with_normalizer(Some(Lowercase))
        .with_pre_tokenizer(Some(Whitespace {}))
        .with_post_processor(Some(start_end_template(0, 1)?))
        .with_decoder(Some(WordPiece::default()))
        .build()
        .map_err(|e| Error::Invalid(format!("building the tokenizer: {e}")))?;
    finish(tokenizer.into())
}

const UNKNOWN: &str = "<unk>";

/// Start and end tokens around each text, as CLIP frames its prompts.
fn start_end_template(start: u32, end: u32) -> Result<TemplateProcessing> {
    TemplateProcessing::builder()
        .try_single(format!("{START_OF_TEXT} $A {END_OF_TEXT}"))
        .and_then(|t| t.try_pair(format!("{START_OF_TEXT} $A {END_OF_TEXT} $B {END_OF_TEXT}")))
        .map_err(|e| Error::Invalid(format!("the token template: {e}")))?
        .special_tokens(vec![(START_OF_TEXT, start), (END_OF_TEXT, end)])
        .build()
        .map_err(|e| Error::Invalid(format!("the token template: {e}")))
}

fn finish(mut tokenizer: tokenizers::Tokenizer) -> Result<Vec<u8>> {
    tokenizer.add_special_tokens(&[AddedToken::from(START_OF_TEXT, true), AddedToken::from(END_OF_TEXT, true)]);
    let json = tokenizer
        .to_string(false)
        .map_err(|e| Error::Invalid(format!("serialising the tokenizer: {e}")))?;
    Ok(json.into_bytes())
}
