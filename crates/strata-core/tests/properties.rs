//! Property tests of the planning core over random stacks and change sets.
//!
//! A random forest of images is kept as a small model, written out as
//! spec.yml text in either schema, read back with `spec::parse`, and planned
//! for a random change set. The plan is then checked against the model with
//! rules restated here from design.md ("Change detection", "Tags, args and
//! refs"), not with the core's own helpers.

use proptest::prelude::*;
use proptest::test_runner::TestRunner;
use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use strata_core::changes::{self, ChangeSet, Commit, Reason};
use strata_core::graph::Graph;
use strata_core::plan::{
    self, Plan, PlanOptions, Published, PublishedLookup, SuffixError, SuffixSource,
};
use strata_core::reference::{ImageRef, Tag};
use strata_core::spec::{self, ImageSpec, PlanSpec, Schema, Spec};
use strata_core::validate;

// ---------------------------------------------------------------------------
// The model of a stack.

const ARG_KEYS: &[&str] = &["PY_VER", "BASE", "CUDA", "X"];
/// (as written in YAML, as read).
const ARG_VALUES: &[(&str, &str)] = &[
    ("3.10", "3.10"),
    ("007", "007"),
    ("yes", "yes"),
    ("'null'", "null"),
    ("python-3.11.8", "python-3.11.8"),
    ("'1.9.0+cu111'", "1.9.0+cu111"),
    ("\"a b\"", "a b"),
    ("2023.10", "2023.10"),
];
/// (as written, as read): prefixes, some of which make each other's stable tags.
const PREFIXES: &[(&str, &str)] = &[
    ("2023.10", "2023.10"),
    ("'2024.1'", "2024.1"),
    ("\"2021.2\"", "2021.2"),
    ("2024", "2024"),
    ("2024-rc", "2024-rc"),
    ("v1", "v1"),
    ("a_b", "a_b"),
];
const PLAN_NAMES: &[&str] = &["PYTHON38", "PYTHON39", "P3"];
const INFO: &[(&str, &str)] = &[
    ("PY_VER", "python --version"),
    ("PIP_LIST", "pip list"),
    ("CUDA", "nvcc --version"),
];
const REGISTRIES: &[&str] = &[
    "ghcr.io/o",
    "localhost:5000/team",
    "o",
    "registry.example.org:443/a/b",
];
const FLAGS: &[&str] = &["integration_tests", "basic_tests", "prune", "prepull"];
const FILES: &[&str] = &[
    "Dockerfile",
    "README.md",
    "docs/guide.md",
    "test/test_basic.py",
    "scripts/setup.sh",
    "base.txt",
];

#[derive(Debug, Clone, PartialEq)]
struct Img {
    key: String,
    name: String,
    parent: Option<usize>,
    common: BTreeMap<String, String>,
    /// Per plan args: (written value, read value).
    per_plan: BTreeMap<String, BTreeMap<String, (String, String)>>,
    common_written: BTreeMap<String, String>,
    skip: BTreeSet<String>,
    info: Vec<String>,
    /// integration_tests, basic_tests, prune, prepull.
    flags: [bool; 4],
    /// Write flags even when they are the default.
    write_flags: bool,
}

#[derive(Debug, Clone, PartialEq)]
struct PlanM {
    name: String,
    prefix: String,
    prefix_written: String,
    postfix: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
struct Stack {
    legacy: bool,
    plans: Vec<PlanM>,
    images: Vec<Img>,
    info_cmds: BTreeMap<String, String>,
    write_root: bool,
}

impl Stack {
    fn index(&self, key: &str) -> Option<usize> {
        self.images.iter().position(|i| i.key == key)
    }

    fn parent_key(&self, i: usize) -> Option<&str> {
        self.images[i].parent.map(|p| self.images[p].key.as_str())
    }

    fn plan(&self, name: &str) -> Option<&PlanM> {
        self.plans.iter().find(|p| p.name == name)
    }

    /// Whether the current schema can say everything this stack says.
    fn fits_current(&self) -> bool {
        self.plans.len() == 1
            && self.plans[0].name == spec::DEFAULT_PLAN
            && self.plans[0].postfix.is_none()
            && self
                .images
                .iter()
                .all(|i| i.skip.is_empty() && i.per_plan.is_empty())
    }

    fn args(&self, i: usize, plan: &str) -> BTreeMap<String, String> {
        let img = &self.images[i];
        let mut a = img.common.clone();
        if let Some(p) = img.per_plan.get(plan) {
            a.extend(p.iter().map(|(k, (_, v))| (k.clone(), v.clone())));
        }
        a
    }

    fn in_plan(&self, i: usize, plan: &str) -> bool {
        !self.images[i].skip.contains(plan)
    }

    /// Everything of image `i` that plan `plan` builds it with, or `None`
    /// when the plan does not build it.
    fn view(&self, key: &str, plan: &str) -> Option<String> {
        let i = self.index(key)?;
        let p = self.plan(plan)?;
        if !self.in_plan(i, plan) {
            return None;
        }
        let img = &self.images[i];
        let info: Vec<_> = img
            .info
            .iter()
            .map(|k| (k, self.info_cmds.get(k)))
            .collect();
        Some(format!(
            "{}|{}|{:?}|{:?}|{info:?}|{:?}",
            p.prefix,
            img.name,
            self.parent_key(i),
            self.args(i, plan),
            img.flags
        ))
    }

    fn to_yaml(&self, legacy: bool) -> String {
        let mut s = String::new();
        if self.write_root {
            s.push_str(&format!("root: {}\n", self.images[0].key));
        }
        s.push_str("images:\n");
        for (i, img) in self.images.iter().enumerate() {
            s.push_str(&format!("  {}:\n    image_name: {}\n", img.key, img.name));
            if let Some(p) = self.parent_key(i) {
                s.push_str(&format!("    depend_on: {p}\n"));
            }
            if legacy {
                if !img.common_written.is_empty() || !img.per_plan.is_empty() {
                    s.push_str("    dbuild_env:\n");
                    if !img.common_written.is_empty() {
                        s.push_str("      common:\n");
                        for (k, v) in &img.common_written {
                            s.push_str(&format!("        {k}: {v}\n"));
                        }
                    }
                    for (plan, args) in &img.per_plan {
                        s.push_str(&format!("      {plan}:\n"));
                        for (k, (w, _)) in args {
                            s.push_str(&format!("        {k}: {w}\n"));
                        }
                    }
                }
                if !img.skip.is_empty() {
                    let list: Vec<&str> = img.skip.iter().map(String::as_str).collect();
                    s.push_str(&format!("    skip_plans: [{}]\n", list.join(", ")));
                }
            } else if !img.common_written.is_empty() {
                // Flow style here, block style in the legacy schema.
                let list: Vec<String> = img
                    .common_written
                    .iter()
                    .map(|(k, v)| format!("{k}: {v}"))
                    .collect();
                s.push_str(&format!("    build_args: {{{}}}\n", list.join(", ")));
            }
            if !img.info.is_empty() {
                let key = if legacy { "manifests" } else { "info_cmds" };
                s.push_str(&format!("    {key}: [{}]\n", img.info.join(", ")));
            }
            for (f, (name, value)) in FLAGS.iter().zip(img.flags).enumerate() {
                // basic_tests and prepull default to true.
                let default = f == 1 || f == 3;
                if img.write_flags || value != default {
                    s.push_str(&format!("    {name}: {value}\n"));
                }
            }
        }
        if legacy {
            s.push_str("plans:\n");
            for p in &self.plans {
                s.push_str(&format!(
                    "  {}:\n    tag_prefix: {}\n",
                    p.name, p.prefix_written
                ));
                if let Some(post) = &p.postfix {
                    s.push_str(&format!("    tag_stable_postfix: '{post}'\n"));
                }
            }
        } else {
            s.push_str(&format!(
                "tag:\n  prefix: {}\n",
                self.plans[0].prefix_written
            ));
        }
        if !self.info_cmds.is_empty() {
            s.push_str(if legacy {
                "manifests:\n"
            } else {
                "all_info_cmds:\n"
            });
            for (k, c) in &self.info_cmds {
                s.push_str(&format!(
                    "  {k}:\n    description: about {k}\n    command: {c}\n"
                ));
            }
        }
        s
    }
}

/// Raw random choices for one image.
type RawImage = (
    u32,
    bool,
    Vec<(usize, usize)>,
    Vec<(usize, usize, usize)>,
    u16,
    u8,
    u8,
    usize,
);

fn raw_image() -> impl Strategy<Value = RawImage> {
    (
        any::<u32>(),
        prop::bool::weighted(0.25),
        prop::collection::vec((0..ARG_KEYS.len(), 0..ARG_VALUES.len()), 0..3),
        prop::collection::vec((0..3usize, 0..ARG_KEYS.len(), 0..ARG_VALUES.len()), 0..3),
        any::<u16>(),
        any::<u8>(),
        any::<u8>(),
        0..REGISTRIES.len(),
    )
}

fn stack() -> impl Strategy<Value = Stack> {
    (
        prop::collection::vec(raw_image(), 1..40),
        prop_oneof![4 => Just(1usize), 1 => Just(2), 1 => Just(3)],
        any::<bool>(),
        any::<bool>(),
        0..PREFIXES.len(),
        prop::collection::vec(
            prop::option::weighted(0.3, prop::sample::select(vec!["-stable", "-final"])),
            3,
        ),
        any::<u8>(),
        any::<bool>(),
    )
        .prop_map(
            |(raw, n_plans, legacy, default_name, prefix_at, postfixes, info_bits, write_root)| {
                let legacy = legacy || n_plans > 1;
                let plans: Vec<PlanM> = (0..n_plans)
                    .map(|j| {
                        let (w, r) = PREFIXES[(prefix_at + j) % PREFIXES.len()];
                        let name = if n_plans == 1 && (!legacy || default_name) {
                            spec::DEFAULT_PLAN.to_string()
                        } else {
                            PLAN_NAMES[j].to_string()
                        };
                        PlanM {
                            name,
                            prefix: r.to_string(),
                            prefix_written: w.to_string(),
                            postfix: if legacy {
                                postfixes[j].map(str::to_string)
                            } else {
                                None
                            },
                        }
                    })
                    .collect();
                let info_cmds: BTreeMap<String, String> = INFO
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| info_bits & (1 << i) != 0)
                    .map(|(_, (k, c))| (k.to_string(), c.to_string()))
                    .collect();
                let info_keys: Vec<&String> = info_cmds.keys().collect();
                let mut images: Vec<Img> = Vec::new();
                for (i, (pick, is_root, common, per_plan, skip_bits, info_pick, flag_bits, reg)) in
                    raw.into_iter().enumerate()
                {
                    let parent = if i == 0 || is_root {
                        None
                    } else {
                        Some(pick as usize % i)
                    };
                    let mut img = Img {
                        key: format!("img{i}"),
                        name: format!("{}/img{i}", REGISTRIES[reg]),
                        parent,
                        common: BTreeMap::new(),
                        common_written: BTreeMap::new(),
                        per_plan: BTreeMap::new(),
                        skip: BTreeSet::new(),
                        info: info_keys
                            .iter()
                            .enumerate()
                            .filter(|(b, _)| info_pick & (1 << b) != 0)
                            .map(|(_, k)| (*k).clone())
                            .collect(),
                        flags: [
                            flag_bits & 1 != 0,
                            flag_bits & 2 == 0,
                            flag_bits & 4 != 0,
                            flag_bits & 8 == 0,
                        ],
                        write_flags: flag_bits & 16 != 0,
                    };
                    for (k, v) in common {
                        img.common
                            .insert(ARG_KEYS[k].to_string(), ARG_VALUES[v].1.to_string());
                        img.common_written
                            .insert(ARG_KEYS[k].to_string(), ARG_VALUES[v].0.to_string());
                    }
                    if legacy {
                        for (p, k, v) in per_plan {
                            let plan = &plans[p % plans.len()].name;
                            let (w, r) = ARG_VALUES[v];
                            img.per_plan
                                .entry(plan.clone())
                                .or_default()
                                .insert(ARG_KEYS[k].to_string(), (w.to_string(), r.to_string()));
                        }
                        for (j, p) in plans.iter().enumerate() {
                            let parent_skips =
                                parent.is_some_and(|pi: usize| images[pi].skip.contains(&p.name));
                            if parent_skips || (skip_bits >> (2 * j)) & 3 == 0 {
                                img.skip.insert(p.name.clone());
                            }
                        }
                    }
                    images.push(img);
                }
                let write_root = write_root && !images.is_empty();
                Stack {
                    legacy,
                    plans,
                    images,
                    info_cmds,
                    write_root,
                }
            },
        )
}

/// One change to the model, applied to make the spec at the base.
#[derive(Debug, Clone)]
enum Mutation {
    Arg(usize, usize),
    Drop(usize),
    Prefix(usize),
    ImageName(usize),
    Flag(usize, usize),
    InfoCommand(usize),
    OldSkip(usize, usize),
    DropPlan(usize),
    PlanArg(usize, usize, usize),
    Root,
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let i = any::<usize>();
    prop_oneof![
        (i, 0..ARG_VALUES.len()).prop_map(|(i, v)| Mutation::Arg(i, v)),
        i.prop_map(Mutation::Drop),
        i.prop_map(Mutation::Prefix),
        i.prop_map(Mutation::ImageName),
        (i, 0..4usize).prop_map(|(i, f)| Mutation::Flag(i, f)),
        i.prop_map(Mutation::InfoCommand),
        (i, 0..3usize).prop_map(|(i, p)| Mutation::OldSkip(i, p)),
        (0..3usize).prop_map(Mutation::DropPlan),
        (i, 0..3usize, 0..ARG_VALUES.len()).prop_map(|(i, p, v)| Mutation::PlanArg(i, p, v)),
        Just(Mutation::Root),
    ]
}

fn apply(stack: &Stack, muts: &[Mutation]) -> Stack {
    let mut s = stack.clone();
    for m in muts {
        let n = s.images.len();
        if n == 0 {
            break;
        }
        match *m {
            Mutation::Arg(i, v) => {
                let img = &mut s.images[i % n];
                img.common
                    .insert("X".into(), format!("old{}", ARG_VALUES[v].1.len()));
                img.common_written
                    .insert("X".into(), format!("old{}", ARG_VALUES[v].1.len()));
            }
            Mutation::Drop(i) => {
                // Drop an image and its descendants; re-index parents.
                let gone: BTreeSet<usize> = (0..n)
                    .filter(|&j| {
                        std::iter::successors(Some(j), |&x| s.images[x].parent).any(|a| a == i % n)
                    })
                    .collect();
                let keep: Vec<usize> = (0..n).filter(|j| !gone.contains(j)).collect();
                let new_index: BTreeMap<usize, usize> =
                    keep.iter().enumerate().map(|(ni, &oi)| (oi, ni)).collect();
                s.images = keep
                    .iter()
                    .map(|&oi| {
                        let mut img = s.images[oi].clone();
                        img.parent = img.parent.map(|p| new_index[&p]);
                        img
                    })
                    .collect();
                s.write_root &= !s.images.is_empty() && s.images[0].key == stack.images[0].key;
            }
            Mutation::Prefix(j) => {
                let k = s.plans.len();
                let p = &mut s.plans[j % k];
                p.prefix = format!("{}.9", p.prefix);
                p.prefix_written = format!("'{}'", p.prefix);
            }
            Mutation::ImageName(i) => {
                s.images[i % n].name = format!("old.example.org/img{}", i % n)
            }
            Mutation::Flag(i, f) => s.images[i % n].flags[f] ^= true,
            Mutation::InfoCommand(c) => {
                if let Some(k) = s.info_cmds.keys().nth(c % INFO.len().max(1)).cloned() {
                    s.info_cmds.insert(k, "echo old".into());
                }
            }
            Mutation::OldSkip(i, j) => {
                if s.legacy {
                    let plan = s.plans[j % s.plans.len()].name.clone();
                    for x in i % n..n {
                        if std::iter::successors(Some(x), |&y| s.images[y].parent)
                            .any(|a| a == i % n)
                        {
                            s.images[x].skip.insert(plan.clone());
                        }
                    }
                }
            }
            Mutation::DropPlan(j) => {
                if s.plans.len() > 1 {
                    let gone = s.plans.remove(j % s.plans.len()).name;
                    for img in &mut s.images {
                        img.skip.remove(&gone);
                        img.per_plan.remove(&gone);
                    }
                }
            }
            Mutation::PlanArg(i, j, v) => {
                if s.legacy {
                    let plan = s.plans[j % s.plans.len()].name.clone();
                    let (w, r) = ARG_VALUES[v];
                    s.images[i % n]
                        .per_plan
                        .entry(plan)
                        .or_default()
                        .insert("CUDA".into(), (w.to_string(), r.to_string()));
                }
            }
            Mutation::Root => s.write_root = !s.write_root && s.images[0].parent.is_none(),
        }
    }
    s
}

// ---------------------------------------------------------------------------
// Change sets and the oracle's reading of the change rules.

const IGNORE_POOL: &[&str] = &[
    "conftest.py",
    "tests_common",
    "spec.yml",
    "change_ignore.json",
    "*/README.md",
    "**/*.md",
    "*/scripts/*.sh",
    "tests_common/*",
    "{K}",
    "{K}/docs/**",
    "{K}/test",
];
const BUILD_ALL_POOL: &[&str] = &[
    "spec.yml",
    "tests_common",
    "change_ignore.json",
    "conftest.py",
    "{K}/Dockerfile",
    "*/base.txt",
];
const MESSAGES: &[&str] = &[
    "fix a typo",
    "Full Rebuild please",
    "do a FULL REBUILD",
    "full_rebuild",
    "fullrebuild",
    "full\nrebuild",
    "bump\n\nfull rebuild of everything",
];
const BRANCHES: &[&str] = &[
    "main",
    "stable",
    "feature/New thing",
    "rc-stable",
    "final",
    "dev_2024.1",
    "///",
    "STABLE",
];

#[derive(Debug, Clone)]
struct Changes {
    paths: Vec<(u8, usize, usize)>,
    ignore: Vec<(usize, usize)>,
    build_all: Vec<(usize, usize)>,
    messages: Vec<(usize, u64)>,
    forced: u8,
    old: Vec<Mutation>,
    old_unreadable: bool,
    old_legacy: bool,
    published: Vec<u8>,
    dirty: bool,
    suffix: (bool, usize, u64, usize),
}

fn changes() -> impl Strategy<Value = Changes> {
    (
        prop::collection::vec((0..10u8, any::<usize>(), 0..FILES.len()), 0..8),
        prop::collection::vec((0..IGNORE_POOL.len(), any::<usize>()), 0..4),
        prop::collection::vec((0..BUILD_ALL_POOL.len(), any::<usize>()), 0..3),
        // Mostly "fix a typo": most ranges ask for no full rebuild.
        prop::collection::vec((0..MESSAGES.len() * 4, any::<u64>()), 1..4),
        0..40u8,
        prop::collection::vec(mutation(), 0..4),
        prop::bool::weighted(0.1),
        any::<bool>(),
        prop::collection::vec(0..3u8, 120),
        prop::bool::weighted(0.3),
        (
            any::<bool>(),
            0..BRANCHES.len() + 1,
            any::<u64>(),
            100..140usize,
        ),
    )
        .prop_map(
            |(
                paths,
                ignore,
                build_all,
                messages,
                forced,
                old,
                old_unreadable,
                old_legacy,
                published,
                dirty,
                suffix,
            )| Changes {
                paths,
                ignore,
                build_all,
                messages,
                forced,
                old,
                old_unreadable,
                old_legacy,
                published,
                dirty,
                suffix,
            },
        )
}

fn fill(pattern: &str, key: &str) -> String {
    pattern.replace("{K}", key)
}

/// Whether one glob component (`*` and `?` only) matches one path component.
fn component_matches(p: &[u8], s: &[u8]) -> bool {
    match (p.first(), s.first()) {
        (None, None) => true,
        (Some(b'*'), _) => {
            component_matches(&p[1..], s) || (!s.is_empty() && component_matches(p, &s[1..]))
        }
        (Some(b'?'), Some(_)) => component_matches(&p[1..], &s[1..]),
        (Some(a), Some(b)) if a == b => component_matches(&p[1..], &s[1..]),
        _ => false,
    }
}

fn glob_matches(p: &[&str], s: &[&str]) -> bool {
    match p.first() {
        None => s.is_empty(),
        Some(&"**") => glob_matches(&p[1..], s) || (!s.is_empty() && glob_matches(p, &s[1..])),
        Some(c) => {
            !s.is_empty()
                && component_matches(c.as_bytes(), s[0].as_bytes())
                && glob_matches(&p[1..], &s[1..])
        }
    }
}

/// design.md: a bare name matches the first component under images/; anything
/// else is a glob relative to images/ (and covers what lies beneath a match).
fn rule_matches(pattern: &str, rel: &str) -> bool {
    let comps: Vec<&str> = rel.split('/').collect();
    if !pattern.contains('/') && !pattern.contains(['*', '?', '[', '{']) {
        return comps[0] == pattern;
    }
    let p: Vec<&str> = pattern.split('/').collect();
    (1..=comps.len()).any(|n| glob_matches(&p, &comps[..n]))
}

struct MapLookup(BTreeMap<(String, String), Published>);

impl PublishedLookup for MapLookup {
    fn lookup(&mut self, image: &ImageSpec, plan: &PlanSpec, _: Option<&str>) -> Published {
        self.0
            .get(&(image.name().to_string(), plan.name.value.clone()))
            .cloned()
            .unwrap_or(Published::Missing)
    }
}

type Key = (String, String);

struct Case {
    stack: Stack,
    old: Option<Stack>,
    text: String,
    old_text: Option<String>,
    paths: Vec<String>,
    ignore: Vec<String>,
    build_all: Vec<String>,
    commits: Vec<Commit>,
    forced: Option<Reason>,
    published: BTreeMap<Key, Published>,
    /// The paths of `paths` that are uncommitted (a dirty working tree).
    uncommitted: BTreeMap<String, String>,
    dirty: bool,
    suffix: Result<String, SuffixError>,
}

fn make_case(stack: Stack, c: Changes, schema_flip: bool) -> Case {
    let n = stack.images.len();
    let key = |i: usize| stack.images[i % n].key.clone();
    let paths: Vec<String> = c
        .paths
        .iter()
        .map(|&(kind, i, f)| match kind {
            0..=3 => format!("images/{}/{}", key(i), FILES[f]),
            4 => "images/spec.yml".to_string(),
            5 => format!("images/tests_common/{}", FILES[f]),
            6 => [
                "images/conftest.py",
                "images/change_ignore.json",
                "images/README.md",
            ][i % 3]
                .to_string(),
            7 => [
                "README.md",
                ".github/workflows/main.yml",
                "docs/images/x.md",
            ][i % 3]
                .to_string(),
            8 => format!("images/not-an-image/{}", FILES[f]),
            _ => [
                format!("images/{}", key(i)),
                format!("images2/{}/Dockerfile", key(i)),
                format!("other/images/{}/Dockerfile", key(i)),
            ][f % 3]
                .clone(),
        })
        .collect();
    let ignore: Vec<String> = c
        .ignore
        .iter()
        .map(|&(p, i)| fill(IGNORE_POOL[p], &key(i)))
        .collect();
    let build_all: Vec<String> = c
        .build_all
        .iter()
        .map(|&(p, i)| fill(BUILD_ALL_POOL[p], &key(i)))
        .collect();
    let commits: Vec<Commit> = c
        .messages
        .iter()
        .map(|&(m, sha)| Commit {
            sha: format!("{sha:016x}{:024x}", m),
            message: MESSAGES.get(m).unwrap_or(&MESSAGES[0]).to_string(),
        })
        .collect();
    let forced = match c.forced {
        0 => Some(Reason::All),
        1 => Some(Reason::FirstBuild),
        2 => Some(Reason::FullRebuildBranch {
            branch: "release".into(),
        }),
        _ => None,
    };
    let old = (!c.old_unreadable).then(|| apply(&stack, &c.old));
    let old_text = paths
        .iter()
        .any(|p| p == "images/spec.yml")
        .then(|| match &old {
            Some(o) => o.to_yaml(if o.fits_current() { c.old_legacy } else { true }),
            None => format!(
                "images:\n<<<<<<< HEAD\n  a: {{image_name: x/a}}\n=======\n{}>>>>>>> 1234567\n",
                stack.to_yaml(stack.legacy)
            ),
        });
    let legacy = if stack.fits_current() {
        stack.legacy ^ schema_flip
    } else {
        true
    };
    let text = stack.to_yaml(legacy);
    let mut published = BTreeMap::new();
    let mut k = 0;
    for img in &stack.images {
        for p in &stack.plans {
            let v = match c.published[k % c.published.len()] {
                0 => Published::At(format!(
                    "{}:{}-pub{k}@sha256:{:064x}",
                    img.name, p.prefix, k
                )),
                1 => Published::Missing,
                _ => Published::Local {
                    reference: format!("{}:{}-loc{k}", img.name, p.prefix),
                    id: format!("sha256:{k:064x}"),
                },
            };
            published.insert((img.key.clone(), p.name.clone()), v);
            k += 1;
        }
    }
    let (by_hash, branch, hash, long) = c.suffix;
    let source = if by_hash {
        SuffixSource::Hash(format!("{hash:016x}"))
    } else if branch == BRANCHES.len() {
        SuffixSource::Branch("b".repeat(long))
    } else {
        SuffixSource::Branch(BRANCHES[branch].to_string())
    };
    let parsed_for_suffix = spec::parse(&text, "images/spec.yml").spec.expect("spec");
    let suffix = plan::tag_suffix(&parsed_for_suffix, &source, c.dirty);
    // In a dirty tree, every other changed path is an uncommitted edit.
    let uncommitted = if c.dirty {
        paths
            .iter()
            .step_by(2)
            .map(|p| (p.clone(), "modified".to_string()))
            .collect()
    } else {
        BTreeMap::new()
    };
    Case {
        stack,
        old: if old_text.is_some() { old } else { None },
        text,
        old_text,
        paths,
        ignore,
        build_all,
        commits,
        forced,
        published,
        uncommitted,
        dirty: c.dirty,
        suffix,
    }
}

fn run(case: &Case, spec: &Spec, suffix: &str) -> Plan {
    let graph = Graph::new(spec).expect("a valid spec makes a graph");
    let json =
        serde_json::json!({"ChangeIgnore": case.ignore, "BuildAll": case.build_all}).to_string();
    let (rules, warnings) =
        changes::parse_change_rules(&json, "images/change_ignore.json").expect("rules");
    assert!(warnings.is_empty());
    let old_spec = case.old_text.as_ref().and_then(|t| {
        let p = spec::parse(t, "images/spec.yml");
        if p.has_errors() { None } else { p.spec }
    });
    assert_eq!(
        old_spec.is_some(),
        case.old.is_some(),
        "the old spec is read exactly when it is readable"
    );
    let set = ChangeSet {
        images_dir: "images",
        paths: &case.paths,
        uncommitted: &case.uncommitted,
        commits: &case.commits,
        rules: &rules,
        old_spec: old_spec.as_ref(),
        forced: case.forced.clone(),
    };
    let detected = changes::detect(spec, &set);
    let options = PlanOptions {
        head: case.commits.last().unwrap().sha.clone(),
        base: Some("base".into()),
        changed_files: case.paths.clone(),
        suffix: suffix.to_string(),
        dirty: case.dirty,
        ..PlanOptions::default()
    };
    plan::plan(
        spec,
        &graph,
        &detected,
        &options,
        &mut MapLookup(case.published.clone()),
    )
}

fn lookup(case: &Case, image: &str, plan: &str) -> Published {
    case.published
        .get(&(image.to_string(), plan.to_string()))
        .cloned()
        .unwrap_or(Published::Missing)
}

/// design.md: promotion tags are `<prefix>-stable` and `stable`; with the
/// legacy `tag_stable_postfix`, every plan's own stable tag is one too.
/// (`prefix` is the tag's own plan prefix.)
fn is_promotion(tag: &str, prefix: &str, s: &Stack) -> bool {
    tag == "stable"
        || tag == format!("{prefix}-stable")
        || s.plans
            .iter()
            .any(|p| tag == format!("{}{}", p.prefix, p.postfix.as_deref().unwrap_or("-stable")))
}

fn check(case: Case, seen: &RefCell<BTreeMap<&'static str, usize>>) -> Result<(), TestCaseError> {
    let see = |what: &'static str| *seen.borrow_mut().entry(what).or_default() += 1;
    let s = &case.stack;
    // Reading: the text says what the model says, and validates.
    let parsed = spec::parse(&case.text, "images/spec.yml");
    prop_assert!(
        !parsed.has_errors(),
        "{:#?}\n{}",
        parsed.diagnostics,
        case.text
    );
    let spec = parsed.spec.expect("spec");
    let problems: Vec<_> = validate::validate(&spec)
        .into_iter()
        .filter(|d| d.is_error())
        .collect();
    prop_assert!(problems.is_empty(), "{problems:#?}\n{}", case.text);
    prop_assert_eq!(
        spec.schema == Schema::Legacy,
        case.text.contains("\nplans:\n")
    );
    prop_assert_eq!(
        spec.image_keys().collect::<Vec<_>>(),
        s.images.iter().map(|i| i.key.as_str()).collect::<Vec<_>>()
    );
    let plans: Vec<(&str, &str)> = spec
        .plans
        .iter()
        .map(|p| (p.name.value.as_str(), p.tag_prefix.value.as_str()))
        .collect();
    prop_assert_eq!(
        plans,
        s.plans
            .iter()
            .map(|p| (p.name.as_str(), p.prefix.as_str()))
            .collect::<Vec<_>>()
    );
    for (i, img) in s.images.iter().enumerate() {
        let got = spec.image(&img.key).unwrap();
        prop_assert_eq!(got.parent(), s.parent_key(i));
        prop_assert_eq!(
            got.image_name.as_ref().map(|n| n.value.as_str()),
            Some(img.name.as_str())
        );
        prop_assert_eq!(
            [
                got.integration_tests,
                got.basic_tests,
                got.prune,
                got.prepull
            ],
            img.flags
        );
        for p in &s.plans {
            prop_assert_eq!(got.in_plan(&p.name), s.in_plan(i, &p.name));
        }
    }

    // Tag suffix: either usable and never a promotion tag, or refused for a reason.
    let suffix = match &case.suffix {
        Ok(suffix) => suffix.clone(),
        Err(SuffixError::PromotionTag { tag, suffix }) => {
            let prefix = tag.strip_suffix(&format!("-{suffix}")).unwrap_or("");
            prop_assert!(is_promotion(tag, prefix, s), "refused {tag} wrongly");
            see("suffix refused: promotion tag");
            return Ok(());
        }
        Err(_) => {
            see("suffix refused: unusable");
            return Ok(());
        }
    };

    let plan1 = run(&case, &spec, &suffix);
    // Deterministic: the same inputs make the same plan and the same JSON.
    let plan2 = run(&case, &spec, &suffix);
    prop_assert_eq!(&plan1, &plan2);
    prop_assert_eq!(
        serde_json::to_string(&plan1).unwrap(),
        serde_json::to_string(&plan2).unwrap()
    );
    let p = &plan1;

    // One entry per image per plan (minus skipped), plans in spec order, parents first.
    let mut want_entries = Vec::new();
    for pl in &s.plans {
        for (i, img) in s.images.iter().enumerate() {
            if s.in_plan(i, &pl.name) {
                want_entries.push((pl.name.clone(), img.key.clone()));
            }
        }
    }
    let mut got_entries: Vec<(String, String)> = p
        .builds
        .iter()
        .map(|b| (b.plan.clone(), b.image.clone()))
        .collect();
    let plan_order: Vec<&str> = p.builds.iter().map(|b| b.plan.as_str()).collect();
    let mut dedup = plan_order.clone();
    dedup.dedup();
    prop_assert_eq!(
        dedup,
        s.plans
            .iter()
            .map(|p| p.name.as_str())
            .filter(|n| plan_order.contains(n))
            .collect::<Vec<_>>()
    );
    for (at, b) in p.builds.iter().enumerate() {
        if let Some(parent) = &b.parent {
            let pos = p
                .builds
                .iter()
                .position(|x| x.plan == b.plan && x.image == *parent);
            prop_assert!(
                pos.is_some_and(|pp| pp < at),
                "parent {parent} of {} not before it",
                b.image
            );
        }
    }
    got_entries.sort();
    want_entries.sort();
    prop_assert_eq!(got_entries, want_entries);

    // The oracle: which (image, plan) rebuild, from design.md's rules.
    let ignored = |rel: &str| case.ignore.iter().any(|pat| rule_matches(pat, rel));
    let msg_full = case
        .commits
        .iter()
        .find(|c| c.message.to_lowercase().contains("full rebuild"));
    let build_all_hit = case
        .paths
        .iter()
        .filter_map(|path| path.strip_prefix("images/").map(|rel| (path, rel)))
        .find(|(_, rel)| !ignored(rel) && case.build_all.iter().any(|pat| rule_matches(pat, rel)));
    let full = case.forced.is_some() || msg_full.is_some() || build_all_hit.is_some();
    let spec_touched = case.paths.iter().any(|p| p == "images/spec.yml") && !ignored("spec.yml");
    let spec_diff: BTreeSet<Key> = if spec_touched {
        let mut d = BTreeSet::new();
        for pl in &s.plans {
            for img in &s.images {
                let new_view = s.view(&img.key, &pl.name);
                let old_view = case.old.as_ref().and_then(|o| o.view(&img.key, &pl.name));
                if new_view.is_some() && new_view != old_view {
                    d.insert((img.key.clone(), pl.name.clone()));
                }
            }
        }
        d
    } else {
        BTreeSet::new()
    };
    let mut direct: BTreeSet<Key> = spec_diff.clone();
    let mut changed_paths: BTreeMap<String, Vec<&String>> = BTreeMap::new();
    for path in &case.paths {
        let Some(rel) = path.strip_prefix("images/") else {
            continue;
        };
        let Some((first, _)) = rel.split_once('/') else {
            continue;
        };
        if ignored(rel) || s.index(first).is_none() {
            continue;
        }
        changed_paths
            .entry(first.to_string())
            .or_default()
            .push(path);
        for pl in &s.plans {
            if s.in_plan(s.index(first).unwrap(), &pl.name) {
                direct.insert((first.to_string(), pl.name.clone()));
            }
        }
    }
    let mut expected: BTreeSet<Key> = BTreeSet::new();
    for pl in &s.plans {
        let members: Vec<usize> = (0..s.images.len())
            .filter(|&i| s.in_plan(i, &pl.name))
            .collect();
        let mut needed: BTreeSet<usize> = BTreeSet::new();
        let rebuilt = loop {
            let rebuilt: BTreeSet<usize> = members
                .iter()
                .copied()
                // Changed itself or below a changed image, or needed by a
                // rebuilt child: a parent built only for that does not
                // rebuild its other children.
                .filter(|&i| {
                    full || needed.contains(&i)
                        || std::iter::successors(Some(i), |&a| s.images[a].parent)
                            .any(|a| direct.contains(&(s.images[a].key.clone(), pl.name.clone())))
                })
                .collect();
            let missing: Vec<usize> = rebuilt
                .iter()
                .filter_map(|&i| s.images[i].parent)
                .filter(|&par| {
                    !rebuilt.contains(&par)
                        && !needed.contains(&par)
                        && lookup(&case, &s.images[par].key, &pl.name) == Published::Missing
                })
                .collect();
            if missing.is_empty() {
                break rebuilt;
            }
            needed.extend(missing);
        };
        expected.extend(
            rebuilt
                .into_iter()
                .map(|i| (s.images[i].key.clone(), pl.name.clone())),
        );
    }
    let got: BTreeSet<Key> = p
        .rebuilds()
        .map(|b| (b.image.clone(), b.plan.clone()))
        .collect();
    prop_assert_eq!(
        &got,
        &expected,
        "\n{}\npaths {:?}\nignore {:?} build_all {:?}",
        case.text,
        case.paths,
        case.ignore,
        case.build_all
    );
    prop_assert_eq!(p.full_rebuild, full);
    see(if spec.schema == Schema::Legacy {
        "schema: legacy"
    } else {
        "schema: current"
    });
    see(if full {
        "full rebuild"
    } else if got.is_empty() {
        "nothing rebuilt"
    } else {
        "partial rebuild"
    });
    if case.old_text.is_some() {
        see(if case.old.is_none() {
            "old spec: unreadable"
        } else if spec_diff.is_empty() {
            "old spec: no difference"
        } else {
            "old spec: differs"
        });
    }
    if case.dirty {
        see("dirty");
        prop_assert!(p.dirty);
        prop_assert!(
            suffix.ends_with(plan::DIRTY_SUFFIX),
            "a dirty plan's suffix {suffix} ends in -dirty"
        );
    }

    let build = |image: &str, plan: &str| p.build(image, plan).unwrap();
    for b in &p.builds {
        let i = s.index(&b.image).unwrap();
        let pl = s.plan(&b.plan).unwrap();
        // Nothing rebuilds without a reason, and every reason holds.
        prop_assert_eq!(b.rebuild, b.reason != Reason::Unchanged);
        see(match &b.reason {
            Reason::Unchanged => "reason: unchanged",
            Reason::All | Reason::FirstBuild | Reason::FullRebuildBranch { .. } => "reason: forced",
            Reason::FullRebuildMessage { .. } => "reason: message",
            Reason::BuildAll { .. } => "reason: build-all",
            Reason::Changed { .. } => "reason: changed",
            Reason::Uncommitted { .. } => "reason: uncommitted",
            Reason::SpecChanged { .. } => "reason: spec changed",
            Reason::ParentRebuilt { .. } => "reason: parent rebuilt",
            Reason::NotPublished { .. } => "reason: not published",
            Reason::SameInputs { .. } => "reason: same inputs",
            Reason::BaseMoved { .. } => "reason: base moved",
        });
        if b.base_ref
            .as_deref()
            .is_some_and(|r| r.contains("@sha256:"))
        {
            see("base: published ref");
        }
        if b.base_image_id.is_some() {
            see("base: local image");
        }
        match &b.reason {
            Reason::Unchanged => {}
            Reason::All | Reason::FirstBuild | Reason::FullRebuildBranch { .. } => {
                prop_assert_eq!(Some(&b.reason), case.forced.as_ref())
            }
            Reason::FullRebuildMessage { sha } => {
                prop_assert!(case.forced.is_none());
                prop_assert!(
                    msg_full.is_some_and(|c| c.sha.starts_with(sha.as_str())),
                    "{sha}"
                );
            }
            Reason::BuildAll { pattern, path } => {
                prop_assert!(case.forced.is_none() && msg_full.is_none());
                let rel = path.strip_prefix("images/").expect("under images/");
                prop_assert!(case.paths.contains(path) && !ignored(rel), "{path}");
                prop_assert!(
                    case.build_all.contains(pattern) && rule_matches(pattern, rel),
                    "{pattern} {path}"
                );
            }
            Reason::Changed { path } | Reason::Uncommitted { path, .. } => {
                prop_assert!(!full);
                // An uncommitted path says so, with how it changed.
                let change = match &b.reason {
                    Reason::Uncommitted { change, .. } => Some(change),
                    _ => None,
                };
                prop_assert_eq!(case.uncommitted.get(path), change);
                prop_assert!(
                    changed_paths
                        .get(&b.image)
                        .is_some_and(|ps| ps.contains(&path)),
                    "{path} does not change {}",
                    b.image
                );
            }
            Reason::SpecChanged { .. } => {
                prop_assert!(!full);
                prop_assert!(spec_diff.contains(&(b.image.clone(), b.plan.clone())));
            }
            Reason::SameInputs { .. } => {
                prop_assert!(
                    false,
                    "no lookup of these properties finds an image to reuse"
                );
            }
            Reason::BaseMoved { .. } => {
                prop_assert!(false, "no lookup of these properties finds a base");
            }
            Reason::ParentRebuilt { parent } => {
                prop_assert_eq!(Some(parent.as_str()), s.parent_key(i));
                prop_assert!(build(parent, &b.plan).rebuild);
            }
            Reason::NotPublished { child } => {
                let c = s.index(child).unwrap();
                prop_assert_eq!(s.images[c].parent, Some(i));
                prop_assert!(build(child, &b.plan).rebuild);
                prop_assert_eq!(lookup(&case, &b.image, &b.plan), Published::Missing);
            }
        }
        // A directly changed image says so, unless everything rebuilds.
        if !full && direct.contains(&(b.image.clone(), b.plan.clone())) {
            prop_assert!(
                matches!(
                    b.reason,
                    Reason::Changed { .. }
                        | Reason::Uncommitted { .. }
                        | Reason::SpecChanged { .. }
                ),
                "{:?}",
                b.reason
            );
        }
        // Every descendant of a rebuilt image rebuilds, in the same plan,
        // unless the image is built only because a child needs it.
        if b.rebuild && !matches!(b.reason, Reason::NotPublished { .. }) {
            for c in s.images.iter().filter(|c| c.parent == Some(i)) {
                if let Some(cb) = p.build(&c.key, &b.plan) {
                    prop_assert!(
                        cb.rebuild,
                        "{} rebuilds but its child {} does not",
                        b.image,
                        c.key
                    );
                }
            }
        }

        // Tags and refs.
        prop_assert_eq!(&b.tag, &format!("{}-{suffix}", pl.prefix));
        prop_assert!(
            b.tag.parse::<Tag>().is_ok(),
            "tag {:?} is not a valid tag",
            b.tag
        );
        prop_assert!(
            !is_promotion(&b.tag, &pl.prefix, s),
            "{} is a promotion tag",
            b.tag
        );
        prop_assert_eq!(&b.reference, &format!("{}:{}", s.images[i].name, b.tag));
        prop_assert!(b.reference.parse::<ImageRef>().is_ok(), "{}", b.reference);

        // Base refs: a rebuilt parent's ref, else its published ref.
        let want_base = s.parent_key(i).and_then(|par| {
            let pb = build(par, &b.plan);
            if pb.rebuild {
                Some(pb.reference.clone())
            } else {
                match lookup(&case, par, &b.plan) {
                    Published::At(r) if b.rebuild => Some(r),
                    Published::Local { reference, .. } if b.rebuild => Some(reference),
                    _ => None,
                }
            }
        });
        if b.rebuild || want_base.is_some() {
            prop_assert_eq!(&b.base_ref, &want_base, "{} in {}", b.image, b.plan);
        }
        prop_assert_eq!(b.parent.as_deref(), s.parent_key(i));
        // A rebuilt child is always built on a pinned base: its parent of
        // this run, a digest, or a local image ID.
        if b.rebuild && b.parent.is_some() {
            let pinned = match b.base_source {
                Some(plan::BaseSource::ThisRun) => build(s.parent_key(i).unwrap(), &b.plan).rebuild,
                Some(plan::BaseSource::Registry) => b
                    .base_ref
                    .as_deref()
                    .is_some_and(|r| r.contains("@sha256:")),
                Some(plan::BaseSource::Local) => b.base_image_id.is_some(),
                None => false,
            };
            prop_assert!(
                pinned,
                "{} in {} is built on an unpinned base",
                b.image,
                b.plan
            );
        }

        // Build args: image args, then plan args, then the base tag.
        let mut want_args = s.args(i, &b.plan);
        if let Some(base) = &b.base_ref {
            let after_name = &base[base.rfind('/').unwrap_or(0)..];
            let tag_at = base.len() - after_name.len() + after_name.find(':').unwrap() + 1;
            want_args.insert(
                plan::DEFAULT_BASE_ARG.to_string(),
                base[tag_at..].to_string(),
            );
        }
        prop_assert_eq!(&b.build_args, &want_args, "{} in {}", b.image, b.plan);
    }
    Ok(())
}

#[test]
fn plans_follow_the_change_rules() {
    let seen = RefCell::new(BTreeMap::new());
    let mut runner = TestRunner::new(ProptestConfig {
        cases: 512,
        failure_persistence: None,
        ..ProptestConfig::default()
    });
    let result = runner.run(
        &(stack(), changes(), any::<bool>()),
        |(stack, changes, flip)| check(make_case(stack, changes, flip), &seen),
    );
    if let Err(e) = result {
        panic!("{e}");
    }
    // The generator must reach every rule, or the properties above prove little.
    let seen = seen.into_inner();
    println!("{seen:#?}");
    for what in [
        "suffix refused: promotion tag",
        "suffix refused: unusable",
        "schema: legacy",
        "schema: current",
        "full rebuild",
        "nothing rebuilt",
        "partial rebuild",
        "old spec: unreadable",
        "old spec: no difference",
        "old spec: differs",
        "dirty",
        "reason: unchanged",
        "reason: forced",
        "reason: message",
        "reason: build-all",
        "reason: changed",
        "reason: uncommitted",
        "reason: spec changed",
        "reason: parent rebuilt",
        "reason: not published",
        "base: published ref",
        "base: local image",
    ] {
        assert!(
            seen.get(what).copied().unwrap_or(0) > 0,
            "no case exercised {what:?}: {seen:#?}"
        );
    }
}

#[test]
fn the_glob_oracle_reads_patterns_as_the_design_says() {
    assert!(rule_matches("conftest.py", "conftest.py"));
    assert!(rule_matches("tests_common", "tests_common/a/b.py"));
    assert!(!rule_matches("img1", "img10/Dockerfile"));
    assert!(rule_matches("*/README.md", "img1/README.md"));
    assert!(!rule_matches("*/README.md", "img1/docs/README.md"));
    assert!(rule_matches("**/*.md", "img1/docs/guide.md"));
    assert!(rule_matches("**/*.md", "README.md"));
    assert!(rule_matches("img1/test", "img1/test/test_basic.py"));
    assert!(rule_matches("img1/docs/**", "img1/docs/guide.md"));
    assert!(!rule_matches("img1/docs/**", "img1/Dockerfile"));
}
