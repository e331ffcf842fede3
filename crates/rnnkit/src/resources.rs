//! What a run will need before it allocates it: a memory estimate from the config and the
//! data's size, checked against what this process may use, and a sane bound on worker threads.
//!
//! Sizes in configs are untrusted. Without this, `model.hidden_size = 30000` asks for a 14 GB
//! weight matrix and the allocator aborts the process (exit 134) or the machine swaps; with it
//! the run is refused with exit 2 and the estimate, before anything is allocated. The estimate
//! counts the large buffers the engine holds (weights, gradients, optimizer state, the best
//! weights, the activations and gate gradients of the longest batch, the output layer's
//! logits, data not yet loaded); the allocator's slack, copies made while a checkpoint is
//! written and small buffers are left out, so a run it refuses would not have fit.

use crate::config::RnnConfig;
use crate::error::{Error, Result};
use crate::optim::OptimizerConfig;
use std::fmt;

/// The environment variable that turns the memory check off (for an estimate that is wrong on
/// some machine: say so in an issue).
pub const SKIP_CHECK_VAR: &str = "RNNKIT_SKIP_MEMORY_CHECK";

/// Bytes by what needs them.
///
/// ```
/// use rnnkit::resources::MemoryEstimate;
/// let mut m = MemoryEstimate::default();
/// m.add("parameters", 4e9);
/// m.add("activations", 1e9);
/// assert_eq!(m.total(), 5e9);
/// assert_eq!(m.to_string(), "5.0 GB (parameters 4.0 GB, activations 1.0 GB)");
/// // Refused when it does not fit in what is available.
/// assert!(m.check_against(Some(2e9)).is_err());
/// assert!(m.check_against(Some(8e9)).is_ok());
/// assert!(m.check_against(None).is_ok()); // unknown: nothing to check against
/// ```
#[derive(Clone, Debug, Default, PartialEq)]
pub struct MemoryEstimate {
    parts: Vec<(String, f64)>,
}

impl MemoryEstimate {
    /// Adds `bytes` needed for `what` (counted in f64: products of untrusted sizes would
    /// overflow an integer).
    pub fn add(&mut self, what: &str, bytes: f64) {
        if bytes > 0.0 {
            self.parts.push((what.to_string(), bytes));
        }
    }

    /// The sum of the parts, in bytes.
    pub fn total(&self) -> f64 {
        self.parts.iter().map(|(_, b)| b).sum()
    }

    /// An error ([`Error::Config`], exit 2) when the total exceeds `available` bytes, saying
    /// both and what takes the most; `None` (unknown) passes.
    pub fn check_against(&self, available: Option<f64>) -> Result<()> {
        let Some(available) = available else {
            return Ok(());
        };
        let total = self.total();
        if total <= available {
            return Ok(());
        }
        let largest = self
            .parts
            .iter()
            .max_by(|a, b| a.1.total_cmp(&b.1))
            .map_or("", |(w, _)| w.as_str());
        Err(Error::Config(format!(
            "this run would need about {self}, but {} of memory is available to it: make \
             the largest part ({largest}) smaller (model.hidden_size, model.num_layers, \
             train.batch_size, the data's length), or set {SKIP_CHECK_VAR}=1 if the estimate \
             is wrong",
            bytes(available)
        )))
    }

    /// [`check_against`](Self::check_against) what this process may use
    /// ([`available_memory`]), unless [`SKIP_CHECK_VAR`] is set.
    ///
    /// # Errors
    /// [`Error::Config`] when it does not fit.
    pub fn check(&self) -> Result<()> {
        if std::env::var_os(SKIP_CHECK_VAR).is_some_and(|v| !v.is_empty() && v != "0") {
            return Ok(());
        }
        self.check_against(available_memory())
    }
}

impl fmt::Display for MemoryEstimate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", bytes(self.total()))?;
        let parts: Vec<String> = self
            .parts
            .iter()
            .map(|(w, b)| format!("{w} {}", bytes(*b)))
            .collect();
        if !parts.is_empty() {
            write!(f, " ({})", parts.join(", "))?;
        }
        Ok(())
    }
}

/// `bytes` in the largest unit that keeps it at least 1: `1.5 GB`, `120.0 MB`.
fn bytes(b: f64) -> String {
    const UNITS: [&str; 6] = ["B", "kB", "MB", "GB", "TB", "PB"];
    let mut v = b;
    let mut unit = 0;
    while v >= 1000.0 && unit + 1 < UNITS.len() {
        v /= 1000.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{v:.0} B")
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}

/// The memory this process may still use, in bytes: the least of the machine's available
/// memory (`MemAvailable`), the cgroup's limit less its use, and the address-space limit
/// (`ulimit -v`) less what the process has mapped. `None` where none of them can be read
/// (not Linux).
pub fn available_memory() -> Option<f64> {
    let meminfo = std::fs::read_to_string("/proc/meminfo").ok();
    let machine = meminfo
        .as_deref()
        .and_then(|t| field_kb(t, "MemAvailable:"))
        .map(|kb| kb * 1024.0);
    let cgroup = cgroup_room();
    let address_space = address_space_room();
    [machine, cgroup, address_space]
        .into_iter()
        .flatten()
        .reduce(f64::min)
}

/// A `Name:   123 kB` field of a `/proc` file, in kB.
fn field_kb(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(name))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
}

/// Room under a cgroup v2 memory limit: `memory.max` less `memory.current`.
fn cgroup_room() -> Option<f64> {
    let base = std::path::Path::new("/sys/fs/cgroup");
    let max = std::fs::read_to_string(base.join("memory.max")).ok()?;
    let max: f64 = max.trim().parse().ok()?; // "max" (no limit) does not parse
    let current: f64 = std::fs::read_to_string(base.join("memory.current"))
        .ok()?
        .trim()
        .parse()
        .ok()?;
    Some((max - current).max(0.0))
}

/// Room under the soft address-space limit (`ulimit -v`): the limit less the process's
/// mapped size (`VmSize`).
fn address_space_room() -> Option<f64> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max address space"))?;
    let soft = line
        .trim_start_matches("Max address space")
        .split_whitespace()
        .next()?;
    let limit: f64 = soft.parse().ok()?; // "unlimited" does not parse
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let used = field_kb(&status, "VmSize:")? * 1024.0;
    Some((limit - used).max(0.0))
}

/// The cores this machine has for us (at least 1).
pub fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// The most worker threads a run may ask for, as a multiple of [`cores`]: more only adds
/// switching, and far more (`output.threads = 100000`) spends minutes starting threads.
pub const MAX_THREADS_PER_CORE: usize = 4;

/// The worker threads to start for a requested count: 0 means all cores; more than
/// [`MAX_THREADS_PER_CORE`] × cores is refused.
///
/// ```
/// use rnnkit::resources::{cores, worker_threads};
/// assert_eq!(worker_threads(0).unwrap(), cores());
/// assert_eq!(worker_threads(1).unwrap(), 1);
/// let e = worker_threads(100_000).unwrap_err().to_string();
/// assert!(e.contains("100000") && e.contains("cores"), "{e}");
/// ```
///
/// # Errors
/// [`Error::Config`] (exit 2) for a count above the bound.
pub fn worker_threads(requested: usize) -> Result<usize> {
    let cores = cores();
    match requested {
        0 => Ok(cores),
        n if n > MAX_THREADS_PER_CORE * cores => Err(Error::Config(format!(
            "{n} worker threads asked for, on a machine with {cores} cores: use 0 (all cores) \
             or at most {} threads",
            MAX_THREADS_PER_CORE * cores
        ))),
        n => Ok(n),
    }
}

/// What a training run holds at its peak, for [`training_estimate`].
#[derive(Clone, Debug)]
pub struct TrainingShape<'a> {
    /// The recurrent stack.
    pub rnn: &'a RnnConfig,
    /// Parameters outside the stack (embedding, output layer).
    pub other_params: f64,
    /// The optimizer (its state is a multiple of the parameters).
    pub optimizer: &'a OptimizerConfig,
    /// Sequences (or streams) per training batch: the config's batch size, or the training
    /// split's size when that is smaller.
    pub batch: usize,
    /// Sequences (or streams) per evaluation batch, likewise.
    pub eval_batch: usize,
    /// Time steps of the longest batch.
    pub steps: usize,
    /// Outputs per time step that the loss reads (a language model's vocabulary; 0 for
    /// models that answer once per sequence).
    pub outputs_per_step: usize,
    /// The data held in memory, in bytes.
    pub data_bytes: f64,
}

/// The memory a training run of `shape` needs (see the [module docs](self)).
///
/// ```
/// use rnnkit::optim::OptimizerConfig;
/// use rnnkit::resources::{TrainingShape, training_estimate};
/// use rnnkit::{CellKind, RnnConfig};
/// let rnn = RnnConfig { num_layers: 2, ..RnnConfig::new(CellKind::Lstm, 64, 30_000) };
/// let shape = TrainingShape {
///     rnn: &rnn, other_params: 0.0, optimizer: &OptimizerConfig::default(),
///     batch: 20, eval_batch: 10, steps: 35, outputs_per_step: 65, data_bytes: 4e6,
/// };
/// let m = training_estimate(&shape);
/// assert!(m.total() > 10.8e9 * 4.0 * 5.0, "{m}"); // 10.8e9 weights, their copies and state
/// assert!(m.check_against(Some(24e9)).is_err());
/// ```
pub fn training_estimate(shape: &TrainingShape) -> MemoryEstimate {
    const F32: f64 = 4.0;
    let rnn = shape.rnn;
    let params = rnn.param_count_f64() + shape.other_params;
    let mut m = MemoryEstimate::default();
    m.add("weights", params * F32);
    m.add("gradients", params * F32);
    m.add(
        "optimizer state",
        params * F32 * shape.optimizer.state_slots() as f64,
    );
    // The best epoch's weights are kept beside the model's.
    m.add("best weights", params * F32);
    // Each step of each layer and direction keeps its gate activations, states and input
    // for the backward pass, which adds the gates' gradients.
    let f = |v: usize| v as f64;
    let per_step = (2.0 * f(rnn.cell.num_gates()) + 3.0) * f(rnn.hidden_size) + f(rnn.input_size);
    let layers = f(rnn.num_layers) * f(rnn.num_directions());
    let rows = f(shape.batch.max(shape.eval_batch)) * f(shape.steps);
    m.add("activations", rows * layers * per_step * F32);
    // The logits (their gradient overwrites them).
    m.add("output layer", rows * f(shape.outputs_per_step) * F32);
    m.add("data", shape.data_bytes);
    m
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{CellKind, Init, Rnn};

    /// The count the estimate uses is the count a built stack has, for every shape option.
    #[test]
    fn param_count_matches_a_built_stack() {
        for cell in [CellKind::RnnTanh, CellKind::Lstm, CellKind::Gru] {
            for (layers, bi, bias, proj) in [
                (1, false, true, 0),
                (3, true, true, 0),
                (2, false, false, 0),
                (2, true, true, 3),
            ] {
                if proj > 0 && cell != CellKind::Lstm {
                    continue;
                }
                let cfg = RnnConfig {
                    num_layers: layers,
                    bidirectional: bi,
                    bias,
                    proj_size: proj,
                    ..RnnConfig::new(cell, 5, 7)
                };
                let rnn = Rnn::new(cfg.clone(), &Init::default(), 0).unwrap();
                assert_eq!(
                    cfg.param_count_f64(),
                    crate::module::num_params(&rnn) as f64,
                    "{cfg:?}"
                );
            }
        }
    }

    #[test]
    fn estimates_read_as_sizes() {
        assert_eq!(bytes(512.0), "512 B");
        assert_eq!(bytes(1.5e9), "1.5 GB");
        assert_eq!(bytes(2.0e15), "2.0 PB");
        assert_eq!(bytes(3.0e18), "3000.0 PB");
    }
}
