//! What the two token grants (code redemption and refresh) share: their errors (RFC 6749 §5.2)
//! and the way a rejected grant still commits what it consumed.

use crate::clients::ClientAuthError;
use crate::flows::token_issue::{Issued, Minted, Minter};
use crate::params::Params;
use braid_storage::StorageError;

#[derive(Debug, thiserror::Error)]
pub enum GrantError {
    #[error("{0}")]
    InvalidRequest(&'static str),
    #[error("{0}")]
    InvalidClient(#[from] ClientAuthError),
    #[error("grant_type must be {0}")]
    UnsupportedGrantType(&'static str),
    #[error("{0}")]
    InvalidGrant(&'static str),
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error("the access token could not be signed")]
    Signing,
}

impl GrantError {
    /// The label for metrics.
    pub fn outcome(&self) -> &'static str {
        match self {
            GrantError::InvalidRequest(_) | GrantError::UnsupportedGrantType(_) => {
                "invalid_request"
            }
            GrantError::InvalidClient(_) => "invalid_client",
            GrantError::InvalidGrant(_) => "invalid_grant",
            GrantError::Storage(_) | GrantError::Signing => "unavailable",
        }
    }
}

/// The result of a grant's transaction. A rejection is a value, not an error, so that the
/// transaction commits what it did (the consumed code, the revoked family) before answering.
// One per token request, moved once out of the transaction: boxing the large variant would
// add an allocation to every grant and save nothing.
#[allow(clippy::large_enum_variant)]
pub(crate) enum Grant {
    Minted(Minted),
    Rejected(&'static str),
}

impl Grant {
    /// Signs what the committed transaction minted, or reports why it was rejected.
    pub(crate) fn into_result(self, minter: &Minter) -> Result<Issued, GrantError> {
        match self {
            Grant::Minted(m) => minter.sign(m).map_err(|_| GrantError::Signing),
            Grant::Rejected(why) => Err(GrantError::InvalidGrant(why)),
        }
    }
}

pub(crate) fn require_grant_type(form: &Params, expected: &'static str) -> Result<(), GrantError> {
    match form.get("grant_type") {
        None => Err(GrantError::InvalidRequest("grant_type is required")),
        Some(g) if g == expected => Ok(()),
        Some(_) => Err(GrantError::UnsupportedGrantType(expected)),
    }
}
