//! Signing keys: generated on first start, stored in the database (so every instance signs
//! with the same key), published as JWKs with RFC 7638 thumbprints as `kid`.

use crate::settings::SigningAlg;
use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair, KeyPair as _,
};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use braid_storage::StorageError;
use braid_storage::repo::keys::NewSigningKey;
use serde_json::{Value, json};

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("key generation failed")]
    Generate,
    #[error("stored key {kid} is unusable: {why}")]
    Unusable { kid: String, why: &'static str },
}

impl From<KeyError> for StorageError {
    fn from(e: KeyError) -> Self {
        StorageError::Corrupt(e.to_string())
    }
}

/// A new key pair for `alg`, ready to store.
pub fn generate(alg: SigningAlg) -> Result<NewSigningKey, KeyError> {
    let rng = SystemRandom::new();
    let (pkcs8, jwk) = match alg {
        SigningAlg::ES256 => {
            let doc = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
                .map_err(|_| KeyError::Generate)?;
            let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, doc.as_ref())
                .map_err(|_| KeyError::Generate)?;
            // Uncompressed SEC1 point: 0x04 || X (32) || Y (32).
            let point = pair.public_key().as_ref();
            if point.len() != 65 || point[0] != 4 {
                return Err(KeyError::Generate);
            }
            let jwk = json!({"kty": "EC", "crv": "P-256", "x": B64.encode(&point[1..33]), "y": B64.encode(&point[33..])});
            (doc.as_ref().to_vec(), jwk)
        }
        SigningAlg::EdDSA => {
            let doc = Ed25519KeyPair::generate_pkcs8(&rng).map_err(|_| KeyError::Generate)?;
            let pair = Ed25519KeyPair::from_pkcs8(doc.as_ref()).map_err(|_| KeyError::Generate)?;
            let jwk = json!({"kty": "OKP", "crv": "Ed25519", "x": B64.encode(pair.public_key().as_ref())});
            (doc.as_ref().to_vec(), jwk)
        }
        SigningAlg::RS256 => {
            let pair = aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048)
                .map_err(|_| KeyError::Generate)?;
            let der: aws_lc_rs::encoding::Pkcs8V1Der<'static> =
                pair.as_der().map_err(|_| KeyError::Generate)?;
            let parts = aws_lc_rs::rsa::PublicKeyComponents::<Vec<u8>>::from(pair.public_key());
            let jwk = json!({"kty": "RSA", "n": B64.encode(&parts.n), "e": B64.encode(&parts.e)});
            (der.as_ref().to_vec(), jwk)
        }
    };
    let kid = thumbprint(&jwk).ok_or(KeyError::Generate)?;
    let mut public = jwk;
    if let Value::Object(m) = &mut public {
        m.insert("kid".into(), kid.clone().into());
        m.insert("alg".into(), alg.as_str().into());
        m.insert("use".into(), "sig".into());
    }
    Ok(NewSigningKey {
        kid,
        alg: alg.as_str().into(),
        private_key: pkcs8,
        public_jwk: public.to_string(),
    })
}

/// RFC 7638: SHA-256 over the required members in lexicographic order, no whitespace.
fn thumbprint(jwk: &Value) -> Option<String> {
    let members: &[&str] = match jwk.get("kty")?.as_str()? {
        "EC" => &["crv", "kty", "x", "y"],
        "OKP" => &["crv", "kty", "x"],
        "RSA" => &["e", "kty", "n"],
        _ => return None,
    };
    let mut canonical = String::from("{");
    for (i, m) in members.iter().enumerate() {
        if i > 0 {
            canonical.push(',');
        }
        canonical.push_str(&format!("\"{m}\":{}", jwk.get(*m)?));
    }
    canonical.push('}');
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, canonical.as_bytes());
    Some(B64.encode(digest.as_ref()))
}

/// 64 bytes from the OS CSPRNG: the cookie key length actix requires.
pub fn generate_session_key() -> Result<Vec<u8>, KeyError> {
    let mut key = vec![0u8; 64];
    getrandom::fill(&mut key).map_err(|_| KeyError::Generate)?;
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_algorithm_generates_a_public_only_jwk_with_thumbprint_kid() {
        for alg in [SigningAlg::ES256, SigningAlg::EdDSA, SigningAlg::RS256] {
            let k = generate(alg).unwrap();
            let jwk: Value = serde_json::from_str(&k.public_jwk).unwrap();
            assert_eq!(jwk["kid"], k.kid.as_str());
            assert_eq!(jwk["alg"], alg.as_str());
            for private in ["d", "p", "q", "dp", "dq", "qi", "k"] {
                assert!(jwk.get(private).is_none(), "{alg:?} leaks {private}");
            }
            assert_eq!(k.kid.len(), 43, "base64url SHA-256");
        }
    }

    #[test]
    fn rfc7638_example_thumbprint() {
        // RFC 7638 §3.1.
        let jwk = json!({
            "kty": "RSA",
            "n": "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw",
            "e": "AQAB",
        });
        assert_eq!(
            thumbprint(&jwk).unwrap(),
            "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
        );
    }

    #[test]
    fn session_keys_are_long_and_random() {
        let a = generate_session_key().unwrap();
        let b = generate_session_key().unwrap();
        assert_eq!(a.len(), 64);
        assert_ne!(a, b);
    }
}
