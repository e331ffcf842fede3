//! The library's one error type.

use thiserror::Error as ThisError;

/// Everything the library can report. Messages say what was wrong and where.
#[derive(Debug, ThisError)]
pub enum Error {
    /// A configuration value out of range or inconsistent.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// Array shapes that do not fit together.
    #[error("shape mismatch: {0}")]
    Shape(String),
    /// A parameter file is missing a tensor, has an extra one, or one of the wrong shape or type.
    #[error("parameters: {0}")]
    Params(String),
    /// A file could not be parsed (safetensors, case file, ...).
    #[error("{path}: {msg}")]
    Format {
        /// The file.
        path: String,
        /// What was wrong with it.
        msg: String,
    },
    /// Training stopped because the loss or gradients kept being non-finite.
    #[error("training diverged: {0}")]
    Diverged(String),
    /// An I/O error with the path it happened on.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
}

/// `Result` with the library's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
