//! Plain OAuth 2.0 providers (GitHub, GitLab, Discord, Facebook, and any other through
//! `preset = "oauth2"`): the authorization request (with PKCE S256, A11), the code exchange,
//! and the preset's profile API or the configured profile URLs and mapping.

use crate::ProviderError;
use crate::authorization_code::{
    AuthorizationParams, CodeExchange, authorization_url, exchange_code, with_forwarded,
};
use crate::claim_mapping::{
    MappedClaims, discord_claims, facebook_claims, github_claims, gitlab_claims,
};
use crate::login_flow::{AuthorizationRequest, CallbackParams, ExpectedFlow};
use crate::preset_endpoints::{OAuth2Spec, ProfileApi};
use crate::provider::{Provider, check_response_issuer};
use crate::upstream_json::Document;

const JSON: &str = "application/json";
const GITHUB_JSON: &str = "application/vnd.github+json";
const GITHUB_HEADERS: [(&str, &str); 1] = [("x-github-api-version", "2022-11-28")];
const PROFILE: Document = Document::ProfileApi;

pub(crate) fn authorization_request(
    p: &Provider,
    spec: &OAuth2Spec,
    state: String,
    pkce_verifier: String,
    forwarded: &[(String, String)],
) -> AuthorizationRequest {
    let extra = with_forwarded(&spec.options.extra_params, forwarded);
    let url = authorization_url(
        &spec.authorize,
        &AuthorizationParams {
            client_id: &p.client_id,
            redirect_uri: &p.redirect_uri,
            scopes: &spec.scopes,
            scope_separator: &spec.options.scope_separator,
            state: &state,
            pkce_verifier: spec.options.pkce.then_some(pkce_verifier.as_str()),
            extra: &extra,
            nonce: None,
            form_post: spec.options.form_post,
        },
    );
    AuthorizationRequest {
        url,
        state,
        nonce: None,
        pkce_verifier,
        issuer: spec.issuer.clone(),
    }
}

pub(crate) async fn complete(
    p: &Provider,
    spec: &OAuth2Spec,
    callback: &CallbackParams,
    expected: &ExpectedFlow,
) -> Result<(String, MappedClaims), ProviderError> {
    if expected.issuer != spec.issuer {
        return Err(ProviderError::FlowMismatch("started with another issuer"));
    }
    // These providers do not promise RFC 9207 `iss`; distinct redirect URIs per provider are
    // the mix-up defence. An `iss` that is sent must still be right.
    check_response_issuer(callback.iss.as_deref(), &spec.issuer, false)?;
    let tokens = exchange_code(
        &p.http,
        CodeExchange {
            authorization_endpoint: &spec.authorize,
            token_endpoint: &spec.token,
            client_id: &p.client_id,
            client_secret: match spec.options.public_client {
                true => None,
                false => Some(p.client_secret(&spec.issuer)?),
            },
            secret_in_body: spec.options.secret_in_body,
            redirect_uri: &p.redirect_uri,
            code: &callback.code,
            pkce_verifier: spec.options.pkce.then_some(expected.pkce_verifier.as_str()),
        },
    )
    .await?;
    let token = tokens.access_token.as_str();
    let http = &p.http;
    let claims = match &spec.api {
        ProfileApi::Github { user, emails } => {
            let user = http
                .get_json(user, token, GITHUB_JSON, &GITHUB_HEADERS, PROFILE)
                .await?;
            // Without the `user:email` grant the list is refused: no verified address then.
            let emails = match http
                .get_json(emails, token, GITHUB_JSON, &GITHUB_HEADERS, PROFILE)
                .await
            {
                Ok(list) => Some(list),
                Err(ProviderError::UpstreamStatus(_)) => None,
                Err(e) => return Err(e),
            };
            github_claims(p.trust, &user, emails.as_ref())?
        }
        ProfileApi::Gitlab { user } => gitlab_claims(
            p.trust,
            &http.get_json(user, token, JSON, &[], PROFILE).await?,
        )?,
        ProfileApi::Discord { me } => discord_claims(
            p.trust,
            &http.get_json(me, token, JSON, &[], PROFILE).await?,
        )?,
        ProfileApi::Facebook { me } => facebook_claims(
            p.trust,
            &http.get_json(me, token, JSON, &[], PROFILE).await?,
        )?,
        ProfileApi::Mapped { urls, mapping } => {
            mapping.apply(p.trust, &mapped_profile(http, urls, token).await?)?
        }
    };
    Ok((spec.issuer.clone(), claims))
}

/// One profile URL: its answer. Several: the array of their answers, in order. Only the first
/// must answer; a later one that refuses (e.g. a list the granted scopes do not cover) is
/// `null`, so the claims in it are simply absent.
async fn mapped_profile(
    http: &crate::HttpClient,
    urls: &[url::Url],
    token: &str,
) -> Result<serde_json::Value, ProviderError> {
    let mut answers = Vec::with_capacity(urls.len());
    for (i, url) in urls.iter().enumerate() {
        match http.get_json(url, token, JSON, &[], PROFILE).await {
            Ok(doc) => answers.push(doc),
            Err(ProviderError::UpstreamStatus(status)) if i > 0 && status < 500 => {
                answers.push(serde_json::Value::Null)
            }
            Err(e) => return Err(e),
        }
    }
    Ok(match <[serde_json::Value; 1]>::try_from(answers) {
        Ok([only]) => only,
        Err(all) => serde_json::Value::Array(all),
    })
}
