use crate::clients::Clients;
use crate::limiter::Limiter;
use crate::metrics::Metrics;
use crate::outbox::Outbox;
use crate::pages::Pages;
use crate::settings::Settings;
use crate::tokens::keyring::KeyRing;
use crate::tokens::sealed::Sealer;
use braid_core::linking::LinkPolicy;
use braid_providers::ProviderRegistry;
use braid_storage::Database;
use std::sync::Arc;

/// Shared by every worker: created once, outside `HttpServer::new`.
pub struct AppState {
    pub db: Database,
    pub settings: Arc<Settings>,
    /// The cookie key for sessions and encrypted flow cookies; the same on every instance.
    pub session_key: Vec<u8>,
    /// Seals and opens login flow cookies (key derived from `session_key`).
    pub flow_sealer: Sealer,
    pub keys: KeyRing,
    pub providers: ProviderRegistry,
    pub clients: Clients,
    pub pages: Pages,
    pub metrics: Metrics,
    /// `iss` of tokens and of redirects to apps.
    pub issuer: String,
    pub cookie_secure: bool,
    pub link_policy: LinkPolicy,
    /// Password-guessing limits shared through the database.
    pub limiter: Limiter,
    /// Email and SMS: message builders, `can_send`, and the worker's wake-up.
    pub outbox: Arc<Outbox>,
}
