//! Password reset by emailed code: `request` (`POST /auth/local/reset`,
//! `POST /auth/password-reset`) sends a code to the address when it has an account, and answers
//! the same when it has none; `confirm` (`POST /auth/local/reset/confirm`,
//! `POST /auth/password-reset/confirm`) takes the code and a new password.
//!
//! A confirmed reset, in one transaction: the code is used, the password replaced, the address
//! marked confirmed (the code proved the mailbox; identities linked while it was not confirmed
//! are removed, SECURITY-CASES D10), and every refresh token of the user revoked (F18). An
//! address with no account costs the same password hashing and gets the same refusal as a
//! wrong code.

use crate::flows::local_sign_in::event;
use crate::local_accounts::{
    CodeCheck, CodeMail, PasswordRefused, Purpose, check_code, check_code_guess_limit,
    check_mail_limits,
};
use crate::passwords::{self, PasswordError};
use crate::state::AppState;
use braid_core::{Email, Secret, Timestamp};
use braid_storage::StorageError;
use braid_storage::repo::{audit, credentials, local_accounts, refresh_tokens};
use std::net::IpAddr;

#[derive(Debug, thiserror::Error)]
pub enum ResetError {
    #[error("this is not a valid email address")]
    BadEmail,
    #[error(transparent)]
    Password(#[from] PasswordRefused),
    #[error("the code is not right, or has expired; ask for a new one if needed")]
    WrongCode,
    #[error("too many requests; wait {retry_after_secs} s")]
    Limited { retry_after_secs: u64 },
    #[error(transparent)]
    Hash(#[from] PasswordError),
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// Sends a reset code when `email` has an account; the same answer when it has none.
pub async fn request(
    state: &AppState,
    email: &str,
    peer: Option<IpAddr>,
) -> Result<Email, ResetError> {
    let email = Email::parse(email).map_err(|_| ResetError::BadEmail)?;
    if let Some(retry_after_secs) = check_mail_limits(state, &email, peer).await? {
        return Err(ResetError::Limited { retry_after_secs });
    }
    let mail = CodeMail::of(state);
    let e = email.clone();
    state
        .db
        .run_write(move |c| match local_accounts::account_for(c, &e)? {
            Some(account) => mail.send(
                c,
                &account.user_id,
                &e,
                Purpose::ResetPassword,
                Timestamp::now(),
            ),
            None => Ok(()),
        })
        .await?;
    state.outbox.wake();
    Ok(email)
}

pub async fn confirm(
    state: &AppState,
    email: &str,
    code: &str,
    new_password: String,
    peer: Option<IpAddr>,
) -> Result<(), ResetError> {
    let email = Email::parse(email).map_err(|_| ResetError::BadEmail)?;
    state
        .settings
        .local_accounts
        .check_new_password(&new_password)?;
    let e = email.clone();
    let account = state
        .db
        .run(move |c| local_accounts::account_for(c, &e))
        .await?;
    if let Some(a) = &account
        && let Some(retry_after_secs) = check_code_guess_limit(state, &a.user_id).await?
    {
        return Err(ResetError::Limited { retry_after_secs });
    }
    // Hashed before anything is known to be right, and for unknown addresses too.
    let hash = passwords::hash_async(Secret::new(new_password)).await?;
    let Some(account) = account else {
        return Err(ResetError::WrongCode);
    };
    let key = state.code_key.clone();
    let (user, given, ip) = (
        account.user_id.clone(),
        code.to_owned(),
        peer.map(|p| p.to_string()),
    );
    let revoked = state
        .db
        .run_write(move |c| {
            let now = Timestamp::now();
            if check_code(c, &key, &user, Purpose::ResetPassword, &given, now)? != CodeCheck::Right
            {
                return Ok(None);
            }
            credentials::set_password_hash(c, &user, &hash, now)?;
            let verified = local_accounts::mark_verified(c, &user, &email, now)?;
            let revoked = refresh_tokens::revoke_all_of_user(c, &user, now)?;
            let mut row = event(
                "local_password_reset",
                "complete",
                "email_code",
                Some(&user),
                None,
                ip,
            );
            row.detail = Some(
                serde_json::json!({
                    "revoked_refresh_tokens": revoked,
                    "removed_identities": verified.removed_identities.len(),
                })
                .to_string(),
            );
            audit::record(c, &row, now)?;
            Ok(Some(revoked))
        })
        .await?;
    match revoked {
        Some(revoked) => {
            tracing::info!(user = %account.user_id, revoked, "password reset");
            Ok(())
        }
        None => Err(ResetError::WrongCode),
    }
}
