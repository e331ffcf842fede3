//! Where each key of a config file sits: dotted paths with the lines of their keys, from the
//! TOML parser's spans.

use crate::error::{Error, Result};
use std::ops::Range;
use toml::Spanned;
use toml::de::{DeTable, DeValue};

/// The keys of a config file and where they are.
#[derive(Debug, Default)]
pub(crate) struct Sites {
    /// Each key's dotted path and the byte span of the key (of the value, for the items of an
    /// array of tables).
    keys: Vec<(Vec<String>, Range<usize>)>,
    /// 1 + the byte offset of each newline, for line numbers.
    line_starts: Vec<usize>,
}

impl Sites {
    /// The sites of `text`.
    ///
    /// # Errors
    /// [`Error::ConfigAt`] at the line and column of a syntax error.
    pub(crate) fn parse(text: &str, source: &str) -> Result<Sites> {
        let mut sites = Sites {
            keys: Vec::new(),
            line_starts: std::iter::once(0)
                .chain(text.match_indices('\n').map(|(i, _)| i + 1))
                .collect(),
        };
        let doc = DeTable::parse(text).map_err(|e| {
            let at = match e.span() {
                Some(span) => {
                    let (line, col) = line_col(text, span.start);
                    format!("{source}, line {line}, column {col}")
                }
                None => source.to_string(),
            };
            Error::ConfigAt {
                at,
                msg: format!("{} (this is not valid TOML)", e.message().trim()),
            }
        })?;
        sites.table(doc.get_ref(), &[]);
        Ok(sites)
    }

    fn table(&mut self, table: &DeTable<'_>, prefix: &[String]) {
        for (key, value) in table {
            let mut path = prefix.to_vec();
            path.push(key.get_ref().to_string());
            self.value(value, path, key.span());
        }
    }

    fn value(&mut self, value: &Spanned<DeValue<'_>>, path: Vec<String>, key: Range<usize>) {
        self.keys.push((path.clone(), key));
        match value.get_ref() {
            DeValue::Table(t) => self.table(t, &path),
            // Items of an array of tables share their array's dotted path.
            DeValue::Array(items) => {
                for item in items {
                    self.value(item, path.clone(), item.span());
                }
            }
            _ => {}
        }
    }

    /// The line of the key at `path`, or of the nearest table around it that the file has.
    pub(crate) fn line(&self, path: &[String]) -> Option<usize> {
        (0..=path.len()).rev().find_map(|n| {
            let (_, span) = self.keys.iter().find(|(p, _)| p[..] == path[..n])?;
            Some(self.line_starts.partition_point(|&s| s <= span.start))
        })
    }
}

/// 1-based line and column (in characters) of byte offset `pos`.
fn line_col(text: &str, pos: usize) -> (usize, usize) {
    let mut pos = pos.min(text.len());
    while !text.is_char_boundary(pos) {
        pos -= 1;
    }
    let before = &text[..pos];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    (line, before[line_start..].chars().count() + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path(s: &str) -> Vec<String> {
        s.split('.').map(String::from).collect()
    }

    #[test]
    fn keys_tables_and_dotted_keys_have_lines() {
        let text = "model.cell = \"gru\"\nseed = 1\n[train]\nepochs = 2\n\
                    [train.optimizer]\nkind = \"sgd\"\n";
        let s = Sites::parse(text, "x.toml").unwrap();
        assert_eq!(s.line(&path("model.cell")), Some(1));
        assert_eq!(s.line(&path("seed")), Some(2));
        assert_eq!(s.line(&path("train.epochs")), Some(4));
        assert_eq!(s.line(&path("train.optimizer")), Some(5));
        assert_eq!(s.line(&path("train.optimizer.kind")), Some(6));
        // A key the file lacks: the nearest table it has.
        assert_eq!(s.line(&path("train.optimizer.lr")), Some(5));
        assert_eq!(s.line(&path("data.path")), None);
    }

    #[test]
    fn syntax_errors_give_line_and_column() {
        let e = Sites::parse("seed = 1\n[model\n", "x.toml")
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("x.toml, line 2, column"), "{e}");
        assert!(e.contains("not valid TOML"), "{e}");
        assert_eq!(line_col("a\nbc\nd", 3), (2, 2));
        assert_eq!(line_col("é\nx", 3), (2, 1));
    }
}
