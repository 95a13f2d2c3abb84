//! Discovery (`/.well-known/openid-configuration` + JWKS) and its per-provider cache.
//!
//! The document is fetched lazily on first use and kept for an hour. A token signed with an
//! unknown `kid` triggers one re-discovery, at most once a minute per provider (B04), so a
//! stream of forged tokens cannot turn Braid into a fetch cannon.

use crate::ProviderError;
use crate::http_client::{HttpClient, HttpError, is_allowed_url};
use crate::oidc::id_token::VerificationKey;
use crate::preset_endpoints::{MetadataIssuer, OidcSpec};
use jsonwebtoken::jwk::{Jwk, PublicKeyUse};
use openidconnect::core::{
    CoreAuthDisplay, CoreClaimName, CoreClaimType, CoreClientAuthMethod, CoreGrantType,
    CoreJsonWebKey, CoreJweContentEncryptionAlgorithm, CoreJweKeyManagementAlgorithm,
    CoreResponseMode, CoreResponseType, CoreSubjectIdentifierType,
};
use openidconnect::{
    AdditionalProviderMetadata, DiscoveryError, IssuerUrl, JsonWebKeySet, ProviderMetadata,
};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Mutex;
use url::Url;

/// How long a discovery document is used before it is fetched again.
const MAX_AGE: Duration = Duration::from_secs(3600);
/// Minimum time between two re-discoveries caused by an unknown `kid`, and between two
/// attempts to refresh a stale document while the provider is unreachable.
pub(crate) const MIN_REFETCH_INTERVAL: Duration = Duration::from_secs(60);

/// RFC 9207 §3: the one discovery field openidconnect does not model.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub(crate) struct IssParameterMetadata {
    #[serde(default)]
    authorization_response_iss_parameter_supported: Option<serde_json::Value>,
}

impl AdditionalProviderMetadata for IssParameterMetadata {}

type Metadata = ProviderMetadata<
    IssParameterMetadata,
    CoreAuthDisplay,
    CoreClientAuthMethod,
    CoreClaimName,
    CoreClaimType,
    CoreGrantType,
    CoreJweContentEncryptionAlgorithm,
    CoreJweKeyManagementAlgorithm,
    CoreJsonWebKey,
    CoreResponseMode,
    CoreResponseType,
    CoreSubjectIdentifierType,
>;

/// What Braid keeps of a discovery document and its key set.
#[derive(Debug)]
pub(crate) struct Discovered {
    /// As announced: the configured issuer, or Microsoft's `{tenantid}` template.
    pub issuer: String,
    pub authorization_endpoint: Url,
    pub token_endpoint: Url,
    pub userinfo_endpoint: Option<Url>,
    /// RFC 9207: the provider promises `iss` on every authorization response.
    pub iss_parameter_supported: bool,
    /// The provider accepts only `client_secret_post` at its token endpoint.
    pub secret_in_body: bool,
    /// Signature keys (keys marked for encryption are left out).
    pub keys: Vec<VerificationKey>,
    pub fetched_at: Instant,
}

#[derive(Default)]
struct CacheState {
    current: Option<Arc<Discovered>>,
    last_attempt: Option<Instant>,
    last_unknown_kid_refresh: Option<Instant>,
}

/// One per provider. Fetches run under the lock, so concurrent logins wait for one fetch
/// instead of starting their own.
pub(crate) struct MetadataCache {
    spec: OidcSpec,
    state: Mutex<CacheState>,
}

fn within(at: Option<Instant>, interval: Duration) -> bool {
    at.is_some_and(|t| t.elapsed() < interval)
}

impl MetadataCache {
    pub(crate) fn new(spec: OidcSpec) -> Self {
        Self {
            spec,
            state: Mutex::new(CacheState::default()),
        }
    }

    /// The cached document, fetched if there is none or it is older than an hour. While the
    /// provider is unreachable a stale copy keeps serving; a refused document (wrong issuer,
    /// A10) drops the cache so logins fail closed.
    pub(crate) async fn current(
        &self,
        http: &HttpClient,
    ) -> Result<Arc<Discovered>, ProviderError> {
        let mut state = self.state.lock().await;
        if let Some(current) = &state.current
            && (current.fetched_at.elapsed() < MAX_AGE
                || within(state.last_attempt, MIN_REFETCH_INTERVAL))
        {
            return Ok(current.clone());
        }
        state.last_attempt = Some(Instant::now());
        match discover(&self.spec, http).await {
            Ok(fresh) => {
                let fresh = Arc::new(fresh);
                state.current = Some(fresh.clone());
                Ok(fresh)
            }
            Err(e) if e.is_upstream_unavailable() && state.current.is_some() => {
                tracing::warn!(error = %e, "provider discovery failed; using the cached document");
                state.current.clone().ok_or(e)
            }
            Err(e) => {
                state.current = None;
                Err(e)
            }
        }
    }

    /// Called when a token names a `kid` that `seen` does not have. Returns a newer document
    /// (fetched now, or by a concurrent caller since `seen`), or `None` when a re-discovery for
    /// an unknown key already happened in the last minute.
    pub(crate) async fn refresh_for_unknown_key(
        &self,
        http: &HttpClient,
        seen: &Arc<Discovered>,
    ) -> Result<Option<Arc<Discovered>>, ProviderError> {
        let mut state = self.state.lock().await;
        if let Some(current) = &state.current
            && !Arc::ptr_eq(current, seen)
        {
            return Ok(Some(current.clone()));
        }
        if within(state.last_unknown_kid_refresh, MIN_REFETCH_INTERVAL) {
            return Ok(None);
        }
        let now = Instant::now();
        state.last_unknown_kid_refresh = Some(now);
        state.last_attempt = Some(now);
        match discover(&self.spec, http).await {
            Ok(fresh) => {
                let fresh = Arc::new(fresh);
                state.current = Some(fresh.clone());
                Ok(Some(fresh))
            }
            Err(e) => {
                // A refused document (A10) must not leave the old keys in use.
                if !e.is_upstream_unavailable() {
                    state.current = None;
                }
                Err(e)
            }
        }
    }
}

async fn discover(spec: &OidcSpec, http: &HttpClient) -> Result<Discovered, ProviderError> {
    let metadata = match &spec.metadata_issuer {
        // The document must announce the very URL it was fetched under: openidconnect checks
        // this by exact string comparison.
        MetadataIssuer::Exact(expected) if *expected == spec.issuer => {
            let issuer = IssuerUrl::new(spec.issuer.clone())
                .map_err(|_| ProviderError::Config("invalid issuer URL".into()))?;
            Metadata::discover_async(issuer, http)
                .await
                .map_err(discovery_error)?
        }
        // Microsoft's multi-tenant and consumer endpoints announce another issuer than the
        // URL they are served under; the rule for it is checked here, just as strictly.
        rule => {
            let metadata = fetch_metadata(spec, http).await?;
            let announced = metadata.issuer().as_str();
            let acceptable = match rule {
                MetadataIssuer::Exact(expected) => announced == expected,
                MetadataIssuer::MicrosoftTemplate { authority, .. } => {
                    announced == format!("{authority}/{{tenantid}}/v2.0")
                }
            };
            if !acceptable {
                return Err(ProviderError::Metadata(
                    "announced issuer differs from the configured one".into(),
                ));
            }
            let jwks = JsonWebKeySet::fetch_async(metadata.jwks_uri(), http)
                .await
                .map_err(discovery_error)?;
            metadata.set_jwks(jwks)
        }
    };
    into_discovered(metadata)
}

async fn fetch_metadata(spec: &OidcSpec, http: &HttpClient) -> Result<Metadata, ProviderError> {
    let url = format!(
        "{}/.well-known/openid-configuration",
        spec.issuer.trim_end_matches('/')
    );
    let request = openidconnect::http::Request::builder()
        .uri(url)
        .header("accept", "application/json")
        .body(Vec::new())
        .map_err(|_| ProviderError::Config("invalid issuer URL".into()))?;
    let response = http.execute(request).await?;
    if response.status() != 200 {
        return Err(ProviderError::Metadata(format!(
            "discovery answered {}",
            response.status().as_u16()
        )));
    }
    serde_json::from_slice(response.body())
        .map_err(|_| ProviderError::Metadata("not a valid discovery document".into()))
}

fn discovery_error(e: DiscoveryError<HttpError>) -> ProviderError {
    match e {
        DiscoveryError::Request(e) => e.into(),
        DiscoveryError::Response(status, _, _) => {
            ProviderError::Metadata(format!("discovery or JWKS answered {}", status.as_u16()))
        }
        DiscoveryError::Validation(_) => {
            ProviderError::Metadata("announced issuer differs from the configured one".into())
        }
        DiscoveryError::Parse(_) => {
            ProviderError::Metadata("not a valid discovery document or key set".into())
        }
        _ => ProviderError::Metadata("discovery failed".into()),
    }
}

fn endpoint(url: &Url, what: &str) -> Result<Url, ProviderError> {
    if is_allowed_url(url) {
        Ok(url.clone())
    } else {
        Err(ProviderError::Metadata(format!(
            "{what} is not an https URL"
        )))
    }
}

fn into_discovered(metadata: Metadata) -> Result<Discovered, ProviderError> {
    let token_endpoint = metadata
        .token_endpoint()
        .ok_or_else(|| ProviderError::Metadata("no token endpoint".into()))?;
    let auth_methods = metadata.token_endpoint_auth_methods_supported();
    let secret_in_body = auth_methods.is_some_and(|methods| {
        !methods.contains(&CoreClientAuthMethod::ClientSecretBasic)
            && methods.contains(&CoreClientAuthMethod::ClientSecretPost)
    });
    let iss_parameter_supported = matches!(
        metadata
            .additional_metadata()
            .authorization_response_iss_parameter_supported,
        Some(serde_json::Value::Bool(true))
    );
    Ok(Discovered {
        issuer: metadata.issuer().as_str().to_owned(),
        authorization_endpoint: endpoint(
            metadata.authorization_endpoint().url(),
            "authorization endpoint",
        )?,
        token_endpoint: endpoint(token_endpoint.url(), "token endpoint")?,
        userinfo_endpoint: metadata
            .userinfo_endpoint()
            .map(|u| endpoint(u.url(), "userinfo endpoint"))
            .transpose()?,
        iss_parameter_supported,
        secret_in_body,
        keys: signature_keys(metadata.jwks()),
        fetched_at: Instant::now(),
    })
}

/// The JWKS as jsonwebtoken keys; keys it cannot use, and encryption keys, are left out.
fn signature_keys(jwks: &JsonWebKeySet<CoreJsonWebKey>) -> Vec<VerificationKey> {
    jwks.keys()
        .iter()
        .filter_map(|key| serde_json::to_value(key).ok())
        .map(|mut value| {
            if let Some(object) = value.as_object_mut() {
                object.retain(|_, v| !v.is_null());
            }
            value
        })
        .filter_map(|value| serde_json::from_value::<Jwk>(value).ok())
        .filter(|jwk| !matches!(jwk.common.public_key_use, Some(PublicKeyUse::Encryption)))
        .map(VerificationKey::from)
        .collect()
}
