//! What strata needs to know of an image's Dockerfile: which global `ARG`
//! its base image reference is made of, so a child can be pointed at the
//! parent build it belongs to.

use std::collections::BTreeMap;

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
}

/// Reads the base of a Dockerfile: the first `FROM` whose reference uses a
/// global `ARG`, or else the first `FROM`. `None` when there is no `FROM`.
pub fn base_of(text: &str) -> Option<DockerfileBase> {
    let mut global_args = BTreeMap::new();
    let mut froms: Vec<(usize, String)> = Vec::new();
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
    })
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
