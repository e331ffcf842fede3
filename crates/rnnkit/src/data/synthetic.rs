//! Built-in synthetic long-memory tasks: data whose answer depends on inputs far in the past,
//! so a plain RNN's vanishing gradient shows and an LSTM's or GRU's cure can be measured. Each
//! task has a plain-data config (serde, for TOML), draws everything from a `seed` with
//! [`ChaCha8Rng`], and knows the loss of its trivial baseline (what a model that remembers
//! nothing scores), so a report can say how far below it a model got.
//!
//! - [`AddingProblem`] (Hochreiter & Schmidhuber 1997, in the form of Le et al. 2015 and
//!   Arjovsky et al. 2016): regression, sum of the two marked values of a long sequence;
//!   a [`RegressionSet`] batched by [`RegressionBatches`] for a
//!   [`crate::models::Forecaster`] with horizon 1 and 1 target.
//! - [`CopyMemory`] (Arjovsky, Shah & Bengio 2016): tagging, reproduce 10 symbols after a long
//!   delay; tag [`Example`]s for [`crate::data::batch::ClassBatches`] and a
//!   [`crate::models::SequenceTagger`].
//! - [`TemporalOrder`] (Hochreiter & Schmidhuber 1997, task 6a): classification, the order of
//!   two relevant symbols among distractors; class [`Example`]s for a
//!   [`crate::models::SequenceClassifier`].
//!
//! `generate()` draws `size` examples from stream 0 of `seed`; [`Splits`] (from each config's
//! `splits(train, val, test)`) draws the three sets from streams 1, 2 and 3, so they are
//! independent draws that never repeat one another's random numbers.
//!
//! ```
//! use rnnkit::data::synthetic::AddingProblem;
//! use rnnkit::data::Batches;
//!
//! let task = AddingProblem { length: 20, ..Default::default() };
//! let sets = task.splits(256, 64, 64).unwrap();
//! assert_eq!(sets.train.inputs().shape(), &[256, 20, 2]); // [N, T, F]
//! let batches = sets.train.batches(32, true, 0).unwrap().epoch(0).unwrap();
//! assert_eq!(batches.len(), 8);
//! assert_eq!(batches[0].inputs.shape(), &[20, 32, 2]); // [T, B, F], time-major
//! assert_eq!(batches[0].targets.shape(), &[32, 1]); // [B, K]
//! // Predicting 1 every time scores about 1/6, the number a model must beat.
//! assert!((sets.val.mse_of_constant(1.0) - AddingProblem::baseline_mse()).abs() < 0.06);
//! ```

use crate::data::Batches;
use crate::data::batch::Example;
use crate::data::series::WindowBatch;
use crate::error::{Error, Result};
use ndarray::{Array2, Array3, s};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use std::ops::Range;

// ---------------------------------------------------------------------------------------------
// Shared: seeds, splits, checks.

/// The stream of `seed` that [`AddingProblem::generate`] and its siblings draw from; splits use
/// streams 1, 2, 3 (train, val, test).
const GENERATE_STREAM: u64 = 0;

fn stream_rng(seed: u64, stream: u64) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(stream);
    rng
}

/// A training, a validation and a test set drawn from one task config.
///
/// ```
/// use rnnkit::data::synthetic::TemporalOrder;
/// let sets = TemporalOrder { length: 12, ..Default::default() }.splits(100, 20, 30).unwrap();
/// assert_eq!((sets.train.len(), sets.val.len(), sets.test.len()), (100, 20, 30));
/// assert_ne!(sets.val[..20], sets.train[..20]); // independent draws
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct Splits<D> {
    /// Training set (stream 1 of the config's seed).
    pub train: D,
    /// Validation set (stream 2).
    pub val: D,
    /// Test set (stream 3).
    pub test: D,
}

/// Draws the three sets, each from its own stream of `seed`, after checking their sizes.
fn make_splits<D>(
    task: &str,
    seed: u64,
    sizes: [usize; 3],
    mut draw: impl FnMut(usize, &mut ChaCha8Rng) -> D,
) -> Result<Splits<D>> {
    for (name, n) in ["train", "val", "test"].into_iter().zip(sizes) {
        if n == 0 {
            return Err(Error::Config(format!(
                "{task}: the {name} split's size must be at least 1, got 0"
            )));
        }
    }
    let mut sets = (1..=3u64).zip(sizes).map(|(stream, n)| {
        let mut rng = stream_rng(seed, stream);
        draw(n, &mut rng)
    });
    let (train, val, test) = (
        sets.next().expect("3 sets"),
        sets.next().expect("3 sets"),
        sets.next().expect("3 sets"),
    );
    Ok(Splits { train, val, test })
}

/// `Error::Config` unless `value ≥ min`, naming the task, the field and the allowed range.
fn at_least(task: &str, field: &str, value: usize, min: usize) -> Result<()> {
    if value < min {
        return Err(Error::Config(format!(
            "{task}: {field} must be at least {min}, got {value}"
        )));
    }
    Ok(())
}

/// `Error::Config` when `n` sequences of `steps` steps (of `per_step` values) cannot be held:
/// an allocation that large would abort or panic, and the library must not on user input.
fn fits(task: &str, n: usize, steps: usize, per_step: usize) -> Result<()> {
    if n.checked_mul(steps)
        .and_then(|v| v.checked_mul(per_step))
        .is_none_or(|v| v > isize::MAX as usize / 8)
    {
        return Err(Error::Config(format!(
            "{task}: {n} sequences of {steps} steps do not fit in memory; \
             use a smaller size or length"
        )));
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// The adding problem.

/// The adding problem: each sequence has `length` steps of 2 features, a value uniform in
/// `[0, 1)` and a marker in `{0, 1}`. Exactly two markers are 1, one at a uniform position in
/// the first half `[0, T/2)`, one in the second half `[T/2, T)` (`T/2` rounded down); the
/// target is the sum of the two marked values. A model must hold the first marked value across
/// at least `T/2` steps.
///
/// Predicting the mean sum, 1, every time scores [`AddingProblem::baseline_mse`] `= 1/6` (the
/// variance of the sum of two independent `U(0, 1)`); learning the task means going well below.
///
/// ```
/// use rnnkit::data::synthetic::AddingProblem;
/// let set = AddingProblem { length: 8, size: 3, seed: 7 }.generate().unwrap();
/// let x = set.inputs(); // [N, T, F]: value, marker
/// for n in 0..3 {
///     let marked: Vec<usize> = (0..8).filter(|&t| x[[n, t, 1]] == 1.0).collect();
///     assert_eq!(marked.len(), 2);
///     assert!(marked[0] < 4 && marked[1] >= 4);
///     assert_eq!(set.targets()[[n, 0]], x[[n, marked[0], 0]] + x[[n, marked[1], 0]]);
/// }
/// let cfg: AddingProblem = serde_json::from_str(r#"{"length": 200}"#).unwrap();
/// assert_eq!(cfg.size, 10_000);
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AddingProblem {
    /// Steps per sequence `T`, at least 2. Default 100.
    pub length: usize,
    /// Number of sequences [`AddingProblem::generate`] draws, at least 1. Default 10 000.
    pub size: usize,
    /// Seed of every random draw. Default 0.
    pub seed: u64,
}

impl Default for AddingProblem {
    /// `length` 100 (hard for a plain RNN, learnable by an LSTM in a few epochs; Le et al. go
    /// to 750), `size` 10 000, `seed` 0.
    fn default() -> Self {
        AddingProblem {
            length: 100,
            size: 10_000,
            seed: 0,
        }
    }
}

impl AddingProblem {
    /// Features per step: the value, then the marker.
    pub const FEATURES: usize = 2;

    const TASK: &str = "adding problem";

    /// Checks the ranges: `length ≥ 2`, `size ≥ 1`; errors name the field.
    pub fn validate(&self) -> Result<()> {
        at_least(Self::TASK, "length", self.length, 2)?;
        at_least(Self::TASK, "size", self.size, 1)?;
        fits(Self::TASK, self.size, self.length, Self::FEATURES)
    }

    /// `size` sequences drawn from stream 0 of `seed`.
    pub fn generate(&self) -> Result<RegressionSet> {
        self.validate()?;
        Ok(self.draw(self.size, &mut stream_rng(self.seed, GENERATE_STREAM)))
    }

    /// Training, validation and test sets of the given sizes (`size` is not used), from streams
    /// 1, 2, 3 of `seed`.
    pub fn splits(&self, train: usize, val: usize, test: usize) -> Result<Splits<RegressionSet>> {
        at_least(Self::TASK, "length", self.length, 2)?;
        for n in [train, val, test] {
            fits(Self::TASK, n, self.length, Self::FEATURES)?;
        }
        make_splits(Self::TASK, self.seed, [train, val, test], |n, rng| {
            self.draw(n, rng)
        })
    }

    /// The MSE of always predicting 1, in expectation: `Var(U₁ + U₂) = 2/12 = 1/6`.
    ///
    /// ```
    /// assert_eq!(rnnkit::data::synthetic::AddingProblem::baseline_mse(), 1.0 / 6.0);
    /// ```
    pub fn baseline_mse() -> f64 {
        1.0 / 6.0
    }

    fn draw(&self, n: usize, rng: &mut ChaCha8Rng) -> RegressionSet {
        let steps = self.length;
        let half = steps / 2;
        let mut inputs = Array3::zeros((n, steps, Self::FEATURES)); // [N, T, 2]
        let mut targets = Array2::zeros((n, 1)); // [N, 1]
        for i in 0..n {
            for t in 0..steps {
                inputs[[i, t, 0]] = rng.random::<f32>();
            }
            let first = rng.random_range(0..half);
            let second = rng.random_range(half..steps);
            inputs[[i, first, 1]] = 1.0;
            inputs[[i, second, 1]] = 1.0;
            targets[[i, 0]] = inputs[[i, first, 0]] + inputs[[i, second, 0]];
        }
        RegressionSet { inputs, targets }
    }
}

/// Fixed-length feature sequences with one target vector each: inputs `[N, T, F]`, targets
/// `[N, K]` (f32). Batched by [`RegressionBatches`] into the [`WindowBatch`] layout a
/// [`crate::models::Forecaster`] with horizon 1 and `K` targets trains on.
///
/// ```
/// use ndarray::{Array2, Array3};
/// use rnnkit::data::synthetic::RegressionSet;
/// let x = Array3::from_shape_fn((3, 4, 2), |(n, t, f)| (100 * n + 10 * t + f) as f32);
/// let y = Array2::from_shape_fn((3, 1), |(n, _)| n as f32);
/// let set = RegressionSet::new(x, y).unwrap();
/// let b = set.batch(&[2, 0]).unwrap();
/// assert_eq!(b.inputs.shape(), &[4, 2, 2]); // [T, B, F]
/// assert_eq!(b.inputs[[3, 0, 1]], 231.0); // step 3 of sequence 2, feature 1
/// assert_eq!(b.targets.column(0).to_vec(), vec![2.0, 0.0]);
/// assert_eq!(set.mse_of_constant(1.0), (1.0 + 0.0 + 1.0) / 3.0);
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct RegressionSet {
    /// `[N, T, F]`.
    inputs: Array3<f32>,
    /// `[N, K]`.
    targets: Array2<f32>,
}

impl RegressionSet {
    /// A set over `inputs` `[N, T, F]` and `targets` `[N, K]`.
    ///
    /// # Errors
    /// [`Error::Shape`] when the two disagree on `N`.
    pub fn new(inputs: Array3<f32>, targets: Array2<f32>) -> Result<Self> {
        if inputs.dim().0 != targets.nrows() {
            return Err(Error::Shape(format!(
                "regression set: {} input sequences, {} target rows",
                inputs.dim().0,
                targets.nrows()
            )));
        }
        Ok(RegressionSet { inputs, targets })
    }

    /// Number of sequences `N`.
    pub fn len(&self) -> usize {
        self.targets.nrows()
    }

    /// Whether there are no sequences.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Steps per sequence `T`.
    pub fn steps(&self) -> usize {
        self.inputs.dim().1
    }

    /// Features per step `F`.
    pub fn n_features(&self) -> usize {
        self.inputs.dim().2
    }

    /// Target values per sequence `K`.
    pub fn n_targets(&self) -> usize {
        self.targets.ncols()
    }

    /// `[N, T, F]`.
    pub fn inputs(&self) -> &Array3<f32> {
        &self.inputs
    }

    /// `[N, K]`.
    pub fn targets(&self) -> &Array2<f32> {
        &self.targets
    }

    /// The sequences at `indices`, in that order, time-major: inputs `[T, B, F]`, targets
    /// `[B, K]`.
    ///
    /// # Errors
    /// [`Error::Config`] for no indices or one out of range.
    pub fn batch(&self, indices: &[usize]) -> Result<WindowBatch> {
        if indices.is_empty() {
            return Err(Error::Config("a batch needs at least one sequence".into()));
        }
        if let Some(&i) = indices.iter().find(|&&i| i >= self.len()) {
            return Err(Error::Config(format!(
                "sequence index {i} is out of range: the set has {} sequences",
                self.len()
            )));
        }
        let (_, steps, features) = self.inputs.dim();
        let mut inputs = Array3::zeros((steps, indices.len(), features)); // [T, B, F]
        let mut targets = Array2::zeros((indices.len(), self.n_targets())); // [B, K]
        for (b, &i) in indices.iter().enumerate() {
            inputs
                .slice_mut(s![.., b, ..])
                .assign(&self.inputs.slice(s![i, .., ..]));
            targets.row_mut(b).assign(&self.targets.row(i));
        }
        Ok(WindowBatch { inputs, targets })
    }

    /// The mean squared error of predicting `value` for every target (in f64): the score of a
    /// model that learned nothing but the mean, for reports and tests.
    pub fn mse_of_constant(&self, value: f64) -> f64 {
        if self.targets.is_empty() {
            return 0.0;
        }
        let sum: f64 = self
            .targets
            .iter()
            .map(|&y| (y as f64 - value).powi(2))
            .sum();
        sum / self.targets.len() as f64
    }

    /// Batches of `batch_size` sequences, reordered each epoch from `(seed, epoch)` when
    /// `shuffle` (see [`RegressionBatches::new`]).
    pub fn batches(
        &self,
        batch_size: usize,
        shuffle: bool,
        seed: u64,
    ) -> Result<RegressionBatches<'_>> {
        RegressionBatches::new(self, batch_size, shuffle, seed)
    }
}

/// The batches of a [`RegressionSet`], epoch by epoch, with the order rules of
/// [`crate::data::series::WindowBatches`]: in order, or shuffled by stream `epoch` of
/// `seed`, so a resumed run sees the same batches. The last batch may be smaller.
///
/// ```
/// use rnnkit::data::synthetic::AddingProblem;
/// use rnnkit::data::Batches;
/// let set = AddingProblem { length: 4, size: 10, seed: 1 }.generate().unwrap();
/// let batches = set.batches(4, true, 9).unwrap();
/// let sizes: Vec<usize> = batches.epoch(3).unwrap().iter().map(|b| b.targets.nrows()).collect();
/// assert_eq!(sizes, vec![4, 4, 2]);
/// assert_eq!(batches.epoch(3).unwrap(), batches.epoch(3).unwrap()); // exact resume
/// ```
#[derive(Clone, Copy, Debug)]
pub struct RegressionBatches<'a> {
    set: &'a RegressionSet,
    batch_size: usize,
    shuffle: bool,
    seed: u64,
}

impl<'a> RegressionBatches<'a> {
    /// Batches of `batch_size` sequences of `set`; `shuffle` reorders them each epoch from
    /// `(seed, epoch)`.
    ///
    /// # Errors
    /// [`Error::Config`] for `batch_size` 0 or an empty set.
    pub fn new(
        set: &'a RegressionSet,
        batch_size: usize,
        shuffle: bool,
        seed: u64,
    ) -> Result<Self> {
        if batch_size == 0 {
            return Err(Error::Config("batch_size must be at least 1".into()));
        }
        if set.is_empty() {
            return Err(Error::Config(
                "the regression set has no sequences; generate at least one".into(),
            ));
        }
        Ok(RegressionBatches {
            set,
            batch_size,
            shuffle,
            seed,
        })
    }

    /// The set the batches are cut from.
    pub fn set(&self) -> &'a RegressionSet {
        self.set
    }

    /// The order epoch `epoch` visits the sequences in (each exactly once).
    pub fn order(&self, epoch: usize) -> Vec<usize> {
        let mut order: Vec<usize> = (0..self.set.len()).collect();
        if self.shuffle {
            // Same derivation as `WindowBatches`: seed, then the epoch as the stream.
            order.shuffle(&mut stream_rng(self.seed, epoch as u64));
        }
        order
    }
}

impl Batches for RegressionBatches<'_> {
    type Batch = WindowBatch;

    fn epoch(&self, epoch: usize) -> Result<Vec<WindowBatch>> {
        self.order(epoch)
            .chunks(self.batch_size)
            .map(|idx| self.set.batch(idx))
            .collect()
    }
}

// ---------------------------------------------------------------------------------------------
// Copy memory.

/// The copy-memory task: read `symbols` data symbols, wait `delay` steps, then write them back.
///
/// Token ids: 0 = blank, `1..=alphabet` data symbols, `alphabet + 1` = delimiter (9 with the
/// defaults). Input (`delay + 2·symbols` steps): `symbols` data symbols drawn uniformly from
/// `1..=alphabet`, `delay − 1` blanks, the delimiter, `symbols` blanks. Tags: blank for the
/// first `delay + symbols` steps, then the data symbols in their original order.
///
/// Every sequence has the same length, so batches have no padding. But the blank is token 0,
/// the id padding uses by default: a model must not treat it as padding. Use
/// `InputSpec::Tokens { vocab: task.vocab_size(), padding_idx: None }` for the tagger (with
/// `Some(0)` the blank's embedding would be a frozen zero vector); `PadConfig::default()` is
/// fine, as no cell is ever padded.
///
/// Remembering nothing scores [`CopyMemory::baseline_ce`] (see [`copy_baseline_ce`]).
///
/// ```
/// use rnnkit::data::batch::{BatcherConfig, PadConfig, Target};
/// use rnnkit::data::synthetic::CopyMemory;
/// use rnnkit::data::batch::ClassBatches;
///
/// let task = CopyMemory { delay: 5, size: 64, ..Default::default() };
/// let examples = task.generate().unwrap();
/// let e = &examples[0];
/// assert_eq!(e.len(), 25); // delay + 2 · symbols
/// assert_eq!(e.ids[14], 9); // the delimiter, at step symbols + delay − 1
/// let Target::Tags(tags) = &e.target else { unreachable!() };
/// assert!(tags[15..].iter().zip(&e.ids[..10]).all(|(&t, &s)| t == s as usize)); // copied
/// assert!(tags[..15].iter().all(|&t| t == 0));
///
/// let batching = BatcherConfig { batch_size: 16, ..Default::default() };
/// let batches = ClassBatches::new(examples, batching, PadConfig::default()).unwrap();
/// assert_eq!(batches.padding_fraction(0), 0.0);
/// assert_eq!((task.vocab_size(), task.num_tags()), (10, 10));
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CopyMemory {
    /// The delay `T`, at least 1: steps from the last data symbol to the delimiter, inclusive.
    /// Default 100.
    pub delay: usize,
    /// Data symbols to copy, at least 1. Default 10 (Arjovsky et al.).
    pub symbols: usize,
    /// Distinct data symbols, at least 1. Default 8 (Arjovsky et al.).
    pub alphabet: usize,
    /// Number of sequences [`CopyMemory::generate`] draws, at least 1. Default 10 000.
    pub size: usize,
    /// Seed of every random draw. Default 0.
    pub seed: u64,
}

impl Default for CopyMemory {
    /// `delay` 100 (Arjovsky et al. use 100 to 2000), `symbols` 10 and `alphabet` 8 (theirs),
    /// `size` 10 000, `seed` 0.
    fn default() -> Self {
        CopyMemory {
            delay: 100,
            symbols: 10,
            alphabet: 8,
            size: 10_000,
            seed: 0,
        }
    }
}

impl CopyMemory {
    /// The blank token (and tag).
    pub const BLANK: u32 = 0;

    const TASK: &str = "copy memory";

    /// The delimiter token, `alphabet + 1`.
    pub fn delimiter(&self) -> u32 {
        self.alphabet as u32 + 1
    }

    /// Token ids in use, `alphabet + 2` (blank, data symbols, delimiter): the embedding's
    /// `vocab`.
    pub fn vocab_size(&self) -> usize {
        self.alphabet + 2
    }

    /// Tags for the tagger's head, `alphabet + 2`: the same ids as the input (as Arjovsky et
    /// al.'s output layer), though the delimiter is never a target.
    pub fn num_tags(&self) -> usize {
        self.alphabet + 2
    }

    /// Steps per sequence, `delay + 2·symbols`.
    pub fn steps(&self) -> usize {
        self.delay + 2 * self.symbols
    }

    /// Checks the ranges (`delay`, `symbols`, `alphabet`, `size` each at least 1); errors name
    /// the field.
    pub fn validate(&self) -> Result<()> {
        self.validate_shape()?;
        at_least(Self::TASK, "size", self.size, 1)?;
        fits(Self::TASK, self.size, self.steps(), 2)
    }

    fn validate_shape(&self) -> Result<()> {
        at_least(Self::TASK, "delay", self.delay, 1)?;
        at_least(Self::TASK, "symbols", self.symbols, 1)?;
        at_least(Self::TASK, "alphabet", self.alphabet, 1)?;
        if self.alphabet >= u32::MAX as usize - 1 || self.symbols > usize::MAX / 4 {
            return Err(Error::Config(format!(
                "{}: alphabet ({}) or symbols ({}) is too large",
                Self::TASK,
                self.alphabet,
                self.symbols
            )));
        }
        self.delay
            .checked_add(2 * self.symbols)
            .map(|_| ())
            .ok_or_else(|| Error::Config(format!("{}: delay is too large", Self::TASK)))
    }

    /// `size` tag examples drawn from stream 0 of `seed`.
    pub fn generate(&self) -> Result<Vec<Example>> {
        self.validate()?;
        Ok(self.draw(self.size, &mut stream_rng(self.seed, GENERATE_STREAM)))
    }

    /// Training, validation and test sets of the given sizes (`size` is not used), from streams
    /// 1, 2, 3 of `seed`.
    pub fn splits(&self, train: usize, val: usize, test: usize) -> Result<Splits<Vec<Example>>> {
        self.validate_shape()?;
        for n in [train, val, test] {
            fits(Self::TASK, n, self.steps(), 2)?;
        }
        make_splits(Self::TASK, self.seed, [train, val, test], |n, rng| {
            self.draw(n, rng)
        })
    }

    /// The cross-entropy per step of remembering nothing: [`copy_baseline_ce`] of this config.
    pub fn baseline_ce(&self) -> f64 {
        copy_baseline_ce(self.delay, self.symbols, self.alphabet)
    }

    fn draw(&self, n: usize, rng: &mut ChaCha8Rng) -> Vec<Example> {
        let (k, steps) = (self.symbols, self.steps());
        (0..n)
            .map(|_| {
                let data: Vec<u32> = (0..k)
                    .map(|_| rng.random_range(1..=self.alphabet as u32))
                    .collect();
                let mut ids = vec![Self::BLANK; steps];
                ids[..k].copy_from_slice(&data);
                ids[k + self.delay - 1] = self.delimiter();
                let mut tags = vec![Self::BLANK as usize; steps];
                for (tag, &d) in tags[steps - k..].iter_mut().zip(&data) {
                    *tag = d as usize;
                }
                Example::tagged(ids, tags)
            })
            .collect()
    }
}

/// The cross-entropy per step (nats) of the copy task's memoryless baseline: predict blank with
/// certainty for the first `delay + symbols` steps (cost 0, always right), then uniform over the
/// `alphabet` data symbols for the last `symbols` steps (cost `ln alphabet` each):
/// `symbols · ln(alphabet) / (delay + 2·symbols)`, e.g. `10 ln 8 / (T + 20)`.
///
/// ```
/// use rnnkit::data::synthetic::copy_baseline_ce;
/// let ce = copy_baseline_ce(100, 10, 8);
/// assert!((ce - 10.0 * 8f64.ln() / 120.0).abs() < 1e-15);
/// assert!((ce - 0.1733).abs() < 1e-4);
/// ```
pub fn copy_baseline_ce(delay: usize, symbols: usize, alphabet: usize) -> f64 {
    symbols as f64 * (alphabet as f64).ln() / (delay as f64 + 2.0 * symbols as f64)
}

// ---------------------------------------------------------------------------------------------
// Temporal order.

/// The temporal-order task (Hochreiter & Schmidhuber 1997, experiment 6a): a sequence of
/// `length` tokens, start marker B first and end marker E last, distractors elsewhere except at
/// two positions holding a relevant symbol, X or Y: one in the first window
/// ([`TemporalOrder::first_window`], about `[0.1T, 0.2T)`) and one in the second
/// ([`TemporalOrder::second_window`], about `[0.5T, 0.6T)`). The class is the order of the two
/// relevant symbols: 0 = XX, 1 = XY, 2 = YX, 3 = YY.
///
/// Token ids: 0 = padding (never in a sequence, so `PadConfig::default()` and
/// `padding_idx: Some(0)` work as usual), 1 = B, 2 = E, 3 = X, 4 = Y,
/// `5..5 + distractors` = the distractors (a, b, c, d in the paper).
///
/// The classes are equally likely, so remembering nothing scores cross-entropy `ln 4` and
/// accuracy 0.25 ([`TemporalOrder::baseline_ce`], [`TemporalOrder::baseline_accuracy`]).
///
/// ```
/// use rnnkit::data::batch::Target;
/// use rnnkit::data::synthetic::TemporalOrder;
/// let task = TemporalOrder { length: 20, size: 50, ..Default::default() };
/// assert_eq!((task.first_window(), task.second_window()), (2..4, 10..12));
/// for e in task.generate().unwrap() {
///     assert_eq!((e.ids[0], e.ids[19]), (TemporalOrder::START, TemporalOrder::END));
///     let relevant: Vec<u32> = e.ids.iter().copied().filter(|&id| id == 3 || id == 4).collect();
///     let is_y = |i: usize| (relevant[i] == TemporalOrder::Y) as usize;
///     let class = 2 * is_y(0) + is_y(1);
///     assert_eq!(e.target, Target::Class(class));
/// }
/// assert_eq!(task.vocab_size(), 9);
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TemporalOrder {
    /// Tokens per sequence `T`, B and E included, at least 10. Default 100 (the paper's
    /// lengths are 100 to 110).
    pub length: usize,
    /// Distinct distractor symbols, at least 1. Default 4 (the paper's a, b, c, d).
    pub distractors: usize,
    /// Number of sequences [`TemporalOrder::generate`] draws, at least 1. Default 10 000.
    pub size: usize,
    /// Seed of every random draw. Default 0.
    pub seed: u64,
}

impl Default for TemporalOrder {
    /// `length` 100 and 4 distractors (the paper's setting), `size` 10 000, `seed` 0.
    fn default() -> Self {
        TemporalOrder {
            length: 100,
            distractors: 4,
            size: 10_000,
            seed: 0,
        }
    }
}

impl TemporalOrder {
    /// Reserved for padding; never in a generated sequence.
    pub const PAD: u32 = 0;
    /// The start marker B, at step 0.
    pub const START: u32 = 1;
    /// The end marker E, at step `T − 1`.
    pub const END: u32 = 2;
    /// The relevant symbol X.
    pub const X: u32 = 3;
    /// The relevant symbol Y.
    pub const Y: u32 = 4;
    /// The first distractor; the others follow it.
    pub const FIRST_DISTRACTOR: u32 = 5;
    /// Classes: XX, XY, YX, YY.
    pub const NUM_CLASSES: usize = 4;

    const TASK: &str = "temporal order";

    /// Token ids in use (padding included), `5 + distractors`: the embedding's `vocab`.
    pub fn vocab_size(&self) -> usize {
        Self::FIRST_DISTRACTOR as usize + self.distractors
    }

    /// Positions of the first relevant symbol: `[⌊T/10⌋, max(⌊T/5⌋, ⌊T/10⌋ + 1))`, i.e.
    /// `[0.1T, 0.2T)` rounded down at both ends, never empty; it starts at 1 or later (B is at 0).
    ///
    /// ```
    /// use rnnkit::data::synthetic::TemporalOrder;
    /// let at = |length| TemporalOrder { length, ..Default::default() };
    /// assert_eq!(at(100).first_window(), 10..20);
    /// assert_eq!(at(10).first_window(), 1..2);
    /// assert_eq!(at(15).first_window(), 1..3);
    /// ```
    pub fn first_window(&self) -> Range<usize> {
        window(self.length, 1, 2)
    }

    /// Positions of the second relevant symbol: `[⌊T/2⌋, max(⌊6T/10⌋, ⌊T/2⌋ + 1))`, i.e.
    /// `[0.5T, 0.6T)` rounded down, never empty; it ends before `T − 1` (where E is).
    ///
    /// ```
    /// use rnnkit::data::synthetic::TemporalOrder;
    /// let at = |length| TemporalOrder { length, ..Default::default() };
    /// assert_eq!(at(100).second_window(), 50..60);
    /// assert_eq!(at(10).second_window(), 5..6);
    /// ```
    pub fn second_window(&self) -> Range<usize> {
        window(self.length, 5, 6)
    }

    /// The class of a sequence whose relevant symbols are `first` then `second` (each
    /// [`TemporalOrder::X`] or [`TemporalOrder::Y`]): `2·[first is Y] + [second is Y]`;
    /// `None` for any other token.
    ///
    /// ```
    /// use rnnkit::data::synthetic::TemporalOrder as T;
    /// assert_eq!(T::class_of(T::Y, T::X), Some(2));
    /// assert_eq!(T::class_of(T::X, T::START), None);
    /// ```
    pub fn class_of(first: u32, second: u32) -> Option<usize> {
        let bit = |s| match s {
            Self::X => Some(0),
            Self::Y => Some(1),
            _ => None,
        };
        Some(2 * bit(first)? + bit(second)?)
    }

    /// Cross-entropy of predicting the uniform distribution: `ln 4`.
    pub fn baseline_ce() -> f64 {
        (Self::NUM_CLASSES as f64).ln()
    }

    /// Accuracy of guessing: 0.25.
    pub fn baseline_accuracy() -> f64 {
        1.0 / Self::NUM_CLASSES as f64
    }

    /// Checks the ranges (`length ≥ 10`, `distractors ≥ 1`, `size ≥ 1`); errors name the field.
    pub fn validate(&self) -> Result<()> {
        self.validate_shape()?;
        at_least(Self::TASK, "size", self.size, 1)?;
        fits(Self::TASK, self.size, self.length, 1)
    }

    fn validate_shape(&self) -> Result<()> {
        at_least(Self::TASK, "length", self.length, 10)?;
        at_least(Self::TASK, "distractors", self.distractors, 1)?;
        if self.distractors > (u32::MAX - Self::FIRST_DISTRACTOR) as usize
            || self.length > usize::MAX / 10
        {
            return Err(Error::Config(format!(
                "{}: distractors ({}) or length ({}) is too large",
                Self::TASK,
                self.distractors,
                self.length
            )));
        }
        Ok(())
    }

    /// `size` class examples drawn from stream 0 of `seed`.
    pub fn generate(&self) -> Result<Vec<Example>> {
        self.validate()?;
        Ok(self.draw(self.size, &mut stream_rng(self.seed, GENERATE_STREAM)))
    }

    /// Training, validation and test sets of the given sizes (`size` is not used), from streams
    /// 1, 2, 3 of `seed`.
    pub fn splits(&self, train: usize, val: usize, test: usize) -> Result<Splits<Vec<Example>>> {
        self.validate_shape()?;
        for n in [train, val, test] {
            fits(Self::TASK, n, self.length, 1)?;
        }
        make_splits(Self::TASK, self.seed, [train, val, test], |n, rng| {
            self.draw(n, rng)
        })
    }

    fn draw(&self, n: usize, rng: &mut ChaCha8Rng) -> Vec<Example> {
        let steps = self.length;
        let distractors = Self::FIRST_DISTRACTOR..Self::FIRST_DISTRACTOR + self.distractors as u32;
        let (w1, w2) = (self.first_window(), self.second_window());
        (0..n)
            .map(|_| {
                let mut ids: Vec<u32> = (0..steps)
                    .map(|_| rng.random_range(distractors.clone()))
                    .collect();
                ids[0] = Self::START;
                ids[steps - 1] = Self::END;
                let symbol = |rng: &mut ChaCha8Rng| {
                    if rng.random_bool(0.5) {
                        Self::Y
                    } else {
                        Self::X
                    }
                };
                let (first, second) = (symbol(rng), symbol(rng));
                ids[rng.random_range(w1.clone())] = first;
                ids[rng.random_range(w2.clone())] = second;
                let class = Self::class_of(first, second).expect("X or Y");
                Example::class(ids, class)
            })
            .collect()
    }
}

/// `[⌊lo·T/10⌋, max(⌊hi·T/10⌋, ⌊lo·T/10⌋ + 1))`.
fn window(length: usize, lo_tenths: usize, hi_tenths: usize) -> Range<usize> {
    let lo = length * lo_tenths / 10;
    let hi = (length * hi_tenths / 10).max(lo + 1);
    lo..hi
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::batch::Target;

    #[test]
    fn adding_markers_fall_in_their_halves_and_targets_are_their_sum() {
        for length in [2, 3, 7, 50] {
            let set = AddingProblem {
                length,
                size: 200,
                seed: 3,
            }
            .generate()
            .unwrap();
            assert_eq!(set.inputs().dim(), (200, length, 2));
            let half = length / 2;
            for n in 0..200 {
                let x = set.inputs().slice(s![n, .., ..]);
                let marked: Vec<usize> = (0..length).filter(|&t| x[[t, 1]] != 0.0).collect();
                assert_eq!(marked.len(), 2, "length {length}, sequence {n}");
                assert!(marked[0] < half && marked[1] >= half);
                assert!(x.column(1).iter().all(|&m| m == 0.0 || m == 1.0));
                assert!(x.column(0).iter().all(|&v| (0.0..1.0).contains(&v)));
                let sum = x[[marked[0], 0]] + x[[marked[1], 0]];
                assert_eq!(set.targets()[[n, 0]], sum);
            }
        }
    }

    #[test]
    fn bad_settings_are_config_errors_naming_the_field() {
        let e = AddingProblem {
            length: 1,
            ..Default::default()
        }
        .generate()
        .unwrap_err();
        assert!(
            matches!(&e, Error::Config(m) if m.contains("length must be at least 2")),
            "{e}"
        );
        let e = CopyMemory {
            alphabet: 0,
            ..Default::default()
        }
        .generate()
        .unwrap_err();
        assert!(
            matches!(&e, Error::Config(m) if m.contains("alphabet")),
            "{e}"
        );
        let e = TemporalOrder {
            length: 9,
            ..Default::default()
        }
        .splits(1, 1, 1)
        .unwrap_err();
        assert!(
            matches!(&e, Error::Config(m) if m.contains("length must be at least 10")),
            "{e}"
        );
        let e = TemporalOrder::default().splits(5, 0, 5).unwrap_err();
        assert!(e.to_string().contains("val split"), "{e}");
        let e = AddingProblem {
            length: usize::MAX / 2,
            size: 4,
            seed: 0,
        }
        .generate()
        .unwrap_err();
        assert!(e.to_string().contains("do not fit"), "{e}");
        assert!(
            RegressionBatches::new(
                &AddingProblem::default().splits(1, 1, 1).unwrap().val,
                0,
                false,
                0
            )
            .is_err()
        );
    }

    #[test]
    fn copy_memory_layout_with_delay_one() {
        let task = CopyMemory {
            delay: 1,
            symbols: 3,
            alphabet: 2,
            size: 20,
            seed: 0,
        };
        for e in task.generate().unwrap() {
            assert_eq!(e.len(), 7);
            assert_eq!(
                e.ids[3], 3,
                "delimiter right after the data when delay is 1"
            );
            assert!(e.ids[..3].iter().all(|&s| (1..=2).contains(&s)));
            assert!(e.ids[4..].iter().all(|&s| s == 0));
            let Target::Tags(tags) = &e.target else {
                panic!("tags expected")
            };
            assert!(tags[..4].iter().all(|&t| t == 0));
            assert_eq!(
                tags[4..],
                e.ids[..3].iter().map(|&s| s as usize).collect::<Vec<_>>()
            );
        }
    }

    #[test]
    fn windows_stay_clear_of_the_markers_and_each_other() {
        for length in 10..300 {
            let task = TemporalOrder {
                length,
                ..Default::default()
            };
            let (w1, w2) = (task.first_window(), task.second_window());
            assert!(
                w1.start >= 1 && w1.start < w1.end && w1.end <= w2.start,
                "T = {length}"
            );
            assert!(w2.start < w2.end && w2.end < length, "T = {length}");
        }
    }

    #[test]
    fn temporal_order_classes_cover_all_four() {
        let ex = TemporalOrder {
            length: 10,
            size: 400,
            ..Default::default()
        }
        .generate()
        .unwrap();
        let mut counts = [0usize; 4];
        for e in &ex {
            let Target::Class(c) = e.target else {
                panic!("class expected")
            };
            counts[c] += 1;
            assert!(!e.ids.contains(&TemporalOrder::PAD));
        }
        // 400 fair draws: each class near 100; 50 is more than 5 standard deviations away.
        assert!(counts.iter().all(|&c| c > 50), "{counts:?}");
    }
}
