//! Signatures in cosign's registry layout, which cosign, containers/image
//! (`use-sigstore-attachments`) and strata read: an OCI image tagged
//! `sha256-<hex of the signed digest>.sig` in the signed image's
//! repository, one layer per signature. A layer's blob is the signed
//! payload (`application/vnd.dev.cosign.simplesigning.v1+json`) and its
//! annotation `dev.cosignproject.cosign/signature` the signature. What the
//! payload says and whether a signature holds is `strata-sign`'s business;
//! this module stores and reads them as they are.

use crate::manifest::{ManifestError, OCI_MANIFEST};
use crate::{Manifest, Registry, RegistryError};
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::collections::BTreeMap;
use strata_core::reference::{Digest, ImageName, ImageRef, Tag};

/// The media type of a signature's layer (its payload).
pub const SIMPLE_SIGNING: &str = "application/vnd.dev.cosign.simplesigning.v1+json";
/// The layer annotation holding the signature (base64).
pub const SIGNATURE_ANNOTATION: &str = "dev.cosignproject.cosign/signature";
const CONFIG_MEDIA_TYPE: &str = "application/vnd.oci.image.config.v1+json";
/// A payload is a few hundred bytes; anything much larger is not one.
const PAYLOAD_LIMIT: usize = 64 * 1024;

/// One signature as stored: the payload signed and the signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredSignature {
    /// The signed bytes (the simple-signing payload).
    pub payload: Vec<u8>,
    /// The signature, base64, as the annotation holds it.
    pub signature: String,
}

/// The tag holding the signatures of `digest`: `sha256-<hex>.sig`.
pub fn signature_tag(digest: &Digest) -> Option<Tag> {
    let referrers = crate::referrers::fallback_tag(digest)?;
    format!("{}.sig", referrers.as_str()).parse().ok()
}

#[derive(Serialize, Deserialize)]
struct Layer {
    #[serde(rename = "mediaType")]
    media_type: String,
    digest: String,
    size: u64,
    #[serde(default)]
    annotations: BTreeMap<String, String>,
}

#[derive(Deserialize)]
struct SignatureImage {
    #[serde(default)]
    layers: Vec<Layer>,
}

fn bad(reference: &ImageRef) -> impl Fn(ManifestError) -> RegistryError + '_ {
    move |problem| RegistryError::BadManifest {
        reference: reference.to_string(),
        problem,
    }
}

/// The signature image of `digest` in `name`, its layers, if there is one.
async fn signature_layers(
    registry: &Registry,
    target: &ImageRef,
) -> Result<Vec<Layer>, RegistryError> {
    let Some(manifest) = registry.get_manifest(target).await? else {
        return Ok(Vec::new());
    };
    let image: SignatureImage = serde_json::from_slice(manifest.bytes())
        .map_err(|e| bad(target)(ManifestError::NotJson(e.to_string())))?;
    Ok(image.layers)
}

/// The tag target of `image`'s signatures.
fn target_of(image: &ImageRef) -> Result<ImageRef, RegistryError> {
    let digest = image.digest().ok_or_else(|| RegistryError::BadManifest {
        reference: image.to_string(),
        problem: ManifestError::BadField("only an image named by digest is signed".into()),
    })?;
    let tag = signature_tag(digest).ok_or_else(|| RegistryError::BadManifest {
        reference: image.to_string(),
        problem: ManifestError::BadField(format!("no signature tag for {digest}")),
    })?;
    Ok(image.name().with_tag(tag))
}

/// Adds a signature of `image` (named by digest) to its signature image,
/// made if missing: the signatures already there stay. The same payload
/// and signature twice are stored once. Returns the signature image's
/// digest.
///
/// # Errors
/// The registry's; an image not named by digest.
pub async fn put_signature(
    registry: &Registry,
    image: &ImageRef,
    signature: StoredSignature,
) -> Result<Digest, RegistryError> {
    let target = target_of(image)?;
    let layers = signature_layers(registry, &target).await?;
    append(registry, image, &target, layers, signature).await
}

/// Adds the signature `make` gives of `image` (named by digest), unless
/// a signature stored there already is `held` (this key's, say): the
/// signature image is read once for both. Returns the signature image's
/// digest when one was added.
///
/// # Errors
/// The registry's; an image not named by digest; a payload missing from
/// the registry.
pub async fn add_signature_unless(
    registry: &Registry,
    image: &ImageRef,
    held: impl Fn(&StoredSignature) -> bool,
    make: impl FnOnce() -> StoredSignature,
) -> Result<Option<Digest>, RegistryError> {
    let target = target_of(image)?;
    let layers = signature_layers(registry, &target).await?;
    if payloads(registry, image.name(), &layers)
        .await?
        .iter()
        .any(held)
    {
        return Ok(None);
    }
    append(registry, image, &target, layers, make())
        .await
        .map(Some)
}

/// Puts the signature image `target` of `image`: `layers` (those stored
/// there) with `signature` added, once.
async fn append(
    registry: &Registry,
    image: &ImageRef,
    target: &ImageRef,
    mut layers: Vec<Layer>,
    signature: StoredSignature,
) -> Result<Digest, RegistryError> {
    let name = image.name();
    let size = signature.payload.len() as u64;
    let payload = registry.push_blob(name, signature.payload).await?;
    let annotations = BTreeMap::from([(SIGNATURE_ANNOTATION.to_string(), signature.signature)]);
    let duplicate = layers
        .iter()
        .any(|l| l.digest == payload.as_str() && l.annotations == annotations);
    if !duplicate {
        layers.push(Layer {
            media_type: SIMPLE_SIGNING.into(),
            digest: payload.to_string(),
            size,
            annotations,
        });
    }
    // The config cosign writes: an image of no platform whose layers are
    // the payloads.
    let diff_ids: Vec<&str> = layers.iter().map(|l| l.digest.as_str()).collect();
    let config = json!({
        "architecture": "",
        "created": "0001-01-01T00:00:00Z",
        "history": [{"created": "0001-01-01T00:00:00Z"}],
        "os": "",
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "config": {},
    })
    .to_string()
    .into_bytes();
    let config_size = config.len();
    let config_digest = registry.push_blob(name, config).await?;
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {
            "mediaType": CONFIG_MEDIA_TYPE,
            "size": config_size,
            "digest": config_digest.to_string(),
        },
        "layers": layers,
    });
    let manifest = Manifest::from_bytes(manifest.to_string().into_bytes(), Some(OCI_MANIFEST))
        .map_err(bad(target))?;
    registry.put_manifest(target, &manifest).await
}

/// The signatures stored for `digest` in repository `name` (none when it
/// has no signature image); layers of other media types are left out.
///
/// # Errors
/// The registry's; a payload missing from the registry.
pub async fn signatures(
    registry: &Registry,
    name: &ImageName,
    digest: &Digest,
) -> Result<Vec<StoredSignature>, RegistryError> {
    let target = target_of(&name.with_digest(digest.clone()))?;
    let layers = signature_layers(registry, &target).await?;
    payloads(registry, name, &layers).await
}

/// The signatures `layers` of a signature image in `name` hold; layers of
/// other media types are left out.
async fn payloads(
    registry: &Registry,
    name: &ImageName,
    layers: &[Layer],
) -> Result<Vec<StoredSignature>, RegistryError> {
    let mut found = Vec::new();
    for layer in layers {
        if layer.media_type != SIMPLE_SIGNING {
            continue;
        }
        let Ok(blob) = layer.digest.parse::<Digest>() else {
            continue;
        };
        let payload = registry
            .get_blob(name, &blob, PAYLOAD_LIMIT)
            .await?
            .ok_or_else(|| RegistryError::NotFound {
                reference: Box::new(name.with_digest(blob.clone())),
            })?;
        found.push(StoredSignature {
            payload,
            signature: layer
                .annotations
                .get(SIGNATURE_ANNOTATION)
                .cloned()
                .unwrap_or_default(),
        });
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tag_is_cosigns() {
        let digest: Digest =
            "sha256:4f53cda18c2baa0c0354bb5f9a3ecbe5ed12ab4d8e11ba873c2f11161202b945"
                .parse()
                .unwrap();
        assert_eq!(
            signature_tag(&digest).unwrap().as_str(),
            "sha256-4f53cda18c2baa0c0354bb5f9a3ecbe5ed12ab4d8e11ba873c2f11161202b945.sig"
        );
    }
}
