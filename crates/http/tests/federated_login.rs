//! The federated login path end to end against an in-process fake OpenID provider, one test
//! per SECURITY-CASES.md case (groups A, C, D) plus the main path.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use braid_core::{Email, Phone, Timestamp, UserEmail, UserPhone};
use braid_http::settings::{OnAmbiguity, Resolution};
use braid_providers::testing::{FakeAccount, LoginScript, RedirectIss};
use braid_storage::repo::users::{self, NewUser};
use serde_json::{Value, json};
use support::flow::*;

fn user_with(email: Option<(&str, bool)>, phone: Option<(&str, bool)>, is_admin: bool) -> NewUser {
    NewUser {
        display_name: None,
        is_admin,
        emails: email
            .map(|(e, v)| UserEmail {
                email: Email::parse(e).unwrap(),
                verified_at: v.then(Timestamp::now),
                is_primary: true,
            })
            .into_iter()
            .collect(),
        phones: phone
            .map(|(p, v)| UserPhone {
                phone: Phone::parse(p).unwrap(),
                verified_at: v.then(Timestamp::now),
            })
            .into_iter()
            .collect(),
    }
}

fn create_user(env: &Env, new: NewUser) -> String {
    let mut c = env.app.db.db.conn().unwrap();
    users::create(&mut c, &new, Timestamp::now())
        .unwrap()
        .id
        .to_string()
}

#[tokio::test]
async fn new_identity_creates_a_user_and_the_same_identity_logs_in_again() {
    let env = env().await;
    let first = env.tokens_for("sub-1", "alice@example.com", true).await;
    let user = env.user_of(&first).await;
    assert_eq!(env.count("users"), 1);
    let again = env.tokens_for("sub-1", "alice@example.com", true).await;
    assert_eq!(env.user_of(&again).await, user);
    assert_eq!(env.count("users"), 1);
    let me: Value = env
        .me(again["access_token"].as_str().unwrap())
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(me["identities"].as_array().unwrap().len(), 1);
    assert_eq!(me["identities"][0]["provider"], "idp");
    assert_eq!(
        me["emails"][0],
        json!({"email": "alice@example.com", "verified": true, "primary": true})
    );
}

#[tokio::test]
async fn g14_g09_success_redirects_303_to_the_app_with_code_state_and_iss() {
    let env = env().await;
    let landing = env.login().await;
    assert_eq!(landing.status, 303);
    let location = landing.location.clone().unwrap();
    assert!(location.as_str().starts_with(REDIRECT_URI));
    assert_eq!(landing.param("state").as_deref(), Some("app-state-1"));
    assert_eq!(landing.param("iss"), Some(env.app.address.clone()));
    assert_eq!(landing.code().len(), 43);
}

#[tokio::test]
async fn a01_missing_state_is_rejected_without_calling_the_token_endpoint() {
    let env = env().await;
    let upstream = env.start_default().await;
    let back = env.idp.authorize(&upstream).await;
    let code = back.code.clone();
    let landing = land(
        env.app
            .client
            .get(env.url(&format!("/auth/connect/idp/callback?code={code}")))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(landing.status, 400);
    assert_eq!(env.idp.token_calls(), 0);
    // The flow was consumed: the genuine callback no longer works either.
    assert_eq!(env.follow(&back.location).await.status, 400);
    assert_eq!(env.idp.token_calls(), 0);
    assert_eq!(env.count("users"), 0);
}

#[tokio::test]
async fn a02_state_of_another_flow_is_rejected_and_the_attackers_code_never_redeemed() {
    let env = env().await;
    // The attacker starts a flow in their own browser and captures the callback URL.
    let (_attacker, attacker_upstream) = start_in_another_browser(&env).await;
    env.idp
        .set_account(account("attacker", "attacker@evil.example", true));
    let attacker_back = env.idp.authorize(&attacker_upstream).await;
    // The victim has a flow of their own; the attacker's callback URL is planted on them.
    env.start_default().await;
    let landing = env.follow(&attacker_back.location).await;
    assert_eq!(landing.status, 400);
    assert_eq!(env.idp.token_calls(), 0);
    assert_eq!(env.count("users"), 0);
}

#[tokio::test]
async fn a04_callback_replay_is_rejected_and_the_provider_not_called_again() {
    let env = env().await;
    let upstream = env.start_default().await;
    let back = env.idp.authorize(&upstream).await;
    assert_eq!(env.follow(&back.location).await.status, 303);
    let calls = env.idp.token_calls();
    let replay = env.follow(&back.location).await;
    assert_eq!(replay.status, 400);
    assert!(replay.body.contains("already completed"));
    assert_eq!(env.idp.token_calls(), calls);
    assert_eq!(env.count("exchange_codes"), 1);
}

#[tokio::test]
async fn a05_expired_flow_is_rejected() {
    let env = env_with(|s| s.federated_login.flow_expiration = 1).await;
    let upstream = env.start_default().await;
    let back = env.idp.authorize(&upstream).await;
    // The expiry sealed in the cookie is what counts, not the browser's forgetting it: a
    // client that keeps sending the cookie after its Max-Age is refused all the same.
    let cookie = env.app.flow_cookie();
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let r = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .get(env.url(&back.location[url::Position::BeforePath..]))
        .header("cookie", format!("braid_flow={cookie}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert!(r.text().await.unwrap().contains("expired"));
    assert_eq!(env.idp.token_calls(), 0);
}

#[tokio::test]
async fn a05_a_flow_cookie_altered_or_sealed_elsewhere_is_rejected_before_any_upstream_call() {
    let env = env().await;
    let upstream = env.start_default().await;
    let back = env.idp.authorize(&upstream).await;
    let genuine = env.app.flow_cookie();
    let mut altered = genuine.clone().into_bytes();
    let last = altered.len() - 1;
    altered[last] = if altered[last] == b'A' { b'B' } else { b'A' };
    let altered = String::from_utf8(altered).unwrap();
    // The same kind of cookie from another Braid deployment (another session key).
    let other = braid_http::tokens::sealed::Sealer::new(&[9; 64], "braid login flow v1")
        .unwrap()
        .seal(b"{}")
        .unwrap();
    let stranger = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let url = env.url(&back.location[url::Position::BeforePath..]);
    let callback_with = |cookie: &str| {
        stranger
            .get(&url)
            .header("cookie", format!("braid_flow={cookie}"))
            .send()
    };
    for cookie in [altered.as_str(), other.as_str(), "", "AAAA"] {
        let r = callback_with(cookie).await.unwrap();
        assert_eq!(r.status(), 400, "cookie {cookie:?}");
    }
    assert_eq!(env.idp.token_calls(), 0);
    // The genuine cookie still works: nothing above marked it used.
    assert_eq!(callback_with(&genuine).await.unwrap().status(), 303);
}

#[tokio::test]
async fn a_sign_in_too_large_for_its_cookie_is_refused_with_a_clear_page() {
    let env = env_with(|s| {
        s.clients.insert(
            "long".into(),
            braid_http::settings::ClientSettings {
                redirect_uris: vec![format!("https://app.example/{}", "p".repeat(2600))],
                secret: Some(braid_core::Secret::new(
                    "a-long-enough-client-secret-0123456789",
                )),
                ..Default::default()
            },
        );
    })
    .await;
    let r = env
        .app
        .client
        .get(env.url(&format!(
            "/auth/connect/idp?client_id=long&state={}",
            "s".repeat(1000)
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert!(r.headers().get("set-cookie").is_none());
    assert!(r.text().await.unwrap().contains("too large"));
}

#[tokio::test]
async fn a07_wrong_iss_in_the_authorization_response_is_rejected_before_the_token_call() {
    let env = env().await;
    env.idp.set_advertise_iss_parameter(true);
    env.idp.script_next_login(LoginScript {
        redirect_iss: RedirectIss::Value("https://attacker.example".into()),
        ..Default::default()
    });
    let landing = env.login().await;
    assert_eq!(landing.status, 400);
    assert_eq!(env.idp.token_calls(), 0);
}

#[tokio::test]
async fn a08_missing_iss_where_the_provider_advertises_it_is_rejected() {
    let env = env().await;
    env.idp.set_advertise_iss_parameter(true);
    env.idp.script_next_login(LoginScript {
        redirect_iss: RedirectIss::Omit,
        ..Default::default()
    });
    assert_eq!(env.login().await.status, 400);
    assert_eq!(env.idp.token_calls(), 0);
}

#[tokio::test]
async fn a10_provider_whose_metadata_names_another_issuer_fails_closed() {
    // Set before Braid starts: its start-up check must not have cached a good document.
    let env = env_with_idp(
        |idp| idp.set_metadata_issuer("https://evil.example"),
        |_| {},
    )
    .await;
    let r = env
        .app
        .client
        .get(env.url(&format!(
            "/auth/connect/idp?client_id={CLIENT_ID}&redirect_uri={}",
            enc(REDIRECT_URI)
        )))
        .send()
        .await
        .unwrap();
    // Not "try again": the person meets a page that says the method is misconfigured.
    assert_eq!(r.status(), 502);
    assert!(r.headers().get("location").is_none());
    let page = r.text().await.unwrap();
    assert!(page.contains("misconfigured"), "{page}");
    assert!(!page.contains("try again in a moment"), "{page}");
    assert_eq!(env.idp.authorize_calls(), 0);
}

#[tokio::test]
async fn a11_every_flow_uses_a_fresh_s256_pkce_challenge_and_sends_the_verifier() {
    let env = env().await;
    let first = env.start_default().await;
    let second = env.start_default().await;
    for u in [&first, &second] {
        assert_eq!(
            query_param(u, "code_challenge_method").as_deref(),
            Some("S256")
        );
        assert_eq!(query_param(u, "code_challenge").unwrap().len(), 43);
        assert!(query_param(u, "nonce").is_some());
        assert!(query_param(u, "state").unwrap().len() >= 22);
    }
    assert_ne!(
        query_param(&first, "code_challenge"),
        query_param(&second, "code_challenge")
    );
    assert_ne!(query_param(&first, "state"), query_param(&second, "state"));
    let back = env.idp.authorize(&second).await;
    assert_eq!(env.follow(&back.location).await.status, 303);
    let sent = env.idp.last_token_request().unwrap();
    let verifier = sent
        .iter()
        .find(|(k, _)| k == "code_verifier")
        .map(|(_, v)| v.clone())
        .unwrap();
    assert!((43..=128).contains(&verifier.len()));
}

#[tokio::test]
async fn a12_injected_code_bound_to_another_verifier_is_refused_upstream() {
    let env = env().await;
    // The attacker obtains a code for their own flow (their own PKCE verifier) but never uses it.
    let (_attacker, attacker_upstream) = start_in_another_browser(&env).await;
    env.idp
        .set_account(account("attacker", "attacker@evil.example", true));
    let stolen = env.idp.authorize(&attacker_upstream).await;
    // The victim's genuine flow, with the attacker's code swapped in.
    let upstream = env.start_default().await;
    let victim_state = query_param(&upstream, "state").unwrap();
    let landing = land(
        env.app
            .client
            .get(env.url(&format!(
                "/auth/connect/idp/callback?code={}&state={}",
                stolen.code,
                enc(&victim_state)
            )))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(landing.status, 400);
    assert_eq!(env.count("users"), 0);
    assert_eq!(env.count("identities"), 0);
}

#[tokio::test]
async fn a13_provider_error_is_shown_escaped_and_consumes_the_flow() {
    let env = env().await;
    let upstream = env.start_default().await;
    let state = query_param(&upstream, "state").unwrap();
    let path = format!(
        "/auth/connect/idp/callback?error=access_denied&error_description={}&state={}",
        enc("<script>alert(1)</script>"),
        enc(&state)
    );
    let r = env.app.client.get(env.url(&path)).send().await.unwrap();
    assert_eq!(r.status(), 400);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let body = r.text().await.unwrap();
    assert!(!body.contains("<script>"), "{body}");
    assert!(body.contains("&lt;script&gt;"));
    assert_eq!(env.idp.token_calls(), 0);
    let back = env.idp.authorize(&upstream).await;
    assert_eq!(
        env.follow(&back.location).await.status,
        400,
        "the flow is gone"
    );
}

#[tokio::test]
async fn a14_duplicate_or_contradictory_parameters_are_rejected() {
    let env = env().await;
    let upstream = env.start_default().await;
    let state = enc(&query_param(&upstream, "state").unwrap());
    let dup = env
        .app
        .client
        .get(env.url(&format!(
            "/auth/connect/idp/callback?code=a&code=b&state={state}"
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(dup.status(), 400);
    let upstream = env.start_default().await;
    let state = enc(&query_param(&upstream, "state").unwrap());
    let both = env
        .app
        .client
        .get(env.url(&format!(
            "/auth/connect/idp/callback?code=a&error=x&state={state}"
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(both.status(), 400);
    assert_eq!(env.idp.token_calls(), 0);
}

#[tokio::test]
async fn a15_missing_nonce_is_rejected() {
    let env = env().await;
    env.idp.script_next_login(LoginScript {
        remove_claims: vec!["nonce".into()],
        ..Default::default()
    });
    assert_eq!(env.login().await.status, 400);
    assert_eq!(env.count("users"), 0);
}

#[tokio::test]
async fn a16_nonce_of_another_flow_is_rejected() {
    let env = env().await;
    env.idp
        .script_next_login(LoginScript::claim("nonce", json!("nonce-of-another-flow")));
    assert_eq!(env.login().await.status, 400);
    assert_eq!(env.count("users"), 0);
}

#[tokio::test]
async fn a17_form_post_callback_works_with_the_flow_cookie_and_fails_without_it() {
    let env = env().await;
    let upstream = env.start_default().await;
    let back = env.idp.authorize(&upstream).await;
    let form: Vec<(String, String)> = back
        .location
        .query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    // (b) A cross-site POST that carries no flow cookie.
    let stranger = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let r = stranger
        .post(env.url("/auth/connect/idp/callback"))
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    // (a) The browser that started the flow.
    let r = env
        .app
        .client
        .post(env.url("/auth/connect/idp/callback"))
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
}

#[tokio::test]
async fn a18_provider_disabled_mid_flight_refuses_the_callback_on_another_instance() {
    let env = env().await;
    let upstream = env.start_default().await;
    let back = env.idp.authorize(&upstream).await;
    // A second instance on the same database, restarted with the provider disabled.
    let mut provider = env.idp.provider_settings();
    provider.enabled = false;
    let mut settings = support::test_settings(&env.app.db);
    settings
        .federated_login
        .providers
        .insert("idp".into(), provider);
    let second = braid_http::Application::build(settings.clone())
        .await
        .unwrap();
    let second_addr = format!("http://127.0.0.1:{}", second.port());
    tokio::spawn(second.run_until_stopped());
    let path = &back.location[url::Position::BeforePath..];
    let flow_cookie = env.app.flow_cookie();
    let r = reqwest::Client::new()
        .get(format!("{second_addr}{path}"))
        .header("cookie", format!("braid_flow={flow_cookie}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    // The second instance opened the flow: what refused it is the disabled provider.
    let page = r.text().await.unwrap();
    assert!(page.contains("has been disabled"), "{page}");
    let disabled = r#"braid_federated_logins_total{outcome="provider_disabled",provider="idp"}"#;
    assert_eq!(
        support::flow::metric_of(&second_addr, disabled).await,
        Some(1.0)
    );
    let no_flow = r#"braid_federated_logins_total{outcome="no_flow",provider="idp"}"#;
    assert_eq!(support::flow::metric_of(&second_addr, no_flow).await, None);
    assert_eq!(env.idp.token_calls(), 0);
}

#[tokio::test]
async fn a19_link_only_provider_never_signs_anyone_in() {
    let env = env_with(|s| {
        s.federated_login
            .providers
            .get_mut("idp")
            .unwrap()
            .link_only = true
    })
    .await;
    let landing = env.login().await;
    assert_eq!(landing.status, 403);
    assert_eq!(env.count("users"), 0);
    assert_eq!(env.count("exchange_codes"), 0);
}

#[tokio::test]
async fn a20_path_tricks_and_unknown_providers_are_404_without_upstream_calls() {
    let env = env().await;
    for path in [
        "/auth/connect/IDP",
        "/auth/connect/..%2Fadmin",
        "/auth/connect/unknown",
        "/auth/connect/unknown/callback?code=x&state=y",
    ] {
        let r = env.app.client.get(env.url(path)).send().await.unwrap();
        assert_eq!(r.status(), 404, "{path}");
    }
    assert_eq!(env.idp.token_calls() + env.idp.authorize_calls(), 0);
    // The one discovery is the start-up check's, not a request's.
    assert!(env.idp.discovery_calls() <= 1);
}

#[tokio::test]
async fn a21_only_the_operators_forward_params_go_upstream_and_only_sane_values() {
    let env = env_with(|s| {
        s.federated_login
            .providers
            .get_mut("idp")
            .unwrap()
            .forward_params = vec!["login_hint".into()];
    })
    .await;
    let start = |hint: &str| {
        format!(
            "client_id={CLIENT_ID}&redirect_uri={}&login_hint={}&prompt=none&hd=evil.com",
            enc(REDIRECT_URI),
            enc(hint)
        )
    };
    let upstream = env.start(&start("ann@example.com")).await;
    assert_eq!(
        query_param(&upstream, "login_hint").as_deref(),
        Some("ann@example.com")
    );
    for param in ["prompt", "hd"] {
        assert!(query_param(&upstream, param).is_none(), "{param} forwarded");
    }
    // Too long: the sign-in goes ahead without it. (Control characters never get this far:
    // the start's query is refused with a 400 page.)
    let upstream = env.start(&start(&"a".repeat(257))).await;
    assert!(query_param(&upstream, "login_hint").is_none());
}

#[tokio::test]
async fn a21_caller_parameters_are_not_forwarded_upstream_and_redirect_uri_is_allow_listed() {
    let env = env().await;
    let upstream = env
        .start(&format!("client_id={CLIENT_ID}&redirect_uri={}&login_hint=victim%40x.example&prompt=none&hd=evil.com", enc(REDIRECT_URI)))
        .await;
    for param in ["login_hint", "prompt", "hd"] {
        assert!(query_param(&upstream, param).is_none(), "{param} forwarded");
    }
    assert_eq!(
        query_param(&upstream, "redirect_uri").unwrap(),
        format!("{}/auth/connect/idp/callback", env.app.address)
    );
    let evil = env
        .app
        .client
        .get(env.url(&format!(
            "/auth/connect/idp?client_id={CLIENT_ID}&redirect_uri={}",
            enc("https://evil.example/cb")
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(evil.status(), 400);
    assert!(evil.headers().get("location").is_none());
    for near_miss in [
        "https://app.example/callback/",
        "https://app.example/callbackx",
        "https://app.example.evil.com/callback",
        "HTTPS://app.example/callback",
    ] {
        let r = env
            .app
            .client
            .get(env.url(&format!(
                "/auth/connect/idp?client_id={CLIENT_ID}&redirect_uri={}",
                enc(near_miss)
            )))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400, "{near_miss}");
    }
}

#[tokio::test]
async fn public_clients_must_send_an_s256_code_challenge() {
    let env = env().await;
    let base = format!(
        "/auth/connect/idp?client_id={PUBLIC_CLIENT}&redirect_uri={}",
        enc(PUBLIC_REDIRECT)
    );
    assert_eq!(
        env.app
            .client
            .get(env.url(&base))
            .send()
            .await
            .unwrap()
            .status(),
        400
    );
    let plain = format!(
        "{base}&code_challenge={}&code_challenge_method=plain",
        "a".repeat(43)
    );
    assert_eq!(
        env.app
            .client
            .get(env.url(&plain))
            .send()
            .await
            .unwrap()
            .status(),
        400
    );
    let s256 = format!(
        "{base}&code_challenge={}&code_challenge_method=S256",
        "a".repeat(43)
    );
    assert_eq!(
        env.app
            .client
            .get(env.url(&s256))
            .send()
            .await
            .unwrap()
            .status(),
        303
    );
}

#[tokio::test]
async fn b01_alg_none_id_token_is_rejected_through_the_whole_flow() {
    let env = env().await;
    env.idp.script_next_login(LoginScript {
        header_alg: Some("none".into()),
        ..Default::default()
    });
    let landing = env.login().await;
    assert_eq!(landing.status, 400);
    assert_eq!(env.count("users"), 0);
}

#[tokio::test]
async fn b16_userinfo_for_another_subject_is_rejected_through_the_whole_flow() {
    let env = env().await;
    env.idp.script_next_login(LoginScript {
        userinfo_sub: Some("someone-else".into()),
        remove_claims: vec!["email".into(), "email_verified".into()],
        ..Default::default()
    });
    assert_eq!(env.login().await.status, 400);
    assert_eq!(env.count("users"), 0);
}

#[tokio::test]
async fn c01_same_email_with_another_subject_is_not_the_linked_user() {
    let env = env().await;
    let first = env.tokens_for("sub-1", "alice@example.com", true).await;
    let second = env.tokens_for("sub-2", "alice@example.com", true).await;
    assert_ne!(env.user_of(&first).await, env.user_of(&second).await);
}

#[tokio::test]
async fn c02_known_subject_with_a_new_email_is_the_same_user_and_keeps_its_address() {
    let env = env().await;
    let first = env.tokens_for("sub-1", "alice@example.com", true).await;
    let second = env.tokens_for("sub-1", "alice@new.example", true).await;
    assert_eq!(env.user_of(&first).await, env.user_of(&second).await);
    let me: Value = env
        .me(second["access_token"].as_str().unwrap())
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(me["emails"].as_array().unwrap().len(), 1);
    assert_eq!(me["emails"][0]["email"], "alice@example.com");
}

#[tokio::test]
async fn c13_verified_email_of_a_user_already_linked_at_this_provider_does_not_link_a_new_subject()
{
    let env = env().await;
    let s1 = env
        .tokens_for("google-s1", "alice@deadstartup.example", true)
        .await;
    let s2 = env
        .tokens_for("google-s2", "alice@deadstartup.example", true)
        .await;
    assert_ne!(env.user_of(&s1).await, env.user_of(&s2).await);
    assert_eq!(env.count("users"), 2);
    // The audit row says why the matching user was left out.
    assert_eq!(
        env.app.db.texts(
            "SELECT result || ' ' || reason AS t FROM audit_events \
             WHERE kind = 'federated_login' AND subject = 'google-s2'"
        ),
        ["skipped candidate_has_provider_identity"]
    );
}

#[tokio::test]
async fn c14_provider_not_trusted_for_email_never_links_by_email() {
    let env = env_with(|s| {
        s.federated_login
            .providers
            .get_mut("idp")
            .unwrap()
            .trust_email = Some(false)
    })
    .await;
    let existing = create_user(
        &env,
        user_with(Some(("alice@example.com", true)), None, false),
    );
    let tokens = env.tokens_for("sub-1", "alice@example.com", true).await;
    assert_ne!(env.user_of(&tokens).await, existing);
}

#[tokio::test]
async fn c15_verified_phone_links_in_e164_form() {
    let env = env_with(|s| {
        s.federated_login
            .providers
            .get_mut("idp")
            .unwrap()
            .trust_phone = Some(true)
    })
    .await;
    let existing = create_user(&env, user_with(None, Some(("+12025550100", true)), false));
    env.idp.set_account(FakeAccount {
        sub: "phone-sub".into(),
        email: None,
        email_verified: None,
        phone_number: Some("+1 (202) 555-0100".into()),
        phone_number_verified: Some(json!(true)),
        ..FakeAccount::default()
    });
    let code = env.login().await.code();
    let tokens: Value = env.redeem(&code).await.json().await.unwrap();
    assert_eq!(env.user_of(&tokens).await, existing);
}

#[tokio::test]
async fn d01_single_verified_match_links_and_logs_in_with_an_audit_row() {
    let env = env().await;
    let existing = create_user(
        &env,
        user_with(Some(("alice@example.com", true)), None, false),
    );
    let tokens = env.tokens_for("sub-1", "Alice@Example.com", true).await;
    assert_eq!(env.user_of(&tokens).await, existing);
    assert_eq!(env.count("users"), 1);
    let mut c = env.app.db.db.conn().unwrap();
    let events = braid_storage::repo::audit::recent(&mut c, 5).unwrap();
    let e = &events[0].event;
    assert_eq!(
        (e.kind.as_str(), e.result.as_deref(), e.reason.as_deref()),
        (
            "federated_login",
            Some("complete"),
            Some("single_verified_match")
        )
    );
    assert_eq!(e.user_id.as_deref(), Some(existing.as_str()));
    let metrics = env
        .app
        .client
        .get(env.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains(
            r#"braid_link_results_total{reason="single_verified_match",result="complete"} 1"#
        ),
        "{metrics}"
    );
}

#[tokio::test]
async fn d02_unverified_local_account_is_never_merged_with_a_verified_login() {
    let env = env().await;
    let attacker_preregistered = create_user(
        &env,
        user_with(Some(("victim@example.com", false)), None, false),
    );
    let tokens = env
        .tokens_for("victim-sub", "victim@example.com", true)
        .await;
    assert_ne!(env.user_of(&tokens).await, attacker_preregistered);
    assert_eq!(env.count("identities"), 1);
}

#[tokio::test]
async fn d03_provider_unverified_email_does_not_link() {
    let env = env().await;
    let existing = create_user(
        &env,
        user_with(Some(("alice@example.com", true)), None, false),
    );
    let tokens = env.tokens_for("sub-1", "alice@example.com", false).await;
    assert_ne!(env.user_of(&tokens).await, existing);
}

#[tokio::test]
async fn d04_ambiguous_match_is_a_conflict_and_writes_nothing_but_the_audit_row() {
    let env = env_with(|s| s.account_linking.on_ambiguity = OnAmbiguity::Conflict).await;
    create_user(
        &env,
        user_with(Some(("shared@example.com", true)), None, false),
    );
    create_user(
        &env,
        user_with(Some(("shared@example.com", false)), None, false),
    );
    let landing = env.login_as("sub-1", "shared@example.com", true).await;
    assert_eq!(landing.status, 409);
    assert_eq!(env.count("users"), 2);
    assert_eq!(env.count("identities"), 0);
    assert_eq!(env.count("exchange_codes"), 0);
    assert_eq!(env.count("audit_events"), 1);
}

#[tokio::test]
async fn d05_email_and_phone_pointing_at_different_users_do_not_link() {
    let env = env_with(|s| {
        s.federated_login
            .providers
            .get_mut("idp")
            .unwrap()
            .trust_phone = Some(true)
    })
    .await;
    create_user(
        &env,
        user_with(Some(("alice@example.com", true)), None, false),
    );
    create_user(&env, user_with(None, Some(("+12025550100", true)), false));
    env.idp.set_account(FakeAccount {
        sub: "sub-1".into(),
        phone_number: Some("+12025550100".into()),
        phone_number_verified: Some(json!(true)),
        ..account("sub-1", "alice@example.com", true)
    });
    assert_eq!(env.login().await.status, 409);
    assert_eq!(env.count("identities"), 0);
}

#[tokio::test]
async fn d07_disabled_user_is_neither_linked_nor_logged_into() {
    let env = env().await;
    let disabled = create_user(
        &env,
        user_with(Some(("alice@example.com", true)), None, false),
    );
    env.app.db.execute(&format!(
        "UPDATE users SET disabled = TRUE WHERE id = '{disabled}'"
    ));
    let tokens = env.tokens_for("sub-1", "alice@example.com", true).await;
    let user = env.user_of(&tokens).await;
    assert_ne!(user, disabled);
    // And an identity linked to a user who is then disabled no longer signs in.
    env.app.db.execute(&format!(
        "UPDATE users SET disabled = TRUE WHERE id = '{user}'"
    ));
    assert_eq!(
        env.login_as("sub-1", "alice@example.com", true)
            .await
            .status,
        403
    );
}

#[tokio::test]
async fn d08_privileged_user_is_never_linked_automatically() {
    let env = env().await;
    let admin = create_user(
        &env,
        user_with(Some(("admin@example.com", true)), None, true),
    );
    let tokens = env.tokens_for("sub-1", "admin@example.com", true).await;
    assert_ne!(env.user_of(&tokens).await, admin);
}

#[tokio::test]
async fn d11_case_only_difference_matches() {
    let env = env().await;
    let existing = create_user(
        &env,
        user_with(Some(("alice@example.com", true)), None, false),
    );
    let tokens = env.tokens_for("sub-1", "ALICE@EXAMPLE.COM", true).await;
    assert_eq!(env.user_of(&tokens).await, existing);
}

#[tokio::test]
async fn resolution_disabled_always_creates_a_new_user() {
    let env = env_with(|s| s.account_linking.resolution = Resolution::Disabled).await;
    let existing = create_user(
        &env,
        user_with(Some(("alice@example.com", true)), None, false),
    );
    let tokens = env.tokens_for("sub-1", "alice@example.com", true).await;
    assert_ne!(env.user_of(&tokens).await, existing);
    // The address stays verified for its first owner only (SECURITY-CASES I10).
    let me = env.profile(&tokens).await;
    assert_eq!(me["emails"][0]["verified"], false);
}

#[tokio::test]
async fn i02_concurrent_callbacks_for_one_new_identity_end_with_one_user() {
    let env = env().await;
    let mut backs = Vec::new();
    let mut clients = Vec::new();
    for _ in 0..4 {
        let (browser, upstream) = start_in_another_browser(&env).await;
        backs.push(env.idp.authorize(&upstream).await);
        clients.push(browser);
    }
    let calls = backs.iter().zip(&clients).map(|(back, browser)| {
        let url = env.url(&back.location[url::Position::BeforePath..]);
        let browser = browser.clone();
        async move { browser.get(url).send().await.unwrap().status().as_u16() }
    });
    let statuses = futures_join(calls).await;
    assert!(statuses.iter().all(|s| *s == 303), "{statuses:?}");
    assert_eq!(env.count("users"), 1);
    assert_eq!(env.count("identities"), 1);
}

/// The same callback (one browser, one flow) sent several times at once completes once, and only
/// the request that consumed the flow calls the provider.
#[tokio::test]
async fn a04_concurrent_replays_of_one_callback_complete_once() {
    let env = env().await;
    let (browser, upstream) = start_in_another_browser(&env).await;
    let back = env.idp.authorize(&upstream).await;
    let url = env.url(&back.location[url::Position::BeforePath..]);
    let calls = (0..4).map(|_| {
        let (browser, url) = (browser.clone(), url.clone());
        async move { browser.get(url).send().await.unwrap().status().as_u16() }
    });
    let mut statuses = futures_join(calls).await;
    statuses.sort_unstable();
    assert_eq!(statuses, [303, 400, 400, 400]);
    assert_eq!(env.idp.token_calls(), 1);
    assert_eq!(env.count("exchange_codes"), 1);
    assert_eq!(env.count("users"), 1);
}

/// A browser of its own (own cookie jar) that starts a sign-in: the browser and the upstream
/// authorization URL it was sent to.
async fn start_in_another_browser(env: &Env) -> (reqwest::Client, url::Url) {
    let browser = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .cookie_store(true)
        .build()
        .unwrap();
    let r = browser
        .get(env.url(&format!(
            "/auth/connect/idp?client_id={CLIENT_ID}&redirect_uri={}",
            enc(REDIRECT_URI)
        )))
        .send()
        .await
        .unwrap();
    let upstream = url::Url::parse(r.headers()["location"].to_str().unwrap()).unwrap();
    (browser, upstream)
}

async fn futures_join<F: std::future::Future<Output = u16> + Send + 'static>(
    futs: impl Iterator<Item = F>,
) -> Vec<u16> {
    let handles: Vec<_> = futs.map(tokio::spawn).collect();
    let mut out = Vec::new();
    for h in handles {
        out.push(h.await.unwrap());
    }
    out
}

#[tokio::test]
async fn g02_flow_cookie_is_host_prefixed_secure_httponly_lax_over_https() {
    let env = env_with(|s| s.server.public_url = Some("https://auth.example".into())).await;
    let r = env
        .app
        .client
        .get(env.url(&format!(
            "/auth/connect/idp?client_id={CLIENT_ID}&redirect_uri={}",
            enc(REDIRECT_URI)
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let cookie = r.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(cookie.starts_with("__Host-braid_flow="), "{cookie}");
    for attr in [
        "HttpOnly",
        "Secure",
        "Path=/",
        "SameSite=Lax",
        "Max-Age=600",
    ] {
        assert!(
            cookie.split("; ").any(|a| a == attr),
            "{attr} missing in {cookie}"
        );
    }
    assert!(!cookie.contains("Domain"));
    assert!(cookie.len() < 4096);

    let plain = env_with(|_| {}).await;
    let r = plain
        .app
        .client
        .get(plain.url(&format!(
            "/auth/connect/idp?client_id={CLIENT_ID}&redirect_uri={}",
            enc(REDIRECT_URI)
        )))
        .send()
        .await
        .unwrap();
    let cookie = r.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(
        cookie.starts_with("braid_flow=")
            && cookie.contains("Path=/auth/connect")
            && cookie.contains("HttpOnly"),
        "{cookie}"
    );
}

#[tokio::test]
async fn me_shows_each_identitys_email_verified_as_the_provider_asserted_it() {
    // An untrusted provider: its verified claim is shown, but never counts for linking.
    let env = env_with(|s| {
        s.federated_login
            .providers
            .get_mut("idp")
            .unwrap()
            .trust_email = Some(false);
    })
    .await;
    let tokens = env.tokens_for("sub-1", "asserted@example.com", true).await;
    let me = env.profile(&tokens).await;
    assert_eq!(me["identities"][0]["email"], "asserted@example.com");
    assert_eq!(me["identities"][0]["email_verified"], true);
    assert_eq!(
        me["emails"],
        serde_json::json!([]),
        "not stored as verified"
    );

    let tokens = env
        .tokens_for("sub-2", "unasserted@example.com", false)
        .await;
    let me = env.profile(&tokens).await;
    assert_eq!(me["identities"][0]["email_verified"], false);
}
