//! The fake provider's RSA keys and a JWT builder that can also produce every malformed
//! token the security cases need (unsigned, wrong algorithm, foreign key, tampered).

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::{KeyPair, KeySize, PublicKeyComponents};
use aws_lc_rs::signature::KeyPair as _;
use aws_lc_rs::signature::{
    RSA_PKCS1_SHA256, RSA_PKCS1_SHA384, RSA_PKCS1_SHA512, RSA_PSS_SHA256, RSA_PSS_SHA384,
    RSA_PSS_SHA512, RsaEncoding,
};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Map, Value, json};
use std::sync::OnceLock;

/// Generated once per test process: RSA key generation is the slow part of starting a fake.
pub(crate) struct Keys {
    /// The provider's own key, published in its JWKS.
    pub idp: KeyPair,
    /// An attacker's key, never published (B05).
    pub foreign: KeyPair,
}

pub(crate) fn keys() -> &'static Keys {
    static KEYS: OnceLock<Keys> = OnceLock::new();
    KEYS.get_or_init(|| Keys {
        idp: KeyPair::generate(KeySize::Rsa2048).expect("RSA key generation"),
        foreign: KeyPair::generate(KeySize::Rsa2048).expect("RSA key generation"),
    })
}

/// The public half of a key as a JWK (`kty`, `n`, `e`, plus `kid`/`use`/`alg`).
pub(crate) fn public_jwk(key: &KeyPair, kid: &str) -> Value {
    let components = PublicKeyComponents::<Vec<u8>>::from(key.public_key());
    json!({
        "kty": "RSA",
        "use": "sig",
        "alg": "RS256",
        "kid": kid,
        "n": URL_SAFE_NO_PAD.encode(&components.n),
        "e": URL_SAFE_NO_PAD.encode(&components.e),
    })
}

fn b64_json(v: &Map<String, Value>) -> String {
    URL_SAFE_NO_PAD.encode(Value::Object(v.clone()).to_string())
}

fn rsa_encoding(alg: &str) -> Option<&'static dyn RsaEncoding> {
    Some(match alg {
        "RS256" => &RSA_PKCS1_SHA256,
        "RS384" => &RSA_PKCS1_SHA384,
        "RS512" => &RSA_PKCS1_SHA512,
        "PS256" => &RSA_PSS_SHA256,
        "PS384" => &RSA_PSS_SHA384,
        "PS512" => &RSA_PSS_SHA512,
        _ => return None,
    })
}

/// Signs `header.claims` as the header's `alg` says: RSA algorithms with `key`, `HS256` with
/// the key's public modulus as HMAC secret (the classic confusion attack), `none` (and any
/// other name) with an empty signature.
/// Signs the JSON texts of a header and a payload as they are (so that a test can send a
/// token whose JSON no serializer would write).
pub(crate) fn sign(header: &str, claims: &str, key: &KeyPair) -> String {
    let signing_input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header),
        URL_SAFE_NO_PAD.encode(claims)
    );
    let alg = serde_json::from_str::<Value>(header)
        .ok()
        .and_then(|h| h.get("alg").and_then(Value::as_str).map(str::to_owned))
        .unwrap_or_else(|| "none".to_owned());
    let alg = alg.as_str();
    let signature = if let Some(encoding) = rsa_encoding(alg) {
        let mut sig = vec![0u8; key.public_modulus_len()];
        key.sign(
            encoding,
            &SystemRandom::new(),
            signing_input.as_bytes(),
            &mut sig,
        )
        .expect("RSA signing");
        URL_SAFE_NO_PAD.encode(sig)
    } else if alg == "HS256" {
        let n = PublicKeyComponents::<Vec<u8>>::from(key.public_key()).n;
        let mac_key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, &n);
        URL_SAFE_NO_PAD.encode(aws_lc_rs::hmac::sign(&mac_key, signing_input.as_bytes()))
    } else {
        String::new()
    };
    format!("{signing_input}.{signature}")
}

/// Changes one character of the signature (B07).
pub(crate) fn tamper_signature(jwt: &str) -> String {
    let Some((input, sig)) = jwt.rsplit_once('.') else {
        return jwt.to_owned();
    };
    let mut chars: Vec<char> = sig.chars().collect();
    if let Some(c) = chars.get_mut(4) {
        *c = if *c == 'A' { 'B' } else { 'A' };
    }
    format!("{input}.{}", chars.into_iter().collect::<String>())
}

/// Swaps the payload for `claims` and keeps the original signature (B07).
pub(crate) fn replace_payload(jwt: &str, claims: &Map<String, Value>) -> String {
    let mut parts = jwt.splitn(3, '.');
    let header = parts.next().unwrap_or_default();
    let _ = parts.next();
    let sig = parts.next().unwrap_or_default();
    format!("{header}.{}.{sig}", b64_json(claims))
}
