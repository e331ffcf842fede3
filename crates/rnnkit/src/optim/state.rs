//! Per-parameter optimizer state keyed by parameter name, shared by every optimizer:
//! validation of the parameter set, the step counter, and exact save/restore.

use super::ParamRef;
use crate::error::{Error, Result};
use std::collections::{BTreeMap, BTreeSet};

/// Key of the step counter in an optimizer's state map.
pub(crate) const STEP_KEY: &str = "step";

/// Encodes a counter as four f32 base-2¹⁶ digits, least significant first. Every digit is an
/// integer below 65536, exactly representable in f32, so the counter survives any f32 tensor
/// file bit-exactly (a single f32 would lose steps above 2²⁴).
///
/// ```
/// use rnnkit::optim::{decode_count, encode_count};
/// let n = 123_456_789_012_u64;
/// assert_eq!(decode_count(&encode_count(n)).unwrap(), n);
/// assert_eq!(encode_count(70_000), [4464.0, 1.0, 0.0, 0.0]);
/// ```
pub fn encode_count(n: u64) -> [f32; 4] {
    std::array::from_fn(|k| ((n >> (16 * k)) & 0xffff) as f32)
}

/// Decodes [`encode_count`]; errors unless given four integer digits in `0..65536`.
///
/// ```
/// use rnnkit::optim::decode_count;
/// assert_eq!(decode_count(&[3.0, 0.0, 0.0, 0.0]).unwrap(), 3);
/// assert!(decode_count(&[0.5, 0.0, 0.0, 0.0]).is_err());
/// assert!(decode_count(&[1.0]).is_err());
/// ```
pub fn decode_count(digits: &[f32]) -> Result<u64> {
    if digits.len() != 4 {
        return Err(Error::Params(format!(
            "a step counter has 4 digits, got {}",
            digits.len()
        )));
    }
    let mut n = 0_u64;
    for (k, &d) in digits.iter().enumerate() {
        if !(0.0..65536.0).contains(&d) || d.fract() != 0.0 {
            return Err(Error::Params(format!(
                "step counter digit {k} is {d}, expected an integer in 0..65536"
            )));
        }
        n |= (d as u64) << (16 * k);
    }
    Ok(n)
}

/// The buffers of one parameter.
#[derive(Clone, Debug, PartialEq)]
struct Slot {
    /// Number of scalars of the parameter.
    len: usize,
    /// One buffer per kind (in the order of [`ParamState::kinds`]), each `len` long.
    bufs: Vec<Vec<f32>>,
}

/// State of one optimizer: a step counter and, per parameter name, one buffer per kind.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct ParamState {
    /// Buffer kinds with their initial values, e.g. `[("exp_avg", 0.0), ("exp_avg_sq", 0.0)]`.
    kinds: Vec<(&'static str, f32)>,
    /// Buffers by parameter name; empty until the first step fixes the parameter set.
    slots: BTreeMap<String, Slot>,
    /// Steps taken.
    step: u64,
}

impl ParamState {
    /// Empty state with the given buffer kinds and initial values.
    pub(crate) fn new(kinds: Vec<(&'static str, f32)>) -> Self {
        ParamState {
            kinds,
            slots: BTreeMap::new(),
            step: 0,
        }
    }

    /// Steps taken.
    pub(crate) fn step(&self) -> u64 {
        self.step
    }

    /// Validates `params` against the state (creating the state on the first step) and counts
    /// a step; returns the new step number (1 on the first step). Changes nothing on error.
    pub(crate) fn begin_step(&mut self, params: &[ParamRef<'_>], lr: f32) -> Result<u64> {
        super::check_lr(lr)?;
        let mut seen = BTreeSet::new();
        for p in params {
            if p.value.len() != p.grad.len() {
                return Err(Error::Shape(format!(
                    "parameter `{}` has {} values but its gradient has {}",
                    p.name,
                    p.value.len(),
                    p.grad.len()
                )));
            }
            if !seen.insert(p.name) {
                return Err(Error::Params(format!(
                    "parameter `{}` is passed to the optimizer twice",
                    p.name
                )));
            }
        }
        if self.slots.is_empty() {
            self.slots = params
                .iter()
                .map(|p| {
                    let bufs = self.kinds.iter().map(|&(_, v)| vec![v; p.value.len()]);
                    let slot = Slot {
                        len: p.value.len(),
                        bufs: bufs.collect(),
                    };
                    (p.name.to_string(), slot)
                })
                .collect();
        } else {
            for p in params {
                let slot = self.slots.get(p.name).ok_or_else(|| {
                    Error::Params(format!(
                        "parameter `{}` is new to the optimizer, whose state holds {}; \
                         the parameter set must not change between steps",
                        p.name,
                        self.names()
                    ))
                })?;
                if slot.len != p.value.len() {
                    return Err(Error::Shape(format!(
                        "parameter `{}` has {} values but the optimizer state for it has {}",
                        p.name,
                        p.value.len(),
                        slot.len
                    )));
                }
            }
            if let Some(missing) = self.slots.keys().find(|n| !seen.contains(n.as_str())) {
                return Err(Error::Params(format!(
                    "parameter `{missing}` has optimizer state but was not passed to step; \
                     the parameter set must not change between steps"
                )));
            }
        }
        self.step += 1;
        Ok(self.step)
    }

    /// The buffers of parameter `name`, in kind order.
    ///
    /// # Panics
    /// If `name` was not validated by [`ParamState::begin_step`] (a bug in the optimizer).
    pub(crate) fn bufs_mut(&mut self, name: &str) -> &mut [Vec<f32>] {
        &mut self
            .slots
            .get_mut(name)
            .expect("parameter set checked by begin_step")
            .bufs
    }

    /// `"{kind}.{param}"` → buffer, plus `"step"`; empty before the first step.
    pub(crate) fn to_map(&self) -> BTreeMap<String, Vec<f32>> {
        let mut map = BTreeMap::new();
        if self.step == 0 && self.slots.is_empty() {
            return map;
        }
        map.insert(STEP_KEY.to_string(), encode_count(self.step).to_vec());
        for (name, slot) in &self.slots {
            for ((kind, _), buf) in self.kinds.iter().zip(&slot.bufs) {
                map.insert(format!("{kind}.{name}"), buf.clone());
            }
        }
        map
    }

    /// Replaces the state by `map` (as [`ParamState::to_map`] writes it), after checking it.
    pub(crate) fn load_map(&mut self, map: &BTreeMap<String, Vec<f32>>) -> Result<()> {
        if map.is_empty() {
            self.slots.clear();
            self.step = 0;
            return Ok(());
        }
        let step =
            decode_count(map.get(STEP_KEY).ok_or_else(|| {
                Error::Params(format!("optimizer state has no `{STEP_KEY}` entry"))
            })?)?;
        let mut found: BTreeMap<&str, Vec<Option<&Vec<f32>>>> = BTreeMap::new();
        for (key, buf) in map {
            if key == STEP_KEY {
                continue;
            }
            let kind_index = key.split_once('.').and_then(|(kind, name)| {
                let k = self.kinds.iter().position(|&(k, _)| k == kind)?;
                Some((k, name))
            });
            let Some((k, name)) = kind_index else {
                let kinds: Vec<&str> = self.kinds.iter().map(|&(k, _)| k).collect();
                return Err(Error::Params(format!(
                    "unknown optimizer state entry `{key}`: expected `step` or \
                     `KIND.PARAM` with KIND one of {kinds:?} (was the state saved by a \
                     different optimizer or with other flags?)"
                )));
            };
            found
                .entry(name)
                .or_insert_with(|| vec![None; self.kinds.len()])[k] = Some(buf);
        }
        if found.is_empty() && step > 0 && !self.kinds.is_empty() {
            return Err(Error::Params(format!(
                "optimizer state has a step count ({step}) but no `{}.PARAM` buffers",
                self.kinds[0].0
            )));
        }
        let mut slots = BTreeMap::new();
        for (name, bufs) in found {
            let mut out = Vec::with_capacity(bufs.len());
            for (buf, &(kind, _)) in bufs.into_iter().zip(&self.kinds) {
                let buf = buf.ok_or_else(|| {
                    Error::Params(format!("optimizer state has no `{kind}.{name}` entry"))
                })?;
                out.push(buf.clone());
            }
            let len = out[0].len();
            if let Some(b) = out.iter().position(|b| b.len() != len) {
                return Err(Error::Shape(format!(
                    "optimizer state `{}.{name}` has {} values but `{}.{name}` has {len}",
                    self.kinds[b].0,
                    out[b].len(),
                    self.kinds[0].0
                )));
            }
            slots.insert(name.to_string(), Slot { len, bufs: out });
        }
        self.slots = slots;
        self.step = step;
        Ok(())
    }

    /// Parameter names for messages.
    fn names(&self) -> String {
        let names: Vec<&str> = self.slots.keys().map(String::as_str).collect();
        format!("{names:?}")
    }
}
