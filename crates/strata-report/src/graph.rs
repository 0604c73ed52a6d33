//! The stack's graph as a picture (Mermaid, Graphviz dot, an indented
//! tree) or as JSON, with the images a plan rebuilds marked.

use strata_core::graph::Graph;
use strata_core::plan::Plan;
use strata_core::spec::Spec;

/// How [`render_graph`] draws the graph.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GraphStyle {
    /// A Mermaid flowchart, fenced for Markdown.
    Mermaid,
    /// Graphviz dot.
    Dot,
    /// An indented tree.
    Text,
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
pub fn render_graph(spec: &Spec, graph: &Graph, plan: Option<&Plan>, style: GraphStyle) -> String {
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
    match style {
        GraphStyle::Mermaid => {
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
        GraphStyle::Dot => {
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
        GraphStyle::Text => {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn stack() -> (Spec, Graph) {
        let spec = strata_core::spec::parse(
            "images:\n  root: {image_name: o/root}\n  a: {image_name: o/a, depend_on: root}\n  b: {image_name: o/b, depend_on: root}\n  c: {image_name: o/c, depend_on: a}\n",
            "spec.yml",
        )
        .spec
        .unwrap();
        let graph = Graph::new(&spec).unwrap();
        (spec, graph)
    }

    #[test]
    fn the_text_tree_draws_every_edge_once() {
        let (spec, graph) = stack();
        assert_eq!(
            render_graph(&spec, &graph, None, GraphStyle::Text),
            "root\n├── a\n│   └── c\n└── b\n"
        );
    }

    #[test]
    fn mermaid_and_dot_name_every_node_and_edge() {
        let (spec, graph) = stack();
        let mermaid = render_graph(&spec, &graph, None, GraphStyle::Mermaid);
        for edge in ["n_root --> n_a", "n_root --> n_b", "n_a --> n_c"] {
            assert!(mermaid.contains(edge), "{mermaid}");
        }
        assert!(!mermaid.contains("classDef rebuild"), "{mermaid}");
        let dot = render_graph(&spec, &graph, None, GraphStyle::Dot);
        assert!(dot.contains("\"a\" -> \"c\";"), "{dot}");
        let json: serde_json::Value =
            serde_json::from_str(&graph_json(&spec, &graph, None)).unwrap();
        let images = json["images"].as_array().unwrap();
        let c = images.iter().position(|i| i["image"] == "c").unwrap();
        let a = images.iter().position(|i| i["image"] == "a").unwrap();
        assert!(a < c, "parents first: {json}");
        assert_eq!(images[c]["parent"], "a");
        assert!(images[c]["rebuild"].is_null());
    }
}
