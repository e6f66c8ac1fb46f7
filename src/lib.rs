//! clipag: generator-free text-to-image (CLIPAG) on burn, for the browser and the command line.
//!
//! Data flows one way: bytes -> weights -> model; prompt -> tokens -> text embedding;
//! canvas -> views -> image embeddings -> loss -> gradient -> canvas.

pub mod bench;
pub mod check;
pub mod clock;
pub mod device;
pub mod engine;
pub mod error;
pub mod explain;
pub mod generate;
pub mod model;
pub mod pixels;
pub mod rng;
pub mod tokenizer;
pub mod weights;

#[cfg(target_family = "wasm")]
mod web;

pub use error::{Error, Result};
