//! The OpenID Connect login against the FakeIdp: SECURITY-CASES group A (callback, PKCE,
//! issuer), the claim trust rules of group C, and the google, apple and microsoft presets.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use braid_core::FederatedIdentity;
use braid_providers::testing::{
    CLIENT_ID, CLIENT_SECRET, FakeAccount, FakeIdp, LoginScript, RedirectIss,
};
use braid_providers::{CallbackParams, ExpectedFlow, Preset, ProviderError, ProviderSettings};
use serde_json::{Value, json};
use support::{login, login_with, oidc_provider, provider};

fn emails(identity: &FederatedIdentity) -> Vec<(String, bool)> {
    identity
        .emails
        .iter()
        .map(|e| (e.email.as_str().to_owned(), e.verified))
        .collect()
}

fn account(email: &str, verified: Value) -> FakeAccount {
    FakeAccount {
        email: Some(email.into()),
        email_verified: Some(verified),
        ..FakeAccount::default()
    }
}

fn query(url: &url::Url) -> Vec<(String, String)> {
    url.query_pairs().into_owned().collect()
}

fn param(url: &url::Url, name: &str) -> Vec<String> {
    query(url)
        .into_iter()
        .filter(|(k, _)| k == name)
        .map(|(_, v)| v)
        .collect()
}

// ---- A: callback, state, PKCE, issuer ------------------------------------------------------

#[tokio::test]
async fn a07_iss_mismatch_rejected_and_token_endpoint_not_called() {
    let idp = FakeIdp::start().await;
    let p = oidc_provider(&idp);
    let script = LoginScript {
        redirect_iss: RedirectIss::Value("https://attacker.example".into()),
        ..LoginScript::default()
    };
    let err = login_with(&idp, &p, script).await.unwrap_err();
    assert!(matches!(err, ProviderError::IssuerMismatch(_)), "{err}");
    assert!(!err.is_upstream_unavailable());
    assert_eq!(idp.token_calls(), 0);
}

#[tokio::test]
async fn a07_wrong_iss_is_refused_even_when_not_advertised() {
    let idp = FakeIdp::start().await;
    idp.set_advertise_iss_parameter(false);
    let p = oidc_provider(&idp);
    let script = LoginScript {
        redirect_iss: RedirectIss::Value("https://attacker.example".into()),
        ..LoginScript::default()
    };
    assert!(matches!(
        login_with(&idp, &p, script).await,
        Err(ProviderError::IssuerMismatch(_))
    ));
    assert_eq!(idp.token_calls(), 0);
}

#[tokio::test]
async fn a08_missing_iss_rejected_when_advertised() {
    let idp = FakeIdp::start().await;
    let p = oidc_provider(&idp);
    let script = LoginScript {
        redirect_iss: RedirectIss::Omit,
        ..LoginScript::default()
    };
    assert!(matches!(
        login_with(&idp, &p, script).await,
        Err(ProviderError::IssuerMismatch(_))
    ));
    assert_eq!(idp.token_calls(), 0);
}

#[tokio::test]
async fn a08_missing_iss_is_fine_when_not_advertised() {
    let idp = FakeIdp::start().await;
    idp.set_advertise_iss_parameter(false);
    let p = oidc_provider(&idp);
    let redirect_has_no_iss = login(&idp, &p).await.unwrap();
    assert_eq!(redirect_has_no_iss.subject.as_str(), "fake-user-1");
}

#[tokio::test]
async fn a10_metadata_with_another_issuer_refused() {
    let idp = FakeIdp::start().await;
    idp.set_metadata_issuer("https://evil.example");
    let p = oidc_provider(&idp);
    let err = p.authorization_request().await.unwrap_err();
    assert!(matches!(err, ProviderError::Metadata(_)), "{err}");
    assert!(!err.is_upstream_unavailable());
    assert_eq!(idp.authorize_calls(), 0);
}

#[tokio::test]
async fn a10_issuer_change_seen_at_refresh_fails_closed() {
    let idp = FakeIdp::start().await;
    let p = oidc_provider(&idp);
    login(&idp, &p).await.unwrap();
    // The provider starts announcing another issuer, and a new key forces a refresh.
    let request = p.authorization_request().await.unwrap();
    idp.set_metadata_issuer("https://evil.example");
    idp.rotate_key_id();
    idp.script_next_login(LoginScript::claim("iss", json!(idp.issuer())));
    let redirect = idp.authorize(&request.url).await;
    let callback = CallbackParams {
        iss: Some(idp.issuer()),
        ..redirect.callback_params()
    };
    let err = p
        .complete(callback, &request.expected_flow())
        .await
        .unwrap_err();
    assert!(matches!(err, ProviderError::Metadata(_)), "{err}");
    // The cached document is gone: the next login cannot even start.
    assert!(matches!(
        p.authorization_request().await,
        Err(ProviderError::Metadata(_))
    ));
}

#[tokio::test]
async fn a11_pkce_s256_challenge_is_sent_and_the_verifier_redeemed() {
    let idp = FakeIdp::start().await;
    let p = oidc_provider(&idp);
    let a = p.authorization_request().await.unwrap();
    let b = p.authorization_request().await.unwrap();
    assert_eq!(param(&a.url, "code_challenge_method"), ["S256"]);
    assert_eq!(param(&a.url, "code_challenge")[0].len(), 43);
    assert_eq!(a.pkce_verifier.len(), 43);
    assert_ne!(a.pkce_verifier, b.pkce_verifier);
    assert_ne!(a.state, b.state);
    assert_ne!(a.nonce, b.nonce);
    assert!(!a.url.as_str().contains(&a.pkce_verifier));

    let redirect = idp.authorize(&a.url).await;
    p.complete(redirect.callback_params(), &a.expected_flow())
        .await
        .unwrap();
    let sent = idp.last_token_request().unwrap();
    assert!(sent.contains(&("code_verifier".to_owned(), a.pkce_verifier.clone())));
}

#[tokio::test]
async fn a12_injected_code_fails_the_pkce_check_upstream() {
    let idp = FakeIdp::start().await;
    let p = oidc_provider(&idp);
    // The attacker runs his own flow and keeps the code instead of redeeming it...
    let attacker = p.authorization_request().await.unwrap();
    let attackers_code = idp.authorize(&attacker.url).await.callback_params();
    // ...and injects it into the victim's callback (whose state is valid).
    let victim = p.authorization_request().await.unwrap();
    let err = p
        .complete(attackers_code, &victim.expected_flow())
        .await
        .unwrap_err();
    assert!(
        matches!(&err, ProviderError::TokenRefused(code) if code == "invalid_grant"),
        "{err}"
    );
    assert!(!err.is_upstream_unavailable());
}

#[tokio::test]
async fn a04_a_redeemed_code_is_not_accepted_twice() {
    let idp = FakeIdp::start().await;
    let p = oidc_provider(&idp);
    let request = p.authorization_request().await.unwrap();
    let redirect = idp.authorize(&request.url).await;
    p.complete(redirect.callback_params(), &request.expected_flow())
        .await
        .unwrap();
    let err = p
        .complete(redirect.callback_params(), &request.expected_flow())
        .await
        .unwrap_err();
    assert!(matches!(err, ProviderError::TokenRefused(_)), "{err}");
}

#[tokio::test]
async fn a18_disabled_provider_refuses_new_and_in_flight_logins() {
    let idp = FakeIdp::start().await;
    let mut settings = idp.provider_settings();
    settings.enabled = false;
    let p = provider("corp", settings);
    assert!(!p.enabled());
    assert!(matches!(
        p.authorization_request().await,
        Err(ProviderError::Disabled(_))
    ));
    let expected = ExpectedFlow {
        nonce: Some("n".repeat(43)),
        pkce_verifier: "v".repeat(43),
        issuer: idp.issuer(),
    };
    let callback = CallbackParams {
        code: "code".into(),
        iss: Some(idp.issuer()),
    };
    assert!(matches!(
        p.complete(callback, &expected).await,
        Err(ProviderError::Disabled(_))
    ));
    assert_eq!(idp.discovery_calls() + idp.token_calls(), 0);
}

#[tokio::test]
async fn a21_only_allow_listed_params_go_upstream() {
    let idp = FakeIdp::start().await;
    let p = oidc_provider(&idp);
    let request = p.authorization_request().await.unwrap();
    let allowed = [
        "response_type",
        "client_id",
        "redirect_uri",
        "scope",
        "state",
        "code_challenge",
        "code_challenge_method",
        "nonce",
    ];
    for (name, _) in query(&request.url) {
        assert!(
            allowed.contains(&name.as_str()),
            "unexpected parameter {name}"
        );
    }
    assert_eq!(param(&request.url, "redirect_uri"), [p.redirect_uri()]);
    assert_eq!(
        p.redirect_uri(),
        "https://braid.example/auth/connect/corp/callback"
    );
    assert_eq!(param(&request.url, "client_id"), [CLIENT_ID]);
    assert_eq!(request.issuer, idp.issuer());
}

#[tokio::test]
async fn flow_of_another_issuer_is_refused_before_any_upstream_call() {
    let idp = FakeIdp::start().await;
    let p = oidc_provider(&idp);
    let request = p.authorization_request().await.unwrap();
    let redirect = idp.authorize(&request.url).await;
    let mut expected = request.expected_flow();
    expected.issuer = "https://other-idp.example".into();
    let err = p
        .complete(redirect.callback_params(), &expected)
        .await
        .unwrap_err();
    assert!(matches!(err, ProviderError::FlowMismatch(_)), "{err}");
    let mut no_nonce = request.expected_flow();
    no_nonce.nonce = None;
    assert!(matches!(
        p.complete(redirect.callback_params(), &no_nonce).await,
        Err(ProviderError::FlowMismatch(_))
    ));
    assert_eq!(idp.token_calls(), 0);
}

#[tokio::test]
async fn discovery_happens_once_and_is_cached() {
    let idp = FakeIdp::start().await;
    let p = oidc_provider(&idp);
    for _ in 0..3 {
        login(&idp, &p).await.unwrap();
    }
    assert_eq!(idp.discovery_calls(), 1);
    assert_eq!(idp.jwks_calls(), 1);
}

// ---- C: identity mapping and verified-ness --------------------------------------------------

#[tokio::test]
async fn c01_c02_identity_key_is_provider_and_sub_never_the_email() {
    let idp = FakeIdp::start().await;
    let p = oidc_provider(&idp);
    idp.set_account(FakeAccount {
        sub: "S1".into(),
        ..account("alice@example.com", json!(true))
    });
    let first = login(&idp, &p).await.unwrap();
    idp.set_account(FakeAccount {
        sub: "S2".into(),
        ..account("alice@example.com", json!(true))
    });
    let same_email_other_sub = login(&idp, &p).await.unwrap();
    idp.set_account(FakeAccount {
        sub: "S1".into(),
        ..account("alice.new@example.com", json!(true))
    });
    let same_sub_new_email = login(&idp, &p).await.unwrap();
    let key = |i: &FederatedIdentity| (i.provider.clone(), i.subject.clone());
    assert_ne!(key(&first), key(&same_email_other_sub));
    assert_eq!(key(&first), key(&same_sub_new_email));
}

#[tokio::test]
async fn c07_changed_preferred_username_keeps_the_identity() {
    let idp = FakeIdp::start().await;
    let p = oidc_provider(&idp);
    idp.set_account(FakeAccount {
        preferred_username: Some("alice".into()),
        ..FakeAccount::default()
    });
    let before = login(&idp, &p).await.unwrap();
    idp.set_account(FakeAccount {
        preferred_username: Some("admin".into()),
        ..FakeAccount::default()
    });
    let after = login(&idp, &p).await.unwrap();
    assert_eq!(before.subject, after.subject);
    assert_eq!(after.profile.preferred_username.as_deref(), Some("admin"));
    assert!(after.emails.iter().all(|e| e.email.as_str() != "admin"));
}

#[tokio::test]
async fn b19_string_or_number_email_verified_is_not_verified() {
    let idp = FakeIdp::start().await;
    let p = oidc_provider(&idp);
    for flag in [json!("false"), json!("yes"), json!("true"), json!(1)] {
        idp.set_account(account("alice@example.com", flag.clone()));
        let identity = login(&idp, &p).await.unwrap();
        assert_eq!(
            emails(&identity),
            [("alice@example.com".to_owned(), false)],
            "{flag}"
        );
    }
    idp.set_account(account("alice@example.com", json!(true)));
    assert_eq!(
        emails(&login(&idp, &p).await.unwrap()),
        [("alice@example.com".to_owned(), true)]
    );
}

#[tokio::test]
async fn c14_untrusted_provider_email_is_unverified() {
    let idp = FakeIdp::start().await;
    let mut settings = idp.provider_settings();
    settings.trust_email = Some(false);
    let p = provider("corp", settings);
    let identity = login(&idp, &p).await.unwrap();
    assert_eq!(emails(&identity), [("alice@example.com".to_owned(), false)]);
    assert_eq!(identity.verified_emails().count(), 0);
}

#[tokio::test]
async fn c15_phone_is_normalised_and_verified_only_when_trusted() {
    let idp = FakeIdp::start().await;
    idp.set_account(FakeAccount {
        phone_number: Some("+1 (202) 555-0100".into()),
        phone_number_verified: Some(json!(true)),
        ..FakeAccount::default()
    });
    let untrusted = login(&idp, &oidc_provider(&idp)).await.unwrap();
    assert_eq!(untrusted.phones[0].phone.as_str(), "+12025550100");
    assert!(!untrusted.phones[0].verified);
    let mut settings = idp.provider_settings();
    settings.trust_phone = Some(true);
    let trusted = login(&idp, &provider("corp", settings)).await.unwrap();
    assert_eq!(
        trusted
            .verified_phones()
            .map(|p| p.as_str())
            .collect::<Vec<_>>(),
        ["+12025550100"]
    );
}

#[tokio::test]
async fn h05_multi_address_email_is_dropped_not_matched() {
    let idp = FakeIdp::start().await;
    let p = oidc_provider(&idp);
    idp.set_account(account(
        "victim@example.com,attacker@evil.example",
        json!(true),
    ));
    let identity = login(&idp, &p).await.unwrap();
    assert!(identity.emails.is_empty());
}

// ---- Presets with an OpenID Connect issuer, played by the FakeIdp ---------------------------

#[tokio::test]
async fn c08_google_email_verified_only_for_gmail_or_matching_hd() {
    let idp = FakeIdp::start().await;
    let p = provider("google", idp.preset_settings(Preset::Google));
    assert_eq!(p.display_name(), "Google");
    idp.set_account(account("bob@corp.example", json!(true)));
    assert_eq!(
        emails(&login(&idp, &p).await.unwrap()),
        [("bob@corp.example".to_owned(), false)]
    );
    idp.set_account(account("bob@gmail.com", json!(true)));
    assert_eq!(
        emails(&login(&idp, &p).await.unwrap()),
        [("bob@gmail.com".to_owned(), true)]
    );
    let mut workspace = account("bob@corp.example", json!(true));
    workspace
        .extra_claims
        .insert("hd".into(), json!("corp.example"));
    idp.set_account(workspace);
    assert_eq!(
        emails(&login(&idp, &p).await.unwrap()),
        [("bob@corp.example".to_owned(), true)]
    );
    // Google needs no UserInfo call: everything is in the signed ID token.
    assert_eq!(idp.userinfo_calls(), 0);
}

#[tokio::test]
async fn a17_apple_uses_form_post_and_its_string_true() {
    let idp = FakeIdp::start().await;
    let p = provider("apple", idp.preset_settings(Preset::Apple));
    assert!(p.uses_form_post());
    let request = p.authorization_request().await.unwrap();
    assert_eq!(param(&request.url, "response_mode"), ["form_post"]);
    assert_eq!(param(&request.url, "scope"), ["openid email name"]);
    idp.set_account(account("x1y2@privaterelay.appleid.com", json!("true")));
    let redirect = idp.authorize(&request.url).await;
    let identity = p
        .complete(redirect.callback_params(), &request.expected_flow())
        .await
        .unwrap();
    assert_eq!(
        emails(&identity),
        [("x1y2@privaterelay.appleid.com".to_owned(), true)]
    );
}

#[tokio::test]
async fn c09_apple_private_relay_without_verification_never_counts() {
    let idp = FakeIdp::start().await;
    let p = provider("apple", idp.preset_settings(Preset::Apple));
    let mut relay = account("x1y2@privaterelay.appleid.com", json!("false"));
    relay
        .extra_claims
        .insert("is_private_email".into(), json!("true"));
    idp.set_account(relay);
    let identity = login(&idp, &p).await.unwrap();
    assert_eq!(identity.verified_emails().count(), 0);
}

#[tokio::test]
async fn c10_apple_login_without_email_resolves_by_sub() {
    let idp = FakeIdp::start().await;
    let p = provider("apple", idp.preset_settings(Preset::Apple));
    idp.set_account(FakeAccount {
        email: None,
        email_verified: None,
        ..FakeAccount::default()
    });
    let identity = login(&idp, &p).await.unwrap();
    assert!(identity.emails.is_empty());
    assert_eq!(identity.subject.as_str(), "fake-user-1");
}

const TENANT: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";

/// Entra's multi-tenant endpoint: served under `/common/v2.0`, announcing `{tenantid}`.
async fn entra() -> (FakeIdp, std::sync::Arc<braid_providers::Provider>) {
    let idp = FakeIdp::start_at("/common/v2.0").await;
    idp.set_metadata_issuer(format!("{}/{{tenantid}}/v2.0", idp.base_url()));
    idp.set_advertise_iss_parameter(false);
    let mut settings = ProviderSettings::new(Preset::Microsoft, CLIENT_ID);
    settings.client_secret = Some(braid_core::Secret::new(CLIENT_SECRET));
    settings.upstream_base_url = Some(idp.base_url());
    let p = provider("microsoft", settings);
    (idp, p)
}

fn entra_login(idp: &FakeIdp, tid: &str, iss_tenant: &str) -> LoginScript {
    let mut script = LoginScript::claim(
        "iss",
        json!(format!("{}/{iss_tenant}/v2.0", idp.base_url())),
    );
    script.set_claims.insert("tid".into(), json!(tid));
    script
}

#[tokio::test]
async fn b08_entra_token_iss_must_name_its_own_tid() {
    let (idp, p) = entra().await;
    let ok = login_with(&idp, &p, entra_login(&idp, TENANT, TENANT))
        .await
        .unwrap();
    assert_eq!(ok.issuer, format!("{}/{TENANT}/v2.0", idp.base_url()));
    let other = "00000000-0000-0000-0000-00000000beef";
    let err = login_with(&idp, &p, entra_login(&idp, TENANT, other))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            ProviderError::IdToken(braid_providers::IdTokenError::Issuer)
        ),
        "{err}"
    );
}

#[tokio::test]
async fn c05_entra_email_without_xms_edov_is_unverified() {
    let (idp, p) = entra().await;
    idp.set_account(account("admin@corp.example", json!(true)));
    let identity = login_with(&idp, &p, entra_login(&idp, TENANT, TENANT))
        .await
        .unwrap();
    assert_eq!(
        emails(&identity),
        [("admin@corp.example".to_owned(), false)]
    );
    let mut edov = account("admin@corp.example", json!(true));
    edov.extra_claims.insert("xms_edov".into(), json!(true));
    idp.set_account(edov);
    let identity = login_with(&idp, &p, entra_login(&idp, TENANT, TENANT))
        .await
        .unwrap();
    assert_eq!(emails(&identity), [("admin@corp.example".to_owned(), true)]);
}

#[tokio::test]
async fn c06_entra_upn_is_never_an_email() {
    let (idp, p) = entra().await;
    let mut upn_only = FakeAccount {
        email: None,
        email_verified: None,
        ..FakeAccount::default()
    };
    upn_only.preferred_username = Some("victim@corp.example".into());
    upn_only
        .extra_claims
        .insert("upn".into(), json!("victim@corp.example"));
    upn_only.extra_claims.insert("xms_edov".into(), json!(true));
    idp.set_account(upn_only);
    let identity = login_with(&idp, &p, entra_login(&idp, TENANT, TENANT))
        .await
        .unwrap();
    assert!(identity.emails.is_empty());
    assert_eq!(
        identity.profile.preferred_username.as_deref(),
        Some("victim@corp.example")
    );
}

#[tokio::test]
async fn a10_entra_document_with_a_concrete_foreign_issuer_is_refused() {
    let (idp, p) = entra().await;
    idp.set_metadata_issuer("https://login.evil.example/{tenantid}/v2.0");
    assert!(matches!(
        p.authorization_request().await,
        Err(ProviderError::Metadata(_))
    ));
}

#[tokio::test]
async fn userinfo_is_called_only_when_the_id_token_lacks_the_matching_claims() {
    let idp = FakeIdp::start().await;
    let p = oidc_provider(&idp);
    let identity = login(&idp, &p).await.unwrap();
    assert_eq!(
        idp.userinfo_calls(),
        0,
        "email and email_verified are in the signed ID token"
    );
    assert_eq!(identity.emails[0].email.as_str(), "alice@example.com");

    let script = LoginScript {
        remove_claims: vec!["email".into(), "email_verified".into()],
        ..LoginScript::default()
    };
    let identity = login_with(&idp, &p, script).await.unwrap();
    assert_eq!(idp.userinfo_calls(), 1, "the claims come from UserInfo");
    assert_eq!(identity.emails[0].email.as_str(), "alice@example.com");
    assert!(identity.emails[0].verified);
}

#[tokio::test]
async fn a_verified_phone_only_in_userinfo_is_not_lost_when_the_id_token_has_the_email() {
    let idp = FakeIdp::start().await;
    idp.set_account(FakeAccount {
        phone_number: Some("+1 202 555 0100".into()),
        phone_number_verified: Some(Value::Bool(true)),
        ..FakeAccount::default()
    });
    let mut settings = idp.provider_settings();
    settings.scopes = vec!["phone".into()];
    settings.trust_phone = Some(true);
    let phone_in_userinfo_only = || LoginScript {
        remove_claims: vec!["phone_number".into(), "phone_number_verified".into()],
        ..LoginScript::default()
    };

    let p = support::provider("corp", settings.clone());
    let identity = login_with(&idp, &p, phone_in_userinfo_only())
        .await
        .unwrap();
    assert_eq!(idp.userinfo_calls(), 1, "phone is matched on and missing");
    assert_eq!(identity.phones.len(), 1);
    assert_eq!(identity.phones[0].phone.as_str(), "+12025550100");
    assert!(identity.phones[0].verified);
    assert_eq!(identity.emails[0].email.as_str(), "alice@example.com");

    // When linking compares emails only, the phone is not worth a round trip.
    let all = std::collections::BTreeMap::from([("corp".to_owned(), settings)]);
    let emails_only = braid_providers::ProviderRegistry::with_options(
        &all,
        support::CALLBACK_BASE,
        braid_providers::RegistryOptions {
            matched_claims: braid_providers::MatchedClaims {
                email: true,
                phone: false,
            },
            ..Default::default()
        },
    )
    .unwrap();
    let p = emails_only.get("corp").unwrap();
    login_with(&idp, &p, phone_in_userinfo_only())
        .await
        .unwrap();
    assert_eq!(idp.userinfo_calls(), 1, "no second UserInfo call");
}
