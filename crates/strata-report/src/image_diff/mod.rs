//! What changed inside an image between two builds: its size, its layers and
//! the output of its info commands, compared by [`compare`] and rendered for
//! terminals ([`diff_text`], for `strata diff REF_A REF_B`) and for manifests
//! ([`diff_markdown`], against the image's previous published build).
//!
//! Layers are compared as histories: the two share a prefix of identical
//! steps (same cleaned command, same size; the creation time is ignored, as a
//! rebuild changes it); everything after that prefix was removed from the old
//! image and added in the new one. Info commands are matched by key and their
//! outputs compared line by line as unified diffs.

use serde::{Deserialize, Serialize};
use similar::{ChangeTag, TextDiff};
use strata_core::limits::format_size;

use crate::image::{COMMAND_MAX_CHARS, FOLD_LINES, InfoOutput, Layer, clean_command};
use crate::text::{
    clean_output, code_span, collapse_whitespace, escape_cell, escape_inline, push_code_block,
    truncate_chars,
};

/// Lines of unchanged context shown around each change of a unified diff.
pub const CONTEXT_LINES: usize = 3;

/// One side of a comparison: an image as the engine describes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImageSide {
    /// The full image reference, e.g. `ghcr.io/org/image:2023.2-abc1234`.
    pub reference: String,
    /// Total image size in bytes.
    pub size: u64,
    /// The history, OLDEST FIRST (the reverse of a manifest's layers).
    pub layers: Vec<Layer>,
    /// The info commands' results, in spec order.
    pub info: Vec<InfoOutput>,
    /// Its packages, when its SBOM is known (`None`: not compared).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub packages: Option<Vec<strata_sbom::Package>>,
}

/// How one info command's output changed between the two images.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InfoDiff {
    /// The command's key in `all_info_cmds`.
    pub key: String,
    /// Its human description (the `to` side's, or the `from` side's when the
    /// command is gone or has none).
    pub description: String,
    /// The unified diff of the outputs (cleaned of ANSI escapes and carriage
    /// returns), with [`CONTEXT_LINES`] lines of context and `--- a/<from>` /
    /// `+++ b/<to>` headers; empty when the outputs are the same. A command
    /// present on one side only is diffed against empty output.
    pub unified: String,
    /// Lines of output only in `to`.
    pub lines_added: usize,
    /// Lines of output only in `from`.
    pub lines_removed: usize,
    /// The command's exit code in `from`; `None` when `from` did not run it.
    pub from_exit_code: Option<i64>,
    /// The command's exit code in `to`; `None` when `to` did not run it.
    pub to_exit_code: Option<i64>,
}

impl InfoDiff {
    /// Whether anything differs: the output, the exit code, or the command
    /// being present on one side only.
    pub fn changed(&self) -> bool {
        !self.unified.is_empty() || self.from_exit_code != self.to_exit_code
    }
}

/// What changed between two images, from `from` (older) to `to` (newer).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImageDiff {
    /// The reference of the old image.
    pub from: String,
    /// The reference of the new image.
    pub to: String,
    /// The old image's size in bytes.
    pub from_size: u64,
    /// The new image's size in bytes.
    pub to_size: u64,
    /// `to_size - from_size` (negative when it shrank; saturates at the
    /// bounds of `i64`).
    pub growth: i64,
    /// Layers of `to` after the shared prefix, oldest first. Metadata steps
    /// are kept (their size is 0).
    pub added: Vec<Layer>,
    /// Layers of `from` after the shared prefix, oldest first. Metadata
    /// steps are kept (their size is 0).
    pub removed: Vec<Layer>,
    /// How many layers, from the oldest, both histories share: same command
    /// after [`clean_command`] and same size.
    pub shared_layers: usize,
    /// One entry per info command on either side, matched by key: the `to`
    /// side's commands in its order, then those only `from` ran.
    pub info: Vec<InfoDiff>,
    /// The packages added, removed and changed, when both sides' SBOMs
    /// are known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub packages: Option<strata_sbom::diff::PackageDiff>,
}

impl ImageDiff {
    /// Whether nothing changed: same size, same layers, and no info command
    /// that [changed](InfoDiff::changed).
    pub fn unchanged(&self) -> bool {
        self.growth == 0
            && self.added.is_empty()
            && self.removed.is_empty()
            && !self.info.iter().any(InfoDiff::changed)
            && self.packages.as_ref().is_none_or(|p| p.is_empty())
    }
}

/// Compares two images: sizes, layer histories and info command outputs.
///
/// Info commands are matched by key; when a key occurs more than once on a
/// side, the n-th occurrence on one side is matched with the n-th on the
/// other.
pub fn compare(from: &ImageSide, to: &ImageSide) -> ImageDiff {
    let shared_layers = from
        .layers
        .iter()
        .zip(&to.layers)
        .take_while(|(a, b)| same_layer(a, b))
        .count();
    let growth = i128::from(to.size) - i128::from(from.size);
    let growth = i64::try_from(growth).unwrap_or(if growth < 0 { i64::MIN } else { i64::MAX });

    let old_header = format!("a/{}", collapse_whitespace(&from.reference));
    let new_header = format!("b/{}", collapse_whitespace(&to.reference));
    let mut used = vec![false; from.info.len()];
    let mut info = Vec::with_capacity(to.info.len().max(from.info.len()));
    for new in &to.info {
        let old = from
            .info
            .iter()
            .enumerate()
            .find(|(i, old)| !used[*i] && old.key == new.key)
            .map(|(i, old)| {
                used[i] = true;
                old
            });
        info.push(info_diff(old, Some(new), &old_header, &new_header));
    }
    for (old, _) in from.info.iter().zip(&used).filter(|(_, used)| !**used) {
        info.push(info_diff(Some(old), None, &old_header, &new_header));
    }

    ImageDiff {
        from: from.reference.clone(),
        to: to.reference.clone(),
        from_size: from.size,
        to_size: to.size,
        growth,
        added: to.layers[shared_layers..].to_vec(),
        removed: from.layers[shared_layers..].to_vec(),
        shared_layers,
        info,
        packages: match (&from.packages, &to.packages) {
            (Some(old), Some(new)) => Some(strata_sbom::diff::diff(old, new)),
            _ => None,
        },
    }
}

fn same_layer(a: &Layer, b: &Layer) -> bool {
    a.size == b.size && clean_command(&a.created_by) == clean_command(&b.created_by)
}

/// Output as compared: cleaned, and newline-terminated when not empty (so the
/// diff has no "No newline at end of file" markers).
fn diff_input(info: Option<&InfoOutput>) -> String {
    let mut text = info.map(|i| clean_output(&i.output)).unwrap_or_default();
    if !text.is_empty() {
        text.push('\n');
    }
    text
}

fn info_diff(
    old: Option<&InfoOutput>,
    new: Option<&InfoOutput>,
    old_header: &str,
    new_header: &str,
) -> InfoDiff {
    let (old_text, new_text) = (diff_input(old), diff_input(new));
    let diff = TextDiff::from_lines(&old_text, &new_text);
    let (mut lines_added, mut lines_removed) = (0, 0);
    for change in diff.iter_all_changes() {
        match change.tag() {
            ChangeTag::Insert => lines_added += 1,
            ChangeTag::Delete => lines_removed += 1,
            ChangeTag::Equal => {}
        }
    }
    let unified = if lines_added + lines_removed == 0 {
        String::new()
    } else {
        diff.unified_diff()
            .context_radius(CONTEXT_LINES)
            .header(old_header, new_header)
            .to_string()
    };
    let either = new.or(old);
    let description = [new, old]
        .into_iter()
        .flatten()
        .map(|i| i.description.clone())
        .find(|d| !d.trim().is_empty())
        .unwrap_or_default();
    InfoDiff {
        key: either.map(|i| i.key.clone()).unwrap_or_default(),
        description,
        unified,
        lines_added,
        lines_removed,
        from_exit_code: old.map(|i| i.exit_code),
        to_exit_code: new.map(|i| i.exit_code),
    }
}

/// A size change for summaries: `+100.0 MB`, `-3.2 kB`, `±0 B` (decimal
/// units, as [`format_size`] writes them).
pub fn format_growth(bytes: i64) -> String {
    crate::text::signed_size(bytes, format_size)
}

/// `1.2 GB → 1.3 GB (+100.0 MB)`.
fn size_change(d: &ImageDiff) -> String {
    format!(
        "{} → {} ({})",
        format_size(d.from_size),
        format_size(d.to_size),
        format_growth(d.growth)
    )
}

/// `12 shared, 2 removed, 3 added`, or `all 12 shared` when none changed.
fn layer_counts(d: &ImageDiff) -> String {
    if d.added.is_empty() && d.removed.is_empty() {
        format!("all {} shared", d.shared_layers)
    } else {
        format!(
            "{} shared, {} removed, {} added",
            d.shared_layers,
            d.removed.len(),
            d.added.len()
        )
    }
}

/// `Python version (PY_VER)`, or the key alone when there is no description.
fn info_title(info: &InfoDiff) -> String {
    let key = collapse_whitespace(&info.key);
    let description = collapse_whitespace(&info.description);
    match (description.is_empty(), key.is_empty()) {
        (true, true) => "Info command".to_string(),
        (true, false) => key,
        (false, true) => description,
        (false, false) if description == key => key,
        (false, false) => format!("{description} ({key})"),
    }
}

/// What changed besides the lines: `only in <ref>`, `exit code 0 → 127`.
fn info_notes(d: &ImageDiff, info: &InfoDiff) -> Vec<String> {
    let mut notes = Vec::new();
    match (info.from_exit_code, info.to_exit_code) {
        (None, Some(code)) => {
            notes.push(format!("only in {}", collapse_whitespace(&d.to)));
            if code != 0 {
                notes.push(format!("exit code {code}"));
            }
        }
        (Some(code), None) => {
            notes.push(format!("only in {}", collapse_whitespace(&d.from)));
            if code != 0 {
                notes.push(format!("exit code {code}"));
            }
        }
        (Some(old), Some(new)) if old != new => {
            notes.push(format!("exit code {old} → {new}"));
        }
        _ => {}
    }
    notes
}

/// Renders a comparison for terminals: the sizes and growth, the layer
/// counts and each added or removed layer (size and cleaned, shortened
/// command), then the unified diff of every changed info command and a line
/// naming the unchanged ones.
pub fn diff_text(d: &ImageDiff) -> String {
    let mut out = format!(
        "{} → {}\n",
        collapse_whitespace(&d.from),
        collapse_whitespace(&d.to)
    );
    out.push_str(&format!("size: {}\n", size_change(d)));
    out.push_str(&format!("layers: {}\n", layer_counts(d)));
    let rows: Vec<(char, String, String)> = d
        .removed
        .iter()
        .map(|l| ('-', l))
        .chain(d.added.iter().map(|l| ('+', l)))
        .map(|(sign, l)| {
            let command = truncate_chars(&clean_command(&l.created_by), COMMAND_MAX_CHARS);
            (sign, format_size(l.size), command)
        })
        .collect();
    let width = rows
        .iter()
        .map(|(_, size, _)| size.chars().count())
        .max()
        .unwrap_or(0);
    for (sign, size, command) in &rows {
        let line = format!("  {sign} {size:<width$}  {command}");
        out.push_str(line.trim_end());
        out.push('\n');
    }

    let mut unchanged = Vec::new();
    for info in &d.info {
        if !info.changed() {
            unchanged.push(info_title(info));
            continue;
        }
        let mut notes = vec![format!(
            "+{} -{} lines",
            info.lines_added, info.lines_removed
        )];
        notes.extend(info_notes(d, info));
        out.push_str(&format!("\n{}: {}\n", info_title(info), notes.join(", ")));
        out.push_str(&info.unified);
        if !info.unified.is_empty() && !info.unified.ends_with('\n') {
            out.push('\n');
        }
    }
    if !unchanged.is_empty() {
        out.push_str(&format!("\nunchanged: {}\n", unchanged.join(", ")));
    }
    if let Some(p) = &d.packages {
        out.push_str(&format!("\npackages: {}\n", package_counts(p)));
        for (sign, p, version) in p
            .removed
            .iter()
            .map(|p| ('-', p, p.version.clone()))
            .chain(p.added.iter().map(|p| ('+', p, p.version.clone())))
            .chain(
                p.changed
                    .iter()
                    .map(|(a, b)| ('~', b, format!("{} → {}", a.version, b.version))),
            )
        {
            let line = format!(
                "  {sign} {} {} {}",
                p.ecosystem.purl_type(),
                collapse_whitespace(&p.name),
                collapse_whitespace(&version)
            );
            out.push_str(&line);
            out.push('\n');
        }
    }
    out
}

/// `2 added, 1 removed, 3 changed`, or `unchanged`.
fn package_counts(p: &strata_sbom::diff::PackageDiff) -> String {
    if p.is_empty() {
        "unchanged".to_string()
    } else {
        format!(
            "{} added, {} removed, {} changed",
            p.added.len(),
            p.removed.len(),
            p.changed.len()
        )
    }
}

/// Renders a comparison as a Markdown section for a manifest:
/// `## Changes since <from>`, a facts list (size and growth, layer counts),
/// a table of removed and added layers, one `###` section per changed info
/// command with its unified diff in a ```` ```diff ```` fence (longer when the
/// diff holds backticks; folded in `<details>` past [`FOLD_LINES`] lines), and
/// a line naming the unchanged info commands.
pub fn diff_markdown(d: &ImageDiff) -> String {
    let mut out = format!("## Changes since {}\n\n", escape_inline(&d.from));
    if d.unchanged() {
        out.push_str("No changes: same size, same layers and the same info output.\n\n");
        return out;
    }
    let reference = |r: &str| code_span(&collapse_whitespace(r));
    out.push_str(&format!(
        "- **From:** {}\n- **To:** {}\n",
        reference(&d.from),
        reference(&d.to)
    ));
    out.push_str(&format!("- **Size:** {}\n", size_change(d)));
    out.push_str(&format!("- **Layers:** {}\n\n", layer_counts(d)));

    if !d.removed.is_empty() || !d.added.is_empty() {
        out.push_str("| | Command | Size |\n|---|---|--:|\n");
        let rows = d
            .removed
            .iter()
            .map(|l| ("removed", l))
            .chain(d.added.iter().map(|l| ("added", l)));
        for (change, layer) in rows {
            let command = truncate_chars(&clean_command(&layer.created_by), COMMAND_MAX_CHARS);
            out.push_str(&format!(
                "| {change} | {} | {} |\n",
                code_span(&escape_cell(&command)),
                format_size(layer.size)
            ));
        }
        out.push('\n');
    }

    let mut unchanged = Vec::new();
    for info in &d.info {
        if !info.changed() {
            unchanged.push(escape_inline(&info_title(info)));
            continue;
        }
        out.push_str(&format!("### {}\n\n", escape_inline(&info_title(info))));
        let mut notes = vec![format!(
            "+{} −{} lines",
            info.lines_added, info.lines_removed
        )];
        notes.extend(info_notes(d, info).iter().map(|n| escape_inline(n)));
        out.push_str(&format!("{}\n\n", notes.join(" · ")));
        if info.unified.is_empty() {
            continue;
        }
        let body = info.unified.trim_end_matches('\n');
        push_code_block(&mut out, body, "diff", FOLD_LINES, "lines of diff");
    }
    if !unchanged.is_empty() {
        out.push_str(&format!("Unchanged: {}.\n\n", unchanged.join(", ")));
    }
    if let Some(p) = &d.packages {
        out.push_str(&format!("### Packages\n\n{}\n\n", package_counts(p)));
        if !p.is_empty() {
            out.push_str(&strata_sbom::diff::markdown(p));
            out.push('\n');
        }
    }
    out
}

#[cfg(test)]
mod tests;
