//! Batches of feature sequences for a classifier: length-bucketed like the text batches (the
//! same [`Batcher`] plans them), padded with zero frames into `[T, B, F]`. Training batches
//! can be augmented per epoch: the waveforms perturbed and featurized afresh ([`Refeaturize`]),
//! then SpecAugment masks drawn on the features.

use super::features::FeatureExtractor;
use super::normalize::{Cmvn, Normalize, normalize_all};
use super::perturb::Perturber;
use crate::data::Batches;
use crate::data::batch::{BatchTargets, Batcher, BatcherConfig, Example, PadConfig, PaddedBatch};
use crate::error::{Error, Result};
use ndarray::{Array2, Array3};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

/// SpecAugment (Park et al., 2019) on normalized features: `time_masks` spans of up to
/// `time_width` frames and `freq_masks` bands of up to `freq_width` dimensions, each width drawn
/// uniformly from 0 to its maximum, set to 0 (the mean after normalization). Training batches
/// only; all counts 0 (the default) turns it off.
///
/// ```
/// let aug: rnnkit::audio::SpecAugment =
///     toml::from_str("time_masks = 2\ntime_width = 5\nfreq_masks = 1\nfreq_width = 4").unwrap();
/// assert!(aug.is_on());
/// assert!(!rnnkit::audio::SpecAugment::default().is_on());
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SpecAugment {
    /// Time masks per clip. Default 0.
    pub time_masks: usize,
    /// Longest time mask in frames (never more than a fifth of the clip). Default 0.
    pub time_width: usize,
    /// Frequency masks per clip. Default 0.
    pub freq_masks: usize,
    /// Widest frequency mask in feature dimensions. Default 0.
    pub freq_width: usize,
}

impl SpecAugment {
    /// Whether any mask is drawn.
    pub fn is_on(&self) -> bool {
        (self.time_masks > 0 && self.time_width > 0) || (self.freq_masks > 0 && self.freq_width > 0)
    }

    /// Masks the first `len` frames of `x` (`[frames, dims]` view of one clip).
    fn apply(&self, x: &mut ndarray::ArrayViewMut2<f32>, len: usize, rng: &mut ChaCha8Rng) {
        let dims = x.ncols();
        for _ in 0..self.freq_masks {
            let w = rng.random_range(0..=self.freq_width.min(dims));
            let f0 = rng.random_range(0..=dims - w);
            x.slice_mut(ndarray::s![..len, f0..f0 + w]).fill(0.0);
        }
        let widest = self.time_width.min(len / 5);
        for _ in 0..self.time_masks {
            let w = rng.random_range(0..=widest);
            let t0 = rng.random_range(0..=len - w);
            x.slice_mut(ndarray::s![t0..t0 + w, ..]).fill(0.0);
        }
    }
}

/// Labelled feature sequences (`[frames, dims]` each, at least one frame) in padded batches.
///
/// ```
/// use ndarray::Array2;
/// use rnnkit::audio::FeatureBatches;
/// use rnnkit::data::Batches;
/// let clips = vec![Array2::ones((3, 2)), Array2::ones((5, 2)), Array2::ones((4, 2))];
/// let batches = FeatureBatches::in_order(clips, vec![0, 1, 0], 2).unwrap();
/// let epoch = batches.epoch(0).unwrap();
/// let f = epoch[0].features.as_ref().unwrap();
/// assert_eq!(f.shape(), &[5, 2, 2]); // [T, B, F], padded to the longest
/// assert_eq!(epoch[0].lengths, vec![3, 5]);
/// assert_eq!(f[[4, 0, 0]], 0.0); // past the first clip's end
/// ```
pub struct FeatureBatches {
    clips: Vec<Array2<f32>>,
    labels: Vec<usize>,
    batcher: Batcher,
    augment: SpecAugment,
    seed: u64,
    refeaturize: Option<Refeaturize>,
}

/// What turns a training clip's waveform into perturbed features each epoch: the waveforms (at
/// the model's rate, one per clip), the [`Perturber`], and the front end's extractor and
/// normalization (statistics fitted on the unperturbed training split).
pub struct Refeaturize {
    /// One waveform per clip, in the clips' order.
    pub waves: Vec<Vec<f32>>,
    /// The perturbation.
    pub perturber: Perturber,
    /// The feature extractor.
    pub extractor: FeatureExtractor,
    /// The normalization and its statistics.
    pub normalize: Normalize,
    /// Global statistics (`Normalize::Global`).
    pub cmvn: Option<Cmvn>,
}

impl Refeaturize {
    /// The perturbed, normalized features of every clip for `epoch`, on all cores.
    fn epoch(&self, epoch: usize) -> Result<Vec<Array2<f32>>> {
        let frame = self.extractor.frame_len();
        let mut clips = self
            .waves
            .par_iter()
            .enumerate()
            .map(|(i, w)| {
                let mut x = self.perturber.apply(w, epoch as u64, i as u64)?;
                if x.len() < frame {
                    x.resize(frame, 0.0);
                }
                // Dither seeded per (epoch, clip) as well, away from the unperturbed seeds.
                let seed = ((epoch as u64 + 1) << 32) ^ i as u64;
                Ok(self.extractor.compute(&x, seed))
            })
            .collect::<Result<Vec<_>>>()?;
        normalize_all(&mut clips, self.normalize, self.cmvn.as_ref());
        Ok(clips)
    }
}

impl FeatureBatches {
    /// Shuffled, bucketed batches per `config`, augmented per `augment` (training).
    ///
    /// # Errors
    /// A clip without frames, clips of different widths, labels not one per clip.
    pub fn new(
        clips: Vec<Array2<f32>>,
        labels: Vec<usize>,
        config: BatcherConfig,
        augment: SpecAugment,
    ) -> Result<Self> {
        if labels.len() != clips.len() {
            return Err(Error::Shape(format!(
                "{} labels for {} clips",
                labels.len(),
                clips.len()
            )));
        }
        let dims = clips.first().map_or(0, |c| c.ncols());
        if let Some(i) = clips
            .iter()
            .position(|c| c.nrows() == 0 || c.ncols() != dims)
        {
            return Err(Error::Shape(format!(
                "clip {i} has {} frames of {} features (need at least one frame of {dims})",
                clips[i].nrows(),
                clips[i].ncols()
            )));
        }
        // The batcher plans by length only: stand-in token sequences of each clip's length.
        let stand_ins: Vec<Example> = clips
            .iter()
            .zip(&labels)
            .map(|(c, &y)| Example::class(vec![0; c.nrows()], y))
            .collect();
        let seed = config.seed;
        let batcher = Batcher::new(&stand_ins, config, PadConfig::default())?;
        Ok(FeatureBatches {
            clips,
            labels,
            batcher,
            augment,
            seed,
            refeaturize: None,
        })
    }

    /// Perturbs the waveforms and featurizes them afresh every epoch (training only); the
    /// clips given to [`FeatureBatches::new`] stay what evaluation-style readers see.
    ///
    /// # Errors
    /// Not one waveform per clip.
    pub fn with_refeaturize(mut self, r: Refeaturize) -> Result<Self> {
        if r.waves.len() != self.clips.len() {
            return Err(Error::Shape(format!(
                "{} waveforms for {} clips",
                r.waves.len(),
                self.clips.len()
            )));
        }
        self.refeaturize = Some(r);
        Ok(self)
    }

    /// The same clips in a fixed order, never augmented (evaluation, prediction).
    ///
    /// # Errors
    /// As [`FeatureBatches::new`].
    pub fn in_order(
        clips: Vec<Array2<f32>>,
        labels: Vec<usize>,
        batch_size: usize,
    ) -> Result<Self> {
        Self::new(
            clips,
            labels,
            BatcherConfig::fixed_order(batch_size),
            SpecAugment::default(),
        )
    }

    /// The clips.
    pub fn clips(&self) -> &[Array2<f32>] {
        &self.clips
    }

    /// The labels, one per clip.
    pub fn labels(&self) -> &[usize] {
        &self.labels
    }

    /// Padding fraction of epoch `epoch`'s plan.
    pub fn padding_fraction(&self, epoch: usize) -> f64 {
        self.batcher.plan(epoch as u64).padding_fraction()
    }

    /// Pads `clips[indices]` (in that order) into one batch.
    fn batch(
        &self,
        clips: &[Array2<f32>],
        indices: &[usize],
        rng: Option<&mut ChaCha8Rng>,
    ) -> PaddedBatch {
        let steps = indices.iter().map(|&i| clips[i].nrows()).max().unwrap_or(0);
        let dims = clips.first().map_or(0, |c| c.ncols());
        let mut x = Array3::<f32>::zeros((steps, indices.len(), dims));
        for (b, &i) in indices.iter().enumerate() {
            let clip = &clips[i];
            x.slice_mut(ndarray::s![..clip.nrows(), b, ..]).assign(clip);
        }
        if let Some(rng) = rng {
            for (b, &i) in indices.iter().enumerate() {
                let mut view = x.slice_mut(ndarray::s![.., b, ..]);
                self.augment.apply(&mut view, clips[i].nrows(), rng);
            }
        }
        PaddedBatch {
            ids: Array2::zeros((steps, indices.len())),
            lengths: indices.iter().map(|&i| clips[i].nrows()).collect(),
            targets: BatchTargets::Classes(indices.iter().map(|&i| self.labels[i]).collect()),
            indices: indices.to_vec(),
            features: Some(x),
        }
    }
}

impl Batches for FeatureBatches {
    type Batch = PaddedBatch;

    fn epoch(&self, epoch: usize) -> Result<Vec<PaddedBatch>> {
        let plan = self.batcher.plan(epoch as u64);
        // Masks from their own stream of (seed, epoch): a resumed run draws the same ones.
        let mut rng = ChaCha8Rng::seed_from_u64(self.seed ^ 0x5bec_a0c0);
        rng.set_stream(epoch as u64);
        let on = self.augment.is_on();
        let perturbed = match &self.refeaturize {
            Some(r) => Some(r.epoch(epoch)?),
            None => None,
        };
        let clips = perturbed.as_deref().unwrap_or(&self.clips);
        Ok(plan
            .batches
            .iter()
            .map(|idx| self.batch(clips, idx, on.then_some(&mut rng)))
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audio::{FeatureConfig, Perturb};

    fn refeaturized(waves: &[Vec<f32>], seed: u64) -> FeatureBatches {
        let fx = FeatureExtractor::new(&FeatureConfig::default(), 8000).unwrap();
        let clips: Vec<Array2<f32>> = waves.iter().map(|w| fx.compute(w, 0)).collect();
        let labels = (0..waves.len()).map(|i| i % 2).collect();
        let perturb = Perturb {
            speeds: vec![0.9, 1.0, 1.1],
            noise_prob: 0.5,
            ..Perturb::default()
        };
        let config = BatcherConfig {
            batch_size: 2,
            seed,
            ..Default::default()
        };
        FeatureBatches::new(clips, labels, config, SpecAugment::default())
            .unwrap()
            .with_refeaturize(Refeaturize {
                waves: waves.to_vec(),
                perturber: Perturber::new(&perturb, 8000, seed).unwrap(),
                extractor: fx,
                normalize: Normalize::Utterance,
                cmvn: None,
            })
            .unwrap()
    }

    #[test]
    fn perturbed_epochs_are_a_function_of_seed_and_epoch() {
        let waves: Vec<Vec<f32>> = (0..4)
            .map(|k| {
                (0..4000)
                    .map(|i| ((i * (k + 1)) as f32 * 0.01).sin() * 0.3)
                    .collect()
            })
            .collect();
        let a = refeaturized(&waves, 1);
        let b = refeaturized(&waves, 1);
        let feats = |x: &FeatureBatches, e: usize| -> Vec<Array3<f32>> {
            x.epoch(e)
                .unwrap()
                .into_iter()
                .map(|b| b.features.unwrap())
                .collect()
        };
        // What a resumed run relies on: epoch e is the same whenever it is drawn.
        assert_eq!(feats(&a, 3), feats(&b, 3));
        assert_ne!(feats(&a, 3), feats(&a, 4));
        // Speed perturbation changes lengths in some epoch.
        let lengths = |e: usize| -> Vec<usize> {
            let mut l: Vec<usize> = a
                .epoch(e)
                .unwrap()
                .into_iter()
                .flat_map(|b| b.lengths)
                .collect();
            l.sort();
            l
        };
        assert!((0..6).any(|e| lengths(e) != lengths(e + 1)));
        // Not one waveform per clip is an error.
        let fx = FeatureExtractor::new(&FeatureConfig::default(), 8000).unwrap();
        let one = FeatureBatches::in_order(vec![fx.compute(&waves[0], 0)], vec![0], 1).unwrap();
        let r = Refeaturize {
            waves: waves.clone(),
            perturber: Perturber::new(&Perturb::default(), 8000, 0).unwrap(),
            extractor: fx,
            normalize: Normalize::None,
            cmvn: None,
        };
        assert!(one.with_refeaturize(r).is_err());
    }
}
