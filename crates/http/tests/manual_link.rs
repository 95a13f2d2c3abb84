//! The manual link (DESIGN §4): a sign-in that matches existing accounts it may not link on its
//! own goes to the select page; the person picks their account and proves it with its password
//! or a code sent to its stored verified address; SECURITY-CASES group E.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use braid_http::settings::{ConflictAction, OnAmbiguity, Resolution};
use serde_json::Value;
use support::flow::*;
use support::link::*;

#[tokio::test]
async fn a_match_it_may_not_link_alone_starts_a_manual_link_and_writes_nothing_else() {
    let env = manual_env().await;
    create_user(&env, "alice@example.com", None);
    let landing = env.arrive("sub-1", "alice@example.com").await;
    assert_eq!(landing.status, 303);
    assert_eq!(landing.location.as_ref().unwrap().path(), SELECT);
    assert_eq!(env.count("users"), 1, "no user created");
    assert_eq!(env.count("identities"), 0, "nothing linked");
    assert_eq!(env.count("exchange_codes"), 0, "no code for the app yet");
    assert_eq!(env.count("link_flows"), 1);
    let initiated = r#"braid_link_results_total{reason="manual_resolution",result="initiated"}"#;
    assert_eq!(env.metric(initiated).await, Some(1.0));
    assert_eq!(
        env.app.db.texts("SELECT result AS t FROM audit_events"),
        ["initiated"]
    );
}

#[tokio::test]
async fn e01_the_select_page_shows_masked_hints_only() {
    let env = manual_env().await;
    let user = create_user(&env, "alice@example.com", None);
    let page = env.at_select("sub-1", "alice@example.com").await;
    assert!(page.contains("a***@e***.com"), "{page}");
    assert!(!page.contains("alice@example.com"));
    assert!(!page.contains(&user), "no internal id");
}

#[tokio::test]
async fn e02_a_choice_outside_the_offered_list_is_refused_and_sends_nothing() {
    let env = manual_env().await;
    let user = create_user(&env, "alice@example.com", None);
    let page = env.at_select("sub-1", "alice@example.com").await;
    for choice in ["1", "7", "-1", user.as_str(), ""] {
        let r = env
            .post_form(SELECT, &[("csrf", &csrf(&page)), ("choice", choice)])
            .await;
        assert_eq!(r.status, 400, "{choice}");
    }
    assert_eq!(env.count("outbox"), 0);
    assert_eq!(env.count("verification_codes"), 0);
}

#[tokio::test]
async fn e03_forms_without_their_flows_csrf_token_are_refused_and_change_nothing() {
    let env = manual_env().await;
    create_user(&env, "alice@example.com", None);
    env.at_select("sub-1", "alice@example.com").await;
    for form in [
        vec![("choice", "0")],
        vec![("choice", "0"), ("csrf", "forged")],
    ] {
        let r = env.post_form(SELECT, &form).await;
        assert_eq!(r.status, 403);
    }
    let r = env
        .post_form(VERIFY, &[("method", "code"), ("code", "123456")])
        .await;
    assert_eq!(r.status, 403);
    assert_eq!(env.count("outbox"), 0);
    assert_eq!(env.count("identities"), 0);
}

#[tokio::test]
async fn e04_e20_an_address_in_the_form_is_ignored_the_code_goes_to_the_stored_one() {
    let env = manual_env().await;
    create_user(&env, "alice@example.com", None);
    let page = env.at_select("sub-1", "alice@example.com").await;
    let r = env
        .post_form(
            SELECT,
            &[
                ("csrf", &csrf(&page)),
                ("choice", "0"),
                ("email", "attacker@evil.example"),
                ("phone", "+12025550199"),
                ("destination", "attacker@evil.example"),
            ],
        )
        .await;
    assert_eq!(r.status, 303);
    assert_eq!(recipients(&env), ["alice@example.com"]);
}

#[tokio::test]
async fn a_code_sent_to_the_stored_address_links_and_returns_to_the_app_e19() {
    let env = manual_env().await;
    let user = create_user(&env, "alice@example.com", None);
    let page = env.at_verify("sub-1", "alice@example.com").await;
    assert!(
        page.contains("a***@e***.com"),
        "says where the code went: {page}"
    );
    let code = sent_codes(&env).pop().unwrap();
    assert!(!page.contains(&code), "the page never shows the code");
    let done = env.enter_code(&page, &code).await;
    let app_code = assert_redirected_to_app_with_code(&done);
    assert_eq!(done.param("iss").as_deref(), Some(env.app.address.as_str()));
    // The link cookie is cleared.
    let cleared = env.app.client.get(env.url(SELECT)).send().await.unwrap();
    assert_eq!(cleared.status(), 400);
    // The app redeems the code for the existing account.
    let tokens: Value = env.redeem(&app_code).await.json().await.unwrap();
    assert_eq!(env.user_of(&tokens).await, user);
    assert_eq!(env.count("users"), 1);
    assert_eq!(env.count("identities"), 1);
    // The owner is told at the verified address, and the audit row says how it was proven.
    assert_eq!(recipients(&env), ["alice@example.com", "alice@example.com"]);
    let details = env
        .app
        .db
        .texts("SELECT detail AS t FROM audit_events WHERE kind = 'manual_link'");
    assert_eq!(details, [r#"{"proof":"email_code"}"#]);
}

#[tokio::test]
async fn an_account_with_a_password_is_proven_with_it() {
    let env = manual_env().await;
    let user = create_user(&env, "alice@example.com", None);
    give_password(&env, &user, "correct horse battery staple");
    let page = env.at_verify("sub-1", "alice@example.com").await;
    assert!(page.contains(r#"type="password""#), "{page}");
    assert_eq!(env.count("outbox"), 0, "no code for a password account");
    let wrong = env
        .post_form(
            VERIFY,
            &[
                ("csrf", &csrf(&page)),
                ("method", "password"),
                ("password", "nope"),
            ],
        )
        .await;
    assert_eq!(wrong.status, 400);
    assert!(
        wrong.body.contains("password is not right"),
        "{}",
        wrong.body
    );
    let done = env
        .post_form(
            VERIFY,
            &[
                ("csrf", &csrf(&page)),
                ("method", "password"),
                ("password", "correct horse battery staple"),
            ],
        )
        .await;
    let code = assert_redirected_to_app_with_code(&done);
    let tokens: Value = env.redeem(&code).await.json().await.unwrap();
    assert_eq!(env.user_of(&tokens).await, user);
}

#[tokio::test]
async fn e05_five_wrong_codes_end_the_flow_and_the_right_one_then_fails() {
    let env = manual_env().await;
    create_user(&env, "alice@example.com", None);
    let page = env.at_verify("sub-1", "alice@example.com").await;
    let code = sent_codes(&env).pop().unwrap();
    let wrong = if code == "000000" { "111111" } else { "000000" };
    for left in (1..5).rev() {
        let r = env.enter_code(&page, wrong).await;
        assert_eq!(r.status, 400);
        assert!(r.body.contains(&format!("{left} tr")), "{}", r.body);
    }
    let fifth = env.enter_code(&page, wrong).await;
    assert_eq!(fifth.status, 400);
    assert!(
        fifth.body.contains("Too many wrong codes"),
        "{}",
        fifth.body
    );
    let right = env.enter_code(&page, &code).await;
    assert_eq!(right.status, 400);
    assert_eq!(env.count("identities"), 0);
    assert_eq!(env.count("exchange_codes"), 0);
}

#[tokio::test]
async fn e06_parallel_guesses_evaluate_at_most_five() {
    let env = manual_env().await;
    create_user(&env, "alice@example.com", None);
    let page = env.at_verify("sub-1", "alice@example.com").await;
    let code = sent_codes(&env).pop().unwrap();
    let token = csrf(&page);
    let mut guesses = tokio::task::JoinSet::new();
    for i in 0..50 {
        let guess = format!("{:06}", (code.parse::<u32>().unwrap() + 1 + i) % 1_000_000);
        let (client, url, token) = (env.app.client.clone(), env.url(VERIFY), token.clone());
        guesses.spawn(async move {
            client
                .post(url)
                .form(&[
                    ("csrf", token.as_str()),
                    ("method", "code"),
                    ("code", guess.as_str()),
                ])
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap()
        });
    }
    let answers = guesses.join_all().await;
    // Four wrong guesses are answered "not right"; the fifth ends the flow, and every other
    // request finds the code used up without being compared.
    let wrong = answers.iter().filter(|a| a.contains("not right")).count();
    assert!(wrong <= 4, "{wrong} guesses were answered as wrong");
    let attempts = env
        .app
        .db
        .texts("SELECT CAST(attempts AS TEXT) AS t FROM verification_codes");
    assert_eq!(attempts, ["5"]);
    assert_eq!(env.count("identities"), 0);
}

#[tokio::test]
async fn e07_an_expired_code_is_refused() {
    let env = manual_env().await;
    create_user(&env, "alice@example.com", None);
    let page = env.at_verify("sub-1", "alice@example.com").await;
    let code = sent_codes(&env).pop().unwrap();
    env.app
        .db
        .execute("UPDATE verification_codes SET expires_at = 1");
    let r = env.enter_code(&page, &code).await;
    assert_eq!(r.status, 400);
    assert!(r.body.contains("expired"), "{}", r.body);
    assert_eq!(env.count("identities"), 0);
}

#[tokio::test]
async fn e08_e13_a_used_code_and_a_finished_flows_cookie_do_not_work_again() {
    let env = manual_env().await;
    create_user(&env, "alice@example.com", None);
    let page = env.at_verify("sub-1", "alice@example.com").await;
    let cookie = link_cookie(&env);
    let code = sent_codes(&env).pop().unwrap();
    assert_redirected_to_app_with_code(&env.enter_code(&page, &code).await);
    // The same browser state replayed: the flow is consumed server-side.
    let replay = reqwest::Client::new()
        .post(env.url(VERIFY))
        .header("cookie", format!("braid_link={cookie}"))
        .form(&[
            ("csrf", csrf(&page).as_str()),
            ("method", "code"),
            ("code", &code),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(replay.status(), 400);
    assert!(replay.text().await.unwrap().contains("has ended"));
    assert_eq!(env.count("identities"), 1);
    assert_eq!(env.count("exchange_codes"), 1);
}

#[tokio::test]
async fn e10_resends_are_limited_and_each_ends_the_previous_code() {
    let env = manual_env().await;
    create_user(&env, "alice@example.com", None);
    let page = env.at_verify("sub-1", "alice@example.com").await;
    let first = sent_codes(&env).pop().unwrap();
    for _ in 0..3 {
        let r = env
            .post_form(VERIFY, &[("csrf", &csrf(&page)), ("method", "resend")])
            .await;
        assert_eq!(r.status, 303, "{}", r.body);
    }
    let fourth = env
        .post_form(VERIFY, &[("csrf", &csrf(&page)), ("method", "resend")])
        .await;
    assert_eq!(fourth.status, 429);
    let codes = sent_codes(&env);
    assert_eq!(codes.len(), 4);
    let latest = codes.last().unwrap().clone();
    if first != latest {
        let old = env.enter_code(&page, &first).await;
        assert_eq!(old.status, 400, "an earlier code no longer works");
    }
    assert_redirected_to_app_with_code(&env.enter_code(&page, &latest).await);
}

#[tokio::test]
async fn e12_e14_a_tampered_or_expired_link_state_is_refused() {
    let env = manual_env().await;
    create_user(&env, "alice@example.com", None);
    let page = env.at_select("sub-1", "alice@example.com").await;
    let cookie = link_cookie(&env);
    let mut bytes = cookie.clone().into_bytes();
    bytes[10] = if bytes[10] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(bytes).unwrap();
    let r = reqwest::Client::new()
        .post(env.url(SELECT))
        .header("cookie", format!("braid_link={tampered}"))
        .form(&[("csrf", csrf(&page).as_str()), ("choice", "0")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    env.app.db.execute("UPDATE link_flows SET expires_at = 1");
    let expired = env
        .post_form(SELECT, &[("csrf", &csrf(&page)), ("choice", "0")])
        .await;
    assert_eq!(expired.status, 400);
    assert!(expired.body.contains("has ended"), "{}", expired.body);
    assert_eq!(env.count("outbox"), 0);
}

#[tokio::test]
async fn e15_no_code_or_secret_in_the_link_cookie_or_the_pages() {
    let env = manual_env().await;
    create_user(&env, "alice@example.com", None);
    let page = env.at_verify("sub-1", "alice@example.com").await;
    let cookie = link_cookie(&env);
    let code = sent_codes(&env).pop().unwrap();
    assert!(!cookie.contains(&code));
    assert!(!page.contains(&code));
    assert!(!page.contains("alice@example.com"));
    let stored = env
        .app
        .db
        .texts("SELECT destination AS t FROM verification_codes");
    assert_eq!(
        stored,
        ["alice@example.com"],
        "the code itself is not stored"
    );
}

#[tokio::test]
async fn e16_wrong_passwords_are_limited_per_account() {
    let env = manual_env().await;
    let user = create_user(&env, "alice@example.com", None);
    give_password(&env, &user, "correct horse battery staple");
    let page = env.at_verify("sub-1", "alice@example.com").await;
    let mut statuses = Vec::new();
    for _ in 0..8 {
        let r = env
            .post_form(
                VERIFY,
                &[
                    ("csrf", &csrf(&page)),
                    ("method", "password"),
                    ("password", "guess"),
                ],
            )
            .await;
        statuses.push(r.status.as_u16());
    }
    assert!(statuses.contains(&429), "{statuses:?}");
    let right = env
        .post_form(
            VERIFY,
            &[
                ("csrf", &csrf(&page)),
                ("method", "password"),
                ("password", "correct horse battery staple"),
            ],
        )
        .await;
    assert_eq!(right.status, 429, "still limited: {}", right.body);
    assert_eq!(env.count("identities"), 0);
}

#[tokio::test]
async fn e17_the_password_method_for_an_account_without_one_is_refused() {
    let env = manual_env().await;
    create_user(&env, "alice@example.com", None);
    let page = env.at_verify("sub-1", "alice@example.com").await;
    let r = env
        .post_form(
            VERIFY,
            &[
                ("csrf", &csrf(&page)),
                ("method", "password"),
                ("password", "x"),
            ],
        )
        .await;
    assert_eq!(r.status, 400);
    assert_eq!(env.count("identities"), 0);
}

#[tokio::test]
async fn e18_verifying_before_choosing_an_account_is_refused() {
    let env = manual_env().await;
    create_user(&env, "alice@example.com", None);
    let page = env.at_select("sub-1", "alice@example.com").await;
    assert_eq!(env.get_page(VERIFY).await.status, 400);
    let r = env
        .post_form(
            VERIFY,
            &[
                ("csrf", &csrf(&page)),
                ("method", "code"),
                ("code", "123456"),
            ],
        )
        .await;
    assert_eq!(r.status, 400);
    assert_eq!(env.count("identities"), 0);
}

#[tokio::test]
async fn the_person_may_create_a_new_account_instead_where_the_policy_allows() {
    let env = manual_env().await;
    let existing = create_user(&env, "alice@example.com", None);
    let page = env.at_select("sub-1", "alice@example.com").await;
    assert!(page.contains("Create a new account instead"), "{page}");
    let done = env
        .post_form(SELECT, &[("csrf", &csrf(&page)), ("choice", "create")])
        .await;
    let code = assert_redirected_to_app_with_code(&done);
    let tokens: Value = env.redeem(&code).await.json().await.unwrap();
    assert_ne!(env.user_of(&tokens).await, existing);
    assert_eq!(env.count("users"), 2);
}

#[tokio::test]
async fn an_ambiguous_match_offers_no_new_account_when_conflicts_are_errors() {
    let env = env_with(|s| {
        manual(s);
        s.account_linking.resolution = Resolution::Automatic;
        s.account_linking.on_ambiguity = OnAmbiguity::Manual;
        s.account_linking.conflict_action = ConflictAction::Error;
        s.federated_login
            .providers
            .get_mut("idp")
            .unwrap()
            .trust_phone = Some(true);
    })
    .await;
    two_matching_accounts(&env);
    let landing = env.login().await;
    assert_eq!(landing.location.as_ref().unwrap().path(), SELECT);
    let page = env.get_page(SELECT).await.body;
    assert!(
        page.contains("a***@e***.com") && page.contains("o***@e***.com"),
        "{page}"
    );
    assert!(!page.contains("Create a new account instead"));
    let refused = env
        .post_form(SELECT, &[("csrf", &csrf(&page)), ("choice", "create")])
        .await;
    assert_eq!(refused.status, 400);
    assert_eq!(env.count("users"), 2);
}

#[tokio::test]
async fn cancel_returns_to_the_app_with_access_denied_and_links_nothing() {
    let env = manual_env().await;
    create_user(&env, "alice@example.com", None);
    let page = env.at_select("sub-1", "alice@example.com").await;
    let r = env
        .post_form(SELECT, &[("csrf", &csrf(&page)), ("choice", "cancel")])
        .await;
    assert_eq!(r.status, 303);
    assert_eq!(r.param("error").as_deref(), Some("access_denied"));
    assert_eq!(r.param("state").as_deref(), Some("app-state-1"));
    assert_eq!(r.param("code"), None);
    assert_eq!(env.count("identities"), 0);
    assert_eq!(env.get_page(SELECT).await.status, 400, "the flow ended");
}

#[tokio::test]
async fn a_back_button_pick_of_another_account_ends_the_first_accounts_code() {
    let env = env_with(|s| {
        manual(s);
        s.federated_login
            .providers
            .get_mut("idp")
            .unwrap()
            .trust_phone = Some(true);
    })
    .await;
    two_matching_accounts(&env);
    env.login().await;
    let select = env.get_page(SELECT).await.body;
    for choice in ["0", "1"] {
        let r = env
            .post_form(SELECT, &[("csrf", &csrf(&select)), ("choice", choice)])
            .await;
        assert_eq!(r.status, 303);
    }
    let codes = sent_codes(&env);
    assert_eq!(codes.len(), 2);
    let page = env.get_page(VERIFY).await.body;
    if codes[0] != codes[1] {
        assert_eq!(env.enter_code(&page, &codes[0]).await.status, 400);
    }
    assert_redirected_to_app_with_code(&env.enter_code(&page, &codes[1]).await);
}

#[tokio::test]
async fn the_link_pages_let_their_forms_end_at_the_app_and_nowhere_else() {
    let env = manual_env().await;
    create_user(&env, "alice@example.com", None);
    env.arrive("sub-1", "alice@example.com").await;
    let r = env.app.client.get(env.url(SELECT)).send().await.unwrap();
    let csp = r.headers()["content-security-policy"].to_str().unwrap();
    // Browsers apply form-action to the redirect after a submitted form: the 303 to the app
    // must be allowed, by its origin only.
    assert!(
        csp.ends_with("form-action 'self' https://app.example"),
        "{csp}"
    );
    assert!(csp.contains("frame-ancestors 'none'"));
}

#[tokio::test]
async fn a_new_code_gives_no_new_tries() {
    let env = manual_env().await;
    create_user(&env, "alice@example.com", None);
    let page = env.at_verify("sub-1", "alice@example.com").await;
    let first = env.enter_code(&page, "000000").await;
    let second_code_wrong = if sent_codes(&env).pop().unwrap() == "000000" {
        "111111"
    } else {
        "000000"
    };
    assert!(first.body.contains("4 tries left") || first.status == 303);
    let resent = env
        .post_form(VERIFY, &[("csrf", &csrf(&page)), ("method", "resend")])
        .await;
    assert_eq!(resent.status, 303);
    let again = env.enter_code(&page, second_code_wrong).await;
    assert_eq!(again.status, 400);
    assert!(again.body.contains("3 tries left"), "{}", again.body);
}

#[tokio::test]
async fn codes_sent_to_one_account_are_limited_per_hour_across_flows() {
    let env = env_with(|s| {
        manual(s);
        s.account_linking.codes.max_sends_per_account_per_hour = 1;
    })
    .await;
    create_user(&env, "alice@example.com", None);
    let page = env.at_verify("sub-1", "alice@example.com").await;
    let resend = env
        .post_form(VERIFY, &[("csrf", &csrf(&page)), ("method", "resend")])
        .await;
    assert_eq!(resend.status, 429, "{}", resend.body);
    assert_eq!(sent_codes(&env).len(), 1);
}

/// The `value`s of the select page's account radio buttons.
fn offered(html: &str) -> Vec<String> {
    html.match_indices(r#"name="choice" value=""#)
        .map(|(i, m)| html[i + m.len()..].split('"').next().unwrap().to_owned())
        .filter(|v| v.chars().all(|c| c.is_ascii_digit()))
        .collect()
}

#[tokio::test]
async fn e21_a_code_never_goes_to_an_unverified_phone() {
    let env = env_with(|s| {
        manual(s);
        s.sms.provider = braid_http::settings::SmsProvider::Log;
    })
    .await;
    // Both match the sign-in's verified phone, but hold it unverified: one can prove itself by
    // its verified email, the other by nothing.
    user_with(
        &env,
        Some(("bob@example.com", true)),
        Some(("+12025550100", false)),
    );
    user_with(&env, None, Some(("+12025550100", false)));
    env.idp.set_account(braid_providers::testing::FakeAccount {
        sub: "sub-1".into(),
        email: Some("new@example.org".into()),
        email_verified: Some(Value::Bool(true)),
        phone_number: Some("+12025550100".into()),
        phone_number_verified: Some(Value::Bool(true)),
        ..Default::default()
    });
    let landing = env.login().await;
    assert_eq!(landing.location.as_ref().unwrap().path(), SELECT);
    let page = env.get_page(SELECT).await.body;
    assert!(!page.contains("text you a code"), "{page}");
    assert!(page.contains("b***@e***.com"), "{page}");
    let choices = offered(&page);
    assert_eq!(choices.len(), 1, "{page}");
    // The account with nothing to prove it by, chosen anyway: refused, nothing sent.
    for index in (0..4)
        .map(|i| i.to_string())
        .filter(|i| !choices.contains(i))
    {
        let r = env
            .post_form(SELECT, &[("csrf", &csrf(&page)), ("choice", &index)])
            .await;
        assert_eq!(r.status, 400, "choice {index}: {}", r.body);
    }
    assert_eq!(env.count("outbox"), 0);
    // The one offered gets its code by email, never by SMS to the unverified phone.
    let picked = env
        .post_form(SELECT, &[("csrf", &csrf(&page)), ("choice", &choices[0])])
        .await;
    assert_eq!(picked.status, 303, "{}", picked.body);
    assert_eq!(recipients(&env), ["bob@example.com"]);
    assert_eq!(
        env.app
            .db
            .texts("SELECT channel AS t FROM verification_codes"),
        ["email"]
    );
}

#[tokio::test]
async fn e22_a_provider_name_and_addresses_are_escaped_on_the_pages() {
    let env = env_with(|s| {
        manual(s);
        if let Some(p) = s.federated_login.providers.get_mut("idp") {
            p.display_name = Some("<img src=x onerror=alert(1)>".into());
        }
    })
    .await;
    create_user(&env, "alice@example.com", None);
    let select = env.at_select("sub-1", "alice@example.com").await;
    assert!(!select.contains("<img"), "{select}");
    assert!(
        select.contains("&lt;img src=x onerror=alert(1)&gt;"),
        "{select}"
    );
    let verify = env
        .post_form(SELECT, &[("csrf", &csrf(&select)), ("choice", "0")])
        .await;
    assert_eq!(verify.status, 303);
    let page = env.get_page(VERIFY).await;
    assert!(!page.body.contains("<img"), "{}", page.body);
    // The notice email names the provider too: escaped in its HTML part.
    let code = sent_codes(&env).pop().unwrap();
    assert_redirected_to_app_with_code(&env.enter_code(&page.body, &code).await);
    let html = env
        .app
        .db
        .texts("SELECT html_body AS t FROM outbox WHERE subject LIKE 'A new sign-in%'");
    assert_eq!(html.len(), 1);
    assert!(!html[0].contains("<img"), "{}", html[0]);
    assert!(html[0].contains("&lt;img"), "{}", html[0]);
}

#[tokio::test]
async fn e23_a_code_is_stored_only_as_a_keyed_hash_bound_to_its_flow_and_account() {
    let env = manual_env().await;
    let user = create_user(&env, "alice@example.com", None);
    env.at_verify("sub-1", "alice@example.com").await;
    let code = sent_codes(&env).pop().unwrap();
    assert!(code.len() == 6 && code.chars().all(|c| c.is_ascii_digit()));
    let row = env.app.db.texts(
        "SELECT CAST(length(code_hash) AS TEXT) || ' ' || CAST(expires_at - created_at AS TEXT) \
         || ' ' || CAST(attempts AS TEXT) || ' ' || user_id || ' ' \
         || CAST(length(flow_id_hash) AS TEXT) AS t FROM verification_codes",
    );
    assert_eq!(row, [format!("32 600000 0 {user} 32")]);
    // The code is in no column: only its HMAC (keyed with the deployment's secret, bound to
    // the flow) is kept.
    let columns = env
        .app
        .db
        .texts("SELECT id || channel || destination || user_id AS t FROM verification_codes");
    assert!(!columns[0].contains(&code));
}
