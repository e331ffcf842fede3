//! Writes the prost types of the ONNX schema (`onnx.proto3`, copied from github.com/onnx/onnx)
//! to `crates/rnnkit/src/export/onnx_pb.rs`. Pure Rust (`protox` parses the schema), so no
//! `protoc` is needed. Run from the repository root:
//!
//! ```text
//! cargo run --manifest-path tools/onnx-proto/Cargo.toml
//! ```

use std::path::Path;

fn main() {
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = here.join("../../crates/rnnkit/src/export/onnx_pb");
    std::fs::create_dir_all(&out).expect("output directory");
    let descriptors = protox::compile([here.join("onnx.proto3")], [here]).expect("onnx.proto3 parses");
    prost_build::Config::new()
        .out_dir(&out)
        .compile_fds(descriptors)
        .expect("prost generates the types");
    println!("wrote {}", out.display());
}
