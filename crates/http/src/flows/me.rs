//! `GET /auth/me`: the signed-in user's profile and linked identities, for a valid access token.

use crate::state::AppState;
use crate::tokens::access::{self, AccessClaims};
use braid_core::{LinkedIdentity, User, UserEmail, UserId, UserPhone};
use braid_storage::StorageError;
use braid_storage::repo::{identities, revoked_access_tokens, users};
use serde_json::{Value, json};

#[derive(Debug, thiserror::Error)]
pub enum BearerError {
    #[error("missing bearer token")]
    Missing,
    #[error("invalid token")]
    Invalid,
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// Checks an access token: signature, type, issuer, audience (any configured client), expiry,
/// not revoked, user still active.
pub async fn authenticate(
    state: &AppState,
    authorization: Option<&str>,
) -> Result<(AccessClaims, UserId), BearerError> {
    let token = authorization
        .and_then(|h| {
            h.strip_prefix("Bearer ")
                .or_else(|| h.strip_prefix("bearer "))
        })
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or(BearerError::Missing)?;
    let keys = state.keys.keys_for_token(token).await?;
    let audiences = state.clients.ids();
    let claims = access::verify(&keys, token, &state.issuer, &audiences)
        .map_err(|_| BearerError::Invalid)?;
    let user_id = UserId::parse(&claims.sub).map_err(|_| BearerError::Invalid)?;
    if !still_active(state, &claims.jti, &user_id).await? {
        return Err(BearerError::Invalid);
    }
    Ok((claims, user_id))
}

/// What a valid signature cannot tell: the access token was not revoked and its user is
/// neither deleted nor disabled.
pub async fn still_active(
    state: &AppState,
    jti: &str,
    user_id: &UserId,
) -> Result<bool, StorageError> {
    let (jti, uid) = (jti.to_owned(), user_id.clone());
    state
        .db
        .run(move |c| {
            Ok(!revoked_access_tokens::is_revoked(c, &jti)?
                && users::find(c, &uid)?.is_some_and(|u| !u.disabled))
        })
        .await
}

/// The user's profile; for an app that lists upstream claims (`[clients.<id>] claims`), also
/// `claims`: those of the identity the token's sign-in came through, and no others.
pub async fn profile(
    state: &AppState,
    user_id: UserId,
    token: &AccessClaims,
) -> Result<Value, BearerError> {
    let listed = state
        .clients
        .get(&token.client_id)
        .map(|c| c.claims.clone())
        .filter(|names| !names.is_empty());
    let signed_in_through = token.identity_id.clone();
    let (user, emails, phones, linked) = state
        .db
        .run(move |c| {
            let user = users::find(c, &user_id)?.ok_or(StorageError::NotFound)?;
            Ok((
                user,
                users::emails(c, &user_id)?,
                users::phones(c, &user_id)?,
                identities::of_user(c, &user_id)?,
            ))
        })
        .await?;
    let mut body = render(&user, &emails, &phones, &linked);
    if let (Some(names), Some(fields)) = (listed, body.as_object_mut()) {
        let claims = linked
            .iter()
            .find(|i| signed_in_through.as_deref() == Some(i.id.as_str()))
            .map(|i| i.snapshot.profile.app_claims(&names))
            .unwrap_or_default();
        fields.insert("claims".into(), Value::Object(claims));
    }
    Ok(body)
}

fn render(
    user: &User,
    emails: &[UserEmail],
    phones: &[UserPhone],
    linked: &[LinkedIdentity],
) -> Value {
    let mut profile = json!({
        "id": user.id,
        "display_name": user.display_name,
        "created_at": user.created_at.as_secs(),
        "emails": emails.iter().map(|e| json!({"email": e.email, "verified": e.is_verified(), "primary": e.is_primary})).collect::<Vec<_>>(),
        "phones": phones.iter().map(|p| json!({"phone": p.phone, "verified": p.is_verified()})).collect::<Vec<_>>(),
        "identities": linked.iter().map(crate::flows::identities::render).collect::<Vec<_>>(),
    });
    // Only for users imported from the app: the app's own id for them.
    if let (Some(external_id), Some(fields)) = (&user.external_id, profile.as_object_mut()) {
        fields.insert("external_id".into(), json!(external_id));
    }
    profile
}
