//! Connecting another provider while signed in (link tickets), and listing and unlinking
//! identities: SECURITY-CASES D13 (connect bound to the token's user, fresh sign-in, single-use
//! short-lived ticket), F18 (unlink revokes what was obtained through the identity) and ticket
//! replay.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use base64::Engine as _;
use braid_providers::testing::FakeIdp;
use reqwest::StatusCode;
use serde_json::Value;
use support::flow::*;
use support::link::{give_password, recipients};

/// Braid with two providers, `idp` and `other`, and an SMTP server that is never up (the
/// notices stay in the outbox, where the tests read them).
struct Two {
    env: Env,
    other: FakeIdp,
}

async fn two_providers() -> Two {
    two_providers_with(|_| {}).await
}

async fn two_providers_with(configure: impl FnOnce(&mut braid_http::Settings)) -> Two {
    let other = FakeIdp::start().await;
    let other_settings = other.provider_settings();
    let env = env_with(|s| {
        s.federated_login
            .providers
            .insert("other".into(), other_settings);
        s.smtp.url = Some("smtp://127.0.0.1:9".into());
        configure(s);
    })
    .await;
    Two { env, other }
}

fn access(tokens: &Value) -> &str {
    tokens["access_token"].as_str().unwrap()
}

fn claims(access_token: &str) -> Value {
    let payload = access_token.split('.').nth(1).unwrap();
    serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .unwrap(),
    )
    .unwrap()
}

impl Two {
    async fn ticket_request(&self, access_token: &str, form: &[(&str, &str)]) -> reqwest::Response {
        self.env
            .app
            .client
            .post(self.env.url("/auth/link-tickets"))
            .bearer_auth(access_token)
            .form(form)
            .send()
            .await
            .unwrap()
    }

    /// A ticket to connect for the signed-in user of `tokens`, back to the app's redirect URI.
    async fn ticket(&self, tokens: &Value) -> String {
        let r = self
            .ticket_request(
                access(tokens),
                &[("redirect_uri", REDIRECT_URI), ("state", "connect-1")],
            )
            .await;
        assert_eq!(r.status(), StatusCode::CREATED);
        assert_eq!(r.headers()["cache-control"], "no-store");
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["expires_in"], 120);
        body["ticket"].as_str().unwrap().to_owned()
    }

    async fn start_connect(&self, query: &str) -> reqwest::Response {
        self.env
            .app
            .client
            .get(self.env.url(&format!("/auth/connect/other?{query}")))
            .send()
            .await
            .unwrap()
    }

    /// Connects the `other` account `sub` with the ticket: where the browser lands.
    async fn connect(&self, ticket: &str, sub: &str, email: &str) -> Landing {
        let r = self.start_connect(&format!("link_ticket={ticket}")).await;
        assert_eq!(r.status(), StatusCode::SEE_OTHER, "{:?}", r.text().await);
        let upstream = url::Url::parse(r.headers()["location"].to_str().unwrap()).unwrap();
        self.other.set_account(account(sub, email, true));
        let back = self.other.authorize(&upstream).await;
        self.env.follow(&back.location).await
    }

    async fn identities(&self, access_token: &str) -> Vec<Value> {
        let r = self
            .env
            .app
            .client
            .get(self.env.url("/auth/me/identities"))
            .bearer_auth(access_token)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(r.headers()["cache-control"], "no-store");
        let body: Value = r.json().await.unwrap();
        body["identities"].as_array().unwrap().clone()
    }

    async fn unlink(&self, access_token: &str, id: &str) -> reqwest::Response {
        self.env
            .app
            .client
            .delete(self.env.url(&format!("/auth/me/identities/{id}")))
            .bearer_auth(access_token)
            .send()
            .await
            .unwrap()
    }

    /// Signs in as `sub` at `idp`, connects `other_sub` at `other`: the first tokens, and the
    /// tokens of the connect's exchange code.
    async fn signed_in_with_both(&self, sub: &str, other_sub: &str) -> (Value, Value) {
        let first = self
            .env
            .tokens_for(sub, &format!("{sub}@example.com"), true)
            .await;
        let ticket = self.ticket(&first).await;
        let landing = self
            .connect(
                &ticket,
                other_sub,
                &format!("{other_sub}@elsewhere.example"),
            )
            .await;
        let r = self.env.redeem(&landing.code()).await;
        assert_eq!(r.status(), 200);
        (first, r.json().await.unwrap())
    }
}

fn provider_of(identities: &[Value], provider: &str) -> Value {
    identities
        .iter()
        .find(|i| i["provider"] == provider)
        .unwrap_or_else(|| panic!("no {provider} identity in {identities:?}"))
        .clone()
}

#[tokio::test]
async fn d13_connect_binds_to_session_user() {
    let t = two_providers().await;
    let alice = t
        .env
        .tokens_for("alice-sub", "alice@example.com", true)
        .await;
    let mallory = t
        .env
        .tokens_for("mallory-sub", "mallory@example.com", true)
        .await;
    let (alice_id, mallory_id) = (t.env.user_of(&alice).await, t.env.user_of(&mallory).await);
    let ticket = t.ticket(&alice).await;

    // Nothing from the URL chooses the user or the app: the ticket travels alone, and a user
    // id beside it is refused, not read.
    for extra in [
        format!("client_id={CLIENT_ID}"),
        format!("redirect_uri={}", enc(REDIRECT_URI)),
        "state=evil".to_owned(),
    ] {
        let r = t
            .start_connect(&format!("link_ticket={ticket}&{extra}"))
            .await;
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{extra}");
        assert!(r.text().await.unwrap().contains("send it alone"));
    }
    let landing = t
        .connect(
            &format!("{ticket}&connect_user_id={mallory_id}&user_id={mallory_id}"),
            "alice-other",
            "alice@elsewhere.example",
        )
        .await;
    assert_eq!(landing.status, StatusCode::SEE_OTHER, "{}", landing.body);
    let to = landing.location.clone().unwrap();
    assert!(to.as_str().starts_with(REDIRECT_URI), "{to}");
    assert_eq!(landing.param("state").as_deref(), Some("connect-1"));
    assert!(landing.param("iss").is_some());

    // The fresh code is for Alice, through the identity just connected.
    let r = t.env.redeem(&landing.code()).await;
    assert_eq!(r.status(), 200);
    let connected: Value = r.json().await.unwrap();
    assert_eq!(t.env.user_of(&connected).await, alice_id);
    assert_eq!(claims(access(&connected))["idp"], "other");
    let alices = t.identities(access(&alice)).await;
    assert_eq!(alices.len(), 2, "{alices:?}");
    assert_eq!(provider_of(&alices, "other")["subject"], "alice-other");
    assert_eq!(t.identities(access(&mallory)).await.len(), 1);

    // Audited with the connect's reason, and Alice is told at her verified address.
    let kinds =
        t.env.app.db.texts(
            "SELECT kind || ':' || COALESCE(reason, '') AS t FROM audit_events ORDER BY at, id",
        );
    assert!(
        kinds.contains(&"federated_login:connected".to_owned()),
        "{kinds:?}"
    );
    assert_eq!(recipients(&t.env), vec!["alice@example.com".to_owned()]);
    let subjects = t.env.app.db.texts("SELECT subject AS t FROM outbox");
    assert_eq!(
        subjects,
        vec!["A new sign-in method was added to your account".to_owned()]
    );
}

#[tokio::test]
async fn d13_link_ticket_requires_a_recent_sign_in_and_refresh_keeps_auth_time() {
    let t = two_providers().await;
    let tokens = t.env.tokens_for("sub-1", "a@example.com", true).await;
    let auth_time = claims(access(&tokens))["auth_time"].as_i64().unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    assert!(
        (now - auth_time).abs() <= 5,
        "auth_time {auth_time}, now {now}"
    );

    // The family's sign-in happened ten minutes ago: a refresh keeps that time, and a
    // ticket is refused until the person signs in again.
    let ten_minutes_ago = (now - 600) * 1000;
    t.env.app.db.execute(&format!(
        "UPDATE refresh_tokens SET auth_time = {ten_minutes_ago}"
    ));
    let r = t
        .env
        .refresh(tokens["refresh_token"].as_str().unwrap())
        .await;
    assert_eq!(r.status(), 200);
    let refreshed: Value = r.json().await.unwrap();
    assert_eq!(claims(access(&refreshed))["auth_time"], now - 600);
    let r = t
        .ticket_request(access(&refreshed), &[("redirect_uri", REDIRECT_URI)])
        .await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let challenge = r.headers()["www-authenticate"].to_str().unwrap().to_owned();
    assert!(
        challenge.contains("error=\"insufficient_user_authentication\"")
            && challenge.contains("max_age=300"),
        "{challenge}"
    );
    assert_eq!(r.headers()["content-type"], "application/problem+json");
    assert_eq!(t.env.count("link_tickets"), 0);

    // Signing in again gives a fresh auth_time, and a ticket.
    let again = t.env.tokens_for("sub-1", "a@example.com", true).await;
    t.ticket(&again).await;
}

#[tokio::test]
async fn d13_link_ticket_is_single_use_and_expires() {
    let t = two_providers().await;
    let tokens = t.env.tokens_for("sub-1", "a@example.com", true).await;
    let ticket = t.ticket(&tokens).await;
    let first = t.start_connect(&format!("link_ticket={ticket}")).await;
    assert_eq!(first.status(), StatusCode::SEE_OTHER);

    // Replayed (say, from the browser's history): refused before anything goes upstream.
    let authorize_calls = t.other.authorize_calls();
    let replay = t.start_connect(&format!("link_ticket={ticket}")).await;
    assert_eq!(replay.status(), StatusCode::BAD_REQUEST);
    assert!(
        replay
            .text()
            .await
            .unwrap()
            .contains("expired or was already used")
    );
    assert_eq!(t.other.authorize_calls(), authorize_calls);

    // Only the hash is stored.
    let hashes = t.env.app.db.count("link_tickets");
    assert_eq!(hashes, 1);
    assert!(
        t.env
            .app
            .db
            .texts("SELECT user_id AS t FROM link_tickets")
            .iter()
            .all(|u| !u.contains(&ticket))
    );

    // Past its expiry a ticket starts nothing.
    let late = t.ticket(&tokens).await;
    t.env
        .app
        .db
        .execute("UPDATE link_tickets SET expires_at = 1 WHERE consumed_at IS NULL");
    let r = t.start_connect(&format!("link_ticket={late}")).await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);

    // A made-up ticket neither.
    let r = t.start_connect("link_ticket=not-a-ticket").await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn a_link_ticket_goes_only_to_the_token_client_and_its_redirect_uris() {
    let t = two_providers().await;
    let tokens = t.env.tokens_for("sub-1", "a@example.com", true).await;
    for form in [
        vec![
            ("client_id", PUBLIC_CLIENT),
            ("redirect_uri", PUBLIC_REDIRECT),
        ],
        vec![("redirect_uri", "https://evil.example/callback")],
        vec![
            ("redirect_uri", REDIRECT_URI),
            ("code_challenge", "short"),
            ("code_challenge_method", "S256"),
        ],
    ] {
        let r = t.ticket_request(access(&tokens), &form).await;
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{form:?}");
        assert_eq!(r.headers()["content-type"], "application/problem+json");
    }
    // JSON works as well as a form; the client's only redirect URI is the default.
    let r = t
        .env
        .app
        .client
        .post(t.env.url("/auth/link-tickets"))
        .bearer_auth(access(&tokens))
        .json(&serde_json::json!({ "state": "s-json" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);

    // No token, or a refresh token in its place: 401.
    for bearer in [None, Some(tokens["refresh_token"].as_str().unwrap())] {
        let mut req = t.env.app.client.post(t.env.url("/auth/link-tickets"));
        if let Some(b) = bearer {
            req = req.bearer_auth(b);
        }
        assert_eq!(req.send().await.unwrap().status(), StatusCode::UNAUTHORIZED);
    }
    assert_eq!(t.env.count("link_tickets"), 1);
}

#[tokio::test]
async fn connecting_an_identity_of_another_user_shows_identity_already_linked() {
    // The default client takes failures back to the app; this one is still shown on the page.
    let t = two_providers_with(|s| {
        if let Some(c) = s.clients.get_mut(CLIENT_ID) {
            c.errors = braid_http::settings::ErrorDisplay::Redirect;
        }
    })
    .await;
    let (bob, _) = t.signed_in_with_both("bob", "shared-other").await;
    let alice = t.env.tokens_for("alice", "alice@example.com", true).await;
    let ticket = t.ticket(&alice).await;
    let landing = t
        .connect(&ticket, "shared-other", "bob@elsewhere.example")
        .await;
    assert_eq!(
        landing.status,
        StatusCode::CONFLICT,
        "{:?}",
        landing.location
    );
    assert!(
        landing.body.contains("identity_already_linked"),
        "{}",
        landing.body
    );
    assert!(
        landing
            .body
            .contains("already connected to another account")
    );
    assert_eq!(t.identities(access(&alice)).await.len(), 1);
    assert_eq!(t.identities(access(&bob)).await.len(), 2);
    let reasons =
        t.env.app.db.texts(
            "SELECT COALESCE(reason, '') AS t FROM audit_events WHERE kind = 'federated_login'",
        );
    assert!(reasons.contains(&"identity_owned_by_another_user".to_owned()));
}

#[tokio::test]
async fn connecting_an_identity_the_user_already_has_is_idempotent() {
    let t = two_providers().await;
    let (first, _) = t.signed_in_with_both("carol", "carol-other").await;
    let ticket = t.ticket(&first).await;
    let landing = t
        .connect(&ticket, "carol-other", "carol@elsewhere.example")
        .await;
    let r = t.env.redeem(&landing.code()).await;
    assert_eq!(r.status(), 200);
    let again: Value = r.json().await.unwrap();
    assert_eq!(t.env.user_of(&again).await, t.env.user_of(&first).await);
    assert_eq!(t.identities(access(&first)).await.len(), 2);
}

#[tokio::test]
async fn f18_unlink_revokes_refresh_tokens_of_that_identity_and_mails_the_owner() {
    let t = two_providers().await;
    let (first, through_other) = t.signed_in_with_both("dave", "dave-other").await;
    let identities = t.identities(access(&first)).await;
    let other = provider_of(&identities, "other");
    let outbox_before = t.env.count("outbox");

    let r = t
        .unlink(access(&first), other["id"].as_str().unwrap())
        .await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);

    // What was obtained through the unlinked identity is dead; the rest lives.
    let r = t
        .env
        .refresh(through_other["refresh_token"].as_str().unwrap())
        .await;
    assert_eq!(error_json(r).await, (400, "invalid_grant".to_owned()));
    let r = t
        .env
        .refresh(first["refresh_token"].as_str().unwrap())
        .await;
    assert_eq!(r.status(), 200);
    let remaining = t.identities(access(&first)).await;
    assert_eq!(remaining.len(), 1);
    assert_eq!(remaining[0]["provider"], "idp");

    // Audited, and the owner is told at the verified address.
    let audit = t.env.app.db.texts(
        "SELECT COALESCE(provider, '') || ':' || COALESCE(detail, '') AS t FROM audit_events WHERE kind = 'identity_unlinked'",
    );
    assert_eq!(
        audit,
        vec![r#"other:{"revoked_refresh_tokens":1}"#.to_owned()]
    );
    assert_eq!(t.env.count("outbox"), outbox_before + 1);
    let last = t.env.app.db.texts(
        "SELECT recipient || ' / ' || subject AS t FROM outbox ORDER BY created_at DESC, id DESC",
    );
    assert_eq!(
        last[0],
        "dave@example.com / A sign-in method was removed from your account"
    );

    // It is gone: a second unlink finds nothing.
    let r = t
        .unlink(access(&first), other["id"].as_str().unwrap())
        .await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn the_last_way_to_sign_in_cannot_be_unlinked_unless_there_is_a_password() {
    let t = two_providers().await;
    let tokens = t.env.tokens_for("erin", "erin@example.com", true).await;
    let only = t.identities(access(&tokens)).await[0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = t.unlink(access(&tokens), &only).await;
    assert_eq!(r.status(), StatusCode::CONFLICT);
    assert_eq!(r.headers()["content-type"], "application/problem+json");
    let body: Value = r.json().await.unwrap();
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("last way to sign in"),
        "{body}"
    );
    assert_eq!(t.identities(access(&tokens)).await.len(), 1);
    assert_eq!(t.env.count("outbox"), 0);

    give_password(
        &t.env,
        &t.env.user_of(&tokens).await,
        "correct horse battery",
    );
    let r = t.unlink(access(&tokens), &only).await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert!(t.identities(access(&tokens)).await.is_empty());
}

#[tokio::test]
async fn unlinking_an_unknown_or_someone_elses_identity_is_404() {
    let t = two_providers().await;
    let (frank, _) = t.signed_in_with_both("frank", "frank-other").await;
    let (grace, _) = t.signed_in_with_both("grace", "grace-other").await;
    let franks = t.identities(access(&frank)).await;
    let theirs = franks[0]["id"].as_str().unwrap();
    for id in [theirs, "does-not-exist"] {
        let r = t.unlink(access(&grace), id).await;
        assert_eq!(r.status(), StatusCode::NOT_FOUND, "{id}");
    }
    assert_eq!(t.identities(access(&frank)).await.len(), 2);
    let r = t
        .env
        .app
        .client
        .delete(t.env.url(&format!("/auth/me/identities/{theirs}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let r = t
        .env
        .app
        .client
        .get(t.env.url("/auth/me/identities"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_user_disabled_after_the_ticket_gets_nothing_connected() {
    let t = two_providers().await;
    let tokens = t.env.tokens_for("heidi", "heidi@example.com", true).await;
    let user = t.env.user_of(&tokens).await;
    let ticket = t.ticket(&tokens).await;
    let r = t.start_connect(&format!("link_ticket={ticket}")).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let upstream = url::Url::parse(r.headers()["location"].to_str().unwrap()).unwrap();
    t.env.app.db.execute(&format!(
        "UPDATE users SET disabled = TRUE WHERE id = '{user}'"
    ));
    t.other
        .set_account(account("heidi-other", "heidi@elsewhere.example", true));
    let back = t.other.authorize(&upstream).await;
    let landing = t.env.follow(&back.location).await;
    assert_eq!(landing.status, StatusCode::FORBIDDEN, "{}", landing.body);
    assert!(landing.body.contains("user_disabled"));
    assert_eq!(t.env.count("identities"), 1);
}

#[tokio::test]
async fn g_concurrent_uses_of_one_ticket_start_one_connect() {
    let t = two_providers().await;
    let tokens = t.env.tokens_for("ivan", "ivan@example.com", true).await;
    let ticket = t.ticket(&tokens).await;
    let url = t
        .env
        .url(&format!("/auth/connect/other?link_ticket={ticket}"));
    let mut tries = tokio::task::JoinSet::new();
    for _ in 0..8 {
        let (client, url) = (t.env.app.client.clone(), url.clone());
        tries.spawn(async move { client.get(url).send().await.unwrap().status() });
    }
    let statuses = tries.join_all().await;
    let started = statuses
        .iter()
        .filter(|s| **s == StatusCode::SEE_OTHER)
        .count();
    assert_eq!(started, 1, "{statuses:?}");
    assert!(
        statuses
            .iter()
            .all(|s| *s == StatusCode::SEE_OTHER || *s == StatusCode::BAD_REQUEST)
    );
}

#[tokio::test]
async fn concurrent_unlinks_of_the_last_two_identities_leave_one() {
    let t = two_providers().await;
    let (first, _) = t.signed_in_with_both("judy", "judy-other").await;
    let ids: Vec<String> = t
        .identities(access(&first))
        .await
        .iter()
        .map(|i| i["id"].as_str().unwrap().to_owned())
        .collect();
    let (a, b) = tokio::join!(
        t.unlink(access(&first), &ids[0]),
        t.unlink(access(&first), &ids[1])
    );
    let mut statuses = [a.status(), b.status()];
    statuses.sort();
    assert_eq!(statuses, [StatusCode::NO_CONTENT, StatusCode::CONFLICT]);
    assert_eq!(t.identities(access(&first)).await.len(), 1);
}
