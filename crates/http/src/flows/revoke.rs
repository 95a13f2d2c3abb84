//! `POST /auth/revoke` (RFC 7009): a client revokes one of its refresh tokens (the whole
//! family) or access tokens. Unknown tokens are not an error (§2.2).

use crate::clients::ClientAuthError;
use crate::params::Params;
use crate::state::AppState;
use crate::tokens::{access, opaque};
use actix_web::HttpRequest;
use braid_core::Timestamp;
use braid_storage::StorageError;
use braid_storage::repo::{refresh_tokens, revoked_access_tokens};

#[derive(Debug, thiserror::Error)]
pub enum RevokeError {
    #[error("{0}")]
    InvalidRequest(&'static str),
    #[error("{0}")]
    InvalidClient(#[from] ClientAuthError),
    #[error(transparent)]
    Storage(#[from] StorageError),
}

impl RevokeError {
    /// The label for metrics.
    pub fn outcome(&self) -> &'static str {
        match self {
            RevokeError::InvalidRequest(_) => "invalid_request",
            RevokeError::InvalidClient(_) => "invalid_client",
            RevokeError::Storage(_) => "unavailable",
        }
    }
}

pub async fn revoke(state: &AppState, req: &HttpRequest, form: &Params) -> Result<(), RevokeError> {
    let token = form
        .get("token")
        .ok_or(RevokeError::InvalidRequest("token is required"))?
        .to_owned();
    let client = state
        .clients
        .authenticate(req, form.get("client_id"), form.get("client_secret"))?
        .clone();
    let now = Timestamp::now();
    if token.contains('.') {
        let keys = state.keys.keys_for_token(&token).await?;
        if let Ok(claims) = access::verify(&keys, &token, &state.issuer, &[client.id.as_str()]) {
            let expires = Timestamp::from_millis(claims.exp.saturating_mul(1000));
            state
                .db
                .run_write(move |c| revoked_access_tokens::revoke(c, &claims.jti, expires))
                .await?;
        }
        return Ok(());
    }
    let hash = opaque::hash(&token);
    state
        .db
        .run_write(move |c| {
            if let Some(rt) = refresh_tokens::find(c, &hash)?
                && rt.client_id == client.id
            {
                refresh_tokens::revoke_family(c, &rt.family_id, now)?;
            }
            Ok(())
        })
        .await?;
    Ok(())
}
