//! I-JSON (RFC 7493 §2.3): every JSON document from upstream with a member named twice in one
//! object, at any depth, ends the sign-in, whichever document it is.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use braid_core::Secret;
use braid_providers::testing::{FakeIdp, LoginScript, RepeatMember};
use braid_providers::{
    CallbackParams, Document, IdTokenError, Preset, ProviderError, ProviderSettings,
};
use serde_json::json;
use support::{login, login_with, oidc_provider, provider};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

fn refused_document(result: Result<impl std::fmt::Debug, ProviderError>) -> Document {
    match result {
        Err(e) => e
            .duplicate_member_in()
            .unwrap_or_else(|| panic!("expected a repeated-member refusal, got {e}")),
        Ok(ok) => panic!("expected a repeated-member refusal, got {ok:?}"),
    }
}

fn repeat(r: RepeatMember) -> LoginScript {
    LoginScript {
        repeat_member: Some(r),
        ..LoginScript::default()
    }
}

#[tokio::test]
async fn a_discovery_document_with_a_repeated_issuer_is_refused() {
    let idp = FakeIdp::start().await;
    idp.repeat_member_in_metadata(RepeatMember::top(
        Document::Discovery,
        r#""issuer":"https://evil.example""#,
    ));
    let p = oidc_provider(&idp);
    assert_eq!(
        refused_document(p.authorization_request().await),
        Document::Discovery
    );
    assert_eq!(idp.authorize_calls(), 0);
    assert_eq!(p.status(), braid_providers::ProviderStatus::Misconfigured);
}

#[tokio::test]
async fn a_key_set_with_a_key_that_names_a_member_twice_is_refused() {
    let idp = FakeIdp::start().await;
    // Inside the first key of "keys": a nested object.
    idp.repeat_member_in_metadata(RepeatMember::top(Document::KeySet, r#""kid":"other""#));
    let p = oidc_provider(&idp);
    assert_eq!(
        refused_document(p.authorization_request().await),
        Document::KeySet
    );
}

#[tokio::test]
async fn a_token_response_with_a_repeated_member_is_refused() {
    let idp = FakeIdp::start().await;
    let p = oidc_provider(&idp);
    let script = repeat(RepeatMember::top(
        Document::TokenResponse,
        r#""token_type":"mac""#,
    ));
    assert_eq!(
        refused_document(login_with(&idp, &p, script).await),
        Document::TokenResponse
    );
}

#[tokio::test]
async fn a_signed_id_token_with_a_repeated_header_member_is_refused() {
    let idp = FakeIdp::start().await;
    let p = oidc_provider(&idp);
    let script = repeat(RepeatMember::top(Document::IdTokenHeader, r#""kid":"x""#));
    assert!(matches!(
        login_with(&idp, &p, script).await,
        Err(ProviderError::IdToken(IdTokenError::DuplicateMember(
            Document::IdTokenHeader
        )))
    ));
}

#[tokio::test]
async fn a_signed_id_token_whose_claims_say_email_verified_twice_is_refused() {
    let idp = FakeIdp::start().await;
    let p = oidc_provider(&idp);
    // A first-wins reader sees false, a last-wins reader true: nobody is linked on that.
    let script = repeat(RepeatMember::top(
        Document::IdTokenClaims,
        r#""email_verified":false"#,
    ));
    assert_eq!(
        refused_document(login_with(&idp, &p, script).await),
        Document::IdTokenClaims
    );
    // The same provider without the repeat still signs in.
    login(&idp, &p).await.unwrap();
}

#[tokio::test]
async fn a_repeated_member_nested_in_an_id_token_claim_is_refused() {
    let idp = FakeIdp::start().await;
    let p = oidc_provider(&idp);
    let mut script = repeat(RepeatMember::inside(
        Document::IdTokenClaims,
        "address",
        r#""country":"FR""#,
    ));
    script
        .set_claims
        .insert("address".into(), json!({"country": "DE"}));
    assert_eq!(
        refused_document(login_with(&idp, &p, script).await),
        Document::IdTokenClaims
    );
}

#[tokio::test]
async fn a_userinfo_response_with_a_repeated_sub_is_refused() {
    let idp = FakeIdp::start().await;
    let p = oidc_provider(&idp);
    let mut script = repeat(RepeatMember::top(
        Document::UserInfo,
        r#""sub":"someone-else""#,
    ));
    // Without the email in the ID token, Braid asks UserInfo.
    script.remove_claims = vec!["email".into(), "email_verified".into()];
    assert_eq!(
        refused_document(login_with(&idp, &p, script).await),
        Document::UserInfo
    );
    assert_eq!(idp.userinfo_calls(), 1);
}

#[tokio::test]
async fn a_github_email_entry_that_says_verified_twice_is_refused() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/login/oauth/access_token"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"access_token": "t", "token_type": "bearer"})),
        )
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/api/v3/user"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"id": 42, "login": "a"})))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/api/v3/user/emails"))
        .respond_with(ResponseTemplate::new(200).set_body_raw(
            r#"[{"email":"victim@example.com","verified":false,"primary":true,"verified":true}]"#,
            "application/json",
        ))
        .mount(&server)
        .await;
    let mut s = ProviderSettings::new(Preset::Github, "client-1");
    s.client_secret = Some(Secret::new("secret-1"));
    s.base_url = Some(server.uri());
    let p = provider("github", s);
    let request = p.authorization_request().await.unwrap();
    let result = p
        .complete(
            CallbackParams {
                code: "the-code".into(),
                iss: None,
            },
            &request.expected_flow(),
        )
        .await;
    assert_eq!(refused_document(result), Document::ProfileApi);
}
