//! One recording as an audio model sees it, in three stacked panels over a shared time axis:
//! the waveform, its log-mel spectrogram, and the features the model reads (after
//! normalization). Looking at them is how one finds a clipped recording, silence the model
//! reads as a class, or a normalization that flattened everything.
//!
//! The heatmaps are painted pixel by pixel (each pixel takes the frame and band under it), so a
//! long recording costs the same as a short one.

use super::line::DrawResult;
use super::style::{self, FAMILY, fmt_num, fmt_tick};
use crate::error::{Error, Result};
use ndarray::Array2;
use plotters::coord::Shift;
use plotters::prelude::*;
use std::path::Path;

/// The three-panel picture of one clip.
///
/// ```
/// use ndarray::Array2;
/// use rnnkit::plot::AudioExampleChart;
/// let wave: Vec<f32> = (0..8000).map(|i| (i as f32 * 0.3).sin() * 0.5).collect();
/// let mel = Array2::from_shape_fn((98, 40), |(t, b)| (t + b) as f32); // [frames, bands]
/// let feats = Array2::<f32>::zeros((98, 39));
/// let rgb = AudioExampleChart::new("7_theo_3.wav: true 7, predicted 7 (0.99)", 8000, &wave)
///     .spectrogram(mel, 0.01)
///     .features(feats, 0.01)
///     .to_rgb()
///     .unwrap();
/// assert_eq!(rgb.len(), 3 * 1000 * 900);
/// ```
#[derive(Clone, Debug)]
pub struct AudioExampleChart {
    title: String,
    rate: u32,
    samples: Vec<f32>,
    spectrogram: Option<(Array2<f32>, f64)>,
    features: Option<(Array2<f32>, f64)>,
    size: (u32, u32),
}

impl AudioExampleChart {
    /// A chart of `samples` at `rate` Hz, 1000×900 pixels.
    pub fn new(title: impl Into<String>, rate: u32, samples: &[f32]) -> Self {
        AudioExampleChart {
            title: title.into(),
            rate,
            samples: samples.to_vec(),
            spectrogram: None,
            features: None,
            size: (1000, 900),
        }
    }

    /// The log-mel energies `[frames, bands]`, frames `hop_s` seconds apart.
    pub fn spectrogram(mut self, log_mel: Array2<f32>, hop_s: f64) -> Self {
        self.spectrogram = Some((log_mel, hop_s));
        self
    }

    /// The model's input `[frames, dims]`, frames `hop_s` seconds apart.
    pub fn features(mut self, features: Array2<f32>, hop_s: f64) -> Self {
        self.features = Some((features, hop_s));
        self
    }

    /// The image size in pixels (default 1000×900).
    pub fn size(mut self, width: u32, height: u32) -> Self {
        self.size = (width, height);
        self
    }

    /// Draws the chart into an RGB buffer, `3 * width * height` bytes, row-major.
    ///
    /// Errors ([`Error::Config`]): no samples, a rate of 0, a panel without frames or with a
    /// hop that is not positive.
    pub fn to_rgb(&self) -> Result<Vec<u8>> {
        let what = format!("audio chart \"{}\"", self.title);
        if self.samples.is_empty() || self.rate == 0 {
            return Err(Error::Config(format!(
                "{what}: needs samples and a sample rate above 0"
            )));
        }
        for (name, panel) in [
            ("spectrogram", &self.spectrogram),
            ("features", &self.features),
        ] {
            if let Some((x, hop)) = panel
                && (x.is_empty() || !(*hop > 0.0 && hop.is_finite()))
            {
                return Err(Error::Config(format!(
                    "{what}: the {name} panel needs frames and a positive hop"
                )));
            }
        }
        style::render(self.size, &what, |root| self.draw(root))
    }

    /// Draws the chart and writes it as a PNG file (the path must end in `.png`).
    ///
    /// Errors: those of [`AudioExampleChart::to_rgb`]; [`Error::Io`] naming the path.
    pub fn save_png(&self, path: impl AsRef<Path>) -> Result<()> {
        let rgb = self.to_rgb()?;
        style::save_png(path.as_ref(), self.size, &rgb)
    }

    fn draw(&self, root: &DrawingArea<BitMapBackend<'_>, Shift>) -> DrawResult {
        root.fill(&WHITE)?;
        let root_titled = root.titled(&self.title, (FAMILY, 24))?;
        let seconds = self.samples.len() as f64 / self.rate as f64;
        let mut panels = 1;
        panels += usize::from(self.spectrogram.is_some()) + usize::from(self.features.is_some());
        let areas = root_titled.split_evenly((panels, 1));
        let mut areas = areas.iter();
        let wave_area = areas.next().expect("one panel at least");
        self.draw_wave(wave_area, seconds)?;
        if let Some((x, hop)) = &self.spectrogram {
            let area = areas.next().expect("a panel per part");
            draw_heatmap(
                root,
                area,
                x,
                *hop,
                seconds,
                "log-mel spectrogram",
                "mel band",
            )?;
        }
        if let Some((x, hop)) = &self.features {
            let area = areas.next().expect("a panel per part");
            draw_heatmap(
                root,
                area,
                x,
                *hop,
                seconds,
                "model input (normalized)",
                "feature",
            )?;
        }
        Ok(())
    }

    fn draw_wave(&self, area: &DrawingArea<BitMapBackend<'_>, Shift>, seconds: f64) -> DrawResult {
        let peak = self
            .samples
            .iter()
            .fold(0.0f32, |m, v| m.max(v.abs()))
            .max(1e-3) as f64;
        let mut chart = ChartBuilder::on(area)
            .caption("waveform", (FAMILY, 18))
            .margin(8)
            .margin_right(30)
            .x_label_area_size(36)
            .y_label_area_size(80)
            .build_cartesian_2d(0.0..seconds, -peak * 1.05..peak * 1.05)?;
        chart
            .configure_mesh()
            .x_desc("time (s)")
            .y_desc("amplitude")
            .axis_desc_style((FAMILY, 16))
            .label_style((FAMILY, 14))
            .bold_line_style(style::GRID_BOLD)
            .light_line_style(style::GRID_LIGHT)
            .x_label_formatter(&|v| fmt_num(*v))
            .y_label_formatter(&|v| fmt_tick(*v, peak, 2.0 * peak))
            .draw()?;
        // A min/max envelope per pixel column: every peak shows however long the clip.
        let (px, _) = chart.plotting_area().get_pixel_range();
        let columns = (px.end - px.start).max(1) as usize;
        let per = self.samples.len().div_ceil(columns).max(1);
        let dt = 1.0 / self.rate as f64;
        let color = style::PALETTE[0];
        let n = self.samples.len();
        chart.draw_series((0..n.div_ceil(per)).map(|k| {
            // One sample past the column as well, so neighbouring columns join up.
            let c = &self.samples[k * per..((k + 1) * per + 1).min(n)];
            let lo = c.iter().copied().fold(f32::INFINITY, f32::min) as f64;
            let hi = c.iter().copied().fold(f32::NEG_INFINITY, f32::max) as f64;
            let t = (k * per) as f64 * dt;
            PathElement::new(vec![(t, lo), (t, hi)], color.stroke_width(1))
        }))?;
        Ok(())
    }
}

/// A `[frames, rows]` heatmap on `area`, painted on `root` (whose pixels are absolute).
fn draw_heatmap(
    root: &DrawingArea<BitMapBackend<'_>, Shift>,
    area: &DrawingArea<BitMapBackend<'_>, Shift>,
    x: &Array2<f32>,
    hop: f64,
    seconds: f64,
    caption: &str,
    y_desc: &str,
) -> DrawResult {
    let (frames, rows) = x.dim();
    let span = seconds.max(frames as f64 * hop);
    let mut chart = ChartBuilder::on(area)
        .caption(caption, (FAMILY, 18))
        .margin(8)
        .margin_right(30)
        .x_label_area_size(36)
        .y_label_area_size(80)
        .build_cartesian_2d(0.0..span, 0.0..rows as f64)?;
    chart
        .configure_mesh()
        .disable_mesh()
        .x_desc("time (s)")
        .y_desc(y_desc)
        .axis_desc_style((FAMILY, 16))
        .label_style((FAMILY, 14))
        .x_label_formatter(&|v| fmt_num(*v))
        .y_label_formatter(&|v| fmt_num(*v))
        .draw()?;
    let (lo, hi) = color_range(x);
    let (px, py) = chart.plotting_area().get_pixel_range();
    let (w, h) = ((px.end - px.start).max(1), (py.end - py.start).max(1));
    for j in 0..h {
        // Row 0 at the bottom.
        let row = ((h - 1 - j) as usize * rows / h as usize).min(rows - 1);
        for i in 0..w {
            let t = (i as f64 + 0.5) / w as f64 * span;
            let frame = (t / hop) as usize;
            let color = if frame < frames {
                viridis(((x[[frame, row]] - lo) / (hi - lo)) as f64)
            } else {
                WHITE
            };
            root.draw_pixel((px.start + i, py.start + j), &color)?;
        }
    }
    Ok(())
}

/// The colour scale's ends: the 2nd percentile to the maximum of the finite values, so a few
/// silent frames (log energy near the floor) do not wash out the rest.
fn color_range(x: &Array2<f32>) -> (f32, f32) {
    let mut v: Vec<f32> = x.iter().copied().filter(|v| v.is_finite()).collect();
    if v.is_empty() {
        return (0.0, 1.0);
    }
    v.sort_by(f32::total_cmp);
    let lo = v[v.len() * 2 / 100];
    let hi = v[v.len() - 1];
    if hi > lo {
        (lo, hi)
    } else {
        (lo - 0.5, lo + 0.5)
    }
}

/// matplotlib's viridis at five stops, linearly between them, for `t` in `[0, 1]`.
fn viridis(t: f64) -> RGBColor {
    const STOPS: [[f64; 3]; 5] = [
        [68.0, 1.0, 84.0],
        [59.0, 82.0, 139.0],
        [33.0, 145.0, 140.0],
        [94.0, 201.0, 98.0],
        [253.0, 231.0, 37.0],
    ];
    let t = if t.is_finite() {
        t.clamp(0.0, 1.0)
    } else {
        0.0
    };
    let pos = t * 4.0;
    let k = (pos.floor() as usize).min(3);
    let u = pos - k as f64;
    let mix = |c: usize| (STOPS[k][c] + u * (STOPS[k + 1][c] - STOPS[k][c])).round() as u8;
    RGBColor(mix(0), mix(1), mix(2))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_input_is_an_error() {
        assert!(AudioExampleChart::new("t", 8000, &[]).to_rgb().is_err());
        assert!(AudioExampleChart::new("t", 0, &[0.1]).to_rgb().is_err());
        let chart = AudioExampleChart::new("t", 8000, &[0.1; 100]);
        assert!(
            chart
                .clone()
                .spectrogram(Array2::zeros((0, 4)), 0.01)
                .to_rgb()
                .is_err()
        );
        assert!(chart.features(Array2::zeros((3, 4)), 0.0).to_rgb().is_err());
    }

    #[test]
    fn heatmap_pixels_follow_the_values() {
        // Energy only in the top band of the second half: the top-right of the spectrogram
        // panel is bright, the bottom-left dark.
        let mut mel = Array2::<f32>::zeros((100, 10));
        mel.slice_mut(ndarray::s![50.., 9]).fill(10.0);
        let (w, h) = (600u32, 400u32);
        let rgb = AudioExampleChart::new("t", 1000, &[0.0; 1000])
            .spectrogram(mel, 0.01)
            .size(w, h)
            .to_rgb()
            .unwrap();
        let pixel = |x: u32, y: u32| {
            let i = 3 * (y * w + x) as usize;
            [rgb[i], rgb[i + 1], rgb[i + 2]]
        };
        let yellowish =
            (0..w).any(|x| (h / 2..h).any(|y| pixel(x, y)[0] > 240 && pixel(x, y)[2] < 60));
        assert!(yellowish, "the bright band should be painted");
        assert_eq!(viridis(0.0), RGBColor(68, 1, 84));
        assert_eq!(viridis(1.0), RGBColor(253, 231, 37));
    }
}
