//! The drivers for a trained run, `tasks::evaluate` and `tasks::predict`, on tiny run
//! directories trained with `tasks::train`.

use rnnkit::data::series::SeriesConfig;
use rnnkit::run::{RunDir, Weights};
use rnnkit::tasks::classify::{Classify, ClassifyConfig, ClassifyQuery};
use rnnkit::tasks::forecast::{Forecast, ForecastConfig};
use rnnkit::tasks::synthetic::SyntheticConfig;
use rnnkit::tasks::{self, AnyConfig, EvaluateOptions, Quiet, TaskKind};
use std::path::{Path, PathBuf};

fn temp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("rnnkit-tasks-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// A sine of `rows` rows, without timestamps.
fn sine_csv(path: &Path, rows: usize) {
    let mut csv = String::from("v\n");
    for r in 0..rows {
        csv.push_str(&format!("{}\n", (r as f64 * 0.3).sin()));
    }
    std::fs::write(path, csv).unwrap();
}

/// Trains a tiny forecaster on a sine into `dir/run` and saves its config as training would.
fn forecast_run(dir: &Path) -> (ForecastConfig, RunDir, PathBuf) {
    let csv = dir.join("sine.csv");
    sine_csv(&csv, 200);
    let mut config = ForecastConfig {
        data: SeriesConfig {
            path: csv.clone(),
            target_columns: vec!["v".into()],
            lookback: 8,
            horizon: 2,
            ..SeriesConfig::default()
        },
        ..Default::default()
    };
    config.model.hidden_size = 8;
    config.train.epochs = 3;
    config.train.batch_size = 16;
    let run = RunDir::create(dir.join("run")).unwrap();
    run.write_config(&rnnkit::run::config_toml(&config).unwrap())
        .unwrap();
    tasks::train::<Forecast>(&config, &run, false, &mut Quiet).unwrap();
    (config, run, csv)
}

#[test]
fn evaluate_scores_a_forecast_run_as_training_did_and_on_new_data() {
    let dir = temp_dir("forecast");
    let (config, run, csv) = forecast_run(&dir);
    // The config reads back from the run directory, as the CLI reads it.
    let saved: ForecastConfig = toml::from_str(&run.read_config().unwrap()).unwrap();
    assert_eq!(saved, config);

    // On the run's own test split with the best weights: what training wrote to metrics.json.
    let found = tasks::evaluate::<Forecast>(&saved, &run, &EvaluateOptions::default()).unwrap();
    let m = &found.metrics;
    let trained: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("metrics.json")).unwrap()).unwrap();
    assert_eq!((m.task, m.horizon), (TaskKind::Forecast, 2));
    assert!(m.data.starts_with("the test split of"), "{}", m.data);
    assert_eq!(m.windows as u64, trained["test_windows"].as_u64().unwrap());
    let rmse = trained["model"]["rmse"].as_f64().unwrap();
    assert!(
        (m.rmse - rmse).abs() <= 1e-9 * rmse.abs().max(1.0),
        "evaluate {} vs training {rmse}",
        m.rmse
    );
    assert!(m.rmse.is_finite() && m.mae.is_finite() && m.naive_rmse > 0.0);
    assert!(found.outputs.is_none());

    // On a CSV: every complete window, and the raw outputs of the first 64 when asked.
    let options = EvaluateOptions {
        data: Some(csv.clone()),
        weights: Weights::Latest,
        outputs: true,
        int8: false,
    };
    let found = tasks::evaluate::<Forecast>(&saved, &run, &options).unwrap();
    // The same with the stack in int8: close to f32, not the same numbers.
    let int8 = EvaluateOptions {
        int8: true,
        ..options.clone()
    };
    let quantized = tasks::evaluate::<Forecast>(&saved, &run, &int8).unwrap();
    let (a, b) = (found.metrics.rmse, quantized.metrics.rmse);
    assert!((a - b).abs() <= 0.05 * a, "int8 RMSE {b} vs f32 {a}");
    assert_eq!(found.metrics.windows, 200 - 8 - 2 + 1);
    assert_eq!(found.metrics.data, csv.display().to_string());
    let outputs = found.outputs.unwrap();
    assert_eq!(outputs.metadata["rnnkit_task"], "forecast");
    assert_eq!(outputs.f32["inputs"].shape(), &[8, 64, 1]);
    assert_eq!(outputs.f32["forecasts"].shape(), &[64, 2, 1]);

    // Through the registry, as JSON.
    let any = AnyConfig::Forecast(saved.clone());
    let json = any.evaluate(&run, &EvaluateOptions::default()).unwrap();
    assert_eq!(json.metrics["task"], "forecast");
    assert_eq!(json.metrics["rmse"].as_f64(), Some(m.rmse));

    // Too short for one window: the input is to blame.
    let short = dir.join("short.csv");
    sine_csv(&short, 5);
    let options = EvaluateOptions {
        data: Some(short),
        ..Default::default()
    };
    let e = tasks::evaluate::<Forecast>(&saved, &run, &options).unwrap_err();
    assert!(e.is_bad_input(), "{e}");

    // The next steps after the end of the CSV.
    let next = tasks::predict::<Forecast>(&saved, &run, Weights::Best, &csv).unwrap();
    assert_eq!(next.values.shape(), &[2, 1]);
    assert!(next.times.is_none());
    let text = next.to_csv();
    assert!(text.starts_with("step,v\n1,"), "{text}");
    assert_eq!(text.lines().count(), 3, "{text}");

    // A synthetic run has nothing to evaluate on, and says where its score is.
    let e = AnyConfig::Synthetic(SyntheticConfig::default())
        .evaluate(&run, &EvaluateOptions::default())
        .unwrap_err();
    assert!(
        e.is_bad_input() && e.to_string().contains("metrics.json"),
        "{e}"
    );
    assert!(!TaskKind::Synthetic.evaluates() && TaskKind::Forecast.evaluates());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_classify_run_evaluates_its_test_split_and_ranks_classes() {
    let dir = temp_dir("classify");
    let data = dir.join("data");
    std::fs::create_dir_all(&data).unwrap();
    let words = |c: char| -> String {
        (1..=40)
            .map(|n| format!("{}\n", c.to_string().repeat(n % 7 + 2)))
            .collect()
    };
    std::fs::write(data.join("ays.txt"), words('a')).unwrap();
    std::fs::write(data.join("bees.txt"), words('b')).unwrap();
    let mut config = ClassifyConfig::default();
    config.data.path = data;
    config.data.valid_fraction = 0.25;
    config.data.test_fraction = 0.25;
    config.model.embedding_size = 4;
    config.model.hidden_size = 8;
    config.train.epochs = 2;
    config.train.batch_size = 8;
    let run = RunDir::create(dir.join("run")).unwrap();
    tasks::train::<Classify>(&config, &run, false, &mut Quiet).unwrap();

    let found = tasks::evaluate::<Classify>(&config, &run, &EvaluateOptions::default()).unwrap();
    let m = &found.metrics;
    assert_eq!(m.task, TaskKind::Classify);
    assert_eq!(m.data, "the run's test split");
    assert_eq!(m.examples, 20);
    assert!((0.0..=1.0).contains(&m.accuracy), "{m:?}");
    assert_eq!(m.f1_per_class.keys().collect::<Vec<_>>(), ["ays", "bees"]);

    let texts = vec!["aaaa".to_string(), "bbb".to_string()];
    let query = ClassifyQuery {
        texts: &texts,
        top: 5,
    };
    let ranked = tasks::predict::<Classify>(&config, &run, Weights::Best, query).unwrap();
    assert_eq!(ranked.len(), 2);
    for classes in &ranked {
        // `top` is clamped to the classes there are; the most likely comes first.
        assert_eq!(classes.len(), 2, "{classes:?}");
        assert!(classes[0].1 >= classes[1].1, "{classes:?}");
        let sum: f32 = classes.iter().map(|(_, p)| p).sum();
        assert!((sum - 1.0).abs() < 1e-5, "{classes:?}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
