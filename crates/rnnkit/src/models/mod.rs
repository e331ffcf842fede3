//! The models, apart from training: each an explicit forward and backward, its parameters walked
//! by [`Module`](crate::module::Module) under PyTorch's names, and a [`TrainStep`] so the one
//! [`Trainer`](crate::train::Trainer) can train it.
//!
//! - [`LanguageModel`]: embedding → stack → decoder (tied or not), truncated BPTT over a stream.
//! - [`SequenceClassifier`]: many-to-one, pooling over valid steps (last, mean, max, or
//!   learned [`AttentionPool`]).
//! - [`SequenceTagger`]: one label per valid step.
//! - [`Forecaster`]: a window of features to the next `horizon` steps.
//!
//! The three sequence models share their front, the [`Encoder`] (embedding or features → stack
//! over packed lengths). Each takes a padded, time-major batch with optional `lengths` (each in
//! `1..=T`); nothing they compute reads a padded step. Every backward adds (`+=`) into
//! gradients of the model's own type, [`Grads<Self>`](crate::module::Grads), so several batches
//! accumulate; zero them between optimizer steps with `Grads::fill_zero`.

mod attention_pool;
mod classifier;
mod encoder;
mod forecaster;
#[cfg(test)]
mod gradient_checks;
mod language_model;
mod pooling;
mod tagger;
mod train_step;

pub use attention_pool::{AttentionPool, OnlinePool};
pub use classifier::SequenceClassifier;
pub use encoder::{Encoder, InputSpec, SeqInput};
pub use forecaster::Forecaster;
pub use language_model::{ChunkLoss, Decoder, LanguageModel, LmDropout};
pub use pooling::Pooling;
pub use tagger::SequenceTagger;
pub use train_step::{BatchLoss, TrainStep};
