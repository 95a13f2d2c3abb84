//! Requests another site makes the browser send (SECURITY-CASES G03, G04) and parameters that
//! try to write response headers (G08).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use support::flow::*;
use support::link::*;

/// Every `Set-Cookie` of a response, and whether any header value holds a line break.
fn cookies_and_breaks(r: &reqwest::Response) -> (Vec<String>, bool) {
    let cookies = r
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap_or_default().to_owned())
        .collect();
    let breaks = r
        .headers()
        .values()
        .any(|v| v.as_bytes().iter().any(|b| *b == b'\r' || *b == b'\n'));
    (cookies, breaks)
}

#[tokio::test]
async fn g03_g04_a_form_posted_from_another_site_changes_nothing() {
    let env = manual_env().await;
    create_user(&env, "alice@example.com", None);
    env.at_select("sub-1", "alice@example.com").await;

    // Cross-site: SameSite=Lax keeps the link cookie out of another site's POST, and with
    // no cookie there is no flow to act on.
    let cross_site = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .post(env.url(SELECT))
        .header("origin", "https://evil.example")
        .form(&[("choice", "0")])
        .send()
        .await
        .unwrap();
    assert_eq!(cross_site.status(), 400);
    let body = cross_site.text().await.unwrap();
    assert!(body.contains("has ended"), "{body}");

    // Same-site (a sibling origin gets the cookie): without the flow's CSRF token, refused.
    let sibling = env
        .app
        .client
        .post(env.url(SELECT))
        .header("origin", "https://sibling.app.example")
        .form(&[("choice", "0")])
        .send()
        .await
        .unwrap();
    assert_eq!(sibling.status(), 403);
    assert_eq!(env.count("outbox"), 0, "no code sent");
    assert_eq!(env.count("identities"), 0);
}

#[tokio::test]
async fn g03_the_cookies_a_form_relies_on_are_samesite() {
    let env = manual_env().await;
    create_user(&env, "alice@example.com", None);
    let r = env
        .app
        .client
        .get(env.url(&format!(
            "/auth/connect/idp?client_id={CLIENT_ID}&redirect_uri={}&state=s",
            enc(REDIRECT_URI)
        )))
        .send()
        .await
        .unwrap();
    let (flow_cookies, _) = cookies_and_breaks(&r);
    assert!(
        flow_cookies
            .iter()
            .all(|c| c.contains("SameSite=Lax") && c.contains("HttpOnly")),
        "{flow_cookies:?}"
    );
    let upstream = url::Url::parse(r.headers()["location"].to_str().unwrap()).unwrap();
    env.idp
        .set_account(account("sub-1", "alice@example.com", true));
    let back = env.idp.authorize(&upstream).await;
    let r = env
        .app
        .client
        .get(env.url(&back.location[url::Position::BeforePath..]))
        .send()
        .await
        .unwrap();
    let (link_cookies, _) = cookies_and_breaks(&r);
    let link = link_cookies
        .iter()
        .find(|c| c.starts_with("braid_link="))
        .expect("a link cookie");
    assert!(
        link.contains("SameSite=Lax") && link.contains("HttpOnly"),
        "{link}"
    );
}

#[tokio::test]
async fn g08_line_breaks_in_parameters_never_reach_a_header() {
    let env = env().await;
    let injected = "x\r\nSet-Cookie: a=b";
    // In the redirect URI: not a registered one, refused on Braid's page.
    let r = env
        .app
        .client
        .get(env.url(&format!(
            "/auth/connect/idp?client_id={CLIENT_ID}&redirect_uri={}&state=s",
            enc(&format!("{REDIRECT_URI}{injected}"))
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let (cookies, breaks) = cookies_and_breaks(&r);
    assert!(!breaks);
    assert!(cookies.iter().all(|c| !c.starts_with("a=")), "{cookies:?}");

    // In the app's state: it travels back percent-encoded, or is refused, never as a header.
    let r = env
        .app
        .client
        .get(env.url(&format!(
            "/auth/connect/idp?client_id={CLIENT_ID}&redirect_uri={}&state={}",
            enc(REDIRECT_URI),
            enc(injected)
        )))
        .send()
        .await
        .unwrap();
    let (cookies, breaks) = cookies_and_breaks(&r);
    assert!(!breaks);
    assert!(cookies.iter().all(|c| !c.starts_with("a=")), "{cookies:?}");
    if r.status() == 303 {
        let upstream = url::Url::parse(r.headers()["location"].to_str().unwrap()).unwrap();
        let back = env.idp.authorize(&upstream).await;
        let landing = env
            .app
            .client
            .get(env.url(&back.location[url::Position::BeforePath..]))
            .send()
            .await
            .unwrap();
        let (cookies, breaks) = cookies_and_breaks(&landing);
        assert!(!breaks);
        assert!(cookies.iter().all(|c| !c.starts_with("a=")), "{cookies:?}");
        let to = landing.headers()["location"].to_str().unwrap().to_owned();
        let to = url::Url::parse(&to).unwrap();
        let state = to.query_pairs().find(|(k, _)| k == "state").unwrap().1;
        assert_eq!(
            state, injected,
            "the app gets its state back exactly, encoded"
        );
    } else {
        assert_eq!(r.status(), 400);
    }
}
