//! The library's one error type.

use thiserror::Error as ThisError;

/// Everything the library can report. Messages say what was wrong and where.
#[derive(Debug, ThisError)]
pub enum Error {
    /// A configuration value out of range or inconsistent.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// A mistake in a config file or a `--set` override, and where it is.
    ///
    /// `at` is `run.toml, line 12`, `--set train.epochs=x`, or the file alone.
    #[error("{at}: {msg}")]
    ConfigAt {
        /// The file and line, or the `--set` argument.
        at: String,
        /// What is wrong: the key, the valid keys or values, the closest one.
        msg: String,
    },
    /// A run directory that cannot be written: it holds another run, or another process is
    /// writing it.
    #[error("{path}: {msg}")]
    RunDir {
        /// The directory.
        path: String,
        /// Why, and what to do.
        msg: String,
    },
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
    /// A file rnnkit wrote (a checkpoint, saved weights) that is damaged: truncated, a checksum
    /// that does not match, non-finite weights, tensors that do not fit the run's config.
    #[error("{path}: {msg}")]
    Corrupt {
        /// The file.
        path: String,
        /// What is wrong with it.
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
    /// Training stopped because the loss or gradients kept being non-finite, or the loss stayed
    /// far above where it started; or weights became non-finite and were not saved.
    #[error("training diverged: {0}")]
    Diverged(String),
    /// An error with what was being done when it happened (`reading the training text
    /// (data.path = x.txt)`), added with [`ResultExt::context`].
    #[error("{context}: {source}")]
    Context {
        /// What was being done.
        context: String,
        /// What went wrong.
        source: Box<Error>,
    },
    /// An I/O error with the path it happened on.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// An input file (data, config, tokenizer) that could not be read: `reading PATH`, the I/O
    /// error left to the source chain (as `anyhow`'s context prints it: `reading PATH: No such
    /// file or directory`). The input is to blame, so the CLI exits with 2; I/O failing on the
    /// run's own files is [`Error::Io`] (exit 1).
    #[error("reading {path}")]
    Read {
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

impl Error {
    /// An [`Error::Read`]: the input file at `path` could not be read.
    ///
    /// ```
    /// let e = rnnkit::Error::read("x.csv", std::io::ErrorKind::NotFound.into());
    /// assert_eq!(e.to_string(), "reading x.csv");
    /// assert!(e.is_bad_input());
    /// ```
    pub fn read(path: impl AsRef<std::path::Path>, source: std::io::Error) -> Self {
        Error::Read {
            path: path.as_ref().display().to_string(),
            source,
        }
    }

    /// The error under any [`Error::Context`] layers: what went wrong, not what was being done.
    ///
    /// ```
    /// use rnnkit::error::ResultExt;
    /// let r: rnnkit::Result<()> = Err(rnnkit::Error::Config("bad".into()));
    /// let e = r.context("reading x.toml").unwrap_err();
    /// assert_eq!(e.to_string(), "reading x.toml: invalid configuration: bad");
    /// assert!(matches!(e.root(), rnnkit::Error::Config(_)));
    /// ```
    pub fn root(&self) -> &Error {
        match self {
            Error::Context { source, .. } => source.root(),
            e => e,
        }
    }

    /// Whether the input is to blame (a config, a data file, an input that cannot be read, a
    /// shape that does not fit), not the run: the CLI exits with code 2 for these, 1 for the
    /// others (a failed or diverged run, a corrupt checkpoint, I/O while running).
    pub fn is_bad_input(&self) -> bool {
        matches!(
            self.root(),
            Error::Config(_)
                | Error::ConfigAt { .. }
                | Error::RunDir { .. }
                | Error::Format { .. }
                | Error::Data { .. }
                | Error::Read { .. }
                | Error::Shape(_)
        )
    }
}

/// Adds what was being done to an error, as `anyhow::Context` does.
pub trait ResultExt<T> {
    /// Wraps the error in [`Error::Context`] with `context`.
    fn context(self, context: impl Into<String>) -> Result<T>;
    /// Same, with the context computed only on error.
    fn with_context<S: Into<String>>(self, f: impl FnOnce() -> S) -> Result<T>;
}

impl<T> ResultExt<T> for Result<T> {
    fn context(self, context: impl Into<String>) -> Result<T> {
        self.map_err(|e| Error::Context {
            context: context.into(),
            source: Box::new(e),
        })
    }

    fn with_context<S: Into<String>>(self, f: impl FnOnce() -> S) -> Result<T> {
        self.map_err(|e| Error::Context {
            context: f().into(),
            source: Box::new(e),
        })
    }
}

/// `Result` with the library's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
