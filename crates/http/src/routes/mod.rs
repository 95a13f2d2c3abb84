pub mod account;
pub mod admin_api;
pub mod admin_console;
pub mod auth;
pub mod health;
pub mod link;
pub mod local;
mod token_form;

use actix_session::SessionMiddleware;
use actix_web::http::header;
use actix_web::{HttpRequest, web};

/// One worker's session middleware (see [`crate::sessions`]).
pub type SessionLayer = SessionMiddleware<crate::sessions::Store>;

/// `providers`: the configured provider ids (see [`auth::configure`]); `links`: the paths of
/// the manual link pages; `sessions`: the middleware for the routes that use sessions, when
/// they are on; `dev`: the development routes of `braid serve --dev`, registered only then.
pub fn configure(
    cfg: &mut web::ServiceConfig,
    providers: &[String],
    links: &LinkPaths,
    sessions: Option<&SessionLayer>,
    dev: Option<&std::sync::Arc<crate::dev::DevState>>,
) {
    if let Some(dev) = dev {
        crate::dev::configure(cfg, dev);
    }
    // The admin routes come last: actix tries routes in order, and the login path should not
    // pay for matching them.
    cfg.configure(health::configure)
        .configure(|cfg| link::configure(cfg, &links.select, &links.verify, sessions))
        .configure(|cfg| auth::configure(cfg, providers, sessions))
        .configure(account::configure)
        .configure(admin_api::configure)
        .configure(admin_console::configure);
}

/// The answer for a path no route matched: Braid's page on the browser routes (a mistyped
/// provider in a sign-in link), a JSON problem elsewhere.
pub async fn not_found(
    req: HttpRequest,
    state: web::Data<crate::state::AppState>,
) -> actix_web::HttpResponse {
    if req.path().starts_with(BROWSER_ROUTES) {
        return state.pages.error(
            &req,
            actix_web::http::StatusCode::NOT_FOUND,
            "Sign-in could not start",
            "There is no such sign-in method. Please go back to the app and try again.",
            None,
        );
    }
    crate::problem::not_found().await
}

/// Where browsers are sent (sign-in links, callbacks, manual link pages by default).
const BROWSER_ROUTES: &str = "/auth/connect/";

/// Registers a route that may read or write the session: wrapped in the session middleware
/// when sessions are on, bare otherwise.
fn register(
    cfg: &mut web::ServiceConfig,
    resource: actix_web::Resource,
    sessions: Option<&SessionLayer>,
) {
    match sessions {
        Some(layer) => cfg.service(resource.wrap(layer.clone()).wrap(
            actix_web::middleware::from_fn(crate::sessions::unavailable_page),
        )),
        None => cfg.service(resource),
    };
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
