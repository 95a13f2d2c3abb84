//! The request of a token endpoint (`/auth/exchange-code`, `/auth/refresh`, `/auth/revoke`,
//! `/auth/introspect`) up to its parsed form, and every refusal on the way as RFC 6749 §5.2
//! JSON: another method (405), a content coding or another content type (415), a body over the
//! limit (413) or one that does not parse (400). Handlers only see a [`TokenForm`].

use super::is_form;
use crate::limits::MAX_BODY_BYTES;
use crate::oauth_error::{OAuthErrorCode, oauth_error_with_status};
use crate::params::{ParamError, Params};
use actix_web::error::PayloadError;
use actix_web::http::{StatusCode, header};
use actix_web::{
    FromRequest, Handler, HttpRequest, HttpResponse, Resource, Responder, ResponseError, dev, web,
};
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

/// A token endpoint at `path`: `handler` for POST, an OAuth 405 for every other method.
pub fn token_endpoint<F, Args>(path: &str, handler: F) -> Resource
where
    F: Handler<Args>,
    Args: FromRequest + 'static,
    F::Output: Responder + 'static,
{
    web::resource(path)
        .route(web::post().to(handler))
        .default_service(web::to(method_not_allowed))
}

async fn method_not_allowed() -> HttpResponse {
    let mut res = oauth_error_with_status(
        StatusCode::METHOD_NOT_ALLOWED,
        OAuthErrorCode::InvalidRequest,
        "the method must be POST",
    );
    res.headers_mut()
        .insert(header::ALLOW, header::HeaderValue::from_static("POST"));
    res
}

/// The form of a token request (RFC 6749 §4.1.3: `application/x-www-form-urlencoded`).
pub struct TokenForm(pub Params);

#[derive(Debug, thiserror::Error)]
pub enum TokenFormError {
    #[error("the body must not be content-encoded (Content-Encoding: identity or none)")]
    Encoded,
    #[error("the body must be application/x-www-form-urlencoded")]
    NotForm,
    #[error("the body is larger than {MAX_BODY_BYTES} bytes")]
    TooLarge,
    #[error("the body could not be read")]
    Unreadable,
    #[error(transparent)]
    Params(#[from] ParamError),
}

impl ResponseError for TokenFormError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::Encoded | Self::NotForm => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::Unreadable | Self::Params(_) => StatusCode::BAD_REQUEST,
        }
    }

    fn error_response(&self) -> HttpResponse {
        oauth_error_with_status(
            self.status_code(),
            OAuthErrorCode::InvalidRequest,
            &self.to_string(),
        )
    }
}

impl FromRequest for TokenForm {
    type Error = TokenFormError;
    type Future = ReadTokenForm;

    fn from_request(req: &HttpRequest, payload: &mut dev::Payload) -> Self::Future {
        // Both are decided on the headers, before a byte of the body is read.
        if !unencoded(req) {
            return ReadTokenForm::Refused(Some(TokenFormError::Encoded));
        }
        if !is_form(req) {
            return ReadTokenForm::Refused(Some(TokenFormError::NotForm));
        }
        // The `Bytes` extractor applies the app's `PayloadConfig` limit, to a declared
        // `Content-Length` up front and to a chunked body as it arrives.
        ReadTokenForm::Reading(web::Bytes::from_request(req, payload))
    }
}

/// Braid decodes no content coding: without this check a gzip body would be parsed as if its
/// compressed bytes were the form. One `identity` is the only coding accepted; a list is not.
fn unencoded(req: &HttpRequest) -> bool {
    let mut codings = req.headers().get_all(header::CONTENT_ENCODING);
    match (codings.next(), codings.next()) {
        (None, _) => true,
        (Some(coding), None) => coding
            .as_bytes()
            .trim_ascii()
            .eq_ignore_ascii_case(b"identity"),
        (Some(_), Some(_)) => false,
    }
}

/// A refusal decided on the headers, or the body being read.
pub enum ReadTokenForm {
    Refused(Option<TokenFormError>),
    Reading(<web::Bytes as FromRequest>::Future),
}

impl Future for ReadTokenForm {
    type Output = Result<TokenForm, TokenFormError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.get_mut() {
            Self::Refused(refusal) => {
                Poll::Ready(Err(refusal.take().unwrap_or(TokenFormError::Unreadable)))
            }
            Self::Reading(body) => Pin::new(body).poll(cx).map(|read| match read {
                Ok(body) => Ok(TokenForm(Params::parse(&body)?)),
                Err(e) => Err(match e.as_error::<PayloadError>() {
                    Some(PayloadError::Overflow) => TokenFormError::TooLarge,
                    _ => {
                        tracing::debug!(error = %e, "token request body unreadable");
                        TokenFormError::Unreadable
                    }
                }),
            }),
        }
    }
}
