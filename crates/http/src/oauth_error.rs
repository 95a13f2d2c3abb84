//! RFC 6749 §5.2 error responses for the token endpoints.

use actix_web::HttpResponse;
use actix_web::http::{StatusCode, header};
use serde_json::json;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OAuthErrorCode {
    InvalidRequest,
    InvalidClient,
    InvalidGrant,
    UnsupportedGrantType,
    ServerError,
    TemporarilyUnavailable,
}

impl OAuthErrorCode {
    fn as_str(self) -> &'static str {
        match self {
            Self::InvalidRequest => "invalid_request",
            Self::InvalidClient => "invalid_client",
            Self::InvalidGrant => "invalid_grant",
            Self::UnsupportedGrantType => "unsupported_grant_type",
            Self::ServerError => "server_error",
            Self::TemporarilyUnavailable => "temporarily_unavailable",
        }
    }

    fn status(self) -> StatusCode {
        match self {
            Self::InvalidClient => StatusCode::UNAUTHORIZED,
            Self::ServerError => StatusCode::INTERNAL_SERVER_ERROR,
            Self::TemporarilyUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::BAD_REQUEST,
        }
    }
}

pub fn oauth_error(code: OAuthErrorCode, description: &str) -> HttpResponse {
    oauth_error_with_status(code.status(), code, description)
}

/// For a refusal whose status is not the code's own: a token request refused for its method
/// (405), size (413) or encoding (415) is still `invalid_request` (RFC 6749 §5.2).
pub fn oauth_error_with_status(
    status: StatusCode,
    code: OAuthErrorCode,
    description: &str,
) -> HttpResponse {
    let mut res = HttpResponse::build(status);
    res.insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header((header::PRAGMA, "no-cache"));
    if code == OAuthErrorCode::InvalidClient {
        res.insert_header((header::WWW_AUTHENTICATE, "Basic realm=\"braid\""));
    }
    res.json(json!({"error": code.as_str(), "error_description": description}))
}

/// A successful token response: JSON, never cached (RFC 6749 §5.1).
pub fn token_response(body: serde_json::Value) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header((header::PRAGMA, "no-cache"))
        .json(body)
}
