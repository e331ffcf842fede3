//! Analysis windows, mel filterbanks and the cepstral DCT, in Kaldi's and librosa's definitions.
//!
//! - Kaldi (`torchaudio.compliance.kaldi`): symmetric windows (Povey is Hann to the power
//!   0.85), the mel scale `1127 ln(1 + f/700)`, triangles that are linear in mel and unnormalized,
//!   over the `n_fft/2` bins below Nyquist.
//! - librosa (`librosa.filters.mel`, its defaults): periodic windows, Slaney's mel scale (linear
//!   below 1 kHz, logarithmic above), triangles linear in Hz and area-normalized ("slaney"), over
//!   all `n_fft/2 + 1` bins.

use serde::{Deserialize, Serialize};
use std::f64::consts::PI;

/// The analysis window applied to each frame.
///
/// ```
/// use rnnkit::audio::Window;
/// let w = Window::Hann.samples(5, false); // symmetric: both ends 0, peak 1 in the middle
/// assert_eq!(w[0], 0.0);
/// assert!((w[2] - 1.0).abs() < 1e-7);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Window {
    /// Kaldi's default: a Hann window raised to the power 0.85 (non-zero ends with a periodic
    /// window, a gentler taper than Hann).
    #[default]
    Povey,
    /// Hann (raised cosine).
    Hann,
    /// Hamming (0.54 − 0.46 cos).
    Hamming,
    /// Blackman (Kaldi's coefficient 0.42).
    Blackman,
    /// No taper.
    Rectangular,
}

impl Window {
    /// `len` window values; `periodic` (librosa, scipy's `fftbins=True`) divides by `len`,
    /// symmetric (Kaldi) by `len - 1`.
    pub fn samples(self, len: usize, periodic: bool) -> Vec<f32> {
        let denom = if periodic { len } else { len.saturating_sub(1) }.max(1) as f64;
        (0..len)
            .map(|n| {
                let a = 2.0 * PI * n as f64 / denom;
                let hann = 0.5 - 0.5 * a.cos();
                let v = match self {
                    Window::Povey => hann.powf(0.85),
                    Window::Hann => hann,
                    Window::Hamming => 0.54 - 0.46 * a.cos(),
                    Window::Blackman => 0.42 - 0.5 * a.cos() + 0.08 * (2.0 * a).cos(),
                    Window::Rectangular => 1.0,
                };
                v as f32
            })
            .collect()
    }
}

/// Kaldi's mel scale, `1127 ln(1 + f/700)`.
pub fn kaldi_mel(hz: f64) -> f64 {
    1127.0 * (1.0 + hz / 700.0).ln()
}

/// The inverse of [`kaldi_mel`].
pub fn kaldi_mel_to_hz(mel: f64) -> f64 {
    700.0 * ((mel / 1127.0).exp() - 1.0)
}

const SLANEY_F_SP: f64 = 200.0 / 3.0;
const SLANEY_MIN_LOG_HZ: f64 = 1000.0;
const SLANEY_MIN_LOG_MEL: f64 = SLANEY_MIN_LOG_HZ / SLANEY_F_SP;

fn slaney_logstep() -> f64 {
    6.4f64.ln() / 27.0
}

/// Slaney's mel scale (librosa's default, `htk=False`): linear below 1 kHz, logarithmic above.
pub fn slaney_mel(hz: f64) -> f64 {
    if hz >= SLANEY_MIN_LOG_HZ {
        SLANEY_MIN_LOG_MEL + (hz / SLANEY_MIN_LOG_HZ).ln() / slaney_logstep()
    } else {
        hz / SLANEY_F_SP
    }
}

/// The inverse of [`slaney_mel`].
pub fn slaney_mel_to_hz(mel: f64) -> f64 {
    if mel >= SLANEY_MIN_LOG_MEL {
        SLANEY_MIN_LOG_HZ * (slaney_logstep() * (mel - SLANEY_MIN_LOG_MEL)).exp()
    } else {
        SLANEY_F_SP * mel
    }
}

/// A mel filterbank: `n_mels` rows of weights over the power spectrum's bins, each row stored
/// as its non-zero span (the triangles are narrow: a dense product would be mostly zeros).
#[derive(Clone, Debug)]
pub struct MelBank {
    rows: Vec<(usize, Vec<f32>)>, // (first bin, weights)
    bins: usize,
}

impl MelBank {
    /// Kaldi's filterbank (`torchaudio.compliance.kaldi.get_mel_banks` with no VTLN warp) for
    /// an FFT of `n_fft` points; the Nyquist bin gets weight 0, as in torchaudio's `fbank`.
    ///
    /// ```
    /// let bank = rnnkit::audio::MelBank::kaldi(23, 512, 16000.0, 20.0, 8000.0);
    /// assert_eq!((bank.n_mels(), bank.bins()), (23, 257));
    /// ```
    pub fn kaldi(n_mels: usize, n_fft: usize, sample_rate: f64, low: f64, high: f64) -> Self {
        let half = n_fft / 2;
        let bin_hz = sample_rate / n_fft as f64;
        let (mel_low, mel_high) = (kaldi_mel(low), kaldi_mel(high));
        let delta = (mel_high - mel_low) / (n_mels + 1) as f64;
        let bin_mels: Vec<f64> = (0..half).map(|k| kaldi_mel(bin_hz * k as f64)).collect();
        let rows = (0..n_mels)
            .map(|m| {
                let left = mel_low + m as f64 * delta;
                let center = left + delta;
                let right = center + delta;
                let weights: Vec<f64> = bin_mels
                    .iter()
                    .map(|&mel| {
                        let up = (mel - left) / (center - left);
                        let down = (right - mel) / (right - center);
                        up.min(down).max(0.0)
                    })
                    .collect();
                sparse_row(&weights)
            })
            .collect();
        MelBank {
            rows,
            bins: half + 1,
        }
    }

    /// librosa's filterbank (`librosa.filters.mel(sr, n_fft, n_mels, fmin, fmax)`, Slaney's
    /// scale and area normalization) over all `n_fft/2 + 1` bins.
    ///
    /// ```
    /// let bank = rnnkit::audio::MelBank::slaney(40, 256, 8000.0, 0.0, 4000.0);
    /// assert_eq!((bank.n_mels(), bank.bins()), (40, 129));
    /// ```
    pub fn slaney(n_mels: usize, n_fft: usize, sample_rate: f64, low: f64, high: f64) -> Self {
        let bins = n_fft / 2 + 1;
        let (mel_low, mel_high) = (slaney_mel(low), slaney_mel(high));
        let edges: Vec<f64> = (0..n_mels + 2)
            .map(|i| {
                let t = if n_mels + 1 > 0 {
                    i as f64 / (n_mels + 1) as f64
                } else {
                    0.0
                };
                slaney_mel_to_hz(mel_low + t * (mel_high - mel_low))
            })
            .collect();
        let freqs: Vec<f64> = (0..bins)
            .map(|k| k as f64 * sample_rate / n_fft as f64)
            .collect();
        let rows = (0..n_mels)
            .map(|m| {
                let (lo, mid, hi) = (edges[m], edges[m + 1], edges[m + 2]);
                let norm = 2.0 / (hi - lo);
                let weights: Vec<f64> = freqs
                    .iter()
                    .map(|&f| {
                        let lower = (f - lo) / (mid - lo);
                        let upper = (hi - f) / (hi - mid);
                        lower.min(upper).max(0.0) * norm
                    })
                    .collect();
                sparse_row(&weights)
            })
            .collect();
        MelBank { rows, bins }
    }

    /// Number of filters.
    pub fn n_mels(&self) -> usize {
        self.rows.len()
    }

    /// Number of spectrum bins the filters read.
    pub fn bins(&self) -> usize {
        self.bins
    }

    /// `out[m] = Σ_k weight[m, k] · power[k]`.
    pub fn apply(&self, power: &[f32], out: &mut [f32]) {
        for ((start, w), o) in self.rows.iter().zip(out.iter_mut()) {
            *o = w.iter().zip(&power[*start..]).map(|(a, b)| a * b).sum();
        }
    }
}

/// The non-zero span of a filter's weights, as f32 (both libraries keep their banks in f32).
fn sparse_row(weights: &[f64]) -> (usize, Vec<f32>) {
    let first = weights.iter().position(|&w| w > 0.0);
    match first {
        None => (0, Vec::new()),
        Some(a) => {
            let b = weights
                .iter()
                .rposition(|&w| w > 0.0)
                .expect("one is non-zero");
            (a, weights[a..=b].iter().map(|&w| w as f32).collect())
        }
    }
}

/// The orthonormal DCT-II as a `[n_ceps][n_in]` matrix (Kaldi's and scipy's `norm="ortho"`):
/// `c_k = sqrt(2/N) Σ_n x_n cos(πk(n + ½)/N)`, with `c_0` scaled to `sqrt(1/N)`.
pub fn dct_matrix(n_ceps: usize, n_in: usize) -> Vec<Vec<f32>> {
    let n = n_in as f64;
    (0..n_ceps)
        .map(|k| {
            let scale = if k == 0 {
                (1.0 / n).sqrt()
            } else {
                (2.0 / n).sqrt()
            };
            (0..n_in)
                .map(|i| (scale * (PI / n * (i as f64 + 0.5) * k as f64).cos()) as f32)
                .collect()
        })
        .collect()
}

/// Cepstral liftering coefficients: Kaldi's `1 + (L/2) sin(πk/L)` for `k = 0..n`, or librosa's
/// `1 + (L/2) sin(π(k + 1)/L)`. `L = 0` is no liftering (all ones).
pub fn lifter(n_ceps: usize, l: f64, librosa: bool) -> Vec<f32> {
    (0..n_ceps)
        .map(|k| {
            if l == 0.0 {
                1.0
            } else {
                let i = if librosa { k + 1 } else { k } as f64;
                (1.0 + 0.5 * l * (PI * i / l).sin()) as f32
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mel_scales_invert() {
        for hz in [0.0, 100.0, 999.0, 1000.0, 4000.0, 22050.0] {
            assert!((kaldi_mel_to_hz(kaldi_mel(hz)) - hz).abs() < 1e-6);
            assert!((slaney_mel_to_hz(slaney_mel(hz)) - hz).abs() < 1e-6);
        }
        assert!((slaney_mel(1000.0) - 15.0).abs() < 1e-12);
    }

    #[test]
    fn filters_cover_the_band_and_peak_at_one() {
        let bank = MelBank::kaldi(23, 512, 16000.0, 20.0, 8000.0);
        let mut out = vec![0.0; 23];
        bank.apply(&[1.0; 257], &mut out);
        assert!(out.iter().all(|&v| v > 0.5), "{out:?}");
        assert!(
            bank.rows
                .iter()
                .all(|(_, w)| w.iter().all(|&x| x <= 1.0 + 1e-6))
        );
    }

    #[test]
    fn dct_is_orthonormal() {
        let d = dct_matrix(8, 8);
        for a in 0..8 {
            for b in 0..8 {
                let dot: f32 = d[a].iter().zip(&d[b]).map(|(x, y)| x * y).sum();
                let want = if a == b { 1.0 } else { 0.0 };
                assert!((dot - want).abs() < 1e-5, "{a} {b} {dot}");
            }
        }
    }
}
