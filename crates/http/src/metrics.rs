//! Prometheus counters, served at `/metrics`.

use actix_web::{HttpResponse, web};
use braid_providers::{ProviderRegistry, ProviderStatus};
use prometheus::{Encoder, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry, TextEncoder};

pub struct Metrics {
    registry: Registry,
    /// Linking decisions by result (complete, initiated, skipped, conflict) and reason.
    pub link_results: IntCounterVec,
    /// Federated logins by provider and outcome (success, or the failure class).
    pub logins: IntCounterVec,
    /// Token endpoint results by endpoint and outcome.
    pub token_requests: IntCounterVec,
    /// Each provider's status, one series per state (1 for the current one, else 0).
    provider_status: IntGaugeVec,
    /// Outbox deliveries by channel and outcome (sent, failed, gave_up).
    pub outbox_messages: IntCounterVec,
    /// Messages neither sent nor given up, as the outbox worker last counted them.
    pub outbox_pending: IntGauge,
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
        let provider_status = IntGaugeVec::new(
            Opts::new(
                "provider_status",
                "Each provider's state as Braid last found it (1 = the current state): ready, misconfigured, unreachable, unchecked or disabled",
            ),
            &["provider", "state"],
        )?;
        let outbox_messages = IntCounterVec::new(
            Opts::new(
                "outbox_messages_total",
                "Email and SMS delivery attempts by channel and outcome: sent, failed (will retry), gave_up, expired (a code past its validity, not sent)",
            ),
            &["channel", "outcome"],
        )?;
        let outbox_pending = IntGauge::new(
            "outbox_pending",
            "Messages in the outbox neither sent nor given up",
        )?;
        registry.register(Box::new(outbox_messages.clone()))?;
        registry.register(Box::new(outbox_pending.clone()))?;
        registry.register(Box::new(provider_status.clone()))?;
        registry.register(Box::new(link_results.clone()))?;
        registry.register(Box::new(logins.clone()))?;
        registry.register(Box::new(token_requests.clone()))?;
        Ok(Self {
            registry,
            link_results,
            logins,
            token_requests,
            provider_status,
            outbox_messages,
            outbox_pending,
        })
    }

    /// Read at scrape time: the providers keep their own state.
    pub fn observe_providers(&self, providers: &ProviderRegistry) {
        for provider in providers.iter() {
            let current = provider.status();
            for state in ProviderStatus::ALL {
                self.provider_status
                    .with_label_values(&[provider.id().as_str(), state.as_str()])
                    .set(i64::from(state == current));
            }
        }
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
    state.metrics.observe_providers(&state.providers);
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(state.metrics.render())
}
