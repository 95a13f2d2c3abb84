//! Access tokens (RFC 9068 JWT profile): `typ: at+jwt`, `kid`, pinned algorithm, short life.

use crate::tokens::keyring::Keys;
use braid_core::Timestamp;
use jsonwebtoken::Validation;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessClaims {
    pub iss: String,
    pub sub: String,
    pub aud: String,
    pub client_id: String,
    pub exp: i64,
    pub iat: i64,
    pub jti: String,
    /// The provider the user signed in with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idp: Option<String>,
    /// The user's id in the app, when the user was imported from it (`braid users import`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_id: Option<String>,
    /// When the user signed in (OpenID Connect `auth_time`, seconds): the sign-in that started
    /// the refresh-token family; a refresh keeps it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_time: Option<i64>,
    /// The identity the sign-in came through, only for apps that list upstream claims
    /// (`/auth/me` shows that identity's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity_id: Option<String>,
    /// The upstream claims the app listed, when it asked for them in the token
    /// (`claims_in_token`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub braid_claims: Option<serde_json::Map<String, serde_json::Value>>,
}

#[derive(Debug, thiserror::Error)]
pub enum AccessTokenError {
    #[error("malformed token")]
    Malformed,
    #[error("unknown signing key")]
    UnknownKey,
    #[error("not an access token")]
    WrongType,
    #[error("invalid token: {0}")]
    Invalid(String),
    #[error("signing failed")]
    Signing,
}

pub const TYP: &str = "at+jwt";

/// Longer tokens are refused unread.
pub const MAX_LEN: usize = 8 * 1024;

/// Signs with the key that signs now (see [`Keys::signer`]).
pub fn sign(keys: &Keys, claims: &AccessClaims) -> Result<String, AccessTokenError> {
    let payload = serde_json::to_vec(claims).map_err(|_| AccessTokenError::Signing)?;
    keys.signer(Timestamp::now())
        .ok_or(AccessTokenError::Signing)?
        .sign_jws(&payload)
        .map_err(|_| AccessTokenError::Signing)
}

/// Verifies a token Braid issued: our keys only (by `kid`), each with its own algorithm,
/// `typ: at+jwt`, our issuer, an audience among `audiences`, not expired.
pub fn verify(
    keys: &Keys,
    token: &str,
    issuer: &str,
    audiences: &[&str],
) -> Result<AccessClaims, AccessTokenError> {
    if token.len() > MAX_LEN {
        return Err(AccessTokenError::Malformed);
    }
    let header = jsonwebtoken::decode_header(token).map_err(|_| AccessTokenError::Malformed)?;
    let typ_ok = header.typ.as_deref().is_some_and(|t| {
        t.eq_ignore_ascii_case(TYP) || t.eq_ignore_ascii_case("application/at+jwt")
    });
    if !typ_ok {
        return Err(AccessTokenError::WrongType);
    }
    let kid = header.kid.as_deref().ok_or(AccessTokenError::UnknownKey)?;
    let (alg, key) = keys.verifier(kid).ok_or(AccessTokenError::UnknownKey)?;
    if header.alg != *alg {
        return Err(AccessTokenError::Invalid(
            "algorithm does not match the key".into(),
        ));
    }
    let mut validation = Validation::new(*alg);
    validation.set_issuer(&[issuer]);
    validation.set_audience(audiences);
    validation.set_required_spec_claims(&["exp", "iat", "iss", "aud", "sub"]);
    validation.leeway = 5;
    jsonwebtoken::decode::<AccessClaims>(token, key, &validation)
        .map(|d| d.claims)
        .map_err(|e| AccessTokenError::Invalid(e.to_string()))
}
