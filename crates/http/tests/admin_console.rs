//! The admin console's pages: sign-in with an admin key, search, a user's page, unlink,
//! disable and delete (with its confirmation), and the CSRF token every form needs.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use braid_http::admin::keys::{self, AdminKey};
use reqwest::cookie::CookieStore;
use support::flow::*;
use support::link::csrf;

async fn console_env() -> (Env, String) {
    let mut key = String::new();
    let env = env_with(|s| {
        let new = keys::generate().unwrap();
        s.admin.keys.push(AdminKey {
            name: "ops".into(),
            hash: new.hash,
        });
        key = new.key;
    })
    .await;
    (env, key)
}

async fn get(env: &Env, path: &str) -> Landing {
    land(env.app.client.get(env.url(path)).send().await.unwrap()).await
}

async fn post(env: &Env, path: &str, form: &[(&str, &str)]) -> Landing {
    land(
        env.app
            .client
            .post(env.url(path))
            .form(form)
            .send()
            .await
            .unwrap(),
    )
    .await
}

/// Signs the test's browser in; the CSRF token of its session.
async fn sign_in(env: &Env, key: &str) -> String {
    let page = get(env, "/admin").await;
    assert_eq!(page.status, 200);
    let token = csrf(&page.body);
    let done = post(env, "/admin/login", &[("csrf", &token), ("key", key)]).await;
    assert_eq!(done.status, 303, "{}", done.body);
    assert_eq!(done.location.unwrap().path(), "/admin/users");
    csrf(&get(env, "/admin/users").await.body)
}

#[tokio::test]
async fn the_console_needs_a_valid_key_and_a_csrf_token_to_sign_in() {
    let (env, key) = console_env().await;
    let r = get(&env, "/admin/users").await;
    assert_eq!(
        (r.status.as_u16(), r.location.unwrap().path()),
        (303, "/admin")
    );
    let page = get(&env, "/admin").await;
    let token = csrf(&page.body);
    let wrong = post(
        &env,
        "/admin/login",
        &[("csrf", &token), ("key", "braid_ak_x")],
    )
    .await;
    assert_eq!(wrong.status, 401);
    assert!(wrong.body.contains("not a valid admin key"));
    let no_csrf = post(&env, "/admin/login", &[("key", &key)]).await;
    assert_eq!(no_csrf.status, 403);
    assert_eq!(
        get(&env, "/admin/users").await.status,
        303,
        "still signed out"
    );

    let token = sign_in(&env, &key).await;
    let cookie = env
        .app
        .jar
        .cookies(&url::Url::parse(&env.url("/admin")).unwrap());
    assert!(cookie.is_some());
    let out = post(&env, "/admin/logout", &[("csrf", &token)]).await;
    assert_eq!(out.status, 303);
    assert_eq!(get(&env, "/admin/users").await.status, 303);
}

#[tokio::test]
async fn the_console_finds_a_user_shows_their_identities_and_unlinks_one() {
    let (env, key) = console_env().await;
    let tokens = env.tokens_for("ann-sub", "ann@example.com", true).await;
    let user = env.user_of(&tokens).await;
    let token = sign_in(&env, &key).await;

    let list = get(&env, "/admin/users?q=ann%40").await;
    assert_eq!(list.status, 200);
    assert!(list.body.contains("ann@example.com"), "{}", list.body);
    assert!(list.body.contains(&format!("/admin/users/{user}")));

    let page = get(&env, &format!("/admin/users/{user}")).await;
    assert!(page.body.contains("ann-sub"));
    let action = page
        .body
        .split(r#"action=""#)
        .map(|s| s.split('"').next().unwrap())
        .find(|a| a.ends_with("/unlink"))
        .unwrap()
        .to_owned();
    // The user's only identity: refused without the confirmation box.
    let refused = post(&env, &action, &[("csrf", &token)]).await;
    assert_eq!(refused.status, 409);
    assert!(refused.body.contains("last way to sign in"));
    let forged = post(&env, &action, &[("force", "yes")]).await;
    assert_eq!(forged.status, 403);
    assert_eq!(env.count("identities"), 1);

    let done = post(&env, &action, &[("csrf", &token), ("force", "yes")]).await;
    assert_eq!(done.status, 303);
    assert_eq!(env.count("identities"), 0);
    let page = get(
        &env,
        done.location
            .unwrap()
            .as_str()
            .trim_start_matches(&env.app.address),
    )
    .await;
    assert!(page.body.contains("The identity was removed"));
    assert!(page.body.contains("admin.identity_unlinked"));
    let refresh = tokens["refresh_token"].as_str().unwrap();
    assert_eq!(
        error_json(env.refresh(refresh).await).await,
        (400, "invalid_grant".into())
    );
}

#[tokio::test]
async fn disable_and_delete_from_the_console_take_a_csrf_token_and_a_confirmation() {
    let (env, key) = console_env().await;
    let tokens = env.tokens_for("bob-sub", "bob@example.com", true).await;
    let user = env.user_of(&tokens).await;
    let token = sign_in(&env, &key).await;

    let disabled = post(
        &env,
        &format!("/admin/users/{user}/disable"),
        &[("csrf", &token)],
    )
    .await;
    assert_eq!(disabled.status, 303);
    let page = get(&env, &format!("/admin/users/{user}?done=disabled")).await;
    assert!(page.body.contains("badge"), "shown as disabled");
    assert_eq!(
        env.me(tokens["access_token"].as_str().unwrap())
            .await
            .status(),
        401
    );

    let confirm = get(&env, &format!("/admin/users/{user}/delete")).await;
    assert_eq!(confirm.status, 200);
    assert!(confirm.body.contains("cannot be undone"));
    let forged = post(
        &env,
        &format!("/admin/users/{user}/delete"),
        &[("csrf", "x")],
    )
    .await;
    assert_eq!(forged.status, 403);
    assert_eq!(env.count("users"), 1);
    let deleted = post(
        &env,
        &format!("/admin/users/{user}/delete"),
        &[("csrf", &csrf(&confirm.body))],
    )
    .await;
    assert_eq!(deleted.status, 303);
    assert_eq!(env.count("users"), 0);
    let gone = get(&env, &format!("/admin/users/{user}")).await;
    assert_eq!(gone.status, 404);
}

/// The user of a first login as `sub` (through the test app), marked administrator or not.
async fn user_signed_up(env: &Env, sub: &str, is_admin: bool) -> String {
    let tokens = env
        .tokens_for(sub, &format!("{sub}@example.com"), true)
        .await;
    let user = env.user_of(&tokens).await;
    env.app.db.execute(&format!(
        "UPDATE users SET is_admin = {} WHERE id = '{user}'",
        if is_admin { "TRUE" } else { "FALSE" }
    ));
    user
}

/// Runs the console's "Sign in with idp" as the fake provider's current account up to the
/// browser's arrival at `/admin/callback`: that URL.
async fn console_callback_url(env: &Env) -> url::Url {
    let page = get(env, "/admin").await;
    assert!(page.body.contains("Sign in with"), "{}", page.body);
    let started = post(
        env,
        "/admin/sign-in",
        &[("csrf", &csrf(&page.body)), ("provider", "idp")],
    )
    .await;
    assert_eq!(started.status, 303, "{}", started.body);
    let connect = started.location.unwrap();
    assert_eq!(connect.path(), "/auth/connect/idp");
    assert_eq!(
        query_param(&connect, "client_id").as_deref(),
        Some("braid-admin-console")
    );
    assert_eq!(
        query_param(&connect, "code_challenge_method").as_deref(),
        Some("S256")
    );
    let upstream = get(env, &connect[url::Position::BeforePath..]).await;
    assert_eq!(upstream.status, 303, "{}", upstream.body);
    let back = env.idp.authorize(&upstream.location.unwrap()).await;
    let landed = env.follow(&back.location).await;
    assert_eq!(landed.status, 303, "{}", landed.body);
    let callback = landed.location.unwrap();
    assert_eq!(callback.path(), "/admin/callback");
    callback
}

async fn console_sign_in_as(env: &Env, sub: &str) -> Landing {
    env.idp
        .set_account(account(sub, &format!("{sub}@example.com"), true));
    let callback = console_callback_url(env).await;
    get(env, &callback[url::Position::BeforePath..]).await
}

#[tokio::test]
async fn an_administrator_signs_in_to_the_console_through_the_provider() {
    let (env, _) = console_env().await;
    let user = user_signed_up(&env, "ada", true).await;
    let done = console_sign_in_as(&env, "ada").await;
    assert_eq!(done.status, 200, "{}", done.body);
    assert!(done.body.contains(&user));
    let users = get(&env, "/admin/users").await;
    assert_eq!(users.status, 200, "{}", users.body);
    assert!(users.body.contains("Signed in as the administrator"));
    let signed_in = env
        .app
        .db
        .texts("SELECT detail AS t FROM audit_events WHERE kind = 'admin.console_sign_in'");
    assert_eq!(signed_in.len(), 1);
    assert!(signed_in[0].contains(&format!(r#""admin_user":"{user}""#)));

    // The mark taken away (`braid users make-admin --revoke`): the session ends at once.
    env.app.db.execute(&format!(
        "UPDATE users SET is_admin = FALSE WHERE id = '{user}'"
    ));
    assert_eq!(get(&env, "/admin/users").await.status, 303);
}

#[tokio::test]
async fn a_user_who_is_not_an_administrator_is_refused_and_gets_no_session() {
    let (env, _) = console_env().await;
    user_signed_up(&env, "bea", false).await;
    let refused = console_sign_in_as(&env, "bea").await;
    assert_eq!(refused.status, 403);
    assert!(
        refused.body.contains("not an administrator"),
        "{}",
        refused.body
    );
    assert_eq!(get(&env, "/admin/users").await.status, 303);
}

#[tokio::test]
async fn a_disabled_administrator_is_refused() {
    let (env, _) = console_env().await;
    let user = user_signed_up(&env, "cid", true).await;
    let callback = {
        env.idp.set_account(account("cid", "cid@example.com", true));
        console_callback_url(&env).await
    };
    // Disabled between the sign-in and the callback: the code is dead.
    env.app.db.execute(&format!(
        "UPDATE users SET disabled = TRUE WHERE id = '{user}'"
    ));
    let refused = get(&env, &callback[url::Position::BeforePath..]).await;
    assert_eq!(refused.status, 403, "{}", refused.body);
    assert_eq!(get(&env, "/admin/users").await.status, 303);
}

#[tokio::test]
async fn a_console_callback_with_a_wrong_or_missing_state_is_refused() {
    let (env, _) = console_env().await;
    user_signed_up(&env, "dan", true).await;
    env.idp.set_account(account("dan", "dan@example.com", true));
    let callback = console_callback_url(&env).await;
    let code = query_param(&callback, "code").unwrap();
    let wrong = get(
        &env,
        &format!("/admin/callback?code={}&state=forged", enc(&code)),
    )
    .await;
    assert_eq!(wrong.status, 403);
    assert!(wrong.body.contains("could not be matched"));
    let missing = get(&env, &format!("/admin/callback?code={}", enc(&code))).await;
    assert_eq!(missing.status, 403);
    assert_eq!(get(&env, "/admin/users").await.status, 303);
    // A refusal clears the pending sign-in: even the right state is refused now.
    let replay = get(&env, &callback[url::Position::BeforePath..]).await;
    assert_eq!(replay.status, 403);
}

#[tokio::test]
async fn an_action_by_an_administrator_user_is_audited_naming_the_user() {
    let (env, _) = console_env().await;
    let admin = user_signed_up(&env, "eve", true).await;
    let target = user_signed_up(&env, "fay", false).await;
    assert_eq!(console_sign_in_as(&env, "eve").await.status, 200);
    let token = csrf(&get(&env, "/admin/users").await.body);
    let disabled = post(
        &env,
        &format!("/admin/users/{target}/disable"),
        &[("csrf", &token)],
    )
    .await;
    assert_eq!(disabled.status, 303, "{}", disabled.body);
    let detail = env.app.db.texts(&format!(
        "SELECT detail AS t FROM audit_events WHERE kind = 'admin.user_disabled' AND user_id = '{target}'"
    ));
    assert_eq!(detail.len(), 1);
    assert!(
        detail[0].contains(&format!(r#""admin_user":"{admin}""#)),
        "{}",
        detail[0]
    );
    assert!(!detail[0].contains("admin_key"));
}

#[tokio::test]
async fn g10_a_console_cookie_replayed_after_sign_out_opens_nothing() {
    let (env, key) = console_env().await;
    let token = sign_in(&env, &key).await;
    let url = url::Url::parse(&env.url("/admin/users")).unwrap();
    let cookies = env
        .app
        .jar
        .cookies(&url)
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    let out = post(&env, "/admin/logout", &[("csrf", &token)]).await;
    assert_eq!(out.status, 303, "{}", out.body);

    let replayed = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .get(url)
        .header("cookie", cookies)
        .send()
        .await
        .unwrap();
    assert_eq!(
        replayed.status(),
        303,
        "signed out sessions are not signed in"
    );
    assert_eq!(replayed.headers()["location"], "/admin");
}
