//! The parameter visitor: every model lists its parameters once, and names, counts, saving and
//! loading all agree with that list.

use rnnkit::models::LanguageModel;
use rnnkit::models::{Forecaster, InputSpec, Pooling, SequenceClassifier, SequenceTagger};
use rnnkit::module::{self, Grads, Module};
use rnnkit::{CellKind, RnnConfig};

/// Saves `a`, loads the file into `b` (same shapes, other weights) and checks they then agree;
/// checks the names, counts and the mutable walk against the read-only one.
fn round_trip<M: Module>(what: &str, a: &M, b: &mut M, aliases: &[&str]) {
    let names = module::param_names(a, "");
    let saved = module::named_tensors(a, "");
    let mut keys: Vec<&String> = saved.keys().collect();
    keys.retain(|k| !aliases.contains(&k.as_str()));
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(
        keys,
        sorted.iter().collect::<Vec<_>>(),
        "{what}: saved names"
    );
    let total: usize = names.iter().map(|n| saved[n].len()).sum();
    assert_eq!(module::num_params(a), total, "{what}: parameter count");
    let mut mut_names = Vec::new();
    b.visit_params_mut("", &mut |n, _| mut_names.push(n.to_string()));
    assert_eq!(
        mut_names, names,
        "{what}: the mutable walk lists the same tensors"
    );
    assert_ne!(
        module::named_tensors(b, ""),
        saved,
        "{what}: b starts different"
    );
    module::load_named(b, "", &saved).unwrap();
    assert_eq!(module::named_tensors(b, ""), saved, "{what}: loaded");
    // A file of another architecture is refused by name.
    let mut wrong = saved.clone();
    wrong.insert("rnn.weight_ih_l7".into(), ndarray::ArrayD::zeros(vec![1]));
    let e = module::load_named(b, "", &wrong).unwrap_err().to_string();
    assert!(e.contains("rnn.weight_ih_l7"), "{what}: {e}");
}

#[test]
fn every_model_saves_and_loads_through_its_one_list() {
    let rnn = RnnConfig::new(CellKind::Lstm, 6, 6).num_layers(2);
    let lm = |seed| LanguageModel::new(11, rnn.clone(), seed).unwrap();
    round_trip("language model", &lm(1), &mut lm(2), &[]);
    let tied = |seed| {
        let mut m = lm(seed);
        m.tie().unwrap();
        m
    };
    let t = tied(1);
    assert!(!module::param_names(&t, "").contains(&"decoder.weight".to_string()));
    assert_eq!(
        module::named_tensors(&t, "")["decoder.weight"],
        module::named_tensors(&t, "")["embedding.weight"]
    );
    round_trip("tied language model", &t, &mut tied(2), &["decoder.weight"]);

    let bi = RnnConfig::new(CellKind::Gru, 4, 5).bidirectional(true);
    let tokens = InputSpec::Tokens {
        vocab: 7,
        padding_idx: Some(0),
    };
    let classifier =
        |seed| SequenceClassifier::new(tokens, bi.clone(), 3, Pooling::Mean, seed).unwrap();
    let c = classifier(1);
    assert_eq!(module::param_names(&c, "")[0], "embedding.weight");
    assert!(module::param_names(&c, "").contains(&"rnn.bias_hh_l0_reverse".to_string()));
    round_trip("classifier", &c, &mut classifier(2), &[]);
    let tagger = |seed| SequenceTagger::new(InputSpec::Features, bi.clone(), 4, seed).unwrap();
    round_trip("tagger", &tagger(1), &mut tagger(2), &[]);
    let proj = RnnConfig::new(CellKind::Lstm, 3, 8).proj_size(4);
    let forecaster = |seed| Forecaster::new(proj.clone(), 2, 1, seed).unwrap();
    let f = forecaster(1);
    assert_eq!(
        module::param_names(&f, ""),
        [
            "rnn.weight_ih_l0",
            "rnn.weight_hh_l0",
            "rnn.bias_ih_l0",
            "rnn.bias_hh_l0",
            "rnn.weight_hr_l0",
            "head.weight",
            "head.bias"
        ]
    );
    round_trip("forecaster", &f, &mut forecaster(2), &[]);
}

#[test]
fn grads_pair_with_their_parameters_by_name() {
    let mut f = Forecaster::new(RnnConfig::new(CellKind::Gru, 2, 3), 1, 1, 0).unwrap();
    let before = module::named_tensors(&f, "");
    let mut grads = Grads::zeros_like(&f);
    module::fill(&mut grads.0, 1.0);
    let mut seen = Vec::new();
    module::for_each_with_grad(&mut f, &grads, |name, value, grad| {
        seen.push(name.to_string());
        value.iter_mut().zip(grad).for_each(|(v, g)| *v -= 0.5 * g);
    });
    assert_eq!(seen, module::param_names(&f, ""));
    for (name, after) in module::named_tensors(&f, "") {
        let diff = &before[&name] - &after;
        assert!(diff.iter().all(|&d| (d - 0.5).abs() < 1e-6), "{name}");
    }
    grads.fill_zero();
    assert!(grads.slices().iter().all(|s| s.iter().all(|&g| g == 0.0)));
}
