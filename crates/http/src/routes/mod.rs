pub mod auth;
pub mod health;
mod token_form;

use actix_web::http::header;
use actix_web::{HttpRequest, web};

/// `providers`: the configured provider ids (see [`auth::configure`]).
pub fn configure(cfg: &mut web::ServiceConfig, providers: &[String]) {
    cfg.configure(health::configure)
        .configure(|cfg| auth::configure(cfg, providers))
        .route("/metrics", web::get().to(crate::metrics::metrics));
}

/// Whether the body is declared `application/x-www-form-urlencoded` (parameters allowed).
fn is_form(req: &HttpRequest) -> bool {
    req.headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(';').next().is_some_and(|m| {
                m.trim()
                    .eq_ignore_ascii_case("application/x-www-form-urlencoded")
            })
        })
}
