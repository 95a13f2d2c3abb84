//! GitHub, GitLab, Discord and Facebook (plain OAuth 2.0) against wiremock doubles of their
//! token endpoints and profile APIs, and GitHub Enterprise Server and self-managed GitLab
//! reached through `base_url`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use braid_core::{FederatedIdentity, Secret};
use braid_providers::{CallbackParams, Preset, Provider, ProviderError, ProviderSettings};
use serde_json::{Value, json};
use std::sync::Arc;
use support::provider;
use wiremock::matchers::{body_string_contains, header, header_exists, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const TOKEN: &str = "upstream-access-token";

fn client(preset: Preset) -> ProviderSettings {
    let mut s = ProviderSettings::new(preset, "client-1");
    s.client_secret = Some(Secret::new("secret-1"));
    s
}

/// The public service's paths, moved onto `server` by the test seam.
fn settings(preset: Preset, server: &MockServer) -> ProviderSettings {
    let mut s = client(preset);
    s.upstream_base_url = Some(server.uri());
    s
}

/// An Enterprise Server or self-managed instance at `base_url`, as an operator configures it.
fn self_hosted(preset: Preset, base_url: String) -> ProviderSettings {
    let mut s = client(preset);
    s.base_url = Some(base_url);
    s
}

/// The paths `server` was asked for, in order.
async fn paths_called(server: &MockServer) -> Vec<String> {
    let received = server.received_requests().await.unwrap();
    received.iter().map(|r| r.url.path().to_owned()).collect()
}

async fn mount_token(server: &MockServer, token_path: &str) {
    Mock::given(method("POST"))
        .and(path(token_path))
        .and(body_string_contains("grant_type=authorization_code"))
        .and(body_string_contains("code=the-code"))
        .and(body_string_contains("code_verifier="))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "access_token": TOKEN, "token_type": "bearer", "scope": "x"
        })))
        .expect(1)
        .mount(server)
        .await;
}

async fn mount_json(server: &MockServer, api_path: &str, body: Value) {
    Mock::given(method("GET"))
        .and(path(api_path))
        .and(header("authorization", format!("Bearer {TOKEN}").as_str()))
        .respond_with(ResponseTemplate::new(200).set_body_json(body))
        .mount(server)
        .await;
}

async fn login(p: &Arc<Provider>) -> Result<FederatedIdentity, ProviderError> {
    support::login_with_the_code(p).await
}

fn emails(identity: &FederatedIdentity) -> Vec<(String, bool)> {
    identity
        .emails
        .iter()
        .map(|e| (e.email.as_str().to_owned(), e.verified))
        .collect()
}

async fn github(server: &MockServer, user: Value, emails: Option<Value>) -> Arc<Provider> {
    mount_token(server, "/login/oauth/access_token").await;
    mount_github_api(server, "", user, emails).await;
    provider("github", settings(Preset::Github, server))
}

/// GitHub's `/user` and `/user/emails` under `api_root` (`/api/v3` on Enterprise Server).
async fn mount_github_api(server: &MockServer, api_root: &str, user: Value, emails: Option<Value>) {
    Mock::given(method("GET"))
        .and(path(format!("{api_root}/user")))
        .and(header("accept", "application/vnd.github+json"))
        .and(header_exists("user-agent"))
        .and(header("authorization", format!("Bearer {TOKEN}").as_str()))
        .respond_with(ResponseTemplate::new(200).set_body_json(user))
        .mount(server)
        .await;
    let emails_response = match emails {
        Some(list) => ResponseTemplate::new(200).set_body_json(list),
        None => {
            ResponseTemplate::new(403).set_body_json(json!({"message": "Resource not accessible"}))
        }
    };
    Mock::given(method("GET"))
        .and(path(format!("{api_root}/user/emails")))
        .respond_with(emails_response)
        .mount(server)
        .await;
}

#[tokio::test]
async fn a11_plain_oauth2_providers_send_pkce_s256() {
    let server = MockServer::start().await;
    for preset in [
        Preset::Github,
        Preset::Gitlab,
        Preset::Discord,
        Preset::Facebook,
    ] {
        let p = provider(preset.name(), settings(preset, &server));
        let request = p.authorization_request().await.unwrap();
        let pairs: Vec<(String, String)> = request.url.query_pairs().into_owned().collect();
        let get = |k: &str| pairs.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
        assert_eq!(
            get("code_challenge_method").as_deref(),
            Some("S256"),
            "{preset:?}"
        );
        assert_eq!(
            get("code_challenge").map(|c| c.len()),
            Some(43),
            "{preset:?}"
        );
        assert_eq!(get("state").as_deref(), Some(request.state.as_str()));
        assert_eq!(request.nonce, None);
        assert_eq!(request.issuer, server.uri());
    }
}

#[tokio::test]
async fn a11_the_verifier_reaches_the_token_endpoint() {
    let server = MockServer::start().await;
    let p = provider("github", settings(Preset::Github, &server));
    let request = p.authorization_request().await.unwrap();
    mount_github_api(&server, "", json!({"id": 1}), Some(json!([]))).await;
    Mock::given(method("POST"))
        .and(path("/login/oauth/access_token"))
        .and(body_string_contains(
            format!("code_verifier={}", request.pkce_verifier).as_str(),
        ))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"access_token": TOKEN, "token_type": "bearer"})),
        )
        .expect(1)
        .named("token request with this flow's verifier")
        .mount(&server)
        .await;
    let callback = CallbackParams {
        code: "the-code".into(),
        iss: None,
    };
    p.complete(callback, &request.expected_flow())
        .await
        .unwrap();
}

#[tokio::test]
async fn c03_github_identity_is_the_numeric_id_not_the_login() {
    let server = MockServer::start().await;
    let p = github(
        &server,
        json!({"id": 583231, "login": "octocat", "name": "The Octocat"}),
        Some(json!([])),
    )
    .await;
    let identity = login(&p).await.unwrap();
    assert_eq!(identity.subject.as_str(), "583231");
    assert_eq!(identity.issuer, server.uri());
    assert_eq!(
        identity.profile.preferred_username.as_deref(),
        Some("octocat")
    );
}

#[tokio::test]
async fn c03_renamed_login_same_id_is_the_same_identity() {
    let first = MockServer::start().await;
    let a = login(
        &github(
            &first,
            json!({"id": 42, "login": "old-name"}),
            Some(json!([])),
        )
        .await,
    )
    .await
    .unwrap();
    let second = MockServer::start().await;
    let b = login(
        &github(
            &second,
            json!({"id": 42, "login": "new-name"}),
            Some(json!([])),
        )
        .await,
    )
    .await
    .unwrap();
    assert_eq!(a.subject, b.subject);
    let third = MockServer::start().await;
    let c = login(
        &github(
            &third,
            json!({"id": 43, "login": "old-name"}),
            Some(json!([])),
        )
        .await,
    )
    .await
    .unwrap();
    assert_ne!(a.subject, c.subject);
}

#[tokio::test]
async fn github_emails_count_only_from_verified_user_emails_entries() {
    let server = MockServer::start().await;
    let p = github(
        &server,
        json!({"id": 1, "email": "public@example.com"}),
        Some(json!([
            {"email": "main@example.com", "verified": true, "primary": true, "visibility": "private"},
            {"email": "old@example.com", "verified": false, "primary": false, "visibility": null},
        ])),
    )
    .await;
    let identity = login(&p).await.unwrap();
    assert_eq!(
        emails(&identity),
        [
            ("main@example.com".to_owned(), true),
            ("old@example.com".to_owned(), false),
            ("public@example.com".to_owned(), false),
        ]
    );
}

#[tokio::test]
async fn github_without_the_email_grant_has_no_verified_email() {
    let server = MockServer::start().await;
    let p = github(
        &server,
        json!({"id": 1, "email": "public@example.com"}),
        None,
    )
    .await;
    let identity = login(&p).await.unwrap();
    assert_eq!(
        emails(&identity),
        [("public@example.com".to_owned(), false)]
    );
}

#[tokio::test]
async fn c11_gitlab_email_is_untrusted_by_default() {
    let server = MockServer::start().await;
    mount_token(&server, "/oauth/token").await;
    mount_json(
        &server,
        "/api/v4/user",
        json!({
            "id": 7, "username": "al", "name": "Al", "email": "al@example.com",
            "confirmed_at": "2024-01-01T00:00:00Z"
        }),
    )
    .await;
    let identity = login(&provider("gitlab", settings(Preset::Gitlab, &server)))
        .await
        .unwrap();
    assert_eq!(identity.subject.as_str(), "7");
    assert_eq!(emails(&identity), [("al@example.com".to_owned(), false)]);
}

#[tokio::test]
async fn c14_gitlab_email_counts_once_the_operator_trusts_it() {
    let server = MockServer::start().await;
    mount_token(&server, "/oauth/token").await;
    mount_json(
        &server,
        "/api/v4/user",
        json!({"id": 7, "email": "al@example.com", "confirmed_at": "2024-01-01T00:00:00Z"}),
    )
    .await;
    let mut s = settings(Preset::Gitlab, &server);
    s.trust_email = Some(true);
    let identity = login(&provider("gitlab", s)).await.unwrap();
    assert_eq!(emails(&identity), [("al@example.com".to_owned(), true)]);
}

#[tokio::test]
async fn c11_discord_unverified_flag_means_unverified() {
    let server = MockServer::start().await;
    mount_token(&server, "/api/oauth2/token").await;
    mount_json(&server, "/api/users/@me", json!({
        "id": "80351110224678912", "username": "nelly", "email": "nelly@example.com", "verified": false
    }))
    .await;
    let identity = login(&provider("discord", settings(Preset::Discord, &server)))
        .await
        .unwrap();
    assert_eq!(identity.subject.as_str(), "80351110224678912");
    assert_eq!(emails(&identity), [("nelly@example.com".to_owned(), false)]);
}

#[tokio::test]
async fn discord_verified_flag_counts() {
    let server = MockServer::start().await;
    mount_token(&server, "/api/oauth2/token").await;
    mount_json(
        &server,
        "/api/users/@me",
        json!({"id": "1", "email": "nelly@example.com", "verified": true}),
    )
    .await;
    let identity = login(&provider("discord", settings(Preset::Discord, &server)))
        .await
        .unwrap();
    assert_eq!(emails(&identity), [("nelly@example.com".to_owned(), true)]);
}

#[tokio::test]
async fn facebook_email_is_unverified_unless_trusted_and_secret_goes_in_the_body() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/oauth/access_token"))
        .and(body_string_contains("client_secret=secret-1"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"access_token": TOKEN, "token_type": "bearer"})),
        )
        .mount(&server)
        .await;
    mount_json(
        &server,
        "/me",
        json!({"id": "10158", "name": "Fay", "email": "fay@example.com"}),
    )
    .await;
    let identity = login(&provider("facebook", settings(Preset::Facebook, &server)))
        .await
        .unwrap();
    assert_eq!(identity.subject.as_str(), "10158");
    assert_eq!(emails(&identity), [("fay@example.com".to_owned(), false)]);
    let received = server.received_requests().await.unwrap();
    let me = received.iter().find(|r| r.url.path() == "/me").unwrap();
    assert_eq!(me.url.query(), Some("fields=id,name,email"));
}

#[tokio::test]
async fn a07_wrong_iss_on_a_plain_oauth2_callback_is_refused_before_the_token_call() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200))
        .expect(0)
        .mount(&server)
        .await;
    let p = provider("github", settings(Preset::Github, &server));
    let request = p.authorization_request().await.unwrap();
    let callback = CallbackParams {
        code: "the-code".into(),
        iss: Some("https://attacker.example".into()),
    };
    let err = p
        .complete(callback, &request.expected_flow())
        .await
        .unwrap_err();
    assert!(matches!(err, ProviderError::IssuerMismatch(_)), "{err}");
}

#[tokio::test]
async fn token_endpoint_error_keeps_only_the_error_code() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/login/oauth/access_token"))
        .respond_with(ResponseTemplate::new(400).set_body_json(json!({
            "error": "invalid_grant", "error_description": "code the-code is <script>bad</script>"
        })))
        .mount(&server)
        .await;
    let p = provider("github", settings(Preset::Github, &server));
    let err = login(&p).await.unwrap_err();
    assert!(matches!(&err, ProviderError::TokenRefused(c) if c == "invalid_grant"));
    let shown = format!("{err} {err:?}");
    assert!(
        !shown.contains("the-code") && !shown.contains("script"),
        "{shown}"
    );
}

#[tokio::test]
async fn profile_api_refusing_the_token_is_a_refused_login_not_an_outage() {
    let server = MockServer::start().await;
    mount_token(&server, "/api/oauth2/token").await;
    Mock::given(method("GET"))
        .and(path("/api/users/@me"))
        .respond_with(ResponseTemplate::new(401))
        .mount(&server)
        .await;
    let err = login(&provider("discord", settings(Preset::Discord, &server)))
        .await
        .unwrap_err();
    assert!(matches!(err, ProviderError::UpstreamStatus(401)), "{err}");
    assert!(!err.is_upstream_unavailable());
}

#[tokio::test]
async fn github_enterprise_server_login_uses_its_login_and_api_v3_endpoints_and_its_own_issuer() {
    let server = MockServer::start().await;
    mount_token(&server, "/login/oauth/access_token").await;
    mount_github_api(
        &server,
        "/api/v3",
        json!({"id": 583231, "login": "octocat", "email": "public@example.com"}),
        Some(json!([
            {"email": "main@example.com", "verified": true, "primary": true, "visibility": "private"},
            {"email": "old@example.com", "verified": false, "primary": false, "visibility": null},
        ])),
    )
    .await;
    let p = provider(
        "ghe",
        self_hosted(Preset::Github, format!("{}/", server.uri())),
    );
    let request = p.authorization_request().await.unwrap();
    let authorize = format!("{}/login/oauth/authorize?", server.uri());
    assert!(
        request.url.as_str().starts_with(&authorize),
        "{}",
        request.url
    );
    let identity = login(&p).await.unwrap();
    assert_eq!(
        paths_called(&server).await,
        [
            "/login/oauth/access_token",
            "/api/v3/user",
            "/api/v3/user/emails"
        ]
    );
    assert_eq!(identity.subject.as_str(), "583231");
    assert_eq!(identity.issuer, server.uri());
    assert_ne!(identity.issuer, "https://github.com");
    assert_eq!(
        emails(&identity),
        [
            ("main@example.com".to_owned(), true),
            ("old@example.com".to_owned(), false),
            ("public@example.com".to_owned(), false),
        ]
    );
}

/// A login against a self-managed GitLab at `{server}{root}`: the paths called and the identity.
async fn self_managed_gitlab_login(root: &str) -> (Vec<String>, FederatedIdentity) {
    let server = MockServer::start().await;
    mount_token(&server, &format!("{root}/oauth/token")).await;
    mount_json(
        &server,
        &format!("{root}/api/v4/user"),
        json!({"id": 7, "username": "al", "email": "al@example.com", "confirmed_at": "2024-01-01T00:00:00Z"}),
    )
    .await;
    let base_url = format!("{}{root}", server.uri());
    let p = provider("gitlab", self_hosted(Preset::Gitlab, base_url.clone()));
    let request = p.authorization_request().await.unwrap();
    assert_eq!(request.url.path(), format!("{root}/oauth/authorize"));
    let identity = login(&p).await.unwrap();
    assert_eq!(identity.issuer, base_url);
    (paths_called(&server).await, identity)
}

#[tokio::test]
async fn self_managed_gitlab_login_uses_its_oauth_and_api_v4_endpoints_and_its_own_issuer() {
    let (paths, identity) = self_managed_gitlab_login("").await;
    assert_eq!(paths, ["/oauth/token", "/api/v4/user"]);
    assert_eq!(identity.subject.as_str(), "7");
    assert_eq!(emails(&identity), [("al@example.com".to_owned(), false)]);
}

#[tokio::test]
async fn self_managed_gitlab_under_a_relative_url_keeps_its_path() {
    let (paths, identity) = self_managed_gitlab_login("/gitlab").await;
    assert_eq!(paths, ["/gitlab/oauth/token", "/gitlab/api/v4/user"]);
    assert_eq!(identity.subject.as_str(), "7");
}
