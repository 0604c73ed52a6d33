//! A small YAML document tree that keeps every node's position and every
//! scalar's text exactly as written.
//!
//! Spec files are read through this tree rather than straight into typed
//! structs so that `prefix: 2023.10` stays the text `2023.10` (a float would
//! be `2023.1`), every error can name a line and column, duplicate keys are
//! caught, and hostile input (alias bombs, deep nesting, huge files) is refused
//! by counting, before it can exhaust memory or time.

use crate::diag::{Diagnostic, Pos};
use saphyr_parser::{Event, Parser, ScalarStyle, Span};
use std::collections::HashMap;

/// Largest document accepted, in bytes. Real specs are a few kilobytes.
pub const MAX_INPUT_BYTES: usize = 1 << 20;
/// Deepest nesting of collections accepted.
pub const MAX_DEPTH: usize = 64;
/// Most nodes a document may expand to, aliases included.
pub const MAX_NODES: usize = 100_000;

/// A node of the tree and where it starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    /// The node's content.
    pub value: Value,
    /// Where the node starts in the file.
    pub pos: Pos,
}

/// The content of a [`Node`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    /// A scalar: its text as written, and whether it was unquoted (plain).
    Scalar {
        /// The scalar's text, unchanged.
        text: String,
        /// Plain (unquoted) scalars can mean null; quoted ones never do.
        plain: bool,
    },
    /// A sequence.
    Seq(Vec<Node>),
    /// A mapping, in document order; keys are unique.
    Map(Vec<(Node, Node)>),
}

impl Node {
    /// Whether the node is YAML's null (`~`, `null`, or nothing at all).
    pub fn is_null(&self) -> bool {
        matches!(&self.value, Value::Scalar { text, plain: true }
            if matches!(text.as_str(), "" | "~" | "null" | "Null" | "NULL"))
    }

    /// The scalar's text, if the node is a scalar.
    pub fn as_scalar(&self) -> Option<&str> {
        match &self.value {
            Value::Scalar { text, .. } => Some(text),
            _ => None,
        }
    }

    /// The mapping's entries, if the node is a mapping.
    pub fn as_map(&self) -> Option<&[(Node, Node)]> {
        match &self.value {
            Value::Map(entries) => Some(entries),
            _ => None,
        }
    }

    /// A word for the node's kind, for error messages.
    pub fn kind(&self) -> &'static str {
        match &self.value {
            _ if self.is_null() => "nothing (null)",
            Value::Scalar { .. } => "a scalar",
            Value::Seq(_) => "a list",
            Value::Map(_) => "a mapping",
        }
    }

    fn size(&self) -> usize {
        match &self.value {
            Value::Scalar { .. } => 1,
            Value::Seq(items) => 1 + items.iter().map(Node::size).sum::<usize>(),
            Value::Map(entries) => {
                1 + entries
                    .iter()
                    .map(|(k, v)| k.size() + v.size())
                    .sum::<usize>()
            }
        }
    }
}

fn pos_of(span: &Span) -> Pos {
    Pos {
        line: span.start.line(),
        column: span.start.col() + 1,
    }
}

enum Frame {
    Seq(Pos, usize, Vec<Node>),
    Map(Pos, usize, Vec<(Node, Node)>, Option<Node>),
}

/// Parses the first document of `text` into a [`Node`] tree. An empty
/// document is a null scalar. `file` names the file in diagnostics.
pub fn parse(text: &str, file: &str) -> Result<Node, Diagnostic> {
    if text.len() > MAX_INPUT_BYTES {
        return Err(Diagnostic::error(
            file,
            None,
            format!(
                "the file is {} bytes; strata reads YAML files of at most {MAX_INPUT_BYTES} bytes",
                text.len()
            ),
        )
        .with_help("is this really the stack's spec? A spec.yml is normally a few kilobytes"));
    }
    let mut parser = Parser::new_from_str(text);
    let mut stack: Vec<Frame> = Vec::new();
    let mut anchors: HashMap<usize, Node> = HashMap::new();
    let mut nodes = 0usize;
    let mut root: Option<Node> = None;

    while let Some(item) = parser.next_event() {
        let (event, span) = item.map_err(|e| {
            Diagnostic::error(
                file,
                Some(Pos {
                    line: e.marker().line(),
                    column: e.marker().col() + 1,
                }),
                format!("this is not valid YAML: {}", e.info()),
            )
            .with_help("check the indentation and quoting around this place")
        })?;
        let pos = pos_of(&span);
        let (node, anchor) = match event {
            Event::StreamStart | Event::DocumentStart(_) | Event::Nothing => continue,
            Event::DocumentEnd | Event::StreamEnd => {
                if stack.is_empty() {
                    break;
                }
                continue;
            }
            Event::SequenceStart(anchor, _) | Event::MappingStart(anchor, _) => {
                if stack.len() >= MAX_DEPTH {
                    return Err(Diagnostic::error(
                        file,
                        Some(pos),
                        format!("the document nests deeper than {MAX_DEPTH} levels"),
                    ));
                }
                stack.push(if matches!(event, Event::SequenceStart(..)) {
                    Frame::Seq(pos, anchor, Vec::new())
                } else {
                    Frame::Map(pos, anchor, Vec::new(), None)
                });
                continue;
            }
            Event::SequenceEnd | Event::MappingEnd => match stack.pop() {
                Some(Frame::Seq(pos, anchor, items)) => (
                    Node {
                        value: Value::Seq(items),
                        pos,
                    },
                    anchor,
                ),
                Some(Frame::Map(pos, anchor, entries, _)) => (
                    Node {
                        value: Value::Map(entries),
                        pos,
                    },
                    anchor,
                ),
                None => continue,
            },
            Event::Scalar(text, style, anchor, _) => (
                Node {
                    value: Value::Scalar {
                        text: text.into_owned(),
                        plain: style == ScalarStyle::Plain,
                    },
                    pos,
                },
                anchor,
            ),
            Event::Alias(id) => {
                let Some(target) = anchors.get(&id) else {
                    return Err(Diagnostic::error(
                        file,
                        Some(pos),
                        "this alias names no anchor",
                    ));
                };
                // Counting expanded nodes is what defeats "billion laughs":
                // each alias costs the size of what it stands for.
                nodes = nodes.saturating_add(target.size());
                if nodes > MAX_NODES {
                    return Err(alias_bomb(file, pos));
                }
                (
                    Node {
                        pos,
                        ..target.clone()
                    },
                    0,
                )
            }
        };
        nodes += 1;
        if nodes > MAX_NODES {
            return Err(alias_bomb(file, pos));
        }
        if anchor != 0 {
            anchors.insert(anchor, node.clone());
        }
        match stack.last_mut() {
            None => {
                root = Some(node);
                break;
            }
            Some(Frame::Seq(_, _, items)) => items.push(node),
            Some(Frame::Map(_, _, entries, pending)) => match pending.take() {
                None => {
                    if let Some(key) = node.as_scalar() {
                        if let Some((first, _)) =
                            entries.iter().find(|(k, _)| k.as_scalar() == Some(key))
                        {
                            return Err(Diagnostic::error(
                                file,
                                Some(node.pos),
                                format!(
                                    "the key '{key}' appears twice in this mapping (first at line {})",
                                    first.pos.line
                                ),
                            )
                            .with_help("remove one of them: YAML keeps only one, and which one is not what you meant"));
                        }
                    }
                    *pending = Some(node);
                }
                Some(key) => entries.push((key, node)),
            },
        }
    }
    Ok(root.unwrap_or(Node {
        value: Value::Scalar {
            text: String::new(),
            plain: true,
        },
        pos: Pos { line: 1, column: 1 },
    }))
}

fn alias_bomb(file: &str, pos: Pos) -> Diagnostic {
    Diagnostic::error(
        file,
        Some(pos),
        format!("the document expands to more than {MAX_NODES} nodes (aliases included)"),
    )
    .with_help("a spec this large is refused; check for aliases (*name) that repeat each other")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scalar_at<'a>(node: &'a Node, key: &str) -> &'a Node {
        let map = node.as_map().expect("a mapping");
        &map.iter()
            .find(|(k, _)| k.as_scalar() == Some(key))
            .expect("key")
            .1
    }

    #[test]
    fn scalars_keep_their_text_and_position() {
        let doc = parse("tag:\n  prefix: 2023.10\n  n: 010\n", "f").unwrap();
        let tag = scalar_at(&doc, "tag");
        let prefix = scalar_at(tag, "prefix");
        assert_eq!(prefix.as_scalar(), Some("2023.10"));
        assert_eq!(
            prefix.pos,
            Pos {
                line: 2,
                column: 11
            }
        );
        assert_eq!(scalar_at(tag, "n").as_scalar(), Some("010"));
    }

    #[test]
    fn duplicate_keys_are_errors_naming_both_lines() {
        let err = parse("a: 1\nb: 2\na: 3\n", "spec.yml").unwrap_err();
        assert_eq!(err.pos, Some(Pos { line: 3, column: 1 }));
        assert!(err.message.contains("first at line 1"), "{}", err.message);
    }

    #[test]
    fn syntax_errors_carry_a_position() {
        let err = parse("a:\n  b: 'x's\n", "spec.yml").unwrap_err();
        assert!(err.pos.is_some());
        assert!(err.message.contains("not valid YAML"));
    }

    #[test]
    fn alias_bombs_are_refused_quickly() {
        let mut doc = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..30 {
            let p = i - 1;
            doc.push_str(&format!(
                "a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n"
            ));
        }
        let start = std::time::Instant::now();
        let err = parse(&doc, "spec.yml").unwrap_err();
        assert!(err.message.contains("more than"), "{}", err.message);
        assert!(start.elapsed().as_secs() < 5);
    }

    #[test]
    fn deep_nesting_and_huge_input_are_refused() {
        let deep = "[".repeat(200);
        assert!(
            parse(&deep, "f")
                .unwrap_err()
                .message
                .contains("nests deeper")
        );
        let huge = "a: b\n".repeat(MAX_INPUT_BYTES / 4);
        assert!(parse(&huge, "f").unwrap_err().message.contains("bytes"));
    }

    #[test]
    fn aliases_within_budget_are_expanded() {
        let doc = parse("base: &b {x: 1}\nother: *b\n", "f").unwrap();
        assert_eq!(
            scalar_at(scalar_at(&doc, "other"), "x").as_scalar(),
            Some("1")
        );
    }

    #[test]
    fn empty_documents_are_null() {
        assert!(parse("", "f").unwrap().is_null());
        assert!(parse("# only a comment\n", "f").unwrap().is_null());
        assert!(!parse("'null'", "f").unwrap().is_null());
    }
}
