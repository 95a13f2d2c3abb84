//! The demo app (client `demo`) of a development instance: a page with sign-in buttons, and
//! the redirect page an app's backend would have. That page redeems the exchange code over
//! HTTP at Braid's own `POST /auth/exchange-code`, then calls `GET /auth/me`, exactly as a
//! real app does, and shows every step.

use super::{DEMO_CLIENT, DevState, PROVIDERS};
use crate::state::AppState;
use crate::tokens::opaque::{random_token, same_secret};
use actix_web::cookie::{Cookie, SameSite};
use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, web};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use braid_core::Secret;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::time::Duration;

/// The demo's own `state`, checked on its redirect page (its CSRF defence).
const STATE_COOKIE: &str = "braid_dev_demo_state";
/// The user of the previous sign-in, so the page can say whether this one is the same.
const USER_COOKIE: &str = "braid_dev_demo_user";
const COOKIE_PATH: &str = "/dev/app";

pub struct Demo {
    public_url: String,
    secret: Secret,
    http: reqwest::Client,
}

impl Demo {
    pub fn new(public_url: &str, secret: &Secret) -> Result<Self, reqwest::Error> {
        Ok(Self {
            public_url: public_url.to_owned(),
            secret: secret.clone(),
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .timeout(Duration::from_secs(10))
                .build()?,
        })
    }

    fn redirect_uri(&self) -> String {
        format!("{}/dev/app/callback", self.public_url)
    }
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/dev/app", web::get().to(home))
        .route("/dev/app/start/{idp}", web::get().to(start))
        .route("/dev/app/callback", web::get().to(callback));
}

#[derive(Serialize)]
struct ProviderLink {
    id: &'static str,
    name: &'static str,
}

fn provider_links() -> Vec<ProviderLink> {
    PROVIDERS
        .iter()
        .map(|(id, name)| ProviderLink { id, name })
        .collect()
}

async fn home(state: web::Data<AppState>) -> HttpResponse {
    let mut ctx = tera::Context::new();
    ctx.insert("providers", &provider_links());
    state.pages.render_page(StatusCode::OK, "dev/app.html", ctx)
}

fn cookie(state: &AppState, name: &'static str, value: String) -> Cookie<'static> {
    Cookie::build(name, value)
        .path(COOKIE_PATH)
        .http_only(true)
        .secure(state.cookie_secure)
        .same_site(SameSite::Lax)
        .finish()
}

async fn start(
    idp: web::Path<String>,
    state: web::Data<AppState>,
    dev: web::Data<DevState>,
) -> HttpResponse {
    if !PROVIDERS.iter().any(|(id, _)| *id == idp.as_str()) {
        return crate::problem::not_found().await;
    }
    let Ok(csrf) = random_token() else {
        return HttpResponse::ServiceUnavailable().finish();
    };
    let mut target = match url::Url::parse(&format!(
        "{}/auth/connect/{}",
        dev.demo.public_url,
        idp.as_str()
    )) {
        Ok(u) => u,
        Err(_) => return HttpResponse::InternalServerError().finish(),
    };
    target
        .query_pairs_mut()
        .append_pair("client_id", DEMO_CLIENT)
        .append_pair("redirect_uri", &dev.demo.redirect_uri())
        .append_pair("state", &csrf);
    HttpResponse::SeeOther()
        .cookie(cookie(&state, STATE_COOKIE, csrf))
        .insert_header((header::LOCATION, target.as_str()))
        .finish()
}

#[derive(Debug, Deserialize)]
struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
}

/// What the redirect page shows, step by step.
#[derive(Serialize, Default)]
struct Shown {
    code: String,
    exchange_status: u16,
    token_response: String,
    access_header: String,
    access_claims: String,
    me_status: u16,
    me: String,
    user_id: Option<String>,
    identities: Vec<Value>,
    /// Whether the previous sign-in in this browser was the same Braid user.
    same_user_as_before: Option<bool>,
}

fn pretty(v: &Value) -> String {
    serde_json::to_string_pretty(v).unwrap_or_default()
}

/// A JWT part decoded for display only: the demo does not verify (Braid just issued it over
/// loopback); an app's backend verifies with `/.well-known/jwks.json`.
fn decode_part(part: Option<&str>) -> String {
    part.and_then(|p| URL_SAFE_NO_PAD.decode(p).ok())
        .and_then(|raw| serde_json::from_slice::<Value>(&raw).ok())
        .map(|v| pretty(&v))
        .unwrap_or_else(|| "(not a JWT)".into())
}

async fn callback(
    req: HttpRequest,
    query: web::Query<CallbackQuery>,
    state: web::Data<AppState>,
    dev: web::Data<DevState>,
) -> HttpResponse {
    let back = Some("/dev/app");
    if let Some(error) = &query.error {
        let message = format!(
            "Braid sent the app an error: {error}{}",
            query
                .error_description
                .as_deref()
                .map(|d| format!(" ({d})"))
                .unwrap_or_default()
        );
        return state.pages.error(
            &req,
            StatusCode::BAD_REQUEST,
            "Sign-in failed",
            &message,
            back,
        );
    }
    let expected = req.cookie(STATE_COOKIE).map(|c| c.value().to_owned());
    let state_ok =
        matches!((&query.state, &expected), (Some(got), Some(want)) if same_secret(got, want));
    let (Some(code), true) = (&query.code, state_ok) else {
        return state.pages.error(
            &req,
            StatusCode::BAD_REQUEST,
            "This redirect was not started here",
            "The demo app's state does not match (its sign-in was started in another browser, or this page was reloaded). Start again.",
            back,
        );
    };
    let mut shown = Shown {
        code: code.clone(),
        ..Shown::default()
    };
    let demo = &dev.demo;
    let exchanged = demo
        .http
        .post(format!("{}/auth/exchange-code", demo.public_url))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", &demo.redirect_uri()),
            ("client_id", DEMO_CLIENT),
            ("client_secret", demo.secret.expose()),
        ])
        .send()
        .await;
    let tokens: Value = match exchanged {
        Ok(r) => {
            shown.exchange_status = r.status().as_u16();
            r.json().await.unwrap_or(Value::Null)
        }
        Err(e) => {
            tracing::warn!(error = %e, "demo app: exchange-code request failed");
            Value::Null
        }
    };
    shown.token_response = pretty(&tokens);
    let mut previous_user = req.cookie(USER_COOKIE).map(|c| c.value().to_owned());
    let mut user_cookie = None;
    if let Some(access) = tokens.get("access_token").and_then(Value::as_str) {
        let mut parts = access.split('.');
        shown.access_header = decode_part(parts.next());
        shown.access_claims = decode_part(parts.next());
        let me = demo
            .http
            .get(format!("{}/auth/me", demo.public_url))
            .bearer_auth(access)
            .send()
            .await;
        let profile: Value = match me {
            Ok(r) => {
                shown.me_status = r.status().as_u16();
                r.json().await.unwrap_or(Value::Null)
            }
            Err(e) => {
                tracing::warn!(error = %e, "demo app: /auth/me request failed");
                Value::Null
            }
        };
        shown.me = pretty(&profile);
        shown.user_id = profile.get("id").and_then(Value::as_str).map(String::from);
        shown.identities = profile
            .get("identities")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        if let Some(id) = &shown.user_id {
            shown.same_user_as_before = previous_user.take().map(|p| p == *id);
            user_cookie = Some(cookie(&state, USER_COOKIE, id.clone()));
        }
    }
    let mut ctx = tera::Context::new();
    ctx.insert("shown", &shown);
    ctx.insert("providers", &provider_links());
    let mut res = state
        .pages
        .render_page(StatusCode::OK, "dev/app_callback.html", ctx);
    let mut used = cookie(&state, STATE_COOKIE, String::new());
    used.make_removal();
    for c in std::iter::once(used).chain(user_cookie) {
        if let Err(e) = res.add_cookie(&c) {
            tracing::warn!(error = %e, "demo app: cookie not set");
        }
    }
    res
}
