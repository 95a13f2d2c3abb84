//! Handlers of local accounts (`[local_accounts] enabled = true`): the pages under
//! `/auth/local/` and the JSON endpoints for apps that draw their own forms. Both call the same
//! flows; a page ends in a 303 to the app with the exchange code, the JSON answer carries it.
//!
//! The pages carry the app's sign-in parameters (`client_id`, `redirect_uri`, `state`, PKCE)
//! as hidden fields, checked again on every submission exactly as `GET /auth/connect/…` checks
//! them. Their forms carry a CSRF token bound to a random key in an HttpOnly cookie.

use crate::app_errors::{AppReturn, ErrorCode};
use crate::flows::connect::{AppTarget, app_target};
use crate::flows::local_reset::{self, ResetError};
use crate::flows::local_sign_in::{self, SignInError, SignedIn};
use crate::flows::local_sign_up::{self, SignUpError};
use crate::flows::local_verify_email::{self, VerifyEmailError};
use crate::params::Params;
use crate::problem::Problem;
use crate::routes::is_form;
use crate::state::AppState;
use crate::tokens::opaque;
use actix_web::cookie::{Cookie, SameSite};
use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Serialize;
use std::net::IpAddr;

pub const SIGN_IN: &str = "/auth/local/sign-in";
pub const SIGN_UP: &str = "/auth/local/sign-up";
pub const VERIFY_EMAIL: &str = "/auth/local/verify-email";
pub const RESET: &str = "/auth/local/reset";
pub const RESET_CONFIRM: &str = "/auth/local/reset/confirm";

/// Values a person typed, which may be any Unicode (see [`Params::parse_with_text`]).
const TEXT: [&str; 2] = ["email", "password"];

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource(SIGN_IN)
            .route(web::get().to(sign_in_page))
            .route(web::post().to(sign_in_post)),
    )
    .service(
        web::resource(SIGN_UP)
            .route(web::get().to(sign_up_page))
            .route(web::post().to(sign_up_post)),
    )
    .service(
        web::resource(VERIFY_EMAIL)
            .route(web::get().to(verify_page))
            .route(web::post().to(verify_post)),
    )
    .service(
        web::resource(RESET)
            .route(web::get().to(reset_page))
            .route(web::post().to(reset_post)),
    )
    .service(web::resource(RESET_CONFIRM).route(web::post().to(reset_confirm_post)))
    .route("/auth/register", web::post().to(register_json))
    .route("/auth/login", web::post().to(login_json))
    .route("/auth/verify-email", web::post().to(verify_json))
    .route("/auth/verify-email/resend", web::post().to(resend_json))
    .route("/auth/password-reset", web::post().to(reset_json))
    .route(
        "/auth/password-reset/confirm",
        web::post().to(reset_confirm_json),
    );
}

/// The client's address, behind `server.trusted_proxies` as for every audit row and limit.
fn peer(req: &HttpRequest) -> Option<IpAddr> {
    match req.app_data::<web::Data<AppState>>() {
        Some(state) => state.client_addrs.ip(req),
        None => req.peer_addr().map(|a| a.ip()),
    }
}

// ---- pages ----

/// What every local page shows besides its own words.
#[derive(Debug, Clone, Serialize)]
pub struct LocalView {
    pub csrf: String,
    /// The app's sign-in parameters, as hidden fields.
    pub target: Vec<(&'static str, String)>,
    /// The same, as a query string for the links between the pages (`?client_id=…`).
    pub query: String,
    /// The address typed so far.
    pub email: String,
    pub password_min_length: usize,
    pub minutes_valid: u64,
    pub sign_in: &'static str,
    pub sign_up: &'static str,
    pub verify_email: &'static str,
    pub reset: &'static str,
    pub reset_confirm: &'static str,
    /// The app's redirect URI: where the page's forms may end up (its CSP allows it).
    #[serde(skip)]
    pub app_target: String,
}

fn target_fields(t: &AppTarget) -> Vec<(&'static str, String)> {
    let mut out = vec![
        ("client_id", t.client_id.clone()),
        ("redirect_uri", t.redirect_uri.clone()),
    ];
    if let Some(s) = &t.state {
        out.push(("state", s.clone()));
    }
    if let Some(c) = &t.code_challenge {
        out.push(("code_challenge", c.clone()));
        out.push(("code_challenge_method", "S256".into()));
    }
    out
}

fn form_cookie(state: &AppState) -> &'static str {
    if state.cookie_secure {
        "__Host-braid_local"
    } else {
        "braid_local"
    }
}

/// The browser's form key: from its cookie, or a new one (with the cookie to set).
fn form_key(req: &HttpRequest, state: &AppState) -> Option<(String, Option<Cookie<'static>>)> {
    if let Some(c) = req.cookie(form_cookie(state))
        && c.value().len() >= 32
    {
        return Some((c.value().to_owned(), None));
    }
    let key = opaque::random_token().ok()?;
    let cookie = Cookie::build(form_cookie(state), key.clone())
        .path("/")
        .http_only(true)
        .secure(state.cookie_secure)
        .same_site(SameSite::Lax)
        .finish();
    Some((key, Some(cookie)))
}

/// One of the local pages, with what the person typed and a notice or a problem.
struct Page<'a> {
    template: &'static str,
    status: StatusCode,
    email: &'a str,
    notice: Option<String>,
    problem: Option<String>,
}

impl<'a> Page<'a> {
    fn new(template: &'static str, email: &'a str) -> Self {
        Self {
            template,
            status: StatusCode::OK,
            email,
            notice: None,
            problem: None,
        }
    }

    fn notice(mut self, notice: impl Into<String>) -> Self {
        self.notice = Some(notice.into());
        self
    }

    fn problem(mut self, status: StatusCode, problem: impl Into<String>) -> Self {
        self.status = status;
        self.problem = Some(problem.into());
        self
    }

    fn render(self, req: &HttpRequest, state: &AppState, target: &AppTarget) -> HttpResponse {
        let Some((key, cookie)) = form_key(req, state) else {
            return unavailable(req, state);
        };
        let fields = target_fields(target);
        let query = {
            let mut q = url::form_urlencoded::Serializer::new(String::new());
            for (k, v) in &fields {
                q.append_pair(k, v);
            }
            format!("?{}", q.finish())
        };
        let s = &state.settings.local_accounts;
        let view = LocalView {
            csrf: state.csrf.token_for(&format!("local:{key}")),
            target: fields,
            query,
            email: self.email.to_owned(),
            password_min_length: s.password_min_length,
            minutes_valid: s.code_ttl.div_ceil(60),
            sign_in: SIGN_IN,
            sign_up: SIGN_UP,
            verify_email: VERIFY_EMAIL,
            reset: RESET,
            reset_confirm: RESET_CONFIRM,
            app_target: target.redirect_uri.clone(),
        };
        let mut res = state.pages.local(
            self.status,
            self.template,
            &view,
            self.notice.as_deref(),
            self.problem.as_deref(),
        );
        if let Some(c) = cookie {
            let _ = res.add_cookie(&c);
        }
        res
    }
}

fn unavailable(req: &HttpRequest, state: &AppState) -> HttpResponse {
    state.pages.error(
        req,
        StatusCode::SERVICE_UNAVAILABLE,
        "Sign-in is unavailable",
        "Sign-in is unavailable right now. Please try again in a moment.",
        None,
    )
}

/// The app's parameters of a page link; a bad link gets Braid's page, as at `/auth/connect/…`.
fn page_target(
    req: &HttpRequest,
    state: &AppState,
    params: &Params,
) -> Result<AppTarget, Box<HttpResponse>> {
    app_target(state, params).map_err(|e| {
        Box::new(state.pages.error(
            req,
            StatusCode::BAD_REQUEST,
            "Sign-in could not start",
            &format!("This sign-in link is not valid: {e}."),
            None,
        ))
    })
}

async fn show(
    req: HttpRequest,
    state: web::Data<AppState>,
    template: &'static str,
) -> HttpResponse {
    let params = match Params::parse(req.query_string().as_bytes()) {
        Ok(p) => p,
        Err(e) => {
            return state.pages.error(
                &req,
                StatusCode::BAD_REQUEST,
                "Sign-in could not start",
                &format!("This sign-in link is not valid: {e}."),
                None,
            );
        }
    };
    match page_target(&req, &state, &params) {
        Ok(target) => Page::new(template, "").render(&req, &state, &target),
        Err(res) => *res,
    }
}

async fn sign_in_page(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    show(req, state, "local_sign_in.html").await
}

async fn sign_up_page(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    show(req, state, "local_sign_up.html").await
}

async fn verify_page(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    show(req, state, "local_verify_email.html").await
}

async fn reset_page(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    show(req, state, "local_reset.html").await
}

/// A submitted page form: its fields, the app's parameters and the CSRF check.
fn submitted(
    req: &HttpRequest,
    state: &AppState,
    body: &[u8],
) -> Result<(Params, AppTarget), Box<HttpResponse>> {
    let bad = |message: String| {
        Box::new(state.pages.error(
            req,
            StatusCode::BAD_REQUEST,
            "This form cannot be used",
            &message,
            None,
        ))
    };
    if !is_form(req) {
        return Err(bad("The form was not sent as a form.".into()));
    }
    let form = Params::parse_with_text(body, &TEXT).map_err(|e| bad(format!("{e}.")))?;
    let target = page_target(req, state, &form)?;
    let key = req.cookie(form_cookie(state));
    let csrf_ok = key.is_some_and(|k| {
        state
            .csrf
            .check_for(&format!("local:{}", k.value()), form.get("csrf"))
    });
    if !csrf_ok {
        return Err(bad(
            "The form expired or did not come from this site. Please go back, reload the page and try again."
                .into(),
        ));
    }
    Ok((form, target))
}

fn to_app(done: SignedIn) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, done.redirect.0))
        .finish()
}

fn wait_words(secs: u64) -> String {
    format!(
        "Too many attempts. Please wait {} minute{} and try again.",
        secs.div_ceil(60),
        if secs.div_ceil(60) == 1 { "" } else { "s" }
    )
}

fn with_retry_after(mut res: HttpResponse, secs: u64) -> HttpResponse {
    if let Ok(v) = header::HeaderValue::from_str(&secs.to_string()) {
        res.headers_mut().insert(header::RETRY_AFTER, v);
    }
    res
}

const CODE_SENT: &str = "We sent a message to this address. Enter the code from it below, with your password, to confirm the address.";

async fn sign_in_post(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: web::Bytes,
) -> HttpResponse {
    let (form, target) = match submitted(&req, &state, &body) {
        Ok(ok) => ok,
        Err(res) => return *res,
    };
    let email = form.get("email").unwrap_or_default();
    let password = form.get("password").unwrap_or_default().to_owned();
    let page = Page::new("local_sign_in.html", email);
    match local_sign_in::sign_in(&state, &target, email, password, peer(&req)).await {
        Ok(done) => to_app(done),
        Err(SignInError::WrongCredentials) => page
            .problem(StatusCode::BAD_REQUEST, "The email address or the password is not right.")
            .render(&req, &state, &target),
        Err(SignInError::EmailNotVerified) => Page::new("local_verify_email.html", email)
            .notice("Please confirm your email address first: enter the code we sent to it, with your password. No code, or it expired? Ask for a new one below.")
            .render(&req, &state, &target),
        Err(SignInError::Limited { retry_after_secs }) => with_retry_after(
            page.problem(StatusCode::TOO_MANY_REQUESTS, wait_words(retry_after_secs))
                .render(&req, &state, &target),
            retry_after_secs,
        ),
        Err(SignInError::UserDisabled) => {
            let app = AppReturn::checked(
                &state.clients,
                &target.client_id,
                &target.redirect_uri,
                target.state.as_deref(),
            );
            crate::routes::auth::failure(
                &req,
                &state,
                app.as_ref(),
                ErrorCode::UserDisabled,
                (StatusCode::FORBIDDEN, "Sign-in failed", "This account is disabled."),
            )
        }
        Err(e @ (SignInError::Storage(_) | SignInError::Random(_))) => {
            tracing::error!(error = %e, "local sign-in failed");
            unavailable(&req, &state)
        }
    }
}

async fn sign_up_post(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: web::Bytes,
) -> HttpResponse {
    let (form, target) = match submitted(&req, &state, &body) {
        Ok(ok) => ok,
        Err(res) => return *res,
    };
    let email = form.get("email").unwrap_or_default();
    let password = form.get("password").unwrap_or_default().to_owned();
    let page = Page::new("local_sign_up.html", email);
    let client = Some(target.client_id.as_str());
    match local_sign_up::sign_up(&state, email, password, client, peer(&req)).await {
        Ok(done) => Page::new("local_verify_email.html", done.email.as_str())
            .notice(CODE_SENT)
            .render(&req, &state, &target),
        Err(e @ (SignUpError::BadEmail | SignUpError::Password(_))) => page
            .problem(StatusCode::BAD_REQUEST, sentence(&e))
            .render(&req, &state, &target),
        Err(SignUpError::Limited { retry_after_secs }) => with_retry_after(
            page.problem(StatusCode::TOO_MANY_REQUESTS, wait_words(retry_after_secs))
                .render(&req, &state, &target),
            retry_after_secs,
        ),
        Err(e @ (SignUpError::Hash(_) | SignUpError::Storage(_))) => {
            tracing::error!(error = %e, "local sign-up failed");
            unavailable(&req, &state)
        }
    }
}

/// An error's words as a sentence for a page.
fn sentence(e: &impl std::fmt::Display) -> String {
    let s = e.to_string();
    let mut chars = s.chars();
    match chars.next() {
        Some(first) => format!("{}{}.", first.to_uppercase(), chars.as_str()),
        None => s,
    }
}

async fn verify_post(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: web::Bytes,
) -> HttpResponse {
    let (form, target) = match submitted(&req, &state, &body) {
        Ok(ok) => ok,
        Err(res) => return *res,
    };
    let email = form.get("email").unwrap_or_default();
    let page = Page::new("local_verify_email.html", email);
    if form.get("action") == Some("resend") {
        return match local_sign_up::resend(&state, email, peer(&req)).await {
            Ok(_) => page
                .notice("If this address has an account waiting to be confirmed, a new code is on its way. Earlier codes no longer work.")
                .render(&req, &state, &target),
            Err(SignUpError::Limited { retry_after_secs }) => with_retry_after(
                page.problem(StatusCode::TOO_MANY_REQUESTS, wait_words(retry_after_secs))
                    .render(&req, &state, &target),
                retry_after_secs,
            ),
            Err(e @ (SignUpError::BadEmail | SignUpError::Password(_))) => page
                .problem(StatusCode::BAD_REQUEST, sentence(&e))
                .render(&req, &state, &target),
            Err(e @ (SignUpError::Hash(_) | SignUpError::Storage(_))) => {
                tracing::error!(error = %e, "sending a new confirmation code failed");
                unavailable(&req, &state)
            }
        };
    }
    let password = form.get("password").unwrap_or_default().to_owned();
    let code = form.get("code").unwrap_or_default();
    match local_verify_email::verify(&state, &target, email, password, code, peer(&req)).await {
        Ok(done) => to_app(done),
        Err(VerifyEmailError::WrongCode { tries_left }) => page
            .problem(
                StatusCode::BAD_REQUEST,
                format!(
                    "The code is not right. {tries_left} tr{} left.",
                    if tries_left == 1 { "y" } else { "ies" }
                ),
            )
            .render(&req, &state, &target),
        Err(VerifyEmailError::AlreadyVerified) => Page::new("local_sign_in.html", email)
            .notice("This address is already confirmed. Sign in with your password.")
            .render(&req, &state, &target),
        Err(VerifyEmailError::Limited { retry_after_secs }) => with_retry_after(
            page.problem(StatusCode::TOO_MANY_REQUESTS, wait_words(retry_after_secs))
                .render(&req, &state, &target),
            retry_after_secs,
        ),
        Err(e @ (VerifyEmailError::WrongCredentials | VerifyEmailError::NoCode)) => page
            .problem(StatusCode::BAD_REQUEST, sentence(&e))
            .render(&req, &state, &target),
        Err(e @ VerifyEmailError::AddressTaken) => page
            .problem(StatusCode::CONFLICT, sentence(&e))
            .render(&req, &state, &target),
        Err(e @ (VerifyEmailError::Storage(_) | VerifyEmailError::Random(_))) => {
            tracing::error!(error = %e, "confirming an address failed");
            unavailable(&req, &state)
        }
    }
}

async fn reset_post(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: web::Bytes,
) -> HttpResponse {
    let (form, target) = match submitted(&req, &state, &body) {
        Ok(ok) => ok,
        Err(res) => return *res,
    };
    let email = form.get("email").unwrap_or_default();
    match local_reset::request(&state, email, peer(&req)).await {
        Ok(email) => Page::new("local_reset_confirm.html", email.as_str())
            .notice("If this address has an account, we sent a code to it. Enter the code and your new password.")
            .render(&req, &state, &target),
        Err(e) => reset_failed(&req, &state, &target, Page::new("local_reset.html", email), e),
    }
}

async fn reset_confirm_post(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: web::Bytes,
) -> HttpResponse {
    let (form, target) = match submitted(&req, &state, &body) {
        Ok(ok) => ok,
        Err(res) => return *res,
    };
    let email = form.get("email").unwrap_or_default();
    let code = form.get("code").unwrap_or_default();
    let password = form.get("password").unwrap_or_default().to_owned();
    match local_reset::confirm(&state, email, code, password, peer(&req)).await {
        Ok(()) => Page::new("local_sign_in.html", email)
            .notice("Your password was changed, and every app signed in with the old one was signed out. Sign in with your new password.")
            .render(&req, &state, &target),
        Err(e) => reset_failed(&req, &state, &target, Page::new("local_reset_confirm.html", email), e),
    }
}

fn reset_failed(
    req: &HttpRequest,
    state: &AppState,
    target: &AppTarget,
    page: Page<'_>,
    e: ResetError,
) -> HttpResponse {
    match e {
        ResetError::Limited { retry_after_secs } => with_retry_after(
            page.problem(StatusCode::TOO_MANY_REQUESTS, wait_words(retry_after_secs))
                .render(req, state, target),
            retry_after_secs,
        ),
        e @ (ResetError::BadEmail | ResetError::Password(_) | ResetError::WrongCode) => page
            .problem(StatusCode::BAD_REQUEST, sentence(&e))
            .render(req, state, target),
        e @ (ResetError::Hash(_) | ResetError::Storage(_)) => {
            tracing::error!(error = %e, "password reset failed");
            unavailable(req, state)
        }
    }
}

// ---- JSON ----

/// The JSON body of a request (`Content-Type: application/json`, an object of strings), or
/// the problem to answer.
fn json_body(req: &HttpRequest, body: &[u8]) -> Result<Params, Box<HttpResponse>> {
    let is_json = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|m| m.trim().eq_ignore_ascii_case("application/json"));
    if !is_json {
        return Err(Box::new(
            Problem::new(StatusCode::UNSUPPORTED_MEDIA_TYPE, "Unsupported Media Type")
                .detail("send a JSON object with Content-Type: application/json")
                .response(),
        ));
    }
    Params::from_json(body, &TEXT).map_err(|e| Box::new(bad_request("invalid_request", &e)))
}

fn bad_request(code: &'static str, e: &impl std::fmt::Display) -> HttpResponse {
    Problem::new(StatusCode::BAD_REQUEST, "Bad Request")
        .detail(e.to_string())
        .code(code)
        .response()
}

fn problem(
    status: StatusCode,
    title: &'static str,
    code: &'static str,
    e: &impl std::fmt::Display,
) -> HttpResponse {
    Problem::new(status, title)
        .detail(e.to_string())
        .code(code)
        .response()
}

fn limited(retry_after_secs: u64) -> HttpResponse {
    with_retry_after(
        Problem::new(StatusCode::TOO_MANY_REQUESTS, "Too Many Requests")
            .detail(format!("too many attempts; wait {retry_after_secs} s"))
            .code("too_many_attempts")
            .response(),
        retry_after_secs,
    )
}

fn json_unavailable(e: &impl std::fmt::Display) -> HttpResponse {
    tracing::error!(error = %e, "local account request failed");
    Problem::new(StatusCode::SERVICE_UNAVAILABLE, "Service Unavailable")
        .code("unavailable")
        .response()
}

fn accepted(status: &'static str) -> HttpResponse {
    HttpResponse::Accepted()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(serde_json::json!({ "status": status }))
}

/// The exchange code for the app, instead of a redirect.
fn signed_in_json(state: &AppState, target: &AppTarget, done: &SignedIn) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(serde_json::json!({
            "code": done.code,
            "state": target.state,
            "iss": state.issuer,
            "redirect_uri": target.redirect_uri,
        }))
}

/// A JSON body that signs in: its fields and the app's parameters among them.
fn json_with_target(
    req: &HttpRequest,
    state: &AppState,
    body: &[u8],
) -> Result<(Params, AppTarget), Box<HttpResponse>> {
    let params = json_body(req, body)?;
    let target =
        app_target(state, &params).map_err(|e| Box::new(bad_request("invalid_request", &e)))?;
    Ok((params, target))
}

async fn register_json(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: web::Bytes,
) -> HttpResponse {
    let params = match json_body(&req, &body) {
        Ok(p) => p,
        Err(res) => return *res,
    };
    let email = params.get("email").unwrap_or_default();
    let password = params.get("password").unwrap_or_default().to_owned();
    let client = params.get("client_id");
    match local_sign_up::sign_up(&state, email, password, client, peer(&req)).await {
        Ok(_) => accepted("verification_sent"),
        Err(e @ SignUpError::BadEmail) => bad_request("invalid_email", &e),
        Err(SignUpError::Password(p)) => bad_request(password_code(p), &p),
        Err(SignUpError::Limited { retry_after_secs }) => limited(retry_after_secs),
        Err(e @ (SignUpError::Hash(_) | SignUpError::Storage(_))) => json_unavailable(&e),
    }
}

fn password_code(p: crate::local_accounts::PasswordRefused) -> &'static str {
    use crate::local_accounts::PasswordRefused as P;
    match p {
        P::TooShort(_) => "password_too_short",
        P::TooLong(_) => "password_too_long",
        P::Common => "password_too_common",
    }
}

async fn login_json(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: web::Bytes,
) -> HttpResponse {
    let (params, target) = match json_with_target(&req, &state, &body) {
        Ok(ok) => ok,
        Err(res) => return *res,
    };
    let email = params.get("email").unwrap_or_default();
    let password = params.get("password").unwrap_or_default().to_owned();
    match local_sign_in::sign_in(&state, &target, email, password, peer(&req)).await {
        Ok(done) => signed_in_json(&state, &target, &done),
        Err(e @ SignInError::WrongCredentials) => problem(
            StatusCode::UNAUTHORIZED,
            "Unauthorized",
            "invalid_credentials",
            &e,
        ),
        Err(e @ SignInError::EmailNotVerified) => {
            problem(StatusCode::FORBIDDEN, "Forbidden", "email_not_verified", &e)
        }
        Err(e @ SignInError::UserDisabled) => {
            problem(StatusCode::FORBIDDEN, "Forbidden", "user_disabled", &e)
        }
        Err(SignInError::Limited { retry_after_secs }) => limited(retry_after_secs),
        Err(e @ (SignInError::Storage(_) | SignInError::Random(_))) => json_unavailable(&e),
    }
}

async fn verify_json(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: web::Bytes,
) -> HttpResponse {
    let (params, target) = match json_with_target(&req, &state, &body) {
        Ok(ok) => ok,
        Err(res) => return *res,
    };
    let email = params.get("email").unwrap_or_default();
    let password = params.get("password").unwrap_or_default().to_owned();
    let code = params.get("code").unwrap_or_default();
    match local_verify_email::verify(&state, &target, email, password, code, peer(&req)).await {
        Ok(done) => signed_in_json(&state, &target, &done),
        Err(e @ VerifyEmailError::WrongCredentials) => problem(
            StatusCode::UNAUTHORIZED,
            "Unauthorized",
            "invalid_credentials",
            &e,
        ),
        Err(e @ VerifyEmailError::WrongCode { .. }) => bad_request("invalid_code", &e),
        Err(e @ VerifyEmailError::NoCode) => bad_request("no_code", &e),
        Err(e @ VerifyEmailError::AlreadyVerified) => {
            problem(StatusCode::CONFLICT, "Conflict", "already_verified", &e)
        }
        Err(e @ VerifyEmailError::AddressTaken) => {
            problem(StatusCode::CONFLICT, "Conflict", "address_taken", &e)
        }
        Err(VerifyEmailError::Limited { retry_after_secs }) => limited(retry_after_secs),
        Err(e @ (VerifyEmailError::Storage(_) | VerifyEmailError::Random(_))) => {
            json_unavailable(&e)
        }
    }
}

async fn resend_json(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: web::Bytes,
) -> HttpResponse {
    let params = match json_body(&req, &body) {
        Ok(p) => p,
        Err(res) => return *res,
    };
    let email = params.get("email").unwrap_or_default();
    match local_sign_up::resend(&state, email, peer(&req)).await {
        Ok(_) => accepted("verification_sent"),
        Err(e @ (SignUpError::BadEmail | SignUpError::Password(_))) => {
            bad_request("invalid_email", &e)
        }
        Err(SignUpError::Limited { retry_after_secs }) => limited(retry_after_secs),
        Err(e @ (SignUpError::Hash(_) | SignUpError::Storage(_))) => json_unavailable(&e),
    }
}

async fn reset_json(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: web::Bytes,
) -> HttpResponse {
    let params = match json_body(&req, &body) {
        Ok(p) => p,
        Err(res) => return *res,
    };
    let email = params.get("email").unwrap_or_default();
    match local_reset::request(&state, email, peer(&req)).await {
        Ok(_) => accepted("reset_code_sent"),
        Err(e) => reset_json_failed(&e),
    }
}

async fn reset_confirm_json(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: web::Bytes,
) -> HttpResponse {
    let params = match json_body(&req, &body) {
        Ok(p) => p,
        Err(res) => return *res,
    };
    let email = params.get("email").unwrap_or_default();
    let code = params.get("code").unwrap_or_default();
    let password = params.get("password").unwrap_or_default().to_owned();
    match local_reset::confirm(&state, email, code, password, peer(&req)).await {
        Ok(()) => HttpResponse::Ok()
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .json(serde_json::json!({ "status": "password_changed" })),
        Err(e) => reset_json_failed(&e),
    }
}

fn reset_json_failed(e: &ResetError) -> HttpResponse {
    match e {
        ResetError::BadEmail => bad_request("invalid_email", e),
        ResetError::Password(p) => bad_request(password_code(*p), p),
        ResetError::WrongCode => bad_request("invalid_code", e),
        ResetError::Limited { retry_after_secs } => limited(*retry_after_secs),
        ResetError::Hash(_) | ResetError::Storage(_) => json_unavailable(e),
    }
}
