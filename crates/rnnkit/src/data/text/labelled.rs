//! Labelled texts for classification, from either of the two layouts people keep them in: a
//! directory with one file per class (`Russian.txt`, `Greek.txt`, ...; one example per line,
//! the class is the file name), or a table (CSV, TSV, JSON lines) with a text and a label
//! column. Classes get ids in sorted name order, so the same data always gives the same ids.

use super::load::{Document, TableConfig, load_table, read_text};
use crate::error::{Error, Result};
use std::path::Path;

/// Texts with class ids, and the class names the ids stand for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LabelledTexts {
    /// The texts, one per example.
    pub texts: Vec<String>,
    /// Each text's class id, an index into `classes`.
    pub labels: Vec<usize>,
    /// Class names, sorted (or as given to [`LabelledTexts::load`]).
    pub classes: Vec<String>,
}

impl LabelledTexts {
    /// Loads `path`: a directory of class files, or a table whose columns `table` names
    /// (`label_column` must be set; the default label column name is `label`).
    ///
    /// With `classes` given (those of a trained model), labels map onto them and an unknown
    /// label is an error naming its file and line; otherwise the classes are the labels found,
    /// sorted.
    ///
    /// ```
    /// use rnnkit::data::text::labelled::LabelledTexts;
    /// use rnnkit::data::text::TableConfig;
    /// let dir = std::env::temp_dir().join(format!("rnnkit-doc-labelled-{}", std::process::id()));
    /// std::fs::create_dir_all(&dir).unwrap();
    /// std::fs::write(dir.join("Greek.txt"), "Papadopoulos\nAngelos\n").unwrap();
    /// std::fs::write(dir.join("Czech.txt"), "Novak\n\n").unwrap();
    /// let data = LabelledTexts::load(&dir, &TableConfig::default(), None).unwrap();
    /// assert_eq!(data.classes, ["Czech", "Greek"]);
    /// assert_eq!(data.texts, ["Novak", "Papadopoulos", "Angelos"]);
    /// assert_eq!(data.labels, [0, 1, 1]);
    /// # std::fs::remove_dir_all(&dir).unwrap();
    /// ```
    ///
    /// # Errors
    /// [`Error::Read`] / [`Error::Data`] from reading (naming file and line); [`Error::Data`] for
    /// no examples, an empty label or text (naming its line), or a label outside `classes`.
    pub fn load(path: &Path, table: &TableConfig, classes: Option<&[String]>) -> Result<Self> {
        let docs = if path.is_dir() {
            class_files(path)?
        } else {
            let mut cfg = table.clone();
            if cfg.label_column.is_none() {
                cfg.label_column = Some("label".into());
            }
            load_table(path, &cfg)?
        };
        Self::from_documents(docs, classes, &path.display().to_string())
    }

    /// Labelled documents (each must have a label) as texts and class ids.
    ///
    /// # Errors
    /// As [`LabelledTexts::load`].
    pub fn from_documents(
        docs: Vec<Document>,
        classes: Option<&[String]>,
        source: &str,
    ) -> Result<Self> {
        if docs.is_empty() {
            return Err(Error::data(source, "", "no examples found"));
        }
        let classes: Vec<String> = match classes {
            Some(c) => c.to_vec(),
            None => {
                let mut c: Vec<String> = docs.iter().filter_map(|d| d.label.clone()).collect();
                c.sort();
                c.dedup();
                c
            }
        };
        let mut out = LabelledTexts {
            texts: Vec::with_capacity(docs.len()),
            labels: Vec::with_capacity(docs.len()),
            classes,
        };
        for d in docs {
            let at = d.line.map_or(String::new(), |l| format!("line {l}"));
            let label = d
                .label
                .as_deref()
                .ok_or_else(|| Error::data(&d.path, &at, "the example has no label"))?;
            // An empty label would become a class called "", and an empty text an example
            // with nothing to learn from: both are mistakes in the data, named where they are.
            if label.trim().is_empty() {
                return Err(Error::data(
                    &d.path,
                    &at,
                    "the label is empty: give the example a label, or remove the line",
                ));
            }
            if d.text.trim().is_empty() {
                return Err(Error::data(
                    &d.path,
                    &at,
                    format!(
                        "the text of this example (label {label:?}) is empty: give it a text, \
                         or remove the line"
                    ),
                ));
            }
            let id = out.classes.iter().position(|c| c == label).ok_or_else(|| {
                Error::data(
                    &d.path,
                    &at,
                    format!(
                        "label {label:?} is not one of the model's classes ({}); evaluate on \
                         data with the classes the model was trained on",
                        out.classes.join(", ")
                    ),
                )
            })?;
            out.texts.push(d.text);
            out.labels.push(id);
        }
        Ok(out)
    }

    /// Number of examples.
    pub fn len(&self) -> usize {
        self.texts.len()
    }

    /// Whether there are no examples.
    pub fn is_empty(&self) -> bool {
        self.texts.is_empty()
    }
}

/// One document per non-empty line of each `*.txt` file in `dir` (other files and hidden ones
/// are skipped), labelled with the file's stem.
fn class_files(dir: &Path) -> Result<Vec<Document>> {
    let io = |source| Error::Read {
        path: dir.display().to_string(),
        source,
    };
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io)? {
        let path = entry.map_err(io)?.path();
        let name = path.file_name().map(|n| n.to_string_lossy().to_string());
        if path.is_file()
            && path.extension().is_some_and(|e| e == "txt")
            && !name.is_some_and(|n| n.starts_with('.'))
        {
            files.push(path);
        }
    }
    if files.is_empty() {
        return Err(Error::data(
            dir.display().to_string(),
            "",
            "no .txt files: a class directory holds one CLASS.txt file per class, one example \
             per line",
        ));
    }
    files.sort();
    let mut docs = Vec::new();
    for f in files {
        let class = f
            .file_stem()
            .map(|s| s.to_string_lossy().to_string())
            .unwrap_or_default();
        let text = read_text(&f)?;
        for (i, line) in text.lines().enumerate() {
            let line_text = line.trim();
            if !line_text.is_empty() {
                docs.push(Document {
                    text: line_text.to_string(),
                    label: Some(class.clone()),
                    path: f.display().to_string(),
                    line: Some(i + 1),
                });
            }
        }
    }
    Ok(docs)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp(name: &str) -> std::path::PathBuf {
        let d = std::env::temp_dir().join(format!("rnnkit-labelled-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn tables_map_labels_and_unknown_labels_name_the_line() {
        let d = temp("table");
        let p = d.join("t.csv");
        std::fs::write(&p, "text,label\ngood film,pos\nbad film,neg\nfine,pos\n").unwrap();
        let data = LabelledTexts::load(&p, &TableConfig::default(), None).unwrap();
        assert_eq!(data.classes, ["neg", "pos"]);
        assert_eq!(data.labels, [1, 0, 1]);
        let only_pos = ["pos".to_string()];
        let err = LabelledTexts::load(&p, &TableConfig::default(), Some(&only_pos))
            .unwrap_err()
            .to_string();
        assert!(err.contains("line 3") && err.contains("\"neg\""), "{err}");
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn a_directory_without_class_files_is_an_error() {
        let d = temp("empty");
        let err = LabelledTexts::load(&d, &TableConfig::default(), None)
            .unwrap_err()
            .to_string();
        assert!(err.contains("CLASS.txt"), "{err}");
        std::fs::remove_dir_all(&d).unwrap();
    }
}
