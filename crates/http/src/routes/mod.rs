pub mod auth;
pub mod health;
pub mod link;
mod token_form;

use actix_web::http::header;
use actix_web::{HttpRequest, web};

/// `providers`: the configured provider ids (see [`auth::configure`]); `links`: the paths of
/// the manual link pages.
pub fn configure(cfg: &mut web::ServiceConfig, providers: &[String], links: &LinkPaths) {
    cfg.configure(health::configure)
        .configure(|cfg| link::configure(cfg, &links.select, &links.verify))
        .configure(|cfg| auth::configure(cfg, providers))
        .route("/metrics", web::get().to(crate::metrics::metrics));
}

/// Where the manual link pages are (`account_linking.routes`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkPaths {
    pub select: String,
    pub verify: String,
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
