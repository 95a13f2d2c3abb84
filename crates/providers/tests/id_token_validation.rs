//! SECURITY-CASES group B: the FakeIdp mints the bad ID token, Braid must refuse it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use braid_providers::testing::{FakeIdp, LoginScript};
use braid_providers::{IdTokenError, ProviderError};
use serde_json::{Map, Value, json};
use support::{login, login_with, oidc_provider, unix_now};

fn id_token_error(result: Result<braid_core::FederatedIdentity, ProviderError>) -> IdTokenError {
    match result {
        Err(ProviderError::IdToken(e)) => e,
        other => panic!("expected an ID token error, got {other:?}"),
    }
}

fn header(pairs: Value) -> Map<String, Value> {
    pairs.as_object().cloned().unwrap()
}

#[tokio::test]
async fn happy_path_the_fake_login_is_accepted() {
    let idp = FakeIdp::start().await;
    let p = oidc_provider(&idp);
    let identity = login(&idp, &p).await.unwrap();
    assert_eq!(identity.subject.as_str(), "fake-user-1");
    assert_eq!(identity.issuer, idp.issuer());
    assert_eq!(identity.provider.as_str(), "corp");
    assert_eq!(idp.token_calls(), 1);
}

#[tokio::test]
async fn b01_alg_none_rejected() {
    let idp = FakeIdp::start().await;
    let p = oidc_provider(&idp);
    let script = LoginScript {
        header_alg: Some("none".into()),
        ..LoginScript::default()
    };
    assert_eq!(
        id_token_error(login_with(&idp, &p, script).await),
        IdTokenError::Algorithm
    );
}

#[tokio::test]
async fn b03_unexpected_alg_rejected_even_when_signed_by_the_providers_key() {
    let idp = FakeIdp::start().await;
    let p = oidc_provider(&idp);
    for alg in ["RS512", "PS256", "HS256"] {
        let script = LoginScript {
            header_alg: Some(alg.into()),
            ..LoginScript::default()
        };
        assert_eq!(
            id_token_error(login_with(&idp, &p, script).await),
            IdTokenError::Algorithm,
            "{alg}"
        );
    }
}

fn metadata_error(result: Result<impl std::fmt::Debug, ProviderError>) -> String {
    match result {
        Err(ProviderError::Metadata(why)) => why,
        other => panic!("expected a metadata (misconfiguration) error, got {other:?}"),
    }
}

#[tokio::test]
async fn b03_a_pinned_other_alg_refuses_rs256_tokens_and_names_the_wrong_pin() {
    let idp = FakeIdp::start().await;
    idp.set_declared_algs(&["RS256", "PS256"]);
    idp.set_published_key_alg(None);
    let mut settings = idp.provider_settings();
    settings.id_token_alg = Some("PS256".into());
    let p = support::provider("corp", settings);
    let why = metadata_error(login(&idp, &p).await);
    assert!(
        why.contains("signs ID tokens with RS256") && why.contains("pins PS256"),
        "{why}"
    );
}

#[tokio::test]
async fn id_token_algorithm_comes_from_discovery_without_a_pin() {
    let idp = FakeIdp::start().await;
    idp.set_declared_algs(&["PS256"]);
    idp.set_published_key_alg(Some("PS256"));
    let p = oidc_provider(&idp);
    let script = LoginScript {
        header_alg: Some("PS256".into()),
        ..LoginScript::default()
    };
    let identity = login_with(&idp, &p, script).await.unwrap();
    assert_eq!(identity.subject.as_str(), "fake-user-1");
    assert_eq!(
        p.status(),
        braid_providers::ProviderStatus::Ready,
        "the provider is ready once discovered"
    );
}

#[tokio::test]
async fn b03_an_algorithm_the_provider_does_not_declare_is_refused() {
    let idp = FakeIdp::start().await;
    idp.set_declared_algs(&["RS256"]);
    let p = oidc_provider(&idp);
    for alg in ["PS256", "RS512", "HS256", "none"] {
        let script = LoginScript {
            header_alg: Some(alg.into()),
            ..LoginScript::default()
        };
        assert_eq!(
            id_token_error(login_with(&idp, &p, script).await),
            IdTokenError::Algorithm,
            "{alg}"
        );
    }
}

#[tokio::test]
async fn none_and_hmac_are_never_taken_from_discovery() {
    let idp = FakeIdp::start().await;
    idp.set_declared_algs(&["none", "HS256", "HS512"]);
    let p = oidc_provider(&idp);
    let why = metadata_error(p.authorization_request().await);
    assert!(
        why.contains("declares no ID token algorithm Braid accepts"),
        "{why}"
    );
    assert_eq!(p.status(), braid_providers::ProviderStatus::Misconfigured);
    assert_eq!(idp.authorize_calls(), 0);
}

#[tokio::test]
async fn a_pin_the_provider_does_not_declare_is_a_misconfiguration() {
    let idp = FakeIdp::start().await;
    let mut settings = idp.provider_settings();
    settings.id_token_alg = Some("ES256".into());
    let p = support::provider("corp", settings);
    let why = metadata_error(p.authorization_request().await);
    assert!(
        why.contains("id_token_alg pins ES256, which the provider does not declare"),
        "{why}"
    );
}

#[tokio::test]
async fn a_provider_without_a_key_for_its_algorithms_is_a_misconfiguration() {
    let idp = FakeIdp::start().await;
    // The fake publishes one RSA key only.
    idp.set_declared_algs(&["ES256", "EdDSA"]);
    let p = oidc_provider(&idp);
    let why = metadata_error(p.authorization_request().await);
    assert!(why.contains("no key in the provider's key set"), "{why}");
}

#[tokio::test]
async fn the_keys_own_type_binds_the_algorithm() {
    let idp = FakeIdp::start().await;
    // ES256 is declared and accepted, but the only key is RSA: a token claiming ES256 cannot
    // be verified with it, whatever its signature says.
    idp.set_declared_algs(&["RS256", "ES256"]);
    let p = oidc_provider(&idp);
    let script = LoginScript {
        header_alg: Some("ES256".into()),
        ..LoginScript::default()
    };
    assert_eq!(
        id_token_error(login_with(&idp, &p, script).await),
        IdTokenError::Signature
    );
}

#[tokio::test]
async fn b04_unknown_kid_refetches_jwks_once_then_rejects_without_a_fetch_storm() {
    let idp = FakeIdp::start().await;
    let p = oidc_provider(&idp);
    login(&idp, &p).await.unwrap();
    assert_eq!(idp.jwks_calls(), 1);

    let unknown = || LoginScript {
        header_kid: Some("attacker-kid".into()),
        ..LoginScript::default()
    };
    assert_eq!(
        id_token_error(login_with(&idp, &p, unknown()).await),
        IdTokenError::UnknownKey
    );
    assert_eq!(idp.jwks_calls(), 2, "one re-discovery for the unknown kid");

    for _ in 0..5 {
        assert_eq!(
            id_token_error(login_with(&idp, &p, unknown()).await),
            IdTokenError::UnknownKey
        );
    }
    assert_eq!(idp.jwks_calls(), 2, "no further fetch within a minute");
}

#[tokio::test]
async fn b04_concurrent_unknown_kids_cause_at_most_one_refetch() {
    let idp = std::sync::Arc::new(FakeIdp::start().await);
    let p = oidc_provider(&idp);
    // Prepare ten flows first (discovery happens here), then complete them concurrently.
    let mut flows = Vec::new();
    for _ in 0..10 {
        idp.script_next_login(LoginScript {
            header_kid: Some("attacker-kid".into()),
            ..LoginScript::default()
        });
        let request = p.authorization_request().await.unwrap();
        let redirect = idp.authorize(&request.url).await;
        flows.push((redirect.callback_params(), request.expected_flow()));
    }
    let tasks: Vec<_> = flows
        .into_iter()
        .map(|(callback, expected)| {
            let p = p.clone();
            tokio::spawn(async move { p.complete(callback, &expected).await })
        })
        .collect();
    for t in tasks {
        assert_eq!(id_token_error(t.await.unwrap()), IdTokenError::UnknownKey);
    }
    assert_eq!(idp.jwks_calls(), 2);
}

#[tokio::test]
async fn b04_a_rotated_key_is_picked_up_by_the_one_refetch() {
    let idp = FakeIdp::start().await;
    let p = oidc_provider(&idp);
    login(&idp, &p).await.unwrap();
    idp.rotate_key_id();
    let identity = login(&idp, &p).await.unwrap();
    assert_eq!(identity.subject.as_str(), "fake-user-1");
    assert_eq!(idp.jwks_calls(), 2);
}

#[tokio::test]
async fn b05_key_embedded_in_jwk_header_is_not_trusted() {
    let idp = FakeIdp::start().await;
    let p = oidc_provider(&idp);
    let script = LoginScript {
        sign_with_foreign_key: true,
        extra_header: header(json!({ "jwk": idp.attacker_jwk() })),
        ..LoginScript::default()
    };
    assert_eq!(
        id_token_error(login_with(&idp, &p, script).await),
        IdTokenError::Signature
    );
}

#[tokio::test]
async fn b05_jku_and_x5u_headers_are_never_fetched() {
    let idp = FakeIdp::start().await;
    let attacker = wiremock::MockServer::start().await;
    let p = oidc_provider(&idp);
    // Signed by the attacker's key, pointing at the attacker's key set: refused.
    let script = LoginScript {
        sign_with_foreign_key: true,
        extra_header: header(json!({
            "jku": format!("{}/jwks", attacker.uri()),
            "x5u": format!("{}/cert.pem", attacker.uri()),
        })),
        ..LoginScript::default()
    };
    assert_eq!(
        id_token_error(login_with(&idp, &p, script).await),
        IdTokenError::Signature
    );
    // Properly signed with the same headers: accepted, the headers simply ignored.
    let script = LoginScript {
        extra_header: header(json!({ "jku": format!("{}/jwks", attacker.uri()) })),
        ..LoginScript::default()
    };
    assert!(login_with(&idp, &p, script).await.is_ok());
    assert!(attacker.received_requests().await.unwrap().is_empty());
}

#[tokio::test]
async fn b06_unknown_crit_rejected() {
    let idp = FakeIdp::start().await;
    let p = oidc_provider(&idp);
    let script = LoginScript {
        extra_header: header(json!({ "crit": ["bork"], "bork": 1 })),
        ..LoginScript::default()
    };
    assert_eq!(
        id_token_error(login_with(&idp, &p, script).await),
        IdTokenError::CriticalHeader
    );
}

#[tokio::test]
async fn b07_tampered_signature_rejected() {
    let idp = FakeIdp::start().await;
    let p = oidc_provider(&idp);
    let script = LoginScript {
        tamper_signature: true,
        ..LoginScript::default()
    };
    assert_eq!(
        id_token_error(login_with(&idp, &p, script).await),
        IdTokenError::Signature
    );
}

#[tokio::test]
async fn b07_tampered_payload_rejected() {
    let idp = FakeIdp::start().await;
    let p = oidc_provider(&idp);
    let script = LoginScript {
        tamper_payload: true,
        ..LoginScript::default()
    };
    assert_eq!(
        id_token_error(login_with(&idp, &p, script).await),
        IdTokenError::Signature
    );
}

#[tokio::test]
async fn b08_wrong_issuer_rejected() {
    let idp = FakeIdp::start().await;
    let p = oidc_provider(&idp);
    let script = LoginScript::claim("iss", json!("https://evil.example"));
    assert_eq!(
        id_token_error(login_with(&idp, &p, script).await),
        IdTokenError::Issuer
    );
}

#[tokio::test]
async fn b09_audience_without_our_client_rejected() {
    let idp = FakeIdp::start().await;
    let p = oidc_provider(&idp);
    let script = LoginScript::claim("aud", json!("other-app"));
    assert!(matches!(
        id_token_error(login_with(&idp, &p, script).await),
        IdTokenError::Audience(_)
    ));
}

#[tokio::test]
async fn b09_extra_untrusted_audience_rejected() {
    let idp = FakeIdp::start().await;
    let p = oidc_provider(&idp);
    let script = LoginScript::claim(
        "aud",
        json!([braid_providers::testing::CLIENT_ID, "other-app"]),
    );
    assert_eq!(
        id_token_error(login_with(&idp, &p, script).await),
        IdTokenError::Audience("untrusted additional audience")
    );
}

#[tokio::test]
async fn b10_azp_of_another_client_rejected() {
    let idp = FakeIdp::start().await;
    let p = oidc_provider(&idp);
    let script = LoginScript::claim("azp", json!("other-client"));
    assert_eq!(
        id_token_error(login_with(&idp, &p, script).await),
        IdTokenError::AuthorizedParty
    );
}

#[tokio::test]
async fn b11_expired_token_rejected() {
    let idp = FakeIdp::start().await;
    let p = oidc_provider(&idp);
    let script = LoginScript::claim("exp", json!(unix_now() - 61));
    assert_eq!(
        id_token_error(login_with(&idp, &p, script).await),
        IdTokenError::Expired
    );
}

#[tokio::test]
async fn b11_token_without_exp_rejected() {
    let idp = FakeIdp::start().await;
    let p = oidc_provider(&idp);
    assert_eq!(
        id_token_error(login_with(&idp, &p, LoginScript::without_claim("exp")).await),
        IdTokenError::Expired
    );
}

#[tokio::test]
async fn b12_iat_an_hour_ahead_rejected() {
    let idp = FakeIdp::start().await;
    let p = oidc_provider(&idp);
    let script = LoginScript::claim("iat", json!(unix_now() + 3600));
    assert!(matches!(
        id_token_error(login_with(&idp, &p, script).await),
        IdTokenError::IssuedAt(_)
    ));
}

#[tokio::test]
async fn b12_iat_older_than_a_day_rejected() {
    let idp = FakeIdp::start().await;
    let p = oidc_provider(&idp);
    let script = LoginScript::claim("iat", json!(unix_now() - 24 * 3600 - 60));
    assert!(matches!(
        id_token_error(login_with(&idp, &p, script).await),
        IdTokenError::IssuedAt(_)
    ));
}

#[tokio::test]
async fn b13_nbf_in_the_future_rejected() {
    let idp = FakeIdp::start().await;
    let p = oidc_provider(&idp);
    let script = LoginScript::claim("nbf", json!(unix_now() + 600));
    assert_eq!(
        id_token_error(login_with(&idp, &p, script).await),
        IdTokenError::NotYetValid
    );
}

#[tokio::test]
async fn b14_bad_subjects_rejected() {
    let idp = FakeIdp::start().await;
    let p = oidc_provider(&idp);
    for sub in [
        json!(""),
        json!("a".repeat(256)),
        json!(123),
        json!("abc\u{0000}def"),
    ] {
        let err =
            id_token_error(login_with(&idp, &p, LoginScript::claim("sub", sub.clone())).await);
        assert!(matches!(err, IdTokenError::Subject(_)), "{sub}: {err}");
    }
    let err = id_token_error(login_with(&idp, &p, LoginScript::without_claim("sub")).await);
    assert!(matches!(err, IdTokenError::Subject(_)));
}

#[tokio::test]
async fn b15_at_hash_mismatch_rejected() {
    let idp = FakeIdp::start().await;
    let p = oidc_provider(&idp);
    let script = LoginScript::claim("at_hash", json!("AAAAAAAAAAAAAAAAAAAAAA"));
    assert_eq!(
        id_token_error(login_with(&idp, &p, script).await),
        IdTokenError::AccessTokenHash
    );
}

#[tokio::test]
async fn b16_userinfo_sub_mismatch_rejected_and_its_data_discarded() {
    let idp = FakeIdp::start().await;
    let p = oidc_provider(&idp);
    // The email is only in UserInfo, so UserInfo is needed — and it speaks for someone else.
    let script = LoginScript {
        userinfo_sub: Some("someone-else".into()),
        remove_claims: vec!["email".into(), "email_verified".into()],
        ..LoginScript::default()
    };
    let err = login_with(&idp, &p, script).await.unwrap_err();
    assert!(matches!(err, ProviderError::UserInfo(_)), "{err}");
    assert_eq!(idp.userinfo_calls(), 1);
}

#[tokio::test]
async fn b17_oversized_token_response_refused_by_the_size_cap() {
    let idp = FakeIdp::start().await;
    let p = oidc_provider(&idp);
    let script = LoginScript {
        pad_token_response: 1536 * 1024,
        ..LoginScript::default()
    };
    let err = login_with(&idp, &p, script).await.unwrap_err();
    assert!(
        matches!(err, ProviderError::ResponseTooLarge { .. }),
        "{err}"
    );
    assert!(!err.is_upstream_unavailable());
}

#[tokio::test]
async fn b17_id_token_with_ten_thousand_claims_rejected() {
    let idp = FakeIdp::start().await;
    let p = oidc_provider(&idp);
    let mut script = LoginScript::default();
    for i in 0..10_000 {
        script.set_claims.insert(format!("c{i}"), json!(i));
    }
    let err = id_token_error(login_with(&idp, &p, script).await);
    assert!(matches!(err, IdTokenError::Malformed(_)), "{err}");
}

#[tokio::test]
async fn b20_token_response_without_id_token_rejected() {
    let idp = FakeIdp::start().await;
    let p = oidc_provider(&idp);
    let script = LoginScript {
        omit_id_token: true,
        ..LoginScript::default()
    };
    let err = login_with(&idp, &p, script).await.unwrap_err();
    assert!(matches!(err, ProviderError::TokenResponse(_)), "{err}");
}

#[tokio::test]
async fn b20_token_type_other_than_bearer_rejected() {
    let idp = FakeIdp::start().await;
    let p = oidc_provider(&idp);
    let script = LoginScript {
        token_type: Some("mac".into()),
        ..LoginScript::default()
    };
    let err = login_with(&idp, &p, script).await.unwrap_err();
    assert!(matches!(err, ProviderError::TokenResponse(_)), "{err}");
}

#[tokio::test]
async fn a15_id_token_without_nonce_rejected() {
    let idp = FakeIdp::start().await;
    let p = oidc_provider(&idp);
    assert_eq!(
        id_token_error(login_with(&idp, &p, LoginScript::without_claim("nonce")).await),
        IdTokenError::Nonce("missing")
    );
}

#[tokio::test]
async fn a16_nonce_of_another_flow_rejected() {
    let idp = FakeIdp::start().await;
    let p = oidc_provider(&idp);
    let other = p.authorization_request().await.unwrap();
    let script = LoginScript::claim("nonce", json!(other.nonce.unwrap()));
    assert!(matches!(
        id_token_error(login_with(&idp, &p, script).await),
        IdTokenError::Nonce(_)
    ));
}

#[tokio::test]
async fn id_token_errors_never_echo_the_token() {
    let idp = FakeIdp::start().await;
    let p = oidc_provider(&idp);
    let request = p.authorization_request().await.unwrap();
    idp.script_next_login(LoginScript {
        tamper_signature: true,
        ..LoginScript::default()
    });
    let redirect = idp.authorize(&request.url).await;
    let err = p
        .complete(redirect.callback_params(), &request.expected_flow())
        .await
        .unwrap_err();
    let shown = format!("{err} {err:?}");
    assert!(!shown.contains(&redirect.code));
    assert!(!shown.contains(&request.pkce_verifier));
    assert!(!shown.contains("eyJ"), "no JWT in {shown}");
}
