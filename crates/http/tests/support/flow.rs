//! A Braid app wired to an in-process fake OpenID provider, and a browser that logs in.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use super::{TestApp, spawn_app_with};
use braid_core::Secret;
use braid_http::Settings;
use braid_http::settings::{ClientSettings, ErrorDisplay, Resolution};
use braid_providers::testing::{FakeAccount, FakeIdp};
use reqwest::StatusCode;
use serde_json::Value;

pub const CLIENT_ID: &str = "app";
pub const CLIENT_SECRET: &str = "app-secret-0123456789-0123456789-abcdef";
pub const REDIRECT_URI: &str = "https://app.example/callback";
pub const PUBLIC_CLIENT: &str = "spa";
pub const PUBLIC_REDIRECT: &str = "http://127.0.0.1:5173/callback";

pub struct Env {
    pub app: TestApp,
    pub idp: FakeIdp,
}

pub async fn env() -> Env {
    env_with(|_| {}).await
}

pub async fn env_with(configure: impl FnOnce(&mut Settings)) -> Env {
    env_with_idp(|_| {}, configure).await
}

/// As [`env_with`], with the fake provider prepared before Braid starts (and first asks it
/// for its discovery document).
pub async fn env_with_idp(
    prepare: impl FnOnce(&FakeIdp),
    configure: impl FnOnce(&mut Settings),
) -> Env {
    let idp = FakeIdp::start().await;
    prepare(&idp);
    let provider = idp.provider_settings();
    let app = spawn_app_with(|s| {
        s.federated_login.providers.insert("idp".into(), provider);
        s.clients.insert(
            CLIENT_ID.into(),
            ClientSettings {
                redirect_uris: vec![REDIRECT_URI.into()],
                secret: Some(Secret::new(CLIENT_SECRET)),
                // The security tests read the refusal on Braid's page; app_errors.rs has the
                // same failures going back to the app (the default).
                errors: ErrorDisplay::Page,
                ..Default::default()
            },
        );
        s.clients.insert(
            PUBLIC_CLIENT.into(),
            ClientSettings {
                redirect_uris: vec![PUBLIC_REDIRECT.into()],
                public: true,
                ..Default::default()
            },
        );
        s.account_linking.resolution = Resolution::Automatic;
        configure(s);
    })
    .await;
    Env { app, idp }
}

pub fn account(sub: &str, email: &str, verified: bool) -> FakeAccount {
    FakeAccount {
        sub: sub.into(),
        email: Some(email.into()),
        email_verified: Some(Value::Bool(verified)),
        ..FakeAccount::default()
    }
}

/// What a login ended with.
pub struct Landing {
    pub status: StatusCode,
    pub location: Option<url::Url>,
    pub body: String,
}

impl Landing {
    pub fn param(&self, name: &str) -> Option<String> {
        self.location
            .as_ref()?
            .query_pairs()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
    }

    pub fn code(&self) -> String {
        assert_eq!(
            self.status,
            StatusCode::SEE_OTHER,
            "login did not complete: {}",
            self.body
        );
        self.param("code").expect("code")
    }
}

impl Env {
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.app.address, path)
    }

    /// The value of one series at `/metrics`, e.g.
    /// `braid_federated_logins_total{provider="idp",outcome="no_flow"}`; `None` when absent.
    pub async fn metric(&self, series: &str) -> Option<f64> {
        metric_of(&self.app.address, series).await
    }

    /// Waits (up to 10 s) until the series has this value: for what background tasks set.
    pub async fn wait_for_metric(&self, series: &str, value: f64) {
        for _ in 0..200 {
            if self.metric(series).await == Some(value) {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        panic!("{series} never became {value}");
    }

    /// `GET /auth/connect/idp?…` and return the upstream authorize URL Braid redirects to.
    pub async fn start(&self, query: &str) -> url::Url {
        let r = self
            .app
            .client
            .get(self.url(&format!("/auth/connect/idp?{query}")))
            .send()
            .await
            .unwrap();
        assert_eq!(
            r.status(),
            StatusCode::SEE_OTHER,
            "{}",
            r.text().await.unwrap_or_default()
        );
        url::Url::parse(r.headers()["location"].to_str().unwrap()).unwrap()
    }

    pub async fn start_default(&self) -> url::Url {
        self.start(&format!(
            "client_id={CLIENT_ID}&redirect_uri={}&state=app-state-1",
            enc(REDIRECT_URI)
        ))
        .await
    }

    /// Sends the browser to Braid's callback URL (as the provider's redirect would).
    pub async fn follow(&self, callback: &url::Url) -> Landing {
        let path = &callback[url::Position::BeforePath..];
        land(self.app.client.get(self.url(path)).send().await.unwrap()).await
    }

    /// A complete login as the current fake account.
    pub async fn login(&self) -> Landing {
        let upstream = self.start_default().await;
        let back = self.idp.authorize(&upstream).await;
        self.follow(&back.location).await
    }

    pub async fn login_as(&self, sub: &str, email: &str, verified: bool) -> Landing {
        self.idp.set_account(account(sub, email, verified));
        self.login().await
    }

    pub async fn redeem(&self, code: &str) -> reqwest::Response {
        self.app
            .client
            .post(self.url("/auth/exchange-code"))
            .form(&[
                ("grant_type", "authorization_code"),
                ("code", code),
                ("redirect_uri", REDIRECT_URI),
                ("client_id", CLIENT_ID),
                ("client_secret", CLIENT_SECRET),
            ])
            .send()
            .await
            .unwrap()
    }

    /// Logs in and redeems: the token response.
    pub async fn tokens_for(&self, sub: &str, email: &str, verified: bool) -> Value {
        let code = self.login_as(sub, email, verified).await.code();
        let r = self.redeem(&code).await;
        assert_eq!(r.status(), 200);
        r.json().await.unwrap()
    }

    pub async fn me(&self, access_token: &str) -> reqwest::Response {
        self.app
            .client
            .get(self.url("/auth/me"))
            .bearer_auth(access_token)
            .send()
            .await
            .unwrap()
    }

    /// `/auth/me` for the access token of a token response, as JSON.
    pub async fn profile(&self, tokens: &Value) -> Value {
        let r = self.me(tokens["access_token"].as_str().unwrap()).await;
        assert_eq!(r.status(), 200);
        r.json().await.unwrap()
    }

    /// The user id Braid signed in (the `sub` of the access token, via /auth/me).
    pub async fn user_of(&self, tokens: &Value) -> String {
        let me: Value = self
            .me(tokens["access_token"].as_str().unwrap())
            .await
            .json()
            .await
            .unwrap();
        me["id"].as_str().unwrap().to_owned()
    }

    pub async fn refresh(&self, refresh_token: &str) -> reqwest::Response {
        self.app
            .client
            .post(self.url("/auth/refresh"))
            .basic_auth(CLIENT_ID, Some(CLIENT_SECRET))
            .form(&[
                ("grant_type", "refresh_token"),
                ("refresh_token", refresh_token),
            ])
            .send()
            .await
            .unwrap()
    }

    pub fn count(&self, table: &str) -> i64 {
        self.app.db.count(table)
    }
}

pub async fn land(r: reqwest::Response) -> Landing {
    let status = r.status();
    let location = r
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| r.url().join(v).ok());
    let body = r.text().await.unwrap_or_default();
    Landing {
        status,
        location,
        body,
    }
}

pub fn enc(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

pub fn query_param(url: &url::Url, name: &str) -> Option<String> {
    url.query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

pub async fn error_json(r: reqwest::Response) -> (u16, String) {
    let status = r.status().as_u16();
    let body: Value = r.json().await.unwrap();
    (
        status,
        body["error"].as_str().unwrap_or_default().to_owned(),
    )
}

/// The value of one series at `{address}/metrics`.
pub async fn metric_of(address: &str, series: &str) -> Option<f64> {
    let text = reqwest::get(format!("{address}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|v| v.trim().parse().ok())
}
