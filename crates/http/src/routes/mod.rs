pub mod auth;
pub mod health;

use actix_web::web;

/// `providers`: the configured provider ids (see [`auth::configure`]).
pub fn configure(cfg: &mut web::ServiceConfig, providers: &[String]) {
    cfg.configure(health::configure)
        .configure(|cfg| auth::configure(cfg, providers))
        .route("/metrics", web::get().to(crate::metrics::metrics));
}
