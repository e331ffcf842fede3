//! Small-multiple scatter plots: a score against each of several parameters, one panel per
//! parameter, in one image (a tuning study's "which values did well"). Numeric parameters are
//! placed by value (or by log value, with ticks labelled in the original units); categorical
//! ones in columns, with a little deterministic jitter so equal points do not hide each other.
//! Each point is coloured by a group (a tuning study's rung), darker for higher groups.

use super::line::DrawResult;
use super::style::{self, FAMILY, fmt_num, log_ticks};
use crate::error::{Error, Result};
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use std::path::Path;

/// One panel's x axis.
#[derive(Clone, Debug, PartialEq)]
pub enum PanelAxis {
    /// Numbers, on a log scale when `log` (all must then be positive).
    Numeric {
        /// Log scale.
        log: bool,
    },
    /// Named categories, in this order.
    Categories(Vec<String>),
}

/// One panel: a parameter's name, its axis, and `(x, y, group)` points (for categories, `x` is
/// the category's index).
#[derive(Clone, Debug, PartialEq)]
pub struct Panel {
    /// The parameter.
    pub name: String,
    /// How x is drawn.
    pub axis: PanelAxis,
    /// The points.
    pub points: Vec<(f64, f64, usize)>,
}

/// Panels of a score against each parameter.
///
/// ```
/// use rnnkit::plot::{Panel, PanelAxis, ScatterPanels};
/// let lr = Panel {
///     name: "train.optimizer.lr".into(),
///     axis: PanelAxis::Numeric { log: true },
///     points: vec![(1e-3, 0.5, 0), (3e-3, 0.4, 1), (1e-2, 0.7, 0)],
/// };
/// let cell = Panel {
///     name: "model.cell".into(),
///     axis: PanelAxis::Categories(vec!["lstm".into(), "gru".into()]),
///     points: vec![(0.0, 0.5, 0), (1.0, 0.4, 1)],
/// };
/// let rgb = ScatterPanels::new("macro-F1 against each parameter", "macro-F1")
///     .panel(lr)
///     .panel(cell)
///     .to_rgb()
///     .unwrap();
/// assert!(!rgb.is_empty());
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct ScatterPanels {
    title: String,
    y_label: String,
    panels: Vec<Panel>,
    group_names: Vec<String>,
}

impl ScatterPanels {
    /// No panels yet; `y_label` names the score.
    pub fn new(title: impl Into<String>, y_label: impl Into<String>) -> Self {
        ScatterPanels {
            title: title.into(),
            y_label: y_label.into(),
            panels: Vec::new(),
            group_names: Vec::new(),
        }
    }

    /// Adds a panel.
    pub fn panel(mut self, panel: Panel) -> Self {
        self.panels.push(panel);
        self
    }

    /// Names of the groups, for the legend line under the title (`rung 0 (2 epochs)`, ...).
    pub fn groups(mut self, names: Vec<String>) -> Self {
        self.group_names = names;
        self
    }

    /// The image size: 3 panels per row, 420×320 pixels each, plus the title.
    pub fn size(&self) -> (u32, u32) {
        let cols = self.panels.len().clamp(1, 3) as u32;
        let rows = self.panels.len().div_ceil(3).max(1) as u32;
        (cols * 420, rows * 320 + 70)
    }

    /// Draws the panels into an RGB buffer, `3 * width * height` bytes, row-major.
    ///
    /// Errors ([`Error::Config`]): no panel, a panel without a finite point, a log axis with a
    /// point that is not positive.
    pub fn to_rgb(&self) -> Result<Vec<u8>> {
        let what = format!("scatter panels \"{}\"", self.title);
        if self.panels.is_empty() {
            return Err(Error::Config(format!("{what}: add at least one panel")));
        }
        for p in &self.panels {
            let ok = |&(x, y, _): &(f64, f64, usize)| {
                x.is_finite()
                    && y.is_finite()
                    && (!matches!(p.axis, PanelAxis::Numeric { log: true }) || x > 0.0)
            };
            if !p.points.iter().any(ok) {
                return Err(Error::Config(format!(
                    "{what}: panel \"{}\" has no drawable point",
                    p.name
                )));
            }
        }
        style::render(self.size(), &what, |root| self.draw(root))
    }

    /// Draws the panels and writes them as a PNG file.
    ///
    /// Errors: those of [`ScatterPanels::to_rgb`]; [`Error::Io`] naming the path.
    pub fn save_png(&self, path: impl AsRef<Path>) -> Result<()> {
        let rgb = self.to_rgb()?;
        style::save_png(path.as_ref(), self.size(), &rgb)
    }

    fn draw(&self, root: &DrawingArea<BitMapBackend<'_>, Shift>) -> DrawResult {
        root.fill(&WHITE)?;
        let (w, _) = self.size();
        let (top, body) = root.split_vertically(70);
        top.draw(&Text::new(
            self.title.clone(),
            (20, 8),
            (FAMILY, 24).into_font(),
        ))?;
        let groups = self
            .panels
            .iter()
            .flat_map(|p| p.points.iter().map(|q| q.2))
            .max()
            .unwrap_or(0);
        let mut x = 20;
        for g in 0..=groups {
            let name = self
                .group_names
                .get(g)
                .cloned()
                .unwrap_or_else(|| format!("group {g}"));
            top.draw(&Circle::new((x + 6, 50), 5, shade(g, groups).filled()))?;
            top.draw(&Text::new(
                name.clone(),
                (x + 16, 41),
                (FAMILY, 15).into_font(),
            ))?;
            x += 30 + 8 * name.chars().count() as i32;
            if x > w as i32 - 100 {
                break;
            }
        }
        let cols = self.panels.len().clamp(1, 3);
        let rows = self.panels.len().div_ceil(3).max(1);
        let areas = body.split_evenly((rows, cols));
        for (panel, area) in self.panels.iter().zip(areas.iter()) {
            draw_panel(area, panel, &self.y_label, groups)?;
        }
        Ok(())
    }
}

/// Light grey-blue for the lowest group to dark blue for the highest.
fn shade(g: usize, groups: usize) -> RGBColor {
    let t = if groups == 0 {
        1.0
    } else {
        g as f64 / groups as f64
    };
    let mix = |a: f64, b: f64| (a + t * (b - a)).round() as u8;
    RGBColor(mix(160.0, 8.0), mix(190.0, 48.0), mix(220.0, 107.0))
}

fn draw_panel(
    area: &DrawingArea<BitMapBackend<'_>, Shift>,
    p: &Panel,
    y_label: &str,
    groups: usize,
) -> DrawResult {
    let log = matches!(p.axis, PanelAxis::Numeric { log: true });
    let pts: Vec<(f64, f64, usize)> = p
        .points
        .iter()
        .copied()
        .filter(|&(x, y, _)| x.is_finite() && y.is_finite() && (!log || x > 0.0))
        .enumerate()
        .map(|(i, (x, y, g))| {
            let x = match &p.axis {
                PanelAxis::Numeric { log: true } => x.ln(),
                PanelAxis::Numeric { log: false } => x,
                // A fixed jitter by position: reproducible, and equal points spread out.
                PanelAxis::Categories(_) => x + 0.25 * (((i * 7919) % 101) as f64 / 100.0 - 0.5),
            };
            (x, y, g)
        })
        .collect();
    let (mut x0, mut x1) = match &p.axis {
        PanelAxis::Categories(c) => (-0.5, c.len().max(1) as f64 - 0.5),
        _ => pts
            .iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), q| {
                (a.min(q.0), b.max(q.0))
            }),
    };
    if x1 <= x0 {
        (x0, x1) = (x0 - 0.5, x1 + 0.5);
    } else if !matches!(p.axis, PanelAxis::Categories(_)) {
        let pad = 0.05 * (x1 - x0);
        (x0, x1) = (x0 - pad, x1 + pad);
    }
    let (mut y0, mut y1) = pts
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), q| {
            (a.min(q.1), b.max(q.1))
        });
    if y1 <= y0 {
        (y0, y1) = (y0 - 0.5, y1 + 0.5);
    } else {
        let pad = 0.06 * (y1 - y0);
        (y0, y1) = (y0 - pad, y1 + pad);
    }
    // Ticks: each category; round values of a log axis (1, 2, 5 × 10ᵏ), placed at their logs;
    // plotters' own for a linear one.
    let categories = match &p.axis {
        PanelAxis::Categories(c) => Some(c.clone()),
        _ => None,
    };
    let keys: Vec<f64> = match (&categories, log) {
        (Some(c), _) => (0..c.len()).map(|k| k as f64).collect(),
        (None, true) => log_ticks(x0.exp(), x1.exp())
            .major
            .iter()
            .map(|t| t.0.ln())
            .collect(),
        (None, false) => nice_ticks(x0, x1),
    };
    let mut chart = ChartBuilder::on(area)
        .caption(&p.name, (FAMILY, 16))
        .margin(10)
        .x_label_area_size(34)
        .y_label_area_size(56)
        .build_cartesian_2d(x0..x1, y0..y1)?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(0)
        .y_desc(y_label)
        .axis_desc_style((FAMILY, 14))
        .label_style((FAMILY, 12))
        .bold_line_style(style::GRID_BOLD)
        .light_line_style(style::GRID_LIGHT)
        .y_label_formatter(&|v| fmt_num(*v))
        .draw()?;
    // The x ticks, drawn here: plotters places its own evenly, which on a log axis means
    // labels like 20.09 and 54.6.
    let base = area.get_base_pixel();
    let font = (FAMILY, 12)
        .into_font()
        .color(&BLACK)
        .pos(Pos::new(HPos::Center, VPos::Top));
    for k in keys.into_iter().filter(|k| (x0..=x1).contains(k)) {
        let label = match &categories {
            Some(c) => c
                .get(k.round().max(0.0) as usize)
                .cloned()
                .unwrap_or_default(),
            None if log => fmt_num(k.exp()),
            None => fmt_num(k),
        };
        chart.draw_series(std::iter::once(PathElement::new(
            vec![(k, y0), (k, y1)],
            style::GRID_BOLD,
        )))?;
        let (px, py) = chart.backend_coord(&(k, y0));
        area.draw_text(&label, &font, (px - base.0, py - base.1 + 5))?;
    }
    chart.draw_series(
        pts.iter()
            .map(|&(x, y, g)| Circle::new((x, y), 4, shade(g, groups).filled())),
    )?;
    Ok(())
}

/// About five round ticks (1, 2 or 5 × 10ᵏ apart) in `lo..=hi`.
fn nice_ticks(lo: f64, hi: f64) -> Vec<f64> {
    let raw = (hi - lo) / 5.0;
    if !(raw > 0.0 && raw.is_finite()) {
        return vec![lo];
    }
    let p = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * p)
        .find(|&s| s >= raw)
        .unwrap_or(10.0 * p);
    let first = (lo / step).ceil() as i64;
    let last = (hi / step).floor() as i64;
    (first..=last).map(|k| k as f64 * step).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_panels_are_errors() {
        assert!(ScatterPanels::new("t", "y").to_rgb().is_err());
        let neg = Panel {
            name: "lr".into(),
            axis: PanelAxis::Numeric { log: true },
            points: vec![(-1.0, 0.5, 0)],
        };
        assert!(ScatterPanels::new("t", "y").panel(neg).to_rgb().is_err());
    }

    #[test]
    fn ticks_are_round() {
        assert_eq!(
            nice_ticks(0.0, 0.5),
            vec![0.0, 0.1, 0.2, 0.30000000000000004, 0.4, 0.5]
        );
        assert_eq!(nice_ticks(1.0, 3.0).len(), 5);
    }

    #[test]
    fn four_panels_take_two_rows() {
        let p = Panel {
            name: "x".into(),
            axis: PanelAxis::Numeric { log: false },
            points: vec![(1.0, 1.0, 0), (2.0, 3.0, 1)],
        };
        let s = (0..4).fold(ScatterPanels::new("t", "y"), |s, _| s.panel(p.clone()));
        assert_eq!(s.size(), (1260, 710));
        assert_eq!(s.to_rgb().unwrap().len(), 3 * 1260 * 710);
    }
}
