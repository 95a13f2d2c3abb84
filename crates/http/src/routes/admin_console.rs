//! The admin console: server-rendered pages under `/admin` over the admin API's operations
//! ([`crate::flows::admin_users`]). Sign-in with an admin key, or as a Braid user marked
//! administrator through the normal federated sign-in ([`crate::flows::console_sign_in`]);
//! every form carries the session's CSRF token; no JavaScript.

use crate::admin::console_session::ConsoleSession;
use crate::admin::keys;
use crate::flows::admin_users::{self, Actor, Admin, AdminError, SearchParams};
use crate::flows::console_sign_in::{self, ConsoleSignInError};
use crate::params::Params;
use crate::routes::is_form;
use crate::state::AppState;
use actix_web::cookie::{Cookie, SameSite, time};
use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, web};
use braid_core::Timestamp;
use braid_storage::repo::audit::{self, AuditEvent};
use serde::Deserialize;
use std::time::Duration;
use tera::Context;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/admin", web::get().to(sign_in_page))
        .route("/admin/login", web::post().to(sign_in))
        .route("/admin/sign-in", web::post().to(start_user_sign_in))
        .route("/admin/callback", web::get().to(user_callback))
        .route("/admin/logout", web::post().to(sign_out))
        .route("/admin/users", web::get().to(users_page))
        .route("/admin/users/{user_id}", web::get().to(user_page))
        .route(
            "/admin/users/{user_id}/disable",
            web::post()
                .to(|req, state, path, body| change(req, state, path, body, Change::Disable)),
        )
        .route(
            "/admin/users/{user_id}/enable",
            web::post().to(|req, state, path, body| change(req, state, path, body, Change::Enable)),
        )
        .route("/admin/users/{user_id}/delete", web::get().to(delete_page))
        .route(
            "/admin/users/{user_id}/delete",
            web::post().to(|req, state, path, body| change(req, state, path, body, Change::Delete)),
        )
        .route(
            "/admin/users/{user_id}/identities/{identity_id}/unlink",
            web::post().to(unlink),
        );
}

/// What a finished change says on the page it redirects to (`?done=`).
fn notice(done: Option<&str>) -> Option<&'static str> {
    match done? {
        "disabled" => Some("The user is disabled and their refresh tokens are revoked."),
        "enabled" => Some("The user is enabled again."),
        "unlinked" => Some("The identity was removed and the user's refresh tokens revoked."),
        "deleted" => Some("The user was deleted."),
        _ => None,
    }
}

async fn sign_in_page(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    if !state.settings.admin.enabled() {
        return disabled(&req, &state);
    }
    match ConsoleSession::of(&req, &state) {
        Some(s) if matches!(s.who(&state).await, Ok(Some(_))) => see_other("/admin/users"),
        Some(s) => login_form(&state, &s, StatusCode::OK, None, None),
        None => fresh_login_form(&req, &state, None),
    }
}

/// The sign-in form in a new anonymous session (its CSRF token needs one).
fn fresh_login_form(req: &HttpRequest, state: &AppState, problem: Option<&str>) -> HttpResponse {
    let ttl = Duration::from_secs(state.settings.admin.console_session_ttl);
    let Ok(session) = ConsoleSession::new(ttl, None) else {
        return unavailable(req, state);
    };
    let Ok(cookie) = session.cookie(state) else {
        return unavailable(req, state);
    };
    let status = if problem.is_some() {
        StatusCode::FORBIDDEN
    } else {
        StatusCode::OK
    };
    let mut res = login_form(state, &session, status, problem, None);
    let _ = res.add_cookie(&cookie);
    res
}

fn login_form(
    state: &AppState,
    session: &ConsoleSession,
    status: StatusCode,
    problem: Option<&str>,
    notice: Option<&str>,
) -> HttpResponse {
    let mut ctx = Context::new();
    ctx.insert("csrf", &session.csrf(state));
    ctx.insert("problem", &problem);
    ctx.insert("notice", &notice);
    let mut providers: Vec<(&str, &str)> = state
        .providers
        .iter()
        .filter(|p| p.enabled())
        .map(|p| (p.id().as_str(), p.display_name()))
        .collect();
    providers.sort_unstable();
    ctx.insert("providers", &providers);
    state.pages.render_page(status, "admin/login.html", ctx)
}

/// The pending user sign-in's cookie: SameSite=Lax, because the browser comes back to
/// `/admin/callback` from the provider's site.
const PENDING_COOKIE: &str = "braid_admin_sign_in";

fn pending_cookie(state: &AppState, value: String, max_age: i64) -> Cookie<'static> {
    Cookie::build(PENDING_COOKIE, value)
        .path("/admin/callback")
        .http_only(true)
        .secure(state.cookie_secure)
        .same_site(SameSite::Lax)
        .max_age(time::Duration::seconds(max_age))
        .finish()
}

/// `POST /admin/sign-in` (`provider`, `csrf`): starts the federated sign-in for the console.
async fn start_user_sign_in(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: web::Bytes,
) -> HttpResponse {
    if !state.settings.admin.enabled() {
        return disabled(&req, &state);
    }
    let Some(session) = ConsoleSession::of(&req, &state) else {
        return fresh_login_form(
            &req,
            &state,
            Some("The sign-in form expired. Please choose again."),
        );
    };
    let Some(form) = form(&req, &body) else {
        return bad_form(&req, &state);
    };
    if !session.csrf_ok(&state, form.get("csrf")) {
        return forbidden(&req, &state);
    }
    let provider = form.get("provider").unwrap_or_default();
    if !state.providers.get(provider).is_some_and(|p| p.enabled()) {
        return login_form(
            &state,
            &session,
            StatusCode::BAD_REQUEST,
            Some("There is no such sign-in provider."),
            None,
        );
    }
    let Ok(started) = console_sign_in::start(&state, provider) else {
        return unavailable(&req, &state);
    };
    let ttl = i64::try_from(console_sign_in::PENDING_TTL.as_secs()).unwrap_or(600);
    let mut res = see_other(&started.location);
    let _ = res.add_cookie(&pending_cookie(&state, started.cookie_value, ttl));
    res
}

#[derive(Debug, Deserialize)]
struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
}

/// `GET /admin/callback?code=…&state=…`: where the console's own sign-in ends.
async fn user_callback(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    if !state.settings.admin.enabled() {
        return disabled(&req, &state);
    }
    let query = web::Query::<CallbackQuery>::from_query(req.query_string())
        .map(web::Query::into_inner)
        .unwrap_or(CallbackQuery {
            code: None,
            state: None,
        });
    let pending = req.cookie(PENDING_COOKIE);
    let outcome = console_sign_in::finish(
        &state,
        pending.as_ref().map(Cookie::value),
        query.state.as_deref(),
        query.code.as_deref(),
    )
    .await;
    let user = match outcome {
        Ok(user) => user,
        Err(ConsoleSignInError::Storage(e)) => {
            tracing::error!(error = %e, "admin console user sign-in failed");
            return unavailable(&req, &state);
        }
        Err(ConsoleSignInError::Random(_)) => return unavailable(&req, &state),
        Err(e) => {
            tracing::warn!(reason = %e, "admin console user sign-in refused");
            let mut res = state.pages.admin_error(
                &req,
                StatusCode::FORBIDDEN,
                "Sign-in refused",
                &format!("You cannot use the admin console: {e}."),
                "/admin",
            );
            let _ = res.add_cookie(&pending_cookie(&state, String::new(), 0));
            return res;
        }
    };
    let ttl = Duration::from_secs(state.settings.admin.console_session_ttl);
    let Ok(cookie) = ConsoleSession::for_user(ttl, &user).and_then(|s| s.cookie(&state)) else {
        return unavailable(&req, &state);
    };
    let event = state.client_addrs.client(&req).stamp(AuditEvent {
        kind: "admin.console_sign_in".into(),
        result: Some("success".into()),
        user_id: Some(user.to_string()),
        detail: Some(
            serde_json::json!({ "admin_user": user.to_string(), "via": "console" }).to_string(),
        ),
        ..AuditEvent::default()
    });
    if let Err(e) = state
        .db
        .run_write(move |c| audit::record(c, &event, Timestamp::now()))
        .await
    {
        tracing::error!(error = %e, "admin console sign-in could not be recorded");
        return unavailable(&req, &state);
    }
    // A page, not a redirect: the console cookie is SameSite=Strict, and browsers do not send
    // it on a redirect chain that began on the provider's site.
    let mut ctx = Context::new();
    ctx.insert("user", &user.to_string());
    let mut res = state
        .pages
        .render_page(StatusCode::OK, "admin/signed_in.html", ctx);
    let _ = res.add_cookie(&cookie);
    let _ = res.add_cookie(&pending_cookie(&state, String::new(), 0));
    res
}

async fn sign_in(req: HttpRequest, state: web::Data<AppState>, body: web::Bytes) -> HttpResponse {
    if !state.settings.admin.enabled() {
        return disabled(&req, &state);
    }
    let Some(session) = ConsoleSession::of(&req, &state) else {
        return fresh_login_form(
            &req,
            &state,
            Some("The sign-in form expired. Please enter the key again."),
        );
    };
    let Some(form) = form(&req, &body) else {
        return bad_form(&req, &state);
    };
    if !session.csrf_ok(&state, form.get("csrf")) {
        return forbidden(&req, &state);
    }
    let Some(name) = form
        .get("key")
        .and_then(|k| keys::holder(&state.settings.admin.keys, k.trim()))
        .map(str::to_owned)
    else {
        tracing::warn!("admin console sign-in with an unknown key");
        return login_form(
            &state,
            &session,
            StatusCode::UNAUTHORIZED,
            Some("That is not a valid admin key."),
            None,
        );
    };
    let ttl = Duration::from_secs(state.settings.admin.console_session_ttl);
    let signed_in = ConsoleSession::new(ttl, Some(name.clone()));
    let Ok(cookie) = signed_in.and_then(|s| s.cookie(&state)) else {
        return unavailable(&req, &state);
    };
    let event = state.client_addrs.client(&req).stamp(AuditEvent {
        kind: "admin.console_sign_in".into(),
        result: Some("success".into()),
        detail: Some(serde_json::json!({ "admin_key": name, "via": "console" }).to_string()),
        ..AuditEvent::default()
    });
    if let Err(e) = state
        .db
        .run_write(move |c| audit::record(c, &event, Timestamp::now()))
        .await
    {
        tracing::error!(error = %e, "admin console sign-in could not be recorded");
        return unavailable(&req, &state);
    }
    let mut res = see_other("/admin/users");
    let _ = res.add_cookie(&cookie);
    res
}

async fn sign_out(req: HttpRequest, state: web::Data<AppState>, body: web::Bytes) -> HttpResponse {
    let (session, _) = match signed_in(&req, &state).await {
        Ok(s) => s,
        Err(res) => return *res,
    };
    let Some(form) = form(&req, &body) else {
        return bad_form(&req, &state);
    };
    if !session.csrf_ok(&state, form.get("csrf")) {
        return forbidden(&req, &state);
    }
    if let Err(e) = session.end(&state).await {
        tracing::error!(error = %e, "the console session could not be ended");
        return unavailable(&req, &state);
    }
    let mut res = see_other("/admin");
    let _ = res.add_cookie(&ConsoleSession::removal(&state));
    res
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    q: Option<String>,
    cursor: Option<String>,
    done: Option<String>,
}

async fn users_page(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    let (session, actor) = match signed_in(&req, &state).await {
        Ok(s) => s,
        Err(res) => return *res,
    };
    let Ok(query) = web::Query::<ListQuery>::from_query(req.query_string()) else {
        return bad_form(&req, &state);
    };
    let query = query.into_inner();
    let params = SearchParams {
        q: query.q.clone(),
        cursor: query.cursor,
        ..SearchParams::default()
    };
    let page = match admin_users::search(&state, params).await {
        Ok(page) => page,
        Err(e) => return failed(&req, &state, &e, "/admin/users"),
    };
    let mut ctx = page_context(&state, &session, &actor);
    ctx.insert("q", &query.q.unwrap_or_default());
    ctx.insert("page", &page);
    ctx.insert("notice", &notice(query.done.as_deref()));
    state
        .pages
        .render_page(StatusCode::OK, "admin/users.html", ctx)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct UserQuery {
    done: Option<String>,
}

async fn user_page(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> HttpResponse {
    show_user(req, state, path, "admin/user.html").await
}

async fn delete_page(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> HttpResponse {
    show_user(req, state, path, "admin/delete.html").await
}

async fn show_user(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
    template: &str,
) -> HttpResponse {
    let (session, actor) = match signed_in(&req, &state).await {
        Ok(s) => s,
        Err(res) => return *res,
    };
    let done = web::Query::<UserQuery>::from_query(req.query_string())
        .ok()
        .and_then(|q| q.into_inner().done);
    let user = match admin_users::user_id(&path) {
        Ok(id) => admin_users::detail(&state, id).await,
        Err(e) => Err(e),
    };
    let user = match user {
        Ok(user) => user,
        Err(e) => return failed(&req, &state, &e, "/admin/users"),
    };
    let mut ctx = page_context(&state, &session, &actor);
    ctx.insert("user", &user);
    ctx.insert("notice", &notice(done.as_deref()));
    state.pages.render_page(StatusCode::OK, template, ctx)
}

#[derive(Debug, Clone, Copy)]
enum Change {
    Disable,
    Enable,
    Delete,
}

async fn change(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: web::Bytes,
    change: Change,
) -> HttpResponse {
    let (_, actor) = match checked_form(&req, &state, &body).await {
        Ok(s) => s,
        Err(res) => return *res,
    };
    let id = match admin_users::user_id(&path) {
        Ok(id) => id,
        Err(e) => return failed(&req, &state, &e, "/admin/users"),
    };
    let back = format!("/admin/users/{id}");
    let result = match change {
        Change::Disable => admin_users::set_disabled(&state, &actor, id.clone(), true).await,
        Change::Enable => admin_users::set_disabled(&state, &actor, id.clone(), false).await,
        Change::Delete => admin_users::delete(&state, &actor, id.clone()).await,
    };
    match (result, change) {
        (Ok(()), Change::Disable) => see_other(&format!("{back}?done=disabled")),
        (Ok(()), Change::Enable) => see_other(&format!("{back}?done=enabled")),
        (Ok(()), Change::Delete) => see_other("/admin/users?done=deleted"),
        (Err(e), _) => failed(&req, &state, &e, &back),
    }
}

async fn unlink(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
    body: web::Bytes,
) -> HttpResponse {
    let (_, actor) = match checked_form(&req, &state, &body).await {
        Ok(s) => s,
        Err(res) => return *res,
    };
    let force = form(&req, &body).is_some_and(|f| f.get("force") == Some("yes"));
    let (user, identity) = path.into_inner();
    let id = match admin_users::user_id(&user) {
        Ok(id) => id,
        Err(e) => return failed(&req, &state, &e, "/admin/users"),
    };
    let back = format!("/admin/users/{id}");
    match admin_users::unlink(&state, &actor, id, identity, force).await {
        Ok(()) => see_other(&format!("{back}?done=unlinked")),
        Err(e) => failed(&req, &state, &e, &back),
    }
}

/// The signed-in session and its admin, or the answer for a visitor who is not signed in.
/// Boxed: a response is large, and the signed-in path should not move one around.
async fn signed_in(
    req: &HttpRequest,
    state: &AppState,
) -> Result<(ConsoleSession, Actor), Box<HttpResponse>> {
    if !state.settings.admin.enabled() {
        return Err(Box::new(disabled(req, state)));
    }
    let session = ConsoleSession::of(req, state).ok_or_else(|| Box::new(see_other("/admin")))?;
    let admin = match session.who(state).await {
        Ok(Some(admin)) => admin,
        Ok(None) => return Err(Box::new(see_other("/admin"))),
        Err(e) => {
            tracing::error!(error = %e, "admin console session could not be checked");
            return Err(Box::new(unavailable(req, state)));
        }
    };
    Ok((
        session,
        Actor {
            admin,
            via: "console",
            client: state.client_addrs.client(req),
        },
    ))
}

/// A signed-in session whose form carries its CSRF token.
async fn checked_form(
    req: &HttpRequest,
    state: &AppState,
    body: &[u8],
) -> Result<(ConsoleSession, Actor), Box<HttpResponse>> {
    let (session, actor) = signed_in(req, state).await?;
    let form = form(req, body).ok_or_else(|| Box::new(bad_form(req, state)))?;
    if !session.csrf_ok(state, form.get("csrf")) {
        return Err(Box::new(forbidden(req, state)));
    }
    Ok((session, actor))
}

fn form(req: &HttpRequest, body: &[u8]) -> Option<Params> {
    if !is_form(req) {
        return None;
    }
    Params::parse(body).ok()
}

fn page_context(state: &AppState, session: &ConsoleSession, actor: &Actor) -> Context {
    let mut ctx = Context::new();
    ctx.insert("csrf", &session.csrf(state));
    let (by_key, admin) = match &actor.admin {
        Admin::Key(name) => (true, name.clone()),
        Admin::User(id) => (false, id.to_string()),
    };
    ctx.insert("admin", &admin);
    ctx.insert("admin_is_key", &by_key);
    ctx
}

fn see_other(location: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, location))
        .finish()
}

fn failed(req: &HttpRequest, state: &AppState, e: &AdminError, back: &str) -> HttpResponse {
    if let AdminError::Storage(s) = e {
        tracing::error!(error = %s, "admin console operation failed");
        return unavailable(req, state);
    }
    state
        .pages
        .admin_error(req, e.status(), e.title(), &e.to_string(), back)
}

fn disabled(req: &HttpRequest, state: &AppState) -> HttpResponse {
    state.pages.error(
        req,
        StatusCode::NOT_FOUND,
        "Not found",
        "There is no such page.",
        None,
    )
}

fn forbidden(req: &HttpRequest, state: &AppState) -> HttpResponse {
    state.pages.admin_error(
        req,
        StatusCode::FORBIDDEN,
        "The form was refused",
        "It did not come from this console's page (its security token is missing or belongs to another sign-in). Nothing was changed.",
        "/admin",
    )
}

fn bad_form(req: &HttpRequest, state: &AppState) -> HttpResponse {
    state.pages.admin_error(
        req,
        StatusCode::BAD_REQUEST,
        "The request is malformed",
        "The form or the address has parameters the console does not take. Nothing was changed.",
        "/admin/users",
    )
}

fn unavailable(req: &HttpRequest, state: &AppState) -> HttpResponse {
    state.pages.error(
        req,
        StatusCode::SERVICE_UNAVAILABLE,
        "Unavailable",
        "The console is unavailable right now. Please try again in a moment.",
        None,
    )
}
