//! The OpenID Connect login: authorization request with nonce and PKCE, then RFC 9207 check,
//! code exchange, ID token validation (with one rate-limited key refresh for an unknown
//! `kid`), UserInfo where the preset uses it, and claim mapping.

use crate::ProviderError;
use crate::authorization_code::{
    AuthorizationParams, CodeExchange, authorization_url, exchange_code,
};
use crate::claim_mapping::{MappedClaims, oidc_claims};
use crate::error::IdTokenError;
use crate::flow_secrets::random_token;
use crate::login_flow::{AuthorizationRequest, CallbackParams, ExpectedFlow};
use crate::oidc::discovery::Discovered;
use crate::oidc::id_token::{Expectations, UnverifiedJwt, validate_claims};
use crate::oidc::userinfo::fetch_userinfo;
use crate::provider::{OidcUpstream, Provider, check_response_issuer, unix_now};
use std::sync::Arc;

pub(crate) async fn authorization_request(
    p: &Provider,
    o: &OidcUpstream,
    state: String,
    pkce_verifier: String,
) -> Result<AuthorizationRequest, ProviderError> {
    let discovered = o.cache.current(&p.http).await?;
    let nonce = random_token()?;
    let url = authorization_url(
        &discovered.authorization_endpoint,
        &AuthorizationParams {
            client_id: &p.client_id,
            redirect_uri: &p.redirect_uri,
            scopes: &o.spec.scopes,
            state: &state,
            pkce_verifier: &pkce_verifier,
            nonce: Some(&nonce),
            form_post: o.spec.form_post,
        },
    );
    Ok(AuthorizationRequest {
        url,
        state,
        nonce: Some(nonce),
        pkce_verifier,
        issuer: discovered.issuer.clone(),
    })
}

pub(crate) async fn complete(
    p: &Provider,
    o: &OidcUpstream,
    callback: &CallbackParams,
    expected: &ExpectedFlow,
) -> Result<(String, MappedClaims), ProviderError> {
    let discovered = o.cache.current(&p.http).await?;
    if expected.issuer != discovered.issuer {
        return Err(ProviderError::FlowMismatch("started with another issuer"));
    }
    // Mix-up defence before anything is sent anywhere (A07, A08).
    check_response_issuer(
        callback.iss.as_deref(),
        &expected.issuer,
        discovered.iss_parameter_supported,
    )?;
    let nonce = expected
        .nonce
        .as_deref()
        .filter(|n| !n.is_empty())
        .ok_or(ProviderError::FlowMismatch("no nonce"))?;

    let tokens = exchange_code(
        &p.http,
        CodeExchange {
            authorization_endpoint: &discovered.authorization_endpoint,
            token_endpoint: &discovered.token_endpoint,
            client_id: &p.client_id,
            client_secret: Some(p.client_secret(&o.spec.issuer)?),
            secret_in_body: discovered.secret_in_body,
            redirect_uri: &p.redirect_uri,
            code: &callback.code,
            pkce_verifier: &expected.pkce_verifier,
        },
    )
    .await?;
    let raw = tokens
        .id_token
        .as_deref()
        .ok_or(ProviderError::TokenResponse("no id_token"))?;

    let jwt = UnverifiedJwt::parse(raw)?;
    let discovered = verify_signature(p, o, &jwt, discovered).await?;
    let validated = validate_claims(
        jwt.claims(),
        &Expectations {
            issuer: &o.id_token_issuer,
            client_id: &p.client_id,
            nonce,
            alg: o.alg,
            access_token: &tokens.access_token,
            now: unix_now(),
        },
    )?;

    let id_claims_complete = carries_identity_claims(jwt.claims());
    let userinfo = match (
        &discovered.userinfo_endpoint,
        o.spec.use_userinfo && !id_claims_complete,
    ) {
        (Some(endpoint), true) => {
            Some(fetch_userinfo(&p.http, endpoint, &tokens.access_token, &validated.subject).await?)
        }
        _ => None,
    };
    let id_claims = jwt.into_claims();
    let mapped = oidc_claims(
        p.preset,
        p.trust,
        validated.subject,
        &id_claims,
        userinfo.as_ref(),
    );
    Ok((validated.issuer, mapped))
}

/// Verifies with the cached keys; for an unknown `kid`, once with freshly discovered keys if
/// the rate limit allows (B04), else refuses.
async fn verify_signature(
    p: &Provider,
    o: &OidcUpstream,
    jwt: &UnverifiedJwt<'_>,
    discovered: Arc<Discovered>,
) -> Result<Arc<Discovered>, ProviderError> {
    match jwt.verify_signature(&discovered.keys, o.alg) {
        Ok(()) => Ok(discovered),
        Err(IdTokenError::UnknownKey) => {
            match o
                .cache
                .refresh_for_unknown_key(&p.http, &discovered)
                .await?
            {
                Some(fresh) => {
                    jwt.verify_signature(&fresh.keys, o.alg)?;
                    Ok(fresh)
                }
                None => Err(IdTokenError::UnknownKey.into()),
            }
        }
        Err(e) => Err(e.into()),
    }
}

/// The signed ID token already says everything Braid matches on (an email with its verified
/// flag, or a phone number with its flag): UserInfo would add a round trip and nothing that
/// counts. Providers that keep claims out of the ID token still get the UserInfo call.
fn carries_identity_claims(claims: &crate::oidc::id_token::Claims) -> bool {
    let has = |name: &str| claims.contains_key(name);
    (has("email") && has("email_verified")) || (has("phone_number") && has("phone_number_verified"))
}
