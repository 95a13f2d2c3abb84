//! `POST /auth/refresh` (RFC 6749 §6): rotate a refresh token. A token presented twice was
//! stolen or raced: the whole family is revoked (RFC 9700 §4.14.2, F15/F16).

use crate::flows::grant::{Grant, GrantError, require_grant_type};
use crate::flows::token_issue::{Family, Issued, Minter, UserClaims};
use crate::params::Params;
use crate::state::AppState;
use crate::tokens::opaque;
use actix_web::HttpRequest;
use braid_core::Timestamp;
use braid_storage::repo::{refresh_tokens, users};

pub async fn rotate(
    state: &AppState,
    req: &HttpRequest,
    form: &Params,
) -> Result<Issued, GrantError> {
    require_grant_type(form, "refresh_token")?;
    let token = form
        .get("refresh_token")
        .ok_or(GrantError::InvalidRequest("refresh_token is required"))?;
    let client = state
        .clients
        .authenticate(req, form.get("client_id"), form.get("client_secret"))?
        .clone();
    let minter = Minter::new(state).await?;
    let hash = opaque::hash(token);
    let m = minter.clone();
    let outcome = state
        .db
        .run_write(move |c| {
            let minter = m;
            {
                let now = Timestamp::now();
                let Some(rt) = refresh_tokens::find(c, &hash)? else {
                    return Ok(Grant::Rejected("the refresh token is invalid"));
                };
                if rt.client_id != client.id {
                    return Ok(Grant::Rejected("the refresh token was issued to another client"));
                }
                if rt.revoked_at.is_some() {
                    return Ok(Grant::Rejected("the refresh token was revoked"));
                }
                if rt.rotated_at.is_some() || !refresh_tokens::mark_rotated(c, &hash, now)? {
                    refresh_tokens::revoke_family(c, &rt.family_id, now)?;
                    tracing::warn!(client_id = %client.id, "refresh token reused; its family is revoked");
                    return Ok(Grant::Rejected("the refresh token was already used"));
                }
                if rt.expires_at <= now || rt.family_expires_at <= now {
                    return Ok(Grant::Rejected("the refresh token expired"));
                }
                let external_id = match users::find(c, &rt.user_id)? {
                    Some(u) if !u.disabled => u.external_id,
                    _ => {
                        refresh_tokens::revoke_family(c, &rt.family_id, now)?;
                        return Ok(Grant::Rejected("the user is not active"));
                    }
                };
                let family = Family::Continue { id: rt.family_id.clone(), expires_at: rt.family_expires_at };
                let about = UserClaims { idp: None, external_id, auth_time: rt.auth_time };
                let minted = minter.mint(c, &rt.user_id, &client, about, rt.identity_id.clone(), family, Minter::new_jti())?;
                Ok(Grant::Minted(minted))
            }
        })
        .await?;
    outcome.into_result(&minter)
}
