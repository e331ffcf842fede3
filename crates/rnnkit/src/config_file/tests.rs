//! The config loader's tests: a small config of its own (`load_as`), then the tasks' configs.

use super::*;
use crate::error::Result;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct Run {
    seed: u64,
    data: Data,
    model: Model,
    train: Train,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct Data {
    path: String,
    /// Absent from the serialized default: the walk cannot know it, serde can.
    #[serde(skip_serializing_if = "Option::is_none")]
    valid_path: Option<String>,
    lowercase: bool,
}

impl Default for Data {
    fn default() -> Self {
        Self {
            path: "data.txt".into(),
            valid_path: None,
            lowercase: false,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct Model {
    kind: Cell,
    hidden_size: usize,
    num_layers: usize,
}

impl Default for Model {
    fn default() -> Self {
        Self {
            kind: Cell::Lstm,
            hidden_size: 128,
            num_layers: 1,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
enum Cell {
    Rnn,
    Lstm,
    Gru,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct Train {
    epochs: usize,
    batch_size: usize,
    learning_rate: f64,
    optimizer: Optimizer,
}

impl Default for Train {
    fn default() -> Self {
        Self {
            epochs: 10,
            batch_size: 32,
            learning_rate: 0.002,
            optimizer: Optimizer::Adam(Adam::default()),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
enum Optimizer {
    Sgd(Sgd),
    Adam(Adam),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct Sgd {
    lr: f64,
    momentum: f64,
}

impl Default for Sgd {
    fn default() -> Self {
        Self {
            lr: 0.1,
            momentum: 0.0,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct Adam {
    lr: f64,
    betas: (f64, f64),
}

impl Default for Adam {
    fn default() -> Self {
        Self {
            lr: 0.002,
            betas: (0.9, 0.999),
        }
    }
}

const FILE: &str = r#"# example
seed = 7

[data]
path = "corpus.txt"

[model]
kind = "gru"
hidden_size = 64

[train]
epochs = 3
learning_rte = 0.01
"#;

fn load(text: &str, sets: &[&str]) -> Result<Run> {
    let sets: Vec<String> = sets.iter().map(|s| s.to_string()).collect();
    ConfigSource::new(text, "x.toml", &sets)?.load_as::<Run>()
}

fn err(text: &str, sets: &[&str]) -> String {
    match load(text, sets) {
        Ok(cfg) => panic!("expected an error, got {cfg:?}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn config_load_valid_file_and_defaults() {
    let text = FILE.replace("learning_rte", "learning_rate");
    let cfg = load(&text, &[]).unwrap();
    assert_eq!(cfg.seed, 7);
    assert_eq!(cfg.data.path, "corpus.txt");
    assert_eq!(cfg.model.kind, Cell::Gru);
    assert_eq!(cfg.model.hidden_size, 64);
    assert_eq!(cfg.model.num_layers, 1);
    assert_eq!(cfg.train.learning_rate, 0.01);
    assert_eq!(cfg.train.optimizer, Optimizer::Adam(Adam::default()));
    assert_eq!(load("", &[]).unwrap(), Run::default());
}

#[test]
fn config_load_typo_suggests_and_gives_line() {
    let msg = err(FILE, &[]);
    assert!(
        msg.starts_with(
            "x.toml, line 13: unknown key \"train.learning_rte\"; \
             did you mean \"train.learning_rate\"?"
        ),
        "{msg}"
    );
    assert!(
        msg.contains("(valid keys in [train]: epochs, batch_size, learning_rate, optimizer)"),
        "{msg}"
    );
}

#[test]
fn config_load_unknown_key_far_from_valid_has_no_suggestion() {
    let msg = err("[model]\nzzz = 1\n", &[]);
    assert!(msg.starts_with("x.toml, line 2: unknown key \"model.zzz\" (valid keys in [model]: kind, hidden_size, num_layers)"), "{msg}");
    let msg = err("sed = 1\n", &[]);
    assert!(msg.contains("did you mean \"seed\"?"), "{msg}");
    assert!(
        msg.contains("valid keys at the top level: seed, data, model, train"),
        "{msg}"
    );
}

#[test]
fn config_load_unknown_key_in_nested_enum_and_dotted_keys() {
    let text = "[train]\nepochs = 2\n\n[train.optimizer.sgd]\nlr = 0.5\nmomentun = 0.9\n";
    let msg = err(text, &[]);
    assert!(msg.starts_with("x.toml, line 6: unknown key \"train.optimizer.sgd.momentun\"; did you mean \"train.optimizer.sgd.momentum\"?"), "{msg}");
    // Same key via a dotted key on one line.
    let msg = err("train.optimizer.sgd.momentun = 0.9\n", &[]);
    assert!(
        msg.starts_with("x.toml, line 1: unknown key \"train.optimizer.sgd.momentun\""),
        "{msg}"
    );
}

#[test]
fn config_load_option_field_absent_from_default_is_accepted() {
    let cfg = load("[data]\nvalid_path = \"v.txt\"\n", &[]).unwrap();
    assert_eq!(cfg.data.valid_path.as_deref(), Some("v.txt"));
    let msg = err("[data]\nvalid_pth = \"v.txt\"\n", &[]);
    assert!(msg.contains("did you mean \"data.valid_path\"?"), "{msg}");
    assert!(msg.contains("path, valid_path, lowercase"), "{msg}");
}

#[test]
fn config_load_wrong_type_names_key_and_line() {
    let msg = err(
        "seed = 1\n[model]\nkind = \"gru\"\nhidden_size = \"big\"\n",
        &[],
    );
    assert!(
        msg.starts_with("x.toml, line 4: bad value for \"model.hidden_size\":"),
        "{msg}"
    );
    assert!(msg.contains("invalid type"), "{msg}");
    let msg = err("[train.optimizer.adam]\nlr = true\n", &[]);
    assert!(
        msg.starts_with("x.toml, line 2: bad value for \"train.optimizer.adam.lr\":"),
        "{msg}"
    );
}

#[test]
fn config_load_unknown_variant_suggests() {
    let msg = err("[model]\nhidden_size = 3\nkind = \"gur\"\n", &[]);
    assert!(msg.starts_with("x.toml, line 3: unknown variant \"gur\" for \"model.kind\"; did you mean \"gru\"? (valid: rnn, lstm, gru)"), "{msg}");
    let msg = err("[train]\noptimizer = { adma = { lr = 0.1 } }\n", &[]);
    assert!(msg.starts_with("x.toml, line 2: unknown variant \"adma\" for \"train.optimizer\"; did you mean \"adam\"?"), "{msg}");
}

#[test]
fn config_load_syntax_error_gives_line_and_column() {
    let msg = err("seed = 1\n[model\n", &[]);
    assert!(msg.starts_with("x.toml, line 2, column"), "{msg}");
    assert!(msg.contains("not valid TOML"), "{msg}");
}

#[test]
fn config_load_overrides_nested_strings_numbers_booleans() {
    let text = FILE.replace("learning_rte", "learning_rate");
    let cfg = load(
        &text,
        &[
            "train.optimizer.adam.lr=0.001",
            "model.hidden_size=256",
            "data.path=foo.txt",
            "data.valid_path=\"v 1.txt\"",
            "data.lowercase=true",
            "model.kind = rnn",
            "train.epochs=5",
        ],
    )
    .unwrap();
    assert_eq!(
        cfg.train.optimizer,
        Optimizer::Adam(Adam {
            lr: 0.001,
            ..Adam::default()
        })
    );
    assert_eq!(cfg.model.hidden_size, 256);
    assert_eq!(cfg.model.kind, Cell::Rnn);
    assert_eq!(cfg.data.path, "foo.txt");
    assert_eq!(cfg.data.valid_path.as_deref(), Some("v 1.txt"));
    assert!(cfg.data.lowercase);
    assert_eq!(cfg.train.epochs, 5);
    // An override adds a key; it does not rename a misspelt one.
    assert!(load(FILE, &["train.learning_rate=0.1"]).is_err());
    // Inline tables switch an enum.
    let cfg = load("", &["train.optimizer={ sgd = { lr = 0.5 } }"]).unwrap();
    assert_eq!(
        cfg.train.optimizer,
        Optimizer::Sgd(Sgd {
            lr: 0.5,
            momentum: 0.0
        })
    );
}

#[test]
fn config_load_unknown_key_in_set_names_set() {
    let msg = err("", &["model.hidden_size=8", "model.hiden_size=8"]);
    assert!(msg.starts_with("--set model.hiden_size=8: unknown key \"model.hiden_size\"; did you mean \"model.hidden_size\"?"), "{msg}");
    let msg = err("", &["train.epochs=many"]);
    assert!(
        msg.starts_with("--set train.epochs=many: bad value for \"train.epochs\":"),
        "{msg}"
    );
    let msg = err("seed = 1\n", &["seed.x=1"]);
    assert!(msg.contains("\"seed\" is 1, not a table"), "{msg}");
    let msg = err("", &["seed.x=1"]);
    assert!(
        msg.starts_with("--set seed.x=1: bad value for \"seed\": invalid type: map"),
        "{msg}"
    );
    assert!(err("", &["seed"]).contains("expected key=value"));
    assert!(err("", &["a..b=1"]).contains("empty part"));
}

#[test]
fn config_load_file_error_found_when_overrides_present() {
    let msg = err(FILE, &["model.hidden_size=8"]);
    assert!(
        msg.starts_with("x.toml, line 13: unknown key \"train.learning_rte\""),
        "{msg}"
    );
}

#[test]
fn config_load_resolved_toml_round_trips() {
    let cfg = load(
        "",
        &[
            "train.optimizer={ sgd = { lr = 0.5, momentum = 0.9 } }",
            "data.valid_path=v.txt",
            "model.kind=gru",
        ],
    )
    .unwrap();
    let text = crate::run::config_toml(&cfg).unwrap();
    assert!(text.starts_with("# Resolved rnnkit config"), "{text}");
    assert_eq!(load(&text, &[]).unwrap(), cfg);
    let text = crate::run::config_toml(&Run::default()).unwrap();
    assert_eq!(load(&text, &[]).unwrap(), Run::default());
}

#[test]
fn config_load_docs_table_lists_every_default_key() {
    let md = docs_table::<Run>().unwrap();
    assert!(md.starts_with("| Key | Default |\n"), "{md}");
    for row in [
        "| `seed` | `0` |",
        "| `data.path` | `\"data.txt\"` |",
        "| `model.kind` | `\"lstm\"` |",
        "| `train.learning_rate` | `0.002` |",
        "| `train.optimizer.adam.lr` | `0.002` |",
        "| `train.optimizer.adam.betas` | `[0.9, 0.999]` |",
    ] {
        assert!(md.contains(row), "missing {row} in\n{md}");
    }
    assert!(!md.contains("valid_path"), "{md}");
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
enum Schedule {
    Constant,
    Step { step_size: usize, gamma: f64 },
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct WithSchedule {
    schedule: Option<Schedule>,
}

#[test]
fn config_load_internally_tagged_enum() {
    let load = |t: &str, s: &[&str]| {
        let s: Vec<String> = s.iter().map(|x| x.to_string()).collect();
        ConfigSource::new(t, "s.toml", &s)?.load_as::<WithSchedule>()
    };
    let text = "[schedule]\nkind = \"step\"\nstep_size = 5\ngamma = 0.5\n";
    let cfg = load(text, &[]).unwrap();
    assert_eq!(
        cfg.schedule,
        Some(Schedule::Step {
            step_size: 5,
            gamma: 0.5
        })
    );
    let cfg = load(text, &["schedule.gamma=0.1"]).unwrap();
    assert_eq!(
        cfg.schedule,
        Some(Schedule::Step {
            step_size: 5,
            gamma: 0.1
        })
    );
    let msg = load("[schedule]\nkind = \"stpe\"\n", &[])
        .unwrap_err()
        .to_string();
    assert!(
        msg.starts_with(
            "s.toml, line 2: unknown variant \"stpe\" for \"schedule.kind\"; did you mean \"step\"?"
        ),
        "{msg}"
    );
    let msg = load(&text.replace("gamma", "gama"), &[])
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("unknown key \"schedule.gama\"; did you mean \"schedule.gamma\"?"),
        "{msg}"
    );
    assert!(msg.starts_with("s.toml, line 4"), "{msg}");
}

// The tasks' configs.

use crate::tasks::AnyConfig as RunConfig;
use crate::tasks::classify::ClassifyConfig;
use crate::tasks::lm::LmConfig;
use std::path::PathBuf;

fn parse_config(text: &str, source: &str, set: &[String]) -> Result<LmConfig> {
    match parse(text, source, set)? {
        RunConfig::Lm(c) => Ok(c),
        other => panic!("{other:?}"),
    }
}

#[test]
fn set_overrides_nested_keys_and_bare_strings() {
    let cfg = parse_config(
        "[model]\nhidden_size = 32\n",
        "t.toml",
        &[
            "train.epochs=2".into(),
            "data.path=other.txt".into(),
            "train.optimizer.lr=0.01".into(),
            "model.cell=\"gru\"".into(),
        ],
    )
    .unwrap();
    assert_eq!(cfg.train.epochs, 2);
    assert_eq!(cfg.data.path, PathBuf::from("other.txt"));
    assert_eq!(cfg.model.hidden_size, 32);
    assert_eq!(cfg.model.cell, crate::CellKind::Gru);
    assert!((cfg.train.optimizer.lr() - 0.01).abs() < 1e-12);
}

#[test]
fn errors_name_the_key_and_the_place() {
    let err = parse_config("[model]\nhiden_size = 3\n", "t.toml", &[])
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("t.toml") && err.contains("hiden_size"),
        "{err}"
    );
    let err = parse_config("[model\n", "t.toml", &[])
        .unwrap_err()
        .to_string();
    assert!(err.contains("line 1"), "{err}");
    let err = parse_config("", "t.toml", &["train.epochs".into()])
        .unwrap_err()
        .to_string();
    assert!(err.contains("key=value"), "{err}");
}

#[test]
fn every_example_config_parses() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../configs");
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "toml") {
            let text = std::fs::read_to_string(&path).unwrap();
            let cfg = parse(&text, &path.display().to_string(), &[])
                .unwrap_or_else(|e| panic!("{}: {e:#}", path.display()));
            assert!(
                text.contains("Measured here"),
                "{}: no result",
                path.display()
            );
            let name = path.file_stem().unwrap().to_string_lossy().to_string();
            assert_eq!(cfg.output().name, name, "{}: output.name", path.display());
            seen += 1;
        }
    }
    assert!(seen >= 6, "{seen} configs");
    // The default config file is the bundled default.
    let text = std::fs::read_to_string(dir.join("shakespeare-char.toml")).unwrap();
    match parse(&text, "shakespeare-char.toml", &["output.name=".into()]).unwrap() {
        RunConfig::Lm(c) => assert_eq!(c, LmConfig::default()),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_tagged_variant_starts_from_its_own_keys_in_a_file_and_by_set() {
    use crate::data::series::SplitSpec;
    let cutoffs = SplitSpec::Cutoffs {
        val_start: "2010-01-01".into(),
        test_start: "2015-01-01".into(),
    };
    let file = "task = \"forecast\"\n[data.split]\nby = \"cutoffs\"\n\
                val_start = \"2010-01-01\"\ntest_start = \"2015-01-01\"\n";
    match parse(file, "t.toml", &[]).unwrap() {
        RunConfig::Forecast(f) => assert_eq!(f.data.split, cutoffs),
        other => panic!("{other:?}"),
    }
    let sets: Vec<String> = [
        "task=forecast",
        "data.split.by=cutoffs",
        "data.split.val_start=2010-01-01",
        "data.split.test_start=2015-01-01",
    ]
    .map(String::from)
    .into();
    match parse("", "t.toml", &sets).unwrap() {
        RunConfig::Forecast(f) => assert_eq!(f.data.split, cutoffs),
        other => panic!("{other:?}"),
    }
    // Over a file that chose the other variant.
    let fractions =
        "task = \"forecast\"\n[data.split]\nby = \"fractions\"\ntrain = 0.6\nval = 0.2\n";
    match parse(fractions, "t.toml", &sets[1..]).unwrap() {
        RunConfig::Forecast(f) => assert_eq!(f.data.split, cutoffs),
        other => panic!("{other:?}"),
    }
    // The variant's own fields are required; naming one is what the error says.
    let err = parse("", "t.toml", &sets[..2]).unwrap_err().to_string();
    assert!(err.contains("val_start"), "{err}");
    // Back to fractions with only one of its keys: the other is its own default or an
    // error, never a leftover of the other variant.
    let sgd = parse("", "t.toml", &["train.optimizer.kind=sgd".into()]).unwrap();
    match sgd {
        RunConfig::Lm(c) => assert!(
            matches!(c.train.optimizer, crate::optim::OptimizerConfig::Sgd(_)),
            "{:?}",
            c.train.optimizer
        ),
        other => panic!("{other:?}"),
    }
}

#[test]
fn the_task_key_picks_the_defaults() {
    let c = parse("task = \"classify\"\n", "t.toml", &[]).unwrap();
    assert_eq!(c, RunConfig::Classify(ClassifyConfig::default()));
    let f = parse(
        "",
        "t.toml",
        &["task=forecast".into(), "data.lookback=8".into()],
    );
    match f.unwrap() {
        RunConfig::Forecast(f) => {
            assert_eq!(f.data.lookback, 8);
            assert_eq!(f.data.horizon, 13);
        }
        other => panic!("{other:?}"),
    }
    let err = parse("task = \"tagging\"\n", "t.toml", &[])
        .unwrap_err()
        .to_string();
    assert!(err.contains("task") && err.contains("forecast"), "{err}");
    // A key of another task's section is an error naming it.
    let err = parse(
        "task = \"forecast\"\n[model]\nembedding_size = 3\n",
        "t.toml",
        &[],
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("embedding_size"), "{err}");
}

#[test]
fn a_plain_kind_field_is_not_a_variant_switch() {
    // The synthetic task's `data.kind` is an enum value in a struct, not a tag: choosing
    // another one keeps the table's other keys, in whatever order they are given.
    for sets in [
        ["task=synthetic", "data.length=50", "data.kind=copy"],
        ["task=synthetic", "data.kind=copy", "data.length=50"],
    ] {
        let sets: Vec<String> = sets.map(String::from).into();
        match parse("", "t.toml", &sets).unwrap() {
            RunConfig::Synthetic(c) => {
                assert_eq!(c.data.length, 50, "{sets:?}");
                assert_eq!(c.data.kind, crate::tasks::synthetic::SyntheticKind::Copy);
            }
            other => panic!("{other:?}"),
        }
    }
    let file = "task = \"synthetic\"\n[data]\nkind = \"copy\"\nlength = 20\n";
    match parse(file, "t.toml", &["data.kind=adding".into()]).unwrap() {
        RunConfig::Synthetic(c) => assert_eq!(c.data.length, 20),
        other => panic!("{other:?}"),
    }
}

#[test]
fn errors_point_at_the_key_that_is_wrong() {
    let e = |text: &str, sets: &[&str]| {
        let sets: Vec<String> = sets.iter().map(|s| s.to_string()).collect();
        parse(text, "t.toml", &sets).unwrap_err().to_string()
    };
    // Inside a tagged enum: the key's own line.
    let msg = e(
        "[train.optimizer]\nkind = \"sgd\"\nlr = 1.0\nmomentun = 0.9\n",
        &[],
    );
    assert!(msg.starts_with("t.toml, line 4: unknown key \"train.optimizer.momentun\"; did you mean \"train.optimizer.momentum\"?"), "{msg}");
    // A missing key of a variant: where the variant was chosen.
    let msg = e("task = \"forecast\"\n[data.split]\nby = \"cutoffs\"\n", &[]);
    assert!(
        msg.starts_with("t.toml, line 2: missing key \"data.split.val_start\""),
        "{msg}"
    );
    let msg = e("", &["task=forecast", "data.split.by=cutoffs"]);
    assert!(
        msg.starts_with("--set data.split.by=cutoffs: missing key \"data.split.val_start\""),
        "{msg}"
    );
    // The task key, in the file and by --set.
    let msg = e("seed = 1\ntask = \"tagging\"\n", &[]);
    assert!(
        msg.starts_with("t.toml, line 2: task = \"tagging\": expected one of"),
        "{msg}"
    );
    let msg = e("", &["task=nope"]);
    assert!(msg.starts_with("--set task=nope: task = \"nope\""), "{msg}");
    // A later --set of another key does not take the blame for the file's mistake.
    let msg = e("[train]\nepochs = -1\n", &["train.batch_size=4"]);
    assert!(
        msg.starts_with("t.toml, line 2: bad value for \"train.epochs\""),
        "{msg}"
    );
    // The kind of error decides the exit code.
    let err = parse("[model\n", "t.toml", &[]).unwrap_err();
    assert!(err.is_bad_input());
}
