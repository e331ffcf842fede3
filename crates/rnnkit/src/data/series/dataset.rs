//! The whole preparation in one call: [`SeriesConfig`] (plain data, from TOML) →
//! [`SeriesData`] (train / validation / test windows ready for training, the fitted scaler, the
//! gap report), and the way back from a model's forecast to original units.
//!
//! The pipeline, in order:
//! 1. load the CSV, fill missing values per policy, check timestamps, find gaps;
//! 2. apply the transform to the target columns (differencing drops the first row);
//! 3. cut the rows chronologically;
//! 4. fit the scaler on the training rows only, scale every row;
//! 5. window each split (with `context`, validation/test lookbacks may start earlier).

use super::baseline::{Scores, naive, score, seasonal_naive, truth};
use super::csv_table::{LoadOptions, SeriesTable};
use super::missing::MissingPolicy;
use super::scale::{Scaler, ScalerKind};
use super::split::{SplitRows, SplitSpec, window_splits};
use super::time::Gap;
use super::transform::Transform;
use super::window::Windows;
use crate::error::{Error, Result};
use ndarray::{Array2, Array3, ArrayView2, Axis};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// Everything that turns a CSV file into training windows.
///
/// In TOML:
/// ```toml
/// path = "data/co2/co2.csv"
/// target_columns = ["co2"]
/// timestamp_column = "date"
/// missing = "interpolate"
/// scaler = "standard"
/// lookback = 52
/// split = { by = "fractions", train = 0.7, val = 0.15 }
/// ```
///
/// ```
/// use rnnkit::data::series::{MissingPolicy, SeriesConfig};
/// let cfg: SeriesConfig = serde_json::from_str(
///     r#"{"path": "co2.csv", "target_columns": ["co2"], "missing": "ffill", "lookback": 52}"#,
/// ).unwrap();
/// assert_eq!(cfg.missing, MissingPolicy::Ffill);
/// assert_eq!(cfg.horizon, 1);
/// cfg.validate().unwrap();
/// assert!(serde_json::from_str::<SeriesConfig>(r#"{"lookbak": 3}"#).is_err());
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SeriesConfig {
    /// The CSV file (with a header line).
    pub path: PathBuf,
    /// Columns to forecast (`K` of them). Required.
    pub target_columns: Vec<String>,
    /// Further input columns (covariates), after the targets' own past values.
    pub feature_columns: Vec<String>,
    /// Whether the targets' past values are inputs (the autoregressive setup). Default true;
    /// false forecasts the targets from the feature columns alone.
    pub targets_as_inputs: bool,
    /// The timestamp column, if any (checked to increase; gaps reported; needed for cutoffs).
    pub timestamp_column: Option<String>,
    /// Missing cells: `"error"` (default), `"ffill"` or `"interpolate"`.
    pub missing: MissingPolicy,
    /// Normalization fitted on the training rows: `"standard"` (default), `"min_max"`,
    /// `"robust"`, `"none"`.
    pub scaler: ScalerKind,
    /// Transform of the target columns before scaling: `"none"` (default), `"log"`, `"log1p"`,
    /// `"diff"`.
    pub transform: Transform,
    /// Input steps per window, `L ≥ 1`.
    pub lookback: usize,
    /// Steps forecast per window, `H ≥ 1`.
    pub horizon: usize,
    /// Rows between window starts, `S ≥ 1`.
    pub stride: usize,
    /// How to cut train / validation / test.
    pub split: SplitSpec,
    /// Whether validation/test windows may take their lookback from the previous split (their
    /// targets never do). Default true: see [`crate::data::series::split`].
    pub context: bool,
    /// The season length in rows, if the series has one (52 for weekly data with a yearly
    /// cycle, 12 for monthly, 24 for hourly with a daily one): what the seasonal-naive
    /// baseline repeats. Default none (no seasonal baseline).
    pub season: Option<usize>,
}

impl Default for SeriesConfig {
    /// No file and no targets (both must be set); targets as inputs; no timestamp; missing
    /// values an error (fill only on purpose); standard scaling (what recurrent nets train
    /// best on); no transform; lookback 24, horizon 1, stride 1 (one-step forecasts from a day
    /// of hourly data, every window); a 70/15/15 split; context on.
    fn default() -> Self {
        SeriesConfig {
            path: PathBuf::new(),
            target_columns: Vec::new(),
            feature_columns: Vec::new(),
            targets_as_inputs: true,
            timestamp_column: None,
            missing: MissingPolicy::Error,
            scaler: ScalerKind::Standard,
            transform: Transform::None,
            lookback: 24,
            horizon: 1,
            stride: 1,
            split: SplitSpec::default(),
            context: true,
            season: None,
        }
    }
}

impl SeriesConfig {
    /// Checks the settings that need no data.
    ///
    /// # Errors
    /// [`Error::Config`] naming the field.
    pub fn validate(&self) -> Result<()> {
        if self.target_columns.is_empty() {
            return Err(Error::Config(
                "series: target_columns: name at least one column".into(),
            ));
        }
        if !self.targets_as_inputs && self.feature_columns.is_empty() {
            return Err(Error::Config(
                "series: targets_as_inputs = false needs feature_columns, or there is no input"
                    .into(),
            ));
        }
        if self.season == Some(0) {
            return Err(Error::Config(
                "series: season = 0: a season is at least 1 row (or leave it out)".into(),
            ));
        }
        for (name, v) in [
            ("lookback", self.lookback),
            ("horizon", self.horizon),
            ("stride", self.stride),
        ] {
            if v == 0 {
                return Err(Error::Config(format!(
                    "series: {name} = 0: must be at least 1"
                )));
            }
        }
        self.split.validate()
    }

    /// The columns to load: targets, then features not already among them.
    ///
    /// ```
    /// use rnnkit::data::series::SeriesConfig;
    /// let cfg = SeriesConfig {
    ///     target_columns: vec!["y".into()],
    ///     feature_columns: vec!["y".into(), "x".into()],
    ///     ..Default::default()
    /// };
    /// assert_eq!(cfg.columns(), ["y", "x"]);
    /// ```
    pub fn columns(&self) -> Vec<String> {
        let mut cols = self.target_columns.clone();
        for f in &self.feature_columns {
            if !cols.contains(f) {
                cols.push(f.clone());
            }
        }
        cols
    }
}

/// Baseline scores on one split, in original units.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct BaselineScores {
    /// Last value repeated.
    pub naive: Scores,
    /// Value one season back, when a season was given.
    pub seasonal_naive: Option<Scores>,
}

/// A prepared series: windows per split, scaled and ready for training, plus what is needed
/// to turn forecasts back into original units.
///
/// ```
/// use ndarray::Array2;
/// use rnnkit::data::series::{LoadOptions, SeriesConfig, SeriesData, SeriesTable, SplitSpec};
/// let csv: String = std::iter::once("t,y\n".to_string())
///     .chain((0..40).map(|i| format!("{},{}\n", 2000 + i, (i % 4) as f64)))
///     .collect();
/// let cfg = SeriesConfig {
///     target_columns: vec!["y".into()],
///     lookback: 8,
///     split: SplitSpec::Fractions { train: 0.5, val: 0.25 },
///     ..SeriesConfig::default()
/// };
/// let table = SeriesTable::from_reader("y.csv", csv.as_bytes(), &LoadOptions::new(&["y"])).unwrap();
/// let data = SeriesData::from_table(table, &cfg).unwrap();
/// assert_eq!(data.train.len(), 20 - 8); // windows of rows 0..20
/// assert_eq!(data.val.len(), 10); // every validation row is a target once (context on)
/// let b = data.train.batch(&[0, 1]).unwrap();
/// assert_eq!(b.inputs.shape(), &[8, 2, 1]);
/// // A perfect forecast (the scaled targets themselves) scores 0; seasonal naive is exact too.
/// let all = data.val.batch(&(0..data.val.len()).collect::<Vec<_>>()).unwrap();
/// let pred = data.to_original_units(&data.val, all.targets.view()).unwrap();
/// let truth = data.truth(&data.val).unwrap();
/// assert!(rnnkit::data::series::score(pred.view(), truth.view()).unwrap().rmse < 1e-5);
/// let base = data.baselines(&data.val, Some(4)).unwrap();
/// assert_eq!(base.seasonal_naive.unwrap().rmse, 0.0);
/// assert!(base.naive.rmse > 1.0);
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct SeriesData {
    /// The settings it was made with.
    pub config: SeriesConfig,
    /// The loaded series in original units (missing values filled), columns: targets, then
    /// the other features.
    pub table: SeriesTable,
    /// Indices into `table.columns` of the input columns (`F`).
    pub input_columns: Vec<usize>,
    /// Indices into `table.columns` of the target columns (`K`).
    pub target_columns: Vec<usize>,
    /// The scaler, fitted on the training rows of the transformed table (all its columns).
    pub scaler: Scaler,
    /// Rows of each split, as rows of `table` (with differencing, the first split starts at
    /// row 1).
    pub rows: SplitRows,
    /// Training windows.
    pub train: Windows,
    /// Validation windows.
    pub val: Windows,
    /// Test windows.
    pub test: Windows,
}

impl SeriesData {
    /// Loads `config.path` and prepares it.
    ///
    /// # Errors
    /// [`Error::Config`] for bad settings (including a training split too short for one
    /// window); [`Error::Io`] / [`Error::Data`] from loading, naming file, row and column.
    pub fn load(config: &SeriesConfig) -> Result<Self> {
        config.validate()?;
        let opts = LoadOptions {
            columns: config.columns(),
            timestamp_column: config.timestamp_column.clone(),
            missing: config.missing,
        };
        let table = SeriesTable::from_path(&config.path, &opts)?;
        Self::from_table(table, config)
    }

    /// Prepares an already loaded table (its columns must include the config's targets and
    /// features; `config.path` is not read).
    ///
    /// # Errors
    /// As [`SeriesData::load`].
    pub fn from_table(table: SeriesTable, config: &SeriesConfig) -> Result<Self> {
        Self::build(table, config, None)
    }

    /// Prepares new rows the way a trained model's data was prepared: the same settings and
    /// the `scaler` fitted on the original training rows (not refitted), every window in
    /// `test` (`train` and `val` are empty). For scoring a saved model on new data and for
    /// forecasting past its end ([`SeriesData::future_input`]).
    ///
    /// ```
    /// use rnnkit::data::series::{LoadOptions, SeriesConfig, SeriesData, SeriesTable};
    /// let csv = |n: usize| -> String {
    ///     std::iter::once("y\n".to_string()).chain((0..n).map(|i| format!("{}\n", i * i))).collect()
    /// };
    /// let cfg = SeriesConfig { target_columns: vec!["y".into()], lookback: 4, ..Default::default() };
    /// let opts = LoadOptions::new(&["y"]);
    /// let train = SeriesData::from_table(
    ///     SeriesTable::from_reader("a.csv", csv(40).as_bytes(), &opts).unwrap(), &cfg).unwrap();
    /// let new = SeriesTable::from_reader("b.csv", csv(10).as_bytes(), &opts).unwrap();
    /// let data = SeriesData::with_scaler(new, &cfg, train.scaler.clone()).unwrap();
    /// assert_eq!((data.train.len(), data.test.len()), (0, 10 - 4));
    /// assert_eq!(data.scaler, train.scaler);
    /// ```
    ///
    /// # Errors
    /// As [`SeriesData::load`]; [`Error::Shape`] when the scaler has another column count;
    /// [`Error::Config`] when the table has fewer usable rows than the lookback.
    pub fn with_scaler(table: SeriesTable, config: &SeriesConfig, scaler: Scaler) -> Result<Self> {
        scaler.check_consistent()?;
        Self::build(table, config, Some(scaler))
    }

    fn build(table: SeriesTable, config: &SeriesConfig, fitted: Option<Scaler>) -> Result<Self> {
        config.validate()?;
        let index = |names: &[String]| -> Result<Vec<usize>> {
            names.iter().map(|n| table.column_index(n)).collect()
        };
        let target_columns = index(&config.target_columns)?;
        let mut input_columns = if config.targets_as_inputs {
            target_columns.clone()
        } else {
            Vec::new()
        };
        for c in index(&config.feature_columns)? {
            if !input_columns.contains(&c) {
                input_columns.push(c);
            }
        }

        let z = config.transform.apply_table(&table, &target_columns)?; // [N − d, C]
        let d = config.transform.offset();
        let rows = match fitted {
            None => config
                .split
                .split_rows(table.len(), table.timestamps.as_deref())?,
            Some(_) => SplitRows {
                train: 0..0,
                val: 0..0,
                test: 0..table.len(),
            },
        };
        // The same cut in the transformed rows (row j there is row j + d of the table).
        let shift = |r: &std::ops::Range<usize>| r.start.saturating_sub(d)..r.end.saturating_sub(d);
        let zrows = SplitRows {
            train: shift(&rows.train),
            val: shift(&rows.val),
            test: shift(&rows.test),
        };
        let (l, h) = (config.lookback, config.horizon);
        // New data for a trained model needs one lookback to forecast from; windows with
        // known targets (for scoring) need a horizon more, which the caller checks.
        if fitted.is_some() && zrows.test.len() < l {
            return Err(Error::Config(format!(
                "series: {} has {} usable rows, fewer than lookback = {l}: a model trained with \
                 these settings forecasts from the last {l} rows",
                table.path,
                zrows.test.len(),
            )));
        }
        if fitted.is_none() && zrows.train.len() < l + h {
            return Err(Error::Config(format!(
                "series: the training split has {} rows, fewer than lookback + horizon = {}; \
                 lower lookback or horizon, or raise split.train",
                zrows.train.len(),
                l + h
            )));
        }
        let scaler = match fitted {
            Some(scaler) if scaler.n_features() != z.ncols() => {
                return Err(Error::Shape(format!(
                    "series: the saved scaler has {} columns, the data {}",
                    scaler.n_features(),
                    z.ncols()
                )));
            }
            Some(scaler) => scaler,
            None => Scaler::fit(config.scaler, z.slice(ndarray::s![zrows.train.clone(), ..]))?,
        };
        let scaled = scaler.transform(z.view())?;
        let w = window_splits(
            scaled.select(Axis(1), &input_columns).view(),
            scaled.select(Axis(1), &target_columns).view(),
            &zrows,
            d,
            l,
            h,
            config.stride,
            config.context,
        )?;
        let shift_back = |r: &std::ops::Range<usize>| {
            if r.is_empty() {
                r.clone()
            } else {
                (r.start + d)..(r.end + d)
            }
        };
        let rows = SplitRows {
            train: shift_back(&zrows.train),
            val: shift_back(&zrows.val),
            test: shift_back(&zrows.test),
        };
        Ok(SeriesData {
            config: config.clone(),
            table,
            input_columns,
            target_columns,
            scaler,
            rows,
            train: w.train,
            val: w.val,
            test: w.test,
        })
    }

    /// Rows absent from the series (from the timestamps).
    pub fn gaps(&self) -> &[Gap] {
        &self.table.gaps
    }

    /// The scaler of the target columns only, in target order (to save beside a model).
    pub fn target_scaler(&self) -> Scaler {
        self.scaler
            .select(&self.target_columns)
            .expect("target columns are in range")
    }

    /// The target columns in original units, `[N, K]`, rows of `table`.
    pub fn targets_original(&self) -> Array2<f64> {
        self.table.values.select(Axis(1), &self.target_columns)
    }

    /// The true targets of `windows` in original units, `[W, H, K]`.
    ///
    /// # Errors
    /// [`Error::Shape`] when `windows` are not from this data.
    pub fn truth(&self, windows: &Windows) -> Result<Array3<f64>> {
        truth(self.targets_original().view(), windows)
    }

    /// A model's forecast for `windows`, `[W, H·K]` (the layout of [`Windows::batch`]'s
    /// targets) in scaled, transformed units, back in original units `[W, H, K]`: the scaling
    /// is inverted, then the transform (differencing continues from each window's last
    /// observed value).
    ///
    /// # Errors
    /// [`Error::Shape`] when the forecast's shape does not fit the windows.
    pub fn to_original_units(
        &self,
        windows: &Windows,
        forecast: ArrayView2<f32>,
    ) -> Result<Array3<f64>> {
        let (w, h, k) = (windows.len(), windows.horizon(), windows.n_targets());
        if forecast.shape() != [w, h * k] {
            return Err(Error::Shape(format!(
                "forecast is {:?}, expected [{w}, {}] (windows × horizon·targets)",
                forecast.shape(),
                h * k
            )));
        }
        let flat = forecast
            .mapv(f64::from)
            .into_shape_with_order((w * h, k))
            .map_err(|e| Error::Shape(e.to_string()))?;
        let unscaled = self.target_scaler().inverse_transform(flat.view())?;
        let mut out = unscaled
            .into_shape_with_order((w, h, k))
            .map_err(|e| Error::Shape(e.to_string()))?;
        let orig = self.targets_original();
        // Windows from another, longer series would index past this one's rows.
        if let Some(last) = w.checked_sub(1)
            && windows.target_rows(last).end > orig.nrows()
        {
            return Err(Error::Shape(format!(
                "windows reach row {}, this series has {}: they are not from this data",
                windows.target_rows(last).end,
                orig.nrows()
            )));
        }
        for i in 0..w {
            let last_row = windows.target_rows(i).start.checked_sub(1);
            for j in 0..k {
                let last = last_row.map_or(f64::NAN, |r| orig[[r, j]]);
                let col = out.slice(ndarray::s![i, .., j]).to_vec();
                let back = self.config.transform.inverse(&col, last);
                out.slice_mut(ndarray::s![i, .., j])
                    .assign(&ndarray::Array1::from(back));
            }
        }
        Ok(out)
    }

    /// The model input for a forecast past the last row: the last `lookback` rows, scaled,
    /// `[L, 1, F]` (the layout of [`Windows::batch`]'s inputs).
    ///
    /// # Errors
    /// [`Error::Config`] when the series has fewer usable rows than the lookback.
    pub fn future_input(&self) -> Result<ndarray::Array3<f32>> {
        let z = self
            .config
            .transform
            .apply_table(&self.table, &self.target_columns)?;
        let scaled = self.scaler.transform(z.view())?;
        let l = self.config.lookback;
        if scaled.nrows() < l {
            return Err(Error::Config(format!(
                "series: {} has {} usable rows, fewer than lookback = {l}",
                self.table.path,
                scaled.nrows()
            )));
        }
        let x = scaled
            .slice(ndarray::s![scaled.nrows() - l.., ..])
            .select(Axis(1), &self.input_columns);
        Ok(x.mapv(|v| v as f32).insert_axis(Axis(1)))
    }

    /// A forecast made from [`SeriesData::future_input`], `[H·K]` in scaled, transformed
    /// units, in original units `[H, K]` (differencing continues from the last row).
    ///
    /// # Errors
    /// [`Error::Shape`] when the forecast is not `H·K` long.
    pub fn future_to_original(&self, forecast: ndarray::ArrayView1<f32>) -> Result<Array2<f64>> {
        let (h, k) = (self.config.horizon, self.target_columns.len());
        if forecast.len() != h * k {
            return Err(Error::Shape(format!(
                "forecast has {} values, expected horizon × targets = {}",
                forecast.len(),
                h * k
            )));
        }
        let flat = forecast
            .mapv(f64::from)
            .into_shape_with_order((h, k))
            .map_err(|e| Error::Shape(e.to_string()))?;
        let mut out = self.target_scaler().inverse_transform(flat.view())?;
        let orig = self.targets_original();
        let last = orig.nrows().checked_sub(1);
        for j in 0..k {
            let col = out.column(j).to_vec();
            let back = self
                .config
                .transform
                .inverse(&col, last.map_or(f64::NAN, |r| orig[[r, j]]));
            out.column_mut(j).assign(&ndarray::Array1::from(back));
        }
        Ok(out)
    }

    /// Naive (and, given a season length, seasonal-naive) scores on `windows`, in original
    /// units, for comparison with a model's forecast on the same windows.
    ///
    /// # Errors
    /// [`Error::Config`] for a season longer than the lookback; [`Error::Shape`] when there
    /// are no windows.
    pub fn baselines(&self, windows: &Windows, season: Option<usize>) -> Result<BaselineScores> {
        let original = self.targets_original();
        let series = original.view();
        let y = truth(series, windows)?;
        let naive = score(naive(series, windows)?.view(), y.view())?;
        let seasonal_naive = season
            .map(|m| score(seasonal_naive(series, windows, m)?.view(), y.view()))
            .transpose()?;
        Ok(BaselineScores {
            naive,
            seasonal_naive,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ramp_table(n: usize) -> SeriesTable {
        let csv: String = std::iter::once("y,x\n".to_string())
            .chain((0..n).map(|i| format!("{},{}\n", 10.0 + 2.0 * i as f64, i % 3)))
            .collect();
        SeriesTable::from_reader("r.csv", csv.as_bytes(), &LoadOptions::new(&["y", "x"])).unwrap()
    }

    #[test]
    fn future_forecast_continues_from_the_last_row() {
        // y = i², differenced: 2i − 1. The true next two values are n² and (n + 1)².
        let n = 30usize;
        let csv: String = std::iter::once("y\n".to_string())
            .chain((0..n).map(|i| format!("{}\n", i * i)))
            .collect();
        let opts = LoadOptions::new(&["y"]);
        let table = SeriesTable::from_reader("q.csv", csv.as_bytes(), &opts).unwrap();
        let cfg = SeriesConfig {
            target_columns: vec!["y".into()],
            transform: Transform::Diff,
            lookback: 5,
            horizon: 2,
            ..SeriesConfig::default()
        };
        let fitted = SeriesData::from_table(table.clone(), &cfg).unwrap();
        let data = SeriesData::with_scaler(table, &cfg, fitted.scaler.clone()).unwrap();
        let x = data.future_input().unwrap();
        assert_eq!(x.shape(), &[5, 1, 1]);
        // The last input is the scaled last difference, 2(n − 1) − 1.
        let last = fitted
            .target_scaler()
            .transform(ndarray::arr2(&[[(2 * n - 3) as f64]]).view())
            .unwrap();
        assert!((f64::from(x[[4, 0, 0]]) - last[[0, 0]]).abs() < 1e-5);
        let next = ndarray::arr2(&[[(2 * n - 1) as f64], [(2 * n + 1) as f64]]);
        let scaled = fitted.target_scaler().transform(next.view()).unwrap();
        let f: ndarray::Array1<f32> = scaled.iter().map(|&v| v as f32).collect();
        let back = data.future_to_original(f.view()).unwrap();
        assert!((back[[0, 0]] - (n * n) as f64).abs() < 1e-3, "{back}");
        assert!(
            (back[[1, 0]] - ((n + 1) * (n + 1)) as f64).abs() < 1e-3,
            "{back}"
        );
        assert!(data.future_to_original(f.slice(ndarray::s![..1])).is_err());
    }

    #[test]
    fn diff_forecast_back_to_original_units() {
        let cfg = SeriesConfig {
            target_columns: vec!["y".into()],
            feature_columns: vec!["x".into()],
            transform: Transform::Diff,
            lookback: 3,
            horizon: 2,
            ..SeriesConfig::default()
        };
        let data = SeriesData::from_table(ramp_table(30), &cfg).unwrap();
        assert_eq!(data.rows.train, 1..21);
        assert_eq!(data.train.n_features(), 2);
        let idx: Vec<usize> = (0..data.test.len()).collect();
        let b = data.test.batch(&idx).unwrap();
        let back = data
            .to_original_units(&data.test, b.targets.view())
            .unwrap();
        let y = data.truth(&data.test).unwrap();
        let worst = back
            .iter()
            .zip(y.iter())
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, crate::verify::worse);
        assert!(worst < 1e-4, "worst difference {worst}");
        // On a straight line the naive forecast is off by the slope per step.
        assert!((data.baselines(&data.test, None).unwrap().naive.mae - 3.0).abs() < 1e-9);
    }

    #[test]
    fn short_train_split_is_a_config_error() {
        let cfg = SeriesConfig {
            target_columns: vec!["y".into()],
            lookback: 30,
            ..Default::default()
        };
        let e = SeriesData::from_table(ramp_table(20), &cfg)
            .unwrap_err()
            .to_string();
        assert!(e.contains("lookback + horizon = 31"), "{e}");
    }
}
