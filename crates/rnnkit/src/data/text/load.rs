//! Loading text: a UTF-8 file, a directory of files, or a table (CSV, TSV, JSON lines) with a
//! text column and an optional label column.
//!
//! Every loader checks the bytes first: a file that is not UTF-8 is an error naming the line of
//! the first bad byte and its byte offset, and an empty file is an error (a data set that
//! silently loses a file trains a different model). A UTF-8 byte order mark is dropped, and line
//! endings are made `\n`: CRLF (Windows) and a lone CR (classic Mac OS) both become `\n`, inside
//! quoted CSV fields too, so the same text gives the same tokens whatever editor saved it.
//!
//! Line numbers in errors and in [`Document::line`] count lines the way an editor does: 1-based,
//! with CRLF, CR and LF each ending one line.
//!
//! ```
//! use rnnkit::data::text::load::{load_table, TableConfig};
//!
//! let dir = std::env::temp_dir().join(format!("rnnkit-doc-load-{}", std::process::id()));
//! std::fs::create_dir_all(&dir).unwrap();
//! let path = dir.join("reviews.csv");
//! std::fs::write(&path, "id,review,label\r\n1,\"Great, really\",pos\r\n2,Dull,neg\r\n").unwrap();
//!
//! let cfg = TableConfig { text_column: "review".into(), label_column: Some("label".into()), ..Default::default() };
//! let docs = load_table(&path, &cfg).unwrap();
//! assert_eq!(docs.len(), 2);
//! assert_eq!(docs[0].text, "Great, really");
//! assert_eq!(docs[1].label.as_deref(), Some("neg"));
//! assert_eq!(docs[1].line, Some(3));
//! # std::fs::remove_dir_all(&dir).unwrap();
//! ```

use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// One document: its text, an optional label, and where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Document {
    /// The text, with `\n` line endings.
    pub text: String,
    /// The label, for tables loaded with a label column (numbers and booleans in JSON lines
    /// become their JSON text: `1`, `true`).
    pub label: Option<String>,
    /// The file it was read from.
    pub path: String,
    /// The 1-based line where the record starts; `None` when the document is a whole file.
    pub line: Option<usize>,
}

impl AsRef<str> for Document {
    /// The text, so a `&[Document]` can be passed wherever texts are expected.
    fn as_ref(&self) -> &str {
        &self.text
    }
}

/// The layout of a table file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TableFormat {
    /// Comma-separated values with a header row (RFC 4180 quoting with `"`).
    Csv,
    /// Tab-separated values with a header row, without quoting (the IANA TSV format: a field
    /// cannot hold a tab or a newline, and `"` is an ordinary character).
    Tsv,
    /// One JSON object per line; blank lines are skipped.
    #[serde(rename = "jsonl")]
    JsonLines,
}

impl TableFormat {
    /// The format a file name's extension implies: `.csv`, `.tsv`/`.tab`, `.jsonl`/`.ndjson`.
    ///
    /// ```
    /// use rnnkit::data::text::load::TableFormat;
    /// assert_eq!(TableFormat::from_path("a/train.tsv".as_ref()), Some(TableFormat::Tsv));
    /// assert_eq!(TableFormat::from_path("notes.txt".as_ref()), None);
    /// ```
    pub fn from_path(path: &Path) -> Option<TableFormat> {
        let ext = path.extension()?.to_str()?.to_ascii_lowercase();
        match ext.as_str() {
            "csv" => Some(TableFormat::Csv),
            "tsv" | "tab" => Some(TableFormat::Tsv),
            "jsonl" | "ndjson" => Some(TableFormat::JsonLines),
            _ => None,
        }
    }
}

/// Which columns of a table to read, and the table's layout.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TableConfig {
    /// The layout; `None` infers it from the file's extension ([`TableFormat::from_path`]).
    pub format: Option<TableFormat>,
    /// The column (CSV/TSV header name, or JSON field) holding the text.
    pub text_column: String,
    /// The column holding the label, if any.
    pub label_column: Option<String>,
}

impl Default for TableConfig {
    /// Format from the extension, text in a column named `text` (the name Hugging Face data sets
    /// use), no label.
    fn default() -> Self {
        TableConfig {
            format: None,
            text_column: "text".into(),
            label_column: None,
        }
    }
}

/// Reads a UTF-8 text file: drops a byte order mark, makes line endings `\n`.
///
/// Errors: [`Error::Read`] when it cannot be read, [`Error::Data`] when it is empty or not UTF-8
/// (naming the line and byte offset of the first bad byte).
///
/// ```
/// let path = std::env::temp_dir().join(format!("rnnkit-doc-read-{}.txt", std::process::id()));
/// std::fs::write(&path, b"one\r\ntwo\rthree\n").unwrap();
/// assert_eq!(rnnkit::data::text::load::read_text(&path).unwrap(), "one\ntwo\nthree\n");
/// std::fs::write(&path, b"ok\n\xff").unwrap();
/// let err = rnnkit::data::text::load::read_text(&path).unwrap_err().to_string();
/// assert!(err.contains("line 2") && err.contains("byte offset 3"), "{err}");
/// # std::fs::remove_file(&path).unwrap();
/// ```
pub fn read_text(path: &Path) -> Result<String> {
    let bytes = std::fs::read(path).map_err(|source| Error::Read {
        path: path.display().to_string(),
        source,
    })?;
    decode_text(&bytes, &path.display().to_string())
}

/// Checks and decodes the bytes of a text file named `name` (see [`read_text`]).
pub(crate) fn decode_text(bytes: &[u8], name: &str) -> Result<String> {
    const BOM: &[u8] = b"\xEF\xBB\xBF";
    let (skipped, body) = match bytes.strip_prefix(BOM) {
        Some(rest) => (BOM.len(), rest),
        None => (0, bytes),
    };
    if body.is_empty() {
        return Err(Error::data(
            name,
            "",
            "the file is empty; remove it from the data set or give it some text",
        ));
    }
    let text = std::str::from_utf8(body).map_err(|e| {
        let at = e.valid_up_to();
        Error::data(
            name,
            format!("line {}", line_of(body, at)),
            format!(
                "invalid UTF-8 at byte offset {} (byte 0x{:02x}); save the file as UTF-8 \
                 (e.g. `iconv -f latin1 -t utf-8 in.txt > out.txt`)",
                at + skipped,
                body[at]
            ),
        )
    })?;
    Ok(normalize_newlines(text))
}

/// The 1-based line holding byte `at`, with CRLF, CR and LF each ending a line.
fn line_of(bytes: &[u8], at: usize) -> usize {
    let before = &bytes[..at];
    let lf = before.iter().filter(|&&b| b == b'\n').count();
    // A CR ends a line unless an LF follows it (then the LF is the one counted).
    let lone_cr = before
        .iter()
        .enumerate()
        .filter(|&(i, &b)| b == b'\r' && bytes.get(i + 1) != Some(&b'\n'))
        .count();
    1 + lf + lone_cr
}

/// CRLF and lone CR become LF.
fn normalize_newlines(text: &str) -> String {
    if !text.contains('\r') {
        return text.to_owned();
    }
    text.replace("\r\n", "\n").replace('\r', "\n")
}

/// The longest line [`read_lines`] takes by default: 1 MiB. One text per line is how
/// `rnnkit classify --input` reads; a longer line is a file of another kind.
pub const MAX_LINE_BYTES: usize = 1 << 20;

/// The non-blank lines of `reader` (named `name` in errors), trimmed, each with its 1-based
/// line number: one text per line. Reads line by line, never more than `max_bytes` of one
/// line, so a file that is one enormous line is refused instead of filling memory.
///
/// ```
/// use rnnkit::data::text::load::read_lines;
/// let lines = read_lines(&b"one\n\n  two \r\n"[..], "in.txt", 100).unwrap();
/// assert_eq!(lines, [(1, "one".to_string()), (3, "two".to_string())]);
/// let e = read_lines(&b"ok\n\xff\n"[..], "in.txt", 100).unwrap_err().to_string();
/// assert!(e.contains("in.txt: line 2") && e.contains("UTF-8"), "{e}");
/// let e = read_lines(&b"ok\nfar too long\n"[..], "in.txt", 8).unwrap_err().to_string();
/// assert!(e.contains("in.txt: line 2") && e.contains("longer than 8 bytes"), "{e}");
/// ```
///
/// # Errors
/// [`Error::Data`] naming the line for invalid UTF-8 or a line over `max_bytes`;
/// [`Error::Read`] when reading fails.
pub fn read_lines(
    mut reader: impl std::io::BufRead,
    name: &str,
    max_bytes: usize,
) -> Result<Vec<(usize, String)>> {
    use std::io::{BufRead, Read};
    let mut out = Vec::new();
    let mut buf = Vec::new();
    for number in 1.. {
        buf.clear();
        let limit = u64::try_from(max_bytes)
            .unwrap_or(u64::MAX)
            .saturating_add(2);
        let n = (&mut reader)
            .take(limit)
            .read_until(b'\n', &mut buf)
            .map_err(|source| Error::Read {
                path: name.to_string(),
                source,
            })?;
        if n == 0 {
            break;
        }
        let line = buf.strip_suffix(b"\n").unwrap_or(&buf);
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let at = format!("line {number}");
        if line.len() > max_bytes {
            return Err(Error::data(
                name,
                at,
                format!(
                    "the line is longer than {max_bytes} bytes; give one text per line, each \
                     shorter"
                ),
            ));
        }
        let text = std::str::from_utf8(line).map_err(|e| {
            Error::data(
                name,
                at,
                format!(
                    "invalid UTF-8 at byte {} of the line (byte 0x{:02x}); save the file as \
                     UTF-8",
                    e.valid_up_to() + 1,
                    line[e.valid_up_to()]
                ),
            )
        })?;
        let text = text.trim();
        if !text.is_empty() {
            out.push((number, text.to_string()));
        }
    }
    Ok(out)
}

/// Loads a text file as one document.
///
/// ```
/// let path = std::env::temp_dir().join(format!("rnnkit-doc-file-{}.txt", std::process::id()));
/// std::fs::write(&path, "to be or not to be\n").unwrap();
/// let doc = rnnkit::data::text::load::load_file(&path).unwrap();
/// assert_eq!((doc.text.as_str(), doc.line), ("to be or not to be\n", None));
/// # std::fs::remove_file(&path).unwrap();
/// ```
pub fn load_file(path: &Path) -> Result<Document> {
    Ok(Document {
        text: read_text(path)?,
        label: None,
        path: path.display().to_string(),
        line: None,
    })
}

/// Loads every file of a directory, sorted by file name (byte order), each file one document.
///
/// Subdirectories and hidden files (names starting with `.`) are skipped. An empty directory is
/// an error, as is any empty or non-UTF-8 file in it.
///
/// ```
/// let dir = std::env::temp_dir().join(format!("rnnkit-doc-dir-{}", std::process::id()));
/// std::fs::create_dir_all(&dir).unwrap();
/// std::fs::write(dir.join("b.txt"), "second").unwrap();
/// std::fs::write(dir.join("a.txt"), "first").unwrap();
/// let docs = rnnkit::data::text::load::load_dir(&dir).unwrap();
/// assert_eq!(docs.iter().map(|d| d.text.as_str()).collect::<Vec<_>>(), ["first", "second"]);
/// # std::fs::remove_dir_all(&dir).unwrap();
/// ```
pub fn load_dir(dir: &Path) -> Result<Vec<Document>> {
    let io = |source| Error::Read {
        path: dir.display().to_string(),
        source,
    };
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io)? {
        let entry = entry.map_err(io)?;
        let name = entry.file_name();
        if name.to_string_lossy().starts_with('.') {
            continue;
        }
        // `metadata` follows symbolic links, so a link to a file counts as a file.
        let path = entry.path();
        if std::fs::metadata(&path).map_err(io)?.is_file() {
            files.push((name, path));
        }
    }
    if files.is_empty() {
        return Err(Error::data(
            dir.display().to_string(),
            "",
            "the directory holds no files; point to the directory that holds the text files",
        ));
    }
    files.sort_by(|a, b| a.0.cmp(&b.0));
    files.iter().map(|(_, path)| load_file(path)).collect()
}

/// Loads a table (CSV, TSV or JSON lines): one document per row, text and optional label from
/// the columns named in `cfg`, [`Document::line`] the line where the row starts.
///
/// Errors ([`Error::Data`], each naming the file and line): not UTF-8, an empty file or one
/// without rows, a missing column (listing the columns there are), a CSV/TSV row with the wrong
/// number of fields, a JSON line that is not an object or lacks the field. An unknown
/// extension without `cfg.format` is an [`Error::Config`].
pub fn load_table(path: &Path, cfg: &TableConfig) -> Result<Vec<Document>> {
    let format = match cfg.format.or_else(|| TableFormat::from_path(path)) {
        Some(f) => f,
        None => {
            return Err(Error::Config(format!(
                "cannot tell the table format of {} from its extension; set format to \
                 \"csv\", \"tsv\" or \"jsonl\"",
                path.display()
            )));
        }
    };
    let bytes = std::fs::read(path).map_err(|source| Error::read(path, source))?;
    table_from_bytes(&bytes, &path.display().to_string(), format, cfg)
}

/// Parses the bytes of a table in `format` (named `name` in errors), as [`load_table`] does a
/// file.
///
/// ```
/// use rnnkit::data::text::load::{TableFormat, table_from_bytes};
/// use rnnkit::data::text::TableConfig;
/// let cfg = TableConfig { label_column: Some("label".into()), ..Default::default() };
/// let docs = table_from_bytes(b"text,label\nhello,a\n", "t.csv", TableFormat::Csv, &cfg)?;
/// assert_eq!((docs[0].text.as_str(), docs[0].line), ("hello", Some(2)));
/// assert!(table_from_bytes(b"text\n", "t.csv", TableFormat::Csv, &cfg).is_err());
/// # Ok::<(), rnnkit::Error>(())
/// ```
///
/// # Errors
/// As [`load_table`].
pub fn table_from_bytes(
    bytes: &[u8],
    name: &str,
    format: TableFormat,
    cfg: &TableConfig,
) -> Result<Vec<Document>> {
    let text = decode_text(bytes, name)?;
    let docs = match format {
        TableFormat::Csv => parse_delimited(&text, name, cfg, b',', true)?,
        TableFormat::Tsv => parse_delimited(&text, name, cfg, b'\t', false)?,
        TableFormat::JsonLines => parse_json_lines(&text, name, cfg)?,
    };
    if docs.is_empty() {
        return Err(Error::data(
            name,
            "",
            "the table has no rows; add rows below the header or remove the file",
        ));
    }
    Ok(docs)
}

/// Parses CSV/TSV text (already UTF-8 with `\n` line endings) with a header row.
fn parse_delimited(
    text: &str,
    name: &str,
    cfg: &TableConfig,
    delimiter: u8,
    quoting: bool,
) -> Result<Vec<Document>> {
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .quoting(quoting)
        .has_headers(true)
        .flexible(false)
        .from_reader(text.as_bytes());
    let header = reader.headers().map_err(|e| csv_error(name, &e))?.clone();
    let names: Vec<&str> = header.iter().collect();
    let find = |col: &str| -> Result<usize> {
        names.iter().position(|h| *h == col).ok_or_else(|| {
            Error::data(
                name,
                "line 1",
                format!(
                    "no column \"{col}\"; the header has: {}; set the column name to one of them",
                    quoted_list(&names)
                ),
            )
        })
    };
    let text_idx = find(&cfg.text_column)?;
    let label_idx = cfg.label_column.as_deref().map(find).transpose()?;
    let mut docs = Vec::new();
    for record in reader.records() {
        let record = record.map_err(|e| csv_error(name, &e))?;
        let line = record.position().map(|p| p.line() as usize);
        docs.push(Document {
            // The reader rejects rows of the wrong length, so both indices are in range.
            text: record.get(text_idx).unwrap_or_default().to_owned(),
            label: label_idx.map(|i| record.get(i).unwrap_or_default().to_owned()),
            path: name.to_owned(),
            line,
        });
    }
    Ok(docs)
}

/// A csv error as [`Error::Data`] at the line where it happened.
fn csv_error(name: &str, e: &csv::Error) -> Error {
    let at = e
        .position()
        .map(|p| format!("line {}", p.line()))
        .unwrap_or_default();
    match e.kind() {
        csv::ErrorKind::UnequalLengths {
            expected_len,
            len,
            pos,
        } => Error::data(
            name,
            pos.as_ref()
                .map(|p| format!("line {}", p.line()))
                .unwrap_or(at),
            format!(
                "this row has {len} fields but the header has {expected_len}; quote fields that \
                 contain the delimiter, or fix the row"
            ),
        ),
        _ => Error::data(name, at, format!("cannot parse the table: {e}")),
    }
}

/// Parses JSON lines: each non-blank line one object.
fn parse_json_lines(text: &str, name: &str, cfg: &TableConfig) -> Result<Vec<Document>> {
    let mut docs = Vec::new();
    for (i, line) in text.split('\n').enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let at = format!("line {}", i + 1);
        let value: serde_json::Value = serde_json::from_str(line).map_err(|e| {
            Error::data(
                name,
                format!("{at}, column {}", e.column()),
                format!(
                    "not valid JSON ({}); each line must hold one JSON object, e.g. \
                     {{\"{}\": \"...\"}}",
                    json_message(&e),
                    cfg.text_column
                ),
            )
        })?;
        let serde_json::Value::Object(object) = value else {
            return Err(Error::data(
                name,
                &at,
                format!(
                    "expected a JSON object, found {}; each line must hold one object",
                    json_kind(&value)
                ),
            ));
        };
        let field = |col: &str| {
            object.get(col).ok_or_else(|| {
                let keys: Vec<&str> = object.keys().map(String::as_str).collect();
                Error::data(
                    name,
                    &at,
                    format!(
                        "no field \"{col}\"; this line has: {}; add the field or set the column \
                         name to one of them",
                        quoted_list(&keys)
                    ),
                )
            })
        };
        let text = match field(&cfg.text_column)? {
            serde_json::Value::String(s) => normalize_newlines(s),
            other => {
                return Err(Error::data(
                    name,
                    &at,
                    format!(
                        "field \"{}\" is {}, expected a string",
                        cfg.text_column,
                        json_kind(other)
                    ),
                ));
            }
        };
        let label = match cfg.label_column.as_deref() {
            None => None,
            Some(col) => Some(match field(col)? {
                serde_json::Value::String(s) => s.clone(),
                v @ (serde_json::Value::Number(_) | serde_json::Value::Bool(_)) => v.to_string(),
                other => {
                    return Err(Error::data(
                        name,
                        &at,
                        format!(
                            "field \"{col}\" is {}, expected a string, number or boolean",
                            json_kind(other)
                        ),
                    ));
                }
            }),
        };
        docs.push(Document {
            text,
            label,
            path: name.to_owned(),
            line: Some(i + 1),
        });
    }
    Ok(docs)
}

/// A serde_json error's message without its " at line L column C" suffix (the caller reports
/// the place in the file's terms).
pub(crate) fn json_message(e: &serde_json::Error) -> String {
    let full = e.to_string();
    let suffix = format!(" at line {} column {}", e.line(), e.column());
    full.strip_suffix(&suffix).unwrap_or(&full).to_owned()
}

/// "an array", "a number", ... for messages.
fn json_kind(v: &serde_json::Value) -> &'static str {
    match v {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::Object(_) => "an object",
    }
}

/// `"a", "b"` (or `(none)`).
fn quoted_list(names: &[&str]) -> String {
    if names.is_empty() {
        return "(none)".into();
    }
    names
        .iter()
        .map(|n| format!("\"{n}\""))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_numbers_count_crlf_cr_and_lf_once_each() {
        assert_eq!(line_of(b"a\r\nb\rc\nd", 8), 4);
        assert_eq!(line_of(b"a\r\nb", 3), 2);
        assert_eq!(line_of(b"abc", 2), 1);
    }

    #[test]
    fn decode_strips_bom_and_normalizes_newlines() {
        assert_eq!(
            decode_text(b"\xEF\xBB\xBFa\r\nb\rc", "f").unwrap(),
            "a\nb\nc"
        );
    }

    #[test]
    fn bom_only_is_empty_and_offsets_count_the_bom() {
        let e = decode_text(b"\xEF\xBB\xBF", "f.txt")
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("f.txt: the file is empty"), "{e}");
        let e = decode_text(b"\xEF\xBB\xBFab\r\n\xc3", "f.txt")
            .unwrap_err()
            .to_string();
        assert!(e.contains("line 2") && e.contains("byte offset 7"), "{e}");
    }

    #[test]
    fn tsv_has_no_quoting() {
        let cfg = TableConfig {
            label_column: Some("y".into()),
            ..Default::default()
        };
        let docs =
            parse_delimited("text\ty\n\"quoted\" word\t1\n", "t.tsv", &cfg, b'\t', false).unwrap();
        assert_eq!(docs[0].text, "\"quoted\" word");
        assert_eq!(docs[0].label.as_deref(), Some("1"));
        assert_eq!(docs[0].line, Some(2));
    }

    #[test]
    fn json_lines_labels_and_blank_lines() {
        let cfg = TableConfig {
            label_column: Some("y".into()),
            ..Default::default()
        };
        let text = "{\"text\": \"a\", \"y\": 1}\n\n{\"text\": \"b\", \"y\": \"neg\"}\n";
        let docs = parse_json_lines(text, "t.jsonl", &cfg).unwrap();
        assert_eq!(docs.len(), 2);
        assert_eq!(docs[0].label.as_deref(), Some("1"));
        assert_eq!(docs[1].line, Some(3));
        let e = parse_json_lines("{\"text\": 3}", "t.jsonl", &cfg)
            .unwrap_err()
            .to_string();
        assert!(e.contains("line 1") && e.contains("is a number"), "{e}");
    }
}
