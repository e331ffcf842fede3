//! What a study leaves for people: `trials.csv` and `trials.jsonl` (every trial's values,
//! seed, rung results, status, wall time), `best/config.toml` (runnable as is with
//! `rnnkit train --config`) with the best trial's run directory named beside it, and
//! `report.md` with charts and a parameter-importance table.

use super::journal::{StudyState, TrialEnd, TrialState};
use super::space::{Dist, SearchSpace};
use super::spec::StudySpec;
use super::study::Study;
use super::trial::{trial_config, trial_dir};
use crate::error::{Error, Result};
use serde::Serialize;
use std::fmt::Write as _;
use std::path::PathBuf;

/// Where a trial stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TrialStatus {
    /// A worker is training it.
    Running,
    /// Trained to the last rung.
    Finished,
    /// Stopped by its own early stopping.
    StoppedEarly,
    /// Not promoted past its last rung (so far, while the study runs).
    Pruned,
    /// Training failed.
    Failed,
}

/// The status of `t` in a study whose last rung is `last`.
pub fn trial_status(t: &TrialState, last: usize) -> TrialStatus {
    match (&t.end, t.claim) {
        (Some((TrialEnd::Finished, _)), _) => TrialStatus::Finished,
        (Some((TrialEnd::StoppedEarly, _)), _) => TrialStatus::StoppedEarly,
        (Some((TrialEnd::Failed, _)), _) => TrialStatus::Failed,
        (None, Some(_)) => TrialStatus::Running,
        (None, None) if t.top_rung() == Some(last) => TrialStatus::Finished,
        (None, None) => TrialStatus::Pruned,
    }
}

/// How many trials have status `s` in a study whose last rung is `last`.
pub fn count_status(state: &StudyState, last: usize, s: TrialStatus) -> usize {
    state
        .trials
        .values()
        .filter(|t| trial_status(t, last) == s)
        .count()
}

/// The files written.
#[derive(Clone, Debug, Default)]
pub struct StudyOutputs {
    /// `trials.csv`.
    pub csv: PathBuf,
    /// `trials.jsonl`.
    pub jsonl: PathBuf,
    /// `best/config.toml`, when a trial has a score.
    pub best_config: Option<PathBuf>,
    /// The best trial's number and score.
    pub best: Option<(u64, f64)>,
    /// `report.md`.
    pub report: PathBuf,
    /// The charts.
    pub plots: Vec<PathBuf>,
}

/// The best trial: the best score among those at the highest rung any trial reached (a score
/// after 3 epochs is no match for one after 27).
pub fn best_trial(state: &StudyState, maximize: bool) -> Option<(u64, f64)> {
    let top = state
        .trials
        .values()
        .filter(|t| !matches!(t.end, Some((TrialEnd::Failed, _))))
        .filter_map(|t| t.top_rung())
        .max()?;
    state
        .trials
        .values()
        .filter(|t| !matches!(t.end, Some((TrialEnd::Failed, _))))
        .filter_map(|t| t.results.get(&top).map(|r| (t.trial, r.value)))
        .filter(|(_, v)| v.is_finite())
        .min_by(|a, b| {
            let (x, y) = if maximize { (-a.1, -b.1) } else { (a.1, b.1) };
            x.total_cmp(&y).then(a.0.cmp(&b.0))
        })
}

#[derive(Serialize)]
struct TrialRow<'a> {
    trial: u64,
    status: TrialStatus,
    seed: u64,
    params: serde_json::Map<String, serde_json::Value>,
    rungs: Vec<(usize, usize, f64)>,
    epochs: usize,
    value: Option<f64>,
    seconds: f64,
    message: &'a str,
}

/// Writes `trials.csv`, `trials.jsonl`, `best/config.toml`, the charts and `report.md`.
///
/// # Errors
/// A file that cannot be written; the journal cannot be read.
pub fn write_outputs(study: &Study) -> Result<StudyOutputs> {
    let spec = study.spec();
    let state = study.state()?;
    let dir = study.dir();
    let rungs = spec.pruner.rungs();
    let last = rungs.len() - 1;
    let keys: Vec<&str> = spec.space.params().iter().map(|p| p.key.as_str()).collect();
    let io = |p: &PathBuf, e: std::io::Error| Error::Io {
        path: p.display().to_string(),
        source: e,
    };

    let mut csv = String::from("trial,status,seed,");
    for k in &keys {
        csv.push_str(&csv_field(k));
        csv.push(',');
    }
    for (r, e) in rungs.iter().enumerate() {
        let _ = write!(csv, "rung{r}_{e}ep,");
    }
    csv.push_str("epochs,value,seconds,message\n");
    let mut jsonl = String::new();
    for t in state.trials.values() {
        let status = trial_status(t, last);
        let seconds: f64 = t.results.values().map(|r| r.seconds).sum();
        let epochs = t.results.values().map(|r| r.epochs).max().unwrap_or(0);
        let value = t.results.values().next_back().map(|r| r.value);
        let message = t.end.as_ref().map_or("", |(_, m)| m.as_str());
        let _ = write!(csv, "{},{},{},", t.trial, label(status), t.seed);
        for k in &keys {
            let v = t
                .params
                .iter()
                .find(|(n, _)| n == k)
                .map(|(_, v)| plain_value(v));
            csv.push_str(&csv_field(&v.unwrap_or_default()));
            csv.push(',');
        }
        for r in 0..rungs.len() {
            if let Some(res) = t.results.get(&r) {
                let _ = write!(csv, "{}", res.value);
            }
            csv.push(',');
        }
        let _ = writeln!(
            csv,
            "{epochs},{},{seconds:.1},{}",
            value.map_or(String::new(), |v| v.to_string()),
            csv_field(message)
        );
        let row = TrialRow {
            trial: t.trial,
            status,
            seed: t.seed,
            params: t
                .params
                .iter()
                .map(|(k, v)| (k.clone(), serde_json::to_value(v).unwrap_or_default()))
                .collect(),
            rungs: t
                .results
                .iter()
                .map(|(&r, x)| (r, x.epochs, x.value))
                .collect(),
            epochs,
            value,
            seconds,
            message,
        };
        jsonl.push_str(&serde_json::to_string(&row).map_err(|e| Error::Config(e.to_string()))?);
        jsonl.push('\n');
    }
    let csv_path = dir.join("trials.csv");
    std::fs::write(&csv_path, csv).map_err(|e| io(&csv_path, e))?;
    let jsonl_path = dir.join("trials.jsonl");
    std::fs::write(&jsonl_path, jsonl).map_err(|e| io(&jsonl_path, e))?;

    let best = best_trial(&state, spec.maximize());
    let mut best_config = None;
    if let Some((n, value)) = best {
        let t = &state.trials[&n];
        let cfg = trial_config(spec, dir, t, None)?;
        let best_dir = dir.join("best");
        std::fs::create_dir_all(&best_dir).map_err(|e| io(&best_dir, e))?;
        let path = best_dir.join("config.toml");
        let text = format!(
            "# The best trial of the study in {} (trial {n}, {} {value:.6}).\n# Its run directory: \
             {}\n# Rerun with: rnnkit train --config {} --set output.name=NEW_NAME\n{}",
            dir.display(),
            spec.objective,
            trial_dir(dir, n).display(),
            path.display(),
            crate::run::config_toml(&cfg)?
        );
        std::fs::write(&path, text).map_err(|e| io(&path, e))?;
        std::fs::write(
            best_dir.join("run_dir.txt"),
            format!("{}\n", trial_dir(dir, n).display()),
        )
        .map_err(|e| io(&path, e))?;
        best_config = Some(path);
    }

    let plots = draw_charts(study, &state)?;
    let report = dir.join("report.md");
    std::fs::write(&report, report_md(spec, &state, best, &plots, dir))
        .map_err(|e| io(&report, e))?;
    Ok(StudyOutputs {
        csv: csv_path,
        jsonl: jsonl_path,
        best_config,
        best,
        report,
        plots,
    })
}

fn label(s: TrialStatus) -> &'static str {
    match s {
        TrialStatus::Running => "running",
        TrialStatus::Finished => "finished",
        TrialStatus::StoppedEarly => "stopped_early",
        TrialStatus::Pruned => "pruned",
        TrialStatus::Failed => "failed",
    }
}

/// A TOML value as a person writes it in a table: strings without quotes.
fn plain_value(v: &toml::Value) -> String {
    match v {
        toml::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// The score of every trial at its highest rung, with the rung, for importance and charts.
fn final_scores(state: &StudyState) -> Vec<(&TrialState, usize, f64)> {
    state
        .trials
        .values()
        .filter_map(|t| {
            let (&r, res) = t.results.iter().next_back()?;
            res.value.is_finite().then_some((t, r, res.value))
        })
        .collect()
}

/// Parameter importance as the correlation ratio η² of the score over each parameter: the
/// share of the score's variance explained by the parameter's value alone, with numeric values
/// in up to 5 equal-count bins (in log space for log distributions). Scores are compared
/// within the highest rung that at least 5 trials reached. A screening measure, like
/// fANOVA's main effects but without a surrogate model.
pub fn importance(space: &SearchSpace, state: &StudyState) -> Vec<(String, f64, usize)> {
    let scores = final_scores(state);
    let rung = (0..=scores.iter().map(|s| s.1).max().unwrap_or(0))
        .rev()
        .find(|&r| scores.iter().filter(|s| s.1 >= r).count() >= 5)
        .unwrap_or(0);
    let at: Vec<(&TrialState, f64)> = scores
        .iter()
        .filter_map(|(t, _, _)| t.results.get(&rung).map(|r| (*t, r.value)))
        .filter(|(_, v)| v.is_finite())
        .collect();
    let mut out = Vec::new();
    for p in space.params() {
        if matches!(p.dist, Dist::Fixed(_)) {
            continue;
        }
        let pts: Vec<(String, Option<f64>, f64)> = at
            .iter()
            .filter_map(|(t, v)| {
                let (_, x) = t.params.iter().find(|(k, _)| *k == p.key)?;
                let num = match x {
                    toml::Value::Integer(i) => Some(*i as f64),
                    toml::Value::Float(f) => Some(*f),
                    _ => None,
                };
                let num = num.map(|n| {
                    if p.dist.is_log() {
                        n.max(1e-300).ln()
                    } else {
                        n
                    }
                });
                Some((plain_value(x), num, *v))
            })
            .collect();
        if pts.len() < 3 {
            continue;
        }
        let groups: Vec<usize> = if matches!(p.dist, Dist::Choice(_)) {
            let mut names: Vec<&String> = pts.iter().map(|p| &p.0).collect();
            names.sort();
            names.dedup();
            pts.iter()
                .map(|q| names.iter().position(|n| **n == q.0).unwrap_or(0))
                .collect()
        } else {
            let mut order: Vec<usize> = (0..pts.len()).collect();
            order.sort_by(|&a, &b| pts[a].1.unwrap_or(0.0).total_cmp(&pts[b].1.unwrap_or(0.0)));
            let bins = 5.min(pts.len());
            let mut g = vec![0; pts.len()];
            for (rank, &i) in order.iter().enumerate() {
                g[i] = rank * bins / pts.len();
            }
            g
        };
        let mean = pts.iter().map(|q| q.2).sum::<f64>() / pts.len() as f64;
        let total: f64 = pts.iter().map(|q| (q.2 - mean).powi(2)).sum();
        let k = groups.iter().max().map_or(0, |m| m + 1);
        let mut between = 0.0;
        for g in 0..k {
            let vals: Vec<f64> = pts
                .iter()
                .zip(&groups)
                .filter(|(_, gg)| **gg == g)
                .map(|(q, _)| q.2)
                .collect();
            if !vals.is_empty() {
                let m = vals.iter().sum::<f64>() / vals.len() as f64;
                between += vals.len() as f64 * (m - mean).powi(2);
            }
        }
        let eta2 = if total > 0.0 { between / total } else { 0.0 };
        out.push((p.key.clone(), eta2, pts.len()));
    }
    out.sort_by(|a, b| b.1.total_cmp(&a.1));
    out
}

fn report_md(
    spec: &StudySpec,
    state: &StudyState,
    best: Option<(u64, f64)>,
    plots: &[PathBuf],
    dir: &std::path::Path,
) -> String {
    let rungs = spec.pruner.rungs();
    let count = |s: TrialStatus| count_status(state, rungs.len() - 1, s);
    let epochs: usize = state
        .trials
        .values()
        .map(|t| t.results.values().map(|r| r.epochs).max().unwrap_or(0))
        .sum();
    let mut md = format!(
        "# Study {}\n\nBase config `{}`; objective: validation {} ({}); sampler {}; pruner \
         {} (rungs at {} epochs).\n\n| | |\n|---|---|\n| trials | {} |\n| finished | {} |\n\
         | stopped early | {} |\n| pruned | {} |\n| failed | {} |\n| running | {} |\n\
         | epochs trained | {epochs} |\n",
        dir.display(),
        std::fs::canonicalize(&spec.base)
            .unwrap_or_else(|_| spec.base.clone())
            .display(),
        spec.objective,
        if spec.maximize() {
            "higher is better"
        } else {
            "lower is better"
        },
        spec.sampler,
        spec.pruner,
        rungs
            .iter()
            .map(|r| r.to_string())
            .collect::<Vec<_>>()
            .join(", "),
        state.trials.len(),
        count(TrialStatus::Finished),
        count(TrialStatus::StoppedEarly),
        count(TrialStatus::Pruned),
        count(TrialStatus::Failed),
        count(TrialStatus::Running),
    );
    if let Some((n, v)) = best {
        let t = &state.trials[&n];
        let _ = write!(
            md,
            "\n## Best: trial {n}, {} {v:.6}\n\n`best/config.toml` reruns it; its run directory \
             is `{}`.\n\n| key | value |\n|---|---|\n",
            spec.objective,
            trial_dir(dir, n).display()
        );
        for (k, v) in &t.params {
            let _ = writeln!(md, "| `{k}` | {} |", plain_value(v));
        }
    }
    let imp = importance(&spec.space, state);
    if !imp.is_empty() {
        md.push_str(
            "\n## Parameter importance\n\nη² (correlation ratio): the share of the score's \
             variance explained by the parameter alone (numeric values in up to 5 equal-count \
             bins, log scale for log distributions), over trials compared at one rung. A \
             screening measure: it ignores interactions.\n\n| key | η² | trials |\n|---|---:|---:|\n",
        );
        for (k, e, n) in imp {
            let _ = writeln!(md, "| `{k}` | {e:.3} | {n} |");
        }
    }
    if !plots.is_empty() {
        md.push_str("\n## Charts\n\n");
        for p in plots {
            let name = p
                .file_name()
                .map_or(String::new(), |n| n.to_string_lossy().into_owned());
            let _ = writeln!(
                md,
                "![{}](plots/{name})\n",
                name.trim_end_matches(".png").replace('_', " ")
            );
        }
    }
    md
}

#[cfg(feature = "plot")]
fn draw_charts(study: &Study, state: &StudyState) -> Result<Vec<PathBuf>> {
    use crate::plot::LineChart;
    let spec = study.spec();
    let plots = study.dir().join("plots");
    std::fs::create_dir_all(&plots).map_err(|e| Error::Io {
        path: plots.display().to_string(),
        source: e,
    })?;
    let mut out = Vec::new();
    let Some(start) = state.started else {
        return Ok(out);
    };
    // Best so far against wall time, at the last rung reached by each result.
    let mut results: Vec<(f64, f64)> = state
        .trials
        .values()
        .flat_map(|t| t.results.values().map(|r| (r.at, r.value)))
        .filter(|r| r.1.is_finite())
        .collect();
    results.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut best: Option<f64> = None;
    let curve: Vec<(f64, f64)> = results
        .iter()
        .map(|&(at, v)| {
            let b = match best {
                Some(b) if (spec.maximize() && b >= v) || (!spec.maximize() && b <= v) => b,
                _ => v,
            };
            best = Some(b);
            ((at - start) / 60.0, b)
        })
        .collect();
    if !curve.is_empty() {
        let path = plots.join("best_so_far.png");
        LineChart::new(format!(
            "Best validation {} so far (any rung)",
            spec.objective
        ))
        .x_label("wall time (minutes)")
        .y_label(spec.objective.clone())
        .series("best so far", curve)
        .save_png(&path)?;
        out.push(path);
    }
    // The score against each searched key, each trial at its highest rung.
    let rungs = spec.pruner.rungs();
    let mut panels = crate::plot::ScatterPanels::new(
        format!(
            "Validation {} against each parameter (each trial at its highest rung)",
            spec.objective
        ),
        spec.objective.clone(),
    )
    .groups(
        rungs
            .iter()
            .enumerate()
            .map(|(r, e)| format!("rung {r} ({e} epochs)"))
            .collect(),
    );
    let mut any = false;
    for p in spec.space.params() {
        if matches!(p.dist, Dist::Fixed(_)) {
            continue;
        }
        let categories: Option<Vec<String>> = match &p.dist {
            Dist::Choice(c) => Some(c.iter().map(plain_value).collect()),
            _ => None,
        };
        let points: Vec<(f64, f64, usize)> = final_scores(state)
            .into_iter()
            .filter_map(|(t, rung, value)| {
                let (_, v) = t.params.iter().find(|(k, _)| *k == p.key)?;
                let x = match (&categories, v) {
                    (Some(c), v) => c.iter().position(|n| *n == plain_value(v))? as f64,
                    (None, toml::Value::Integer(i)) => *i as f64,
                    (None, toml::Value::Float(f)) => *f,
                    _ => return None,
                };
                Some((x, value, rung))
            })
            .collect();
        if points.is_empty() {
            continue;
        }
        any = true;
        panels = panels.panel(crate::plot::Panel {
            name: p.key.clone(),
            axis: match categories {
                Some(c) => crate::plot::PanelAxis::Categories(c),
                None => crate::plot::PanelAxis::Numeric {
                    log: p.dist.is_log(),
                },
            },
            points,
        });
    }
    if any {
        let path = plots.join("parameters.png");
        panels.save_png(&path)?;
        out.push(path);
    }
    // Learning curves of the ten best trials, by validation loss per epoch.
    let mut ranked: Vec<&TrialState> = state
        .trials
        .values()
        .filter(|t| !t.curve.is_empty())
        .collect();
    ranked.sort_by(|a, b| {
        let last = |t: &TrialState| t.curve.iter().copied().fold(f64::INFINITY, f64::min);
        last(a).total_cmp(&last(b))
    });
    if !ranked.is_empty() {
        let mut chart = LineChart::new("Validation loss per epoch (the 10 trials with the lowest)")
            .x_label("epoch")
            .y_label("validation loss");
        for t in ranked.iter().take(10) {
            let pts: Vec<(f64, f64)> = t
                .curve
                .iter()
                .enumerate()
                .map(|(e, &v)| ((e + 1) as f64, v))
                .collect();
            chart = chart.series(format!("trial {}", t.trial), pts);
        }
        let path = plots.join("learning_curves.png");
        chart.save_png(&path)?;
        out.push(path);
    }
    Ok(out)
}

#[cfg(not(feature = "plot"))]
fn draw_charts(_study: &Study, _state: &StudyState) -> Result<Vec<PathBuf>> {
    Ok(Vec::new())
}
