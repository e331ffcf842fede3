//! Waveform augmentation for training: speed perturbation (Ko et al., 2015: the clip replayed
//! at a factor of its rate, so tempo and pitch change together, as `sox speed` does) and
//! additive noise at a random signal-to-noise ratio, white or drawn from a folder of noise
//! recordings (MUSAN-style). Drawn afresh per clip and epoch from a seeded generator, so a
//! resumed run sees the same perturbations; never applied to validation, test or prediction.

use super::features::gaussian;
use super::resample::resample;
use super::wav::{WavLimits, read_wav};
use crate::error::{Error, Result, ResultExt};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// `[data.perturb]`: training-only waveform augmentation. The default does nothing.
///
/// ```
/// let p: rnnkit::audio::Perturb = toml::from_str(
///     "speeds = [0.9, 1.0, 1.1]\nnoise_prob = 0.5\nnoise_snr_db = [5.0, 20.0]",
/// )
/// .unwrap();
/// assert!(p.is_on());
/// p.validate().unwrap();
/// assert!(!rnnkit::audio::Perturb::default().is_on());
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Perturb {
    /// Speed factors, one drawn uniformly per clip and epoch (Kaldi's recipes use
    /// `[0.9, 1.0, 1.1]`). Each in `[0.5, 2.0]`. Default `[]` (off).
    pub speeds: Vec<f64>,
    /// Probability that a clip gets additive noise. Default 0 (off).
    pub noise_prob: f64,
    /// The signal-to-noise ratio range in dB, drawn uniformly. Default `[5, 20]`.
    pub noise_snr_db: [f64; 2],
    /// A folder of WAV recordings of noise; a random stretch of one (looped if short) is mixed
    /// in. Empty (the default): white Gaussian noise.
    pub noise_dir: PathBuf,
}

impl Default for Perturb {
    fn default() -> Self {
        Perturb {
            speeds: Vec::new(),
            noise_prob: 0.0,
            noise_snr_db: [5.0, 20.0],
            noise_dir: PathBuf::new(),
        }
    }
}

impl Perturb {
    /// Whether anything is perturbed.
    pub fn is_on(&self) -> bool {
        self.speeds.iter().any(|&s| s != 1.0) || self.noise_prob > 0.0
    }

    /// Checks every field, naming the one at fault.
    ///
    /// # Errors
    /// A speed outside `[0.5, 2]`, a probability outside `[0, 1]`, an SNR range that is not
    /// finite or runs backwards.
    pub fn validate(&self) -> Result<()> {
        if let Some(s) = self
            .speeds
            .iter()
            .find(|s| !(s.is_finite() && (0.5..=2.0).contains(*s)))
        {
            return Err(Error::Config(format!(
                "data.perturb.speeds: {s} is outside 0.5..=2.0 (1.0 is the original speed)"
            )));
        }
        if !(0.0..=1.0).contains(&self.noise_prob) {
            return Err(Error::Config(format!(
                "data.perturb.noise_prob = {} must be in 0..=1",
                self.noise_prob
            )));
        }
        let [lo, hi] = self.noise_snr_db;
        if !(lo.is_finite() && hi.is_finite() && lo <= hi) {
            return Err(Error::Config(format!(
                "data.perturb.noise_snr_db = [{lo}, {hi}] must be finite, low to high"
            )));
        }
        Ok(())
    }
}

/// Applies a [`Perturb`] to clips at one sample rate, with its noise recordings loaded.
///
/// ```
/// use rnnkit::audio::{Perturb, Perturber};
/// let p = Perturb { speeds: vec![1.25], ..Perturb::default() };
/// let perturber = Perturber::new(&p, 8000, 0).unwrap();
/// let clip = vec![0.1f32; 8000];
/// let faster = perturber.apply(&clip, 0, 0).unwrap();
/// assert!((faster.len() as f64 - 8000.0 / 1.25).abs() < 50.0);
/// ```
#[derive(Clone, Debug)]
pub struct Perturber {
    config: Perturb,
    rate: u32,
    seed: u64,
    noises: Vec<Vec<f32>>,
}

impl Perturber {
    /// Validates `config` and reads its noise folder (resampled to `rate`); `seed` (the run's)
    /// seeds every draw.
    ///
    /// # Errors
    /// An invalid config; a noise folder that cannot be read, holds no WAV file, or holds an
    /// unreadable or silent one (named).
    pub fn new(config: &Perturb, rate: u32, seed: u64) -> Result<Self> {
        config.validate()?;
        let noises = if config.noise_dir.as_os_str().is_empty() {
            Vec::new()
        } else {
            read_noises(&config.noise_dir, rate)?
        };
        Ok(Perturber {
            config: config.clone(),
            rate,
            seed,
            noises,
        })
    }

    /// The perturbed copy of `samples` for clip `index` in epoch `epoch`: a pure function of
    /// (`seed`, `epoch`, `index`), so threads and resumes agree.
    ///
    /// # Errors
    /// Resampling failed.
    pub fn apply(&self, samples: &[f32], epoch: u64, index: u64) -> Result<Vec<f32>> {
        self.apply_seeded(samples, clip_seed(self.seed, epoch, index))
    }

    fn apply_seeded(&self, samples: &[f32], seed: u64) -> Result<Vec<f32>> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let speed = match self.config.speeds.len() {
            0 => 1.0,
            n => self.config.speeds[rng.random_range(0..n)],
        };
        let mut out = if speed == 1.0 {
            samples.to_vec()
        } else {
            // Played at `speed`: the samples are read as if recorded at rate·speed.
            let from = (self.rate as f64 * speed).round().max(1.0) as u32;
            resample(samples, from, self.rate)?
        };
        if rng.random_bool(self.config.noise_prob) {
            let [lo, hi] = self.config.noise_snr_db;
            let snr_db = if lo < hi {
                rng.random_range(lo..=hi)
            } else {
                lo
            };
            self.add_noise(&mut out, snr_db, &mut rng);
        }
        Ok(out)
    }

    /// Mixes noise into `x` at `snr_db` relative to `x`'s mean power (nothing for silence).
    fn add_noise(&self, x: &mut [f32], snr_db: f64, rng: &mut ChaCha8Rng) {
        let power = mean_power(x);
        if power <= 0.0 || x.is_empty() {
            return;
        }
        let noise: Vec<f32> = if self.noises.is_empty() {
            (0..x.len()).map(|_| gaussian(rng) as f32).collect()
        } else {
            let src = &self.noises[rng.random_range(0..self.noises.len())];
            let start = rng.random_range(0..src.len());
            (0..x.len()).map(|i| src[(start + i) % src.len()]).collect()
        };
        let noise_power = mean_power(&noise);
        if noise_power <= 0.0 {
            return;
        }
        let gain = (power / noise_power / 10f64.powf(snr_db / 10.0)).sqrt() as f32;
        for (s, n) in x.iter_mut().zip(&noise) {
            *s += gain * n;
        }
    }
}

/// One generator seed per (run seed, epoch, clip), decorrelated by SplitMix64's finalizer.
fn clip_seed(seed: u64, epoch: u64, index: u64) -> u64 {
    let mut z = (seed ^ 0x7e57_ab1e_0000_0000)
        .wrapping_mul(0x9E37_79B9_7F4A_7C15)
        .wrapping_add(epoch)
        .wrapping_mul(0x9E37_79B9_7F4A_7C15)
        .wrapping_add(index);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn mean_power(x: &[f32]) -> f64 {
    if x.is_empty() {
        return 0.0;
    }
    x.iter().map(|&v| (v as f64) * (v as f64)).sum::<f64>() / x.len() as f64
}

fn read_noises(dir: &Path, rate: u32) -> Result<Vec<Vec<f32>>> {
    let field = || format!("data.perturb.noise_dir = {}", dir.display());
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| Error::read(dir, e))
        .with_context(field)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e.eq_ignore_ascii_case("wav")))
        .collect();
    paths.sort();
    if paths.is_empty() {
        return Err(Error::Config(format!(
            "{}: no .wav files to draw noise from",
            field()
        )));
    }
    let limits = WavLimits {
        max_seconds: 3600.0,
    };
    paths
        .iter()
        .map(|p| {
            let clip = read_wav(p, &limits).with_context(field)?;
            let samples = if clip.sample_rate == rate {
                clip.samples
            } else {
                resample(&clip.samples, clip.sample_rate, rate)?
            };
            if mean_power(&samples) <= 0.0 {
                return Err(Error::Config(format!(
                    "{}: {} is silent",
                    field(),
                    p.display()
                )));
            }
            Ok(samples)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tone(n: usize) -> Vec<f32> {
        (0..n).map(|i| (i as f32 * 0.05).sin() * 0.5).collect()
    }

    #[test]
    fn speed_changes_the_length_by_the_factor() {
        for speed in [0.9, 1.1] {
            let p = Perturb {
                speeds: vec![speed],
                ..Perturb::default()
            };
            let out = Perturber::new(&p, 8000, 0)
                .unwrap()
                .apply(&tone(8000), 3, 7)
                .unwrap();
            let want = 8000.0 / speed;
            assert!(
                (out.len() as f64 - want).abs() < 0.01 * want,
                "speed {speed}: {} samples, want ~{want}",
                out.len()
            );
        }
    }

    #[test]
    fn noise_lands_at_the_drawn_snr() {
        let p = Perturb {
            noise_prob: 1.0,
            noise_snr_db: [10.0, 10.0],
            ..Perturb::default()
        };
        let clean = tone(16000);
        let noisy = Perturber::new(&p, 8000, 0)
            .unwrap()
            .apply(&clean, 0, 0)
            .unwrap();
        let noise: Vec<f32> = noisy.iter().zip(&clean).map(|(a, b)| a - b).collect();
        let snr = 10.0 * (mean_power(&clean) / mean_power(&noise)).log10();
        assert!((snr - 10.0).abs() < 0.01, "snr {snr}");
    }

    #[test]
    fn draws_depend_on_epoch_and_clip_only() {
        let p = Perturb {
            speeds: vec![0.9, 1.0, 1.1],
            noise_prob: 0.5,
            ..Perturb::default()
        };
        let per = Perturber::new(&p, 8000, 0).unwrap();
        let x = tone(4000);
        assert_eq!(per.apply(&x, 2, 5).unwrap(), per.apply(&x, 2, 5).unwrap());
        let differ =
            (0..8).any(|e| per.apply(&x, e, 5).unwrap() != per.apply(&x, e + 1, 5).unwrap());
        assert!(differ, "epochs should draw different perturbations");
    }

    #[test]
    fn silence_stays_silent_and_off_is_identity() {
        let p = Perturb {
            noise_prob: 1.0,
            ..Perturb::default()
        };
        let per = Perturber::new(&p, 8000, 0).unwrap();
        assert_eq!(per.apply(&[0.0; 100], 0, 0).unwrap(), vec![0.0; 100]);
        let off = Perturber::new(&Perturb::default(), 8000, 0).unwrap();
        assert_eq!(off.apply(&tone(50), 1, 1).unwrap(), tone(50));
    }

    #[test]
    fn bad_settings_name_the_field() {
        let bad = [
            Perturb {
                speeds: vec![0.0],
                ..Perturb::default()
            },
            Perturb {
                noise_prob: 1.5,
                ..Perturb::default()
            },
            Perturb {
                noise_snr_db: [20.0, 5.0],
                ..Perturb::default()
            },
            Perturb {
                noise_snr_db: [f64::NAN, 5.0],
                ..Perturb::default()
            },
        ];
        for p in bad {
            let e = p.validate().unwrap_err().to_string();
            assert!(e.contains("data.perturb."), "{e}");
        }
        let empty = std::env::temp_dir().join(format!("rnnkit-noise-{}", std::process::id()));
        std::fs::create_dir_all(&empty).unwrap();
        let p = Perturb {
            noise_prob: 1.0,
            noise_dir: empty.clone(),
            ..Perturb::default()
        };
        let e = Perturber::new(&p, 8000, 0).unwrap_err().to_string();
        assert!(e.contains("no .wav files"), "{e}");
        std::fs::remove_dir_all(empty).unwrap();
    }
}
