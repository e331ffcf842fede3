//! Streaming detection with a trained audio classifier: samples in as they arrive, time-stamped
//! detections out, one recurrent step per 10 ms frame.
//!
//! An energy gate finds where speech starts and ends (frames louder than `vad_db` dBFS, with
//! `hangover_frames` of quiet before a segment counts as over). Each segment runs through the
//! model from a fresh state, one frame per step. Features are computed frame by frame; deltas
//! wait for the frames they need (2 per order), with the segment's edges repeated as offline.
//! The pooled output (the running mean, max, last step, or attention's running softmax:
//! [`OnlinePool`]) goes through the head after every frame. A moving average of the last `smooth_frames` posteriors is the score. A segment is
//! reported once: at its end if the final score reaches `threshold`, or, with `min_frames` set,
//! as soon as the score reaches it after that many frames (earlier, less accurate). Each detection carries the time it was emitted, so latency can
//! be measured against the true boundaries.
//!
//! Over a whole segment, a mean-pooled model sees exactly the features and the pooling that
//! offline classification of the trimmed segment sees.

use super::audio::LoadedAudio;
use crate::audio::{FeatureConfig, FeatureExtractor, Normalize, with_deltas};
use crate::error::{Error, Result};
use crate::models::OnlinePool;
use crate::recurrent::RnnState;
use ndarray::Array2;

/// How the stream is segmented and scored.
///
/// ```
/// let c = rnnkit::tasks::audio_stream::StreamConfig::default();
/// assert_eq!((c.smooth_frames, c.threshold), (5, 0.5));
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct StreamConfig {
    /// A frame is speech when its RMS level is above this, in dB relative to full scale.
    pub vad_db: f32,
    /// Quiet frames after which a segment is over.
    pub hangover_frames: usize,
    /// Posteriors averaged into the score.
    pub smooth_frames: usize,
    /// Score a detection needs.
    pub threshold: f32,
    /// Early detections: after this many frames of a segment, a score at `threshold` is
    /// reported at once. `None` (the default) decides only at the segment's end, on the whole
    /// segment, as offline classification does.
    pub min_frames: Option<usize>,
}

impl Default for StreamConfig {
    fn default() -> Self {
        StreamConfig {
            vad_db: -55.0,
            hangover_frames: 15,
            smooth_frames: 5,
            threshold: 0.5,
            min_frames: None,
        }
    }
}

/// One detection.
#[derive(Clone, Debug, PartialEq)]
pub struct Detection {
    /// Where the segment starts, in seconds from the start of the stream.
    pub start_s: f64,
    /// Where it ends (its last speech frame), in seconds.
    pub end_s: f64,
    /// The class.
    pub label: String,
    /// Its smoothed posterior when emitted.
    pub prob: f32,
    /// When the detection was emitted: the stream time of the frame that decided it.
    pub emitted_s: f64,
}

/// The state of one speech segment.
struct Segment {
    start_frame: usize,
    last_speech: usize,
    statics: Vec<Vec<f32>>,
    fed: usize,
    state: RnnState,
    pooled: OnlinePool,
    recent: Vec<Vec<f32>>,
    emitted: bool,
}

/// Runs a trained, unidirectional audio classifier over a stream.
///
/// ```no_run
/// use rnnkit::run::{RunDir, Weights};
/// use rnnkit::tasks::audio::LoadedAudio;
/// use rnnkit::tasks::audio_stream::{StreamConfig, StreamDetector};
/// # fn main() -> rnnkit::Result<()> {
/// let run = RunDir::open("runs/fsdd-digits")?;
/// let config = rnnkit::config_file::read_run_config(&run)?.try_into().expect("an audio run");
/// let model = LoadedAudio::load(&run, config, Weights::Best)?;
/// let mut det = StreamDetector::new(&model, StreamConfig::default())?;
/// let samples = vec![0.0f32; 8000]; // a second of silence at 8 kHz
/// for d in det.push(&samples)?.into_iter().chain(det.finish()?) {
///     println!("{:.2}-{:.2} s: {} ({:.2})", d.start_s, d.end_s, d.label, d.prob);
/// }
/// # Ok(())
/// # }
/// ```
pub struct StreamDetector<'m> {
    model: &'m LoadedAudio,
    config: StreamConfig,
    statics: FeatureExtractor,
    deltas: usize,
    window: usize,
    hop: usize,
    rate: f64,
    /// Samples not yet consumed by a frame (the next frame starts at `buf[0]`).
    buf: Vec<f32>,
    /// Frames seen so far.
    frame: usize,
    /// Quiet frames' static features, held while a segment may still go on.
    pending: Vec<Vec<f32>>,
    segment: Option<Segment>,
    /// Seconds of CPU spent in features and model steps, and frames processed.
    pub busy: (std::time::Duration, usize),
}

impl<'m> StreamDetector<'m> {
    /// A detector for `model`.
    ///
    /// # Errors
    /// A bidirectional model (it needs the whole recording), or librosa-style features (their
    /// centred frames and whole-clip `top_db` floor do not stream).
    pub fn new(model: &'m LoadedAudio, config: StreamConfig) -> Result<Self> {
        if model.config.model.bidirectional {
            return Err(Error::Config(
                "streaming needs a unidirectional model (model.bidirectional = false)".into(),
            ));
        }
        let f = &model.front.features;
        if f.style != crate::audio::FeatureStyle::Kaldi {
            return Err(Error::Config(
                "streaming needs data.features.style = \"kaldi\" (librosa's centred frames and \
                 whole-clip top_db floor need the whole recording)"
                    .into(),
            ));
        }
        if model.front.normalize == Normalize::Utterance {
            return Err(Error::Config(
                "streaming needs data.normalize = \"global\" or \"none\" (per-utterance \
                 statistics need the whole recording)"
                    .into(),
            ));
        }
        let statics = FeatureExtractor::new(
            &FeatureConfig {
                deltas: 0,
                ..f.clone()
            },
            model.front.sample_rate,
        )?;
        Ok(StreamDetector {
            window: statics.frame_len(),
            hop: statics.hop(),
            rate: model.front.sample_rate as f64,
            deltas: f.deltas,
            statics,
            model,
            config,
            buf: Vec::new(),
            frame: 0,
            pending: Vec::new(),
            segment: None,
            busy: (std::time::Duration::ZERO, 0),
        })
    }

    /// The frames of delay the deltas add before a frame reaches the model.
    pub fn lookahead(&self) -> usize {
        2 * self.deltas
    }

    /// Feeds samples (mono, at the model's rate, in `[-1, 1]`); returns the detections they
    /// completed.
    ///
    /// # Errors
    /// A model step that fails (an internal error).
    pub fn push(&mut self, samples: &[f32]) -> Result<Vec<Detection>> {
        self.buf.extend_from_slice(samples);
        let mut out = Vec::new();
        let mut used = 0;
        while self.buf.len() - used >= self.window {
            let t0 = std::time::Instant::now();
            let frame = &self.buf[used..used + self.window];
            let rms = (frame.iter().map(|v| v * v).sum::<f32>() / frame.len() as f32).sqrt();
            let loud = 20.0 * rms.max(1e-10).log10() > self.config.vad_db;
            let feats = self.statics.compute(frame, self.frame as u64);
            let row = feats.row(0).to_vec();
            self.step_frame(row, loud, &mut out)?;
            self.busy.0 += t0.elapsed();
            self.busy.1 += 1;
            self.frame += 1;
            used += self.hop;
        }
        self.buf.drain(..used.min(self.buf.len()));
        Ok(out)
    }

    /// Ends the stream: the segment in progress ends at its last speech frame.
    ///
    /// # Errors
    /// As [`StreamDetector::push`].
    pub fn finish(&mut self) -> Result<Vec<Detection>> {
        let mut out = Vec::new();
        self.end_segment(&mut out)?;
        Ok(out)
    }

    fn seconds(&self, frame: usize) -> f64 {
        (frame * self.hop) as f64 / self.rate
    }

    fn step_frame(&mut self, row: Vec<f32>, loud: bool, out: &mut Vec<Detection>) -> Result<()> {
        if loud {
            if self.segment.is_none() {
                self.pending.clear();
                self.segment = Some(Segment {
                    start_frame: self.frame,
                    last_speech: self.frame,
                    statics: Vec::new(),
                    fed: 0,
                    state: RnnState::zeros(self.model.model.rnn().config(), 1),
                    pooled: self.model.model.online_pool(),
                    recent: Vec::new(),
                    emitted: false,
                });
            }
            // Quiet frames inside a segment belong to it after all.
            let held: Vec<Vec<f32>> = self.pending.drain(..).collect();
            for r in held {
                self.add_static(r, out)?;
            }
            self.add_static(row, out)?;
            if let Some(seg) = &mut self.segment {
                seg.last_speech = self.frame;
            }
        } else if let Some(seg) = &self.segment {
            if self.frame - seg.last_speech > self.config.hangover_frames {
                self.end_segment(out)?;
            } else {
                self.pending.push(row);
            }
        }
        Ok(())
    }

    /// Appends a static frame to the segment and feeds every frame whose deltas are known.
    fn add_static(&mut self, row: Vec<f32>, out: &mut Vec<Detection>) -> Result<()> {
        let look = self.lookahead();
        self.segment
            .as_mut()
            .expect("a segment is open")
            .statics
            .push(row);
        while self
            .segment
            .as_ref()
            .is_some_and(|s| s.fed + look < s.statics.len())
        {
            self.feed_next(out)?;
        }
        Ok(())
    }

    /// The full feature frame `t` of the segment from its statics (edges repeated at the
    /// segment's start, and at its end once it has ended), normalized.
    fn features_at(&self, seg: &Segment, t: usize) -> Vec<f32> {
        let look = self.lookahead();
        let lo = t.saturating_sub(look);
        let hi = (t + look + 1).min(seg.statics.len());
        let dim = seg.statics[0].len();
        let mut x = Array2::<f32>::zeros((hi - lo, dim));
        for (mut r, s) in x.outer_iter_mut().zip(&seg.statics[lo..hi]) {
            r.assign(&ndarray::ArrayView1::from(&s[..]));
        }
        let mut full = with_deltas(x, self.deltas);
        let front = &self.model.front;
        if let (Normalize::Global, Some(c)) = (front.normalize, &front.cmvn) {
            c.apply(&mut full);
        }
        full.row(t - lo).to_vec()
    }

    /// Steps the model on the segment's next frame and scores it.
    fn feed_next(&mut self, out: &mut Vec<Detection>) -> Result<()> {
        let mut seg = self.segment.take().expect("a segment is open");
        let x = self.features_at(&seg, seg.fed);
        seg.fed += 1;
        let classifier = &self.model.model;
        let h = classifier.rnn().step(
            Array2::from_shape_vec((1, x.len()), x)
                .map_err(|e| Error::Shape(e.to_string()))?
                .view(),
            &mut seg.state,
        )?;
        seg.pooled
            .push(h.row(0).to_owned(), classifier.attention())?;
        let pooled = seg.pooled.value().expect("one step was pushed");
        let logits = classifier.head_logits(pooled.view())?;
        let row = logits.view();
        let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let e: Vec<f32> = row.iter().map(|z| (z - max).exp()).collect();
        let sum: f32 = e.iter().sum();
        seg.recent.push(e.iter().map(|v| v / sum).collect());
        let keep = self.config.smooth_frames.max(1);
        if seg.recent.len() > keep {
            seg.recent.remove(0);
        }
        if !seg.emitted
            && self
                .config
                .min_frames
                .is_some_and(|n| seg.pooled.steps() >= n)
            && let Some(d) = self.decide(&seg)
        {
            seg.emitted = true;
            out.push(d);
        }
        self.segment = Some(seg);
        Ok(())
    }

    /// The class with the highest smoothed posterior, and that posterior.
    fn score(&self, seg: &Segment) -> (String, f32) {
        let classes = self.model.classes.len();
        let mut avg = vec![0.0f32; classes];
        for p in &seg.recent {
            for (a, v) in avg.iter_mut().zip(p) {
                *a += v / seg.recent.len() as f32;
            }
        }
        let best = crate::train::confusion::argmax(avg.iter().copied());
        (self.model.classes[best].clone(), avg[best])
    }

    /// Feeds the frames left (edges repeated at the end, as offline), then reports the
    /// segment if it was not reported yet and its final score reaches the threshold.
    fn end_segment(&mut self, out: &mut Vec<Detection>) -> Result<()> {
        self.pending.clear();
        while self
            .segment
            .as_ref()
            .is_some_and(|s| s.fed < s.statics.len())
        {
            self.feed_next(out)?;
        }
        if let Some(seg) = self.segment.take()
            && !seg.emitted
            && seg.pooled.steps() > 0
        {
            out.extend(self.decide(&seg));
        }
        Ok(())
    }

    /// The segment's detection now, if its score reaches the threshold. A frame's time span
    /// ends a window's length after its start.
    fn decide(&self, seg: &Segment) -> Option<Detection> {
        let (label, prob) = self.score(seg);
        let window_s = self.window as f64 / self.rate;
        (prob >= self.config.threshold).then(|| Detection {
            start_s: self.seconds(seg.start_frame),
            end_s: self.seconds(seg.last_speech + 1) + window_s,
            label,
            prob,
            emitted_s: self.seconds(self.frame) + window_s,
        })
    }
}
