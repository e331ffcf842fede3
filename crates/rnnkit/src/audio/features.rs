//! Log-mel filterbank energies and MFCCs, with deltas, in Kaldi's or librosa's conventions.
//!
//! **Kaldi style** (`style = "kaldi"`) computes what `torchaudio.compliance.kaldi.fbank` and
//! `.mfcc` compute with `snip_edges=True`: frames of `frame_length_ms` every `frame_shift_ms`
//! with no padding (a clip shorter than one frame has no frames); per frame, optional Gaussian
//! dither, removal of the DC offset, pre-emphasis `x[i] −= c·x[i−1]` (`x[−1] = x[0]`), the
//! window, zero padding to `n_fft` (the next power of two by default), the power spectrum,
//! Kaldi's mel filterbank, and `ln(max(e, f32::EPSILON))`. MFCCs are the orthonormal DCT-II of
//! the log-mel energies, liftered with `1 + (L/2) sin(πk/L)`.
//!
//! **librosa style** (`style = "librosa"`) computes `librosa.feature.melspectrogram` (power 2,
//! `center=True` with zero padding of `n_fft/2` on both sides, a periodic window of the frame
//! length centered in `n_fft`) with Slaney's filterbank, then `power_to_db` (`10 log10(max(S,
//! 1e-10))`, floored at `top_db` below the clip's maximum); MFCCs as `librosa.feature.mfcc`
//! (orthonormal DCT-II of the dB values, librosa's lifter). To match librosa exactly, also set
//! what it does not do, or does otherwise, to its values: `preemphasis = 0`,
//! `remove_dc_offset = false`, `window = "hann"`, `f_min = 0`, `lifter = 0`.
//!
//! Deltas (`deltas = 1` or `2`) follow `torchaudio.functional.compute_deltas` (Kaldi's
//! `add-deltas`): a regression over ±2 frames with the edge frames repeated, appended after the
//! static features (then the delta-deltas).
//!
//! ```
//! use rnnkit::audio::{FeatureConfig, FeatureExtractor};
//! let cfg = FeatureConfig::default(); // Kaldi-style MFCC, 13 coefficients, 25 ms every 10 ms
//! let fx = FeatureExtractor::new(&cfg, 8000).unwrap();
//! let tone: Vec<f32> = (0..8000).map(|i| (i as f32 * 0.3).sin() * 0.5).collect();
//! let feats = fx.compute(&tone, 0); // [frames, dims]
//! assert_eq!(feats.shape(), &[98, 13]); // 1 + (8000 − 200) / 80 frames
//! ```

use super::mel::{MelBank, Window, dct_matrix, lifter};
use crate::error::{Error, Result};
use ndarray::Array2;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use realfft::num_complex::Complex;
use realfft::{RealFftPlanner, RealToComplex};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// Which features: log-mel energies or cepstra.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FeatureKind {
    /// Log mel filterbank energies, `n_mels` per frame.
    Fbank,
    /// Mel-frequency cepstral coefficients, `n_mfcc` per frame.
    #[default]
    Mfcc,
}

/// Whose definitions: Kaldi's (torchaudio.compliance.kaldi) or librosa's.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FeatureStyle {
    /// `torchaudio.compliance.kaldi.fbank` / `.mfcc` (snip_edges, natural log).
    #[default]
    Kaldi,
    /// `librosa.feature.melspectrogram` + `power_to_db` / `librosa.feature.mfcc` (centered
    /// frames, Slaney's mel, decibels).
    Librosa,
}

/// Feature settings (`[data.features]` of an audio task). Every field has a default.
///
/// ```
/// let cfg: rnnkit::audio::FeatureConfig = toml::from_str("kind = \"fbank\"\nn_mels = 40").unwrap();
/// assert_eq!(cfg.n_mels, 40);
/// assert_eq!(cfg.frame_length_ms, 25.0);
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FeatureConfig {
    /// `"mfcc"` (default) or `"fbank"`.
    pub kind: FeatureKind,
    /// `"kaldi"` (default) or `"librosa"`.
    pub style: FeatureStyle,
    /// Frame (window) length in milliseconds. Default 25.
    pub frame_length_ms: f64,
    /// Frame shift (hop) in milliseconds. Default 10.
    pub frame_shift_ms: f64,
    /// The analysis window: `"povey"` (default), `"hann"`, `"hamming"`, `"blackman"`,
    /// `"rectangular"`.
    pub window: Window,
    /// FFT size; absent: the next power of two at or above the frame length.
    pub n_fft: Option<usize>,
    /// Mel filters. Default 40.
    pub n_mels: usize,
    /// Lowest filter edge in Hz. Default 20.
    pub f_min: f64,
    /// Highest filter edge in Hz; 0 or less counts down from Nyquist (Kaldi's convention: −200
    /// is 200 Hz below it). Default 0 (Nyquist).
    pub f_max: f64,
    /// Cepstra kept (MFCC). Default 13.
    pub n_mfcc: usize,
    /// Cepstral liftering `L` (0: none). Default 22, Kaldi's.
    pub lifter: f64,
    /// Pre-emphasis coefficient (0: none). Default 0.97, Kaldi's.
    pub preemphasis: f64,
    /// Subtract each frame's mean before pre-emphasis. Default true, Kaldi's.
    pub remove_dc_offset: bool,
    /// Standard deviation of Gaussian noise added to each frame's samples (seeded per clip);
    /// Kaldi's guard against log(0) on digital silence. Default 0.
    pub dither: f64,
    /// librosa style: the dB floor below the clip's peak (`power_to_db`'s `top_db`); absent:
    /// no floor. Default 80, librosa's.
    pub top_db: Option<f64>,
    /// 0: static features only; 1: with deltas; 2: with deltas and delta-deltas. Default 2.
    pub deltas: usize,
}

impl Default for FeatureConfig {
    fn default() -> Self {
        FeatureConfig {
            kind: FeatureKind::Mfcc,
            style: FeatureStyle::Kaldi,
            frame_length_ms: 25.0,
            frame_shift_ms: 10.0,
            window: Window::Povey,
            n_fft: None,
            n_mels: 40,
            f_min: 20.0,
            f_max: 0.0,
            n_mfcc: 13,
            lifter: 22.0,
            preemphasis: 0.97,
            remove_dc_offset: true,
            dither: 0.0,
            top_db: Some(80.0),
            deltas: 0,
        }
    }
}

/// Computes features of clips at one sample rate (the filterbank, window and FFT plan are
/// built once).
pub struct FeatureExtractor {
    config: FeatureConfig,
    window_len: usize,
    hop: usize,
    n_fft: usize,
    window: Vec<f32>, // n_fft long: the window, centered (librosa) or at the start (Kaldi)
    bank: MelBank,
    dct: Option<(Vec<Vec<f32>>, Vec<f32>)>, // DCT rows and lifter
    fft: Arc<dyn RealToComplex<f32>>,
}

impl std::fmt::Debug for FeatureExtractor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FeatureExtractor")
            .field("config", &self.config)
            .field("n_fft", &self.n_fft)
            .finish_non_exhaustive()
    }
}

impl FeatureExtractor {
    /// An extractor for clips at `sample_rate`; errors name the setting that does not fit
    /// (a frame shorter than 2 samples, `n_fft` below the frame, a band outside Nyquist, more
    /// cepstra than filters).
    pub fn new(config: &FeatureConfig, sample_rate: u32) -> Result<Self> {
        let bad = |key: &str, msg: String| Error::Config(format!("data.features.{key}: {msg}"));
        if sample_rate == 0 {
            return Err(Error::Config("the audio sample rate is 0 Hz".into()));
        }
        let sr = sample_rate as f64;
        if !(config.frame_length_ms.is_finite() && config.frame_shift_ms.is_finite()) {
            return Err(bad("frame_length_ms", "must be a number".into()));
        }
        // Kaldi truncates: int(sr · ms · 0.001).
        let window_len = (sr * config.frame_length_ms * 0.001) as usize;
        let hop = (sr * config.frame_shift_ms * 0.001) as usize;
        if window_len < 2 {
            return Err(bad(
                "frame_length_ms",
                format!(
                    "{} ms is under 2 samples at {sample_rate} Hz",
                    config.frame_length_ms
                ),
            ));
        }
        if hop < 1 {
            return Err(bad(
                "frame_shift_ms",
                format!(
                    "{} ms is under 1 sample at {sample_rate} Hz",
                    config.frame_shift_ms
                ),
            ));
        }
        let n_fft = config.n_fft.unwrap_or(window_len.next_power_of_two());
        if n_fft < window_len {
            return Err(bad(
                "n_fft",
                format!("{n_fft} is shorter than the {window_len}-sample frame"),
            ));
        }
        if n_fft > 1 << 20 {
            return Err(bad("n_fft", format!("{n_fft} is over 2^20")));
        }
        let nyquist = sr / 2.0;
        let high = if config.f_max <= 0.0 {
            nyquist + config.f_max
        } else {
            config.f_max
        };
        if !(config.f_min >= 0.0 && config.f_min < high && high <= nyquist) {
            return Err(bad(
                "f_min",
                format!(
                    "the band {} to {high} Hz does not fit inside 0 to {nyquist} Hz (Nyquist at \
                     {sample_rate} Hz), with f_min below f_max",
                    config.f_min
                ),
            ));
        }
        if config.n_mels == 0 {
            return Err(bad("n_mels", "must be at least 1".into()));
        }
        if config.kind == FeatureKind::Mfcc && !(1..=config.n_mels).contains(&config.n_mfcc) {
            return Err(bad(
                "n_mfcc",
                format!(
                    "must be 1 to n_mels ({}), is {}",
                    config.n_mels, config.n_mfcc
                ),
            ));
        }
        if config.deltas > 2 {
            return Err(bad(
                "deltas",
                format!("must be 0, 1 or 2, is {}", config.deltas),
            ));
        }
        if !(config.dither >= 0.0 && config.dither.is_finite()) {
            return Err(bad("dither", "must be 0 or more".into()));
        }
        let librosa = config.style == FeatureStyle::Librosa;
        let bank = if librosa {
            MelBank::slaney(config.n_mels, n_fft, sr, config.f_min, high)
        } else {
            MelBank::kaldi(config.n_mels, n_fft, sr, config.f_min, high)
        };
        let mut window = vec![0.0f32; n_fft];
        let offset = if librosa { (n_fft - window_len) / 2 } else { 0 };
        window[offset..offset + window_len]
            .copy_from_slice(&config.window.samples(window_len, librosa));
        let dct = (config.kind == FeatureKind::Mfcc).then(|| {
            (
                dct_matrix(config.n_mfcc, config.n_mels),
                lifter(config.n_mfcc, config.lifter, librosa),
            )
        });
        let fft = RealFftPlanner::<f32>::new().plan_fft_forward(n_fft);
        Ok(FeatureExtractor {
            config: config.clone(),
            window_len,
            hop,
            n_fft,
            window,
            bank,
            dct,
            fft,
        })
    }

    /// Features per frame: `n_mels` or `n_mfcc`, times 1 + `deltas`.
    pub fn dim(&self) -> usize {
        let base = match self.config.kind {
            FeatureKind::Fbank => self.config.n_mels,
            FeatureKind::Mfcc => self.config.n_mfcc,
        };
        base * (1 + self.config.deltas)
    }

    /// Samples between frame starts.
    pub fn hop(&self) -> usize {
        self.hop
    }

    /// Samples per frame.
    pub fn frame_len(&self) -> usize {
        self.window_len
    }

    /// Frames a clip of `samples` samples has.
    pub fn frames(&self, samples: usize) -> usize {
        match self.config.style {
            FeatureStyle::Kaldi if samples < self.window_len => 0,
            FeatureStyle::Kaldi => 1 + (samples - self.window_len) / self.hop,
            FeatureStyle::Librosa => 1 + samples / self.hop,
        }
    }

    /// The features of `samples`, `[frames, dim]`; `seed` seeds the dither (unused without it).
    pub fn compute(&self, samples: &[f32], seed: u64) -> Array2<f32> {
        let mel = self.log_mel(samples, seed);
        let statics = match &self.dct {
            None => mel,
            Some((rows, lift)) => {
                let mut cep = Array2::<f32>::zeros((mel.nrows(), rows.len()));
                for (m, mut c) in mel.outer_iter().zip(cep.outer_iter_mut()) {
                    for ((o, row), l) in c.iter_mut().zip(rows).zip(lift) {
                        *o = row.iter().zip(m).map(|(a, b)| a * b).sum::<f32>() * l;
                    }
                }
                cep
            }
        };
        with_deltas(statics, self.config.deltas)
    }

    /// The log-mel energies `[frames, n_mels]`: natural log (Kaldi) or decibels with the
    /// `top_db` floor (librosa).
    pub fn log_mel(&self, samples: &[f32], seed: u64) -> Array2<f32> {
        let frames = self.frames(samples.len());
        let mut mel = Array2::<f32>::zeros((frames, self.config.n_mels));
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut scratch = Scratch::new(self);
        for (t, mut row) in mel.outer_iter_mut().enumerate() {
            self.frame_into(samples, t, &mut rng, &mut scratch);
            let out = row.as_slice_mut().expect("standard layout");
            self.mel_energies(&mut scratch, out);
        }
        match self.config.style {
            FeatureStyle::Kaldi => mel.mapv_inplace(|e| e.max(f32::EPSILON).ln()),
            FeatureStyle::Librosa => {
                let mut peak = f32::NEG_INFINITY;
                mel.mapv_inplace(|p| {
                    let d = (10.0 * (p.max(1e-10) as f64).log10()) as f32;
                    peak = peak.max(d);
                    d
                });
                if let Some(top) = self.config.top_db {
                    let floor = peak - top as f32;
                    mel.mapv_inplace(|v| v.max(floor));
                }
            }
        }
        mel
    }

    /// Frame `t`'s samples, conditioned and windowed, into `scratch.frame` (n_fft long).
    fn frame_into(&self, samples: &[f32], t: usize, rng: &mut ChaCha8Rng, s: &mut Scratch) {
        let c = &self.config;
        let frame = &mut s.frame;
        frame.iter_mut().for_each(|v| *v = 0.0);
        match c.style {
            FeatureStyle::Kaldi => {
                let start = t * self.hop;
                frame[..self.window_len].copy_from_slice(&samples[start..start + self.window_len]);
            }
            FeatureStyle::Librosa => {
                // Centered frames over the clip padded with n_fft/2 zeros on both sides.
                let start = (t * self.hop) as isize - (self.n_fft / 2) as isize;
                for (i, v) in frame.iter_mut().enumerate() {
                    let j = start + i as isize;
                    if j >= 0 && (j as usize) < samples.len() {
                        *v = samples[j as usize];
                    }
                }
            }
        }
        // The span the window covers: Kaldi's frame, or librosa's centered window.
        let span = match c.style {
            FeatureStyle::Kaldi => 0..self.window_len,
            FeatureStyle::Librosa => 0..self.n_fft,
        };
        let x = &mut frame[span];
        if c.dither > 0.0 {
            for v in x.iter_mut() {
                *v += (c.dither * gaussian(rng)) as f32;
            }
        }
        if c.remove_dc_offset {
            let mean = x.iter().sum::<f32>() / x.len() as f32;
            x.iter_mut().for_each(|v| *v -= mean);
        }
        if c.preemphasis != 0.0 {
            let k = c.preemphasis as f32;
            for i in (1..x.len()).rev() {
                x[i] -= k * x[i - 1];
            }
            x[0] -= k * x[0];
        }
        for (v, w) in frame.iter_mut().zip(&self.window) {
            *v *= w;
        }
    }

    /// FFT, power spectrum and the mel filterbank of the frame in `s.frame`, into `out`.
    fn mel_energies(&self, s: &mut Scratch, out: &mut [f32]) {
        self.fft
            .process_with_scratch(&mut s.frame, &mut s.spectrum, &mut s.fft_scratch)
            .expect("buffers sized by the plan");
        for (p, c) in s.power.iter_mut().zip(&s.spectrum) {
            *p = c.re * c.re + c.im * c.im;
        }
        self.bank.apply(&s.power, out);
    }
}

/// Per-call buffers.
struct Scratch {
    frame: Vec<f32>,
    spectrum: Vec<Complex<f32>>,
    fft_scratch: Vec<Complex<f32>>,
    power: Vec<f32>,
}

impl Scratch {
    fn new(fx: &FeatureExtractor) -> Self {
        Scratch {
            frame: fx.fft.make_input_vec(),
            spectrum: fx.fft.make_output_vec(),
            fft_scratch: fx.fft.make_scratch_vec(),
            power: vec![0.0; fx.n_fft / 2 + 1],
        }
    }
}

/// A standard normal draw (Box–Muller), for dither.
pub(crate) fn gaussian(rng: &mut ChaCha8Rng) -> f64 {
    let u1: f64 = 1.0 - rng.random::<f64>(); // (0, 1]
    let u2: f64 = rng.random::<f64>();
    (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
}

/// `x` with `order` delta blocks appended (torchaudio's `compute_deltas`, window 5, edges
/// repeated).
pub fn with_deltas(x: Array2<f32>, order: usize) -> Array2<f32> {
    if order == 0 {
        return x;
    }
    let (frames, dim) = x.dim();
    let mut out = Array2::<f32>::zeros((frames, dim * (1 + order)));
    out.slice_mut(ndarray::s![.., ..dim]).assign(&x);
    let mut prev = x;
    for o in 1..=order {
        let d = deltas(&prev);
        out.slice_mut(ndarray::s![.., o * dim..(o + 1) * dim])
            .assign(&d);
        prev = d;
    }
    out
}

/// `Δx[t] = Σ_{k=1..2} k (x[t+k] − x[t−k]) / 10`, frames beyond the edges repeating the edge.
fn deltas(x: &Array2<f32>) -> Array2<f32> {
    let (frames, dim) = x.dim();
    let mut d = Array2::<f32>::zeros((frames, dim));
    if frames == 0 {
        return d;
    }
    let at = |t: isize| x.row(t.clamp(0, frames as isize - 1) as usize);
    for t in 0..frames as isize {
        let mut row = d.row_mut(t as usize);
        for k in 1..=2isize {
            let (ahead, behind) = (at(t + k), at(t - k));
            for ((r, a), b) in row.iter_mut().zip(ahead).zip(behind) {
                *r += k as f32 * (a - b);
            }
        }
        row.iter_mut().for_each(|v| *v /= 10.0);
    }
    d
}
