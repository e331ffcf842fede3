//! Reading a run's config: the TOML of a file, `--set key=value` overrides on top, the task
//! picked by its `task` key, missing keys filled from that task's bundled defaults.
//!
//! Serde is the judge of what is valid; `serde_path_to_error` says which key it judged, and
//! the TOML parser's spans say on which line of the file that key is, or which `--set` put
//! it there. Messages look like
//! `run.toml, line 12: unknown key "train.learning_rte"; did you mean "train.learning_rate"?
//! (valid keys in [train]: ...)`.
//!
//! ```
//! use rnnkit::config_file::ConfigSource;
//! use rnnkit::tasks::{AnyConfig, TaskKind};
//!
//! let text = "task = \"classify\"\n[model]\nhidden_size = 32\n";
//! let cfg = ConfigSource::new(text, "run.toml", &["train.epochs=3".to_string()])?.load()?;
//! assert_eq!(cfg.kind(), TaskKind::Classify);
//! assert_eq!(cfg.train_config().epochs, 3);
//!
//! let err = ConfigSource::new("[model]\nhiden_size = 3\n", "run.toml", &[])?
//!     .load()
//!     .unwrap_err();
//! assert!(err.to_string().starts_with("run.toml, line 2: unknown key \"model.hiden_size\""));
//! # Ok::<(), rnnkit::Error>(())
//! ```

mod docs;
mod merge;
mod overrides;
mod sites;
mod suggest;

pub use docs::{docs_table, docs_tables};
pub use overrides::Override;

use crate::error::{Error, Result};
use crate::run::RunDir;
use crate::tasks::{AnyConfig, TaskKind};
use serde::de::DeserializeOwned;
use serde_path_to_error::Track;
use sites::Sites;
use toml::{Table, Value};

/// Where each key of `text` sits (for files that are not run configs, such as study files).
///
/// # Errors
/// [`Error::ConfigAt`] at the line and column of a TOML syntax error.
pub(crate) fn sites_of(text: &str, source: &str) -> Result<Sites> {
    Sites::parse(text, source)
}

/// A config as the user gave it: a file's text (empty for none), its name for messages, and
/// the `--set` overrides applied over it.
#[derive(Debug)]
pub struct ConfigSource<'a> {
    source: &'a str,
    sites: Sites,
    /// The file's keys.
    file: Table,
    overrides: Vec<Override>,
}

impl<'a> ConfigSource<'a> {
    /// Reads `text` (named `source` in messages) and the overrides `sets`, each
    /// `dotted.key=value`.
    ///
    /// # Errors
    /// [`Error::ConfigAt`] for text that is not TOML (with line and column) or a malformed
    /// override (naming it).
    pub fn new(text: &str, source: &'a str, sets: &[String]) -> Result<Self> {
        let sites = Sites::parse(text, source)?;
        let file: Table = text.parse().map_err(|e: toml::de::Error| Error::ConfigAt {
            at: source.to_string(),
            msg: format!("{} (this is not valid TOML)", e.message().trim()),
        })?;
        let overrides = sets
            .iter()
            .map(|s| s.parse::<Override>())
            .collect::<Result<Vec<_>>>()?;
        let me = ConfigSource {
            source,
            sites,
            file,
            overrides,
        };
        me.with_overrides(&[])?;
        Ok(me)
    }

    /// The file with the overrides applied; one that picks another variant of a table in
    /// `tagged` starts that table over.
    fn with_overrides(&self, tagged: &[Vec<String>]) -> Result<Table> {
        let mut table = self.file.clone();
        for o in &self.overrides {
            o.apply(&mut table, tagged)?;
        }
        Ok(table)
    }

    /// The task its `task` key names; the language model when it has none.
    ///
    /// # Errors
    /// [`Error::ConfigAt`] for a `task` that names no task.
    pub fn task(&self) -> Result<TaskKind> {
        let table = self.with_overrides(&[])?;
        let Some(v) = table.get("task") else {
            return Ok(TaskKind::default());
        };
        v.as_str()
            .and_then(|name| name.parse().ok())
            .ok_or_else(|| {
                let names: Vec<String> = TaskKind::ALL.iter().map(|k| format!("\"{k}\"")).collect();
                Error::ConfigAt {
                    at: self.at(&["task".to_string()]),
                    msg: format!("task = {v}: expected one of {}", names.join(", ")),
                }
            })
    }

    /// The config of its task, keys it does not give taken from the task's bundled defaults.
    ///
    /// # Errors
    /// [`Error::ConfigAt`] for an unknown key, a value of the wrong type or range, an unknown
    /// variant or a missing key: where it is (file and line, or the `--set`), which key, and
    /// the valid keys or variants with the closest one.
    pub fn load(&self) -> Result<AnyConfig> {
        let kind = self.task()?;
        let defaults = Value::try_from(AnyConfig::default_for(kind))
            .map_err(|e| Error::Config(format!("cannot write the {kind} defaults as TOML: {e}")))?;
        let read = |value: Value, track: &mut Track| {
            AnyConfig::deserialize_as(kind, serde_path_to_error::Deserializer::new(value, track))
                .map_err(|e| e.message().trim().to_string())
        };
        let naive = merge::merge_defaults(
            defaults.clone(),
            Value::Table(self.with_overrides(&[])?),
            &[],
        );
        let tagged = merge::tagged_tables(&naive, read);
        let user = Value::Table(self.with_overrides(&tagged)?);
        let merged = merge::merge_defaults(defaults, user, &tagged);
        let mut track = Track::new();
        read(merged, &mut track).map_err(|msg| self.explain(&track.path(), &msg))
    }

    /// Reads it as a `T` by `T`'s own serde defaults (no task defaults merged in): for
    /// configs of a program of one's own.
    ///
    /// # Errors
    /// As [`ConfigSource::load`].
    pub fn load_as<T: DeserializeOwned>(&self) -> Result<T> {
        let tagged = merge::tagged_tables(&Value::Table(self.with_overrides(&[])?), |v, t| {
            T::deserialize(serde_path_to_error::Deserializer::new(v, t))
                .map(drop)
                .map_err(|e| e.message().trim().to_string())
        });
        serde_path_to_error::deserialize(Value::Table(self.with_overrides(&tagged)?))
            .map_err(|e| self.explain(e.path(), e.inner().message()))
    }

    /// A serde error at `path` as a message that says where and what.
    fn explain(&self, path: &serde_path_to_error::Path, msg: &str) -> Error {
        let mut path = merge::segments(path);
        let msg = msg.trim();
        if let Some((name, expected)) = parse_unknown(msg, "unknown field `") {
            // Inside an internally tagged enum the path stops at the enum's table.
            if path.last() != Some(&name) {
                path.push(name.clone());
            }
            let parent = &path[..path.len() - 1];
            let table = if parent.is_empty() {
                "at the top level".to_string()
            } else {
                format!("in [{}]", parent.join("."))
            };
            let suggestion = suggest::closest(&name, &expected)
                .map(|best| format!("; did you mean \"{}\"?", dotted(parent, best)))
                .unwrap_or_default();
            let valid = if expected.is_empty() {
                format!("(there are no keys {table})")
            } else {
                format!("(valid keys {table}: {})", expected.join(", "))
            };
            return Error::ConfigAt {
                at: self.at(&path),
                msg: format!("unknown key \"{}\"{suggestion} {valid}", path.join(".")),
            };
        }
        if let Some((name, expected)) = parse_unknown(msg, "unknown variant `") {
            let suggestion = suggest::closest(&name, &expected)
                .map(|best| format!("; did you mean \"{best}\"?"))
                .unwrap_or_default();
            return Error::ConfigAt {
                at: self.at(&path),
                msg: format!(
                    "unknown variant \"{name}\" for \"{}\"{suggestion} (valid: {})",
                    path.join("."),
                    expected.join(", ")
                ),
            };
        }
        if let Some(field) = msg
            .strip_prefix("missing field `")
            .and_then(|m| m.strip_suffix('`'))
        {
            // Blame whoever wrote the table that lacks it.
            let at = self.at(&path);
            path.push(field.to_string());
            return Error::ConfigAt {
                at,
                msg: format!("missing key \"{}\"", path.join(".")),
            };
        }
        let key = if path.is_empty() {
            "the config".to_string()
        } else {
            format!("\"{}\"", path.join("."))
        };
        Error::ConfigAt {
            at: self.at(&path),
            msg: format!("bad value for {key}: {msg}"),
        }
    }

    /// Where the key at `path` came from: the last `--set` that touched it, else its line in
    /// the file (or its nearest table's), else the file.
    fn at(&self, path: &[String]) -> String {
        if let Some(o) = self.overrides.iter().rev().find(|o| o.touches(path)) {
            return format!("--set {}", o.text());
        }
        match self.sites.line(path) {
            Some(line) => format!("{}, line {line}", self.source),
            None => self.source.to_string(),
        }
    }
}

/// The keys a `--set` may change when a run is continued (`rnnkit train --resume`), with the
/// tables under them: how long and how it trains on, never what it is (data, model, optimizer,
/// seeds), which the checkpoint was made with.
pub const RESUME_KEYS: &[&str] = &[
    "train.epochs",
    "train.max_steps",
    "train.patience",
    "train.stop_below",
    "train.schedule",
    "train.checkpoint_every",
    "train.diagnostics_every",
    "output.threads",
];

/// Reads the config of a run being continued: its saved `config.toml` (`text`, named
/// `source`) with `sets`, each of which must change a key of [`RESUME_KEYS`].
///
/// ```
/// use rnnkit::config_file::parse_for_resume;
/// let saved = "task = \"classify\"\n";
/// let cfg = parse_for_resume(saved, "run/config.toml", &["train.epochs=50".to_string()])?;
/// assert_eq!(cfg.train_config().epochs, 50);
/// let err = parse_for_resume(saved, "run/config.toml", &["model.hidden_size=8".to_string()]);
/// assert!(err.unwrap_err().to_string().contains("cannot change when resuming"));
/// # Ok::<(), rnnkit::Error>(())
/// ```
///
/// # Errors
/// [`Error::ConfigAt`] naming a `--set` of any other key, with the keys that may change;
/// else as [`parse`].
pub fn parse_for_resume(text: &str, source: &str, sets: &[String]) -> Result<AnyConfig> {
    for set in sets {
        let o: Override = set.parse()?;
        let key = o.key();
        let allowed = RESUME_KEYS
            .iter()
            .any(|k| key == *k || key.starts_with(&format!("{k}.")));
        if !allowed {
            return Err(Error::ConfigAt {
                at: format!("--set {set}"),
                msg: format!(
                    "\"{key}\" cannot change when resuming: the checkpoint was trained with the \
                     run's own value (start a new run to change it); keys that may change: {}",
                    RESUME_KEYS.join(", ")
                ),
            });
        }
    }
    parse(text, source, sets)
}

/// Reads a config of any task (see [`ConfigSource`]).
///
/// ```
/// let cfg = rnnkit::config_file::parse("", "defaults", &["task=forecast".to_string()])?;
/// assert_eq!(cfg.kind(), rnnkit::tasks::TaskKind::Forecast);
/// # Ok::<(), rnnkit::Error>(())
/// ```
///
/// # Errors
/// As [`ConfigSource::new`] and [`ConfigSource::load`].
pub fn parse(text: &str, source: &str, sets: &[String]) -> Result<AnyConfig> {
    ConfigSource::new(text, source, sets)?.load()
}

/// The resolved config a run saved in its `config.toml`.
///
/// ```no_run
/// let run = rnnkit::run::RunDir::open("runs/names")?;
/// let cfg = rnnkit::config_file::read_run_config(&run)?;
/// println!("a {} run", cfg.kind());
/// # Ok::<(), rnnkit::Error>(())
/// ```
///
/// # Errors
/// [`Error::Io`] when `config.toml` cannot be read, else as [`parse`].
pub fn read_run_config(run: &RunDir) -> Result<AnyConfig> {
    let name = run.config_path().display().to_string();
    parse(&run.read_config()?, &name, &[])
}

/// `parent.name` as a dotted key.
fn dotted(parent: &[String], name: &str) -> String {
    parent
        .iter()
        .map(String::as_str)
        .chain([name])
        .collect::<Vec<_>>()
        .join(".")
}

/// Splits serde's "unknown field `x`, expected one of `a`, `b`" (or `unknown variant`) into
/// the name and the valid names. Serde writes the list as "expected `a`", "expected `a` or
/// `b`", "expected one of ...", or "there are no fields".
fn parse_unknown(msg: &str, prefix: &str) -> Option<(String, Vec<String>)> {
    let rest = msg.strip_prefix(prefix)?;
    let (name, rest) = rest.split_once('`')?;
    let expected = rest
        .split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_string)
        .collect();
    Some((name.to_string(), expected))
}

#[cfg(test)]
mod tests;
