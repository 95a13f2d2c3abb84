//! Local accounts: sign-up, confirmation by code, sign-in ending in an exchange code, password
//! reset; the pages and the JSON endpoints; limits, enumeration, races and the linking cases
//! (SECURITY-CASES D02, D10, E23, F18).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use braid_http::Settings;
use braid_http::settings::Resolution;
use reqwest::StatusCode;
use serde_json::{Value, json};
use support::flow::*;
use support::link::{SELECT, VERIFY, csrf, manual, recipients, sent_codes, user_with};

const PASSWORD: &str = "correct horse battery";

/// Manual linking (messages stay in the outbox, where the tests read the codes), local
/// accounts on, and room for the password checks of a whole test.
fn local(s: &mut Settings) {
    manual(s);
    s.local_accounts.enabled = true;
    s.limits.password_attempts_per_account = 20;
}

async fn local_env() -> Env {
    env_with(local).await
}

async fn post_json(env: &Env, path: &str, body: Value) -> reqwest::Response {
    env.app
        .client
        .post(env.url(path))
        .json(&body)
        .send()
        .await
        .unwrap()
}

fn with_app(mut body: Value) -> Value {
    body["client_id"] = json!(CLIENT_ID);
    body["redirect_uri"] = json!(REDIRECT_URI);
    body["state"] = json!("app-state-1");
    body
}

async fn register(env: &Env, email: &str, password: &str) -> reqwest::Response {
    post_json(
        env,
        "/auth/register",
        json!({ "email": email, "password": password }),
    )
    .await
}

async fn login(env: &Env, email: &str, password: &str) -> reqwest::Response {
    post_json(
        env,
        "/auth/login",
        with_app(json!({ "email": email, "password": password })),
    )
    .await
}

async fn verify(env: &Env, email: &str, password: &str, code: &str) -> reqwest::Response {
    post_json(
        env,
        "/auth/verify-email",
        with_app(json!({ "email": email, "password": password, "code": code })),
    )
    .await
}

fn last_code(env: &Env) -> String {
    sent_codes(env).pop().expect("a code was sent")
}

async fn problem_code(r: reqwest::Response) -> (u16, String) {
    let status = r.status().as_u16();
    let body: Value = r.json().await.unwrap();
    (status, body["code"].as_str().unwrap_or_default().to_owned())
}

/// Signs up and confirms `email`: the token response of the confirmation's exchange code.
async fn confirmed(env: &Env, email: &str, password: &str) -> Value {
    assert_eq!(register(env, email, password).await.status(), 202);
    let r = verify(env, email, password, &last_code(env)).await;
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    let tokens = env.redeem(body["code"].as_str().unwrap()).await;
    assert_eq!(tokens.status(), 200);
    tokens.json().await.unwrap()
}

#[tokio::test]
async fn sign_up_confirm_and_sign_in_end_in_exchange_codes_the_app_redeems() {
    let env = local_env().await;
    let r = register(&env, "Ann@Example.com", PASSWORD).await;
    assert_eq!(r.status(), 202);
    assert_eq!(
        r.json::<Value>().await.unwrap(),
        json!({ "status": "verification_sent" })
    );
    assert_eq!(recipients(&env), ["ann@example.com"]);

    // Not confirmed yet: no sign-in, even with the right password.
    assert_eq!(
        problem_code(login(&env, "ann@example.com", PASSWORD).await).await,
        (403, "email_not_verified".into())
    );

    let code = last_code(&env);
    assert_eq!(
        problem_code(verify(&env, "ann@example.com", "wrong password", &code).await).await,
        (401, "invalid_credentials".into()),
        "the code alone does not confirm: the password is needed too"
    );
    let r = verify(&env, "ann@example.com", PASSWORD, &code).await;
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["state"], "app-state-1");
    assert_eq!(body["redirect_uri"], REDIRECT_URI);
    let tokens: Value = env
        .redeem(body["code"].as_str().unwrap())
        .await
        .json()
        .await
        .unwrap();
    let me = env.profile(&tokens).await;
    assert_eq!(me["emails"][0]["email"], "ann@example.com");
    assert_eq!(me["emails"][0]["verified"], true, "{me}");
    assert_eq!(
        problem_code(verify(&env, "ann@example.com", PASSWORD, &code).await).await,
        (409, "already_verified".into()),
        "a code works once"
    );

    let r = login(&env, "ann@example.com", PASSWORD).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["cache-control"], "no-store");
    let body: Value = r.json().await.unwrap();
    let again = env.redeem(body["code"].as_str().unwrap()).await;
    assert_eq!(again.status(), 200);
    let again: Value = again.json().await.unwrap();
    assert_eq!(env.user_of(&again).await, env.user_of(&tokens).await);

    let kinds = env.app.db.texts(
        "SELECT kind || ':' || result || ':' || reason AS t FROM audit_events ORDER BY at, id",
    );
    assert_eq!(
        kinds,
        [
            "local_sign_up:complete:created",
            "local_sign_in:failure:email_not_verified",
            "local_verify_email:failure:wrong_password",
            "local_verify_email:complete:email_code",
            "local_sign_in:complete:password",
        ]
    );
}

#[tokio::test]
async fn the_pages_sign_up_confirm_and_return_to_the_app_with_a_code() {
    let env = local_env().await;
    let query = format!(
        "?client_id={CLIENT_ID}&redirect_uri={}&state=app-state-1",
        enc(REDIRECT_URI)
    );
    let page = env.get_page(&format!("/auth/local/sign-up{query}")).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains("Create an account"));
    let target = [
        ("client_id", CLIENT_ID),
        ("redirect_uri", REDIRECT_URI),
        ("state", "app-state-1"),
    ];
    let form = |extra: &[(&'static str, &'static str)], token: &str| {
        let mut f: Vec<(&str, String)> =
            target.iter().map(|(k, v)| (*k, (*v).to_owned())).collect();
        f.push(("csrf", token.to_owned()));
        f.extend(extra.iter().map(|(k, v)| (*k, (*v).to_owned())));
        f
    };
    let post = |path: &'static str, f: Vec<(&'static str, String)>| {
        let env = &env;
        async move {
            land(
                env.app
                    .client
                    .post(env.url(path))
                    .form(&f)
                    .send()
                    .await
                    .unwrap(),
            )
            .await
        }
    };

    let weak = post(
        "/auth/local/sign-up",
        form(
            &[("email", "bo@example.com"), ("password", "password1")],
            &csrf(&page.body),
        ),
    )
    .await;
    assert_eq!(weak.status, 400);
    assert!(weak.body.contains("most common passwords"), "{}", weak.body);

    let unicode = "pässwörd für bö";
    let signed_up = post(
        "/auth/local/sign-up",
        form(
            &[("email", "bo@example.com"), ("password", unicode)],
            &csrf(&page.body),
        ),
    )
    .await;
    assert_eq!(signed_up.status, 200, "{}", signed_up.body);
    assert!(signed_up.body.contains("Confirm your email address"));
    assert!(!signed_up.body.contains(unicode), "no password in the page");

    let code = last_code(&env);
    let mut f = form(&[("email", "bo@example.com")], &csrf(&signed_up.body));
    f.push(("password", unicode.to_owned()));
    f.push(("code", code));
    let done = post("/auth/local/verify-email", f).await;
    let code = support::link::assert_redirected_to_app_with_code(&done);
    assert!(done.param("iss").is_some());
    assert_eq!(env.redeem(&code).await.status(), 200);

    let sign_in = env.get_page(&format!("/auth/local/sign-in{query}")).await;
    let mut f = form(&[("email", "bo@example.com")], &csrf(&sign_in.body));
    f.push(("password", "not it at all".into()));
    let wrong = post("/auth/local/sign-in", f).await;
    assert_eq!(wrong.status, 400);
    assert!(wrong.body.contains("not right"));
    let mut f = form(&[("email", "bo@example.com")], &csrf(&sign_in.body));
    f.push(("password", unicode.to_owned()));
    let done = post("/auth/local/sign-in", f).await;
    let code = support::link::assert_redirected_to_app_with_code(&done);
    assert_eq!(env.redeem(&code).await.status(), 200);
}

#[tokio::test]
async fn a_form_without_its_csrf_token_is_refused_and_a_bad_app_link_gets_braids_page() {
    let env = local_env().await;
    let r = env
        .post_form(
            "/auth/local/sign-in",
            &[
                ("client_id", CLIENT_ID),
                ("redirect_uri", REDIRECT_URI),
                ("email", "a@example.com"),
                ("password", PASSWORD),
                ("csrf", "forged"),
            ],
        )
        .await;
    assert_eq!(r.status, 400);
    assert!(r.body.contains("did not come from this site"), "{}", r.body);
    let bad = env
        .get_page("/auth/local/sign-in?client_id=app&redirect_uri=https%3A%2F%2Fevil.example%2Fcb")
        .await;
    assert_eq!(bad.status, 400);
    assert!(bad.body.contains("not registered"), "{}", bad.body);
}

#[tokio::test]
async fn local_accounts_are_off_unless_enabled() {
    let env = env_with(manual).await;
    assert_eq!(
        register(&env, "a@example.com", PASSWORD).await.status(),
        404
    );
    assert_eq!(env.get_page("/auth/local/sign-in").await.status, 404);
}

#[tokio::test]
async fn a_wrong_password_and_an_unknown_address_get_the_same_answer() {
    let env = local_env().await;
    confirmed(&env, "ann@example.com", PASSWORD).await;
    let wrong = login(&env, "ann@example.com", "not the password").await;
    let unknown = login(&env, "nobody@example.com", PASSWORD).await;
    assert_eq!(wrong.status(), 401);
    assert_eq!(unknown.status(), 401);
    assert_eq!(
        wrong.json::<Value>().await.unwrap(),
        unknown.json::<Value>().await.unwrap()
    );
    let reasons = env
        .app
        .db
        .texts("SELECT reason AS t FROM audit_events WHERE kind = 'local_sign_in' ORDER BY at, id");
    assert_eq!(reasons, ["wrong_password", "unknown_address"]);
}

#[tokio::test]
async fn e16_password_attempts_are_limited_per_account_and_for_unknown_addresses_alike() {
    let env = env_with(|s| {
        local(s);
        s.limits.password_attempts_per_account = 4;
    })
    .await;
    // The confirmation checked the password once.
    confirmed(&env, "ann@example.com", PASSWORD).await;
    for _ in 0..3 {
        assert_eq!(
            login(&env, "ann@example.com", "guess guess").await.status(),
            401
        );
    }
    for _ in 0..4 {
        assert_eq!(
            login(&env, "nobody@example.com", "guess guess")
                .await
                .status(),
            401
        );
    }
    for email in ["ann@example.com", "nobody@example.com"] {
        let r = login(&env, email, PASSWORD).await;
        assert_eq!(r.status(), 429, "{email}: even the right password waits");
        assert!(r.headers().contains_key("retry-after"));
        assert_eq!(problem_code(r).await.1, "too_many_attempts");
    }
}

#[tokio::test]
async fn weak_and_common_passwords_are_refused_and_unicode_is_kept_whole() {
    let env = local_env().await;
    for (password, code) in [
        ("short", "password_too_short"),
        ("PassWord", "password_too_common"),
        ("iloveyou", "password_too_common"),
        ("1234567890", "password_too_common"),
    ] {
        assert_eq!(
            problem_code(register(&env, "ann@example.com", password).await).await,
            (400, code.into()),
            "{password}"
        );
    }
    let long = "x".repeat(129);
    assert_eq!(
        problem_code(register(&env, "ann@example.com", &long).await).await,
        (400, "password_too_long".into())
    );
    assert_eq!(env.count("users"), 0);
    // Eight characters, not eight bytes; and a longer one that only differs at its end.
    let unicode = "ðåßwörð-ünïcode-and-more";
    confirmed(&env, "ann@example.com", unicode).await;
    assert_eq!(
        login(&env, "ann@example.com", "ðåßwörð-ünïcode-and-mor")
            .await
            .status(),
        401,
        "not truncated"
    );
    assert_eq!(login(&env, "ann@example.com", unicode).await.status(), 200);
}

#[tokio::test]
async fn signing_up_with_a_taken_address_answers_the_same_and_mails_its_owner() {
    let env = local_env().await;
    user_with(&env, Some(("bob@example.com", true)), None);
    let taken = register(&env, "bob@example.com", PASSWORD).await;
    let fresh = register(&env, "new@example.com", PASSWORD).await;
    assert_eq!(taken.status(), fresh.status());
    assert_eq!(
        taken.json::<Value>().await.unwrap(),
        fresh.json::<Value>().await.unwrap()
    );
    assert_eq!(env.count("users"), 2, "no second user for bob");
    let subjects = env
        .app
        .db
        .texts("SELECT recipient || ': ' || subject AS t FROM outbox ORDER BY created_at, id");
    assert_eq!(
        subjects,
        [
            "bob@example.com: You already have an account",
            "new@example.com: Confirm your email address",
        ]
    );
}

#[tokio::test]
async fn two_sign_ups_racing_for_one_address_make_one_account() {
    let env = local_env().await;
    let (a, b) = tokio::join!(
        register(&env, "race@example.com", PASSWORD),
        register(&env, "race@example.com", "another good password"),
    );
    assert_eq!(
        (a.status(), b.status()),
        (StatusCode::ACCEPTED, StatusCode::ACCEPTED)
    );
    assert_eq!(env.count("local_accounts"), 1);
    assert_eq!(env.count("users"), 1);
    assert_eq!(env.count("user_emails"), 1);
}

#[tokio::test]
async fn f18_a_password_reset_revokes_every_refresh_token_and_replaces_the_password() {
    let env = local_env().await;
    let tokens = confirmed(&env, "ann@example.com", PASSWORD).await;
    let r = post_json(
        &env,
        "/auth/password-reset",
        json!({ "email": "ann@example.com" }),
    )
    .await;
    assert_eq!(r.status(), 202);
    let code = last_code(&env);
    let r = post_json(
        &env,
        "/auth/password-reset/confirm",
        json!({ "email": "ann@example.com", "code": code, "password": "a brand new passphrase" }),
    )
    .await;
    assert_eq!(r.status(), 200);
    let refresh = env.refresh(tokens["refresh_token"].as_str().unwrap()).await;
    assert_eq!(error_json(refresh).await, (400, "invalid_grant".into()));
    assert_eq!(login(&env, "ann@example.com", PASSWORD).await.status(), 401);
    assert_eq!(
        login(&env, "ann@example.com", "a brand new passphrase")
            .await
            .status(),
        200
    );
    let again = post_json(
        &env,
        "/auth/password-reset/confirm",
        json!({ "email": "ann@example.com", "code": code, "password": "yet another passphrase" }),
    )
    .await;
    assert_eq!(
        problem_code(again).await,
        (400, "invalid_code".into()),
        "single use"
    );
}

#[tokio::test]
async fn a_reset_for_an_unknown_address_answers_like_one_for_a_known_address() {
    let env = local_env().await;
    confirmed(&env, "ann@example.com", PASSWORD).await;
    let known = post_json(
        &env,
        "/auth/password-reset",
        json!({ "email": "ann@example.com" }),
    )
    .await;
    let unknown = post_json(
        &env,
        "/auth/password-reset",
        json!({ "email": "nobody@example.com" }),
    )
    .await;
    assert_eq!(known.status(), 202);
    assert_eq!(unknown.status(), 202);
    assert_eq!(
        known.json::<Value>().await.unwrap(),
        unknown.json::<Value>().await.unwrap()
    );
    assert!(!recipients(&env).contains(&"nobody@example.com".to_owned()));
    let confirm = |email: &'static str| {
        post_json(
            &env,
            "/auth/password-reset/confirm",
            json!({ "email": email, "code": "000000", "password": "a brand new passphrase" }),
        )
    };
    let (k, u) = (
        confirm("ann@example.com").await,
        confirm("nobody@example.com").await,
    );
    assert_eq!(k.status(), u.status());
    assert_eq!(
        k.json::<Value>().await.unwrap(),
        u.json::<Value>().await.unwrap()
    );
}

#[tokio::test]
async fn e23_codes_are_stored_keyed_and_die_after_too_many_wrong_guesses() {
    let env = local_env().await;
    register(&env, "ann@example.com", PASSWORD).await;
    let code = last_code(&env);
    let stored = env
        .app
        .db
        .texts("SELECT purpose || ':' || attempts || ':' || max_attempts AS t FROM account_codes");
    assert_eq!(stored, ["verify_email:0:5"]);
    let hex = env.app.db.texts(match env.app.db.db.backend() {
        braid_storage::Backend::Sqlite => "SELECT hex(code_hash) AS t FROM account_codes",
        braid_storage::Backend::Postgres => {
            "SELECT upper(encode(code_hash, 'hex')) AS t FROM account_codes"
        }
    });
    let sha = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, code.as_bytes());
    let sha_hex: String = sha.as_ref().iter().map(|b| format!("{b:02X}")).collect();
    assert_ne!(hex[0], sha_hex, "keyed, not a plain hash");
    assert!(!hex[0].contains(&code));
    let wrong = if code == "111111" { "222222" } else { "111111" };
    for left in (1..5).rev() {
        let r = verify(&env, "ann@example.com", PASSWORD, wrong).await;
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["code"], "invalid_code");
        assert!(body["detail"].as_str().is_some(), "{body} {left}");
    }
    assert_eq!(
        problem_code(verify(&env, "ann@example.com", PASSWORD, wrong).await).await,
        (400, "invalid_code".into())
    );
    assert_eq!(
        problem_code(verify(&env, "ann@example.com", PASSWORD, &code).await).await,
        (400, "no_code".into()),
        "the right code after five wrong ones no longer works"
    );
    let r = post_json(
        &env,
        "/auth/verify-email/resend",
        json!({ "email": "ann@example.com" }),
    )
    .await;
    assert_eq!(r.status(), 202);
    let fresh = last_code(&env);
    assert_eq!(
        verify(&env, "ann@example.com", PASSWORD, &fresh)
            .await
            .status(),
        200
    );
}

#[tokio::test]
async fn d02_an_unconfirmed_local_address_is_never_linked_automatically() {
    let env = env_with(|s| {
        local(s);
        s.account_linking.resolution = Resolution::Automatic;
    })
    .await;
    // The attacker signs up with the victim's address and never confirms it.
    assert_eq!(
        register(&env, "victim@example.com", PASSWORD)
            .await
            .status(),
        202
    );
    let local_user = env.app.db.texts("SELECT user_id AS t FROM local_accounts");
    // The victim signs in with a provider that verified the address: no automatic link, at
    // most a manual one, which needs the attacker's password.
    let landing = env.arrive("victim-sub", "victim@example.com").await;
    assert_eq!(landing.location.as_ref().map(url::Url::path), Some(SELECT));
    assert_eq!(env.count("identities"), 0);
    let reason = env
        .app
        .db
        .texts("SELECT reason AS t FROM audit_events WHERE kind = 'federated_login'");
    assert_eq!(reason, ["unverified_match_only"]);
    assert_eq!(local_user.len(), 1);
}

#[tokio::test]
async fn d10_identities_linked_while_the_address_was_unconfirmed_go_when_it_is_confirmed() {
    let env = local_env().await;
    // The attacker pre-creates an account with the victim's address and links their own
    // provider account to it by its password (a manual link).
    assert_eq!(
        register(&env, "victim@example.com", PASSWORD)
            .await
            .status(),
        202
    );
    let local_user = env.app.db.texts("SELECT user_id AS t FROM local_accounts")[0].clone();
    let verify_page = env.at_verify("attacker-sub", "victim@example.com").await;
    let linked = env
        .post_form(
            VERIFY,
            &[
                ("csrf", &csrf(&verify_page)),
                ("method", "password"),
                ("password", PASSWORD),
            ],
        )
        .await;
    let code = support::link::assert_redirected_to_app_with_code(&linked);
    let attacker_tokens: Value = env.redeem(&code).await.json().await.unwrap();
    assert_eq!(env.user_of(&attacker_tokens).await, local_user);

    // The victim takes the address back by the password reset (the code reaches only them).
    post_json(
        &env,
        "/auth/password-reset",
        json!({ "email": "victim@example.com" }),
    )
    .await;
    let r = post_json(
        &env,
        "/auth/password-reset/confirm",
        json!({ "email": "victim@example.com", "code": last_code(&env), "password": "the victim's own passphrase" }),
    )
    .await;
    assert_eq!(r.status(), 200);

    assert_eq!(env.count("identities"), 0, "the attacker's link is gone");
    assert_eq!(
        error_json(
            env.refresh(attacker_tokens["refresh_token"].as_str().unwrap())
                .await
        )
        .await,
        (400, "invalid_grant".into())
    );
    let detail = env
        .app
        .db
        .texts("SELECT detail AS t FROM audit_events WHERE kind = 'local_password_reset'");
    assert!(
        detail[0].contains(r#""removed_identities":1"#),
        "{detail:?}"
    );
    // The attacker's provider account no longer signs in to the victim's account: with the
    // address now confirmed it is offered only as a manual link, which needs the victim's
    // password or a code sent to the victim.
    let again = env.arrive("attacker-sub", "victim@example.com").await;
    assert_eq!(again.location.as_ref().map(url::Url::path), Some(SELECT));
    assert_eq!(
        login(&env, "victim@example.com", PASSWORD).await.status(),
        401
    );
}
