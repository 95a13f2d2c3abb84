//! The development providers: tiny real OpenID providers under `/dev/idp/<id>/` (discovery,
//! an authorize page where the person types an email and ticks "verified", a token endpoint
//! with client authentication and PKCE S256, keys, userinfo). The signing key is generated at
//! start; codes and access tokens live in this process's memory only, so they work with one
//! process and are lost on restart (a development instance, nothing more).

use super::{DevState, PROVIDERS};
use crate::keys::{self, KeyError};
use crate::settings::SigningAlg;
use crate::tokens::opaque::{pkce_s256, random_token, same_secret};
use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, web};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use braid_core::Secret;
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long a code or an access token of a development provider is good for.
const CODE_TTL: Duration = Duration::from_secs(60);
const TOKEN_TTL: Duration = Duration::from_secs(300);
/// Codes and tokens kept at most (a bound on memory, however many sign-ins are tried).
const MAX_ENTRIES: usize = 10_000;

pub struct Idps {
    public_url: String,
    client_id: String,
    client_secret: Secret,
    kid: String,
    jwks: String,
    key: jsonwebtoken::EncodingKey,
    codes: Mutex<HashMap<String, Issued>>,
    tokens: Mutex<HashMap<String, Issued>>,
}

/// A sign-in the person confirmed on the authorize page.
#[derive(Clone)]
struct Issued {
    idp: String,
    redirect_uri: String,
    challenge: Option<String>,
    nonce: Option<String>,
    email: String,
    verified: bool,
    expires: Instant,
}

impl Issued {
    /// Each email, verified or not, is its own account at a development provider, so an
    /// unverified sign-in never reuses the identity of a verified one.
    fn sub(&self) -> String {
        if self.verified {
            self.email.clone()
        } else {
            format!("unverified:{}", self.email)
        }
    }

    fn claims(&self) -> serde_json::Map<String, Value> {
        let mut c = serde_json::Map::new();
        c.insert("sub".into(), self.sub().into());
        c.insert("email".into(), self.email.clone().into());
        c.insert("email_verified".into(), self.verified.into());
        c
    }
}

/// Keeps `map` under its bound: expired entries go first, then everything if still full.
fn insert_bounded(map: &Mutex<HashMap<String, Issued>>, key: String, value: Issued) {
    let mut m = map
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if m.len() >= MAX_ENTRIES {
        let now = Instant::now();
        m.retain(|_, v| v.expires > now);
        if m.len() >= MAX_ENTRIES {
            m.clear();
        }
    }
    m.insert(key, value);
}

impl Idps {
    pub fn new(public_url: &str, client_id: &str, secret: &Secret) -> Result<Self, KeyError> {
        let key = keys::generate(SigningAlg::ES256)?;
        let jwks = format!("{{\"keys\":[{}]}}", key.public_jwk);
        Ok(Self {
            public_url: public_url.to_owned(),
            client_id: client_id.to_owned(),
            client_secret: secret.clone(),
            kid: key.kid,
            jwks,
            key: jsonwebtoken::EncodingKey::from_ec_der(&key.private_key),
            codes: Mutex::new(HashMap::new()),
            tokens: Mutex::new(HashMap::new()),
        })
    }

    fn issuer(&self, idp: &str) -> String {
        format!("{}/dev/idp/{idp}", self.public_url)
    }

    /// The only redirect URI Braid registers at a development provider.
    fn braid_callback(&self, idp: &str) -> String {
        format!("{}/auth/connect/{idp}/callback", self.public_url)
    }
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route(
        "/dev/idp/{idp}/.well-known/openid-configuration",
        web::get().to(discovery),
    )
    .route("/dev/idp/{idp}/authorize", web::get().to(authorize_page))
    .route("/dev/idp/{idp}/authorize", web::post().to(authorize_submit))
    .route("/dev/idp/{idp}/token", web::post().to(token))
    .route("/dev/idp/{idp}/jwks", web::get().to(jwks))
    .route("/dev/idp/{idp}/userinfo", web::get().to(userinfo));
}

/// The provider's display name, when `idp` is one of ours.
fn known(idp: &str) -> Option<&'static str> {
    PROVIDERS
        .iter()
        .find(|(id, _)| *id == idp)
        .map(|(_, name)| *name)
}

fn json(status: StatusCode, body: &Value) -> HttpResponse {
    HttpResponse::build(status)
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(body)
}

fn oauth_error(status: StatusCode, code: &str, description: &str) -> HttpResponse {
    json(
        status,
        &json!({"error": code, "error_description": description}),
    )
}

fn not_found() -> HttpResponse {
    oauth_error(
        StatusCode::NOT_FOUND,
        "not_found",
        "no such development provider",
    )
}

async fn discovery(idp: web::Path<String>, dev: web::Data<DevState>) -> HttpResponse {
    if known(&idp).is_none() {
        return not_found();
    }
    let iss = dev.idp.issuer(&idp);
    json(
        StatusCode::OK,
        &json!({
            "issuer": iss,
            "authorization_endpoint": format!("{iss}/authorize"),
            "token_endpoint": format!("{iss}/token"),
            "userinfo_endpoint": format!("{iss}/userinfo"),
            "jwks_uri": format!("{iss}/jwks"),
            "response_types_supported": ["code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["ES256"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
            "code_challenge_methods_supported": ["S256"],
            "scopes_supported": ["openid", "email", "profile"],
            "claims_supported": ["sub", "email", "email_verified"],
            "authorization_response_iss_parameter_supported": true,
        }),
    )
}

async fn jwks(idp: web::Path<String>, dev: web::Data<DevState>) -> HttpResponse {
    if known(&idp).is_none() {
        return not_found();
    }
    HttpResponse::Ok()
        .content_type("application/json")
        .body(dev.idp.jwks.clone())
}

/// The authorization request, as Braid sends it (query) and as the page's form returns it.
#[derive(Debug, Deserialize, serde::Serialize)]
struct AuthorizeRequest {
    client_id: String,
    redirect_uri: String,
    response_type: String,
    #[serde(default)]
    state: Option<String>,
    #[serde(default)]
    nonce: Option<String>,
    #[serde(default)]
    code_challenge: Option<String>,
    #[serde(default)]
    code_challenge_method: Option<String>,
}

impl AuthorizeRequest {
    /// Why this request cannot be served, in words for the page.
    fn problem(&self, dev: &Idps, idp: &str) -> Option<&'static str> {
        if self.client_id != dev.client_id {
            return Some("unknown client_id");
        }
        if self.redirect_uri != dev.braid_callback(idp) {
            return Some("redirect_uri is not Braid's callback for this provider");
        }
        if self.response_type != "code" {
            return Some("only response_type=code is supported");
        }
        if self.code_challenge.is_some() && self.code_challenge_method.as_deref() != Some("S256") {
            return Some("only PKCE S256 is supported");
        }
        None
    }
}

fn bad_request(state: &crate::state::AppState, req: &HttpRequest, why: &str) -> HttpResponse {
    state.pages.error(
        req,
        StatusCode::BAD_REQUEST,
        "Development provider: bad request",
        why,
        Some("/dev/app"),
    )
}

async fn authorize_page(
    req: HttpRequest,
    idp: web::Path<String>,
    query: Result<web::Query<AuthorizeRequest>, actix_web::Error>,
    dev: web::Data<DevState>,
    state: web::Data<crate::state::AppState>,
) -> HttpResponse {
    let Some(name) = known(&idp) else {
        return not_found();
    };
    let Ok(query) = query else {
        return bad_request(&state, &req, "The authorization request is incomplete.");
    };
    if let Some(why) = query.problem(&dev.idp, &idp) {
        return bad_request(&state, &req, why);
    }
    let mut ctx = tera::Context::new();
    ctx.insert("provider_name", name);
    ctx.insert("action", &format!("/dev/idp/{idp}/authorize"));
    ctx.insert("request", &*query);
    state
        .pages
        .render_page(StatusCode::OK, "dev/idp_authorize.html", ctx)
}

#[derive(Debug, Deserialize)]
struct AuthorizeForm {
    #[serde(flatten)]
    request: AuthorizeRequest,
    email: String,
    /// An HTML checkbox: present ("on") when ticked, absent otherwise.
    #[serde(default)]
    verified: Option<String>,
}

async fn authorize_submit(
    req: HttpRequest,
    idp: web::Path<String>,
    form: Result<web::Form<AuthorizeForm>, actix_web::Error>,
    dev: web::Data<DevState>,
    state: web::Data<crate::state::AppState>,
) -> HttpResponse {
    if known(&idp).is_none() {
        return not_found();
    }
    let Ok(web::Form(form)) = form else {
        return bad_request(&state, &req, "The form is incomplete.");
    };
    if let Some(why) = form.request.problem(&dev.idp, &idp) {
        return bad_request(&state, &req, why);
    }
    let email = form.email.trim().to_ascii_lowercase();
    if email.len() > 254 || !email.contains('@') || email.chars().any(char::is_whitespace) {
        return bad_request(
            &state,
            &req,
            "Type an email address, like alice@example.com.",
        );
    }
    let Ok(code) = random_token() else {
        return HttpResponse::ServiceUnavailable().finish();
    };
    let request = form.request;
    let Ok(mut location) = url::Url::parse(&request.redirect_uri) else {
        return bad_request(&state, &req, "redirect_uri is not a URL");
    };
    location
        .query_pairs_mut()
        .append_pair("code", &code)
        .extend_pairs(request.state.as_deref().map(|s| ("state", s)))
        .append_pair("iss", &dev.idp.issuer(&idp));
    insert_bounded(
        &dev.idp.codes,
        code,
        Issued {
            idp: idp.into_inner(),
            redirect_uri: request.redirect_uri,
            challenge: request.code_challenge,
            nonce: request.nonce,
            email,
            verified: form.verified.is_some(),
            expires: Instant::now() + CODE_TTL,
        },
    );
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, location.as_str()))
        .finish()
}

#[derive(Debug, Deserialize)]
struct TokenForm {
    grant_type: String,
    code: String,
    redirect_uri: String,
    #[serde(default)]
    code_verifier: Option<String>,
    #[serde(default)]
    client_id: Option<String>,
    #[serde(default)]
    client_secret: Option<String>,
}

/// Client credentials from HTTP Basic (RFC 6749 §2.3.1: each part form-urlencoded) or the
/// body.
fn client_credentials(req: &HttpRequest, form: &TokenForm) -> Option<(String, String)> {
    let basic = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "));
    if let Some(b64) = basic {
        let raw = String::from_utf8(STANDARD.decode(b64).ok()?).ok()?;
        let (id, secret) = raw.split_once(':')?;
        let decode = |s: &str| {
            form_urlencoded::parse(format!("x={s}").as_bytes())
                .next()
                .map(|(_, v)| v.into_owned())
        };
        return Some((decode(id)?, decode(secret)?));
    }
    Some((form.client_id.clone()?, form.client_secret.clone()?))
}

async fn token(
    req: HttpRequest,
    idp: web::Path<String>,
    form: Result<web::Form<TokenForm>, actix_web::Error>,
    dev: web::Data<DevState>,
) -> HttpResponse {
    if known(&idp).is_none() {
        return not_found();
    }
    let Ok(web::Form(form)) = form else {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "malformed token request",
        );
    };
    let idps = &dev.idp;
    let authenticated = client_credentials(&req, &form).is_some_and(|(id, secret)| {
        id == idps.client_id && same_secret(&secret, idps.client_secret.expose())
    });
    if !authenticated {
        return oauth_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "client authentication failed",
        );
    }
    if form.grant_type != "authorization_code" {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            "authorization_code only",
        );
    }
    let issued = idps
        .codes
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .remove(&form.code);
    let Some(issued) = issued.filter(|i| {
        i.idp == *idp && i.redirect_uri == form.redirect_uri && i.expires > Instant::now()
    }) else {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            "unknown, used or expired code",
        );
    };
    let pkce_ok = match (&issued.challenge, &form.code_verifier) {
        (Some(challenge), Some(verifier)) => same_secret(&pkce_s256(verifier), challenge),
        (None, None) => true,
        _ => false,
    };
    if !pkce_ok {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            "PKCE verification failed",
        );
    }
    let (Ok(access_token), Ok(id_token)) = (random_token(), id_token(idps, &issued)) else {
        return oauth_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "server_error",
            "signing failed",
        );
    };
    insert_bounded(
        &idps.tokens,
        access_token.clone(),
        Issued {
            expires: Instant::now() + TOKEN_TTL,
            ..issued
        },
    );
    json(
        StatusCode::OK,
        &json!({
            "access_token": access_token,
            "token_type": "Bearer",
            "expires_in": TOKEN_TTL.as_secs(),
            "scope": "openid email profile",
            "id_token": id_token,
        }),
    )
}

fn id_token(idps: &Idps, issued: &Issued) -> Result<String, jsonwebtoken::errors::Error> {
    let now = braid_core::Timestamp::now().as_secs();
    let mut claims = issued.claims();
    claims.insert("iss".into(), idps.issuer(&issued.idp).into());
    claims.insert("aud".into(), idps.client_id.clone().into());
    claims.insert("iat".into(), now.into());
    claims.insert("exp".into(), (now + 300).into());
    if let Some(nonce) = &issued.nonce {
        claims.insert("nonce".into(), nonce.clone().into());
    }
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256);
    header.kid = Some(idps.kid.clone());
    jsonwebtoken::encode(&header, &Value::Object(claims), &idps.key)
}

async fn userinfo(
    req: HttpRequest,
    idp: web::Path<String>,
    dev: web::Data<DevState>,
) -> HttpResponse {
    if known(&idp).is_none() {
        return not_found();
    }
    let bearer = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    let grant = bearer.and_then(|t| {
        dev.idp
            .tokens
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(t)
            .cloned()
    });
    match grant.filter(|g| g.idp == *idp && g.expires > Instant::now()) {
        Some(g) => json(StatusCode::OK, &Value::Object(g.claims())),
        None => HttpResponse::Unauthorized()
            .insert_header((header::WWW_AUTHENTICATE, "Bearer error=\"invalid_token\""))
            .finish(),
    }
}
