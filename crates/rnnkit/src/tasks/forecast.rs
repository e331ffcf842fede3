//! `task = "forecast"`: CSV → missing values, transform and scaling fitted on the training
//! rows → windows with a chronological split → recurrent forecaster → test RMSE/MAE in
//! original units against the naive and seasonal-naive baselines on the same windows, and a
//! PNG of forecast against truth.
//!
//! Beside the common run files it writes `series.json` (the settings and the scaler fitted on
//! the training rows: what `rnnkit forecast` needs to prepare new data the same way),
//! `metrics.json` and `plots/forecast.png`.
//!
//! Afterwards a run is scored on a CSV or its own test split ([`Evaluate`]) and forecasts the
//! steps after the end of a recent history ([`Predict`], `rnnkit forecast`).

use super::OutputPlace;
use super::trained::OUTPUT_BATCH;
use super::{
    Evaluate, EvaluateOptions, Observer, Outcome, Predict, RunOutput, Scored, Splits, Task,
    TaskConfig, TaskKind, bundled_or_given,
};
use crate::data::series::{
    BaselineScores, LoadOptions, MissingPolicy, Scaler, Scores, SeriesConfig, SeriesData,
    SeriesTable, SplitSpec, Transform, WindowBatches, Windows, format_timestamp, score,
    step_forward,
};
use crate::error::{Error, Result, ResultExt};
use crate::io::TensorFile;
use crate::models::Forecaster;
use crate::optim::{AdamConfig, OptimizerConfig};
use crate::resources::{MemoryEstimate, TrainingShape, training_estimate};
use crate::run::{ReportSummary, RunDir, Weights};
use crate::train::{RunSummary, TrainConfig};
use crate::{CellKind, RnnConfig};
use ndarray::{Array1, Array2, Array3, Axis, s};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// A `task = "forecast"` config. Its `Default` forecasts the bundled weekly Mauna Loa CO2
/// series a quarter ahead.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ForecastConfig {
    /// `"forecast"`.
    pub task: TaskKind,
    /// The series: CSV file, columns, missing values, transform, scaling, windows, split.
    pub data: SeriesConfig,
    /// The network.
    pub model: ForecastModel,
    /// Optimization (epochs, batch_size, clip_norm, optimizer, schedule, patience, ...).
    pub train: TrainConfig,
    /// Where results go.
    pub output: RunOutput,
}

/// `[model]` of a forecaster: recurrent stack → last state → linear to horizon × targets.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ForecastModel {
    /// `"lstm"`, `"gru"`, `"rnn_tanh"` or `"rnn_relu"`. Default LSTM.
    pub cell: CellKind,
    /// Hidden units per layer. Default 64.
    pub hidden_size: usize,
    /// Stacked layers. Default 1.
    pub num_layers: usize,
    /// Dropout between stacked layers. Default 0.
    pub dropout: f32,
}

impl Default for ForecastModel {
    fn default() -> Self {
        ForecastModel {
            cell: CellKind::Lstm,
            hidden_size: 64,
            num_layers: 1,
            dropout: 0.0,
        }
    }
}

impl ForecastModel {
    /// The recurrent stack's config for `input_size` features per step.
    pub fn rnn(&self, input_size: usize) -> RnnConfig {
        RnnConfig::new(self.cell, input_size, self.hidden_size)
            .num_layers(self.num_layers)
            .dropout(self.dropout)
    }
}

impl Default for ForecastConfig {
    /// The bundled CO2 forecast: 13 weeks ahead from 104 weeks of first differences (missing
    /// weeks interpolated), a 70/15/15 chronological split, LSTM 64, Adam 3e-3, batches of
    /// 32, up to 60 epochs with patience 30.
    fn default() -> Self {
        ForecastConfig {
            task: TaskKind::Forecast,
            data: SeriesConfig {
                path: PathBuf::from("data/co2/co2.csv"),
                target_columns: vec!["co2".into()],
                timestamp_column: Some("date".into()),
                missing: MissingPolicy::Interpolate,
                transform: Transform::Diff,
                lookback: 104,
                horizon: 13,
                split: SplitSpec::Fractions {
                    train: 0.7,
                    val: 0.15,
                },
                season: Some(52),
                ..SeriesConfig::default()
            },
            model: ForecastModel::default(),
            train: TrainConfig {
                epochs: 60,
                batch_size: 32,
                optimizer: OptimizerConfig::Adam(AdamConfig {
                    lr: 3e-3,
                    ..Default::default()
                }),
                patience: Some(30),
                ..Default::default()
            },
            output: RunOutput::default(),
        }
    }
}

impl TaskConfig for ForecastConfig {
    const ABOUT_DEFAULT: &'static str = "the bundled weekly CO2 series, 13 weeks ahead";

    fn train(&self) -> &TrainConfig {
        &self.train
    }

    fn output(&self) -> OutputPlace<'_> {
        self.output.place()
    }
}

/// Trains (or resumes) a forecaster per `config` in `run`.
///
/// # Errors
/// As [`super::train`].
pub fn train(
    config: &ForecastConfig,
    run: &RunDir,
    resuming: bool,
    observer: &mut dyn Observer,
) -> Result<Outcome> {
    super::train::<Forecast>(config, run, resuming, observer)
}

/// Scores the forecaster of `run` (see [`super::evaluate`]).
///
/// # Errors
/// As [`super::evaluate`].
pub fn evaluate(
    config: &ForecastConfig,
    run: &RunDir,
    options: &EvaluateOptions,
) -> Result<Scored<ForecastMetrics>> {
    super::evaluate::<Forecast>(config, run, options)
}

/// `series.json`: how the training data was prepared, to prepare new data the same way.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SeriesPrep {
    /// The data settings (as in `[data]`).
    pub series: SeriesConfig,
    /// The scaler fitted on the training rows (all loaded columns, transformed).
    pub scaler: Scaler,
}

/// A forecasting run's data: the prepared series and its window batches.
pub struct Forecast {
    data: SeriesData,
    train: WindowBatches<'static>,
    valid: WindowBatches<'static>,
    test: Option<WindowBatches<'static>>,
    /// `train.eval_batch_size`, for scoring the validation windows.
    valid_batch: usize,
}

/// The forecaster `config` describes for `features` inputs per step, with fresh weights.
///
/// # Errors
/// A model config that cannot be built.
pub fn build_model(config: &ForecastConfig, features: usize) -> Result<Forecaster> {
    Forecaster::new(
        config.model.rnn(features),
        config.data.horizon,
        config.data.target_columns.len(),
        config.train.seed,
    )
}

impl Task for Forecast {
    const KIND: TaskKind = TaskKind::Forecast;
    type Config = ForecastConfig;
    type Model = Forecaster;

    fn prepare(config: &ForecastConfig, run: &RunDir, resuming: bool) -> Result<Self> {
        let mut series = config.data.clone();
        series.path = bundled_or_given(&config.data.path);
        let data = SeriesData::load(&series).with_context(|| {
            format!(
                "preparing the series (data.path = {})",
                config.data.path.display()
            )
        })?;
        if !resuming {
            let prep = SeriesPrep {
                series: config.data.clone(),
                scaler: data.scaler.clone(),
            };
            run.write_json("series.json", &prep)?;
        }
        let (t, eval) = (&config.train, config.train.eval_batch_size);
        // The sources own copies of the windows (the rows of each split, small beside the
        // model), so the task can hold both.
        let train = WindowBatches::owned(data.train.clone(), t.batch_size, true, t.seed)
            .context("the training split")?;
        let valid = WindowBatches::owned(data.val.clone(), eval, false, 0)
            .context("the validation split")?;
        let test = if data.test.is_empty() {
            None
        } else {
            Some(
                WindowBatches::owned(data.test.clone(), eval, false, 0)
                    .context("the test split")?,
            )
        };
        Ok(Forecast {
            data,
            train,
            valid,
            test,
            valid_batch: eval,
        })
    }

    fn describe(&self, config: &ForecastConfig) -> String {
        let (d, c, m) = (&self.data, &config.data, &config.model);
        format!(
            "data {}: {} rows, {} gaps, {} missing values filled ({:?}); windows train {} / \
             valid {} / test {} (lookback {}, horizon {}, {} features)\nmodel {} {}x{}",
            d.table.path,
            d.table.len(),
            d.gaps().len(),
            d.table.filled.len(),
            c.missing,
            d.train.len(),
            d.val.len(),
            d.test.len(),
            c.lookback,
            c.horizon,
            d.train.n_features(),
            m.cell,
            m.num_layers,
            m.hidden_size,
        )
    }

    fn model(&self, config: &ForecastConfig) -> Result<Forecaster> {
        build_model(config, self.data.train.n_features())
    }

    fn memory(&self, config: &ForecastConfig) -> MemoryEstimate {
        let rnn = config.model.rnn(self.data.train.n_features());
        let outputs = (config.data.horizon * config.data.target_columns.len()) as f64;
        training_estimate(&TrainingShape {
            rnn: &rnn,
            other_params: outputs * (rnn.output_size() as f64 + 1.0),
            optimizer: &config.train.optimizer,
            batch: config.train.batch_size.min(self.data.train.len()),
            eval_batch: (config.train.eval_batch_size)
                .min(self.data.val.len().max(self.data.test.len())),
            steps: config.data.lookback,
            outputs_per_step: 0,
            data_bytes: 0.0,
        })
    }

    fn splits(&self) -> Splits<'_, Forecaster> {
        Splits {
            train: &self.train,
            valid: &self.valid,
            test: self.test.as_ref().map(|t| t as _),
        }
    }

    fn loss_name(&self) -> String {
        "mean squared error (scaled units)".into()
    }

    fn throughput(&self, summary: &RunSummary, seconds: f64, _counted: u64) -> (f64, String) {
        (
            self.data.train.len() as f64 * summary.epochs.max(1) as f64 / seconds.max(1e-9),
            "windows/s (training epochs over wall time)".into(),
        )
    }

    fn valid_metrics(&self, model: &Forecaster) -> Result<Vec<(String, f64)>> {
        let d = &self.data;
        let s = score_windows(model, d, &d.val, self.valid_batch)?;
        Ok(vec![
            ("rmse".into(), s.model.rmse),
            ("mae".into(), s.model.mae),
        ])
    }

    fn finish(
        &self,
        config: &ForecastConfig,
        run: &RunDir,
        model: &Forecaster,
        summary: &RunSummary,
        report: &mut ReportSummary,
        observer: &mut dyn Observer,
    ) -> Result<()> {
        let (data, c) = (&self.data, &config.data);
        report.task = format!(
            "forecast {} steps of {}",
            c.horizon,
            c.target_columns.join(", ")
        );
        if self.test.is_none() {
            return Ok(());
        }
        let s = score_windows(model, data, &data.test, config.train.eval_batch_size)?;
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
        {
            let title = format!(
                "{}: test RMSE {:.3} vs naive {:.3}{}",
                c.target_columns[0],
                s.model.rmse,
                s.baselines.naive.rmse,
                seasonal.map_or(String::new(), |b| format!(", seasonal naive {:.3}", b.rmse))
            );
            let png = run.plots_dir().join("forecast.png");
            forecast_png(data, &data.test, &s.forecast, title, &png)?;
        }
        let metrics = serde_json::json!({
            "horizon": c.horizon, "lookback": c.lookback,
            "test_windows": data.test.len(), "epochs": summary.epochs,
            "best_val": summary.best_val, "seconds": report.wall_seconds,
            "model": {"rmse": s.model.rmse, "mae": s.model.mae},
            "naive": {"rmse": s.baselines.naive.rmse, "mae": s.baselines.naive.mae},
            "seasonal_naive": seasonal.map(|b| serde_json::json!({
                "season": data.config.season, "rmse": b.rmse, "mae": b.mae})),
        });
        run.write_json("metrics.json", &metrics)?;
        observer.note(&format!(
            "test ({} windows, original units): RMSE {:.4} (naive {:.4}{}), MAE {:.4}",
            data.test.len(),
            s.model.rmse,
            s.baselines.naive.rmse,
            seasonal.map_or(String::new(), |b| format!(", seasonal naive {:.4}", b.rmse)),
            s.model.mae
        ));
        Ok(())
    }
}

/// The model's forecast for every window, `[W, H·K]` in scaled units.
///
/// # Errors
/// Windows that do not fit the model.
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
            .map_err(|e| Error::Shape(format!("forecast: {e}")))?;
        out.slice_mut(s![chunk[0]..chunk[0] + chunk.len(), ..])
            .assign(&p);
    }
    Ok(out)
}

/// Each row's time as a fractional year (the row index when the series has no timestamps).
///
/// ```
/// use rnnkit::data::series::{SeriesConfig, SeriesData};
/// # let dir = std::env::temp_dir().join(format!("rnnkit-doc-axis-{}", std::process::id()));
/// # std::fs::create_dir_all(&dir).unwrap();
/// let csv = dir.join("s.csv");
/// std::fs::write(&csv, "v\n1\n2\n3\n4\n5\n6\n7\n8\n9\n10\n").unwrap();
/// let cfg = SeriesConfig { path: csv, target_columns: vec!["v".into()], lookback: 2,
///     horizon: 1, ..SeriesConfig::default() };
/// let data = SeriesData::load(&cfg).unwrap();
/// assert_eq!(rnnkit::tasks::forecast::time_axis(&data)[3], 3.0);
/// ```
pub fn time_axis(data: &SeriesData) -> Vec<f64> {
    match &data.table.timestamps {
        Some(ts) => ts
            .iter()
            .map(|&s| 1970.0 + s as f64 / (365.2425 * 86400.0))
            .collect(),
        None => (0..data.table.len()).map(|r| r as f64).collect(),
    }
}

/// Test scores of a forecaster on windows of a series, in original units, with the baselines.
pub struct ForecastScores {
    /// The model's forecasts `[W, H, K]` in original units.
    pub forecast: Array3<f64>,
    /// The model's RMSE and MAE.
    pub model: Scores,
    /// The baselines' on the same windows.
    pub baselines: BaselineScores,
}

/// Scores `model` on `windows` (of `data`) in original units against the baselines.
///
/// # Errors
/// No complete window ([`Error::Config`]), windows that do not fit the model.
pub fn score_windows(
    model: &Forecaster,
    data: &SeriesData,
    windows: &Windows,
    batch: usize,
) -> Result<ForecastScores> {
    if windows.is_empty() {
        return Err(Error::Config(format!(
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
///
/// # Errors
/// The chart cannot be written.
#[cfg(feature = "plot")]
pub fn forecast_png(
    data: &SeriesData,
    windows: &Windows,
    forecast: &Array3<f64>,
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
    crate::plot::ForecastChart::new(title)
        .x_label(x_label)
        .y_label(data.config.target_columns[0].clone())
        .truth("observed", truth)
        .forecast(format!("{h}-step forecasts"), fc)
        .save_png(path)
        .with_context(|| format!("drawing {}", path.display()))
}

/// A trained forecaster with what it needs to prepare new data.
pub struct LoadedForecaster {
    /// The run's config.
    pub config: ForecastConfig,
    /// The data settings and the training scaler.
    pub prep: SeriesPrep,
    /// The model with the run's `which` weights.
    pub model: Forecaster,
}

impl LoadedForecaster {
    /// Loads the forecaster of a `task = "forecast"` run directory.
    ///
    /// # Errors
    /// A missing or unreadable `series.json` or checkpoint, weights of another shape.
    pub fn load(run: &RunDir, config: &ForecastConfig, which: Weights) -> Result<Self> {
        let prep: SeriesPrep = run
            .read_json("series.json")
            .context("a forecast run writes series.json when training starts")?;
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
        run.load_model(&mut model, which)?;
        Ok(LoadedForecaster {
            config: config.clone(),
            prep,
            model,
        })
    }

    /// New rows (a CSV with the training columns) prepared with the training scaler: every
    /// complete window in `test`.
    ///
    /// # Errors
    /// An unreadable CSV or one without the training columns.
    pub fn prepare(&self, csv: &Path) -> Result<SeriesData> {
        let mut series = self.prep.series.clone();
        series.path = csv.to_path_buf();
        let opts = LoadOptions {
            columns: series.columns(),
            timestamp_column: series.timestamp_column.clone(),
            missing: series.missing,
        };
        let table = SeriesTable::from_path(csv, &opts)?;
        SeriesData::with_scaler(table, &series, self.prep.scaler.clone())
    }
}

/// A forecaster's scores on the windows of a series, in original units, beside the naive
/// baselines' on the same windows.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ForecastMetrics {
    /// `"forecast"`.
    pub task: TaskKind,
    /// What was scored: the file, or the test split of the run's series.
    pub data: String,
    /// Complete windows scored.
    pub windows: usize,
    /// Steps forecast per window.
    pub horizon: usize,
    /// The model's RMSE.
    pub rmse: f64,
    /// The model's MAE.
    pub mae: f64,
    /// RMSE of repeating the last value.
    pub naive_rmse: f64,
    /// MAE of repeating the last value.
    pub naive_mae: f64,
    /// RMSE of repeating the value a season back, when the series has a season within the
    /// lookback.
    pub seasonal_naive_rmse: Option<f64>,
    /// MAE of the same.
    pub seasonal_naive_mae: Option<f64>,
}

impl Evaluate for Forecast {
    type Trained = LoadedForecaster;
    type Data = SeriesData;
    type Metrics = ForecastMetrics;

    fn quantize(trained: &mut LoadedForecaster) -> &'static str {
        trained.model.quantize()
    }

    fn load(config: &ForecastConfig, run: &RunDir, which: Weights) -> Result<LoadedForecaster> {
        LoadedForecaster::load(run, config, which)
    }

    /// A CSV prepared with the training scaler (its complete windows are all scored), or the
    /// run's series with its own split.
    fn eval_data(
        trained: &LoadedForecaster,
        _run: &RunDir,
        path: Option<&Path>,
    ) -> Result<(SeriesData, String)> {
        Ok(match path {
            Some(p) => (trained.prepare(p)?, p.display().to_string()),
            None => {
                let mut series = trained.config.data.clone();
                series.path = bundled_or_given(&trained.config.data.path);
                (
                    SeriesData::load(&series)?,
                    format!("the test split of {}", series.path.display()),
                )
            }
        })
    }

    fn score(
        trained: &LoadedForecaster,
        data: &SeriesData,
        source: String,
    ) -> Result<ForecastMetrics> {
        let windows = &data.test;
        let batch = trained.config.train.eval_batch_size;
        let s = score_windows(&trained.model, data, windows, batch)?;
        let seasonal = s.baselines.seasonal_naive;
        Ok(ForecastMetrics {
            task: TaskKind::Forecast,
            data: source,
            windows: windows.len(),
            horizon: s.forecast.len_of(Axis(1)),
            rmse: s.model.rmse,
            mae: s.model.mae,
            naive_rmse: s.baselines.naive.rmse,
            naive_mae: s.baselines.naive.mae,
            seasonal_naive_rmse: seasonal.map(|b| b.rmse),
            seasonal_naive_mae: seasonal.map(|b| b.mae),
        })
    }

    /// `inputs` `[L, B, F]` and `forecasts` `[B, H, K]` (scaled units) of the first 64 test
    /// windows.
    fn outputs(trained: &LoadedForecaster, data: &SeriesData) -> Result<TensorFile> {
        let windows = &data.test;
        let idx: Vec<usize> = (0..windows.len().min(OUTPUT_BATCH)).collect();
        let b = windows.batch(&idx)?;
        let pred = trained.model.predict(b.inputs.view(), None)?;
        let mut file = TensorFile::default();
        file.f32.insert("inputs".into(), b.inputs.into_dyn());
        file.f32.insert("forecasts".into(), pred.into_dyn());
        Ok(file)
    }
}

impl Predict for Forecast {
    /// A CSV of the recent history, with the training columns and at least `lookback` rows.
    type Query<'q> = &'q Path;
    type Answer = NextSteps;

    /// The `horizon` steps after the history's last row, in original units.
    fn predict(trained: &LoadedForecaster, csv: &Path) -> Result<NextSteps> {
        let data = trained.prepare(csv)?;
        let x = data.future_input()?;
        let pred = trained.model.predict(x.view(), None)?; // [1, H, K]
        let flat: Array1<f32> = pred.iter().copied().collect();
        let values = data.future_to_original(flat.view())?; // [H, K]
        let times = match (&data.table.timestamps, data.table.step) {
            (Some(ts), Some(step)) => {
                let last = *ts.last().expect("a loaded table has rows");
                Some(
                    (1..=values.nrows() as i64)
                        .map(|k| step_forward(last, step, k))
                        .collect(),
                )
            }
            _ => None,
        };
        Ok(NextSteps {
            data,
            values,
            times,
        })
    }
}

/// The forecast of the steps after the end of a history ([`Predict`] for [`Forecast`]).
pub struct NextSteps {
    /// The history, prepared with the training scaler.
    pub data: SeriesData,
    /// `[H, K]`: the forecast per step after the last row, per target, in original units.
    pub values: Array2<f64>,
    /// Each step's time (seconds since 1970), when the history has regular timestamps.
    pub times: Option<Vec<i64>>,
}

impl NextSteps {
    /// The forecast as CSV: `step`, `timestamp` (when the series has timestamps), then one
    /// column per target.
    pub fn to_csv(&self) -> String {
        let mut csv = String::from("step");
        if self.times.is_some() {
            csv.push_str(",timestamp");
        }
        for t in &self.data.config.target_columns {
            csv.push(',');
            csv.push_str(&csv_field(t));
        }
        csv.push('\n');
        for (h, row) in self.values.rows().into_iter().enumerate() {
            csv.push_str(&(h + 1).to_string());
            if let Some(ts) = &self.times {
                csv.push(',');
                csv.push_str(&format_timestamp(ts[h]));
            }
            for v in row {
                csv.push_str(&format!(",{v}"));
            }
            csv.push('\n');
        }
        csv
    }

    /// Draws the history's last rows and the forecast after them, for the first target.
    ///
    /// # Errors
    /// The chart cannot be written (the error names the file).
    #[cfg(feature = "plot")]
    pub fn save_png(&self, png: &Path) -> Result<()> {
        let (data, values) = (&self.data, &self.values);
        let years = time_axis(data);
        let to_year = |s: i64| 1970.0 + s as f64 / (365.2425 * 86400.0);
        let n = data.table.len();
        let keep = (4 * data.config.lookback).max(4 * values.nrows()).min(n);
        let orig = data.targets_original();
        let history: Vec<(f64, f64)> = (n - keep..n).map(|r| (years[r], orig[[r, 0]])).collect();
        let times = self.times.as_deref();
        let future: Vec<(f64, f64)> = (0..values.nrows())
            .map(|h| {
                let x = times.map_or((n + h) as f64, |t| to_year(t[h]));
                (x, values[[h, 0]])
            })
            .collect();
        let target = &data.config.target_columns[0];
        crate::plot::ForecastChart::new(format!(
            "{target}: the next {} steps after {}",
            values.nrows(),
            data.table.path
        ))
        .x_label(if times.is_some() { "year" } else { "row" })
        .y_label(target.clone())
        .truth("history", history)
        .forecast("forecast", future)
        .save_png(png)
    }
}

/// A CSV field, quoted when it needs to be.
fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_fields_are_quoted_only_when_they_must_be() {
        assert_eq!(csv_field("co2"), "co2");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
    }
}
