//! `rnnkit`: the command line over the rnnkit library. Argument parsing and printing only;
//! the work is done by the library.

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "rnnkit",
    version,
    about = "Recurrent neural networks that train in practice"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the benchmark suite (DESIGN section 5) and print tokens/s per case.
    Bench {
        /// One JSON object per line: {"case", "tokens_per_s", "ms_per_iter"}.
        #[arg(long)]
        json: bool,
        /// Worker threads (default: all cores).
        #[arg(long)]
        threads: Option<usize>,
        /// Run only these cases (repeat or comma-separate).
        #[arg(long, value_delimiter = ',')]
        case: Vec<String>,
    },
    /// Run a verification case file forward and backward and write every output and gradient.
    VerifyCase {
        /// Case file (safetensors, DESIGN section 4).
        case: PathBuf,
        /// Result file to write.
        #[arg(long)]
        out: PathBuf,
    },
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::from(2)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            let usage = e.chain().any(|c| {
                matches!(
                    c.downcast_ref::<rnnkit::Error>(),
                    Some(
                        rnnkit::Error::Config(_)
                            | rnnkit::Error::Format { .. }
                            | rnnkit::Error::Data { .. }
                            | rnnkit::Error::Shape(_)
                    )
                )
            });
            ExitCode::from(if usage { 2 } else { 1 })
        }
    }
}

fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::VerifyCase { case, out } => {
            rnnkit::verify::verify_case(&case, &out)
                .with_context(|| format!("verify-case {}", case.display()))?;
            eprintln!("wrote {}", out.display());
        }
        Command::Bench {
            json,
            threads,
            case,
        } => {
            let opts = rnnkit::bench::BenchOptions {
                threads,
                cases: case,
            };
            rnnkit::bench::run(&opts, |r| {
                if json {
                    println!("{}", r.to_json());
                } else {
                    println!("{r}");
                }
            })?;
        }
    }
    Ok(())
}
