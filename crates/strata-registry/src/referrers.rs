//! Artifacts about an image (its SBOM, per platform), found from the
//! image's digest alone, as OCI 1.1 defines: each is an image manifest of
//! its own `artifactType` whose `subject` is the image's manifest. A
//! registry with the referrers API lists them itself; for one without it
//! (Debian's `docker-registry` 2.8) the OCI 1.1 tag schema is kept too: an
//! index tagged `sha256-<hex of the subject digest>` listing them, which
//! any OCI 1.1 client reads the same way.

use crate::manifest::{ManifestError, OCI_INDEX, OCI_MANIFEST};
use crate::{Manifest, Registry, RegistryError};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use strata_core::reference::{Digest, ImageName, ImageRef, Tag};

const EMPTY_JSON: &[u8] = b"{}";
const EMPTY_MEDIA_TYPE: &str = "application/vnd.oci.empty.v1+json";
/// The annotation naming an artifact's file.
pub const TITLE: &str = "org.opencontainers.image.title";

/// One artifact that refers to an image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Referrer {
    /// Its manifest's digest.
    pub digest: Digest,
    /// Its `artifactType`.
    pub artifact_type: String,
    /// Its manifest's annotations.
    pub annotations: BTreeMap<String, String>,
}

/// An artifact to put beside an image.
#[derive(Debug, Clone)]
pub struct Artifact<'a> {
    /// Its `artifactType`, also its one blob's media type.
    pub artifact_type: &'a str,
    /// The name of its file (`org.opencontainers.image.title`).
    pub file_name: &'a str,
    /// Its content.
    pub content: Vec<u8>,
    /// Its manifest's annotations.
    pub annotations: BTreeMap<String, String>,
}

/// The OCI 1.1 fallback tag of what refers to `digest`: `sha256-<hex>`.
pub fn fallback_tag(digest: &Digest) -> Option<Tag> {
    format!("{}-{}", digest.algorithm(), digest.hex())
        .parse()
        .ok()
}

fn bad(reference: String) -> impl Fn(ManifestError) -> RegistryError {
    move |problem| RegistryError::BadManifest {
        reference: reference.clone(),
        problem,
    }
}

/// Puts `artifact` in the repository of `subject` (an image named by
/// digest) as a referrer of it, and lists it under the fallback tag where
/// the registry has no referrers API. Putting the same artifact twice adds
/// it once. Returns its digest.
///
/// # Errors
/// The registry's; [`RegistryError::NotFound`] when it lacks `subject`.
pub async fn put_referrer(
    registry: &Registry,
    subject: &ImageRef,
    artifact: Artifact<'_>,
) -> Result<Digest, RegistryError> {
    let name = subject.name();
    let subject_info =
        registry
            .head_manifest(subject)
            .await?
            .ok_or_else(|| RegistryError::NotFound {
                reference: Box::new(subject.clone()),
            })?;
    let config = registry.push_blob(name, EMPTY_JSON.to_vec()).await?;
    let size = artifact.content.len();
    let blob = registry.push_blob(name, artifact.content).await?;
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": artifact.artifact_type,
        "config": {
            "mediaType": EMPTY_MEDIA_TYPE,
            "digest": config.to_string(),
            "size": EMPTY_JSON.len(),
        },
        "layers": [{
            "mediaType": artifact.artifact_type,
            "digest": blob.to_string(),
            "size": size,
            "annotations": { TITLE: artifact.file_name },
        }],
        "subject": {
            "mediaType": subject_info.media_type,
            "digest": subject_info.digest.to_string(),
            "size": subject_info.size,
        },
        "annotations": artifact.annotations,
    });
    let manifest = Manifest::from_bytes(manifest.to_string().into_bytes(), Some(OCI_MANIFEST))
        .map_err(bad(subject.to_string()))?;
    let digest = manifest.digest().clone();
    registry
        .put_manifest(&name.with_digest(digest.clone()), &manifest)
        .await?;
    if registry
        .referrers_api(name, &subject_info.digest)
        .await?
        .is_none()
    {
        let entry = json!({
            "mediaType": OCI_MANIFEST,
            "digest": digest.to_string(),
            "size": manifest.size(),
            "artifactType": artifact.artifact_type,
            "annotations": artifact.annotations,
        });
        add_to_fallback(registry, name, &subject_info.digest, entry).await?;
    }
    Ok(digest)
}

/// Adds `entry` to the fallback index of `subject` (made if missing).
async fn add_to_fallback(
    registry: &Registry,
    name: &ImageName,
    subject: &Digest,
    entry: Value,
) -> Result<(), RegistryError> {
    let Some(tag) = fallback_tag(subject) else {
        return Ok(());
    };
    let target = name.with_tag(tag);
    let mut index = match registry.get_manifest(&target).await? {
        Some(existing) if existing.media_type() == OCI_INDEX => {
            serde_json::from_slice::<Value>(existing.bytes()).unwrap_or(Value::Null)
        }
        _ => Value::Null,
    };
    if !index.get("manifests").is_some_and(Value::is_array) {
        index = json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": []});
    }
    let Some(list) = index.get_mut("manifests").and_then(Value::as_array_mut) else {
        return Ok(());
    };
    if list.iter().any(|m| m.get("digest") == entry.get("digest")) {
        return Ok(());
    }
    list.push(entry);
    let manifest = Manifest::from_bytes(index.to_string().into_bytes(), Some(OCI_INDEX))
        .map_err(bad(target.to_string()))?;
    registry.put_manifest(&target, &manifest).await?;
    Ok(())
}

/// What refers to `digest` in repository `name`, of `artifact_type` when
/// given: from the referrers API where the registry has it, else from the
/// fallback tag.
///
/// # Errors
/// The registry's.
pub async fn referrers(
    registry: &Registry,
    name: &ImageName,
    digest: &Digest,
    artifact_type: Option<&str>,
) -> Result<Vec<Referrer>, RegistryError> {
    let index = match registry.referrers_api(name, digest).await? {
        Some(bytes) => serde_json::from_slice::<Value>(&bytes).ok(),
        None => match fallback_tag(digest) {
            Some(tag) => registry
                .get_manifest(&name.with_tag(tag))
                .await?
                .and_then(|m| serde_json::from_slice::<Value>(m.bytes()).ok()),
            None => None,
        },
    };
    let entries = index
        .as_ref()
        .and_then(|i| i.get("manifests"))
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    Ok(entries
        .iter()
        .filter_map(|m| {
            let digest: Digest = m.get("digest")?.as_str()?.parse().ok()?;
            let kind = m.get("artifactType")?.as_str()?.to_string();
            let annotations = m
                .get("annotations")
                .and_then(Value::as_object)
                .map(|a| {
                    a.iter()
                        .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
                        .collect()
                })
                .unwrap_or_default();
            Some(Referrer {
                digest,
                artifact_type: kind,
                annotations,
            })
        })
        .filter(|r| artifact_type.is_none_or(|t| r.artifact_type == t))
        .collect())
}

/// The content of the artifact whose manifest is `digest` in repository
/// `name` (its one blob), at most `limit` bytes; `None` when it is gone.
///
/// # Errors
/// The registry's; an artifact of no blob.
pub async fn artifact_content(
    registry: &Registry,
    name: &ImageName,
    digest: &Digest,
    limit: usize,
) -> Result<Option<Vec<u8>>, RegistryError> {
    let Some(manifest) = registry
        .get_manifest(&name.with_digest(digest.clone()))
        .await?
    else {
        return Ok(None);
    };
    let blob = match manifest.contents() {
        crate::manifest::Contents::Image { layers, .. } => layers.first().cloned(),
        crate::manifest::Contents::Index { .. } => None,
    };
    let Some(blob) = blob else {
        return Err(RegistryError::BadManifest {
            reference: format!("{name}@{digest}"),
            problem: ManifestError::BadField("the artifact holds no blob".into()),
        });
    };
    registry.get_blob(name, &blob.digest, limit).await
}
