//! A resolved config as TOML: what `config.toml` in a run directory holds.

use crate::error::{Error, Result};
use serde::Serialize;
use toml::Value;

/// `config` as TOML, every key written, with a header saying what it is. Reading it back (as
/// `rnnkit train --config` does) gives an equal config.
///
/// ```
/// let text = rnnkit::run::config_toml(&rnnkit::tasks::synthetic::SyntheticConfig::default())?;
/// assert!(text.contains("task = \"synthetic\"") && text.contains("lr = 0.001"));
/// # Ok::<(), rnnkit::Error>(())
/// ```
///
/// # Errors
/// [`Error::Config`] for values TOML cannot hold (an integer above `i64::MAX`).
pub fn config_toml<T: Serialize>(config: &T) -> Result<String> {
    let bad =
        |e: &dyn std::fmt::Display| Error::Config(format!("cannot write the config as TOML: {e}"));
    let mut value = Value::try_from(config).map_err(|e| bad(&e))?;
    tidy_floats(&mut value);
    let body = toml::to_string_pretty(&value).map_err(|e| bad(&e))?;
    Ok(format!(
        "# Resolved rnnkit config: the file, the --set overrides and the defaults, merged.\n\
         # Pass it back with --config to repeat this run.\n\n{body}"
    ))
}

/// Writes floats that are exactly an `f32` (a config field of type `f32`, widened to `f64` on
/// the way to TOML) with the `f32`'s shortest digits: `0.2`, not `0.20000000298023224`.
/// Reading it back gives the same `f32`; an `f64` that is not an exact `f32` is left as it is.
///
/// ```
/// let mut v = toml::Value::Float(f64::from(0.2f32));
/// rnnkit::run::tidy_floats(&mut v);
/// assert_eq!(v.to_string(), "0.2");
/// ```
pub fn tidy_floats(value: &mut Value) {
    match value {
        Value::Float(x) => {
            let single = *x as f32;
            if f64::from(single) == *x
                && let Ok(short) = single.to_string().parse::<f64>()
            {
                *x = short;
            }
        }
        Value::Table(t) => t.iter_mut().for_each(|(_, v)| tidy_floats(v)),
        Value::Array(a) => a.iter_mut().for_each(tidy_floats),
        _ => {}
    }
}
