//! Prometheus counters, served at `/metrics`.

use actix_web::{HttpResponse, web};
use prometheus::{Encoder, IntCounterVec, Opts, Registry, TextEncoder};

pub struct Metrics {
    registry: Registry,
    /// Linking decisions by result (complete, initiated, skipped, conflict) and reason.
    pub link_results: IntCounterVec,
    /// Federated logins by provider and outcome (success, or the failure class).
    pub logins: IntCounterVec,
    /// Token endpoint results by endpoint and outcome.
    pub token_requests: IntCounterVec,
}

impl Metrics {
    pub fn new() -> Result<Self, prometheus::Error> {
        let registry = Registry::new_custom(Some("braid".into()), None)?;
        let link_results = IntCounterVec::new(
            Opts::new(
                "link_results_total",
                "Linking decisions by result and reason",
            ),
            &["result", "reason"],
        )?;
        let logins = IntCounterVec::new(
            Opts::new(
                "federated_logins_total",
                "Federated logins by provider and outcome",
            ),
            &["provider", "outcome"],
        )?;
        let token_requests = IntCounterVec::new(
            Opts::new(
                "token_requests_total",
                "Token endpoint requests by endpoint and outcome",
            ),
            &["endpoint", "outcome"],
        )?;
        registry.register(Box::new(link_results.clone()))?;
        registry.register(Box::new(logins.clone()))?;
        registry.register(Box::new(token_requests.clone()))?;
        Ok(Self {
            registry,
            link_results,
            logins,
            token_requests,
        })
    }

    pub fn render(&self) -> String {
        let mut buf = Vec::new();
        if let Err(e) = TextEncoder::new().encode(&self.registry.gather(), &mut buf) {
            tracing::error!(error = %e, "metrics encoding failed");
        }
        String::from_utf8(buf).unwrap_or_default()
    }
}

pub async fn metrics(state: web::Data<crate::state::AppState>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(state.metrics.render())
}
