//! The search space: config keys that become distributions, with optional conditions.
//!
//! In a study file's `[space]` table each entry is a dotted config key and one distribution:
//!
//! ```toml
//! [space]
//! "model.cell" = { choice = ["lstm", "gru"] }
//! "model.hidden_size" = { int_log = [32, 512] }
//! "model.num_layers" = { int = [1, 3] }
//! "model.dropout" = { uniform = [0.0, 0.5] }
//! "train.optimizer.lr" = { loguniform = [1e-4, 1e-2] }
//! "train.clip_norm" = { fixed = 1.0 }
//! "model.proj_size" = { int = [0, 64], when = { "model.cell" = "lstm" } }
//! ```
//!
//! `when` makes a key conditional: it is drawn only when every named key (drawn earlier in the
//! file) has the given value (or one of the values, for an array); otherwise the base config's
//! value stands.

use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};
use toml::Value;

/// One distribution.
///
/// ```
/// use rnnkit::tune::Dist;
/// assert!(Dist::LogUniform { low: 1e-4, high: 1e-2 }.validate().is_ok());
/// assert!(Dist::Int { low: 5, high: 1 }.validate().is_err());
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Dist {
    /// A float uniform in `[low, high]`.
    Uniform {
        /// Lower bound.
        low: f64,
        /// Upper bound.
        high: f64,
    },
    /// A float whose logarithm is uniform: `0 < low ≤ high`.
    LogUniform {
        /// Lower bound.
        low: f64,
        /// Upper bound.
        high: f64,
    },
    /// An integer uniform in `low..=high`.
    Int {
        /// Lower bound.
        low: i64,
        /// Upper bound.
        high: i64,
    },
    /// An integer whose logarithm is uniform: `1 ≤ low ≤ high`.
    IntLog {
        /// Lower bound.
        low: i64,
        /// Upper bound.
        high: i64,
    },
    /// One of the values, uniformly.
    Choice(Vec<Value>),
    /// Always this value.
    Fixed(Value),
}

impl Dist {
    /// Checks the bounds.
    ///
    /// # Errors
    /// [`Error::Config`]: bounds that are not finite or run backwards, a log range that
    /// reaches 0, an empty choice.
    pub fn validate(&self) -> Result<()> {
        let bad = |msg: String| Err(Error::Config(msg));
        match *self {
            Dist::Uniform { low, high }
                if !(low.is_finite() && high.is_finite() && low <= high) =>
            {
                bad(format!(
                    "uniform = [{low}, {high}]: bounds must be finite, low ≤ high"
                ))
            }
            Dist::LogUniform { low, high }
                if !(low.is_finite() && high.is_finite() && 0.0 < low && low <= high) =>
            {
                bad(format!(
                    "loguniform = [{low}, {high}]: bounds must be finite, 0 < low ≤ high"
                ))
            }
            Dist::Int { low, high } if low > high => {
                bad(format!("int = [{low}, {high}]: low must be ≤ high"))
            }
            Dist::IntLog { low, high } if !(1 <= low && low <= high) => bad(format!(
                "int_log = [{low}, {high}]: bounds must be 1 ≤ low ≤ high"
            )),
            Dist::Choice(ref v) if v.is_empty() => {
                bad("choice = []: give at least one value".into())
            }
            _ => Ok(()),
        }
    }

    /// Whether draws are numbers on a log scale (TPE and the charts work in `ln x`).
    pub fn is_log(&self) -> bool {
        matches!(self, Dist::LogUniform { .. } | Dist::IntLog { .. })
    }
}

/// One searched key.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Param {
    /// The dotted config key, `train.optimizer.lr`.
    pub key: String,
    /// Its distribution.
    pub dist: Dist,
    /// Conditions: each (key, allowed values) must hold among the values drawn so far.
    pub when: Vec<(String, Vec<Value>)>,
    /// The line of the study file that defines it (0 when built in code).
    pub line: usize,
}

/// The values of one trial: `(key, value)` in the space's order, active keys only.
pub type Params = Vec<(String, Value)>;

/// The searched keys, in the order they are drawn.
///
/// ```
/// use rnnkit::tune::{Dist, SearchSpace};
/// let space = SearchSpace::parse_table(
///     &toml::from_str(r#"
/// "model.cell" = { choice = ["lstm", "gru"] }
/// "model.proj_size" = { int = [0, 8], when = { "model.cell" = "lstm" } }
/// "#).unwrap(),
///     |_| 0,
/// )
/// .unwrap();
/// assert_eq!(space.params().len(), 2);
/// let gru = vec![("model.cell".to_string(), toml::Value::from("gru"))];
/// assert!(!space.is_active(&space.params()[1], &gru));
/// ```
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SearchSpace {
    params: Vec<Param>,
}

impl SearchSpace {
    /// A space of `params` (checked as [`SearchSpace::parse_table`] checks a file's).
    ///
    /// # Errors
    /// As [`SearchSpace::parse_table`].
    pub fn new(params: Vec<Param>) -> Result<Self> {
        let space = SearchSpace { params };
        space.check()?;
        Ok(space)
    }

    /// Reads a `[space]` table; `line_of(key)` gives the file line of each key for messages.
    ///
    /// # Errors
    /// [`Error::ConfigAt`] naming the line: an entry that is not a table with exactly one
    /// distribution (and an optional `when`), bounds of the wrong type or impossible, a
    /// condition on a key not drawn before it or on a value it can never take.
    pub fn parse_table(table: &toml::Table, line_of: impl Fn(&str) -> usize) -> Result<Self> {
        let mut params = Vec::new();
        for (key, spec) in table {
            let line = line_of(key);
            let at = |msg: String| Error::ConfigAt {
                at: format!("line {line}"),
                msg: format!("space \"{key}\": {msg}"),
            };
            let Value::Table(spec) = spec else {
                return Err(at(format!(
                    "expected a table like {{ uniform = [0.0, 0.5] }}, got {spec}"
                )));
            };
            let mut dist = None;
            let mut when = Vec::new();
            for (name, v) in spec {
                if name == "when" {
                    when = parse_when(v).map_err(at)?;
                    continue;
                }
                if dist.is_some() {
                    return Err(at(format!(
                        "one distribution per key; \"{name}\" is a second one"
                    )));
                }
                dist = Some(parse_dist(name, v).map_err(at)?);
            }
            let dist = dist.ok_or_else(|| {
                at(
                    "no distribution: use one of uniform, loguniform, int, int_log, choice, fixed"
                        .into(),
                )
            })?;
            dist.validate().map_err(|e| at(strip(e)))?;
            params.push(Param {
                key: key.clone(),
                dist,
                when,
                line,
            });
        }
        let space = SearchSpace { params };
        space.check()?;
        Ok(space)
    }

    /// Conditions name keys drawn earlier, with values they can take; no key twice.
    fn check(&self) -> Result<()> {
        for (i, p) in self.params.iter().enumerate() {
            let at = |msg: String| Error::ConfigAt {
                at: format!("line {}", p.line),
                msg: format!("space \"{}\": {msg}", p.key),
            };
            p.dist.validate().map_err(|e| at(strip(e)))?;
            if self.params[..i].iter().any(|q| q.key == p.key) {
                return Err(at("the key is searched twice".into()));
            }
            for (cond, values) in &p.when {
                let Some(q) = self.params[..i].iter().find(|q| &q.key == cond) else {
                    return Err(at(format!(
                        "\"when\" names \"{cond}\", which is not searched above this line"
                    )));
                };
                if let Some(v) = values.iter().find(|v| !can_take(&q.dist, v)) {
                    return Err(at(format!(
                        "\"when\": \"{cond}\" never takes the value {v}"
                    )));
                }
            }
        }
        Ok(())
    }

    /// The searched keys.
    pub fn params(&self) -> &[Param] {
        &self.params
    }

    /// Whether `p`'s conditions hold among `drawn` (the values drawn before it).
    pub fn is_active(&self, p: &Param, drawn: &Params) -> bool {
        p.when.iter().all(|(cond, allowed)| {
            drawn
                .iter()
                .find(|(k, _)| k == cond)
                .is_some_and(|(_, v)| allowed.contains(v))
        })
    }

    /// The `--set` overrides of `params`: `key=value` in TOML syntax.
    pub fn overrides(params: &Params) -> Vec<String> {
        params.iter().map(|(k, v)| format!("{k}={v}")).collect()
    }
}

fn strip(e: Error) -> String {
    match e {
        Error::Config(m) => m,
        other => other.to_string(),
    }
}

fn parse_when(v: &Value) -> std::result::Result<Vec<(String, Vec<Value>)>, String> {
    let Value::Table(t) = v else {
        return Err(format!(
            "\"when\" must be a table like {{ \"model.cell\" = \"lstm\" }}, got {v}"
        ));
    };
    Ok(t.iter()
        .map(|(k, v)| {
            let values = match v {
                Value::Array(a) => a.clone(),
                other => vec![other.clone()],
            };
            (k.clone(), values)
        })
        .collect())
}

fn parse_dist(name: &str, v: &Value) -> std::result::Result<Dist, String> {
    let pair_f = || -> std::result::Result<(f64, f64), String> {
        match v.as_array().map(|a| a.as_slice()) {
            Some([a, b]) => match (num(a), num(b)) {
                (Some(a), Some(b)) => Ok((a, b)),
                _ => Err(format!("{name} = {v}: the bounds must be numbers")),
            },
            _ => Err(format!("{name} = {v}: expected [low, high]")),
        }
    };
    let pair_i = || -> std::result::Result<(i64, i64), String> {
        match v.as_array().map(|a| a.as_slice()) {
            Some([Value::Integer(a), Value::Integer(b)]) => Ok((*a, *b)),
            Some([_, _]) => Err(format!(
                "{name} = {v}: the bounds must be integers (write 1, not 1.0)"
            )),
            _ => Err(format!("{name} = {v}: expected [low, high]")),
        }
    };
    Ok(match name {
        "uniform" => {
            let (low, high) = pair_f()?;
            Dist::Uniform { low, high }
        }
        "loguniform" => {
            let (low, high) = pair_f()?;
            Dist::LogUniform { low, high }
        }
        "int" => {
            let (low, high) = pair_i()?;
            Dist::Int { low, high }
        }
        "int_log" => {
            let (low, high) = pair_i()?;
            Dist::IntLog { low, high }
        }
        "choice" => match v {
            Value::Array(a) => Dist::Choice(a.clone()),
            _ => return Err(format!("choice = {v}: expected an array of values")),
        },
        "fixed" => Dist::Fixed(v.clone()),
        other => {
            return Err(format!(
                "unknown distribution \"{other}\"; use one of uniform, loguniform, int, \
                 int_log, choice, fixed (and \"when\" for a condition)"
            ));
        }
    })
}

fn num(v: &Value) -> Option<f64> {
    match v {
        Value::Float(f) => Some(*f),
        Value::Integer(i) => Some(*i as f64),
        _ => None,
    }
}

/// Whether a draw of `d` can equal `v`.
fn can_take(d: &Dist, v: &Value) -> bool {
    match d {
        Dist::Choice(c) => c.contains(v),
        Dist::Fixed(f) => f == v,
        Dist::Int { low, high } | Dist::IntLog { low, high } => {
            matches!(v, Value::Integer(i) if low <= i && i <= high)
        }
        Dist::Uniform { low, high } | Dist::LogUniform { low, high } => {
            num(v).is_some_and(|x| *low <= x && x <= *high)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<SearchSpace> {
        let table: toml::Table = toml::from_str(text).unwrap();
        // Lines by order, for the test: the i-th key is on line i + 1.
        let keys: Vec<String> = table.keys().cloned().collect();
        SearchSpace::parse_table(&table, |k| keys.iter().position(|x| x == k).unwrap() + 1)
    }

    #[test]
    fn every_distribution_parses() {
        let s = parse(
            r#"
"a" = { uniform = [0, 0.5] }
"b" = { loguniform = [1e-4, 1e-2] }
"c" = { int = [1, 3] }
"d" = { int_log = [16, 512] }
"e" = { choice = ["lstm", "gru"] }
"f" = { fixed = 1.0 }
"g" = { int = [0, 8], when = { "e" = ["lstm"] } }
"#,
        )
        .unwrap();
        assert_eq!(s.params().len(), 7);
        assert_eq!(
            s.params()[0].dist,
            Dist::Uniform {
                low: 0.0,
                high: 0.5
            }
        );
        assert!(s.params()[3].dist.is_log());
        let lstm: Params = vec![("e".into(), Value::from("lstm"))];
        assert!(s.is_active(&s.params()[6], &lstm));
        assert_eq!(
            SearchSpace::overrides(&vec![("model.cell".into(), Value::from("gru"))]),
            vec!["model.cell=\"gru\"".to_string()]
        );
    }

    #[test]
    fn mistakes_name_the_line() {
        for (text, line, needle) in [
            ("\"a\" = { unifrom = [0, 1] }", 1, "unknown distribution"),
            (
                "\"x\" = { int = [0, 1] }\n\"a\" = { int = [5, 1] }",
                2,
                "low must be",
            ),
            ("\"a\" = { loguniform = [0, 1] }", 1, "0 < low"),
            ("\"a\" = { int = [0, 1.5] }", 1, "integers"),
            ("\"a\" = { choice = [] }", 1, "at least one"),
            ("\"a\" = 3", 1, "expected a table"),
            (
                "\"a\" = { int = [0, 1], uniform = [0, 1] }",
                1,
                "one distribution",
            ),
            (
                "\"a\" = { when = { \"b\" = 1 }, int = [0, 1] }",
                1,
                "not searched above",
            ),
            (
                "\"b\" = { choice = [\"lstm\"] }\n\"a\" = { int = [0, 1], when = { \"b\" = \"gru\" } }",
                2,
                "never takes",
            ),
        ] {
            let e = parse(text).unwrap_err().to_string();
            assert!(e.starts_with(&format!("line {line}: ")), "{text}: {e}");
            assert!(e.contains(needle), "{text}: {e}");
        }
    }
}
