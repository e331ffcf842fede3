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

/// A tick label on a linear axis whose largest absolute value is `scale` and whose extent is
/// `width`: every tick of an axis of tiny or huge values in scientific notation (`9e-4`,
/// `1e-3`, not `9e-4`, `0.001`), others as [`fmt_num`] but with the decimals the tick spacing
/// needs, so ticks half a year apart read `1960`, `1960.5`, not `1960`, `1960`.
pub(crate) fn fmt_tick(v: f64, scale: f64, width: f64) -> String {
    // Ticks are multiples of a step: a tick a billionth of the scale from zero is zero plus
    // float noise.
    if v.abs() < 1e-9 * scale {
        "0".into()
    } else if v.is_finite() && !(1e-2..1e5).contains(&scale) {
        sci(v)
    } else {
        // Plotters puts about ten ticks on an axis.
        let step = width.abs() / 10.0;
        let needed = if step > 0.0 && step.is_finite() {
            (-step.log10()).ceil().clamp(0.0, 6.0) as usize
        } else {
            0
        };
        let own = (3 - v.abs().log10().floor() as i32).clamp(0, 6) as usize;
        trim_zeros(&format!("{v:.prec$}", prec = needed.max(own)))
    }
}

fn sci(v: f64) -> String {
    sci_digits(v, 2)
}

/// `v` in scientific notation with at most `digits` mantissa decimals, trailing zeros trimmed.
fn sci_digits(v: f64, digits: usize) -> String {
    let s = format!("{v:.digits$e}");
    let (mantissa, exp) = s.split_once('e').unwrap_or((&s, "0"));
    format!("{}e{exp}", trim_zeros(mantissa))
}

/// The ticks of a log axis: labelled major ticks (bold grid lines) and unlabelled minor ones
/// (light grid lines).
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct LogTicks {
    /// Each major tick's value and label, ascending.
    pub(crate) major: Vec<(f64, String)>,
    /// The minor ticks' values, ascending.
    pub(crate) minor: Vec<f64>,
}

/// At most this many labelled decades; a wider axis labels every second (third, …) decade.
const MAX_DECADE_LABELS: usize = 8;

/// The ticks of a log axis over `lo..=hi`: powers of ten; 1, 2, 5 times powers of ten when
/// fewer than three powers fall in the range; 1 to 9 times powers of ten when that still gives
/// fewer than three; evenly spaced round values on a very narrow range. Any positive range gets
/// at least two labels (plotters' own log axis labels nothing on some ranges below 1).
/// Labels are short: `0.02`, `0.5`, `1`, `5000`, and `1e-6`, `2e4` outside `0.01..1e4`.
/// An empty or non-positive range gets no ticks.
pub(crate) fn log_ticks(lo: f64, hi: f64) -> LogTicks {
    let mut ticks = LogTicks {
        major: Vec::new(),
        minor: Vec::new(),
    };
    if !(lo > 0.0 && hi > lo && hi.is_finite()) {
        return ticks;
    }
    // Decades that can hold a tick, with one to spare on each side for the mantissas.
    let first = lo.log10().floor() as i32 - 1;
    let last = hi.log10().ceil() as i32 + 1;
    let in_range = |v: f64| v >= lo * (1.0 - 1e-9) && v <= hi * (1.0 + 1e-9);
    // Parsing `m e k` gives the float nearest to the decimal value, so that labels and the
    // values they stand for agree exactly (`10f64.powi(-7)` is not the nearest to 1e-7).
    let at = |m: u32, e: i32| format!("{m}e{e}").parse::<f64>().unwrap_or(f64::NAN);
    let values = |mantissas: &[u32]| -> Vec<(f64, u32, i32)> {
        (first..=last)
            .flat_map(|e| mantissas.iter().map(move |&m| (m, e)))
            .map(|(m, e)| (at(m, e), m, e))
            .filter(|&(v, _, _)| in_range(v))
            .collect()
    };
    let label = |v: f64| {
        if (1e-2..1e4).contains(&v) {
            fmt_num(v)
        } else {
            sci(v)
        }
    };
    let all: Vec<u32> = (1..=9).collect();

    let powers = values(&[1]);
    if powers.len() >= 3 {
        let stride = powers.len().div_ceil(MAX_DECADE_LABELS) as i32;
        let (major, skipped): (Vec<_>, Vec<_>) = powers
            .into_iter()
            .partition(|&(_, _, e)| e.rem_euclid(stride) == 0);
        ticks.major = major.into_iter().map(|(v, _, _)| (v, label(v))).collect();
        ticks.minor = if stride == 1 {
            values(&all)
                .into_iter()
                .filter(|&(_, m, _)| m != 1)
                .map(|t| t.0)
                .collect()
        } else {
            skipped.into_iter().map(|t| t.0).collect()
        };
        return ticks;
    }
    for mantissas in [&[1, 2, 5][..], &all[..]] {
        let major = values(mantissas);
        if major.len() >= 3 {
            ticks.minor = values(&all)
                .into_iter()
                .filter(|&(_, m, _)| !mantissas.contains(&m))
                .map(|t| t.0)
                .collect();
            ticks.major = major.into_iter().map(|(v, _, _)| (v, label(v))).collect();
            return ticks;
        }
    }
    // Narrower than a factor of about 1.5: round values a step apart, with at least three
    // intervals in the range (so at least three ticks), labelled with the digits the step needs.
    let width = hi - lo;
    let exp = (width / 3.0).log10().floor();
    let step = [5.0, 2.0, 1.0]
        .into_iter()
        .map(|m| m * 10f64.powf(exp))
        .find(|&s| s <= width / 3.0)
        .unwrap_or(10f64.powf(exp));
    let step_exp = step.log10().floor() as i32;
    let mut k = (lo / step).ceil();
    while k * step <= hi && ticks.major.len() < 20 {
        let v = k * step;
        let text = if (1e-2..1e4).contains(&v) {
            let decimals = (-step_exp).max(0) as usize;
            trim_zeros(&format!("{v:.decimals$}"))
        } else {
            sci_digits(v, (v.log10().floor() as i32 - step_exp).max(0) as usize)
        };
        ticks.major.push((v, text));
        k += 1.0;
    }
    ticks
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
        assert_eq!(fmt_tick(0.001, 0.001, 0.0), "1e-3");
        assert_eq!(fmt_tick(0.0009, 0.001, 0.0), "9e-4");
        assert_eq!(fmt_tick(1e-19, 1.0, 0.0), "0");
        assert_eq!(fmt_tick(0.5, 1.0, 0.0), "0.5");
        assert_eq!(fmt_tick(1960.5, 1963.0, 4.9), "1960.5");
        assert_eq!(fmt_tick(1960.0, 1963.0, 4.9), "1960");
        assert_eq!(fmt_tick(1950.0, 2000.0, 60.0), "1950");
    }

    fn labels(lo: f64, hi: f64) -> Vec<String> {
        log_ticks(lo, hi).major.into_iter().map(|t| t.1).collect()
    }

    #[test]
    fn log_ticks_label_every_positive_range() {
        // Below 1, under two decades: 1, 2, 5 times powers of ten.
        assert_eq!(labels(0.018, 0.99), ["0.02", "0.05", "0.1", "0.2", "0.5"]);
        // Six decades: powers of ten only, tiny ones in scientific notation.
        assert_eq!(
            labels(5e-8, 0.2),
            ["1e-7", "1e-6", "1e-5", "1e-4", "1e-3", "0.01", "0.1"]
        );
        // Within one decade: every multiple of the power of ten.
        assert_eq!(
            labels(0.28, 0.85),
            ["0.3", "0.4", "0.5", "0.6", "0.7", "0.8"]
        );
        // Above 1.
        assert_eq!(labels(0.8, 6000.0), ["1", "10", "100", "1000"]);
        let t = log_ticks(0.8, 6000.0);
        assert!(t.minor.contains(&5000.0) && t.minor.contains(&0.9) && !t.minor.contains(&1.0));
        // Very narrow: evenly spaced round values with the digits they need.
        assert_eq!(labels(0.31, 0.39), ["0.32", "0.34", "0.36", "0.38"]);
        assert_eq!(
            labels(3.1e-6, 3.9e-6),
            ["3.2e-6", "3.4e-6", "3.6e-6", "3.8e-6"]
        );
        // Thirty decades: every fourth one labelled, the rest minor.
        let wide = log_ticks(1e-20, 1e10);
        assert!(
            (3..=MAX_DECADE_LABELS).contains(&wide.major.len()),
            "{wide:?}"
        );
        assert_eq!(wide.major[0].1, "1e-20");
        assert!(!wide.minor.is_empty());
        // Labels stand for their exact decimal values.
        assert!(log_ticks(5e-8, 0.2).major.iter().any(|t| t.0 == 1e-7));
        for (lo, hi) in [(0.0, 1.0), (1.0, 1.0), (2.0, 1.0), (1.0, f64::INFINITY)] {
            assert!(log_ticks(lo, hi).major.is_empty());
        }
    }

    #[test]
    fn log_ticks_give_two_labels_on_any_positive_range() {
        let mut lo = 1.3e-9;
        while lo < 1e6 {
            for factor in [1.01, 1.2, 2.0, 3.3, 9.0, 40.0, 1e3, 1e8] {
                let t = log_ticks(lo, lo * factor);
                assert!((2..=20).contains(&t.major.len()), "{lo} x{factor}: {t:?}");
                let texts: Vec<_> = t.major.iter().map(|m| &m.1).collect();
                let mut unique = texts.clone();
                unique.dedup();
                assert_eq!(unique, texts, "{lo} x{factor}: labels repeat");
                assert!(t.major.iter().all(|m| m.1.len() <= 9), "{texts:?}");
            }
            lo *= 3.7;
        }
    }
}
