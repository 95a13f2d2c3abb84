//! Why a login with an upstream provider failed.
//!
//! One variant per failure class. Messages name the class and a fixed reason; they never carry
//! an authorization code, a token, a client secret or a raw upstream response body, so they are
//! safe to log. [`ProviderError::is_upstream_unavailable`] separates "the provider could not be
//! reached" (the HTTP layer answers 502) from "the provider, or someone pretending to be it, sent
//! something we refuse" (400).

use crate::upstream_json::Document;
use braid_core::ProviderId;
use thiserror::Error;

#[derive(Debug, Error)]
#[non_exhaustive]
pub enum ProviderError {
    /// The provider's settings cannot work (bad URL, unreadable key file). Found at start-up.
    #[error("provider configuration: {0}")]
    Config(String),

    /// The provider is switched off: no new logins, and callbacks still in flight are refused.
    #[error("provider {0} is disabled")]
    Disabled(ProviderId),

    /// Network error, timeout or a 5xx answer: worth retrying later.
    #[error("upstream unavailable: {0}")]
    Unavailable(String),

    /// A response body exceeded the size cap; the transfer was aborted.
    #[error("upstream response larger than {limit} bytes")]
    ResponseTooLarge { limit: usize },

    /// Braid refused to send a request to this URL (not HTTPS, and not loopback).
    #[error("refused to contact a non-https upstream URL")]
    InsecureUrl,

    /// The discovery document or the JWKS is unusable (wrong issuer, missing endpoint, ...).
    #[error("invalid provider metadata: {0}")]
    Metadata(String),

    /// RFC 9207: the `iss` of the authorization response is missing or not the issuer the
    /// request was sent to. The token endpoint was not called.
    #[error("authorization response issuer: {0}")]
    IssuerMismatch(&'static str),

    /// The callback parameters are unusable (empty or oversized code).
    #[error("invalid callback: {0}")]
    InvalidCallback(&'static str),

    /// The flow state handed in does not fit this provider (another issuer, no nonce, ...).
    #[error("login flow does not fit this provider: {0}")]
    FlowMismatch(&'static str),

    /// The token endpoint answered with an OAuth error (`invalid_grant` for a wrong PKCE
    /// verifier or a used code). Only the error code is kept.
    #[error("token endpoint refused the code: {0}")]
    TokenRefused(String),

    /// The token endpoint's answer is not a usable token response (not JSON, missing ID token,
    /// not a Bearer token).
    #[error("invalid token response: {0}")]
    TokenResponse(&'static str),

    #[error("ID token rejected: {0}")]
    IdToken(#[from] IdTokenError),

    /// The UserInfo (or profile API) answer is unusable or belongs to someone else.
    #[error("user info rejected: {0}")]
    UserInfo(&'static str),

    /// An upstream API refused our access token or answered with an unexpected status.
    #[error("upstream API refused the request with status {0}")]
    UpstreamStatus(u16),

    /// A JSON document from the provider names a member twice in one object (RFC 7493 §2.3):
    /// parsers disagree on what it says, so nothing in it is believed.
    #[error("the {0} names a member twice (refused as I-JSON requires)")]
    DuplicateMember(Document),
}

impl ProviderError {
    /// Network, timeout or 5xx: the provider could not be reached or is failing. Everything
    /// else is a refused (bad, forged or misconfigured) response.
    pub fn is_upstream_unavailable(&self) -> bool {
        matches!(self, ProviderError::Unavailable(_))
    }

    /// The provider cannot be used as it is configured: its metadata does not fit Braid's
    /// settings (issuer, keys, algorithms, endpoints), a setting is unusable, or the token
    /// endpoint does not know Braid's client credentials. An operator has to change
    /// something, here or at the provider; the person signing in cannot.
    pub fn is_misconfigured(&self) -> bool {
        match self {
            ProviderError::Config(_) | ProviderError::Metadata(_) | ProviderError::InsecureUrl => {
                true
            }
            ProviderError::TokenRefused(code) => {
                code == "invalid_client" || code == "unauthorized_client"
            }
            _ => false,
        }
    }

    /// The upstream document refused for a repeated member name, if that is what happened.
    pub fn duplicate_member_in(&self) -> Option<Document> {
        match self {
            ProviderError::DuplicateMember(document)
            | ProviderError::IdToken(IdTokenError::DuplicateMember(document)) => Some(*document),
            _ => None,
        }
    }
}

/// Why an ID token was refused (OpenID Connect Core §3.1.3.7 and SECURITY-CASES group B).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum IdTokenError {
    #[error("malformed: {0}")]
    Malformed(&'static str),
    /// The header or the payload names a member twice (RFC 7493 §2.3).
    #[error("the {0} names a member twice")]
    DuplicateMember(Document),
    /// `alg` is not the one pinned for this provider (includes `none`, B01/B03).
    #[error("unexpected signing algorithm")]
    Algorithm,
    /// `crit` lists header extensions, none of which Braid understands (B06).
    #[error("unsupported critical header")]
    CriticalHeader,
    /// No key in the provider's JWKS matches the token's `kid` (B04).
    #[error("signing key not found in the provider's key set")]
    UnknownKey,
    #[error("invalid signature")]
    Signature,
    #[error("issuer mismatch")]
    Issuer,
    #[error("audience: {0}")]
    Audience(&'static str),
    #[error("authorized party (azp) is not this client")]
    AuthorizedParty,
    #[error("expired or without exp")]
    Expired,
    #[error("issued-at: {0}")]
    IssuedAt(&'static str),
    #[error("not yet valid (nbf)")]
    NotYetValid,
    #[error("nonce: {0}")]
    Nonce(&'static str),
    #[error("subject: {0}")]
    Subject(&'static str),
    #[error("access token hash (at_hash) mismatch")]
    AccessTokenHash,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn misconfigurations_are_what_only_an_operator_can_mend() {
        for operator in [
            ProviderError::Metadata("issuer".into()),
            ProviderError::Config("x".into()),
            ProviderError::TokenRefused("invalid_client".into()),
            ProviderError::TokenRefused("unauthorized_client".into()),
        ] {
            assert!(operator.is_misconfigured(), "{operator}");
        }
        for other in [
            ProviderError::Unavailable("timeout".into()),
            ProviderError::TokenRefused("invalid_grant".into()),
            ProviderError::IdToken(IdTokenError::Signature),
            ProviderError::DuplicateMember(Document::TokenResponse),
        ] {
            assert!(!other.is_misconfigured(), "{other}");
        }
    }

    #[test]
    fn only_transport_failures_count_as_unavailable() {
        assert!(ProviderError::Unavailable("timeout".into()).is_upstream_unavailable());
        for refused in [
            ProviderError::ResponseTooLarge { limit: 1 },
            ProviderError::IssuerMismatch("missing"),
            ProviderError::TokenRefused("invalid_grant".into()),
            ProviderError::IdToken(IdTokenError::Signature),
            ProviderError::Metadata("issuer".into()),
            ProviderError::UpstreamStatus(401),
        ] {
            assert!(!refused.is_upstream_unavailable(), "{refused}");
        }
    }
}
