//! Manifests as bytes: media types, validation, digests.
//!
//! A [`Manifest`] keeps the exact bytes the registry served (or will be sent),
//! because a manifest's identity is the digest of its bytes: re-serialising it
//! would change the digest.

use sha2::Digest as _;
use strata_core::reference::Digest;

/// Docker image manifest, schema 2.
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
/// Docker manifest list (multi-arch).
pub const DOCKER_MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
/// OCI image manifest.
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// OCI image index (multi-arch).
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";

/// The `Accept` header sent when fetching manifests: every type above.
pub const MANIFEST_ACCEPT: &str = "application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json";

/// Largest manifest accepted or sent (4 MiB, as registries enforce).
pub const MAX_MANIFEST_BYTES: usize = 4 * 1024 * 1024;

/// Why some bytes are not a manifest strata can handle.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ManifestError {
    /// Not JSON, or not a JSON object.
    #[error("it is not a JSON object ({0})")]
    NotJson(String),
    /// `schemaVersion` is missing or not 2 (schema 1 is obsolete).
    #[error("schemaVersion is {0}, only 2 is supported (re-push the image with a current Docker)")]
    SchemaVersion(String),
    /// No media type in the body nor in the `Content-Type`.
    #[error("it has no mediaType, and the Content-Type does not name an OCI manifest")]
    NoMediaType,
    /// A media type strata does not handle.
    #[error("media type `{0}` is not a Docker schema 2 or OCI manifest or index")]
    UnsupportedMediaType(String),
    /// A required field is missing or has the wrong shape.
    #[error("{0}")]
    BadField(String),
    /// Larger than [`MAX_MANIFEST_BYTES`].
    #[error("it is {0} bytes, over the 4 MiB limit for manifests")]
    TooLarge(usize),
}

/// A descriptor's essentials: what a manifest points at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Descriptor {
    /// Media type of the target.
    pub media_type: Option<String>,
    /// Digest of the target.
    pub digest: Digest,
    /// Size in bytes.
    pub size: u64,
    /// For an entry of an index: the platform it names (`linux/arm64/v8`),
    /// when it names one.
    pub platform: Option<String>,
}

/// What a manifest refers to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Contents {
    /// An image manifest: its config blob and its layers.
    Image {
        /// The config blob.
        config: Descriptor,
        /// Layer blobs, in order.
        layers: Vec<Descriptor>,
    },
    /// An index / manifest list: its child manifests.
    Index {
        /// The child manifests.
        manifests: Vec<Descriptor>,
    },
}

/// A validated manifest: exact bytes, media type, digest and what it refers to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manifest {
    bytes: Vec<u8>,
    media_type: String,
    digest: Digest,
    contents: Contents,
}

/// The sha256 digest of some bytes.
pub fn sha256_digest(bytes: &[u8]) -> Digest {
    let sum = sha2::Sha256::digest(bytes);
    let mut hex = String::with_capacity(64);
    for b in sum.iter() {
        hex.push_str(&format!("{b:02x}"));
    }
    match Digest::from_sha256_hex(&hex) {
        Some(d) => d,
        // 32 bytes always give 64 lowercase hex digits.
        None => unreachable!("sha256 hex is always valid"),
    }
}

/// The digest of `bytes` computed with `like`'s algorithm (sha256 or sha512);
/// `None` for an algorithm strata cannot compute.
pub fn digest_like(like: &Digest, bytes: &[u8]) -> Option<Digest> {
    match like.algorithm() {
        "sha256" => Some(sha256_digest(bytes)),
        "sha512" => {
            let sum = sha2::Sha512::digest(bytes);
            let hex: String = sum.iter().map(|b| format!("{b:02x}")).collect();
            format!("sha512:{hex}").parse().ok()
        }
        _ => None,
    }
}

fn base_media_type(content_type: &str) -> &str {
    content_type.split(';').next().unwrap_or("").trim()
}

fn descriptor(v: &serde_json::Value, what: &str) -> Result<Descriptor, ManifestError> {
    let obj = v
        .as_object()
        .ok_or_else(|| ManifestError::BadField(format!("{what} is not an object")))?;
    let digest = obj
        .get("digest")
        .and_then(|d| d.as_str())
        .ok_or_else(|| ManifestError::BadField(format!("{what} has no digest")))?;
    let digest: Digest = digest
        .parse()
        .map_err(|_| ManifestError::BadField(format!("{what} has an invalid digest")))?;
    let size = obj
        .get("size")
        .and_then(|s| s.as_u64())
        .ok_or_else(|| ManifestError::BadField(format!("{what} has no size")))?;
    let platform = obj.get("platform").and_then(|p| {
        let field = |k: &str| p.get(k).and_then(|v| v.as_str()).filter(|v| !v.is_empty());
        let mut text = format!("{}/{}", field("os")?, field("architecture")?);
        if let Some(variant) = field("variant") {
            text.push('/');
            text.push_str(variant);
        }
        Some(text)
    });
    Ok(Descriptor {
        media_type: obj
            .get("mediaType")
            .and_then(|m| m.as_str())
            .map(str::to_string),
        digest,
        size,
        platform,
    })
}

impl Manifest {
    /// Validates manifest bytes. `content_type` is the `Content-Type` they
    /// came with (or will be sent with); it names the media type when the body
    /// has no `mediaType` field, which only OCI manifests may omit.
    pub fn from_bytes(bytes: Vec<u8>, content_type: Option<&str>) -> Result<Self, ManifestError> {
        if bytes.len() > MAX_MANIFEST_BYTES {
            return Err(ManifestError::TooLarge(bytes.len()));
        }
        let v: serde_json::Value = serde_json::from_slice(&bytes).map_err(|e| {
            ManifestError::NotJson(format!("line {}, column {}", e.line(), e.column()))
        })?;
        let obj = v
            .as_object()
            .ok_or_else(|| ManifestError::NotJson("not an object".to_string()))?;
        match obj.get("schemaVersion") {
            Some(n) if n.as_u64() == Some(2) => {}
            Some(n) => return Err(ManifestError::SchemaVersion(n.to_string())),
            None => return Err(ManifestError::SchemaVersion("missing".to_string())),
        }
        let header = content_type.map(base_media_type).filter(|t| !t.is_empty());
        let media_type = match obj.get("mediaType") {
            Some(serde_json::Value::String(m)) => m.clone(),
            Some(_) => return Err(ManifestError::BadField("mediaType is not a string".into())),
            None => match header {
                Some(h) if h == OCI_MANIFEST || h == OCI_INDEX => h.to_string(),
                _ => return Err(ManifestError::NoMediaType),
            },
        };
        let contents = match media_type.as_str() {
            DOCKER_MANIFEST | OCI_MANIFEST => {
                let config = descriptor(
                    obj.get("config")
                        .ok_or_else(|| ManifestError::BadField("it has no config".into()))?,
                    "config",
                )?;
                let layers = obj
                    .get("layers")
                    .and_then(|l| l.as_array())
                    .ok_or_else(|| ManifestError::BadField("it has no layers array".into()))?
                    .iter()
                    .enumerate()
                    .map(|(i, l)| descriptor(l, &format!("layer {i}")))
                    .collect::<Result<Vec<_>, _>>()?;
                Contents::Image { config, layers }
            }
            DOCKER_MANIFEST_LIST | OCI_INDEX => {
                let manifests = obj
                    .get("manifests")
                    .and_then(|l| l.as_array())
                    .ok_or_else(|| ManifestError::BadField("it has no manifests array".into()))?
                    .iter()
                    .enumerate()
                    .map(|(i, l)| descriptor(l, &format!("manifest {i}")))
                    .collect::<Result<Vec<_>, _>>()?;
                Contents::Index { manifests }
            }
            other => return Err(ManifestError::UnsupportedMediaType(other.to_string())),
        };
        let digest = sha256_digest(&bytes);
        Ok(Manifest {
            bytes,
            media_type,
            digest,
            contents,
        })
    }

    /// The exact bytes.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The media type (one of the four constants of this module).
    pub fn media_type(&self) -> &str {
        &self.media_type
    }

    /// The sha256 digest of the bytes.
    pub fn digest(&self) -> &Digest {
        &self.digest
    }

    /// Size of the bytes.
    pub fn size(&self) -> u64 {
        self.bytes.len() as u64
    }

    /// Whether this is an index / manifest list (multi-arch).
    pub fn is_index(&self) -> bool {
        matches!(self.contents, Contents::Index { .. })
    }

    /// What the manifest refers to.
    pub fn contents(&self) -> &Contents {
        &self.contents
    }
}

/// What a `HEAD` on a manifest says: enough to compare without downloading.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestInfo {
    /// The manifest's digest.
    pub digest: Digest,
    /// Its media type.
    pub media_type: String,
    /// Its size in bytes.
    pub size: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    fn image(mt: Option<&str>) -> Vec<u8> {
        let mt = mt
            .map(|m| format!(r#""mediaType":"{m}","#))
            .unwrap_or_default();
        format!(
            r#"{{"schemaVersion":2,{mt}"config":{{"mediaType":"x","digest":"{D}","size":2}},"layers":[{{"digest":"{D}","size":3}}]}}"#
        )
        .into_bytes()
    }

    #[test]
    fn known_digest() {
        assert_eq!(
            sha256_digest(b"").as_str(),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        let d: Digest = D.parse().unwrap();
        assert_eq!(digest_like(&d, b""), Some(sha256_digest(b"")));
    }

    #[test]
    fn media_types() {
        let m = Manifest::from_bytes(image(Some(DOCKER_MANIFEST)), None).unwrap();
        assert_eq!(m.media_type(), DOCKER_MANIFEST);
        assert!(!m.is_index());
        assert_eq!(m.digest(), &sha256_digest(m.bytes()));
        match m.contents() {
            Contents::Image { config, layers } => {
                assert_eq!(config.size, 2);
                assert_eq!(layers.len(), 1);
            }
            other => panic!("{other:?}"),
        }
        // OCI without mediaType: the Content-Type decides.
        let m = Manifest::from_bytes(
            image(None),
            Some("application/vnd.oci.image.manifest.v1+json; charset=utf-8"),
        )
        .unwrap();
        assert_eq!(m.media_type(), OCI_MANIFEST);
        // Docker types must say so in the body.
        assert_eq!(
            Manifest::from_bytes(image(None), Some(DOCKER_MANIFEST)),
            Err(ManifestError::NoMediaType)
        );
        assert_eq!(
            Manifest::from_bytes(image(None), None),
            Err(ManifestError::NoMediaType)
        );
        assert!(matches!(
            Manifest::from_bytes(
                image(Some("application/vnd.docker.distribution.manifest.v1+json")),
                None
            ),
            Err(ManifestError::UnsupportedMediaType(_))
        ));
    }

    #[test]
    fn malformed() {
        assert!(matches!(
            Manifest::from_bytes(b"{".to_vec(), None),
            Err(ManifestError::NotJson(_))
        ));
        assert!(matches!(
            Manifest::from_bytes(b"[]".to_vec(), None),
            Err(ManifestError::NotJson(_))
        ));
        assert!(matches!(
            Manifest::from_bytes(br#"{"schemaVersion":1}"#.to_vec(), None),
            Err(ManifestError::SchemaVersion(_))
        ));
        assert!(matches!(
            Manifest::from_bytes(
                format!(r#"{{"schemaVersion":2,"mediaType":"{OCI_INDEX}"}}"#).into_bytes(),
                None
            ),
            Err(ManifestError::BadField(_))
        ));
        assert!(matches!(
            Manifest::from_bytes(
                format!(r#"{{"schemaVersion":2,"mediaType":"{OCI_INDEX}","manifests":[{{"digest":"sha256:x","size":1}}]}}"#).into_bytes(),
                None
            ),
            Err(ManifestError::BadField(_))
        ));
        let big = vec![b' '; MAX_MANIFEST_BYTES + 1];
        assert_eq!(
            Manifest::from_bytes(big, None),
            Err(ManifestError::TooLarge(MAX_MANIFEST_BYTES + 1))
        );
    }
}
