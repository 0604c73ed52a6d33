//! The image graph: each image has at most one parent (the image it is built
//! FROM), so the stack is a forest. Orders and walks over it live here.

use crate::spec::Spec;
use std::collections::BTreeMap;

/// The stack as a forest of image keys. Built from a spec whose parents all
/// exist and form no cycle (see [`Graph::new`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Graph {
    keys: Vec<String>,
    parent: Vec<Option<usize>>,
    children: Vec<Vec<usize>>,
    index: BTreeMap<String, usize>,
}

/// Why a spec's images do not form a forest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GraphError {
    /// An image names a parent that is not in the spec.
    UnknownParent {
        /// The image.
        image: String,
        /// The parent it names.
        parent: String,
    },
    /// Images depend on each other in a loop; the loop, first image repeated
    /// at the end (`a → b → a`).
    Cycle(Vec<String>),
}

impl Graph {
    /// The graph of `spec`'s images, or every cycle and unknown parent in it.
    pub fn new(spec: &Spec) -> Result<Graph, Vec<GraphError>> {
        let keys: Vec<String> = spec.image_keys().map(str::to_string).collect();
        let index: BTreeMap<String, usize> = keys
            .iter()
            .enumerate()
            .map(|(i, k)| (k.clone(), i))
            .collect();
        let mut errors = Vec::new();
        let mut parent = vec![None; keys.len()];
        for (i, image) in spec.images.iter().enumerate() {
            if let Some(p) = image.parent() {
                match index.get(p) {
                    Some(&pi) => parent[i] = Some(pi),
                    None => errors.push(GraphError::UnknownParent {
                        image: image.name().to_string(),
                        parent: p.to_string(),
                    }),
                }
            }
        }
        errors.extend(
            find_cycles(&parent).into_iter().map(|cycle| {
                GraphError::Cycle(cycle.into_iter().map(|i| keys[i].clone()).collect())
            }),
        );
        if !errors.is_empty() {
            return Err(errors);
        }
        let mut children = vec![Vec::new(); keys.len()];
        for (i, p) in parent.iter().enumerate() {
            if let Some(p) = p {
                children[*p].push(i);
            }
        }
        Ok(Graph {
            keys,
            parent,
            children,
            index,
        })
    }

    /// Every image key, in spec order.
    pub fn keys(&self) -> &[String] {
        &self.keys
    }

    /// The position of `key` in [`Graph::keys`].
    pub fn index_of(&self, key: &str) -> Option<usize> {
        self.index.get(key).copied()
    }

    /// The parent of image `i`.
    pub fn parent(&self, i: usize) -> Option<usize> {
        self.parent[i]
    }

    /// The children of image `i`, in spec order.
    pub fn children(&self, i: usize) -> &[usize] {
        &self.children[i]
    }

    /// Images with no parent, in spec order.
    pub fn roots(&self) -> Vec<usize> {
        (0..self.keys.len())
            .filter(|&i| self.parent[i].is_none())
            .collect()
    }

    /// Every image, parents before children; among siblings, spec order.
    pub fn topo_order(&self) -> Vec<usize> {
        let mut order = Vec::with_capacity(self.keys.len());
        let mut stack: Vec<usize> = self.roots().into_iter().rev().collect();
        while let Some(i) = stack.pop() {
            order.push(i);
            stack.extend(self.children[i].iter().rev());
        }
        order
    }

    /// The ancestors of image `i`, nearest first.
    pub fn ancestors(&self, i: usize) -> Vec<usize> {
        std::iter::successors(self.parent[i], |&p| self.parent[p]).collect()
    }

    /// The descendants of image `i`, parents before children.
    pub fn descendants(&self, i: usize) -> Vec<usize> {
        let mut out = Vec::new();
        let mut stack: Vec<usize> = self.children[i].iter().rev().copied().collect();
        while let Some(c) = stack.pop() {
            out.push(c);
            stack.extend(self.children[c].iter().rev());
        }
        out
    }
}

/// The cycles among parent links, each listed once, starting at its image
/// that comes first in spec order and closed by repeating it.
fn find_cycles(parent: &[Option<usize>]) -> Vec<Vec<usize>> {
    // 0 = unvisited, 1 = on the current walk, 2 = done.
    let mut state = vec![0u8; parent.len()];
    let mut cycles = Vec::new();
    for start in 0..parent.len() {
        let mut walk = Vec::new();
        let mut at = Some(start);
        while let Some(i) = at {
            match state[i] {
                2 => break,
                1 => {
                    if let Some(from) = walk.iter().position(|&w| w == i) {
                        let mut cycle: Vec<usize> = walk[from..].to_vec();
                        let first = cycle
                            .iter()
                            .enumerate()
                            .min_by_key(|(_, v)| **v)
                            .map_or(0, |(p, _)| p);
                        cycle.rotate_left(first);
                        // Walk order follows parent links; show it as "depends on".
                        cycle.push(cycle[0]);
                        cycles.push(cycle);
                    }
                    break;
                }
                _ => {
                    state[i] = 1;
                    walk.push(i);
                    at = parent[i];
                }
            }
        }
        for i in walk {
            state[i] = 2;
        }
    }
    cycles
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec;

    fn spec_of(edges: &[(&str, Option<&str>)]) -> Spec {
        let mut text = String::from("tag: {prefix: '1'}\nimages:\n");
        for (k, p) in edges {
            text.push_str(&format!("  {k}:\n    image_name: x/{k}\n"));
            if let Some(p) = p {
                text.push_str(&format!("    depend_on: {p}\n"));
            }
        }
        spec::parse(&text, "f").spec.unwrap()
    }

    #[test]
    fn orders_parents_before_children() {
        let g = Graph::new(&spec_of(&[
            ("c", Some("b")),
            ("a", None),
            ("b", Some("a")),
            ("d", Some("a")),
        ]))
        .unwrap();
        let names: Vec<_> = g
            .topo_order()
            .into_iter()
            .map(|i| g.keys()[i].as_str())
            .collect();
        assert_eq!(names, ["a", "b", "c", "d"]);
        let a = g.index_of("a").unwrap();
        let desc: Vec<_> = g
            .descendants(a)
            .into_iter()
            .map(|i| g.keys()[i].as_str())
            .collect();
        assert_eq!(desc, ["b", "c", "d"]);
        let c = g.index_of("c").unwrap();
        assert_eq!(g.ancestors(c), vec![g.index_of("b").unwrap(), a]);
    }

    #[test]
    fn reports_cycles_and_unknown_parents() {
        let errs = Graph::new(&spec_of(&[
            ("a", Some("c")),
            ("b", Some("a")),
            ("c", Some("b")),
            ("d", Some("zz")),
            ("e", Some("e")),
        ]))
        .unwrap_err();
        assert!(errs.contains(&GraphError::UnknownParent {
            image: "d".into(),
            parent: "zz".into()
        }));
        assert!(
            errs.contains(&GraphError::Cycle(vec![
                "a".into(),
                "c".into(),
                "b".into(),
                "a".into()
            ])),
            "{errs:?}"
        );
        assert!(errs.contains(&GraphError::Cycle(vec!["e".into(), "e".into()])));
        assert_eq!(errs.len(), 3);
    }
}
