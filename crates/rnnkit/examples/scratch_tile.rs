use rnnkit::kernels::small_gemm::{PackedB, gemm_packed};
use std::time::Instant;
fn main() {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .map(|s| s.parse().unwrap())
        .collect();
    let (m, k, n, iters) = (args[0], args[1], args[2], args[3]);
    let a: Vec<f32> = (0..m * k).map(|i| (i % 7) as f32 * 0.01).collect();
    let b: Vec<f32> = (0..k * n).map(|i| (i % 5) as f32 * 0.01).collect();
    let pb = PackedB::from_row_major(&b, n, k, n);
    let mut c = vec![0.0f32; m * n];
    let t = Instant::now();
    for _ in 0..iters {
        gemm_packed(&mut c, n, &a, k, m, &pb, true, 1);
    }
    let s = t.elapsed().as_secs_f64();
    println!(
        "{m}x{k}x{n}: {:.1} GF/s ({:.3} ms/iter) c0={}",
        2.0 * (m * k * n * iters) as f64 / s / 1e9,
        s * 1e3 / iters as f64,
        c[0]
    );
}
