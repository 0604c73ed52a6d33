//! The package databases of each package manager, read into packages.
//!
//! Every reader takes one file's bytes and never fails: a file it cannot
//! read lists no package (an image's odd file must not stop its build).

use crate::{Ecosystem, Package};
use packageurl::PackageUrl;

/// Which database a path of an image's file system is, if any.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Database {
    /// `/etc/os-release` or `/usr/lib/os-release`: names the distribution
    /// of deb and apk purls.
    OsRelease,
    /// dpkg's status file, or one file of `status.d/` (distroless).
    Dpkg,
    /// apk's installed database.
    Apk,
    /// A Python distribution's `METADATA` or `PKG-INFO`.
    Python,
    /// A conda environment's `conda-meta/<package>.json`.
    Conda,
    /// An R package's `DESCRIPTION`.
    R,
    /// A global npm package's `package.json`.
    Npm,
}

impl Database {
    /// The database `path` (relative to the image's root, no leading `/`)
    /// is, if any.
    pub(crate) fn of(path: &str) -> Option<Database> {
        let path = path.trim_start_matches("./");
        if path == "etc/os-release" || path == "usr/lib/os-release" {
            return Some(Database::OsRelease);
        }
        if path == "var/lib/dpkg/status" {
            return Some(Database::Dpkg);
        }
        if let Some(name) = path.strip_prefix("var/lib/dpkg/status.d/") {
            // status.d holds `<pkg>` and `<pkg>.md5sums`.
            return (!name.contains('/') && !name.ends_with(".md5sums")).then_some(Database::Dpkg);
        }
        if path == "lib/apk/db/installed" {
            return Some(Database::Apk);
        }
        let parts: Vec<&str> = path.split('/').collect();
        let n = parts.len();
        let parent = |back: usize| n.checked_sub(back).and_then(|i| parts.get(i)).copied();
        let file = parent(1)?;
        match file {
            "METADATA" | "PKG-INFO"
                if parent(2)
                    .is_some_and(|d| d.ends_with(".dist-info") || d.ends_with(".egg-info"))
                    && parent(3).is_some_and(|d| d == "site-packages" || d == "dist-packages") =>
            {
                Some(Database::Python)
            }
            // An egg-info that is one file, as distutils wrote them.
            f if f.ends_with(".egg-info")
                && parent(2).is_some_and(|d| d == "site-packages" || d == "dist-packages") =>
            {
                Some(Database::Python)
            }
            f if f.ends_with(".json") && parent(2) == Some("conda-meta") => Some(Database::Conda),
            "DESCRIPTION" if parent(3).is_some_and(|d| d == "library" || d == "site-library") => {
                Some(Database::R)
            }
            "package.json" => {
                // lib/node_modules/<name>/package.json or
                // lib/node_modules/@scope/<name>/package.json: globals only,
                // not the dependencies each one bundles.
                let scoped = parent(3).is_some_and(|s| s.starts_with('@'));
                let modules = if scoped { parent(4) } else { parent(3) };
                let lib = if scoped { parent(5) } else { parent(4) };
                (modules == Some("node_modules") && lib == Some("lib")).then_some(Database::Npm)
            }
            _ => None,
        }
    }
}

/// The distribution an os-release file names (`ID=`), lowercased.
pub(crate) fn distribution(os_release: &[u8]) -> Option<String> {
    String::from_utf8_lossy(os_release)
        .lines()
        .find_map(|line| {
            let id = line
                .strip_prefix("ID=")?
                .trim()
                .trim_matches('"')
                .trim_matches('\'');
            (!id.is_empty()).then(|| id.to_ascii_lowercase())
        })
}

/// The packages one database file lists. `distro` names deb and apk purls'
/// namespace (`debian` when unknown for dpkg, `alpine` for apk).
pub(crate) fn read(db: Database, bytes: &[u8], distro: Option<&str>) -> Vec<Package> {
    let text = String::from_utf8_lossy(bytes);
    match db {
        Database::OsRelease => Vec::new(),
        Database::Dpkg => stanzas(&text)
            .filter(|s| field(s, "Status").is_none_or(|st| st.ends_with(" installed")))
            .filter_map(|s| {
                let arch = field(&s, "Architecture");
                package(
                    Ecosystem::Deb,
                    field(&s, "Package"),
                    field(&s, "Version"),
                    None,
                    |p| {
                        p.with_namespace(distro.unwrap_or("debian").to_string())?;
                        if let Some(arch) = &arch {
                            p.add_qualifier("arch", arch.clone())?;
                        }
                        Ok(())
                    },
                )
            })
            .collect(),
        Database::Apk => text
            .split("\n\n")
            .filter_map(|block| {
                let value = |key: &str| {
                    block
                        .lines()
                        .find_map(|l| l.strip_prefix(key).map(str::to_string))
                };
                let arch = value("A:");
                package(Ecosystem::Apk, value("P:"), value("V:"), value("L:"), |p| {
                    p.with_namespace(distro.unwrap_or("alpine").to_string())?;
                    if let Some(arch) = &arch {
                        p.add_qualifier("arch", arch.clone())?;
                    }
                    Ok(())
                })
            })
            .collect(),
        Database::Python => {
            // The headers end at the first blank line; the body is the
            // description.
            let headers = text.split("\n\n").next().unwrap_or_default();
            let s = fields(headers);
            let license = field(&s, "License-Expression").or_else(|| {
                field(&s, "License").filter(|l| {
                    !l.is_empty() && !l.contains('\n') && l.len() <= 100 && l != "UNKNOWN"
                })
            });
            package(
                Ecosystem::Pypi,
                field(&s, "Name").map(|n| python_name(&n)),
                field(&s, "Version"),
                license,
                |_| Ok(()),
            )
            .into_iter()
            .collect()
        }
        Database::Conda => {
            let Ok(meta) = serde_json::from_slice::<serde_json::Value>(bytes) else {
                return Vec::new();
            };
            let text = |key: &str| meta.get(key).and_then(|v| v.as_str()).map(str::to_string);
            let build = text("build");
            package(
                Ecosystem::Conda,
                text("name"),
                text("version"),
                text("license"),
                |p| {
                    if let Some(build) = &build {
                        p.add_qualifier("build", build.clone())?;
                    }
                    Ok(())
                },
            )
            .into_iter()
            .collect()
        }
        Database::R => {
            let s = fields(&text);
            package(
                Ecosystem::Cran,
                field(&s, "Package"),
                field(&s, "Version"),
                field(&s, "License"),
                |_| Ok(()),
            )
            .into_iter()
            .collect()
        }
        Database::Npm => {
            let Ok(meta) = serde_json::from_slice::<serde_json::Value>(bytes) else {
                return Vec::new();
            };
            let name = meta
                .get("name")
                .and_then(|v| v.as_str())
                .unwrap_or_default();
            let version = meta
                .get("version")
                .and_then(|v| v.as_str())
                .map(str::to_string);
            let license = match meta.get("license") {
                Some(serde_json::Value::String(l)) => Some(l.clone()),
                Some(v) => v.get("type").and_then(|t| t.as_str()).map(str::to_string),
                None => None,
            };
            let (scope, bare) = match name.split_once('/') {
                Some((scope, bare)) if scope.starts_with('@') => (Some(scope), bare),
                _ => (None, name),
            };
            // The purl names the bare name under its scope; the package
            // keeps npm's own name.
            package(
                Ecosystem::Npm,
                Some(bare.to_string()),
                version,
                license,
                |u| {
                    if let Some(scope) = scope {
                        u.with_namespace(scope.to_string())?;
                    }
                    Ok(())
                },
            )
            .map(|p| Package {
                name: name.to_string(),
                ..p
            })
            .into_iter()
            .collect()
        }
    }
}

/// PEP 503's normal form of a distribution's name, as pip lists it
/// lowercased: runs of `-`, `_` and `.` become one `-`.
fn python_name(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for c in name.trim().chars() {
        if matches!(c, '-' | '_' | '.') {
            if !out.ends_with('-') {
                out.push('-');
            }
        } else {
            out.push(c.to_ascii_lowercase());
        }
    }
    out
}

type Qualify<'a> = dyn Fn(&mut PackageUrl<'_>) -> Result<(), packageurl::Error> + 'a;

fn purl(ecosystem: Ecosystem, name: &str, version: &str, qualify: &Qualify<'_>) -> Option<String> {
    let mut url = PackageUrl::new(ecosystem.purl_type(), name.to_string()).ok()?;
    url.with_version(version.to_string()).ok()?;
    qualify(&mut url).ok()?;
    Some(url.to_string())
}

/// A package, if it has a name and a version, neither empty, and its purl
/// can be written.
fn package(
    ecosystem: Ecosystem,
    name: Option<String>,
    version: Option<String>,
    license: Option<String>,
    qualify: impl Fn(&mut PackageUrl<'_>) -> Result<(), packageurl::Error>,
) -> Option<Package> {
    let (name, version) = (name?.trim().to_string(), version?.trim().to_string());
    if name.is_empty() || version.is_empty() {
        return None;
    }
    let purl = purl(ecosystem, &name, &version, &qualify)?;
    Some(Package {
        ecosystem,
        name,
        version,
        purl,
        license: license
            .map(|l| l.trim().to_string())
            .filter(|l| !l.is_empty()),
        layer: None,
    })
}

/// The stanzas of a Debian control file (dpkg's status): blank-line
/// separated groups of fields.
fn stanzas(text: &str) -> impl Iterator<Item = Vec<(String, String)>> + '_ {
    text.split("\n\n").map(fields).filter(|s| !s.is_empty())
}

/// The `Key: value` fields of one stanza (RFC 822 style, as dpkg, Python's
/// core metadata and R's DESCRIPTION write them); continuation lines, which
/// start with a space or tab, join the field before them.
fn fields(stanza: &str) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    for line in stanza.lines() {
        if line.starts_with([' ', '\t']) {
            if let Some((_, value)) = out.last_mut() {
                value.push('\n');
                value.push_str(line.trim());
            }
        } else if let Some((key, value)) = line.split_once(':') {
            out.push((key.trim().to_string(), value.trim().to_string()));
        }
    }
    out
}

fn field(fields: &[(String, String)], key: &str) -> Option<String> {
    fields
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(key))
        .map(|(_, v)| v.clone())
}

#[cfg(test)]
mod tests;
