//! Registry errors. Every message says what to do; none contains a secret.

use strata_core::reference::{Digest, ImageRef};

use crate::credentials::CredentialError;
use crate::manifest::ManifestError;

/// An error talking to a registry.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RegistryError {
    /// The HTTP client could not be set up.
    #[error("cannot set up the HTTP client: {0}")]
    Client(String),
    /// Connection refused/reset, timeouts, or 5xx/429 after every retry.
    #[error(
        "could not reach {host} after {}: {detail}: check that the registry is running and the address is right",
        strata_core::text::count(*attempts as usize, "attempt")
    )]
    Unreachable {
        /// The registry API host.
        host: String,
        /// How many attempts were made.
        attempts: u32,
        /// What went wrong on the last attempt.
        detail: String,
    },
    /// 401: no credentials, or rejected credentials.
    #[error("401 from {host} for {repository}: {hint}")]
    Unauthorized {
        /// The registry API host.
        host: String,
        /// The repository being accessed.
        repository: String,
        /// What to do (log in, or log in again).
        hint: String,
    },
    /// 403: authenticated but not allowed.
    #[error(
        "403 from {host} for {repository}: the account is not allowed to {action} it: check its access rights on the registry"
    )]
    Denied {
        /// The registry API host.
        host: String,
        /// The repository being accessed.
        repository: String,
        /// `pull` or `push`.
        action: String,
    },
    /// The registry answered with an unexpected status.
    #[error("{status} from {host} for {what}: {message}")]
    Status {
        /// The registry API host.
        host: String,
        /// What was being done (`PUT manifest org/img:tag`).
        what: String,
        /// HTTP status code.
        status: u16,
        /// The registry's error codes and messages, or a hint.
        message: String,
    },
    /// A manifest's bytes do not match the digest they should have.
    #[error(
        "the manifest of {reference} does not match its digest: {expected_from} says {expected}, its bytes hash to {actual}: the registry or something between it and strata altered it; nothing was changed, retry or check the network path"
    )]
    DigestMismatch {
        /// The reference that was fetched or written.
        reference: String,
        /// Where the expectation came from (`Docker-Content-Digest header`, `the requested digest`).
        expected_from: String,
        /// The expected digest.
        expected: String,
        /// The digest of the bytes.
        actual: Digest,
    },
    /// The bytes are not a manifest strata can handle.
    #[error("the manifest of {reference} is not usable: {problem}")]
    BadManifest {
        /// The reference.
        reference: String,
        /// The problem.
        problem: ManifestError,
    },
    /// A response header is missing or malformed.
    #[error("{host} sent a bad `{header}` header for {what}: {problem}")]
    BadHeader {
        /// The registry API host.
        host: String,
        /// The header.
        header: String,
        /// What was being done.
        what: String,
        /// The problem.
        problem: String,
    },
    /// A response body that is not what the API promises.
    #[error("{host} sent an unexpected answer for {what}: {problem}")]
    BadResponse {
        /// The host.
        host: String,
        /// What was being done.
        what: String,
        /// The problem.
        problem: String,
    },
    /// The token server refused or failed.
    #[error("cannot get a token from {realm} for {host}: {problem}")]
    Token {
        /// The token server URL.
        realm: String,
        /// The registry API host.
        host: String,
        /// The problem.
        problem: String,
    },
    /// An image listed in an index under one platform is of another (its
    /// config's os, architecture and variant): the index is not put.
    #[error(
        "{manifest} is listed for {listed} but its image config says {actual}: the build of that platform made an image of another; nothing was put under {target}"
    )]
    PlatformMismatch {
        /// The index's tag.
        target: String,
        /// The platform's manifest.
        manifest: String,
        /// The platform it was to be listed under.
        listed: String,
        /// What its config says (`os/architecture[/variant]`).
        actual: String,
    },
    /// A manifest that should exist does not.
    #[error(
        "{reference} not found in the registry: check the name and tag (e.g. `strata plan` shows the refs of a run)"
    )]
    NotFound {
        /// The missing reference.
        reference: Box<ImageRef>,
    },
    /// Copying between registries would need the layers transferred.
    #[error(
        "cannot copy {from} to {to}: they are in different registries, which would need the layers pulled and pushed: push the image to {to_registry} first"
    )]
    CrossRegistry {
        /// The source.
        from: Box<ImageRef>,
        /// The target.
        to: Box<ImageRef>,
        /// The target's registry.
        to_registry: String,
    },
    /// A target reference without a tag (only tags can be moved).
    #[error("{0} has no tag: a copy or promotion target must be `name:tag`")]
    TargetWithoutTag(Box<ImageRef>),
    /// Reading credentials failed.
    #[error(transparent)]
    Credentials(#[from] CredentialError),
    /// A reference that does not parse, given to the client.
    #[error(transparent)]
    Reference(#[from] strata_core::reference::ReferenceError),
    /// A platform that does not parse, given to the client.
    #[error(transparent)]
    Platform(#[from] strata_core::platform::PlatformError),
}

impl RegistryError {
    /// Whether the registry could not be reached at all (connection
    /// failures, timeouts, or server errors after every retry): a problem
    /// of the environment, not of the request.
    pub fn is_unreachable(&self) -> bool {
        matches!(self, RegistryError::Unreachable { .. })
    }

    /// Whether the registry could not be used as configured: unreachable,
    /// credentials missing or refused (401, 403, the token server), or the
    /// credentials store unreadable. The work asked for was not wrong; the
    /// environment it ran in was (exit code 3 in the CLI).
    pub fn is_environment(&self) -> bool {
        matches!(
            self,
            RegistryError::Unreachable { .. }
                | RegistryError::Unauthorized { .. }
                | RegistryError::Denied { .. }
                | RegistryError::Token { .. }
                | RegistryError::Credentials(_)
        )
    }

    /// Whether this is a [`RegistryError::NotFound`].
    pub fn is_not_found(&self) -> bool {
        matches!(self, RegistryError::NotFound { .. })
    }
}
