//! `--set dotted.key=value`: one override of a config, parsed once and applied to the file's
//! table before the defaults are merged in.

use super::merge::TAG_KEYS;
use crate::error::{Error, Result};
use toml::{Table, Value};

/// One `--set dotted.key=value`.
///
/// The value is read as one TOML value (`3`, `1e-3`, `true`, `"x"`, `[1, 2]`,
/// `{ kind = "sgd", lr = 1.0 }`) and, where it is not one, taken as a plain string, so
/// `data.path=corpus.txt` needs no quotes.
///
/// ```
/// use rnnkit::config_file::Override;
/// let o: Override = "train.optimizer.lr=0.01".parse()?;
/// assert_eq!(o.key(), "train.optimizer.lr");
/// let mut t = toml::Table::new();
/// o.apply(&mut t, &[])?;
/// assert_eq!(t["train"]["optimizer"]["lr"].as_float(), Some(0.01));
/// assert_eq!(o.value(), &toml::Value::Float(0.01));
/// let p: Override = "data.path=corpus.txt".parse()?;
/// assert_eq!(p.value().as_str(), Some("corpus.txt"));
/// # Ok::<(), rnnkit::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct Override {
    /// The argument as the user typed it, for messages.
    text: String,
    path: Vec<String>,
    value: Value,
}

impl std::str::FromStr for Override {
    type Err = Error;

    fn from_str(text: &str) -> Result<Override> {
        let bad = |msg: String| Error::ConfigAt {
            at: format!("--set {text}"),
            msg,
        };
        let (key, raw) = text
            .split_once('=')
            .ok_or_else(|| bad("expected key=value, e.g. --set train.epochs=5".into()))?;
        let path: Vec<String> = key.split('.').map(|s| s.trim().to_string()).collect();
        if path.iter().any(String::is_empty) {
            return Err(bad(format!(
                "the key \"{}\" has an empty part; write dotted keys like train.optimizer.lr",
                key.trim()
            )));
        }
        let raw = raw.trim();
        // A lone `v = <raw>` document parses exactly when raw is one TOML value.
        let value = match format!("v = {raw}").parse::<Table>() {
            Ok(mut t) if t.len() == 1 => t.remove("v").unwrap_or(Value::String(raw.into())),
            _ => Value::String(raw.to_string()),
        };
        Ok(Override {
            text: text.to_string(),
            path,
            value,
        })
    }
}

impl Override {
    /// The dotted key: `train.optimizer.lr`.
    pub fn key(&self) -> String {
        self.path.join(".")
    }

    /// The key's parts.
    pub fn path(&self) -> &[String] {
        &self.path
    }

    /// The value it sets.
    pub fn value(&self) -> &Value {
        &self.value
    }

    /// The argument as given, `train.epochs=3`.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// Sets the key in `table`, making the tables on the way. Choosing another variant of a
    /// table in `tagged` (`train.optimizer.kind=sgd` over a file's `adam`) starts that table
    /// over, so the keys of the variant the file chose do not linger beside the new one's.
    ///
    /// # Errors
    /// [`Error::ConfigAt`] when a part of the key is a value, not a table (`seed.x=1`).
    pub fn apply(&self, table: &mut Table, tagged: &[Vec<String>]) -> Result<()> {
        let (last, parents) = self.path.split_last().expect("parse rejects empty keys");
        let mut here = table;
        for (i, part) in parents.iter().enumerate() {
            let slot = here
                .entry(part.clone())
                .or_insert_with(|| Value::Table(Table::new()));
            here = match slot {
                Value::Table(t) => t,
                other => {
                    return Err(Error::ConfigAt {
                        at: format!("--set {}", self.text),
                        msg: format!(
                            "\"{}\" is {other}, not a table, so it has no key \"{}\"",
                            self.path[..=i].join("."),
                            self.path[i + 1]
                        ),
                    });
                }
            };
        }
        if TAG_KEYS.contains(&last.as_str())
            && tagged.iter().any(|t| t[..] == parents[..])
            && here.get(last).is_some_and(|v| *v != self.value)
        {
            here.clear();
        }
        here.insert(last.clone(), self.value.clone());
        Ok(())
    }

    /// Whether this override set `path` or a table around it or inside it: the place to
    /// blame for an error at `path`.
    pub(crate) fn touches(&self, path: &[String]) -> bool {
        let n = self.path.len().min(path.len());
        self.path[..n] == path[..n]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn apply(table: &str, sets: &[&str]) -> Result<Table> {
        let mut t: Table = table.parse().unwrap();
        for s in sets {
            s.parse::<Override>()?
                .apply(&mut t, &[vec!["o".to_string()]])?;
        }
        Ok(t)
    }

    #[test]
    fn values_are_toml_or_plain_strings() {
        let t = apply(
            "",
            &[
                "a.n=3",
                "a.x=1e-3",
                "a.b=true",
                "a.q=\"v 1.txt\"",
                "a.s=corpus.txt",
                "a.l=[1, 2]",
                "a.e=",
                "c={ kind = \"sgd\", lr = 1.0 }",
            ],
        )
        .unwrap();
        let a = t["a"].as_table().unwrap();
        assert_eq!(a["n"], Value::Integer(3));
        assert_eq!(a["x"], Value::Float(1e-3));
        assert_eq!(a["b"], Value::Boolean(true));
        assert_eq!(a["q"].as_str(), Some("v 1.txt"));
        assert_eq!(a["s"].as_str(), Some("corpus.txt"));
        assert_eq!(a["l"].as_array().map(Vec::len), Some(2));
        assert_eq!(a["e"].as_str(), Some(""));
        assert_eq!(t["c"]["lr"], Value::Float(1.0));
    }

    #[test]
    fn a_new_variant_starts_its_table_over() {
        let t = apply(
            "[o]\nkind = \"adam\"\nbetas = [0.9, 0.99]\n",
            &["o.kind=sgd", "o.lr=1"],
        )
        .unwrap();
        assert_eq!(t["o"].as_table().unwrap().len(), 2, "{t}");
        // The same variant again keeps its keys.
        let t = apply("[o]\nkind = \"adam\"\nlr = 2\n", &["o.kind=adam"]).unwrap();
        assert_eq!(t["o"]["lr"], Value::Integer(2));
    }

    #[test]
    fn malformed_overrides_name_themselves() {
        let e = apply("", &["train.epochs"]).unwrap_err().to_string();
        assert!(
            e.starts_with("--set train.epochs: expected key=value"),
            "{e}"
        );
        let e = apply("", &["a..b=1"]).unwrap_err().to_string();
        assert!(e.contains("empty part"), "{e}");
        let e = apply("seed = 1\n", &["seed.x=1"]).unwrap_err().to_string();
        assert!(
            e.starts_with("--set seed.x=1: \"seed\" is 1, not a table"),
            "{e}"
        );
    }

    #[test]
    fn touches_the_key_its_parents_and_children() {
        let o: Override = "train.optimizer.kind=adam".parse().unwrap();
        let p = |s: &str| s.split('.').map(String::from).collect::<Vec<_>>();
        assert!(o.touches(&p("train.optimizer")));
        assert!(o.touches(&p("train.optimizer.kind")));
        assert!(!o.touches(&p("train.epochs")));
        assert!(!o.touches(&p("model")));
    }
}
