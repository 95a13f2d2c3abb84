//! After start-up, each enabled provider's discovery document and keys are fetched once, in
//! the background (readiness does not wait for it), so that a misconfigured provider shows in
//! the log and at `/metrics` before anyone tries to sign in with it.

use crate::state::AppState;
use braid_providers::Provider;
use std::sync::Arc;

pub fn spawn(state: Arc<AppState>) {
    tokio::spawn(async move {
        for provider in state.providers.iter().filter(|p| p.enabled()) {
            check(provider).await;
        }
    });
}

/// One line per provider: INFO when ready, WARN naming what is wrong and what to change.
pub async fn check(provider: &Provider) {
    match provider.check().await {
        Ok(()) => tracing::info!(provider = %provider.id(), "provider ready"),
        Err(e) if e.is_upstream_unavailable() => tracing::warn!(
            provider = %provider.id(),
            error = %e,
            "provider cannot be reached; sign-ins with it fail until it can"
        ),
        Err(e) => tracing::warn!(
            provider = %provider.id(),
            problem = %e,
            "provider is misconfigured; sign-ins with it fail until this is changed"
        ),
    }
}
