//! A provider that cannot be used as configured is found before anyone signs in (a background
//! check after start-up, its state at `/metrics`), and a person who tries anyway meets a page
//! that says so; each kind of failed sign-in has its own label and page text.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use braid_providers::Document;
use braid_providers::testing::{LoginScript, RepeatMember};
use support::flow::*;

const READY: &str = r#"braid_provider_status{provider="idp",state="ready"}"#;
const MISCONFIGURED: &str = r#"braid_provider_status{provider="idp",state="misconfigured"}"#;

fn logins(outcome: &str) -> String {
    format!(r#"braid_federated_logins_total{{outcome="{outcome}",provider="idp"}}"#)
}

#[tokio::test]
async fn a_ready_provider_is_checked_in_the_background_and_shown_ready() {
    let env = env().await;
    env.wait_for_metric(READY, 1.0).await;
    assert_eq!(env.metric(MISCONFIGURED).await, Some(0.0));
    assert_eq!(env.idp.discovery_calls(), 1);
    assert_eq!(env.idp.authorize_calls(), 0);
}

#[tokio::test]
async fn a_provider_announcing_another_issuer_is_reported_before_anyone_signs_in() {
    let env = env_with_idp(
        |idp| idp.set_metadata_issuer("https://evil.example"),
        |_| {},
    )
    .await;
    env.wait_for_metric(MISCONFIGURED, 1.0).await;
    assert_eq!(env.metric(READY).await, Some(0.0));
    // Readiness does not wait for providers.
    let ready = env.app.client.get(env.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 200);
    assert_eq!(env.idp.authorize_calls(), 0);
}

#[tokio::test]
async fn a_token_endpoint_that_refuses_braids_client_is_a_misconfiguration() {
    let env = env_with(|s| {
        let p = s.federated_login.providers.get_mut("idp").unwrap();
        p.client_secret = Some(braid_core::Secret::new("not-the-registered-secret"));
    })
    .await;
    let landing = env.login().await;
    assert_eq!(landing.status, 502);
    assert!(landing.body.contains("misconfigured"), "{}", landing.body);
    assert_eq!(
        env.metric(&logins("provider_misconfigured")).await,
        Some(1.0)
    );
    assert_eq!(env.count("users"), 0);
}

#[tokio::test]
async fn a_repeated_member_in_the_id_token_ends_the_sign_in_on_the_refused_page() {
    let env = env().await;
    env.idp.script_next_login(LoginScript {
        repeat_member: Some(RepeatMember::top(
            Document::IdTokenClaims,
            r#""email_verified":false"#,
        )),
        ..LoginScript::default()
    });
    let landing = env.login().await;
    assert_eq!(landing.status, 400);
    assert!(
        landing.body.contains("could not be verified"),
        "{}",
        landing.body
    );
    assert_eq!(env.metric(&logins("invalid_response")).await, Some(1.0));
    assert_eq!(env.count("users"), 0);
    assert_eq!(env.count("exchange_codes"), 0);
}

#[tokio::test]
async fn a_callback_without_its_flow_is_no_flow_with_its_own_label_and_text() {
    let env = env().await;
    let upstream = env.start_default().await;
    let back = env.idp.authorize(&upstream).await;
    let path = &back.location[url::Position::BeforePath..];
    // Another browser: no flow cookie.
    let r = reqwest::Client::new()
        .get(env.url(path))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let page = r.text().await.unwrap();
    assert!(page.contains("was not started in this browser"), "{page}");
    assert_eq!(env.metric(&logins("no_flow")).await, Some(1.0));
    assert_eq!(env.metric(&logins("provider_disabled")).await, None);
    assert_eq!(env.idp.token_calls(), 0);
}
