//! The per-request span. Unlike tracing-actix-web's default it records the matched route
//! pattern, never the raw path and query: callback URLs carry authorization codes and state.

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
        span.in_scope(|| {
            if status.is_server_error() {
                tracing::error!(status = status.as_u16(), "request failed");
            } else {
                tracing::info!(status = status.as_u16(), "request done");
            }
        });
    }
}
