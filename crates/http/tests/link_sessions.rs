//! The manual link with its state in a server-side session (`sessions.enabled`), in the
//! database (SQLite, PostgreSQL with BRAID_TEST_DATABASE_URL) and in Redis (with
//! BRAID_TEST_REDIS_URL; required when CI=true). SECURITY-CASES E19 and G01.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use braid_http::Settings;
use braid_http::settings::SessionStoreKind;
use reqwest::cookie::CookieStore;
use support::flow::*;
use support::link::*;

const SESSION_COOKIE: &str = "braid_session";

fn database_sessions(s: &mut Settings) {
    manual(s);
    s.sessions.enabled = true;
}

/// The Redis URL of the Redis tests; `None` (and a note) when there is none outside CI.
fn redis_url() -> Option<String> {
    match std::env::var("BRAID_TEST_REDIS_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ if std::env::var("CI").is_ok_and(|v| v == "true") => {
            panic!(
                "CI=true: BRAID_TEST_REDIS_URL must name a Redis server for the Redis session tests"
            )
        }
        _ => {
            eprintln!(
                "skipped: set BRAID_TEST_REDIS_URL (e.g. redis://127.0.0.1:6379) to run the Redis session tests"
            );
            None
        }
    }
}

/// The browser's cookie `name`, as the jar would send it to the select page.
fn cookie(env: &Env, name: &str) -> Option<String> {
    let url = url::Url::parse(&env.url(SELECT)).unwrap();
    let header = env.app.jar.cookies(&url)?;
    header
        .to_str()
        .unwrap()
        .split("; ")
        .find_map(|c| c.strip_prefix(&format!("{name}=")))
        .map(str::to_owned)
}

/// A browser that sends only `cookie` (`name=value`).
async fn post_with_cookie(env: &Env, path: &str, cookie: &str, form: &[(&str, &str)]) -> Landing {
    land(
        reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap()
            .post(env.url(path))
            .header("cookie", cookie)
            .form(form)
            .send()
            .await
            .unwrap(),
    )
    .await
}

/// A whole link by emailed code with the state in the session: no link cookie ever, the
/// session id renewed at the end, and the old id opening nothing afterwards.
async fn a_link_runs_on_the_session(env: &Env) {
    let user = create_user(env, "alice@example.com", None);
    let page = env.at_verify("sub-1", "alice@example.com").await;
    assert_eq!(
        cookie(env, "braid_link"),
        None,
        "no link cookie with sessions on"
    );
    let before = cookie(env, SESSION_COOKIE).expect("a session cookie");
    let code = sent_codes(env).pop().unwrap();
    let done = env.enter_code(&page, &code).await;
    let app_code = assert_redirected_to_app_with_code(&done);
    assert_ne!(
        cookie(env, SESSION_COOKIE).as_deref(),
        Some(before.as_str()),
        "E19: the session id changes at completion"
    );
    let replay = post_with_cookie(
        env,
        VERIFY,
        &format!("{SESSION_COOKIE}={before}"),
        &[("csrf", &csrf(&page)), ("method", "code"), ("code", &code)],
    )
    .await;
    assert_eq!(replay.status, 400, "{}", replay.body);
    assert!(replay.body.contains("has ended"), "{}", replay.body);
    let tokens: serde_json::Value = env.redeem(&app_code).await.json().await.unwrap();
    assert_eq!(env.user_of(&tokens).await, user);
    assert_eq!(env.count("identities"), 1);
    assert_eq!(env.count("exchange_codes"), 1);
}

#[tokio::test]
async fn e19_a_link_with_its_state_in_a_database_session_renews_the_session_id() {
    let env = env_with(database_sessions).await;
    a_link_runs_on_the_session(&env).await;
    assert_eq!(
        env.count("sessions"),
        0,
        "the session held only the link: it ended with it"
    );
}

#[tokio::test]
async fn e19_a_link_with_its_state_in_a_redis_session_renews_the_session_id() {
    let Some(url) = redis_url() else { return };
    let env = env_with(|s| {
        database_sessions(s);
        s.sessions.store = SessionStoreKind::Redis;
        s.sessions.redis_url = Some(url);
    })
    .await;
    a_link_runs_on_the_session(&env).await;
    assert_eq!(env.count("sessions"), 0, "nothing in the database's table");
}

#[tokio::test]
async fn g01_a_planted_session_id_is_replaced_when_a_link_starts_and_opens_nothing() {
    let env = env_with(database_sessions).await;
    create_user(&env, "alice@example.com", None);
    create_user(&env, "mallory@example.com", None);
    // The attacker's own session, planted in the victim's browser (here: the same jar).
    env.at_select("sub-m", "mallory@example.com").await;
    let planted = cookie(&env, SESSION_COOKIE).unwrap();
    // The victim signs in: the link starts in a new session.
    let victim = env.at_select("sub-v", "alice@example.com").await;
    let fresh = cookie(&env, SESSION_COOKIE).unwrap();
    assert_ne!(fresh, planted);
    assert!(victim.contains("a***@e***.com"), "{victim}");
    // The planted id no longer opens anything: the attacker cannot act on the victim's choice.
    let attacker = post_with_cookie(
        &env,
        SELECT,
        &format!("{SESSION_COOKIE}={planted}"),
        &[("csrf", &csrf(&victim)), ("choice", "0")],
    )
    .await;
    assert_eq!(attacker.status, 400, "{}", attacker.body);
    assert!(attacker.body.contains("has ended"), "{}", attacker.body);
    assert_eq!(env.count("sessions"), 1);
    assert_eq!(env.count("outbox"), 0, "no code went anywhere");
}

#[tokio::test]
async fn a_login_that_needs_no_choice_writes_no_session() {
    let env = env_with(database_sessions).await;
    let landing = env.login_as("sub-new", "new@example.com", true).await;
    assert!(landing.param("code").is_some(), "{}", landing.body);
    assert_eq!(cookie(&env, SESSION_COOKIE), None);
    assert_eq!(env.count("sessions"), 0);
}

#[tokio::test]
async fn a_session_store_that_fails_gives_the_unavailable_page() {
    let env = env_with(database_sessions).await;
    create_user(&env, "alice@example.com", None);
    env.app.db.execute("DROP TABLE sessions");
    let landing = env.arrive("sub-1", "alice@example.com").await;
    assert_eq!(landing.status, 503, "{}", landing.body);
    assert!(
        landing.body.contains("unavailable right now"),
        "{}",
        landing.body
    );
    assert_eq!(env.count("identities"), 0);
}

#[tokio::test]
async fn an_unreachable_redis_stops_the_start_and_names_the_setting() {
    let db = braid_storage::test_support::TestDb::new().unwrap();
    let mut settings = support::test_settings(&db);
    settings.sessions.enabled = true;
    settings.sessions.store = SessionStoreKind::Redis;
    settings.sessions.redis_url = Some("redis://127.0.0.1:9".into());
    let err = match braid_http::Application::build(settings).await {
        Ok(_) => panic!("started without its Redis"),
        Err(e) => e.to_string(),
    };
    assert!(err.contains("sessions.redis_url"), "{err}");
}
