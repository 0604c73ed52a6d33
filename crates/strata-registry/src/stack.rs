//! The registry rules of a stack: where a parent's most recent image is
//! published (the lookup order), and whole-stack tagging after a push.

use crate::{Registry, RegistryError};
use std::collections::BTreeMap;
use strata_core::plan::{Plan, Published, tag_candidates};
use strata_core::reference::{Digest, ImageName, ImageRef};
use strata_core::spec::PlanSpec;

/// Where images of a stack are published, asked of one registry client:
/// each repository's tags are listed once, and the first of
/// [`tag_candidates`] (over the run's suffixes) that exists wins, pinned by
/// its manifest digest.
#[derive(Debug)]
pub struct PublishedTags {
    suffixes: Vec<String>,
    /// Each repository's tags; `None` for a repository the registry lacks.
    listed: BTreeMap<String, Option<Vec<String>>>,
    /// Each `name:tag` looked up, at the digest it stood at then: a run
    /// asks once, so what its children were built on and what its
    /// unchanged images are tagged at are one and the same.
    resolved: BTreeMap<String, Option<(String, String)>>,
}

impl PublishedTags {
    /// A lookup trying `suffixes` in order (head, the base's history, then
    /// branch names; see `strata_core::plan::tag_candidates`).
    pub fn new(suffixes: Vec<String>) -> PublishedTags {
        PublishedTags {
            suffixes,
            listed: BTreeMap::new(),
            resolved: BTreeMap::new(),
        }
    }

    /// Where `image_name` is published for `plan`: `name:tag@digest`, or
    /// [`Published::Missing`].
    ///
    /// # Errors
    /// The registry's, except a repository it does not have (`Missing`).
    pub async fn published(
        &mut self,
        registry: &Registry,
        image_name: &str,
        plan: &PlanSpec,
        refresh: Option<&str>,
    ) -> Result<Published, RegistryError> {
        for tag in tag_candidates(plan, &self.suffixes, refresh) {
            if let Some((reference, _)) = self.tagged(registry, image_name, &tag).await? {
                return Ok(Published::At(reference));
            }
        }
        Ok(Published::Missing)
    }

    /// `image_name:tag` pinned by its digest (`name:tag@digest`) and the
    /// digest, when the repository has that tag. Its tags are listed once
    /// for all the lookups of a run; a tag it has costs one more request,
    /// once: a second lookup of the same tag gives the digest of the first.
    ///
    /// # Errors
    /// The registry's, except a repository it does not have (`None`).
    pub async fn tagged(
        &mut self,
        registry: &Registry,
        image_name: &str,
        tag: &str,
    ) -> Result<Option<(String, String)>, RegistryError> {
        let Ok(name) = image_name.parse::<ImageName>() else {
            return Ok(None);
        };
        let key = name.to_string();
        if !self.listed.contains_key(&key) {
            let listed = match registry.list_tags(&name).await {
                Ok(tags) => Some(tags),
                Err(e) if e.is_not_found() => None,
                Err(e) => return Err(e),
            };
            self.listed.insert(key.clone(), listed);
        }
        let Some(Some(tags)) = self.listed.get(&key) else {
            return Ok(None);
        };
        if !tags.iter().any(|t| t == tag) {
            return Ok(None);
        }
        let Ok(reference) = format!("{name}:{tag}").parse::<ImageRef>() else {
            return Ok(None);
        };
        if let Some(known) = self.resolved.get(&reference.to_string()) {
            return Ok(known.clone());
        }
        let found = registry.head_manifest(&reference).await?.map(|info| {
            let digest = info.digest.to_string();
            (format!("{image_name}:{tag}@{digest}"), digest)
        });
        self.resolved.insert(reference.to_string(), found.clone());
        Ok(found)
    }
}

/// Why an unchanged image did not get the run's tag.
#[derive(Debug, thiserror::Error)]
pub enum TagError {
    /// It is published nowhere, so there is nothing to tag.
    #[error("not published anywhere; the tag does not cover it")]
    NotPublished,
    /// The tag it was found under names other content now than when the
    /// run was planned (and its children were built on it).
    #[error(
        "{tag} named {planned} when the run was planned (its children were built on it) and names {now} now; the tag moved during the run, so nothing was tagged: run again to build on what it names now"
    )]
    Moved {
        /// The tag it was found under (`name:tag`).
        tag: ImageRef,
        /// The digest it named then.
        planned: Digest,
        /// The digest it names now (`None`: removed).
        now: MovedTo,
    },
    /// A reference of the plan that does not parse.
    #[error(transparent)]
    Reference(#[from] strata_core::reference::ReferenceError),
    /// The registry failed to tag it.
    #[error(transparent)]
    Registry(#[from] RegistryError),
}

/// Where a moved tag stands now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MovedTo {
    /// Another digest.
    Digest(Digest),
    /// Nowhere: the tag was removed.
    Removed,
}

impl std::fmt::Display for MovedTo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            MovedTo::Digest(d) => write!(f, "{d}"),
            MovedTo::Removed => f.write_str("nothing (it was removed)"),
        }
    }
}

/// After a run that pushed: gives every image of the stack that the run did
/// not rebuild the run's tag, at the digest fixed when the run was planned
/// (the one its children were built on), so the tag names a complete,
/// consistent stack. `published` maps `(image, plan)` to where each stood
/// then (`name:tag@digest`, from the run's one [`PublishedTags`]).
pub async fn tag_unchanged(
    registry: &Registry,
    plan: &Plan,
    published: &BTreeMap<(String, String), String>,
) -> Vec<(String, Result<Digest, TagError>)> {
    let mut out = Vec::new();
    for b in plan.builds.iter().filter(|b| !b.rebuild) {
        let result = match published.get(&(b.image.clone(), b.plan.clone())) {
            None => Err(TagError::NotPublished),
            Some(from) => match (from.parse::<ImageRef>(), b.reference.parse::<ImageRef>()) {
                (Ok(from), Ok(to)) => tag_pinned(registry, &from, &to).await,
                (Err(e), _) | (_, Err(e)) => Err(TagError::Reference(e)),
            },
        };
        out.push((b.reference.clone(), result));
    }
    out
}

/// Puts `to`'s tag on the manifest `from` (`name:tag@digest`) pins, after
/// checking that `from`'s tag still names that digest: the digest is what
/// the run planned with; a tag that moved since fails, naming both.
///
/// # Errors
/// [`TagError::Moved`], or the registry's.
pub async fn tag_pinned(
    registry: &Registry,
    from: &ImageRef,
    to: &ImageRef,
) -> Result<Digest, TagError> {
    if let (Some(tag), Some(planned)) = (from.tag(), from.digest()) {
        let tagged = from.name().with_tag(tag.clone());
        let now = registry.head_manifest(&tagged).await?.map(|i| i.digest);
        if now.as_ref() != Some(planned) {
            return Err(TagError::Moved {
                tag: tagged,
                planned: planned.clone(),
                now: now.map_or(MovedTo::Removed, MovedTo::Digest),
            });
        }
    }
    Ok(registry.copy(from, to).await?.digest)
}

/// One platform's image of a multi-platform image, as an index lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlatformImage {
    /// `os/arch[/variant]`.
    pub platform: strata_core::platform::Platform,
    /// Its manifest, pinned by digest (`name@sha256:…`).
    pub manifest: ImageRef,
}

/// Puts an OCI image index of `images` (each platform's manifest, which
/// the registry must hold) under `target`'s tag: one tag, every platform.
///
/// # Errors
/// The registry's; a platform manifest it does not have is
/// [`RegistryError::NotFound`].
pub async fn put_index(
    registry: &Registry,
    target: &ImageRef,
    images: &[PlatformImage],
) -> Result<strata_core::reference::Digest, RegistryError> {
    let index = index_of(registry, target, images).await?;
    registry.put_manifest(target, &index).await
}

/// Puts the index [`put_index`] would put under `target`'s tag by its
/// digest alone, untagged (so that it can be signed before a tag names
/// it). Returns it pinned (`name@sha256:…`).
///
/// # Errors
/// As [`put_index`].
pub async fn put_index_untagged(
    registry: &Registry,
    target: &ImageRef,
    images: &[PlatformImage],
) -> Result<ImageRef, RegistryError> {
    let index = index_of(registry, target, images).await?;
    let pinned = target.name().with_digest(index.digest().clone());
    registry.put_manifest(&pinned, &index).await?;
    Ok(pinned)
}

/// The index of `images` (each checked to be of its platform) that
/// `target` is to name.
async fn index_of(
    registry: &Registry,
    target: &ImageRef,
    images: &[PlatformImage],
) -> Result<crate::Manifest, RegistryError> {
    let mut manifests = Vec::with_capacity(images.len());
    for image in images {
        let info = registry
            .head_manifest(&image.manifest)
            .await?
            .ok_or_else(|| RegistryError::NotFound {
                reference: Box::new(image.manifest.clone()),
            })?;
        check_platform(registry, target, image).await?;
        let mut platform = serde_json::json!({
            "architecture": image.platform.arch,
            "os": image.platform.os,
        });
        if let Some(variant) = &image.platform.variant {
            platform["variant"] = serde_json::Value::String(variant.clone());
        }
        manifests.push(serde_json::json!({
            "mediaType": info.media_type,
            "digest": info.digest.to_string(),
            "size": info.size,
            "platform": platform,
        }));
    }
    let index = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": crate::manifest::OCI_INDEX,
        "manifests": manifests,
    });
    // Serialising a JSON value cannot fail.
    let bytes = index.to_string().into_bytes();
    crate::Manifest::from_bytes(bytes, Some(crate::manifest::OCI_INDEX)).map_err(|problem| {
        RegistryError::BadManifest {
            reference: target.to_string(),
            problem,
        }
    })
}

/// Checks that the image `image.manifest` names is of the platform it is to
/// be listed under: its config's `os`, `architecture` and `variant` (a
/// missing variant matches any, as registries and engines treat it).
async fn check_platform(
    registry: &Registry,
    target: &ImageRef,
    image: &PlatformImage,
) -> Result<(), RegistryError> {
    let reference = &image.manifest;
    let manifest = registry.existing_manifest(reference).await?;
    let found = crate::config::config_of(registry, reference, &manifest).await?;
    if !found.is_for(&image.platform) {
        return Err(RegistryError::PlatformMismatch {
            target: target.to_string(),
            manifest: reference.to_string(),
            listed: image.platform.to_string(),
            actual: found.platform.to_string(),
        });
    }
    Ok(())
}
