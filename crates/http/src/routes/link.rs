//! Handlers of the manual link pages (select, verify): read the link state and the form, call
//! the flow, render its page or redirect. Paths from `account_linking.routes`.
//!
//! The link state travels in the server-side session when `sessions.enabled`, else in the
//! sealed link cookie; either way it holds only the flow's id and expiry, and everything that
//! decides anything is in `link_flows` and `verification_codes`.

use crate::app_errors::ErrorCode;
use crate::flows::callback::AppRedirect;
use crate::flows::link_select::{self, Chosen, SelectError};
use crate::flows::link_state::{LinkState, link_cookie};
use crate::flows::link_verify::{self, Verified, VerifyError};
use crate::params::Params;
use crate::routes::is_form;
use crate::routes::{SessionLayer, register};
use crate::sessions::renew_or_end;
use crate::state::AppState;
use actix_session::SessionExt as _;
use actix_web::cookie::{Cookie, SameSite, time};
use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, web};
use braid_core::Timestamp;

/// The session entry holding a manual link's state.
const SESSION_ENTRY: &str = "braid.link";

pub fn configure(
    cfg: &mut web::ServiceConfig,
    select: &str,
    verify: &str,
    sessions: Option<&SessionLayer>,
) {
    register(
        cfg,
        web::resource(select.to_owned())
            .route(web::get().to(select_page))
            .route(web::post().to(select_post)),
        sessions,
    );
    register(
        cfg,
        web::resource(verify.to_owned())
            .route(web::get().to(verify_page))
            .route(web::post().to(verify_post)),
        sessions,
    );
}

/// Starts a manual link in this browser (the callback's answer): the state goes into a fresh
/// session — a session id the browser held before is dropped, so one planted by someone else
/// gets nothing — or into the link cookie. `None` when it could not be stored.
pub fn start(req: &HttpRequest, state: &AppState, link: &LinkState) -> Option<HttpResponse> {
    let mut response = HttpResponse::SeeOther();
    response.insert_header((header::LOCATION, state.link_paths.select.as_str()));
    if state.sessions.is_some() {
        let session = req.get_session();
        session.renew();
        session.insert(SESSION_ENTRY, link).ok()?;
        return Some(response.finish());
    }
    let value = link.seal(&state.link_sealer).ok()?;
    let (name, path) = link_cookie(state.cookie_secure);
    let ttl = state.settings.account_linking.state_expiration;
    let cookie = Cookie::build(name, value)
        .path(path)
        .http_only(true)
        .secure(state.cookie_secure)
        .same_site(SameSite::Lax)
        .max_age(time::Duration::seconds(i64::try_from(ttl).unwrap_or(600)))
        .finish();
    Some(response.cookie(cookie).finish())
}

/// A sign-in finished without a manual link: a link state left in the session from an
/// abandoned choice goes, and the session id is renewed.
pub fn end_on_login(req: &HttpRequest, state: &AppState) {
    if state.sessions.is_some() {
        let session = req.get_session();
        if !session.entries().is_empty() {
            session.remove(SESSION_ENTRY);
            renew_or_end(&session);
        }
    }
}

/// The flow is over for this browser: its state goes from the session (whose id is renewed)
/// or the link cookie is removed.
fn forget(req: &HttpRequest, state: &AppState, response: &mut HttpResponse) {
    if state.sessions.is_some() {
        let session = req.get_session();
        session.remove(SESSION_ENTRY);
        renew_or_end(&session);
    } else {
        let _ = response.add_cookie(&clear_cookie(state));
    }
}

fn clear_cookie(state: &AppState) -> Cookie<'static> {
    let (name, path) = link_cookie(state.cookie_secure);
    let mut c = Cookie::build(name, "")
        .path(path)
        .http_only(true)
        .secure(state.cookie_secure)
        .finish();
    c.make_removal();
    c
}

/// The browser's link state; when it has none, it is not ours, or it expired: back to the app
/// with `flow_expired` when the state still names the flow, else the ended page.
async fn link_state(req: &HttpRequest, state: &AppState) -> Result<LinkState, Box<HttpResponse>> {
    let link = if state.sessions.is_some() {
        req.get_session()
            .get::<LinkState>(SESSION_ENTRY)
            .ok()
            .flatten()
    } else {
        let (name, _) = link_cookie(state.cookie_secure);
        req.cookie(name)
            .and_then(|c| LinkState::open(&state.link_sealer, c.value()))
    };
    match link {
        Some(l) if !l.is_expired(Timestamp::now()) => Ok(l),
        other => Err(Box::new(ended(req, state, other.as_ref()).await)),
    }
}

/// The flow ended (expired, cancelled, used, or locked after wrong codes): back to the app with
/// `flow_expired` when the browser's state names it, else the expired-or-used page.
async fn ended(req: &HttpRequest, state: &AppState, link: Option<&LinkState>) -> HttpResponse {
    let page = state.pages.error(
        req,
        StatusCode::BAD_REQUEST,
        "This sign-in has ended",
        "This account choice has ended: it expired, was cancelled, or is already done. Please sign in again from the app. (Error code: flow_expired)",
        link.and_then(|l| l.back.as_deref()),
    );
    match link {
        Some(link) => app_or_page(req, state, link, ErrorCode::FlowExpired, page).await,
        None => {
            let mut page = page;
            forget(req, state, &mut page);
            page
        }
    }
}

/// A failure that ends the manual link: back to the app of the flow when it takes failures
/// there, else `page`. Either way the browser's link state goes.
async fn app_or_page(
    req: &HttpRequest,
    state: &AppState,
    link: &LinkState,
    code: ErrorCode,
    mut page: HttpResponse,
) -> HttpResponse {
    if let Some(app) = link_select::app_return(state, link).await
        && let Some(Ok(target)) = app.redirect(code, &state.issuer)
    {
        return to_app(req, state, target);
    }
    forget(req, state, &mut page);
    page
}

fn to_app(req: &HttpRequest, state: &AppState, target: AppRedirect) -> HttpResponse {
    let mut response = HttpResponse::SeeOther()
        .insert_header((header::LOCATION, target.0))
        .finish();
    forget(req, state, &mut response);
    response
}

fn see_other(location: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, location))
        .finish()
}

/// A form posted to a link page, with the browser's link state.
async fn posted(
    req: &HttpRequest,
    state: &AppState,
    body: &[u8],
) -> Result<(LinkState, Params), Box<HttpResponse>> {
    let link = link_state(req, state).await?;
    match is_form(req).then(|| Params::parse(body).ok()).flatten() {
        Some(form) => Ok((link, form)),
        None => Err(Box::new(state.pages.error(
            req,
            StatusCode::BAD_REQUEST,
            "Something went wrong",
            "The form could not be read. Please go back and try again.",
            None,
        ))),
    }
}

fn too_many(mut page: HttpResponse, retry_after_secs: u64) -> HttpResponse {
    if let Ok(v) = header::HeaderValue::from_str(&retry_after_secs.to_string()) {
        page.headers_mut().insert(header::RETRY_AFTER, v);
    }
    page
}

async fn select_page(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    let link = match link_state(&req, &state).await {
        Ok(l) => l,
        Err(page) => return *page,
    };
    match link_select::view(&state, &link).await {
        Ok(view) => state.pages.link_select(&view, None),
        Err(e) => select_error(&req, &state, &link, e).await,
    }
}

async fn select_post(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: web::Bytes,
) -> HttpResponse {
    let (link, form) = match posted(&req, &state, &body).await {
        Ok(posted) => posted,
        Err(page) => return *page,
    };
    let client = state.client_addrs.client(&req);
    match link_select::choose(&state, &link, &form, &client).await {
        Ok(Chosen::Verify) => see_other(&state.link_paths.verify),
        Ok(Chosen::App(target)) => to_app(&req, &state, target),
        Err(e) => select_error(&req, &state, &link, e).await,
    }
}

async fn select_error(
    req: &HttpRequest,
    state: &AppState,
    link: &LinkState,
    e: SelectError,
) -> HttpResponse {
    let back = Some(state.link_paths.select.as_str());
    let page = |status, title: &str, message: &str, back: Option<&str>| {
        state.pages.error(req, status, title, message, back)
    };
    match e {
        SelectError::NoFlow => ended(req, state, Some(link)).await,
        SelectError::Csrf => page(
            StatusCode::FORBIDDEN,
            "This form has expired",
            "The form did not come from this page. Please go back to the account list and choose again.",
            back,
        ),
        SelectError::UnknownChoice | SelectError::CreateNotAllowed | SelectError::NotLinkable => {
            page(
                StatusCode::BAD_REQUEST,
                "That choice is not available",
                &format!("{e}. Please choose again from the list."),
                back,
            )
        }
        SelectError::TooManyCodes { retry_after_secs } => too_many(
            page(
                StatusCode::TOO_MANY_REQUESTS,
                "Too many codes",
                "Too many codes were sent for this account. Please wait a while and try again.",
                back,
            ),
            retry_after_secs,
        ),
        SelectError::Storage(_) | SelectError::Random(_) => {
            tracing::error!(error = %e, "account choice failed");
            page(
                StatusCode::SERVICE_UNAVAILABLE,
                "Sign-in is unavailable right now",
                "Please try again in a moment.",
                back,
            )
        }
    }
}

async fn verify_page(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    let link = match link_state(&req, &state).await {
        Ok(l) => l,
        Err(page) => return *page,
    };
    let notice = req
        .query_string()
        .contains("resent=1")
        .then_some("A new code is on its way. Earlier codes no longer work.");
    match link_verify::view(&state, &link).await {
        Ok(view) => state.pages.link_verify(
            StatusCode::OK,
            &view,
            &state.link_paths.select,
            notice,
            None,
        ),
        Err(e) => verify_error(&req, &state, &link, e).await,
    }
}

async fn verify_post(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: web::Bytes,
) -> HttpResponse {
    let (link, form) = match posted(&req, &state, &body).await {
        Ok(posted) => posted,
        Err(page) => return *page,
    };
    let client = state.client_addrs.client(&req);
    match link_verify::submit(&state, &link, &form, &client).await {
        Ok(Verified::Done(target)) => to_app(&req, &state, target),
        Ok(Verified::Resent) => see_other(&format!("{}?resent=1", state.link_paths.verify)),
        Err(e) => verify_error(&req, &state, &link, e).await,
    }
}

async fn verify_error(
    req: &HttpRequest,
    state: &AppState,
    link: &LinkState,
    e: VerifyError,
) -> HttpResponse {
    let select = Some(state.link_paths.select.as_str());
    // Mistakes the person can correct on the same page.
    let retry = match &e {
        VerifyError::WrongPassword => Some("That password is not right.".to_owned()),
        VerifyError::WrongCode { tries_left } => Some(format!(
            "That code is not right. {tries_left} {} left.",
            if *tries_left == 1 { "try" } else { "tries" }
        )),
        VerifyError::CodeExpired => {
            Some("That code has expired. Ask for a new one below.".to_owned())
        }
        _ => None,
    };
    if let Some(problem) = retry
        && let Ok(view) = link_verify::view(state, link).await
    {
        return state.pages.link_verify(
            StatusCode::BAD_REQUEST,
            &view,
            &state.link_paths.select,
            None,
            Some(&problem),
        );
    }
    let page = |status, title: &str, message: &str, back: Option<&str>| {
        state.pages.error(req, status, title, message, back)
    };
    match e {
        VerifyError::NoFlow => ended(req, state, Some(link)).await,
        VerifyError::Csrf => page(
            StatusCode::FORBIDDEN,
            "This form has expired",
            "The form did not come from this page. Please go back and try again.",
            select,
        ),
        VerifyError::NotChosen | VerifyError::MethodNotOffered => page(
            StatusCode::BAD_REQUEST,
            "Choose your account first",
            &format!("{e}. Please choose your account from the list."),
            select,
        ),
        VerifyError::Locked => {
            let p = page(
                StatusCode::BAD_REQUEST,
                "This sign-in has ended",
                "Too many wrong codes were entered, so this sign-in has ended and nothing was linked. Please sign in again from the app. (Error code: too_many_attempts)",
                link.back.as_deref(),
            );
            app_or_page(req, state, link, ErrorCode::TooManyAttempts, p).await
        }
        VerifyError::Limited { retry_after_secs } => too_many(
            page(
                StatusCode::TOO_MANY_REQUESTS,
                "Too many attempts",
                "There were too many attempts for this account. Please wait a while and try again.",
                None,
            ),
            retry_after_secs,
        ),
        VerifyError::NotLinkable | VerifyError::AlreadyLinked => {
            let p = state.pages.conflict(req, link.back.as_deref());
            app_or_page(req, state, link, ErrorCode::LinkConflict, p).await
        }
        VerifyError::WrongPassword | VerifyError::WrongCode { .. } | VerifyError::CodeExpired => {
            // The page to retry on could not be built: the flow ended meanwhile.
            ended(req, state, Some(link)).await
        }
        VerifyError::Storage(_) | VerifyError::Random(_) => {
            tracing::error!(error = %e, "account verification failed");
            page(
                StatusCode::SERVICE_UNAVAILABLE,
                "Sign-in is unavailable right now",
                "Please try again in a moment.",
                None,
            )
        }
    }
}
