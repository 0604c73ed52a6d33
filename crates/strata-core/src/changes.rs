//! Change detection: which images a change set touches, and why.
//!
//! The rules, in one place:
//! - a path `<images>/<X>/...`, `<X>` an image key, marks `<X>` changed unless
//!   ChangeIgnore matches it; ChangeIgnore is applied first, so an ignored
//!   path never triggers anything;
//! - a path matched by BuildAll marks every image;
//! - a pattern with no `/` and no glob character matches the first path
//!   component under the images folder; any other pattern is a glob relative
//!   to it (`*` stays within one component, `**` crosses them) and also
//!   matches everything beneath a directory it matches;
//! - `full rebuild` in any commit message of the range (any case), `--all`,
//!   a full-rebuild branch, or no base at all marks every image;
//! - spec.yml changed but not in BuildAll: old and new specs are compared
//!   entry by entry ([`spec_changes`]).

use crate::diag::{Diagnostic, Pos};
use crate::spec::{ImageSpec, Spec};
use globset::{GlobBuilder, GlobMatcher};
use std::collections::BTreeMap;
use std::fmt;

/// The phrase in a commit message that asks for a full rebuild.
pub const FULL_REBUILD_PHRASE: &str = "full rebuild";

/// One ChangeIgnore or BuildAll entry.
#[derive(Debug, Clone)]
pub struct PathPattern {
    text: String,
    glob: Option<GlobMatcher>,
}

impl PathPattern {
    /// A pattern from its text, or why the glob is invalid.
    pub fn new(text: &str) -> Result<PathPattern, String> {
        let bare = !text.contains('/') && !text.contains(['*', '?', '[', '{']);
        let glob = if bare {
            None
        } else {
            let trimmed = text.trim_start_matches("./").trim_end_matches('/');
            Some(
                GlobBuilder::new(trimmed)
                    .literal_separator(true)
                    .build()
                    .map_err(|e| e.kind().to_string())?
                    .compile_matcher(),
            )
        };
        Ok(PathPattern {
            text: text.to_string(),
            glob,
        })
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Whether the pattern matches `rel`, a path relative to the images folder.
    pub fn matches(&self, rel: &str) -> bool {
        match &self.glob {
            None => rel.split('/').next() == Some(self.text.as_str()),
            Some(glob) => {
                glob.is_match(rel)
                    || rel
                        .match_indices('/')
                        .any(|(i, _)| glob.is_match(&rel[..i]))
            }
        }
    }
}

/// The rules of `change_ignore.json`.
#[derive(Debug, Clone, Default)]
pub struct ChangeRules {
    /// Paths whose changes never cause a rebuild.
    pub ignore: Vec<PathPattern>,
    /// Paths whose changes rebuild every image.
    pub build_all: Vec<PathPattern>,
}

impl ChangeRules {
    /// The first BuildAll pattern matching `rel`.
    pub fn build_all_match(&self, rel: &str) -> Option<&PathPattern> {
        self.build_all.iter().find(|p| p.matches(rel))
    }

    /// Whether ChangeIgnore matches `rel`.
    pub fn ignored(&self, rel: &str) -> bool {
        self.ignore.iter().any(|p| p.matches(rel))
    }
}

/// Reads `change_ignore.json`: `{"ChangeIgnore": [...], "BuildAll": [...]}`.
/// Returns the rules and any warnings, or the errors.
pub fn parse_change_rules(
    text: &str,
    file: &str,
) -> Result<(ChangeRules, Vec<Diagnostic>), Vec<Diagnostic>> {
    let value: serde_json::Value = serde_json::from_str(text).map_err(|e| {
        vec![Diagnostic::error(file, Some(Pos { line: e.line(), column: e.column() }), format!("this is not valid JSON: {e}"))
            .with_help(r#"the file must look like {"ChangeIgnore": ["conftest.py"], "BuildAll": ["spec.yml"]}"#)]
    })?;
    let place = |needle: &str| {
        text.find(needle).map(|at| {
            let before = &text[..at];
            Pos {
                line: before.matches('\n').count() + 1,
                column: before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1,
            }
        })
    };
    let Some(object) = value.as_object() else {
        return Err(vec![Diagnostic::error(
            file,
            None,
            "the file must be a JSON object with ChangeIgnore and BuildAll lists",
        )]);
    };
    let mut rules = ChangeRules::default();
    let mut errors = Vec::new();
    let mut warnings = Vec::new();
    for (key, list) in object {
        let target = match key.as_str() {
            "ChangeIgnore" => &mut rules.ignore,
            "BuildAll" => &mut rules.build_all,
            other => {
                let mut d = Diagnostic::warning(
                    file,
                    place(&format!("\"{other}\"")),
                    format!("unknown key '{other}'; it is ignored"),
                );
                if let Some(near) = crate::diag::closest(other, ["ChangeIgnore", "BuildAll"]) {
                    d = d.with_help(format!("did you mean '{near}'?"));
                }
                warnings.push(d);
                continue;
            }
        };
        let Some(items) = list.as_array() else {
            errors.push(Diagnostic::error(
                file,
                place(&format!("\"{key}\"")),
                format!("{key} must be a list of paths"),
            ));
            continue;
        };
        for item in items {
            match item.as_str() {
                Some(text) => match PathPattern::new(text) {
                    Ok(p) => target.push(p),
                    Err(why) => errors.push(Diagnostic::error(
                        file,
                        place(&format!("\"{text}\"")),
                        format!("'{text}' in {key} is not a valid glob: {why}"),
                    )),
                },
                None => errors.push(Diagnostic::error(
                    file,
                    place(&format!("\"{key}\"")),
                    format!("{key} must list paths as strings, found {item}"),
                )),
            }
        }
    }
    if errors.is_empty() {
        Ok((rules, warnings))
    } else {
        Err(errors)
    }
}

/// Why an image is rebuilt (or, for [`Reason::Unchanged`], why not).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Reason {
    /// `--all` was given.
    All,
    /// There is no base to compare with: a first build.
    FirstBuild,
    /// A commit of the range asks for a full rebuild.
    FullRebuildMessage {
        /// The commit, abbreviated.
        sha: String,
    },
    /// The branch is one that always rebuilds everything.
    FullRebuildBranch {
        /// The branch.
        branch: String,
    },
    /// A path matched by BuildAll changed.
    BuildAll {
        /// The pattern that matched.
        pattern: String,
        /// The changed path.
        path: String,
    },
    /// A file of the image's folder changed (the first such path).
    Changed {
        /// The changed path.
        path: String,
    },
    /// A file of the image's folder has uncommitted changes (the first
    /// such path): the plan is of the working tree.
    Uncommitted {
        /// The path.
        path: String,
        /// How it differs from the head commit: `modified`, `deleted` or
        /// `untracked`.
        change: String,
    },
    /// The image's spec entry (or its plan) changed.
    SpecChanged {
        /// What changed, e.g. `build_args`.
        what: String,
    },
    /// The parent is rebuilt, so the image must be rebuilt on it.
    ParentRebuilt {
        /// The parent's key.
        parent: String,
    },
    /// `--bases`: the image outside the stack that a root is built on now
    /// stands at another digest than the one its last published build
    /// recorded (`org.opencontainers.image.base.digest`).
    BaseMoved {
        /// The base, as the root's `FROM` names it.
        base: String,
        /// What the last published build recorded; `None` when it recorded
        /// nothing (built before strata recorded bases).
        from: Option<String>,
        /// Where the base stands now.
        to: String,
    },
    /// A child is rebuilt and nothing of this image is published to build it on.
    NotPublished {
        /// The child that needs it.
        child: String,
    },
    /// It would be rebuilt for `because`, but an image built from the same
    /// inputs exists: it is tagged, not built.
    SameInputs {
        /// Where that image is.
        reference: String,
        /// Why it would have been rebuilt.
        because: Box<Reason>,
        /// That image already carries this run's own tag: an earlier
        /// attempt of this same run built, tested and pushed it before it
        /// stopped, and this run picks up after it.
        resumed: bool,
    },
    /// Nothing that affects the image changed.
    Unchanged,
}

impl Reason {
    /// Whether the reason rebuilds everything.
    pub fn is_full(&self) -> bool {
        matches!(
            self,
            Reason::All
                | Reason::FirstBuild
                | Reason::FullRebuildMessage { .. }
                | Reason::FullRebuildBranch { .. }
                | Reason::BuildAll { .. }
        )
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::All => write!(f, "--all"),
            Reason::FirstBuild => write!(f, "first build (no base)"),
            Reason::FullRebuildMessage { sha } => write!(f, "full rebuild in {sha}"),
            Reason::FullRebuildBranch { branch } => write!(f, "full-rebuild branch {branch}"),
            Reason::BuildAll { path, .. } => write!(f, "build-all: {path}"),
            Reason::Changed { path } => write!(f, "{path}"),
            Reason::Uncommitted { path, change } => write!(f, "{path} ({change}, uncommitted)"),
            Reason::SpecChanged { what } => write!(f, "spec.yml: {what}"),
            Reason::ParentRebuilt { parent } => write!(f, "parent rebuilt ({parent})"),
            Reason::BaseMoved {
                base,
                from: Some(from),
                to,
            } => write!(f, "base {base} moved {from} → {to}"),
            Reason::BaseMoved {
                base,
                from: None,
                to,
            } => write!(
                f,
                "base {base} is {to}; the published image recorded no base digest"
            ),
            Reason::NotPublished { child } => write!(f, "parent not published (needed by {child})"),
            Reason::SameInputs {
                reference,
                because,
                resumed: false,
            } => write!(f, "same inputs as {reference} ({because})"),
            Reason::SameInputs {
                reference,
                because,
                resumed: true,
            } => write!(
                f,
                "already built and tested under this run's tag: {reference} ({because})"
            ),
            Reason::Unchanged => write!(f, "unchanged"),
        }
    }
}

impl serde::Serialize for Reason {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// A commit of the range.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Commit {
    /// Full hash.
    pub sha: String,
    /// Full message.
    pub message: String,
}

/// Everything change detection looks at.
#[derive(Debug, Clone)]
pub struct ChangeSet<'a> {
    /// The images folder relative to the repository root (`images`).
    pub images_dir: &'a str,
    /// Changed paths, relative to the repository root (both sides of
    /// renames): those of the range, and the uncommitted ones.
    pub paths: &'a [String],
    /// The paths of `paths` that are uncommitted changes of the working
    /// tree, with how they differ from the head commit (`modified`,
    /// `deleted`, `untracked`).
    pub uncommitted: &'a BTreeMap<String, String>,
    /// The commits of the range.
    pub commits: &'a [Commit],
    /// The ChangeIgnore/BuildAll rules.
    pub rules: &'a ChangeRules,
    /// The spec at the base, when spec.yml changed and the old one was read.
    pub old_spec: Option<&'a Spec>,
    /// A full rebuild is forced: `--all`, no base, or a full-rebuild branch.
    pub forced: Option<Reason>,
}

/// What changed: a full rebuild, or the images (per plan) changed directly.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Detected {
    /// Set when every image rebuilds.
    pub full: Option<Reason>,
    /// Images changed directly, per plan: `(image, plan) → reason`.
    pub direct: BTreeMap<(String, String), Reason>,
}

/// `path` relative to the images folder, if it lies inside it.
pub fn under_images<'p>(images_dir: &str, path: &'p str) -> Option<&'p str> {
    let dir = images_dir.trim_matches('/');
    if dir.is_empty() || dir == "." {
        return Some(path);
    }
    path.strip_prefix(dir)?.strip_prefix('/')
}

/// Applies the change rules to `set` for `spec`.
pub fn detect(spec: &Spec, set: &ChangeSet<'_>) -> Detected {
    let mut out = Detected {
        full: set.forced.clone(),
        ..Detected::default()
    };
    if out.full.is_none() {
        out.full = set
            .commits
            .iter()
            .find(|c| c.message.to_lowercase().contains(FULL_REBUILD_PHRASE))
            .map(|c| Reason::FullRebuildMessage {
                sha: c.sha.chars().take(7).collect(),
            });
    }
    if out.full.is_some() {
        return out;
    }
    let mut spec_changed = false;
    for path in set.paths {
        let Some(rel) = under_images(set.images_dir, path) else {
            continue;
        };
        if set.rules.ignored(rel) {
            continue;
        }
        if let Some(pattern) = set.rules.build_all_match(rel) {
            out.full = Some(Reason::BuildAll {
                pattern: pattern.as_str().to_string(),
                path: path.clone(),
            });
            return out;
        }
        if rel == "spec.yml" {
            spec_changed = true;
            continue;
        }
        let Some((first, _)) = rel.split_once('/') else {
            continue;
        };
        if let Some(image) = spec.image(first) {
            for plan in &spec.plans {
                if image.in_plan(&plan.name.value) {
                    out.direct
                        .entry((first.to_string(), plan.name.value.clone()))
                        .or_insert_with(|| match set.uncommitted.get(path) {
                            Some(change) => Reason::Uncommitted {
                                path: path.clone(),
                                change: change.clone(),
                            },
                            None => Reason::Changed { path: path.clone() },
                        });
                }
            }
        }
    }
    if spec_changed {
        for (key, what) in spec_changes(set.old_spec, spec) {
            out.direct
                .entry(key)
                .or_insert(Reason::SpecChanged { what });
        }
    }
    out
}

/// The image entries (per plan) that differ between `old` and `new`, with
/// what differs. Without an old spec (unreadable), every entry differs.
pub fn spec_changes(old: Option<&Spec>, new: &Spec) -> BTreeMap<(String, String), String> {
    let mut out = BTreeMap::new();
    for plan in &new.plans {
        let plan_name = &plan.name.value;
        let old_plan = old.and_then(|o| o.plan(plan_name));
        for image in new.images.iter().filter(|i| i.in_plan(plan_name)) {
            let what = match (old, old_plan) {
                (None, _) => Some("the previous spec could not be read".to_string()),
                (Some(_), None) => Some(format!("plan {plan_name} is new")),
                (Some(_), Some(op)) if op.tag_prefix != plan.tag_prefix => {
                    Some(format!("tag prefix of plan {plan_name} changed"))
                }
                (Some(o), Some(_)) => match o.image(image.name()) {
                    None => Some("new image".to_string()),
                    Some(before) if !before.in_plan(plan_name) => {
                        Some(format!("now built in plan {plan_name}"))
                    }
                    Some(before) => entry_difference(o, before, new, image, plan_name),
                },
            };
            if let Some(what) = what {
                out.insert((image.name().to_string(), plan_name.clone()), what);
            }
        }
    }
    out
}

/// The first field in which an image's entry differs, as seen by one plan.
fn entry_difference(
    old_spec: &Spec,
    old: &ImageSpec,
    new_spec: &Spec,
    new: &ImageSpec,
    plan: &str,
) -> Option<String> {
    let args = |s: &ImageSpec| {
        let mut a = s.build_args.clone();
        if let Some(p) = s.plan_args.get(plan) {
            a.extend(p.value.clone());
        }
        a
    };
    let info = |spec: &Spec, s: &ImageSpec| -> Vec<(String, Option<crate::spec::InfoCmd>)> {
        s.info_cmds
            .iter()
            .map(|k| (k.value.clone(), spec.info_cmds.get(&k.value).cloned()))
            .collect()
    };
    let checks: [(&str, bool); 8] = [
        ("image_name", old.image_name != new.image_name),
        ("depend_on", old.depend_on != new.depend_on),
        ("build_args", args(old) != args(new)),
        ("info_cmds", info(old_spec, old) != info(new_spec, new)),
        (
            "integration_tests",
            old.integration_tests != new.integration_tests,
        ),
        ("basic_tests", old.basic_tests != new.basic_tests),
        ("prune", old.prune != new.prune),
        ("prepull", old.prepull != new.prepull),
    ];
    checks
        .iter()
        .find(|(_, differs)| *differs)
        .map(|(field, _)| format!("{field} of {} changed", new.name()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec;

    fn spec_of(text: &str) -> Spec {
        let p = spec::parse(text, "spec.yml");
        assert!(!p.has_errors(), "{:?}", p.diagnostics);
        p.spec.unwrap()
    }

    const STACK: &str = "images:\n  base: {image_name: x/base, build_args: {V: '1'}}\n  child: {image_name: x/child, depend_on: base}\n  other: {image_name: x/other}\ntag: {prefix: '2024.1'}\n";

    fn rules(json: &str) -> ChangeRules {
        parse_change_rules(json, "change_ignore.json").unwrap().0
    }

    fn run(
        paths: &[&str],
        commits: &[(&str, &str)],
        rules: &ChangeRules,
        old: Option<&Spec>,
    ) -> Detected {
        let paths: Vec<String> = paths.iter().map(|p| p.to_string()).collect();
        let commits: Vec<Commit> = commits
            .iter()
            .map(|(s, m)| Commit {
                sha: s.to_string(),
                message: m.to_string(),
            })
            .collect();
        let set = ChangeSet {
            images_dir: "images",
            paths: &paths,
            uncommitted: &BTreeMap::new(),
            commits: &commits,
            rules,
            old_spec: old,
            forced: None,
        };
        detect(&spec_of(STACK), &set)
    }

    fn direct(d: &Detected) -> Vec<(&str, String)> {
        d.direct
            .iter()
            .map(|((i, _), r)| (i.as_str(), r.to_string()))
            .collect()
    }

    #[test]
    fn image_folders_mark_their_image_with_the_first_path() {
        let d = run(
            &[
                "README.md",
                "images/child/b.txt",
                "images/child/a.txt",
                "images/gone/Dockerfile",
                "images/x.md",
            ],
            &[],
            &ChangeRules::default(),
            None,
        );
        assert_eq!(d.full, None);
        assert_eq!(direct(&d), [("child", "images/child/b.txt".to_string())]);
    }

    #[test]
    fn bare_names_match_the_first_component_and_globs_match_paths() {
        let r = rules(
            r#"{"ChangeIgnore": ["conftest.py", "*/manual_tests", "**/*.md"], "BuildAll": ["tests_common", "spec.yml"]}"#,
        );
        let d = run(
            &[
                "images/conftest.py",
                "images/base/manual_tests/t.py",
                "images/base/docs/x.md",
                "images/child/conftest.py",
            ],
            &[],
            &r,
            None,
        );
        assert_eq!(
            direct(&d),
            [("child", "images/child/conftest.py".to_string())]
        );
        let d = run(
            &["images/base/x", "images/tests_common/test_a.py"],
            &[],
            &r,
            None,
        );
        assert_eq!(
            d.full,
            Some(Reason::BuildAll {
                pattern: "tests_common".into(),
                path: "images/tests_common/test_a.py".into()
            })
        );
        assert_eq!(
            d.full.unwrap().to_string(),
            "build-all: images/tests_common/test_a.py"
        );
    }

    #[test]
    fn ignore_wins_over_build_all() {
        let r =
            rules(r#"{"ChangeIgnore": ["tests_common/README.md"], "BuildAll": ["tests_common"]}"#);
        assert_eq!(
            run(&["images/tests_common/README.md"], &[], &r, None),
            Detected::default()
        );
    }

    #[test]
    fn full_rebuild_messages_in_any_case() {
        let d = run(
            &[],
            &[
                ("aaaaaaaaaa", "fix"),
                ("bbbbbbbbbb", "Force FULL Rebuild please"),
            ],
            &ChangeRules::default(),
            None,
        );
        assert_eq!(d.full.unwrap().to_string(), "full rebuild in bbbbbbb");
    }

    #[test]
    fn spec_changes_are_compared_entry_by_entry() {
        let old = spec_of(STACK);
        let new_text = STACK.replace("V: '1'", "V: '2'");
        let changes = spec_changes(Some(&old), &spec_of(&new_text));
        assert_eq!(
            changes.into_iter().collect::<Vec<_>>(),
            [(
                ("base".into(), "default".into()),
                "build_args of base changed".into()
            )]
        );
        let reprefixed = spec_of(&STACK.replace("2024.1", "2024.2"));
        assert_eq!(spec_changes(Some(&old), &reprefixed).len(), 3);
        assert_eq!(spec_changes(None, &old).len(), 3);
        let d = run(
            &["images/spec.yml"],
            &[],
            &ChangeRules::default(),
            Some(&spec_of(&STACK.replace("x/other", "x/other2"))),
        );
        assert_eq!(
            direct(&d),
            [("other", "spec.yml: image_name of other changed".to_string())]
        );
    }

    #[test]
    fn info_command_definitions_count_for_the_images_using_them() {
        let base = "images:\n  a: {image_name: x/a, info_cmds: [P]}\n  b: {image_name: x/b}\ntag: {prefix: '1'}\nall_info_cmds:\n  P: {description: d, command: python -V}\n";
        let changed = spec_changes(
            Some(&spec_of(base)),
            &spec_of(&base.replace("python -V", "python3 -V")),
        );
        assert_eq!(
            changed.keys().map(|(i, _)| i.as_str()).collect::<Vec<_>>(),
            ["a"]
        );
        assert_eq!(
            spec_changes(
                Some(&spec_of(base)),
                &spec_of(&format!("# comment\n{base}"))
            )
            .len(),
            0
        );
    }

    #[test]
    fn change_rules_errors_have_places() {
        let errs =
            parse_change_rules("{\n  \"BuildAll\": [\"a[\"]\n}", "change_ignore.json").unwrap_err();
        assert_eq!(
            errs[0].pos,
            Some(Pos {
                line: 2,
                column: 16
            })
        );
        let errs = parse_change_rules("{\"BuildAll\": \"spec.yml\"}", "f").unwrap_err();
        assert!(errs[0].message.contains("must be a list"));
        assert!(
            parse_change_rules("{oops", "f").unwrap_err()[0]
                .message
                .contains("not valid JSON")
        );
        let (_, warnings) = parse_change_rules("{\"BuildAl\": []}", "f").unwrap();
        assert_eq!(
            warnings[0].help.as_deref(),
            Some("did you mean 'BuildAll'?")
        );
    }
}
