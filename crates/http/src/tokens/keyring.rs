//! Signing and verification keys, loaded from the database and refreshed every minute, so a
//! `braid keys rotate` on one instance reaches every instance without a restart.

use braid_core::Timestamp;
use braid_storage::repo::keys::{self, SigningKeyRecord};
use braid_storage::{Database, StorageError};
use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey};
use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

const REFRESH_EVERY: Duration = Duration::from_secs(60);

pub struct ActiveKey {
    pub kid: String,
    pub alg: Algorithm,
    pub encoding: EncodingKey,
}

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

fn encoding_key(record: &SigningKeyRecord, alg: Algorithm) -> Result<EncodingKey, StorageError> {
    let der = &record.private_key;
    let key = match alg {
        Algorithm::ES256 => EncodingKey::from_ec_der(der),
        Algorithm::EdDSA => EncodingKey::from_ed_der(der),
        Algorithm::RS256 => {
            let pem = pem_pkcs8(der);
            EncodingKey::from_rsa_pem(pem.as_bytes())
                .map_err(|e| StorageError::Corrupt(format!("signing key {}: {e}", record.kid)))?
        }
        _ => {
            return Err(StorageError::Corrupt(format!(
                "signing key {}: unsupported alg",
                record.kid
            )));
        }
    };
    Ok(key)
}

fn pem_pkcs8(der: &[u8]) -> String {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut pem = String::from("-----BEGIN PRIVATE KEY-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        pem.push_str(&String::from_utf8_lossy(chunk));
        pem.push('\n');
    }
    pem.push_str("-----END PRIVATE KEY-----\n");
    pem
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
    let encoding = encoding_key(&active, alg)?;
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
        active: ActiveKey {
            kid: active.kid,
            alg,
            encoding,
        },
        verifiers,
        jwks_json,
    })
}
