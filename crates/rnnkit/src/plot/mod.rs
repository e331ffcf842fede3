//! PNG charts for people debugging sequence models: training curves, forecasts, confusion
//! matrices, audio examples.
//!
//! Drawn in pure Rust with `plotters` and an embedded DejaVu Sans font, so no system font or
//! graphics library is needed. Every chart has a title, labelled axes, a legend when it shows
//! more than one series, and is readable at its default size of 1000×600 pixels.
//!
//! - [`line`](mod@line): [`LineChart`], named series with optional log-scale y and reference lines.
//! - [`forecast`]: [`ForecastChart`] / [`forecast_chart`], truth and forecasts over time.
//! - [`confusion`]: [`ConfusionMatrixChart`] / [`confusion_matrix_png`], a labelled heatmap.
//! - [`scatter`]: [`ScatterPanels`], a score against each of several parameters.
//! - [`audio_example`]: [`AudioExampleChart`], a recording's waveform, log-mel spectrogram and
//!   model input.

pub mod audio_example;
pub mod confusion;
pub mod forecast;
pub mod line;
pub mod scatter;
mod style;

pub use audio_example::AudioExampleChart;
pub use confusion::{ConfusionMatrixChart, confusion_matrix_png};
pub use forecast::{ForecastChart, forecast_chart};
pub use line::LineChart;
pub use scatter::{Panel, PanelAxis, ScatterPanels};
