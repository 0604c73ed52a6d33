//! ECDSA P-256 keys, read from and written as PEM. A private key's bytes
//! and a password are held so that they never print and are zeroed when
//! dropped; the one way out is a PEM file the caller writes.

use crate::{KeyError, VerifyError, encrypted};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use p256::ecdsa::signature::{Signer, Verifier};
use p256::ecdsa::{Signature, SigningKey, VerifyingKey};
use p256::pkcs8::{
    DecodePrivateKey, DecodePublicKey, EncodePrivateKey, EncodePublicKey, LineEnding,
};
use std::fmt;
use zeroize::Zeroizing;

const PKCS8: &str = "PRIVATE KEY";
const SEC1: &str = "EC PRIVATE KEY";
const PUBLIC: &str = "PUBLIC KEY";
/// cosign's encrypted key block, current and older.
const ENCRYPTED: &str = "ENCRYPTED SIGSTORE PRIVATE KEY";
const ENCRYPTED_OLD: &str = "ENCRYPTED COSIGN PRIVATE KEY";
/// What OpenSSL's `ecparam -genkey` writes before the key: skipped.
const EC_PARAMETERS: &str = "EC PARAMETERS";

/// A key file's password (`COSIGN_PASSWORD`).
#[derive(Clone)]
pub struct Password(Zeroizing<String>);

impl Password {
    /// Wraps a password.
    pub fn new(value: String) -> Password {
        Password(Zeroizing::new(value))
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(<redacted>)")
    }
}

/// An ECDSA P-256 private key.
#[derive(Clone)]
pub struct PrivateKey(p256::SecretKey);

impl fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PrivateKey(<redacted>)")
    }
}

/// An ECDSA P-256 public key.
#[derive(Clone, PartialEq, Eq)]
pub struct PublicKey(p256::PublicKey);

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({})", self.to_pem().trim_end())
    }
}

/// A new private key, from the system's random source.
pub fn generate() -> PrivateKey {
    PrivateKey(p256::SecretKey::random(&mut rand_core::OsRng))
}

/// A PEM block: its type and its bytes.
type Block = (String, Zeroizing<Vec<u8>>);

/// The PEM blocks of `text`.
fn blocks(text: &[u8]) -> Result<Vec<Block>, KeyError> {
    let text = std::str::from_utf8(text).map_err(|_| KeyError::NotPem("not text".into()))?;
    let mut found = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("-----BEGIN ") {
        let block = &rest[start..];
        // The label is read off the BEGIN line alone, and only a plain one
        // is kept: the key's body must never reach an error message.
        let begin_line = block.lines().next().unwrap_or_default().trim_end();
        let label = begin_line[11..]
            .strip_suffix("-----")
            .filter(|l| l.chars().all(|c| c.is_ascii_uppercase() || c == ' '))
            .ok_or_else(|| {
                KeyError::NotPem("a BEGIN line that is not `-----BEGIN <TYPE>-----`".into())
            })?;
        let end_line = format!("-----END {label}-----");
        let end = block
            .find(&end_line)
            .ok_or_else(|| KeyError::NotPem(format!("no `{end_line}` line")))?
            + end_line.len();
        let (_, der) = pem_rfc7468::decode_vec(&block.as_bytes()[..end])
            .map_err(|e| KeyError::NotPem(e.to_string()))?;
        found.push((label.to_string(), Zeroizing::new(der)));
        rest = &block[end..];
    }
    if found.is_empty() {
        return Err(KeyError::NotPem("no -----BEGIN line".into()));
    }
    Ok(found)
}

fn not_p256(e: impl fmt::Display) -> KeyError {
    KeyError::NotP256(e.to_string())
}

impl PrivateKey {
    /// Reads a private key file: PKCS#8 or SEC1 PEM, or cosign's encrypted
    /// key file, which `password` opens.
    ///
    /// # Errors
    /// [`KeyError`]: not a key, not P-256, no or the wrong password.
    pub fn from_pem(text: &[u8], password: Option<&Password>) -> Result<PrivateKey, KeyError> {
        let blocks = blocks(text)?;
        let (label, der) = blocks
            .iter()
            .find(|(label, _)| label != EC_PARAMETERS)
            .ok_or_else(|| KeyError::UnknownBlock(EC_PARAMETERS.into()))?;
        let secret = match label.as_str() {
            PKCS8 => p256::SecretKey::from_pkcs8_der(der).map_err(not_p256)?,
            SEC1 => p256::SecretKey::from_sec1_der(der).map_err(not_p256)?,
            ENCRYPTED | ENCRYPTED_OLD => {
                let password = password.ok_or(KeyError::PasswordNeeded)?;
                let der = encrypted::open(der, password.0.as_bytes())?;
                p256::SecretKey::from_pkcs8_der(&der).map_err(not_p256)?
            }
            other => return Err(KeyError::UnknownBlock(other.to_string())),
        };
        Ok(PrivateKey(secret))
    }

    /// Its public key.
    pub fn public_key(&self) -> PublicKey {
        PublicKey(self.0.public_key())
    }

    /// The signature of `payload`: ECDSA with SHA-256, ASN.1 DER, base64.
    pub fn sign(&self, payload: &[u8]) -> String {
        let signature: Signature = SigningKey::from(&self.0).sign(payload);
        STANDARD.encode(signature.to_der().as_bytes())
    }

    /// The key as a PKCS#8 PEM file (`PRIVATE KEY`), unencrypted.
    ///
    /// # Errors
    /// [`KeyError::NotP256`] were the encoder to fail.
    pub fn to_pem(&self) -> Result<Zeroizing<String>, KeyError> {
        self.0.to_pkcs8_pem(LineEnding::LF).map_err(not_p256)
    }

    /// The key as cosign's encrypted key file, sealed with `password`.
    ///
    /// # Errors
    /// [`KeyError::Random`] when the system gives no randomness.
    pub fn to_encrypted_pem(&self, password: &Password) -> Result<String, KeyError> {
        let der = self.0.to_pkcs8_der().map_err(not_p256)?;
        let envelope = encrypted::seal(der.as_bytes(), password.0.as_bytes())?;
        pem_rfc7468::encode_string(ENCRYPTED, pem_rfc7468::LineEnding::LF, &envelope)
            .map_err(|e| KeyError::BadEnvelope(e.to_string()))
    }
}

impl PublicKey {
    /// Reads a public key file (`PUBLIC KEY`, as `cosign.pub`).
    ///
    /// # Errors
    /// [`KeyError`]: not a public key, not P-256.
    pub fn from_pem(text: &[u8]) -> Result<PublicKey, KeyError> {
        let blocks = blocks(text)?;
        let (label, der) = &blocks[0];
        if label != PUBLIC {
            return Err(KeyError::NotPublic(label.clone()));
        }
        p256::PublicKey::from_public_key_der(der)
            .map(PublicKey)
            .map_err(not_p256)
    }

    /// The key as a PEM file (`PUBLIC KEY`).
    pub fn to_pem(&self) -> String {
        // Encoding a valid point cannot fail.
        self.0.to_public_key_pem(LineEnding::LF).unwrap_or_default()
    }

    /// Checks that `signature` (base64 of ASN.1 DER) is this key's of
    /// `payload`.
    ///
    /// # Errors
    /// [`VerifyError::Malformed`], [`VerifyError::OtherKey`].
    pub fn verify(&self, payload: &[u8], signature: &str) -> Result<(), VerifyError> {
        let der = STANDARD
            .decode(signature.trim())
            .map_err(|_| VerifyError::Malformed)?;
        let signature = Signature::from_der(&der).map_err(|_| VerifyError::Malformed)?;
        VerifyingKey::from(&self.0)
            .verify(payload, &signature)
            .map_err(|_| VerifyError::OtherKey)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> Vec<u8> {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures")
            .join(name);
        std::fs::read(path).unwrap()
    }

    #[test]
    fn signs_and_verifies() {
        let key = generate();
        let public = key.public_key();
        let signature = key.sign(b"payload");
        assert_eq!(public.verify(b"payload", &signature), Ok(()));
        assert_eq!(
            public.verify(b"another payload", &signature),
            Err(VerifyError::OtherKey)
        );
        assert_eq!(
            generate().public_key().verify(b"payload", &signature),
            Err(VerifyError::OtherKey)
        );
        assert_eq!(
            public.verify(b"payload", "bm90IGRlcg=="),
            Err(VerifyError::Malformed)
        );
    }

    #[test]
    fn pem_round_trips() {
        let key = generate();
        let again = PrivateKey::from_pem(key.to_pem().unwrap().as_bytes(), None).unwrap();
        assert_eq!(again.public_key(), key.public_key());
        let public = PublicKey::from_pem(key.public_key().to_pem().as_bytes()).unwrap();
        assert_eq!(public, key.public_key());
        let password = Password::new("pw".into());
        let sealed = key.to_encrypted_pem(&password).unwrap();
        assert!(sealed.starts_with("-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\n"));
        let opened = PrivateKey::from_pem(sealed.as_bytes(), Some(&password)).unwrap();
        assert_eq!(opened.public_key(), key.public_key());
        assert!(matches!(
            PrivateKey::from_pem(sealed.as_bytes(), None),
            Err(KeyError::PasswordNeeded)
        ));
    }

    #[test]
    fn reads_sec1_with_openssl_parameters() {
        let key = generate();
        let sec1 = key.0.to_sec1_der().unwrap();
        let pem = pem_rfc7468::encode_string(SEC1, pem_rfc7468::LineEnding::LF, &sec1).unwrap();
        let text = format!(
            "-----BEGIN EC PARAMETERS-----\nBggqhkjOPQMBBw==\n-----END EC PARAMETERS-----\n{pem}"
        );
        let read = PrivateKey::from_pem(text.as_bytes(), None).unwrap();
        assert_eq!(read.public_key(), key.public_key());
    }

    #[test]
    fn opens_cosigns_own_key_files() {
        // Written by cosign (see tests/fixtures/README.md).
        let empty = Password::new(String::new());
        let key = PrivateKey::from_pem(
            &fixture("cosign-encrypted-empty-password.key"),
            Some(&empty),
        )
        .unwrap();
        let signature = key.sign(b"x");
        assert_eq!(key.public_key().verify(b"x", &signature), Ok(()));
        let older = fixture("cosign-encrypted-password-123.key");
        let right = Password::new("123".into());
        assert!(PrivateKey::from_pem(&older, Some(&right)).is_ok());
        assert!(matches!(
            PrivateKey::from_pem(&older, Some(&empty)),
            Err(KeyError::WrongPassword)
        ));
    }

    #[test]
    fn never_prints_secrets() {
        let key = generate();
        let password = Password::new("hunter2".into());
        assert_eq!(format!("{key:?}"), "PrivateKey(<redacted>)");
        assert_eq!(format!("{password:?}"), "Password(<redacted>)");
        // A damaged key file's error never repeats the key's body.
        let pem = key.to_pem().unwrap().to_string();
        let body = pem.lines().nth(1).unwrap().to_string();
        let damaged = [
            pem.replacen("KEY-----", "KEY----", 1),
            pem.replace("-----END PRIVATE KEY-----", ""),
            pem.replacen("PRIVATE KEY-----", "PRIVATE KEY-----x", 1),
        ];
        for text in damaged {
            let e = PrivateKey::from_pem(text.as_bytes(), None).unwrap_err();
            assert!(!e.to_string().contains(&body), "{e}");
        }
    }

    #[test]
    fn refuses_what_is_not_a_p256_key() {
        assert!(matches!(
            PrivateKey::from_pem(b"hello", None),
            Err(KeyError::NotPem(_))
        ));
        let cert = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
        assert!(matches!(
            PrivateKey::from_pem(cert.as_bytes(), None),
            Err(KeyError::UnknownBlock(_))
        ));
    }
}
