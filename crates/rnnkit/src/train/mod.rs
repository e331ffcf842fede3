//! Training: the language model, the stream layout of truncated backpropagation through time,
//! the training loop and checkpoints that resume exactly.

pub mod checkpoint;
pub mod lm;
pub mod tasks;
pub mod tbptt;
pub mod trainer;
