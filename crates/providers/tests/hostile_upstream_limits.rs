//! SECURITY-CASES H04 (and B17): size caps, timeouts, redirects and 5xx from upstreams.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use braid_core::Secret;
use braid_providers::testing::FakeIdp;
use braid_providers::{
    CallbackParams, HttpClient, HttpLimits, Preset, ProviderError, ProviderRegistry,
    ProviderSettings,
};
use openidconnect::http::Request;
use serde_json::json;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

fn get(url: &str) -> Request<Vec<u8>> {
    Request::builder().uri(url).body(Vec::new()).unwrap()
}

fn github(server: &MockServer) -> ProviderSettings {
    let mut s = ProviderSettings::new(Preset::Github, "client-1");
    s.client_secret = Some(Secret::new("secret-1"));
    s.upstream_base_url = Some(server.uri());
    s
}

#[tokio::test]
async fn h04_body_over_the_cap_announced_by_content_length_is_refused() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200).set_body_string("x".repeat(2 * 1024 * 1024)))
        .mount(&server)
        .await;
    let err = HttpClient::new()
        .unwrap()
        .execute(get(&server.uri()), braid_providers::Document::Discovery)
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            braid_providers::http_client::HttpError::TooLarge { .. }
        ),
        "{err}"
    );
}

#[tokio::test]
async fn h04_chunked_body_is_aborted_as_soon_as_it_passes_the_cap() {
    // A server that streams 64 KiB chunks without a Content-Length, up to 8 MiB.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.unwrap();
        let mut buf = [0u8; 4096];
        let _ = socket.read(&mut buf).await;
        socket
            .write_all(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n")
            .await
            .unwrap();
        let chunk = vec![b'x'; 64 * 1024];
        let mut sent = 0usize;
        for _ in 0..128 {
            let head = format!("{:x}\r\n", chunk.len());
            if socket.write_all(head.as_bytes()).await.is_err()
                || socket.write_all(&chunk).await.is_err()
                || socket.write_all(b"\r\n").await.is_err()
            {
                break;
            }
            sent += chunk.len();
        }
        sent
    });
    let err = HttpClient::new()
        .unwrap()
        .execute(
            get(&format!("http://{addr}/jwks")),
            braid_providers::Document::KeySet,
        )
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            braid_providers::http_client::HttpError::TooLarge { limit: 1_048_576 }
        ),
        "{err}"
    );
    let sent = server.await.unwrap();
    assert!(
        sent < 8 * 1024 * 1024,
        "the client stopped reading: server sent only {sent} bytes"
    );
}

#[tokio::test]
async fn h04_slow_upstream_times_out_as_unavailable() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200).set_delay(Duration::from_secs(3)))
        .mount(&server)
        .await;
    let limits = HttpLimits {
        total_timeout: Duration::from_millis(300),
        ..HttpLimits::default()
    };
    let client = HttpClient::with_limits(limits, None).unwrap();
    let started = Instant::now();
    let err = client
        .execute(get(&server.uri()), braid_providers::Document::Discovery)
        .await
        .unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(2));
    assert!(ProviderError::from(err).is_upstream_unavailable());
}

#[tokio::test]
async fn h04_redirect_from_the_token_endpoint_is_not_followed() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/login/oauth/access_token"))
        .respond_with(
            ResponseTemplate::new(302)
                .insert_header("location", format!("{}/metadata", server.uri()).as_str()),
        )
        .mount(&server)
        .await;
    Mock::given(path("/metadata"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"access_token": "stolen", "token_type": "bearer"})),
        )
        .expect(0)
        .mount(&server)
        .await;
    let p = support::provider("github", github(&server));
    let request = p.authorization_request().await.unwrap();
    let err = p
        .complete(
            CallbackParams {
                code: "c".into(),
                iss: None,
            },
            &request.expected_flow(),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, ProviderError::TokenResponse(_)), "{err}");
    assert!(!err.is_upstream_unavailable());
}

#[tokio::test]
async fn h04_metadata_pointing_at_plain_http_hosts_is_refused() {
    let server = MockServer::start().await;
    let issuer = server.uri();
    Mock::given(path("/.well-known/openid-configuration"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "issuer": issuer,
            "authorization_endpoint": format!("{issuer}/authorize"),
            "token_endpoint": "http://169.254.169.254/latest/meta-data",
            "jwks_uri": format!("{issuer}/jwks"),
            "response_types_supported": ["code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
        })))
        .mount(&server)
        .await;
    Mock::given(path("/jwks"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"keys": []})))
        .mount(&server)
        .await;
    let mut s = ProviderSettings::new(Preset::Oidc, "c");
    s.client_secret = Some(Secret::new("s"));
    s.issuer = Some(issuer);
    let err = support::provider("corp", s)
        .authorization_request()
        .await
        .unwrap_err();
    assert!(matches!(err, ProviderError::Metadata(_)), "{err}");
}

#[tokio::test]
async fn token_endpoint_5xx_is_upstream_unavailable() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(503).set_body_string("maintenance"))
        .mount(&server)
        .await;
    let p = support::provider("github", github(&server));
    let request = p.authorization_request().await.unwrap();
    let err = p
        .complete(
            CallbackParams {
                code: "c".into(),
                iss: None,
            },
            &request.expected_flow(),
        )
        .await
        .unwrap_err();
    assert!(err.is_upstream_unavailable(), "{err}");
}

#[tokio::test]
async fn discovery_unreachable_is_upstream_unavailable_but_404_is_not() {
    // A port nothing listens on.
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = closed.local_addr().unwrap();
    drop(closed);
    let mut s = ProviderSettings::new(Preset::Oidc, "c");
    s.client_secret = Some(Secret::new("s"));
    s.issuer = Some(format!("http://{addr}"));
    let err = support::provider("corp", s.clone())
        .authorization_request()
        .await
        .unwrap_err();
    assert!(err.is_upstream_unavailable(), "{err}");

    let server = MockServer::start().await;
    s.issuer = Some(server.uri());
    let err = support::provider("corp", s)
        .authorization_request()
        .await
        .unwrap_err();
    assert!(matches!(err, ProviderError::Metadata(_)), "{err}");
    assert!(!err.is_upstream_unavailable());
}

#[tokio::test]
async fn b17_the_registry_limits_apply_to_discovery_too() {
    let idp = FakeIdp::start().await;
    let limits = HttpLimits {
        max_body_bytes: 200,
        ..HttpLimits::default()
    };
    let settings = BTreeMap::from([("corp".to_owned(), idp.provider_settings())]);
    let registry = ProviderRegistry::with_options(
        &settings,
        support::CALLBACK_BASE,
        braid_providers::RegistryOptions {
            http_limits: limits,
            ..Default::default()
        },
    )
    .unwrap();
    let err = registry
        .get("corp")
        .unwrap()
        .authorization_request()
        .await
        .unwrap_err();
    assert!(
        matches!(err, ProviderError::ResponseTooLarge { limit: 200 }),
        "{err}"
    );
}
