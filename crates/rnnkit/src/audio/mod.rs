//! Speech and other audio: WAV files in, features out.
//!
//! - [`read_wav`] / [`decode_wav`]: 8/16/24/32-bit PCM and 32-bit float WAV, any channel count,
//!   averaged to mono and scaled into `[-1, 1)`; clear errors naming the file for the rest.
//! - [`scan_folder`] / [`read_manifest`]: labelled recordings, from a folder whose file names
//!   carry the label ([`NamePattern`]) or a CSV manifest.
//! - [`resample`]: a clip to the model's rate (`rubato`'s FFT resampler).
//! - [`Perturber`]: training-only speed perturbation and additive noise ([`Perturb`]).
//! - [`FeatureExtractor`]: log-mel filterbank energies and MFCCs with deltas, in Kaldi's
//!   definitions (`torchaudio.compliance.kaldi.fbank`/`mfcc`) or librosa's, checked against
//!   both by golden fixtures from `tools/gen_audio_fixtures.py`.
//!
//! ```
//! use rnnkit::audio::{FeatureConfig, FeatureExtractor, resample};
//! let clip: Vec<f32> = (0..16000).map(|i| (i as f32 * 0.1).sin() * 0.3).collect(); // 16 kHz
//! let at_8k = resample(&clip, 16000, 8000).unwrap();
//! let fx = FeatureExtractor::new(&FeatureConfig::default(), 8000).unwrap();
//! let feats = fx.compute(&at_8k, 0);
//! assert_eq!(feats.ncols(), fx.dim());
//! ```

mod batches;
mod dataset;
mod features;
mod mel;
mod normalize;
mod perturb;
mod resample;
mod wav;

pub use batches::{FeatureBatches, Refeaturize, SpecAugment};
pub use dataset::{AudioItem, NameFields, NamePattern, read_manifest, scan_folder};
pub use features::{FeatureConfig, FeatureExtractor, FeatureKind, FeatureStyle, with_deltas};
pub use mel::{
    MelBank, Window, dct_matrix, kaldi_mel, kaldi_mel_to_hz, lifter, slaney_mel, slaney_mel_to_hz,
};
pub use normalize::{Cmvn, Normalize, normalize_all, normalize_utterance};
pub use perturb::{Perturb, Perturber};
pub use resample::resample;
pub use wav::{Clip, WavLimits, decode_wav, read_wav};
