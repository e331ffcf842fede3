//! The key/default tables of docs/config.md, written from the configs' defaults.

use crate::error::{Error, Result};
use crate::run::tidy_floats;
use crate::tasks::{ConfigVisitor, TaskConfig, TaskKind};
use serde::Serialize;
use toml::{Table, Value};

/// Every key of `T`'s default config with its default value, as a Markdown table.
///
/// The keys come from serializing `T::default()`, so a field whose default is `None` does not
/// appear, and an enum field shows only the keys of its default variant.
///
/// ```
/// use rnnkit::tasks::classify::ClassifyConfig;
/// let md = rnnkit::config_file::docs_table::<ClassifyConfig>()?;
/// assert!(md.starts_with("| Key | Default |"));
/// assert!(md.contains("| `train.epochs` | `30` |"));
/// # Ok::<(), rnnkit::Error>(())
/// ```
///
/// # Errors
/// [`Error::Config`] when the default cannot be written as TOML.
pub fn docs_table<T: Serialize + Default>() -> Result<String> {
    let mut value = Value::try_from(T::default())
        .map_err(|e| Error::Config(format!("cannot write the default config as TOML: {e}")))?;
    tidy_floats(&mut value);
    let mut out = String::from("| Key | Default |\n|-----|---------|\n");
    match &value {
        Value::Table(t) => rows(t, "", &mut out),
        other => out.push_str(&format!("| (whole config) | `{}` |\n", md_escape(other))),
    }
    Ok(out)
}

/// The tables of every task, one section each, for docs/config.md.
///
/// ```
/// let md = rnnkit::config_file::docs_tables()?;
/// assert!(md.contains("### `task = \"forecast\"`"));
/// # Ok::<(), rnnkit::Error>(())
/// ```
///
/// # Errors
/// As [`docs_table`].
pub fn docs_tables() -> Result<String> {
    struct Section;
    impl ConfigVisitor for Section {
        type Output = Result<(&'static str, String)>;
        fn visit<C: TaskConfig>(self) -> Self::Output {
            Ok((C::ABOUT_DEFAULT, docs_table::<C>()?))
        }
    }
    let mut out = String::new();
    for &kind in TaskKind::ALL {
        let (what, table) = kind.visit_config(Section)?;
        out.push_str(&format!(
            "### `task = \"{kind}\"` (default: {what})\n\n{table}\n"
        ));
    }
    Ok(out)
}

fn rows(table: &Table, prefix: &str, out: &mut String) {
    for (key, value) in table {
        let path = if prefix.is_empty() {
            key.clone()
        } else {
            format!("{prefix}.{key}")
        };
        match value {
            Value::Table(t) if !t.is_empty() => rows(t, &path, out),
            other => out.push_str(&format!("| `{path}` | `{}` |\n", md_escape(other))),
        }
    }
}

fn md_escape(value: &Value) -> String {
    value.to_string().replace('|', "\\|")
}
