//! `rnnkit train` with `task = "forecast"`: CSV → missing values, transform and scaling
//! fitted on the training rows → windows with a chronological split → recurrent forecaster →
//! test RMSE/MAE in original units against the naive and seasonal-naive baselines on the same
//! windows, and a PNG of forecast against truth.
//!
//! Beside the common run files it writes `series.json` (the settings and the scaler fitted on
//! the training rows: what `rnnkit forecast` needs to prepare new data the same way),
//! `metrics.json` and `plots/forecast.png`.

use crate::run_config::usage;
use crate::seq_config::ForecastFile;
use anyhow::{Context, Result};
use ndarray::{Array2, s};
use rnnkit::data::series::WindowBatches;
use rnnkit::data::series::{Scaler, SeriesConfig, SeriesData, Windows, score};
use rnnkit::models::Forecaster;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// `series.json`: how the training data was prepared, to prepare new data the same way.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SeriesPrep {
    /// The data settings (as in `[data]`).
    pub series: SeriesConfig,
    /// The scaler fitted on the training rows (all loaded columns, transformed).
    pub scaler: Scaler,
}

impl SeriesPrep {
    /// Reads `RUN_DIR/series.json`.
    pub fn load(run_dir: &Path) -> Result<SeriesPrep> {
        let path = run_dir.join("series.json");
        let text = std::fs::read_to_string(&path).map_err(|e| {
            usage(format!(
                "reading {}: {e} (a forecast run writes it when training starts)",
                path.display()
            ))
        })?;
        serde_json::from_str(&text).with_context(|| format!("reading {}", path.display()))
    }
}

/// The forecaster a config describes for `features` inputs per step, with fresh weights.
pub fn build_model(cfg: &ForecastFile, features: usize) -> Result<Forecaster> {
    Ok(Forecaster::new(
        cfg.model.rnn(features),
        cfg.data.horizon,
        cfg.data.target_columns.len(),
        cfg.train.seed,
    )?)
}

/// The model's forecast for every window, `[W, H·K]` in scaled units.
pub fn forecast_windows(
    model: &Forecaster,
    windows: &Windows,
    batch: usize,
) -> Result<Array2<f32>> {
    let (w, hk) = (windows.len(), windows.horizon() * windows.n_targets());
    let mut out = Array2::zeros((w, hk));
    let idx: Vec<usize> = (0..w).collect();
    for chunk in idx.chunks(batch.max(1)) {
        let b = windows.batch(chunk)?;
        let p = model.predict(b.inputs.view(), None)?; // [B, H, K]
        let p = p
            .into_shape_with_order((chunk.len(), hk))
            .context("forecast shape")?;
        out.slice_mut(s![chunk[0]..chunk[0] + chunk.len(), ..])
            .assign(&p);
    }
    Ok(out)
}

/// Each row's time as a fractional year (the row index when the series has no timestamps).
#[cfg(feature = "plot")]
pub fn time_axis(data: &SeriesData) -> Vec<f64> {
    match &data.table.timestamps {
        Some(ts) => ts
            .iter()
            .map(|&s| 1970.0 + s as f64 / (365.2425 * 86400.0))
            .collect(),
        None => (0..data.table.len()).map(|r| r as f64).collect(),
    }
}

/// Test scores of a forecaster on `windows` of `data`, in original units, with the baselines.
pub struct ForecastScores {
    /// The model's forecasts `[W, H, K]` in original units.
    pub forecast: ndarray::Array3<f64>,
    /// The model's RMSE and MAE.
    pub model: rnnkit::data::series::Scores,
    /// The baselines' on the same windows.
    pub baselines: rnnkit::data::series::BaselineScores,
}

/// Scores `model` on `windows` (of `data`) in original units against the baselines.
pub fn score_windows(
    model: &Forecaster,
    data: &SeriesData,
    windows: &Windows,
    batch: usize,
) -> Result<ForecastScores> {
    if windows.is_empty() {
        return Err(usage(format!(
            "{}: no complete window (lookback {} + horizon {} rows) to score",
            data.table.path, data.config.lookback, data.config.horizon
        )));
    }
    let pred = forecast_windows(model, windows, batch)?;
    let forecast = data.to_original_units(windows, pred.view())?;
    let truth = data.truth(windows)?;
    let scores = score(forecast.view(), truth.view())?;
    let season = data.config.season.filter(|&m| m <= data.config.lookback);
    let baselines = data.baselines(windows, season)?;
    Ok(ForecastScores {
        forecast,
        model: scores,
        baselines,
    })
}

/// Draws the series around `windows` and the forecasts of every `horizon`-th window (so each
/// row is forecast once), for the first target.
#[cfg(feature = "plot")]
pub fn forecast_png(
    data: &SeriesData,
    windows: &Windows,
    forecast: &ndarray::Array3<f64>,
    title: String,
    path: &Path,
) -> Result<()> {
    let years = time_axis(data);
    let h = data.config.horizon;
    let first = windows.target_rows(0).start;
    let span = 3 * data
        .config
        .lookback
        .max(data.config.season.unwrap_or(0) * 2);
    let from = first.saturating_sub(span);
    let orig = data.targets_original();
    let truth: Vec<(f64, f64)> = (from..data.table.len())
        .map(|r| (years[r], orig[[r, 0]]))
        .collect();
    let mut fc = Vec::new();
    for w in (0..windows.len()).step_by(h) {
        for (i, r) in windows.target_rows(w).enumerate() {
            fc.push((years[r], forecast[[w, i, 0]]));
        }
    }
    let x_label = if data.table.timestamps.is_some() {
        "year"
    } else {
        "row"
    };
    rnnkit::plot::ForecastChart::new(title)
        .x_label(x_label)
        .y_label(data.config.target_columns[0].clone())
        .truth("observed", truth)
        .forecast(format!("{h}-step forecasts"), fc)
        .save_png(path)
        .with_context(|| format!("drawing {}", path.display()))?;
    Ok(())
}

/// Trains (or resumes) the forecaster of `cfg` in `run_dir`.
pub fn train(
    cfg: &ForecastFile,
    run_dir: &Path,
    resuming: bool,
    quiet: bool,
    threads: usize,
) -> Result<()> {
    cfg.train
        .validate()
        .map_err(|e| usage(format!("[train]: {e}")))?;
    let mut series = cfg.data.clone();
    series.path = crate::train_cmd::bundled_or_given(&cfg.data.path);
    let data = SeriesData::load(&series).with_context(|| {
        format!(
            "preparing the series (data.path = {})",
            cfg.data.path.display()
        )
    })?;
    if !resuming {
        let prep = SeriesPrep {
            series: cfg.data.clone(),
            scaler: data.scaler.clone(),
        };
        std::fs::write(
            run_dir.join("series.json"),
            serde_json::to_string_pretty(&prep)? + "\n",
        )?;
    }
    if !quiet {
        eprintln!(
            "data {}: {} rows, {} gaps, {} missing values filled ({:?}); windows train {} / \
             valid {} / test {} (lookback {}, horizon {}, {} features)\nmodel {} {}x{}; \
             {threads} threads\nrun directory {}",
            series.path.display(),
            data.table.len(),
            data.gaps().len(),
            data.table.filled.len(),
            cfg.data.missing,
            data.train.len(),
            data.val.len(),
            data.test.len(),
            cfg.data.lookback,
            cfg.data.horizon,
            data.train.n_features(),
            cfg.model.cell,
            cfg.model.num_layers,
            cfg.model.hidden_size,
            run_dir.display()
        );
    }
    let model = build_model(cfg, data.train.n_features())?;
    let eval = cfg.train.eval_batch_size;
    let train_set = WindowBatches::new(&data.train, cfg.train.batch_size, true, cfg.train.seed)
        .context("the training split")?;
    let valid_set =
        WindowBatches::new(&data.val, eval, false, 0).context("the validation split")?;
    let test_set = if data.test.is_empty() {
        None
    } else {
        Some(WindowBatches::new(&data.test, eval, false, 0)?)
    };
    let place = crate::seq_run::RunPlace {
        dir: run_dir,
        resuming,
        quiet,
    };
    let data_sets = crate::seq_run::SeqData {
        train: &train_set,
        valid: &valid_set,
        test: test_set
            .as_ref()
            .map(|t| t as &dyn rnnkit::data::Batches<Batch = _>),
    };
    let crate::seq_run::Fitted {
        trainer,
        summary,
        seconds,
    } = crate::seq_run::fit(model, &cfg.train, &place, data_sets)?;
    crate::run_files::save_model(
        run_dir,
        rnnkit::module::named_tensors(trainer.model(), ""),
        "forecast",
    )?;

    let loss_name = "mean squared error (scaled units)";
    let mut plots: Vec<PathBuf> = crate::run_report::write_plots(
        run_dir,
        cfg.train.clip_norm.map(f64::from),
        loss_name,
        None,
    )
    .context("drawing the plots")?;
    plots.extend(crate::run_report::write_diagnostics_plot(run_dir)?);
    let mut report = crate::run_report::ReportSummary {
        task: format!(
            "forecast {} steps of {}",
            cfg.data.horizon,
            cfg.data.target_columns.join(", ")
        ),
        loss_name: loss_name.into(),
        throughput: Some(
            data.train.len() as f64 * summary.epochs.max(1) as f64 / seconds.max(1e-9),
        ),
        throughput_unit: "windows/s (training epochs over wall time)".into(),
        ..crate::train_cmd::report_base(
            run_dir,
            &crate::classify_train::summary_status(&summary, run_dir),
            seconds,
        )
    };
    report.best_val = summary.best_val;
    report.epochs = summary.epochs;
    report.steps = summary.steps;
    report.clip_rate = cfg.train.clip_norm.map(|_| summary.clip_rate);
    report.skipped = summary.skipped;
    report.training_seconds = Some(summary.train_seconds);
    if test_set.is_some() {
        let s = score_windows(trainer.model(), &data, &data.test, eval)?;
        let seasonal = s.baselines.seasonal_naive;
        let mut rows = vec![
            ("test RMSE (model)".to_string(), s.model.rmse),
            ("test MAE (model)".to_string(), s.model.mae),
            (
                "test RMSE (naive: last value)".to_string(),
                s.baselines.naive.rmse,
            ),
        ];
        if let Some(b) = seasonal {
            rows.push((
                format!(
                    "test RMSE (seasonal naive, {} rows back)",
                    data.config.season.unwrap_or(0)
                ),
                b.rmse,
            ));
        }
        for (name, v) in &rows {
            report.test_metrics.push((name.clone(), format!("{v:.4}")));
        }
        #[cfg(feature = "plot")]
        let title = format!(
            "{}: test RMSE {:.3} vs naive {:.3}{}",
            cfg.data.target_columns[0],
            s.model.rmse,
            s.baselines.naive.rmse,
            seasonal.map_or(String::new(), |b| format!(", seasonal naive {:.3}", b.rmse))
        );
        #[cfg(feature = "plot")]
        let png = run_dir.join("plots/forecast.png");
        #[cfg(feature = "plot")]
        forecast_png(&data, &data.test, &s.forecast, title, &png)?;
        #[cfg(feature = "plot")]
        plots.push(png);
        let metrics = serde_json::json!({
            "horizon": cfg.data.horizon, "lookback": cfg.data.lookback,
            "test_windows": data.test.len(), "epochs": summary.epochs,
            "best_val": summary.best_val, "seconds": seconds,
            "model": {"rmse": s.model.rmse, "mae": s.model.mae},
            "naive": {"rmse": s.baselines.naive.rmse, "mae": s.baselines.naive.mae},
            "seasonal_naive": seasonal.map(|b| serde_json::json!({
                "season": data.config.season, "rmse": b.rmse, "mae": b.mae})),
        });
        std::fs::write(run_dir.join("metrics.json"), format!("{metrics:#}\n"))?;
        if !quiet {
            eprintln!(
                "test ({} windows, original units): RMSE {:.4} (naive {:.4}{}), MAE {:.4}",
                data.test.len(),
                s.model.rmse,
                s.baselines.naive.rmse,
                seasonal.map_or(String::new(), |b| format!(", seasonal naive {:.4}", b.rmse)),
                s.model.mae
            );
        }
    }
    let report_path = crate::run_report::write_report_md(run_dir, &report)?;
    if !quiet {
        crate::train_cmd::print_outputs(run_dir, &summary.best_val, &plots, &report_path);
    }
    Ok(())
}

/// A trained forecaster with what it needs to prepare new data.
pub struct LoadedForecaster {
    /// The data settings and the training scaler.
    pub prep: SeriesPrep,
    /// The model with the run's best weights (the latest with `latest`).
    pub model: Forecaster,
}

/// Loads the forecaster of a `task = "forecast"` run directory.
pub fn load(run_dir: &Path, config: &ForecastFile, latest: bool) -> Result<LoadedForecaster> {
    let prep = SeriesPrep::load(run_dir)?;
    let s = &prep.series;
    let mut inputs: Vec<&String> = if s.targets_as_inputs {
        s.target_columns.iter().collect()
    } else {
        Vec::new()
    };
    for f in &s.feature_columns {
        if !inputs.contains(&f) {
            inputs.push(f);
        }
    }
    let mut model = build_model(config, inputs.len())?;
    let tensors = crate::run_files::model_tensors(run_dir, latest)?;
    rnnkit::module::load_named(&mut model, "", &tensors)
        .with_context(|| format!("loading the weights of {}", run_dir.display()))?;
    Ok(LoadedForecaster { prep, model })
}

impl LoadedForecaster {
    /// New rows (a CSV with the training columns) prepared with the training scaler: every
    /// complete window in `test`.
    pub fn prepare(&self, csv: &Path) -> Result<SeriesData> {
        let mut series = self.prep.series.clone();
        series.path = csv.to_path_buf();
        let opts = rnnkit::data::series::LoadOptions {
            columns: series.columns(),
            timestamp_column: series.timestamp_column.clone(),
            missing: series.missing,
        };
        let table = rnnkit::data::series::SeriesTable::from_path(csv, &opts)
            .with_context(|| format!("reading {}", csv.display()))?;
        Ok(SeriesData::with_scaler(
            table,
            &series,
            self.prep.scaler.clone(),
        )?)
    }
}
