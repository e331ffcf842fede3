//! Forecasting a real series end to end: CSV → gaps and missing values → transform and scaling
//! fitted on the training rows → windows with chronological splits → an LSTM forecaster → the
//! test split in original units, against the naive and seasonal-naive baselines computed on the
//! same windows, with a PNG of forecast against truth.
//!
//! ```sh
//! cargo run --release -p rnnkit --example forecast -- co2        # weekly Mauna Loa CO2
//! cargo run --release -p rnnkit --example forecast -- sunspots   # yearly sunspot numbers
//!     [--data FILE.csv] [--epochs N] [--hidden N] [--seed N] [--run-dir DIR]
//! ```
//!
//! Writes `RUN_DIR/forecast.png`, `RUN_DIR/metrics.json` (test RMSE/MAE of the LSTM and of both
//! baselines, in original units), `RUN_DIR/series.json` (the data settings and the scaler fitted
//! on the training rows) and the trainer's metrics and checkpoints; prints a table.

use rnnkit::data::series::WindowBatches;
use rnnkit::data::series::{
    MissingPolicy, ScalerKind, SeriesConfig, SeriesData, SplitSpec, Transform, score,
};
use rnnkit::models::Forecaster;
use rnnkit::optim::{AdamConfig, OptimizerConfig};
use rnnkit::tasks::forecast::{forecast_windows, time_axis};
use rnnkit::train::{EpochReport, Reporter};
use rnnkit::train::{TrainConfig, Trainer};
use rnnkit::{CellKind, RnnConfig};
use std::path::PathBuf;

/// A dataset's settings: what the series is and how to forecast it.
struct Preset {
    name: &'static str,
    file: &'static str,
    target: &'static str,
    timestamp: Option<&'static str>,
    unit: &'static str,
    series: fn(SeriesConfig) -> SeriesConfig,
    /// Season length in rows for the seasonal-naive baseline.
    season: usize,
    hidden: usize,
    layers: usize,
    epochs: usize,
    batch: usize,
    lr: f64,
}

fn presets() -> Vec<Preset> {
    vec![
        Preset {
            name: "co2",
            file: "co2/co2.csv",
            target: "co2",
            timestamp: Some("date"),
            unit: "CO2 (ppm)",
            // Weekly data with a yearly cycle on a rising trend: forecast a quarter (13 weeks)
            // from two years of history. First differences remove the trend, so the test years
            // (above anything seen in training) stay inside the range the network learned.
            series: |c| SeriesConfig {
                missing: MissingPolicy::Interpolate,
                transform: Transform::Diff,
                lookback: 104,
                horizon: 13,
                ..c
            },
            season: 52,
            hidden: 64,
            layers: 1,
            epochs: 60,
            batch: 32,
            lr: 3e-3,
        },
        Preset {
            name: "sunspots",
            file: "sunspots/sunspots.csv",
            target: "SUNACTIVITY",
            timestamp: Some("YEAR"),
            unit: "sunspot number",
            // Yearly, an ~11-year cycle of varying height: next year from the last 24.
            series: |c| SeriesConfig {
                lookback: 24,
                horizon: 1,
                ..c
            },
            season: 11,
            hidden: 64,
            layers: 1,
            epochs: 200,
            batch: 16,
            lr: 3e-3,
        },
    ]
}

struct Log;
impl Reporter for Log {
    fn epoch(&mut self, r: &EpochReport) {
        if r.epoch.is_multiple_of(10) || r.best {
            println!(
                "epoch {:4} | train mse {:.4} | val mse {:.4}{}",
                r.epoch + 1,
                r.train_loss,
                r.val_loss,
                if r.best { " *" } else { "" }
            );
        }
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let which = argv.first().map_or("co2", |s| s.as_str());
    let preset = presets()
        .into_iter()
        .find(|p| p.name == which)
        .ok_or_else(|| format!("unknown dataset `{which}`: use co2 or sunspots"))?;
    let mut data_path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../data")
        .join(preset.file);
    let (mut epochs, mut hidden, mut seed) = (preset.epochs, preset.hidden, 0u64);
    let mut run_dir = PathBuf::from(format!("runs/forecast-{}", preset.name));
    let mut i = 1;
    while i < argv.len() {
        let v = argv.get(i + 1).cloned().unwrap_or_default();
        match argv[i].as_str() {
            "--data" => data_path = v.into(),
            "--epochs" => epochs = v.parse()?,
            "--hidden" => hidden = v.parse()?,
            "--seed" => seed = v.parse()?,
            "--run-dir" => run_dir = v.into(),
            other => return Err(format!("unknown flag {other}").into()),
        }
        i += 2;
    }

    let base = SeriesConfig {
        path: data_path,
        target_columns: vec![preset.target.into()],
        timestamp_column: preset.timestamp.map(String::from),
        scaler: ScalerKind::Standard,
        split: SplitSpec::Fractions {
            train: 0.7,
            val: 0.15,
        },
        ..SeriesConfig::default()
    };
    let cfg = (preset.series)(base);
    let data = SeriesData::load(&cfg)?;
    println!(
        "{}: {} rows, {} gaps in the timestamps, {} missing values filled ({:?}); windows \
         train {} / val {} / test {} (lookback {}, horizon {})",
        cfg.path.display(),
        data.table.len(),
        data.gaps().len(),
        data.table.filled.len(),
        cfg.missing,
        data.train.len(),
        data.val.len(),
        data.test.len(),
        cfg.lookback,
        cfg.horizon
    );

    let rnn =
        RnnConfig::new(CellKind::Lstm, data.train.n_features(), hidden).num_layers(preset.layers);
    let model = Forecaster::new(rnn, cfg.horizon, 1, seed)?;
    let train_cfg = TrainConfig {
        epochs,
        optimizer: OptimizerConfig::Adam(AdamConfig {
            lr: preset.lr,
            ..Default::default()
        }),
        patience: Some(30),
        seed,
        ..Default::default()
    };
    std::fs::create_dir_all(&run_dir)?;
    let mut trainer = Trainer::new(model, train_cfg, Some(run_dir.clone()))?;
    let train = WindowBatches::new(&data.train, preset.batch, true, seed)?;
    let val = WindowBatches::new(&data.val, 256, false, 0)?;
    let started = std::time::Instant::now();
    let summary = trainer.run(&train, &val, None, &mut Log)?;
    let seconds = started.elapsed().as_secs_f64();

    // Test forecasts in original units, scored against the baselines on the same windows.
    let pred = forecast_windows(trainer.model(), &data.test, 256)?;
    let pred = data.to_original_units(&data.test, pred.view())?;
    let truth = data.truth(&data.test)?;
    let lstm = score(pred.view(), truth.view())?;
    let base = data.baselines(&data.test, Some(preset.season))?;
    let seasonal = base.seasonal_naive.expect("season given");
    println!(
        "\ntest split ({} windows, horizon {}), {} in original units:",
        data.test.len(),
        cfg.horizon,
        preset.unit
    );
    println!("| forecaster | RMSE | MAE |\n|---|---|---|");
    println!("| LSTM {hidden} | {:.3} | {:.3} |", lstm.rmse, lstm.mae);
    println!(
        "| naive (last value) | {:.3} | {:.3} |",
        base.naive.rmse, base.naive.mae
    );
    println!(
        "| seasonal naive ({} rows back) | {:.3} | {:.3} |",
        preset.season, seasonal.rmse, seasonal.mae
    );
    println!(
        "epochs {} (best {:?}), {seconds:.1} s",
        summary.epochs, summary.best_val
    );

    // The plot: the series around the test span, and the forecasts of non-overlapping windows
    // (every `horizon`-th window), so the test span is covered once.
    let years = time_axis(&data);
    let first = data.test.target_rows(0).start;
    let from = first.saturating_sub(3 * cfg.lookback.max(preset.season * 2));
    let orig = data.targets_original();
    let truth_pts: Vec<(f64, f64)> = (from..data.table.len())
        .map(|r| (years[r], orig[[r, 0]]))
        .collect();
    let mut fc_pts = Vec::new();
    for w in (0..data.test.len()).step_by(cfg.horizon) {
        for (h, r) in data.test.target_rows(w).enumerate() {
            fc_pts.push((years[r], pred[[w, h, 0]]));
        }
    }
    let png = run_dir.join("forecast.png");
    rnnkit::plot::ForecastChart::new(format!(
        "{}: LSTM test RMSE {:.3} vs naive {:.3}, seasonal naive {:.3}",
        preset.name, lstm.rmse, base.naive.rmse, seasonal.rmse
    ))
    .x_label("year")
    .y_label(preset.unit)
    .truth("observed", truth_pts)
    .forecast(format!("LSTM, {}-step forecasts", cfg.horizon), fc_pts)
    .save_png(&png)?;
    let metrics = serde_json::json!({
        "dataset": preset.name, "horizon": cfg.horizon, "lookback": cfg.lookback,
        "test_windows": data.test.len(), "hidden": hidden, "epochs": summary.epochs,
        "best_val": summary.best_val, "seconds": seconds,
        "lstm": {"rmse": lstm.rmse, "mae": lstm.mae},
        "naive": {"rmse": base.naive.rmse, "mae": base.naive.mae},
        "seasonal_naive": {"season": preset.season, "rmse": seasonal.rmse, "mae": seasonal.mae},
    });
    std::fs::write(run_dir.join("metrics.json"), format!("{metrics:#}\n"))?;
    // What a later forecast needs to prepare new data exactly as training did: the settings and
    // the scaler fitted on the training rows (the weights are in checkpoints/best.safetensors).
    let prep = serde_json::json!({ "series": &cfg, "scaler": &data.scaler });
    std::fs::write(run_dir.join("series.json"), format!("{prep:#}\n"))?;
    println!(
        "wrote {} and {}",
        png.display(),
        run_dir.join("metrics.json").display()
    );
    Ok(())
}
