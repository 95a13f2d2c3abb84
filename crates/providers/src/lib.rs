//! Upstream identity providers: what an operator configures for each, the presets that fill in
//! the rest, the OAuth 2.0 / OpenID Connect login against them, and the trust rules that decide
//! which claims count as verified.
//!
//! The HTTP layer builds a [`ProviderRegistry`] once, asks a [`Provider`] for an
//! [`AuthorizationRequest`] to send the browser upstream, stores its secrets as flow state, and
//! on the callback (after checking `state`) calls [`Provider::complete`] to get a
//! [`braid_core::FederatedIdentity`].

mod apple_client_secret;
mod authorization_code;
pub mod catalogue;
mod claim_mapping;
pub mod error;
mod flow_secrets;
pub mod http_client;
pub mod login_flow;
mod oidc;
mod plain_oauth2;
pub mod preset;
mod preset_endpoints;
pub mod profile_mapping;
pub mod provider;
pub mod registry;
mod self_hosted;
pub mod settings;
pub mod status;
#[cfg(feature = "testing")]
pub mod testing;
pub mod upstream_json;

pub use error::{IdTokenError, ProviderError};
pub use http_client::{HttpClient, HttpLimits, UpstreamObserver};
pub use login_flow::{AuthorizationRequest, CallbackParams, ExpectedFlow};
pub use preset::Preset;
pub use provider::{MatchedClaims, Provider};
pub use registry::{ProviderRegistry, RegistryOptions, callback_url};
pub use settings::{ProviderSettings, ResponseMode, TokenAuthMethod};
pub use status::ProviderStatus;
pub use upstream_json::Document;
