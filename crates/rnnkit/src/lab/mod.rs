//! The vanishing-gradient lab's pieces: models and measures that exist to show how recurrent
//! training behaves, not to be deployed.

mod truncated;

pub use truncated::TruncatedForecaster;
