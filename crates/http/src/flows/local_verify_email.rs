//! `POST /auth/local/verify-email` (page) and `POST /auth/verify-email` (JSON): the code sent
//! at sign-up, together with the account's password, confirms the address and signs in (an
//! exchange code for the app, as after any sign-in).
//!
//! Both are asked for because each proves something else: the code that the person reads the
//! mailbox, the password that they created the account. The owner of an address that someone
//! else signed up with gets the code but not the password, and must use the password reset
//! instead, which replaces the other person's password.
//!
//! Confirming the address removes the identities linked to the account while it was not
//! confirmed (SECURITY-CASES D10) and revokes its refresh tokens, in the transaction that uses
//! the code.

use crate::flows::callback::AppRedirect;
use crate::flows::connect::AppTarget;
use crate::flows::local_sign_in::{
    Authenticated, SignedIn, authenticate, event, insert_exchange_code,
};
use crate::local_accounts::{CodeCheck, Purpose, check_code, check_code_guess_limit};
use crate::state::AppState;
use crate::tokens::opaque::{self, RandomError};
use braid_core::{Email, Timestamp};
use braid_storage::StorageError;
use braid_storage::repo::local_accounts;
use braid_storage::repo::{audit, refresh_tokens};
use std::net::IpAddr;
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum VerifyEmailError {
    #[error("the email address or the password is not right")]
    WrongCredentials,
    #[error("the code is not right")]
    WrongCode { tries_left: i32 },
    #[error(
        "there is no valid code: it expired, was used, or had too many wrong tries; ask for a new one"
    )]
    NoCode,
    #[error("this address is already confirmed; sign in")]
    AlreadyVerified,
    #[error("this address is confirmed for another account")]
    AddressTaken,
    #[error("too many attempts; wait {retry_after_secs} s")]
    Limited { retry_after_secs: u64 },
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error(transparent)]
    Random(#[from] RandomError),
}

pub async fn verify(
    state: &AppState,
    target: &AppTarget,
    email: &str,
    password: String,
    code: &str,
    peer: Option<IpAddr>,
) -> Result<SignedIn, VerifyEmailError> {
    let kind = "local_verify_email";
    let account = match authenticate(state, kind, target, email, password, peer).await? {
        Authenticated::Yes(account) => account,
        Authenticated::No => return Err(VerifyEmailError::WrongCredentials),
        Authenticated::Limited(retry_after_secs) => {
            return Err(VerifyEmailError::Limited { retry_after_secs });
        }
    };
    // Parsed by `authenticate` already.
    let email = Email::parse(email).map_err(|_| VerifyEmailError::WrongCredentials)?;
    if account.unverified_since.is_none() {
        return Err(VerifyEmailError::AlreadyVerified);
    }
    let user = account.user_id.clone();
    if let Some(retry_after_secs) = check_code_guess_limit(state, &user).await? {
        return Err(VerifyEmailError::Limited { retry_after_secs });
    }
    let exchange_code = opaque::random_token()?;
    let code_hash = opaque::hash(&exchange_code);
    let ttl = Duration::from_secs(state.settings.tokens.exchange_code_ttl);
    let key = state.code_key.clone();
    let (t, given, ip) = (target.clone(), code.to_owned(), peer.map(|p| p.to_string()));
    let removed = state
        .db
        .run_write(move |c| {
            let now = Timestamp::now();
            match check_code(c, &key, &user, Purpose::VerifyEmail, &given, now)? {
                CodeCheck::Right => {}
                CodeCheck::Wrong { tries_left } => {
                    return Ok(Err(VerifyEmailError::WrongCode { tries_left }));
                }
                CodeCheck::NoCode => return Ok(Err(VerifyEmailError::NoCode)),
            }
            let verified = local_accounts::mark_verified(c, &user, &email, now)?;
            refresh_tokens::revoke_all_of_user(c, &user, now)?;
            insert_exchange_code(c, &t, &user, code_hash, now, ttl)?;
            let removed = verified.removed_identities.len();
            let mut row = event(
                "local_verify_email",
                "complete",
                "email_code",
                Some(&user),
                Some(&t.client_id),
                ip,
            );
            row.detail = Some(serde_json::json!({ "removed_identities": removed }).to_string());
            audit::record(c, &row, now)?;
            Ok(Ok(removed))
        })
        .await
        .map_err(|e| match e {
            // Another user confirmed the address meanwhile: nothing was written, the code
            // stays unused.
            StorageError::Conflict(_) => VerifyEmailError::AddressTaken,
            other => VerifyEmailError::Storage(other),
        })??;
    if removed > 0 {
        tracing::warn!(user = %account.user_id, removed, "address confirmed: identities linked while it was unconfirmed were removed");
    }
    tracing::info!(user = %account.user_id, "local account address confirmed");
    let redirect = AppRedirect::with_code(
        &target.redirect_uri,
        &exchange_code,
        target.state.as_deref(),
        &state.issuer,
    )?;
    Ok(SignedIn {
        code: exchange_code,
        redirect,
    })
}
