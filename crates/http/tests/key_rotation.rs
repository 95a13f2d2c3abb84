//! Key rotation as instances see it: a rotated key is published before it signs, a retiring key
//! keeps verifying, and an unknown `kid` makes an instance read the keys again, rate-limited.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use base64::Engine as _;
use braid_core::Timestamp;
use braid_http::keys;
use braid_http::settings::{KeySettings, SigningAlg};
use braid_http::tokens::access::{self, AccessClaims, AccessTokenError};
use braid_http::tokens::keyring::{JWKS_MAX_AGE_SECS, KeyRing, Keys};
use braid_storage::repo::keys::{self as key_repo, RotationTimes};
use braid_storage::test_support::TestDb;
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;
use support::flow::*;

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
        external_id: None,
        auth_time: None,
        identity_id: None,
        braid_claims: None,
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

/// A token that looks like ours, with a `kid` nobody issued.
fn forged(kid: &str) -> String {
    let b64 = |v: Value| {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string().as_bytes())
    };
    format!(
        "{}.{}.c2lnbmF0dXJl",
        b64(serde_json::json!({"alg": "ES256", "typ": "at+jwt", "kid": kid})),
        b64(serde_json::to_value(claims(Duration::from_secs(900))).unwrap()),
    )
}

async fn flood(ring: &Arc<KeyRing>, tokens: usize) {
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..tokens {
        let ring = ring.clone();
        tasks.spawn(async move {
            let token = forged(&braid_core::new_id());
            let keys = ring.keys_for_token(&token).await.unwrap();
            assert!(matches!(
                access::verify(&keys, &token, ISSUER, &["app"]),
                Err(AccessTokenError::UnknownKey)
            ));
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.unwrap();
    }
}

#[tokio::test(start_paused = true)]
async fn a_flood_of_unknown_kids_costs_at_most_one_database_read_per_interval() {
    let t = first_start();
    let settings = KeySettings {
        reload_interval: 3600,
        unknown_kid_reload_interval: 10,
        ..KeySettings::default()
    };
    let ring = Arc::new(KeyRing::load(t.db.clone(), &settings).await.unwrap());
    assert_eq!(ring.reads(), 1, "the first load");

    // Within the interval of the last read: no read at all.
    flood(&ring, 300).await;
    assert_eq!(ring.reads(), 1);

    // Once the interval has passed: one read, however many tokens.
    for expected in 2..=4 {
        tokio::time::advance(Duration::from_secs(10)).await;
        flood(&ring, 300).await;
        flood(&ring, 300).await;
        assert_eq!(ring.reads(), expected);
    }
}

#[tokio::test(start_paused = true)]
async fn a_token_from_a_key_this_instance_has_not_read_yet_verifies_after_one_read() {
    let t = first_start();
    let settings = KeySettings {
        reload_interval: 3600,
        unknown_kid_reload_interval: 10,
        ..KeySettings::default()
    };
    let stale = KeyRing::load(t.db.clone(), &settings).await.unwrap();
    // Another instance sees a key this one has not read (a rotation with no publish delay).
    rotate(&t, Duration::ZERO);
    let other = KeyRing::load(t.db.clone(), &settings).await.unwrap();
    let token = access::sign(
        &other.keys().await.unwrap(),
        &claims(Duration::from_secs(900)),
    )
    .unwrap();
    assert!(
        stale
            .keys()
            .await
            .unwrap()
            .verifier(&kid_of(&token))
            .is_none()
    );

    tokio::time::advance(Duration::from_secs(10)).await;
    let keys = stale.keys_for_token(&token).await.unwrap();
    access::verify(&keys, &token, ISSUER, &["app"]).unwrap();
    assert_eq!(stale.reads(), 2);
    // Known now: verifying it again reads nothing.
    tokio::time::advance(Duration::from_secs(10)).await;
    stale.keys_for_token(&token).await.unwrap();
    assert_eq!(stale.reads(), 2);
}

#[tokio::test(start_paused = true)]
async fn an_instance_idle_past_the_reload_interval_signs_with_the_keys_as_they_are_now() {
    let t = first_start();
    let ring = Arc::new(
        KeyRing::load(t.db.clone(), &KeySettings::default())
            .await
            .unwrap(),
    );
    // While it was idle, a rotation happened and its key took over.
    let new = rotate(&t, Duration::ZERO);
    tokio::time::advance(Duration::from_secs(3600)).await;
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..20 {
        let ring = ring.clone();
        tasks.spawn(async move {
            let keys = ring.keys().await.unwrap();
            keys.signer(Timestamp::now()).unwrap().kid.clone()
        });
    }
    while let Some(kid) = tasks.join_next().await {
        assert_eq!(
            kid.unwrap(),
            new.kid,
            "no request signs with the keys of an hour ago"
        );
    }
    assert_eq!(ring.reads(), 2, "one read served them all");
}

#[tokio::test]
async fn auth_me_reads_the_keys_again_for_an_unknown_kid_before_it_refuses() {
    let env = env_with(|s| s.keys.unknown_kid_reload_interval = 1).await;
    let tokens = env.tokens_for("sub-1", "alice@example.com", true).await;
    let old_token = tokens["access_token"].as_str().unwrap();
    let payload = old_token.split('.').nth(1).unwrap();
    let mut claims: AccessClaims = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .unwrap(),
    )
    .unwrap();

    // Another instance signs with a key this app has not read yet.
    rotate(&env.app.db, Duration::ZERO);
    let other = KeyRing::load(env.app.db.db.clone(), &KeySettings::default())
        .await
        .unwrap();
    claims.jti = braid_core::new_id();
    let new_token = access::sign(&other.keys().await.unwrap(), &claims).unwrap();
    assert_ne!(kid_of(&new_token), kid_of(old_token));

    // Past the app's rate limit for unknown kids (1 s here), its /auth/me reads the keys.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(env.me(&new_token).await.status(), 200);
    assert_eq!(
        env.me(old_token).await.status(),
        200,
        "retiring, still valid"
    );
    assert_eq!(env.me(&forged("made-up")).await.status(), 401);
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
        ..KeySettings::default()
    };
    let problems = too_short.problems();
    assert_eq!(problems.len(), 1);
    assert!(
        problems[0].starts_with("keys.publish_delay: must be at least keys.reload_interval + 60 s"),
        "{problems:?}"
    );
    assert!(KeySettings::default().problems().is_empty());
}
