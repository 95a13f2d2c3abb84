//! The OpenID Connect login: authorization request with nonce and PKCE, then RFC 9207 check,
//! code exchange, ID token validation (with one rate-limited key refresh for an unknown
//! `kid`), UserInfo where the preset uses it, and claim mapping.

use crate::ProviderError;
use crate::authorization_code::{
    AuthorizationParams, CodeExchange, authorization_url, exchange_code, with_forwarded,
};
use crate::claim_mapping::{MappedClaims, oidc_claims};
use crate::error::IdTokenError;
use crate::flow_secrets::random_token;
use crate::login_flow::{AuthorizationRequest, CallbackParams, ExpectedFlow};
use crate::oidc::discovery::Discovered;
use crate::oidc::id_token::{
    Expectations, UnverifiedJwt, algorithm_name, parse_algorithm, validate_claims,
};
use crate::oidc::userinfo::fetch_userinfo;
use crate::provider::{MatchedClaims, OidcUpstream, Provider, check_response_issuer, unix_now};
use jsonwebtoken::Algorithm;
use std::sync::Arc;

pub(crate) async fn authorization_request(
    p: &Provider,
    o: &OidcUpstream,
    state: String,
    pkce_verifier: String,
    forwarded: &[(String, String)],
) -> Result<AuthorizationRequest, ProviderError> {
    let discovered = o.cache.current(&p.http).await?;
    let nonce = random_token()?;
    let extra = with_forwarded(&o.spec.extra_params, forwarded);
    let url = authorization_url(
        &discovered.authorization_endpoint,
        &AuthorizationParams {
            client_id: &p.client_id,
            redirect_uri: &p.redirect_uri,
            scopes: &o.spec.scopes,
            scope_separator: " ",
            state: &state,
            pkce_verifier: Some(&pkce_verifier),
            extra: &extra,
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
            pkce_verifier: Some(&expected.pkce_verifier),
        },
    )
    .await?;
    let raw = tokens
        .id_token
        .as_deref()
        .ok_or(ProviderError::TokenResponse("no id_token"))?;

    let jwt = UnverifiedJwt::parse(raw)?;
    let (discovered, alg) = verify_signature(p, o, &jwt, discovered).await?;
    let validated = validate_claims(
        jwt.claims(),
        &Expectations {
            issuer: &o.id_token_issuer,
            client_id: &p.client_id,
            nonce,
            alg,
            access_token: &tokens.access_token,
            now: unix_now(),
        },
    )?;

    let userinfo = match (
        &discovered.userinfo_endpoint,
        o.spec.use_userinfo && lacks_matched_claims(jwt.claims(), p.matched, &o.spec.scopes),
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
/// the rate limit allows (B04), else refuses. Returns the document used and the token's
/// algorithm.
async fn verify_signature(
    p: &Provider,
    o: &OidcUpstream,
    jwt: &UnverifiedJwt<'_>,
    discovered: Arc<Discovered>,
) -> Result<(Arc<Discovered>, Algorithm), ProviderError> {
    match jwt.verify_signature(&discovered.keys, &discovered.id_token_algs) {
        Ok(alg) => Ok((discovered, alg)),
        Err(IdTokenError::UnknownKey) => {
            match o
                .cache
                .refresh_for_unknown_key(&p.http, &discovered)
                .await?
            {
                Some(fresh) => {
                    let alg = jwt.verify_signature(&fresh.keys, &fresh.id_token_algs)?;
                    Ok((fresh, alg))
                }
                None => Err(IdTokenError::UnknownKey.into()),
            }
        }
        Err(IdTokenError::Algorithm) => {
            Err(wrong_pin(jwt, &discovered).unwrap_or(IdTokenError::Algorithm.into()))
        }
        Err(e) => Err(e.into()),
    }
}

/// A token signed with an algorithm the provider declares, refused only because
/// `id_token_alg` pins another one: the operator's setting is wrong, not the token.
fn wrong_pin(jwt: &UnverifiedJwt<'_>, discovered: &Discovered) -> Option<ProviderError> {
    let used = jwt.header_alg()?;
    let declared_usable =
        discovered.declared_algs.iter().any(|d| d == used) && parse_algorithm(used).is_some();
    declared_usable.then(|| {
        ProviderError::Metadata(format!(
            "the provider signs ID tokens with {used}, which it declares, but id_token_alg \
             pins {}: remove id_token_alg or set it to {used}",
            discovered
                .id_token_algs
                .iter()
                .map(|a| algorithm_name(*a))
                .collect::<Vec<_>>()
                .join(", ")
        ))
    })
}

/// UserInfo is asked only for what the ID token left out: an email (with its verified flag)
/// or a phone number (with its flag) that account linking compares and whose scope was
/// requested. Most logins then need no second round trip; a phone number that a provider
/// keeps out of its ID tokens still arrives.
fn lacks_matched_claims(
    claims: &crate::oidc::id_token::Claims,
    matched: MatchedClaims,
    scopes: &[String],
) -> bool {
    let requested = |scope: &str| scopes.iter().any(|s| s == scope);
    let lacks =
        |value: &str, flag: &str| !(claims.contains_key(value) && claims.contains_key(flag));
    (matched.email && requested("email") && lacks("email", "email_verified"))
        || (matched.phone && requested("phone") && lacks("phone_number", "phone_number_verified"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn claims(v: Value) -> crate::oidc::id_token::Claims {
        v.as_object().cloned().unwrap_or_default()
    }

    const BOTH: MatchedClaims = MatchedClaims {
        email: true,
        phone: true,
    };

    fn scopes(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn userinfo_is_asked_when_a_matched_and_requested_claim_is_missing() {
        let email_only = claims(json!({"email": "a@example.com", "email_verified": true}));
        let all = scopes(&["openid", "email", "phone"]);
        assert!(lacks_matched_claims(&email_only, BOTH, &all));
        let no_phone_scope = scopes(&["openid", "email", "profile"]);
        assert!(!lacks_matched_claims(&email_only, BOTH, &no_phone_scope));
        let email_match_only = MatchedClaims {
            email: true,
            phone: false,
        };
        assert!(!lacks_matched_claims(&email_only, email_match_only, &all));
        let both = claims(json!({
            "email": "a@example.com", "email_verified": true,
            "phone_number": "+15550100", "phone_number_verified": true,
        }));
        assert!(!lacks_matched_claims(&both, BOTH, &all));
        let flag_missing = claims(json!({"email": "a@example.com"}));
        assert!(lacks_matched_claims(&flag_missing, BOTH, &no_phone_scope));
    }
}
