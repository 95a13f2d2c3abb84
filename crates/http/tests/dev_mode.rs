//! `braid serve --dev`: the demo app signs in through the built-in development providers over
//! the real login path, and automatic linking joins two providers' verified emails.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use support::{TestApp, spawn_app_with};

async fn dev_app() -> TestApp {
    spawn_app_with(|s| braid_http::dev::enable(s).unwrap()).await
}

/// Follows redirects from `url` until a page answers; returns its URL, status and body.
async fn follow(app: &TestApp, url: &str) -> (url::Url, u16, String) {
    let mut url = url::Url::parse(&app.address).unwrap().join(url).unwrap();
    for _ in 0..10 {
        let r = app.client.get(url.clone()).send().await.unwrap();
        if r.status().is_redirection() {
            let location = r.headers()["location"].to_str().unwrap();
            url = url.join(location).unwrap();
            continue;
        }
        let status = r.status().as_u16();
        return (url, status, r.text().await.unwrap());
    }
    panic!("too many redirects");
}

/// What the demo app's redirect page showed: the user id and how many identities.
struct Shown {
    user_id: String,
    identities: usize,
    body: String,
}

fn between<'a>(body: &'a str, start: &str, end: &str) -> &'a str {
    let from = body
        .find(start)
        .unwrap_or_else(|| panic!("{start} in {body}"))
        + start.len();
    let len = body[from..].find(end).unwrap();
    &body[from..from + len]
}

/// Signs in through the demo app with `idp`, as `email`, ticking "verified" or not.
async fn sign_in(app: &TestApp, idp: &str, email: &str, verified: bool) -> Shown {
    let (authorize, status, page) = follow(app, &format!("/dev/app/start/{idp}")).await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(authorize.path(), format!("/dev/idp/{idp}/authorize"));
    assert!(page.contains("Development mode"), "banner on the IdP page");
    let mut form: Vec<(String, String)> = authorize.query_pairs().into_owned().collect();
    form.push(("email".into(), email.into()));
    if verified {
        form.push(("verified".into(), "on".into()));
    }
    let r = app
        .client
        .post(authorize.as_str())
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let location = r.headers()["location"].to_str().unwrap().to_owned();
    let (landed, status, body) = follow(app, &location).await;
    assert_eq!(landed.path(), "/dev/app/callback");
    assert_eq!(status, 200, "{body}");
    assert!(
        body.contains("POST /auth/exchange-code</code> → 200"),
        "{body}"
    );
    assert!(body.contains("GET /auth/me</code> → 200"), "{body}");
    assert!(
        body.contains("&quot;typ&quot;: &quot;at+jwt&quot;"),
        "{body}"
    );
    Shown {
        user_id: between(&body, "id=\"user-id\">", "<").to_owned(),
        identities: between(&body, "id=\"identity-count\">", "<")
            .parse()
            .unwrap(),
        body,
    }
}

#[tokio::test]
async fn a_verified_email_at_a_second_provider_links_to_the_same_user() {
    let app = dev_app().await;
    let (_, status, home) = follow(&app, "/").await;
    assert_eq!(status, 200);
    assert!(home.contains("Sign in with Dev provider A"), "{home}");
    assert!(home.contains("not for production"), "{home}");

    let first = sign_in(&app, "dev-a", "alice@example.com", true).await;
    assert_eq!(first.identities, 1, "{}", first.body);

    let second = sign_in(&app, "dev-b", "Alice@example.com", true).await;
    assert_eq!(second.user_id, first.user_id);
    assert_eq!(second.identities, 2, "{}", second.body);
    assert!(second.body.contains("id=\"same-user\""), "{}", second.body);

    let unverified = sign_in(&app, "dev-b", "alice@example.com", false).await;
    assert_ne!(unverified.user_id, first.user_id);
    assert_eq!(unverified.identities, 1, "{}", unverified.body);
    assert!(unverified.body.contains("id=\"other-user\""));
}

#[tokio::test]
async fn the_demo_redirect_page_refuses_a_state_it_did_not_start() {
    let app = dev_app().await;
    let (_, status, body) = follow(&app, "/dev/app/callback?code=x&state=forged").await;
    assert_eq!(status, 400);
    assert!(body.contains("was not started here"), "{body}");
}

#[tokio::test]
async fn the_development_token_endpoint_wants_its_client_and_pkce() {
    let app = dev_app().await;
    let r = app
        .client
        .post(format!("{}/dev/idp/dev-a/token", app.address))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", "unknown"),
            ("redirect_uri", "x"),
            ("client_id", "braid"),
            ("client_secret", "wrong"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
}

#[tokio::test]
async fn without_dev_there_are_no_dev_routes() {
    let app = spawn_app_with(|_| {}).await;
    for path in [
        "/dev/app",
        "/dev/idp/dev-a/.well-known/openid-configuration",
    ] {
        let r = app
            .client
            .get(format!("{}{path}", app.address))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 404, "{path}");
    }
}

#[test]
fn dev_refuses_a_non_loopback_public_url_or_host() {
    let mut s = braid_http::Settings::default();
    s.server.public_url = Some("https://id.example.com".into());
    let e = braid_http::dev::enable(&mut s).unwrap_err();
    assert!(e.to_string().contains("non-loopback"), "{e}");
    let mut s = braid_http::Settings::default();
    s.server.host = "0.0.0.0".into();
    assert!(braid_http::dev::enable(&mut s).is_err());
}
