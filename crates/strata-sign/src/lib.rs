//! Signatures in cosign's format, so that existing verifiers (cosign,
//! containers/image's `sigstoreSigned` policy, skopeo, podman) read what
//! strata signs. No I/O: the registry side is `strata_registry::signatures`,
//! reading key files is the caller's.
//!
//! - [`PrivateKey`] and [`PublicKey`]: ECDSA P-256 keys, read from PEM
//!   (PKCS#8 `PRIVATE KEY`, SEC1 `EC PRIVATE KEY`, cosign's encrypted
//!   `ENCRYPTED SIGSTORE PRIVATE KEY` and its older `ENCRYPTED COSIGN
//!   PRIVATE KEY`, PKIX `PUBLIC KEY`), made by [`generate`], written back
//!   as PEM. A private key and its password never print (`Debug` says
//!   `<redacted>`) and are zeroed when dropped.
//! - [`Payload`]: the simple-signing payload cosign signs, byte for byte.
//! - [`PrivateKey::sign`] and [`PublicKey::verify`]: ECDSA with SHA-256
//!   over the payload's bytes, the signature ASN.1 DER in base64, as
//!   cosign's `dev.cosignproject.cosign/signature` annotation holds it.

mod encrypted;
mod error;
mod key;
mod payload;

pub use error::{KeyError, VerifyError};
pub use key::{Password, PrivateKey, PublicKey, generate};
pub use payload::{Payload, SIGNATURE_TYPE};

/// The environment variable cosign reads a key file's password from.
pub const PASSWORD_ENV: &str = "COSIGN_PASSWORD";
