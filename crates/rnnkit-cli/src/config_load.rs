//! Loading TOML configs with `--set key=value` overrides and errors that say where and what.
//!
//! Configs are plain serde structs (`deny_unknown_fields`, `default`); this module is generic
//! over them. Serde is the judge of what is valid: we deserialize first, and only when that
//! fails do we work out where the fault is, because the serialized default cannot list every
//! valid key (an `Option` that defaults to `None` is absent, an enum shows one variant).
//! To point at the fault we keep the spans of every key of the file (`toml::de::DeTable`),
//! re-run the deserializer on the file alone (which gives a byte span), or replay the
//! overrides one by one to find the `--set` that broke it.
//!
//! Messages look like
//! `configs/x.toml, line 12: unknown key "train.learning_rte"; did you mean
//! "train.learning_rate"? (valid keys in [train]: epochs, batch_size, learning_rate)`.

use anyhow::{Result, anyhow, bail};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::ops::Range;
use toml::de::{DeTable, DeValue};
use toml::{Spanned, Table, Value};

/// Parses a config from TOML `text`, applies `--set` overrides, and deserializes it.
///
/// `source` names the text in messages (normally the file name). Each override is
/// `dotted.key=value`; the value is read as a TOML value (`3`, `1e-3`, `true`, `"x"`,
/// `{ adam = { lr = 0.1 } }`) and, where that fails, taken as a plain string, so
/// `data.path=corpus.txt` works without quotes. Keys missing from the text take the
/// defaults of `T`.
///
/// Errors name the file and line (or the `--set` argument), the dotted key, and for an
/// unknown key the valid keys of its table and the closest one.
///
/// ```ignore
/// let cfg: RunConfig = load_config(&text, "run.toml", &["train.epochs=3".to_string()])?;
/// assert_eq!(cfg.train.epochs, 3);
/// ```
pub fn load_config<T>(text: &str, source: &str, overrides: &[String]) -> Result<T>
where
    T: Serialize + DeserializeOwned + Default,
{
    let sites = key_sites(text).map_err(|e| syntax_error(source, text, &e))?;
    let base: Table = toml::from_str(text).map_err(|e| syntax_error(source, text, &e))?;
    let overrides = overrides
        .iter()
        .map(|o| Override::parse(o))
        .collect::<Result<Vec<_>>>()?;
    let mut merged = base.clone();
    for o in &overrides {
        o.apply(&mut merged)?;
    }
    match T::deserialize(merged.clone()) {
        Ok(cfg) => Ok(cfg),
        Err(err) => {
            let ctx = Context {
                text,
                source,
                sites: &sites,
                base: &base,
                merged: &merged,
                overrides: &overrides,
            };
            Err(ctx.explain::<T>(err.message()))
        }
    }
}

/// Renders a resolved config as TOML, with a header comment, for saving in the run directory
/// (the library's [`rnnkit::run::config_toml`]).
pub fn resolved_toml<T: Serialize>(cfg: &T) -> Result<String> {
    Ok(rnnkit::run::config_toml(cfg)?)
}

/// Lists every key of `T`'s default config with its default value, as a Markdown table.
///
/// The keys come from serializing `T::default()`, so a field whose default is `None` does not
/// appear, and an enum field shows only the keys of its default variant.
///
/// ```ignore
/// let md = docs_table::<RunConfig>()?;
/// assert!(md.contains("| `train.epochs` |"));
/// ```
pub fn docs_table<T: Serialize + Default>() -> Result<String> {
    let mut value = Value::try_from(T::default())
        .map_err(|e| anyhow!("cannot write the default config as TOML: {e}"))?;
    rnnkit::run::tidy_floats(&mut value);
    let mut out = String::from("| Key | Default |\n|-----|---------|\n");
    match &value {
        Value::Table(t) => docs_rows(t, "", &mut out),
        other => out.push_str(&format!("| (whole config) | `{}` |\n", md_escape(other))),
    }
    Ok(out)
}

fn docs_rows(table: &Table, prefix: &str, out: &mut String) {
    for (key, value) in table {
        let path = join(prefix, key);
        match value {
            Value::Table(t) if !t.is_empty() => docs_rows(t, &path, out),
            other => out.push_str(&format!("| `{path}` | `{}` |\n", md_escape(other))),
        }
    }
}

fn md_escape(value: &Value) -> String {
    value.to_string().replace('|', "\\|")
}

/// One `--set dotted.key=value` argument, parsed.
struct Override {
    /// The argument as the user typed it, for messages.
    text: String,
    path: Vec<String>,
    value: Value,
}

impl Override {
    fn parse(text: &str) -> Result<Self> {
        let Some((key, raw)) = text.split_once('=') else {
            bail!("--set {text}: expected key=value, e.g. --set train.epochs=5");
        };
        let path: Vec<String> = key.split('.').map(|s| s.trim().to_string()).collect();
        if path.iter().any(String::is_empty) {
            bail!(
                "--set {text}: the key \"{}\" has an empty part; write dotted keys like train.epochs",
                key.trim()
            );
        }
        let raw = raw.trim();
        // A lone `v = <raw>` document parses exactly when raw is one TOML value.
        let value = match format!("v = {raw}").parse::<Table>() {
            Ok(mut t) if t.len() == 1 => t.remove("v").unwrap_or(Value::String(raw.into())),
            _ => Value::String(raw.to_string()),
        };
        Ok(Self {
            text: text.to_string(),
            path,
            value,
        })
    }

    fn apply(&self, table: &mut Table) -> Result<()> {
        let (last, parents) = self.path.split_last().expect("parse rejects empty keys");
        let mut here = table;
        for (i, seg) in parents.iter().enumerate() {
            let slot = here
                .entry(seg.clone())
                .or_insert_with(|| Value::Table(Table::new()));
            here = match slot {
                Value::Table(t) => t,
                other => bail!(
                    "--set {}: \"{}\" is {other}, not a table, so it has no key \"{}\"",
                    self.text,
                    self.path[..=i].join("."),
                    self.path[i + 1]
                ),
            };
        }
        here.insert(last.clone(), self.value.clone());
        Ok(())
    }

    fn dotted(&self) -> String {
        self.path.join(".")
    }
}

/// Where a key of the file sits: its dotted path and the byte spans of key and value.
struct Site {
    path: String,
    key: Range<usize>,
    value: Range<usize>,
}

fn key_sites(text: &str) -> std::result::Result<Vec<Site>, toml::de::Error> {
    let doc = DeTable::parse(text)?;
    let mut sites = Vec::new();
    table_sites(doc.get_ref(), "", &mut sites);
    Ok(sites)
}

fn table_sites(table: &DeTable<'_>, prefix: &str, out: &mut Vec<Site>) {
    for (key, value) in table {
        let path = join(prefix, key.get_ref());
        value_sites(value, &path, Some(key.span()), out);
    }
}

fn value_sites(
    value: &Spanned<DeValue<'_>>,
    path: &str,
    key: Option<Range<usize>>,
    out: &mut Vec<Site>,
) {
    out.push(Site {
        path: path.to_string(),
        key: key.unwrap_or_else(|| value.span()),
        value: value.span(),
    });
    match value.get_ref() {
        DeValue::Table(t) => table_sites(t, path, out),
        // Items of an array of tables share their array's dotted path.
        DeValue::Array(items) => items.iter().for_each(|v| value_sites(v, path, None, out)),
        _ => {}
    }
}

/// Where an error came from.
enum Origin<'a> {
    /// The file; the span is where toml's deserializer pointed, when it did.
    File(Option<Range<usize>>),
    /// This `--set` argument.
    Set(&'a Override),
}

/// Everything needed to turn a serde message into a message that says where.
struct Context<'a> {
    text: &'a str,
    source: &'a str,
    sites: &'a [Site],
    base: &'a Table,
    merged: &'a Table,
    overrides: &'a [Override],
}

impl Context<'_> {
    fn explain<T: Serialize + DeserializeOwned + Default>(&self, msg: &str) -> anyhow::Error {
        let origin = self.origin::<T>(msg);
        if let Some((name, expected)) = parse_unknown(msg, "unknown field `") {
            return self.unknown_key::<T>(&origin, &name, &expected);
        }
        if let Some((name, expected)) = parse_unknown(msg, "unknown variant `") {
            return self.unknown_variant(&origin, &name, &expected);
        }
        match &origin {
            Origin::File(span) => {
                let site = span.as_ref().and_then(|s| self.innermost(s.start));
                let at = match span {
                    Some(s) => self.line_col(s.start),
                    None => String::new(),
                };
                match site {
                    Some(site) => {
                        anyhow!(
                            "{}{at}: bad value for \"{}\": {msg}",
                            self.source,
                            site.path
                        )
                    }
                    None => anyhow!("{}{at}: {msg}", self.source),
                }
            }
            Origin::Set(o) => anyhow!("--set {}: bad value for \"{}\": {msg}", o.text, o.dotted()),
        }
    }

    /// Finds the origin of `msg`: the file alone, or the first override after which it shows.
    fn origin<T: DeserializeOwned>(&self, msg: &str) -> Origin<'_> {
        if let Err(e) = toml::from_str::<T>(self.text)
            && e.message() == msg
        {
            return Origin::File(e.span());
        }
        let mut table = self.base.clone();
        for o in self.overrides {
            if o.apply(&mut table).is_err() {
                break;
            }
            if let Err(e) = T::deserialize(table.clone())
                && e.message() == msg
            {
                return Origin::Set(o);
            }
        }
        Origin::File(None)
    }

    fn unknown_key<T: Serialize + Default>(
        &self,
        origin: &Origin<'_>,
        name: &str,
        expected: &[String],
    ) -> anyhow::Error {
        // Paths in the merged config ending in `name`; those the default lacks come first.
        let mut candidates = Vec::new();
        collect_paths(self.merged, "", name, &mut candidates);
        if let Ok(Value::Table(default)) = Value::try_from(T::default()) {
            let mut unknown = Vec::new();
            walk_unknown(self.merged, &default, "", &mut unknown);
            candidates.sort_by_key(|p| !unknown.contains(p));
        }
        let path = self
            .pick(origin, &candidates, |s| s.key.clone())
            .unwrap_or_else(|| name.to_string());
        let parent = path.rsplit_once('.').map(|(p, _)| p);
        let table = match parent {
            Some(p) => format!("in [{p}]"),
            None => "at the top level".to_string(),
        };
        let suggestion = match closest(name, expected) {
            Some(best) => format!("; did you mean \"{}\"?", join(parent.unwrap_or(""), best)),
            None => String::new(),
        };
        let valid = if expected.is_empty() {
            format!("(there are no keys {table})")
        } else {
            format!("(valid keys {table}: {})", expected.join(", "))
        };
        let at = self.at(origin, &path, |s| s.key.start);
        anyhow!("{at}: unknown key \"{path}\"{suggestion} {valid}")
    }

    fn unknown_variant(
        &self,
        origin: &Origin<'_>,
        name: &str,
        expected: &[String],
    ) -> anyhow::Error {
        // A variant is written as a key (`optimizer = { adam = {..} }`) or as a string value
        // (`kind = "lstm"`, `activation = "tanh"`).
        let mut as_key = Vec::new();
        collect_paths(self.merged, "", name, &mut as_key);
        let mut as_value = Vec::new();
        collect_string_paths(self.merged, "", name, &mut as_value);
        let (field, at) = if let Some(p) = self.pick(origin, &as_value, |s| s.value.clone()) {
            let at = self.at(origin, &p, |s| s.value.start);
            (p, at)
        } else if let Some(p) = self.pick(origin, &as_key, |s| s.key.clone()) {
            let at = self.at(origin, &p, |s| s.key.start);
            let field = p.rsplit_once('.').map_or(p.clone(), |(f, _)| f.to_string());
            (field, at)
        } else {
            (String::new(), self.at(origin, "", |s| s.key.start))
        };
        let suggestion = match closest(name, expected) {
            Some(best) => format!("; did you mean \"{best}\"?"),
            None => String::new(),
        };
        let key = if field.is_empty() {
            String::new()
        } else {
            format!(" for \"{field}\"")
        };
        anyhow!(
            "{at}: unknown variant \"{name}\"{key}{suggestion} (valid: {})",
            expected.join(", ")
        )
    }

    /// Chooses among candidate paths the one the origin points at.
    fn pick(
        &self,
        origin: &Origin<'_>,
        candidates: &[String],
        span_of: impl Fn(&Site) -> Range<usize>,
    ) -> Option<String> {
        match origin {
            Origin::Set(o) => {
                let set = o.dotted();
                candidates
                    .iter()
                    .find(|c| c.starts_with(&set) || set.starts_with(c.as_str()))
                    .or(candidates.first())
                    .cloned()
            }
            Origin::File(span) => {
                let in_file = |c: &&String| self.sites.iter().any(|s| &s.path == *c);
                let Some(span) = span else {
                    return candidates
                        .iter()
                        .find(in_file)
                        .or(candidates.first())
                        .cloned();
                };
                // The candidate whose site lies nearest the span toml reported.
                let dist = |r: Range<usize>| {
                    if r.start <= span.start && span.start < r.end.max(r.start + 1) {
                        0
                    } else {
                        r.start.abs_diff(span.start)
                    }
                };
                candidates
                    .iter()
                    .filter_map(|c| {
                        let d = self
                            .sites
                            .iter()
                            .filter(|s| &s.path == c)
                            .map(|s| dist(span_of(s)))
                            .min()?;
                        Some((d, c))
                    })
                    .min_by_key(|(d, _)| *d)
                    .map(|(_, c)| c.clone())
                    .or(candidates.first().cloned())
            }
        }
    }

    /// "file, line N" for a path of the file, or "--set ..." for an override.
    fn at(&self, origin: &Origin<'_>, path: &str, pos: impl Fn(&Site) -> usize) -> String {
        if let Origin::Set(o) = origin {
            return format!("--set {}", o.text);
        }
        if let Some(site) = self.sites.iter().find(|s| s.path == path) {
            return format!("{}, line {}", self.source, line_of(self.text, pos(site)).0);
        }
        // The path came from an override that was not the first to show the error.
        if let Some(o) = self.overrides.iter().rev().find(|o| {
            let set = o.dotted();
            path.starts_with(&set) || set.starts_with(path)
        }) {
            return format!("--set {}", o.text);
        }
        match origin {
            Origin::File(Some(span)) => {
                format!("{}, line {}", self.source, line_of(self.text, span.start).0)
            }
            _ => self.source.to_string(),
        }
    }

    /// The deepest key of the file whose value holds byte `pos`.
    fn innermost(&self, pos: usize) -> Option<&Site> {
        self.sites
            .iter()
            .filter(|s| s.value.start <= pos && pos < s.value.end.max(s.value.start + 1))
            .max_by_key(|s| (s.path.matches('.').count(), usize::MAX - s.value.len()))
            .or_else(|| self.sites.iter().find(|s| s.key.contains(&pos)))
    }

    fn line_col(&self, pos: usize) -> String {
        let (line, col) = line_of(self.text, pos);
        format!(", line {line}, column {col}")
    }
}

fn syntax_error(source: &str, text: &str, err: &toml::de::Error) -> anyhow::Error {
    match err.span() {
        Some(span) => {
            let (line, col) = line_of(text, span.start);
            anyhow!(
                "{source}, line {line}, column {col}: {} (this is not valid TOML)",
                err.message()
            )
        }
        None => anyhow!("{source}: {} (this is not valid TOML)", err.message()),
    }
}

/// 1-based line and column (in characters) of byte offset `pos`.
fn line_of(text: &str, pos: usize) -> (usize, usize) {
    let mut pos = pos.min(text.len());
    while !text.is_char_boundary(pos) {
        pos -= 1;
    }
    let before = &text[..pos];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    (line, before[line_start..].chars().count() + 1)
}

/// Splits serde's "unknown field `x`, expected one of `a`, `b`" (or `unknown variant`) into
/// the name and the expected list. Serde writes the list as "expected `a`", "expected `a` or
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

/// Dotted paths of every key named `name` in `table`, at any depth.
fn collect_paths(table: &Table, prefix: &str, name: &str, out: &mut Vec<String>) {
    for (key, value) in table {
        let path = join(prefix, key);
        if key == name {
            out.push(path.clone());
        }
        for_tables(value, |t| collect_paths(t, &path, name, out));
    }
}

/// Dotted paths of every key whose value is the string `name`.
fn collect_string_paths(table: &Table, prefix: &str, name: &str, out: &mut Vec<String>) {
    for (key, value) in table {
        let path = join(prefix, key);
        if value.as_str() == Some(name) {
            out.push(path.clone());
        }
        for_tables(value, |t| collect_string_paths(t, &path, name, out));
    }
}

/// Paths of the user's config that the serialized default lacks, in tables both have.
fn walk_unknown(user: &Table, default: &Table, prefix: &str, out: &mut Vec<String>) {
    for (key, value) in user {
        let path = join(prefix, key);
        match (value, default.get(key)) {
            (_, None) => out.push(path),
            (Value::Table(u), Some(Value::Table(d))) => walk_unknown(u, d, &path, out),
            _ => {}
        }
    }
}

fn for_tables(value: &Value, mut f: impl FnMut(&Table)) {
    match value {
        Value::Table(t) => f(t),
        Value::Array(items) => items.iter().filter_map(Value::as_table).for_each(f),
        _ => {}
    }
}

fn join(prefix: &str, key: &str) -> String {
    if prefix.is_empty() {
        key.to_string()
    } else {
        format!("{prefix}.{key}")
    }
}

/// The valid name closest to `name`, if it is close enough to be a likely typo:
/// at most a third of the length apart (at least 1 edit).
fn closest<'a>(name: &str, valid: &'a [String]) -> Option<&'a str> {
    let limit = (name.chars().count() / 3).max(1);
    valid
        .iter()
        .map(|v| (edit_distance(name, v), v))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, v)| v.as_str())
}

/// Damerau-Levenshtein distance (optimal string alignment): insertions, deletions,
/// substitutions and swaps of neighbours each cost 1.
fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    // d[i][j]: distance between a[..i] and b[..j].
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (d[i - 1][j] + 1)
                .min(d[i][j - 1] + 1)
                .min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(d[i - 2][j - 2] + 1);
            }
            d[i][j] = best;
        }
    }
    d[a.len()][b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
    #[serde(deny_unknown_fields, default)]
    struct Run {
        seed: u64,
        data: Data,
        model: Model,
        train: Train,
    }

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    #[serde(deny_unknown_fields, default)]
    struct Data {
        path: String,
        /// Absent from the serialized default: the walk cannot know it, serde can.
        #[serde(skip_serializing_if = "Option::is_none")]
        valid_path: Option<String>,
        lowercase: bool,
    }

    impl Default for Data {
        fn default() -> Self {
            Self {
                path: "data.txt".into(),
                valid_path: None,
                lowercase: false,
            }
        }
    }

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    #[serde(deny_unknown_fields, default)]
    struct Model {
        kind: Cell,
        hidden_size: usize,
        num_layers: usize,
    }

    impl Default for Model {
        fn default() -> Self {
            Self {
                kind: Cell::Lstm,
                hidden_size: 128,
                num_layers: 1,
            }
        }
    }

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    #[serde(rename_all = "lowercase")]
    enum Cell {
        Rnn,
        Lstm,
        Gru,
    }

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    #[serde(deny_unknown_fields, default)]
    struct Train {
        epochs: usize,
        batch_size: usize,
        learning_rate: f64,
        optimizer: Optimizer,
    }

    impl Default for Train {
        fn default() -> Self {
            Self {
                epochs: 10,
                batch_size: 32,
                learning_rate: 0.002,
                optimizer: Optimizer::Adam(Adam::default()),
            }
        }
    }

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    #[serde(rename_all = "lowercase")]
    enum Optimizer {
        Sgd(Sgd),
        Adam(Adam),
    }

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    #[serde(deny_unknown_fields, default)]
    struct Sgd {
        lr: f64,
        momentum: f64,
    }

    impl Default for Sgd {
        fn default() -> Self {
            Self {
                lr: 0.1,
                momentum: 0.0,
            }
        }
    }

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    #[serde(deny_unknown_fields, default)]
    struct Adam {
        lr: f64,
        betas: (f64, f64),
    }

    impl Default for Adam {
        fn default() -> Self {
            Self {
                lr: 0.002,
                betas: (0.9, 0.999),
            }
        }
    }

    const FILE: &str = r#"# example
seed = 7

[data]
path = "corpus.txt"

[model]
kind = "gru"
hidden_size = 64

[train]
epochs = 3
learning_rte = 0.01
"#;

    fn load(text: &str, sets: &[&str]) -> Result<Run> {
        let sets: Vec<String> = sets.iter().map(|s| s.to_string()).collect();
        load_config::<Run>(text, "x.toml", &sets)
    }

    fn err(text: &str, sets: &[&str]) -> String {
        match load(text, sets) {
            Ok(cfg) => panic!("expected an error, got {cfg:?}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn config_load_valid_file_and_defaults() {
        let text = FILE.replace("learning_rte", "learning_rate");
        let cfg = load(&text, &[]).unwrap();
        assert_eq!(cfg.seed, 7);
        assert_eq!(cfg.data.path, "corpus.txt");
        assert_eq!(cfg.model.kind, Cell::Gru);
        assert_eq!(cfg.model.hidden_size, 64);
        assert_eq!(cfg.model.num_layers, 1);
        assert_eq!(cfg.train.learning_rate, 0.01);
        assert_eq!(cfg.train.optimizer, Optimizer::Adam(Adam::default()));
        assert_eq!(load("", &[]).unwrap(), Run::default());
    }

    #[test]
    fn config_load_typo_suggests_and_gives_line() {
        let msg = err(FILE, &[]);
        assert!(
            msg.starts_with(
                "x.toml, line 13: unknown key \"train.learning_rte\"; \
                 did you mean \"train.learning_rate\"?"
            ),
            "{msg}"
        );
        assert!(
            msg.contains("(valid keys in [train]: epochs, batch_size, learning_rate, optimizer)"),
            "{msg}"
        );
    }

    #[test]
    fn config_load_unknown_key_far_from_valid_has_no_suggestion() {
        let msg = err("[model]\nzzz = 1\n", &[]);
        assert!(msg.starts_with("x.toml, line 2: unknown key \"model.zzz\" (valid keys in [model]: kind, hidden_size, num_layers)"), "{msg}");
        let msg = err("sed = 1\n", &[]);
        assert!(msg.contains("did you mean \"seed\"?"), "{msg}");
        assert!(
            msg.contains("valid keys at the top level: seed, data, model, train"),
            "{msg}"
        );
    }

    #[test]
    fn config_load_unknown_key_in_nested_enum_and_dotted_keys() {
        let text = "[train]\nepochs = 2\n\n[train.optimizer.sgd]\nlr = 0.5\nmomentun = 0.9\n";
        let msg = err(text, &[]);
        assert!(msg.starts_with("x.toml, line 6: unknown key \"train.optimizer.sgd.momentun\"; did you mean \"train.optimizer.sgd.momentum\"?"), "{msg}");
        // Same key via a dotted key on one line.
        let msg = err("train.optimizer.sgd.momentun = 0.9\n", &[]);
        assert!(
            msg.starts_with("x.toml, line 1: unknown key \"train.optimizer.sgd.momentun\""),
            "{msg}"
        );
    }

    #[test]
    fn config_load_option_field_absent_from_default_is_accepted() {
        let cfg = load("[data]\nvalid_path = \"v.txt\"\n", &[]).unwrap();
        assert_eq!(cfg.data.valid_path.as_deref(), Some("v.txt"));
        let msg = err("[data]\nvalid_pth = \"v.txt\"\n", &[]);
        assert!(msg.contains("did you mean \"data.valid_path\"?"), "{msg}");
        assert!(msg.contains("path, valid_path, lowercase"), "{msg}");
    }

    #[test]
    fn config_load_wrong_type_names_key_and_line() {
        let msg = err(
            "seed = 1\n[model]\nkind = \"gru\"\nhidden_size = \"big\"\n",
            &[],
        );
        assert!(
            msg.starts_with("x.toml, line 4, column 15: bad value for \"model.hidden_size\":"),
            "{msg}"
        );
        assert!(msg.contains("invalid type"), "{msg}");
        let msg = err("[train.optimizer.adam]\nlr = true\n", &[]);
        assert!(
            msg.starts_with("x.toml, line 2, column 6: bad value for \"train.optimizer.adam.lr\":"),
            "{msg}"
        );
    }

    #[test]
    fn config_load_unknown_variant_suggests() {
        let msg = err("[model]\nhidden_size = 3\nkind = \"gur\"\n", &[]);
        assert!(msg.starts_with("x.toml, line 3: unknown variant \"gur\" for \"model.kind\"; did you mean \"gru\"? (valid: rnn, lstm, gru)"), "{msg}");
        let msg = err("[train]\noptimizer = { adma = { lr = 0.1 } }\n", &[]);
        assert!(msg.starts_with("x.toml, line 2: unknown variant \"adma\" for \"train.optimizer\"; did you mean \"adam\"?"), "{msg}");
    }

    #[test]
    fn config_load_syntax_error_gives_line_and_column() {
        let msg = err("seed = 1\n[model\n", &[]);
        assert!(msg.starts_with("x.toml, line 2, column"), "{msg}");
        assert!(msg.contains("not valid TOML"), "{msg}");
    }

    #[test]
    fn config_load_overrides_nested_strings_numbers_booleans() {
        let text = FILE.replace("learning_rte", "learning_rate");
        let cfg = load(
            &text,
            &[
                "train.optimizer.adam.lr=0.001",
                "model.hidden_size=256",
                "data.path=foo.txt",
                "data.valid_path=\"v 1.txt\"",
                "data.lowercase=true",
                "model.kind = rnn",
                "train.epochs=5",
            ],
        )
        .unwrap();
        assert_eq!(
            cfg.train.optimizer,
            Optimizer::Adam(Adam {
                lr: 0.001,
                ..Adam::default()
            })
        );
        assert_eq!(cfg.model.hidden_size, 256);
        assert_eq!(cfg.model.kind, Cell::Rnn);
        assert_eq!(cfg.data.path, "foo.txt");
        assert_eq!(cfg.data.valid_path.as_deref(), Some("v 1.txt"));
        assert!(cfg.data.lowercase);
        assert_eq!(cfg.train.epochs, 5);
        // An override adds a key; it does not rename a misspelt one.
        assert!(load(FILE, &["train.learning_rate=0.1"]).is_err());
        // Inline tables switch an enum.
        let cfg = load("", &["train.optimizer={ sgd = { lr = 0.5 } }"]).unwrap();
        assert_eq!(
            cfg.train.optimizer,
            Optimizer::Sgd(Sgd {
                lr: 0.5,
                momentum: 0.0
            })
        );
    }

    #[test]
    fn config_load_unknown_key_in_set_names_set() {
        let msg = err("", &["model.hidden_size=8", "model.hiden_size=8"]);
        assert!(msg.starts_with("--set model.hiden_size=8: unknown key \"model.hiden_size\"; did you mean \"model.hidden_size\"?"), "{msg}");
        let msg = err("", &["train.epochs=many"]);
        assert!(
            msg.starts_with("--set train.epochs=many: bad value for \"train.epochs\":"),
            "{msg}"
        );
        let msg = err("seed = 1\n", &["seed.x=1"]);
        assert!(msg.contains("\"seed\" is 1, not a table"), "{msg}");
        let msg = err("", &["seed.x=1"]);
        assert!(
            msg.starts_with("--set seed.x=1: bad value for \"seed.x\""),
            "{msg}"
        );
        assert!(err("", &["seed"]).contains("expected key=value"));
        assert!(err("", &["a..b=1"]).contains("empty part"));
    }

    #[test]
    fn config_load_file_error_found_when_overrides_present() {
        let msg = err(FILE, &["model.hidden_size=8"]);
        assert!(
            msg.starts_with("x.toml, line 13: unknown key \"train.learning_rte\""),
            "{msg}"
        );
    }

    #[test]
    fn config_load_resolved_toml_round_trips() {
        let cfg = load(
            "",
            &[
                "train.optimizer={ sgd = { lr = 0.5, momentum = 0.9 } }",
                "data.valid_path=v.txt",
                "model.kind=gru",
            ],
        )
        .unwrap();
        let text = resolved_toml(&cfg).unwrap();
        assert!(text.starts_with("# Resolved rnnkit config"), "{text}");
        assert_eq!(load(&text, &[]).unwrap(), cfg);
        let text = resolved_toml(&Run::default()).unwrap();
        assert_eq!(load(&text, &[]).unwrap(), Run::default());
    }

    #[test]
    fn config_load_docs_table_lists_every_default_key() {
        let md = docs_table::<Run>().unwrap();
        assert!(md.starts_with("| Key | Default |\n"), "{md}");
        for row in [
            "| `seed` | `0` |",
            "| `data.path` | `\"data.txt\"` |",
            "| `model.kind` | `\"lstm\"` |",
            "| `train.learning_rate` | `0.002` |",
            "| `train.optimizer.adam.lr` | `0.002` |",
            "| `train.optimizer.adam.betas` | `[0.9, 0.999]` |",
        ] {
            assert!(md.contains(row), "missing {row} in\n{md}");
        }
        assert!(!md.contains("valid_path"), "{md}");
    }

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    #[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
    enum Schedule {
        Constant,
        Step { step_size: usize, gamma: f64 },
    }

    #[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
    #[serde(deny_unknown_fields, default)]
    struct WithSchedule {
        schedule: Option<Schedule>,
    }

    #[test]
    fn config_load_internally_tagged_enum() {
        let load = |t: &str, s: &[&str]| {
            let s: Vec<String> = s.iter().map(|x| x.to_string()).collect();
            load_config::<WithSchedule>(t, "s.toml", &s)
        };
        let text = "[schedule]\nkind = \"step\"\nstep_size = 5\ngamma = 0.5\n";
        let cfg = load(text, &[]).unwrap();
        assert_eq!(
            cfg.schedule,
            Some(Schedule::Step {
                step_size: 5,
                gamma: 0.5
            })
        );
        let cfg = load(text, &["schedule.gamma=0.1"]).unwrap();
        assert_eq!(
            cfg.schedule,
            Some(Schedule::Step {
                step_size: 5,
                gamma: 0.1
            })
        );
        let msg = load("[schedule]\nkind = \"stpe\"\n", &[])
            .unwrap_err()
            .to_string();
        assert!(msg.starts_with("s.toml, line 2: unknown variant \"stpe\" for \"schedule.kind\"; did you mean \"step\"?"), "{msg}");
        let msg = load(&text.replace("gamma", "gama"), &[])
            .unwrap_err()
            .to_string();
        assert!(
            msg.contains("unknown key \"schedule.gama\"; did you mean \"schedule.gamma\"?"),
            "{msg}"
        );
        assert!(msg.starts_with("s.toml, line 4"), "{msg}");
    }

    #[test]
    fn config_load_edit_distance_and_closest() {
        assert_eq!(edit_distance("learning_rte", "learning_rate"), 1);
        assert_eq!(edit_distance("ab", "ba"), 1);
        assert_eq!(edit_distance("", "abc"), 3);
        let valid: Vec<String> = ["epochs", "batch_size"].map(String::from).into();
        assert_eq!(closest("epohcs", &valid), Some("epochs"));
        assert_eq!(closest("zzz", &valid), None);
        assert_eq!(line_of("a\nbc\nd", 3), (2, 2));
    }
}
