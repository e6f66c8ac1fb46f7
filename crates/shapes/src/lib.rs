//! Shapes: the project's own robust CLIP. A synthetic world of captioned pictures (`world`),
//! contrastive and adversarial training on it (`train`), its batches
//! written for a trainer outside this program (`batches`), a judge that reads generated
//! pictures (`judge`) and the evaluation that compares the robust and plain twins (`eval`).

pub mod batches;
pub mod eval;
pub mod judge;
pub mod train;
pub mod world;
