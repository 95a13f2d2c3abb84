//! The admin API: its OpenAPI document against its routes, keys, search and pages, and what
//! disabling, unlinking and deleting a user do to their tokens (SECURITY-CASES F18, I12).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use braid_http::Settings;
use braid_http::admin::keys::{self, AdminKey};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU32, Ordering};
use support::flow::*;

/// The admin key the tests' Braid is configured with.
fn admin_key(s: &mut Settings) -> String {
    let new = keys::generate().unwrap();
    s.admin.keys.push(AdminKey {
        name: "ops".into(),
        hash: new.hash,
    });
    new.key
}

async fn admin_env() -> (Env, String) {
    let mut key = String::new();
    let env = env_with(|s| key = admin_key(s)).await;
    (env, key)
}

async fn call(env: &Env, key: Option<&str>, method: Method, path: &str) -> reqwest::Response {
    call_with(env, key, method, path, None).await
}

async fn call_with(
    env: &Env,
    key: Option<&str>,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> reqwest::Response {
    let mut req = env.app.client.request(method, env.url(path));
    if let Some(key) = key {
        req = req.bearer_auth(key);
    }
    if let Some(body) = body {
        req = req.json(&body);
    }
    req.send().await.unwrap()
}

static NEXT: AtomicU32 = AtomicU32::new(0);

/// A user who signed in with the fake provider: their tokens, id and identity id.
struct Fixture {
    tokens: Value,
    user: String,
    identity: String,
}

async fn signed_in_user(env: &Env, key: &str) -> Fixture {
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let tokens = env
        .tokens_for(&format!("sub-{n}"), &format!("user{n}@example.com"), true)
        .await;
    let user = env.user_of(&tokens).await;
    let detail: Value = call(
        env,
        Some(key),
        Method::GET,
        &format!("/admin/api/users/{user}"),
    )
    .await
    .json()
    .await
    .unwrap();
    Fixture {
        tokens,
        user,
        identity: detail["identities"][0]["id"].as_str().unwrap().to_owned(),
    }
}

async fn problem(r: reqwest::Response) -> (StatusCode, Value) {
    let status = r.status();
    assert_eq!(
        r.headers()["content-type"].to_str().unwrap(),
        "application/problem+json"
    );
    (status, r.json().await.unwrap())
}

#[tokio::test]
async fn every_route_in_the_openapi_document_answers_as_documented() {
    let (env, key) = admin_env().await;
    let doc: Value = reqwest::get(env.url("/admin/openapi.json"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
    assert!(doc["components"]["securitySchemes"]["admin_key"].is_object());
    let mut operations = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            operations += 1;
            let names: Vec<&str> = op["parameters"]
                .as_array()
                .map(|ps| ps.iter().map(|p| p["name"].as_str().unwrap()).collect())
                .unwrap_or_default();
            let unique: BTreeSet<&str> = names.iter().copied().collect();
            assert_eq!(names.len(), unique.len(), "{method} {path}: {names:?}");
            let documented: BTreeSet<u16> = op["responses"]
                .as_object()
                .unwrap()
                .keys()
                .map(|k| k.parse().unwrap())
                .collect();
            let a = signed_in_user(&env, &key).await;
            let b = signed_in_user(&env, &key).await;
            // An identity moves only to a user without one of its provider.
            let target = if path.ends_with("/identities") {
                support::link::user_with(&env, None, None)
            } else {
                a.user.clone()
            };
            let mut url = path
                .replace("{user_id}", &target)
                .replace("{identity_id}", &a.identity);
            if url.contains("/identities/") {
                url.push_str("?force=true");
            }
            let body = op
                .get("requestBody")
                .map(|_| json!({ "identity_id": b.identity, "force": true }));
            let m = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let r = call_with(&env, Some(&key), m.clone(), &url, body.clone()).await;
            let status = r.status();
            let text = r.text().await.unwrap();
            assert!(
                status.is_success() && documented.contains(&status.as_u16()),
                "{method} {url}: {status} {text} (documented: {documented:?})"
            );
            let r = call_with(&env, None, m, &url, body).await;
            assert_eq!(r.status(), 401, "{method} {url} without a key");
            assert!(
                documented.contains(&401),
                "{method} {path}: 401 undocumented"
            );
        }
    }
    assert_eq!(operations, 7);
}

/// The document is collected from the scope the server registers; this checks that every
/// handler of the admin API's source is in that scope, and nothing else is.
#[tokio::test]
async fn every_admin_api_handler_is_in_the_openapi_document() {
    let source = include_str!("../src/routes/admin_api.rs");
    let mut in_source = BTreeSet::new();
    for line in source.lines().map(str::trim) {
        for method in ["get", "post", "put", "patch", "delete"] {
            if let Some(rest) = line.strip_prefix(&format!("#[{method}(\"")) {
                let path = rest.split('"').next().unwrap();
                in_source.insert(format!("{method} /admin/api{path}"));
            }
        }
    }
    assert!(
        !source.contains(".route(\"/admin/api"),
        "admin API routes are registered with .service() so the document sees them"
    );
    let doc: Value = serde_json::from_str(braid_http::routes::admin_api::document()).unwrap();
    let mut in_document = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            in_document.insert(format!("{method} {path}"));
        }
    }
    assert_eq!(in_source, in_document);
}

#[tokio::test]
async fn unknown_or_missing_key_is_401_and_no_keys_means_no_admin_api() {
    let (env, key) = admin_env().await;
    let (status, body) = problem(call(&env, None, Method::GET, "/admin/api/users").await).await;
    assert_eq!(
        (status, body["status"].as_u64()),
        (StatusCode::UNAUTHORIZED, Some(401))
    );
    let r = call(
        &env,
        Some("braid_ak_not-a-key"),
        Method::GET,
        "/admin/api/users",
    )
    .await;
    assert!(
        r.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("Bearer")
    );
    assert_eq!(problem(r).await.0, StatusCode::UNAUTHORIZED);
    // The hash in the configuration is not a key.
    let hash = keys::generate().unwrap().hash;
    let r = call(&env, Some(&hash), Method::GET, "/admin/api/users").await;
    assert_eq!(r.status(), 401);
    assert_eq!(
        call(&env, Some(&key), Method::GET, "/admin/api/users")
            .await
            .status(),
        200
    );

    let plain = env_with(|_| {}).await;
    let r = call(&plain, Some(&key), Method::GET, "/admin/api/users").await;
    assert_eq!(problem(r).await.0, StatusCode::NOT_FOUND);
    let r = reqwest::get(plain.url("/admin/openapi.json"))
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let r = plain
        .app
        .client
        .get(plain.url("/admin"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
}

#[tokio::test]
async fn search_finds_users_by_email_name_id_and_pages_through_them() {
    let (env, key) = admin_env().await;
    let mut ids = Vec::new();
    for i in 0..5 {
        let f = signed_in_user(&env, &key).await;
        ids.push((f.user, i));
    }
    let users = |v: &Value| -> Vec<String> {
        v["users"]
            .as_array()
            .unwrap()
            .iter()
            .map(|u| u["id"].as_str().unwrap().to_owned())
            .collect()
    };
    // Newest first, two at a time, every user once.
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/admin/api/users?limit=2&cursor={c}"),
            None => "/admin/api/users?limit=2".to_owned(),
        };
        let page: Value = call(&env, Some(&key), Method::GET, &path)
            .await
            .json()
            .await
            .unwrap();
        seen.extend(users(&page));
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    let mut expected: Vec<String> = ids.iter().map(|(id, _)| id.clone()).collect();
    expected.reverse();
    assert_eq!(seen, expected);

    let first = &ids[0].0;
    let by_id: Value = call(
        &env,
        Some(&key),
        Method::GET,
        &format!("/admin/api/users?id={first}"),
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(users(&by_id), vec![first.clone()]);
    let page: Value = call(&env, Some(&key), Method::GET, "/admin/api/users?email=USER")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(users(&page).len(), 5);
    let page: Value = call(
        &env,
        Some(&key),
        Method::GET,
        "/admin/api/users?q=nobody%25",
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(users(&page).len(), 0, "% is no wildcard");

    for bad in [
        "/admin/api/users?limit=0",
        "/admin/api/users?limit=1000",
        "/admin/api/users?cursor=bm90LWFuLWlk",
        "/admin/api/users?id=admin",
        "/admin/api/users?email=a&name=b",
        "/admin/api/users?unknown=1",
    ] {
        let (status, body) = problem(call(&env, Some(&key), Method::GET, bad).await).await;
        assert_eq!(status, 400, "{bad}: {body}");
        assert!(body["detail"].is_string());
    }
    let (status, _) =
        problem(call(&env, Some(&key), Method::GET, "/admin/api/users/not-a-user").await).await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn f18_disabling_a_user_revokes_refresh_tokens_and_refuses_access_tokens() {
    let (env, key) = admin_env().await;
    let f = signed_in_user(&env, &key).await;
    let access = f.tokens["access_token"].as_str().unwrap();
    let refresh = f.tokens["refresh_token"].as_str().unwrap();
    assert_eq!(env.me(access).await.status(), 200);
    let r = call(
        &env,
        Some(&key),
        Method::POST,
        &format!("/admin/api/users/{}/disable", f.user),
    )
    .await;
    assert_eq!(r.status(), 204);

    assert_eq!(
        error_json(env.refresh(refresh).await).await,
        (400, "invalid_grant".into())
    );
    assert_eq!(env.me(access).await.status(), 401);
    let introspected: Value = env
        .app
        .client
        .post(env.url("/auth/introspect"))
        .basic_auth(CLIENT_ID, Some(CLIENT_SECRET))
        .form(&[("token", access)])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(introspected, json!({"active": false}));
    // Enabling does not bring the revoked refresh token back.
    let r = call(
        &env,
        Some(&key),
        Method::POST,
        &format!("/admin/api/users/{}/enable", f.user),
    )
    .await;
    assert_eq!(r.status(), 204);
    assert_eq!(
        error_json(env.refresh(refresh).await).await,
        (400, "invalid_grant".into())
    );

    let detail: Value = call(
        &env,
        Some(&key),
        Method::GET,
        &format!("/admin/api/users/{}", f.user),
    )
    .await
    .json()
    .await
    .unwrap();
    let kinds: Vec<&str> = detail["recent_events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert_eq!(&kinds[..2], ["admin.user_enabled", "admin.user_disabled"]);
    let disabled: Value =
        serde_json::from_str(detail["recent_events"][1]["detail"].as_str().unwrap()).unwrap();
    assert_eq!(disabled["admin_key"], "ops");
    assert_eq!(disabled["refresh_tokens_revoked"], 1);
}

#[tokio::test]
async fn f18_unlinking_an_identity_revokes_refresh_tokens_and_the_last_one_needs_force() {
    let (env, key) = admin_env().await;
    let f = signed_in_user(&env, &key).await;
    let other = signed_in_user(&env, &key).await;
    let path = format!("/admin/api/users/{}/identities/{}", f.user, f.identity);
    let (status, body) = problem(call(&env, Some(&key), Method::DELETE, &path).await).await;
    assert_eq!(status, 409, "{body}");
    assert!(body["detail"].as_str().unwrap().contains("force=true"));
    // Someone else's identity is not this user's to unlink.
    let elsewhere = format!(
        "/admin/api/users/{}/identities/{}?force=true",
        f.user, other.identity
    );
    let (status, _) = problem(call(&env, Some(&key), Method::DELETE, &elsewhere).await).await;
    assert_eq!(status, 404);

    // With a password besides, the identity is not the last way to sign in.
    support::link::give_password(&env, &f.user, "correct horse battery staple");
    let r = call(&env, Some(&key), Method::DELETE, &path).await;
    assert_eq!(r.status(), 204);
    let refresh = f.tokens["refresh_token"].as_str().unwrap();
    assert_eq!(
        error_json(env.refresh(refresh).await).await,
        (400, "invalid_grant".into())
    );
    assert_eq!(env.count("identities"), 1);
}

#[tokio::test]
async fn an_identity_moves_to_another_user_only_when_nothing_is_lost() {
    let (env, key) = admin_env().await;
    let f = signed_in_user(&env, &key).await;
    let other = signed_in_user(&env, &key).await;
    let move_to = |user: &str| format!("/admin/api/users/{user}/identities");
    let body = |force: bool| Some(json!({ "identity_id": other.identity, "force": force }));

    let r = call_with(
        &env,
        Some(&key),
        Method::POST,
        &move_to(&f.user),
        body(true),
    )
    .await;
    let (status, problem_body) = problem(r).await;
    assert_eq!(
        status, 409,
        "f has an identity of that provider: {problem_body}"
    );
    let r = call_with(
        &env,
        Some(&key),
        Method::POST,
        &move_to(&other.user),
        body(true),
    )
    .await;
    assert_eq!(problem(r).await.0, 409, "already this user's");

    let bare = support::link::user_with(&env, Some(("bare@example.com", true)), None);
    let r = call_with(&env, Some(&key), Method::POST, &move_to(&bare), body(false)).await;
    assert_eq!(
        problem(r).await.0,
        409,
        "the other user's last way to sign in"
    );
    let r = call_with(&env, Some(&key), Method::POST, &move_to(&bare), body(true)).await;
    assert_eq!(r.status(), 204);
    let moved = other.tokens["refresh_token"].as_str().unwrap();
    assert_eq!(
        error_json(env.refresh(moved).await).await,
        (400, "invalid_grant".into())
    );
    let detail: Value = call(
        &env,
        Some(&key),
        Method::GET,
        &format!("/admin/api/users/{bare}"),
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(detail["identities"][0]["id"], json!(other.identity));
    assert_eq!(detail["recent_events"][0]["kind"], "admin.identity_linked");

    for bad in [
        json!({}),
        json!({ "identity_id": 1 }),
        json!({ "identity_id": "x", "extra": 1 }),
    ] {
        let r = call_with(&env, Some(&key), Method::POST, &move_to(&bare), Some(bad)).await;
        assert_eq!(problem(r).await.0, 400);
    }
    let r = call_with(
        &env,
        Some(&key),
        Method::POST,
        &move_to(&bare),
        Some(json!({ "identity_id": "no-such-identity" })),
    )
    .await;
    assert_eq!(problem(r).await.0, 404);
}

#[tokio::test]
async fn i12_a_deleted_users_identity_signs_in_as_a_new_user_and_old_tokens_are_dead() {
    let (env, key) = admin_env().await;
    let tokens = env.tokens_for("returning", "back@example.com", true).await;
    let old_user = env.user_of(&tokens).await;
    let r = call(
        &env,
        Some(&key),
        Method::DELETE,
        &format!("/admin/api/users/{old_user}"),
    )
    .await;
    assert_eq!(r.status(), 204);

    assert_eq!(env.count("identities"), 0, "identities cascade-deleted");
    assert_eq!(env.count("user_emails"), 0);
    assert_eq!(env.count("refresh_tokens"), 0);
    let refresh = tokens["refresh_token"].as_str().unwrap();
    assert_eq!(
        error_json(env.refresh(refresh).await).await,
        (400, "invalid_grant".into())
    );
    assert_eq!(
        env.me(tokens["access_token"].as_str().unwrap())
            .await
            .status(),
        401
    );
    let (status, _) = problem(
        call(
            &env,
            Some(&key),
            Method::GET,
            &format!("/admin/api/users/{old_user}"),
        )
        .await,
    )
    .await;
    assert_eq!(status, 404);

    let again = env.tokens_for("returning", "back@example.com", true).await;
    let new_user = env.user_of(&again).await;
    assert_ne!(
        new_user, old_user,
        "a new user, not the old one resurrected"
    );
    let profile = env.profile(&again).await;
    assert_eq!(profile["identities"].as_array().unwrap().len(), 1);
    assert_eq!(env.count("users"), 1);

    // The audit trail keeps the deletion, under the old id.
    let mut conn = env.app.db.db.conn().unwrap();
    let events = braid_storage::repo::audit::of_user(&mut conn, &old_user, 10).unwrap();
    assert_eq!(events[0].event.kind, "admin.user_deleted");
    assert!(
        events[0]
            .event
            .detail
            .as_deref()
            .unwrap()
            .contains("idp:returning")
    );
}

#[tokio::test]
async fn admin_changes_send_user_disabled_and_identity_unlinked_webhooks() {
    use braid_http::webhooks::{EventType, WebhookSettings};
    use support::webhook_receiver::Receiver;
    const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    let receiver = Receiver::start(&[]).await;
    let mut key = String::new();
    let env = env_with(|s| {
        key = admin_key(s);
        s.webhooks.insert(
            "crm".into(),
            WebhookSettings::new(
                &receiver.url,
                braid_core::Secret::new(SECRET),
                vec![EventType::UserDisabled, EventType::IdentityUnlinked],
            ),
        );
    })
    .await;
    let f = signed_in_user(&env, &key).await;
    let disable = format!("/admin/api/users/{}/disable", f.user);
    assert_eq!(
        call(&env, Some(&key), Method::POST, &disable)
            .await
            .status(),
        204
    );
    // Disabling a disabled user again changes nothing and says nothing.
    assert_eq!(
        call(&env, Some(&key), Method::POST, &disable)
            .await
            .status(),
        204
    );
    let unlink = format!(
        "/admin/api/users/{}/identities/{}?force=true",
        f.user, f.identity
    );
    assert_eq!(
        call(&env, Some(&key), Method::DELETE, &unlink)
            .await
            .status(),
        204
    );

    let got = receiver
        .wait_for(2, std::time::Duration::from_secs(20))
        .await;
    let mut types = Vec::new();
    for delivery in &got {
        delivery.verify(SECRET).unwrap();
        let payload = delivery.json();
        assert_eq!(payload["data"]["user_id"], f.user.as_str(), "{payload}");
        types.push(payload["type"].as_str().unwrap().to_owned());
    }
    types.sort();
    assert_eq!(types, ["identity.unlinked", "user.disabled"]);
    assert_eq!(
        env.count("outbox"),
        2,
        "no second user.disabled for a user already disabled"
    );
}
