//! `POST /auth/local/sign-up` (page) and `POST /auth/register` (JSON): a new local account
//! from an email address and a password, and a code to confirm the address. The answer is the
//! same whether or not the address already has an account (no enumeration): its owner gets a
//! "you already have an account" mail instead of a code. Two sign-ups racing for one address
//! end with one account (the primary key of `local_accounts`).
//!
//! Also `resend`: a new confirmation code for an account whose address is not confirmed yet,
//! with the same answer for every address.

use crate::flows::local_sign_in::event;
use crate::local_accounts::{CodeMail, PasswordRefused, Purpose, check_mail_limits};
use crate::passwords::{self, PasswordError};
use crate::state::AppState;
use crate::webhooks::{self, Event, UserCreated};
use braid_core::{Email, Secret, Timestamp, UserEmail};
use braid_storage::StorageError;
use braid_storage::repo::audit;
use braid_storage::repo::local_accounts::{self, SignUp};
use std::net::IpAddr;

#[derive(Debug, thiserror::Error)]
pub enum SignUpError {
    #[error("this is not a valid email address")]
    BadEmail,
    #[error(transparent)]
    Password(#[from] PasswordRefused),
    #[error("too many requests; wait {retry_after_secs} s")]
    Limited { retry_after_secs: u64 },
    #[error(transparent)]
    Hash(#[from] PasswordError),
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// Where the confirmation code (or the "already have an account" mail) went: the address as
/// the person typed it, canonical.
pub struct SignedUp {
    pub email: Email,
}

pub async fn sign_up(
    state: &AppState,
    email: &str,
    password: String,
    client: Option<&str>,
    peer: Option<IpAddr>,
) -> Result<SignedUp, SignUpError> {
    let email = Email::parse(email).map_err(|_| SignUpError::BadEmail)?;
    state
        .settings
        .local_accounts
        .check_new_password(&password)?;
    if let Some(retry_after_secs) = check_mail_limits(state, &email, peer).await? {
        return Err(SignUpError::Limited { retry_after_secs });
    }
    // Hashed whether or not the address is taken: the answer takes as long either way.
    let hash = passwords::hash_async(Secret::new(password)).await?;
    let mail = CodeMail::of(state);
    let hooks = state.webhooks.clone();
    let (e, client, ip) = (
        email.clone(),
        client.map(str::to_owned),
        peer.map(|p| p.to_string()),
    );
    state
        .db
        .run_write(move |c| {
            let now = Timestamp::now();
            let (result, reason, user) = match local_accounts::sign_up(c, &e, &hash, now)? {
                SignUp::Created(user) => {
                    mail.send(c, &user, &e, Purpose::VerifyEmail, now)?;
                    let unconfirmed = UserEmail {
                        email: e.clone(),
                        verified_at: None,
                        is_primary: true,
                    };
                    let created = Event::UserCreated(UserCreated::new(&user, &[unconfirmed]));
                    webhooks::enqueue(c, &hooks, &created, now)?;
                    ("complete", "created", Some(user))
                }
                SignUp::Exists => {
                    mail.send_account_exists(c, &e, now)?;
                    ("skipped", "address_in_use", None)
                }
            };
            let row = event(
                "local_sign_up",
                result,
                reason,
                user.as_ref(),
                client.as_deref(),
                ip,
            );
            audit::record(c, &row, now)
        })
        .await?;
    state.outbox.wake();
    Ok(SignedUp { email })
}

/// A new confirmation code, when `email` is a local account not confirmed yet; nothing
/// otherwise. Same answer either way.
pub async fn resend(
    state: &AppState,
    email: &str,
    peer: Option<IpAddr>,
) -> Result<SignedUp, SignUpError> {
    let email = Email::parse(email).map_err(|_| SignUpError::BadEmail)?;
    if let Some(retry_after_secs) = check_mail_limits(state, &email, peer).await? {
        return Err(SignUpError::Limited { retry_after_secs });
    }
    let mail = CodeMail::of(state);
    let e = email.clone();
    state
        .db
        .run_write(move |c| {
            let now = Timestamp::now();
            match local_accounts::account_for(c, &e)? {
                Some(a) if a.unverified_since.is_some() => {
                    mail.send(c, &a.user_id, &e, Purpose::VerifyEmail, now)
                }
                _ => Ok(()),
            }
        })
        .await?;
    state.outbox.wake();
    Ok(SignedUp { email })
}
