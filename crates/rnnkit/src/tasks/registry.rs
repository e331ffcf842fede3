//! Every task by its config name. A new task is a new file in `tasks/` (its config, its
//! [`Task`](super::Task), a `train` function and an `evaluate` function) plus one line in the
//! list at the bottom.

use super::{EvaluateOptions, Observer, Outcome, Scored, TaskConfig};
use crate::error::Result;
use crate::run::RunDir;
use crate::train::TrainConfig;
use serde::{Deserialize, Deserializer, Serialize};

/// Work generic over a task's config type, done for the type [`TaskKind::visit_config`]
/// picks: a config loader's detailed errors, a table of defaults.
///
/// ```
/// use rnnkit::tasks::{ConfigVisitor, TaskConfig, TaskKind};
/// struct Epochs;
/// impl ConfigVisitor for Epochs {
///     type Output = usize;
///     fn visit<C: TaskConfig>(self) -> usize {
///         C::default().train().epochs
///     }
/// }
/// assert_eq!(TaskKind::Classify.visit_config(Epochs), 30);
/// ```
pub trait ConfigVisitor {
    /// What the work returns.
    type Output;
    /// Does the work for config type `C`.
    fn visit<C: TaskConfig>(self) -> Self::Output;
}

/// Builds [`TaskKind`] and [`AnyConfig`] from the list of tasks.
macro_rules! tasks {
    ($($variant:ident => $module:ident :: $config:ident, $doc:literal;)*) => {
        /// What kind of model a config trains: the config's `task` key.
        ///
        /// ```
        /// use rnnkit::tasks::TaskKind;
        /// assert_eq!("forecast".parse::<TaskKind>().unwrap(), TaskKind::Forecast);
        /// assert_eq!(TaskKind::Lm.to_string(), "lm");
        /// assert!("speech".parse::<TaskKind>().unwrap_err().to_string().contains("classify"));
        /// ```
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
        #[serde(rename_all = "snake_case")]
        pub enum TaskKind {
            $(#[doc = $doc] $variant,)*
        }

        impl TaskKind {
            /// Every task, in the order of the list.
            pub const ALL: &'static [TaskKind] = &[$(TaskKind::$variant,)*];

            /// Calls `visitor` with the task's config type.
            pub fn visit_config<V: ConfigVisitor>(self, visitor: V) -> V::Output {
                match self {
                    $(TaskKind::$variant => visitor.visit::<super::$module::$config>(),)*
                }
            }

            /// Whether its trained runs can be scored with [`AnyConfig::evaluate`]
            /// ([`TaskConfig::EVALUATES`]).
            ///
            /// ```
            /// use rnnkit::tasks::TaskKind;
            /// assert!(TaskKind::Classify.evaluates());
            /// assert!(!TaskKind::Synthetic.evaluates());
            /// ```
            pub fn evaluates(self) -> bool {
                match self {
                    $(TaskKind::$variant => <super::$module::$config as TaskConfig>::EVALUATES,)*
                }
            }

            /// The config name (`task = "..."`).
            pub fn name(self) -> &'static str {
                match self {
                    $(TaskKind::$variant => stringify!($module),)*
                }
            }
        }

        /// A config of any task.
        #[derive(Clone, Debug, PartialEq, Serialize)]
        #[serde(untagged)]
        pub enum AnyConfig {
            $(#[doc = $doc] $variant(super::$module::$config),)*
        }

        impl AnyConfig {
            /// The task's bundled default config.
            pub fn default_for(kind: TaskKind) -> AnyConfig {
                match kind {
                    $(TaskKind::$variant => AnyConfig::$variant(Default::default()),)*
                }
            }

            /// Reads a config of task `kind` from any serde format.
            ///
            /// # Errors
            /// The format's error: an unknown key, a value of the wrong type.
            pub fn deserialize_as<'de, D: Deserializer<'de>>(
                kind: TaskKind,
                d: D,
            ) -> std::result::Result<AnyConfig, D::Error> {
                Ok(match kind {
                    $(TaskKind::$variant => AnyConfig::$variant(Deserialize::deserialize(d)?),)*
                })
            }

            /// Its task.
            pub fn kind(&self) -> TaskKind {
                match self {
                    $(AnyConfig::$variant(_) => TaskKind::$variant,)*
                }
            }

            /// `[train]`.
            pub fn train_config(&self) -> &TrainConfig {
                match self {
                    $(AnyConfig::$variant(c) => c.train(),)*
                }
            }

            /// `[output]`: parent directory, run name, threads, overwrite.
            pub fn output(&self) -> super::OutputPlace<'_> {
                match self {
                    $(AnyConfig::$variant(c) => c.output(),)*
                }
            }

            /// Trains it in `run` (see [`super::train`]).
            ///
            /// # Errors
            /// As [`super::train`].
            pub fn train(
                &self,
                run: &RunDir,
                resuming: bool,
                observer: &mut dyn Observer,
            ) -> Result<Outcome> {
                match self {
                    $(AnyConfig::$variant(c) => super::$module::train(c, run, resuming, observer),)*
                }
            }

            /// Scores the trained run in `run` (see [`super::evaluate`]), its metrics as JSON.
            ///
            /// ```no_run
            /// use rnnkit::run::RunDir;
            /// use rnnkit::tasks::{AnyConfig, EvaluateOptions, TaskKind};
            ///
            /// # fn main() -> rnnkit::Result<()> {
            /// let run = RunDir::open("runs/co2")?;
            /// let config = AnyConfig::default_for(TaskKind::Forecast); // or the run's config.toml
            /// let found = config.evaluate(&run, &EvaluateOptions::default())?;
            /// println!("test RMSE {}", found.metrics["rmse"]);
            /// # Ok(())
            /// # }
            /// ```
            ///
            /// # Errors
            /// As [`super::evaluate`]; a task that does not [evaluate](TaskKind::evaluates)
            /// says where its scores are ([`crate::Error::Data`]).
            pub fn evaluate(
                &self,
                run: &RunDir,
                options: &EvaluateOptions,
            ) -> Result<Scored<serde_json::Value>> {
                match self {
                    $(AnyConfig::$variant(c) => {
                        super::$module::evaluate(c, run, options)?.into_json()
                    })*
                }
            }
        }

        $(impl TryFrom<AnyConfig> for super::$module::$config {
            /// The config of another task, given back.
            type Error = AnyConfig;

            /// The task's own config out of [`AnyConfig`]: a command that serves one task
            /// takes it, and names the other task to the user otherwise.
            fn try_from(config: AnyConfig) -> std::result::Result<Self, AnyConfig> {
                match config {
                    AnyConfig::$variant(c) => Ok(c),
                    #[allow(unreachable_patterns)]
                    other => Err(other),
                }
            }
        })*
    };
}

impl Default for TaskKind {
    /// The first task of the list: the language model.
    fn default() -> TaskKind {
        TaskKind::ALL[0]
    }
}

impl std::fmt::Display for TaskKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for TaskKind {
    type Err = crate::Error;

    fn from_str(s: &str) -> Result<TaskKind> {
        TaskKind::ALL
            .iter()
            .copied()
            .find(|k| k.name() == s)
            .ok_or_else(|| {
                let names: Vec<&str> = TaskKind::ALL.iter().map(|k| k.name()).collect();
                crate::Error::Config(format!(
                    "unknown task {s:?}: expected one of {}",
                    names.join(", ")
                ))
            })
    }
}

tasks! {
    Lm => lm::LmConfig, "Next-token language model over a text (truncated BPTT over one stream).";
    Classify => classify::ClassifyConfig, "A label per text (padded, length-bucketed batches).";
    Forecast => forecast::ForecastConfig, "The next values of a time series from a window of its past.";
    Synthetic => synthetic::SyntheticConfig, "A built-in long-memory task (adding problem, copy memory, temporal order).";
    Audio => audio::AudioConfig, "A label per recording: WAV files to features to a recurrent classifier.";
}
