//! The bundled weekly CO2 forecast (13 weeks ahead from 104), trained into a run directory by
//! the library alone, scored against the naive baselines:
//!
//! ```sh
//! cargo run --release --example train_forecaster -- runs/example-co2
//! ```

use rnnkit::run::RunDir;
use rnnkit::tasks::forecast::{Forecast, ForecastConfig};
use rnnkit::tasks::{self, Quiet};

fn main() -> rnnkit::Result<()> {
    let dir = std::env::args().nth(1).unwrap_or("runs/example-co2".into());
    let mut config = ForecastConfig::default();
    config.train.epochs = 10;

    let run = RunDir::create(&dir)?;
    run.write_config(&rnnkit::run::config_toml(&config)?)?;
    let outcome = tasks::train::<Forecast>(&config, &run, false, &mut Quiet)?;

    let m: serde_json::Value = run.read_json("metrics.json")?;
    println!(
        "test RMSE {:.3} ppm (naive {:.3}, seasonal naive {:.3})",
        m["model"]["rmse"], m["naive"]["rmse"], m["seasonal_naive"]["rmse"]
    );
    println!("report: {}", outcome.report.display());
    Ok(())
}
