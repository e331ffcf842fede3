//! `rnnkit classify` and `rnnkit forecast`: a trained run applied to new data, prepared with
//! the run's saved tokenizer or scaler (the library's `tasks::predict`).

use crate::run_config::{load_run_config, usage};
use anyhow::{Context, Result};
use rnnkit::data::text::load::{MAX_LINE_BYTES, read_lines};
use rnnkit::run::{RunDir, Weights};
use rnnkit::tasks::audio::{Audio, AudioConfig, AudioQuery};
use rnnkit::tasks::classify::{Classify, ClassifyConfig, ClassifyQuery};
use rnnkit::tasks::forecast::{Forecast, ForecastConfig};
use rnnkit::tasks::{AnyConfig, TaskKind};
use std::io::BufRead;
use std::path::{Path, PathBuf};

/// What `rnnkit classify` was given.
pub struct ClassifyArgs {
    /// The run directory.
    pub model: PathBuf,
    /// A file of texts, one per line (`-` for standard input).
    pub input: Option<PathBuf>,
    /// Texts given on the command line.
    pub texts: Vec<String>,
    /// Show the `top` most likely classes.
    pub top: usize,
    /// Use the latest checkpoint instead of the best weights.
    pub latest: bool,
    /// Quantize the recurrent stack to int8 (dynamic quantization).
    pub int8: bool,
}

/// Prints `text<TAB>class<TAB>probability` per text (with `top` > 1, further class and
/// probability pairs follow). A `task = "audio"` run takes WAV files instead of texts, and
/// `--input` is then a list of files (one per line) or a CSV manifest with a `path` column.
pub fn classify(args: ClassifyArgs) -> Result<()> {
    if load_run_config(&args.model)?.kind() == TaskKind::Audio {
        return classify_audio(args);
    }
    let (cfg, run) = open_run::<ClassifyConfig>(&args.model, |kind| {
        wrong_task(&args.model, kind, "classify")
    })?;
    let mut texts = args.texts.clone();
    if let Some(path) = &args.input {
        let reader: Box<dyn BufRead> = if path.as_os_str() == "-" {
            Box::new(std::io::stdin().lock())
        } else {
            Box::new(std::io::BufReader::new(std::fs::File::open(path).map_err(
                |e| usage(format!("reading {}: {e}", path.display())),
            )?))
        };
        let name = path.display().to_string();
        let lines = read_lines(reader, &name, MAX_LINE_BYTES)?;
        texts.extend(lines.into_iter().map(|(_, text)| text));
    }
    if texts.is_empty() {
        return Err(usage(
            "nothing to classify: give texts as arguments or --input FILE (one per line, - for \
             standard input)"
                .into(),
        ));
    }
    let query = ClassifyQuery {
        texts: &texts,
        top: args.top,
    };
    let answer = rnnkit::tasks::predict_with::<Classify>(
        &cfg,
        &run,
        Weights::latest_if(args.latest),
        args.int8,
        query,
    )?;
    let mut out = String::new();
    for (text, classes) in texts.iter().zip(answer) {
        out.push_str(text);
        for (class, p) in classes {
            out.push_str(&format!("\t{class}\t{p:.4}"));
        }
        out.push('\n');
    }
    crate::stdout::emit(&out)?; // a reader that has gone (`| head -1`) ends the command quietly
    Ok(())
}

/// `rnnkit classify` on an audio run: `file<TAB>class<TAB>probability` per WAV file.
fn classify_audio(args: ClassifyArgs) -> Result<()> {
    let (cfg, run) = open_run::<AudioConfig>(&args.model, |kind| {
        wrong_task(&args.model, kind, "classify")
    })?;
    let mut paths: Vec<PathBuf> = args.texts.iter().map(PathBuf::from).collect();
    if let Some(list) = &args.input {
        paths.extend(read_path_list(list)?);
    }
    if paths.is_empty() {
        return Err(usage(
            "nothing to classify: give WAV files as arguments or --input FILE (a list of files,              one per line, or a CSV manifest with a path column)"
                .into(),
        ));
    }
    let query = AudioQuery {
        paths: &paths,
        top: args.top,
    };
    let answer = rnnkit::tasks::predict_with::<Audio>(
        &cfg,
        &run,
        Weights::latest_if(args.latest),
        args.int8,
        query,
    )?;
    let mut out = String::new();
    for (path, classes) in paths.iter().zip(answer) {
        out.push_str(&path.display().to_string());
        for (class, p) in classes {
            out.push_str(&format!("\t{class}\t{p:.4}"));
        }
        out.push('\n');
    }
    crate::stdout::emit(&out)?;
    Ok(())
}

/// The files a list names: one path per line, or, when the first line is a CSV header with a
/// `path` column, that column. Relative paths are relative to the list's folder.
fn read_path_list(list: &Path) -> Result<Vec<PathBuf>> {
    let text = std::fs::read_to_string(list)
        .map_err(|e| usage(format!("reading {}: {e}", list.display())))?;
    let base = list.parent().unwrap_or(Path::new(""));
    let mut lines = text.lines().map(str::trim).filter(|l| !l.is_empty());
    let first = lines.next().unwrap_or("");
    let header: Vec<&str> = first.split(',').map(str::trim).collect();
    let (column, rows): (Option<usize>, Vec<&str>) = match header.iter().position(|h| *h == "path")
    {
        Some(c) if header.len() > 1 || first == "path" => (Some(c), lines.collect()),
        _ => (None, std::iter::once(first).chain(lines).collect()),
    };
    rows.iter()
        .enumerate()
        .filter(|(_, l)| !l.is_empty())
        .map(|(i, line)| {
            let field = match column {
                Some(c) => line.split(',').nth(c).map(str::trim).ok_or_else(|| {
                    usage(format!(
                        "{}: line {} has no path column",
                        list.display(),
                        i + 2
                    ))
                })?,
                None => line,
            };
            let p = PathBuf::from(field);
            Ok(if p.is_relative() { base.join(p) } else { p })
        })
        .collect()
}

/// What `rnnkit forecast` was given.
pub struct ForecastArgs {
    /// The run directory.
    pub model: PathBuf,
    /// The recent history, a CSV with the training columns.
    pub input: PathBuf,
    /// Where to write the forecast CSV (standard output when absent).
    pub out: Option<PathBuf>,
    /// Also draw the history and the forecast to this PNG.
    pub plot: Option<PathBuf>,
    /// Use the latest checkpoint instead of the best weights.
    pub latest: bool,
    /// Quantize the recurrent stack to int8 (dynamic quantization).
    pub int8: bool,
}

/// Forecasts the `horizon` steps after the last row of the input, in original units, as CSV:
/// `step`, `timestamp` (when the series has timestamps), then one column per target.
pub fn forecast(args: ForecastArgs) -> Result<()> {
    let (cfg, run) = open_run::<ForecastConfig>(&args.model, |kind| {
        wrong_task(&args.model, kind, "forecast")
    })?;
    let next = rnnkit::tasks::predict_with::<Forecast>(
        &cfg,
        &run,
        Weights::latest_if(args.latest),
        args.int8,
        &args.input,
    )?;
    let csv = next.to_csv();
    match &args.out {
        Some(path) => {
            std::fs::write(path, &csv).with_context(|| format!("writing {}", path.display()))?;
            eprintln!("wrote {}", path.display());
        }
        None => {
            // A reader that quit early (`| head`) still gets the plot written.
            crate::stdout::emit(&csv)?;
        }
    }
    if let Some(png) = &args.plot {
        plot(&next, png)?;
        eprintln!("wrote {}", png.display());
    }
    Ok(())
}

#[cfg(feature = "plot")]
fn plot(next: &rnnkit::tasks::forecast::NextSteps, png: &Path) -> Result<()> {
    next.save_png(png)
        .with_context(|| format!("drawing {}", png.display()))
}

/// Built without the `plot` feature, `--plot` is an error (after the forecast is written).
#[cfg(not(feature = "plot"))]
fn plot(_next: &rnnkit::tasks::forecast::NextSteps, png: &Path) -> Result<()> {
    Err(usage(format!(
        "--plot {}: this rnnkit was built without charts (the `plot` feature); rebuild it with \
         the default features, or leave out --plot",
        png.display()
    )))
}

/// The run in `dir` with its config, when it is a run of the task whose config is `C`; a run
/// of another task is the error `wrong` makes from that task.
pub fn open_run<C: TryFrom<AnyConfig, Error = AnyConfig>>(
    dir: &Path,
    wrong: impl FnOnce(TaskKind) -> anyhow::Error,
) -> Result<(C, RunDir)> {
    let cfg = C::try_from(load_run_config(dir)?).map_err(|other| wrong(other.kind()))?;
    Ok((cfg, RunDir::open(dir)?))
}

/// The commands that read a trained run of one task, beside `evaluate`.
const PREDICT_COMMANDS: [(&str, TaskKind); 5] = [
    ("generate", TaskKind::Lm),
    ("classify", TaskKind::Classify),
    ("classify", TaskKind::Audio),
    ("stream", TaskKind::Audio),
    ("forecast", TaskKind::Forecast),
];

/// The error for a run of another task than the command serves, naming what serves it.
pub fn wrong_task(dir: &Path, task: TaskKind, command: &str) -> anyhow::Error {
    let mut serving: Vec<&str> = PREDICT_COMMANDS
        .iter()
        .filter(|(_, k)| *k == task)
        .map(|(c, _)| *c)
        .collect();
    if task.evaluates() {
        serving.push("evaluate");
    }
    let right = if serving.is_empty() {
        "train; its scores are in metrics.json".to_string()
    } else {
        serving.join(" or ")
    };
    usage(format!(
        "{}: a task = \"{task}\" run; `rnnkit {command}` needs a {command} model (use rnnkit \
         {right})",
        dir.display()
    ))
}
