//! Signing and verification keys, read from the database and read again every
//! `keys.reload_interval`, so a `braid keys rotate` on any host reaches every instance without
//! a restart. Which key signs is decided per token from the stored schedules and the clock
//! (`braid_core::signing_key`), so instances switch keys at the same moment, however long ago
//! each of them last read the keys.

use crate::settings::TokenSettings;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::KeyPair as RsaKeyPair;
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair, RSA_PKCS1_SHA256,
};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use braid_core::Timestamp;
use braid_core::signing_key::{self, KeySchedule};
use braid_storage::repo::keys::{self, RotationTimes, SigningKeyRecord};
use braid_storage::{Database, StorageError};
use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm, DecodingKey};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;
// Tokio's clock, which tests can pause and move forward.
use tokio::time::Instant;

/// `Cache-Control: max-age` of `/.well-known/jwks.json`: how long an app may use its copy.
pub const JWKS_MAX_AGE_SECS: u32 = 60;

/// A retiring key stays published this long after the last token it signed has expired:
/// the verifiers' leeway and the clock differences between hosts.
const RETIRING_GRACE: Duration = Duration::from_secs(60);

/// `[keys]` in the configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct KeySettings {
    /// Seconds between two reads of the keys from the database by one instance.
    pub reload_interval: u64,
    /// Seconds a key added by `braid keys rotate` is published before it signs.
    pub publish_delay: u64,
    /// Seconds between two reads caused by tokens whose `kid` this instance does not know.
    pub unknown_kid_reload_interval: u64,
}

impl Default for KeySettings {
    fn default() -> Self {
        Self {
            reload_interval: 60,
            publish_delay: 600,
            unknown_kid_reload_interval: 10,
        }
    }
}

impl KeySettings {
    pub fn problems(&self) -> Vec<String> {
        let mut out = Vec::new();
        if self.reload_interval == 0 {
            out.push("keys.reload_interval: must be at least 1 second".into());
        }
        if self.unknown_kid_reload_interval == 0 {
            out.push("keys.unknown_kid_reload_interval: must be at least 1 second".into());
        }
        let least = self
            .reload_interval
            .saturating_add(u64::from(JWKS_MAX_AGE_SECS));
        if self.publish_delay < least {
            out.push(format!(
                "keys.publish_delay: must be at least keys.reload_interval + {JWKS_MAX_AGE_SECS} s \
                 (how long apps may cache the JWKS) = {least} s, so that every instance and every \
                 app knows a new key before it signs; it is {} s",
                self.publish_delay
            ));
        }
        out
    }

    /// How a rotation changes the keys under this configuration.
    pub fn rotation_times(&self, tokens: &TokenSettings) -> RotationTimes {
        RotationTimes {
            publish_delay: Duration::from_secs(self.publish_delay),
            token_lifetime: Duration::from_secs(tokens.access_token_ttl) + RETIRING_GRACE,
        }
    }
}

/// A private key that signs now or will, parsed once per read: signing a token is then one
/// signature, with no key decoding per request.
pub struct SigningKey {
    pub kid: String,
    pub alg: Algorithm,
    pub schedule: KeySchedule,
    signer: Signer,
    /// base64url of the JOSE header (`alg`, `typ: at+jwt`, `kid`), the same for every token.
    header_b64: String,
}

enum Signer {
    Es256(EcdsaKeyPair),
    EdDsa(Ed25519KeyPair),
    Rs256(RsaKeyPair),
}

impl SigningKey {
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

/// The keys as read at one moment.
pub struct Keys {
    /// Keys that sign now or will, newest first.
    signers: Vec<SigningKey>,
    verifiers: HashMap<String, (Algorithm, DecodingKey)>,
    /// `{"keys":[...]}`: every published key (next, active, retiring), rendered once per read.
    pub jwks_json: String,
}

impl Keys {
    /// The key that signs at `now`.
    pub fn signer(&self, now: Timestamp) -> Option<&SigningKey> {
        signing_key::signing_key(&self.signers, |k| &k.schedule, now)
    }

    pub fn verifier(&self, kid: &str) -> Option<&(Algorithm, DecodingKey)> {
        self.verifiers.get(kid)
    }
}

pub struct KeyRing {
    db: Database,
    reload_interval: Duration,
    unknown_kid_reload_interval: Duration,
    /// The keys, and when they were last read (or a read was last tried).
    loaded: RwLock<(Instant, Arc<Keys>)>,
    /// Held while reading, so that callers who need a read share one.
    reading: tokio::sync::Mutex<()>,
    reads: AtomicU64,
}

impl KeyRing {
    pub async fn load(db: Database, settings: &KeySettings) -> Result<Self, StorageError> {
        let keys = fetch(&db).await?;
        Ok(Self {
            db,
            reload_interval: Duration::from_secs(settings.reload_interval),
            unknown_kid_reload_interval: Duration::from_secs(settings.unknown_kid_reload_interval),
            loaded: RwLock::new((Instant::now(), Arc::new(keys))),
            reading: tokio::sync::Mutex::new(()),
            reads: AtomicU64::new(1),
        })
    }

    /// The current keys; read again when older than the reload interval.
    pub async fn keys(&self) -> Result<Arc<Keys>, StorageError> {
        let (read_at, keys) = self.loaded();
        if read_at.elapsed() < self.reload_interval {
            return Ok(keys);
        }
        // Wait for the read (this caller's, or the one under way) rather than sign with keys
        // that may be long out of date: an instance idle for an hour would otherwise sign with
        // a key that no longer signs, and may no longer be published.
        drop(keys);
        let _reading = self.reading.lock().await;
        Ok(self.read_if(self.reload_interval).await)
    }

    /// The keys to verify `token` with. When they lack the token's `kid`, the keys are read
    /// again first, unless they were read within `keys.unknown_kid_reload_interval`: a flood of
    /// tokens with made-up `kid`s costs at most one read per interval.
    pub async fn keys_for_token(&self, token: &str) -> Result<Arc<Keys>, StorageError> {
        let keys = self.keys().await?;
        if token.len() > crate::tokens::access::MAX_LEN {
            return Ok(keys);
        }
        let Some(kid) = jsonwebtoken::decode_header(token).ok().and_then(|h| h.kid) else {
            return Ok(keys);
        };
        if keys.verifier(&kid).is_some() {
            return Ok(keys);
        }
        let _reading = self.reading.lock().await;
        Ok(self.read_if(self.unknown_kid_reload_interval).await)
    }

    /// How many times this ring has read the keys from the database (the first load included).
    pub fn reads(&self) -> u64 {
        self.reads.load(Ordering::Relaxed)
    }

    fn loaded(&self) -> (Instant, Arc<Keys>) {
        let guard = self
            .loaded
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        (guard.0, guard.1.clone())
    }

    /// Reads the keys unless the last read is more recent than `interval` (another caller's,
    /// made while this one waited for its turn). Call with `reading` held.
    async fn read_if(&self, interval: Duration) -> Arc<Keys> {
        let (read_at, keys) = self.loaded();
        if read_at.elapsed() < interval {
            return keys;
        }
        self.reads.fetch_add(1, Ordering::Relaxed);
        let keys = match fetch(&self.db).await {
            Ok(fresh) => Arc::new(fresh),
            Err(e) => {
                // Keep the keys we have; the next read is due after the interval again.
                tracing::warn!(error = %e, "reading the signing keys failed; using the ones read before");
                keys
            }
        };
        let mut guard = self
            .loaded
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *guard = (Instant::now(), keys.clone());
        keys
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

fn signing_key(record: &SigningKeyRecord, alg: Algorithm) -> Result<SigningKey, StorageError> {
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
    Ok(SigningKey {
        kid: record.kid.clone(),
        alg,
        schedule: record.schedule,
        signer,
        header_b64: B64.encode(header.to_string()),
    })
}

async fn fetch(db: &Database) -> Result<Keys, StorageError> {
    let now = Timestamp::now();
    let published = db.run(move |c| keys::published(c, now)).await?;
    let mut signers = Vec::new();
    let mut verifiers = HashMap::new();
    let mut jwks = Vec::new();
    for record in &published {
        let Some(alg) = algorithm(&record.alg) else {
            tracing::warn!(kid = %record.kid, alg = %record.alg, "signing key with an unknown algorithm ignored");
            continue;
        };
        if record.schedule.signs_now_or_later(now) {
            signers.push(signing_key(record, alg)?);
        }
        let jwk: Jwk = serde_json::from_str(&record.public_jwk)?;
        let decoding = DecodingKey::from_jwk(&jwk)
            .map_err(|e| StorageError::Corrupt(format!("public key {}: {e}", record.kid)))?;
        verifiers.insert(record.kid.clone(), (alg, decoding));
        jwks.push(serde_json::from_str::<serde_json::Value>(
            &record.public_jwk,
        )?);
    }
    let keys = Keys {
        signers,
        verifiers,
        jwks_json: serde_json::json!({ "keys": jwks }).to_string(),
    };
    if keys.signer(now).is_none() {
        return Err(StorageError::Corrupt("no signing key signs now".into()));
    }
    Ok(keys)
}
