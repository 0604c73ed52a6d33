//! What changed between two builds' packages.

use crate::Package;
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// The packages added, removed and changed in version.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PackageDiff {
    /// In the new build only.
    pub added: Vec<Package>,
    /// In the old build only.
    pub removed: Vec<Package>,
    /// In both at another version: (old, new).
    pub changed: Vec<(Package, Package)>,
}

impl PackageDiff {
    /// Whether nothing changed.
    pub fn is_empty(&self) -> bool {
        self.added.is_empty() && self.removed.is_empty() && self.changed.is_empty()
    }
}

/// Compares `old` and `new` by ecosystem and name. A name held at one
/// version on each side that differs is changed; where a side holds it at
/// several versions (two Python environments), each version is added or
/// removed on its own.
pub fn diff(old: &[Package], new: &[Package]) -> PackageDiff {
    let group = |list: &[Package]| {
        let mut by_key: BTreeMap<(crate::Ecosystem, String), Vec<Package>> = BTreeMap::new();
        for p in list {
            by_key
                .entry((p.ecosystem, p.name.clone()))
                .or_default()
                .push(p.clone());
        }
        for versions in by_key.values_mut() {
            versions.sort_by(|a, b| a.version.cmp(&b.version));
            versions.dedup_by(|a, b| a.version == b.version);
        }
        by_key
    };
    let (old, new) = (group(old), group(new));
    let mut out = PackageDiff::default();
    for (key, before) in &old {
        match new.get(key) {
            None => out.removed.extend(before.iter().cloned()),
            Some(after) => match (before.as_slice(), after.as_slice()) {
                ([a], [b]) if a.version != b.version => out.changed.push((a.clone(), b.clone())),
                _ => {
                    let has = |list: &[Package], v: &str| list.iter().any(|p| p.version == v);
                    out.removed
                        .extend(before.iter().filter(|p| !has(after, &p.version)).cloned());
                    out.added
                        .extend(after.iter().filter(|p| !has(before, &p.version)).cloned());
                }
            },
        }
    }
    for (key, after) in &new {
        if !old.contains_key(key) {
            out.added.extend(after.iter().cloned());
        }
    }
    out
}

/// The diff as a Markdown section body: one table of every change, or a
/// line saying there is none.
pub fn markdown(diff: &PackageDiff) -> String {
    if diff.is_empty() {
        return "No package was added, removed or changed.\n".to_string();
    }
    let mut out = String::from("| change | type | package | old | new |\n|---|---|---|---|---|\n");
    let kind = |p: &Package| p.ecosystem.purl_type();
    for p in &diff.added {
        let _ = writeln!(
            out,
            "| added | {} | {} | | {} |",
            kind(p),
            cell(&p.name),
            cell(&p.version)
        );
    }
    for p in &diff.removed {
        let _ = writeln!(
            out,
            "| removed | {} | {} | {} | |",
            kind(p),
            cell(&p.name),
            cell(&p.version)
        );
    }
    for (a, b) in &diff.changed {
        let _ = writeln!(
            out,
            "| changed | {} | {} | {} | {} |",
            kind(a),
            cell(&a.name),
            cell(&a.version),
            cell(&b.version)
        );
    }
    out
}

fn cell(text: &str) -> String {
    text.replace('|', "\\|").replace('\n', " ")
}

/// The packages as a plain table (`strata sbom --format table`).
pub fn table(packages: &[Package]) -> String {
    let mut rows = vec![[
        "TYPE".to_string(),
        "NAME".to_string(),
        "VERSION".to_string(),
        "LICENSE".to_string(),
        "LAYER".to_string(),
    ]];
    for p in packages {
        rows.push([
            p.ecosystem.purl_type().to_string(),
            p.name.clone(),
            p.version.clone(),
            p.license.clone().unwrap_or_default().replace('\n', " "),
            p.layer
                .as_deref()
                .map(|l| l.trim_start_matches("sha256:").chars().take(12).collect())
                .unwrap_or_default(),
        ]);
    }
    let widths: Vec<usize> = (0..5)
        .map(|i| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for row in rows {
        let line: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(cell, w)| format!("{cell:<w$}"))
            .collect();
        let _ = writeln!(out, "{}", line.join("  ").trim_end());
    }
    out
}
