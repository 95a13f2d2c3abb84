//! Failures the app can act on: once the client and its redirect URI are checked, a failed
//! sign-in goes back to the app (303) with RFC 6749 `error`, Braid's `error_code`, `state` and
//! `iss` — or, for a client with `errors = "page"`, ends on Braid's page as before. Before the
//! client is known (or without this browser's flow), it is always Braid's page.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use braid_http::Settings;
use braid_http::settings::{ErrorDisplay, OnAmbiguity};
use support::flow::*;
use support::link::*;

fn redirect_errors(s: &mut Settings) {
    s.clients.get_mut(CLIENT_ID).unwrap().errors = ErrorDisplay::Redirect;
}

/// A 303 to the app's redirect URI with the failure, the app's state and Braid's issuer.
fn assert_back_at_app(env: &Env, landing: &Landing, error: &str, error_code: &str) {
    assert_eq!(landing.status, 303, "{}", landing.body);
    let to = landing.location.as_ref().unwrap();
    assert!(to.as_str().starts_with(REDIRECT_URI), "{to}");
    assert_eq!(landing.param("error").as_deref(), Some(error), "{to}");
    assert_eq!(
        landing.param("error_code").as_deref(),
        Some(error_code),
        "{to}"
    );
    assert_eq!(landing.param("state").as_deref(), Some("app-state-1"));
    assert_eq!(landing.param("iss"), Some(env.app.address.clone()));
    assert!(landing.param("error_description").is_some());
    assert_eq!(landing.param("code"), None);
}

fn assert_page(landing: &Landing, status: u16, error_code: &str) {
    assert_eq!(landing.status, status, "{}", landing.body);
    assert_eq!(landing.location, None);
    assert!(
        landing
            .body
            .contains(&format!("(Error code: {error_code})")),
        "{}",
        landing.body
    );
}

/// The provider sends the browser back with `error` (and a description of its own).
async fn refused_upstream(env: &Env, error: &str) -> Landing {
    let upstream = env.start_default().await;
    let state = query_param(&upstream, "state").unwrap();
    let path = format!(
        "/auth/connect/idp/callback?error={error}&error_description={}&state={}",
        enc("upstream says <b>no</b> secret-123"),
        enc(&state)
    );
    land(env.app.client.get(env.url(&path)).send().await.unwrap()).await
}

#[tokio::test]
async fn cancelled_at_the_provider_goes_back_to_the_app_as_access_denied() {
    let env = env_with(redirect_errors).await;
    let landing = refused_upstream(&env, "access_denied").await;
    assert_back_at_app(&env, &landing, "access_denied", "cancelled");
    let description = landing.param("error_description").unwrap();
    assert!(!description.contains("upstream"), "{description}");
    assert!(!description.contains("secret"), "{description}");
    let series = r#"braid_federated_logins_total{outcome="provider_refused",provider="idp"}"#;
    assert_eq!(env.metric(series).await, Some(1.0));
}

#[tokio::test]
async fn a_provider_refusal_goes_back_as_provider_refused_and_its_outage_as_unavailable() {
    let env = env_with(redirect_errors).await;
    let refused = refused_upstream(&env, "invalid_scope").await;
    assert_back_at_app(&env, &refused, "access_denied", "provider_refused");
    let down = refused_upstream(&env, "temporarily_unavailable").await;
    assert_back_at_app(
        &env,
        &down,
        "temporarily_unavailable",
        "provider_unavailable",
    );
}

#[tokio::test]
async fn with_errors_page_the_same_refusal_ends_on_braids_page() {
    let env = env().await;
    let landing = refused_upstream(&env, "access_denied").await;
    assert_page(&landing, 400, "cancelled");
}

#[tokio::test]
async fn a_misconfigured_provider_goes_back_as_server_error() {
    let configure = |s: &mut Settings| {
        redirect_errors(s);
        let p = s.federated_login.providers.get_mut("idp").unwrap();
        p.client_secret = Some(braid_core::Secret::new("not-the-registered-secret"));
    };
    let env = env_with(configure).await;
    let landing = env.login().await;
    assert_back_at_app(&env, &landing, "server_error", "provider_misconfigured");
    assert_eq!(env.count("users"), 0);

    let env = env_with(|s| {
        let p = s.federated_login.providers.get_mut("idp").unwrap();
        p.client_secret = Some(braid_core::Secret::new("not-the-registered-secret"));
    })
    .await;
    assert_page(&env.login().await, 502, "provider_misconfigured");
}

#[tokio::test]
async fn an_unreachable_provider_at_the_start_goes_back_as_temporarily_unavailable() {
    let add_down = |s: &mut Settings| {
        let mut down = s.federated_login.providers["idp"].clone();
        down.issuer = Some("http://127.0.0.1:9".into());
        s.federated_login.providers.insert("down".into(), down);
    };
    let env = env_with(|s| {
        redirect_errors(s);
        add_down(s);
    })
    .await;
    let path = format!(
        "/auth/connect/down?client_id={CLIENT_ID}&redirect_uri={}&state=app-state-1",
        enc(REDIRECT_URI)
    );
    let landing = land(env.app.client.get(env.url(&path)).send().await.unwrap()).await;
    assert_back_at_app(
        &env,
        &landing,
        "temporarily_unavailable",
        "provider_unavailable",
    );

    let env = env_with(add_down).await;
    let landing = land(env.app.client.get(env.url(&path)).send().await.unwrap()).await;
    assert_page(&landing, 502, "provider_unavailable");
}

#[tokio::test]
async fn a_disabled_user_and_a_link_only_provider_go_back_with_their_codes() {
    let env = env_with(redirect_errors).await;
    let tokens = env.tokens_for("sub-1", "alice@example.com", true).await;
    let user = env.user_of(&tokens).await;
    env.app.db.execute(&format!(
        "UPDATE users SET disabled = TRUE WHERE id = '{user}'"
    ));
    let landing = env.login_as("sub-1", "alice@example.com", true).await;
    assert_back_at_app(&env, &landing, "access_denied", "user_disabled");

    let env = env_with(|s| {
        redirect_errors(s);
        s.federated_login
            .providers
            .get_mut("idp")
            .unwrap()
            .link_only = true;
    })
    .await;
    let landing = env.login().await;
    assert_back_at_app(&env, &landing, "access_denied", "link_only_provider");
}

fn user(env: &Env, email: &str, verified: bool) {
    user_with(env, Some((email, verified)), None);
}

#[tokio::test]
async fn an_ambiguous_match_goes_back_as_link_conflict_and_its_page_keeps_409() {
    for errors in [ErrorDisplay::Redirect, ErrorDisplay::Page] {
        let env = env_with(|s| {
            s.account_linking.on_ambiguity = OnAmbiguity::Conflict;
            s.clients.get_mut(CLIENT_ID).unwrap().errors = errors;
        })
        .await;
        user(&env, "shared@example.com", true);
        user(&env, "shared@example.com", false);
        let landing = env.login_as("sub-1", "shared@example.com", true).await;
        match errors {
            ErrorDisplay::Redirect => {
                assert_back_at_app(&env, &landing, "access_denied", "link_conflict")
            }
            ErrorDisplay::Page => assert_page(&landing, 409, "link_conflict"),
        }
        assert_eq!(env.count("exchange_codes"), 0);
    }
}

#[tokio::test]
async fn a_replayed_callback_goes_back_as_flow_expired_and_a_wrong_state_as_flow_mismatch() {
    let env = env_with(redirect_errors).await;
    let upstream = env.start_default().await;
    let back = env.idp.authorize(&upstream).await;
    let cookie = env.app.flow_cookie();
    env.follow(&back.location).await.code();
    let replay = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .get(env.url(&back.location[url::Position::BeforePath..]))
        .header("cookie", format!("braid_flow={cookie}"))
        .send()
        .await
        .unwrap();
    assert_back_at_app(&env, &land(replay).await, "access_denied", "flow_expired");

    // A new sign-in in this browser, answered with a state that is not its own.
    env.start_default().await;
    let path = "/auth/connect/idp/callback?code=x&state=not-this-flows-state";
    let landing = land(env.app.client.get(env.url(path)).send().await.unwrap()).await;
    assert_back_at_app(&env, &landing, "access_denied", "flow_mismatch");
    assert_eq!(
        env.idp.token_calls(),
        1,
        "only the first login reached upstream"
    );
}

#[tokio::test]
async fn a_callback_without_this_browsers_flow_never_redirects_to_the_query() {
    let env = env_with(redirect_errors).await;
    let path = format!(
        "/auth/connect/idp/callback?error=access_denied&state=s&redirect_uri={}&client_id={CLIENT_ID}",
        enc(REDIRECT_URI)
    );
    let landing = land(env.app.client.get(env.url(&path)).send().await.unwrap()).await;
    assert_page(&landing, 400, "flow_expired");
    assert!(landing.body.contains("Sign-in failed"));
}

#[tokio::test]
async fn an_unknown_provider_in_a_sign_in_link_is_braids_html_page_and_api_paths_stay_json() {
    let env = env_with(redirect_errors).await;
    let path = format!(
        "/auth/connect/gogle?client_id={CLIENT_ID}&redirect_uri={}",
        enc(REDIRECT_URI)
    );
    let r = env.app.client.get(env.url(&path)).send().await.unwrap();
    assert_eq!(r.status(), 404);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    assert!(r.text().await.unwrap().contains("no such sign-in method"));

    let r = env
        .app
        .client
        .get(env.url("/auth/nothing"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    assert_eq!(r.headers()["content-type"], "application/problem+json");
}

#[tokio::test]
async fn an_expired_manual_link_goes_back_as_flow_expired() {
    let env = env_with(|s| {
        manual(s);
        redirect_errors(s);
    })
    .await;
    create_user(&env, "alice@example.com", None);
    let page = env.at_select("sub-1", "alice@example.com").await;
    env.app.db.execute("UPDATE link_flows SET expires_at = 1");
    let landing = env
        .post_form(SELECT, &[("csrf", &csrf(&page)), ("choice", "0")])
        .await;
    assert_back_at_app(&env, &landing, "access_denied", "flow_expired");
    // The browser's link state is gone: the page now has nothing to go back to.
    let again = env.get_page(SELECT).await;
    assert_page(&again, 400, "flow_expired");
}

#[tokio::test]
async fn too_many_wrong_codes_go_back_as_too_many_attempts() {
    let env = env_with(|s| {
        manual(s);
        redirect_errors(s);
    })
    .await;
    create_user(&env, "alice@example.com", None);
    let page = env.at_verify("sub-1", "alice@example.com").await;
    let code = sent_codes(&env).pop().unwrap();
    let wrong = if code == "000000" { "111111" } else { "000000" };
    for _ in 0..4 {
        assert_eq!(env.enter_code(&page, wrong).await.status, 400);
    }
    let fifth = env.enter_code(&page, wrong).await;
    assert_back_at_app(&env, &fifth, "access_denied", "too_many_attempts");
    assert_eq!(env.count("identities"), 0);
}

#[tokio::test]
async fn an_account_that_can_no_longer_take_the_link_goes_back_as_link_conflict() {
    for errors in [ErrorDisplay::Redirect, ErrorDisplay::Page] {
        let env = env_with(|s| {
            manual(s);
            s.clients.get_mut(CLIENT_ID).unwrap().errors = errors;
        })
        .await;
        let user = create_user(&env, "alice@example.com", None);
        let page = env.at_verify("sub-1", "alice@example.com").await;
        let code = sent_codes(&env).pop().unwrap();
        env.app.db.execute(&format!(
            "UPDATE users SET disabled = TRUE WHERE id = '{user}'"
        ));
        let landing = env.enter_code(&page, &code).await;
        match errors {
            ErrorDisplay::Redirect => {
                assert_back_at_app(&env, &landing, "access_denied", "link_conflict")
            }
            ErrorDisplay::Page => assert_page(&landing, 409, "link_conflict"),
        }
        assert_eq!(env.count("identities"), 0);
    }
}

#[tokio::test]
async fn cancelling_the_account_choice_goes_back_with_error_code_cancelled() {
    let env = env_with(manual).await;
    create_user(&env, "alice@example.com", None);
    let page = env.at_select("sub-1", "alice@example.com").await;
    let landing = env
        .post_form(SELECT, &[("csrf", &csrf(&page)), ("choice", "cancel")])
        .await;
    assert_back_at_app(&env, &landing, "access_denied", "cancelled");
}
