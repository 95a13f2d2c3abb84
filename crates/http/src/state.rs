use crate::clients::Clients;
use crate::flows::link_proof::{CodeKey, Delivery};
use crate::flows::link_state::CsrfKey;
use crate::limiter::Limiter;
use crate::metrics::Metrics;
use crate::outbox::Outbox;
use crate::pages::Pages;
use crate::routes::LinkPaths;
use crate::settings::Settings;
use crate::tokens::keyring::KeyRing;
use crate::tokens::sealed::Sealer;
use braid_core::linking::LinkPolicy;
use braid_providers::ProviderRegistry;
use braid_storage::Database;
use braid_storage::repo::outbox::Channel;
use std::sync::Arc;

/// Shared by every worker: created once, outside `HttpServer::new`.
pub struct AppState {
    pub db: Database,
    pub settings: Arc<Settings>,
    /// The cookie key for sessions and encrypted flow cookies; the same on every instance.
    pub session_key: Vec<u8>,
    /// Seals and opens login flow cookies (key derived from `session_key`).
    pub flow_sealer: Sealer,
    /// Seals and opens manual link cookies.
    pub link_sealer: Sealer,
    /// Seals and opens admin console cookies.
    pub admin_sealer: Sealer,
    /// Seals and opens the console's pending user sign-in (its `state` and PKCE verifier).
    pub console_sign_in_sealer: Sealer,
    /// CSRF tokens of the manual link forms and the admin console.
    pub csrf: CsrfKey,
    /// Keys the stored hashes of one-time codes.
    pub code_key: Arc<CodeKey>,
    pub link_paths: LinkPaths,
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
    /// The client's address behind `server.trusted_proxies`, for audit rows and limits.
    pub client_addrs: crate::client_addr::ClientAddrs,
    /// Email and SMS: message builders, `can_send`, and the worker's wake-up.
    pub outbox: Arc<Outbox>,
    /// Which webhooks want which events ([`crate::webhooks::enqueue`]).
    pub webhooks: crate::webhooks::Webhooks,
    /// Server-side sessions, when `sessions.enabled`.
    pub sessions: Option<crate::sessions::Sessions>,
    /// The development providers and demo app of `braid serve --dev`.
    pub dev: Option<Arc<crate::dev::DevState>>,
}

impl AppState {
    /// The channels one-time codes can go out on in this deployment.
    pub fn delivery(&self) -> Delivery {
        Delivery {
            email: self.outbox.can_send(Channel::Email),
            sms: self.outbox.can_send(Channel::Sms),
        }
    }
}
