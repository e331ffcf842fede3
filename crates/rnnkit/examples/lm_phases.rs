//! Where a word-level language model's training step spends its time: the recurrent stack
//! (forward + backward), the decoder (GEMM, log-softmax + cross-entropy in place, backward
//! GEMMs) and the whole-parameter passes (zeroing, clipping norm, SGD), each timed alone with
//! its GFLOP/s, for the `ptb-small-train`, `ptb-medium-train` or `wikitext2-small-train` case:
//! `cargo run --release -p rnnkit --example lm_phases -- ptb-small-train 2`.

use ndarray::{Array2, Array3};
use rand::{Rng, SeedableRng};
use rnnkit::bench::cases;
use rnnkit::kernels::elementwise;
use rnnkit::nn::{CrossEntropy, Linear};
use rnnkit::{Init, Rnn, RnnParams, Upstream};
use std::time::Instant;

/// Median milliseconds of `f` over 15 runs after 2 warm-up runs.
fn median_ms(mut f: impl FnMut()) -> f64 {
    for _ in 0..2 {
        f();
    }
    let mut t: Vec<f64> = (0..15)
        .map(|_| {
            let s = Instant::now();
            f();
            s.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    t.sort_by(|a, b| a.total_cmp(b));
    t[t.len() / 2]
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let name = args.get(1).map_or("ptb-small-train", |s| s.as_str());
    let threads: usize = args.get(2).map_or(2, |s| s.parse().expect("threads"));
    let case = cases()
        .into_iter()
        .find(|c| c.name == name)
        .expect("an LM bench case name");
    let rnnkit::bench::BenchKind::LmTrain { vocab } = case.kind else {
        panic!("`{name}` is not a language-model case");
    };
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .expect("thread pool");
    pool.install(|| {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
        let (t, b, c) = (case.steps, case.batch, &case.config);
        let rows = t * b;
        let h = c.output_size();

        // The stack, on a random input with an all-ones upstream gradient.
        let rnn = Rnn::new(c.clone(), &Init::default(), 1).expect("stack");
        let x = Array3::from_shape_simple_fn((t, b, c.input_size), || {
            rng.random_range(-1.0f32..1.0)
        });
        let dy = Array3::ones((t, b, h));
        let mut g = RnnParams::zeros(rnn.config());
        let stack_ms = median_ms(|| {
            let (_, cache) = rnn.forward_train(x.view(), None, None, &mut rng).unwrap();
            rnn.backward(&cache, &Upstream::output_only(dy.view()), &mut g)
                .unwrap();
        });
        let stack_flop: f64 = (0..c.num_layers)
            .map(|l| 6.0 * (rows * c.gate_size() * (c.layer_input_size(l) + h)) as f64)
            .sum();

        // The decoder: logits, loss and gradient in place, both backward products.
        let dec = Linear::new(h, vocab, true, &mut rng);
        let mut dg = dec.zeros_like();
        let hid = Array2::from_shape_simple_fn((rows, h), || rng.random_range(-1.0f32..1.0));
        let targets: Vec<usize> = (0..rows).map(|_| rng.random_range(0..vocab)).collect();
        let (mut fwd, mut ce, mut bwd) = (Vec::new(), Vec::new(), Vec::new());
        // The logits buffer is reused between steps, as the language model's workspace does.
        let mut buffer = Vec::new();
        let decoder_ms = median_ms(|| {
            let s = Instant::now();
            let bias = dec.bias.as_ref().map(|b| b.view());
            let mut z = rnnkit::nn::linear::forward_into(
                hid.view(),
                dec.weight.view(),
                bias,
                std::mem::take(&mut buffer),
            )
            .unwrap();
            fwd.push(s.elapsed().as_secs_f64() * 1e3);
            let s = Instant::now();
            CrossEntropy::default()
                .forward_backward_in_place(&mut z, &targets)
                .unwrap();
            ce.push(s.elapsed().as_secs_f64() * 1e3);
            let s = Instant::now();
            dec.backward(hid.view(), z.view(), &mut dg).unwrap();
            bwd.push(s.elapsed().as_secs_f64() * 1e3);
            buffer = z.into_raw_vec_and_offset().0;
        });
        let decoder_flop = 6.0 * (rows * h * vocab) as f64;

        // Whole-parameter passes over embedding + stack + decoder sized buffers.
        let n_params = vocab * c.input_size + g.tensors_mut().map(|s| s.len()).sum::<usize>()
            + vocab * (h + 1);
        let mut p = vec![0.01f32; n_params];
        let mut gr = vec![0.02f32; n_params];
        let passes_ms = median_ms(|| {
            elementwise::fill_zero(&mut gr);
            let n = elementwise::sum_squares(&[&gr[..]]);
            elementwise::scale(&mut [&mut gr[..]], 1.0 / (1.0 + n as f32));
            elementwise::axpy(&mut p, -1.0, &gr);
        });

        let med = |v: &mut Vec<f64>| {
            v.sort_by(|a, b| a.total_cmp(b));
            v[v.len() / 2]
        };
        println!("{name}, {threads} thread(s), {rows} tokens per step");
        println!(
            "stack forward+backward  {stack_ms:8.2} ms  {:6.1} GFLOP/s",
            stack_flop / stack_ms / 1e6
        );
        println!(
            "decoder (all of it)     {decoder_ms:8.2} ms  {:6.1} GFLOP/s",
            decoder_flop / decoder_ms / 1e6
        );
        println!(
            "  GEMM forward          {:8.2} ms\n  cross-entropy in place{:8.2} ms\n  backward GEMMs + bias  {:8.2} ms",
            med(&mut fwd),
            med(&mut ce),
            med(&mut bwd)
        );
        println!("parameter passes ({n_params} values: zero, norm, scale, SGD) {passes_ms:.2} ms");
    });
}
