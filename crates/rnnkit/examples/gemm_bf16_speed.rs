//! GFLOP/s of the f32 and bf16 packed products at the shapes the time loop uses (per-step
//! product, input projection, weight gradient): `cargo run --release --example gemm_bf16_speed`.
use rnnkit::kernels::bf16::{PackedBf16, gemm_bf16, gemm_bf16_at};
use rnnkit::kernels::gemm::{MatRef, matmul};
use rnnkit::kernels::small_gemm::{PackedB, gemm_packed};
use std::time::Instant;

fn main() {
    for &(m, k, n, threads) in &[
        (10, 650, 2600, 1),
        (20, 650, 2600, 2),
        (20, 1500, 6000, 2),
        (64, 256, 1024, 1),
        // Tiny Shakespeare 2×512's per-step product (batch 64, 4·512 gates).
        (64, 512, 2048, 1),
        (64, 512, 2048, 2),
    ] {
        let a: Vec<f32> = (0..m * k).map(|i| (i % 17) as f32 * 0.1).collect();
        let b: Vec<f32> = (0..k * n).map(|i| (i % 13) as f32 * 0.1).collect();
        let pf = PackedB::from_row_major(&b, n, k, n);
        let pb = PackedBf16::from_row_major(&b, n, k, n);
        let mut c = vec![0.0f32; m * n];
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        pool.install(|| {
            let reps = (2e10 / (2.0 * (m * k * n) as f64)) as usize;
            let t = Instant::now();
            for _ in 0..reps {
                gemm_packed(&mut c, n, &a, k, m, &pf, false, threads);
            }
            let f = 2.0 * (m * k * n * reps) as f64 / t.elapsed().as_secs_f64() / 1e9;
            let t = Instant::now();
            for _ in 0..reps {
                gemm_bf16(&mut c, n, &a, k, m, &pb, false, threads);
            }
            let g = 2.0 * (m * k * n * reps) as f64 / t.elapsed().as_secs_f64() / 1e9;
            println!("step m={m} k={k} n={n} t={threads}: f32 {f:.0} GF/s, bf16 {g:.0} GF/s");
        });
    }
    // weight gradient: dW[GH, I] += dGᵀ[GH, rows] · X[rows, I]
    for &(rows, gh, i) in &[(700, 2600, 650), (700, 6000, 1500)] {
        let dg: Vec<f32> = (0..rows * gh).map(|v| (v % 17) as f32 * 0.1).collect();
        let x: Vec<f32> = (0..rows * i).map(|v| (v % 13) as f32 * 0.1).collect();
        let mut c = vec![0.0f32; gh * i];
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(2)
            .build()
            .unwrap();
        pool.install(|| {
            let fl = 2.0 * (rows * gh * i) as f64;
            let reps = (3e10 / fl) as usize;
            let t = Instant::now();
            for _ in 0..reps {
                matmul(
                    &mut c,
                    i,
                    MatRef::row_major(&dg, rows, gh).t(),
                    MatRef::row_major(&x, rows, i),
                    true,
                    2,
                );
            }
            let f = fl * reps as f64 / t.elapsed().as_secs_f64() / 1e9;
            let t = Instant::now();
            for _ in 0..reps {
                let pb = PackedBf16::from_row_major(&x, i, rows, i);
                gemm_bf16_at(&mut c, i, &dg, gh, gh, &pb, true, 2);
            }
            let g = fl * reps as f64 / t.elapsed().as_secs_f64() / 1e9;
            println!(
                "dW rows={rows} gh={gh} i={i}: f32 {f:.0} GF/s, bf16 (incl. packing) {g:.0} GF/s"
            );
        });
    }
}
