//! Classification scores from a confusion matrix: accuracy, per-class precision/recall/F1 and
//! macro-F1 (the mean F1 over classes, which an unbalanced data set needs: on the surnames,
//! always answering "Russian" gets 47% accuracy and a macro-F1 of 0.04).

use crate::data::batch::{BatchTargets, PaddedBatch};
use crate::error::{Error, Result};
use crate::models::{SeqInput, SequenceClassifier};

/// Counts of (true class, predicted class) pairs.
///
/// ```
/// use rnnkit::train::confusion::ConfusionMatrix;
/// let mut m = ConfusionMatrix::new(2);
/// for (y, p) in [(0, 0), (0, 0), (0, 1), (1, 1)] {
///     m.add(y, p);
/// }
/// assert_eq!(m.accuracy(), 0.75);
/// assert!((m.f1(0) - 0.8).abs() < 1e-12); // precision 1, recall 2/3
/// assert!((m.macro_f1() - (0.8 + 2.0 / 3.0) / 2.0).abs() < 1e-12);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfusionMatrix {
    /// `counts[true][predicted]`.
    pub counts: Vec<Vec<usize>>,
}

impl ConfusionMatrix {
    /// An empty matrix over `classes` classes.
    pub fn new(classes: usize) -> Self {
        ConfusionMatrix {
            counts: vec![vec![0; classes]; classes],
        }
    }

    /// Counts one example (ids outside the matrix are ignored).
    pub fn add(&mut self, truth: usize, predicted: usize) {
        if let Some(row) = self.counts.get_mut(truth)
            && let Some(c) = row.get_mut(predicted)
        {
            *c += 1;
        }
    }

    /// Number of classes.
    pub fn classes(&self) -> usize {
        self.counts.len()
    }

    /// Examples counted.
    pub fn total(&self) -> usize {
        self.counts.iter().flatten().sum()
    }

    /// Fraction predicted right (0 when empty).
    pub fn accuracy(&self) -> f64 {
        let right: usize = (0..self.classes()).map(|c| self.counts[c][c]).sum();
        right as f64 / self.total().max(1) as f64
    }

    /// Precision of class `c`: right among those predicted `c` (0 when none was).
    pub fn precision(&self, c: usize) -> f64 {
        let predicted: usize = self.counts.iter().map(|r| r[c]).sum();
        self.counts[c][c] as f64 / predicted.max(1) as f64
    }

    /// Recall of class `c`: right among those truly `c` (0 when there are none).
    pub fn recall(&self, c: usize) -> f64 {
        let actual: usize = self.counts[c].iter().sum();
        self.counts[c][c] as f64 / actual.max(1) as f64
    }

    /// F1 of class `c`, `2·tp / (predicted + actual)` (0 when it has no true positive).
    pub fn f1(&self, c: usize) -> f64 {
        let predicted: usize = self.counts.iter().map(|r| r[c]).sum();
        let actual: usize = self.counts[c].iter().sum();
        let tp = self.counts[c][c];
        if tp == 0 {
            0.0
        } else {
            2.0 * tp as f64 / (predicted + actual) as f64
        }
    }

    /// The mean F1 over classes.
    pub fn macro_f1(&self) -> f64 {
        let k = self.classes().max(1);
        (0..self.classes()).map(|c| self.f1(c)).sum::<f64>() / k as f64
    }

    /// Counts `model`'s predictions (the arg-max class) on labelled `batches`.
    ///
    /// # Errors
    /// [`Error::Config`] for tagged batches; errors of the model's forward pass.
    pub fn of_classifier<'a>(
        model: &SequenceClassifier,
        batches: impl IntoIterator<Item = &'a PaddedBatch>,
    ) -> Result<Self> {
        let mut m = ConfusionMatrix::new(model.num_classes());
        for b in batches {
            let BatchTargets::Classes(ys) = &b.targets else {
                return Err(Error::Config(
                    "a confusion matrix needs one label per sequence, not tags".into(),
                ));
            };
            let logits = model.predict(SeqInput::of_batch(b), Some(&b.lengths))?;
            for (row, &y) in logits.rows().into_iter().zip(ys) {
                m.add(y, argmax(row.iter().copied()));
            }
        }
        Ok(m)
    }
}

/// The index of the largest value (the first on ties; NaN never wins).
pub fn argmax(values: impl IntoIterator<Item = f32>) -> usize {
    values
        .into_iter()
        .enumerate()
        .fold((0, f32::NEG_INFINITY), |best, (j, v)| {
            if v > best.1 { (j, v) } else { best }
        })
        .0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_majority_guesser_has_high_accuracy_and_low_macro_f1() {
        let mut m = ConfusionMatrix::new(3);
        for _ in 0..90 {
            m.add(0, 0);
        }
        for _ in 0..5 {
            m.add(1, 0);
            m.add(2, 0);
        }
        assert!((m.accuracy() - 0.9).abs() < 1e-12);
        assert_eq!((m.f1(1), m.recall(2), m.precision(1)), (0.0, 0.0, 0.0));
        assert!(m.macro_f1() < 0.35, "{}", m.macro_f1());
        assert_eq!(argmax([1.0, 3.0, 3.0, f32::NAN]), 1);
    }
}
