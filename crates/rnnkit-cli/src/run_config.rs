//! Reading a `rnnkit train` config of any task: the user's TOML with `--set` overrides, the
//! task picked by its `task` key, missing keys filled from that task's defaults, and mistakes
//! reported with the file and line (or the `--set`) and exit code 2.

use crate::train_config::merge_defaults;
use anyhow::{Context, Result};
use rnnkit::tasks::{AnyConfig, ConfigVisitor, TaskConfig, TaskKind};
use std::path::Path;

/// A config of one of the tasks.
pub type RunConfig = AnyConfig;

/// The resolved config as TOML, every key written.
pub fn resolved_toml(cfg: &RunConfig) -> Result<String> {
    crate::config_load::resolved_toml(cfg)
}

/// Parses a config of any task: `text` (from `source`) with the `--set` overrides; its `task`
/// key (default `"lm"`) picks the defaults and the shape.
pub fn parse_any(text: &str, source: &str, set: &[String]) -> Result<RunConfig> {
    let mut user: toml::Value =
        toml::from_str(text).map_err(|e| usage(format!("{source}: {}", toml_error(text, &e))))?;
    for s in set {
        apply_set(&mut user, s)?;
    }
    let kind = match user.get("task") {
        None => TaskKind::default(),
        Some(v) => v
            .as_str()
            .and_then(|name| name.parse::<TaskKind>().ok())
            .ok_or_else(|| {
                let names: Vec<String> = TaskKind::ALL.iter().map(|k| format!("\"{k}\"")).collect();
                usage(format!(
                    "{source}: task = {v}: expected one of {}",
                    names.join(", ")
                ))
            })?,
    };
    let defaults =
        toml::Value::try_from(AnyConfig::default_for(kind)).context("encoding the defaults")?;
    let merged = merge_defaults(defaults, user);
    match AnyConfig::deserialize_as(kind, merged) {
        Ok(cfg) => Ok(cfg),
        // The same mistake fails the same way without the defaults merged in; the loader then
        // says where it is (file line or `--set`) and suggests the closest valid key.
        Err(e) => Err(kind.visit_config(Explain {
            text,
            source,
            set,
            message: e.message().trim(),
        })),
    }
}

/// The loader's detailed account of a config that does not deserialize.
struct Explain<'a> {
    text: &'a str,
    source: &'a str,
    set: &'a [String],
    message: &'a str,
}

impl ConfigVisitor for Explain<'_> {
    type Output = anyhow::Error;

    fn visit<C: TaskConfig>(self) -> anyhow::Error {
        match crate::config_load::load_config::<C>(self.text, self.source, self.set) {
            Err(detailed) => usage(format!("{detailed:#}")),
            Ok(_) => usage(format!("{}: {}", self.source, self.message)),
        }
    }
}

/// The Markdown key/default table of a task's config.
struct DocsTable;

impl ConfigVisitor for DocsTable {
    type Output = Result<(&'static str, String)>;

    fn visit<C: TaskConfig>(self) -> Self::Output {
        Ok((C::ABOUT_DEFAULT, crate::config_load::docs_table::<C>()?))
    }
}

/// The Markdown key/default tables of every task, for docs/config.md.
pub fn docs_tables() -> Result<String> {
    let mut out = String::new();
    for &kind in TaskKind::ALL {
        let (what, table) = kind.visit_config(DocsTable)?;
        out.push_str(&format!(
            "### `task = \"{kind}\"` (default: {what})\n\n{table}\n"
        ));
    }
    Ok(out)
}

/// Reads `RUN_DIR/config.toml`, the resolved config a run saved.
pub fn load_run_config(dir: &Path) -> Result<RunConfig> {
    let path = dir.join("config.toml");
    let text = std::fs::read_to_string(&path).map_err(|e| {
        usage(format!(
            "reading {}: {e} (expected a run directory written by rnnkit train)",
            path.display()
        ))
    })?;
    parse_any(&text, &path.display().to_string(), &[])
}

/// A mistake in what the user gave (config, `--set`, paths): exit code 2, not 1.
#[derive(Debug)]
pub struct UsageError(pub String);

impl std::fmt::Display for UsageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UsageError {}

pub fn usage(msg: String) -> anyhow::Error {
    anyhow::Error::new(UsageError(msg))
}

/// A toml error as `line L, column C: message`.
fn toml_error(text: &str, e: &toml::de::Error) -> String {
    match e.span() {
        Some(span) => {
            let before = &text[..span.start.min(text.len())];
            let line = before.matches('\n').count() + 1;
            let col = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
            format!("line {line}, column {col}: {}", e.message().trim())
        }
        None => e.message().trim().to_string(),
    }
}

/// Applies one `--set a.b.c=value` (the value parsed as TOML, else taken as a string).
fn apply_set(root: &mut toml::Value, set: &str) -> Result<()> {
    let (key, raw) = set.split_once('=').ok_or_else(|| {
        usage(format!(
            "--set {set}: expected key=value, e.g. train.epochs=3"
        ))
    })?;
    let key = key.trim();
    let value: toml::Value = match toml::from_str::<toml::Table>(&format!("v = {raw}")) {
        Ok(mut t) => t.remove("v").expect("parsed v"),
        Err(_) => toml::Value::String(raw.to_string()),
    };
    let parts: Vec<&str> = key.split('.').collect();
    if parts.iter().any(|p| p.is_empty()) {
        return Err(usage(format!(
            "--set {set}: `{key}` is not a dotted key like train.optimizer.lr"
        )));
    }
    let mut node = root;
    for p in &parts[..parts.len() - 1] {
        let table = node
            .as_table_mut()
            .ok_or_else(|| usage(format!("--set {set}: `{p}` is inside a value, not a table")))?;
        node = table
            .entry(p.to_string())
            .or_insert_with(|| toml::Value::Table(Default::default()));
    }
    let table = node
        .as_table_mut()
        .ok_or_else(|| usage(format!("--set {set}: the parent of `{key}` is not a table")))?;
    let last = parts[parts.len() - 1];
    // Choosing another variant of a tagged enum (`data.split.by=cutoffs`) starts that table
    // over, so the keys of the variant the file chose do not linger beside the new one's.
    if crate::train_config::TAG_KEYS.contains(&last) && table.get(last).is_some_and(|v| *v != value)
    {
        table.clear();
    }
    table.insert(last.to_string(), value);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rnnkit::tasks::classify::ClassifyConfig;
    use rnnkit::tasks::lm::LmConfig;
    use std::path::PathBuf;

    fn parse_config(text: &str, source: &str, set: &[String]) -> Result<LmConfig> {
        match parse_any(text, source, set)? {
            RunConfig::Lm(c) => Ok(c),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn set_overrides_nested_keys_and_bare_strings() {
        let cfg = parse_config(
            "[model]\nhidden_size = 32\n",
            "t.toml",
            &[
                "train.epochs=2".into(),
                "data.path=other.txt".into(),
                "train.optimizer.lr=0.01".into(),
                "model.cell=\"gru\"".into(),
            ],
        )
        .unwrap();
        assert_eq!(cfg.train.epochs, 2);
        assert_eq!(cfg.data.path, PathBuf::from("other.txt"));
        assert_eq!(cfg.model.hidden_size, 32);
        assert_eq!(cfg.model.cell, rnnkit::CellKind::Gru);
        assert!((cfg.train.optimizer.lr() - 0.01).abs() < 1e-12);
    }

    #[test]
    fn errors_name_the_key_and_the_place() {
        let err = parse_config("[model]\nhiden_size = 3\n", "t.toml", &[])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("t.toml") && err.contains("hiden_size"),
            "{err}"
        );
        let err = parse_config("[model\n", "t.toml", &[])
            .unwrap_err()
            .to_string();
        assert!(err.contains("line 1"), "{err}");
        let err = parse_config("", "t.toml", &["train.epochs".into()])
            .unwrap_err()
            .to_string();
        assert!(err.contains("key=value"), "{err}");
    }

    #[test]
    fn every_example_config_parses() {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../configs");
        let mut seen = 0;
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "toml") {
                let text = std::fs::read_to_string(&path).unwrap();
                let cfg = parse_any(&text, &path.display().to_string(), &[])
                    .unwrap_or_else(|e| panic!("{}: {e:#}", path.display()));
                assert!(
                    text.contains("Measured here"),
                    "{}: no result",
                    path.display()
                );
                let name = path.file_stem().unwrap().to_string_lossy().to_string();
                assert_eq!(cfg.output().1, name, "{}: output.name", path.display());
                seen += 1;
            }
        }
        assert!(seen >= 6, "{seen} configs");
        // The default config file is the bundled default.
        let text = std::fs::read_to_string(dir.join("shakespeare-char.toml")).unwrap();
        match parse_any(&text, "shakespeare-char.toml", &["output.name=".into()]).unwrap() {
            RunConfig::Lm(c) => assert_eq!(c, LmConfig::default()),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_tagged_variant_starts_from_its_own_keys_in_a_file_and_by_set() {
        use rnnkit::data::series::SplitSpec;
        let cutoffs = SplitSpec::Cutoffs {
            val_start: "2010-01-01".into(),
            test_start: "2015-01-01".into(),
        };
        let file = "task = \"forecast\"\n[data.split]\nby = \"cutoffs\"\n\
                    val_start = \"2010-01-01\"\ntest_start = \"2015-01-01\"\n";
        match parse_any(file, "t.toml", &[]).unwrap() {
            RunConfig::Forecast(f) => assert_eq!(f.data.split, cutoffs),
            other => panic!("{other:?}"),
        }
        let sets: Vec<String> = [
            "task=forecast",
            "data.split.by=cutoffs",
            "data.split.val_start=2010-01-01",
            "data.split.test_start=2015-01-01",
        ]
        .map(String::from)
        .into();
        match parse_any("", "t.toml", &sets).unwrap() {
            RunConfig::Forecast(f) => assert_eq!(f.data.split, cutoffs),
            other => panic!("{other:?}"),
        }
        // Over a file that chose the other variant.
        let fractions =
            "task = \"forecast\"\n[data.split]\nby = \"fractions\"\ntrain = 0.6\nval = 0.2\n";
        match parse_any(fractions, "t.toml", &sets[1..]).unwrap() {
            RunConfig::Forecast(f) => assert_eq!(f.data.split, cutoffs),
            other => panic!("{other:?}"),
        }
        // The variant's own fields are required; naming one is what the error says.
        let err = parse_any("", "t.toml", &sets[..2]).unwrap_err().to_string();
        assert!(err.contains("val_start"), "{err}");
        // Back to fractions with only one of its keys: the other is its own default or an
        // error, never a leftover of the other variant.
        let sgd = parse_any("", "t.toml", &["train.optimizer.kind=sgd".into()]).unwrap();
        match sgd {
            RunConfig::Lm(c) => assert!(
                matches!(c.train.optimizer, rnnkit::optim::OptimizerConfig::Sgd(_)),
                "{:?}",
                c.train.optimizer
            ),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn the_task_key_picks_the_defaults() {
        let c = parse_any("task = \"classify\"\n", "t.toml", &[]).unwrap();
        assert_eq!(c, RunConfig::Classify(ClassifyConfig::default()));
        let f = parse_any(
            "",
            "t.toml",
            &["task=forecast".into(), "data.lookback=8".into()],
        );
        match f.unwrap() {
            RunConfig::Forecast(f) => {
                assert_eq!(f.data.lookback, 8);
                assert_eq!(f.data.horizon, 13);
            }
            other => panic!("{other:?}"),
        }
        let err = parse_any("task = \"tagging\"\n", "t.toml", &[])
            .unwrap_err()
            .to_string();
        assert!(err.contains("task") && err.contains("forecast"), "{err}");
        // A key of another task's section is an error naming it.
        let err = parse_any(
            "task = \"forecast\"\n[model]\nembedding_size = 3\n",
            "t.toml",
            &[],
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("embedding_size"), "{err}");
    }
}
