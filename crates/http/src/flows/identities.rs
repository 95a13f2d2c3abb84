//! `GET /auth/me/identities` and `DELETE /auth/me/identities/{id}`: the signed-in user's
//! linked sign-in methods, and unlinking one. An unlink never removes the last way to sign in;
//! it revokes the refresh tokens obtained through that identity (SECURITY-CASES F18), records
//! an audit event and tells the owner by email, all in one transaction.

use crate::client_addr::Client;
use crate::flows::link_proof::Proofs;
use crate::state::AppState;
use crate::webhooks::{self, Event};
use braid_core::{LinkedIdentity, Timestamp, UserId};
use braid_storage::repo::audit::{self, AuditEvent};
use braid_storage::repo::{credentials, identities, outbox, refresh_tokens, users};
use braid_storage::{DbConn, StorageError};
use serde_json::{Value, json};

#[derive(Debug, thiserror::Error)]
pub enum UnlinkError {
    /// Unknown, or someone else's: the same answer, so ids of others reveal nothing.
    #[error("no such sign-in method on this account")]
    NotFound,
    #[error(
        "this is the account's last way to sign in: connect another provider or set a password first"
    )]
    LastSignInMethod,
    #[error(transparent)]
    Storage(#[from] StorageError),
}

pub async fn list(state: &AppState, user: UserId) -> Result<Value, StorageError> {
    let linked = state.db.run(move |c| identities::of_user(c, &user)).await?;
    Ok(json!({ "identities": linked.iter().map(render).collect::<Vec<_>>() }))
}

/// One identity as `/auth/me` and `/auth/me/identities` show it.
pub fn render(i: &LinkedIdentity) -> Value {
    json!({
        "id": i.id,
        "provider": i.provider,
        "subject": i.subject,
        "email": i.snapshot.emails.first().map(|e| e.email.as_str()),
        "email_verified": i.snapshot.emails.first().map(|e| e.provider_verified),
        "created_at": i.created_at.as_secs(),
        "last_login_at": i.last_login_at.as_secs(),
    })
}

pub async fn unlink(
    state: &AppState,
    user: UserId,
    identity_id: String,
    client_id: String,
    client: &Client,
) -> Result<(), UnlinkError> {
    let client = client.clone();
    let hooks = state.webhooks.clone();
    let outbox = state.outbox.clone();
    let delivery = state.delivery();
    let names: std::collections::HashMap<String, String> = state
        .providers
        .iter()
        .map(|p| (p.id().to_string(), p.display_name().to_owned()))
        .collect();
    let removed = state
        .db
        .run_write(move |c| {
            let now = Timestamp::now();
            match remove(c, &user, &identity_id, now)? {
                Err(e) => Ok(Err(e)),
                Ok(identity) => {
                    let revoked = refresh_tokens::revoke_of_identity(c, &identity.id, now)?;
                    audit::record(
                        c,
                        &client.stamp(AuditEvent {
                            kind: "identity_unlinked".into(),
                            result: Some("complete".into()),
                            user_id: Some(user.to_string()),
                            provider: Some(identity.provider.to_string()),
                            subject: Some(identity.subject.to_string()),
                            client_id: Some(client_id),
                            detail: Some(json!({ "revoked_refresh_tokens": revoked }).to_string()),
                            ..AuditEvent::default()
                        }),
                        now,
                    )?;
                    let unlinked = Event::IdentityUnlinked(webhooks::IdentityUnlinked {
                        user_id: user.to_string(),
                        provider: identity.provider.to_string(),
                        subject: identity.subject.to_string(),
                    });
                    webhooks::enqueue(c, &hooks, &unlinked, now)?;
                    if let Some(email) = Proofs::of(c, &user, delivery)?.email {
                        let provider = identity.provider.to_string();
                        let name = names.get(&provider).unwrap_or(&provider);
                        let message = outbox
                            .messages()
                            .identity_unlinked_email(&email, name, now)
                            .map_err(|e| StorageError::Corrupt(e.to_string()))?;
                        outbox::enqueue(c, &message, now)?;
                    }
                    Ok(Ok(()))
                }
            }
        })
        .await?;
    removed?;
    state.outbox.wake();
    Ok(())
}

/// Deletes the identity when it is the user's and not the last way in. The user's row is
/// locked first, so that two unlinks of a user's last two identities run one after the other
/// and the second sees that only one is left.
fn remove(
    c: &mut DbConn,
    user: &UserId,
    identity_id: &str,
    now: Timestamp,
) -> Result<Result<LinkedIdentity, UnlinkError>, StorageError> {
    if !users::lock_for_change(c, user, now)? {
        return Ok(Err(UnlinkError::NotFound));
    }
    let Some(identity) = identities::find_of_user(c, identity_id, user)? else {
        return Ok(Err(UnlinkError::NotFound));
    };
    let others = identities::of_user(c, user)?
        .iter()
        .filter(|i| i.id != identity.id)
        .count();
    if others == 0 && credentials::password_hash(c, user)?.is_none() {
        return Ok(Err(UnlinkError::LastSignInMethod));
    }
    if !identities::delete_of_user(c, identity_id, user)? {
        return Ok(Err(UnlinkError::NotFound));
    }
    Ok(Ok(identity))
}
