//! Training: the stream layout of truncated backpropagation through time (and, as issue 3
//! lands, models, the loop and checkpoints).

pub mod lm;
pub mod tbptt;
