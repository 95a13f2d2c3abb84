//! `POST /auth/introspect` (RFC 7662): a confidential client's backend asks whether a token is
//! active now: an access token revoked before its `exp` (by `/auth/revoke`, or because the
//! code it came from was replayed) is not, though its signature still verifies.
//!
//! Only tokens issued to the asking client are described; anything else — malformed, expired,
//! revoked, rotated, another issuer's, another client's — is `{"active": false}` and nothing
//! more, so the answer never tells why.

use crate::clients::ClientAuthError;
use crate::flows::me::still_active;
use crate::params::Params;
use crate::state::AppState;
use crate::tokens::{access, opaque};
use actix_web::HttpRequest;
use braid_core::{Timestamp, UserId};
use braid_storage::StorageError;
use braid_storage::repo::{refresh_tokens, users};
use serde_json::{Value, json};

#[derive(Debug, thiserror::Error)]
pub enum IntrospectError {
    #[error("{0}")]
    InvalidRequest(&'static str),
    #[error("{0}")]
    InvalidClient(#[from] ClientAuthError),
    #[error(transparent)]
    Storage(#[from] StorageError),
}

impl IntrospectError {
    /// The label for metrics.
    pub fn outcome(&self) -> &'static str {
        match self {
            IntrospectError::InvalidRequest(_) => "invalid_request",
            IntrospectError::InvalidClient(_) => "invalid_client",
            IntrospectError::Storage(_) => "unavailable",
        }
    }
}

/// The introspection response: `Inactive` carries nothing on purpose.
#[derive(Debug)]
pub enum Introspection {
    Active(Value),
    Inactive,
}

impl Introspection {
    pub fn is_active(&self) -> bool {
        matches!(self, Introspection::Active(_))
    }

    pub fn into_json(self) -> Value {
        match self {
            Introspection::Active(v) => v,
            Introspection::Inactive => json!({"active": false}),
        }
    }
}

pub async fn introspect(
    state: &AppState,
    req: &HttpRequest,
    form: &Params,
) -> Result<Introspection, IntrospectError> {
    let token = form
        .get("token")
        .ok_or(IntrospectError::InvalidRequest("token is required"))?;
    let client =
        state
            .clients
            .authenticate(req, form.get("client_id"), form.get("client_secret"))?;
    // A public client's id is no secret: anyone could ask in its name.
    if client.is_public() {
        return Err(ClientAuthError::Failed.into());
    }
    // `token_type_hint` is optional (RFC 7662 §2.1): the token's shape tells the two apart.
    if token.contains('.') {
        access_token(state, token, &client.id).await
    } else {
        refresh_token(state, token, &client.id).await
    }
}

async fn access_token(
    state: &AppState,
    token: &str,
    client_id: &str,
) -> Result<Introspection, IntrospectError> {
    let keys = state.keys.keys_for_token(token).await?;
    let Ok(claims) = access::verify(&keys, token, &state.issuer, &[client_id]) else {
        return Ok(Introspection::Inactive);
    };
    let Ok(user_id) = UserId::parse(&claims.sub) else {
        return Ok(Introspection::Inactive);
    };
    if !still_active(state, &claims.jti, &user_id).await? {
        return Ok(Introspection::Inactive);
    }
    Ok(Introspection::Active(json!({
        "active": true,
        "token_type": "Bearer",
        "sub": claims.sub,
        "client_id": claims.client_id,
        "aud": claims.aud,
        "iss": claims.iss,
        "exp": claims.exp,
        "iat": claims.iat,
        "jti": claims.jti,
    })))
}

async fn refresh_token(
    state: &AppState,
    token: &str,
    client_id: &str,
) -> Result<Introspection, IntrospectError> {
    let hash = opaque::hash(token);
    let client_id = client_id.to_owned();
    let now = Timestamp::now();
    let found = state
        .db
        .run(move |c| {
            let Some(rt) = refresh_tokens::find(c, &hash)? else {
                return Ok(None);
            };
            let usable = rt.client_id == client_id
                && rt.revoked_at.is_none()
                && rt.rotated_at.is_none()
                && rt.expires_at > now
                && rt.family_expires_at > now
                && users::find(c, &rt.user_id)?.is_some_and(|u| !u.disabled);
            Ok(usable.then_some(rt))
        })
        .await?;
    Ok(match found {
        Some(rt) => Introspection::Active(json!({
            "active": true,
            "sub": rt.user_id.to_string(),
            "client_id": rt.client_id,
            "aud": rt.client_id,
            "iss": state.issuer,
            "exp": rt.expires_at.as_secs(),
        })),
        None => Introspection::Inactive,
    })
}
