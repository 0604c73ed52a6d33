//! Progress of a build: live lines on a terminal, timestamped lines in CI,
//! and GitHub Actions groups, annotations and step summary.

use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::path::Path;
use std::time::Duration;
use strata_exec::{Event, ImageResult, Outcome, Status};
use strata_report::{SummaryRow, ref_file_stem};
use tokio::sync::mpsc;

/// How progress is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// A live line per running image.
    Terminal,
    /// Plain timestamped lines (off a terminal, or `CI=true`).
    Plain,
    /// Plain lines plus GitHub Actions workflow commands.
    GitHub,
    /// Nothing (`-q`).
    Quiet,
}

impl Mode {
    /// The mode for this process's environment.
    pub fn detect(quiet: bool) -> Mode {
        let env_true = |k: &str| std::env::var(k).is_ok_and(|v| v == "true" || v == "1");
        if quiet {
            Mode::Quiet
        } else if env_true("GITHUB_ACTIONS") {
            Mode::GitHub
        } else if env_true("CI") || !std::io::stderr().is_terminal() {
            Mode::Plain
        } else {
            Mode::Terminal
        }
    }
}

/// Shows events until the channel closes.
pub async fn show(
    mode: Mode,
    verbose: bool,
    logs: std::path::PathBuf,
    mut events: mpsc::UnboundedReceiver<Event>,
) {
    let multi = MultiProgress::new();
    let mut bars: BTreeMap<String, ProgressBar> = BTreeMap::new();
    let style = ProgressStyle::with_template("{spinner} {prefix:.bold} {msg} [{elapsed}]")
        .unwrap_or_else(|_| ProgressStyle::default_spinner());
    while let Some(event) = events.recv().await {
        match (mode, event) {
            (Mode::Quiet, _) => {}
            // Build logs on stderr with -v only; they are in logs/ anyway.
            (_, Event::BuildOutput { .. }) if !verbose => {}
            (Mode::Terminal, Event::BuildOutput { reference, line }) => {
                let _ = multi.println(format!("{reference} | {line}"));
            }
            (_, Event::BuildOutput { reference, line }) => eprintln!("{reference} | {line}"),
            (Mode::Terminal, Event::StageStarted { reference, stage }) => {
                let bar = bars.entry(reference.clone()).or_insert_with(|| {
                    let b = multi.add(ProgressBar::new_spinner());
                    b.set_style(style.clone());
                    b.set_prefix(reference.clone());
                    b.enable_steady_tick(Duration::from_millis(200));
                    b
                });
                bar.set_message(stage.to_string());
            }
            (Mode::Terminal, Event::StageFinished { .. }) => {}
            (Mode::Terminal, Event::ImageFinished(result)) => {
                let line = finished_line(&result);
                match bars.remove(&result.reference) {
                    Some(bar) => bar.finish_with_message(line),
                    None => {
                        let _ = multi.println(format!("{} {line}", result.reference));
                    }
                }
            }
            (_, Event::StageStarted { reference, stage }) => {
                plain(&format!("{reference} {stage} started"))
            }
            (_, Event::StageFinished { reference, result }) => {
                if result.status != Status::Skipped {
                    let status = if result.status == Status::Ok {
                        "ok"
                    } else {
                        "FAILED"
                    };
                    let msg = result
                        .message
                        .as_deref()
                        .map(|m| format!(": {m}"))
                        .unwrap_or_default();
                    plain(&format!(
                        "{reference} {} {status} in {:.1}s{msg}",
                        result.stage, result.duration_secs
                    ));
                }
            }
            (m, Event::ImageFinished(result)) => {
                plain(&format!("{} {}", result.reference, finished_line(&result)));
                if m == Mode::GitHub {
                    github_image(&logs, &result);
                }
            }
        }
    }
}

fn finished_line(result: &ImageResult) -> String {
    match result.outcome {
        Outcome::Built => format!("built in {:.1}s", result.duration_secs),
        Outcome::Reused | Outcome::Resumed | Outcome::Failed | Outcome::Skipped => {
            format!("{}: {}", result.outcome, result.message)
        }
    }
}

fn plain(line: &str) {
    // The time of day of an RFC 3339 timestamp: `2025-11-25T10:00:00Z`.
    let now = strata_exec::now_rfc3339();
    eprintln!("[{}] {line}", now.get(11..19).unwrap_or(&now));
}

/// An image's logs in a collapsible group, and an error annotation when it failed.
fn github_image(logs: &Path, result: &ImageResult) {
    let stem = ref_file_stem(&result.reference);
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "::group::{} ({})", result.reference, result.outcome);
    for what in ["build", "basic-tests", "push", "integration-tests"] {
        let path = logs.join(format!("{stem}.{what}.log"));
        if let Ok(text) = std::fs::read_to_string(&path) {
            let _ = writeln!(out, "--- {what} ---");
            // A log line starting with `::` would be read as a workflow command.
            for line in text.lines() {
                let _ = writeln!(out, "{}", line.replace("::", ": :"));
            }
        }
    }
    let _ = writeln!(out, "::endgroup::");
    if result.outcome == Outcome::Failed {
        let msg = result
            .message
            .replace('%', "%25")
            .replace('\r', "%0D")
            .replace('\n', "%0A");
        let _ = writeln!(out, "::error title=strata: {} failed::{msg}", result.image);
    }
}

/// Summary rows for every build of the plan: run results, and `unchanged`
/// for the images this run did not build.
pub fn summary_rows(plan: &strata_core::plan::Plan, results: &[ImageResult]) -> Vec<SummaryRow> {
    plan.builds
        .iter()
        .map(|b| {
            match results
                .iter()
                .find(|r| r.image == b.image && r.plan == b.plan)
            {
                Some(r) => SummaryRow {
                    image: r.image.clone(),
                    plan: r.plan.clone(),
                    reference: r.reference.clone(),
                    outcome: r.outcome.to_string(),
                    failed_stage: r.failed_stage().map(|s| s.stage.clone()),
                    message: if r.outcome == Outcome::Reused {
                        r.reused
                            .as_ref()
                            .map(|from| format!("same inputs as {from}"))
                    } else if r.outcome == Outcome::Resumed {
                        r.reused.as_ref().map(|from| {
                            format!("already built and tested under this run's tag ({from})")
                        })
                    } else if r.outcome == Outcome::Built {
                        // A built image's detail is how much it grew.
                        r.growth.as_ref().map(|g| {
                            format!(
                                "{} since {}",
                                strata_report::image_diff::format_growth(g.bytes),
                                g.since
                            )
                        })
                    } else {
                        Some(r.message.clone())
                    },
                    duration_secs: r.duration_secs,
                    digest: r.digest.clone(),
                },
                None => SummaryRow {
                    image: b.image.clone(),
                    plan: b.plan.clone(),
                    reference: b.reference.clone(),
                    outcome: "unchanged".into(),
                    failed_stage: None,
                    message: None,
                    duration_secs: 0.0,
                    digest: None,
                },
            }
        })
        .collect()
}
