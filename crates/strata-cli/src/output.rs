//! What strata prints: diagnostics on stderr, and plans and graphs in the
//! format asked for.

use std::io::IsTerminal;
use strata_core::diag::Diagnostic;
use strata_core::graph::Graph;
use strata_core::plan::Plan;
use strata_core::spec::Spec;
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

/// The output formats of `strata plan`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// A table for a terminal.
    Table,
    /// The JSON contract (see the README).
    Json,
    /// A Markdown table, e.g. for a pull-request comment.
    Markdown,
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

fn rows(plan: &Plan) -> Vec<[String; 6]> {
    plan.builds
        .iter()
        .map(|b| {
            [
                b.image.clone(),
                b.plan.clone(),
                if b.rebuild { "yes".into() } else { "no".into() },
                b.reason.to_string(),
                b.tag.clone(),
                // Where a rebuilt child's base comes from.
                match b.base_source {
                    Some(source) if b.rebuild => source.describe().to_string(),
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
        Format::Json => serde_json::to_string_pretty(plan).unwrap_or_default() + "\n",
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
                let rebuild = if rebuild == "yes" { "✅ yes" } else { "no" };
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

/// The stack's graph as JSON (`strata graph --format json`): every image
/// parents first, with its parent, its plans and, when a plan is given, the
/// plans it is rebuilt in.
pub fn graph_json(spec: &Spec, graph: &Graph, plan: Option<&Plan>) -> String {
    let images: Vec<serde_json::Value> = graph
        .topo_order()
        .into_iter()
        .map(|i| {
            let key = &graph.keys()[i];
            let plans: Vec<&str> = spec.image(key).map_or_else(Vec::new, |image| {
                spec.plans
                    .iter()
                    .map(|p| p.name.value.as_str())
                    .filter(|p| image.in_plan(p))
                    .collect()
            });
            let rebuild: Option<Vec<&str>> = plan.map(|p| {
                p.builds
                    .iter()
                    .filter(|b| &b.image == key && b.rebuild)
                    .map(|b| b.plan.as_str())
                    .collect()
            });
            serde_json::json!({
                "image": key,
                "parent": graph.parent(i).map(|p| &graph.keys()[p]),
                "plans": plans,
                "rebuild": rebuild,
            })
        })
        .collect();
    serde_json::to_string_pretty(&serde_json::json!({ "images": images })).unwrap_or_default()
        + "\n"
}

/// Renders the stack's graph, marking rebuilt images when a plan is given.
pub fn render_graph(
    spec: &Spec,
    graph: &Graph,
    plan: Option<&Plan>,
    format: GraphFormat,
) -> String {
    let marks = |key: &str| -> Vec<String> {
        plan.map(|p| {
            p.builds
                .iter()
                .filter(|b| b.image == key && b.rebuild)
                .map(|b| b.plan.clone())
                .collect()
        })
        .unwrap_or_default()
    };
    let plans = |key: &str| -> Vec<&str> {
        spec.image(key)
            .map(|i| {
                spec.plans
                    .iter()
                    .map(|p| p.name.value.as_str())
                    .filter(|p| i.in_plan(p))
                    .collect()
            })
            .unwrap_or_default()
    };
    let multi_plan = spec.plans.len() > 1;
    let label = |key: &str| {
        let mut l = key.to_string();
        if multi_plan {
            l.push_str(&format!(" [{}]", plans(key).join(", ")));
        }
        let m = marks(key);
        if !m.is_empty() {
            l.push_str(if multi_plan {
                " — rebuild: "
            } else {
                " — rebuild"
            });
            if multi_plan {
                l.push_str(&m.join(", "));
            }
        }
        l
    };
    let id = |key: &str| {
        format!(
            "n_{}",
            key.replace(|c: char| !c.is_ascii_alphanumeric(), "_")
        )
    };
    let order = graph.topo_order();
    let mut out = String::new();
    match format {
        GraphFormat::Mermaid => {
            out.push_str("```mermaid\nflowchart TD\n");
            for &i in &order {
                let key = &graph.keys()[i];
                out.push_str(&format!(
                    "    {}[\"{}\"]\n",
                    id(key),
                    label(key).replace('"', "#quot;")
                ));
            }
            for &i in &order {
                if let Some(p) = graph.parent(i) {
                    out.push_str(&format!(
                        "    {} --> {}\n",
                        id(&graph.keys()[p]),
                        id(&graph.keys()[i])
                    ));
                }
            }
            let rebuilt: Vec<String> = order
                .iter()
                .map(|&i| &graph.keys()[i])
                .filter(|k| !marks(k).is_empty())
                .map(|k| id(k))
                .collect();
            if !rebuilt.is_empty() {
                out.push_str("    classDef rebuild fill:#fde68a,stroke:#b45309\n");
                out.push_str(&format!("    class {} rebuild\n", rebuilt.join(",")));
            }
            out.push_str("```\n");
        }
        GraphFormat::Dot => {
            out.push_str("digraph stack {\n    rankdir=TB;\n    node [shape=box];\n");
            for &i in &order {
                let key = &graph.keys()[i];
                let style = if marks(key).is_empty() {
                    ""
                } else {
                    ", style=filled, fillcolor=\"#fde68a\""
                };
                out.push_str(&format!(
                    "    \"{}\" [label=\"{}\"{style}];\n",
                    key,
                    label(key).replace('"', "\\\"")
                ));
            }
            for &i in &order {
                if let Some(p) = graph.parent(i) {
                    out.push_str(&format!(
                        "    \"{}\" -> \"{}\";\n",
                        graph.keys()[p],
                        graph.keys()[i]
                    ));
                }
            }
            out.push_str("}\n");
        }
        GraphFormat::Text => {
            fn walk(
                graph: &Graph,
                i: usize,
                prefix: &str,
                last: bool,
                root: bool,
                label: &dyn Fn(&str) -> String,
                out: &mut String,
            ) {
                let key = &graph.keys()[i];
                if root {
                    out.push_str(&format!("{}\n", label(key)));
                } else {
                    out.push_str(&format!(
                        "{prefix}{}{}\n",
                        if last { "└── " } else { "├── " },
                        label(key)
                    ));
                }
                let child_prefix = if root {
                    String::new()
                } else {
                    format!("{prefix}{}", if last { "    " } else { "│   " })
                };
                let children = graph.children(i);
                for (n, &c) in children.iter().enumerate() {
                    walk(
                        graph,
                        c,
                        &child_prefix,
                        n + 1 == children.len(),
                        false,
                        label,
                        out,
                    );
                }
            }
            for r in graph.roots() {
                walk(graph, r, "", true, true, &label, &mut out);
            }
        }
    }
    out
}
