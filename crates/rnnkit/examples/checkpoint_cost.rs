//! What the per-tensor checksums cost a checkpoint write: the median time of writing a
//! checkpoint-sized file (atomically, with fsync) against the median time of computing its
//! CRC-32s alone, over a few sizes.
//!
//! ```sh
//! cargo run --release --example checkpoint_cost
//! ```

use ndarray::ArrayD;
use rnnkit::io::TensorFile;
use std::time::Instant;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() -> rnnkit::Result<()> {
    let dir = std::env::temp_dir().join(format!("rnnkit-ckcost-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| rnnkit::Error::Io {
        path: dir.display().to_string(),
        source: e,
    })?;
    println!(
        "{:>12} {:>12} {:>12} {:>8}",
        "MB", "write ms", "crc32 ms", "share"
    );
    for params in [1usize << 20, 1 << 23, 1 << 25] {
        let mut file = TensorFile::default();
        // Four tensors, as a model's weights and the optimizer's two moments would be.
        for k in 0..4 {
            let v: Vec<f32> = (0..params / 4)
                .map(|i| (i as f32 * 1e-3 + k as f32).sin())
                .collect();
            file.f32.insert(
                format!("t{k}"),
                ArrayD::from_shape_vec(vec![params / 4], v).unwrap(),
            );
        }
        let path = dir.join("ck.safetensors");
        let (mut write, mut crc) = (Vec::new(), Vec::new());
        for _ in 0..7 {
            let t = Instant::now();
            file.write(&path)?;
            write.push(t.elapsed().as_secs_f64());
            let bytes: Vec<Vec<u8>> = file
                .f32
                .values()
                .map(|a| a.iter().flat_map(|v| v.to_le_bytes()).collect())
                .collect();
            let t = Instant::now();
            let sums: u32 = bytes
                .iter()
                .map(|b| crc32fast::hash(b))
                .fold(0, |a, b| a ^ b);
            crc.push(t.elapsed().as_secs_f64());
            std::hint::black_box(sums);
        }
        let (w, c) = (median(write), median(crc));
        println!(
            "{:>12.1} {:>12.2} {:>12.2} {:>7.2}%",
            params as f64 * 4.0 / 1e6,
            w * 1e3,
            c * 1e3,
            100.0 * c / w
        );
    }
    std::fs::remove_dir_all(&dir).ok();
    Ok(())
}
