//! PyTorch names for the parameters of the task models (`embedding.weight`, `rnn.*`,
//! `head.weight`, `head.bias`), so a trained classifier or forecaster loads into the equivalent
//! `torch.nn` module with `load_state_dict(strict=True)`.

use crate::error::{Error, Result};
use crate::nn::{Embedding, Linear};
use crate::params::{RnnParams, expected_shapes};
use crate::recurrent::Rnn;
use ndarray::ArrayD;
use std::collections::BTreeMap;

/// Parameter names in optimizer order, and the named tensors.
pub(crate) fn named_parts(
    embedding: Option<&Embedding>,
    rnn: &Rnn,
    head: &Linear,
) -> (Vec<String>, BTreeMap<String, ArrayD<f32>>) {
    let mut names = Vec::new();
    let mut tensors = BTreeMap::new();
    if let Some(e) = embedding {
        names.push("embedding.weight".to_string());
        tensors.insert("embedding.weight".into(), e.weight.clone().into_dyn());
    }
    names.extend(
        expected_shapes(rnn.config())
            .into_iter()
            .map(|(n, _)| format!("rnn.{n}")),
    );
    for (name, a) in rnn.params().to_named_arrays(rnn.config()) {
        tensors.insert(format!("rnn.{name}"), a);
    }
    names.push("head.weight".into());
    tensors.insert("head.weight".into(), head.weight.clone().into_dyn());
    if let Some(b) = &head.bias {
        names.push("head.bias".into());
        tensors.insert("head.bias".into(), b.clone().into_dyn());
    }
    (names, tensors)
}

/// Replaces the parts' parameters with the same-named tensors; every shape is checked first,
/// so a failed load changes nothing.
pub(crate) fn load_parts(
    embedding: Option<&mut Embedding>,
    rnn: &mut Rnn,
    head: &mut Linear,
    tensors: &BTreeMap<String, ArrayD<f32>>,
) -> Result<()> {
    let get = |name: &str, want: &[usize]| -> Result<ArrayD<f32>> {
        let t = tensors
            .get(name)
            .ok_or_else(|| Error::Params(format!("missing tensor `{name}`")))?;
        if t.shape() != want {
            return Err(Error::Params(format!(
                "`{name}` has shape {:?}, the model expects {want:?}",
                t.shape()
            )));
        }
        // The optimizer updates parameters as flat slices: any memory layout in, standard out.
        Ok(t.as_standard_layout().into_owned())
    };
    let emb = match &embedding {
        Some(e) => Some(get("embedding.weight", e.weight.shape())?),
        None => None,
    };
    let params = RnnParams::from_named(rnn.config(), tensors, "rnn.")?;
    let w = get("head.weight", head.weight.shape())?;
    let b = match &head.bias {
        Some(b) => Some(get("head.bias", b.shape())?),
        None => None,
    };
    let dims = |a: ArrayD<f32>| a.into_dimensionality().expect("shape checked");
    if let (Some(e), Some(t)) = (embedding, emb) {
        e.weight = dims(t);
    }
    *rnn.params_mut() = params;
    head.weight = dims(w);
    if let Some(t) = b {
        head.bias = Some(t.into_dimensionality().expect("shape checked"));
    }
    Ok(())
}
