//! Training the Shapes CLIPs: contrastive pre-training from scratch on the synthetic world,
//! then either adversarial fine-tuning (the robust twin) or the same number of clean steps
//! (the plain twin). In Rust on burn, on the engine's model code, on the CPU or a GPU. By
//! concern: the `plan` of a run, its `attacks`, a twin's `growth` from the pre-training, the
//! `loss`, the `painting` of negatives, the `trainer` that steps, and the `twins` recipe.

mod attacks;
mod growth;
mod loss;
mod painting;
mod plan;
mod trainer;
mod twins;

pub use attacks::Attack;
pub use loss::Objective;
pub use plan::{Plan, clean_share, config, config_for, tokenizer_json};
pub use trainer::{Drawn, Trainer, run, step_rng};
pub use twins::{Twins, twins};
use plan::vit;
use trainer::{PROGRESS, progress};

#[cfg(test)]
mod tests;
