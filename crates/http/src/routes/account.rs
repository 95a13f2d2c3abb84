//! Handlers of the signed-in user's routes (bearer access token): link tickets for connecting
//! another provider, and the list and removal of linked identities.

use super::auth::{authorization, bearer_failure};
use super::is_form;
use crate::flows::identities::{self, UnlinkError};
use crate::flows::link_ticket::{self, LinkTicketError};
use crate::flows::me;
use crate::params::{ParamError, Params};
use crate::problem::Problem;
use crate::state::AppState;
use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, web};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/auth/link-tickets", web::post().to(create_link_ticket))
        .route("/auth/me/identities", web::get().to(list_identities))
        .route(
            "/auth/me/identities/{id}",
            web::delete().to(unlink_identity),
        );
}

async fn create_link_ticket(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: web::Bytes,
) -> HttpResponse {
    let params = match body_params(&req, &body) {
        Ok(p) => p,
        Err(detail) => {
            return Problem::new(StatusCode::BAD_REQUEST, "Bad Request")
                .detail(detail)
                .response();
        }
    };
    match link_ticket::issue(&state, authorization(&req), params).await {
        Ok(issued) => HttpResponse::Created()
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .json(serde_json::json!({
                "ticket": issued.ticket,
                "expires_in": issued.expires_in,
            })),
        Err(LinkTicketError::Bearer(e)) => bearer_failure(e),
        Err(e @ LinkTicketError::StaleSignIn { max_age }) => {
            // RFC 9470: the app signs the person in again, then asks again.
            let mut res = Problem::new(StatusCode::UNAUTHORIZED, "Sign-in too old")
                .detail(e.to_string())
                .response();
            let challenge = format!(
                "Bearer realm=\"braid\", error=\"insufficient_user_authentication\", error_description=\"a more recent sign-in is required\", max_age={max_age}"
            );
            if let Ok(v) = header::HeaderValue::from_str(&challenge) {
                res.headers_mut().insert(header::WWW_AUTHENTICATE, v);
            }
            res
        }
        Err(
            e @ (LinkTicketError::BadParams(_)
            | LinkTicketError::OtherClient
            | LinkTicketError::BadTarget(_)),
        ) => Problem::new(StatusCode::BAD_REQUEST, "Bad Request")
            .detail(e.to_string())
            .response(),
        Err(e @ (LinkTicketError::Storage(_) | LinkTicketError::Random(_))) => {
            tracing::error!(error = %e, "link ticket could not be issued");
            Problem::new(StatusCode::SERVICE_UNAVAILABLE, "Service Unavailable").response()
        }
    }
}

/// The body's parameters: a form (`application/x-www-form-urlencoded`), or a JSON object of
/// strings. An empty body has none.
fn body_params(req: &HttpRequest, body: &[u8]) -> Result<Params, String> {
    if body.is_empty() {
        return Ok(Params::default());
    }
    if is_form(req) {
        return Params::parse(body).map_err(|e| e.to_string());
    }
    let is_json = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|m| m.trim().eq_ignore_ascii_case("application/json"));
    if !is_json {
        return Err(
            "send the parameters as application/x-www-form-urlencoded or application/json".into(),
        );
    }
    let object: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(body).map_err(|_| "the body is not a JSON object".to_owned())?;
    let mut form = url::form_urlencoded::Serializer::new(String::new());
    for (key, value) in &object {
        match value {
            serde_json::Value::String(s) => form.append_pair(key, s),
            serde_json::Value::Null => continue,
            _ => return Err(ParamError::BadCharacters(key.chars().take(40).collect()).to_string()),
        };
    }
    Params::parse(form.finish().as_bytes()).map_err(|e| e.to_string())
}

async fn list_identities(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    let user = match me::authenticate(&state, authorization(&req)).await {
        Ok((_, user)) => user,
        Err(e) => return bearer_failure(e),
    };
    match identities::list(&state, user).await {
        Ok(body) => HttpResponse::Ok()
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .json(body),
        Err(e) => bearer_failure(e.into()),
    }
}

async fn unlink_identity(
    req: HttpRequest,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> HttpResponse {
    let (claims, user) = match me::authenticate(&state, authorization(&req)).await {
        Ok(found) => found,
        Err(e) => return bearer_failure(e),
    };
    let client = state.client_addrs.client(&req);
    match identities::unlink(&state, user, id.into_inner(), claims.client_id, &client).await {
        Ok(()) => HttpResponse::NoContent().finish(),
        Err(e @ UnlinkError::NotFound) => Problem::new(StatusCode::NOT_FOUND, "Not Found")
            .detail(e.to_string())
            .response(),
        Err(e @ UnlinkError::LastSignInMethod) => {
            Problem::new(StatusCode::CONFLICT, "Last sign-in method")
                .detail(e.to_string())
                .response()
        }
        Err(UnlinkError::Storage(e)) => bearer_failure(e.into()),
    }
}
