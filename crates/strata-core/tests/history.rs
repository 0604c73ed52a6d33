//! Replays the real history fixture (`fixtures/datahub-history`):
//! every commit's spec is read and checked, and for every readable one the
//! core's rebuild set is compared with an independent, deliberately simple
//! re-statement of design.md's change rules written here.

use serde::Deserialize;
use std::collections::{BTreeMap, BTreeSet};
use strata_core::changes::{self, ChangeRules, ChangeSet, Commit, Reason};
use strata_core::diag::Diagnostic;
use strata_core::graph::Graph;
use strata_core::plan::{self, PlanOptions, Published, PublishedLookup};
use strata_core::spec::{self, ImageSpec, PlanSpec, Spec};
use strata_core::validate;

const HISTORY: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../fixtures/datahub-history/history.json"
);
const SPEC_FILE: &str = "images/spec.yml";

#[derive(Deserialize)]
struct History {
    commits: Vec<HistoryCommit>,
    blobs: Vec<String>,
}

#[derive(Deserialize)]
struct HistoryCommit {
    sha: String,
    parent: Option<String>,
    #[allow(dead_code)]
    merge: bool,
    message: String,
    changes: Vec<(String, String)>,
    spec: usize,
    change_ignore: Option<usize>,
    parent_spec: Option<usize>,
}

fn load() -> History {
    let text = std::fs::read_to_string(HISTORY).unwrap_or_else(|e| {
        panic!(
            "cannot read the history fixture at {HISTORY}: {e} (it is part of the repository: fixtures/datahub-history)"
        )
    });
    serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("{HISTORY} is not the expected JSON: {e}"))
}

/// Every error a spec text yields: reading, cross-entry validation, graph.
fn spec_errors(text: &str) -> (Option<Spec>, Vec<Diagnostic>) {
    let parsed = spec::parse(text, SPEC_FILE);
    let mut errors: Vec<Diagnostic> = parsed
        .diagnostics
        .iter()
        .filter(|d| d.is_error())
        .cloned()
        .collect();
    if let Some(s) = &parsed.spec {
        errors.extend(
            validate::validate(s)
                .into_iter()
                .filter(Diagnostic::is_error),
        );
        if errors.is_empty() {
            assert!(
                Graph::new(s).is_ok(),
                "a spec that validates must make a graph:\n{text}"
            );
        }
    }
    (parsed.spec, errors)
}

/// 1-based numbers of the lines of `text` for which `f` holds.
fn lines_where(text: &str, f: impl Fn(&str) -> bool) -> Vec<usize> {
    text.lines()
        .enumerate()
        .filter(|(_, l)| f(l))
        .map(|(i, _)| i + 1)
        .collect()
}

/// The flags of a spec text written with a value that is not a boolean:
/// (line, key, value without a trailing comment).
fn non_boolean_flags(text: &str) -> Vec<(usize, String, String)> {
    text.lines()
        .enumerate()
        .filter_map(|(i, l)| {
            let (k, v) = l.trim().split_once(':')?;
            let v = v.split(" #").next().unwrap_or("").trim();
            let flag = ["integration_tests", "basic_tests", "prune", "prepull"].contains(&k);
            (flag && !["true", "false", "True", "False", "yes", "no"].contains(&v))
                .then(|| (i + 1, k.to_string(), v.to_string()))
        })
        .collect()
}

// ---------------------------------------------------------------------------
// The oracle: design.md's "Change detection", restated plainly.

struct Rules {
    ignore: Vec<String>,
    build_all: Vec<String>,
}

impl Rules {
    fn from_json(text: &str) -> Rules {
        let v: serde_json::Value =
            serde_json::from_str(text).expect("change_ignore.json of the fixture is JSON");
        let list = |k: &str| -> Vec<String> {
            v.get(k)
                .and_then(|l| l.as_array())
                .map(|a| a.iter().map(|s| s.as_str().unwrap().to_string()).collect())
                .unwrap_or_default()
        };
        let rules = Rules {
            ignore: list("ChangeIgnore"),
            build_all: list("BuildAll"),
        };
        for p in rules.ignore.iter().chain(&rules.build_all) {
            // A fact of the fixture, which keeps this oracle simple.
            assert!(
                !p.contains('/') && !p.contains(['*', '?', '[', '{']),
                "the fixture's rules are all bare names; found {p:?}"
            );
        }
        rules
    }

    /// A bare name matches the first path component under images/.
    fn hit(patterns: &[String], rel: &str) -> bool {
        let first = rel.split('/').next().unwrap_or("");
        patterns.iter().any(|p| p == first)
    }
}

/// What one image looks like to one plan: every field whose change rebuilds it.
fn entry_view(spec: &Spec, image: &ImageSpec, plan: &str) -> Option<String> {
    if !image.in_plan(plan) {
        return None;
    }
    let p = spec.plan(plan)?;
    let mut args = image.build_args.clone();
    if let Some(extra) = image.plan_args.get(plan) {
        args.extend(extra.value.clone());
    }
    let info: Vec<_> = image
        .info_cmds
        .iter()
        .map(|k| {
            (
                k.value.clone(),
                spec.info_cmds
                    .get(&k.value)
                    .map(|c| (c.description.clone(), c.command.clone())),
            )
        })
        .collect();
    Some(format!(
        "prefix={:?} name={:?} parent={:?} args={args:?} info={info:?} it={} bt={} prune={} prepull={}",
        p.tag_prefix.value,
        image.image_name.as_ref().map(|n| &n.value),
        image.parent(),
        image.integration_tests,
        image.basic_tests,
        image.prune,
        image.prepull
    ))
}

type Key = (String, String);

/// Every (image, plan) the spec builds.
fn universe(spec: &Spec) -> BTreeSet<Key> {
    let mut out = BTreeSet::new();
    for p in &spec.plans {
        for i in spec.images.iter().filter(|i| i.in_plan(&p.name.value)) {
            out.insert((i.name().to_string(), p.name.value.clone()));
        }
    }
    out
}

/// The (image, plan) pairs the design says rebuild, computed without the
/// core's change detection or plan.
fn oracle(spec: &Spec, c: &HistoryCommit, rules: &Rules, old: Option<&Spec>) -> BTreeSet<Key> {
    let all = universe(spec);
    if c.parent.is_none() || c.message.to_lowercase().contains("full rebuild") {
        return all;
    }
    let mut direct: BTreeSet<Key> = BTreeSet::new();
    for (_, path) in &c.changes {
        let Some(rel) = path.strip_prefix("images/") else {
            continue;
        };
        if Rules::hit(&rules.ignore, rel) {
            continue;
        }
        if Rules::hit(&rules.build_all, rel) {
            return all;
        }
        if rel == "spec.yml" {
            for (image, plan) in &all {
                let new_view = entry_view(spec, spec.image(image).unwrap(), plan);
                let old_view =
                    old.and_then(|o| o.image(image).and_then(|i| entry_view(o, i, plan)));
                if old_view != new_view {
                    direct.insert((image.clone(), plan.clone()));
                }
            }
            continue;
        }
        if let Some((first, _)) = rel.split_once('/') {
            direct.extend(all.iter().filter(|(i, _)| i == first).cloned());
        }
    }
    // Descendants, per plan: an image rebuilds when any ancestor does.
    all.iter()
        .filter(|(image, plan)| {
            let mut at = Some(image.as_str());
            while let Some(i) = at {
                if direct.contains(&(i.to_string(), plan.clone())) {
                    return true;
                }
                at = spec.image(i).and_then(|s| s.parent());
            }
            false
        })
        .cloned()
        .collect()
}

// ---------------------------------------------------------------------------

#[test]
fn every_commit_of_the_history_is_read_and_planned_as_the_design_says() {
    let h = load();
    assert_eq!(h.commits.len(), 1687, "the fixture has 1,687 commits");

    // Which spec blobs are unreadable, and how each one is reported.
    let mut unreadable: BTreeMap<usize, Vec<Diagnostic>> = BTreeMap::new();
    let mut checked_blobs = BTreeSet::new();
    for c in &h.commits {
        for idx in std::iter::once(c.spec).chain(c.parent_spec) {
            if !checked_blobs.insert(idx) {
                continue;
            }
            let (_, errors) = spec_errors(&h.blobs[idx]);
            if !errors.is_empty() {
                unreadable.insert(idx, errors);
            }
        }
    }
    let bad: Vec<usize> = unreadable.keys().copied().collect();
    // Found by reading the fixture: 18 has merge-conflict markers, 30 the
    // typo `prefix: '2023.1's`, 63 and 93 a depend_on naming a missing image.
    // The older pipeline could not read those either.
    assert_eq!(
        bad,
        [18, 30, 63, 93],
        "unexpected set of unreadable specs: {unreadable:#?}"
    );
    // 31 and 56 each hold a flag that is not a boolean (`integration_tests:
    // TORCH_AUD_VER`, `prepull: false -- uncomment to ...`). The older
    // pipeline read them as truthy strings and planned those commits, so
    // strata reads them the same way, with one warning each.
    for idx in [31, 56] {
        let text = &h.blobs[idx];
        let flagged = non_boolean_flags(text);
        assert_eq!(flagged.len(), 1, "blob {idx}: {flagged:?}");
        let (line, key, value) = &flagged[0];
        let parsed = spec::parse(text, SPEC_FILE);
        assert!(
            !parsed.has_errors(),
            "blob {idx}: {:#?}",
            parsed.diagnostics
        );
        let warnings: Vec<&Diagnostic> = parsed
            .diagnostics
            .iter()
            .filter(|d| d.message.contains("not true or false"))
            .collect();
        assert_eq!(warnings.len(), 1, "blob {idx}: {warnings:#?}");
        let w = warnings[0];
        assert_eq!(w.pos.map(|p| p.line), Some(*line), "blob {idx}: {w}");
        assert!(w.message.starts_with(&format!("{key} of image ")), "{w}");
        assert!(w.message.contains(&format!("'{value}'")), "{w}");
        assert!(w.message.contains("read as true"), "{w}");
        assert_eq!(w.help.as_deref(), Some("write true or false"));
        let image = parsed
            .spec
            .as_ref()
            .and_then(|s| {
                s.images.iter().find(|i| {
                    let entry = format!("{key} of image '{}'", i.name());
                    w.message.starts_with(&entry)
                })
            })
            .unwrap_or_else(|| panic!("blob {idx}: the warning names an image: {w}"));
        let read = match key.as_str() {
            "integration_tests" => image.integration_tests,
            "prepull" => image.prepull,
            "prune" => image.prune,
            _ => image.basic_tests,
        };
        assert!(read, "blob {idx}: {key} is read as true");
    }
    for (idx, errors) in &unreadable {
        let text = &h.blobs[*idx];
        for e in errors {
            let pos = e
                .pos
                .unwrap_or_else(|| panic!("blob {idx}: error without a line: {e}"));
            assert!(
                pos.line >= 1 && pos.line <= text.lines().count() + 1,
                "blob {idx}: line out of range: {e}"
            );
            assert!(!e.message.is_empty());
        }
        let msgs: Vec<String> = errors.iter().map(|e| e.to_string()).collect();
        let markers = lines_where(text, |l| {
            l.starts_with("<<<<<<<") || l.starts_with("=======") || l.starts_with(">>>>>>>")
        });
        let typo = lines_where(text, |l| l.contains("'2023.1's"));
        let missing_parents: Vec<(usize, String)> = {
            let keys: BTreeSet<&str> = text
                .lines()
                .filter_map(|l| l.strip_prefix("  "))
                .filter(|l| !l.starts_with(' ') && l.ends_with(':'))
                .map(|l| l.trim_end_matches(':'))
                .collect();
            text.lines()
                .enumerate()
                .filter_map(|(i, l)| {
                    l.trim()
                        .strip_prefix("depend_on:")
                        .map(|p| (i + 1, p.trim().trim_matches(['"', '\'']).to_string()))
                })
                .filter(|(_, p)| !keys.contains(p.as_str()))
                .collect()
        };
        let bad_flags = non_boolean_flags(text);
        match *idx {
            18 => {
                assert!(!markers.is_empty(), "blob 18 has conflict markers");
                let lines: Vec<usize> = errors.iter().map(|e| e.pos.unwrap().line).collect();
                assert_eq!(lines, markers, "{msgs:#?}");
                assert!(
                    errors
                        .iter()
                        .all(|e| e.message.contains("merge-conflict marker")),
                    "{msgs:#?}"
                );
            }
            30 => {
                assert_eq!(typo.len(), 1, "blob 30 has the typo");
                assert_eq!(errors.len(), 1, "{msgs:#?}");
                let line = errors[0].pos.unwrap().line;
                // The YAML error is found at the quoted scalar's end or just after it.
                assert!(
                    (typo[0]..=typo[0] + 1).contains(&line),
                    "typo on line {}, reported at {line}: {msgs:#?}",
                    typo[0]
                );
                assert!(!errors[0].message.contains("depends on"), "{msgs:#?}");
            }
            63 | 93 => {
                assert_eq!(missing_parents.len(), 1, "blob {idx}: {missing_parents:?}");
                let (line, parent) = &missing_parents[0];
                let named = format!("depends on '{parent}', which is not an image of this spec");
                assert!(
                    errors
                        .iter()
                        .any(|e| e.pos.unwrap().line == *line && e.message.contains(&named)),
                    "{msgs:#?}"
                );
                // Anything else reported is the same missing image (e.g. `root:` naming it).
                assert!(
                    errors
                        .iter()
                        .all(|e| e.message.contains(&format!("'{parent}'"))),
                    "{msgs:#?}"
                );
                assert!(markers.is_empty() && typo.is_empty() && bad_flags.is_empty());
            }
            _ => unreachable!(),
        }
    }

    // Replay every commit.
    let mut counts = BTreeMap::<&str, usize>::new();
    let mut mismatches = Vec::new();
    for c in &h.commits {
        let (spec, errors) = spec_errors(&h.blobs[c.spec]);
        if !errors.is_empty() {
            assert!(unreadable.contains_key(&c.spec));
            *counts.entry("unreadable").or_default() += 1;
            continue;
        }
        let spec = spec.expect("a readable spec");
        let graph = Graph::new(&spec).expect("graph");
        let (rules, oracle_rules) = match c.change_ignore {
            Some(i) => {
                let (r, warnings) =
                    changes::parse_change_rules(&h.blobs[i], "images/change_ignore.json")
                        .expect("fixture rules parse");
                assert!(warnings.is_empty(), "{warnings:?}");
                (r, Rules::from_json(&h.blobs[i]))
            }
            None => (
                ChangeRules::default(),
                Rules {
                    ignore: vec![],
                    build_all: vec![],
                },
            ),
        };
        let paths: Vec<String> = c.changes.iter().map(|(_, p)| p.clone()).collect();
        let commits = vec![Commit {
            sha: c.sha.clone(),
            message: c.message.clone(),
        }];
        let old_spec: Option<Spec> = if paths.iter().any(|p| p == SPEC_FILE) {
            c.parent_spec.and_then(|i| {
                let p = spec::parse(&h.blobs[i], SPEC_FILE);
                if p.has_errors() { None } else { p.spec }
            })
        } else {
            None
        };
        let set = ChangeSet {
            images_dir: "images",
            paths: &paths,
            uncommitted: &BTreeMap::new(),
            commits: &commits,
            rules: &rules,
            old_spec: old_spec.as_ref(),
            forced: c.parent.is_none().then_some(Reason::FirstBuild),
        };
        let detected = changes::detect(&spec, &set);
        let options = PlanOptions {
            head: c.sha.clone(),
            base: c.parent.clone(),
            changed_files: paths.clone(),
            suffix: c.sha[..7].to_string(),
            ..PlanOptions::default()
        };
        let p = plan::plan(&spec, &graph, &detected, &options, &mut EverythingPublished);
        let got: BTreeSet<Key> = p
            .rebuilds()
            .map(|b| (b.image.clone(), b.plan.clone()))
            .collect();
        let want = oracle(&spec, c, &oracle_rules, old_spec.as_ref());
        if got != want {
            mismatches.push(format!(
                "{} ({:?}): core {got:?}, oracle {want:?}",
                &c.sha[..8],
                c.message.lines().next().unwrap_or("")
            ));
        }
        let all = universe(&spec);
        assert_eq!(
            p.builds.len(),
            all.len(),
            "{}: one entry per image per plan",
            c.sha
        );
        assert_eq!(p.full_rebuild, detected.full.is_some());
        if p.full_rebuild {
            assert_eq!(got, all, "{}: a full rebuild rebuilds everything", c.sha);
        }
        let kind = if got.is_empty() {
            "nothing"
        } else if got == all {
            "everything"
        } else {
            "strict subset"
        };
        *counts.entry(kind).or_default() += 1;
        match &detected.full {
            Some(Reason::FullRebuildMessage { .. }) => {
                *counts.entry("  full: commit message").or_default() += 1
            }
            Some(Reason::BuildAll { .. }) => {
                *counts.entry("  full: BuildAll path").or_default() += 1
            }
            Some(_) => *counts.entry("  full: other").or_default() += 1,
            None => {}
        }
        if !detected.direct.is_empty()
            && detected
                .direct
                .values()
                .any(|r| matches!(r, Reason::SpecChanged { .. }))
        {
            *counts
                .entry("  spec.yml compared semantically")
                .or_default() += 1;
        }
    }
    println!("history: {} commits", h.commits.len());
    for (k, v) in &counts {
        println!("  {k}: {v}");
    }
    assert!(
        mismatches.is_empty(),
        "{} commits differ from the oracle:\n{}",
        mismatches.len(),
        mismatches.join("\n")
    );

    let n = |k: &str| counts.get(k).copied().unwrap_or(0);
    assert_eq!(
        n("unreadable") + n("nothing") + n("everything") + n("strict subset"),
        h.commits.len()
    );
    // The commits whose own spec is one of the four bad blobs.
    let expect_unreadable = h
        .commits
        .iter()
        .filter(|c| unreadable.contains_key(&c.spec))
        .count();
    assert_eq!(n("unreadable"), expect_unreadable);
    assert!(n("unreadable") >= bad.len());
    assert!(
        n("nothing") > 100,
        "many commits touch nothing of the images"
    );
    assert!(n("everything") > 100, "many commits rebuild everything");
    assert!(
        n("strict subset") > 50,
        "many commits rebuild part of the stack"
    );
    assert!(n("  full: commit message") > 10);
    assert!(n("  full: BuildAll path") > 10);
    assert!(n("  spec.yml compared semantically") > 0);
}

/// The old pipeline built every child on its parent's published tag: the
/// history is replayed as if every parent were published.
struct EverythingPublished;

impl PublishedLookup for EverythingPublished {
    fn lookup(&mut self, image: &ImageSpec, plan: &PlanSpec, _: Option<&str>) -> Published {
        Published::At(format!(
            "{}:{}@sha256:{}",
            image.name(),
            plan.stable_tag(),
            "0".repeat(64)
        ))
    }
}
