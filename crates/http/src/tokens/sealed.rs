//! Sealed cookie values: authenticated encryption under a key derived from the shared
//! session key, so every instance can open what another sealed and nobody else can read or
//! alter it. AES-256-GCM-SIV with a random 96-bit nonce: a repeated nonce (one in 2^48 after
//! billions of values) would only show that two values were equal, unlike plain GCM, where it
//! would leak the authentication key.
//!
//! Each use has its own derived key and its own associated data, so a value sealed for one
//! purpose never opens as another.

use crate::tokens::opaque::RandomError;
use aws_lc_rs::aead::{AES_256_GCM_SIV, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use aws_lc_rs::hkdf::{HKDF_SHA256, Salt};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;

pub struct Sealer {
    key: LessSafeKey,
    purpose: &'static str,
}

#[derive(Debug, thiserror::Error)]
#[error("the sealing key could not be derived")]
pub struct KeyDerivationError;

impl Sealer {
    /// `purpose` names the use ("braid login flow v1"): it selects the derived key and is
    /// authenticated with every value.
    pub fn new(secret: &[u8], purpose: &'static str) -> Result<Self, KeyDerivationError> {
        let info = [purpose.as_bytes()];
        let prk = Salt::new(HKDF_SHA256, b"braid sealed cookie").extract(secret);
        let okm = prk
            .expand(&info, &AES_256_GCM_SIV)
            .map_err(|_| KeyDerivationError)?;
        Ok(Self {
            key: LessSafeKey::new(UnboundKey::from(okm)),
            purpose,
        })
    }

    /// base64url(nonce ‖ ciphertext ‖ tag).
    pub fn seal(&self, plaintext: &[u8]) -> Result<String, RandomError> {
        let mut nonce = [0u8; NONCE_LEN];
        getrandom::fill(&mut nonce).map_err(|_| RandomError)?;
        let mut out = Vec::with_capacity(NONCE_LEN + plaintext.len() + AES_256_GCM_SIV.tag_len());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(plaintext);
        let tag = self
            .key
            .seal_in_place_separate_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(self.purpose.as_bytes()),
                &mut out[NONCE_LEN..],
            )
            .map_err(|_| RandomError)?;
        out.extend_from_slice(tag.as_ref());
        Ok(B64.encode(out))
    }

    /// The plaintext, or `None` for anything this sealer did not seal (tampered, truncated,
    /// another purpose, another deployment's key, not base64url).
    pub fn open(&self, sealed: &str) -> Option<Vec<u8>> {
        let mut bytes = B64.decode(sealed).ok()?;
        if bytes.len() < NONCE_LEN + AES_256_GCM_SIV.tag_len() {
            return None;
        }
        let nonce = Nonce::try_assume_unique_for_key(&bytes[..NONCE_LEN]).ok()?;
        let len = self
            .key
            .open_within(
                nonce,
                Aad::from(self.purpose.as_bytes()),
                &mut bytes,
                NONCE_LEN..,
            )
            .ok()?
            .len();
        bytes.truncate(len);
        Some(bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sealer(secret: &[u8], purpose: &'static str) -> Sealer {
        Sealer::new(secret, purpose).unwrap()
    }

    #[test]
    fn opens_what_it_sealed_and_each_value_is_fresh() {
        let s = sealer(&[7; 64], "test v1");
        let a = s.seal(b"hello").unwrap();
        let b = s.seal(b"hello").unwrap();
        assert_ne!(a, b, "a random nonce per value");
        assert_eq!(s.open(&a).unwrap(), b"hello");
        assert_eq!(s.open(&b).unwrap(), b"hello");
        assert_eq!(s.open(&s.seal(b"").unwrap()).unwrap(), b"");
        assert!(!a.contains("hello"));
    }

    #[test]
    fn refuses_tampered_truncated_foreign_and_garbage_values() {
        let s = sealer(&[7; 64], "test v1");
        let sealed = s.seal(b"user=alice").unwrap();
        let raw = B64.decode(&sealed).unwrap();
        for i in 0..raw.len() {
            let mut flipped = raw.clone();
            flipped[i] ^= 0x01;
            assert!(s.open(&B64.encode(&flipped)).is_none(), "byte {i} flipped");
        }
        assert!(s.open(&B64.encode(&raw[..raw.len() - 1])).is_none());
        assert!(s.open(&B64.encode(&raw[..NONCE_LEN + 15])).is_none());
        assert!(s.open("").is_none());
        assert!(s.open("not base64 !").is_none());
        assert!(
            sealer(&[8; 64], "test v1").open(&sealed).is_none(),
            "other key"
        );
        assert!(
            sealer(&[7; 64], "other v1").open(&sealed).is_none(),
            "other purpose"
        );
    }
}
