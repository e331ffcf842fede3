//! The files of a run directory that the commands after `train` read: the checkpoints and
//! `model.safetensors` (the trained weights alone, under PyTorch's parameter names, for
//! `torch.nn.Module.load_state_dict(strict=True)`).

use crate::run_config::usage;
use anyhow::{Context, Result};
use ndarray::ArrayD;
use rnnkit::io::TensorFile;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The checkpoint to load from `dir`: the best one unless `latest`, falling back to the latest.
pub fn checkpoint_path(dir: &Path, latest: bool) -> Result<PathBuf> {
    let names: &[&str] = if latest {
        &["latest"]
    } else {
        &["best", "latest"]
    };
    for n in names {
        let p = dir.join("checkpoints").join(format!("{n}.safetensors"));
        if p.exists() {
            return Ok(p);
        }
    }
    Err(usage(format!(
        "{}: no checkpoint in checkpoints/; has the run saved one yet?",
        dir.display()
    )))
}

/// The model's tensors of a checkpoint: a checkpoint also holds optimizer state (`optim.`),
/// the carried recurrent state (`state.`) and the best weights so far (`best.`).
pub fn model_tensors(dir: &Path, latest: bool) -> Result<BTreeMap<String, ArrayD<f32>>> {
    let path = checkpoint_path(dir, latest)?;
    let mut tensors = TensorFile::read(&path)
        .with_context(|| format!("reading {}", path.display()))?
        .f32;
    tensors.retain(|name, _| {
        !["optim.", "state.", "best."]
            .iter()
            .any(|p| name.starts_with(p))
    });
    Ok(tensors)
}

/// Writes `RUN_DIR/model.safetensors`: `tensors` (PyTorch names) and metadata saying what
/// model they are (`format = "pt"`, the task, and `config.toml` for the shapes).
pub fn save_model(
    dir: &Path,
    tensors: BTreeMap<String, ArrayD<f32>>,
    task: &str,
) -> Result<PathBuf> {
    let mut file = TensorFile {
        f32: tensors,
        ..Default::default()
    };
    file.metadata.insert("format".into(), "pt".into());
    file.metadata.insert("rnnkit_task".into(), task.into());
    file.metadata.insert(
        "rnnkit_config".into(),
        "config.toml in the same directory".into(),
    );
    let path = dir.join("model.safetensors");
    file.write(&path)
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(path)
}

/// The language model of an `lm` run: its config's shapes with the checkpoint's weights.
pub fn load_lm(
    dir: &Path,
    cfg: &crate::train_config::TrainFile,
    latest: bool,
) -> Result<rnnkit::models::LanguageModel> {
    let tensors = model_tensors(dir, latest)?;
    let mut model = rnnkit::models::LanguageModel::from_named(cfg.model.rnn(), &tensors)
        .with_context(|| format!("loading the model of {}", dir.display()))?;
    if cfg.model.tie_weights {
        model.tie()?;
    }
    Ok(model)
}
