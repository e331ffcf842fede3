//! Stratified splits: train/validation/test index sets in which every class keeps its share.
//!
//! Each class is split on its own. Its `n` examples are shuffled, and split `s` with fraction
//! `f[s]` gets either `floor(n * f[s])` or `ceil(n * f[s])` of them, so every split's count of
//! every class is within one example of its target. Which splits round up (there are
//! `n - sum(floor)` of them) is decided by, in order:
//!
//! 1. splits that would otherwise get no example of the class (so a rare class still shows up
//!    in validation and test when it has examples enough), larger fraction first;
//! 2. the largest remainder `n * f[s] - floor(n * f[s])` (Hamilton's method);
//! 3. the earlier split.
//!
//! Only splits whose target is not a whole number can round up, so a class with one example goes
//! to the split with the largest fraction (train, as usually listed), never to a split with
//! fraction 0; a class with two examples and fractions `[0.8, 0.1, 0.1]` gives one to train and
//! one to validation. Nothing panics on small classes; a split may lack a class that has too few
//! examples to go round.

use crate::error::{Error, Result};
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use std::collections::BTreeMap;

/// Splits the indices `0..labels.len()` into `fractions.len()` sets, each class keeping its
/// proportion (scikit-learn `train_test_split(stratify=...)`, for any number of splits).
///
/// `fractions` are non-negative and sum to 1 (within 1e-6). Each returned set is sorted
/// ascending; together they hold every index exactly once. The same `seed` gives the same sets.
///
/// ```
/// use rnnkit::data::batch::stratified_split;
/// let labels: Vec<usize> = (0..100).map(|i| if i < 80 { 0 } else { 1 }).collect();
/// let sets = stratified_split(&labels, &[0.7, 0.15, 0.15], 0).unwrap();
/// let count = |set: &Vec<usize>, c| set.iter().filter(|&&i| labels[i] == c).count();
/// assert_eq!((count(&sets[0], 0), count(&sets[0], 1)), (56, 14));
/// assert_eq!((count(&sets[1], 0), count(&sets[1], 1)), (12, 3));
/// assert_eq!(sets.iter().map(Vec::len).sum::<usize>(), 100);
/// ```
pub fn stratified_split(labels: &[usize], fractions: &[f64], seed: u64) -> Result<Vec<Vec<usize>>> {
    if fractions.is_empty() {
        return Err(Error::Config(
            "stratified_split needs at least one fraction, e.g. [0.8, 0.1, 0.1]".into(),
        ));
    }
    if let Some(f) = fractions.iter().find(|f| !(f.is_finite() && **f >= 0.0)) {
        return Err(Error::Config(format!(
            "split fractions must be finite and non-negative, got {f}"
        )));
    }
    let total: f64 = fractions.iter().sum();
    if (total - 1.0).abs() > 1e-6 {
        return Err(Error::Config(format!(
            "split fractions must sum to 1, got {fractions:?} (sum {total})"
        )));
    }

    let mut by_class: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
    for (i, &c) in labels.iter().enumerate() {
        by_class.entry(c).or_default().push(i);
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut sets = vec![Vec::new(); fractions.len()];
    for members in by_class.values_mut() {
        members.shuffle(&mut rng);
        let counts = apportion(members.len(), fractions, total);
        let mut start = 0;
        for (set, n) in sets.iter_mut().zip(counts) {
            set.extend_from_slice(&members[start..start + n]);
            start += n;
        }
    }
    for set in &mut sets {
        set.sort_unstable();
    }
    Ok(sets)
}

/// Counts per split for a class of `n`, each `floor` or `ceil` of `n * f / total`, summing to `n`,
/// the round-ups chosen as the module docs say.
fn apportion(n: usize, fractions: &[f64], total: f64) -> Vec<usize> {
    let targets: Vec<f64> = fractions.iter().map(|f| n as f64 * f / total).collect();
    let mut counts: Vec<usize> = targets
        .iter()
        .map(|t| (t.floor() as usize).min(n))
        .collect();
    let assigned: usize = counts.iter().sum();
    let mut left = n.saturating_sub(assigned);
    // Rounding can leave a target a hair under a whole number; such a split may still round up.
    let remainder = |s: usize| targets[s] - counts[s] as f64;
    let mut order: Vec<usize> = (0..fractions.len())
        .filter(|&s| remainder(s) > 1e-9)
        .collect();
    order.sort_by(|&a, &b| {
        let empty = |s: usize| counts[s] == 0;
        empty(b)
            .cmp(&empty(a))
            .then_with(|| {
                if empty(a) && empty(b) {
                    fractions[b].total_cmp(&fractions[a])
                } else {
                    std::cmp::Ordering::Equal
                }
            })
            .then_with(|| remainder(b).total_cmp(&remainder(a)))
            .then_with(|| a.cmp(&b))
    });
    for &s in &order {
        if left == 0 {
            break;
        }
        counts[s] += 1;
        left -= 1;
    }
    // Only floating-point slop can leave some over; give it to the largest fraction.
    if left > 0 {
        let s = (0..fractions.len())
            .max_by(|&a, &b| fractions[a].total_cmp(&fractions[b]).then(b.cmp(&a)))
            .unwrap_or(0);
        counts[s] += left;
    }
    counts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_classes_follow_the_documented_rules() {
        let f = [0.8, 0.1, 0.1];
        assert_eq!(apportion(1, &f, 1.0), vec![1, 0, 0]);
        assert_eq!(apportion(2, &f, 1.0), vec![1, 1, 0]);
        assert_eq!(apportion(3, &f, 1.0), vec![2, 1, 0]);
        assert_eq!(apportion(10, &f, 1.0), vec![8, 1, 1]);
        assert_eq!(apportion(0, &f, 1.0), vec![0, 0, 0]);
        // A zero fraction never gets anything.
        assert_eq!(apportion(1, &[0.0, 1.0], 1.0), vec![0, 1]);
        assert_eq!(apportion(3, &[0.5, 0.0, 0.5], 1.0), vec![2, 0, 1]);
    }

    #[test]
    fn bad_fractions_are_config_errors() {
        for f in [&[][..], &[0.5, 0.4], &[1.2, -0.2], &[f64::NAN, 1.0]] {
            assert!(
                matches!(stratified_split(&[0, 1], f, 0), Err(Error::Config(_))),
                "{f:?}"
            );
        }
    }

    #[test]
    fn a_class_of_one_never_panics_and_lands_in_train() {
        let sets = stratified_split(&[7], &[0.8, 0.1, 0.1], 3).unwrap();
        assert_eq!(sets, vec![vec![0], vec![], vec![]]);
        let sets = stratified_split(&[], &[0.5, 0.5], 3).unwrap();
        assert_eq!(sets, vec![Vec::<usize>::new(), vec![]]);
    }
}
