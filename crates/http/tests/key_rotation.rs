//! Key rotation as instances see it: a rotated key is published before it signs, and a retiring
//! key keeps verifying.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use braid_core::Timestamp;
use braid_http::keys;
use braid_http::settings::{KeySettings, SigningAlg};
use braid_http::tokens::access::{self, AccessClaims};
use braid_http::tokens::keyring::{JWKS_MAX_AGE_SECS, KeyRing, Keys};
use braid_storage::repo::keys::{self as key_repo, RotationTimes};
use braid_storage::test_support::TestDb;
use serde_json::Value;
use std::time::Duration;

const ISSUER: &str = "https://auth.example";

fn claims(ttl: Duration) -> AccessClaims {
    let now = Timestamp::now();
    AccessClaims {
        iss: ISSUER.into(),
        sub: "user-1".into(),
        aud: "app".into(),
        client_id: "app".into(),
        exp: now.plus(ttl).as_secs(),
        iat: now.as_secs(),
        jti: braid_core::new_id(),
        idp: None,
    }
}

/// A database with its first key, as the first start leaves it.
fn first_start() -> TestDb {
    let t = TestDb::new().unwrap();
    key_repo::ensure_signing_key(&mut t.db.conn().unwrap(), Timestamp::now(), || {
        Ok(keys::generate(SigningAlg::ES256)?)
    })
    .unwrap();
    t
}

fn rotate(t: &TestDb, publish_delay: Duration) -> key_repo::SigningKeyRecord {
    let times = RotationTimes {
        publish_delay,
        token_lifetime: Duration::from_secs(900 + 60),
    };
    let new = keys::generate(SigningAlg::ES256).unwrap();
    key_repo::rotate(&mut t.db.conn().unwrap(), &new, Timestamp::now(), times).unwrap()
}

fn kid_of(token: &str) -> String {
    jsonwebtoken::decode_header(token).unwrap().kid.unwrap()
}

fn jwks_kids(keys: &Keys) -> Vec<String> {
    let jwks: Value = serde_json::from_str(&keys.jwks_json).unwrap();
    jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn the_jwks_lists_the_next_key_at_once_while_the_old_key_still_signs() {
    let t = first_start();
    let ring = KeyRing::load(t.db.clone(), &KeySettings::default())
        .await
        .unwrap();
    let old = ring.keys().await.unwrap();
    let old_kid = old.signer(Timestamp::now()).unwrap().kid.clone();

    let next = rotate(&t, Duration::from_secs(600));
    // The first read after the rotation (any instance's) publishes the next key...
    let fresh = KeyRing::load(t.db.clone(), &KeySettings::default())
        .await
        .unwrap();
    let keys = fresh.keys().await.unwrap();
    assert_eq!(jwks_kids(&keys), [next.kid.clone(), old_kid.clone()]);
    // ...and signs with the old key until the next one's time has come.
    let token = access::sign(&keys, &claims(Duration::from_secs(900))).unwrap();
    assert_eq!(kid_of(&token), old_kid);
    let at_switch = next.schedule.activate_at;
    assert_eq!(
        keys.signer(at_switch.minus(Duration::from_millis(1)))
            .unwrap()
            .kid,
        old_kid
    );
    assert_eq!(keys.signer(at_switch).unwrap().kid, next.kid);
    // An instance that has not read the keys since signs with the old key too.
    assert_eq!(
        kid_of(&access::sign(&old, &claims(Duration::from_secs(900))).unwrap()),
        old_kid
    );
}

#[tokio::test]
async fn a_token_signed_by_the_retiring_key_verifies_until_it_expires() {
    let t = first_start();
    let before = KeyRing::load(t.db.clone(), &KeySettings::default())
        .await
        .unwrap();
    let ttl = Duration::from_secs(900);
    let token = access::sign(&before.keys().await.unwrap(), &claims(ttl)).unwrap();
    let retiring = kid_of(&token);

    // The new key signs at once, so the old one is retiring from now on.
    let new = rotate(&t, Duration::ZERO);
    let after = KeyRing::load(t.db.clone(), &KeySettings::default())
        .await
        .unwrap();
    let keys = after.keys().await.unwrap();
    assert_eq!(keys.signer(Timestamp::now()).unwrap().kid, new.kid);
    let verified = access::verify(&keys, &token, ISSUER, &["app"]).unwrap();
    assert_eq!(kid_of(&token), retiring);

    // Published for as long as the token lives, and no longer needed once it has expired.
    let expires = Timestamp::from_millis(verified.exp * 1000);
    let published_at = |at: Timestamp| -> Vec<String> {
        key_repo::published(&mut t.db.conn().unwrap(), at)
            .unwrap()
            .into_iter()
            .map(|k| k.kid)
            .collect()
    };
    assert!(published_at(expires.plus(Duration::from_secs(5))).contains(&retiring));
    assert!(!published_at(expires.plus(Duration::from_secs(61))).contains(&retiring));
}

#[tokio::test]
async fn the_jwks_max_age_is_the_one_the_publish_delay_is_checked_against() {
    let app = support::spawn_app().await;
    let r = app
        .client
        .get(format!("{}/.well-known/jwks.json", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.headers()["cache-control"],
        format!("public, max-age={JWKS_MAX_AGE_SECS}").as_str()
    );
    let too_short = KeySettings {
        reload_interval: 60,
        publish_delay: 60 + u64::from(JWKS_MAX_AGE_SECS) - 1,
    };
    let problems = too_short.problems();
    assert_eq!(problems.len(), 1);
    assert!(
        problems[0].starts_with("keys.publish_delay: must be at least keys.reload_interval + 60 s"),
        "{problems:?}"
    );
    assert!(KeySettings::default().problems().is_empty());
}
