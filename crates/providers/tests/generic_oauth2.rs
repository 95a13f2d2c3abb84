//! `preset = "oauth2"` against wiremock: the authorization request as configured, the code
//! exchange with each client authentication method, one or several profile URLs, and the
//! mapping's edge cases (missing subject, bad addresses, huge values). GitHub re-expressed as
//! data gives the same identity as the GitHub preset.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use braid_core::{FederatedIdentity, Secret};
use braid_providers::profile_mapping::MappingSettings;
use braid_providers::{
    Preset, Provider, ProviderError, ProviderSettings, ResponseMode, TokenAuthMethod,
};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use support::provider;
use wiremock::matchers::{body_string_contains, header, header_exists, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const TOKEN: &str = "upstream-access-token";

fn mapping(v: Value) -> MappingSettings {
    serde_json::from_value(v).unwrap()
}

fn generic(server: &MockServer, profile_paths: &[&str], map: Value) -> ProviderSettings {
    let mut s = ProviderSettings::new(Preset::Oauth2, "client-1");
    s.client_secret = Some(Secret::new("secret-1"));
    s.authorization_url = Some(format!("{}/oauth/authorize", server.uri()));
    s.token_url = Some(format!("{}/oauth/token", server.uri()));
    s.userinfo_url = profile_paths
        .iter()
        .map(|p| format!("{}{p}", server.uri()))
        .collect();
    s.mapping = Some(mapping(map));
    s
}

async fn mount_token(server: &MockServer) {
    mount_token_at(server, "/oauth/token").await;
}

async fn mount_token_at(server: &MockServer, token_path: &str) {
    Mock::given(method("POST"))
        .and(path(token_path))
        .and(body_string_contains("grant_type=authorization_code"))
        .and(body_string_contains("code=the-code"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "access_token": TOKEN, "token_type": "bearer"
        })))
        .mount(server)
        .await;
}

async fn mount_json(server: &MockServer, api_path: &str, status: u16, body: Value) {
    Mock::given(method("GET"))
        .and(path(api_path))
        .and(header("authorization", format!("Bearer {TOKEN}").as_str()))
        .respond_with(ResponseTemplate::new(status).set_body_json(body))
        .mount(server)
        .await;
}

async fn login(p: &Provider) -> Result<FederatedIdentity, ProviderError> {
    support::login_with_the_code(p).await
}

async fn request_query(p: &Provider) -> BTreeMap<String, Vec<String>> {
    let request = p.authorization_request().await.unwrap();
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (k, v) in request.url.query_pairs() {
        out.entry(k.into_owned()).or_default().push(v.into_owned());
    }
    out
}

fn one<'a>(q: &'a BTreeMap<String, Vec<String>>, k: &str) -> Option<&'a str> {
    match q.get(k).map(Vec::as_slice) {
        Some([v]) => Some(v.as_str()),
        None => None,
        Some(many) => panic!("{k} sent {} times", many.len()),
    }
}

#[tokio::test]
async fn a11_a21_the_authorization_request_is_built_as_configured() {
    let server = MockServer::start().await;
    let mut s = generic(&server, &["/me"], json!({"subject": "/id"}));
    s.scopes = vec!["identify".into(), "email".into()];
    s.scope_separator = Some(",".into());
    s.authorization_params = BTreeMap::from([
        ("access_type".to_owned(), "offline".to_owned()),
        ("prompt".to_owned(), "consent".to_owned()),
    ]);
    let p = provider("acme", s);
    let q = request_query(&p).await;
    assert_eq!(one(&q, "response_type"), Some("code"));
    assert_eq!(one(&q, "client_id"), Some("client-1"));
    assert_eq!(
        one(&q, "redirect_uri"),
        Some("https://braid.example/auth/connect/acme/callback")
    );
    assert_eq!(one(&q, "scope"), Some("identify,email"));
    assert_eq!(one(&q, "access_type"), Some("offline"));
    assert_eq!(one(&q, "prompt"), Some("consent"));
    assert_eq!(one(&q, "code_challenge_method"), Some("S256"));
    assert_eq!(one(&q, "code_challenge").map(str::len), Some(43));
    assert_eq!(one(&q, "response_mode"), None);
    assert!(!p.uses_form_post());
}

#[tokio::test]
async fn a21_only_allow_listed_start_parameters_with_sane_values_are_forwarded() {
    let server = MockServer::start().await;
    let mut s = generic(&server, &["/me"], json!({"subject": "/id"}));
    s.forward_params = vec!["login_hint".into()];
    let p = provider("acme", s);
    let forwarded = |hint: &'static str| {
        let p = p.clone();
        async move {
            let request = p
                .authorization_request_forwarding(|name| match name {
                    "login_hint" => Some(hint),
                    "prompt" => Some("none"),
                    _ => None,
                })
                .await
                .unwrap();
            let q: Vec<(String, String)> = request.url.query_pairs().into_owned().collect();
            assert!(!q.iter().any(|(k, _)| k == "prompt"));
            q.into_iter()
                .find(|(k, _)| k == "login_hint")
                .map(|(_, v)| v)
        }
    };
    assert_eq!(
        forwarded("ann@example.com").await.as_deref(),
        Some("ann@example.com")
    );
    assert_eq!(forwarded("").await, None);
    assert_eq!(forwarded("ann@example.com\r\nx").await, None);
    assert_eq!(forwarded("\u{7f}").await, None);
    let p = provider(
        "acme",
        generic(&server, &["/me"], json!({"subject": "/id"})),
    );
    let request = p
        .authorization_request_forwarding(|_| Some("ann@example.com"))
        .await
        .unwrap();
    assert!(
        !request.url.as_str().contains("login_hint"),
        "not allow-listed"
    );
}

#[tokio::test]
async fn response_mode_form_post_is_asked_for_and_the_callback_is_posted() {
    let server = MockServer::start().await;
    let mut s = generic(&server, &["/me"], json!({"subject": "/id"}));
    s.response_mode = Some(ResponseMode::FormPost);
    let p = provider("acme", s);
    assert!(p.uses_form_post());
    assert_eq!(
        one(&request_query(&p).await, "response_mode"),
        Some("form_post")
    );
}

#[tokio::test]
async fn the_generic_provider_signs_in_with_the_mapped_claims() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/oauth/token"))
        .and(header_exists("authorization"))
        .and(body_string_contains("code_verifier="))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "access_token": TOKEN, "token_type": "Bearer"
        })))
        .expect(1)
        .mount(&server)
        .await;
    mount_json(
        &server,
        "/api/profile",
        200,
        json!({"data": {"uid": "u-42", "mail": " Ada@Example.COM ", "mail_ok": true,
                "display": "Ada", "handle": "ada", "avatar": "https://cdn.example/a.png",
                "tel": "+12025550100"}}),
    )
    .await;
    let mut s = generic(
        &server,
        &["/api/profile"],
        json!({"subject": "/data/uid", "email": "/data/mail", "email_verified": "/data/mail_ok",
               "phone": "/data/tel", "name": "/data/display", "username": "/data/handle",
               "picture": "/data/avatar"}),
    );
    s.trust_email = Some(true);
    let identity = login(&provider("acme", s)).await.unwrap();
    assert_eq!(identity.subject.as_str(), "u-42");
    assert_eq!(identity.issuer, server.uri());
    assert_eq!(identity.emails.len(), 1);
    assert_eq!(identity.emails[0].email.as_str(), "ada@example.com");
    assert!(identity.emails[0].verified);
    assert_eq!(identity.phones[0].phone.as_str(), "+12025550100");
    assert!(
        !identity.phones[0].verified,
        "trust_phone is off by default"
    );
    assert_eq!(identity.profile.name.as_deref(), Some("Ada"));
    assert_eq!(identity.profile.preferred_username.as_deref(), Some("ada"));
    assert_eq!(
        identity.profile.picture.as_deref(),
        Some("https://cdn.example/a.png")
    );
}

#[tokio::test]
async fn c14_addresses_of_an_untrusted_generic_provider_never_count_as_verified() {
    let server = MockServer::start().await;
    mount_token(&server).await;
    mount_json(
        &server,
        "/me",
        200,
        json!({"id": 1, "email": "a@example.com", "verified": true}),
    )
    .await;
    let s = generic(
        &server,
        &["/me"],
        json!({"subject": "/id", "email": "/email", "email_verified": "/verified"}),
    );
    let identity = login(&provider("acme", s)).await.unwrap();
    assert!(!identity.emails[0].verified);
    assert!(identity.emails[0].provider_verified);
}

#[tokio::test]
async fn a_profile_without_the_mapped_subject_refuses_the_sign_in() {
    let server = MockServer::start().await;
    mount_token(&server).await;
    mount_json(
        &server,
        "/me",
        200,
        json!({"login": "ada", "email": "a@example.com"}),
    )
    .await;
    let s = generic(
        &server,
        &["/me"],
        json!({"subject": "/id", "email": "/email"}),
    );
    let err = login(&provider("acme", s)).await.unwrap_err();
    assert!(matches!(err, ProviderError::UserInfo(_)), "{err:?}");
    assert!(err.to_string().contains("no subject"), "{err}");
}

#[tokio::test]
async fn h05_bad_mapped_addresses_are_dropped_and_huge_values_bounded() {
    let server = MockServer::start().await;
    mount_token(&server).await;
    mount_json(
        &server,
        "/me",
        200,
        json!({"id": 7, "email": "victim@example.com,attacker@evil.example",
               "name": "x".repeat(50_000), "avatar": "javascript:alert(1)"}),
    )
    .await;
    let mut s = generic(
        &server,
        &["/me"],
        json!({"subject": "/id", "email": "/email", "name": "/name", "picture": "/avatar"}),
    );
    s.trust_email = Some(true);
    let identity = login(&provider("acme", s)).await.unwrap();
    assert!(identity.emails.is_empty());
    assert!(identity.profile.name.unwrap().len() <= 1024);
    assert_eq!(identity.profile.picture, None);
}

#[tokio::test]
async fn a_public_client_without_pkce_sends_neither_secret_nor_verifier() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/oauth/token"))
        .and(body_string_contains("client_id=client-1"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "access_token": TOKEN, "token_type": "bearer"
        })))
        .expect(1)
        .mount(&server)
        .await;
    mount_json(&server, "/me", 200, json!({"id": "x"})).await;
    let mut s = generic(&server, &["/me"], json!({"subject": "/id"}));
    s.client_secret = None;
    s.token_endpoint_auth_method = Some(TokenAuthMethod::None);
    s.pkce = Some(false);
    let p = provider("acme", s);
    let q = request_query(&p).await;
    assert_eq!(one(&q, "code_challenge"), None);
    assert_eq!(one(&q, "code_challenge_method"), None);
    login(&p).await.unwrap();
    let token_request = &server.received_requests().await.unwrap()[0];
    let body = String::from_utf8_lossy(&token_request.body);
    assert!(!body.contains("code_verifier"), "{body}");
    assert!(!body.contains("client_secret"), "{body}");
    assert!(token_request.headers.get("authorization").is_none());
}

#[tokio::test]
async fn client_secret_post_sends_the_secret_in_the_body() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/oauth/token"))
        .and(body_string_contains("client_secret=secret-1"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "access_token": TOKEN, "token_type": "bearer"
        })))
        .expect(1)
        .mount(&server)
        .await;
    mount_json(&server, "/me", 200, json!({"id": 3})).await;
    let mut s = generic(&server, &["/me"], json!({"subject": "/id"}));
    s.token_endpoint_auth_method = Some(TokenAuthMethod::ClientSecretPost);
    assert_eq!(
        login(&provider("acme", s)).await.unwrap().subject.as_str(),
        "3"
    );
}

/// GitHub as data: `/user` and `/user/emails`, addresses verified per entry.
fn github_as_data(server: &MockServer) -> ProviderSettings {
    let mut s = generic(
        server,
        &["/user", "/user/emails"],
        json!({"subject": "/0/id", "email": "/1/*/email", "email_verified": "/1/*/verified",
               "name": "/0/name", "username": "/0/login", "picture": "/0/avatar_url"}),
    );
    s.authorization_url = Some(format!("{}/login/oauth/authorize", server.uri()));
    s.token_url = Some(format!("{}/login/oauth/access_token", server.uri()));
    s.scopes = vec!["read:user".into(), "user:email".into()];
    s.trust_email = Some(true);
    s
}

#[tokio::test]
async fn github_re_expressed_as_data_gives_the_presets_identity() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/login/oauth/access_token"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "access_token": TOKEN, "token_type": "bearer"
        })))
        .mount(&server)
        .await;
    mount_json(
        &server,
        "/user",
        200,
        json!({"id": 583231, "login": "octocat", "name": "Mona", "email": "main@example.com",
               "avatar_url": "https://avatars.example/u/583231"}),
    )
    .await;
    mount_json(
        &server,
        "/user/emails",
        200,
        json!([
            {"email": "main@example.com", "verified": true, "primary": true},
            {"email": "old@example.com", "verified": false, "primary": false},
        ]),
    )
    .await;
    let mut preset = ProviderSettings::new(Preset::Github, "client-1");
    preset.client_secret = Some(Secret::new("secret-1"));
    preset.upstream_base_url = Some(server.uri());
    let mut from_code = login(&provider("github", preset.clone())).await.unwrap();
    let mut from_data = login(&provider("github", github_as_data(&server)))
        .await
        .unwrap();
    // The further claims come from each one's own profile document, which differ in shape.
    from_code.profile.extra = Default::default();
    from_data.profile.extra = Default::default();
    assert_eq!(from_data, from_code);
    let preset_q = request_query(&provider("github", preset)).await;
    let data_q = request_query(&provider("github", github_as_data(&server))).await;
    assert_eq!(one(&data_q, "scope"), one(&preset_q, "scope"));
    assert_eq!(
        data_q.keys().collect::<Vec<_>>(),
        preset_q.keys().collect::<Vec<_>>()
    );
}

#[tokio::test]
async fn a_later_profile_url_that_refuses_leaves_its_claims_out() {
    let server = MockServer::start().await;
    mount_token_at(&server, "/login/oauth/access_token").await;
    mount_json(&server, "/user", 200, json!({"id": 9, "login": "al"})).await;
    mount_json(&server, "/user/emails", 403, json!({"message": "no scope"})).await;
    let identity = login(&provider("acme", github_as_data(&server)))
        .await
        .unwrap();
    assert_eq!(identity.subject.as_str(), "9");
    assert!(identity.emails.is_empty());
    // The first one is the profile itself: without it there is no sign-in.
    let server = MockServer::start().await;
    mount_token_at(&server, "/login/oauth/access_token").await;
    mount_json(&server, "/user", 401, json!({})).await;
    let err = login(&provider("acme", github_as_data(&server)))
        .await
        .unwrap_err();
    assert!(matches!(err, ProviderError::UpstreamStatus(401)), "{err:?}");
}
