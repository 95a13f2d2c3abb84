//! The values that travel between "send the browser upstream" and "complete the login". The
//! caller (the HTTP layer) owns the flow state: it stores an [`AuthorizationRequest`]'s
//! secrets server-side, checks `state` itself, and hands them back as an [`ExpectedFlow`].

use serde::{Deserialize, Serialize};
use std::fmt;

/// Everything needed to send the browser upstream.
#[derive(Clone, PartialEq, Eq)]
pub struct AuthorizationRequest {
    /// The provider's authorization endpoint with Braid's parameters (and only those).
    pub url: url::Url,
    /// 256 random bits, base64url; also in `url`.
    pub state: String,
    /// OpenID Connect providers only; also in `url`.
    pub nonce: Option<String>,
    /// PKCE (RFC 7636) verifier, 43 characters; its S256 challenge is in `url`.
    pub pkce_verifier: String,
    /// The issuer this request goes to, for the RFC 9207 / mix-up check on the way back.
    pub issuer: String,
}

impl AuthorizationRequest {
    /// What [`crate::Provider::complete`] needs to be handed back.
    pub fn expected_flow(&self) -> ExpectedFlow {
        ExpectedFlow {
            nonce: self.nonce.clone(),
            pkce_verifier: self.pkce_verifier.clone(),
            issuer: self.issuer.clone(),
        }
    }
}

impl fmt::Debug for AuthorizationRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthorizationRequest")
            .field("issuer", &self.issuer)
            .finish_non_exhaustive()
    }
}

/// The parameters of the callback the provider sent the browser to. `state` is not here: the
/// caller has already checked it.
#[derive(Clone, PartialEq, Eq)]
pub struct CallbackParams {
    pub code: String,
    /// RFC 9207 `iss`, if the provider sent one.
    pub iss: Option<String>,
}

impl fmt::Debug for CallbackParams {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CallbackParams")
            .field("iss", &self.iss)
            .finish_non_exhaustive()
    }
}

/// The secrets of the flow the callback belongs to, as stored by the caller.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExpectedFlow {
    pub nonce: Option<String>,
    pub pkce_verifier: String,
    pub issuer: String,
}

impl fmt::Debug for ExpectedFlow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ExpectedFlow")
            .field("issuer", &self.issuer)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_output_carries_no_secrets() {
        let req = AuthorizationRequest {
            url: url::Url::parse("https://idp.example/auth?state=S3CRET").unwrap(),
            state: "S3CRET".into(),
            nonce: Some("N0NCE".into()),
            pkce_verifier: "V3RIFIER".into(),
            issuer: "https://idp.example".into(),
        };
        let cb = CallbackParams {
            code: "C0DE".into(),
            iss: None,
        };
        let printed = format!("{req:?} {:?} {cb:?}", req.expected_flow());
        for secret in ["S3CRET", "N0NCE", "V3RIFIER", "C0DE"] {
            assert!(!printed.contains(secret), "{printed}");
        }
    }
}
