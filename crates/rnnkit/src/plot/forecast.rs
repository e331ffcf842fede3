//! Forecast charts: the true series over its whole span, the forecasts over the test span, and
//! where forecasting starts (a shaded span and a dashed line), optionally with interval bands.

use super::line::{DrawResult, emptiest_corner, padded_range, segments};
use super::style::{self, FAMILY, GRID_BOLD, GRID_LIGHT, PALETTE, fmt_tick};
use crate::error::{Error, Result};
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use std::path::Path;

/// A named series of points.
type Named<P> = (String, Vec<P>);

/// The colour of the truth: near-black, so forecasts in colour stand out against it.
const TRUTH: RGBColor = RGBColor(30, 30, 30);
/// The test span's shading.
const SPAN: RGBColor = RGBColor(236, 240, 247);

/// A forecast chart: truth (history and test span) as a dark line, forecasts in colour.
///
/// ```
/// use rnnkit::plot::ForecastChart;
/// let truth: Vec<(f64, f64)> = (0..120).map(|t| (t as f64, (t as f64 / 6.0).sin())).collect();
/// let fc: Vec<(f64, f64)> = (96..120).map(|t| (t as f64, 0.9 * (t as f64 / 6.0).sin())).collect();
/// let rgb = ForecastChart::new("Monthly series: LSTM forecast")
///     .x_label("month")
///     .y_label("value (scaled)")
///     .truth("observed", truth)
///     .forecast("LSTM", fc)
///     .forecast_start(96.0)
///     .to_rgb()
///     .unwrap();
/// assert_eq!(rgb.len(), 3 * 1000 * 600);
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct ForecastChart {
    title: String,
    x_label: String,
    y_label: String,
    truth: Option<Named<(f64, f64)>>,
    forecasts: Vec<Named<(f64, f64)>>,
    bands: Vec<Named<(f64, f64, f64)>>,
    start: Option<f64>,
    shade: bool,
    size: (u32, u32),
}

impl ForecastChart {
    /// An empty chart with a title, axes labelled `time` and `value`, 1000×600 pixels, the test
    /// span shaded.
    pub fn new(title: impl Into<String>) -> Self {
        ForecastChart {
            title: title.into(),
            x_label: "time".into(),
            y_label: "value".into(),
            truth: None,
            forecasts: Vec::new(),
            bands: Vec::new(),
            start: None,
            shade: true,
            size: style::DEFAULT_SIZE,
        }
    }

    /// The x axis label, with the unit (`month`, `time (h)`).
    pub fn x_label(mut self, label: impl Into<String>) -> Self {
        self.x_label = label.into();
        self
    }

    /// The y axis label, with the unit (`CO₂ (ppm)`).
    pub fn y_label(mut self, label: impl Into<String>) -> Self {
        self.y_label = label.into();
        self
    }

    /// The observed series, history and test span together (x: time values).
    pub fn truth(
        mut self,
        name: impl Into<String>,
        points: impl IntoIterator<Item = (f64, f64)>,
    ) -> Self {
        self.truth = Some((name.into(), points.into_iter().collect()));
        self
    }

    /// Adds a named forecast over the test span.
    pub fn forecast(
        mut self,
        name: impl Into<String>,
        points: impl IntoIterator<Item = (f64, f64)>,
    ) -> Self {
        self.forecasts
            .push((name.into(), points.into_iter().collect()));
        self
    }

    /// Adds a shaded band `(x, lower, upper)` (a prediction interval), coloured like the forecast
    /// of the same index.
    pub fn band(
        mut self,
        name: impl Into<String>,
        points: impl IntoIterator<Item = (f64, f64, f64)>,
    ) -> Self {
        self.bands.push((name.into(), points.into_iter().collect()));
        self
    }

    /// Where forecasting starts; default: the first x of the first forecast.
    pub fn forecast_start(mut self, x: f64) -> Self {
        self.start = Some(x);
        self
    }

    /// Whether to shade the test span (default true); the dashed start line is drawn either way.
    pub fn shade_test_span(mut self, shade: bool) -> Self {
        self.shade = shade;
        self
    }

    /// The image size in pixels (default 1000×600).
    pub fn size(mut self, width: u32, height: u32) -> Self {
        self.size = (width, height);
        self
    }

    /// Draws the chart into an RGB buffer, `3 * width * height` bytes, row-major.
    ///
    /// Errors ([`Error::Config`]): no truth, no forecast, an empty series, no finite point.
    pub fn to_rgb(&self) -> Result<Vec<u8>> {
        let what = format!("forecast chart \"{}\"", self.title);
        let Some((_, truth)) = &self.truth else {
            return Err(Error::Config(format!(
                "{what}: give the true series with .truth(...)"
            )));
        };
        if self.forecasts.is_empty() {
            return Err(Error::Config(format!("{what}: add at least one forecast")));
        }
        let named = std::iter::once(
            self.truth
                .as_ref()
                .map(|t| (&t.0, t.1.len()))
                .unwrap_or((&self.title, 0)),
        )
        .chain(self.forecasts.iter().map(|(n, p)| (n, p.len())))
        .chain(self.bands.iter().map(|(n, p)| (n, p.len())));
        for (name, n) in named {
            if n == 0 {
                return Err(Error::Config(format!(
                    "{what}: series \"{name}\" has no points"
                )));
            }
        }
        let finite = |&(x, y): &(f64, f64)| x.is_finite() && y.is_finite();
        let mut all: Vec<(f64, f64)> = truth
            .iter()
            .chain(self.forecasts.iter().flat_map(|f| &f.1))
            .copied()
            .filter(finite)
            .collect();
        for (_, b) in &self.bands {
            all.extend(
                b.iter()
                    .flat_map(|&(x, lo, hi)| [(x, lo), (x, hi)])
                    .filter(finite),
            );
        }
        if all.is_empty() {
            return Err(Error::Config(format!("{what}: no point is finite")));
        }
        let start = self.start.or_else(|| {
            self.forecasts[0]
                .1
                .iter()
                .copied()
                .find(finite)
                .map(|p| p.0)
        });
        let x = padded_range(
            all.iter()
                .map(|p| p.0)
                .chain(start.filter(|s| s.is_finite())),
            false,
            0.0,
        );
        let y = padded_range(all.iter().map(|p| p.1), false, 0.06);
        style::render(self.size, &what, |root| self.draw(root, x, y, start))
    }

    /// Draws the chart and writes it as a PNG file (the path must end in `.png`).
    ///
    /// Errors: those of [`ForecastChart::to_rgb`]; [`Error::Io`] naming the path.
    pub fn save_png(&self, path: impl AsRef<Path>) -> Result<()> {
        let rgb = self.to_rgb()?;
        style::save_png(path.as_ref(), self.size, &rgb)
    }

    fn draw(
        &self,
        root: &DrawingArea<BitMapBackend<'_>, Shift>,
        x: std::ops::Range<f64>,
        y: std::ops::Range<f64>,
        start: Option<f64>,
    ) -> DrawResult {
        root.fill(&WHITE)?;
        let (x1, y0, y1) = (x.end, y.start, y.end);
        let x_scale = x.start.abs().max(x1.abs());
        let x_width = x1 - x.start;
        let x_range = x.clone();
        let y_scale = y0.abs().max(y1.abs());
        let y_width = y1 - y0;
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
            .y_label_formatter(&|v| fmt_tick(*v, y_scale, y_width))
            .draw()?;

        if let Some(s) = start.filter(|s| s.is_finite()) {
            if self.shade {
                chart.draw_series(std::iter::once(Rectangle::new(
                    [(s, y0), (x1, y1)],
                    SPAN.filled(),
                )))?;
            }
            let grey = RGBColor(90, 90, 90);
            chart.draw_series(DashedLineSeries::new(
                vec![(s, y0), (s, y1)],
                8,
                6,
                grey.stroke_width(2),
            ))?;
            let at = chart.backend_coord(&(s, y1));
            let font = (FAMILY, 16)
                .into_font()
                .color(&grey)
                .pos(Pos::new(HPos::Left, VPos::Top));
            root.draw_text("forecast →", &font, (at.0 + 6, at.1 + 6))?;
        }

        for (k, (name, band)) in self.bands.iter().enumerate() {
            let color = PALETTE[k % PALETTE.len()];
            let ok: Vec<_> = band
                .iter()
                .copied()
                .filter(|(x, lo, hi)| x.is_finite() && lo.is_finite() && hi.is_finite())
                .collect();
            let outline: Vec<(f64, f64)> = ok
                .iter()
                .map(|p| (p.0, p.2))
                .chain(ok.iter().rev().map(|p| (p.0, p.1)))
                .collect();
            chart
                .draw_series(std::iter::once(Polygon::new(
                    outline,
                    color.mix(0.2).filled(),
                )))?
                .label(name.as_str())
                .legend(move |(lx, ly)| {
                    Rectangle::new([(lx, ly - 6), (lx + 24, ly + 6)], color.mix(0.2).filled())
                });
        }

        let truth = self.truth.iter().map(|t| (t, TRUTH));
        let forecasts =
            (self.forecasts.iter().enumerate()).map(|(k, f)| (f, PALETTE[k % PALETTE.len()]));
        for ((name, pts), color) in truth.chain(forecasts) {
            let segs = segments(pts, false);
            let mut first = true;
            for seg in segs
                .iter()
                .chain(std::iter::once(&Vec::new()).filter(|_| segs.is_empty()))
            {
                let anno = chart
                    .draw_series(LineSeries::new(seg.iter().copied(), color.stroke_width(2)))?;
                if first {
                    anno.label(name.as_str()).legend(move |(lx, ly)| {
                        PathElement::new(vec![(lx, ly), (lx + 24, ly)], color.stroke_width(3))
                    });
                    first = false;
                }
            }
        }
        let drawn = self
            .truth
            .iter()
            .flat_map(|t| &t.1)
            .chain(self.forecasts.iter().flat_map(|f| &f.1));
        let corner = emptiest_corner(drawn, x_range, y0..y1, false);
        chart
            .configure_series_labels()
            .position(corner)
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK.mix(0.4))
            .label_font((FAMILY, 16))
            .draw()?;
        Ok(())
    }
}

/// Draws truth and forecasts with the defaults of [`ForecastChart`] (forecasting starts at the
/// first forecast's first x) and writes the PNG.
///
/// ```
/// let dir = std::env::temp_dir().join("rnnkit-doc-forecast");
/// std::fs::create_dir_all(&dir).unwrap();
/// let truth: Vec<(f64, f64)> = (0..48).map(|t| (t as f64, t as f64 % 12.0)).collect();
/// let fc: Vec<(f64, f64)> = (36..48).map(|t| (t as f64, t as f64 % 12.0 + 0.5)).collect();
/// let path = dir.join("fc.png");
/// rnnkit::plot::forecast_chart(&path, "GRU forecast", "month", "sales (k units)", &truth, &[("GRU", &fc)]).unwrap();
/// assert!(path.exists());
/// ```
pub fn forecast_chart(
    path: impl AsRef<Path>,
    title: &str,
    x_label: &str,
    y_label: &str,
    truth: &[(f64, f64)],
    forecasts: &[(&str, &[(f64, f64)])],
) -> Result<()> {
    let mut chart = ForecastChart::new(title)
        .x_label(x_label)
        .y_label(y_label)
        .truth("truth", truth.iter().copied());
    for (name, pts) in forecasts {
        chart = chart.forecast(*name, pts.iter().copied());
    }
    chart.save_png(path)
}
