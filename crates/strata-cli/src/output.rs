//! What strata prints: diagnostics on stderr, and plans and graphs in the
//! format asked for.

use std::io::IsTerminal;
use strata_core::diag::Diagnostic;
use strata_core::plan::Plan;
use strata_core::text::count;

/// Prints diagnostics and notes on stderr, following `-q`/`-v`.
#[derive(Debug, Clone, Copy)]
pub struct Reporter {
    /// `-q`: errors only.
    pub quiet: bool,
    /// `-v`: more detail.
    pub verbose: bool,
}

impl Reporter {
    /// Prints a diagnostic with its source line when the text is known.
    pub fn diagnostic(&self, d: &Diagnostic, source: Option<&str>) {
        eprintln!("{}", d.render(source));
    }

    /// A note for the user (not shown with `-q`).
    pub fn note(&self, message: &str) {
        if !self.quiet {
            eprintln!("{message}");
        }
    }

    /// Detail shown only with `-v`.
    pub fn detail(&self, message: &str) {
        if self.verbose {
            eprintln!("{message}");
        }
    }
}

/// Prints a document on stdout as pretty JSON (`--format json`).
pub fn print_json(value: &impl serde::Serialize) -> Result<(), crate::failure::Failure> {
    let text = strata_report::to_json(value)
        .map_err(|e| crate::failure::Failure::env(format!("cannot write JSON: {e}")))?;
    print_out(&text)
}

/// Writes `text` to standard output. A reader that went away (`strata plan
/// | head`) is not a failure: what it did not read, it did not want (as
/// ripgrep and git take it); `print!` would panic.
pub fn print_out(text: &str) -> Result<(), crate::failure::Failure> {
    use std::io::Write as _;
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(crate::failure::Failure::env(
            format!("cannot write to standard output: {e}"),
        )),
        _ => Ok(()),
    }
}

/// The output formats of `strata plan`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// A table for a terminal.
    Table,
    /// The JSON contract (see the README).
    Json,
    /// A Markdown table, e.g. for a pull-request comment.
    Markdown,
    /// `strata plan` only: the plan as a job graph for CI runners (see the
    /// README's contract).
    Jobs,
    /// `strata plan` only: a `docker-bake.json` for `docker buildx bake`.
    Bake,
    /// `strata plan` only: the job graph as GitHub Actions matrices, one
    /// per dependency level (see `docs/github-actions.yml`).
    GithubActions,
}

/// The output formats of `strata graph`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum GraphFormat {
    /// A Mermaid flowchart.
    Mermaid,
    /// Graphviz dot.
    Dot,
    /// An indented tree.
    Text,
}

impl From<GraphFormat> for strata_report::graph::GraphStyle {
    fn from(format: GraphFormat) -> Self {
        match format {
            GraphFormat::Mermaid => strata_report::graph::GraphStyle::Mermaid,
            GraphFormat::Dot => strata_report::graph::GraphStyle::Dot,
            GraphFormat::Text => strata_report::graph::GraphStyle::Text,
        }
    }
}

fn rows(plan: &Plan) -> Vec<[String; 6]> {
    plan.builds
        .iter()
        .map(|b| {
            [
                b.image.clone(),
                b.plan.clone(),
                // A build the run does not make says what it does instead.
                match (b.rebuild, &b.reuse, b.resumed) {
                    (false, _, _) => "no".into(),
                    (true, Some(_), true) => "resume".into(),
                    (true, Some(_), false) => "reuse".into(),
                    (true, None, _) => "yes".into(),
                },
                b.reason.to_string(),
                b.tag.clone(),
                // Where a rebuilt child's base comes from; what a rebuilt
                // root is built on, as found.
                match (b.base_source, &b.external_base) {
                    (Some(source), _) if b.rebuild => source.describe().to_string(),
                    (None, Some(external)) if b.rebuild => {
                        let pin = external
                            .digest
                            .as_ref()
                            .or_else(|| external.ids.values().next())
                            .map(|p| p.chars().take(19).collect::<String>());
                        match pin {
                            Some(pin) => format!("{} {pin}", external.reference),
                            None => external.reference.clone(),
                        }
                    }
                    _ => String::new(),
                },
            ]
        })
        .collect()
}

const HEADERS: [&str; 6] = ["IMAGE", "PLAN", "REBUILD", "REASON", "TAG", "BASE"];

/// Renders a plan in `format`.
pub fn render_plan(plan: &Plan, format: Format) -> String {
    match format {
        // `--format jobs` is rendered by `strata plan` itself.
        Format::Json | Format::Jobs | Format::Bake | Format::GithubActions => {
            serde_json::to_string_pretty(plan).unwrap_or_default() + "\n"
        }
        Format::Table => {
            let rows = rows(plan);
            let mut widths = HEADERS.map(str::len);
            for row in &rows {
                for (w, cell) in widths.iter_mut().zip(row) {
                    *w = (*w).max(cell.chars().count());
                }
            }
            let line = |cells: &[String]| {
                let mut s = cells
                    .iter()
                    .zip(widths)
                    .map(|(c, w)| format!("{c:<w$}"))
                    .collect::<Vec<_>>()
                    .join("  ");
                s.truncate(s.trim_end().len());
                s + "\n"
            };
            let bold = std::io::stdout().is_terminal();
            let header = line(&HEADERS.map(String::from));
            let mut out = if bold {
                format!("\x1b[1m{}\x1b[0m\n", header.trim_end())
            } else {
                header
            };
            for row in &rows {
                out.push_str(&line(row));
            }
            out.push_str(&summary(plan));
            out
        }
        Format::Markdown => {
            let mut out = String::from(
                "| image | plan | rebuild | reason | tag | base |\n|---|---|---|---|---|---|\n",
            );
            for [image, plan_name, rebuild, reason, tag, base] in rows(plan) {
                let rebuild = if rebuild == "yes" {
                    "✅ yes"
                } else {
                    rebuild.as_str()
                };
                out.push_str(&format!(
                    "| `{image}` | {plan_name} | {rebuild} | {} | `{tag}` | {base} |\n",
                    reason.replace('|', "\\|")
                ));
            }
            out.push('\n');
            out.push_str(&summary(plan));
            out
        }
    }
}

fn summary(plan: &Plan) -> String {
    let rebuilt = plan.rebuilds().count();
    let range = match &plan.base {
        Some(base) => format!("{}..{}", short(base), short(&plan.head)),
        None => format!("{} (no base)", short(&plan.head)),
    };
    let dirty = if plan.dirty {
        " and the working tree's uncommitted changes (tags end in -dirty)"
    } else {
        ""
    };
    format!(
        "{rebuilt} of {} rebuild{}; {} in {range}{dirty}\n",
        count(plan.builds.len(), "build"),
        if rebuilt == 1 { "s" } else { "" },
        count(plan.changed_files.len(), "changed file")
    )
}

fn short(sha: &str) -> &str {
    sha.get(..7).unwrap_or(sha)
}
