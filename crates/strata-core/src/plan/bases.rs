//! The images outside the stack that its roots are built on: resolved to
//! where they stand now, made part of each root's input key, and, under
//! `--bases`, compared with what the root's last published build recorded,
//! so a base that moved under the same tag (a security rebuild of
//! `ubuntu:24.04`) rebuilds the root and everything on it.
//!
//! Such a rebuild may be of a commit already published: its tags gain
//! [`REFRESH_INFIX`] and a short hash of the bases it is built on
//! (`2024.1-abc1234-base-3f2a9c1b7d0e`), so it never overwrites a tag with
//! other content, and a later plan finds it first (see [`tag_candidates`]).

use super::*;
use sha2::{Digest, Sha256};

/// The OCI annotation (here a label) naming the image an image is built
/// on, as Renovate and others read it.
pub const BASE_NAME_LABEL: &str = "org.opencontainers.image.base.name";
/// The OCI annotation (here a label) with that base's digest in its
/// registry.
pub const BASE_DIGEST_LABEL: &str = "org.opencontainers.image.base.digest";
/// The image ID of the build's base, which its input key is made on.
pub const BASE_ID_LABEL: &str = "io.strata.base.id";

/// What the tag of a plan rebuilt on moved bases has between the commit's
/// suffix and the hash of those bases.
pub const REFRESH_INFIX: &str = "-base-";

/// The image outside the stack that a root is built on, as the plan found
/// it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ExternalBase {
    /// As the root's `FROM` names it, its args replaced.
    pub reference: String,
    /// The digest the reference stands at in its registry (an index's, for
    /// an image of several platforms), when it was read there; `None` for
    /// an image found only in the local store.
    pub digest: Option<String>,
    /// Its image ID per platform (see [`ImageIds`]): what the root's input
    /// key is made on, as a child's is made on its parent's.
    pub ids: ImageIds,
    /// Its layers (diff IDs, bottom first) per platform, keyed as `ids`:
    /// how the root's build shows it was made on this base and no other.
    #[serde(skip)]
    pub layers: BTreeMap<String, Vec<String>>,
}

impl ExternalBase {
    /// Its image ID for `platform` (the image's own when it is not an
    /// index), its config's platform matched as the engine matches it.
    pub fn id_for(&self, platform: &str) -> Option<&String> {
        crate::platform::entry_for(&self.ids, platform)
    }

    /// Its layers for `platform`, when known.
    pub fn layers_for(&self, platform: &str) -> Option<&Vec<String>> {
        crate::platform::entry_for(&self.layers, platform)
    }

    /// What names it in a moved base's reason and in the tag's hash: its
    /// digest, or offline its image ID.
    fn pin(&self, platform: &str) -> Option<&String> {
        self.digest.as_ref().or_else(|| self.id_for(platform))
    }
}

/// What a published root recorded of its base, from its labels.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecordedBase {
    /// [`BASE_DIGEST_LABEL`].
    pub digest: Option<String>,
    /// [`BASE_ID_LABEL`]: the base's image ID the root was built on.
    pub id: Option<String>,
}

impl RecordedBase {
    /// What an image's `labels` record of its base.
    pub fn from_labels(labels: &BTreeMap<String, String>) -> RecordedBase {
        RecordedBase {
            digest: labels.get(BASE_DIGEST_LABEL).cloned(),
            id: labels.get(BASE_ID_LABEL).cloned(),
        }
    }
}

/// Why `root` is rebuilt under `--bases`: its base `now` is not what its
/// last published build recorded. Digests are compared where both sides
/// have one, image IDs otherwise; a build that recorded neither is
/// rebuilt (it predates the record, and nothing tells it is fresh).
pub fn moved(now: &ExternalBase, recorded: &RecordedBase, platform: &str) -> Option<Reason> {
    let reason = |from: Option<&String>, to: &String| Reason::BaseMoved {
        base: now.reference.clone(),
        from: from.cloned(),
        to: to.clone(),
    };
    match (
        &now.digest,
        &recorded.digest,
        now.id_for(platform),
        &recorded.id,
    ) {
        (Some(to), Some(from), _, _) => (to != from).then(|| reason(Some(from), to)),
        (_, _, Some(to), Some(from)) => (to != from).then(|| reason(Some(from), to)),
        (_, None, _, None) => now.pin(platform).map(|to| reason(None, to)),
        // One side has only a digest, the other only an ID: nothing to
        // compare, so nothing is claimed.
        _ => None,
    }
}

/// The short hash naming the bases `roots` are built on (sorted by
/// reference): what the tags of a rebuild on them carry. `None` when no
/// base is known.
pub fn refresh_marker<'a>(
    bases: impl IntoIterator<Item = &'a ExternalBase>,
    platform: &str,
) -> Option<String> {
    let mut pins: Vec<String> = bases
        .into_iter()
        .filter_map(|b| b.pin(platform).map(|p| format!("{}={p}\n", b.reference)))
        .collect();
    if pins.is_empty() {
        return None;
    }
    pins.sort();
    pins.dedup();
    let digest = Sha256::digest(pins.concat().as_bytes());
    Some(inputs::hex(&digest)[..12].to_string())
}

/// What the plan found of its roots' published builds.
pub(super) struct RootsFound {
    /// `--bases`: why each root whose base moved is rebuilt.
    pub moved: BTreeMap<usize, Reason>,
    /// The roots published under the commit's own tag, built on other
    /// bases than they stand on now.
    stale_own: BTreeSet<usize>,
    /// The roots published under the commit's tag for the bases they stand
    /// on now (`<tag>-base-<refresh>`): refreshed already.
    refreshed: BTreeSet<usize>,
}

impl RootsFound {
    /// Looks up the published build of each root with an external base
    /// (`lookup`, sharing the plan's lookups; `false`: not looking under
    /// refreshed tags) and what it recorded: every root under `--bases`,
    /// otherwise only one published under the commit's own tag `own_tag`
    /// (what the run's tag must not overwrite).
    pub(super) fn of(
        externals: &BTreeMap<usize, ExternalBase>,
        own_tag: &str,
        refresh: Option<&str>,
        options: &PlanOptions,
        mut lookup: impl FnMut(usize, bool, &mut dyn PublishedLookup) -> Published,
        published: &mut dyn PublishedLookup,
    ) -> RootsFound {
        let mut found = RootsFound {
            moved: BTreeMap::new(),
            stale_own: BTreeSet::new(),
            refreshed: BTreeSet::new(),
        };
        let refreshed_tag = refresh.map(|r| format!("{own_tag}{REFRESH_INFIX}{r}"));
        for (&i, external) in externals {
            let mut at = lookup(i, true, published);
            let mut tag = published_tag(&at);
            if tag.is_some() && tag == refreshed_tag {
                found.refreshed.insert(i);
                if !options.bases {
                    continue;
                }
                // Refreshed already (by this run's job of the root, or an
                // earlier attempt): still what this run is for, compared
                // with the commit's own build, so what is built on it is
                // built (or found built) too.
                at = lookup(i, false, published);
                tag = published_tag(&at);
            }
            let own = tag.as_deref() == Some(own_tag);
            if matches!(at, Published::Missing) || !(options.bases || own) {
                continue;
            }
            let recorded = published
                .recorded_base(&at, &options.platform)
                .unwrap_or_default();
            let Some(reason) = moved(external, &recorded, &options.platform) else {
                continue;
            };
            if own {
                found.stale_own.insert(i);
            }
            if options.bases {
                found.moved.insert(i, reason);
            }
        }
        found
    }

    /// The plan's tag: `own_tag`, or `<own_tag>-base-<refresh>` when the
    /// commit's own tag holds a build on other bases than the plan's (a
    /// root published under it whose base moved is `rebuilt`), or a build
    /// on the bases of now was published under that tag already: tagging
    /// `own_tag` would then give it other content.
    pub(super) fn tag(
        &self,
        own_tag: &str,
        refresh: Option<&str>,
        rebuilt: impl Fn(usize) -> bool,
    ) -> String {
        let refreshing = !self.refreshed.is_empty() || self.stale_own.iter().any(|&i| rebuilt(i));
        match refresh.filter(|_| refreshing) {
            Some(marker) => format!("{own_tag}{REFRESH_INFIX}{marker}"),
            None => own_tag.to_string(),
        }
    }
}

/// The tag of a published build's reference.
fn published_tag(at: &Published) -> Option<String> {
    let reference = match at {
        Published::At(r) => r,
        Published::Local { reference, .. } => reference,
        Published::Missing => return None,
    };
    let parsed: crate::reference::ImageRef = reference.parse().ok()?;
    parsed.tag().map(|t| t.as_str().to_string())
}

/// Resolves the external base of each root of one plan (`in_plan`, the
/// plan's images), once per reference for the whole plan.
pub(super) fn resolve_roots(
    spec: &Spec,
    graph: &Graph,
    in_plan: &[usize],
    plan: &str,
    options: &PlanOptions,
    published: &mut dyn PublishedLookup,
    cache: &mut BTreeMap<(String, Vec<String>), Option<ExternalBase>>,
) -> BTreeMap<usize, ExternalBase> {
    let mut out = BTreeMap::new();
    for &i in in_plan.iter().filter(|&&i| graph.parent(i).is_none()) {
        let image = &spec.images[i];
        let Some(reference) = options
            .dockerfiles
            .get(image.name())
            .and_then(|d| d.external(&build_args_of(image, plan, options)))
        else {
            continue;
        };
        let mut platforms = super::platforms_of(spec, image, options);
        if platforms.is_empty() {
            platforms.push(options.platform.clone());
        }
        let found = cache
            .entry((reference.clone(), platforms.clone()))
            .or_insert_with(|| published.external_base(&reference, &platforms))
            .clone();
        if let Some(found) = found {
            out.insert(i, found);
        }
    }
    out
}

/// The build args strata passes an image in `plan` (spec, plan, then
/// `--build-arg`), but its base arg.
pub(super) fn build_args_of(
    image: &ImageSpec,
    plan: &str,
    options: &PlanOptions,
) -> BTreeMap<String, String> {
    let mut args = image.build_args.clone();
    if let Some(plan_args) = image.plan_args.get(plan) {
        args.extend(plan_args.value.clone());
    }
    args.extend(options.cli_args.clone());
    args
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base(digest: Option<&str>, id: &str) -> ExternalBase {
        ExternalBase {
            reference: "127.0.0.1:5000/base:1".into(),
            digest: digest.map(str::to_string),
            ids: ImageIds::from([(String::new(), id.to_string())]),
            layers: Default::default(),
        }
    }

    fn recorded(digest: Option<&str>, id: Option<&str>) -> RecordedBase {
        RecordedBase {
            digest: digest.map(str::to_string),
            id: id.map(str::to_string),
        }
    }

    #[test]
    fn a_base_moved_when_its_digest_or_else_its_id_differs() {
        let p = "linux/amd64";
        let now = base(Some("sha256:new"), "sha256:id2");
        assert_eq!(
            moved(&now, &recorded(Some("sha256:new"), Some("sha256:id1")), p),
            None
        );
        let r = moved(&now, &recorded(Some("sha256:old"), Some("sha256:id2")), p);
        assert_eq!(
            r.map(|r| r.to_string()).as_deref(),
            Some("base 127.0.0.1:5000/base:1 moved sha256:old → sha256:new")
        );
        // Offline: only image IDs.
        let local = base(None, "sha256:id2");
        assert_eq!(moved(&local, &recorded(None, Some("sha256:id2")), p), None);
        assert!(moved(&local, &recorded(Some("sha256:d"), Some("sha256:id1")), p).is_some());
        // Nothing recorded: rebuilt, saying so.
        let r = moved(&now, &RecordedBase::default(), p).map(|r| r.to_string());
        assert!(
            r.as_deref().is_some_and(|r| r.contains("recorded no base")),
            "{r:?}"
        );
        // A digest on one side, an ID alone on the other: nothing claimed.
        assert_eq!(moved(&local, &recorded(Some("sha256:d"), None), p), None);
    }

    #[test]
    fn a_bases_platforms_match_however_its_configs_write_them() {
        let index = ExternalBase {
            reference: "ubuntu:24.04".into(),
            digest: Some("sha256:index".into()),
            ids: ImageIds::from([
                ("linux/amd64".to_string(), "sha256:a".to_string()),
                ("linux/arm64/v8".to_string(), "sha256:b".to_string()),
            ]),
            layers: BTreeMap::from([("linux/arm64/v8".to_string(), vec!["sha256:l".to_string()])]),
        };
        assert_eq!(
            index.id_for("linux/arm64").map(String::as_str),
            Some("sha256:b")
        );
        assert_eq!(
            index.id_for("linux/amd64").map(String::as_str),
            Some("sha256:a")
        );
        assert!(index.layers_for("linux/arm64").is_some());
        assert_eq!(index.id_for("linux/riscv64"), None);
    }

    #[test]
    fn an_index_base_is_compared_by_the_platforms_id() {
        let now = ExternalBase {
            reference: "b".into(),
            digest: None,
            ids: ImageIds::from([
                ("linux/amd64".to_string(), "sha256:a".to_string()),
                ("linux/arm64".to_string(), "sha256:b".to_string()),
            ]),
            layers: Default::default(),
        };
        assert_eq!(
            moved(&now, &recorded(None, Some("sha256:b")), "linux/arm64"),
            None
        );
        assert!(moved(&now, &recorded(None, Some("sha256:b")), "linux/amd64").is_some());
    }

    #[test]
    fn the_refresh_marker_names_the_set_of_bases() {
        let p = "linux/amd64";
        let a = base(Some("sha256:1"), "sha256:i");
        let mut b = base(Some("sha256:2"), "sha256:j");
        b.reference = "other:1".into();
        let m = refresh_marker([&a, &b], p).unwrap_or_default();
        assert_eq!(m.len(), 12);
        assert!(m.chars().all(|c| c.is_ascii_hexdigit()));
        assert_eq!(refresh_marker([&b, &a], p).as_deref(), Some(m.as_str()));
        assert_ne!(refresh_marker([&a], p).as_deref(), Some(m.as_str()));
        let moved_b = base(Some("sha256:3"), "sha256:j");
        assert_ne!(
            refresh_marker([&a, &moved_b], p).as_deref(),
            Some(m.as_str())
        );
        assert_eq!(refresh_marker([], p), None);
    }
}
