//! The manual link under races, failures and stale state (SECURITY-CASES group I, G11, H13):
//! a link is written whole or not at all, one of two racing links wins cleanly, and what was
//! true when a code was sent is checked again when it is used.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use braid_core::{Timestamp, UserId};
use braid_http::Settings;
use braid_storage::repo::credentials;
use support::flow::*;
use support::link::*;

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

/// Signs in as the prepared account, picks the offered account `choice`: the verify page.
async fn verify_page_for_choice(env: &Env, choice: &str) -> String {
    let landing = env.login().await;
    assert_eq!(landing.location.as_ref().unwrap().path(), SELECT);
    let select = env.get_page(SELECT).await.body;
    let picked = env
        .post_form(SELECT, &[("csrf", &csrf(&select)), ("choice", choice)])
        .await;
    assert_eq!(picked.status, 303, "{}", picked.body);
    env.get_page(VERIFY).await.body
}

fn count_where(env: &Env, table: &str, condition: &str) -> usize {
    env.app
        .db
        .texts(&format!(
            "SELECT CAST(COUNT(*) AS TEXT) AS t FROM {table} WHERE {condition}"
        ))
        .first()
        .unwrap()
        .parse()
        .unwrap()
}

#[tokio::test]
async fn i03_two_flows_linking_one_identity_to_two_accounts_end_with_one_link() {
    let env = manual_env().await;
    two_matching_accounts(&env);
    let first_page = verify_page_for_choice(&env, "0").await;
    let first_cookie = format!("braid_link={}", link_cookie(&env));
    let first_code = sent_codes(&env).pop().unwrap();
    // The same identity again, in the same browser, choosing the other account.
    let second_page = verify_page_for_choice(&env, "1").await;
    let second_code = sent_codes(&env).pop().unwrap();
    assert_ne!(first_code, second_code);

    let first_csrf = csrf(&first_page);
    let first_form = [
        ("csrf", first_csrf.as_str()),
        ("method", "code"),
        ("code", first_code.as_str()),
    ];
    let (first, second) = tokio::join!(
        post_with_cookie(&env, VERIFY, &first_cookie, &first_form),
        env.enter_code(&second_page, &second_code),
    );
    let mut statuses = [first.status, second.status];
    statuses.sort();
    assert_eq!(statuses, [303, 409], "{} / {}", first.body, second.body);
    let winner = if first.status == 303 { &first } else { &second };
    assert_redirected_to_app_with_code(winner);
    assert_eq!(env.count("identities"), 1);
    assert_eq!(env.count("exchange_codes"), 1);
    assert_eq!(
        count_where(&env, "audit_events", "result = 'complete'"),
        1,
        "one link recorded"
    );
}

#[tokio::test]
async fn i05_i09_a_link_failing_after_the_code_check_consumes_nothing_and_sends_no_notice() {
    let env = manual_env().await;
    create_user(&env, "alice@example.com", None);
    let page = env.at_verify("sub-1", "alice@example.com").await;
    let code = sent_codes(&env).pop().unwrap();
    // Meanwhile the identity was linked to someone else: the link's insert fails after the
    // flow and the code were consumed in the same transaction.
    let other = create_user(&env, "zed@example.com", None);
    env.app.db.execute(&format!(
        "INSERT INTO identities (id, user_id, provider, issuer, subject, claims, created_at, last_login_at) \
         VALUES ('0192f0c4-0000-7000-8000-000000000001', '{other}', 'idp', '{}', 'sub-1', '{{}}', 0, 0)",
        env.idp.issuer()
    ));
    let outbox_before = env.count("outbox");

    let landing = env.enter_code(&page, &code).await;
    assert_eq!(landing.status, 409, "{}", landing.body);
    assert_eq!(
        count_where(&env, "verification_codes", "consumed_at IS NULL"),
        1,
        "the code's consumption rolled back with the link"
    );
    assert_eq!(count_where(&env, "link_flows", "consumed_at IS NULL"), 1);
    assert_eq!(env.count("exchange_codes"), 0);
    assert_eq!(env.count("identities"), 1, "only the other user's");
    assert_eq!(
        env.count("outbox"),
        outbox_before,
        "no 'sign-in method added' notice for a link that did not happen"
    );
}

#[tokio::test]
async fn i06_after_a_link_the_same_sign_in_logs_in_again_without_a_second_link() {
    let env = manual_env().await;
    let user = create_user(&env, "alice@example.com", None);
    let page = env.at_verify("sub-1", "alice@example.com").await;
    let code = sent_codes(&env).pop().unwrap();
    assert_redirected_to_app_with_code(&env.enter_code(&page, &code).await);

    let again = env.arrive("sub-1", "alice@example.com").await;
    let exchange = assert_redirected_to_app_with_code(&again);
    assert_eq!(env.count("identities"), 1);
    assert_eq!(env.count("link_flows"), 1, "no second manual link");
    let tokens: serde_json::Value = env.redeem(&exchange).await.json().await.unwrap();
    assert_eq!(env.user_of(&tokens).await, user);
    assert_eq!(
        env.app.db.texts(
            "SELECT reason AS t FROM audit_events WHERE kind = 'federated_login' ORDER BY at DESC, id DESC"
        )[0],
        "already_linked"
    );
}

#[tokio::test]
async fn i11_a_code_sent_to_an_address_the_account_no_longer_has_verified_proves_nothing() {
    let env = manual_env().await;
    create_user(&env, "alice@example.com", None);
    let page = env.at_verify("sub-1", "alice@example.com").await;
    let code = sent_codes(&env).pop().unwrap();
    // The owner lost control of the address and support marked it unverified.
    env.app
        .db
        .execute("UPDATE user_emails SET verified_at = NULL");
    let landing = env.enter_code(&page, &code).await;
    assert_eq!(landing.status, 409, "{}", landing.body);
    assert_eq!(env.count("identities"), 0);
    assert_eq!(env.count("exchange_codes"), 0);
}

#[tokio::test]
async fn i11_an_account_that_no_longer_matches_the_sign_in_is_not_linked_even_with_its_password() {
    let env = manual_env().await;
    let user = create_user(&env, "alice@example.com", None);
    give_password(&env, &user, "correct horse battery staple");
    let page = env.at_verify("sub-1", "alice@example.com").await;
    assert!(page.contains("password"), "{page}");
    // Between the choice and the proof the account changed its address.
    env.app
        .db
        .execute("UPDATE user_emails SET email = 'alice.new@example.com'");
    let landing = env
        .post_form(
            VERIFY,
            &[
                ("csrf", &csrf(&page)),
                ("method", "password"),
                ("password", "correct horse battery staple"),
            ],
        )
        .await;
    assert_eq!(landing.status, 409, "{}", landing.body);
    assert_eq!(env.count("identities"), 0);
}

#[tokio::test]
async fn g11_a_link_flow_lives_a_fixed_time_from_the_sign_in_and_activity_does_not_extend_it() {
    let env = manual_env().await;
    create_user(&env, "alice@example.com", None);
    let page = env.at_verify("sub-1", "alice@example.com").await;
    // Select, pick and send happened: the lifetime is still the one set at the sign-in.
    assert_eq!(
        env.app
            .db
            .texts("SELECT CAST(expires_at - created_at AS TEXT) AS t FROM link_flows"),
        ["600000"]
    );
    let code = sent_codes(&env).pop().unwrap();
    // Ten minutes and a second later (the browser's sealed state has not expired yet).
    env.app.db.execute(
        "UPDATE link_flows SET created_at = created_at - 601000, expires_at = expires_at - 601000",
    );
    let landing = env.enter_code(&page, &code).await;
    assert_eq!(landing.status, 400, "{}", landing.body);
    assert!(landing.body.contains("has ended"), "{}", landing.body);
    assert_eq!(env.count("identities"), 0);

    // No configuration lets a flow outlive 30 minutes.
    let mut s = Settings::default();
    s.account_linking.state_expiration = 1801;
    assert!(
        s.problems()
            .iter()
            .any(|p| p.starts_with("account_linking.state_expiration")),
        "{:?}",
        s.problems()
    );
}

#[tokio::test]
async fn h13_many_candidates_stay_server_side_and_the_link_cookie_stays_small() {
    let env = manual_env().await;
    let hash = braid_http::passwords::hash("correct horse battery staple").unwrap();
    for _ in 0..40 {
        let user = user_with(&env, Some(("alice@example.com", false)), None);
        let mut c = env.app.db.db.conn().unwrap();
        let user = UserId::parse(&user).unwrap();
        credentials::set_password_hash(&mut c, &user, &hash, Timestamp::now()).unwrap();
    }
    let page = env.at_select("sub-1", "alice@example.com").await;
    assert_eq!(page.matches(r#"type="radio" name="choice""#).count(), 40);
    let cookie = link_cookie(&env);
    assert!(cookie.len() < 512, "{} bytes", cookie.len());
}
