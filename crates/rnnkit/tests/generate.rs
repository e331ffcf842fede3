//! Sampling from a language model: the streamed per-step logits against the model's
//! full-sequence forward, determinism, greedy equivalences, and the sampled frequencies of a
//! model whose logits are rigged to known values.

use ndarray::{Array1, Array2, Axis};
use rnnkit::generate::{Generator, SamplingConfig};
use rnnkit::models::LanguageModel;
use rnnkit::module::{self, Module};
use rnnkit::{CellKind, RnnConfig, RnnState};

/// Logits `[T, V]` of the whole sequence `ids` in one forward from the zero state, and the
/// final state: the reference the streamed steps must match.
fn full_forward(lm: &LanguageModel, ids: &[u32]) -> (Array2<f32>, RnnState) {
    let rows: Vec<usize> = ids.iter().map(|&t| t as usize).collect();
    let x = lm.embedding().forward(&rows).unwrap().insert_axis(Axis(1)); // [T, 1, D]
    let out = lm.rnn().forward(x.view(), None, None).unwrap();
    let p = out.output.dim().2;
    let h = out.output.into_shape_with_order((ids.len(), p)).unwrap(); // [T, P]
    let bias = lm.decoder().bias().map(|b| b.view());
    let z = rnnkit::nn::linear::forward(h.view(), lm.decoder_weight(), bias);
    (z.unwrap(), out.state)
}

/// The largest difference; a NaN on either side counts as infinite.
fn max_diff(a: ndarray::ArrayView1<f32>, b: ndarray::ArrayView1<f32>) -> f64 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| f64::from((x - y).abs()))
        .fold(0.0, rnnkit::verify::worse)
}

fn models() -> Vec<(&'static str, LanguageModel)> {
    let lstm = LanguageModel::new(
        17,
        RnnConfig::new(CellKind::Lstm, 6, 8)
            .num_layers(2)
            .proj_size(5),
        1,
    )
    .unwrap();
    let gru = LanguageModel::new(13, RnnConfig::new(CellKind::Gru, 5, 7), 2).unwrap();
    let elman = LanguageModel::new(11, RnnConfig::new(CellKind::RnnTanh, 4, 6), 3).unwrap();
    let mut tied =
        LanguageModel::new(15, RnnConfig::new(CellKind::Lstm, 8, 8).num_layers(2), 4).unwrap();
    tied.tie().unwrap();
    vec![
        ("lstm-proj", lstm),
        ("gru", gru),
        ("rnn-tanh", elman),
        ("lstm-tied", tied),
    ]
}

fn cfg(temperature: f32, seed: u64) -> SamplingConfig {
    SamplingConfig {
        temperature,
        seed,
        ..SamplingConfig::default()
    }
}

/// A model whose logits are `bias` whatever the input: the decoder weight is zero.
fn rigged(bias: &[f32]) -> LanguageModel {
    let mut lm = LanguageModel::new(bias.len(), RnnConfig::new(CellKind::Gru, 3, 4), 9).unwrap();
    let mut named = module::named_tensors(&lm, "");
    named.insert(
        "decoder.weight".into(),
        ndarray::ArrayD::zeros(named["decoder.weight"].shape()),
    );
    named.insert(
        "decoder.bias".into(),
        Array1::from(bias.to_vec()).into_dyn(),
    );
    module::load_named(&mut lm, "", &named).unwrap();
    lm
}

#[test]
fn streamed_logits_match_the_full_forward_at_every_position() {
    for (name, lm) in models() {
        // The sampled tokens go back in one step at a time (Rnn::step); the prompt goes in
        // once by one token, once as a block (the stack's sequence forward).
        let mut g = Generator::new(&lm, cfg(1.0, 5)).unwrap();
        let mut ids = vec![4u32];
        g.prime(&ids).unwrap();
        ids.extend([7, 1, 9]);
        g.prime(&ids[1..]).unwrap();
        let (_, state) = full_forward(&lm, &ids);
        assert_eq!(g.state().h.dim(), state.h.dim());
        let dh = (&g.state().h - &state.h).mapv(f32::abs);
        assert!(dh.iter().all(|&d| d < 1e-5), "{name}: state after prompt");
        if let (Some(a), Some(b)) = (&g.state().c, &state.c) {
            assert!((a - b).iter().all(|d| d.abs() < 1e-5), "{name}: cell state");
        }
        for _ in 0..8 {
            let (full, _) = full_forward(&lm, &ids);
            let last = full.index_axis(Axis(0), ids.len() - 1);
            let d = max_diff(g.logits().unwrap(), last);
            assert!(d < 1e-5, "{name}: position {}: worst diff {d}", ids.len());
            ids.push(g.next_token().unwrap());
        }
    }
}

#[test]
fn an_empty_prompt_starts_after_eos() {
    let (_, lm) = models().remove(1);
    let mut g = Generator::new(&lm, cfg(1.0, 0)).unwrap();
    g.prime(&[]).unwrap();
    let (full, _) = full_forward(&lm, &[3]);
    assert!(max_diff(g.logits().unwrap(), full.row(0)) < 1e-6);
    // Priming with nothing again changes nothing.
    let before = g.logits().unwrap().to_owned();
    g.prime(&[]).unwrap();
    assert_eq!(g.logits().unwrap(), before);
    // next_token without prime starts the same way.
    let mut a = Generator::new(&lm, cfg(1.0, 11)).unwrap();
    let mut b = Generator::new(&lm, cfg(1.0, 11)).unwrap();
    b.prime(&[]).unwrap();
    for _ in 0..10 {
        assert_eq!(a.next_token().unwrap(), b.next_token().unwrap());
    }
}

#[test]
fn a_vocabulary_without_eos_starts_from_the_zero_output() {
    let lm = rigged(&[0.0, 1.0, 2.0]);
    let mut g = Generator::new(&lm, cfg(0.0, 0)).unwrap();
    g.prime(&[]).unwrap();
    assert_eq!(g.logits().unwrap().to_vec(), vec![0.0, 1.0, 2.0]);
    assert_eq!(g.next_token().unwrap(), 2);
}

#[test]
fn a_seed_reproduces_a_sample_and_another_seed_does_not() {
    let (_, lm) = models().remove(0);
    let draw = |seed| {
        let mut g = Generator::new(&lm, cfg(1.5, seed)).unwrap();
        g.prime(&[5, 6]).unwrap();
        let mut out = Vec::new();
        g.generate(60, |t| {
            out.push(t);
            true
        })
        .unwrap();
        out
    };
    let a = draw(42);
    assert_eq!(a.len(), 60);
    assert_eq!(a, draw(42));
    assert_ne!(a, draw(43));
}

fn greedy_run(lm: &LanguageModel, config: SamplingConfig, n: usize) -> Vec<u32> {
    let mut g = Generator::new(lm, config).unwrap();
    g.prime(&[2, 5]).unwrap();
    (0..n).map(|_| g.next_token().unwrap()).collect()
}

#[test]
fn temperature_zero_takes_the_argmax_at_every_step() {
    for (name, lm) in models() {
        let mut g = Generator::new(&lm, cfg(0.0, 1)).unwrap();
        g.prime(&[2, 5]).unwrap();
        for _ in 0..12 {
            let z = g.logits().unwrap().to_owned();
            // Argmax over every id but <pad>, first maximum winning.
            let mut best = 1;
            for i in 2..z.len() {
                if z[i] > z[best] {
                    best = i;
                }
            }
            assert_eq!(g.next_token().unwrap(), best as u32, "{name}");
        }
    }
}

#[test]
fn top_k_one_and_a_tiny_top_p_are_greedy() {
    for (name, lm) in models() {
        let greedy = greedy_run(&lm, cfg(0.0, 0), 15);
        let k1 = SamplingConfig {
            top_k: Some(1),
            ..cfg(1.3, 8)
        };
        assert_eq!(greedy_run(&lm, k1, 15), greedy, "{name}: top_k = 1");
        let p0 = SamplingConfig {
            top_p: Some(1e-6),
            ..cfg(2.0, 9)
        };
        assert_eq!(greedy_run(&lm, p0, 15), greedy, "{name}: top_p = 1e-6");
    }
}

#[test]
fn sampled_ids_are_in_the_vocabulary_and_never_pad() {
    // <pad> gets by far the largest logit: a sampler that forgot to exclude it would draw it.
    let mut lm = LanguageModel::new(9, RnnConfig::new(CellKind::Lstm, 4, 5), 6).unwrap();
    lm.visit_params_mut("", &mut |name, t| {
        if name == "decoder.bias" {
            t.data[0] = 30.0;
        }
    });
    for config in [
        cfg(1.0, 1),
        cfg(3.0, 2),
        cfg(0.0, 3),
        SamplingConfig {
            top_k: Some(3),
            ..cfg(1.0, 4)
        },
        SamplingConfig {
            top_p: Some(0.9),
            ..cfg(1.0, 5)
        },
    ] {
        let mut g = Generator::new(&lm, config.clone()).unwrap();
        let n = g.generate(500, |t| t != 0 && t < 9).unwrap();
        assert_eq!(n, 500, "{config:?}");
    }
}

#[test]
fn generate_stops_at_eos_or_when_the_callback_says_so() {
    // <eos> (id 3) is by far the most likely token.
    let lm = rigged(&[0.0, 0.0, 0.0, 20.0, 0.0]);
    let stop = SamplingConfig {
        stop_at_eos: true,
        ..cfg(1.0, 0)
    };
    let mut seen = Vec::new();
    let mut g = Generator::new(&lm, stop).unwrap();
    assert_eq!(
        g.run(|t| {
            seen.push(t);
            true
        })
        .unwrap(),
        1
    );
    assert_eq!(seen, vec![3]);
    let mut g = Generator::new(&lm, cfg(1.0, 0)).unwrap();
    assert_eq!(g.run(|_| true).unwrap(), 200, "runs to max_tokens");
    let mut count = 0;
    assert_eq!(
        g.generate(10, |_| {
            count += 1;
            count < 4
        })
        .unwrap(),
        4
    );
}

/// Draws `n` tokens from a rigged model and checks every frequency against `expected`
/// (indexed by id) within 5 standard deviations of a binomial count.
fn check_frequencies(bias: &[f32], config: SamplingConfig, expected: &[f64], n: usize) {
    let lm = rigged(bias);
    let mut g = Generator::new(&lm, config.clone()).unwrap();
    let mut counts = vec![0usize; bias.len()];
    g.generate(n, |t| {
        counts[t as usize] += 1;
        true
    })
    .unwrap();
    for (id, (&c, &p)) in counts.iter().zip(expected).enumerate() {
        let sd = (n as f64 * p * (1.0 - p)).sqrt();
        let dev = (c as f64 - n as f64 * p).abs();
        assert!(
            dev <= 5.0 * sd + 1e-9,
            "{config:?}: id {id}: {c} draws, expected {:.1} ± {sd:.1}",
            n as f64 * p
        );
    }
}

/// softmax(bias / t) over `keep` (every other id, <pad> included, gets 0).
fn softmax_over(bias: &[f32], t: f64, keep: &[usize]) -> Vec<f64> {
    let mut p = vec![0.0; bias.len()];
    for &i in keep {
        p[i] = (bias[i] as f64 / t).exp();
    }
    let sum: f64 = p.iter().sum();
    p.iter().map(|x| x / sum).collect()
}

#[test]
fn frequencies_follow_the_tempered_softmax_of_rigged_logits() {
    let bias = [3.0, 1.0, 0.5, -0.5, 2.0, 0.0];
    let n = 4000;
    // Temperature only: every id but <pad>.
    for t in [0.7, 1.0, 2.0] {
        let expected = softmax_over(&bias, t as f64, &[1, 2, 3, 4, 5]);
        check_frequencies(&bias, cfg(t, 17), &expected, n);
    }
    // Top-k = 3 keeps ids 4, 1, 2 (logits 2, 1, 0.5), renormalized.
    let k3 = SamplingConfig {
        top_k: Some(3),
        ..cfg(1.0, 18)
    };
    check_frequencies(&bias, k3, &softmax_over(&bias, 1.0, &[4, 1, 2]), n);
    // Top-p: at T = 1 the sorted probabilities are ≈ 0.55, 0.20, 0.12, 0.07, 0.05 (ids 4, 1, 2,
    // 5, 3); p = 0.8 needs the first three (0.88), so ids 5 and 3 are cut.
    let full = softmax_over(&bias, 1.0, &[1, 2, 3, 4, 5]);
    assert!(full[4] + full[1] < 0.8 && full[4] + full[1] + full[2] > 0.8);
    let p = SamplingConfig {
        top_p: Some(0.8),
        ..cfg(1.0, 19)
    };
    check_frequencies(&bias, p, &softmax_over(&bias, 1.0, &[4, 1, 2]), n);
}

#[test]
fn bad_settings_are_errors_naming_the_field() {
    let lm = rigged(&[0.0, 1.0, 2.0, 3.0]);
    let base = SamplingConfig::default;
    let cases = [
        (
            "temperature",
            SamplingConfig {
                temperature: -0.5,
                ..base()
            },
        ),
        (
            "temperature",
            SamplingConfig {
                temperature: f32::NAN,
                ..base()
            },
        ),
        (
            "temperature",
            SamplingConfig {
                temperature: f32::INFINITY,
                ..base()
            },
        ),
        (
            "top_k",
            SamplingConfig {
                top_k: Some(0),
                ..base()
            },
        ),
        (
            "top_p",
            SamplingConfig {
                top_p: Some(0.0),
                ..base()
            },
        ),
        (
            "top_p",
            SamplingConfig {
                top_p: Some(1.01),
                ..base()
            },
        ),
        (
            "top_p",
            SamplingConfig {
                top_p: Some(f32::NAN),
                ..base()
            },
        ),
        (
            "max_tokens",
            SamplingConfig {
                max_tokens: 0,
                ..base()
            },
        ),
    ];
    for (field, c) in cases {
        let msg = Generator::new(&lm, c.clone()).unwrap_err().to_string();
        assert!(msg.contains(field), "{c:?}: {msg}");
    }
    // Edge values that are allowed.
    for c in [
        SamplingConfig {
            top_p: Some(1.0),
            ..base()
        },
        SamplingConfig {
            top_k: Some(100),
            ..base()
        },
        SamplingConfig {
            temperature: 0.0,
            ..base()
        },
    ] {
        assert!(Generator::new(&lm, c).is_ok());
    }
    // A prompt id outside the vocabulary, a bidirectional stack, a vocabulary of <pad> alone.
    let mut g = Generator::new(&lm, base()).unwrap();
    assert!(g.prime(&[1, 4]).unwrap_err().to_string().contains('4'));
    let bi = LanguageModel::new(
        5,
        RnnConfig::new(CellKind::Gru, 3, 4).bidirectional(true),
        0,
    )
    .unwrap();
    assert!(Generator::new(&bi, base()).is_err());
    assert!(Generator::new(&rigged(&[1.0]), base()).is_err());
}

#[test]
fn config_reads_from_partial_json_and_rejects_unknown_fields() {
    let c: SamplingConfig = serde_json::from_str(r#"{"top_k": 5, "seed": 3}"#).unwrap();
    assert_eq!(
        c,
        SamplingConfig {
            top_k: Some(5),
            seed: 3,
            ..SamplingConfig::default()
        }
    );
    let back: SamplingConfig = serde_json::from_str(&serde_json::to_string(&c).unwrap()).unwrap();
    assert_eq!(back, c);
    assert!(serde_json::from_str::<SamplingConfig>(r#"{"temp": 1.0}"#).is_err());
}

#[test]
fn generated_text_joins_up_to_the_decoded_ids_for_every_tokenizer() {
    use rnnkit::data::text::pipeline::{TextConfig, TextPipeline};
    use rnnkit::data::text::tokenizer::TokenizerConfig;
    use rnnkit::data::text::word::WordMode;
    let corpus = ["déjà vu, naïve café; 日本語 😀 (the cat) sat on the mat."];
    for tokenizer in [
        TokenizerConfig::Char,
        TokenizerConfig::Word {
            mode: WordMode::Punctuation,
        },
        TokenizerConfig::Bpe {
            vocab_size: 290,
            min_frequency: 1,
        },
    ] {
        let text = TextPipeline::fit(
            &corpus,
            &TextConfig {
                tokenizer: tokenizer.clone(),
                ..Default::default()
            },
        )
        .unwrap();
        let lm = LanguageModel::new(text.vocab().len(), RnnConfig::new(CellKind::Lstm, 6, 8), 5)
            .unwrap();
        // An untrained model draws near-uniform ids: stray bytes and split characters included.
        let config = SamplingConfig {
            stop_at_eos: false,
            ..cfg(1.5, 11)
        };
        let prompt = text.encode("the cat").unwrap();
        let mut ids = Vec::new();
        let mut g = Generator::new(&lm, config.clone()).unwrap();
        g.prime(&prompt).unwrap();
        g.generate(300, |id| {
            ids.push(id);
            true
        })
        .unwrap();

        let mut pieces = Vec::new();
        let mut g = Generator::new(&lm, config).unwrap();
        g.prime(&prompt).unwrap();
        let stream = text.stream_decoder_after(&prompt).unwrap();
        let drawn = g
            .generate_text(300, stream, |piece| {
                pieces.push(piece.to_owned());
                true
            })
            .unwrap();
        assert_eq!(drawn, 300);
        assert!(pieces.iter().all(|p| !p.is_empty()));
        let head = text.decode(&prompt).unwrap();
        let all = text.decode(&[prompt.clone(), ids].concat()).unwrap();
        assert_eq!(format!("{head}{}", pieces.concat()), all, "{tokenizer:?}");
    }
}
