//! The plan: for every image and plan of the stack, whether it is rebuilt,
//! why, and with which tag, base reference and build args.

use crate::changes::{Detected, Reason};
pub use crate::dockerfile::DEFAULT_BASE_ARG;
use crate::dockerfile::{ArgRole, DockerfileBase};
use crate::graph::Graph;
use crate::inputs::{self, InputParts};
use crate::reference::{MAX_TAG_LEN, Tag};
use crate::spec::{ImageSpec, PlanSpec, Spec};
use crate::test_folders::{self, TestFolders};
use std::collections::{BTreeMap, BTreeSet};

/// Where the image of an unchanged parent stands, to build a child on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Published {
    /// Published at this reference, pinned by digest
    /// (`name:tag@sha256:…`).
    At(String),
    /// Offline: an image of the local store at `reference` (`name:tag`),
    /// pinned by its image ID.
    Local {
        /// The local reference.
        reference: String,
        /// Its image ID (`sha256:…`).
        id: String,
    },
    /// Nothing is published (or, offline, in the local store) for this
    /// image and plan, or the lookup could not tell: a child is never built
    /// on an unpinned base, so the parent is built in the same run.
    Missing,
}

/// The suffix added to every tag of a plan of a working tree with
/// uncommitted changes: such images are never mistaken for a commit's.
pub const DIRTY_SUFFIX: &str = "-dirty";

/// The tags where an image's most recent build for a plan is looked for,
/// in order, the first found winning: `<prefix>-<suffix>` for each of
/// `suffixes` (the head's and its ancestors' short hashes, newest first,
/// then branch names: see the CLI's lookups), then the plan's stable tag.
/// The registry and the local store are searched in this same order.
pub fn tag_candidates(plan: &PlanSpec, suffixes: &[String]) -> Vec<String> {
    let prefix = &plan.tag_prefix.value;
    suffixes
        .iter()
        .map(|s| format!("{prefix}-{s}"))
        .chain([plan.stable_tag()])
        .collect()
}

/// Looks up an image's most recent published reference for a plan, and
/// images already built from given inputs. The shell implements it over the
/// registry (or, offline, the local store); tests over a map.
pub trait PublishedLookup {
    /// The published reference of `image` for `plan`.
    fn lookup(&mut self, image: &ImageSpec, plan: &PlanSpec) -> Published;

    /// An image of `image` already built from the inputs of key `key`
    /// (see [`crate::inputs`]) and tested, or `None`. `run_reference` is the
    /// reference this run gives it (`name:tag`): an image that already
    /// carries it is [`Reusable::resumed`].
    fn reusable(&mut self, image: &ImageSpec, key: &str, run_reference: &str) -> Option<Reusable> {
        let _ = (image, key, run_reference);
        None
    }
}

/// An image already built from a build's inputs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reusable {
    /// Where it is: `name:inputs-<hex>@sha256:…` in a registry, or offline
    /// its local image ID.
    pub reference: inputs::ReuseFrom,
    /// What a child built on it is built on: its manifest digest, or
    /// offline its image ID.
    pub digest: String,
    /// It already carries the run's own reference: an earlier attempt of
    /// this run finished it (a rerun after a fault picks up from there).
    pub resumed: bool,
}

/// How the tag suffix is chosen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SuffixSource {
    /// The head commit's 7-character hash.
    Hash(String),
    /// The branch name, made into a valid tag.
    Branch(String),
}

/// Why a tag suffix cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SuffixError {
    /// The branch name has nothing a tag can be made of.
    #[error("the branch name '{0}' cannot be made into a tag: use --tag-suffix hash")]
    Unusable(String),
    /// The suffix would produce a promotion tag.
    #[error(
        "the tag suffix '{suffix}' would make the tag '{tag}', which is a promotion tag: builds never write it; use --tag-suffix hash or another branch name"
    )]
    PromotionTag {
        /// The suffix.
        suffix: String,
        /// The tag it makes.
        tag: String,
    },
    /// The hash is not a commit hash.
    #[error("'{0}' is not a commit hash")]
    BadHash(String),
}

/// Picks the tag suffix (ending in [`DIRTY_SUFFIX`] when `dirty`: the
/// plan is of a working tree with uncommitted changes) and checks that no
/// plan's tag made with it is a promotion tag (`<prefix>-stable`, or
/// `stable`).
pub fn tag_suffix(spec: &Spec, source: &SuffixSource, dirty: bool) -> Result<String, SuffixError> {
    let marker = if dirty { DIRTY_SUFFIX } else { "" };
    let suffix = match source {
        SuffixSource::Hash(sha) => {
            if sha.len() < 7 || !sha.chars().all(|c| c.is_ascii_hexdigit()) {
                return Err(SuffixError::BadHash(sha.clone()));
            }
            sha[..7].to_ascii_lowercase()
        }
        SuffixSource::Branch(branch) => {
            let tag = Tag::sanitize(branch).ok_or_else(|| SuffixError::Unusable(branch.clone()))?;
            // Every plan's `<prefix>-<suffix>` must itself be a valid tag, so
            // the suffix gets what the longest prefix leaves of the limit.
            let room = spec
                .plans
                .iter()
                .map(|p| MAX_TAG_LEN.saturating_sub(p.tag_prefix.value.len() + 1 + marker.len()))
                .min()
                .unwrap_or(MAX_TAG_LEN);
            if room == 0 {
                return Err(SuffixError::Unusable(branch.clone()));
            }
            // A sanitized tag is ASCII, so byte slicing is safe.
            tag.as_str()[..tag.as_str().len().min(room)].to_string()
        }
    } + marker;
    for plan in &spec.plans {
        let tag = format!("{}-{suffix}", plan.tag_prefix.value);
        let promotion = spec.plans.iter().any(|p| p.stable_tag() == tag)
            || tag == "stable"
            || suffix == "stable";
        if promotion {
            return Err(SuffixError::PromotionTag { suffix, tag });
        }
    }
    Ok(suffix)
}

/// One image in one plan.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Build {
    /// The image's key.
    pub image: String,
    /// The plan's name.
    pub plan: String,
    /// Whether this run builds it.
    pub rebuild: bool,
    /// Why (or `unchanged`).
    pub reason: Reason,
    /// The tag this run gives it.
    pub tag: String,
    /// `<image_name>:<tag>`.
    #[serde(rename = "ref")]
    pub reference: String,
    /// The parent's key.
    pub parent: Option<String>,
    /// What the image is built on: the parent's ref in this run, its
    /// published ref (pinned by digest) or, offline, a local image (pinned
    /// by `base_image_id`); `None` for roots.
    pub base_ref: Option<String>,
    /// Where `base_ref` comes from; `None` for roots.
    pub base_source: Option<BaseSource>,
    /// The local image ID the base is pinned to, when `base_source` is
    /// `local`: the build fails rather than use another image.
    pub base_image_id: Option<String>,
    /// The build args strata passes (spec, plan and `--build-arg`, and the
    /// base arg when known); Dockerfile defaults apply beneath them.
    pub build_args: BTreeMap<String, String>,
    /// The test folders its test stages run (see [`crate::test_folders`]).
    pub tests: TestFolders,
    /// The platforms it is built for (`platforms:` of the spec or the
    /// image, narrowed by `--platform`); empty: the engine's own, under
    /// the run's tags themselves. Otherwise each platform's image has its
    /// own tag (`<tag>-linux-arm64`) and the run's tag names their index.
    pub platforms: Vec<String>,
    /// Its input key (see [`crate::inputs`]), when the plan can tell it:
    /// not for a child of a parent this run builds.
    pub inputs: Option<String>,
    /// An image already built from the same inputs, which the run tags
    /// instead of building: a registry reference pinned by digest (offline,
    /// a local image ID).
    pub reuse: Option<inputs::ReuseFrom>,
    /// The reused image already carries this build's reference: an earlier
    /// attempt of this run finished it before the run stopped.
    pub resumed: bool,
    /// What the input key is made of, but the base.
    #[serde(skip)]
    pub input_parts: InputParts,
    /// The build arg that names its base (`BASE_TAG`), if it has one.
    #[serde(skip)]
    pub base_arg: Option<String>,
    /// What a child of this build is built on when it is reused: the reused
    /// image's digest (offline, its image ID).
    #[serde(skip)]
    pub reuse_digest: Option<String>,
    /// For a build of several platforms, each platform's own input key and
    /// reuse, by platform (`linux/arm64`): each platform's image is found
    /// and reused on its own (an image is reused when every platform is).
    pub per_platform: BTreeMap<String, PlatformInputs>,
}

impl Build {
    /// Appends `tail` to what the build is built on, in both places that
    /// name it: its base reference and its base arg's value (the parent's
    /// tag). A platform's image takes its parent's of the same platform
    /// (`-linux-arm64`); a job pins a parent another job pushed
    /// (`…@sha256:…`).
    pub fn extend_base(&mut self, tail: &str) {
        if let Some(base) = self.base_ref.as_mut() {
            base.push_str(tail);
        }
        if let Some(value) = self
            .base_arg
            .as_ref()
            .and_then(|a| self.build_args.get_mut(a))
        {
            value.push_str(tail);
        }
    }
}

/// One platform's input key and reuse, of a build of several platforms.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct PlatformInputs {
    /// The key of that platform's image, when the plan can tell it.
    pub inputs: Option<String>,
    /// The image of that platform to reuse (`name:inputs-<hex>@sha256:…`).
    pub reuse: Option<inputs::ReuseFrom>,
    /// It already carries the platform's tag of this run.
    pub resumed: bool,
    /// What a child's image of the same platform is built on when reused.
    #[serde(skip)]
    pub reuse_digest: Option<String>,
}

/// Where a child's base comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BaseSource {
    /// The parent is built in the same run.
    ThisRun,
    /// The parent's published image, pinned by digest.
    Registry,
    /// Offline: an image of the local store, pinned by image ID.
    Local,
}

impl BaseSource {
    /// How the plan's text output says it.
    pub fn describe(self) -> &'static str {
        match self {
            BaseSource::ThisRun => "built in this run",
            BaseSource::Registry => "published",
            BaseSource::Local => "local image",
        }
    }
}

/// The plan for a range: the JSON contract of `strata plan --format json`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Plan {
    /// The head commit.
    pub head: String,
    /// The base commit, `None` for a first build.
    pub base: Option<String>,
    /// Whether every image is rebuilt.
    pub full_rebuild: bool,
    /// The changed paths of the range, and the uncommitted ones.
    pub changed_files: Vec<String>,
    /// Whether the plan is of a working tree with uncommitted changes under
    /// the images folder (its tags end in `-dirty`).
    pub dirty: bool,
    /// One entry per image per plan, plans in spec order, parents first.
    pub builds: Vec<Build>,
}

impl Plan {
    /// The builds that this run rebuilds.
    pub fn rebuilds(&self) -> impl Iterator<Item = &Build> {
        self.builds.iter().filter(|b| b.rebuild)
    }

    /// The build of `image` in `plan`.
    pub fn build(&self, image: &str, plan: &str) -> Option<&Build> {
        self.builds
            .iter()
            .find(|b| b.image == image && b.plan == plan)
    }
}

/// Everything the plan is made from, besides the spec and the detected changes.
#[derive(Debug, Clone, Default)]
pub struct PlanOptions {
    /// The head commit.
    pub head: String,
    /// The base commit.
    pub base: Option<String>,
    /// The changed paths, as reported.
    pub changed_files: Vec<String>,
    /// Whether the working tree has uncommitted changes under the images
    /// folder.
    pub dirty: bool,
    /// The tag suffix (see [`tag_suffix`]).
    pub suffix: String,
    /// Only this plan, when set.
    pub only_plan: Option<String>,
    /// `--build-arg K=V`: win over everything.
    pub cli_args: BTreeMap<String, String>,
    /// Each image's Dockerfile base, by key, where it could be read.
    pub dockerfiles: BTreeMap<String, DockerfileBase>,
    /// The test folders that exist in the images folder.
    pub test_folders: BTreeSet<String>,
    /// Each image's folder content, for its input key: `git-tree:<oid>` or
    /// `files:sha256:<hex>` (see [`crate::inputs`]).
    pub contexts: BTreeMap<String, String>,
    /// The platform built for (`linux/amd64`).
    pub platform: String,
    /// The builder (`buildkit`, `classic`).
    pub builder: String,
    /// Look for images already built from the same inputs (`--no-reuse`
    /// turns it off).
    pub reuse: bool,
    /// `--platform`: only these of the declared platforms.
    pub only_platforms: Vec<String>,
}

/// Makes the plan. `spec` must be valid (its graph builds).
pub fn plan(
    spec: &Spec,
    graph: &Graph,
    detected: &Detected,
    options: &PlanOptions,
    published: &mut dyn PublishedLookup,
) -> Plan {
    let mut builds = Vec::new();
    let order = graph.topo_order();
    for plan in spec.plans.iter().filter(|p| {
        options
            .only_plan
            .as_ref()
            .is_none_or(|o| *o == p.name.value)
    }) {
        let plan_name = plan.name.value.as_str();
        let in_plan: Vec<usize> = order
            .iter()
            .copied()
            .filter(|&i| spec.images[i].in_plan(plan_name))
            .collect();
        // Images rebuilt because a child needs a parent that is not published.
        let mut needed: BTreeMap<usize, String> = BTreeMap::new();
        let mut lookups: BTreeMap<usize, Published> = BTreeMap::new();
        let reasons = loop {
            let reasons = rebuild_reasons(spec, graph, detected, plan_name, &in_plan, &needed);
            let mut grew = false;
            for &i in &in_plan {
                let Some(p) = graph.parent(i) else { continue };
                if !is_rebuilt(&reasons, i) || is_rebuilt(&reasons, p) {
                    continue;
                }
                let found = lookups
                    .entry(p)
                    .or_insert_with(|| published.lookup(&spec.images[p], plan))
                    .clone();
                if matches!(found, Published::Missing) && !needed.contains_key(&p) {
                    needed.insert(p, spec.images[i].name().to_string());
                    grew = true;
                }
            }
            if !grew {
                break reasons;
            }
        };
        let tag = format!("{}-{}", plan.tag_prefix.value, options.suffix);
        for &i in &in_plan {
            let image = &spec.images[i];
            let parent = graph.parent(i);
            let reason = reasons.get(&i).cloned().unwrap_or(Reason::Unchanged);
            let rebuild = reason != Reason::Unchanged;
            // An unchanged child of an unchanged parent is not built, so
            // its parent is looked up only to report where it stands.
            let (base_ref, base_source, base_image_id) = match parent {
                None => (None, None, None),
                Some(p) if is_rebuilt(&reasons, p) => (
                    Some(reference_of(&spec.images[p], &tag)),
                    Some(BaseSource::ThisRun),
                    None,
                ),
                Some(p) => match lookups.get(&p) {
                    Some(Published::At(r)) => (Some(r.clone()), Some(BaseSource::Registry), None),
                    Some(Published::Local { reference, id }) => (
                        Some(reference.clone()),
                        Some(BaseSource::Local),
                        Some(id.clone()),
                    ),
                    _ => (None, None, None),
                },
            };
            let mut build_args = image.build_args.clone();
            if let Some(args) = image.plan_args.get(plan_name) {
                build_args.extend(args.value.clone());
            }
            let (base_arg, role) =
                match options.dockerfiles.get(image.name()).map(|d| d.arg.clone()) {
                    Some(Some((arg, role))) => (Some(arg), role),
                    Some(None) => (None, ArgRole::Tag),
                    None => (Some(DEFAULT_BASE_ARG.to_string()), ArgRole::Tag),
                };
            if let (Some(base), Some(_), Some(arg)) = (&base_ref, parent, &base_arg) {
                let value = match role {
                    ArgRole::Whole => base.clone(),
                    ArgRole::Tag => tag_part(base),
                };
                build_args.insert(arg.clone(), value);
            }
            build_args.extend(options.cli_args.clone());
            let mut key_args = build_args.clone();
            if parent.is_some()
                && let Some(arg) = &base_arg
            {
                // The base arg names the parent's tag, new with every
                // commit; the key has the base's digest instead.
                key_args.remove(arg);
            }
            let platforms: Vec<String> = crate::platform::declared(spec, image)
                .into_iter()
                .filter(|p| {
                    options.only_platforms.is_empty()
                        || options.only_platforms.iter().any(|o| o == p)
                })
                .map(str::to_string)
                .collect();
            let input_parts = InputParts {
                context: options
                    .contexts
                    .get(image.name())
                    .cloned()
                    .unwrap_or_default(),
                dockerfile: "Dockerfile".to_string(),
                build_args: key_args,
                platform: if platforms.is_empty() {
                    options.platform.clone()
                } else {
                    platforms.join(",")
                },
                builder: options.builder.clone(),
            };
            builds.push(Build {
                image: image.name().to_string(),
                plan: plan_name.to_string(),
                rebuild,
                reason,
                tag: tag.clone(),
                reference: reference_of(image, &tag),
                parent: parent.map(|p| spec.images[p].name().to_string()),
                base_ref,
                base_source,
                base_image_id,
                build_args,
                tests: test_folders::of_image(spec, image.name(), &options.test_folders),
                platforms,
                inputs: None,
                reuse: None,
                resumed: false,
                input_parts,
                base_arg: base_arg.filter(|_| parent.is_some()),
                reuse_digest: None,
                per_platform: BTreeMap::new(),
            });
        }
        let first = builds.len() - in_plan.len();
        let reuse = options.reuse
            && !matches!(
                detected.full,
                Some(Reason::FullRebuildMessage { .. } | Reason::FullRebuildBranch { .. })
            );
        find_reusable(spec, &mut builds[first..], reuse, published);
    }
    Plan {
        head: options.head.clone(),
        base: options.base.clone(),
        full_rebuild: detected.full.is_some(),
        changed_files: options.changed_files.clone(),
        dirty: options.dirty,
        builds,
    }
}

/// Gives each build of one plan (parents first) its input key where the
/// plan can tell it, and, when `reuse`, an image already built from the
/// same inputs: such a build is tagged, not built, and its children's keys
/// then use the reused image's digest, so they can be reused too. A build
/// of several platforms has a key per platform (its base: the parent's
/// image of that platform) and is reused when every platform's image is.
fn find_reusable(
    spec: &Spec,
    builds: &mut [Build],
    reuse: bool,
    published: &mut dyn PublishedLookup,
) {
    for i in 0..builds.len() {
        // The base a key is made on, for the whole image or one platform;
        // `None`: the plan cannot tell it (a parent built for real).
        let base_of = |platform: Option<&str>| match (&builds[i].parent, builds[i].base_source) {
            (None, _) => Some(None),
            (Some(_), Some(BaseSource::Registry)) => builds[i]
                .base_ref
                .as_deref()
                .and_then(|r| r.split_once('@'))
                .map(|(_, digest)| Some(digest.to_string())),
            (Some(_), Some(BaseSource::Local)) => Some(builds[i].base_image_id.clone()),
            (Some(parent), Some(BaseSource::ThisRun)) => builds[..i]
                .iter()
                .find(|b| &b.image == parent)
                .and_then(|b| match platform {
                    Some(p) => b.per_platform.get(p).and_then(|pp| pp.reuse_digest.clone()),
                    None => b.reuse_digest.clone(),
                })
                .map(Some),
            (Some(_), None) => None,
        };
        let may_reuse = reuse && builds[i].rebuild;
        let Some(image) = spec.image(&builds[i].image) else {
            continue;
        };
        if builds[i].platforms.is_empty() {
            let Some(base) = base_of(None) else { continue };
            let key = inputs::key(&builds[i].input_parts, base.as_deref());
            let found = may_reuse
                .then(|| published.reusable(image, &key, &builds[i].reference))
                .flatten();
            if let Some(found) = found {
                let b = &mut builds[i];
                b.reason = Reason::SameInputs {
                    reference: found.reference.to_string(),
                    because: Box::new(b.reason.clone()),
                    resumed: found.resumed,
                };
                b.resumed = found.resumed;
                b.reuse = Some(found.reference);
                b.reuse_digest = Some(found.digest);
            }
            builds[i].inputs = Some(key);
            continue;
        }
        let mut per_platform = BTreeMap::new();
        for platform in builds[i].platforms.clone() {
            let mut parts = builds[i].input_parts.clone();
            parts.platform = platform.clone();
            let Some(base) = base_of(Some(&platform)) else {
                per_platform.insert(platform, PlatformInputs::default());
                continue;
            };
            let key = inputs::key(&parts, base.as_deref());
            let suffix = platform
                .parse::<crate::platform::Platform>()
                .map(|p| p.tag_suffix())
                .unwrap_or_default();
            let reference = format!("{}{suffix}", builds[i].reference);
            let found = may_reuse
                .then(|| published.reusable(image, &key, &reference))
                .flatten();
            per_platform.insert(
                platform,
                PlatformInputs {
                    inputs: Some(key),
                    resumed: found.as_ref().is_some_and(|f| f.resumed),
                    reuse_digest: found.as_ref().map(|f| f.digest.clone()),
                    reuse: found.map(|f| f.reference),
                },
            );
        }
        let b = &mut builds[i];
        let all_found = per_platform.values().all(|p| p.reuse.is_some());
        if all_found && let Some(first) = per_platform.values().next() {
            let first = first.reuse.clone();
            let resumed = per_platform.values().all(|p| p.resumed);
            b.reason = Reason::SameInputs {
                reference: first.as_ref().map(ToString::to_string).unwrap_or_default(),
                because: Box::new(b.reason.clone()),
                resumed,
            };
            b.resumed = resumed;
            b.reuse = first;
        } else {
            // Reused whole or not at all: one platform rebuilt rebuilds all.
            for p in per_platform.values_mut() {
                p.reuse = None;
                p.resumed = false;
                p.reuse_digest = None;
            }
        }
        b.per_platform = per_platform;
    }
}

/// The reason each image of one plan is rebuilt (or [`Reason::Unchanged`]),
/// walking parents before children so a parent's rebuild reaches them all.
fn rebuild_reasons(
    spec: &Spec,
    graph: &Graph,
    detected: &Detected,
    plan: &str,
    in_plan: &[usize],
    needed: &BTreeMap<usize, String>,
) -> BTreeMap<usize, Reason> {
    let mut reasons: BTreeMap<usize, Reason> = BTreeMap::new();
    for &i in in_plan {
        let key = spec.images[i].name();
        // A parent rebuilt only because a child needs it (it is published
        // nowhere) does not rebuild its other, unchanged children.
        let parent_rebuilt = graph
            .parent(i)
            .filter(|p| {
                reasons
                    .get(p)
                    .is_some_and(|r| !matches!(r, Reason::Unchanged | Reason::NotPublished { .. }))
            })
            .map(|p| Reason::ParentRebuilt {
                parent: spec.images[p].name().to_string(),
            });
        let reason = detected
            .full
            .clone()
            .or_else(|| {
                detected
                    .direct
                    .get(&(key.to_string(), plan.to_string()))
                    .cloned()
            })
            .or_else(|| {
                needed.get(&i).map(|child| Reason::NotPublished {
                    child: child.clone(),
                })
            })
            .or(parent_rebuilt)
            .unwrap_or(Reason::Unchanged);
        reasons.insert(i, reason);
    }
    reasons
}

fn is_rebuilt(reasons: &BTreeMap<usize, Reason>, i: usize) -> bool {
    reasons.get(&i).is_some_and(|r| *r != Reason::Unchanged)
}

fn reference_of(image: &ImageSpec, tag: &str) -> String {
    let name = image
        .image_name
        .as_ref()
        .map_or(image.name(), |n| n.value.as_str());
    format!("{name}:{tag}")
}

/// The tag part of a reference (with its digest, if pinned): what a
/// `FROM org/parent:${BASE_TAG}` line needs to name the same image.
fn tag_part(reference: &str) -> String {
    match reference.parse::<crate::reference::ImageRef>() {
        Ok(r) => match (r.tag(), r.digest()) {
            (Some(t), Some(d)) => format!("{t}@{d}"),
            (Some(t), None) => t.to_string(),
            (None, Some(d)) => format!("@{d}"),
            (None, None) => "latest".to_string(),
        },
        // A bare name (no tag, no digest) means `latest`, as Docker reads it.
        Err(_) => "latest".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::changes::{ChangeRules, ChangeSet, Commit, detect};
    use crate::spec;

    const STACK: &str = "\
images:
  root: {image_name: ghcr.io/o/root, build_args: {PY: '3.11'}}
  mid: {image_name: ghcr.io/o/mid, depend_on: root}
  leaf: {image_name: ghcr.io/o/leaf, depend_on: mid}
  side: {image_name: ghcr.io/o/side, depend_on: root}
tag: {prefix: '2024.1'}
";

    struct Map(BTreeMap<String, Published>, Vec<String>);
    impl PublishedLookup for Map {
        fn lookup(&mut self, image: &ImageSpec, _: &PlanSpec) -> Published {
            self.1.push(image.name().to_string());
            self.0
                .get(image.name())
                .cloned()
                .unwrap_or(Published::Missing)
        }
    }

    /// The spec of `text`, its graph, and what a one-commit range of
    /// `paths` with commit `head` and `message` changes in it.
    fn detected(
        text: &str,
        paths: &[String],
        head: &str,
        message: &str,
    ) -> (spec::Spec, Graph, crate::changes::Detected) {
        let spec = spec::parse(text, "spec.yml").spec.unwrap();
        let graph = Graph::new(&spec).unwrap();
        let commits = vec![Commit {
            sha: head.into(),
            message: message.into(),
        }];
        let rules = ChangeRules::default();
        let set = ChangeSet {
            images_dir: "images",
            paths,
            uncommitted: &BTreeMap::new(),
            commits: &commits,
            rules: &rules,
            old_spec: None,
            forced: None,
        };
        let detected = detect(&spec, &set);
        (spec, graph, detected)
    }

    fn make(text: &str, paths: &[&str], lookup: &mut dyn PublishedLookup) -> Plan {
        let paths: Vec<String> = paths.iter().map(|p| p.to_string()).collect();
        let (spec, graph, detected) = detected(text, &paths, "1234567abc", "m");
        let options = PlanOptions {
            head: "1234567abc".into(),
            suffix: "1234567".into(),
            changed_files: paths.clone(),
            ..PlanOptions::default()
        };
        plan(&spec, &graph, &detected, &options, lookup)
    }

    fn summary(p: &Plan) -> Vec<(String, String)> {
        p.builds
            .iter()
            .map(|b| (b.image.clone(), b.reason.to_string()))
            .collect()
    }

    #[test]
    fn a_changed_middle_image_rebuilds_with_its_descendants_on_the_published_root() {
        let mut lookup = Map(
            BTreeMap::from([(
                "root".into(),
                Published::At("ghcr.io/o/root:2024.1-abcdef0@sha256:0000000000000000000000000000000000000000000000000000000000000000".into()),
            )]),
            vec![],
        );
        let p = make(STACK, &["images/mid/Dockerfile"], &mut lookup);
        assert_eq!(
            summary(&p),
            [
                ("root".into(), "unchanged".into()),
                ("mid".into(), "images/mid/Dockerfile".into()),
                ("leaf".into(), "parent rebuilt (mid)".into()),
                ("side".into(), "unchanged".into()),
            ]
        );
        let mid = p.build("mid", "default").unwrap();
        assert_eq!(
            mid.base_ref.as_deref(),
            Some(
                "ghcr.io/o/root:2024.1-abcdef0@sha256:0000000000000000000000000000000000000000000000000000000000000000"
            )
        );
        assert_eq!(
            mid.build_args["BASE_TAG"],
            "2024.1-abcdef0@sha256:0000000000000000000000000000000000000000000000000000000000000000"
        );
        let leaf = p.build("leaf", "default").unwrap();
        assert_eq!(
            leaf.base_ref.as_deref(),
            Some("ghcr.io/o/mid:2024.1-1234567")
        );
        assert_eq!(leaf.build_args["BASE_TAG"], "2024.1-1234567");
        assert_eq!(lookup.1, ["root"]);
    }

    /// Reuses the images named in `.0`, recording each key asked for;
    /// those whose run reference is in `.2` already carry it (resumed).
    struct Reuse(BTreeSet<&'static str>, Vec<(String, String)>, Vec<String>);
    impl PublishedLookup for Reuse {
        fn lookup(&mut self, image: &ImageSpec, _: &PlanSpec) -> Published {
            match image.name() {
                "root" => Published::At("ghcr.io/o/root:2024.1-aaaaaaa@sha256:r00t".into()),
                _ => Published::Missing,
            }
        }
        fn reusable(
            &mut self,
            image: &ImageSpec,
            key: &str,
            run_reference: &str,
        ) -> Option<Reusable> {
            self.1.push((image.name().to_string(), key.to_string()));
            self.0.contains(image.name()).then(|| Reusable {
                reference: reused_at(image.name()),
                digest: format!("sha256:{}", image.name()),
                resumed: self.2.iter().any(|r| r == run_reference),
            })
        }
    }

    /// Where the fake registry has `image` built from the same inputs.
    fn reused_at(image: &str) -> inputs::ReuseFrom {
        let hex: String = image.bytes().map(|b| format!("{b:02x}")).collect();
        format!("ghcr.io/o/{image}:inputs-x@sha256:{hex:0<64}")
            .parse()
            .ok()
            .and_then(inputs::ReuseFrom::pinned)
            .unwrap_or_else(|| panic!("the fake's reference of {image} parses"))
    }

    fn reuse_plan(
        message: &str,
        head: &str,
        reusable: &[&'static str],
    ) -> (Plan, Vec<(String, String)>) {
        reuse_plan_tagged(message, head, reusable, &[])
    }

    /// [`reuse_plan`] where the references in `tagged` are in the registry
    /// at the reusable image already.
    fn reuse_plan_tagged(
        message: &str,
        head: &str,
        reusable: &[&'static str],
        tagged: &[&str],
    ) -> (Plan, Vec<(String, String)>) {
        let paths = vec!["images/mid/Dockerfile".to_string()];
        let (spec, graph, detected) = detected(STACK, &paths, head, message);
        let options = PlanOptions {
            head: head.into(),
            suffix: head[..7].into(),
            changed_files: paths.clone(),
            contexts: spec
                .image_keys()
                .map(|k| (k.to_string(), format!("git-tree:{k}")))
                .collect(),
            platform: "linux/amd64".into(),
            builder: "buildkit".into(),
            reuse: true,
            ..PlanOptions::default()
        };
        let mut lookup = Reuse(
            reusable.iter().copied().collect(),
            Vec::new(),
            tagged.iter().map(|r| r.to_string()).collect(),
        );
        let p = plan(&spec, &graph, &detected, &options, &mut lookup);
        (p, lookup.1)
    }

    #[test]
    fn a_reused_parent_lets_its_child_be_reused_on_its_digest() {
        let (p, asked) = reuse_plan("m", "1234567abc", &["mid", "leaf"]);
        let mid = p.build("mid", "default").unwrap();
        assert_eq!(mid.reuse, Some(reused_at("mid")));
        assert_eq!(
            mid.reason.to_string(),
            format!(
                "same inputs as {} (images/mid/Dockerfile)",
                reused_at("mid")
            )
        );
        assert!(mid.rebuild);
        let leaf = p.build("leaf", "default").unwrap();
        assert!(leaf.reuse.is_some());
        // The child's key is made on the reused parent's digest.
        let expected = inputs::key(&leaf.input_parts, Some("sha256:mid"));
        assert_eq!(leaf.inputs.as_deref(), Some(expected.as_str()));
        assert_eq!(
            asked.iter().map(|(i, _)| i.as_str()).collect::<Vec<_>>(),
            ["mid", "leaf"]
        );
        // The base arg (the parent's tag) is not an input; the base digest is.
        assert!(!mid.input_parts.build_args.contains_key(DEFAULT_BASE_ARG));
        assert_eq!(
            mid.inputs.as_deref(),
            Some(inputs::key(&mid.input_parts, Some("sha256:r00t")).as_str())
        );
        // Unchanged images are never looked up.
        assert!(p.build("root", "default").unwrap().reuse.is_none());
    }

    #[test]
    fn an_image_already_carrying_the_runs_tag_is_resumed() {
        let (p, _) = reuse_plan_tagged(
            "m",
            "1234567abc",
            &["mid", "leaf"],
            &["ghcr.io/o/mid:2024.1-1234567"],
        );
        let mid = p.build("mid", "default").unwrap();
        assert!(mid.resumed);
        assert_eq!(
            mid.reason.to_string(),
            format!(
                "already built and tested under this run's tag: {} (images/mid/Dockerfile)",
                reused_at("mid")
            )
        );
        // Reused, but not tagged by this run yet: not resumed.
        let leaf = p.build("leaf", "default").unwrap();
        assert!(leaf.reuse.is_some() && !leaf.resumed);
    }

    #[test]
    fn a_parent_built_for_real_leaves_its_child_without_a_key() {
        let (p, asked) = reuse_plan("m", "1234567abc", &["leaf"]);
        assert!(p.build("mid", "default").unwrap().reuse.is_none());
        let leaf = p.build("leaf", "default").unwrap();
        assert_eq!((leaf.inputs.as_ref(), leaf.reuse.as_ref()), (None, None));
        assert_eq!(asked.len(), 1, "{asked:?}");
    }

    #[test]
    fn the_key_ignores_the_commit_its_message_and_the_tag() {
        let (a, _) = reuse_plan("one", "1234567abc", &[]);
        let (b, _) = reuse_plan("another", "89abcdef01", &[]);
        let key = |p: &Plan| p.build("mid", "default").unwrap().inputs.clone();
        assert!(key(&a).is_some());
        assert_eq!(key(&a), key(&b));
        assert_ne!(
            a.build("mid", "default").unwrap().tag,
            b.build("mid", "default").unwrap().tag
        );
    }

    #[test]
    fn a_full_rebuild_message_builds_for_real() {
        let (p, asked) = reuse_plan(
            "full rebuild please",
            "1234567abc",
            &["root", "mid", "leaf"],
        );
        assert!(asked.is_empty(), "{asked:?}");
        assert!(p.builds.iter().all(|b| b.reuse.is_none()));
        assert_eq!(p.rebuilds().count(), 4);
        assert!(p.build("root", "default").unwrap().inputs.is_some());
    }

    #[test]
    fn an_unpublished_parent_is_built_too() {
        let p = make(STACK, &["images/leaf/x"], &mut Map(BTreeMap::new(), vec![]));
        assert_eq!(
            summary(&p),
            [
                ("root".into(), "parent not published (needed by mid)".into()),
                ("mid".into(), "parent not published (needed by leaf)".into()),
                ("leaf".into(), "images/leaf/x".into()),
                // Its parent is built only for mid: side stays as it is.
                ("side".into(), "unchanged".into()),
            ]
        );
    }

    #[test]
    fn a_local_image_of_the_parent_pins_the_child_by_image_id() {
        let mut lookup = Map(
            BTreeMap::from([(
                "root".into(),
                Published::Local {
                    reference: "ghcr.io/o/root:2024.1-abcdef0".into(),
                    id: "sha256:1111".into(),
                },
            )]),
            vec![],
        );
        let p = make(STACK, &["images/side/x"], &mut lookup);
        let side = p.build("side", "default").unwrap();
        assert!(side.rebuild);
        assert!(!p.build("root", "default").unwrap().rebuild);
        assert_eq!(
            side.base_ref.as_deref(),
            Some("ghcr.io/o/root:2024.1-abcdef0")
        );
        assert_eq!(side.base_source, Some(BaseSource::Local));
        assert_eq!(side.base_image_id.as_deref(), Some("sha256:1111"));
        assert_eq!(side.build_args["BASE_TAG"], "2024.1-abcdef0");
        assert!(
            !side.build_args.contains_key("PY"),
            "a parent's args are not inherited: {:?}",
            side.build_args
        );
    }

    #[test]
    fn with_no_image_of_the_parent_anywhere_the_parent_is_built_in_the_same_run() {
        let p = make(STACK, &["images/side/x"], &mut Map(BTreeMap::new(), vec![]));
        let root = p.build("root", "default").unwrap();
        assert_eq!(
            root.reason.to_string(),
            "parent not published (needed by side)"
        );
        let side = p.build("side", "default").unwrap();
        assert_eq!(side.base_source, Some(BaseSource::ThisRun));
        assert_eq!(side.base_ref.as_deref(), Some(root.reference.as_str()));
        assert_eq!(side.build_args["BASE_TAG"], root.tag);
        assert_eq!(root.base_source, None);
    }

    #[test]
    fn tags_refs_and_args_follow_plans() {
        let text = include_str!("../../../fixtures/specs/v1-two-plans.spec.yml");
        let p = make(
            text,
            &["images/datahub-base-notebook/Dockerfile"],
            &mut Map(BTreeMap::new(), vec![]),
        );
        let got: Vec<_> = p
            .builds
            .iter()
            .map(|b| (b.plan.as_str(), b.image.as_str(), b.reference.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                (
                    "PYTHON39",
                    "datahub-base-notebook",
                    "davidzz/datahub-base-notebook:2021.3-1234567"
                ),
                (
                    "PYTHON39",
                    "datascience-notebook",
                    "davidzz/datascience-notebook:2021.3-1234567"
                ),
                (
                    "PYTHON38",
                    "datahub-base-notebook",
                    "davidzz/datahub-base-notebook:2021.2-1234567"
                ),
                (
                    "PYTHON38",
                    "datascience-notebook",
                    "davidzz/datascience-notebook:2021.2-1234567"
                ),
                (
                    "PYTHON38",
                    "scipy-ml-notebook",
                    "davidzz/scipy-ml-notebook:2021.2-1234567"
                ),
            ]
        );
        let base38 = p.build("datahub-base-notebook", "PYTHON38").unwrap();
        assert_eq!(base38.build_args["PY_VER_SHORT"], "3.8");
        assert_eq!(base38.build_args["placeholder"], "test_XXX");
        let ds = p.build("datascience-notebook", "PYTHON38").unwrap();
        assert_eq!(ds.build_args["BASE_TAG"], "2021.2-1234567");
    }

    #[test]
    fn cli_args_win_and_dockerfile_base_args_are_used() {
        let spec = spec::parse(STACK, "spec.yml").spec.unwrap();
        let graph = Graph::new(&spec).unwrap();
        let detected = Detected {
            full: Some(Reason::All),
            ..Detected::default()
        };
        let mut options = PlanOptions {
            suffix: "main".into(),
            ..PlanOptions::default()
        };
        options.cli_args.insert("PY".into(), "3.12".into());
        options.dockerfiles.insert(
            "mid".into(),
            crate::dockerfile::base_of("ARG PARENT\nFROM ${PARENT}\n").unwrap(),
        );
        options.dockerfiles.insert(
            "side".into(),
            crate::dockerfile::base_of("FROM ghcr.io/o/root:fixed\n").unwrap(),
        );
        let p = plan(
            &spec,
            &graph,
            &detected,
            &options,
            &mut Map(BTreeMap::new(), vec![]),
        );
        assert!(p.full_rebuild);
        assert_eq!(p.build("root", "default").unwrap().build_args["PY"], "3.12");
        assert_eq!(
            p.build("mid", "default").unwrap().build_args["PARENT"],
            "ghcr.io/o/root:2024.1-main"
        );
        let side = p.build("side", "default").unwrap();
        assert_eq!(side.build_args.keys().collect::<Vec<_>>(), ["PY"]);
        assert_eq!(side.reason.to_string(), "--all");
    }

    #[test]
    fn suffixes_never_make_promotion_tags() {
        let spec = spec::parse(STACK, "spec.yml").spec.unwrap();
        assert_eq!(
            tag_suffix(&spec, &SuffixSource::Hash("ABCDEF0123".into()), false).unwrap(),
            "abcdef0"
        );
        assert_eq!(
            tag_suffix(
                &spec,
                &SuffixSource::Branch("feature/New thing".into()),
                false
            )
            .unwrap(),
            "feature-New-thing"
        );
        assert!(matches!(
            tag_suffix(&spec, &SuffixSource::Branch("stable".into()), false),
            Err(SuffixError::PromotionTag { .. })
        ));
        assert!(matches!(
            tag_suffix(&spec, &SuffixSource::Branch("///".into()), false),
            Err(SuffixError::Unusable(_)) | Err(SuffixError::PromotionTag { .. })
        ));
        assert!(tag_suffix(&spec, &SuffixSource::Hash("zz".into()), false).is_err());
    }

    #[test]
    fn long_branch_names_still_make_valid_tags() {
        let spec = spec::parse(STACK, "spec.yml").spec.unwrap();
        let suffix = tag_suffix(&spec, &SuffixSource::Branch("b".repeat(200)), false).unwrap();
        let tag = format!("2024.1-{suffix}");
        assert_eq!(tag.len(), MAX_TAG_LEN);
        assert!(tag.parse::<Tag>().is_ok(), "{tag}");
        assert_eq!(
            tag_suffix(&spec, &SuffixSource::Branch("main".into()), false).unwrap(),
            "main"
        );
    }

    #[test]
    fn tag_part_keeps_digests_and_ports() {
        assert_eq!(tag_part("127.0.0.1:5000/o/p:2024.1-abc"), "2024.1-abc");
        assert_eq!(
            tag_part(
                "o/p:t@sha256:ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff"
            ),
            "t@sha256:ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff"
        );
        assert_eq!(
            tag_part(
                "127.0.0.1:5000/o/p@sha256:ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff"
            ),
            "@sha256:ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff"
        );
        assert_eq!(tag_part("o/p"), "latest");
    }
}
