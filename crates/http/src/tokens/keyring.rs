//! Signing and verification keys, loaded from the database and refreshed every minute, so a
//! `braid keys rotate` on one instance reaches every instance without a restart.

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::KeyPair as RsaKeyPair;
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair, RSA_PKCS1_SHA256,
};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use braid_core::Timestamp;
use braid_storage::repo::keys::{self, SigningKeyRecord};
use braid_storage::{Database, StorageError};
use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm, DecodingKey};
use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

const REFRESH_EVERY: Duration = Duration::from_secs(60);

/// The active private key, parsed once per load: signing a token is then one signature, with
/// no key decoding per request.
pub struct ActiveKey {
    pub kid: String,
    pub alg: Algorithm,
    signer: Signer,
    /// base64url of the JOSE header (`alg`, `typ: at+jwt`, `kid`), the same for every token.
    header_b64: String,
}

enum Signer {
    Es256(EcdsaKeyPair),
    EdDsa(Ed25519KeyPair),
    Rs256(RsaKeyPair),
}

impl ActiveKey {
    /// A compact JWS of `payload` under this key.
    pub fn sign_jws(&self, payload: &[u8]) -> Result<String, SignError> {
        let mut jws = String::with_capacity(self.header_b64.len() + payload.len() * 4 / 3 + 400);
        jws.push_str(&self.header_b64);
        jws.push('.');
        B64.encode_string(payload, &mut jws);
        let signature = match &self.signer {
            Signer::Es256(k) => k
                .sign(&SystemRandom::new(), jws.as_bytes())
                .map_err(|_| SignError)?
                .as_ref()
                .to_vec(),
            Signer::EdDsa(k) => k.sign(jws.as_bytes()).as_ref().to_vec(),
            Signer::Rs256(k) => {
                let mut sig = vec![0u8; k.public_modulus_len()];
                k.sign(
                    &RSA_PKCS1_SHA256,
                    &SystemRandom::new(),
                    jws.as_bytes(),
                    &mut sig,
                )
                .map_err(|_| SignError)?;
                sig
            }
        };
        jws.push('.');
        B64.encode_string(signature, &mut jws);
        Ok(jws)
    }
}

#[derive(Debug, thiserror::Error)]
#[error("signing failed")]
pub struct SignError;

/// One consistent view of the keys.
pub struct Keys {
    pub active: ActiveKey,
    verifiers: HashMap<String, (Algorithm, DecodingKey)>,
    /// `{"keys":[...]}`, rendered once per load.
    pub jwks_json: String,
}

impl Keys {
    pub fn verifier(&self, kid: &str) -> Option<&(Algorithm, DecodingKey)> {
        self.verifiers.get(kid)
    }
}

pub struct KeyRing {
    db: Database,
    /// Retired keys stay published this long after retirement (the longest access token life).
    publish_retired_for: Duration,
    loaded: RwLock<(Instant, Arc<Keys>)>,
}

impl KeyRing {
    pub async fn load(db: Database, publish_retired_for: Duration) -> Result<Self, StorageError> {
        let keys = fetch(&db, publish_retired_for).await?;
        Ok(Self {
            db,
            publish_retired_for,
            loaded: RwLock::new((Instant::now(), Arc::new(keys))),
        })
    }

    /// The current keys; reloaded from the database when older than a minute.
    pub async fn keys(&self) -> Result<Arc<Keys>, StorageError> {
        let (at, keys) = match self.loaded.read() {
            Ok(guard) => (guard.0, guard.1.clone()),
            Err(poisoned) => {
                let guard = poisoned.into_inner();
                (guard.0, guard.1.clone())
            }
        };
        if at.elapsed() < REFRESH_EVERY {
            return Ok(keys);
        }
        match fetch(&self.db, self.publish_retired_for).await {
            Ok(fresh) => {
                let fresh = Arc::new(fresh);
                if let Ok(mut guard) = self.loaded.write() {
                    *guard = (Instant::now(), fresh.clone());
                }
                Ok(fresh)
            }
            Err(e) => {
                // Keep serving with the keys we have; the database will be back.
                tracing::warn!(error = %e, "key reload failed; using the cached keys");
                Ok(keys)
            }
        }
    }
}

fn algorithm(name: &str) -> Option<Algorithm> {
    match name {
        "ES256" => Some(Algorithm::ES256),
        "EdDSA" => Some(Algorithm::EdDSA),
        "RS256" => Some(Algorithm::RS256),
        _ => None,
    }
}

fn active_key(record: &SigningKeyRecord, alg: Algorithm) -> Result<ActiveKey, StorageError> {
    let der = record.private_key.as_slice();
    let unusable =
        |what: &str| StorageError::Corrupt(format!("signing key {}: {what}", record.kid));
    let signer = match alg {
        Algorithm::ES256 => Signer::Es256(
            EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, der)
                .map_err(|_| unusable("not a P-256 PKCS#8 key"))?,
        ),
        Algorithm::EdDSA => Signer::EdDsa(
            Ed25519KeyPair::from_pkcs8(der).map_err(|_| unusable("not an Ed25519 PKCS#8 key"))?,
        ),
        Algorithm::RS256 => Signer::Rs256(
            RsaKeyPair::from_pkcs8(der).map_err(|_| unusable("not an RSA PKCS#8 key"))?,
        ),
        _ => return Err(unusable("unsupported algorithm")),
    };
    let header = serde_json::json!({ "alg": record.alg, "typ": crate::tokens::access::TYP, "kid": record.kid });
    Ok(ActiveKey {
        kid: record.kid.clone(),
        alg,
        signer,
        header_b64: B64.encode(header.to_string()),
    })
}

async fn fetch(db: &Database, publish_retired_for: Duration) -> Result<Keys, StorageError> {
    let cutoff = Timestamp::now().minus(publish_retired_for);
    let (active, published) = db
        .run(move |c| {
            let active = keys::active(c)?.ok_or(StorageError::NotFound)?;
            Ok((active, keys::published(c, cutoff)?))
        })
        .await?;
    let alg = algorithm(&active.alg).ok_or_else(|| {
        StorageError::Corrupt(format!(
            "signing key {}: unknown alg {}",
            active.kid, active.alg
        ))
    })?;

    let mut verifiers = HashMap::new();
    let mut jwks = Vec::new();
    for record in &published {
        let Some(alg) = algorithm(&record.alg) else {
            continue;
        };
        let jwk: Jwk = serde_json::from_str(&record.public_jwk)?;
        let decoding = DecodingKey::from_jwk(&jwk)
            .map_err(|e| StorageError::Corrupt(format!("public key {}: {e}", record.kid)))?;
        verifiers.insert(record.kid.clone(), (alg, decoding));
        jwks.push(serde_json::from_str::<serde_json::Value>(
            &record.public_jwk,
        )?);
    }
    let jwks_json = serde_json::json!({ "keys": jwks }).to_string();
    Ok(Keys {
        active: active_key(&active, alg)?,
        verifiers,
        jwks_json,
    })
}
