//! Writes the `lstm-stream` bench case's stack (2-layer LSTM, input 256, hidden 256, random
//! weights as `rnnkit bench` draws them) as ONNX, for `tools/stream_bench.py` to time in
//! onnxruntime against `rnnkit bench --case lstm-stream`.
//!
//! ```text
//! cargo run --release -p rnnkit --example export_stream_stack -- /tmp/lstm-stream.onnx
//! ```

use rnnkit::export::{OnnxOptions, ToOnnx};
use rnnkit::{Init, Rnn};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let out = std::env::args()
        .nth(1)
        .ok_or("usage: export_stream_stack OUT.onnx")?;
    let case = rnnkit::bench::cases()
        .into_iter()
        .find(|c| c.name == "lstm-stream")
        .ok_or("no lstm-stream case")?;
    let rnn = Rnn::new(case.config, &Init::default(), 1)?;
    // Streaming feeds one step of one sequence: no lengths input.
    let options = OnnxOptions {
        lengths: false,
        ..OnnxOptions::default()
    };
    rnn.to_onnx(&options)?.write(out.as_ref())?;
    println!("wrote {out}");
    Ok(())
}
