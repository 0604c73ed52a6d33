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
    // Names, versions and licenses come from the image's databases or a
    // registry's SBOM: on a terminal, a control character in one could
    // move the cursor or rewrite the screen.
    let cell = strata_core::text::collapse_whitespace;
    for p in packages {
        rows.push([
            p.ecosystem.purl_type().to_string(),
            cell(&p.name),
            cell(&p.version),
            cell(p.license.as_deref().unwrap_or_default()),
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Ecosystem;

    /// A package's own text reaches the terminal without its control
    /// characters: an escape sequence in a name clears no screen.
    #[test]
    fn a_table_prints_no_control_character_of_a_package() {
        let package = Package {
            ecosystem: Ecosystem::Deb,
            name: "evil\u{1b}[2J\u{1b}]0;pwned\u{7}".into(),
            version: "1\r2".into(),
            purl: "pkg:deb/debian/evil@1".into(),
            license: Some("MIT\nor not".into()),
            layer: None,
        };
        let printed = table(&[package]);
        assert!(
            !printed.chars().any(|c| c.is_control() && c != '\n'),
            "{printed:?}"
        );
        assert!(printed.contains("evil[2J]0;pwned"), "{printed}");
        assert!(printed.contains("MIT or not"), "{printed}");
        assert_eq!(printed.lines().count(), 2, "{printed}");
    }
}
