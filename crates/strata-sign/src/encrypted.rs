//! cosign's encrypted key file: the PEM body is JSON holding a private
//! key's PKCS#8 DER sealed with NaCl's secretbox (XSalsa20-Poly1305), its
//! key derived from the password by scrypt (sigstore/sigstore
//! `pkg/encrypted`, after go-tuf's `encrypted`):
//!
//! `{"kdf":{"name":"scrypt","params":{"N":65536,"r":8,"p":1},"salt":"<b64>"},
//!   "cipher":{"name":"nacl/secretbox","nonce":"<b64>"},"ciphertext":"<b64>"}`

use crate::KeyError;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use rand_core::RngCore;
use serde::{Deserialize, Serialize};
use xsalsa20poly1305::aead::{Aead, KeyInit};
use xsalsa20poly1305::{Key, Nonce, XSalsa20Poly1305};
use zeroize::Zeroizing;

const KDF_NAME: &str = "scrypt";
const CIPHER_NAME: &str = "nacl/secretbox";
/// The scrypt costs read: cosign's current (2^16) and older (2^15) ones.
/// Any other is refused, so a crafted file cannot make opening it take
/// unbounded memory or time.
const ACCEPTED_LOG_N: [u8; 2] = [16, 15];
/// The cost written: cosign's current one.
const WRITTEN_LOG_N: u8 = 16;
const SCRYPT_R: u32 = 8;
const SCRYPT_P: u32 = 1;
const SALT_LEN: usize = 32;
const NONCE_LEN: usize = 24;
const KEY_LEN: usize = 32;

#[derive(Serialize, Deserialize)]
struct Envelope {
    kdf: Kdf,
    cipher: Cipher,
    ciphertext: String,
}

#[derive(Serialize, Deserialize)]
struct Kdf {
    name: String,
    params: Params,
    salt: String,
}

#[derive(Serialize, Deserialize)]
struct Params {
    #[serde(rename = "N")]
    n: u64,
    r: u32,
    p: u32,
}

#[derive(Serialize, Deserialize)]
struct Cipher {
    name: String,
    nonce: String,
}

fn bad(problem: impl Into<String>) -> KeyError {
    KeyError::BadEnvelope(problem.into())
}

fn base64(field: &str, text: &str) -> Result<Vec<u8>, KeyError> {
    STANDARD
        .decode(text)
        .map_err(|_| bad(format!("its {field} is not base64")))
}

/// The secretbox key scrypt derives from `password`.
fn derive(password: &[u8], salt: &[u8], log_n: u8) -> Result<Zeroizing<[u8; KEY_LEN]>, KeyError> {
    let params = scrypt::Params::new(log_n, SCRYPT_R, SCRYPT_P, KEY_LEN)
        .map_err(|e| bad(format!("scrypt parameters: {e}")))?;
    let mut key = Zeroizing::new([0u8; KEY_LEN]);
    scrypt::scrypt(password, salt, &params, key.as_mut())
        .map_err(|e| bad(format!("scrypt: {e}")))?;
    Ok(key)
}

/// The plaintext (a PKCS#8 DER private key) sealed in `envelope`.
///
/// # Errors
/// [`KeyError::BadEnvelope`], [`KeyError::WrongPassword`].
pub(crate) fn open(envelope: &[u8], password: &[u8]) -> Result<Zeroizing<Vec<u8>>, KeyError> {
    let envelope: Envelope =
        serde_json::from_slice(envelope).map_err(|e| bad(format!("not its JSON: {e}")))?;
    if envelope.kdf.name != KDF_NAME || envelope.cipher.name != CIPHER_NAME {
        return Err(bad(format!(
            "key derivation `{}` and cipher `{}`, where cosign writes `{KDF_NAME}` and `{CIPHER_NAME}`",
            envelope.kdf.name, envelope.cipher.name
        )));
    }
    let Params { n, r, p } = envelope.kdf.params;
    let log_n = ACCEPTED_LOG_N
        .into_iter()
        .find(|log_n| 1u64 << log_n == n)
        .filter(|_| r == SCRYPT_R && p == SCRYPT_P)
        .ok_or_else(|| {
            bad(format!(
                "scrypt N={n}, r={r}, p={p}, where cosign writes N=65536 (or 32768), r=8, p=1"
            ))
        })?;
    let salt = base64("salt", &envelope.kdf.salt)?;
    let nonce = base64("nonce", &envelope.cipher.nonce)?;
    let sealed = base64("ciphertext", &envelope.ciphertext)?;
    if nonce.len() != NONCE_LEN {
        return Err(bad(format!(
            "its nonce has {} bytes, not {NONCE_LEN}",
            nonce.len()
        )));
    }
    let key = derive(password, &salt, log_n)?;
    let cipher = XSalsa20Poly1305::new(Key::from_slice(key.as_ref()));
    cipher
        .decrypt(Nonce::from_slice(&nonce), sealed.as_slice())
        .map(Zeroizing::new)
        .map_err(|_| KeyError::WrongPassword)
}

/// `plaintext` sealed with `password` in cosign's envelope (its JSON).
///
/// # Errors
/// [`KeyError::Random`] when the system gives no randomness.
pub(crate) fn seal(plaintext: &[u8], password: &[u8]) -> Result<Vec<u8>, KeyError> {
    let mut salt = [0u8; SALT_LEN];
    let mut nonce = [0u8; NONCE_LEN];
    let mut rng = rand_core::OsRng;
    rng.try_fill_bytes(&mut salt)
        .and_then(|()| rng.try_fill_bytes(&mut nonce))
        .map_err(|e| KeyError::Random(e.to_string()))?;
    let key = derive(password, &salt, WRITTEN_LOG_N)?;
    let cipher = XSalsa20Poly1305::new(Key::from_slice(key.as_ref()));
    let sealed = cipher
        .encrypt(Nonce::from_slice(&nonce), plaintext)
        .map_err(|_| bad("the cipher refused the key"))?;
    let envelope = Envelope {
        kdf: Kdf {
            name: KDF_NAME.into(),
            params: Params {
                n: 1 << WRITTEN_LOG_N,
                r: SCRYPT_R,
                p: SCRYPT_P,
            },
            salt: STANDARD.encode(salt),
        },
        cipher: Cipher {
            name: CIPHER_NAME.into(),
            nonce: STANDARD.encode(nonce),
        },
        ciphertext: STANDARD.encode(sealed),
    };
    serde_json::to_vec(&envelope).map_err(|e| bad(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_what_it_seals_and_only_with_its_password() {
        let sealed = seal(b"secret bytes", b"pw").unwrap();
        assert_eq!(open(&sealed, b"pw").unwrap().as_slice(), b"secret bytes");
        assert!(matches!(
            open(&sealed, b"other"),
            Err(KeyError::WrongPassword)
        ));
    }

    #[test]
    fn refuses_costs_cosign_does_not_write() {
        let sealed = seal(b"x", b"").unwrap();
        let mut json: serde_json::Value = serde_json::from_slice(&sealed).unwrap();
        json["kdf"]["params"]["N"] = serde_json::json!(1u64 << 30);
        let text = serde_json::to_vec(&json).unwrap();
        assert!(matches!(open(&text, b""), Err(KeyError::BadEnvelope(_))));
    }
}
