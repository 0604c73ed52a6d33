//! What strata needs to know of an image's Dockerfile: which global `ARG`
//! its base image reference is made of, so a child can be pointed at the
//! parent build it belongs to.

use std::collections::BTreeMap;

/// The build arg a child gets for its base when its Dockerfile declares no
/// other: the seed layout's convention.
pub const DEFAULT_BASE_ARG: &str = "BASE_TAG";

/// Which part of the base reference a build arg stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ArgRole {
    /// `FROM org/parent:${BASE_TAG}`: the arg is the tag.
    Tag,
    /// `FROM ${BASE_IMAGE}`: the arg is the whole reference.
    Whole,
}

/// The base of a Dockerfile: its `FROM` line and the arg that makes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DockerfileBase {
    /// The image reference of the `FROM` line, as written.
    pub from: String,
    /// The line of that `FROM`, 1-based.
    pub line: usize,
    /// The global `ARG` the reference uses, and the part it stands for.
    pub arg: Option<(String, ArgRole)>,
    /// Global args (declared before the first `FROM`) and their defaults.
    pub global_args: BTreeMap<String, Option<String>>,
    /// The image reference the final stage starts from, as written, found
    /// through stage names (`FROM build AS final` is built on whatever
    /// `build` is): the image the built image's layers begin with. `None`
    /// when that chain names no image.
    pub final_from: Option<String>,
}

/// Reads the base of a Dockerfile: the first `FROM` whose reference uses a
/// global `ARG`, or else the first `FROM`. `None` when there is no `FROM`.
pub fn base_of(text: &str) -> Option<DockerfileBase> {
    let mut global_args = BTreeMap::new();
    let mut froms: Vec<(usize, String)> = Vec::new();
    // Each stage's name (lower-cased, as the builder compares them) and the
    // reference it starts from.
    let mut stages: Vec<(Option<String>, String)> = Vec::new();
    for (line, instruction) in instructions(text) {
        let mut words = instruction.split_whitespace();
        let Some(keyword) = words.next() else {
            continue;
        };
        if keyword.eq_ignore_ascii_case("ARG") && froms.is_empty() {
            for decl in words {
                let (name, default) = match decl.split_once('=') {
                    Some((n, d)) => (n, Some(d.trim_matches(['"', '\'']).to_string())),
                    None => (decl, None),
                };
                global_args.insert(name.to_string(), default);
            }
        } else if keyword.eq_ignore_ascii_case("FROM") {
            if let Some(image) = words.find(|w| !w.starts_with("--")) {
                froms.push((line, image.to_string()));
                let name = match (words.next(), words.next()) {
                    (Some(as_), Some(name)) if as_.eq_ignore_ascii_case("AS") => {
                        Some(name.to_ascii_lowercase())
                    }
                    _ => None,
                };
                stages.push((name, image.to_string()));
            }
        }
    }
    let with_arg = froms
        .iter()
        .find_map(|(line, from)| arg_in(from, &global_args).map(|arg| (*line, from, Some(arg))));
    let (line, from, arg) = with_arg.or_else(|| froms.first().map(|(l, f)| (*l, f, None)))?;
    Some(DockerfileBase {
        from: from.clone(),
        line,
        arg,
        global_args,
        final_from: final_from(&stages),
    })
}

/// The reference the last stage starts from, following stage names back
/// to an image. A stage can only name one before it, so each step goes
/// back and the walk ends.
fn final_from(stages: &[(Option<String>, String)]) -> Option<String> {
    let mut index = stages.len().checked_sub(1)?;
    loop {
        let reference = stages[index].1.to_ascii_lowercase();
        match stages[..index]
            .iter()
            .rposition(|(name, _)| name.as_deref() == Some(reference.as_str()))
        {
            Some(earlier) => index = earlier,
            None => return Some(stages[index].1.clone()),
        }
    }
}

impl DockerfileBase {
    /// The image a root is built on, outside the stack: its final stage's
    /// `FROM` reference with every `$ARG` replaced by `args` (the build's)
    /// or the arg's default. `None` for `FROM scratch` and for a reference
    /// an arg leaves undecided: nothing outside is then resolved or
    /// recorded. A builder stage's image is not the base: the built image's
    /// layers do not begin with it.
    pub fn external(&self, args: &BTreeMap<String, String>) -> Option<String> {
        let mut reference = self.final_from.clone()?;
        // Each pass replaces the first variable; the bound keeps a value
        // naming itself (`A=$A`) from looping: it stays undecided.
        for _ in 0..16 {
            let Some((name, start, end)) = first_variable(&reference) else {
                break;
            };
            let fallback = reference[start..end]
                .split_once(":-")
                .map(|(_, d)| d.trim_end_matches('}').to_string());
            let value = args
                .get(name)
                .cloned()
                .or_else(|| self.global_args.get(name).cloned().flatten())
                // `${X:-d}` takes `d` when X is empty too, as the builder does.
                .filter(|v| fallback.is_none() || !v.is_empty())
                .or(fallback)?;
            reference.replace_range(start..end, &value);
        }
        let undecided = reference.contains('$') || reference.is_empty();
        (!undecided && !reference.eq_ignore_ascii_case("scratch")).then_some(reference)
    }
}

/// The global arg used in `reference`, and whether it is the tag or all of it.
fn arg_in(reference: &str, args: &BTreeMap<String, Option<String>>) -> Option<(String, ArgRole)> {
    let (name, start, end) = first_variable(reference)?;
    if !args.contains_key(name) {
        return None;
    }
    let role = if start == 0 && end == reference.len() {
        ArgRole::Whole
    } else if reference[..start].ends_with(':') && !reference[..start].ends_with("://") {
        ArgRole::Tag
    } else {
        // The arg is part of the repository path; strata cannot point it at
        // a parent build, so the base is treated as fixed.
        return None;
    };
    Some((name.to_string(), role))
}

/// The first `$NAME` or `${NAME...}` in `s`: its name and byte range.
fn first_variable(s: &str) -> Option<(&str, usize, usize)> {
    let start = s.find('$')?;
    let rest = &s[start + 1..];
    if let Some(inner) = rest.strip_prefix('{') {
        let close = inner.find('}')?;
        let body = &inner[..close];
        let name_end = body
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(body.len());
        Some((&body[..name_end], start, start + 2 + close + 1))
    } else {
        let len = rest
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(rest.len());
        (len > 0).then(|| (&rest[..len], start, start + 1 + len))
    }
}

/// Logical instructions with the line each starts on: comments and blank
/// lines dropped, backslash continuations joined.
fn instructions(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut current: Option<(usize, String)> = None;
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.starts_with('#') || (line.is_empty() && current.is_none()) {
            continue;
        }
        let (body, continues) = match line.strip_suffix('\\') {
            Some(b) => (b, true),
            None => (line, false),
        };
        let entry = current.get_or_insert_with(|| (i + 1, String::new()));
        entry.1.push_str(body);
        entry.1.push(' ');
        if !continues {
            out.extend(current.take());
        }
    }
    out.extend(current);
    out
}

/// Warnings about a Dockerfile's base that make a build surprising: a
/// child whose `FROM` names a fixed image or another repository than its
/// parent's, and a root whose `FROM` uses the base arg. `file` names the
/// Dockerfile in the diagnostics.
pub fn base_warnings(
    spec: &crate::spec::Spec,
    image: &crate::spec::ImageSpec,
    base: &DockerfileBase,
    file: &str,
) -> Vec<crate::diag::Diagnostic> {
    let pos = Some(crate::diag::Pos {
        line: base.line,
        column: 1,
    });
    let mut out = Vec::new();
    if let Some(parent) = image.parent().and_then(|p| spec.image(p)) {
        if base.arg.is_none() {
            out.push(
                crate::diag::Diagnostic::warning(file, pos, format!("'{}' depends on '{}', but its FROM line names a fixed image ({})", image.name(), parent.name(), base.from))
                    .with_help("write FROM <parent image>:${BASE_TAG} with `ARG BASE_TAG` above it, so the child is built on the parent of the same run"),
            );
        } else if let (Some(name), Some((_, ArgRole::Tag))) = (&parent.image_name, &base.arg) {
            let repo = base
                .from
                .rsplit_once(':')
                .map_or(base.from.as_str(), |(r, _)| r);
            if repo != name.value {
                out.push(
                    crate::diag::Diagnostic::warning(
                        file,
                        pos,
                        format!(
                            "'{}' depends on '{}' ({}), but its FROM line names {repo}",
                            image.name(),
                            parent.name(),
                            name.value
                        ),
                    )
                    .with_help(format!(
                        "use FROM {}:${{...}} so the child is built on its parent",
                        name.value
                    )),
                );
            }
        }
    } else if image.parent().is_none()
        && base
            .arg
            .as_ref()
            .is_some_and(|(a, _)| a == DEFAULT_BASE_ARG)
    {
        out.push(crate::diag::Diagnostic::warning(file, pos, format!("'{}' has no depend_on, but its FROM line uses BASE_TAG", image.name()))
            .with_help("add depend_on: <parent> to its spec entry if it is built on another image of the stack"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_warnings_name_fixed_foreign_and_parentless_bases() {
        let spec = crate::spec::parse(
            "images:\n  root: {image_name: o/root}\n  kid: {image_name: o/kid, depend_on: root}\n",
            "spec.yml",
        )
        .spec
        .unwrap();
        let warn = |key: &str, dockerfile: &str| -> Vec<String> {
            let image = spec.image(key).unwrap();
            let base = base_of(dockerfile).unwrap();
            base_warnings(&spec, image, &base, "Dockerfile")
                .iter()
                .map(|d| d.message.clone())
                .collect()
        };
        assert!(warn("kid", "ARG BASE_TAG\nFROM o/root:${BASE_TAG}\n").is_empty());
        assert!(warn("root", "FROM busybox\n").is_empty());
        assert_eq!(
            warn("kid", "FROM o/root:1.0\n"),
            ["'kid' depends on 'root', but its FROM line names a fixed image (o/root:1.0)"]
        );
        assert_eq!(
            warn("kid", "ARG BASE_TAG\nFROM other/root:${BASE_TAG}\n"),
            ["'kid' depends on 'root' (o/root), but its FROM line names other/root"]
        );
        assert_eq!(
            warn("root", "ARG BASE_TAG\nFROM o/base:${BASE_TAG}\n"),
            ["'root' has no depend_on, but its FROM line uses BASE_TAG"]
        );
    }

    #[test]
    fn finds_the_tag_arg_of_the_seed_layout() {
        let b = base_of(
            "ARG BASE_TAG=latest\nFROM ghcr.io/ucsd-ets/datascience-notebook:${BASE_TAG}\nRUN x\n",
        )
        .unwrap();
        assert_eq!(b.arg, Some(("BASE_TAG".into(), ArgRole::Tag)));
        assert_eq!(b.line, 2);
        assert_eq!(b.global_args["BASE_TAG"].as_deref(), Some("latest"));
    }

    #[test]
    fn other_arg_names_whole_refs_and_flags() {
        let b = base_of("# syntax=docker/dockerfile:1\narg PARENT_TAG\nfrom --platform=$BUILDPLATFORM org/p:$PARENT_TAG AS build\n").unwrap();
        assert_eq!(b.arg, Some(("PARENT_TAG".into(), ArgRole::Tag)));
        let b = base_of("ARG BASE_IMAGE=org/p:1\nFROM ${BASE_IMAGE}\n").unwrap();
        assert_eq!(b.arg, Some(("BASE_IMAGE".into(), ArgRole::Whole)));
    }

    #[test]
    fn fixed_bases_and_undeclared_args_have_no_arg() {
        assert_eq!(base_of("FROM scratch\n").unwrap().arg, None);
        assert_eq!(base_of("FROM org/p:${NOT_DECLARED}\n").unwrap().arg, None);
        assert_eq!(base_of("ARG REG\nFROM ${REG}/org/p:1\n").unwrap().arg, None);
        assert_eq!(base_of("RUN x\n"), None);
    }

    #[test]
    fn continuations_and_multi_stage() {
        let text =
            "ARG A=1 B\nFROM busybox \\\n  AS tools\nFROM org/p:${B}\nCOPY --from=tools /x /x\n";
        let b = base_of(text).unwrap();
        assert_eq!(b.from, "org/p:${B}");
        assert_eq!(b.line, 4);
        assert_eq!(b.arg, Some(("B".into(), ArgRole::Tag)));
    }

    #[test]
    fn a_roots_external_base_is_its_from_with_args_replaced() {
        let none = BTreeMap::new();
        let ext = |text: &str, args: &BTreeMap<String, String>| base_of(text)?.external(args);
        assert_eq!(
            ext("FROM ubuntu:24.04\n", &none).as_deref(),
            Some("ubuntu:24.04")
        );
        assert_eq!(ext("FROM scratch\n", &none), None);
        assert_eq!(ext("FROM SCRATCH AS x\n", &none), None);
        let text = "ARG REG=127.0.0.1:5000\nARG TAG\nFROM ${REG}/base:${TAG:-1}\n";
        assert_eq!(ext(text, &none).as_deref(), Some("127.0.0.1:5000/base:1"));
        let args = BTreeMap::from([("TAG".to_string(), "2".to_string())]);
        assert_eq!(ext(text, &args).as_deref(), Some("127.0.0.1:5000/base:2"));
        // An empty value gives way to the default, as in the builder.
        let text = "ARG TAG=\nFROM base:${TAG:-1}\n";
        assert_eq!(ext(text, &none).as_deref(), Some("base:1"));
        let empty = BTreeMap::from([("TAG".to_string(), String::new())]);
        assert_eq!(ext(text, &empty).as_deref(), Some("base:1"));
        // An arg with no value, or one naming itself, leaves it undecided.
        assert_eq!(ext("ARG IMG\nFROM $IMG\n", &none), None);
        let looping = BTreeMap::from([("IMG".to_string(), "$IMG".to_string())]);
        assert_eq!(ext("ARG IMG\nFROM $IMG\n", &looping), None);
    }

    #[test]
    fn a_multi_stage_roots_base_is_what_its_final_stage_starts_from() {
        let none = BTreeMap::new();
        let ext = |text: &str| base_of(text)?.external(&none);
        // A builder stage first, even one made of an arg, is not the base.
        let text = "ARG GO=1.22\nFROM golang:${GO} AS build\nRUN make\nFROM debian:12\nCOPY --from=build /app /app\n";
        assert_eq!(ext(text).as_deref(), Some("debian:12"));
        // Stage names are followed back, compared as the builder does.
        let text = "FROM alpine:3 AS Base\nFROM golang AS build\nFROM base AS final\nFROM FINAL\n";
        assert_eq!(ext(text).as_deref(), Some("alpine:3"));
        // A final stage on scratch has no base outside, whatever came before.
        assert_eq!(ext("FROM golang AS build\nFROM scratch\n"), None);
        // An image that happens to share a later stage's name is an image.
        let text = "FROM tools:1\nFROM tools AS tools\n";
        assert_eq!(ext(text).as_deref(), Some("tools"));
    }
}
