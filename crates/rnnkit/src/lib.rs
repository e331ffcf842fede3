//! # rnnkit
//!
//! Recurrent neural networks — Elman RNN, LSTM (with projection) and GRU — with PyTorch's
//! numerics, names and layouts, and a cuDNN-style CPU fast path.
//!
//! ```
//! use ndarray::Array3;
//! use rnnkit::{CellKind, Init, Rnn, RnnConfig};
//!
//! let cfg = RnnConfig::new(CellKind::Gru, 16, 32).num_layers(2).bidirectional(true);
//! let rnn = Rnn::new(cfg, &Init::default(), 0).unwrap();
//! let out = rnn.forward(Array3::zeros((10, 4, 16)).view(), None, None).unwrap();
//! assert_eq!(out.output.shape(), &[10, 4, 64]);
//! ```

#![warn(missing_docs)]

#[macro_use]
pub mod kernels;
pub mod audio;
pub mod bench;
pub mod cell;
pub mod config;
pub mod config_file;
pub mod data;
pub mod diagnostics;
pub mod distributed;
pub mod error;
pub mod export;
pub mod generate;
pub mod init;
pub mod io;
pub mod lab;
pub mod models;
pub mod module;
pub mod nn;
pub mod optim;
pub mod params;
#[cfg(feature = "plot")]
pub mod plot;
pub mod precision;
pub mod recurrent;
pub mod reference;
pub mod resources;
pub mod run;
pub mod tasks;
pub mod train;
pub mod tune;
pub mod verify;

pub use config::{CellKind, RnnConfig};
pub use error::{Error, Result};
pub use init::{BiasInit, Init, WeightInit};
pub use params::{LayerParams, RnnParams};
pub use precision::Precision;
pub use recurrent::{InputGrads, Rnn, RnnCache, RnnOutput, RnnState, Upstream};
