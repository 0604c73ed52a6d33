//! Why a key cannot be used, or a signature does not hold. No message
//! holds key material or a password.

/// A key file that cannot be read as a key.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// Not PEM at all.
    #[error("not a PEM file ({0}): expected -----BEGIN PRIVATE KEY----- or another key block")]
    NotPem(String),
    /// A PEM block of a kind that is not a key strata reads.
    #[error(
        "a PEM block of type `{0}`: strata reads PRIVATE KEY (PKCS#8), EC PRIVATE KEY (SEC1), ENCRYPTED SIGSTORE PRIVATE KEY (cosign's) and PUBLIC KEY"
    )]
    UnknownBlock(String),
    /// A private key (or another block) where a public key is expected.
    #[error(
        "a `{0}` block where a PUBLIC KEY is expected: give the public key (as cosign.pub), not the private one"
    )]
    NotPublic(String),
    /// A key of another algorithm or curve, or bytes that do not decode.
    #[error("not an ECDSA P-256 key ({0}): cosign's and strata's signatures use P-256")]
    NotP256(String),
    /// An encrypted key and no password.
    #[error(
        "the key file is encrypted (cosign's format): set COSIGN_PASSWORD to its password (an empty value for an empty password)"
    )]
    PasswordNeeded,
    /// The password does not open the key (or the file was altered).
    #[error(
        "the password in COSIGN_PASSWORD does not open the key file (or the file was altered): check the password"
    )]
    WrongPassword,
    /// The encrypted file's envelope is not cosign's.
    #[error("not cosign's encrypted key format: {0}")]
    BadEnvelope(String),
    /// The system's random source failed.
    #[error("no randomness from the system for a new key: {0}")]
    Random(String),
}

/// Why a signature does not vouch for an image.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum VerifyError {
    /// The signature is not base64 of an ASN.1 DER ECDSA signature.
    #[error("the signature is not an ECDSA signature in base64")]
    Malformed,
    /// The key did not make this signature of the payload.
    #[error("the signature was not made by this key")]
    OtherKey,
    /// The payload is not a simple-signing document.
    #[error("the signed payload is not cosign's simple-signing document: {0}")]
    BadPayload(String),
    /// The payload signs another image.
    #[error("the signature is of {signed}, not {expected}")]
    OtherDigest {
        /// The digest the payload names.
        signed: String,
        /// The digest verified.
        expected: String,
    },
    /// The payload names another repository.
    #[error("the signature is for the repository {signed}, not {expected}")]
    OtherRepository {
        /// The repository the payload names.
        signed: String,
        /// The image's repository.
        expected: String,
    },
}
