//! RFC 9457 problem documents for API routes that are not OAuth endpoints.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, HttpResponseBuilder};
use serde::Serialize;

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Problem {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub title: &'static str,
    pub status: u16,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// An extension member (RFC 9457 §3.2): Braid's machine-readable reason, for apps that
    /// show their own message (`invalid_credentials`, `email_not_verified`, ...).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<&'static str>,
}

impl Problem {
    pub fn new(status: StatusCode, title: &'static str) -> Self {
        Self {
            kind: "about:blank",
            title,
            status: status.as_u16(),
            detail: None,
            code: None,
        }
    }

    #[must_use]
    pub fn detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = Some(detail.into());
        self
    }

    #[must_use]
    pub fn code(mut self, code: &'static str) -> Self {
        self.code = Some(code);
        self
    }

    pub fn response(&self) -> HttpResponse {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        HttpResponseBuilder::new(status)
            .content_type("application/problem+json")
            .json(self)
    }
}

pub async fn not_found() -> HttpResponse {
    Problem::new(StatusCode::NOT_FOUND, "Not Found").response()
}
