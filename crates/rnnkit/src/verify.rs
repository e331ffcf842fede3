//! Verification cases (DESIGN section 4): run a stack described by a case file forward and
//! backward with given upstream gradients, and write every output and gradient — the contract
//! PyTorch-made golden files are checked against.

use crate::config::RnnConfig;
use crate::error::{Error, Result};
use crate::io::{TensorFile, config_from_metadata};
use crate::params::RnnParams;
use crate::precision::Precision;
use crate::recurrent::{Rnn, RnnState, Upstream};
use ndarray::{Array3, ArrayD, Ix3};
use std::collections::BTreeMap;
use std::path::Path;

/// A parsed case file.
#[derive(Debug)]
pub struct VerifyCase {
    /// The stack's shape.
    pub config: RnnConfig,
    /// Its parameters.
    pub params: RnnParams,
    /// `[T, B, I]`.
    pub input: Array3<f32>,
    /// `[L·D, B, P]`, when given.
    pub h0: Option<Array3<f32>>,
    /// `[L·D, B, H]`, when given (LSTM).
    pub c0: Option<Array3<f32>>,
    /// Per-sequence lengths, when given.
    pub lengths: Option<Vec<usize>>,
    /// `[T, B, D·P]`.
    pub grad_output: Array3<f32>,
    /// `[L·D, B, P]` (zero when absent).
    pub grad_h_n: Option<Array3<f32>>,
    /// `[L·D, B, H]` (zero when absent).
    pub grad_c_n: Option<Array3<f32>>,
}

fn bad(path: &Path, msg: impl Into<String>) -> Error {
    Error::Format {
        path: path.display().to_string(),
        msg: msg.into(),
    }
}

fn take3(
    tensors: &mut BTreeMap<String, ArrayD<f32>>,
    name: &str,
    want: Option<[usize; 3]>,
    path: &Path,
) -> Result<Option<Array3<f32>>> {
    let Some(a) = tensors.remove(name) else {
        return Ok(None);
    };
    let shape = a.shape().to_vec();
    let a = a.into_dimensionality::<Ix3>().map_err(|_| {
        bad(
            path,
            format!("`{name}` has shape {shape:?}, expected 3 dimensions"),
        )
    })?;
    if let Some(w) = want.filter(|w| a.shape() != w) {
        return Err(bad(
            path,
            format!("`{name}` has shape {shape:?}, expected {w:?}"),
        ));
    }
    Ok(Some(a))
}

impl VerifyCase {
    /// Reads and checks a case file: metadata, parameter names and shapes, and the shapes of
    /// every other tensor. Errors name the file and the tensor.
    pub fn read(path: &Path) -> Result<Self> {
        let file = TensorFile::read(path)?;
        let config = config_from_metadata(&file.metadata, path)?;
        let mut t = file.f32;
        let input = take3(&mut t, "input", None, path)?
            .ok_or_else(|| bad(path, "tensor `input` [T, B, I] is missing"))?;
        let (steps, batch, feat) = input.dim();
        if feat != config.input_size {
            return Err(bad(
                path,
                format!(
                    "`input` has {feat} features, metadata says input_size = {}",
                    config.input_size
                ),
            ));
        }
        let ld = config.num_layers * config.num_directions();
        let (p, h) = (config.h_out(), config.hidden_size);
        let h0 = take3(&mut t, "h0", Some([ld, batch, p]), path)?;
        let c0 = take3(&mut t, "c0", Some([ld, batch, h]), path)?;
        let grad_output = take3(
            &mut t,
            "grad_output",
            Some([steps, batch, config.output_size()]),
            path,
        )?
        .ok_or_else(|| bad(path, "tensor `grad_output` is missing"))?;
        let grad_h_n = take3(&mut t, "grad_h_n", Some([ld, batch, p]), path)?;
        let grad_c_n = take3(&mut t, "grad_c_n", Some([ld, batch, h]), path)?;
        let lstm = config.cell.has_cell_state();
        if !lstm && (c0.is_some() || grad_c_n.is_some()) {
            return Err(bad(
                path,
                format!("`c0`/`grad_c_n` given for a {} stack", config.cell),
            ));
        }
        let params =
            RnnParams::from_named(&config, &t, "").map_err(|e| bad(path, e.to_string()))?;
        let mut file_i64 = file.i64;
        let lengths = match file_i64.remove("lengths") {
            None => None,
            Some(l) => {
                if l.shape() != [batch] {
                    return Err(bad(
                        path,
                        format!("`lengths` has shape {:?}, expected [{batch}]", l.shape()),
                    ));
                }
                let v: Vec<usize> = l
                    .iter()
                    .map(|&x| {
                        usize::try_from(x)
                            .ok()
                            .filter(|x| (1..=steps).contains(x))
                            .ok_or_else(|| {
                                bad(path, format!("`lengths` value {x} is outside 1..={steps}"))
                            })
                    })
                    .collect::<Result<_>>()?;
                Some(v)
            }
        };
        if let Some(extra) = file_i64.keys().next() {
            return Err(bad(path, format!("unexpected i64 tensor `{extra}`")));
        }
        Ok(VerifyCase {
            config,
            params,
            input,
            h0,
            c0,
            lengths,
            grad_output,
            grad_h_n,
            grad_c_n,
        })
    }

    /// Runs forward and backward; returns the RESULT tensors by their contract names.
    pub fn run(&self) -> Result<BTreeMap<String, ArrayD<f32>>> {
        self.run_in(Precision::F32)
    }

    /// [`VerifyCase::run`] with the products in `precision`, run even where the CPU lacks its
    /// fast kernels ([`Rnn::force_precision`]).
    pub fn run_in(&self, precision: Precision) -> Result<BTreeMap<String, ArrayD<f32>>> {
        let mut rnn = Rnn::from_params(self.config.clone(), self.params.clone())?;
        rnn.force_precision(precision);
        let batch = self.input.dim().1;
        // Missing h0 or c0 mean zeros (PyTorch's default), each on its own.
        let state0 = (self.h0.is_some() || self.c0.is_some()).then(|| {
            let zeros = RnnState::zeros(&self.config, batch);
            RnnState {
                h: self.h0.clone().unwrap_or(zeros.h),
                c: self.c0.clone().or(zeros.c),
            }
        });
        // Dropout is not part of a case: a dropout value in the metadata is ignored.
        let mut rng = <rand_chacha::ChaCha8Rng as rand::SeedableRng>::seed_from_u64(0);
        let mut eval_rnn = rnn;
        eval_rnn.set_dropout(0.0)?;
        let (out, cache) = eval_rnn.forward_train(
            self.input.view(),
            state0.as_ref(),
            self.lengths.as_deref(),
            &mut rng,
        )?;
        let upstream = Upstream {
            grad_output: self.grad_output.view(),
            grad_h_n: self.grad_h_n.as_ref().map(|g| g.view()),
            grad_c_n: self.grad_c_n.as_ref().map(|g| g.view()),
        };
        let mut grads = RnnParams::zeros(&self.config);
        let dx = eval_rnn.backward(&cache, &upstream, &mut grads)?;
        let mut res = BTreeMap::new();
        res.insert("output".to_string(), out.output.into_dyn());
        res.insert("h_n".to_string(), out.state.h.into_dyn());
        if let Some(c) = out.state.c {
            res.insert("c_n".to_string(), c.into_dyn());
        }
        res.insert("grad_input".to_string(), dx.input.into_dyn());
        if self.h0.is_some() {
            res.insert("grad_h0".to_string(), dx.h0.into_dyn());
        }
        if let (true, Some(c0)) = (self.c0.is_some(), dx.c0) {
            res.insert("grad_c0".to_string(), c0.into_dyn());
        }
        for (name, a) in grads.to_named_arrays(&self.config) {
            res.insert(format!("grad.{name}"), a);
        }
        Ok(res)
    }
}

/// `rnnkit verify-case CASE --out RESULT`: reads the case, runs it, writes the result file.
pub fn verify_case(case: &Path, out: &Path) -> Result<()> {
    let result = VerifyCase::read(case)?.run()?;
    TensorFile {
        f32: result,
        ..Default::default()
    }
    .write(out)
}

/// How far one tensor is from its expected value.
#[derive(Clone, Debug)]
pub struct TensorDiff {
    /// Tensor name.
    pub name: String,
    /// `max |got − want|`; infinite when any difference is NaN (equal infinities differ by 0).
    pub max_abs: f64,
    /// `max |want|` (the tensor's scale).
    pub scale: f64,
}

impl TensorDiff {
    /// Scale-relative error `max |got − want| / max |want|` (absolute when the scale is below
    /// 1e-6, i.e. the expected tensor is zero).
    pub fn relative(&self) -> f64 {
        self.max_abs / self.scale.max(1e-6)
    }
}

/// The worse of two error magnitudes, a NaN counting as infinitely bad.
///
/// `f64::max` returns the other operand when one is NaN, so `fold(0.0, f64::max)` over
/// differences lets a NaN output pass any tolerance; `fold(0.0, worse)` does not.
///
/// ```
/// use rnnkit::verify::worse;
/// assert_eq!([0.5, f64::NAN, 0.1].into_iter().fold(0.0, worse), f64::INFINITY);
/// assert_eq!([0.5, 0.25].into_iter().fold(0.0, worse), 0.5);
/// ```
pub fn worse(a: f64, b: f64) -> f64 {
    if a.is_nan() || b.is_nan() {
        f64::INFINITY
    } else {
        a.max(b)
    }
}

/// Compares `got` with `want` tensor by tensor. A tensor missing on either side, or of another
/// shape, is an error naming it.
pub fn compare(
    got: &BTreeMap<String, ArrayD<f32>>,
    want: &BTreeMap<String, ArrayD<f32>>,
) -> Result<Vec<TensorDiff>> {
    if let Some(extra) = got.keys().find(|k| !want.contains_key(*k)) {
        return Err(Error::Shape(format!(
            "`{extra}` is in the result but not expected"
        )));
    }
    want.iter()
        .map(|(name, w)| {
            let g = got
                .get(name)
                .ok_or_else(|| Error::Shape(format!("`{name}` is expected but missing")))?;
            if g.shape() != w.shape() {
                return Err(Error::Shape(format!(
                    "`{name}`: shape {:?}, expected {:?}",
                    g.shape(),
                    w.shape()
                )));
            }
            let max_abs = g
                .iter()
                .zip(w)
                .map(|(&a, &b)| {
                    if a == b {
                        0.0
                    } else {
                        (f64::from(a) - f64::from(b)).abs()
                    }
                })
                .fold(0.0, worse);
            // A NaN in `want` already makes `max_abs` infinite; the scale only divides it.
            let scale = w.iter().map(|v| f64::from(*v).abs()).fold(0.0, f64::max);
            Ok(TensorDiff {
                name: name.clone(),
                max_abs,
                scale,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::arr1;

    fn one(name: &str, values: &[f32]) -> BTreeMap<String, ArrayD<f32>> {
        BTreeMap::from([(name.to_string(), arr1(values).into_dyn())])
    }

    #[test]
    fn a_nan_output_fails_the_comparison() {
        let want = one("output", &[1.0, -2.0, 0.5]);
        for got in [[f32::NAN, -2.0, 0.5], [1.0, -2.0, f32::NAN]] {
            let d = &compare(&one("output", &got), &want).unwrap()[0];
            assert_eq!(d.max_abs, f64::INFINITY, "{got:?}");
            assert_eq!(d.relative(), f64::INFINITY, "{got:?}");
        }
        // A NaN in the expected tensor fails too; exact agreement, infinities included, passes.
        let d = &compare(&want, &one("output", &[f32::NAN, 0.0, 0.0])).unwrap()[0];
        assert_eq!(d.max_abs, f64::INFINITY);
        let inf = one("output", &[f32::INFINITY, -2.0, 0.5]);
        let d = &compare(&inf, &inf).unwrap()[0];
        assert_eq!(d.max_abs, 0.0);
        let d = &compare(&one("output", &[1.0, -2.0, 0.75]), &want).unwrap()[0];
        assert_eq!((d.max_abs, d.scale), (0.25, 2.0));
    }
}
