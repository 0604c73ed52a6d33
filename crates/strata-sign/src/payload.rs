//! The simple-signing payload: what a cosign signature signs. Its bytes
//! are cosign's own (Go's `encoding/json` of its struct: keys in this
//! order, no spaces), so a signature strata makes reads as one cosign made.

use crate::VerifyError;
use serde::{Deserialize, Serialize};

/// `critical.type` of a cosign image signature.
pub const SIGNATURE_TYPE: &str = "cosign container image signature";

/// What a signature vouches for: this manifest digest, in this repository.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Payload {
    critical: Critical,
    /// Free claims; cosign writes `null` when there are none.
    #[serde(default)]
    optional: Option<serde_json::Map<String, serde_json::Value>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Critical {
    identity: Identity,
    image: Image,
    #[serde(rename = "type")]
    kind: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Identity {
    #[serde(rename = "docker-reference")]
    docker_reference: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Image {
    #[serde(rename = "docker-manifest-digest")]
    docker_manifest_digest: String,
}

impl Payload {
    /// The payload of a signature of the manifest `digest`
    /// (`sha256:<hex>`) in `repository` (`registry/name`, no tag: what
    /// cosign signs).
    pub fn new(repository: &str, digest: &str) -> Payload {
        Payload {
            critical: Critical {
                identity: Identity {
                    docker_reference: repository.to_string(),
                },
                image: Image {
                    docker_manifest_digest: digest.to_string(),
                },
                kind: SIGNATURE_TYPE.to_string(),
            },
            optional: None,
        }
    }

    /// Its bytes, as cosign writes them.
    pub fn to_bytes(&self) -> Vec<u8> {
        // Plain strings and maps: serialising cannot fail.
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// Reads a payload; one of another type is refused.
    ///
    /// # Errors
    /// [`VerifyError::BadPayload`].
    pub fn parse(bytes: &[u8]) -> Result<Payload, VerifyError> {
        let payload: Payload =
            serde_json::from_slice(bytes).map_err(|e| VerifyError::BadPayload(e.to_string()))?;
        if payload.critical.kind != SIGNATURE_TYPE {
            return Err(VerifyError::BadPayload(format!(
                "its type is `{}`, not `{SIGNATURE_TYPE}`",
                payload.critical.kind
            )));
        }
        Ok(payload)
    }

    /// The manifest digest it vouches for.
    pub fn digest(&self) -> &str {
        &self.critical.image.docker_manifest_digest
    }

    /// The repository it names.
    pub fn repository(&self) -> &str {
        &self.critical.identity.docker_reference
    }

    /// Checks that it vouches for `digest` in `repository` (a signed
    /// reference with a tag or digest counts as its repository).
    ///
    /// # Errors
    /// [`VerifyError::OtherDigest`], [`VerifyError::OtherRepository`].
    pub fn check(&self, repository: &str, digest: &str) -> Result<(), VerifyError> {
        if self.digest() != digest {
            return Err(VerifyError::OtherDigest {
                signed: self.digest().to_string(),
                expected: digest.to_string(),
            });
        }
        if repository_of(self.repository()) != repository {
            return Err(VerifyError::OtherRepository {
                signed: self.repository().to_string(),
                expected: repository.to_string(),
            });
        }
        Ok(())
    }
}

/// `registry/name` of a reference that may carry `:tag` or `@digest`.
fn repository_of(reference: &str) -> &str {
    let name = reference.split('@').next().unwrap_or(reference);
    match name.rsplit_once(':') {
        // A colon after the last slash is a tag; before it, a port.
        Some((repo, tag)) if !tag.contains('/') => repo,
        _ => name,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DIGEST: &str = "sha256:4f53cda18c2baa0c0354bb5f9a3ecbe5ed12ab4d8e11ba873c2f11161202b945";

    #[test]
    fn bytes_are_cosigns() {
        // As `cosign sign` writes it (Go's encoding/json of its struct).
        let expected = format!(
            r#"{{"critical":{{"identity":{{"docker-reference":"127.0.0.1:5000/org/img"}},"image":{{"docker-manifest-digest":"{DIGEST}"}},"type":"cosign container image signature"}},"optional":null}}"#
        );
        let payload = Payload::new("127.0.0.1:5000/org/img", DIGEST);
        assert_eq!(String::from_utf8(payload.to_bytes()).unwrap(), expected);
        assert_eq!(Payload::parse(expected.as_bytes()).unwrap(), payload);
    }

    #[test]
    fn checks_digest_and_repository() {
        let payload = Payload::new("127.0.0.1:5000/org/img", DIGEST);
        assert_eq!(payload.check("127.0.0.1:5000/org/img", DIGEST), Ok(()));
        assert!(matches!(
            payload.check("127.0.0.1:5000/org/img", "sha256:00"),
            Err(VerifyError::OtherDigest { .. })
        ));
        assert!(matches!(
            payload.check("127.0.0.1:5000/org/other", DIGEST),
            Err(VerifyError::OtherRepository { .. })
        ));
        let tagged = Payload::new("127.0.0.1:5000/org/img:2024.1-abc", DIGEST);
        assert_eq!(tagged.check("127.0.0.1:5000/org/img", DIGEST), Ok(()));
    }

    #[test]
    fn refuses_other_documents() {
        let other = br#"{"critical":{"identity":{"docker-reference":"a"},"image":{"docker-manifest-digest":"sha256:00"},"type":"atomic container signature"},"optional":null}"#;
        assert!(matches!(
            Payload::parse(other),
            Err(VerifyError::BadPayload(_))
        ));
        assert!(Payload::parse(b"{}").is_err());
    }
}
