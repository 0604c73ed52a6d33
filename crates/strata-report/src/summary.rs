//! The run summary: one row per image of the run, as a Markdown table (for
//! `$GITHUB_STEP_SUMMARY`) and as an aligned plain-text table (terminals).

use serde::{Deserialize, Serialize};

use crate::text::{
    code_span, collapse_whitespace, escape_cell, escape_inline, human_duration, truncate_chars,
};

/// Messages longer than this (in characters) are cut with `…` in summaries.
pub const MESSAGE_MAX_CHARS: usize = 160;

/// What happened to one image in a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SummaryRow {
    /// The image's key in `spec.yml`.
    pub image: String,
    /// The plan (empty when the spec has no plans).
    pub plan: String,
    /// The full image reference built (or that would have been built).
    pub reference: String,
    /// `built`, `reused`, `resumed`, `failed`, `skipped` or `unchanged`
    /// (other values are shown as is).
    pub outcome: String,
    /// The stage that failed (`build`, `basic-tests`, `push`, …), if any.
    pub failed_stage: Option<String>,
    /// Why it failed or was skipped.
    pub message: Option<String>,
    /// Wall time spent on the image, in seconds.
    pub duration_secs: f64,
    /// The pushed digest, if any.
    pub digest: Option<String>,
}

/// The known outcomes, in the order totals are listed.
const OUTCOMES: [&str; 6] = [
    "built",
    "reused",
    "resumed",
    "failed",
    "skipped",
    "unchanged",
];

fn outcome_icon(outcome: &str) -> &'static str {
    match outcome {
        "built" => "✅",
        "failed" => "❌",
        "skipped" => "⏭️",
        "unchanged" => "➖",
        _ => "•",
    }
}

/// "failed at basic-tests: message" style detail, whitespace collapsed and cut.
fn details(row: &SummaryRow) -> String {
    let stage = row.failed_stage.as_deref().map(collapse_whitespace);
    let message = row.message.as_deref().map(collapse_whitespace);
    let text = match (stage, message) {
        (Some(s), Some(m)) if !s.is_empty() && !m.is_empty() => format!("{s}: {m}"),
        (Some(s), _) if !s.is_empty() => s,
        (_, Some(m)) => m,
        _ => String::new(),
    };
    truncate_chars(&text, MESSAGE_MAX_CHARS)
}

/// `sha256:0123456789ab` (12 hex digits), enough to tell digests apart.
fn short_digest(digest: &str) -> String {
    let digest = collapse_whitespace(digest);
    match digest.split_once(':') {
        Some((algo, hex)) => format!("{algo}:{}", hex.chars().take(12).collect::<String>()),
        None => digest.chars().take(19).collect(),
    }
}

/// Totals line: `2 built, 1 failed, 1 skipped` (zero counts omitted; other
/// outcomes counted under their own name).
fn totals(rows: &[SummaryRow]) -> String {
    let mut counts: Vec<(String, usize)> = OUTCOMES.iter().map(|o| (o.to_string(), 0)).collect();
    for row in rows {
        let outcome = collapse_whitespace(&row.outcome);
        match counts.iter_mut().find(|(o, _)| *o == outcome) {
            Some((_, n)) => *n += 1,
            None => counts.push((outcome, 1)),
        }
    }
    counts
        .into_iter()
        .filter(|(_, n)| *n > 0)
        .map(|(o, n)| format!("{n} {o}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Renders the run as a Markdown table with a totals line, in the rows' order.
pub fn summary_markdown(rows: &[SummaryRow]) -> String {
    if rows.is_empty() {
        return "No images in this run.\n".to_string();
    }
    let mut out = format!("**{}**\n\n", totals(rows));
    out.push_str("| Image | Plan | Outcome | Reference | Duration | Digest | Details |\n");
    out.push_str("|---|---|---|---|--:|---|---|\n");
    for row in rows {
        let plan = if row.plan.trim().is_empty() {
            "-".to_string()
        } else {
            escape_inline(&row.plan)
        };
        let outcome = collapse_whitespace(&row.outcome);
        let digest = row
            .digest
            .as_deref()
            .filter(|d| !d.trim().is_empty())
            .map(|d| code_span(&escape_cell(&short_digest(d))))
            .unwrap_or_else(|| "-".to_string());
        let detail = details(row);
        let detail = if detail.is_empty() {
            "-".to_string()
        } else {
            escape_inline(&detail)
        };
        out.push_str(&format!(
            "| {} | {} | {} {} | {} | {} | {} | {} |\n",
            escape_inline(&row.image),
            plan,
            outcome_icon(&outcome),
            escape_inline(&outcome),
            code_span(&escape_cell(&row.reference)),
            human_duration(row.duration_secs),
            digest,
            detail,
        ));
    }
    out
}

/// The failed tests of a run as a Markdown list, by suite (`<ref> <stage>`)
/// and test name, for the step summary; empty when none failed.
pub fn failed_tests_markdown(failed: &[(String, String)]) -> String {
    if failed.is_empty() {
        return String::new();
    }
    let mut out = format!("\n**Failed tests ({}):**\n\n", failed.len());
    for (suite, test) in failed {
        out.push_str(&format!(
            "- {} in {}\n",
            code_span(&escape_cell(test)),
            code_span(&escape_cell(suite))
        ));
    }
    out
}

/// Renders the run as an aligned plain-text table for terminals, with a
/// totals line. No trailing spaces; column widths count characters.
pub fn summary_text(rows: &[SummaryRow]) -> String {
    if rows.is_empty() {
        return "No images in this run.\n".to_string();
    }
    let header = [
        "IMAGE",
        "PLAN",
        "OUTCOME",
        "DURATION",
        "REFERENCE",
        "DETAILS",
    ];
    let mut table: Vec<Vec<String>> = vec![header.iter().map(|h| h.to_string()).collect()];
    for row in rows {
        let plan = collapse_whitespace(&row.plan);
        table.push(vec![
            collapse_whitespace(&row.image),
            if plan.is_empty() { "-".into() } else { plan },
            collapse_whitespace(&row.outcome),
            human_duration(row.duration_secs),
            collapse_whitespace(&row.reference),
            Some(details(row))
                .filter(|d| !d.is_empty())
                .unwrap_or_else(|| "-".into()),
        ]);
    }
    let columns = header.len();
    let widths: Vec<usize> = (0..columns)
        .map(|c| {
            table
                .iter()
                .map(|r| r[c].chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for row in &table {
        let mut line = String::new();
        for (c, cell) in row.iter().enumerate() {
            if c > 0 {
                line.push_str("  ");
            }
            line.push_str(cell);
            if c + 1 < columns {
                let pad = widths[c] - cell.chars().count();
                line.extend(std::iter::repeat_n(' ', pad));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out.push_str(&totals(rows));
    out.push('\n');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failed_tests_are_listed_by_name() {
        assert_eq!(failed_tests_markdown(&[]), "");
        let md = failed_tests_markdown(&[
            ("o/a:1 basic-tests".into(), "test_shell `works`".into()),
            ("o/b:1 basic-tests".into(), "file exists".into()),
        ]);
        assert!(md.contains("Failed tests (2)"), "{md}");
        assert!(
            md.contains("- `` test_shell `works` `` in `o/a:1 basic-tests`"),
            "{md}"
        );
        assert!(
            md.contains("- `file exists` in `o/b:1 basic-tests`"),
            "{md}"
        );
    }

    fn rows() -> Vec<SummaryRow> {
        vec![
            SummaryRow {
                image: "datascience-notebook".into(),
                plan: "".into(),
                reference: "ghcr.io/ucsd-ets/datascience-notebook:2023.2-abc1234".into(),
                outcome: "built".into(),
                failed_stage: None,
                message: None,
                duration_secs: 125.0,
                digest: Some(
                    "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
                        .into(),
                ),
            },
            SummaryRow {
                image: "scipy-ml-notebook".into(),
                plan: "gpu".into(),
                reference: "ghcr.io/ucsd-ets/scipy-ml-notebook:2023.2-abc1234".into(),
                outcome: "failed".into(),
                failed_stage: Some("basic-tests".into()),
                message: Some("test_torch | exit 1\nsecond line".into()),
                duration_secs: 3.3,
                digest: None,
            },
            SummaryRow {
                image: "rstudio-notebook".into(),
                plan: "".into(),
                reference: "ghcr.io/ucsd-ets/rstudio-notebook:2023.2-abc1234".into(),
                outcome: "skipped".into(),
                failed_stage: None,
                message: Some("parent failed".into()),
                duration_secs: 0.0,
                digest: None,
            },
        ]
    }

    #[test]
    fn markdown_table() {
        let md = summary_markdown(&rows());
        let lines: Vec<&str> = md.lines().collect();
        assert_eq!(lines[0], "**1 built, 1 failed, 1 skipped**");
        assert_eq!(
            lines[2],
            "| Image | Plan | Outcome | Reference | Duration | Digest | Details |"
        );
        assert_eq!(
            lines[4],
            "| datascience-notebook | - | ✅ built | `ghcr.io/ucsd-ets/datascience-notebook:2023.2-abc1234` | 2m 05s | `sha256:0123456789ab` | - |"
        );
        assert_eq!(
            lines[5],
            "| scipy-ml-notebook | gpu | ❌ failed | `ghcr.io/ucsd-ets/scipy-ml-notebook:2023.2-abc1234` | 3.3s | - | basic-tests: test\\_torch \\| exit 1 second line |"
        );
        assert!(lines[6].ends_with("| ⏭️ skipped | `ghcr.io/ucsd-ets/rstudio-notebook:2023.2-abc1234` | 0.0s | - | parent failed |"));
        assert_eq!(lines.len(), 7);
    }

    #[test]
    fn text_table_is_aligned() {
        let text = summary_text(&rows());
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 5);
        let col = |line: &str, word: &str| line.find(word);
        let outcome_col = col(lines[0], "OUTCOME");
        assert_eq!(col(lines[1], "built"), outcome_col);
        assert_eq!(col(lines[2], "failed"), outcome_col);
        assert_eq!(col(lines[3], "skipped"), outcome_col);
        let details_col = col(lines[0], "DETAILS");
        assert_eq!(
            col(lines[2], "basic-tests: test_torch | exit 1 second line"),
            details_col
        );
        assert!(lines.iter().all(|l| !l.ends_with(' ')));
        assert!(lines[1].ends_with("ghcr.io/ucsd-ets/datascience-notebook:2023.2-abc1234  -"));
        assert_eq!(lines[4], "1 built, 1 failed, 1 skipped");
    }

    #[test]
    fn empty_run_and_unknown_outcome() {
        assert_eq!(summary_markdown(&[]), "No images in this run.\n");
        assert_eq!(summary_text(&[]), "No images in this run.\n");
        let mut r = rows();
        r[0].outcome = "cancelled".into();
        assert!(summary_markdown(&r).starts_with("**1 failed, 1 skipped, 1 cancelled**"));
    }

    #[test]
    fn long_messages_are_cut() {
        let mut r = rows();
        r[1].message = Some("x".repeat(1000));
        let text = summary_text(&r);
        let line = text.lines().nth(2).unwrap_or_default();
        assert!(line.ends_with('…'));
        assert!(line.chars().count() < 400);
    }
}
