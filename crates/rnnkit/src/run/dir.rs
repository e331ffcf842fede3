//! [`RunDir`]: the layout of a run directory, in one place. The trainer, the report writer and
//! every command after `train` find a run's files through it.

use crate::error::{Error, Result};
use crate::io::{TensorFile, write_atomic};
use crate::module::{self, Module};
use ndarray::ArrayD;
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::collections::BTreeMap;
use std::fs::{File, TryLockError};
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Which checkpoint to read the weights from.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Weights {
    /// The best validation epoch's (`checkpoints/best.safetensors`), else the latest.
    #[default]
    Best,
    /// The latest checkpoint's (`checkpoints/latest.safetensors`), where training stopped.
    Latest,
}

impl Weights {
    /// [`Weights::Latest`] when `latest` (a command's `--latest` flag), else the best.
    pub fn latest_if(latest: bool) -> Weights {
        if latest {
            Weights::Latest
        } else {
            Weights::Best
        }
    }
}

/// A run directory:
///
/// ```text
/// RUN_DIR/
///   config.toml                 the resolved config: `rnnkit train --config` reruns it
///   checkpoints/latest.safetensors, best.safetensors
///   metrics/steps.{csv,jsonl}, epochs.{csv,jsonl}, diagnostics.jsonl
///   plots/*.png                 loss, learning rate, gradient norm, task charts
///   model.safetensors           the trained weights alone, under PyTorch's names
///   report.md                   the numbers and the charts on one page
///   (task files: text.json, classes.json, scaler.json, ...)
/// ```
///
/// ```
/// use rand::SeedableRng;
/// use rnnkit::nn::Linear;
/// use rnnkit::run::{RunDir, Weights};
///
/// # fn main() -> rnnkit::Result<()> {
/// let path = std::env::temp_dir().join(format!("rnnkit-doc-rundir-{}", std::process::id()));
/// let run = RunDir::create(&path)?;
/// run.write_config("[train]\nepochs = 1\n")?;
/// let layer = Linear::new(3, 2, true, &mut rand_chacha::ChaCha8Rng::seed_from_u64(0));
/// run.save_model(&layer, "demo")?;
///
/// let again = RunDir::open(&path)?; // a directory with a config.toml
/// assert!(again.read_config()?.contains("epochs = 1"));
/// assert!(again.checkpoint(Weights::Best).is_err()); // trained with no checkpoint: a clear error
/// # std::fs::remove_dir_all(&path).ok();
/// # Ok(())
/// # }
/// ```
#[derive(Clone, Debug)]
pub struct RunDir {
    path: PathBuf,
    /// The directory's lock, held while this process writes the run (shared by clones).
    lock: Option<Arc<File>>,
}

impl PartialEq for RunDir {
    fn eq(&self, other: &RunDir) -> bool {
        self.path == other.path
    }
}

impl Eq for RunDir {}

impl RunDir {
    /// The resolved config's file name.
    pub const CONFIG: &'static str = "config.toml";
    /// The trained weights' file name.
    pub const MODEL: &'static str = "model.safetensors";
    /// The report's file name.
    pub const REPORT: &'static str = "report.md";

    /// The lock file: an advisory lock on it marks the process writing the run, whose pid it
    /// holds.
    pub const LOCK: &'static str = ".lock";

    /// A new run directory: creates it (and its parents) and takes its lock. A run never
    /// silently replaces another: a directory holding anything already is refused (continue
    /// that run, pick another name, or [`RunDir::replace`] it).
    ///
    /// # Errors
    /// [`Error::RunDir`] when the directory is not empty or another process holds its lock;
    /// [`Error::Io`] when it cannot be created.
    pub fn create(path: impl Into<PathBuf>) -> Result<RunDir> {
        let run = RunDir::locked(path.into())?;
        if let Some(name) = run.entries()?.first() {
            return Err(Error::RunDir {
                path: run.path.display().to_string(),
                msg: format!(
                    "holds a run already ({name}, ...): continue it with `rnnkit train --resume \
                     {}`, choose another output.name, or set output.overwrite = true to \
                     replace it",
                    run.path.display()
                ),
            });
        }
        Ok(run)
    }

    /// The run directory at `path`, emptied for a new run: takes its lock and removes every
    /// file of the run that was there, so nothing stale (an old `best` checkpoint, an old
    /// report) survives into the new one. Only a run directory (one with a `config.toml`) or
    /// an empty one is emptied; anything else is refused and left as it is.
    ///
    /// ```
    /// use rnnkit::run::RunDir;
    /// let path = std::env::temp_dir().join(format!("rnnkit-doc-replace-{}", std::process::id()));
    /// let old = RunDir::create(&path)?;
    /// old.write_config("x = 1\n")?;
    /// old.write_text("report.md", "old")?;
    /// drop(old); // the first run is over: its lock is released
    /// assert!(RunDir::create(&path).is_err()); // never silently replaced
    /// let new = RunDir::replace(&path)?;
    /// assert!(!new.report_path().exists());
    /// # std::fs::remove_dir_all(&path).ok();
    /// # Ok::<(), rnnkit::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::RunDir`] for a non-empty directory that is not a run directory, or one whose
    /// lock another process holds; [`Error::Io`] when a file cannot be removed.
    pub fn replace(path: impl Into<PathBuf>) -> Result<RunDir> {
        let run = RunDir::locked(path.into())?;
        let entries = run.entries()?;
        if !entries.is_empty() && !run.config_path().is_file() {
            return Err(Error::RunDir {
                path: run.path.display().to_string(),
                msg: "is not a run directory (no config.toml) and not empty: refusing to delete \
                      its files; choose another output.dir or output.name"
                    .into(),
            });
        }
        for name in entries {
            let p = run.path.join(&name);
            let removed = if p.is_dir() {
                std::fs::remove_dir_all(&p)
            } else {
                std::fs::remove_file(&p)
            };
            removed.map_err(|source| Error::Io {
                path: p.display().to_string(),
                source,
            })?;
        }
        Ok(run)
    }

    /// Removes this run directory and all in it, for a new run that failed before it trained
    /// (a config or data error found after the directory was made): what stays behind would
    /// only be refused by the next `create`. A run that has saved a checkpoint is kept (it can
    /// be continued), and so is a directory this value does not hold the lock of; returns
    /// whether it was removed.
    ///
    /// ```
    /// use rnnkit::run::RunDir;
    /// let path = std::env::temp_dir().join(format!("rnnkit-doc-discard-{}", std::process::id()));
    /// let run = RunDir::create(&path)?;
    /// run.write_config("x = 1\n")?;
    /// assert!(run.discard()?);
    /// assert!(!path.exists());
    /// # Ok::<(), rnnkit::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::Io`] when it cannot be removed.
    pub fn discard(self) -> Result<bool> {
        let has_checkpoint = self.join("checkpoints").is_dir()
            && std::fs::read_dir(self.join("checkpoints")).is_ok_and(|mut d| d.next().is_some());
        if self.lock.is_none() || has_checkpoint {
            return Ok(false);
        }
        std::fs::remove_dir_all(&self.path).map_err(|source| Error::Io {
            path: self.path.display().to_string(),
            source,
        })?;
        Ok(true)
    }

    /// Takes the lock of this run directory for writing to it (continuing a run), as
    /// [`RunDir::create`] does for a new one.
    ///
    /// # Errors
    /// [`Error::RunDir`] naming the pid of the process that holds it.
    pub fn lock(&mut self) -> Result<()> {
        if self.lock.is_none() {
            self.lock = RunDir::locked(self.path.clone())?.lock;
        }
        Ok(())
    }

    /// Creates the directory and takes its lock.
    fn locked(path: PathBuf) -> Result<RunDir> {
        let io = |p: &Path| {
            let p = p.display().to_string();
            move |source| Error::Io { path: p, source }
        };
        std::fs::create_dir_all(&path).map_err(io(&path))?;
        let lock_path = path.join(Self::LOCK);
        let mut file = File::options()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&lock_path)
            .map_err(io(&lock_path))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let mut pid = String::new();
                let _ = file.read_to_string(&mut pid);
                let owner = match pid.trim() {
                    "" => "another process".to_string(),
                    pid => format!("another process (pid {pid})"),
                };
                return Err(Error::RunDir {
                    path: path.display().to_string(),
                    msg: format!(
                        "{owner} is writing this run; wait for it to finish, or stop it first"
                    ),
                });
            }
            Err(TryLockError::Error(source)) => return Err(io(&lock_path)(source)),
        }
        // Only the lock's holder writes its pid.
        file.set_len(0)
            .and_then(|()| file.rewind())
            .and_then(|()| write!(file, "{}", std::process::id()))
            .map_err(io(&lock_path))?;
        Ok(RunDir {
            path,
            lock: Some(Arc::new(file)),
        })
    }

    /// The names in the directory, but the lock file, sorted.
    fn entries(&self) -> Result<Vec<String>> {
        let read = std::fs::read_dir(&self.path).map_err(|source| Error::Io {
            path: self.path.display().to_string(),
            source,
        })?;
        let mut names: Vec<String> = read
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n != Self::LOCK)
            .collect();
        names.sort();
        Ok(names)
    }

    /// An existing run directory: one holding a `config.toml`.
    ///
    /// # Errors
    /// [`Error::Format`] naming the path when it has no `config.toml`.
    pub fn open(path: impl Into<PathBuf>) -> Result<RunDir> {
        let path = path.into();
        if !path.join(Self::CONFIG).is_file() {
            let what = if path.is_dir() {
                "no config.toml here; is it a run directory (the folder `rnnkit train` printed)?"
            } else {
                "not found; give the run directory `rnnkit train` printed"
            };
            return Err(Error::Format {
                path: path.display().to_string(),
                msg: what.into(),
            });
        }
        Ok(RunDir { path, lock: None })
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A file in the directory.
    pub fn join(&self, name: impl AsRef<Path>) -> PathBuf {
        self.path.join(name)
    }

    /// `config.toml`.
    pub fn config_path(&self) -> PathBuf {
        self.join(Self::CONFIG)
    }

    /// `model.safetensors`.
    pub fn model_path(&self) -> PathBuf {
        self.join(Self::MODEL)
    }

    /// `report.md`.
    pub fn report_path(&self) -> PathBuf {
        self.join(Self::REPORT)
    }

    /// `metrics/`.
    pub fn metrics_dir(&self) -> PathBuf {
        self.join("metrics")
    }

    /// `plots/`.
    pub fn plots_dir(&self) -> PathBuf {
        self.join("plots")
    }

    /// `checkpoints/latest.safetensors`, whether or not it exists yet.
    pub fn latest_checkpoint(&self) -> PathBuf {
        self.join("checkpoints/latest.safetensors")
    }

    /// `checkpoints/best.safetensors`, whether or not it exists yet.
    pub fn best_checkpoint(&self) -> PathBuf {
        self.join("checkpoints/best.safetensors")
    }

    /// The checkpoint holding `which` weights; [`Weights::Best`] falls back to the latest (a
    /// run stopped before its first validation has no best yet).
    ///
    /// # Errors
    /// [`Error::Format`] when the run has saved no checkpoint.
    pub fn checkpoint(&self, which: Weights) -> Result<PathBuf> {
        let candidates = match which {
            Weights::Best => vec![self.best_checkpoint(), self.latest_checkpoint()],
            Weights::Latest => vec![self.latest_checkpoint()],
        };
        candidates
            .into_iter()
            .find(|p| p.is_file())
            .ok_or_else(|| Error::Format {
                path: self.join("checkpoints").display().to_string(),
                msg: "no checkpoint here; has the run saved one yet?".into(),
            })
    }

    /// The model's tensors of a checkpoint, by PyTorch name: without the optimizer state
    /// (`optim.`), the carried recurrent state (`state.`) and, in checkpoints written before
    /// best weights had a file of their own, the best weights (`best.`).
    ///
    /// # Errors
    /// No checkpoint, or one that cannot be read.
    pub fn model_tensors(&self, which: Weights) -> Result<BTreeMap<String, ArrayD<f32>>> {
        let path = self.checkpoint(which)?;
        let file = TensorFile::read(&path)?;
        file.ensure_finite(&path)?;
        let mut tensors = file.f32;
        tensors.retain(|name, _| {
            !["optim.", "state.", "best."]
                .iter()
                .any(|p| name.starts_with(p))
        });
        Ok(tensors)
    }

    /// Loads `which` weights into `model` (built with the run's config), checking every name
    /// and shape before writing any.
    ///
    /// # Errors
    /// No checkpoint, an unreadable one, or weights of another architecture.
    pub fn load_model(&self, model: &mut dyn Module, which: Weights) -> Result<()> {
        let tensors = self.model_tensors(which)?;
        module::load_named(model, "", &tensors).map_err(|e| Error::Corrupt {
            path: self
                .checkpoint(which)
                .unwrap_or_default()
                .display()
                .to_string(),
            msg: format!("{e} (was the run's config.toml edited after training?)"),
        })
    }

    /// Writes `model.safetensors`: the weights under PyTorch's names (for
    /// `torch.nn.Module.load_state_dict(strict=True)`), with metadata saying what they are
    /// (`format = "pt"`, the task, and where the shapes come from).
    ///
    /// # Errors
    /// [`Error::Diverged`] when a weight is NaN or infinite (the file is then not written);
    /// [`Error::Io`] when it cannot be written.
    pub fn save_model(&self, model: &dyn Module, task: &str) -> Result<PathBuf> {
        let mut file = TensorFile {
            f32: module::named_tensors(model, ""),
            ..Default::default()
        };
        if let Some((name, n)) = file.first_non_finite() {
            return Err(Error::Diverged(format!(
                "`{name}` holds {n} non-finite value(s) (NaN or infinity), so {} was not \
                 written",
                self.model_path().display()
            )));
        }
        file.metadata.insert("format".into(), "pt".into());
        file.metadata.insert("rnnkit_task".into(), task.into());
        file.metadata.insert(
            "rnnkit_config".into(),
            "config.toml in the same directory".into(),
        );
        let path = self.model_path();
        file.write(&path)?;
        Ok(path)
    }

    /// Writes `config.toml` (atomically: a reader never sees half a file).
    ///
    /// # Errors
    /// [`Error::Io`] when it cannot be written.
    pub fn write_config(&self, toml: &str) -> Result<PathBuf> {
        self.write_text(Self::CONFIG, toml)
    }

    /// Replaces `config.toml` with `text`, the config a continued run goes on with, keeping
    /// the history: the first such change saves the original as `config.initial.toml`, and each
    /// appends `change` (what was changed, when) as a line of `config_history.txt`.
    ///
    /// # Errors
    /// [`Error::Io`] when a file cannot be read or written.
    pub fn update_config(&self, text: &str, change: &str) -> Result<()> {
        let initial = "config.initial.toml";
        if !self.join(initial).exists() {
            self.write_text(initial, &self.read_config()?)?;
        }
        self.write_config(text)?;
        let history = "config_history.txt";
        let mut lines = match self.join(history).exists() {
            true => self.read_text(history)?,
            false => String::new(),
        };
        lines.push_str(change.trim_end());
        lines.push('\n');
        self.write_text(history, &lines)?;
        Ok(())
    }

    /// The text of `config.toml`.
    ///
    /// # Errors
    /// [`Error::Io`] when it cannot be read.
    pub fn read_config(&self) -> Result<String> {
        self.read_text(Self::CONFIG)
    }

    /// Writes a text file in the directory, atomically.
    ///
    /// # Errors
    /// [`Error::Io`] when it cannot be written.
    pub fn write_text(&self, name: &str, text: &str) -> Result<PathBuf> {
        let path = self.join(name);
        write_atomic(&path, text.as_bytes())?;
        Ok(path)
    }

    /// A text file of the directory.
    ///
    /// # Errors
    /// [`Error::Io`] when it cannot be read.
    pub fn read_text(&self, name: &str) -> Result<String> {
        let path = self.join(name);
        std::fs::read_to_string(&path).map_err(|source| Error::Io {
            path: path.display().to_string(),
            source,
        })
    }

    /// Writes `value` as pretty JSON to a file in the directory, atomically.
    ///
    /// # Errors
    /// [`Error::Io`] when it cannot be written.
    pub fn write_json(&self, name: &str, value: &impl Serialize) -> Result<PathBuf> {
        let text = serde_json::to_string_pretty(value).map_err(|e| Error::Format {
            path: self.join(name).display().to_string(),
            msg: format!("cannot encode: {e}"),
        })?;
        self.write_text(name, &(text + "\n"))
    }

    /// Reads a JSON file of the directory.
    ///
    /// # Errors
    /// [`Error::Io`] when it cannot be read, [`Error::Format`] when it does not parse as `T`.
    pub fn read_json<T: DeserializeOwned>(&self, name: &str) -> Result<T> {
        let text = self.read_text(name)?;
        serde_json::from_str(&text).map_err(|e| Error::Format {
            path: self.join(name).display().to_string(),
            msg: format!("line {}: {e}", e.line()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::Linear;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    fn temp(name: &str) -> PathBuf {
        let p = std::env::temp_dir().join(format!("rnnkit-rundir-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        p
    }

    #[test]
    fn open_refuses_what_is_not_a_run_directory() {
        let p = temp("open");
        let e = RunDir::open(&p).unwrap_err().to_string();
        assert!(e.contains("not found"), "{e}");
        let run = RunDir::create(&p).unwrap();
        let e = RunDir::open(&p).unwrap_err().to_string();
        assert!(e.contains("no config.toml"), "{e}");
        run.write_config("x = 1\n").unwrap();
        assert_eq!(RunDir::open(&p).unwrap(), run);
        std::fs::remove_dir_all(&p).unwrap();
    }

    #[test]
    fn weights_round_trip_and_best_falls_back_to_latest() {
        let p = temp("weights");
        let run = RunDir::create(&p).unwrap();
        let trained = Linear::new(3, 2, true, &mut ChaCha8Rng::seed_from_u64(1));
        std::fs::create_dir_all(p.join("checkpoints")).unwrap();
        let mut file = TensorFile {
            f32: module::named_tensors(&trained, ""),
            ..Default::default()
        };
        file.f32
            .insert("optim.m.weight".into(), ArrayD::zeros(vec![2, 3]));
        file.write(&run.latest_checkpoint()).unwrap();
        assert_eq!(
            run.checkpoint(Weights::Best).unwrap(),
            run.latest_checkpoint()
        );
        let mut fresh = Linear::new(3, 2, true, &mut ChaCha8Rng::seed_from_u64(2));
        run.load_model(&mut fresh, Weights::Best).unwrap();
        assert_eq!(
            module::named_tensors(&fresh, ""),
            module::named_tensors(&trained, "")
        );
        let mut other = Linear::new(4, 2, true, &mut ChaCha8Rng::seed_from_u64(2));
        let e = run.load_model(&mut other, Weights::Latest).unwrap_err();
        assert!(e.to_string().contains("latest.safetensors"), "{e}");
        std::fs::remove_dir_all(&p).unwrap();
    }

    #[test]
    fn a_run_is_never_silently_replaced() {
        let p = temp("replace");
        let run = RunDir::create(&p).unwrap();
        run.write_config("x = 1\n").unwrap();
        std::fs::create_dir_all(p.join("checkpoints")).unwrap();
        run.write_text("checkpoints/best.safetensors", "old")
            .unwrap();
        // While the first run holds the lock, nobody else writes it, not even to replace it.
        for e in [
            RunDir::create(&p).unwrap_err(),
            RunDir::replace(&p).unwrap_err(),
        ] {
            let e = e.to_string();
            assert!(e.contains(&format!("pid {}", std::process::id())), "{e}");
        }
        let mut reader = RunDir::open(&p).unwrap();
        assert!(reader.lock().is_err());
        drop(run);
        let e = RunDir::create(&p).unwrap_err();
        assert!(e.is_bad_input());
        let e = e.to_string();
        assert!(
            e.contains("--resume") && e.contains("output.overwrite"),
            "{e}"
        );
        // Replacing removes every file of the old run.
        let new = RunDir::replace(&p).unwrap();
        assert!(!p.join("checkpoints").exists() && !new.config_path().exists());
        drop(new);
        // A directory that is not a run's keeps its files.
        let other = temp("not-a-run");
        std::fs::create_dir_all(&other).unwrap();
        std::fs::write(other.join("thesis.tex"), "precious").unwrap();
        assert!(RunDir::replace(&other).is_err());
        assert!(other.join("thesis.tex").exists());
        std::fs::remove_dir_all(&p).unwrap();
        std::fs::remove_dir_all(&other).unwrap();
    }

    #[test]
    fn json_errors_name_the_file_and_line() {
        let p = temp("json");
        let run = RunDir::create(&p).unwrap();
        run.write_json("a.json", &vec![1, 2]).unwrap();
        assert_eq!(run.read_json::<Vec<u32>>("a.json").unwrap(), vec![1, 2]);
        run.write_text("b.json", "[1,\n2,\n\"x\"]").unwrap();
        let e = run.read_json::<Vec<u32>>("b.json").unwrap_err().to_string();
        assert!(e.contains("b.json") && e.contains("line 3"), "{e}");
        std::fs::remove_dir_all(&p).unwrap();
    }
}
