//! Every loader of untrusted bytes, fed arbitrary and mutated input: each must return a value
//! or an error, never panic (and a checkpoint it accepts holds only finite numbers).
//!
//! Mutations start from valid files (configs, run configs, CSV series, labelled tables, text
//! pipelines with their vocabularies and tokenizers, a Hugging Face `tokenizer.json`,
//! checkpoints) and flip, delete, insert, duplicate and truncate bytes, so the cases reach deep
//! into each parser; a share of cases are plain random bytes.
//!
//! `cargo test` runs 300 cases per loader. The long mode runs more:
//! `RNNKIT_FUZZ_CASES=100000 cargo test --release --test fuzz_loaders -- --nocapture`
//! (each loader prints how many cases it ran).

use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use rnnkit::data::series::{LoadOptions, MissingPolicy, SeriesTable};
use rnnkit::data::text::labelled::LabelledTexts;
use rnnkit::data::text::load::{TableFormat, read_lines, table_from_bytes};
use rnnkit::data::text::{TableConfig, TextConfig, TextPipeline, TokenizerConfig, WordMode};
use rnnkit::io::TensorFile;
use rnnkit::models::LanguageModel;
use rnnkit::train::checkpoint::Checkpoint;
use rnnkit::train::{TrainConfig, Trainer};
use rnnkit::{CellKind, RnnConfig};
use std::path::{Path, PathBuf};

/// Cases per loader: `RNNKIT_FUZZ_CASES`, or 300.
fn cases() -> u32 {
    std::env::var("RNNKIT_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(300)
}

/// One edit of a seed: what, where (a fraction of the length), a byte, a length.
type Edit = (u8, u32, u8, u8);

/// Bytes the parsers treat specially, more likely to reach their edge cases than random ones.
const INTERESTING: &[u8] = b"\0\xff\"'\\\n\r\t,;:=[]{}#.-+eE0123456789 \xc3\xa9\xe2\x82";

fn apply(seed: &[u8], edits: &[Edit]) -> Vec<u8> {
    let mut b = seed.to_vec();
    for &(op, at, byte, n) in edits {
        let len = b.len();
        let pos = if len == 0 {
            0
        } else {
            (at as usize) % (len + 1)
        };
        let n = n as usize % 32 + 1;
        match op % 7 {
            0 if len > 0 => b[pos.min(len - 1)] ^= byte | 1,
            1 => {
                let end = (pos + n).min(len);
                b.drain(pos..end);
            }
            2 => {
                let fill = INTERESTING[byte as usize % INTERESTING.len()];
                b.splice(pos..pos, std::iter::repeat_n(fill, n));
            }
            3 => b.truncate(pos),
            4 if len > 0 => {
                let from = (at as usize / 7) % len;
                let chunk: Vec<u8> = b[from..(from + n).min(len)].to_vec();
                b.splice(pos..pos, chunk);
            }
            5 if len > 0 => b[pos.min(len - 1)] = INTERESTING[byte as usize % INTERESTING.len()],
            _ => b.splice(pos..pos, [byte]).for_each(drop),
        }
    }
    b
}

/// Mutated seeds (most cases) and random bytes.
fn inputs(seeds: Vec<Vec<u8>>) -> impl Strategy<Value = Vec<u8>> {
    assert!(!seeds.is_empty());
    let n = seeds.len();
    let mutated = (0..n, proptest::collection::vec(any::<Edit>(), 0..8))
        .prop_map(move |(i, edits)| apply(&seeds[i], &edits));
    prop_oneof![
        8 => mutated,
        1 => proptest::collection::vec(any::<u8>(), 0..256),
    ]
}

/// Runs `check` on `cases()` inputs grown from `seeds`; a panic fails the test with the input
/// that caused it (shrunk).
fn fuzz(name: &str, seeds: Vec<Vec<u8>>, check: impl Fn(&[u8])) {
    let n = cases();
    let mut runner = TestRunner::new(Config {
        cases: n,
        failure_persistence: None,
        ..Config::default()
    });
    runner
        .run(&inputs(seeds), |bytes| {
            check(&bytes);
            Ok(())
        })
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    eprintln!("fuzz {name}: {n} cases, no panic");
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn read(path: impl AsRef<Path>) -> Vec<u8> {
    let p = repo().join(path);
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// The `*.toml` files of a directory of the repository.
fn tomls(dir: &str) -> Vec<Vec<u8>> {
    let mut out: Vec<Vec<u8>> = std::fs::read_dir(repo().join(dir))
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .map(|p| std::fs::read(p).unwrap())
        .collect();
    out.sort();
    out
}

#[test]
fn config_toml() {
    let mut seeds = tomls("configs");
    seeds.push(b"task = \"classify\"\n[model]\nhidden_size = 8\n".to_vec());
    let sets = [
        vec![],
        vec!["train.epochs=2".to_string(), "model.cell=gru".into()],
    ];
    fuzz("config TOML", seeds, |bytes| {
        let text = String::from_utf8_lossy(bytes);
        for s in &sets {
            let _ = rnnkit::config_file::parse(&text, "fuzz.toml", s);
        }
    });
}

#[test]
fn run_config() {
    let seeds: Vec<Vec<u8>> = [
        "shakespeare-char",
        "names-classify",
        "co2-forecast",
        "adding-problem",
    ]
    .iter()
    .map(|r| read(format!("docs/results/runs/{r}/config.toml")))
    .collect();
    let sets = vec!["train.epochs=3".to_string()];
    fuzz("run config", seeds, |bytes| {
        let text = String::from_utf8_lossy(bytes);
        let _ = rnnkit::config_file::parse_for_resume(&text, "config.toml", &sets);
        let _ = rnnkit::config_file::parse_for_resume(&text, "config.toml", &[]);
    });
}

#[test]
fn csv_series() {
    let co2 = read("data/co2/co2.csv");
    let seeds = vec![
        co2[..co2.len().min(2000)].to_vec(),
        b"date,a,b\n2020-01-01,1,2\n2020-01-02,,3\n2020-01-04,NaN,4\n".to_vec(),
        b"t,v\n1,1e3\n2,-2.5\n3,inf\n".to_vec(),
    ];
    let options = [
        LoadOptions::new(&["co2"]).timestamp("date"),
        LoadOptions::new(&["a", "b"])
            .timestamp("date")
            .missing(MissingPolicy::Interpolate),
        LoadOptions::new(&["v"]).missing(MissingPolicy::Ffill),
    ];
    fuzz("CSV series", seeds, |bytes| {
        for opts in &options {
            let _ = SeriesTable::from_reader("fuzz.csv", bytes, opts);
        }
    });
}

#[test]
fn labelled_text() {
    let seeds = vec![
        b"text,label\nhello world,a\n\"quoted, text\",b\nmore,a\n".to_vec(),
        b"text\tlabel\nhello\ta\nworld\tb\n".to_vec(),
        b"{\"text\": \"hi\", \"label\": \"x\"}\n{\"text\": \"yo\", \"label\": 3}\n".to_vec(),
    ];
    let cfg = TableConfig {
        label_column: Some("label".into()),
        ..Default::default()
    };
    let classes = ["a".to_string(), "b".to_string()];
    fuzz("labelled text", seeds, |bytes| {
        for format in [TableFormat::Csv, TableFormat::Tsv, TableFormat::JsonLines] {
            if let Ok(docs) = table_from_bytes(bytes, "fuzz", format, &cfg) {
                let _ = LabelledTexts::from_documents(docs.clone(), None, "fuzz");
                let _ = LabelledTexts::from_documents(docs, Some(&classes), "fuzz");
            }
        }
        let _ = read_lines(bytes, "fuzz", 64);
    });
}

/// Saved pipelines of each tokenizer kind, with their vocabularies (and, for BPE, the
/// embedded `tokenizer.json`).
fn pipelines() -> Vec<Vec<u8>> {
    let texts = [
        "the cat sat on the mat",
        "a dog, a cat; the end.",
        "étude über naïve",
    ];
    let dir = std::env::temp_dir().join(format!("rnnkit-fuzz-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let kinds = [
        TokenizerConfig::Char,
        TokenizerConfig::Word {
            mode: WordMode::Punctuation,
        },
        TokenizerConfig::Bpe {
            vocab_size: 270,
            min_frequency: 1,
        },
    ];
    let out = kinds
        .into_iter()
        .enumerate()
        .map(|(k, tokenizer)| {
            let cfg = TextConfig {
                tokenizer,
                ..Default::default()
            };
            let path = dir.join(format!("text{k}.json"));
            TextPipeline::fit(&texts, &cfg)
                .unwrap()
                .save(&path)
                .unwrap();
            std::fs::read(&path).unwrap()
        })
        .collect();
    std::fs::remove_dir_all(&dir).ok();
    out
}

#[test]
fn text_pipeline_vocabulary_and_tokenizer_json() {
    fuzz(
        "text pipeline (vocabulary, tokenizer)",
        pipelines(),
        |bytes| {
            if let Ok(p) = TextPipeline::from_bytes(bytes, "text.json") {
                // What loads must also work: encode and decode without panicking.
                if let Ok(ids) = p.encode("the cat, étude") {
                    let _ = p.decode(&ids);
                }
                let _ = p.decode(&[0, 1, 2, u32::MAX]);
            }
        },
    );
}

#[test]
fn hugging_face_tokenizer_json() {
    // The BPE pipeline's embedded tokenizer, as a stand-alone tokenizer.json.
    let seeds: Vec<Vec<u8>> = pipelines()
        .into_iter()
        .filter_map(|p| {
            let v: serde_json::Value = serde_json::from_slice(&p).unwrap();
            let t = v.get("tokenizer")?.get("tokenizer")?;
            Some(serde_json::to_vec(t).unwrap())
        })
        .collect();
    assert!(!seeds.is_empty());
    fuzz("tokenizer JSON", seeds, |bytes| {
        if let Ok(t) = rnnkit::data::text::bpe::BpeTokenizer::from_bytes(bytes, "tokenizer.json")
            && let Ok(tokens) = t.tokenize("hello wörld")
        {
            let _ = t.detokenize(&tokens);
        }
    });
}

#[test]
fn checkpoint_and_safetensors() {
    let model = LanguageModel::new(7, RnnConfig::new(CellKind::Lstm, 3, 4), 0).unwrap();
    let trainer = Trainer::new(model, TrainConfig::language_model(), None).unwrap();
    let dir = std::env::temp_dir().join(format!("rnnkit-fuzz-ck-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("latest.safetensors");
    trainer.checkpoint().unwrap().save(&path).unwrap();
    let seeds = vec![
        std::fs::read(&path).unwrap(),
        read("tests/fixtures/cases/gru_l2_bi_h0_varlen.safetensors"),
    ];
    std::fs::remove_dir_all(&dir).ok();
    let name = Path::new("fuzz.safetensors");
    fuzz("checkpoint and safetensors", seeds, |bytes| {
        if let Ok(f) = TensorFile::from_bytes(bytes, name) {
            let _ = f.ensure_finite(name);
            let _ = rnnkit::io::config_from_metadata(&f.metadata, name);
        }
        if let Ok(ck) = Checkpoint::from_bytes(bytes, name) {
            assert!(ck.model.values().all(|t| t.iter().all(|v| v.is_finite())));
            let _ = TrainConfig::default(); // the config JSON is checked on resume
        }
    });
}

/// WAV files of every depth and format `hound` writes, mono and stereo, 8 and 16 kHz.
fn wavs() -> Vec<Vec<u8>> {
    use hound::SampleFormat::{Float, Int};
    let mut out = Vec::new();
    for (channels, rate, bits, format) in [
        (1, 8000, 16, Int),
        (2, 16000, 16, Int),
        (1, 8000, 8, Int),
        (1, 8000, 24, Int),
        (2, 8000, 32, Int),
        (1, 16000, 32, Float),
    ] {
        let spec = hound::WavSpec {
            channels,
            sample_rate: rate,
            bits_per_sample: bits,
            sample_format: format,
        };
        let mut cursor = std::io::Cursor::new(Vec::new());
        let mut w = hound::WavWriter::new(&mut cursor, spec).unwrap();
        for i in 0..300 * channels as i32 {
            let v = ((i as f32) * 0.37).sin() * 0.8;
            match format {
                Float => w.write_sample(v).unwrap(),
                Int => w
                    .write_sample((v * ((1i64 << (bits - 1)) - 1) as f32) as i32)
                    .unwrap(),
            }
        }
        w.finalize().unwrap();
        out.push(cursor.into_inner());
    }
    out
}

#[test]
fn wav_audio_and_its_features() {
    use rnnkit::audio::{FeatureConfig, FeatureExtractor, WavLimits, decode_wav};
    let limits = WavLimits { max_seconds: 30.0 };
    fuzz("wav", wavs(), |bytes| {
        let Ok(clip) = decode_wav(bytes, "fuzz.wav", &limits) else {
            return;
        };
        assert!(!clip.samples.is_empty() && clip.sample_rate > 0);
        assert!(clip.samples.iter().all(|v| v.is_finite()));
        // Features of whatever decodes: an error for a rate they cannot use, never a panic.
        if clip.sample_rate <= 192_000
            && let Ok(fx) = FeatureExtractor::new(&FeatureConfig::default(), clip.sample_rate)
        {
            let f = fx.compute(&clip.samples, 1);
            assert_eq!(f.ncols(), fx.dim());
            assert!(f.iter().all(|v| v.is_finite()), "non-finite features");
        }
    });
}
