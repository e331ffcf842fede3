//! Standard output that survives its reader going away.
//!
//! Rust ignores SIGPIPE, so `println!` panics ("failed printing to stdout: Broken pipe") when
//! the output is piped into a reader that has quit, e.g. `rnnkit bench | head -1`. Commands
//! write their output through [`emit`] instead: a closed pipe is the reader saying it has seen
//! enough, so the command stops writing and ends normally, as `cat` and `ls` do.

use anyhow::{Context, Result};
use std::io::Write;

/// Writes `text` to stdout and flushes. `Ok(false)` when the reader has gone (a broken pipe):
/// write nothing more. Any other failure (a full disk behind a redirect) is an error.
///
/// ```ignore
/// if !crate::stdout::emit(&report)? {
///     return Ok(()); // `| head` has what it wanted
/// }
/// ```
pub fn emit(text: &str) -> Result<bool> {
    finished_or_failed(write_now(text))
}

/// Writes and flushes at once (for output that streams, token by token).
pub fn write_now(text: &str) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes()).and_then(|()| out.flush())
}

/// What a write to stdout means for the command: `Ok(true)` go on, `Ok(false)` the reader has
/// gone (stop quietly), `Err` a real failure.
pub fn finished_or_failed(written: std::io::Result<()>) -> Result<bool> {
    match written {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(false),
        Err(e) => Err(e).context("writing to stdout"),
    }
}
