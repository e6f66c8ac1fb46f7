//! `clipag shapes batches`: the training batches exactly as `train` draws them (`Drawn`, from
//! `step_rng`), written as one byte stream for a trainer outside this program, such as
//! `tools/shapes_torch.py`, which trains open_clip's own convolutional tower on this world.
//! The pictures are the project's renderer's, so a model trained from the stream learns the
//! world the evaluation draws. docs/formats.md describes the bytes.

use std::io::Write;

use super::train::{Drawn, Plan, step_rng};
use clipag::tokenizer::Tokenizer;
use clipag::{Error, Result};

pub const FORMAT: &str = "clipag-shapes-batches";
pub const VERSION: u32 = 1;

/// Which batches to write: steps `from..to` of a run of `plan` (its seed, batch size,
/// shades and minimal pairs), at `size` pixels a side.
pub struct Stream {
    pub plan: Plan,
    pub size: usize,
    pub from: usize,
    pub to: usize,
}

impl Stream {
    /// The header line: what each record holds, as JSON.
    fn header(&self, context: usize) -> String {
        let header = serde_json::json!({
            "format": FORMAT,
            "version": VERSION,
            "seed": self.plan.seed,
            "batch": self.plan.batch,
            "size": self.size,
            "context": context,
            "from": self.from,
            "to": self.to,
        });
        format!("{header}\n")
    }

    /// One step's record: pictures as bytes `[batch, 3, size, size]`, caption lengths
    /// `[batch]`, token ids as little-endian u16 `[batch, context]` (zero after each
    /// caption's end), and fits `[batch, batch]` (1 where picture i fits caption j).
    fn record(&self, step: usize, tokenizer: &Tokenizer, context: usize) -> Result<Vec<u8>> {
        let mut rng = step_rng(self.plan.seed, step);
        let drawn = Drawn::new(self.plan.batch, self.size, &self.plan, tokenizer, &mut rng)?;
        let mut bytes: Vec<u8> = drawn.pixels.iter().map(|v| (v * 255.0).round() as u8).collect();
        bytes.extend(drawn.sequences.iter().map(|s| s.len() as u8));
        for sequence in &drawn.sequences {
            let mut row = vec![0u16; context];
            for (slot, &id) in row.iter_mut().zip(sequence) {
                *slot = u16::try_from(id).map_err(|_| Error::Invalid(format!("token id {id} does not fit the stream's u16")))?;
            }
            bytes.extend(row.iter().flat_map(|id| id.to_le_bytes()));
        }
        bytes.extend(drawn.fits().into_iter().map(u8::from));
        Ok(bytes)
    }

    /// Writes the header and every step's record in order, drawing `threads` steps at once.
    pub fn write(&self, tokenizer: &Tokenizer, threads: usize, out: &mut dyn Write) -> Result<()> {
        if self.plan.batch == 0 || self.size == 0 || self.from > self.to {
            return Err(Error::Invalid(format!(
                "a stream needs a batch and a size of at least 1 and --from at most --to (batch {}, size {}, steps {}..{})",
                self.plan.batch, self.size, self.from, self.to
            )));
        }
        let context = tokenizer.context_length();
        if context > u8::MAX as usize {
            return Err(Error::Invalid(format!("a context of {context} tokens does not fit the stream's u8 lengths")));
        }
        let io = |e: std::io::Error| Error::Invalid(format!("writing the batches: {e}"));
        out.write_all(self.header(context).as_bytes()).map_err(io)?;
        let threads = threads.max(1);
        let steps: Vec<usize> = (self.from..self.to).collect();
        for chunk in steps.chunks(threads) {
            let records: Vec<Result<Vec<u8>>> = std::thread::scope(|scope| {
                let handles: Vec<_> = chunk.iter().map(|&step| scope.spawn(move || self.record(step, tokenizer, context))).collect();
                handles.into_iter().map(|h| h.join().unwrap_or_else(|_| Err(Error::Invalid("a drawing thread panicked".into())))).collect()
            });
            for record in records {
                out.write_all(&record?).map_err(io)?;
            }
        }
        out.flush().map_err(io)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::train;

    fn stream(from: usize, to: usize) -> Stream {
        Stream { plan: Plan { batch: 4, ..Plan::default() }, size: 32, from, to }
    }

    #[test]
    fn records_are_the_trainers_draws_in_order() {
        let tokenizer = Tokenizer::from_json(&train::tokenizer_json().unwrap(), train::config().text.context_length).unwrap();
        let mut bytes = Vec::new();
        stream(3, 6).write(&tokenizer, 2, &mut bytes).unwrap();
        let newline = bytes.iter().position(|&b| b == b'\n').unwrap();
        let header: serde_json::Value = serde_json::from_slice(&bytes[..newline]).unwrap();
        assert_eq!((header["batch"].as_u64(), header["size"].as_u64(), header["context"].as_u64()), (Some(4), Some(32), Some(16)));
        let record = 4 * 3 * 32 * 32 + 4 + 4 * 16 * 2 + 4 * 4;
        let body = &bytes[newline + 1..];
        assert_eq!(body.len(), 3 * record);
        // The second record is step 4's draw: the same pictures, ids and fits.
        let drawn = Drawn::new(4, 32, &stream(0, 0).plan, &tokenizer, &mut step_rng(1, 4)).unwrap();
        let second = &body[record..2 * record];
        let pixels: Vec<u8> = drawn.pixels.iter().map(|v| (v * 255.0).round() as u8).collect();
        assert_eq!(&second[..pixels.len()], &pixels[..]);
        let lengths = &second[pixels.len()..pixels.len() + 4];
        assert_eq!(lengths, drawn.sequences.iter().map(|s| s.len() as u8).collect::<Vec<_>>());
        let ids = &second[pixels.len() + 4..pixels.len() + 4 + 2 * 16];
        let first_ids: Vec<u32> = ids.chunks(2).take(lengths[0] as usize).map(|b| u16::from_le_bytes([b[0], b[1]]) as u32).collect();
        assert_eq!(first_ids, drawn.sequences[0]);
        let fits: Vec<bool> = second[record - 16..].iter().map(|&b| b == 1).collect();
        assert_eq!(fits, drawn.fits());
        assert!(fits.iter().step_by(5).all(|&f| f), "each picture fits its own caption");
    }

    #[test]
    fn refuses_an_empty_batch() {
        let tokenizer = Tokenizer::from_json(&train::tokenizer_json().unwrap(), 16).unwrap();
        let mut empty = stream(0, 1);
        empty.plan.batch = 0;
        let error = empty.write(&tokenizer, 1, &mut Vec::new()).unwrap_err().to_string();
        assert!(error.contains("batch"), "{error}");
    }
}
