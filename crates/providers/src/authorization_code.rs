//! The two halves of the authorization code grant shared by every provider: the URL that
//! sends the browser upstream, and the code-for-tokens exchange (oauth2 5, through Braid's
//! [`HttpClient`]).

use crate::ProviderError;
use crate::flow_secrets::pkce_s256_challenge;
use crate::http_client::{HttpClient, HttpError};
use crate::upstream_json::Document;
use braid_core::Secret;
use oauth2::basic::{
    BasicErrorResponse, BasicRevocationErrorResponse, BasicTokenIntrospectionResponse,
    BasicTokenType,
};
use oauth2::{
    AuthType, AuthUrl, AuthorizationCode, ClientId, ClientSecret, EndpointNotSet, EndpointSet,
    ExtraTokenFields, PkceCodeVerifier, RedirectUrl, RequestTokenError, StandardRevocableToken,
    StandardTokenResponse, TokenResponse, TokenUrl,
};
use serde::{Deserialize, Serialize};
use url::Url;

/// Everything Braid sends in an authorization request; nothing a caller supplies is added
/// (SECURITY-CASES A21: no `login_hint`, `prompt`, `hd` or `redirect_uri` from the browser).
pub(crate) struct AuthorizationParams<'a> {
    pub client_id: &'a str,
    pub redirect_uri: &'a str,
    pub scopes: &'a [String],
    pub scope_separator: &'a str,
    pub state: &'a str,
    /// `None` only for a generic provider configured with `pkce = false`.
    pub pkce_verifier: Option<&'a str>,
    /// The operator's fixed `authorization_params` (never one of [`AUTHORIZATION_PARAMS`]).
    pub extra: &'a [(String, String)],
    /// OpenID Connect only.
    pub nonce: Option<&'a str>,
    /// Apple: `response_mode=form_post`.
    pub form_post: bool,
}

/// The names of every parameter Braid may put on an authorization URL.
pub(crate) const AUTHORIZATION_PARAMS: [&str; 9] = [
    "response_type",
    "client_id",
    "redirect_uri",
    "scope",
    "state",
    "code_challenge",
    "code_challenge_method",
    "nonce",
    "response_mode",
];

/// The operator's fixed parameters, then those forwarded from the sign-in start.
pub(crate) fn with_forwarded(
    fixed: &[(String, String)],
    forwarded: &[(String, String)],
) -> Vec<(String, String)> {
    fixed.iter().chain(forwarded).cloned().collect()
}

pub(crate) fn authorization_url(endpoint: &Url, p: &AuthorizationParams<'_>) -> Url {
    let mut url = endpoint.clone();
    // An endpoint that already carries parameters of ours could smuggle a second value.
    let kept: Vec<(String, String)> = url
        .query_pairs()
        .filter(|(k, _)| !AUTHORIZATION_PARAMS.contains(&k.as_ref()))
        .filter(|(k, _)| !p.extra.iter().any(|(name, _)| name == k))
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    url.set_query(None);
    {
        let mut q = url.query_pairs_mut();
        q.extend_pairs(kept);
        q.extend_pairs(
            p.extra
                .iter()
                .filter(|(k, _)| !AUTHORIZATION_PARAMS.contains(&k.as_str())),
        );
        q.append_pair("response_type", "code")
            .append_pair("client_id", p.client_id)
            .append_pair("redirect_uri", p.redirect_uri)
            .append_pair("scope", &p.scopes.join(p.scope_separator))
            .append_pair("state", p.state);
        if let Some(verifier) = p.pkce_verifier {
            q.append_pair("code_challenge", &pkce_s256_challenge(verifier))
                .append_pair("code_challenge_method", "S256");
        }
        if let Some(nonce) = p.nonce {
            q.append_pair("nonce", nonce);
        }
        if p.form_post {
            q.append_pair("response_mode", "form_post");
        }
    }
    url
}

/// The `id_token` member of a token response, kept as the raw string: Braid validates it
/// itself ([`crate::oidc::id_token`]).
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub(crate) struct IdTokenField {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    id_token: Option<String>,
}

impl ExtraTokenFields for IdTokenField {}

type UpstreamTokenResponse = StandardTokenResponse<IdTokenField, BasicTokenType>;

type UpstreamClient = oauth2::Client<
    BasicErrorResponse,
    UpstreamTokenResponse,
    BasicTokenIntrospectionResponse,
    StandardRevocableToken,
    BasicRevocationErrorResponse,
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointSet,
>;

/// What the token endpoint gave back.
pub(crate) struct Tokens {
    pub access_token: String,
    pub id_token: Option<String>,
}

pub(crate) struct CodeExchange<'a> {
    pub authorization_endpoint: &'a Url,
    pub token_endpoint: &'a Url,
    pub client_id: &'a str,
    pub client_secret: Option<Secret>,
    pub secret_in_body: bool,
    pub redirect_uri: &'a str,
    pub code: &'a str,
    pub pkce_verifier: Option<&'a str>,
}

/// Redeems the code with the PKCE verifier. Only a Bearer token is accepted (B20).
pub(crate) async fn exchange_code(
    http: &HttpClient,
    x: CodeExchange<'_>,
) -> Result<Tokens, ProviderError> {
    let bad_config = |_| ProviderError::Config("invalid endpoint URL".into());
    let mut client: UpstreamClient = oauth2::Client::new(ClientId::new(x.client_id.to_owned()))
        .set_auth_uri(AuthUrl::from_url(x.authorization_endpoint.clone()))
        .set_token_uri(TokenUrl::from_url(x.token_endpoint.clone()))
        .set_redirect_uri(RedirectUrl::new(x.redirect_uri.to_owned()).map_err(bad_config)?)
        .set_auth_type(if x.secret_in_body {
            AuthType::RequestBody
        } else {
            AuthType::BasicAuth
        });
    if let Some(secret) = x.client_secret {
        client = client.set_client_secret(ClientSecret::new(secret.expose().to_owned()));
    }
    let mut request = client.exchange_code(AuthorizationCode::new(x.code.to_owned()));
    if let Some(verifier) = x.pkce_verifier {
        request = request.set_pkce_verifier(PkceCodeVerifier::new(verifier.to_owned()));
    }
    let response = request
        .request_async(&http.reading(Document::TokenResponse))
        .await
        .map_err(token_error)?;
    if *response.token_type() != BasicTokenType::Bearer {
        return Err(ProviderError::TokenResponse("token_type is not Bearer"));
    }
    Ok(Tokens {
        access_token: response.access_token().secret().clone(),
        id_token: response.extra_fields().id_token.clone(),
    })
}

/// Keeps only the OAuth error code, and only if it looks like one: the description and any
/// body are upstream-controlled text.
fn token_error(e: RequestTokenError<HttpError, BasicErrorResponse>) -> ProviderError {
    match e {
        RequestTokenError::ServerResponse(r) => {
            let code = r.error().as_ref();
            let safe = !code.is_empty()
                && code.len() <= 64
                && code.bytes().all(|b| b.is_ascii_lowercase() || b == b'_');
            ProviderError::TokenRefused(if safe {
                code.to_owned()
            } else {
                "error".to_owned()
            })
        }
        RequestTokenError::Request(e) => e.into(),
        RequestTokenError::Parse(_, _) | RequestTokenError::Other(_) => {
            ProviderError::TokenResponse("not a valid token response")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a21_the_url_carries_only_braids_parameters() {
        let endpoint = Url::parse(
            "https://idp.example/auth?tenant=x&login_hint=victim&redirect_uri=https://evil",
        )
        .unwrap();
        let scopes = vec!["openid".to_owned(), "email".to_owned()];
        let url = authorization_url(
            &endpoint,
            &AuthorizationParams {
                client_id: "braid",
                redirect_uri: "https://braid.example/auth/connect/corp/callback",
                scopes: &scopes,
                scope_separator: " ",
                state: "s",
                pkce_verifier: Some("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
                extra: &[],
                nonce: Some("n"),
                form_post: false,
            },
        );
        let pairs: Vec<(String, String)> = url.query_pairs().into_owned().collect();
        let get = |k: &str| {
            pairs
                .iter()
                .filter(|(n, _)| n == k)
                .map(|(_, v)| v.as_str())
                .collect::<Vec<_>>()
        };
        assert_eq!(
            get("redirect_uri"),
            ["https://braid.example/auth/connect/corp/callback"]
        );
        assert_eq!(
            get("code_challenge"),
            ["E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"]
        );
        assert_eq!(get("code_challenge_method"), ["S256"]);
        assert_eq!(get("scope"), ["openid email"]);
        // The endpoint's own parameters stay, but never a second value for one of ours.
        assert_eq!(get("tenant"), ["x"]);
        assert_eq!(get("response_mode"), Vec::<&str>::new());
    }
}
