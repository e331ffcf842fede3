//! The bundled surname classifier (18 languages), trained into a run directory by the library
//! alone, then used on new names:
//!
//! ```sh
//! cargo run --release --example train_classifier -- runs/example-names
//! ```

use rnnkit::run::{RunDir, Weights};
use rnnkit::tasks::classify::{Classify, ClassifyConfig, LoadedClassifier};
use rnnkit::tasks::{self, Quiet};

fn main() -> rnnkit::Result<()> {
    let dir = std::env::args()
        .nth(1)
        .unwrap_or("runs/example-names".into());
    let mut config = ClassifyConfig::default();
    config.train.epochs = 5;

    let run = RunDir::create(&dir)?;
    run.write_config(&rnnkit::run::config_toml(&config)?)?;
    let outcome = tasks::train::<Classify>(&config, &run, false, &mut Quiet)?;
    let metrics: serde_json::Value = run.read_json("metrics.json")?;
    println!("test accuracy {:.3}", metrics["accuracy"]);

    let classifier = LoadedClassifier::load(&run, config, Weights::Best)?;
    let names = ["Nakamura".to_string(), "Schmidt".into(), "O'Brien".into()];
    let probs = classifier.probabilities(&names)?;
    for (name, row) in names.iter().zip(probs.rows()) {
        let best = (0..row.len())
            .max_by(|&a, &b| row[a].total_cmp(&row[b]))
            .unwrap_or(0);
        println!("{name}: {} ({:.2})", classifier.classes[best], row[best]);
    }
    println!("report: {}", outcome.report.display());
    Ok(())
}
