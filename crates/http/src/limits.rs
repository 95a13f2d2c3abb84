//! Request size limits (SECURITY-CASES H01, H02). The URI and header limits apply before
//! routing: actix-http itself accepts heads far larger than any legitimate browser or API
//! request to Braid. The body limit is the body extractors' (set in `startup`).

use crate::problem::Problem;
use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::StatusCode;
use actix_web::middleware::Next;

/// Request bodies larger than this are refused before any handler runs.
pub const MAX_BODY_BYTES: usize = 16 * 1024;
/// Sum of all header names and values.
pub const MAX_HEADER_BYTES: usize = 16 * 1024;
/// Path plus query string.
pub const MAX_URI_BYTES: usize = 8 * 1024;

pub async fn request_limits(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    let uri_len = req.uri().path_and_query().map_or(0, |pq| pq.as_str().len());
    if uri_len > MAX_URI_BYTES {
        let res = Problem::new(StatusCode::URI_TOO_LONG, "URI Too Long").response();
        return Ok(req.into_response(res).map_into_right_body());
    }
    let header_bytes: usize = req
        .headers()
        .iter()
        .map(|(n, v)| n.as_str().len() + v.len())
        .sum();
    if header_bytes > MAX_HEADER_BYTES {
        let res = Problem::new(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            "Request Header Fields Too Large",
        )
        .response();
        return Ok(req.into_response(res).map_into_right_body());
    }
    Ok(next.call(req).await?.map_into_left_body())
}
