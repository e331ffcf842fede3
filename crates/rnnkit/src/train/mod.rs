//! Training: the language model, the stream layout of truncated backpropagation through time,
//! the training loops (streams: [`trainer`]; padded sequences and windows: [`seq_trainer`]) and
//! checkpoints that resume exactly.

pub mod checkpoint;
pub mod clock;
pub mod confusion;
pub mod diagnostics;
pub mod generate;
pub mod lm;
pub mod seq_trainer;
pub mod stop;
pub mod tasks;
pub mod tbptt;
pub mod trainer;
