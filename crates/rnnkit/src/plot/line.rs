//! Line charts of training curves: several named series, an optional log-scale y axis, and
//! labelled horizontal reference lines (a clipping threshold, a baseline loss).

use super::style::{
    self, FAMILY, GRID_BOLD, GRID_LIGHT, LogTicks, PALETTE, REFERENCE, fmt_num, fmt_tick, log_ticks,
};
use crate::error::{Error, Result};
use plotters::coord::Shift;
use plotters::coord::ranged1d::{Ranged, ValueFormatter};
use plotters::coord::types::RangedCoordf64;
use plotters::element::DashedPathElement;
use plotters::prelude::*;
use std::ops::Range;
use std::path::Path;

/// Series with at most this many points get a marker on each point (a validation loss measured
/// once per epoch shows where it was measured).
const MARKERS_UP_TO: usize = 60;

/// A line chart: named `(x, y)` series, drawn as lines in distinguishable colours.
///
/// Non-finite points are skipped (the line breaks there), and so are non-positive `y` on a log
/// scale. A legend appears when there is more than one series.
///
/// ```
/// use rnnkit::plot::LineChart;
/// let dir = std::env::temp_dir().join("rnnkit-doc-line");
/// std::fs::create_dir_all(&dir).unwrap();
/// let train: Vec<(f64, f64)> = (1..=20).map(|e| (e as f64, 2.0 / e as f64)).collect();
/// let val: Vec<(f64, f64)> = (1..=20).map(|e| (e as f64, 0.3 + 1.8 / e as f64)).collect();
/// LineChart::new("Loss per epoch")
///     .x_label("epoch")
///     .y_label("loss (nats/token)")
///     .series("train", train)
///     .series("validation", val)
///     .reference_line("baseline (predict the mean)", 1.2)
///     .save_png(dir.join("loss.png"))
///     .unwrap();
/// assert!(dir.join("loss.png").exists());
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct LineChart {
    title: String,
    x_label: String,
    y_label: String,
    series: Vec<(String, Vec<(f64, f64)>)>,
    references: Vec<(String, f64)>,
    log_y: bool,
    size: (u32, u32),
}

impl LineChart {
    /// An empty chart with a title, axes labelled `x` and `y`, 1000×600 pixels.
    pub fn new(title: impl Into<String>) -> Self {
        LineChart {
            title: title.into(),
            x_label: "x".into(),
            y_label: "y".into(),
            series: Vec::new(),
            references: Vec::new(),
            log_y: false,
            size: style::DEFAULT_SIZE,
        }
    }

    /// The x axis label; include the unit (`step`, `epoch`, `steps back in time`).
    pub fn x_label(mut self, label: impl Into<String>) -> Self {
        self.x_label = label.into();
        self
    }

    /// The y axis label; include the unit (`loss (nats/token)`, `‖g‖₂`).
    pub fn y_label(mut self, label: impl Into<String>) -> Self {
        self.y_label = label.into();
        self
    }

    /// Adds a named series of `(x, y)` points, drawn in the order given.
    pub fn series(
        mut self,
        name: impl Into<String>,
        points: impl IntoIterator<Item = (f64, f64)>,
    ) -> Self {
        self.series
            .push((name.into(), points.into_iter().collect()));
        self
    }

    /// Draws the y axis on a log scale (gradient norms, learning rates); non-positive `y` are
    /// skipped.
    pub fn log_y(mut self, log: bool) -> Self {
        self.log_y = log;
        self
    }

    /// Adds a dashed horizontal line at `y` with a label written on it (the clipping
    /// threshold, the loss of a baseline).
    pub fn reference_line(mut self, label: impl Into<String>, y: f64) -> Self {
        self.references.push((label.into(), y));
        self
    }

    /// The image size in pixels (default 1000×600).
    pub fn size(mut self, width: u32, height: u32) -> Self {
        self.size = (width, height);
        self
    }

    /// Draws the chart into an RGB buffer, `3 * width * height` bytes, row-major.
    ///
    /// Errors ([`Error::Config`]): no series, a series with no points, no drawable point at all
    /// (every point non-finite, or non-positive on a log scale), a size out of range.
    pub fn to_rgb(&self) -> Result<Vec<u8>> {
        let what = format!("line chart \"{}\"", self.title);
        if self.series.is_empty() {
            return Err(Error::Config(format!("{what}: add at least one series")));
        }
        if let Some((name, _)) = self.series.iter().find(|(_, p)| p.is_empty()) {
            return Err(Error::Config(format!(
                "{what}: series \"{name}\" has no points"
            )));
        }
        let keep =
            |&(x, y): &(f64, f64)| x.is_finite() && y.is_finite() && (!self.log_y || y > 0.0);
        let all: Vec<(f64, f64)> = self
            .series
            .iter()
            .flat_map(|(_, p)| p.iter().copied())
            .filter(keep)
            .collect();
        if all.is_empty() {
            let why = if self.log_y {
                "finite and positive (log scale)"
            } else {
                "finite"
            };
            return Err(Error::Config(format!("{what}: no point is {why}")));
        }
        let refs: Vec<f64> = self
            .references
            .iter()
            .map(|r| r.1)
            .filter(|&y| y.is_finite() && (!self.log_y || y > 0.0))
            .collect();
        let x = padded_range(all.iter().map(|p| p.0), false, 0.0);
        let y = padded_range(all.iter().map(|p| p.1).chain(refs), self.log_y, 0.05);
        style::render(self.size, &what, |root| {
            if self.log_y {
                // Our own ticks: plotters' log axis leaves some ranges below 1 unlabelled.
                let ticks = log_ticks(y.start, y.end);
                let coord = LogCoord::<f64>::from(y.log_scale())
                    .with_key_points(ticks.major.iter().map(|t| t.0).collect())
                    .with_light_points(ticks.minor.iter().copied());
                self.draw(root, x, coord, Some(&ticks))
            } else {
                self.draw(root, x, RangedCoordf64::from(y), None)
            }
        })
    }

    /// Draws the chart and writes it as a PNG file (the path must end in `.png`).
    ///
    /// Errors: those of [`LineChart::to_rgb`]; [`Error::Io`] naming the path when the file cannot
    /// be written.
    pub fn save_png(&self, path: impl AsRef<Path>) -> Result<()> {
        let rgb = self.to_rgb()?;
        style::save_png(path.as_ref(), self.size, &rgb)
    }

    fn draw<Y>(
        &self,
        root: &DrawingArea<BitMapBackend<'_>, Shift>,
        x: Range<f64>,
        y: Y,
        log_ticks: Option<&LogTicks>,
    ) -> DrawResult
    where
        Y: Ranged<ValueType = f64> + ValueFormatter<f64>,
    {
        root.fill(&WHITE)?;
        let (x0, x1) = (x.start, x.end);
        let y_range = y.range();
        let x_scale = x0.abs().max(x1.abs());
        let x_width = x1 - x0;
        let y_scale = y_range.start.abs().max(y_range.end.abs());
        let y_width = y_range.end - y_range.start;
        let mut chart = ChartBuilder::on(root)
            .caption(&self.title, (FAMILY, 26))
            .margin(18)
            .margin_right(30)
            .x_label_area_size(60)
            .y_label_area_size(95)
            .build_cartesian_2d(x, y)?;
        chart
            .configure_mesh()
            .x_desc(&self.x_label)
            .y_desc(&self.y_label)
            .axis_desc_style((FAMILY, 20))
            .label_style((FAMILY, 16))
            .bold_line_style(GRID_BOLD)
            .light_line_style(GRID_LIGHT)
            .x_label_formatter(&|v| fmt_tick(*v, x_scale, x_width))
            .y_label_formatter(&|v| match log_ticks {
                // A log axis labels each tick on its own terms (0.02, 1, 1e-4).
                Some(ticks) => ticks
                    .major
                    .iter()
                    .find(|t| t.0 == *v)
                    .map_or_else(|| fmt_num(*v), |t| t.1.clone()),
                None => fmt_tick(*v, y_scale, y_width),
            })
            .draw()?;

        for (k, (name, points)) in self.series.iter().enumerate() {
            let color = PALETTE[k % PALETTE.len()];
            let segments = segments(points, self.log_y);
            let mut first = true;
            for seg in segments
                .iter()
                .chain(std::iter::once(&Vec::new()).filter(|_| segments.is_empty()))
            {
                let anno = chart
                    .draw_series(LineSeries::new(seg.iter().copied(), color.stroke_width(2)))?;
                if first {
                    anno.label(name.as_str()).legend(move |(lx, ly)| {
                        PathElement::new(vec![(lx, ly), (lx + 24, ly)], color.stroke_width(3))
                    });
                    first = false;
                }
                if points.len() <= MARKERS_UP_TO {
                    chart.draw_series(seg.iter().map(|&p| Circle::new(p, 3, color.filled())))?;
                }
            }
        }

        for (k, (label, y)) in self.references.iter().enumerate() {
            if !y.is_finite() || (self.log_y && *y <= 0.0) {
                continue;
            }
            let color = REFERENCE[k % REFERENCE.len()];
            // Named in the legend rather than on the line, where it would cross the curves.
            chart
                .draw_series(DashedLineSeries::new(
                    vec![(x0, *y), (x1, *y)],
                    10,
                    6,
                    color.stroke_width(2),
                ))?
                .label(label.as_str())
                .legend(move |(lx, ly)| {
                    DashedPathElement::new(
                        vec![(lx, ly), (lx + 24, ly)],
                        7,
                        4,
                        color.stroke_width(2),
                    )
                });
        }

        if self.series.len() + self.references.len() > 1 {
            let corner = emptiest_corner(
                self.series.iter().flat_map(|s| &s.1),
                x0..x1,
                y_range,
                self.log_y,
            );
            chart
                .configure_series_labels()
                .position(corner)
                .background_style(WHITE.mix(0.85))
                .border_style(BLACK.mix(0.4))
                .label_font((FAMILY, 16))
                .draw()?;
        }
        Ok(())
    }
}

pub(crate) type DrawResult = std::result::Result<(), Box<dyn std::error::Error>>;

/// The legend's corner: the one with the fewest points under it (upper right on a tie), so the
/// legend hides as little of the curves as it can.
pub(crate) fn emptiest_corner<'p>(
    points: impl Iterator<Item = &'p (f64, f64)>,
    x: Range<f64>,
    y: Range<f64>,
    log_y: bool,
) -> SeriesLabelPosition {
    let ty = |v: f64| if log_y { v.log10() } else { v };
    let (y0, y1) = (ty(y.start), ty(y.end));
    let mut counts = [0usize; 4]; // upper right, upper left, lower right, lower left
    for &(px, py) in points {
        if !(px.is_finite() && py.is_finite()) || (log_y && py <= 0.0) {
            continue;
        }
        let u = (px - x.start) / (x.end - x.start);
        let v = (ty(py) - y0) / (y1 - y0);
        let (right, left, up, down) = (u > 0.6, u < 0.4, v > 0.7, v < 0.3);
        for (k, hit) in [right && up, left && up, right && down, left && down]
            .into_iter()
            .enumerate()
        {
            counts[k] += usize::from(hit);
        }
    }
    let best = (0..4).min_by_key(|&k| (counts[k], k)).unwrap_or(0);
    [
        SeriesLabelPosition::UpperRight,
        SeriesLabelPosition::UpperLeft,
        SeriesLabelPosition::LowerRight,
        SeriesLabelPosition::LowerLeft,
    ][best]
        .clone()
}

/// The runs of drawable points: a non-finite point (or a non-positive `y` on a log scale) ends a
/// run, so the line shows a gap there instead of a jump.
pub(crate) fn segments(points: &[(f64, f64)], log_y: bool) -> Vec<Vec<(f64, f64)>> {
    let mut out = Vec::new();
    let mut run = Vec::new();
    for &(x, y) in points {
        if x.is_finite() && y.is_finite() && (!log_y || y > 0.0) {
            run.push((x, y));
        } else if !run.is_empty() {
            out.push(std::mem::take(&mut run));
        }
    }
    if !run.is_empty() {
        out.push(run);
    }
    out
}

/// The range of `values` widened by `pad` of its width on each side (multiplicatively on a log
/// scale); a single value gets a range around it.
pub(crate) fn padded_range(values: impl Iterator<Item = f64>, log: bool, pad: f64) -> Range<f64> {
    let (lo, hi) = values.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
        (lo.min(v), hi.max(v))
    });
    if log {
        let (l, h) = (lo.log10(), hi.log10());
        let (l, h) = if h - l < 1e-9 {
            (l - 0.5, h + 0.5)
        } else {
            (l - pad * (h - l), h + pad * (h - l))
        };
        return 10f64.powf(l)..10f64.powf(h);
    }
    if hi - lo < 1e-12 * lo.abs().max(1.0) {
        let d = (lo.abs() * 0.1).max(1.0);
        return lo - d..hi + d;
    }
    lo - pad * (hi - lo)..hi + pad * (hi - lo)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn non_finite_and_non_positive_points_break_the_line() {
        let p = [
            (0.0, 1.0),
            (1.0, f64::NAN),
            (2.0, 2.0),
            (3.0, -1.0),
            (4.0, 3.0),
        ];
        assert_eq!(
            segments(&p, false),
            vec![vec![(0.0, 1.0)], vec![(2.0, 2.0), (3.0, -1.0), (4.0, 3.0)]]
        );
        assert_eq!(segments(&p, true).len(), 3);
    }

    #[test]
    fn empty_series_and_undrawable_charts_are_errors() {
        let e = LineChart::new("t")
            .series("a", vec![])
            .to_rgb()
            .unwrap_err();
        assert!(e.to_string().contains("series \"a\" has no points"), "{e}");
        assert!(LineChart::new("t").to_rgb().is_err());
        let e = LineChart::new("t")
            .log_y(true)
            .series("a", vec![(0.0, -1.0)])
            .to_rgb()
            .unwrap_err();
        assert!(e.to_string().contains("positive"), "{e}");
    }

    #[test]
    fn ranges_are_padded_and_never_empty() {
        let r = padded_range([1.0, 1.0].into_iter(), false, 0.05);
        assert!(r.start < 1.0 && r.end > 1.0);
        let r = padded_range([0.01, 100.0].into_iter(), true, 0.0);
        assert!((r.start - 0.01).abs() < 1e-12 && (r.end - 100.0).abs() < 1e-9);
    }
}
