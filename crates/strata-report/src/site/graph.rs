//! The stack as a picture: a layered layout of the image graph, drawn as
//! SVG, one box per image and plan.
//!
//! A stack is a forest (each image has at most one parent), usually
//! shallow and wide, so the layers are columns (a parent's depth) and the
//! siblings stack down the page: a 60-image stack is a long page, never a
//! wide one. Each leaf gets a row of its own and each parent sits level
//! with the middle of its children, so no two boxes can share a place.

use super::html::{escape, size};
use super::{Image, Run};
use crate::text::{human_duration, truncate_chars};

/// A box's width and height, and the gaps between columns and rows.
const BOX_W: f64 = 200.0;
const BOX_H: f64 = 58.0;
const GAP_X: f64 = 36.0;
const GAP_Y: f64 = 12.0;
const MARGIN: f64 = 8.0;
/// The characters that fit on a box's line.
const LINE_CHARS: usize = 28;

/// Where each image's box stands.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Layout {
    /// Per image of the run (same order), its box.
    pub boxes: Vec<Placed>,
    /// The drawing's width and height.
    pub width: f64,
    pub height: f64,
}

/// One box.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Placed {
    /// Its column: the image's depth.
    pub column: usize,
    /// Its top-left corner.
    pub x: f64,
    pub y: f64,
}

impl Placed {
    /// Whether two boxes share any point.
    #[cfg(test)]
    pub fn overlaps(&self, other: &Placed) -> bool {
        self.x < other.x + BOX_W
            && other.x < self.x + BOX_W
            && self.y < other.y + BOX_H
            && other.y < self.y + BOX_H
    }
}

/// Lays the run's images out: columns by depth, rows from the leaves up.
/// An image whose parent is not in the run (or, in a malformed record, is
/// part of a cycle) starts a tree of its own.
pub(crate) fn layout(run: &Run) -> Layout {
    let n = run.images.len();
    let parents: Vec<Option<usize>> = (0..n).map(|i| run.parent_of(i)).collect();
    let mut children: Vec<Vec<usize>> = vec![Vec::new(); n];
    for (i, p) in parents.iter().enumerate() {
        if let Some(p) = p {
            children[*p].push(i);
        }
    }
    let mut column = vec![0usize; n];
    let mut row = vec![0f64; n];
    let mut placed = vec![false; n];
    let mut next_leaf = 0f64;
    // Roots first, in the run's order; then whatever a cycle kept unreached.
    let starts = (0..n)
        .filter(|&i| parents[i].is_none())
        .chain(0..n)
        .collect::<Vec<_>>();
    for start in starts {
        if placed[start] {
            continue;
        }
        // Depth-first, children before their parent's row is known: an
        // explicit stack (`false`: enter, `true`: leave) so no recursion
        // depth depends on the input.
        let mut stack = vec![(start, 0usize, false)];
        while let Some((i, depth, leaving)) = stack.pop() {
            if leaving {
                let rows: Vec<f64> = children[i]
                    .iter()
                    .filter(|&&c| placed[c] && column[c] == depth + 1)
                    .map(|&c| row[c])
                    .collect();
                row[i] = match (rows.first(), rows.last()) {
                    (Some(first), Some(last)) => (first + last) / 2.0,
                    _ => {
                        next_leaf += 1.0;
                        next_leaf - 1.0
                    }
                };
                placed[i] = true;
                continue;
            }
            if placed[i] || stack.iter().any(|&(s, _, l)| l && s == i) {
                continue;
            }
            column[i] = depth;
            stack.push((i, depth, true));
            for &c in children[i].iter().rev() {
                if !placed[c] {
                    stack.push((c, depth + 1, false));
                }
            }
        }
    }
    let boxes: Vec<Placed> = (0..n)
        .map(|i| Placed {
            column: column[i],
            x: MARGIN + column[i] as f64 * (BOX_W + GAP_X),
            y: MARGIN + row[i] * (BOX_H + GAP_Y),
        })
        .collect();
    let columns = column.iter().max().map_or(0, |c| c + 1);
    Layout {
        width: 2.0 * MARGIN + columns as f64 * BOX_W + columns.saturating_sub(1) as f64 * GAP_X,
        height: 2.0 * MARGIN + next_leaf * BOX_H + (next_leaf - 1.0).max(0.0) * GAP_Y,
        boxes,
    }
}

/// The graph as inline SVG: boxes coloured by outcome, linked to their
/// pages, with the critical path's edges marked. A `group`, not an `img`:
/// an image's role would hide its links from screen readers.
pub(crate) fn svg(run: &Run, critical: &[usize]) -> String {
    let layout = layout(run);
    let plans = run.has_plans();
    let mut out = format!(
        "<svg class=\"graph\" width=\"{w:.0}\" height=\"{h:.0}\" viewBox=\"0 0 {w:.0} {h:.0}\" \
role=\"group\" aria-labelledby=\"graph-title\" xmlns=\"http://www.w3.org/2000/svg\">\n\
<title id=\"graph-title\">The stack: {count} images, each parent left of its children</title>\n",
        w = layout.width,
        h = layout.height,
        count = run.images.len(),
    );
    for (i, placed) in layout.boxes.iter().enumerate() {
        let Some(p) = run.parent_of(i) else { continue };
        let from = layout.boxes[p];
        let (x1, y1) = (from.x + BOX_W, from.y + BOX_H / 2.0);
        let (x2, y2) = (placed.x, placed.y + BOX_H / 2.0);
        let on_path = critical.contains(&i) && critical.contains(&p);
        out.push_str(&format!(
            "<path class=\"edge{}\" d=\"M{x1:.1} {y1:.1} C{mx:.1} {y1:.1} {mx:.1} {y2:.1} {x2:.1} {y2:.1}\"/>\n",
            if on_path { " critical" } else { "" },
            mx = (x1 + x2) / 2.0,
        ));
    }
    for (image, placed) in run.images.iter().zip(&layout.boxes) {
        out.push_str(&node(image, placed, plans));
    }
    out.push_str("</svg>\n");
    out
}

/// One image's box: its name, outcome, size and duration, its reason.
fn node(image: &Image, placed: &Placed, plans: bool) -> String {
    let label = image.label(plans);
    let mut facts = vec![image.outcome.word().to_string()];
    if let Some(bytes) = image.size() {
        facts.push(size(Some(bytes)));
    }
    if image.outcome.ran() || image.duration_secs > 0.0 {
        facts.push(human_duration(image.duration_secs));
    }
    let reason = image.reason.as_deref().unwrap_or(match image.outcome {
        super::Outcome::NotRebuilt => "unchanged",
        _ => "",
    });
    let tooltip = format!(
        "{label}: {} — {}{}",
        facts.join(", "),
        image.message,
        if reason.is_empty() {
            String::new()
        } else {
            format!(" (because: {reason})")
        }
    );
    format!(
        "<a href=\"{href}\" data-image=\"{key}\" aria-label=\"{tooltip}\">\
<g class=\"node {class}\" transform=\"translate({x:.1} {y:.1})\">\
<title>{tooltip}</title>\
<rect width=\"{BOX_W}\" height=\"{BOX_H}\" rx=\"6\"/>\
<text x=\"8\" y=\"17\" class=\"name\">{name}</text>\
<text x=\"8\" y=\"34\">{facts}</text>\
<text x=\"8\" y=\"50\" class=\"why\">{reason}</text></g></a>\n",
        href = escape(&image.page()),
        key = escape(&label),
        tooltip = escape(&tooltip),
        class = image.outcome.class(),
        x = placed.x,
        y = placed.y,
        name = escape(&truncate_chars(&label, LINE_CHARS - 4)),
        facts = escape(&truncate_chars(&facts.join(" · "), LINE_CHARS)),
        reason = escape(&truncate_chars(reason, LINE_CHARS + 4)),
    )
}
