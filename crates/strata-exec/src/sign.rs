//! Signatures of what a run publishes, and their check. A run signs each
//! manifest it pushes (each platform's image), each index it puts and each
//! SBOM it puts beside an image, by digest, through a [`Signer`]; the
//! executor and the run's end only ask for a signature, and fail what
//! could not be signed. [`KeySigner`] signs with a key in cosign's format
//! and layout (see `strata_sign`, `strata_registry::signatures`);
//! [`verify`] checks an image (and each platform's, for an index) against
//! a public key.

use serde::Serialize;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use strata_core::reference::{Digest, ImageRef};
use strata_registry::signatures::{StoredSignature, add_signature_unless, signatures};
use strata_registry::{Registry, RegistryError};
use strata_sign::{Payload, PrivateKey, PublicKey};

/// What [`Signer::sign`] returns.
pub type Signing<'a> = Pin<Box<dyn Future<Output = Result<(), RegistryError>> + Send + 'a>>;

/// Signs images in their registry by digest.
pub trait Signer: Send + Sync {
    /// Signs the manifest `image` names (`name@sha256:…`) and stores the
    /// signature beside it.
    fn sign<'a>(&'a self, image: &'a ImageRef) -> Signing<'a>;

    /// Signs `image` (`name@sha256:…`) as an earlier build published it:
    /// itself, each platform's image of an index, and each artifact that
    /// refers to one of those (its SBOMs). What a run reuses or leaves
    /// unchanged carries that build's, which the run puts no other of.
    fn sign_published<'a>(&'a self, image: &'a ImageRef) -> Signing<'a>;
}

/// Signs with a private key, storing signatures in the image's registry.
pub struct KeySigner {
    registry: &'static Registry,
    key: PrivateKey,
    /// `key`'s public key, derived once: what finds its own signatures.
    public: PublicKey,
}

impl KeySigner {
    /// A signer with `key`, writing to `registry`.
    pub fn new(registry: &'static Registry, key: PrivateKey) -> KeySigner {
        let public = key.public_key();
        KeySigner {
            registry,
            key,
            public,
        }
    }
}

impl fmt::Debug for KeySigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("KeySigner(<redacted>)")
    }
}

impl Signer for KeySigner {
    fn sign<'a>(&'a self, image: &'a ImageRef) -> Signing<'a> {
        Box::pin(async move {
            let Some(digest) = image.digest() else {
                // Only a digest can be signed; a tag is the caller's bug.
                return Err(RegistryError::NotFound {
                    reference: Box::new(image.clone()),
                });
            };
            let name = image.name();
            let repository = name.to_string();
            // An image this key signed already (a run resumed, an image
            // reused) keeps the one signature.
            add_signature_unless(
                self.registry,
                &name.with_digest(digest.clone()),
                |s| holds(&self.public, s, &repository, digest).is_ok(),
                || {
                    let payload = Payload::new(&repository, digest.as_str()).to_bytes();
                    let signature = self.key.sign(&payload);
                    StoredSignature { payload, signature }
                },
            )
            .await
            .map(|_| ())
        })
    }

    fn sign_published<'a>(&'a self, image: &'a ImageRef) -> Signing<'a> {
        Box::pin(async move {
            let name = image.name();
            for (digest, _, _) in published_manifests(self.registry, image, true).await? {
                self.sign(&name.with_digest(digest)).await?;
            }
            Ok(())
        })
    }
}

/// Whether `stored` is a signature by `public` of `digest` in `repository`.
fn holds(
    public: &PublicKey,
    stored: &StoredSignature,
    repository: &str,
    digest: &Digest,
) -> Result<(), strata_sign::VerifyError> {
    public.verify(&stored.payload, &stored.signature)?;
    Payload::parse(&stored.payload)?.check(repository, digest.as_str())
}

/// What the signatures of one manifest say.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Verdict {
    /// Signed by the key: how many of its signatures hold.
    Signed {
        /// Signatures by the key that name this digest.
        signatures: usize,
    },
    /// No signature at all.
    Unsigned,
    /// Signatures, none of which holds: why each does not.
    WronglySigned {
        /// Each signature's problem.
        problems: Vec<String>,
    },
}

impl Verdict {
    /// The verdict on `digest` in `repository` of the signatures `stored`.
    pub fn of(
        public: &PublicKey,
        repository: &str,
        digest: &Digest,
        stored: &[StoredSignature],
    ) -> Verdict {
        if stored.is_empty() {
            return Verdict::Unsigned;
        }
        let (held, problems): (Vec<_>, Vec<_>) = stored
            .iter()
            .map(|s| holds(public, s, repository, digest))
            .partition(Result::is_ok);
        match held.len() {
            0 => Verdict::WronglySigned {
                problems: problems
                    .into_iter()
                    .filter_map(Result::err)
                    .map(|e| e.to_string())
                    .collect(),
            },
            n => Verdict::Signed { signatures: n },
        }
    }

    /// Whether the key vouches for the manifest.
    pub fn is_signed(&self) -> bool {
        matches!(self, Verdict::Signed { .. })
    }
}

/// One manifest checked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Checked {
    /// The manifest, pinned (`name@sha256:…`).
    #[serde(serialize_with = "as_text")]
    pub image: ImageRef,
    /// What it is: `index`, `image`, or an artifact's type (an SBOM's).
    pub kind: String,
    /// Its platform, for an image listed in an index.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub platform: Option<String>,
    /// What its signatures say.
    #[serde(flatten)]
    pub verdict: Verdict,
}

fn as_text<S: serde::Serializer>(image: &ImageRef, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(image)
}

/// Checks the manifest `reference` names against `public`: an index and
/// each platform's image it lists, or an image; with `artifacts`, also
/// each artifact that refers to one of them (its SBOMs). Each is checked
/// by its digest, read once.
///
/// # Errors
/// The registry's; [`RegistryError::NotFound`] when it lacks `reference`.
pub async fn verify(
    registry: &Registry,
    public: &PublicKey,
    reference: &ImageRef,
    artifacts: bool,
) -> Result<Vec<Checked>, RegistryError> {
    let name = reference.name();
    let repository = name.to_string();
    let manifests = published_manifests(registry, reference, artifacts).await?;
    let mut checked = Vec::with_capacity(manifests.len());
    for (digest, kind, platform) in manifests {
        let stored = signatures(registry, name, &digest).await?;
        checked.push(Checked {
            image: name.with_digest(digest.clone()),
            kind,
            platform,
            verdict: Verdict::of(public, &repository, &digest, &stored),
        });
    }
    Ok(checked)
}

/// The manifests `reference` stands for, as a signature vouches for them:
/// its own (`index` or `image`), each platform's image of an index, and
/// with `artifacts` each artifact referring to one of those images (by its
/// artifact type), each with its platform where an index lists it.
///
/// # Errors
/// The registry's; [`RegistryError::NotFound`] when it lacks `reference`.
async fn published_manifests(
    registry: &Registry,
    reference: &ImageRef,
    artifacts: bool,
) -> Result<Vec<(Digest, String, Option<String>)>, RegistryError> {
    let manifest = registry.existing_manifest(reference).await?;
    let name = reference.name();
    let mut manifests = vec![(
        manifest.digest().clone(),
        if manifest.is_index() {
            "index"
        } else {
            "image"
        }
        .to_string(),
        None,
    )];
    if let strata_registry::manifest::Contents::Index { manifests: listed } = manifest.contents() {
        manifests.extend(
            listed
                .iter()
                .map(|m| (m.digest.clone(), "image".to_string(), m.platform.clone())),
        );
    }
    if artifacts {
        let images: Vec<_> = manifests
            .iter()
            .filter(|(_, kind, _)| kind == "image")
            .map(|(d, _, p)| (d.clone(), p.clone()))
            .collect();
        for (digest, platform) in images {
            for r in strata_registry::referrers::referrers(registry, name, &digest, None).await? {
                manifests.push((r.digest, r.artifact_type, platform.clone()));
            }
        }
    }
    Ok(manifests)
}

#[cfg(test)]
mod tests {
    use super::*;

    const REPOSITORY: &str = "127.0.0.1:5000/org/img";

    fn digest(n: u8) -> Digest {
        format!("sha256:{:064x}", n).parse().unwrap()
    }

    fn signed(key: &PrivateKey, repository: &str, digest: &Digest) -> StoredSignature {
        let payload = Payload::new(repository, digest.as_str()).to_bytes();
        StoredSignature {
            signature: key.sign(&payload),
            payload,
        }
    }

    #[test]
    fn a_signature_holds_for_its_key_digest_and_repository_only() {
        let key = strata_sign::generate();
        let public = key.public_key();
        let other = strata_sign::generate();
        let d = digest(1);
        assert_eq!(Verdict::of(&public, REPOSITORY, &d, &[]), Verdict::Unsigned);
        let good = signed(&key, REPOSITORY, &d);
        assert_eq!(
            Verdict::of(&public, REPOSITORY, &d, std::slice::from_ref(&good)),
            Verdict::Signed { signatures: 1 }
        );
        // Another key's signature beside it changes nothing.
        let theirs = signed(&other, REPOSITORY, &d);
        assert!(Verdict::of(&public, REPOSITORY, &d, &[theirs.clone(), good]).is_signed());
        let refused =
            |stored: StoredSignature| match Verdict::of(&public, REPOSITORY, &d, &[stored]) {
                Verdict::WronglySigned { problems } => problems.join("; "),
                v => panic!("{v:?}"),
            };
        assert!(refused(theirs).contains("not made by this key"));
        assert!(refused(signed(&key, REPOSITORY, &digest(2))).contains("is of sha256:"));
        assert!(refused(signed(&key, "127.0.0.1:5000/org/other", &d)).contains("repository"));
    }
}
