//! What the vanishing-gradient lab writes from its results: `report.md` and, with the `plot`
//! feature, the PNG charts it links.

use super::vanishing::{ArmResult, Budget, LabConfig, SOLVED};
use crate::data::synthetic::AddingProblem;
use crate::diagnostics::GradientProfile;
use crate::error::Result;
use std::path::{Path, PathBuf};

/// Draws the charts into `out` and returns their file names: gradient norm against distance at
/// the longest length (at initialization and after training), learning curves per length,
/// clipping, truncated BPTT and the explosion.
#[cfg(feature = "plot")]
pub(super) fn write_charts(
    out: &Path,
    results: &[ArmResult],
    lengths: &[usize],
) -> Result<Vec<String>> {
    use crate::CellKind;
    use crate::plot::LineChart;

    let mut names = Vec::new();
    let longest = *lengths.iter().max().unwrap_or(&20);
    let main = |r: &ArmResult| r.clip.is_some() && r.init_scale == 1.0 && r.truncate.is_none();
    // Gradient norm against distance at the longest length, one curve per cell; the large-init
    // RNN joins them on the init chart.
    for (which, file, title) in [
        (0, "grad_vs_distance_init.png", "at initialization"),
        (1, "grad_vs_distance_trained.png", "after training"),
    ] {
        let mut chart = LineChart::new(format!(
            "‖∂L/∂h_(T−1−d)‖ for the loss at the last step, T = {longest}, {title}"
        ))
        .x_label("distance back in time d (steps)")
        .y_label("gradient norm (mean over 32 sequences)")
        .log_y(true);
        for r in results.iter().filter(|r| r.length == longest && main(r)) {
            let g = if which == 0 {
                &r.grad_init
            } else {
                &r.grad_trained
            };
            chart = chart.series(r.name.clone(), profile_points(g));
        }
        if which == 0
            && let Some(r) = results
                .iter()
                .find(|r| r.init_scale != 1.0 && r.clip.is_none())
        {
            chart = chart.series(
                format!("tanh RNN 128, recurrent init ×4 (T = {})", r.length),
                profile_points(&r.grad_init),
            );
        }
        chart.save_png(out.join(file))?;
        names.push(file.to_string());
    }
    // Learning curves per length.
    for &t in lengths {
        let mut chart = LineChart::new(format!("Adding problem, T = {t}: validation MSE"))
            .x_label("step")
            .y_label("validation MSE")
            .log_y(true)
            .reference_line("baseline: always 1 (1/6)", AddingProblem::baseline_mse())
            .reference_line("solved (0.01)", SOLVED);
        for r in results.iter().filter(|r| r.length == t && main(r)) {
            chart = chart.series(r.name.clone(), curve_points(&r.curve));
        }
        let file = format!("learning_T{t}.png");
        chart.save_png(out.join(&file))?;
        names.push(file);
    }
    // Clipping: the runs without it and the explosion runs.
    let other: Vec<&ArmResult> = results
        .iter()
        .filter(|r| !main(r) && r.truncate.is_none())
        .collect();
    if let Some(first) = other.first() {
        let mut chart = LineChart::new(format!(
            "Without clipping, and a large recurrent init (T = {})",
            first.length
        ))
        .x_label("step")
        .y_label("validation MSE")
        .log_y(true)
        .reference_line("baseline (1/6)", AddingProblem::baseline_mse());
        for r in &other {
            let pts = curve_points(&r.curve);
            if !pts.is_empty() {
                chart = chart.series(r.name.clone(), pts);
            }
        }
        chart.save_png(out.join("clipping.png"))?;
        names.push("clipping.png".into());
    }
    // Truncated BPTT against full backpropagation, at the same length.
    let truncated: Vec<&ArmResult> = results.iter().filter(|r| r.truncate.is_some()).collect();
    if let Some(first) = truncated.first() {
        let t = first.length;
        let mut chart = LineChart::new(format!(
            "LSTM 64, T = {t}: the gradient reaches back k steps (truncated BPTT)"
        ))
        .x_label("step")
        .y_label("validation MSE")
        .log_y(true)
        .reference_line("baseline: always 1 (1/6)", AddingProblem::baseline_mse())
        .reference_line("knowing one value: 1/12", 1.0 / 12.0);
        let full = results
            .iter()
            .find(|r| main(r) && r.length == t && r.cell == CellKind::Lstm.to_string());
        for r in full.into_iter().chain(truncated.iter().copied()) {
            let label = r
                .truncate
                .map_or(format!("full BPTT (k = {t})"), |k| format!("k = {k}"));
            chart = chart.series(label, curve_points(&r.curve));
        }
        chart.save_png(out.join("tbptt.png"))?;
        names.push("tbptt.png".into());
    }
    // The explosion: gradient norms before clipping, step by step.
    let exploding: Vec<&ArmResult> = results
        .iter()
        .filter(|r| !r.grad_norms.is_empty())
        .collect();
    if let Some(first) = exploding.first() {
        let mut chart = LineChart::new(format!(
            "Exploding gradients: tanh RNN, recurrent init ×4, SGD 0.1, T = {}",
            first.length
        ))
        .x_label("step")
        .y_label("gradient norm before clipping")
        .log_y(true)
        .reference_line("clip threshold (1)", 1.0);
        for r in &exploding {
            let clip = r
                .clip
                .map_or("no clipping".into(), |c| format!("clipped at {c}"));
            let label = if r.diverged {
                format!("{clip} (diverged at step {})", r.steps)
            } else {
                clip
            };
            chart = chart.series(label, curve_points(&r.grad_norms));
        }
        chart.save_png(out.join("explosion.png"))?;
        names.push("explosion.png".into());
    }
    Ok(names)
}

/// Built without the `plot` feature, the lab draws no charts and its report links none.
#[cfg(not(feature = "plot"))]
pub(super) fn write_charts(
    _out: &Path,
    _results: &[ArmResult],
    _lengths: &[usize],
) -> Result<Vec<String>> {
    Ok(Vec::new())
}

/// (step, value) pairs as chart points.
#[cfg(feature = "plot")]
fn curve_points(curve: &[(u64, f64)]) -> Vec<(f64, f64)> {
    curve.iter().map(|&(s, v)| (s as f64, v)).collect()
}

#[cfg(feature = "plot")]
fn profile_points(g: &GradientProfile) -> Vec<(f64, f64)> {
    g.distances
        .iter()
        .zip(&g.norm)
        .map(|(&d, &n)| (d as f64, n))
        .collect()
}

fn fmt_rate(g: &GradientProfile) -> String {
    g.decay_rate().map_or("-".into(), |d| format!("{d:.3}"))
}

/// ‖∂L/∂h‖ at the farthest distance over that at d = 0.
fn far_ratio(g: &GradientProfile) -> String {
    match (g.norm.first(), g.norm.last()) {
        // Below f32's smallest number the gradient is exactly zero: it has vanished.
        (Some(&n0), Some(&nf)) if n0 > 0.0 && nf == 0.0 => "0 (underflow)".into(),
        (Some(&n0), Some(&nf)) if n0 > 0.0 && nf.is_finite() => format!("{:.1e}", nf / n0),
        _ => "-".into(),
    }
}

/// Writes `report.md` into `out`: the setup, the results table, the gate statistics of the
/// clipped runs and links to `charts`. Returns its path.
pub(super) fn write_report(
    out: &Path,
    results: &[ArmResult],
    config: &LabConfig,
    budget: &Budget,
    charts: &[String],
    seconds: f64,
) -> Result<PathBuf> {
    let mut md = String::from("# The vanishing-gradient lab: the adding problem\n\n");
    if let Some(cmd) = &config.command {
        md.push_str(&format!("```sh\n{cmd}\n```\n\n"));
    }
    md.push_str(&format!(
        "Each model learns the adding problem (the sum of the two marked values among T (value, \
         marker) pairs; always answering 1 scores MSE {:.3}) from {} generated sequences, Adam \
         (3e-3 for the tanh RNN, 1e-2 for LSTM and GRU: each cell's better rate at T = 20; the \
         large-init runs use plain SGD 0.1, whose steps grow with the gradient as Adam's do \
         not), batches of {}, at most {} epochs, stopping once validation MSE is below {SOLVED} \
         (solved). Gradient norms are ‖∂L/∂h_(T−1−d)‖ for the MSE at the last step, the mean \
         over 32 validation sequences; the decay rate is the per-step factor fitted to \
         ln ‖∂L/∂h‖ against d (below 1: vanishing; above 1: exploding). Total time {:.0} s{}.\n\n",
        AddingProblem::baseline_mse(),
        budget.train,
        budget.batch,
        budget.epochs,
        seconds,
        if config.quick { " (--quick)" } else { "" }
    ));
    md.push_str(
        "| model | params | T | optimizer | clipping | test MSE | solved at step | decay per \
         step, init | ‖∂L/∂h‖ at d=T−1 ÷ d=0, init | same, trained | max ‖g‖ | clipped steps | \
         skipped |\n\
         |---|---:|---:|---|---|---:|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    for r in results {
        md.push_str(&format!(
            "| {} | {} | {} | {} | {} | {:.4} | {} | {} | {} | {} | {:.2e} | {:.0}% | {} |\n",
            r.name,
            r.params,
            r.length,
            r.optimizer,
            r.clip.map_or("off".into(), |c| format!("at {c}")),
            r.test_mse,
            if r.diverged {
                "diverged".into()
            } else {
                r.steps_to_solve
                    .map_or("not solved".into(), |s| s.to_string())
            },
            fmt_rate(&r.grad_init),
            far_ratio(&r.grad_init),
            if r.diverged {
                "-".into()
            } else {
                far_ratio(&r.grad_trained)
            },
            r.max_grad_norm,
            100.0 * r.clip_rate,
            r.skipped
        ));
    }
    let gated: Vec<&ArmResult> = results
        .iter()
        .filter(|r| !r.gates.is_empty() && r.clip.is_some())
        .collect();
    if !gated.is_empty() {
        md.push_str(
            "\n## Gates after training (32 validation sequences, all steps)\n\n\
             | model | T | gate | mean | fraction > 0.95 | fraction < 0.05 |\n\
             |---|---:|---|---:|---:|---:|\n",
        );
        for r in gated {
            for g in &r.gates[0].gates {
                md.push_str(&format!(
                    "| {} | {} | {} | {:.3} | {:.3} | {:.3} |\n",
                    r.name, r.length, g.gate, g.mean, g.frac_high, g.frac_low
                ));
            }
        }
    }
    md.push_str("\n## Charts\n\n");
    for p in charts {
        md.push_str(&format!("![{p}]({p})\n\n"));
    }
    let path = out.join("report.md");
    crate::io::write_atomic(&path, md.as_bytes())?;
    Ok(path)
}
