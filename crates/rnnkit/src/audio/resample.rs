//! Sample-rate conversion of whole clips, with `rubato`'s FFT resampler (band-limited, fixed
//! ratio), its delay removed so that output sample `i` sits at time `i / rate_out`.

use crate::error::{Error, Result};
use rubato::{FftFixedIn, Resampler};

/// Input frames `rubato` takes per call: long enough for the FFT to be efficient, short
/// enough that a clip's tail is not mostly padding.
const CHUNK: usize = 1024;

/// `samples` at `from` Hz converted to `to` Hz: `⌈len · to / from⌉` samples. The same rate
/// returns the samples unchanged.
///
/// ```
/// let tone: Vec<f32> = (0..16000).map(|i| (i as f32 * 0.05).sin()).collect(); // 1 s at 16 kHz
/// let down = rnnkit::audio::resample(&tone, 16000, 8000).unwrap();
/// assert_eq!(down.len(), 8000);
/// // The same tone at 8 kHz advances twice as fast per sample.
/// assert!((down[1000] - (2000.0f32 * 0.05).sin()).abs() < 0.01);
/// ```
pub fn resample(samples: &[f32], from: u32, to: u32) -> Result<Vec<f32>> {
    if from == 0 || to == 0 {
        return Err(Error::Config(format!(
            "cannot resample from {from} Hz to {to} Hz: rates must be positive"
        )));
    }
    if from == to || samples.is_empty() {
        return Ok(samples.to_vec());
    }
    let want = (samples.len() as u64 * to as u64).div_ceil(from as u64) as usize;
    let fail = |e: &dyn std::fmt::Display| {
        Error::Config(format!("resampling from {from} Hz to {to} Hz failed: {e}"))
    };
    let mut r =
        FftFixedIn::<f32>::new(from as usize, to as usize, CHUNK, 2, 1).map_err(|e| fail(&e))?;
    let delay = r.output_delay();
    let mut out: Vec<f32> = Vec::with_capacity(want + delay + CHUNK);
    let mut rest = samples;
    while rest.len() >= r.input_frames_next() {
        let (chunk, tail) = rest.split_at(r.input_frames_next());
        let y = r.process(&[chunk], None).map_err(|e| fail(&e))?;
        out.extend_from_slice(&y[0]);
        rest = tail;
    }
    if !rest.is_empty() {
        let y = r
            .process_partial(Some(&[rest]), None)
            .map_err(|e| fail(&e))?;
        out.extend_from_slice(&y[0]);
    }
    // Flush the filter's delay with silence.
    while out.len() < want + delay {
        let y = r
            .process_partial(None::<&[&[f32]]>, None)
            .map_err(|e| fail(&e))?;
        if y[0].is_empty() {
            break;
        }
        out.extend_from_slice(&y[0]);
    }
    out.drain(..delay.min(out.len()));
    out.resize(want, 0.0);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upsampling_keeps_a_tone_in_place() {
        let f = 440.0f32;
        let x: Vec<f32> = (0..8000)
            .map(|i| (2.0 * std::f32::consts::PI * f * i as f32 / 8000.0).sin())
            .collect();
        let y = resample(&x, 8000, 22050).unwrap();
        assert_eq!(y.len(), 22050);
        // Away from the edges, the tone at the new rate, in phase.
        for i in (2000..20000).step_by(997) {
            let want = (2.0 * std::f32::consts::PI * f * i as f32 / 22050.0).sin();
            assert!((y[i] - want).abs() < 0.02, "{i}: {} vs {want}", y[i]);
        }
    }

    #[test]
    fn odd_lengths_and_bad_rates() {
        for n in [1usize, 7, 1023, 1024, 1025, 5000] {
            let x = vec![0.25f32; n];
            let y = resample(&x, 16000, 8000).unwrap();
            assert_eq!(y.len(), n.div_ceil(2), "{n}");
        }
        assert!(resample(&[0.0], 0, 8000).is_err());
        assert_eq!(resample(&[0.5, 0.25], 8000, 8000).unwrap(), vec![0.5, 0.25]);
    }
}
