//! Prometheus counters, served at `/metrics` (on the main listener or on `metrics.listen`,
//! behind `metrics.bearer_token` when one is set).

use crate::app_errors::ErrorCode;
use crate::problem::Problem;
use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, web};
use braid_core::Secret;
use braid_providers::{Document, ProviderRegistry, ProviderStatus, UpstreamObserver};
use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry,
    TextEncoder,
};
use subtle::ConstantTimeEq;

/// Every `error_code` label of `braid_sign_ins_failed_total`: the documented error codes
/// (README, "When a sign-in fails") and the one for a broken sign-in link, so that each series
/// exists (at zero) from start-up.
pub fn sign_in_error_codes() -> impl Iterator<Item = &'static str> {
    ErrorCode::ALL
        .into_iter()
        .map(ErrorCode::as_str)
        .chain([INVALID_SIGN_IN_LINK])
}

/// The `error_code` label of a sign-in refused at its start for a mistake in the app's sign-in
/// link (no redirect back for those; see [`crate::flows::connect::ConnectError::error_code`]).
pub const INVALID_SIGN_IN_LINK: &str = "invalid_request";

/// The token endpoints and the outcomes they count (`braid_token_requests_total`).
pub const TOKEN_ENDPOINTS: [&str; 4] = ["exchange_code", "refresh", "revoke", "introspect"];
pub const TOKEN_OUTCOMES: [&str; 6] = [
    "success",
    "invalid_request",
    "invalid_client",
    "invalid_grant",
    "unavailable",
    "inactive",
];

pub struct Metrics {
    registry: Registry,
    /// Linking decisions by result (complete, initiated, skipped, conflict) and reason.
    pub link_results: IntCounterVec,
    /// Federated logins by provider and outcome (success, or the failure class).
    pub logins: IntCounterVec,
    /// Token endpoint results by endpoint and outcome.
    pub token_requests: IntCounterVec,
    /// Sign-ins sent upstream, by provider.
    sign_ins_started: IntCounterVec,
    /// Sign-ins that ended with a redirect to the app or the manual link, by provider.
    sign_ins_completed: IntCounterVec,
    /// Sign-ins that failed, at the start or at the callback, by provider and error code.
    sign_ins_failed: IntCounterVec,
    /// Upstream call durations by provider and endpoint.
    upstream_seconds: HistogramVec,
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
        let sign_ins_started = IntCounterVec::new(
            Opts::new(
                "sign_ins_started_total",
                "Sign-ins sent to the provider, by provider",
            ),
            &["provider"],
        )?;
        let sign_ins_completed = IntCounterVec::new(
            Opts::new(
                "sign_ins_completed_total",
                "Sign-ins completed (the browser sent on to the app or to the manual link), by provider",
            ),
            &["provider"],
        )?;
        let sign_ins_failed = IntCounterVec::new(
            Opts::new(
                "sign_ins_failed_total",
                "Sign-ins that failed at the start or at the callback, by provider and error code",
            ),
            &["provider", "error_code"],
        )?;
        let upstream_seconds = HistogramVec::new(
            HistogramOpts::new(
                "upstream_request_duration_seconds",
                "Duration of calls to identity providers (to the last byte of the body, or the failure), by provider and endpoint: discovery, jwks, token, userinfo, profile_api",
            )
            .buckets(vec![0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0]),
            &["provider", "endpoint"],
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
                "Email, SMS and webhook delivery attempts by channel (email, sms, webhook) and outcome: sent, failed (will retry), gave_up, expired (a code past its validity, not sent)",
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
        registry.register(Box::new(sign_ins_started.clone()))?;
        registry.register(Box::new(sign_ins_completed.clone()))?;
        registry.register(Box::new(sign_ins_failed.clone()))?;
        registry.register(Box::new(upstream_seconds.clone()))?;
        for endpoint in TOKEN_ENDPOINTS {
            for outcome in TOKEN_OUTCOMES {
                token_requests.with_label_values(&[endpoint, outcome]);
            }
        }
        Ok(Self {
            registry,
            link_results,
            logins,
            token_requests,
            sign_ins_started,
            sign_ins_completed,
            sign_ins_failed,
            upstream_seconds,
            provider_status,
            outbox_messages,
            outbox_pending,
        })
    }

    /// Creates every series of each configured provider at zero, so that a rate or an alert
    /// over them works before the first sign-in.
    pub fn prepare(&self, providers: &ProviderRegistry) {
        for provider in providers.iter() {
            let id = provider.id().as_str();
            self.sign_ins_started.with_label_values(&[id]);
            self.sign_ins_completed.with_label_values(&[id]);
            for code in sign_in_error_codes() {
                self.sign_ins_failed.with_label_values(&[id, code]);
            }
            for document in Document::FETCHED {
                self.upstream_seconds
                    .with_label_values(&[id, document.endpoint()]);
            }
        }
        self.observe_providers(providers);
    }

    /// The browser was sent to the provider.
    pub fn sign_in_started(&self, provider: &str) {
        self.sign_ins_started.with_label_values(&[provider]).inc();
    }

    /// The callback succeeded.
    pub fn sign_in_completed(&self, provider: &str) {
        self.sign_ins_completed.with_label_values(&[provider]).inc();
        self.logins.with_label_values(&[provider, "success"]).inc();
    }

    /// The sign-in failed at its callback: counted by its documented error code, and in
    /// `braid_federated_logins_total` by its finer outcome.
    pub fn sign_in_failed(&self, provider: &str, outcome: &str, code: ErrorCode) {
        self.sign_ins_failed
            .with_label_values(&[provider, code.as_str()])
            .inc();
        self.logins.with_label_values(&[provider, outcome]).inc();
    }

    /// The sign-in could not start (it never reached the provider); `None`: a mistake in the
    /// app's sign-in link.
    pub fn sign_in_refused_at_start(&self, provider: &str, code: Option<ErrorCode>) {
        let label = code.map_or(INVALID_SIGN_IN_LINK, ErrorCode::as_str);
        self.sign_ins_failed
            .with_label_values(&[provider, label])
            .inc();
    }

    /// What the providers' HTTP clients report each call's duration to.
    pub fn upstream_observer(&self) -> std::sync::Arc<dyn UpstreamObserver> {
        std::sync::Arc::new(UpstreamLatency(self.upstream_seconds.clone()))
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

#[derive(Debug)]
struct UpstreamLatency(HistogramVec);

impl UpstreamObserver for UpstreamLatency {
    fn observe(&self, provider: &str, document: Document, seconds: f64) {
        self.0
            .with_label_values(&[provider, document.endpoint()])
            .observe(seconds);
    }
}

/// `GET /metrics`: with `metrics.bearer_token` set, only for `Authorization: Bearer <token>`.
pub async fn metrics(req: HttpRequest, state: web::Data<crate::state::AppState>) -> HttpResponse {
    if let Some(expected) = &state.settings.metrics.bearer_token
        && !bearer_matches(&req, expected)
    {
        let mut res = Problem::new(StatusCode::UNAUTHORIZED, "Unauthorized").response();
        res.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            header::HeaderValue::from_static("Bearer realm=\"braid-metrics\""),
        );
        return res;
    }
    state.metrics.observe_providers(&state.providers);
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(state.metrics.render())
}

fn bearer_matches(req: &HttpRequest, expected: &Secret) -> bool {
    req.headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .is_some_and(|given| {
            bool::from(
                crate::tokens::opaque::hash(given.trim())
                    .ct_eq(&crate::tokens::opaque::hash(expected.expose())),
            )
        })
}
