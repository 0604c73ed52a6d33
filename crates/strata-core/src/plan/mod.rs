//! The plan: for every image and plan of the stack, whether it is rebuilt,
//! why, and with which tag, base reference and build args. Its tags
//! (`tags.rs`) and the reuse of identical earlier builds (`reuse.rs`) have
//! modules of their own.

use crate::changes::{Detected, Reason};
pub use crate::dockerfile::DEFAULT_BASE_ARG;
use crate::dockerfile::{ArgRole, DockerfileBase};
use crate::graph::Graph;
use crate::inputs::{self, InputParts};
use crate::reference::{MAX_TAG_LEN, Tag};
use crate::spec::{ImageSpec, PlanSpec, Spec};
use crate::test_folders::{self, TestFolders};
use std::collections::{BTreeMap, BTreeSet};

mod bases;
mod reuse;
mod tags;

pub use bases::{
    BASE_DIGEST_LABEL, BASE_ID_LABEL, BASE_NAME_LABEL, ExternalBase, REFRESH_INFIX, RecordedBase,
    moved, refresh_marker,
};

pub use reuse::Reusable;
use reuse::find_reusable;
pub use tags::{DIRTY_SUFFIX, SuffixError, SuffixSource, tag_candidates, tag_suffix};

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

/// The image ID (its config's digest) of each image a reference names: by
/// platform (`linux/arm64`) for an index, under `""` for an image. What a
/// child's input key is made on: the same whether the parent was built in
/// the run, pulled, or found in the local store.
pub type ImageIds = BTreeMap<String, String>;

/// Looks up an image's most recent published reference for a plan, and
/// images already built from given inputs. The shell implements it over the
/// registry (or, offline, the local store); tests over a map.
pub trait PublishedLookup {
    /// The published reference of `image` for `plan`: the first of
    /// [`tag_candidates`] found, `refresh` the plan's hash of its roots'
    /// bases (see [`refresh_marker`]).
    fn lookup(&mut self, image: &ImageSpec, plan: &PlanSpec, refresh: Option<&str>) -> Published;

    /// An image of `image` already built from the inputs of key `key`
    /// (see [`crate::inputs`]) and tested, or `None`. `run_reference` is the
    /// reference this run gives it (`name:tag`): an image that already
    /// carries it is [`Reusable::resumed`].
    fn reusable(&mut self, image: &ImageSpec, key: &str, run_reference: &str) -> Option<Reusable> {
        let _ = (image, key, run_reference);
        None
    }

    /// The image IDs of what `reference` (a [`Published::At`] reference,
    /// pinned by digest) names, or `None` when they cannot be read: the
    /// keys of the children built on it are then made when they build.
    fn image_ids(&mut self, reference: &str) -> Option<ImageIds> {
        let _ = reference;
        None
    }

    /// [`Self::lookup`] of a root's own published build, which only
    /// chooses the plan's tag (see [`RecordedBase`]): one that cannot be
    /// made finds nothing, and the plan goes on.
    fn lookup_for_tag(
        &mut self,
        image: &ImageSpec,
        plan: &PlanSpec,
        refresh: Option<&str>,
    ) -> Published {
        self.lookup(image, plan, refresh)
    }

    /// Where `reference`, the image outside the stack a root is built on
    /// for `platforms`, stands now, or `None` when it cannot be found: the
    /// root's key is then made without it, and `--bases` cannot tell
    /// whether it moved.
    fn external_base(&mut self, reference: &str, platforms: &[String]) -> Option<ExternalBase> {
        let _ = (reference, platforms);
        None
    }

    /// What the image at `published` recorded of the base it was built
    /// on (its image of `platform`, for an index), or `None` when it
    /// cannot be read.
    fn recorded_base(&mut self, published: &Published, platform: &str) -> Option<RecordedBase> {
        let _ = (published, platform);
        None
    }
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
    /// The image IDs of a published base (`base_source` `registry`), which
    /// its input key is made on; empty when not read.
    #[serde(skip)]
    pub base_ids: ImageIds,
    /// The build args strata passes (spec, plan and `--build-arg`, and the
    /// base arg when known); Dockerfile defaults apply beneath them.
    pub build_args: BTreeMap<String, String>,
    /// The test folders its test stages run (see [`crate::test_folders`]).
    pub tests: TestFolders,
    /// For a root, the image outside the stack it is built on, as the plan
    /// found it (its key is made on it); `None` for a child, `FROM scratch`
    /// and a base that could not be found.
    pub external_base: Option<ExternalBase>,
    /// The hash of the bases the plan's roots stand on now (see
    /// [`refresh_marker`]): where a lookup of this image's own published
    /// build looks first.
    #[serde(skip)]
    pub refresh: Option<String>,
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
    /// image's ID.
    #[serde(skip)]
    pub reuse_id: Option<String>,
    /// For a build of several platforms, each platform's own input key and
    /// reuse, by platform (`linux/arm64`): each platform's image is found
    /// and reused on its own (an image is reused when every platform is).
    pub per_platform: BTreeMap<String, PlatformInputs>,
}

impl Build {
    /// The image ID of its published base for `platform` (an image's own
    /// for an image that is not an index), if read.
    pub fn base_id(&self, platform: &str) -> Option<&String> {
        self.base_ids
            .get("")
            .or_else(|| self.base_ids.get(platform))
    }

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
    /// What a child's image of the same platform is built on when reused:
    /// its image ID.
    #[serde(skip)]
    pub reuse_id: Option<String>,
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
    /// `--bases`: rebuild each root whose external base moved since its
    /// last published build, and what is built on it.
    pub bases: bool,
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
    let mut resolved_bases = BTreeMap::new();
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
        let externals = bases::resolve_roots(
            spec,
            graph,
            &in_plan,
            plan_name,
            options,
            published,
            &mut resolved_bases,
        );
        let refresh = refresh_marker(externals.values(), &options.platform);
        let own_tag = format!("{}-{}", plan.tag_prefix.value, options.suffix);
        let mut lookups: BTreeMap<usize, Published> = BTreeMap::new();
        let roots = bases::RootsFound::of(
            &externals,
            &own_tag,
            refresh.as_deref(),
            options,
            |i, with_refresh: bool, published: &mut dyn PublishedLookup| {
                let image = &spec.images[i];
                let looked_for = refresh.as_deref().filter(|_| with_refresh);
                match (options.bases, with_refresh) {
                    // Without `--bases` a root's own build only chooses the
                    // tag: the plan does not fail for want of it.
                    (false, _) => published.lookup_for_tag(image, plan, looked_for),
                    (true, true) => lookups
                        .entry(i)
                        .or_insert_with(|| published.lookup(image, plan, looked_for))
                        .clone(),
                    (true, false) => published.lookup(image, plan, None),
                }
            },
            published,
        );
        let base_moved = &roots.moved;
        // Images rebuilt because a child needs a parent that is not published.
        let mut needed: BTreeMap<usize, String> = BTreeMap::new();
        let reasons = loop {
            let reasons = rebuild_reasons(
                spec, graph, detected, plan_name, &in_plan, &needed, base_moved,
            );
            let mut grew = false;
            for &i in &in_plan {
                let Some(p) = graph.parent(i) else { continue };
                if !is_rebuilt(&reasons, i) || is_rebuilt(&reasons, p) {
                    continue;
                }
                let found = lookups
                    .entry(p)
                    .or_insert_with(|| published.lookup(&spec.images[p], plan, refresh.as_deref()))
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
        let tag = roots.tag(&own_tag, refresh.as_deref(), |i| is_rebuilt(&reasons, i));
        let mut ids_of: BTreeMap<usize, Option<ImageIds>> = BTreeMap::new();
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
            // A rebuilt child's key is made on its published base's image.
            let base_ids = match (&base_source, &base_ref, parent) {
                (Some(BaseSource::Registry), Some(r), Some(p)) if rebuild => ids_of
                    .entry(p)
                    .or_insert_with(|| published.image_ids(r))
                    .clone()
                    .unwrap_or_default(),
                _ => ImageIds::new(),
            };
            let mut build_args = bases::build_args_of(image, plan_name, options);
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
                // `--build-arg` wins over the parent's tag too.
                if !options.cli_args.contains_key(arg) {
                    build_args.insert(arg.clone(), value);
                }
            }
            let mut key_args = build_args.clone();
            if parent.is_some()
                && let Some(arg) = &base_arg
            {
                // The base arg names the parent's tag, new with every
                // commit; the key has the base's digest instead.
                key_args.remove(arg);
            }
            let platforms = platforms_of(spec, image, options);
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
                base_ids,
                build_args,
                tests: test_folders::of_image(spec, image.name(), &options.test_folders),
                external_base: externals.get(&i).cloned(),
                refresh: refresh.clone(),
                platforms,
                inputs: None,
                reuse: None,
                resumed: false,
                input_parts,
                base_arg: base_arg.filter(|_| parent.is_some()),
                reuse_id: None,
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

/// The reason each image of one plan is rebuilt (or [`Reason::Unchanged`]),
/// walking parents before children so a parent's rebuild reaches them all.
fn rebuild_reasons(
    spec: &Spec,
    graph: &Graph,
    detected: &Detected,
    plan: &str,
    in_plan: &[usize],
    needed: &BTreeMap<usize, String>,
    base_moved: &BTreeMap<usize, Reason>,
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
        // A moved base is named before a change: it is what a scheduled
        // `--bases` run at an already built commit rebuilds for.
        let reason = detected
            .full
            .clone()
            .or_else(|| base_moved.get(&i).cloned())
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

/// The platforms `image` is built for: those it declares (or the spec
/// does), narrowed by `--platform`; empty for the engine's own.
fn platforms_of(spec: &Spec, image: &ImageSpec, options: &PlanOptions) -> Vec<String> {
    crate::platform::declared(spec, image)
        .into_iter()
        .filter(|p| {
            options.only_platforms.is_empty() || options.only_platforms.iter().any(|o| o == p)
        })
        .map(str::to_string)
        .collect()
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
mod tests;
