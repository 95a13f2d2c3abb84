//! The exchange code and Braid's own tokens: SECURITY-CASES group F, and the response hygiene
//! of group G that applies to them.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use base64::Engine as _;
use serde_json::Value;
use support::flow::*;
use support::raw::{Captured, post_chunked};

fn b64json(part: &str) -> Value {
    serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(part)
            .unwrap(),
    )
    .unwrap()
}

#[tokio::test]
async fn f01_codes_are_256_bit_and_stored_only_as_their_hash() {
    let env = env().await;
    let code = env.login().await.code();
    assert_eq!(
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(&code)
            .unwrap()
            .len(),
        32
    );
    let hex: String = braid_http::tokens::opaque::hash(&code)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let literal = if std::env::var("BRAID_TEST_DATABASE_URL").is_ok() {
        format!("'\\x{hex}'::bytea")
    } else {
        format!("X'{hex}'")
    };
    assert_eq!(
        env.app.db.execute(&format!(
            "UPDATE exchange_codes SET client_id = client_id WHERE code_hash = {literal}"
        )),
        1
    );
    let stored_plain = env.app.db.execute(&format!("UPDATE exchange_codes SET client_id = client_id WHERE client_id = '{code}' OR redirect_uri = '{code}' OR auth_context LIKE '%{code}%'"));
    assert_eq!(stored_plain, 0);
}

#[tokio::test]
async fn f02_second_redemption_fails_and_revokes_what_the_first_issued() {
    let env = env().await;
    let code = env.login().await.code();
    let first: Value = env.redeem(&code).await.json().await.unwrap();
    assert_eq!(
        env.me(first["access_token"].as_str().unwrap())
            .await
            .status(),
        200
    );
    let (status, error) = error_json(env.redeem(&code).await).await;
    assert_eq!((status, error.as_str()), (400, "invalid_grant"));
    assert_eq!(
        env.me(first["access_token"].as_str().unwrap())
            .await
            .status(),
        401,
        "access token revoked"
    );
    let (status, error) =
        error_json(env.refresh(first["refresh_token"].as_str().unwrap()).await).await;
    assert_eq!(
        (status, error.as_str()),
        (400, "invalid_grant"),
        "refresh token family revoked"
    );
}

#[tokio::test]
async fn f03_concurrent_double_redemption_has_exactly_one_winner() {
    let env = env().await;
    let code = env.login().await.code();
    let (a, b) = tokio::join!(env.redeem(&code), env.redeem(&code));
    let mut statuses = [a.status().as_u16(), b.status().as_u16()];
    statuses.sort_unstable();
    assert_eq!(statuses, [200, 400]);
}

#[tokio::test]
async fn f04_expired_code_is_invalid_grant() {
    let env = env().await;
    let code = env.login().await.code();
    env.app
        .db
        .execute("UPDATE exchange_codes SET expires_at = 0");
    let (status, error) = error_json(env.redeem(&code).await).await;
    assert_eq!((status, error.as_str()), (400, "invalid_grant"));
}

#[tokio::test]
async fn f06_bad_client_authentication_is_401_and_leaves_the_code_usable() {
    let env = env().await;
    let code = env.login().await.code();
    let post = |form: Vec<(&'static str, String)>| {
        env.app
            .client
            .post(env.url("/auth/exchange-code"))
            .form(&form)
            .send()
    };
    let base = |secret: Option<&str>| {
        let mut f = vec![
            ("grant_type", "authorization_code".to_owned()),
            ("code", code.clone()),
            ("redirect_uri", REDIRECT_URI.to_owned()),
            ("client_id", CLIENT_ID.to_owned()),
        ];
        if let Some(s) = secret {
            f.push(("client_secret", s.to_owned()));
        }
        f
    };
    for attempt in [base(None), base(Some("wrong-secret"))] {
        let r = post(attempt).await.unwrap();
        assert_eq!(r.status(), 401);
        assert!(r.headers().get("www-authenticate").is_some());
        assert_eq!(r.json::<Value>().await.unwrap()["error"], "invalid_client");
    }
    // Basic and post together is ambiguous.
    let both = env
        .app
        .client
        .post(env.url("/auth/exchange-code"))
        .basic_auth(CLIENT_ID, Some(CLIENT_SECRET))
        .form(&base(Some(CLIENT_SECRET)))
        .send()
        .await
        .unwrap();
    assert_eq!(both.status(), 401);
    assert_eq!(
        env.redeem(&code).await.status(),
        200,
        "the code survived the failed attempts"
    );
}

async fn public_login(env: &Env, challenge: Option<&str>) -> String {
    let mut query = format!(
        "client_id={PUBLIC_CLIENT}&redirect_uri={}",
        enc(PUBLIC_REDIRECT)
    );
    if let Some(c) = challenge {
        query.push_str(&format!("&code_challenge={c}&code_challenge_method=S256"));
    }
    let upstream = env.start(&query).await;
    let back = env.idp.authorize(&upstream).await;
    env.follow(&back.location).await.code()
}

async fn public_redeem(env: &Env, code: &str, verifier: Option<&str>) -> reqwest::Response {
    let mut form = vec![
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", PUBLIC_REDIRECT),
        ("client_id", PUBLIC_CLIENT),
    ];
    if let Some(v) = verifier {
        form.push(("code_verifier", v));
    }
    env.app
        .client
        .post(env.url("/auth/exchange-code"))
        .form(&form)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn f07_pkce_wrong_verifier_missing_verifier_and_downgrade_are_rejected() {
    let env = env().await;
    let verifier = "a".repeat(43);
    let challenge = braid_http::tokens::opaque::pkce_s256(&verifier);
    // (a) wrong verifier
    let code = public_login(&env, Some(&challenge)).await;
    assert_eq!(
        error_json(public_redeem(&env, &code, Some(&"b".repeat(43))).await).await,
        (400, "invalid_grant".into())
    );
    // (c) challenge stored, no verifier
    let code = public_login(&env, Some(&challenge)).await;
    assert_eq!(
        error_json(public_redeem(&env, &code, None).await).await,
        (400, "invalid_grant".into())
    );
    // (b) verifier sent for a code that had no challenge (confidential client without PKCE)
    let code = env.login().await.code();
    let r = env
        .app
        .client
        .post(env.url("/auth/exchange-code"))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT_URI),
            ("client_id", CLIENT_ID),
            ("client_secret", CLIENT_SECRET),
            ("code_verifier", &verifier),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(error_json(r).await, (400, "invalid_grant".into()));
    // and the right verifier works
    let code = public_login(&env, Some(&challenge)).await;
    assert_eq!(
        public_redeem(&env, &code, Some(&verifier)).await.status(),
        200
    );
}

#[tokio::test]
async fn f08_redemption_with_another_redirect_uri_is_rejected() {
    let env = env().await;
    let code = env.login().await.code();
    let r = env
        .app
        .client
        .post(env.url("/auth/exchange-code"))
        .basic_auth(CLIENT_ID, Some(CLIENT_SECRET))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", "https://app.example/other"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(error_json(r).await, (400, "invalid_grant".into()));
}

#[tokio::test]
async fn f09_guessed_codes_are_all_invalid_grant() {
    let env = env().await;
    env.login().await.code();
    for _ in 0..50 {
        let guess = braid_http::tokens::opaque::random_token().unwrap();
        assert_eq!(
            error_json(env.redeem(&guess).await).await,
            (400, "invalid_grant".into())
        );
    }
}

#[tokio::test]
async fn f11_token_responses_are_uncacheable_json() {
    let env = env().await;
    let code = env.login().await.code();
    for r in [env.redeem(&code).await, env.redeem(&code).await] {
        assert_eq!(r.headers()["cache-control"], "no-store");
        assert_eq!(r.headers()["pragma"], "no-cache");
        assert!(
            r.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("application/json")
        );
    }
    let wrong_type = env
        .app
        .client
        .post(env.url("/auth/exchange-code"))
        .body("{}")
        .header("content-type", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(
        error_json(wrong_type).await,
        (415, "invalid_request".into())
    );
    let unsupported = env
        .app
        .client
        .post(env.url("/auth/exchange-code"))
        .form(&[("grant_type", "password")])
        .send()
        .await
        .unwrap();
    assert_eq!(
        error_json(unsupported).await,
        (400, "unsupported_grant_type".into())
    );
}

#[tokio::test]
async fn f12_access_token_shape() {
    let env = env().await;
    let tokens = env.tokens_for("sub-1", "alice@example.com", true).await;
    assert_eq!(tokens["token_type"], "Bearer");
    assert_eq!(tokens["expires_in"], 900);
    let at = tokens["access_token"].as_str().unwrap();
    let parts: Vec<&str> = at.split('.').collect();
    let header = b64json(parts[0]);
    let claims = b64json(parts[1]);
    assert_eq!(header["typ"], "at+jwt");
    assert_eq!(header["alg"], "ES256");
    assert!(header["kid"].is_string());
    assert_eq!(claims["iss"], env.app.address.as_str());
    assert_eq!(claims["aud"], CLIENT_ID);
    assert_eq!(claims["client_id"], CLIENT_ID);
    assert!(claims["jti"].is_string());
    assert!(claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap() <= 900);
    assert_eq!(claims["sub"], env.user_of(&tokens).await.as_str());
    assert!(claims.get("email").is_none(), "no PII beyond need");
    assert_eq!(tokens["refresh_token"].as_str().unwrap().len(), 43);
}

#[tokio::test]
async fn f13_jwks_publishes_public_parameters_only() {
    let env = env().await;
    let r = env
        .app
        .client
        .get(env.url("/.well-known/jwks.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let jwks: Value = r.json().await.unwrap();
    let keys = jwks["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 1);
    for k in keys {
        for private in ["d", "p", "q", "dp", "dq", "qi", "k"] {
            assert!(k.get(private).is_none());
        }
        assert_eq!(k["use"], "sig");
    }
}

#[tokio::test]
async fn f14_refresh_tokens_and_provider_tokens_are_not_access_tokens() {
    let env = env().await;
    let tokens = env.tokens_for("sub-1", "alice@example.com", true).await;
    assert_eq!(
        env.me(tokens["refresh_token"].as_str().unwrap())
            .await
            .status(),
        401
    );
    let foreign = format!(
        "{}.{}.sig",
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(r#"{"alg":"RS256","typ":"JWT","kid":"idp"}"#),
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(r#"{"sub":"x"}"#)
    );
    assert_eq!(env.me(&foreign).await.status(), 401);
    assert_eq!(
        env.app
            .client
            .get(env.url("/auth/me"))
            .send()
            .await
            .unwrap()
            .status(),
        401
    );
}

#[tokio::test]
async fn f15_reusing_a_rotated_refresh_token_revokes_the_family() {
    let env = env().await;
    let tokens = env.tokens_for("sub-1", "alice@example.com", true).await;
    let rt1 = tokens["refresh_token"].as_str().unwrap();
    let r = env.refresh(rt1).await;
    assert_eq!(r.status(), 200);
    let rotated: Value = r.json().await.unwrap();
    let rt2 = rotated["refresh_token"].as_str().unwrap();
    assert_ne!(rt1, rt2);
    assert_eq!(
        env.me(rotated["access_token"].as_str().unwrap())
            .await
            .status(),
        200
    );
    assert_eq!(
        error_json(env.refresh(rt1).await).await,
        (400, "invalid_grant".into())
    );
    assert_eq!(
        error_json(env.refresh(rt2).await).await,
        (400, "invalid_grant".into()),
        "the whole family is revoked"
    );
}

#[tokio::test]
async fn f16_concurrent_refresh_has_one_winner() {
    let env = env().await;
    let tokens = env.tokens_for("sub-1", "alice@example.com", true).await;
    let rt = tokens["refresh_token"].as_str().unwrap();
    let (a, b) = tokio::join!(env.refresh(rt), env.refresh(rt));
    let mut statuses = [a.status().as_u16(), b.status().as_u16()];
    statuses.sort_unstable();
    assert_eq!(statuses, [200, 400]);
}

#[tokio::test]
async fn f17_refresh_family_past_its_absolute_lifetime_is_refused() {
    let env = env().await;
    let tokens = env.tokens_for("sub-1", "alice@example.com", true).await;
    env.app
        .db
        .execute("UPDATE refresh_tokens SET family_expires_at = 1");
    assert_eq!(
        error_json(env.refresh(tokens["refresh_token"].as_str().unwrap()).await).await,
        (400, "invalid_grant".into())
    );
}

#[tokio::test]
async fn f18_disabling_a_user_stops_refresh_and_profile_access() {
    let env = env().await;
    let tokens = env.tokens_for("sub-1", "alice@example.com", true).await;
    let user = env.user_of(&tokens).await;
    env.app.db.execute(&format!(
        "UPDATE users SET disabled = TRUE WHERE id = '{user}'"
    ));
    assert_eq!(
        error_json(env.refresh(tokens["refresh_token"].as_str().unwrap()).await).await,
        (400, "invalid_grant".into())
    );
    assert_eq!(
        env.me(tokens["access_token"].as_str().unwrap())
            .await
            .status(),
        401
    );
}

#[tokio::test]
async fn f19_unsigned_or_symmetric_forgeries_of_our_tokens_are_rejected() {
    let env = env().await;
    let tokens = env.tokens_for("sub-1", "alice@example.com", true).await;
    let at = tokens["access_token"].as_str().unwrap();
    let parts: Vec<&str> = at.split('.').collect();
    let mut header = b64json(parts[0]);
    header["alg"] = "none".into();
    let none = format!(
        "{}.{}.",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(header.to_string()),
        parts[1]
    );
    assert_eq!(env.me(&none).await.status(), 401);
    header["alg"] = "HS256".into();
    let jwks = env
        .app
        .client
        .get(env.url("/.well-known/jwks.json"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let mut h = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
    h.typ = Some("at+jwt".into());
    h.kid = header["kid"].as_str().map(String::from);
    let forged = jsonwebtoken::encode(
        &h,
        &b64json(parts[1]),
        &jsonwebtoken::EncodingKey::from_secret(jwks.as_bytes()),
    )
    .unwrap();
    assert_eq!(env.me(&forged).await.status(), 401);
}

#[tokio::test]
async fn revocation_of_a_refresh_token_ends_its_family_and_of_an_access_token_ends_it() {
    let env = env().await;
    let tokens = env.tokens_for("sub-1", "alice@example.com", true).await;
    let revoke = |token: String| {
        env.app
            .client
            .post(env.url("/auth/revoke"))
            .basic_auth(CLIENT_ID, Some(CLIENT_SECRET))
            .form(&[("token", token)])
            .send()
    };
    assert_eq!(
        revoke(tokens["refresh_token"].as_str().unwrap().into())
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(
        error_json(env.refresh(tokens["refresh_token"].as_str().unwrap()).await).await,
        (400, "invalid_grant".into())
    );
    assert_eq!(
        revoke(tokens["access_token"].as_str().unwrap().into())
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(
        env.me(tokens["access_token"].as_str().unwrap())
            .await
            .status(),
        401
    );
    assert_eq!(
        revoke("unknown".into()).await.unwrap().status(),
        200,
        "RFC 7009 §2.2"
    );
    let unauthenticated = env
        .app
        .client
        .post(env.url("/auth/revoke"))
        .form(&[("token", "x")])
        .send()
        .await
        .unwrap();
    assert_eq!(unauthenticated.status(), 401);
}

#[tokio::test]
async fn g05_g06_g13_error_pages_are_unframeable_private_and_leak_nothing() {
    let env = env().await;
    let r = env
        .app
        .client
        .get(env.url("/auth/connect/idp/callback?code=secret-code-value&state=secret-state"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let h = r.headers().clone();
    assert_eq!(h["x-frame-options"], "DENY");
    let csp = h["content-security-policy"].to_str().unwrap();
    assert!(
        csp.contains("frame-ancestors 'none'")
            && csp.contains("default-src 'none'")
            && !csp.contains("unsafe-inline")
    );
    assert_eq!(h["referrer-policy"], "no-referrer");
    let body = r.text().await.unwrap();
    assert!(!body.contains("secret-code-value") && !body.contains("secret-state"));
    assert!(
        !body.contains("http://") && !body.contains("https://"),
        "no third-party resources"
    );
}

#[tokio::test]
async fn g12_no_cors_on_auth_endpoints() {
    let env = env().await;
    for path in [
        "/auth/exchange-code",
        "/auth/connect/idp/callback",
        "/auth/refresh",
    ] {
        let r = env
            .app
            .client
            .request(reqwest::Method::OPTIONS, env.url(path))
            .header("origin", "https://evil.example")
            .header("access-control-request-method", "POST")
            .send()
            .await
            .unwrap();
        assert!(
            r.headers().get("access-control-allow-origin").is_none(),
            "{path}"
        );
    }
}

#[tokio::test]
async fn f18_a_disabled_users_code_cannot_be_redeemed() {
    let env = env().await;
    let tokens = env.tokens_for("sub-1", "alice@example.com", true).await;
    let user = env.user_of(&tokens).await;
    let code = env
        .login_as("sub-1", "alice@example.com", true)
        .await
        .code();
    env.app.db.execute(&format!(
        "UPDATE users SET disabled = TRUE WHERE id = '{user}'"
    ));
    assert_eq!(
        error_json(env.redeem(&code).await).await,
        (400, "invalid_grant".into())
    );
}

const TOKEN_ENDPOINTS: [&str; 3] = ["/auth/exchange-code", "/auth/refresh", "/auth/revoke"];

/// An unredeemed code and an unrotated refresh token, and for each token endpoint a form that
/// would spend one of them: a refusal that executed anything shows in `assert_unspent`.
struct Unspent {
    env: Env,
    code: String,
    refresh_token: String,
}

impl Unspent {
    async fn new() -> Self {
        let env = env().await;
        let tokens = env.tokens_for("sub-1", "alice@example.com", true).await;
        let code = env.login().await.code();
        Self {
            refresh_token: tokens["refresh_token"].as_str().unwrap().to_owned(),
            env,
            code,
        }
    }

    fn form(&self, endpoint: &str) -> String {
        let client = format!("client_id={CLIENT_ID}&client_secret={}", enc(CLIENT_SECRET));
        match endpoint {
            "/auth/exchange-code" => format!(
                "grant_type=authorization_code&code={}&redirect_uri={}&{client}",
                self.code,
                enc(REDIRECT_URI)
            ),
            "/auth/refresh" => format!(
                "grant_type=refresh_token&refresh_token={}&{client}",
                self.refresh_token
            ),
            _ => format!("token={}&{client}", self.refresh_token),
        }
    }

    fn post(&self, endpoint: &str) -> reqwest::RequestBuilder {
        self.env.app.client.post(self.env.url(endpoint))
    }

    async fn assert_unspent(&self) {
        assert_eq!(
            self.env.redeem(&self.code).await.status(),
            200,
            "the code was not redeemed"
        );
        assert_eq!(
            self.env.refresh(&self.refresh_token).await.status(),
            200,
            "the refresh token was neither rotated nor revoked"
        );
    }
}

/// A refusal as RFC 6749 §5.2 has it: JSON `invalid_request`, never cached.
fn assert_oauth_refusal(r: &Captured, status: u16, case: &str) {
    assert_eq!(r.status, status, "{case}");
    assert!(
        r.header("content-type").starts_with("application/json"),
        "{case}"
    );
    assert_eq!(r.header("cache-control"), "no-store", "{case}");
    assert_eq!(r.header("pragma"), "no-cache", "{case}");
    let body: Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(body["error"], "invalid_request", "{case}");
    assert!(body["error_description"].is_string(), "{case}");
}

/// `form` with harmless extra parameters appended, to exactly `len` bytes.
fn padded(form: &str, len: usize) -> String {
    let mut body = form.to_owned();
    for i in 0.. {
        let remaining = len - body.len();
        if remaining == 0 {
            break;
        }
        let name = if remaining > 2100 {
            format!("&pad{i}=")
        } else {
            "&z=".into()
        };
        let value = (remaining - name.len()).min(2000);
        body.push_str(&name);
        body.push_str(&"a".repeat(value));
    }
    assert_eq!(body.len(), len);
    body
}

#[tokio::test]
async fn token_endpoints_answer_an_oversized_body_with_oauth_json_413() {
    let unspent = Unspent::new().await;
    let too_long = braid_http::limits::MAX_BODY_BYTES + 1;
    for endpoint in TOKEN_ENDPOINTS {
        let body = padded(&unspent.form(endpoint), too_long);
        let sized = unspent
            .post(endpoint)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body.clone())
            .send()
            .await
            .unwrap();
        assert_oauth_refusal(&Captured::read(sized).await, 413, endpoint);
        let chunked = post_chunked(
            &unspent.env.app.address,
            endpoint,
            "application/x-www-form-urlencoded",
            body.as_bytes(),
        )
        .await;
        assert_oauth_refusal(&chunked, 413, &format!("{endpoint}, chunked"));
    }
    unspent.assert_unspent().await;
    // The limit itself is still served, sized or chunked.
    for send_chunked in [false, true] {
        let code = unspent.env.login().await.code();
        let form = format!(
            "grant_type=authorization_code&code={code}&redirect_uri={}&client_id={CLIENT_ID}&client_secret={}",
            enc(REDIRECT_URI),
            enc(CLIENT_SECRET)
        );
        let body = padded(&form, braid_http::limits::MAX_BODY_BYTES);
        let status = if send_chunked {
            post_chunked(
                &unspent.env.app.address,
                "/auth/exchange-code",
                "application/x-www-form-urlencoded",
                body.as_bytes(),
            )
            .await
            .status
        } else {
            unspent
                .post("/auth/exchange-code")
                .header("content-type", "application/x-www-form-urlencoded")
                .body(body)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        };
        assert_eq!(status, 200, "chunked: {send_chunked}");
    }
}

#[tokio::test]
async fn token_endpoints_answer_a_wrong_or_missing_content_type_with_oauth_json_415() {
    let unspent = Unspent::new().await;
    for endpoint in TOKEN_ENDPOINTS {
        for content_type in [
            Some("application/json"),
            Some("text/plain"),
            Some("multipart/form-data; boundary=x"),
            Some("application/x-www-form-urlencodedx"),
            None,
        ] {
            let mut request = unspent.post(endpoint).body(unspent.form(endpoint));
            if let Some(t) = content_type {
                request = request.header("content-type", t);
            }
            let r = Captured::read(request.send().await.unwrap()).await;
            assert_oauth_refusal(&r, 415, &format!("{endpoint} {content_type:?}"));
        }
    }
    unspent.assert_unspent().await;
}

#[tokio::test]
async fn token_endpoints_answer_other_methods_with_oauth_json_405_allowing_post() {
    let unspent = Unspent::new().await;
    for endpoint in TOKEN_ENDPOINTS {
        let form = unspent.form(endpoint);
        for method in ["GET", "PUT", "PATCH", "DELETE", "OPTIONS", "HEAD"] {
            let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
            let r = unspent
                .env
                .app
                .client
                .request(
                    method.clone(),
                    unspent.env.url(&format!("{endpoint}?{form}")),
                )
                .header("content-type", "application/x-www-form-urlencoded")
                .body(form.clone())
                .send()
                .await
                .unwrap();
            let r = Captured::read(r).await;
            let case = format!("{method} {endpoint}");
            assert_eq!(r.header("allow"), "POST", "{case}");
            if method == reqwest::Method::HEAD {
                assert_eq!(r.status, 405, "{case}");
                assert!(r.header("content-type").starts_with("application/json"));
                assert_eq!(r.header("cache-control"), "no-store", "{case}");
            } else {
                assert_oauth_refusal(&r, 405, &case);
            }
        }
    }
    unspent.assert_unspent().await;
}

#[tokio::test]
async fn token_endpoints_answer_an_unparseable_body_with_oauth_json_400() {
    let unspent = Unspent::new().await;
    for endpoint in TOKEN_ENDPOINTS {
        let form = unspent.form(endpoint);
        let many: String = (0..40).map(|i| format!("&p{i}=1")).collect();
        let cases: [(&str, Vec<u8>); 6] = [
            (
                "repeated",
                format!("{form}&client_id={CLIENT_ID}").into_bytes(),
            ),
            (
                "overlong UTF-8",
                format!("{form}&state=%C0%AF").into_bytes(),
            ),
            (
                "raw invalid UTF-8",
                [form.as_bytes(), b"&state=\xff\xfe"].concat(),
            ),
            ("NUL", format!("{form}&state=%00").into_bytes()),
            (
                "value too long",
                format!("{form}&state={}", "a".repeat(3000)).into_bytes(),
            ),
            ("too many", format!("{form}{many}").into_bytes()),
        ];
        for (case, body) in cases {
            let r = unspent
                .post(endpoint)
                .header("content-type", "application/x-www-form-urlencoded")
                .body(body)
                .send()
                .await
                .unwrap();
            assert_oauth_refusal(
                &Captured::read(r).await,
                400,
                &format!("{endpoint}: {case}"),
            );
        }
    }
    unspent.assert_unspent().await;
}

#[tokio::test]
async fn token_endpoints_refuse_any_content_coding_with_oauth_json_415_before_reading_the_body() {
    let unspent = Unspent::new().await;
    for endpoint in TOKEN_ENDPOINTS {
        // A plain form labelled as encoded: executing it would mean reading it as unencoded.
        let codings: [&[&str]; 10] = [
            &["gzip"],
            &["x-gzip"],
            &["deflate"],
            &["br"],
            &["zstd"],
            &["x-braid-unknown"],
            &["gzip, identity"],
            &["identity, gzip"],
            &["identity", "identity"],
            &[""],
        ];
        for coding in codings {
            let mut request = unspent
                .post(endpoint)
                .header("content-type", "application/x-www-form-urlencoded")
                .body(unspent.form(endpoint));
            for value in coding {
                request = request.header("content-encoding", *value);
            }
            let r = Captured::read(request.send().await.unwrap()).await;
            assert_oauth_refusal(&r, 415, &format!("{endpoint} {coding:?}"));
        }
        // Refused on the header alone, so an oversized body does not make it a 413.
        let oversized = unspent
            .post(endpoint)
            .header("content-type", "application/x-www-form-urlencoded")
            .header("content-encoding", "gzip")
            .body(padded(
                &unspent.form(endpoint),
                braid_http::limits::MAX_BODY_BYTES + 1,
            ))
            .send()
            .await
            .unwrap();
        assert_oauth_refusal(&Captured::read(oversized).await, 415, endpoint);
    }
    unspent.assert_unspent().await;
}

#[tokio::test]
async fn token_endpoints_accept_the_identity_content_coding() {
    let unspent = Unspent::new().await;
    let post = |endpoint: &str, form: String, coding: &'static str| {
        unspent
            .post(endpoint)
            .header("content-type", "application/x-www-form-urlencoded")
            .header("content-encoding", coding)
            .body(form)
            .send()
    };
    let r = post(
        "/auth/exchange-code",
        unspent.form("/auth/exchange-code"),
        "identity",
    );
    assert_eq!(r.await.unwrap().status(), 200);
    let r = post("/auth/refresh", unspent.form("/auth/refresh"), "Identity")
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let rotated: Value = r.json().await.unwrap();
    let rotated = rotated["refresh_token"].as_str().unwrap();
    let revoke = format!(
        "token={rotated}&client_id={CLIENT_ID}&client_secret={}",
        enc(CLIENT_SECRET)
    );
    assert_eq!(
        post("/auth/revoke", revoke, "identity")
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(
        error_json(unspent.env.refresh(rotated).await).await,
        (400, "invalid_grant".into()),
        "the revocation was executed"
    );
}
