//! `POST /auth/exchange-code` (RFC 6749 §4.1.3): an app's backend trades the one-time code for
//! tokens. Client authentication first (a failure leaves the code usable: F06); then one
//! transaction consumes the code, checks its bindings and mints — or, on a replay, revokes
//! what the first redemption issued (RFC 6749 §4.1.2, F02/F03).

use crate::flows::grant::{Grant, GrantError, require_grant_type};
use crate::flows::token_issue::{AuthContext, Family, Issued, Minter, UserClaims};
use crate::params::Params;
use crate::state::AppState;
use crate::tokens::opaque;
use actix_web::HttpRequest;
use braid_core::{Timestamp, new_id};
use braid_storage::repo::exchange_codes::{self, Redemption, ToIssue};
use braid_storage::repo::{refresh_tokens, revoked_access_tokens};

pub async fn redeem(
    state: &AppState,
    req: &HttpRequest,
    form: &Params,
) -> Result<Issued, GrantError> {
    require_grant_type(form, "authorization_code")?;
    let code = form
        .get("code")
        .ok_or(GrantError::InvalidRequest("code is required"))?
        .to_owned();
    let redirect_uri = form
        .get("redirect_uri")
        .ok_or(GrantError::InvalidRequest("redirect_uri is required"))?
        .to_owned();
    let verifier = form.get("code_verifier").map(str::to_owned);
    if verifier
        .as_deref()
        .is_some_and(|v| !opaque::valid_pkce_verifier(v))
    {
        return Err(GrantError::InvalidRequest("code_verifier is malformed"));
    }
    let client = state
        .clients
        .authenticate(req, form.get("client_id"), form.get("client_secret"))?
        .clone();
    let minter = Minter::new(state).await?;
    let code_hash = opaque::hash(&code);
    let (family_id, access_jti) = (new_id(), Minter::new_jti());
    let m = minter.clone();
    let outcome = state
        .db
        .run_write(move |c| {
            let minter = m;
            {
                let now = Timestamp::now();
                let to_issue = ToIssue { family_id: &family_id, access_jti: &access_jti };
                let found = match exchange_codes::redeem(c, &code_hash, now, to_issue)? {
                    Redemption::Invalid => return Ok(Grant::Rejected("the code is invalid or expired")),
                    Redemption::Replayed { issued_family_id, issued_access_jti, .. } => {
                        if let Some(family) = issued_family_id {
                            refresh_tokens::revoke_family(c, &family, now)?;
                        }
                        if let Some(jti) = issued_access_jti {
                            revoked_access_tokens::revoke(c, &jti, now.plus(minter.access_ttl))?;
                        }
                        tracing::warn!(client_id = %client.id, "exchange code replayed; tokens from its first redemption revoked");
                        return Ok(Grant::Rejected("the code was already used"));
                    }
                    Redemption::Fresh(found) => found,
                };
                if found.client_id != client.id {
                    return Ok(Grant::Rejected("the code was issued to another client"));
                }
                if found.redirect_uri != redirect_uri {
                    return Ok(Grant::Rejected("redirect_uri does not match"));
                }
                match (&found.code_challenge, &verifier) {
                    (Some(challenge), Some(v)) if opaque::same_secret(&opaque::pkce_s256(v), challenge) => {}
                    (Some(_), _) => return Ok(Grant::Rejected("code_verifier does not match")),
                    // A verifier without a stored challenge is a downgrade attempt (RFC 9700 §2.1.1).
                    (None, Some(_)) => return Ok(Grant::Rejected("no code_challenge was sent for this code")),
                    (None, None) if client.is_public() => return Ok(Grant::Rejected("PKCE is required")),
                    (None, None) => {}
                }
                let context = AuthContext::parse(&found.auth_context);
                let about = UserClaims {
                    idp: context.idp,
                    external_id: found.external_id,
                    auth_time: context.auth_time.map(Timestamp::from_millis),
                };
                let minted = minter.mint(c, &found.user_id, &client, about, context.identity_id, Family::New(family_id.clone()), access_jti.clone())?;
                Ok(Grant::Minted(minted))
            }
        })
        .await?;
    outcome.into_result(&minter)
}
