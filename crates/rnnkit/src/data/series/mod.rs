//! Time series: from a CSV file to windows a recurrent model trains on, and back to original
//! units for evaluation.
//!
//! - [`csv_table`]: load named columns, parse timestamps, fill missing values, report gaps.
//! - [`time`]: the timestamp parser, the regular step, gaps.
//! - [`missing`]: the missing-value policy.
//! - [`transform`]: log / log1p / differencing, with inversion.
//! - [`scale`]: standard / min-max / robust scalers fitted on the training split.
//! - [`window`]: lookback / horizon / stride windows, batches `[L, B, F]` + `[B, H·K]`.
//! - [`split`]: chronological splits, with or without lookback context across boundaries.
//! - [`baseline`]: naive and seasonal-naive forecasts, RMSE and MAE.
//! - [`dataset`]: [`SeriesConfig`] → [`SeriesData`], the whole pipeline in one call.
//!
//! ```
//! use rnnkit::data::series::{LoadOptions, MissingPolicy, SeriesTable};
//! let csv = "date,co2\n19580329,316.1\n19580405,NA\n19580419,317.5\n";
//! let opts = LoadOptions::new(&["co2"]).timestamp("date").missing(MissingPolicy::Ffill);
//! let t = SeriesTable::from_reader("co2.csv", csv.as_bytes(), &opts).unwrap();
//! assert_eq!(t.values[[1, 0]], 316.1); // filled forward
//! assert_eq!(t.gaps[0].missing, 1); // the week of 1958-04-12 has no row
//! ```

pub mod baseline;
pub mod csv_table;
pub mod dataset;
pub mod missing;
pub mod scale;
pub mod split;
pub mod time;
pub mod transform;
pub mod window;
pub mod window_batches;

pub use baseline::{Scores, naive, score, seasonal_naive, truth};
pub use csv_table::{FilledCell, LoadOptions, SeriesTable};
pub use dataset::{BaselineScores, SeriesConfig, SeriesData};
pub use missing::MissingPolicy;
pub use scale::{Scaler, ScalerKind};
pub use split::{SplitRows, SplitSpec, SplitWindows, window_splits};
pub use time::{
    Gap, TIMESTAMP_FORMATS, find_gaps, format_timestamp, parse_timestamp, regular_step,
    step_forward,
};
pub use transform::Transform;
pub use window::{WindowBatch, Windows, n_windows};
pub use window_batches::WindowBatches;
