//! A character language model on the bundled Tiny Shakespeare, trained into a run directory
//! by the library alone (what `rnnkit train` does with no arguments, smaller):
//!
//! ```sh
//! cargo run --release --example train_lm -- runs/example-lm
//! ```

use rnnkit::run::RunDir;
use rnnkit::tasks::{self, Quiet, lm::LmConfig};

fn main() -> rnnkit::Result<()> {
    let dir = std::env::args().nth(1).unwrap_or("runs/example-lm".into());
    let mut config = LmConfig::default();
    config.model.hidden_size = 128;
    config.train.epochs = 1;
    config.train.max_steps = Some(200);
    config.output.sample_length = 200;

    let run = RunDir::create(&dir)?;
    run.write_config(&rnnkit::run::config_toml(&config)?)?; // `rnnkit train --config` reruns it
    let outcome = tasks::train::<tasks::lm::LanguageModeling>(&config, &run, false, &mut Quiet)?;

    let (loss, epoch) = outcome.summary.best_val.unwrap_or((f64::NAN, 0));
    println!(
        "best validation loss {loss:.3} nats/token (epoch {})",
        epoch + 1
    );
    println!("sample:\n{}", run.read_text("sample.txt")?);
    println!("report: {}", outcome.report.display());
    Ok(())
}
