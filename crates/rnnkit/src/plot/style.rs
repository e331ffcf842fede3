//! What every chart shares: the embedded font, the colours, number formatting, and turning a
//! drawing into an RGB buffer or a PNG file with errors that name the file.

use crate::error::{Error, Result};
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::{FontStyle, register_font};
use std::path::Path;
use std::sync::OnceLock;

/// DejaVu Sans, embedded so that drawing text needs no system font library.
static FONT: &[u8] = include_bytes!("../../assets/fonts/DejaVuSans.ttf");

/// The font family every chart uses (the embedded font is registered under this name).
pub(crate) const FAMILY: &str = "sans-serif";

/// Tableau 10 (matplotlib's default cycle): distinguishable, familiar to PyTorch users.
pub(crate) const PALETTE: [RGBColor; 10] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
];

/// Dark colours for reference lines, apart from the series' colours.
pub(crate) const REFERENCE: [RGBColor; 3] = [
    RGBColor(40, 40, 40),
    RGBColor(150, 0, 0),
    RGBColor(0, 100, 0),
];

/// Grid lines: light enough not to compete with the data.
pub(crate) const GRID_BOLD: RGBColor = RGBColor(215, 215, 215);
pub(crate) const GRID_LIGHT: RGBColor = RGBColor(238, 238, 238);

/// Default chart size in pixels: readable on a laptop screen and in a report.
pub(crate) const DEFAULT_SIZE: (u32, u32) = (1000, 600);

/// Registers the embedded font once per process.
pub(crate) fn ensure_font() -> Result<()> {
    static REGISTERED: OnceLock<bool> = OnceLock::new();
    let ok = *REGISTERED.get_or_init(|| register_font(FAMILY, FontStyle::Normal, FONT).is_ok());
    if ok {
        Ok(())
    } else {
        Err(Error::Config(
            "the embedded chart font (DejaVu Sans) could not be loaded".into(),
        ))
    }
}

/// A tick label: at most 4 significant digits, scientific notation for very large or small
/// values, no float noise (`0.30000000000000004` prints `0.3`).
pub(crate) fn fmt_num(v: f64) -> String {
    if v == 0.0 || !v.is_finite() {
        return if v.is_finite() {
            "0".into()
        } else {
            format!("{v}")
        };
    }
    let a = v.abs();
    if !(1e-3..1e5).contains(&a) {
        return sci(v);
    }
    let decimals = (3 - a.log10().floor() as i32).clamp(0, 6) as usize;
    trim_zeros(&format!("{v:.decimals$}"))
}

/// A tick label on a linear axis whose largest absolute value is `scale`: every tick of an axis
/// of tiny or huge values in scientific notation (`9e-4`, `1e-3`, not `9e-4`, `0.001`), others as
/// [`fmt_num`].
pub(crate) fn fmt_tick(v: f64, scale: f64) -> String {
    // Ticks are multiples of a step: a tick a billionth of the scale from zero is zero plus
    // float noise.
    if v.abs() < 1e-9 * scale {
        "0".into()
    } else if v.is_finite() && !(1e-2..1e5).contains(&scale) {
        sci(v)
    } else {
        fmt_num(v)
    }
}

fn sci(v: f64) -> String {
    let s = format!("{v:.2e}");
    let (mantissa, exp) = s.split_once('e').unwrap_or((&s, "0"));
    format!("{}e{exp}", trim_zeros(mantissa))
}

fn trim_zeros(s: &str) -> String {
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s.to_string()
    }
}

/// Draws into an in-memory RGB buffer (`3 * width * height` bytes, row-major). `what` names the
/// chart in errors.
pub(crate) fn render<F>(size: (u32, u32), what: &str, draw: F) -> Result<Vec<u8>>
where
    F: FnOnce(
        &DrawingArea<BitMapBackend<'_>, Shift>,
    ) -> std::result::Result<(), Box<dyn std::error::Error>>,
{
    ensure_font()?;
    let (w, h) = size;
    if !(16..=16384).contains(&w) || !(16..=16384).contains(&h) {
        return Err(Error::Config(format!(
            "{what}: size {w}x{h} is outside 16..=16384 pixels per side"
        )));
    }
    let mut buf = vec![255u8; 3 * w as usize * h as usize];
    {
        let root = BitMapBackend::with_buffer(&mut buf, size).into_drawing_area();
        draw(&root).map_err(|e| Error::Config(format!("{what}: drawing failed: {e}")))?;
        root.present()
            .map_err(|e| Error::Config(format!("{what}: drawing failed: {e}")))?;
    }
    Ok(buf)
}

/// Writes an RGB buffer from [`render`] as a PNG file.
pub(crate) fn save_png(path: &Path, size: (u32, u32), rgb: &[u8]) -> Result<()> {
    let shown = path.display().to_string();
    let is_png = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("png"));
    if !is_png {
        return Err(Error::Config(format!(
            "{shown}: a chart is written as PNG; give the file a .png extension"
        )));
    }
    // Opening the file first reports a missing folder or a permission problem as plain I/O.
    std::fs::File::create(path).map_err(|source| Error::Io {
        path: shown.clone(),
        source,
    })?;
    let mut backend = BitMapBackend::new(path, size);
    backend
        .blit_bitmap((0, 0), size, rgb)
        .map_err(|e| Error::Config(format!("{shown}: drawing failed: {e}")))?;
    backend.present().map_err(|e| Error::Io {
        path: shown.clone(),
        source: std::io::Error::other(format!("could not write the PNG: {e}")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tick_labels_are_short() {
        assert_eq!(fmt_num(0.30000000000000004), "0.3");
        assert_eq!(fmt_num(12345.0), "12345");
        assert_eq!(fmt_num(1.5), "1.5");
        assert_eq!(fmt_num(-0.25), "-0.25");
        assert_eq!(fmt_num(1e-5), "1e-5");
        assert_eq!(fmt_num(2.5e6), "2.5e6");
        assert_eq!(fmt_num(0.0), "0");
        assert_eq!(fmt_tick(0.001, 0.001), "1e-3");
        assert_eq!(fmt_tick(0.0009, 0.001), "9e-4");
        assert_eq!(fmt_tick(1e-19, 1.0), "0");
        assert_eq!(fmt_tick(0.5, 1.0), "0.5");
    }
}
