#![allow(clippy::unwrap_used, clippy::expect_used)]

use braid_core::Timestamp;
use braid_http::keys;
use braid_http::settings::{KeySettings, SigningAlg};
use braid_http::tokens::access::{self, AccessClaims, AccessTokenError};
use braid_http::tokens::keyring::KeyRing;
use braid_storage::repo::keys as key_repo;
use braid_storage::test_support::TestDb;

fn claims(aud: &str) -> AccessClaims {
    let now = Timestamp::now().as_secs();
    AccessClaims {
        iss: "https://auth.example".into(),
        sub: "user-1".into(),
        aud: aud.into(),
        client_id: aud.into(),
        exp: now + 900,
        iat: now,
        jti: "jti-1".into(),
        idp: Some("google".into()),
        external_id: Some("42".into()),
        auth_time: None,
        identity_id: None,
        braid_claims: None,
    }
}

#[tokio::test]
async fn every_signing_algorithm_signs_and_verifies_with_its_published_key() {
    for alg in [SigningAlg::ES256, SigningAlg::EdDSA, SigningAlg::RS256] {
        let t = TestDb::new().unwrap();
        let mut c = t.db.conn().unwrap();
        key_repo::ensure_signing_key(&mut c, Timestamp::now(), || Ok(keys::generate(alg)?))
            .unwrap();
        drop(c);
        let ring = KeyRing::load(t.db.clone(), &KeySettings::default())
            .await
            .unwrap();
        let k = ring.keys().await.unwrap();
        // One set of claims: two calls a second boundary apart differ in iat and exp.
        let expected = claims("app");
        let token = access::sign(&k, &expected).unwrap();
        let header = jsonwebtoken::decode_header(&token).unwrap();
        assert_eq!(header.typ.as_deref(), Some("at+jwt"));
        let signer = k.signer(Timestamp::now()).unwrap();
        assert_eq!(header.kid.as_deref(), Some(signer.kid.as_str()));
        let verified = access::verify(&k, &token, "https://auth.example", &["app"]).unwrap();
        assert_eq!(verified, expected, "{alg:?}");
        let jwks: serde_json::Value = serde_json::from_str(&k.jwks_json).unwrap();
        assert_eq!(jwks["keys"].as_array().unwrap().len(), 1);
    }
}

#[tokio::test]
async fn f12_f14_f19_foreign_or_mistyped_tokens_are_rejected() {
    let t = TestDb::new().unwrap();
    let mut c = t.db.conn().unwrap();
    key_repo::ensure_signing_key(&mut c, Timestamp::now(), || {
        Ok(keys::generate(SigningAlg::ES256)?)
    })
    .unwrap();
    drop(c);
    let ring = KeyRing::load(t.db.clone(), &KeySettings::default())
        .await
        .unwrap();
    let k = ring.keys().await.unwrap();
    let token = access::sign(&k, &claims("app")).unwrap();

    // Wrong audience or issuer.
    assert!(matches!(
        access::verify(&k, &token, "https://auth.example", &["other"]),
        Err(AccessTokenError::Invalid(_))
    ));
    assert!(matches!(
        access::verify(&k, &token, "https://evil.example", &["app"]),
        Err(AccessTokenError::Invalid(_))
    ));

    // alg:none with our kid.
    let b64 =
        |s: &str| base64::Engine::encode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, s);
    let payload = token.split('.').nth(1).unwrap();
    let none = format!(
        "{}.{}.",
        b64(&format!(
            r#"{{"alg":"none","typ":"at+jwt","kid":"{}"}}"#,
            k.signer(Timestamp::now()).unwrap().kid
        )),
        payload
    );
    assert!(access::verify(&k, &none, "https://auth.example", &["app"]).is_err());

    // HS256 "signed" with the public key as secret (key confusion).
    let mut h = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
    h.typ = Some("at+jwt".into());
    h.kid = Some(k.signer(Timestamp::now()).unwrap().kid.clone());
    let forged = jsonwebtoken::encode(
        &h,
        &claims("app"),
        &jsonwebtoken::EncodingKey::from_secret(k.jwks_json.as_bytes()),
    )
    .unwrap();
    assert!(access::verify(&k, &forged, "https://auth.example", &["app"]).is_err());

    // Foreign kid, and an ID-token-like typ.
    let mut other = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
    other.typ = Some("JWT".into());
    let id_token = jsonwebtoken::encode(
        &other,
        &claims("app"),
        &jsonwebtoken::EncodingKey::from_secret(b"x"),
    )
    .unwrap();
    assert!(matches!(
        access::verify(&k, &id_token, "https://auth.example", &["app"]),
        Err(AccessTokenError::WrongType)
    ));

    // Expired.
    let mut old = claims("app");
    old.exp = Timestamp::now().as_secs() - 60;
    let expired = access::sign(&k, &old).unwrap();
    assert!(access::verify(&k, &expired, "https://auth.example", &["app"]).is_err());

    // Tampered payload.
    let mut parts: Vec<String> = token.split('.').map(String::from).collect();
    parts[1] = b64(
        r#"{"iss":"https://auth.example","sub":"admin","aud":"app","client_id":"app","exp":9999999999,"iat":1,"jti":"x"}"#,
    );
    assert!(access::verify(&k, &parts.join("."), "https://auth.example", &["app"]).is_err());
}
