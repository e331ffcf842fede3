//! `rnnkit`: the command line over the rnnkit library. Argument parsing and printing only;
//! the work is done by the library.

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

mod evaluate_cmd;
mod export_cmd;
mod generate_cmd;
mod inspect_cmd;
mod interrupt;
mod lab_cmd;
mod predict_cmd;
mod progress;
mod run_config;
mod stdout;
mod stream_cmd;
mod train_cmd;
mod tune_cmd;

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
    /// Train a model. With no arguments: the bundled default, a character-level LSTM on the
    /// bundled Tiny Shakespeare text (about 5 minutes on 2 cores).
    Train {
        /// A TOML config (sections data, model, train, output); keys not given take the
        /// bundled defaults.
        #[arg(long)]
        config: Option<PathBuf>,
        /// Override any config key, e.g. --set train.epochs=2 --set model.hidden_size=128.
        #[arg(long = "set", value_name = "KEY=VALUE")]
        set: Vec<String>,
        /// Continue the run in this directory from its latest checkpoint (exactly).
        #[arg(long, value_name = "RUN_DIR", conflicts_with = "config")]
        resume: Option<PathBuf>,
        /// Print nothing but errors.
        #[arg(long)]
        quiet: bool,
    },
    /// Run the benchmark suite (the cases of docs/performance.md) and print tokens/s per case.
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
        /// The recurrent products' arithmetic: f32, or bf16 (needs AVX512-BF16).
        #[arg(long, default_value = "f32")]
        precision: String,
    },
    /// Print the default `rnnkit train` config of a task (every key with its default), as
    /// TOML, or the Markdown tables of docs/config.md.
    Config {
        /// The task whose defaults to print: lm, classify, forecast or synthetic.
        #[arg(long, default_value = "lm")]
        task: rnnkit::tasks::TaskKind,
        /// The Markdown tables of every task (docs/config.md) instead of TOML.
        #[arg(long)]
        markdown: bool,
    },
    /// Score a trained run on new data (or on its own held-out split): perplexity, accuracy
    /// and macro-F1, or RMSE/MAE against the naive baselines.
    Evaluate {
        /// The run directory of a `rnnkit train` run.
        #[arg(long, value_name = "RUN_DIR")]
        model: PathBuf,
        /// The data: a text file (lm), a class directory or CSV/TSV (classify), a CSV
        /// (forecast). Default: the run's validation text (lm) or test split.
        #[arg(long, value_name = "PATH")]
        data: Option<PathBuf>,
        /// Also write a fixed batch of inputs and raw model outputs (for checking against
        /// PyTorch with tools/torch_load_run.py).
        #[arg(long, value_name = "FILE.safetensors")]
        outputs: Option<PathBuf>,
        /// One JSON object instead of lines.
        #[arg(long)]
        json: bool,
        /// Use the latest checkpoint instead of the best weights.
        #[arg(long)]
        latest: bool,
        /// Run the recurrent stack on int8 weights (dynamic quantization, as PyTorch's
        /// quantize_dynamic): faster inference, slightly less exact.
        #[arg(long)]
        int8: bool,
    },
    /// Export a trained run's model for deployment: ONNX (opset 17) with the recurrent state
    /// as inputs and outputs, and its preprocessing as JSON beside it.
    Export {
        /// The run directory of a `rnnkit train` run.
        #[arg(long, value_name = "RUN_DIR")]
        model: PathBuf,
        /// The format.
        #[arg(long, default_value = "onnx", value_name = "FORMAT")]
        format: String,
        /// The model file. Default: RUN_DIR/model.onnx. The preprocessing goes beside it as
        /// FILE.preprocessing.json.
        #[arg(long, value_name = "FILE.onnx")]
        out: Option<PathBuf>,
        /// How recurrent layers are written: `operators` (ONNX's LSTM/GRU/RNN, fused in
        /// onnxruntime) or `scan` (every layer a Scan over the cell, for runtimes such as
        /// tract whose recurrent operators take no variable lengths).
        #[arg(long, default_value = "operators", value_name = "KIND")]
        recurrence: rnnkit::export::Recurrence,
        /// Leave out the `lengths` input: every sequence is T steps long.
        #[arg(long)]
        no_lengths: bool,
        /// Use the latest checkpoint instead of the best weights.
        #[arg(long)]
        latest: bool,
    },
    /// Classify texts with a trained classifier: text, class and probability per line.
    Classify {
        /// The run directory of a `task = "classify"` run.
        #[arg(long, value_name = "RUN_DIR")]
        model: PathBuf,
        /// A file of texts, one per line (`-` for standard input).
        #[arg(long, value_name = "FILE")]
        input: Option<PathBuf>,
        /// Show the k most likely classes.
        #[arg(long, default_value_t = 1)]
        top: usize,
        /// Use the latest checkpoint instead of the best weights.
        #[arg(long)]
        latest: bool,
        /// Run the recurrent stack on int8 weights (dynamic quantization, as PyTorch's
        /// quantize_dynamic): faster inference, slightly less exact.
        #[arg(long)]
        int8: bool,
        /// Texts to classify.
        texts: Vec<String>,
    },
    /// Search hyperparameters: sample configs from a study file's space, train them as runs,
    /// promote the promising ones rung by rung (ASHA), and write trials.csv, best/config.toml
    /// and report.md into the study directory.
    Tune {
        /// A study file (base config, objective, budget, sampler, pruner, [space]).
        #[arg(long, value_name = "FILE")]
        study: Option<PathBuf>,
        /// The new study's directory.
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
        /// Continue a study (after a crash or Ctrl-C), or join one that is running.
        #[arg(long, value_name = "DIR")]
        resume: Option<PathBuf>,
        /// Worker processes, each training one trial at a time.
        #[arg(long, default_value_t = 1)]
        workers: usize,
        /// Threads of each worker.
        #[arg(long, default_value_t = 1)]
        threads_per_worker: usize,
        /// Change the budget: trials to start in all (0: no limit on trials). With --resume it
        /// replaces the study's; with --study, the study file's.
        #[arg(long, value_name = "N")]
        trials: Option<u64>,
        /// Change the budget: wall minutes of all sessions together (0: no time limit).
        #[arg(long, value_name = "M")]
        minutes: Option<f64>,
        /// Change the budget: epochs over all trials (0: no epoch limit).
        #[arg(long, value_name = "E")]
        epochs: Option<usize>,
        /// Print nothing but errors.
        #[arg(long)]
        quiet: bool,
        #[arg(long, hide = true)]
        worker_session: Option<u64>,
        #[arg(long, hide = true)]
        worker_id: Option<u32>,
    },
    /// Run a trained audio classifier over a long recording frame by frame and print each
    /// detection as it is decided: start, end, label, probability, and when it was emitted (s).
    Stream {
        /// The run directory of a `task = "audio"` run (unidirectional, Kaldi-style features).
        #[arg(long, value_name = "RUN_DIR")]
        model: PathBuf,
        /// A WAV file, or `-` for raw 16-bit little-endian mono PCM at the model's sample rate
        /// on standard input.
        input: PathBuf,
        /// Smoothed posterior a detection needs.
        #[arg(long, default_value_t = 0.5)]
        threshold: f32,
        /// Posteriors averaged into the score (frames of 10 ms).
        #[arg(long, default_value_t = 5)]
        smooth: usize,
        /// Frames louder than this (dB relative to full scale) are speech.
        #[arg(long, default_value_t = -55.0, allow_hyphen_values = true)]
        vad_db: f32,
        /// Quiet frames that end a segment.
        #[arg(long, default_value_t = 15)]
        hangover: usize,
        /// Decide early, after this many frames of a segment, when the score is already high
        /// enough (lower latency, lower accuracy). Default: at each segment's end.
        #[arg(long, value_name = "FRAMES")]
        early: Option<usize>,
        /// Use the latest checkpoint instead of the best weights.
        #[arg(long)]
        latest: bool,
    },
    /// Forecast the steps after the end of a CSV with a trained forecaster, in original units.
    Forecast {
        /// The run directory of a `task = "forecast"` run.
        #[arg(long, value_name = "RUN_DIR")]
        model: PathBuf,
        /// The recent history: a CSV with the columns the model was trained on (at least
        /// `lookback` rows).
        #[arg(long, value_name = "CSV")]
        input: PathBuf,
        /// Write the forecast CSV here instead of standard output.
        #[arg(long, value_name = "FILE.csv")]
        out: Option<PathBuf>,
        /// Also draw the history and the forecast to this PNG.
        #[arg(long, value_name = "FILE.png")]
        plot: Option<PathBuf>,
        /// Use the latest checkpoint instead of the best weights.
        #[arg(long)]
        latest: bool,
        /// Run the recurrent stack on int8 weights (dynamic quantization, as PyTorch's
        /// quantize_dynamic): faster inference, slightly less exact.
        #[arg(long)]
        int8: bool,
    },
    /// Generate text with a trained language model, streaming it to stdout.
    Generate {
        /// The run directory of a `rnnkit train` run.
        #[arg(long, value_name = "RUN_DIR")]
        model: PathBuf,
        /// Text to start from.
        #[arg(long, default_value = "")]
        prompt: String,
        /// Tokens (characters, for a character model) to generate.
        #[arg(long, default_value_t = 500)]
        length: usize,
        /// Softmax temperature; 0 is greedy (always the most likely token).
        #[arg(long, default_value_t = 0.8)]
        temperature: f32,
        /// Sample only among the k most likely tokens.
        #[arg(long)]
        top_k: Option<usize>,
        /// Sample only among the most likely tokens holding this much probability (nucleus).
        #[arg(long)]
        top_p: Option<f32>,
        /// Seed: the same seed, model and settings give the same text.
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Use the latest checkpoint instead of the best one.
        #[arg(long)]
        latest: bool,
        /// Run the recurrent stack on int8 weights (dynamic quantization, as PyTorch's
        /// quantize_dynamic): faster inference, slightly less exact.
        #[arg(long)]
        int8: bool,
    },
    /// Experiments that show what happens inside recurrent networks.
    Lab {
        #[command(subcommand)]
        lab: LabCommand,
    },
    /// Show a saved model: config, parameter names, shapes and counts.
    Inspect {
        /// A run directory or a .safetensors file.
        target: PathBuf,
    },
    /// Run a verification case file forward and backward and write every output and gradient.
    VerifyCase {
        /// Case file (safetensors, laid out like tests/fixtures/cases/*.safetensors).
        case: PathBuf,
        /// Result file to write.
        #[arg(long)]
        out: PathBuf,
    },
}

#[derive(Subcommand)]
enum LabCommand {
    /// Tanh RNN vs LSTM vs GRU on the adding problem at growing lengths, with and without
    /// clipping: results table, learning curves and gradient norm against distance back in
    /// time (about 7 minutes on 2 cores; --quick about 20 seconds).
    Vanishing {
        /// Lengths 20 and 50 with fewer examples and epochs (about 20 seconds).
        #[arg(long)]
        quick: bool,
        /// Sequence lengths to try (default 20,50,100,200,400).
        #[arg(long, value_delimiter = ',')]
        lengths: Vec<usize>,
        /// Where the report and charts go.
        #[arg(long, default_value = "runs/lab-vanishing")]
        out: PathBuf,
        /// Worker threads (default: all cores).
        #[arg(long, default_value_t = 0)]
        threads: usize,
        /// Print nothing but errors.
        #[arg(long)]
        quiet: bool,
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
            eprintln!("error: {}", describe(&e));
            let usage = e.chain().any(|c| {
                c.downcast_ref::<run_config::UsageError>().is_some()
                    || c.downcast_ref::<rnnkit::Error>()
                        .is_some_and(rnnkit::Error::is_bad_input)
            });
            ExitCode::from(if usage { 2 } else { 1 })
        }
    }
}

/// The error and its causes, joined by ": ", each cause once: the library's errors already
/// write their cause into their own message (`x.csv: No such file or directory`), so a cause
/// the text so far ends with is not repeated.
fn describe(e: &anyhow::Error) -> String {
    let mut text = String::new();
    for cause in e.chain() {
        let part = cause.to_string();
        if text.ends_with(&part) {
            continue;
        }
        if !text.is_empty() {
            text.push_str(": ");
        }
        text.push_str(&part);
    }
    text
}

fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Train {
            config,
            set,
            resume,
            quiet,
        } => train_cmd::run(train_cmd::TrainArgs {
            config,
            set,
            resume,
            quiet,
        })?,
        Command::Inspect { target } => inspect_cmd::run(&target)?,
        Command::Lab {
            lab:
                LabCommand::Vanishing {
                    quick,
                    lengths,
                    out,
                    threads,
                    quiet,
                },
        } => lab_cmd::vanishing(lab_cmd::VanishingArgs {
            quick,
            lengths,
            out,
            threads,
            quiet,
        })?,
        Command::Generate {
            model,
            prompt,
            length,
            temperature,
            top_k,
            top_p,
            seed,
            latest,
            int8,
        } => generate_cmd::run(generate_cmd::GenerateArgs {
            model,
            prompt,
            length,
            temperature,
            top_k,
            top_p,
            seed,
            latest,
            int8,
        })?,
        Command::Config { task, markdown } => {
            let text = if markdown {
                rnnkit::config_file::docs_tables()?
            } else {
                rnnkit::run::config_toml(&run_config::RunConfig::default_for(task))?
            };
            stdout::emit(&text)?;
        }
        Command::Evaluate {
            model,
            data,
            outputs,
            json,
            latest,
            int8,
        } => evaluate_cmd::run(evaluate_cmd::EvaluateArgs {
            model,
            data,
            outputs,
            json,
            latest,
            int8,
        })?,
        Command::Export {
            model,
            format,
            out,
            recurrence,
            no_lengths,
            latest,
        } => export_cmd::run(export_cmd::ExportArgs {
            model,
            format,
            out,
            recurrence,
            no_lengths,
            latest,
        })?,
        Command::Classify {
            model,
            input,
            top,
            latest,
            int8,
            texts,
        } => predict_cmd::classify(predict_cmd::ClassifyArgs {
            model,
            input,
            texts,
            top,
            latest,
            int8,
        })?,
        Command::Tune {
            study,
            out,
            resume,
            workers,
            threads_per_worker,
            trials,
            minutes,
            epochs,
            quiet,
            worker_session,
            worker_id,
        } => tune_cmd::run(tune_cmd::TuneArgs {
            study,
            out,
            resume,
            workers,
            threads: threads_per_worker,
            budget: (trials, minutes, epochs),
            quiet,
            worker: worker_session.zip(worker_id),
        })?,
        Command::Stream {
            model,
            input,
            threshold,
            smooth,
            vad_db,
            hangover,
            early,
            latest,
        } => stream_cmd::run(stream_cmd::StreamArgs {
            model,
            input,
            config: rnnkit::tasks::audio_stream::StreamConfig {
                vad_db,
                hangover_frames: hangover,
                smooth_frames: smooth,
                threshold,
                min_frames: early,
            },
            latest,
        })?,
        Command::Forecast {
            model,
            input,
            out,
            plot,
            latest,
            int8,
        } => predict_cmd::forecast(predict_cmd::ForecastArgs {
            model,
            input,
            out,
            plot,
            latest,
            int8,
        })?,
        Command::VerifyCase { case, out } => {
            rnnkit::verify::verify_case(&case, &out)
                .with_context(|| format!("verify-case {}", case.display()))?;
            eprintln!("wrote {}", out.display());
        }
        Command::Bench {
            json,
            threads,
            case,
            precision,
        } => {
            let opts = rnnkit::bench::BenchOptions {
                threads,
                cases: case,
                precision: precision.parse()?,
            };
            rnnkit::bench::run(&opts, |r| {
                let line = if json {
                    format!("{}\n", r.to_json())
                } else {
                    format!("{r}\n")
                };
                // The suite cannot be stopped from here; once the reader has gone (`| head`)
                // or stdout fails there is no one to run the remaining cases for.
                match stdout::emit(&line) {
                    Ok(true) => {}
                    Ok(false) => std::process::exit(0),
                    Err(e) => {
                        eprintln!("error: {}", describe(&e));
                        std::process::exit(1)
                    }
                }
            })?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn causes_the_message_already_holds_are_not_repeated() {
        let io = std::io::Error::new(std::io::ErrorKind::NotFound, "no such file");
        let lib = rnnkit::Error::Io {
            path: "x.csv".into(),
            source: io,
        };
        let e = anyhow::Error::new(lib).context("reading the series");
        assert_eq!(
            super::describe(&e),
            "reading the series: x.csv: no such file"
        );
        let plain = anyhow::anyhow!("inner").context("outer");
        assert_eq!(super::describe(&plain), "outer: inner");
    }
}
