use crate::problem::Problem;
use crate::state::AppState;
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use serde_json::json;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/healthz", web::get().to(healthz))
        .route("/readyz", web::get().to(readyz));
}

/// The process is up and serving.
async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(json!({"status": "ok"}))
}

/// The database answers and every migration this binary knows is applied.
async fn readyz(state: web::Data<AppState>) -> HttpResponse {
    match state.db.is_ready().await {
        Ok(true) => HttpResponse::Ok().json(json!({"status": "ready"})),
        Ok(false) => Problem::new(StatusCode::SERVICE_UNAVAILABLE, "Not Ready")
            .detail("database migrations are not applied; run `braid migrate`")
            .response(),
        Err(e) => {
            tracing::warn!(error = %e, "readiness check failed");
            Problem::new(StatusCode::SERVICE_UNAVAILABLE, "Not Ready")
                .detail("database unreachable")
                .response()
        }
    }
}
