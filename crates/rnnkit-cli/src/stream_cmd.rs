//! `rnnkit stream`: a trained unidirectional audio classifier over a long recording, frame by
//! frame, printing time-stamped detections as they are decided (the library's
//! `tasks::audio_stream`).

use crate::predict_cmd::{open_run, wrong_task};
use crate::run_config::usage;
use anyhow::Result;
use rnnkit::run::Weights;
use rnnkit::tasks::audio::{AudioConfig, LoadedAudio};
use rnnkit::tasks::audio_stream::{Detection, StreamConfig, StreamDetector};
use std::io::{Read, Write};
use std::path::PathBuf;

/// What `rnnkit stream` was given.
pub struct StreamArgs {
    /// The run directory.
    pub model: PathBuf,
    /// A WAV file, or `-` for raw PCM on standard input.
    pub input: PathBuf,
    /// Segmentation and scoring.
    pub config: StreamConfig,
    /// Use the latest checkpoint instead of the best weights.
    pub latest: bool,
}

/// Prints `start_s<TAB>end_s<TAB>label<TAB>probability<TAB>emitted_s` per detection, as each is
/// decided.
pub fn run(args: StreamArgs) -> Result<()> {
    let (cfg, run) =
        open_run::<AudioConfig>(&args.model, |kind| wrong_task(&args.model, kind, "stream"))?;
    let model = LoadedAudio::load(&run, cfg, Weights::latest_if(args.latest))?;
    let rate = model.front.sample_rate;
    let mut det = StreamDetector::new(&model, args.config).map_err(|e| usage(e.to_string()))?;
    let chunk = (rate as usize / 100).max(1); // 10 ms
    let print = |found: Vec<Detection>| -> Result<()> {
        let mut out = String::new();
        for d in found {
            out.push_str(&format!(
                "{:.3}\t{:.3}\t{}\t{:.4}\t{:.3}\n",
                d.start_s, d.end_s, d.label, d.prob, d.emitted_s
            ));
        }
        crate::stdout::emit(&out)?;
        std::io::stdout().flush().ok();
        Ok(())
    };
    if args.input.as_os_str() == "-" {
        // Raw 16-bit little-endian mono PCM at the model's rate, as a live source sends it.
        let mut stdin = std::io::stdin().lock();
        let mut bytes = vec![0u8; 2 * chunk];
        let mut carry: Option<u8> = None;
        loop {
            let n = stdin.read(&mut bytes)?;
            if n == 0 {
                break;
            }
            let mut data: Vec<u8> = carry.take().into_iter().collect();
            data.extend_from_slice(&bytes[..n]);
            if data.len() % 2 == 1 {
                carry = data.pop();
            }
            let samples: Vec<f32> = data
                .chunks_exact(2)
                .map(|b| i16::from_le_bytes([b[0], b[1]]) as f32 / 32768.0)
                .collect();
            print(det.push(&samples)?)?;
        }
    } else {
        let clip = rnnkit::audio::read_wav(
            &args.input,
            &rnnkit::audio::WavLimits {
                max_seconds: 24.0 * 3600.0,
            },
        )?;
        let samples = if clip.sample_rate == rate {
            clip.samples
        } else {
            rnnkit::audio::resample(&clip.samples, clip.sample_rate, rate)?
        };
        for part in samples.chunks(chunk) {
            print(det.push(part)?)?;
        }
    }
    print(det.finish()?)?;
    Ok(())
}
