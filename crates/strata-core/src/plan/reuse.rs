//! Reuse: an image already built from a build's inputs, found and taken
//! instead of building (per platform for a build of several).

use super::*;

/// An image already built from a build's inputs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reusable {
    /// Where it is: `name:inputs-<hex>@sha256:…` in a registry, or offline
    /// its local image ID.
    pub reference: inputs::ReuseFrom,
    /// Its image ID (its config's digest): what the key of a child built on
    /// it is made on.
    pub image_id: String,
    /// It already carries the run's own reference: an earlier attempt of
    /// this run finished it (a rerun after a fault picks up from there).
    pub resumed: bool,
}

/// Gives each build of one plan (parents first) its input key where the
/// plan can tell it, and, when `reuse`, an image already built from the
/// same inputs: such a build is tagged, not built, and its children's keys
/// then use the reused image's ID, so they can be reused too. A build
/// of several platforms has a key per platform (its base: the parent's
/// image of that platform) and is reused when every platform's image is.
pub(super) fn find_reusable(
    spec: &Spec,
    builds: &mut [Build],
    reuse: bool,
    published: &mut dyn PublishedLookup,
) {
    for i in 0..builds.len() {
        // The base a key is made on, for the whole image or one platform;
        // `None`: the plan cannot tell it (a parent built for real).
        let base_of = |platform: Option<&str>| match (&builds[i].parent, builds[i].base_source) {
            // A root's key is made on its external base, when found.
            (None, _) => Some(
                builds[i]
                    .external_base
                    .as_ref()
                    .and_then(|b| b.id_for(platform.unwrap_or(&builds[i].input_parts.platform)))
                    .cloned(),
            ),
            (Some(_), Some(BaseSource::Registry)) => builds[i]
                .base_id(platform.unwrap_or(&builds[i].input_parts.platform))
                .map(|id| Some(id.clone())),
            (Some(_), Some(BaseSource::Local)) => Some(builds[i].base_image_id.clone()),
            (Some(parent), Some(BaseSource::ThisRun)) => builds[..i]
                .iter()
                .find(|b| &b.image == parent)
                .and_then(|b| match platform {
                    Some(p) => b.per_platform.get(p).and_then(|pp| pp.reuse_id.clone()),
                    None => b.reuse_id.clone(),
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
                b.reuse_id = Some(found.image_id);
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
                    reuse_id: found.as_ref().map(|f| f.image_id.clone()),
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
                p.reuse_id = None;
            }
        }
        b.per_platform = per_platform;
    }
}
