//! The adding problem (Hochreiter & Schmidhuber 1997) at T = 50, trained into a run directory
//! by the library alone and scored against the memoryless baseline:
//!
//! ```sh
//! cargo run --release --example train_synthetic -- runs/example-adding
//! ```

use rnnkit::run::RunDir;
use rnnkit::tasks::Quiet;
use rnnkit::tasks::synthetic::{SyntheticConfig, train};

fn main() -> rnnkit::Result<()> {
    let dir = std::env::args()
        .nth(1)
        .unwrap_or("runs/example-adding".into());
    let mut config = SyntheticConfig::default();
    config.data.length = 50;
    config.train.epochs = 10;
    config.train.stop_below = Some(0.01); // solved: 6% of the baseline's error
    config.train.optimizer = rnnkit::optim::OptimizerConfig::Adam(rnnkit::optim::AdamConfig {
        lr: 1e-2,
        ..Default::default()
    });

    let run = RunDir::create(&dir)?;
    run.write_config(&rnnkit::run::config_toml(&config)?)?;
    let outcome = train(&config, &run, false, &mut Quiet)?; // picks the model by data.kind

    let m: serde_json::Value = run.read_json("metrics.json")?;
    let number = |key: &str| m[key].as_f64().unwrap_or(f64::NAN);
    println!(
        "test MSE {:.4} against the baseline {:.4}",
        number("test_loss"),
        number("baseline")
    );
    println!("report: {}", outcome.report.display());
    Ok(())
}
