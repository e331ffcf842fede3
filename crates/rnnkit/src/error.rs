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
    /// Bad input data: the file (or other source), the place in it, and what was wrong.
    ///
    /// `at` is a place a user can go to: `line 12`, `row 40, column "co2"`; empty when the
    /// problem is the whole file (an empty file, a missing column).
    #[error("{path}{}: {msg}", if at.is_empty() { String::new() } else { format!(": {at}") })]
    Data {
        /// The file or source name.
        path: String,
        /// Where in it: line, row, column.
        at: String,
        /// What was wrong, and what to do about it.
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

impl Error {
    /// A [`Error::Data`] error.
    ///
    /// ```
    /// let e = rnnkit::Error::data("co2.csv", "row 12, column \"co2\"", "not a number: \"n/a\"");
    /// assert_eq!(e.to_string(), "co2.csv: row 12, column \"co2\": not a number: \"n/a\"");
    /// ```
    pub fn data(path: impl Into<String>, at: impl Into<String>, msg: impl Into<String>) -> Self {
        Error::Data {
            path: path.into(),
            at: at.into(),
            msg: msg.into(),
        }
    }
}

/// `Result` with the library's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
