pub mod auth;
pub mod health;

use actix_web::web;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.configure(health::configure)
        .configure(auth::configure)
        .route("/metrics", web::get().to(crate::metrics::metrics));
}
