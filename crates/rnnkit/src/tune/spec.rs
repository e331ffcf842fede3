//! The study file: what to tune (a base config and a `[space]`), toward what (an objective),
//! how (a sampler and a pruner), and for how long (a budget).
//!
//! ```toml
//! base = "names-classify.toml"     # relative to this file
//! objective = "macro_f1"            # "loss" (validation loss, the default) or a task metric
//! seed = 0
//!
//! [budget]
//! trials = 60        # at most this many trials (0: no limit)
//! minutes = 20       # no new work after this much wall time (0: no limit)
//! epochs = 0         # at most this many epochs over all trials (0: no limit)
//!
//! [sampler]
//! kind = "tpe"       # "random", "grid" (points = 3), "tpe"
//!
//! [pruner]
//! kind = "asha"      # "asha", "median", "none"
//! min_epochs = 1
//! max_epochs = 27
//! reduction = 3
//!
//! [space]
//! "model.hidden_size" = { int_log = [32, 512] }
//! ```

use super::sampler::SamplerKind;
use super::schedule::Pruner;
use super::space::{Dist, SearchSpace};
use crate::config_file::ConfigSource;
use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// `[budget]`: when the study stops starting new work. Zero means no limit; at least one
/// limit must be set.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Budget {
    /// Trials to start.
    pub trials: u64,
    /// Wall minutes of the study's sessions together.
    pub minutes: f64,
    /// Epochs over all trials.
    pub epochs: usize,
}

/// Which way the objective is better.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// Lower is better (loss, RMSE, MAE).
    Minimize,
    /// Higher is better (accuracy, macro-F1).
    Maximize,
}

/// A parsed study file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StudySpec {
    /// The base config's path (as resolved against the study file).
    pub base: PathBuf,
    /// The base config's text, as read when the study was created.
    pub base_text: String,
    /// The objective: `loss` (validation loss) or a name from the task's validation metrics.
    pub objective: String,
    /// Its direction.
    pub direction: Direction,
    /// Seeds the sampler.
    pub seed: u64,
    /// When to stop.
    pub budget: Budget,
    /// How to pick trials.
    pub sampler: SamplerKind,
    /// How to stop unpromising ones.
    pub pruner: Pruner,
    /// What to search.
    pub space: SearchSpace,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    base: PathBuf,
    #[serde(default = "default_objective")]
    objective: String,
    #[serde(default)]
    direction: Option<Direction>,
    #[serde(default)]
    seed: u64,
    budget: Budget,
    #[serde(default)]
    sampler: SamplerKind,
    pruner: Pruner,
    space: toml::Table,
}

fn default_objective() -> String {
    "loss".into()
}

/// Metrics that improve upward.
const MAXIMIZED: [&str; 2] = ["accuracy", "macro_f1"];
/// Every objective some task reports.
const KNOWN: [&str; 5] = ["loss", "accuracy", "macro_f1", "rmse", "mae"];

impl StudySpec {
    /// Parses a study file's `text` (named `source` in messages; relative paths resolve
    /// against `dir`), reads its base config and checks every searched key against it.
    ///
    /// # Errors
    /// [`Error::ConfigAt`] naming the line: TOML syntax, an unknown key, a bad distribution, a
    /// searched key the base config does not have or a value it refuses.
    pub fn parse(text: &str, source: &str, dir: &Path) -> Result<Self> {
        let sites = crate::config_file::sites_of(text, source)?;
        let line_of = |path: &[&str]| -> usize {
            let path: Vec<String> = path.iter().map(|s| s.to_string()).collect();
            sites.line(&path).unwrap_or(0)
        };
        let at = |line: usize, msg: String| Error::ConfigAt {
            at: if line > 0 {
                format!("{source}, line {line}")
            } else {
                source.to_string()
            },
            msg,
        };
        let table: toml::Table = text
            .parse()
            .map_err(|e: toml::de::Error| at(0, e.to_string()))?;
        let raw: Raw =
            serde_path_to_error::deserialize(toml::Value::Table(table)).map_err(|e| {
                let segs: Vec<String> = e.path().iter().map(|s| s.to_string()).collect();
                let refs: Vec<&str> = segs.iter().map(String::as_str).collect();
                at(line_of(&refs), e.inner().message().trim().to_string())
            })?;
        if !KNOWN.contains(&raw.objective.as_str()) {
            return Err(at(
                line_of(&["objective"]),
                format!(
                    "unknown objective \"{}\"; use one of {} (the task must report it)",
                    raw.objective,
                    KNOWN.join(", ")
                ),
            ));
        }
        let direction = raw
            .direction
            .unwrap_or(if MAXIMIZED.contains(&raw.objective.as_str()) {
                Direction::Maximize
            } else {
                Direction::Minimize
            });
        let b = &raw.budget;
        if b.trials == 0 && b.minutes <= 0.0 && b.epochs == 0 {
            return Err(at(
                line_of(&["budget"]),
                "[budget] sets no limit: give trials, minutes or epochs".into(),
            ));
        }
        if !(b.minutes.is_finite() && b.minutes >= 0.0) {
            return Err(at(
                line_of(&["budget", "minutes"]),
                "budget.minutes must be a number ≥ 0".into(),
            ));
        }
        raw.pruner
            .validate()
            .map_err(|e| at(line_of(&["pruner"]), plain(e)))?;
        if let SamplerKind::Grid { points: 0 } = raw.sampler {
            return Err(at(
                line_of(&["sampler"]),
                "sampler.points must be at least 1".into(),
            ));
        }
        let space = SearchSpace::parse_table(&raw.space, |k| line_of(&["space", k]))
            .map_err(|e| relocate(e, source))?;
        let base = if raw.base.is_relative() {
            dir.join(&raw.base)
        } else {
            raw.base.clone()
        };
        let base_text = std::fs::read_to_string(&base).map_err(|e| {
            at(
                line_of(&["base"]),
                format!("cannot read the base config {}: {e}", base.display()),
            )
        })?;
        let spec = StudySpec {
            base,
            base_text,
            objective: raw.objective,
            direction,
            seed: raw.seed,
            budget: raw.budget,
            sampler: raw.sampler,
            pruner: raw.pruner,
            space,
        };
        spec.check_against_base(source)?;
        Ok(spec)
    }

    /// Every searched key at its bounds must make a config the base accepts.
    fn check_against_base(&self, source: &str) -> Result<()> {
        ConfigSource::new(&self.base_text, &self.base.display().to_string(), &[])?
            .load()
            .map_err(|e| Error::ConfigAt {
                at: self.base.display().to_string(),
                msg: format!("the base config is not valid: {e}"),
            })?;
        for p in self.space.params() {
            for v in extremes(&p.dist) {
                let set = format!("{}={v}", p.key);
                let checked = ConfigSource::new(
                    &self.base_text,
                    &self.base.display().to_string(),
                    std::slice::from_ref(&set),
                )
                .and_then(|c| c.load());
                if let Err(e) = checked {
                    return Err(Error::ConfigAt {
                        at: format!("{source}, line {}", p.line),
                        msg: format!(
                            "space \"{}\" = {v} is refused by the base config: {e}",
                            p.key
                        ),
                    });
                }
            }
        }
        Ok(())
    }

    /// Whether the objective is maximized.
    pub fn maximize(&self) -> bool {
        self.direction == Direction::Maximize
    }
}

/// The values at a distribution's ends (each choice), to check against the base config.
fn extremes(d: &Dist) -> Vec<toml::Value> {
    use toml::Value;
    match d {
        Dist::Uniform { low, high } | Dist::LogUniform { low, high } => {
            vec![Value::Float(*low), Value::Float(*high)]
        }
        Dist::Int { low, high } | Dist::IntLog { low, high } => {
            vec![Value::Integer(*low), Value::Integer(*high)]
        }
        Dist::Choice(v) => v.clone(),
        Dist::Fixed(v) => vec![v.clone()],
    }
}

fn plain(e: Error) -> String {
    match e {
        Error::Config(m) => m,
        other => other.to_string(),
    }
}

/// A space error says `line N`; put the file's name in front.
fn relocate(e: Error, source: &str) -> Error {
    match e {
        Error::ConfigAt { at, msg } => Error::ConfigAt {
            at: format!("{source}, {at}"),
            msg,
        },
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir() -> PathBuf {
        let d = std::env::temp_dir().join(format!("rnnkit-spec-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(
            d.join("base.toml"),
            "task = \"classify\"\n[model]\nhidden_size = 32\n",
        )
        .unwrap();
        d
    }

    const GOOD: &str = r#"base = "base.toml"
objective = "macro_f1"
[budget]
trials = 10
[pruner]
kind = "asha"
max_epochs = 9
[space]
"model.hidden_size" = { int_log = [16, 128] }
"model.cell" = { choice = ["lstm", "gru"] }
"#;

    #[test]
    fn a_study_file_parses() {
        let s = StudySpec::parse(GOOD, "study.toml", &dir()).unwrap();
        assert_eq!(s.direction, Direction::Maximize);
        assert_eq!(s.space.params().len(), 2);
        assert_eq!(s.pruner.rungs(), vec![1, 3, 9]);
        assert!(matches!(s.sampler, SamplerKind::Tpe { .. }));
    }

    #[test]
    fn mistakes_name_the_line() {
        for (edit, line, needle) in [
            (
                ("objective = \"macro_f1\"", "objective = \"f1\""),
                2,
                "unknown objective",
            ),
            (("trials = 10", "trails = 10"), 4, "unknown field"),
            (
                (
                    "\"model.cell\" = { choice = [\"lstm\", \"gru\"] }",
                    "\"model.cel\" = { choice = [\"lstm\"] }",
                ),
                10,
                "refused by the base config",
            ),
            (
                (
                    "\"model.cell\" = { choice = [\"lstm\", \"gru\"] }",
                    "\"model.cell\" = { choice = [\"lstm\", \"tcn\"] }",
                ),
                10,
                "refused",
            ),
            (("max_epochs = 9", "max_epochs = 0"), 5, "max_epochs"),
            (("trials = 10", "trials = 0"), 3, "no limit"),
        ] {
            let text = GOOD.replace(edit.0, edit.1);
            let e = StudySpec::parse(&text, "study.toml", &dir())
                .unwrap_err()
                .to_string();
            assert!(
                e.starts_with(&format!("study.toml, line {line}")),
                "{edit:?}: {e}"
            );
            assert!(e.contains(needle), "{edit:?}: {e}");
        }
    }
}
