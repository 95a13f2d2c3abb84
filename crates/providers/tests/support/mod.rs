//! Shared helpers: a registry around one provider, and a login played against a FakeIdp.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use braid_core::FederatedIdentity;
use braid_providers::testing::{FakeIdp, LoginScript};
use braid_providers::{
    CallbackParams, Provider, ProviderError, ProviderRegistry, ProviderSettings,
};
use std::collections::BTreeMap;
use std::sync::Arc;

pub const CALLBACK_BASE: &str = "https://braid.example";

pub fn provider(id: &str, settings: ProviderSettings) -> Arc<Provider> {
    let all = BTreeMap::from([(id.to_owned(), settings)]);
    ProviderRegistry::new(&all, CALLBACK_BASE)
        .expect("registry")
        .get(id)
        .expect("provider")
}

pub fn oidc_provider(idp: &FakeIdp) -> Arc<Provider> {
    provider("corp", idp.provider_settings())
}

/// Authorization request, the browser's trip through `/authorize`, and completion.
pub async fn login(idp: &FakeIdp, p: &Provider) -> Result<FederatedIdentity, ProviderError> {
    let request = p
        .authorization_request()
        .await
        .expect("authorization request");
    let redirect = idp.authorize(&request.url).await;
    assert_eq!(redirect.state.as_deref(), Some(request.state.as_str()));
    p.complete(redirect.callback_params(), &request.expected_flow())
        .await
}

pub async fn login_with(
    idp: &FakeIdp,
    p: &Provider,
    script: LoginScript,
) -> Result<FederatedIdentity, ProviderError> {
    idp.script_next_login(script);
    login(idp, p).await
}

/// A plain OAuth 2.0 login against wiremock doubles: the provider's own request, then a
/// callback with the code `the-code` (the token endpoint double expects it).
pub async fn login_with_the_code(p: &Provider) -> Result<FederatedIdentity, ProviderError> {
    let request = p
        .authorization_request()
        .await
        .expect("authorization request");
    let callback = CallbackParams {
        code: "the-code".into(),
        iss: None,
    };
    p.complete(callback, &request.expected_flow()).await
}

pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}
