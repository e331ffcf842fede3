//! Data preparation: from raw text and CSV files to the batches the models train on.
//!
//! - [`text`]: loading, cleaning, tokenizers (character, word, BPE) and vocabularies.
//! - [`series`]: time-series CSV, missing values, scalers, transforms, windows, chronological splits.
//! - [`batch`]: padded batches with lengths, bucketing by length, seeded shuffling, stratified splits.
//! - [`synthetic`]: long-memory benchmark tasks (adding problem, copy memory, temporal order).

pub mod batch;
mod batches;
pub mod series;
pub mod stream;
pub mod synthetic;
pub mod text;

pub use batches::Batches;
