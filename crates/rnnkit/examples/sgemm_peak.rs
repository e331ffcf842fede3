//! SGEMM throughput of the GEMM library rnnkit uses (the `gemm` crate), on square shapes and
//! on the shapes of the benchmark cases, for 1 and 2 threads:
//! `cargo run --release -p rnnkit --example sgemm_peak`.

use rnnkit::kernels::gemm::{MatRef, matmul};
use std::time::Instant;

fn gflops(m: usize, k: usize, n: usize, threads: usize) -> f64 {
    let a = vec![0.5f32; m * k];
    let b = vec![0.25f32; k * n];
    let mut c = vec![0.0f32; m * n];
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .unwrap();
    pool.install(|| {
        let run = |c: &mut [f32]| {
            matmul(
                c,
                n,
                MatRef::row_major(&a, m, k),
                MatRef::row_major(&b, k, n),
                false,
                threads,
            )
        };
        run(&mut c);
        let mut times = Vec::new();
        let start = Instant::now();
        while times.len() < 5 || start.elapsed().as_secs_f64() < 1.0 {
            let t = Instant::now();
            run(&mut c);
            times.push(t.elapsed().as_secs_f64());
        }
        times.sort_by(|x, y| x.total_cmp(y));
        2.0 * (m * k * n) as f64 / times[times.len() / 2] / 1e9
    })
}

fn main() {
    println!("| shape (m x k x n) | 1 thread GFLOP/s | 2 threads GFLOP/s |");
    println!("|---|---:|---:|");
    for (m, k, n) in [
        (2048, 2048, 2048),
        (1024, 1024, 1024),
        (2048, 1024, 4096),
        (32, 256, 1024),
        (64, 1024, 4096),
    ] {
        println!(
            "| {m} x {k} x {n} | {:.1} | {:.1} |",
            gflops(m, k, n, 1),
            gflops(m, k, n, 2)
        );
    }
}
