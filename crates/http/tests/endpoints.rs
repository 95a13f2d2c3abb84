//! What an app's stack finds and asks without reading Braid's docs: the RFC 8414 metadata,
//! RFC 7662 introspection, and `/metrics`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use braid_core::{Secret, Timestamp};
use braid_http::settings::KeySettings;
use braid_http::tokens::access::{self, AccessClaims};
use braid_http::tokens::keyring::KeyRing;
use serde_json::Value;
use support::flow::*;
use support::raw::Captured;

const METADATA: &str = "/.well-known/oauth-authorization-server";

async fn introspect(env: &Env, token: &str) -> reqwest::Response {
    env.app
        .client
        .post(env.url("/auth/introspect"))
        .basic_auth(CLIENT_ID, Some(CLIENT_SECRET))
        .form(&[("token", token)])
        .send()
        .await
        .unwrap()
}

async fn introspection(env: &Env, token: &str) -> Value {
    let r = introspect(env, token).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["cache-control"], "no-store");
    r.json().await.unwrap()
}

/// `{"active": false}` and not a word more.
fn assert_inactive(body: &Value, case: &str) {
    assert_eq!(body, &serde_json::json!({"active": false}), "{case}");
}

/// An access token signed with Braid's own key, with claims of the test's choosing.
async fn signed(env: &Env, edit: impl FnOnce(&mut AccessClaims)) -> String {
    let ring = KeyRing::load(env.app.db.db.clone(), &KeySettings::default())
        .await
        .unwrap();
    let now = Timestamp::now().as_secs();
    let mut claims = AccessClaims {
        iss: env.app.address.clone(),
        sub: "0190b7e2-0000-7000-8000-000000000000".into(),
        aud: CLIENT_ID.into(),
        client_id: CLIENT_ID.into(),
        exp: now + 600,
        iat: now,
        jti: "forged".into(),
        idp: None,
        external_id: None,
        auth_time: None,
        identity_id: None,
        braid_claims: None,
    };
    edit(&mut claims);
    access::sign(&ring.keys().await.unwrap(), &claims).unwrap()
}

#[tokio::test]
async fn the_metadata_names_the_issuer_of_the_tokens_and_only_endpoints_that_answer() {
    let env = env().await;
    let r = env.app.client.get(env.url(METADATA)).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["cache-control"], "public, max-age=3600");
    let meta: Value = r.json().await.unwrap();
    let tokens = env.tokens_for("sub-1", "alice@example.com", true).await;
    let access_token = tokens["access_token"].as_str().unwrap();
    let claims: Value = serde_json::from_slice(
        &base64::Engine::decode(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD,
            access_token.split('.').nth(1).unwrap(),
        )
        .unwrap(),
    )
    .unwrap();
    assert_eq!(meta["issuer"], claims["iss"], "issuer is the tokens' iss");
    assert_eq!(
        meta["grant_types_supported"],
        serde_json::json!(["authorization_code", "refresh_token"])
    );
    assert_eq!(
        meta["response_types_supported"],
        serde_json::json!(["code"])
    );
    assert_eq!(
        meta["code_challenge_methods_supported"],
        serde_json::json!(["S256"])
    );
    for methods in [
        "token_endpoint_auth_methods_supported",
        "revocation_endpoint_auth_methods_supported",
    ] {
        assert_eq!(
            meta[methods],
            serde_json::json!(["client_secret_basic", "client_secret_post", "none"]),
            "{methods}"
        );
    }
    assert_eq!(
        meta["introspection_endpoint_auth_methods_supported"],
        serde_json::json!(["client_secret_basic", "client_secret_post"])
    );

    // Every URL it names answers as what it is.
    let url = |name: &str| meta[name].as_str().unwrap().to_owned();
    let jwks: Value = reqwest::get(url("jwks_uri"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(!jwks["keys"].as_array().unwrap().is_empty());
    let post = |name: &str, form: Vec<(&'static str, String)>| {
        env.app
            .client
            .post(url(name))
            .basic_auth(CLIENT_ID, Some(CLIENT_SECRET))
            .form(&form)
            .send()
    };
    let refreshed = post(
        "token_endpoint",
        vec![
            ("grant_type", "refresh_token".into()),
            (
                "refresh_token",
                tokens["refresh_token"].as_str().unwrap().into(),
            ),
        ],
    )
    .await
    .unwrap();
    assert_eq!(refreshed.status(), 200, "the token endpoint refreshes too");
    let refreshed: Value = refreshed.json().await.unwrap();
    let active = post(
        "introspection_endpoint",
        vec![("token", refreshed["access_token"].as_str().unwrap().into())],
    )
    .await
    .unwrap();
    assert_eq!(active.json::<Value>().await.unwrap()["active"], true);
    let revoked = post(
        "revocation_endpoint",
        vec![("token", refreshed["access_token"].as_str().unwrap().into())],
    )
    .await
    .unwrap();
    assert_eq!(revoked.status(), 200);
    assert_inactive(
        &introspection(&env, refreshed["access_token"].as_str().unwrap()).await,
        "revoked at the metadata's revocation endpoint",
    );
}

#[tokio::test]
async fn the_metadata_issuer_follows_tokens_issuer() {
    let env = env_with(|s| s.tokens.issuer = Some("https://id.example.com".into())).await;
    let meta: Value = reqwest::get(env.url(METADATA))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(meta["issuer"], "https://id.example.com");
    assert_eq!(meta["jwks_uri"], env.url("/.well-known/jwks.json"));
    let elsewhere = reqwest::get(env.url(&format!("{METADATA}/tenant")))
        .await
        .unwrap();
    assert_eq!(elsewhere.status(), 404);

    // An issuer with a path: the metadata is under it (RFC 8414 §3), where Spring looks.
    let env = env_with(|s| s.tokens.issuer = Some("https://id.example.com/tenant".into())).await;
    let meta: Value = reqwest::get(env.url(&format!("{METADATA}/tenant")))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(meta["issuer"], "https://id.example.com/tenant");
    let root = reqwest::get(env.url(METADATA)).await.unwrap();
    assert_eq!(root.status(), 404);
}

#[tokio::test]
async fn introspection_describes_an_active_access_token() {
    let env = env().await;
    let tokens = env.tokens_for("sub-1", "alice@example.com", true).await;
    let user = env.user_of(&tokens).await;
    let body = introspection(&env, tokens["access_token"].as_str().unwrap()).await;
    assert_eq!(body["active"], true);
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["sub"], user);
    assert_eq!(body["client_id"], CLIENT_ID);
    assert_eq!(body["aud"], CLIENT_ID);
    assert_eq!(body["iss"], env.app.address);
    assert!(body["jti"].is_string());
    let (iat, exp) = (body["iat"].as_i64().unwrap(), body["exp"].as_i64().unwrap());
    assert_eq!(exp - iat, 900);
    assert!(body.get("scope").is_none(), "Braid's tokens carry no scope");

    // With client_secret_post, and with a hint, the answer is the same.
    let post: Value = env
        .app
        .client
        .post(env.url("/auth/introspect"))
        .form(&[
            ("token", tokens["access_token"].as_str().unwrap()),
            ("token_type_hint", "access_token"),
            ("client_id", CLIENT_ID),
            ("client_secret", CLIENT_SECRET),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(post, body);
}

#[tokio::test]
async fn introspection_describes_an_active_refresh_token_and_not_a_rotated_one() {
    let env = env().await;
    let tokens = env.tokens_for("sub-1", "alice@example.com", true).await;
    let refresh_token = tokens["refresh_token"].as_str().unwrap();
    let body = introspection(&env, refresh_token).await;
    assert_eq!(body["active"], true);
    assert_eq!(body["sub"], env.user_of(&tokens).await);
    assert_eq!(body["client_id"], CLIENT_ID);
    assert!(body["exp"].as_i64().unwrap() > Timestamp::now().as_secs());
    assert_eq!(env.refresh(refresh_token).await.status(), 200);
    assert_inactive(&introspection(&env, refresh_token).await, "rotated");
}

#[tokio::test]
async fn f02_introspection_tells_a_backend_that_a_replayed_codes_tokens_are_revoked() {
    let env = env().await;
    let code = env.login().await.code();
    let first: Value = env.redeem(&code).await.json().await.unwrap();
    let (access_token, refresh_token) = (
        first["access_token"].as_str().unwrap(),
        first["refresh_token"].as_str().unwrap(),
    );
    assert_eq!(introspection(&env, access_token).await["active"], true);
    assert_eq!(env.redeem(&code).await.status(), 400, "replayed");
    // The signature still verifies until exp; only Braid knows it was revoked.
    assert_inactive(&introspection(&env, access_token).await, "access token");
    assert_inactive(&introspection(&env, refresh_token).await, "refresh token");
}

#[tokio::test]
async fn introspection_says_only_inactive_for_expired_foreign_and_garbage_tokens() {
    let env = env().await;
    let expired = signed(&env, |c| {
        c.exp = Timestamp::now().as_secs() - 60;
        c.iat = c.exp - 900;
    })
    .await;
    let other_issuer = signed(&env, |c| c.iss = "https://other.example".into()).await;
    let other_client = signed(&env, |c| {
        c.aud = PUBLIC_CLIENT.into();
        c.client_id = PUBLIC_CLIENT.into();
    })
    .await;
    let tokens = env.tokens_for("sub-1", "alice@example.com", true).await;
    let access_token = tokens["access_token"].as_str().unwrap();
    let mut tampered = access_token.to_owned();
    tampered.pop();
    tampered.push(if access_token.ends_with('A') {
        'B'
    } else {
        'A'
    });
    let (_, rest) = access_token.split_once('.').unwrap();
    let unsigned = format!(
        "{}.{}",
        base64::Engine::encode(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD,
            r#"{"alg":"none","typ":"at+jwt"}"#
        ),
        rest.rsplit_once('.').unwrap().0
    );
    for (case, token) in [
        ("expired", expired.as_str()),
        ("another issuer", other_issuer.as_str()),
        ("another client's", other_client.as_str()),
        ("tampered", tampered.as_str()),
        ("unsigned", unsigned.as_str()),
        ("garbage", "not-a-token"),
        ("garbage with dots", "a.b.c"),
    ] {
        assert_inactive(&introspection(&env, token).await, case);
    }
    assert_eq!(introspection(&env, access_token).await["active"], true);
}

#[tokio::test]
async fn f18_introspection_of_a_disabled_users_token_is_inactive() {
    let env = env().await;
    let tokens = env.tokens_for("sub-1", "alice@example.com", true).await;
    env.app.db.execute("UPDATE users SET disabled = TRUE");
    for token in ["access_token", "refresh_token"] {
        assert_inactive(
            &introspection(&env, tokens[token].as_str().unwrap()).await,
            token,
        );
    }
}

#[tokio::test]
async fn only_an_authenticated_confidential_client_may_introspect() {
    let env = env().await;
    let tokens = env.tokens_for("sub-1", "alice@example.com", true).await;
    let token = tokens["access_token"].as_str().unwrap();
    let form = |extra: &[(&'static str, &'static str)]| {
        let mut f = vec![("token", token.to_owned())];
        f.extend(extra.iter().map(|(k, v)| (*k, (*v).to_owned())));
        f
    };
    for (case, request) in [
        (
            "no client",
            env.app
                .client
                .post(env.url("/auth/introspect"))
                .form(&form(&[])),
        ),
        (
            "wrong secret",
            env.app
                .client
                .post(env.url("/auth/introspect"))
                .basic_auth(CLIENT_ID, Some("wrong-secret"))
                .form(&form(&[])),
        ),
        (
            "a public client",
            env.app
                .client
                .post(env.url("/auth/introspect"))
                .form(&form(&[("client_id", PUBLIC_CLIENT)])),
        ),
        (
            "unknown client",
            env.app
                .client
                .post(env.url("/auth/introspect"))
                .form(&form(&[("client_id", "nobody"), ("client_secret", "x")])),
        ),
    ] {
        let r = request.send().await.unwrap();
        assert_eq!(r.status(), 401, "{case}");
        assert!(r.headers().get("www-authenticate").is_some(), "{case}");
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["error"], "invalid_client", "{case}");
        assert!(body.get("active").is_none(), "{case}");
    }
    let missing = env
        .app
        .client
        .post(env.url("/auth/introspect"))
        .basic_auth(CLIENT_ID, Some(CLIENT_SECRET))
        .form(&[("token_type_hint", "access_token")])
        .send()
        .await
        .unwrap();
    assert_eq!(error_json(missing).await, (400, "invalid_request".into()));
}

#[tokio::test]
async fn every_post_only_endpoint_answers_other_methods_with_its_405_allowing_post() {
    let env = env().await;
    for endpoint in [
        "/auth/exchange-code",
        "/auth/refresh",
        "/auth/revoke",
        "/auth/introspect",
    ] {
        for method in ["GET", "PUT", "DELETE"] {
            let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
            let r = Captured::read(
                env.app
                    .client
                    .request(method.clone(), env.url(endpoint))
                    .send()
                    .await
                    .unwrap(),
            )
            .await;
            let case = format!("{method} {endpoint}");
            assert_eq!(r.status, 405, "{case}");
            assert_eq!(r.header("allow"), "POST", "{case}");
            assert!(
                r.header("content-type").starts_with("application/json"),
                "{case}"
            );
            let body: Value = serde_json::from_slice(&r.body).unwrap();
            assert_eq!(body["error"], "invalid_request", "{case}");
        }
    }
}

/// The series a scrape right after start-up must already show, at zero.
fn zero_series() -> Vec<String> {
    let mut out = vec![
        r#"braid_sign_ins_started_total{provider="idp"}"#.to_owned(),
        r#"braid_sign_ins_completed_total{provider="idp"}"#.to_owned(),
        r#"braid_upstream_request_duration_seconds_count{endpoint="token",provider="idp"}"#
            .to_owned(),
        r#"braid_upstream_request_duration_seconds_count{endpoint="userinfo",provider="idp"}"#
            .to_owned(),
    ];
    for code in braid_http::metrics::sign_in_error_codes() {
        out.push(format!(
            r#"braid_sign_ins_failed_total{{error_code="{code}",provider="idp"}}"#
        ));
    }
    for endpoint in braid_http::metrics::TOKEN_ENDPOINTS {
        for outcome in braid_http::metrics::TOKEN_OUTCOMES {
            out.push(format!(
                r#"braid_token_requests_total{{endpoint="{endpoint}",outcome="{outcome}"}}"#
            ));
        }
    }
    out
}

#[tokio::test]
async fn every_sign_in_and_token_series_exists_at_zero_from_start_up() {
    // A provider that is never asked anything: no background check moves a series.
    let env = env_with(|s| {
        s.federated_login.providers.get_mut("idp").unwrap().enabled = false;
    })
    .await;
    for series in zero_series() {
        assert_eq!(env.metric(&series).await, Some(0.0), "{series}");
    }
    let text = reqwest::get(env.url("/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(text.contains(r#"braid_provider_status{provider="idp",state="disabled"} 1"#));
    for name in [
        "braid_sign_ins_started_total",
        "braid_sign_ins_completed_total",
        "braid_sign_ins_failed_total",
        "braid_upstream_request_duration_seconds",
        "braid_token_requests_total",
    ] {
        assert!(text.contains(&format!("# HELP {name} ")), "{name}");
    }
}

#[tokio::test]
async fn a_sign_in_moves_its_counters_and_times_each_upstream_call() {
    let env = env().await;
    let tokens = env.tokens_for("sub-1", "alice@example.com", true).await;
    assert_eq!(
        env.metric(r#"braid_sign_ins_started_total{provider="idp"}"#)
            .await,
        Some(1.0)
    );
    assert_eq!(
        env.metric(r#"braid_sign_ins_completed_total{provider="idp"}"#)
            .await,
        Some(1.0)
    );
    let token_calls = env
        .metric(r#"braid_upstream_request_duration_seconds_count{endpoint="token",provider="idp"}"#)
        .await;
    assert_eq!(token_calls, Some(1.0));
    assert!(
        env.metric(
            r#"braid_upstream_request_duration_seconds_count{endpoint="discovery",provider="idp"}"#
        )
        .await
        .unwrap()
            >= 1.0
    );
    assert_eq!(
        env.metric(r#"braid_token_requests_total{endpoint="exchange_code",outcome="success"}"#)
            .await,
        Some(1.0)
    );
    introspection(&env, tokens["access_token"].as_str().unwrap()).await;
    introspection(&env, "garbage").await;
    let revoked = env
        .app
        .client
        .post(env.url("/auth/revoke"))
        .basic_auth(CLIENT_ID, Some(CLIENT_SECRET))
        .form(&[("token", "unknown")])
        .send()
        .await
        .unwrap();
    assert_eq!(revoked.status(), 200);
    assert_eq!(
        env.metric(r#"braid_token_requests_total{endpoint="revoke",outcome="success"}"#)
            .await,
        Some(1.0)
    );
    for outcome in ["success", "inactive"] {
        assert_eq!(
            env.metric(&format!(
                r#"braid_token_requests_total{{endpoint="introspect",outcome="{outcome}"}}"#
            ))
            .await,
            Some(1.0),
            "{outcome}"
        );
    }
    // A callback without a started sign-in fails with its code.
    let r = env
        .app
        .client
        .get(env.url("/auth/connect/idp/callback?code=x&state=y"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(
        env.metric(r#"braid_sign_ins_failed_total{error_code="flow_expired",provider="idp"}"#)
            .await,
        Some(1.0)
    );
}

#[tokio::test]
async fn a_bearer_protected_metrics_endpoint_refuses_a_scrape_without_the_token() {
    const TOKEN: &str = "scrape-token-0123456789";
    let env = env_with(|s| s.metrics.bearer_token = Some(Secret::new(TOKEN))).await;
    for (case, auth) in [
        ("none", None),
        ("wrong", Some("Bearer scrape-token-wrong")),
        ("basic", Some("Basic c2NyYXBlOnRva2Vu")),
    ] {
        let mut request = env.app.client.get(env.url("/metrics"));
        if let Some(a) = auth {
            request = request.header("authorization", a);
        }
        let r = request.send().await.unwrap();
        assert_eq!(r.status(), 401, "{case}");
        assert!(
            r.headers()["www-authenticate"]
                .to_str()
                .unwrap()
                .starts_with("Bearer"),
            "{case}"
        );
        assert!(!r.text().await.unwrap().contains("braid_"), "{case}");
    }
    let r = env
        .app
        .client
        .get(env.url("/metrics"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(
        r.text()
            .await
            .unwrap()
            .contains("braid_sign_ins_started_total")
    );
}

#[tokio::test]
async fn metrics_on_their_own_listener_are_not_on_the_main_one() {
    let env = env_with(|s| s.metrics.listen = Some("127.0.0.1:0".into())).await;
    let metrics = env.app.metrics_address.clone().expect("a metrics listener");
    let main = env
        .app
        .client
        .get(env.url("/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(main.status(), 404);
    let text = reqwest::get(format!("{metrics}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(text.contains(r#"braid_sign_ins_started_total{provider="idp"} 0"#));
    assert_eq!(
        reqwest::get(format!("{metrics}/healthz"))
            .await
            .unwrap()
            .status(),
        200
    );
    let other = reqwest::get(format!("{metrics}{METADATA}")).await.unwrap();
    assert_eq!(other.status(), 404, "nothing else is served there");
}
