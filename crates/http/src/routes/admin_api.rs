//! The admin API under `/admin/api`: JSON, an admin key as `Authorization: Bearer`, RFC 9457
//! problems. Its OpenAPI document (`/admin/openapi.json`) is collected from the very scope the
//! server registers ([`api_scope`]), so a route cannot exist without being described.

use crate::admin::keys;
use crate::flows::admin_users::{
    self, Actor, Admin, AdminError, LinkRequest, SearchParams, UserDetail, UserPage,
};
use crate::problem::Problem;
use crate::state::AppState;
use actix_web::dev::{HttpServiceFactory, Payload};
use actix_web::http::{StatusCode, header};
use actix_web::{FromRequest, HttpRequest, HttpResponse, ResponseError, delete, get, post, web};
use serde::Deserialize;
use std::sync::OnceLock;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{IntoParams, Modify, OpenApi};
use utoipa_actix_web::OpenApiFactory;

/// Where the API lives; the console's pages are beside it under `/admin`.
pub const PREFIX: &str = "/admin/api";
pub const DOCUMENT_PATH: &str = "/admin/openapi.json";

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(api_scope())
        .route(DOCUMENT_PATH, web::get().to(openapi_json));
}

/// Every route of the API: the server registers this scope, and the document is built from it.
fn api_scope() -> impl HttpServiceFactory + OpenApiFactory {
    utoipa_actix_web::scope(PREFIX)
        .service(list_users)
        .service(get_user)
        .service(disable_user)
        .service(enable_user)
        .service(delete_user)
        .service(unlink_identity)
        .service(link_identity)
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Braid admin API",
        description = "Search and manage Braid's users. Authenticate with an admin key (`braid admin-keys create`) as `Authorization: Bearer braid_ak_…`. Errors are RFC 9457 problem documents."
    ),
    modifiers(&AdminKeyScheme),
    security(("admin_key" = [])),
    tags((name = "users", description = "Users, their identities and their audit events"))
)]
struct AdminApiDoc;

struct AdminKeyScheme;

impl Modify for AdminKeyScheme {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "admin_key",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("An admin key: braid_ak_…"))
                    .build(),
            ),
        );
    }
}

/// The OpenAPI 3.1 document of the API, built once.
pub fn document() -> &'static str {
    static DOCUMENT: OnceLock<String> = OnceLock::new();
    DOCUMENT.get_or_init(|| {
        let scope = api_scope();
        let mut doc = AdminApiDoc::openapi();
        doc.paths.paths.extend(scope.paths().paths);
        let mut schemas = Vec::new();
        scope.schemas(&mut schemas);
        doc.components
            .get_or_insert_with(Default::default)
            .schemas
            .extend(schemas);
        doc.to_json().unwrap_or_default()
    })
}

async fn openapi_json(state: web::Data<AppState>) -> HttpResponse {
    if !state.settings.admin.enabled() {
        return crate::problem::not_found().await;
    }
    HttpResponse::Ok()
        .content_type("application/json")
        .body(document())
}

/// The admin key of the request, checked. With no keys configured the API does not exist.
pub struct AdminCaller(pub Actor);

#[derive(Debug, thiserror::Error)]
pub enum AdminAuthError {
    #[error("the admin API is not enabled")]
    Disabled,
    #[error("an admin key is required as Authorization: Bearer")]
    Missing,
    #[error("the admin key is not valid")]
    Invalid,
}

impl ResponseError for AdminAuthError {
    fn status_code(&self) -> StatusCode {
        match self {
            AdminAuthError::Disabled => StatusCode::NOT_FOUND,
            _ => StatusCode::UNAUTHORIZED,
        }
    }

    fn error_response(&self) -> HttpResponse {
        if let AdminAuthError::Disabled = self {
            return Problem::new(StatusCode::NOT_FOUND, "Not Found").response();
        }
        let mut res = Problem::new(StatusCode::UNAUTHORIZED, "Unauthorized")
            .detail(self.to_string())
            .response();
        res.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            header::HeaderValue::from_static("Bearer realm=\"braid-admin\""),
        );
        res
    }
}

impl FromRequest for AdminCaller {
    type Error = AdminAuthError;
    type Future = std::future::Ready<Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        std::future::ready(caller(req))
    }
}

fn caller(req: &HttpRequest) -> Result<AdminCaller, AdminAuthError> {
    let state = req
        .app_data::<web::Data<AppState>>()
        .ok_or(AdminAuthError::Disabled)?;
    let configured = &state.settings.admin.keys;
    if configured.is_empty() {
        return Err(AdminAuthError::Disabled);
    }
    let presented = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|h| {
            h.strip_prefix("Bearer ")
                .or_else(|| h.strip_prefix("bearer "))
        })
        .map(str::trim)
        .filter(|k| !k.is_empty())
        .ok_or(AdminAuthError::Missing)?;
    match keys::holder(configured, presented) {
        Some(name) => Ok(AdminCaller(Actor {
            admin: Admin::Key(name.to_owned()),
            via: "api",
            client: state.client_addrs.client(req),
        })),
        None => {
            tracing::warn!(path = %req.path(), "admin API call with an unknown key");
            Err(AdminAuthError::Invalid)
        }
    }
}

/// The problem document of a failed operation.
pub fn problem(e: &AdminError) -> HttpResponse {
    if let AdminError::Storage(s) = e {
        tracing::error!(error = %s, "admin operation failed");
        return Problem::new(e.status(), e.title())
            .detail("the database is unavailable; try again in a moment")
            .response();
    }
    Problem::new(e.status(), e.title())
        .detail(e.to_string())
        .response()
}

fn bad_request(detail: String) -> HttpResponse {
    problem(&AdminError::BadRequest(detail))
}

fn done(result: Result<(), AdminError>) -> HttpResponse {
    match result {
        Ok(()) => HttpResponse::NoContent().finish(),
        Err(e) => problem(&e),
    }
}

/// Search users, newest first, a page at a time.
#[utoipa::path(
    tag = "users",
    params(SearchParams),
    responses(
        (status = 200, description = "A page of users, newest first", body = UserPage),
        (status = 400, description = "A bad parameter, cursor or limit", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No admin key, or an unknown one", body = Problem, content_type = "application/problem+json"),
    )
)]
#[get("/users")]
async fn list_users(
    _caller: AdminCaller,
    req: HttpRequest,
    state: web::Data<AppState>,
) -> HttpResponse {
    let params = match web::Query::<SearchParams>::from_query(req.query_string()) {
        Ok(q) => q.into_inner(),
        Err(e) => return bad_request(e.to_string()),
    };
    match admin_users::search(&state, params).await {
        Ok(page) => HttpResponse::Ok().json(page),
        Err(e) => problem(&e),
    }
}

/// One user with emails, phones, identities and recent audit events.
#[utoipa::path(
    tag = "users",
    params(("user_id" = String, Path, description = "The user's id")),
    responses(
        (status = 200, description = "The user", body = UserDetail),
        (status = 401, description = "No admin key, or an unknown one", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such user", body = Problem, content_type = "application/problem+json"),
    )
)]
#[get("/users/{user_id}")]
async fn get_user(
    _caller: AdminCaller,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> HttpResponse {
    let result = match admin_users::user_id(&path) {
        Ok(id) => admin_users::detail(&state, id).await,
        Err(e) => Err(e),
    };
    match result {
        Ok(user) => HttpResponse::Ok().json(user),
        Err(e) => problem(&e),
    }
}

/// Disable the user: sign-ins refused, refresh tokens revoked, access tokens refused.
#[utoipa::path(
    tag = "users",
    params(("user_id" = String, Path, description = "The user's id")),
    responses(
        (status = 204, description = "Disabled"),
        (status = 401, description = "No admin key, or an unknown one", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such user", body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/users/{user_id}/disable")]
async fn disable_user(
    caller: AdminCaller,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> HttpResponse {
    set_disabled(caller, &path, &state, true).await
}

/// Enable a disabled user again.
#[utoipa::path(
    tag = "users",
    params(("user_id" = String, Path, description = "The user's id")),
    responses(
        (status = 204, description = "Enabled"),
        (status = 401, description = "No admin key, or an unknown one", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such user", body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/users/{user_id}/enable")]
async fn enable_user(
    caller: AdminCaller,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> HttpResponse {
    set_disabled(caller, &path, &state, false).await
}

async fn set_disabled(
    caller: AdminCaller,
    raw_id: &str,
    state: &AppState,
    disabled: bool,
) -> HttpResponse {
    let AdminCaller(actor) = caller;
    done(match admin_users::user_id(raw_id) {
        Ok(id) => admin_users::set_disabled(state, &actor, id, disabled).await,
        Err(e) => Err(e),
    })
}

/// Delete the user with its emails, phones, identities, password and tokens.
#[utoipa::path(
    tag = "users",
    params(("user_id" = String, Path, description = "The user's id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 401, description = "No admin key, or an unknown one", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such user", body = Problem, content_type = "application/problem+json"),
    )
)]
#[delete("/users/{user_id}")]
async fn delete_user(
    caller: AdminCaller,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> HttpResponse {
    let AdminCaller(actor) = caller;
    done(match admin_users::user_id(&path) {
        Ok(id) => admin_users::delete(&state, &actor, id).await,
        Err(e) => Err(e),
    })
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct UnlinkParams {
    /// Remove the identity even when it is the user's last way to sign in.
    force: Option<bool>,
}

/// Remove one identity from the user (the user's refresh tokens are revoked).
#[utoipa::path(
    tag = "users",
    params(
        ("user_id" = String, Path, description = "The user's id"),
        ("identity_id" = String, Path, description = "The identity's id"),
        UnlinkParams,
    ),
    responses(
        (status = 204, description = "Unlinked"),
        (status = 400, description = "A bad parameter", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No admin key, or an unknown one", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such user, or no such identity of the user", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The identity is the user's last way to sign in (use force=true)", body = Problem, content_type = "application/problem+json"),
    )
)]
#[delete("/users/{user_id}/identities/{identity_id}")]
async fn unlink_identity(
    caller: AdminCaller,
    req: HttpRequest,
    path: web::Path<(String, String)>,
    state: web::Data<AppState>,
) -> HttpResponse {
    let params = match web::Query::<UnlinkParams>::from_query(req.query_string()) {
        Ok(q) => q.into_inner(),
        Err(e) => return bad_request(e.to_string()),
    };
    let AdminCaller(actor) = caller;
    let (user, identity) = path.into_inner();
    done(match admin_users::user_id(&user) {
        Ok(id) => {
            admin_users::unlink(&state, &actor, id, identity, params.force.unwrap_or(false)).await
        }
        Err(e) => Err(e),
    })
}

/// Move an identity of another user to this user.
#[utoipa::path(
    tag = "users",
    params(("user_id" = String, Path, description = "The user to move the identity to")),
    request_body = LinkRequest,
    responses(
        (status = 204, description = "Linked"),
        (status = 400, description = "A malformed body", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No admin key, or an unknown one", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such user or identity", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Already this user's, the user has an identity of that provider, or it is the other user's last way to sign in (use force)", body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/users/{user_id}/identities")]
async fn link_identity(
    caller: AdminCaller,
    path: web::Path<String>,
    body: web::Bytes,
    state: web::Data<AppState>,
) -> HttpResponse {
    let request: LinkRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => return bad_request(format!("the body is not a link request: {e}")),
    };
    let AdminCaller(actor) = caller;
    done(match admin_users::user_id(&path) {
        Ok(id) => admin_users::link(&state, &actor, id, request).await,
        Err(e) => Err(e),
    })
}
