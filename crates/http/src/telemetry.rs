//! The per-request span. Unlike tracing-actix-web's default it records the matched route
//! pattern, never the raw path and query: callback URLs carry authorization codes and state.

use crate::flows::callback::LoginResult;
use actix_web::HttpMessage;
use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use tracing::Span;
use tracing_actix_web::{RequestId, RootSpanBuilder};

pub struct BraidRootSpan;

impl RootSpanBuilder for BraidRootSpan {
    fn on_request_start(request: &ServiceRequest) -> Span {
        let request_id = request
            .extensions()
            .get::<RequestId>()
            .map(ToString::to_string)
            .unwrap_or_default();
        let route = request
            .match_pattern()
            .unwrap_or_else(|| "unmatched".into());
        tracing::info_span!(
            "request",
            method = %request.method(),
            route = %route,
            request_id = %request_id,
        )
    }

    fn on_request_end<B: MessageBody>(
        span: Span,
        outcome: &Result<ServiceResponse<B>, actix_web::Error>,
    ) {
        let status = match outcome {
            Ok(response) => response.response().status(),
            Err(error) => error.as_response_error().status_code(),
        };
        // The status goes on the closing event only: recording it on the span made the JSON
        // formatter parse and re-serialise the span's fields on every request.
        // A login callback's result and reason go on this line too (see `LoginResult`).
        let login = outcome
            .as_ref()
            .ok()
            .and_then(|r| r.response().extensions().get::<LoginResult>().copied());
        span.in_scope(|| match (status.is_server_error(), login) {
            (true, None) => tracing::error!(status = status.as_u16(), "request failed"),
            (false, None) => tracing::info!(status = status.as_u16(), "request done"),
            (true, Some(l)) => tracing::error!(
                status = status.as_u16(),
                result = l.result,
                reason = l.reason,
                "request failed"
            ),
            (false, Some(l)) => tracing::info!(
                status = status.as_u16(),
                result = l.result,
                reason = l.reason,
                "request done"
            ),
        });
    }
}
