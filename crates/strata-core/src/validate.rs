//! Cross-entry rules of a spec: everything [`crate::spec::parse`] cannot see
//! from one entry alone. Every problem is reported, not just the first.

use crate::diag::{Diagnostic, closest};
use crate::graph::{Graph, GraphError};
use crate::reference::{ImageName, Tag};
use crate::spec::{ImageSpec, Spec};
use std::collections::BTreeMap;

/// Whether `key` can name a folder under `images/`: one plain path
/// component, nothing that climbs out or hides.
pub fn is_plain_folder_name(key: &str) -> bool {
    let mut chars = key.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

/// Every cross-entry problem in `spec`.
pub fn validate(spec: &Spec) -> Vec<Diagnostic> {
    let file = spec.file.as_str();
    let mut out = Vec::new();
    if spec.images.is_empty() {
        out.push(
            Diagnostic::error(file, None, "the spec lists no images")
                .with_help("add an entry per image folder under `images:`"),
        );
    }
    let keys: Vec<&str> = spec.image_keys().collect();
    let plans: Vec<&str> = spec.plans.iter().map(|p| p.name.value.as_str()).collect();
    let mut pushed_to: BTreeMap<String, &str> = BTreeMap::new();
    for image in &spec.images {
        check_names(spec, image, &mut pushed_to, &mut out);
        check_platforms(spec, image, &mut out);
        check_references(spec, image, &keys, &mut out);
        check_plans_of(spec, image, &plans, &mut out);
    }
    check_plans(spec, &mut out);
    check_roots(spec, &keys, &mut out);
    check_cycles(spec, &mut out);
    out.sort_by_key(|d| (d.pos, d.severity));
    out
}

/// An image's key is a folder name, and its image name a repository no
/// other image pushes to.
fn check_names<'s>(
    spec: &'s Spec,
    image: &'s ImageSpec,
    pushed_to: &mut BTreeMap<String, &'s str>,
    out: &mut Vec<Diagnostic>,
) {
    let file = spec.file.as_str();
    let key = image.name();
    if !is_plain_folder_name(key) {
        out.push(
            Diagnostic::error(file, Some(image.key.pos), format!("image key '{key}' is not a plain folder name"))
                .with_help("an image key names its folder under images/: use letters, digits, '.', '_' and '-', starting with a letter or digit"),
        );
    }
    if let Some(name) = &image.image_name {
        match name.value.parse::<ImageName>() {
            Ok(parsed) => {
                if let Some(other) = pushed_to.insert(parsed.to_string(), key) {
                    out.push(Diagnostic::error(
                        file,
                        Some(name.pos),
                        format!("images '{other}' and '{key}' both push to '{}'; their tags would overwrite each other", name.value),
                    ));
                }
            }
            Err(e) => out.push(
                Diagnostic::error(
                    file,
                    Some(name.pos),
                    format!(
                        "image_name '{}' of image '{key}' is not a valid image reference: {e}",
                        name.value
                    ),
                )
                .with_help("write a repository without tag, e.g. ghcr.io/org/name"),
            ),
        }
    }
}

/// Every platform parses, and a child's are among its parent's.
fn check_platforms(spec: &Spec, image: &ImageSpec, out: &mut Vec<Diagnostic>) {
    let file = spec.file.as_str();
    let key = image.name();
    for p in spec.platforms.iter().chain(&image.platforms) {
        if let Err(e) = p.value.parse::<crate::platform::Platform>() {
            out.push(Diagnostic::error(file, Some(p.pos), e.to_string()));
        }
    }
    // What held for the parent is built for every platform of the child.
    if let Some(parent) = image.parent().and_then(|p| spec.image(p)) {
        let theirs = crate::platform::declared(spec, parent);
        for p in &image.platforms {
            if !theirs.is_empty() && !theirs.contains(&p.value.as_str()) {
                out.push(
                    Diagnostic::error(
                        file,
                        Some(p.pos),
                        format!(
                            "image '{key}' is built for {}, which its parent '{}' is not built for",
                            p.value,
                            parent.name()
                        ),
                    )
                    .with_help(format!(
                        "a child's platforms must be among its parent's ({})",
                        theirs.join(", ")
                    )),
                );
            }
        }
    }
}

/// `depend_on` and `info_cmds` name what the spec has.
fn check_references(spec: &Spec, image: &ImageSpec, keys: &[&str], out: &mut Vec<Diagnostic>) {
    let file = spec.file.as_str();
    let key = image.name();
    if let Some(parent) = &image.depend_on {
        if !keys.contains(&parent.value.as_str()) {
            let mut d = Diagnostic::error(
                file,
                Some(parent.pos),
                format!(
                    "image '{key}' depends on '{}', which is not an image of this spec",
                    parent.value
                ),
            );
            d = match closest(&parent.value, keys.iter().copied()) {
                Some(near) => d.with_help(format!("did you mean '{near}'?")),
                None => d.with_help(format!(
                    "add '{}' under images:, or fix depend_on (images: {})",
                    parent.value,
                    keys.join(", ")
                )),
            };
            out.push(d);
        }
    }
    for cmd in &image.info_cmds {
        if !spec.info_cmds.contains_key(&cmd.value) {
            let mut d = Diagnostic::error(
                file,
                Some(cmd.pos),
                format!(
                    "image '{key}' names info command '{}', which is not defined",
                    cmd.value
                ),
            );
            d = match closest(&cmd.value, spec.info_cmds.keys().map(String::as_str)) {
                Some(near) => d.with_help(format!("did you mean '{near}'?")),
                None => {
                    d.with_help("define it under all_info_cmds: with a description and a command")
                }
            };
            out.push(d);
        }
    }
}

/// An image's plan entries name plans of the spec, it is built in one at
/// least, and only in plans its parent is built in.
fn check_plans_of(spec: &Spec, image: &ImageSpec, plans: &[&str], out: &mut Vec<Diagnostic>) {
    let file = spec.file.as_str();
    let key = image.name();
    for skip in &image.skip_plans {
        if !plans.contains(&skip.value.as_str()) {
            out.push(unknown_plan_warning(
                file,
                skip.pos,
                &skip.value,
                &format!("skip_plans of image '{key}'"),
                plans,
            ));
        }
    }
    for (plan, args) in &image.plan_args {
        if !plans.contains(&plan.as_str()) {
            out.push(unknown_plan_warning(
                file,
                args.pos,
                plan,
                &format!("dbuild_env of image '{key}'"),
                plans,
            ));
        }
    }
    if !spec.plans.is_empty() && spec.plans.iter().all(|p| !image.in_plan(&p.name.value)) {
        out.push(Diagnostic::warning(
            file,
            Some(image.key.pos),
            format!("image '{key}' skips every plan, so it is never built"),
        ));
    }
    if let Some(parent) = image.parent().and_then(|p| spec.image(p)) {
        for plan in plans {
            if image.in_plan(plan) && !parent.in_plan(plan) {
                out.push(
                    Diagnostic::error(file, Some(image.key.pos), format!("image '{key}' is built in plan {plan}, but its parent '{}' skips that plan", parent.name()))
                        .with_help(format!("add {plan} to the skip_plans of '{key}', or build '{}' in it", parent.name())),
                );
            }
        }
    }
}

/// Each plan's tag prefix and stable tag are valid tags.
fn check_plans(spec: &Spec, out: &mut Vec<Diagnostic>) {
    let file = spec.file.as_str();
    for plan in &spec.plans {
        let prefix = &plan.tag_prefix;
        if Tag::sanitize(&prefix.value).map(|t| t.as_str() == prefix.value) != Some(true)
            || prefix.value.len() > 100
        {
            out.push(
                Diagnostic::error(file, Some(prefix.pos), format!("tag prefix '{}' cannot start a valid tag", prefix.value))
                    .with_help("a tag is letters, digits, '_', '.' and '-', starts with a letter, digit or '_', and is at most 128 characters; e.g. 2024.1"),
            );
        } else if plan.stable_tag().parse::<Tag>().is_err() {
            out.push(Diagnostic::error(
                file,
                Some(plan.name.pos),
                format!(
                    "plan '{}' makes the stable tag '{}', which is not a valid tag",
                    plan.name.value,
                    plan.stable_tag()
                ),
            ));
        }
    }
}

/// `root` names one image of the spec, which has no parent.
fn check_roots(spec: &Spec, keys: &[&str], out: &mut Vec<Diagnostic>) {
    let file = spec.file.as_str();
    if spec.roots.len() > 1 {
        out.push(
            Diagnostic::error(
                file,
                Some(spec.roots[1].pos),
                "root names more than one image",
            )
            .with_help("name the one root image, or leave root out and let strata infer the roots"),
        );
    }
    for root in &spec.roots {
        match spec.image(&root.value) {
            None => {
                let mut d = Diagnostic::error(
                    file,
                    Some(root.pos),
                    format!("root '{}' is not an image of this spec", root.value),
                );
                if let Some(near) = closest(&root.value, keys.iter().copied()) {
                    d = d.with_help(format!("did you mean '{near}'?"));
                }
                out.push(d);
            }
            Some(image) if image.depend_on.is_some() => out.push(Diagnostic::error(
                file,
                Some(root.pos),
                format!(
                    "root '{}' depends on '{}'; a root has no parent",
                    root.value,
                    image.parent().unwrap_or_default()
                ),
            )),
            Some(_) => {}
        }
    }
}

/// No image depends on itself through its ancestors.
fn check_cycles(spec: &Spec, out: &mut Vec<Diagnostic>) {
    let file = spec.file.as_str();
    if let Err(errors) = Graph::new(spec) {
        for e in errors {
            if let GraphError::Cycle(cycle) = e {
                let pos = spec.image(&cycle[0]).map(|i| i.key.pos);
                out.push(
                    Diagnostic::error(file, pos, format!("images depend on each other in a cycle: {}", cycle.join(" → ")))
                        .with_help("each image is built FROM its parent, so one of these depend_on entries must go"),
                );
            }
        }
    }
}

fn unknown_plan_warning(
    file: &str,
    pos: crate::diag::Pos,
    plan: &str,
    what: &str,
    plans: &[&str],
) -> Diagnostic {
    let d = Diagnostic::warning(
        file,
        Some(pos),
        format!("{what} names plan '{plan}', which the spec does not declare; it has no effect"),
    );
    match closest(plan, plans.iter().copied()) {
        Some(near) => d.with_help(format!("did you mean '{near}'?")),
        None => d.with_help(format!("declared plans: {}", plans.join(", "))),
    }
}

/// The images whose folder has no Dockerfile; `has_dockerfile(key)` says
/// whether `images/<key>/Dockerfile` exists.
pub fn check_layout(
    spec: &Spec,
    images_dir: &str,
    has_dockerfile: impl Fn(&str) -> bool,
) -> Vec<Diagnostic> {
    spec.images
        .iter()
        .filter(|i| is_plain_folder_name(i.name()) && !has_dockerfile(i.name()))
        .map(|i| {
            Diagnostic::error(
                &spec.file,
                Some(i.key.pos),
                format!(
                    "image '{}' has no Dockerfile at {images_dir}/{}/Dockerfile",
                    i.name(),
                    i.name()
                ),
            )
            .with_help(
                "create the image's folder with a Dockerfile, or remove the image from the spec",
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec;

    fn problems(text: &str) -> Vec<Diagnostic> {
        let p = spec::parse(text, "spec.yml");
        let mut all = p.diagnostics.clone();
        all.extend(validate(&p.spec.expect("spec")));
        all
    }

    fn errors(text: &str) -> Vec<String> {
        problems(text)
            .into_iter()
            .filter(|d| d.is_error())
            .map(|d| d.to_string())
            .collect()
    }

    #[test]
    fn a_childs_platforms_are_among_its_parents() {
        let e = errors(
            "platforms: [linux/amd64]\nimages:\n  a: {image_name: o/a}\n  b: {image_name: o/b, depend_on: a, platforms: [linux/arm64]}\n  c: {image_name: o/c, platforms: [linux/amd64, 'linux']}\ntag: {prefix: '1'}\n",
        );
        assert_eq!(e.len(), 2, "{e:?}");
        assert!(
            e.iter().any(|m| m.contains(
                "image 'b' is built for linux/arm64, which its parent 'a' is not built for"
            )),
            "{e:?}"
        );
        assert!(
            e.iter().any(|m| m.contains("'linux' is not a platform")),
            "{e:?}"
        );
    }

    #[test]
    fn the_fixture_specs_are_valid() {
        for text in [
            include_str!("../../../fixtures/specs/v2-2026.spec.yml"),
            include_str!("../../../fixtures/specs/v2-2023.spec.yml"),
            include_str!("../../../fixtures/specs/v1-2022.spec.yml"),
            include_str!("../../../fixtures/specs/v1-two-plans.spec.yml"),
        ] {
            assert_eq!(errors(text), Vec::<String>::new());
        }
    }

    #[test]
    fn every_problem_is_reported_in_one_run() {
        let text = "\
root: nope
images:
  ../evil:
    image_name: x/evil
  a:
    image_name: Not/Valid
    info_cmds: [PY_VR]
  b:
    image_name: x/b
    depend_on: c
  c:
    image_name: x/c
    depend_on: b
  d:
    image_name: x/d
    depend_on: aa
tag:
  prefix: '-bad'
all_info_cmds:
  PY_VER: {description: Python, command: python --version}
";
        let errs = errors(text);
        let expect = [
            "spec.yml:1:7: error: root 'nope' is not an image",
            "spec.yml:3:3: error: image key '../evil' is not a plain folder name",
            "spec.yml:6:17: error: image_name 'Not/Valid' of image 'a' is not a valid image reference",
            "spec.yml:7:17: error: image 'a' names info command 'PY_VR'",
            "spec.yml:8:3: error: images depend on each other in a cycle: b → c → b",
            "spec.yml:16:16: error: image 'd' depends on 'aa'",
            "spec.yml:18:11: error: tag prefix '-bad' cannot start a valid tag",
        ];
        for e in expect {
            assert!(
                errs.iter().any(|x| x.starts_with(e)),
                "missing {e:?} in {errs:#?}"
            );
        }
        assert_eq!(errs.len(), expect.len(), "{errs:#?}");
        let all = problems(text);
        let help = |m: &str| {
            all.iter()
                .find(|d| d.message.contains(m))
                .and_then(|d| d.help.clone())
        };
        assert_eq!(help("PY_VR").as_deref(), Some("did you mean 'PY_VER'?"));
        assert_eq!(
            help("depends on 'aa'").as_deref(),
            Some("did you mean 'a'?")
        );
    }

    #[test]
    fn plans_are_cross_checked() {
        let text = "images:\n  a:\n    image_name: x/a\n    skip_plans: [P3]\n  b:\n    image_name: x/b\n    depend_on: a\n    skip_plans: [P2]\n  c:\n    image_name: x/c\n    depend_on: b\nplans:\n  P1: {tag_prefix: '1'}\n  P2: {tag_prefix: '2'}\n";
        let all = problems(text);
        assert!(
            all.iter()
                .any(|d| !d.is_error() && d.message.contains("plan 'P3'")),
            "{all:#?}"
        );
        let errs = errors(text);
        assert_eq!(errs.len(), 1, "{errs:#?}");
        assert!(
            errs[0].contains("image 'c' is built in plan P2, but its parent 'b' skips that plan")
        );
    }

    #[test]
    fn duplicate_image_names_and_roots_with_parents_are_errors() {
        let text = "root: [b]\nimages:\n  a: {image_name: x/a}\n  b: {image_name: docker.io/x/a, depend_on: a}\ntag: {prefix: '1'}\n";
        let errs = errors(text);
        assert!(errs.iter().any(|e| e.contains("both push to")), "{errs:#?}");
        assert!(
            errs.iter().any(|e| e.contains("a root has no parent")),
            "{errs:#?}"
        );
    }

    #[test]
    fn plain_folder_names() {
        for ok in ["a", "scipy-ml-notebook", "v1.2_x"] {
            assert!(is_plain_folder_name(ok), "{ok}");
        }
        for bad in ["", ".", "..", "a/b", ".hidden", "-x", "a\\b", "a b"] {
            assert!(!is_plain_folder_name(bad), "{bad}");
        }
    }

    #[test]
    fn missing_dockerfiles_are_reported() {
        let spec = spec::parse(
            "images:\n  a: {image_name: x/a}\n  b: {image_name: x/b}\ntag: {prefix: '1'}\n",
            "spec.yml",
        )
        .spec
        .unwrap();
        let d = check_layout(&spec, "images", |k| k == "a");
        assert_eq!(d.len(), 1);
        assert!(d[0].message.contains("images/b/Dockerfile"));
    }
}
