//! PNG charts: each kind writes a file that is a PNG of the asked size, draws something besides
//! the background, and reports bad input as errors naming the chart or the path.
//!
//! The files are left in `CARGO_TARGET_TMPDIR/plot/` to be looked at.

#![cfg(feature = "plot")]

use rnnkit::Error;
use rnnkit::plot::{
    ConfusionMatrixChart, ForecastChart, LineChart, confusion_matrix_png, forecast_chart,
};
use std::path::PathBuf;

fn out_dir() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("plot");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Checks the PNG signature and the IHDR width and height.
fn assert_png(path: &PathBuf, width: u32, height: u32) {
    let bytes = std::fs::read(path).unwrap();
    assert!(
        bytes.len() > 1000,
        "{}: only {} bytes",
        path.display(),
        bytes.len()
    );
    assert_eq!(
        &bytes[..8],
        b"\x89PNG\r\n\x1a\n",
        "{}: not a PNG",
        path.display()
    );
    assert_eq!(&bytes[12..16], b"IHDR");
    let w = u32::from_be_bytes(bytes[16..20].try_into().unwrap());
    let h = u32::from_be_bytes(bytes[20..24].try_into().unwrap());
    assert_eq!((w, h), (width, height), "{}", path.display());
}

/// Fraction of pixels that are not white, and whether `color` occurs exactly.
fn ink(rgb: &[u8], color: [u8; 3]) -> (f64, bool) {
    let px: Vec<&[u8]> = rgb.chunks(3).collect();
    let inked = px.iter().filter(|p| **p != [255, 255, 255]).count();
    (
        inked as f64 / px.len() as f64,
        px.iter().any(|p| **p == color),
    )
}

type Curve = Vec<(f64, f64)>;

const BLUE: [u8; 3] = [31, 119, 180];
const ORANGE: [u8; 3] = [255, 127, 14];

/// A noisy decaying training loss per step and a validation loss per epoch.
fn losses() -> (Curve, Curve) {
    let train = (0..600)
        .map(|s| {
            let s = s as f64;
            (
                s,
                0.4 + 2.0 * (-s / 120.0).exp() + 0.08 * (s * 1.7).sin() * (s * 0.37).cos(),
            )
        })
        .collect();
    let val = (1..=10)
        .map(|e| {
            (
                e as f64 * 60.0,
                0.55 + 1.9 * (-(e as f64) * 60.0 / 130.0).exp(),
            )
        })
        .collect();
    (train, val)
}

#[test]
fn loss_curves_with_a_baseline() {
    let (train, val) = losses();
    let chart = LineChart::new("Training and validation loss")
        .x_label("step")
        .y_label("cross-entropy loss (nats/token)")
        .series("train", train)
        .series("validation", val)
        .reference_line("baseline: unigram model 1.95", 1.95);
    let path = out_dir().join("loss.png");
    chart.save_png(&path).unwrap();
    assert_png(&path, 1000, 600);
    let (frac, blue) = ink(&chart.to_rgb().unwrap(), BLUE);
    let (_, orange) = ink(&chart.to_rgb().unwrap(), ORANGE);
    assert!(frac > 0.01 && frac < 0.5, "ink {frac}");
    assert!(blue && orange, "both series are drawn");
}

#[test]
fn learning_rate_and_clipped_gradient_norm() {
    let lr: Vec<(f64, f64)> = (0..1000)
        .map(|s| {
            let s = s as f64;
            let warm = (s / 100.0).min(1.0);
            (
                s,
                1e-3 * warm * 0.5 * (1.0 + (std::f64::consts::PI * s / 1000.0).cos()),
            )
        })
        .collect();
    let path = out_dir().join("lr.png");
    LineChart::new("Learning rate: linear warm-up, cosine decay")
        .x_label("step")
        .y_label("learning rate")
        .series("lr", lr)
        .save_png(&path)
        .unwrap();
    assert_png(&path, 1000, 600);

    // Gradient norm with spikes and a NaN step (skipped, the line breaks there).
    let norms: Vec<(f64, f64)> = (0..400)
        .map(|s| {
            let v = if s == 200 {
                f64::NAN
            } else if s % 97 == 0 {
                12.0
            } else {
                0.8 + 0.6 * ((s as f64) * 0.05).sin().abs()
            };
            (s as f64, v)
        })
        .collect();
    let chart = LineChart::new("Gradient norm before clipping")
        .x_label("step")
        .y_label("global L2 norm ‖g‖₂")
        .series("‖g‖₂", norms)
        .reference_line("clip threshold 5.0", 5.0)
        .size(800, 500);
    let path = out_dir().join("grad_norm.png");
    chart.save_png(&path).unwrap();
    assert_png(&path, 800, 500);
    let (frac, blue) = ink(&chart.to_rgb().unwrap(), BLUE);
    assert!(frac > 0.01 && blue);
}

#[test]
fn gradient_norm_against_distance_on_a_log_scale() {
    let curve = |decay: f64| {
        (1..=100)
            .map(move |k| (k as f64, (-decay * k as f64).exp()))
            .collect::<Vec<_>>()
    };
    let mut rnn = curve(0.2);
    rnn.push((101.0, 0.0)); // vanished to zero: skipped on a log scale
    let chart = LineChart::new("Gradient reaching t − k: ‖∂L/∂h(t−k)‖")
        .x_label("distance back in time k (steps)")
        .y_label("gradient norm (log scale)")
        .log_y(true)
        .series("RNN (tanh)", rnn)
        .series("LSTM", curve(0.02))
        .series("GRU", curve(0.035));
    let path = out_dir().join("grad_vs_distance.png");
    chart.save_png(&path).unwrap();
    assert_png(&path, 1000, 600);
    let rgb = chart.to_rgb().unwrap();
    assert!(ink(&rgb, BLUE).1 && ink(&rgb, ORANGE).1 && ink(&rgb, [44, 160, 44]).1);
}

#[test]
fn forecast_with_band_and_start_marker() {
    let f = |t: f64| 315.0 + 0.12 * t + 3.0 * (t * std::f64::consts::TAU / 12.0).sin();
    let truth: Vec<(f64, f64)> = (0..240)
        .map(|t| (1958.0 + t as f64 / 12.0, f(t as f64)))
        .collect();
    let lstm: Vec<(f64, f64)> = (192..240)
        .map(|t| {
            (
                1958.0 + t as f64 / 12.0,
                f(t as f64) + 0.02 * (t - 192) as f64,
            )
        })
        .collect();
    let naive: Vec<(f64, f64)> = (192..240)
        .map(|t| (1958.0 + t as f64 / 12.0, f(191.0)))
        .collect();
    let band: Vec<(f64, f64, f64)> = lstm.iter().map(|&(x, y)| (x, y - 1.0, y + 1.0)).collect();
    let chart = ForecastChart::new("CO₂ at Mauna Loa: test-span forecasts")
        .x_label("year")
        .y_label("CO₂ (ppm)")
        .truth("observed", truth.clone())
        .forecast("LSTM", lstm.clone())
        .forecast("last value", naive)
        .band("LSTM ±1 ppm", band);
    let path = out_dir().join("forecast.png");
    chart.save_png(&path).unwrap();
    assert_png(&path, 1000, 600);
    let rgb = chart.to_rgb().unwrap();
    assert!(ink(&rgb, BLUE).1 && ink(&rgb, ORANGE).1);
    assert!(ink(&rgb, [236, 240, 247]).1, "the test span is shaded");

    let path = out_dir().join("forecast_fn.png");
    forecast_chart(
        &path,
        "GRU forecast",
        "year",
        "CO₂ (ppm)",
        &truth,
        &[("GRU", &lstm)],
    )
    .unwrap();
    assert_png(&path, 1000, 600);
}

const LANGUAGES: [&str; 18] = [
    "Arabic",
    "Chinese",
    "Czech",
    "Dutch",
    "English",
    "French",
    "German",
    "Greek",
    "Irish",
    "Italian",
    "Japanese",
    "Korean",
    "Polish",
    "Portuguese",
    "Russian",
    "Scottish",
    "Spanish",
    "Vietnamese",
];

#[test]
fn confusion_matrices_small_and_large() {
    let path = out_dir().join("confusion_small.png");
    let counts = vec![vec![812, 31, 7], vec![45, 699, 56], vec![3, 60, 1287]];
    confusion_matrix_png(
        &path,
        "Sentiment: accuracy 0.933, macro-F1 0.917",
        &counts,
        &["negative", "neutral", "positive"],
        false,
    )
    .unwrap();
    assert_png(&path, 1000, 600);

    let n = LANGUAGES.len();
    let counts: Vec<Vec<usize>> = (0..n)
        .map(|r| {
            (0..n)
                .map(|c| {
                    if r == c {
                        40 + 7 * r
                    } else {
                        (r * 31 + c * 17) % 9
                    }
                })
                .collect()
        })
        .collect();
    let chart = ConfusionMatrixChart::new(
        "Surname → language: accuracy 0.712, macro-F1 0.684",
        &counts,
        &LANGUAGES,
    )
    .normalize(true);
    let path = out_dir().join("confusion_surnames.png");
    chart.save_png(&path).unwrap();
    assert_png(&path, 1000, 600);
    let (frac, _) = ink(&chart.to_rgb().unwrap(), [0, 0, 0]);
    assert!(frac > 0.3, "the heatmap fills the chart: {frac}");

    let path = out_dir().join("confusion_counts_20.png");
    let names: Vec<String> = (0..20).map(|i| format!("class_{i:02}_name")).collect();
    let counts: Vec<Vec<usize>> = (0..20)
        .map(|r| {
            (0..20)
                .map(|c| if r == c { 1500 + r } else { (r + c) % 4 })
                .collect()
        })
        .collect();
    ConfusionMatrixChart::new("20 classes (counts)", &counts, &names)
        .save_png(&path)
        .unwrap();
    assert_png(&path, 1000, 600);
}

#[test]
fn bad_input_and_paths_are_errors() {
    let e = LineChart::new("loss")
        .series("train", vec![])
        .save_png(out_dir().join("x.png"))
        .unwrap_err();
    assert!(
        matches!(&e, Error::Config(m) if m.contains("\"train\" has no points")),
        "{e}"
    );

    let only_nan = LineChart::new("loss").series("train", vec![(0.0, f64::NAN)]);
    assert!(matches!(only_nan.to_rgb(), Err(Error::Config(_))));

    let missing = out_dir().join("no-such-folder").join("loss.png");
    let e = LineChart::new("loss")
        .series("train", vec![(0.0, 1.0), (1.0, 0.5)])
        .save_png(&missing)
        .unwrap_err();
    match &e {
        Error::Io { path, .. } => assert!(path.contains("no-such-folder"), "{e}"),
        other => panic!("expected an I/O error, got {other}"),
    }

    let e = LineChart::new("loss")
        .series("train", vec![(0.0, 1.0)])
        .save_png(out_dir().join("loss.jpg"))
        .unwrap_err();
    assert!(e.to_string().contains(".png"), "{e}");

    let e = ForecastChart::new("f")
        .truth("t", vec![(0.0, 1.0)])
        .to_rgb()
        .unwrap_err();
    assert!(e.to_string().contains("forecast"), "{e}");
    assert!(
        ForecastChart::new("f")
            .truth("t", vec![(0.0, 1.0)])
            .forecast("m", vec![])
            .to_rgb()
            .is_err()
    );
    assert!(
        LineChart::new("tiny")
            .series("a", vec![(0.0, 1.0)])
            .size(0, 10)
            .to_rgb()
            .is_err()
    );
}

#[test]
fn log_scale_charts_of_small_and_narrow_ranges() {
    // Gradient norms below 1, a learning rate over six decades, a range inside one decade, and
    // one above 1: each gets a labelled log axis (look at the files).
    for (name, lo, hi) in [
        ("log_0.02_0.9", 0.02_f64, 0.9_f64),
        ("log_1e-7_1e-1", 1e-7, 1e-1),
        ("log_0.3_0.8", 0.3, 0.8),
        ("log_1_5000", 1.0, 5000.0),
    ] {
        let n = 200;
        let curve: Vec<(f64, f64)> = (0..=n)
            .map(|i| {
                let t = f64::from(i) / f64::from(n);
                let wiggle = 0.15 * (t * 40.0).sin();
                let y = (lo.ln() + (hi.ln() - lo.ln()) * (t + wiggle).clamp(0.0, 1.0)).exp();
                (f64::from(i), y)
            })
            .collect();
        let path = out_dir().join(format!("{name}.png"));
        LineChart::new(format!("log scale, y in [{lo:?}, {hi:?}]"))
            .x_label("step")
            .y_label("value (log scale)")
            .log_y(true)
            .series("value", curve)
            .size(700, 450)
            .save_png(&path)
            .unwrap();
        assert_png(&path, 700, 450);
    }
}
