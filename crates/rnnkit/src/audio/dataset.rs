//! Labelled audio files: a folder whose file names carry the label (FSDD's
//! `{label}_{speaker}_{index}.wav`), or a CSV manifest `path,label[,speaker]`.

use crate::error::{Error, Result};
use std::path::{Path, PathBuf};

/// One labelled recording.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AudioItem {
    /// The WAV file.
    pub path: PathBuf,
    /// Its class.
    pub label: String,
    /// Who spoke it, when known (speaker-aware splits need it).
    pub speaker: Option<String>,
    /// The take number, when the name carries one (FSDD's official split holds out takes 0–4).
    pub index: Option<u64>,
}

/// A file-name template: literal text with the fields `{label}`, `{speaker}`, `{index}` and
/// `{*}` (anything, ignored). A field ends where the literal text after it first occurs.
///
/// ```
/// use rnnkit::audio::NamePattern;
/// let p = NamePattern::parse("{label}_{speaker}_{index}.wav").unwrap();
/// let m = p.matches("3_jackson_17.wav").unwrap();
/// assert_eq!((m.label.as_str(), m.speaker.as_deref(), m.index), ("3", Some("jackson"), Some(17)));
/// assert!(p.matches("readme.txt").is_none());
/// assert!(NamePattern::parse("{speaker}.wav").is_err()); // no {label}
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NamePattern {
    source: String,
    parts: Vec<Part>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Part {
    Literal(String),
    Field(Field),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Field {
    Label,
    Speaker,
    Index,
    Any,
}

/// What a file name gave.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NameFields {
    /// The `{label}` text.
    pub label: String,
    /// The `{speaker}` text.
    pub speaker: Option<String>,
    /// The `{index}` number.
    pub index: Option<u64>,
}

impl NamePattern {
    /// Parses a template; it needs a `{label}`, and two fields may not touch (nothing would
    /// say where the first ends).
    pub fn parse(pattern: &str) -> Result<Self> {
        let bad = |msg: String| Error::Config(format!("data.name_pattern = {pattern:?}: {msg}"));
        let mut parts = Vec::new();
        let mut rest = pattern;
        while !rest.is_empty() {
            match rest.find('{') {
                Some(0) => {
                    let end = rest
                        .find('}')
                        .ok_or_else(|| bad("a `{` without its `}`".into()))?;
                    let field = match &rest[1..end] {
                        "label" => Field::Label,
                        "speaker" => Field::Speaker,
                        "index" => Field::Index,
                        "*" => Field::Any,
                        other => {
                            return Err(bad(format!(
                                "unknown field {{{other}}}: the fields are {{label}}, \
                                 {{speaker}}, {{index}} and {{*}}"
                            )));
                        }
                    };
                    if matches!(parts.last(), Some(Part::Field(_))) {
                        return Err(bad(
                            "two fields side by side: put the text that separates them between"
                                .into(),
                        ));
                    }
                    if field != Field::Any && parts.contains(&Part::Field(field)) {
                        return Err(bad(format!("{{{}}} appears twice", &rest[1..end])));
                    }
                    parts.push(Part::Field(field));
                    rest = &rest[end + 1..];
                }
                Some(i) => {
                    parts.push(Part::Literal(rest[..i].to_string()));
                    rest = &rest[i..];
                }
                None => {
                    parts.push(Part::Literal(rest.to_string()));
                    rest = "";
                }
            }
        }
        if !parts.contains(&Part::Field(Field::Label)) {
            return Err(bad("it has no {label} field".into()));
        }
        Ok(NamePattern {
            source: pattern.to_string(),
            parts,
        })
    }

    /// The fields of `name`, or `None` when it does not fit the template.
    pub fn matches(&self, name: &str) -> Option<NameFields> {
        let mut out = NameFields::default();
        let mut rest = name;
        let mut i = 0;
        while i < self.parts.len() {
            match &self.parts[i] {
                Part::Literal(lit) => rest = rest.strip_prefix(lit.as_str())?,
                Part::Field(field) => {
                    // The field runs to the next literal's first occurrence, or to the end.
                    let end = match self.parts.get(i + 1) {
                        Some(Part::Literal(lit)) => rest.find(lit.as_str())?,
                        _ => rest.len(),
                    };
                    let value = &rest[..end];
                    if value.is_empty() {
                        return None;
                    }
                    match field {
                        Field::Label => out.label = value.to_string(),
                        Field::Speaker => out.speaker = Some(value.to_string()),
                        Field::Index => out.index = Some(value.parse().ok()?),
                        Field::Any => {}
                    }
                    rest = &rest[end..];
                }
            }
            i += 1;
        }
        rest.is_empty().then_some(out)
    }
}

impl std::fmt::Display for NamePattern {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.source)
    }
}

/// The `.wav` files of `dir` (not its subfolders), labelled by `pattern`, sorted by name.
/// Other files are skipped; a `.wav` whose name does not fit the pattern is an error naming it.
///
/// ```
/// # let dir = std::env::temp_dir().join(format!("rnnkit-scan-doc-{}", std::process::id()));
/// # std::fs::create_dir_all(&dir).unwrap();
/// # for n in ["0_ann_1.wav", "1_bob_0.wav", "notes.txt"] { std::fs::write(dir.join(n), b"").unwrap(); }
/// use rnnkit::audio::{NamePattern, scan_folder};
/// let items = scan_folder(&dir, &NamePattern::parse("{label}_{speaker}_{index}.wav").unwrap()).unwrap();
/// assert_eq!(items.len(), 2);
/// assert_eq!(items[1].speaker.as_deref(), Some("bob"));
/// ```
pub fn scan_folder(dir: &Path, pattern: &NamePattern) -> Result<Vec<AudioItem>> {
    let read_err = |source| Error::Read {
        path: dir.display().to_string(),
        source,
    };
    let mut items = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(read_err)? {
        let entry = entry.map_err(read_err)?;
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().to_string();
        let is_wav = Path::new(&name)
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("wav"));
        if !is_wav || path.is_dir() {
            continue;
        }
        let fields = pattern.matches(&name).ok_or_else(|| Error::Data {
            path: path.display().to_string(),
            at: String::new(),
            msg: format!(
                "the file name does not fit data.name_pattern = {:?} (rename the file, change \
                 the pattern, or list the files in a CSV manifest)",
                pattern.source
            ),
        })?;
        items.push(AudioItem {
            path,
            label: fields.label,
            speaker: fields.speaker,
            index: fields.index,
        });
    }
    if items.is_empty() {
        return Err(Error::Data {
            path: dir.display().to_string(),
            at: String::new(),
            msg: "holds no .wav files".into(),
        });
    }
    items.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(items)
}

/// A CSV manifest with a header naming `path` and `label` (and optionally `speaker`) columns;
/// relative paths are relative to the manifest's folder.
///
/// ```
/// # let dir = std::env::temp_dir().join(format!("rnnkit-manifest-doc-{}", std::process::id()));
/// # std::fs::create_dir_all(&dir).unwrap();
/// let csv = dir.join("clips.csv");
/// std::fs::write(&csv, "path,label,speaker\na.wav,yes,ann\nsub/b.wav,no,bob\n").unwrap();
/// let items = rnnkit::audio::read_manifest(&csv).unwrap();
/// assert_eq!(items[1].path, dir.join("sub/b.wav"));
/// assert_eq!(items[0].label, "yes");
/// ```
pub fn read_manifest(path: &Path) -> Result<Vec<AudioItem>> {
    let name = path.display().to_string();
    let data_err = |at: String, msg: String| Error::Data {
        path: name.clone(),
        at,
        msg,
    };
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_path(path)
        .map_err(|e| match e.into_kind() {
            csv::ErrorKind::Io(source) => Error::Read {
                path: name.clone(),
                source,
            },
            other => data_err(String::new(), format!("{other:?}")),
        })?;
    let headers = reader
        .headers()
        .map_err(|e| data_err("line 1".into(), e.to_string()))?
        .clone();
    let column = |want: &str| headers.iter().position(|h| h.eq_ignore_ascii_case(want));
    let (Some(pc), Some(lc)) = (column("path"), column("label")) else {
        return Err(data_err(
            "line 1".into(),
            format!(
                "the header must name a `path` and a `label` column (found: {})",
                headers.iter().collect::<Vec<_>>().join(", ")
            ),
        ));
    };
    let sc = column("speaker");
    let base = path.parent().unwrap_or(Path::new("."));
    let mut items = Vec::new();
    for (i, record) in reader.records().enumerate() {
        let line = i + 2;
        let record = record.map_err(|e| data_err(format!("line {line}"), e.to_string()))?;
        let get = |c: usize| record.get(c).unwrap_or("").to_string();
        let (file, label) = (get(pc), get(lc));
        if file.is_empty() || label.is_empty() {
            return Err(data_err(
                format!("line {line}"),
                "an empty path or label".into(),
            ));
        }
        let file = PathBuf::from(file);
        items.push(AudioItem {
            path: if file.is_absolute() {
                file
            } else {
                base.join(file)
            },
            label,
            speaker: sc.map(get).filter(|s| !s.is_empty()),
            index: None,
        });
    }
    if items.is_empty() {
        return Err(data_err(String::new(), "lists no files".into()));
    }
    Ok(items)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_take_fields_up_to_the_next_literal() {
        let p = NamePattern::parse("{speaker}-{label}-{*}.wav").unwrap();
        let m = p.matches("a-b-c-d.wav").unwrap();
        assert_eq!((m.speaker.as_deref(), m.label.as_str()), (Some("a"), "b"));
        assert!(p.matches("a-b.wav").is_none());
        let p = NamePattern::parse("{label}_{index}.wav").unwrap();
        assert!(p.matches("yes_x.wav").is_none(), "index must be a number");
        assert!(p.matches("_3.wav").is_none(), "empty label");
        assert!(NamePattern::parse("{label}{speaker}.wav").is_err());
        assert!(NamePattern::parse("{label}_{label}.wav").is_err());
        assert!(NamePattern::parse("{label.wav").is_err());
        assert!(NamePattern::parse("{name}.wav").is_err());
    }

    #[test]
    fn folders_and_manifests_name_their_problems() {
        let dir = std::env::temp_dir().join(format!("rnnkit-dataset-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let p = NamePattern::parse("{label}_{speaker}_{index}.wav").unwrap();
        assert!(
            scan_folder(&dir, &p)
                .unwrap_err()
                .to_string()
                .contains("no .wav")
        );
        std::fs::write(dir.join("odd.WAV"), b"").unwrap();
        let e = scan_folder(&dir, &p).unwrap_err().to_string();
        assert!(e.contains("odd.WAV") && e.contains("name_pattern"), "{e}");
        let csv = dir.join("m.csv");
        std::fs::write(&csv, "file,label\na.wav,x\n").unwrap();
        let e = read_manifest(&csv).unwrap_err().to_string();
        assert!(e.contains("line 1") && e.contains("path"), "{e}");
        std::fs::write(&csv, "path,label\na.wav,\n").unwrap();
        assert!(
            read_manifest(&csv)
                .unwrap_err()
                .to_string()
                .contains("line 2")
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
