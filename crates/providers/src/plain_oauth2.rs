//! Plain OAuth 2.0 providers (GitHub, GitLab, Discord, Facebook): the authorization request
//! (with PKCE S256, A11), the code exchange, and the preset's profile API.

use crate::ProviderError;
use crate::authorization_code::{
    AuthorizationParams, CodeExchange, authorization_url, exchange_code,
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
) -> AuthorizationRequest {
    let url = authorization_url(
        &spec.authorize,
        &AuthorizationParams {
            client_id: &p.client_id,
            redirect_uri: &p.redirect_uri,
            scopes: &spec.scopes,
            state: &state,
            pkce_verifier: &pkce_verifier,
            nonce: None,
            form_post: false,
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
            client_secret: Some(p.client_secret(&spec.issuer)?),
            secret_in_body: spec.secret_in_body,
            redirect_uri: &p.redirect_uri,
            code: &callback.code,
            pkce_verifier: &expected.pkce_verifier,
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
    };
    Ok((spec.issuer.clone(), claims))
}
