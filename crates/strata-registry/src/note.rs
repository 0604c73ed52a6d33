//! Notes: small records that travel with images in their registry, as OCI
//! artifacts made of annotations only (an image manifest with the empty
//! config and no layers, of its own `artifactType`). strata keeps there
//! what the image's registry tags cannot say: the tests an image passed
//! before it was pushed, read back by a later run that reuses it.

use crate::manifest::{ManifestError, OCI_MANIFEST};
use crate::{Manifest, Registry, RegistryError};
use std::collections::BTreeMap;
use strata_core::reference::{Digest, ImageRef};

/// The OCI empty descriptor's content and media type.
const EMPTY_JSON: &[u8] = b"{}";
const EMPTY_MEDIA_TYPE: &str = "application/vnd.oci.empty.v1+json";

/// Puts a note of `artifact_type` holding `annotations` under `target`
/// (a tag in the repository of the image it is about). Returns its digest.
///
/// # Errors
/// The registry's.
pub async fn put_note(
    registry: &Registry,
    target: &ImageRef,
    artifact_type: &str,
    annotations: &BTreeMap<String, String>,
) -> Result<Digest, RegistryError> {
    let config = registry
        .push_blob(target.name(), EMPTY_JSON.to_vec())
        .await?;
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": artifact_type,
        "config": {
            "mediaType": EMPTY_MEDIA_TYPE,
            "digest": config.to_string(),
            "size": EMPTY_JSON.len(),
        },
        "layers": [],
        "annotations": annotations,
    });
    let bad = |problem| RegistryError::BadManifest {
        reference: target.to_string(),
        problem,
    };
    let manifest =
        Manifest::from_bytes(manifest.to_string().into_bytes(), Some(OCI_MANIFEST)).map_err(bad)?;
    registry.put_manifest(target, &manifest).await
}

/// The annotations of the note of `artifact_type` at `reference`, or
/// `None` when there is none (or what is there is another kind of thing).
///
/// # Errors
/// The registry's; a manifest that is not JSON.
pub async fn get_note(
    registry: &Registry,
    reference: &ImageRef,
    artifact_type: &str,
) -> Result<Option<BTreeMap<String, String>>, RegistryError> {
    let Some(manifest) = registry.get_manifest(reference).await? else {
        return Ok(None);
    };
    #[derive(serde::Deserialize)]
    struct Note {
        #[serde(rename = "artifactType")]
        artifact_type: Option<String>,
        #[serde(default)]
        annotations: BTreeMap<String, String>,
    }
    let note: Note =
        serde_json::from_slice(manifest.bytes()).map_err(|e| RegistryError::BadManifest {
            reference: reference.to_string(),
            problem: ManifestError::NotJson(e.to_string()),
        })?;
    Ok((note.artifact_type.as_deref() == Some(artifact_type)).then_some(note.annotations))
}
