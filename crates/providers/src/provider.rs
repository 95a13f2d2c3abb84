//! One configured upstream provider: its settings as Braid uses them, and the two steps of a
//! login (send the browser upstream, complete the callback).

use crate::apple_client_secret::AppleSigningKey;
use crate::claim_mapping::{MappedClaims, Trust};
use crate::flow_secrets::{is_valid_pkce_verifier, random_token};
use crate::http_client::HttpClient;
use crate::login_flow::{AuthorizationRequest, CallbackParams, ExpectedFlow};
use crate::oidc::discovery::MetadataCache;
use crate::oidc::id_token::{ExpectedIssuer, parse_algorithm};
use crate::preset_endpoints::{MetadataIssuer, OAuth2Spec, OidcSpec, Protocol, protocol_for};
use crate::status::ProviderStatus;
use crate::{Preset, ProviderError, ProviderSettings, oidc, plain_oauth2};
use braid_core::{FederatedIdentity, ProviderId, Secret};

/// Authorization codes longer than this are refused without calling upstream.
const MAX_CODE_LEN: usize = 2048;
/// A forwarded parameter (`login_hint`) longer than this is not forwarded.
const MAX_FORWARDED_LEN: usize = 256;

/// How Braid authenticates at the token endpoint.
#[derive(Debug)]
pub(crate) enum ClientCredential {
    Secret(Secret),
    /// Apple: an ES256 JWT signed per request.
    AppleKey(AppleSigningKey),
    /// A public client (`token_endpoint_auth_method = "none"`).
    None,
}

pub(crate) enum Upstream {
    Oidc(OidcUpstream),
    OAuth2(OAuth2Spec),
}

pub(crate) struct OidcUpstream {
    pub spec: OidcSpec,
    pub cache: MetadataCache,
    pub id_token_issuer: ExpectedIssuer,
}

/// Which claims account linking compares (`account_linking.match_by`): UserInfo is asked for
/// those the ID token leaves out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MatchedClaims {
    pub email: bool,
    pub phone: bool,
}

impl Default for MatchedClaims {
    fn default() -> Self {
        Self {
            email: true,
            phone: true,
        }
    }
}

pub struct Provider {
    pub(crate) id: ProviderId,
    pub(crate) display_name: String,
    pub(crate) preset: Preset,
    pub(crate) enabled: bool,
    pub(crate) link_only: bool,
    pub(crate) redirect_uri: String,
    pub(crate) client_id: String,
    pub(crate) credential: ClientCredential,
    pub(crate) trust: Trust,
    pub(crate) matched: MatchedClaims,
    /// Parameters of the sign-in start that may go upstream (`forward_params`).
    pub(crate) forward_params: Vec<String>,
    pub(crate) http: HttpClient,
    pub(crate) upstream: Upstream,
}

impl std::fmt::Debug for Provider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Provider")
            .field("id", &self.id)
            .field("preset", &self.preset)
            .field("enabled", &self.enabled)
            .finish_non_exhaustive()
    }
}

fn credential(settings: &ProviderSettings) -> Result<ClientCredential, ProviderError> {
    if settings.is_public_client() {
        return Ok(ClientCredential::None);
    }
    if let Some(key) = AppleSigningKey::from_settings(settings)? {
        return Ok(ClientCredential::AppleKey(key));
    }
    if let Some(secret) = settings.client_secret.as_ref().filter(|s| !s.is_empty()) {
        return Ok(ClientCredential::Secret(secret.clone()));
    }
    match &settings.client_secret_file {
        Some(path) => {
            let raw = std::fs::read_to_string(path).map_err(|e| {
                ProviderError::Config(format!(
                    "client_secret_file: cannot read {}: {}",
                    path.display(),
                    e.kind()
                ))
            })?;
            Ok(ClientCredential::Secret(Secret::new(
                raw.trim_end_matches(['\n', '\r']),
            )))
        }
        None => Err(ProviderError::Config("missing client secret".into())),
    }
}

impl Provider {
    /// Builds a provider from settings already checked with [`ProviderSettings::problems`].
    pub(crate) fn new(
        id: ProviderId,
        settings: &ProviderSettings,
        redirect_uri: String,
        http: HttpClient,
        matched: MatchedClaims,
    ) -> Result<Self, ProviderError> {
        let preset = settings.preset;
        let resolved = settings.resolved();
        let settings = resolved.as_ref();
        let upstream = match protocol_for(settings)? {
            Protocol::Oidc(spec) => {
                let pinned = settings
                    .id_token_alg
                    .as_deref()
                    .map(|name| {
                        parse_algorithm(name).ok_or_else(|| {
                            ProviderError::Config(format!("unsupported id_token_alg {name}"))
                        })
                    })
                    .transpose()?;
                let id_token_issuer = match &spec.metadata_issuer {
                    // The real Google documents two forms of its issuer.
                    MetadataIssuer::Exact(_)
                        if settings.preset == Preset::Google
                            && settings.upstream_base_url.is_none() =>
                    {
                        ExpectedIssuer::Google
                    }
                    MetadataIssuer::Exact(issuer) => ExpectedIssuer::Exact(issuer.clone()),
                    MetadataIssuer::MicrosoftTemplate { authority, tenant } => {
                        ExpectedIssuer::MicrosoftTenant {
                            authority: authority.clone(),
                            tenant: *tenant,
                        }
                    }
                };
                Upstream::Oidc(OidcUpstream {
                    cache: MetadataCache::new(spec.clone(), pinned),
                    spec,
                    id_token_issuer,
                })
            }
            Protocol::OAuth2(spec) => Upstream::OAuth2(*spec),
        };
        Ok(Self {
            display_name: settings
                .display_name
                .clone()
                .unwrap_or_else(|| default_display_name(preset, &id)),
            id,
            preset,
            enabled: settings.enabled,
            link_only: settings.link_only,
            redirect_uri,
            client_id: settings.client_id.clone(),
            credential: credential(settings)?,
            trust: Trust {
                email: settings.trust_email(),
                phone: settings.trust_phone(),
            },
            matched,
            forward_params: settings.forward_params.clone(),
            http,
            upstream,
        })
    }

    pub fn id(&self) -> &ProviderId {
        &self.id
    }

    pub fn display_name(&self) -> &str {
        &self.display_name
    }

    pub fn preset(&self) -> Preset {
        self.preset
    }

    pub fn enabled(&self) -> bool {
        self.enabled
    }

    pub fn link_only(&self) -> bool {
        self.link_only
    }

    /// Apple (and any provider configured with `response_mode = "form_post"`) posts its
    /// callback.
    pub fn uses_form_post(&self) -> bool {
        match &self.upstream {
            Upstream::Oidc(o) => o.spec.form_post,
            Upstream::OAuth2(spec) => spec.options.form_post,
        }
    }

    /// `{callback_base}/auth/connect/{id}/callback`.
    pub fn redirect_uri(&self) -> &str {
        &self.redirect_uri
    }

    /// Everything needed to send the browser upstream: fresh `state`, `nonce` (OpenID
    /// Connect) and PKCE S256 verifier, and the issuer the request goes to. Nothing from the
    /// caller's request is forwarded (A21). OpenID Connect providers are discovered here on
    /// first use.
    pub async fn authorization_request(&self) -> Result<AuthorizationRequest, ProviderError> {
        self.request_upstream(&[]).await
    }

    /// As [`Provider::authorization_request`], plus the parameters of the sign-in start that
    /// the operator allow-listed (`forward_params`, e.g. `login_hint`); `start_param` looks one
    /// up by name. A value that is empty, longer than 256 bytes or has control characters is
    /// left out.
    pub async fn authorization_request_forwarding<'a>(
        &self,
        start_param: impl Fn(&str) -> Option<&'a str>,
    ) -> Result<AuthorizationRequest, ProviderError> {
        let forwarded: Vec<(String, String)> = self
            .forward_params
            .iter()
            .filter_map(|name| {
                start_param(name)
                    .filter(|v| !v.is_empty() && v.len() <= MAX_FORWARDED_LEN)
                    .filter(|v| !v.chars().any(char::is_control))
                    .map(|v| (name.clone(), v.to_owned()))
            })
            .collect();
        self.request_upstream(&forwarded).await
    }

    async fn request_upstream(
        &self,
        forwarded: &[(String, String)],
    ) -> Result<AuthorizationRequest, ProviderError> {
        if !self.enabled {
            return Err(ProviderError::Disabled(self.id.clone()));
        }
        let state = random_token()?;
        let pkce_verifier = random_token()?;
        match &self.upstream {
            Upstream::Oidc(o) => {
                oidc::flow::authorization_request(self, o, state, pkce_verifier, forwarded)
                    .await
                    .map_err(|e| self.noted(e))
            }
            Upstream::OAuth2(spec) => Ok(plain_oauth2::authorization_request(
                self,
                spec,
                state,
                pkce_verifier,
                forwarded,
            )),
        }
    }

    /// How the provider stands as far as Braid last found out.
    pub fn status(&self) -> ProviderStatus {
        if !self.enabled {
            return ProviderStatus::Disabled;
        }
        match &self.upstream {
            Upstream::Oidc(o) => o.cache.status(),
            // Fixed endpoints, already checked when the settings were read.
            Upstream::OAuth2(_) => ProviderStatus::Ready,
        }
    }

    /// Fetches what the provider publishes (discovery document and keys) unless a fresh copy
    /// is cached, so that a misconfiguration shows before a person meets it. Plain OAuth 2.0
    /// providers publish nothing to check.
    pub async fn check(&self) -> Result<(), ProviderError> {
        match &self.upstream {
            Upstream::Oidc(o) => o
                .cache
                .current(&self.http)
                .await
                .map(|_| ())
                .map_err(|e| self.noted(e)),
            Upstream::OAuth2(_) => Ok(()),
        }
    }

    /// A document refused for a repeated member name is worth the operator's attention
    /// whatever the caller does with the error: a provider, or something between it and
    /// Braid, sends JSON that parsers read in different ways.
    fn noted(&self, e: ProviderError) -> ProviderError {
        if let Some(document) = e.duplicate_member_in() {
            tracing::warn!(
                provider = %self.id,
                document = document.as_str(),
                "refused a JSON document from the provider: an object in it names a member twice (RFC 7493 §2.3)"
            );
        }
        e
    }

    /// Completes a login whose `state` the caller has already checked: RFC 9207 `iss`, code
    /// exchange with the PKCE verifier, ID token validation, UserInfo or profile API where the
    /// preset needs it, and the trust rules. Nothing is retried.
    pub async fn complete(
        &self,
        callback: CallbackParams,
        expected: &ExpectedFlow,
    ) -> Result<FederatedIdentity, ProviderError> {
        if !self.enabled {
            return Err(ProviderError::Disabled(self.id.clone()));
        }
        if !is_valid_pkce_verifier(&expected.pkce_verifier) {
            return Err(ProviderError::FlowMismatch("PKCE verifier"));
        }
        if callback.code.is_empty() || callback.code.len() > MAX_CODE_LEN {
            return Err(ProviderError::InvalidCallback("authorization code"));
        }
        let (issuer, claims) = match &self.upstream {
            Upstream::Oidc(o) => oidc::flow::complete(self, o, &callback, expected).await,
            Upstream::OAuth2(spec) => plain_oauth2::complete(self, spec, &callback, expected).await,
        }
        .map_err(|e| self.noted(e))?;
        let MappedClaims {
            subject,
            emails,
            phones,
            profile,
        } = claims;
        Ok(FederatedIdentity {
            provider: self.id.clone(),
            issuer,
            subject,
            emails,
            phones,
            profile,
        })
    }

    /// The secret for one token request (Apple's is signed now, for `audience`).
    pub(crate) fn client_secret(&self, audience: &str) -> Result<Secret, ProviderError> {
        match &self.credential {
            ClientCredential::Secret(s) => Ok(s.clone()),
            ClientCredential::AppleKey(key) => {
                key.client_secret(&self.client_id, audience, unix_now())
            }
            ClientCredential::None => Err(ProviderError::Config(
                "a public client has no secret".into(),
            )),
        }
    }
}

fn default_display_name(preset: Preset, id: &ProviderId) -> String {
    match preset {
        Preset::Google => "Google",
        Preset::Microsoft => "Microsoft",
        Preset::Apple => "Apple",
        Preset::Github => "GitHub",
        Preset::Gitlab => "GitLab",
        Preset::Discord => "Discord",
        Preset::Facebook => "Facebook",
        Preset::Oidc | Preset::Oauth2 => return id.to_string(),
        Preset::Catalogued(_) => match preset.entry() {
            Some(entry) => entry.display_name.as_str(),
            None => return id.to_string(),
        },
    }
    .to_owned()
}

/// RFC 9207 §2.4: an `iss` that is present must be the issuer the request went to (simple
/// string comparison); when the provider promises `iss`, a missing one is refused too.
pub(crate) fn check_response_issuer(
    received: Option<&str>,
    expected: &str,
    required: bool,
) -> Result<(), ProviderError> {
    match received {
        Some(iss) if iss == expected => Ok(()),
        Some(_) => Err(ProviderError::IssuerMismatch(
            "not the issuer the request was sent to",
        )),
        None if required => Err(ProviderError::IssuerMismatch(
            "missing although the provider promises it",
        )),
        None => Ok(()),
    }
}

pub(crate) fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a07_a08_response_issuer_rules() {
        let idp = "https://idp.example";
        assert!(check_response_issuer(Some(idp), idp, true).is_ok());
        assert!(check_response_issuer(None, idp, false).is_ok());
        assert!(check_response_issuer(Some("https://attacker.example"), idp, false).is_err());
        assert!(check_response_issuer(Some("https://idp.example/"), idp, false).is_err());
        assert!(check_response_issuer(None, idp, true).is_err());
    }
}
