//! Times forward and backward separately for one benchmark case and thread count:
//! `cargo run --release --example phase_timing -- lstm-med 2`.

use ndarray::Array3;
use rand::SeedableRng;
use rnnkit::bench::cases;
use rnnkit::{Init, Rnn, RnnParams, Upstream};
use std::time::Instant;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let name = args.get(1).map_or("lstm-med", |s| s.as_str());
    let threads: usize = args.get(2).map_or(2, |s| s.parse().unwrap());
    let case = cases()
        .into_iter()
        .find(|c| c.name == name)
        .expect("case name");
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .unwrap();
    pool.install(|| {
        let rnn = Rnn::new(case.config.clone(), &Init::default(), 1).unwrap();
        let x = Array3::from_elem((case.steps, case.batch, case.config.input_size), 0.1f32);
        let dy = Array3::ones((case.steps, case.batch, case.config.output_size()));
        let mut grads = RnnParams::zeros(rnn.config());
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
        let (mut f, mut b, mut inf) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..15 {
            let t = Instant::now();
            let (_, cache) = rnn.forward_train(x.view(), None, None, &mut rng).unwrap();
            f.push(t.elapsed().as_secs_f64() * 1e3);
            let t = Instant::now();
            rnn.backward(&cache, &Upstream::output_only(dy.view()), &mut grads).unwrap();
            b.push(t.elapsed().as_secs_f64() * 1e3);
            let t = Instant::now();
            rnn.forward(x.view(), None, None).unwrap();
            inf.push(t.elapsed().as_secs_f64() * 1e3);
        }
        for v in [&mut f, &mut b, &mut inf] {
            v.sort_by(|a, b| a.total_cmp(b));
        }
        println!("{name} threads {threads}: forward_train {:.2} ms, backward {:.2} ms, inference {:.2} ms", f[7], b[7], inf[7]);
    });
}
