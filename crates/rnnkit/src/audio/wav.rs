//! Reading WAV files into mono `f32` clips.
//!
//! Every PCM depth `hound` reads (8, 16, 24 and 32-bit integers, 32-bit float) is scaled into
//! `[-1, 1)` the way torchaudio and librosa scale it (an integer sample `s` of `b` bits becomes
//! `s / 2^(b-1)`), and channels are averaged into one. Anything else is an
//! [`Error::Data`](crate::Error::Data) naming the file and saying what to do: a file that is not
//! a WAV, a compressed encoding, a clip without samples, a sample rate of 0 Hz, a clip longer
//! than the configured maximum.

use crate::error::{Error, Result};
use std::io::Read;
use std::path::Path;

/// A mono clip: samples in `[-1, 1]` and their rate.
///
/// ```
/// let clip = rnnkit::audio::Clip { samples: vec![0.0; 8000], sample_rate: 8000 };
/// assert_eq!(clip.seconds(), 1.0);
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct Clip {
    /// The samples, one channel.
    pub samples: Vec<f32>,
    /// Samples per second.
    pub sample_rate: u32,
}

impl Clip {
    /// The clip's length in seconds.
    pub fn seconds(&self) -> f64 {
        self.samples.len() as f64 / self.sample_rate.max(1) as f64
    }
}

/// What a WAV file may hold before it is refused.
///
/// ```
/// let limits = rnnkit::audio::WavLimits::default();
/// assert_eq!(limits.max_seconds, 600.0);
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct WavLimits {
    /// The longest clip accepted, in seconds (a guard against reading a day of audio by
    /// mistake into memory).
    pub max_seconds: f64,
}

impl Default for WavLimits {
    fn default() -> Self {
        WavLimits { max_seconds: 600.0 }
    }
}

/// Reads a WAV file as a mono clip.
///
/// ```
/// # let dir = std::env::temp_dir().join(format!("rnnkit-wav-doc-{}", std::process::id()));
/// # std::fs::create_dir_all(&dir).unwrap();
/// let path = dir.join("tone.wav");
/// let spec = hound::WavSpec {
///     channels: 2, sample_rate: 8000, bits_per_sample: 16, sample_format: hound::SampleFormat::Int,
/// };
/// let mut w = hound::WavWriter::create(&path, spec).unwrap();
/// for _ in 0..100 {
///     w.write_sample(16384i16).unwrap(); // left: 0.5
///     w.write_sample(0i16).unwrap(); // right: 0
/// }
/// w.finalize().unwrap();
/// let clip = rnnkit::audio::read_wav(&path, &Default::default()).unwrap();
/// assert_eq!((clip.samples.len(), clip.sample_rate), (100, 8000));
/// assert_eq!(clip.samples[0], 0.25); // the two channels averaged
/// assert!(rnnkit::audio::read_wav(&dir, &Default::default()).is_err()); // a directory
/// ```
pub fn read_wav(path: &Path, limits: &WavLimits) -> Result<Clip> {
    let name = path.display().to_string();
    if path.is_dir() {
        return Err(data_error(
            &name,
            "is a directory, not a WAV file (give the files, or the folder as data.path of an audio task)",
        ));
    }
    let file = std::fs::File::open(path).map_err(|source| Error::Read {
        path: name.clone(),
        source,
    })?;
    decode_wav(std::io::BufReader::new(file), &name, limits)
}

/// Decodes a WAV stream (a file's bytes, stdin) as a mono clip; `name` labels errors.
///
/// ```
/// let err = rnnkit::audio::decode_wav(&b"not audio"[..], "x.wav", &Default::default()).unwrap_err();
/// assert!(err.to_string().contains("x.wav"), "{err}");
/// assert!(err.to_string().contains("not a WAV"), "{err}");
/// ```
pub fn decode_wav<R: Read>(reader: R, name: &str, limits: &WavLimits) -> Result<Clip> {
    let reader = hound::WavReader::new(reader).map_err(|e| wav_error(name, e))?;
    let spec = reader.spec();
    if spec.sample_rate == 0 {
        return Err(data_error(name, "has a sample rate of 0 Hz in its header"));
    }
    if spec.channels == 0 {
        return Err(data_error(name, "has 0 channels in its header"));
    }
    let channels = spec.channels as usize;
    let frames = reader.duration() as usize;
    if frames == 0 {
        return Err(data_error(name, "holds no samples (an empty clip)"));
    }
    let seconds = frames as f64 / spec.sample_rate as f64;
    if seconds > limits.max_seconds {
        return Err(data_error(
            name,
            &format!(
                "is {seconds:.1} s long, more than the {} s allowed (raise the audio task's \
                 max_seconds, or cut the recording)",
                limits.max_seconds
            ),
        ));
    }
    let interleaved: Vec<f32> = match spec.sample_format {
        hound::SampleFormat::Float => {
            if spec.bits_per_sample != 32 {
                return Err(data_error(
                    name,
                    &format!(
                        "holds {}-bit float samples; only 32-bit float and 8/16/24/32-bit PCM \
                         are read (convert it, e.g. `ffmpeg -i IN -c:a pcm_s16le OUT.wav`)",
                        spec.bits_per_sample
                    ),
                ));
            }
            reader
                .into_samples::<f32>()
                .collect::<std::result::Result<_, _>>()
                .map_err(|e| wav_error(name, e))?
        }
        hound::SampleFormat::Int => {
            let scale = 1.0 / (1u64 << (spec.bits_per_sample.clamp(1, 32) - 1)) as f64;
            reader
                .into_samples::<i32>()
                .map(|s| s.map(|v| (v as f64 * scale) as f32))
                .collect::<std::result::Result<_, _>>()
                .map_err(|e| wav_error(name, e))?
        }
    };
    if interleaved.len() < frames * channels {
        return Err(data_error(
            name,
            &format!(
                "is truncated: its header announces {frames} frames, the data holds {}",
                interleaved.len() / channels
            ),
        ));
    }
    let samples = if channels == 1 {
        interleaved
    } else {
        let inv = 1.0 / channels as f32;
        interleaved
            .chunks_exact(channels)
            .map(|f| f.iter().sum::<f32>() * inv)
            .collect()
    };
    if let Some(i) = samples.iter().position(|v| !v.is_finite()) {
        return Err(data_error(
            name,
            &format!("holds a non-finite sample (NaN or infinity) at sample {i}"),
        ));
    }
    Ok(Clip {
        samples,
        sample_rate: spec.sample_rate,
    })
}

fn data_error(name: &str, msg: &str) -> Error {
    Error::Data {
        path: name.to_string(),
        at: String::new(),
        msg: msg.to_string(),
    }
}

/// `hound`'s error as a message a user can act on.
fn wav_error(name: &str, e: hound::Error) -> Error {
    let msg = match e {
        // hound reports a short read as "Failed to read enough bytes" of kind `Other`.
        hound::Error::IoError(io)
            if io.kind() == std::io::ErrorKind::UnexpectedEof
                || io.to_string().contains("enough bytes") =>
        {
            "is truncated: it ends inside its header or its samples".to_string()
        }
        hound::Error::IoError(io) => format!("could not be read: {io}"),
        hound::Error::FormatError(what) if what.contains("RIFF") || what.contains("WAVE") => {
            format!("is not a WAV file ({what})")
        }
        hound::Error::FormatError(what) => format!("is a malformed WAV file: {what}"),
        hound::Error::Unsupported => "uses a WAV encoding that is not PCM or 32-bit float \
             (compressed audio: convert it, e.g. `ffmpeg -i IN -c:a pcm_s16le OUT.wav`)"
            .to_string(),
        hound::Error::TooWide => "has samples wider than 32 bits".to_string(),
        hound::Error::UnfinishedSample => "is truncated: it ends inside a sample".to_string(),
        hound::Error::InvalidSampleFormat => "has a sample format that does not match its \
             bit depth"
            .to_string(),
    };
    data_error(name, &msg)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wav_bytes(
        spec: hound::WavSpec,
        write: impl FnOnce(&mut hound::WavWriter<&mut std::io::Cursor<Vec<u8>>>),
    ) -> Vec<u8> {
        let mut cursor = std::io::Cursor::new(Vec::new());
        {
            let mut w = hound::WavWriter::new(&mut cursor, spec).unwrap();
            write(&mut w);
            w.finalize().unwrap();
        }
        cursor.into_inner()
    }

    fn spec(channels: u16, bits: u16, format: hound::SampleFormat) -> hound::WavSpec {
        hound::WavSpec {
            channels,
            sample_rate: 16000,
            bits_per_sample: bits,
            sample_format: format,
        }
    }

    #[test]
    fn every_pcm_depth_scales_into_unit_range() {
        use hound::SampleFormat::Int;
        for bits in [8u16, 16, 24, 32] {
            let full = 1i64 << (bits - 1);
            let bytes = wav_bytes(spec(1, bits, Int), |w| {
                for v in [-full, -full / 2, 0, full / 2, full - 1] {
                    w.write_sample(v as i32).unwrap();
                }
            });
            let clip = decode_wav(&bytes[..], "t.wav", &WavLimits::default()).unwrap();
            assert_eq!(
                clip.samples[..4],
                [-1.0, -0.5, 0.0, 0.5],
                "{bits} bits: {:?}",
                clip.samples
            );
            // (2^31 - 1) / 2^31 rounds to 1.0 in f32, as it does in torchaudio.
            assert!(
                clip.samples[4] <= 1.0 && clip.samples[4] > 0.99,
                "{bits} bits"
            );
        }
        let bytes = wav_bytes(spec(3, 32, hound::SampleFormat::Float), |w| {
            for v in [0.3f32, 0.6, 0.9] {
                w.write_sample(v).unwrap();
            }
        });
        let clip = decode_wav(&bytes[..], "f.wav", &WavLimits::default()).unwrap();
        assert_eq!(clip.samples.len(), 1);
        assert!((clip.samples[0] - 0.6).abs() < 1e-6);
    }

    #[test]
    fn bad_files_are_errors_naming_the_file() {
        let good = wav_bytes(spec(1, 16, hound::SampleFormat::Int), |w| {
            for v in 0..100 {
                w.write_sample(v as i16).unwrap();
            }
        });
        let limits = WavLimits::default();
        let err = |bytes: &[u8]| {
            decode_wav(bytes, "clip.wav", &limits)
                .unwrap_err()
                .to_string()
        };
        for (bytes, want) in [
            (&b""[..], "truncated"),
            (&b"RIFF"[..], "truncated"),
            (&b"OggS\0\0\0\0\0\0\0\0\0\0\0\0"[..], "not a WAV"),
            (&good[..30], "truncated"),
        ] {
            let e = err(bytes);
            assert!(e.contains("clip.wav") && e.contains(want), "{want}: {e}");
        }
        // Cut inside the samples: the header promises more frames than there are.
        let e = err(&good[..good.len() - 11]);
        assert!(e.contains("truncated"), "{e}");
        // No samples at all.
        let empty = wav_bytes(spec(1, 16, hound::SampleFormat::Int), |_| {});
        assert!(err(&empty).contains("no samples"));
        // 0 Hz: patch the header's rate field (bytes 24..28 of a canonical header).
        let mut zero = good.clone();
        zero[24..28].copy_from_slice(&0u32.to_le_bytes());
        let e = err(&zero);
        assert!(e.contains("0 Hz") || e.contains("malformed"), "{e}");
        // Too long for the limit.
        let short = WavLimits { max_seconds: 0.001 };
        let e = decode_wav(&good[..], "long.wav", &short)
            .unwrap_err()
            .to_string();
        assert!(e.contains("long.wav") && e.contains("max_seconds"), "{e}");
        // A compressed encoding (format tag 0x0055, MPEG layer 3).
        let mut mp3 = good.clone();
        mp3[20..22].copy_from_slice(&0x0055u16.to_le_bytes());
        let e = err(&mp3);
        assert!(e.contains("clip.wav"), "{e}");
    }
}
