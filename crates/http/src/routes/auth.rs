//! Handlers of the login and token routes: parse, call the flow, render.

use super::is_form;
use super::token_form::{TokenForm, token_endpoint};
use crate::app_errors::{AppReturn, ErrorCode};
use crate::flows::callback::{self, CallbackError, Next};
use crate::flows::connect::{self, ConnectError};
use crate::flows::exchange;
use crate::flows::flow_cookie;
use crate::flows::grant::GrantError;
use crate::flows::introspect::{self, IntrospectError};
use crate::flows::me::{self, BearerError};
use crate::flows::metadata;
use crate::flows::refresh;
use crate::flows::revoke::{self, RevokeError};
use crate::flows::token_issue::Issued;
use crate::oauth_error::{OAuthErrorCode, oauth_error, token_response};
use crate::params::{ParamError, Params};
use crate::problem::Problem;
use crate::settings::ErrorDisplay;
use crate::state::AppState;
use actix_web::cookie::{Cookie, SameSite, time};
use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, web};
use braid_core::linking::Reason;

/// `providers`: the configured provider ids. Each gets static routes: actix compares a static
/// path as a string, while a `{provider}` segment cost a regex match per route and request
/// (a tenth of a login's instructions). An unknown provider id meets the 404 fallback.
///
/// The callback may start a manual link in the session, so it is the one login route that
/// `sessions` wraps.
pub fn configure(
    cfg: &mut web::ServiceConfig,
    providers: &[String],
    sessions: Option<&super::SessionLayer>,
) {
    for id in providers {
        let (start_id, get_id, post_id) = (id.clone(), id.clone(), id.clone());
        cfg.route(
            &format!("/auth/connect/{id}"),
            web::get().to(move |req, state| connect_start(req, start_id.clone(), state)),
        );
        super::register(
            cfg,
            web::resource(format!("/auth/connect/{id}/callback"))
                .route(web::get().to(move |req, state| callback_get(req, get_id.clone(), state)))
                .route(
                    web::post().to(move |req, state, body| {
                        callback_post(req, post_id.clone(), state, body)
                    }),
                ),
            sessions,
        );
    }
    cfg.service(token_endpoint("/auth/exchange-code", exchange_code))
        .service(token_endpoint("/auth/refresh", refresh_token))
        .service(token_endpoint("/auth/revoke", revoke_token))
        .service(token_endpoint("/auth/introspect", introspect_token))
        .route("/auth/me", web::get().to(me))
        .route("/.well-known/jwks.json", web::get().to(jwks))
        // RFC 8414 §3: an issuer with a path has its metadata under the path.
        .route(
            "/.well-known/oauth-authorization-server{issuer_path:.*}",
            web::get().to(authorization_server_metadata),
        );
}

async fn connect_start(
    req: HttpRequest,
    provider: String,
    state: web::Data<AppState>,
) -> HttpResponse {
    let result = match Params::parse(req.query_string().as_bytes()) {
        Ok(params) => connect::start(&state, &provider, &params).await,
        Err(e) => Err(ConnectError::BadParams(e).into()),
    };
    match result {
        Ok(start) => {
            state.metrics.sign_in_started(&provider);
            let (name, path) = flow_cookie(state.cookie_secure);
            let cookie = Cookie::build(name, start.flow_cookie)
                .path(path)
                .http_only(true)
                .secure(state.cookie_secure)
                // A form_post callback is a cross-site POST: only a SameSite=None cookie comes
                // along, and browsers accept those only when Secure.
                .same_site(if start.form_post && state.cookie_secure {
                    SameSite::None
                } else {
                    SameSite::Lax
                })
                .max_age(time::Duration::seconds(
                    i64::try_from(start.max_age.as_secs()).unwrap_or(600),
                ))
                .finish();
            HttpResponse::SeeOther()
                .insert_header((header::LOCATION, start.location))
                .cookie(cookie)
                .finish()
        }
        Err(connect::ConnectFailed { error: e, app }) => {
            let status = match &e {
                ConnectError::UnknownProvider => StatusCode::NOT_FOUND,
                ConnectError::Upstream(_) => StatusCode::BAD_GATEWAY,
                ConnectError::Random(_) | ConnectError::Storage(_) => {
                    StatusCode::SERVICE_UNAVAILABLE
                }
                _ => StatusCode::BAD_REQUEST,
            };
            if state.providers.get(&provider).is_some() {
                state
                    .metrics
                    .sign_in_refused_at_start(&provider, e.error_code());
            }
            if status.is_server_error() {
                tracing::error!(provider = %provider, error = %e, "sign-in could not start");
            } else {
                tracing::info!(provider = %provider, error = %e, "sign-in refused at start");
            }
            let message = match &e {
                ConnectError::Upstream(u) if u.is_misconfigured() => MISCONFIGURED.to_owned(),
                ConnectError::Upstream(u) if u.is_upstream_unavailable() => UNREACHABLE.to_owned(),
                ConnectError::Upstream(_) => UNVERIFIABLE.to_owned(),
                ConnectError::Random(_) | ConnectError::Storage(_) => {
                    "Sign-in is unavailable right now. Please try again in a moment.".to_owned()
                }
                ConnectError::TicketInvalid => "This link to connect a sign-in method expired or was already used. Please go back to the app and start again.".to_owned(),
                other => format!("This sign-in link is not valid: {other}."),
            };
            match e.error_code() {
                Some(code) => failure(
                    &req,
                    &state,
                    app.as_ref(),
                    code,
                    (status, "Sign-in could not start", &message),
                ),
                None => state
                    .pages
                    .error(&req, status, "Sign-in could not start", &message, None),
            }
        }
    }
}

async fn callback_get(
    req: HttpRequest,
    provider: String,
    state: web::Data<AppState>,
) -> HttpResponse {
    let params = Params::parse(req.query_string().as_bytes());
    callback(req, provider, state, params).await
}

async fn callback_post(
    req: HttpRequest,
    provider: String,
    state: web::Data<AppState>,
    body: web::Bytes,
) -> HttpResponse {
    let params = if is_form(&req) {
        Params::parse(&body)
    } else {
        Err(ParamError::BadCharacters("content-type".into()))
    };
    callback(req, provider, state, params).await
}

async fn callback(
    req: HttpRequest,
    provider: String,
    state: web::Data<AppState>,
    params: Result<Params, ParamError>,
) -> HttpResponse {
    let (name, path) = flow_cookie(state.cookie_secure);
    let cookie = req.cookie(name);
    let result = callback::complete(
        &state,
        &provider,
        cookie.as_ref().map(Cookie::value),
        params,
        &state.client_addrs.client(&req),
    )
    .await;
    let provider_label = if state.providers.get(&provider).is_some() {
        provider.as_str()
    } else {
        "unknown"
    };
    let mut clear = Cookie::build(name, "")
        .path(path)
        .http_only(true)
        .secure(state.cookie_secure)
        .finish();
    clear.make_removal();
    match result {
        Ok(done) => {
            state.metrics.sign_in_completed(provider_label);
            let mut response = match done.next {
                Next::App(target) => {
                    crate::routes::link::end_on_login(&req, &state);
                    HttpResponse::SeeOther()
                        .insert_header((header::LOCATION, target.0))
                        .cookie(clear)
                        .finish()
                }
                Next::ManualLink(link) => match crate::routes::link::start(&req, &state, &link) {
                    Some(mut started) => {
                        let _ = started.add_cookie(&clear);
                        started
                    }
                    None => {
                        tracing::error!("the link state could not be stored");
                        state.pages.error(
                            &req,
                            StatusCode::SERVICE_UNAVAILABLE,
                            "Sign-in failed",
                            "Sign-in is unavailable right now. Please try again in a moment.",
                            None,
                        )
                    }
                },
            };
            response.extensions_mut().insert(done.result);
            response
        }
        Err(callback::Failed { error: e, app }) => {
            state
                .metrics
                .sign_in_failed(provider_label, e.outcome(), e.error_code());
            let (status, message) = describe_callback_error(&e);
            let code = e.error_code().as_str();
            if status.is_server_error() {
                tracing::error!(provider = provider_label, error = %e, error_code = code, "sign-in failed");
            } else {
                tracing::info!(provider = provider_label, error = %e, error_code = code, "sign-in refused");
            }
            // Connecting an identity someone else has is for the person to understand, not
            // for the app to handle: Braid's page says so whatever the client's `errors`.
            let (app, title) = match &e {
                CallbackError::Refused(Reason::IdentityOwnedByAnotherUser) => (
                    app.map(|a| AppReturn {
                        errors: ErrorDisplay::Page,
                        ..a
                    }),
                    "Could not connect this sign-in",
                ),
                _ => (app, "Sign-in failed"),
            };
            let mut response = failure(
                &req,
                &state,
                app.as_ref(),
                e.error_code(),
                (status, title, &message),
            );
            let _ = response.add_cookie(&clear);
            response.extensions_mut().insert(e.login_result());
            response
        }
    }
}

/// A failed sign-in's answer: back to the app with the failure when it takes failures there,
/// else Braid's page (`status`, title, message) with the error code and a way back.
pub(crate) fn failure(
    req: &HttpRequest,
    state: &AppState,
    app: Option<&AppReturn>,
    code: ErrorCode,
    (status, title, message): (StatusCode, &str, &str),
) -> HttpResponse {
    if let Some(Ok(target)) = app.and_then(|a| a.redirect(code, &state.issuer)) {
        return HttpResponse::SeeOther()
            .insert_header((header::LOCATION, target.0))
            .finish();
    }
    let back = app.and_then(AppReturn::back);
    state.pages.error(
        req,
        status,
        title,
        &format!("{message} (Error code: {})", code.as_str()),
        back.as_deref(),
    )
}

const UNREACHABLE: &str =
    "The sign-in provider cannot be reached right now. Please try again in a moment.";
/// Nothing the person can do: the log line beside it tells the operator what to change.
const MISCONFIGURED: &str = "This sign-in method is misconfigured, so it cannot be used right now. Please use another one or try again later; the site's operator can see the cause in Braid's log.";
const UNVERIFIABLE: &str = "The sign-in provider's answer could not be verified.";

fn describe_callback_error(e: &CallbackError) -> (StatusCode, String) {
    use CallbackError as E;
    match e {
        E::UnknownProvider => (StatusCode::NOT_FOUND, "There is no such sign-in method.".into()),
        E::NoFlow => (StatusCode::BAD_REQUEST, "This sign-in was not started in this browser, expired, or was already completed. Please start again.".into()),
        E::ProviderMismatch | E::StateMismatch => {
            (StatusCode::BAD_REQUEST, "The answer from the sign-in provider does not belong to the sign-in started in this browser.".into())
        }
        E::ProviderDisabled => (StatusCode::BAD_REQUEST, "This sign-in method has been disabled.".into()),
        E::BadParams(p) => (StatusCode::BAD_REQUEST, format!("The answer from the sign-in provider is malformed: {p}.")),
        E::CodeAndError | E::MissingCode => (StatusCode::BAD_REQUEST, "The answer from the sign-in provider is malformed.".into()),
        E::ProviderRefused { error, description } => {
            let why = description.as_ref().map_or_else(|| error.clone(), |d| format!("{error}: {d}"));
            (StatusCode::BAD_REQUEST, format!("The sign-in provider did not sign you in ({why})."))
        }
        E::Upstream(u) if u.is_upstream_unavailable() => (StatusCode::BAD_GATEWAY, UNREACHABLE.into()),
        E::Upstream(u) if u.is_misconfigured() => (StatusCode::BAD_GATEWAY, MISCONFIGURED.into()),
        E::Upstream(_) => (StatusCode::BAD_REQUEST, UNVERIFIABLE.into()),
        E::Refused(Reason::LinkOnlyProvider) => {
            (StatusCode::FORBIDDEN, "This provider can only be connected to an account you are signed in to, not used to sign in.".into())
        }
        E::Refused(Reason::UserDisabled) => (StatusCode::FORBIDDEN, "This account is disabled.".into()),
        E::Refused(Reason::IdentityOwnedByAnotherUser) => (StatusCode::CONFLICT, "This sign-in is already connected to another account, so it cannot be connected to yours. Sign in with it to reach that account, or connect a different one.".into()),
        E::Refused(_) => (
            StatusCode::CONFLICT,
            "This sign-in matches more than one existing account, so it cannot be linked automatically. Please contact support.".into(),
        ),
        E::Storage(_) | E::Random(_) => (StatusCode::SERVICE_UNAVAILABLE, "Sign-in is unavailable right now. Please try again in a moment.".into()),
    }
}

async fn exchange_code(
    req: HttpRequest,
    state: web::Data<AppState>,
    TokenForm(form): TokenForm,
) -> HttpResponse {
    // The metadata's token endpoint: generic OAuth clients refresh here too.
    if form.get("grant_type") == Some("refresh_token") {
        let result = refresh::rotate(&state, &req, &form).await;
        return grant_response(&state, "refresh", result);
    }
    let result = exchange::redeem(&state, &req, &form).await;
    grant_response(&state, "exchange_code", result)
}

async fn refresh_token(
    req: HttpRequest,
    state: web::Data<AppState>,
    TokenForm(form): TokenForm,
) -> HttpResponse {
    let result = refresh::rotate(&state, &req, &form).await;
    grant_response(&state, "refresh", result)
}

fn grant_response(
    state: &AppState,
    endpoint: &str,
    result: Result<Issued, GrantError>,
) -> HttpResponse {
    let outcome = result
        .as_ref()
        .map_or_else(GrantError::outcome, |_| "success");
    state
        .metrics
        .token_requests
        .with_label_values(&[endpoint, outcome])
        .inc();
    match result {
        Ok(issued) => token_response(issued.response()),
        Err(GrantError::InvalidRequest(d)) => oauth_error(OAuthErrorCode::InvalidRequest, d),
        Err(GrantError::InvalidClient(c)) => {
            oauth_error(OAuthErrorCode::InvalidClient, &c.to_string())
        }
        Err(e @ GrantError::UnsupportedGrantType(_)) => {
            oauth_error(OAuthErrorCode::UnsupportedGrantType, &e.to_string())
        }
        Err(GrantError::InvalidGrant(d)) => oauth_error(OAuthErrorCode::InvalidGrant, d),
        Err(GrantError::Storage(s)) => storage_failure(&s),
        Err(GrantError::Signing) => {
            tracing::error!("access token signing failed");
            oauth_error(OAuthErrorCode::ServerError, "try again")
        }
    }
}

async fn revoke_token(
    req: HttpRequest,
    state: web::Data<AppState>,
    TokenForm(form): TokenForm,
) -> HttpResponse {
    let result = revoke::revoke(&state, &req, &form).await;
    let outcome = result
        .as_ref()
        .map_or_else(RevokeError::outcome, |()| "success");
    state
        .metrics
        .token_requests
        .with_label_values(&["revoke", outcome])
        .inc();
    match result {
        Ok(()) => token_response(serde_json::json!({})),
        Err(RevokeError::InvalidRequest(d)) => oauth_error(OAuthErrorCode::InvalidRequest, d),
        Err(RevokeError::InvalidClient(c)) => {
            oauth_error(OAuthErrorCode::InvalidClient, &c.to_string())
        }
        Err(RevokeError::Storage(s)) => storage_failure(&s),
    }
}

async fn introspect_token(
    req: HttpRequest,
    state: web::Data<AppState>,
    TokenForm(form): TokenForm,
) -> HttpResponse {
    let result = introspect::introspect(&state, &req, &form).await;
    let outcome = match &result {
        Ok(body) if body.is_active() => "success",
        Ok(_) => "inactive",
        Err(e) => e.outcome(),
    };
    state
        .metrics
        .token_requests
        .with_label_values(&["introspect", outcome])
        .inc();
    match result {
        Ok(body) => token_response(body.into_json()),
        Err(IntrospectError::InvalidRequest(d)) => oauth_error(OAuthErrorCode::InvalidRequest, d),
        Err(IntrospectError::InvalidClient(c)) => {
            oauth_error(OAuthErrorCode::InvalidClient, &c.to_string())
        }
        Err(IntrospectError::Storage(s)) => storage_failure(&s),
    }
}

async fn authorization_server_metadata(
    state: web::Data<AppState>,
    issuer_path: web::Path<String>,
) -> HttpResponse {
    if !metadata::is_issuer_path(&state.issuer, &issuer_path) {
        return crate::problem::not_found().await;
    }
    HttpResponse::Ok()
        .insert_header(header::CacheControl(vec![
            header::CacheDirective::Public,
            header::CacheDirective::MaxAge(metadata::MAX_AGE_SECS),
        ]))
        .json(metadata::document(&state.settings))
}

fn storage_failure(e: &braid_storage::StorageError) -> HttpResponse {
    tracing::error!(error = %e, "token endpoint storage failure");
    oauth_error(
        OAuthErrorCode::TemporarilyUnavailable,
        "try again in a moment",
    )
}

async fn me(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    let result = match me::authenticate(&state, authorization(&req)).await {
        Ok((token, user)) => me::profile(&state, user, &token).await,
        Err(e) => Err(e),
    };
    match result {
        Ok(body) => HttpResponse::Ok()
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .json(body),
        Err(e) => bearer_failure(e),
    }
}

/// The request's `Authorization` header, when it is text.
pub(super) fn authorization(req: &HttpRequest) -> Option<&str> {
    req.headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
}

/// A bearer-token route's answer when the token is missing, invalid or cannot be checked.
pub(super) fn bearer_failure(e: BearerError) -> HttpResponse {
    if let BearerError::Storage(e) = &e {
        tracing::error!(error = %e, "bearer-token route: storage failure");
        return Problem::new(StatusCode::SERVICE_UNAVAILABLE, "Service Unavailable").response();
    }
    let challenge = match e {
        BearerError::Missing => "Bearer realm=\"braid\"",
        _ => "Bearer realm=\"braid\", error=\"invalid_token\"",
    };
    let mut res = Problem::new(StatusCode::UNAUTHORIZED, "Unauthorized")
        .detail(e.to_string())
        .response();
    if let Ok(v) = header::HeaderValue::from_str(challenge) {
        res.headers_mut().insert(header::WWW_AUTHENTICATE, v);
    }
    res
}

async fn jwks(state: web::Data<AppState>) -> HttpResponse {
    match state.keys.keys().await {
        Ok(keys) => HttpResponse::Ok()
            .insert_header(header::CacheControl(vec![
                header::CacheDirective::Public,
                header::CacheDirective::MaxAge(crate::tokens::keyring::JWKS_MAX_AGE_SECS),
            ]))
            .content_type("application/json")
            .body(keys.jwks_json.clone()),
        Err(e) => {
            tracing::error!(error = %e, "JWKS unavailable");
            Problem::new(StatusCode::SERVICE_UNAVAILABLE, "Service Unavailable").response()
        }
    }
}
