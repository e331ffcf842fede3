//! Confusion-matrix heatmaps: rows are true classes, columns predicted ones (scikit-learn's
//! convention), each cell coloured by its value and labelled with it, class names on both axes
//! and a colour scale.
//!
//! The layout is computed here rather than by a chart builder: the name columns are sized to the
//! longest name, and the predicted-class names turn vertical when they do not fit their column.

use super::line::DrawResult;
use super::style::{self, FAMILY, fmt_num};
use crate::error::{Error, Result};
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::FontTransform;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use std::path::Path;

/// Names longer than this many characters are shortened with an ellipsis.
const MAX_NAME_CHARS: usize = 16;

/// A confusion-matrix heatmap.
///
/// ```
/// use rnnkit::plot::ConfusionMatrixChart;
/// let counts = vec![vec![50, 3, 1], vec![4, 40, 6], vec![0, 5, 45]];
/// let rgb = ConfusionMatrixChart::new("Surnames: accuracy 0.875, macro-F1 0.874", &counts, &["Arabic", "English", "Russian"])
///     .normalize(true)
///     .to_rgb()
///     .unwrap();
/// assert_eq!(rgb.len(), 3 * 1000 * 600);
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct ConfusionMatrixChart {
    title: String,
    counts: Vec<Vec<usize>>,
    names: Vec<String>,
    normalize: bool,
    size: (u32, u32),
}

impl ConfusionMatrixChart {
    /// A heatmap of `counts[true_class][predicted_class]` with one name per class, showing counts,
    /// 1000×600 pixels. Put accuracy and macro-F1 in the title.
    pub fn new(
        title: impl Into<String>,
        counts: &[Vec<usize>],
        class_names: &[impl AsRef<str>],
    ) -> Self {
        ConfusionMatrixChart {
            title: title.into(),
            counts: counts.to_vec(),
            names: class_names.iter().map(|n| n.as_ref().to_string()).collect(),
            normalize: false,
            size: style::DEFAULT_SIZE,
        }
    }

    /// Show each row divided by its total (the recall of each true class; scikit-learn's
    /// `normalize="true"`) instead of counts.
    pub fn normalize(mut self, normalize: bool) -> Self {
        self.normalize = normalize;
        self
    }

    /// The image size in pixels (default 1000×600).
    pub fn size(mut self, width: u32, height: u32) -> Self {
        self.size = (width, height);
        self
    }

    /// Draws the heatmap into an RGB buffer, `3 * width * height` bytes, row-major.
    ///
    /// Errors ([`Error::Config`]): no classes, a matrix that is not N×N, a number of names other
    /// than N.
    pub fn to_rgb(&self) -> Result<Vec<u8>> {
        let what = format!("confusion matrix \"{}\"", self.title);
        let n = self.counts.len();
        if n == 0 {
            return Err(Error::Config(format!("{what}: the matrix has no classes")));
        }
        if let Some((r, row)) = self
            .counts
            .iter()
            .enumerate()
            .find(|(_, row)| row.len() != n)
        {
            return Err(Error::Config(format!(
                "{what}: row {r} has {} entries but the matrix has {n} rows; it must be N×N",
                row.len()
            )));
        }
        if self.names.len() != n {
            return Err(Error::Config(format!(
                "{what}: {} class names for {n} classes",
                self.names.len()
            )));
        }
        style::render(self.size, &what, |root| self.draw(root))
    }

    /// Draws the heatmap and writes it as a PNG file (the path must end in `.png`).
    ///
    /// Errors: those of [`ConfusionMatrixChart::to_rgb`]; [`Error::Io`] naming the path.
    pub fn save_png(&self, path: impl AsRef<Path>) -> Result<()> {
        let rgb = self.to_rgb()?;
        style::save_png(path.as_ref(), self.size, &rgb)
    }

    /// Cell values: counts, or row fractions (`None` for a row with no examples).
    fn values(&self) -> Vec<Vec<Option<f64>>> {
        self.counts
            .iter()
            .map(|row| {
                let total: usize = row.iter().sum();
                row.iter()
                    .map(|&c| match (self.normalize, total) {
                        (false, _) => Some(c as f64),
                        (true, 0) => None,
                        (true, t) => Some(c as f64 / t as f64),
                    })
                    .collect()
            })
            .collect()
    }

    fn draw(&self, root: &DrawingArea<BitMapBackend<'_>, Shift>) -> DrawResult {
        root.fill(&WHITE)?;
        let n = self.counts.len();
        let (w, h) = (self.size.0 as i32, self.size.1 as i32);
        let names: Vec<String> = self.names.iter().map(|s| shorten(s)).collect();
        let name_px = if n <= 10 {
            15
        } else if n <= 20 {
            13
        } else {
            11
        };
        let name_font = (FAMILY, name_px).into_font().color(&BLACK);
        let widest = names
            .iter()
            .map(|s| {
                root.estimate_text_size(s, &name_font)
                    .map(|(w, _)| w as i32)
            })
            .collect::<std::result::Result<Vec<_>, _>>()?
            .into_iter()
            .max()
            .unwrap_or(0);
        let axis_font = (FAMILY, 18).into_font().color(&BLACK);

        // Margins: title on top; true-class title and names on the left; colour bar on the right.
        let top = 52;
        let left = 16 + 22 + 10 + widest + 8;
        let right = 22 + 12 + 60 + 16;
        let col_w = ((w - left - right) as f64 / n as f64).max(1.0);
        let rotate = widest > col_w as i32 - 6;
        let names_h = if rotate { widest } else { name_px + 4 };
        let bottom = 8 + names_h + 10 + 22 + 12;
        let row_h = ((h - top - bottom) as f64 / n as f64).max(1.0);
        let (x0, y0) = (left, top);
        let (x_end, y_end) = (
            x0 + (col_w * n as f64) as i32,
            y0 + (row_h * n as f64) as i32,
        );

        root.draw_text(
            &self.title,
            &(FAMILY, 24)
                .into_font()
                .color(&BLACK)
                .pos(Pos::new(HPos::Center, VPos::Top)),
            (w / 2, 14),
        )?;

        let values = self.values();
        let vmax = if self.normalize {
            1.0
        } else {
            values
                .iter()
                .flatten()
                .flatten()
                .fold(0.0f64, |a, &b| a.max(b))
                .max(1.0)
        };
        for (r, row) in values.iter().enumerate() {
            for (c, v) in row.iter().enumerate() {
                let cx0 = x0 + (c as f64 * col_w) as i32;
                let cy0 = y0 + (r as f64 * row_h) as i32;
                let cx1 = x0 + ((c + 1) as f64 * col_w) as i32;
                let cy1 = y0 + ((r + 1) as f64 * row_h) as i32;
                let t = v.map_or(0.0, |v| v / vmax);
                root.draw(&Rectangle::new(
                    [(cx0, cy0), (cx1 - 1, cy1 - 1)],
                    blues(t).filled(),
                ))?;
                let Some(v) = v else { continue };
                let text = if self.normalize {
                    format!("{v:.2}")
                } else {
                    format!("{}", *v as usize)
                };
                // As large as fits the cell, and no larger than the names.
                let fit_w = (cx1 - cx0 - 4) as f64 / (0.62 * text.chars().count() as f64);
                let size = fit_w.min(0.55 * (cy1 - cy0) as f64).min(16.0);
                if size < 7.0 {
                    continue;
                }
                let color = if t > 0.55 { WHITE } else { BLACK };
                let font = (FAMILY, size)
                    .into_font()
                    .color(&color)
                    .pos(Pos::new(HPos::Center, VPos::Center));
                root.draw_text(&text, &font, ((cx0 + cx1) / 2, (cy0 + cy1) / 2))?;
            }
        }
        root.draw(&Rectangle::new(
            [(x0 - 1, y0 - 1), (x_end, y_end)],
            BLACK.mix(0.5),
        ))?;

        // True classes down the left, right-aligned against the matrix.
        for (r, name) in names.iter().enumerate() {
            let y = y0 + ((r as f64 + 0.5) * row_h) as i32;
            let font = name_font.pos(Pos::new(HPos::Right, VPos::Center));
            root.draw_text(name, &font, (x0 - 8, y))?;
        }
        // Predicted classes along the bottom, vertical (reading upwards) when they do not fit.
        for (c, name) in names.iter().enumerate() {
            let x = x0 + ((c as f64 + 0.5) * col_w) as i32;
            if rotate {
                let font = name_font
                    .transform(FontTransform::Rotate270)
                    .pos(Pos::new(HPos::Right, VPos::Center));
                root.draw_text(name, &font, (x, y_end + 8))?;
            } else {
                let font = name_font.pos(Pos::new(HPos::Center, VPos::Top));
                root.draw_text(name, &font, (x, y_end + 8))?;
            }
        }
        let font = axis_font.pos(Pos::new(HPos::Center, VPos::Top));
        root.draw_text(
            "predicted class",
            &font,
            ((x0 + x_end) / 2, y_end + 8 + names_h + 10),
        )?;
        let font = axis_font
            .transform(FontTransform::Rotate270)
            .pos(Pos::new(HPos::Center, VPos::Center));
        root.draw_text("true class", &font, (16, (y0 + y_end) / 2))?;

        // Colour scale: top is the largest value.
        let (bx0, bx1) = (x_end + 22, x_end + 22 + 22);
        let (by0, by1) = (y0, y_end);
        for y in by0..by1 {
            let t = 1.0 - (y - by0) as f64 / (by1 - by0).max(1) as f64;
            root.draw(&Rectangle::new([(bx0, y), (bx1, y + 1)], blues(t).filled()))?;
        }
        root.draw(&Rectangle::new([(bx0, by0), (bx1, by1)], BLACK.mix(0.5)))?;
        let tick_font = (FAMILY, 14)
            .into_font()
            .color(&BLACK)
            .pos(Pos::new(HPos::Left, VPos::Center));
        let step = nice_step(vmax / 4.0);
        let mut tick = 0.0;
        while tick <= vmax * (1.0 + 1e-9) {
            let y = by1 - (tick / vmax * (by1 - by0) as f64) as i32;
            root.draw(&PathElement::new(vec![(bx1, y), (bx1 + 5, y)], BLACK))?;
            root.draw_text(&fmt_num(tick), &tick_font, (bx1 + 8, y))?;
            tick += step;
        }
        Ok(())
    }
}

/// Writes a confusion-matrix heatmap (`counts[true][predicted]`) as a PNG: counts, or row
/// fractions when `normalize`. Put accuracy and macro-F1 in the title.
///
/// ```
/// let dir = std::env::temp_dir().join("rnnkit-doc-confusion");
/// std::fs::create_dir_all(&dir).unwrap();
/// let path = dir.join("cm.png");
/// let counts = vec![vec![9, 1], vec![2, 8]];
/// rnnkit::plot::confusion_matrix_png(&path, "accuracy 0.85, macro-F1 0.85", &counts, &["neg", "pos"], false).unwrap();
/// assert!(path.exists());
/// ```
pub fn confusion_matrix_png(
    path: impl AsRef<Path>,
    title: &str,
    counts: &[Vec<usize>],
    class_names: &[&str],
    normalize: bool,
) -> Result<()> {
    ConfusionMatrixChart::new(title, counts, class_names)
        .normalize(normalize)
        .save_png(path)
}

/// The smallest of 1, 2, 5 times a power of ten that is at least `raw` (tick spacing).
fn nice_step(raw: f64) -> f64 {
    let p = 10f64.powf(raw.max(1e-12).log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * p)
        .find(|&s| s >= raw * (1.0 - 1e-9))
        .unwrap_or(10.0 * p)
}

/// A sequential white-to-blue scale (like matplotlib's `Blues`) for `t` in `[0, 1]`.
fn blues(t: f64) -> RGBColor {
    const STOPS: [(f64, [f64; 3]); 3] = [
        (0.0, [247.0, 251.0, 255.0]),
        (0.5, [107.0, 174.0, 214.0]),
        (1.0, [8.0, 48.0, 107.0]),
    ];
    let t = t.clamp(0.0, 1.0);
    let k = if t <= 0.5 { 0 } else { 1 };
    let (ta, a) = STOPS[k];
    let (tb, b) = STOPS[k + 1];
    let u = (t - ta) / (tb - ta);
    let mix = |i: usize| (a[i] + u * (b[i] - a[i])).round() as u8;
    RGBColor(mix(0), mix(1), mix(2))
}

fn shorten(name: &str) -> String {
    if name.chars().count() <= MAX_NAME_CHARS {
        return name.to_string();
    }
    let mut s: String = name.chars().take(MAX_NAME_CHARS - 1).collect();
    s.push('…');
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_shapes_are_config_errors() {
        let e = ConfusionMatrixChart::new("t", &[vec![1, 2]], &["a"])
            .to_rgb()
            .unwrap_err();
        assert!(e.to_string().contains("N×N"), "{e}");
        let e = ConfusionMatrixChart::new("t", &[vec![1]], &["a", "b"])
            .to_rgb()
            .unwrap_err();
        assert!(e.to_string().contains("2 class names for 1 classes"), "{e}");
        assert!(
            ConfusionMatrixChart::new("t", &[], &[] as &[&str])
                .to_rgb()
                .is_err()
        );
    }

    #[test]
    fn rows_are_normalized_and_empty_rows_have_no_value() {
        let m =
            ConfusionMatrixChart::new("t", &[vec![1, 3], vec![0, 0]], &["a", "b"]).normalize(true);
        assert_eq!(
            m.values(),
            vec![vec![Some(0.25), Some(0.75)], vec![None, None]]
        );
    }

    #[test]
    fn long_names_are_shortened() {
        assert_eq!(shorten("Vietnamese"), "Vietnamese");
        assert_eq!(
            shorten("a-very-long-class-name").chars().count(),
            MAX_NAME_CHARS
        );
        assert!(blues(1.0).0 < blues(0.0).0);
        assert_eq!(nice_step(1519.0 / 4.0), 500.0);
        assert_eq!(nice_step(0.25), 0.5);
        assert_eq!(nice_step(0.2), 0.2);
    }
}
