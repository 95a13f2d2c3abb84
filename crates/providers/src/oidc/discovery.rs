//! Discovery (`/.well-known/openid-configuration` + JWKS) and its per-provider cache.
//!
//! The document is fetched lazily on first use and kept for an hour. A token signed with an
//! unknown `kid` triggers one re-discovery, at most once a minute per provider (B04), so a
//! stream of forged tokens cannot turn Braid into a fetch cannon.

use crate::ProviderError;
use crate::http_client::{HttpClient, is_allowed_url};
use crate::oidc::id_token::{VerificationKey, algorithm_name, fits, parse_algorithm};
use crate::preset_endpoints::{MetadataIssuer, OidcSpec};
use crate::status::ProviderStatus;
use crate::upstream_json::Document;
use jsonwebtoken::Algorithm;
use jsonwebtoken::jwk::{Jwk, PublicKeyUse};
use serde::Deserialize;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::Mutex;
use url::Url;

/// How long a discovery document is used before it is fetched again.
const MAX_AGE: Duration = Duration::from_secs(3600);
/// Minimum time between two re-discoveries caused by an unknown `kid`, and between two
/// attempts to refresh a stale document while the provider is unreachable.
pub(crate) const MIN_REFETCH_INTERVAL: Duration = Duration::from_secs(60);

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
    /// The algorithms an ID token may be signed with (never empty).
    pub id_token_algs: Vec<Algorithm>,
    /// `id_token_signing_alg_values_supported` as announced.
    pub declared_algs: Vec<String>,
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
    /// `id_token_alg`, when the operator pins one.
    pinned: Option<Algorithm>,
    state: Mutex<CacheState>,
    /// How the last fetch went, readable without the lock (for `/metrics`).
    status: AtomicU8,
}

fn within(at: Option<Instant>, interval: Duration) -> bool {
    at.is_some_and(|t| t.elapsed() < interval)
}

impl MetadataCache {
    pub(crate) fn new(spec: OidcSpec, pinned: Option<Algorithm>) -> Self {
        Self {
            spec,
            pinned,
            state: Mutex::new(CacheState::default()),
            status: AtomicU8::new(ProviderStatus::Unchecked as u8),
        }
    }

    pub(crate) fn status(&self) -> ProviderStatus {
        ProviderStatus::from_u8(self.status.load(Ordering::Relaxed))
    }

    async fn fetch(&self, http: &HttpClient) -> Result<Discovered, ProviderError> {
        let result = discover(&self.spec, self.pinned, http).await;
        let status = match &result {
            Ok(_) => ProviderStatus::Ready,
            Err(e) if e.is_upstream_unavailable() => ProviderStatus::Unreachable,
            Err(_) => ProviderStatus::Misconfigured,
        };
        self.status.store(status as u8, Ordering::Relaxed);
        result
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
        match self.fetch(http).await {
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
        match self.fetch(http).await {
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

async fn discover(
    spec: &OidcSpec,
    pinned: Option<Algorithm>,
    http: &HttpClient,
) -> Result<Discovered, ProviderError> {
    let document: DiscoveryDocument = fetch_json(
        &format!(
            "{}/.well-known/openid-configuration",
            spec.issuer.trim_end_matches('/')
        ),
        Document::Discovery,
        http,
    )
    .await?;
    // A10: the document must announce the issuer it was configured with, by simple string
    // comparison (Microsoft's multi-tenant endpoints announce a `{tenantid}` template).
    let acceptable = match &spec.metadata_issuer {
        MetadataIssuer::Exact(expected) => document.issuer == *expected,
        MetadataIssuer::MicrosoftTemplate { authority, .. } => {
            document.issuer == format!("{authority}/{{tenantid}}/v2.0")
        }
    };
    if !acceptable {
        return Err(ProviderError::Metadata(format!(
            "the discovery document announces the issuer {:?}, not the configured {:?}: if \
             that is the provider's real issuer, set issuer to it exactly (a trailing slash \
             counts)",
            clip(&document.issuer),
            expected_issuer(&spec.metadata_issuer),
        )));
    }
    let jwks_uri = parse_endpoint(&document.jwks_uri, "jwks_uri")?;
    let key_set: KeySet = fetch_json(jwks_uri.as_str(), Document::KeySet, http).await?;
    into_discovered(document, key_set, pinned)
}

fn expected_issuer(rule: &MetadataIssuer) -> String {
    match rule {
        MetadataIssuer::Exact(expected) => expected.clone(),
        MetadataIssuer::MicrosoftTemplate { authority, .. } => {
            format!("{authority}/{{tenantid}}/v2.0")
        }
    }
}

/// Upstream text in an operator's message: bounded, and printed with `{:?}` by the caller.
fn clip(s: &str) -> &str {
    match s.char_indices().nth(200) {
        Some((end, _)) => &s[..end],
        None => s,
    }
}

async fn fetch_json<T: serde::de::DeserializeOwned>(
    url: &str,
    document: Document,
    http: &HttpClient,
) -> Result<T, ProviderError> {
    let request = openidconnect::http::Request::builder()
        .uri(url)
        .header("accept", "application/json")
        .body(Vec::new())
        .map_err(|_| ProviderError::Config(format!("invalid {document} URL")))?;
    let response = http.execute(request, document).await?;
    if response.status() != 200 {
        return Err(ProviderError::Metadata(format!(
            "the {document} answered HTTP {} (is the issuer URL right?)",
            response.status().as_u16()
        )));
    }
    serde_json::from_slice(response.body())
        .map_err(|_| ProviderError::Metadata(format!("the {document} is not valid")))
}

/// OpenID Connect Discovery 1.0 §3: the members Braid uses. Unknown members are ignored, and
/// algorithm and method names are kept as strings, so a value Braid does not know (`ES256K`)
/// does not make the whole document unreadable.
#[derive(Debug, Deserialize)]
struct DiscoveryDocument {
    issuer: String,
    authorization_endpoint: String,
    token_endpoint: Option<String>,
    userinfo_endpoint: Option<String>,
    jwks_uri: String,
    #[serde(default)]
    id_token_signing_alg_values_supported: Vec<String>,
    token_endpoint_auth_methods_supported: Option<Vec<String>>,
    /// RFC 9207 §3.
    #[serde(default)]
    authorization_response_iss_parameter_supported: Option<serde_json::Value>,
}

#[derive(Debug, Deserialize)]
struct KeySet {
    keys: Vec<serde_json::Value>,
}

fn parse_endpoint(raw: &str, what: &str) -> Result<Url, ProviderError> {
    let url =
        Url::parse(raw).map_err(|_| ProviderError::Metadata(format!("the {what} is not a URL")))?;
    if is_allowed_url(&url) {
        Ok(url)
    } else {
        Err(ProviderError::Metadata(format!(
            "the {what} is not an https URL"
        )))
    }
}

fn into_discovered(
    document: DiscoveryDocument,
    key_set: KeySet,
    pinned: Option<Algorithm>,
) -> Result<Discovered, ProviderError> {
    let token_endpoint = document.token_endpoint.as_deref().ok_or_else(|| {
        ProviderError::Metadata("the discovery document names no token_endpoint".into())
    })?;
    let secret_in_body = document
        .token_endpoint_auth_methods_supported
        .as_ref()
        .is_some_and(|methods| {
            !methods.iter().any(|m| m == "client_secret_basic")
                && methods.iter().any(|m| m == "client_secret_post")
        });
    let id_token_algs =
        id_token_algorithms(&document.id_token_signing_alg_values_supported, pinned)?;
    let keys = signature_keys(key_set);
    if !keys
        .iter()
        .any(|k| id_token_algs.iter().any(|alg| fits(&k.jwk, *alg)))
    {
        return Err(ProviderError::Metadata(format!(
            "no key in the provider's key set (jwks_uri) can verify ID tokens signed with {}: \
             check that the provider publishes its signing keys there{}",
            names(&id_token_algs),
            if pinned.is_some() {
                ", or whether id_token_alg pins the wrong algorithm"
            } else {
                ""
            }
        )));
    }
    Ok(Discovered {
        authorization_endpoint: parse_endpoint(
            &document.authorization_endpoint,
            "authorization endpoint",
        )?,
        token_endpoint: parse_endpoint(token_endpoint, "token endpoint")?,
        userinfo_endpoint: document
            .userinfo_endpoint
            .as_deref()
            .map(|u| parse_endpoint(u, "userinfo endpoint"))
            .transpose()?,
        iss_parameter_supported: matches!(
            document.authorization_response_iss_parameter_supported,
            Some(serde_json::Value::Bool(true))
        ),
        secret_in_body,
        declared_algs: document.id_token_signing_alg_values_supported,
        id_token_algs,
        keys,
        issuer: document.issuer,
        fetched_at: Instant::now(),
    })
}

fn names(algs: &[Algorithm]) -> String {
    algs.iter()
        .map(|a| algorithm_name(*a))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The algorithms an ID token may be signed with: the operator's pin, which the provider must
/// declare, or else every asymmetric algorithm the provider declares that Braid verifies.
fn id_token_algorithms(
    declared: &[String],
    pinned: Option<Algorithm>,
) -> Result<Vec<Algorithm>, ProviderError> {
    let shown = || format!("{:?}", declared.iter().map(|d| clip(d)).collect::<Vec<_>>());
    if let Some(pin) = pinned {
        return if declared.iter().any(|d| d == algorithm_name(pin)) {
            Ok(vec![pin])
        } else {
            Err(ProviderError::Metadata(format!(
                "id_token_alg pins {}, which the provider does not declare (it declares {}): \
                 remove id_token_alg, or set it to one of those",
                algorithm_name(pin),
                shown()
            )))
        };
    }
    let usable: Vec<Algorithm> = declared.iter().filter_map(|d| parse_algorithm(d)).collect();
    if usable.is_empty() {
        return Err(ProviderError::Metadata(format!(
            "the provider declares no ID token algorithm Braid accepts (it declares {}; Braid \
             verifies RS256/384/512, PS256/384/512, ES256, ES384 and EdDSA, never none or HMAC)",
            shown()
        )));
    }
    Ok(usable)
}

/// The key set's keys that jsonwebtoken can read; encryption keys are left out.
fn signature_keys(key_set: KeySet) -> Vec<VerificationKey> {
    key_set
        .keys
        .into_iter()
        .filter_map(|value| serde_json::from_value::<Jwk>(value).ok())
        .filter(|jwk| !matches!(jwk.common.public_key_use, Some(PublicKeyUse::Encryption)))
        .map(VerificationKey::from)
        .collect()
}
