//! `POST /auth/local/sign-in` (page) and `POST /auth/login` (JSON): a local account's email
//! address and password, checked behind the same limits as every password check, end in an
//! exchange code for the app exactly as a federated sign-in does. An address nobody has costs
//! the same password work and gets the same answer as a wrong password. An account whose
//! address is not confirmed yet cannot sign in: whoever created it may not own the address
//! (SECURITY-CASES D02, D10).

use crate::flows::callback::AppRedirect;
use crate::flows::connect::AppTarget;
use crate::limiter::retry_after_secs;
use crate::passwords;
use crate::state::AppState;
use crate::tokens::opaque::{self, RandomError};
use braid_core::{Email, Secret, Timestamp, UserId};
use braid_storage::repo::audit::{self, AuditEvent};
use braid_storage::repo::exchange_codes::{self, NewExchangeCode};
use braid_storage::repo::local_accounts::{self, Account};
use braid_storage::repo::rate_limits::RateLimit;
use braid_storage::repo::users;
use braid_storage::{DbConn, StorageError};
use std::net::IpAddr;
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum SignInError {
    #[error("the email address or the password is not right")]
    WrongCredentials,
    #[error("the email address is not confirmed yet")]
    EmailNotVerified,
    #[error("the account is disabled")]
    UserDisabled,
    #[error("too many attempts; wait {retry_after_secs} s")]
    Limited { retry_after_secs: u64 },
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error(transparent)]
    Random(#[from] RandomError),
}

/// A completed sign-in: the exchange code, and the redirect to the app that carries it.
pub struct SignedIn {
    pub code: String,
    pub redirect: AppRedirect,
}

/// The `idp` of tokens issued after a local sign-in.
pub const LOCAL_IDP: &str = "local";

pub async fn sign_in(
    state: &AppState,
    target: &AppTarget,
    email: &str,
    password: String,
    peer: Option<IpAddr>,
) -> Result<SignedIn, SignInError> {
    let account = match authenticate(state, "local_sign_in", target, email, password, peer).await? {
        Authenticated::Yes(account) => account,
        Authenticated::No => return Err(SignInError::WrongCredentials),
        Authenticated::Limited(retry_after_secs) => {
            return Err(SignInError::Limited { retry_after_secs });
        }
    };
    let code = opaque::random_token()?;
    let code_hash = opaque::hash(&code);
    let ttl = Duration::from_secs(state.settings.tokens.exchange_code_ttl);
    let (t, user) = (target.clone(), account.user_id.clone());
    let ip = peer.map(|p| p.to_string());
    state
        .db
        .run_write(move |c| {
            let now = Timestamp::now();
            let refusal = match users::find(c, &user)? {
                Some(u) if u.disabled => Some((SignInError::UserDisabled, "user_disabled")),
                None => Some((SignInError::WrongCredentials, "unknown_address")),
                Some(_) if !account.verified => {
                    Some((SignInError::EmailNotVerified, "email_not_verified"))
                }
                Some(_) => None,
            };
            let (result, reason) = match &refusal {
                Some((_, reason)) => ("failure", *reason),
                None => {
                    insert_exchange_code(c, &t, &user, code_hash, now, ttl)?;
                    ("complete", "password")
                }
            };
            let client = Some(t.client_id.as_str());
            let row = event("local_sign_in", result, reason, Some(&user), client, ip);
            audit::record(c, &row, now)?;
            Ok(refusal.map(|(e, _)| e))
        })
        .await?
        .map_or(Ok(()), Err)?;
    tracing::info!(user = %account.user_id, client = %target.client_id, "local sign-in complete");
    let redirect = AppRedirect::with_code(
        &target.redirect_uri,
        &code,
        target.state.as_deref(),
        &state.issuer,
    )?;
    Ok(SignedIn { code, redirect })
}

/// What a password check on an email address came to.
pub(crate) enum Authenticated {
    Yes(Account),
    /// A wrong password, an address no account has, or one that is not an address (its
    /// failure is in the audit trail).
    No,
    /// Over a password limit: seconds to wait. Nothing was checked.
    Limited(u64),
}

/// Counts the attempt (per account, or per address when no account has it, and per client
/// address), then checks the password off the event loop: against the account's hash, or
/// against a dummy hash of the same cost when there is no account. A failure is recorded as
/// `kind` with the reason.
pub(crate) async fn authenticate(
    state: &AppState,
    kind: &'static str,
    target: &AppTarget,
    email: &str,
    password: String,
    peer: Option<IpAddr>,
) -> Result<Authenticated, StorageError> {
    let Ok(email) = Email::parse(email) else {
        return Ok(Authenticated::No);
    };
    let e = email.clone();
    let account = state
        .db
        .run(move |c| local_accounts::account_for(c, &e))
        .await?;
    let limit = match &account {
        Some(a) => {
            state
                .limiter
                .check_password_attempt(&a.user_id, peer)
                .await?
        }
        None => {
            state
                .limiter
                .check_password_attempt_on_address(&email, peer)
                .await?
        }
    };
    if let RateLimit::Limited { retry_after } = limit {
        return Ok(Authenticated::Limited(retry_after_secs(retry_after)));
    }
    let right = match &account {
        Some(a) => {
            passwords::check_user_password(&state.db, &a.user_id, Secret::new(password)).await?
        }
        None => {
            passwords::verify_async(Secret::new(password), None)
                .await
                .ok
        }
    };
    match account {
        Some(account) if right => Ok(Authenticated::Yes(account)),
        account => {
            let reason = if account.is_some() {
                "wrong_password"
            } else {
                "unknown_address"
            };
            let user = account.map(|a| a.user_id);
            let client = Some(target.client_id.as_str());
            record(state, kind, "failure", reason, user.as_ref(), client, peer).await?;
            Ok(Authenticated::No)
        }
    }
}

/// The exchange code of a local sign-in, bound to the app's client, redirect URI and PKCE
/// challenge like a federated sign-in's.
pub(crate) fn insert_exchange_code(
    c: &mut DbConn,
    target: &AppTarget,
    user: &UserId,
    code_hash: Vec<u8>,
    now: Timestamp,
    ttl: Duration,
) -> Result<(), StorageError> {
    exchange_codes::insert(
        c,
        &NewExchangeCode {
            code_hash,
            client_id: target.client_id.clone(),
            redirect_uri: target.redirect_uri.clone(),
            code_challenge: target.code_challenge.clone(),
            code_challenge_method: target.code_challenge.as_ref().map(|_| "S256".to_owned()),
            user_id: user.clone(),
            auth_context: serde_json::json!({ "idp": LOCAL_IDP }).to_string(),
            created_at: now,
            expires_at: now.plus(ttl),
        },
    )
}

/// An audit row of a local account event (`kind` `local_sign_up`, `local_sign_in`,
/// `local_verify_email`, `local_password_reset`).
pub(crate) fn event(
    kind: &str,
    result: &str,
    reason: &str,
    user: Option<&UserId>,
    client: Option<&str>,
    ip: Option<String>,
) -> AuditEvent {
    AuditEvent {
        kind: kind.into(),
        result: Some(result.into()),
        reason: Some(reason.into()),
        user_id: user.map(ToString::to_string),
        provider: Some(LOCAL_IDP.into()),
        client_id: client.map(str::to_owned),
        ip,
        ..AuditEvent::default()
    }
}

/// Writes one audit row on its own.
pub(crate) async fn record(
    state: &AppState,
    kind: &'static str,
    result: &'static str,
    reason: &'static str,
    user: Option<&UserId>,
    client: Option<&str>,
    peer: Option<IpAddr>,
) -> Result<(), StorageError> {
    let e = event(
        kind,
        result,
        reason,
        user,
        client,
        peer.map(|p| p.to_string()),
    );
    state
        .db
        .run_write(move |c| audit::record(c, &e, Timestamp::now()))
        .await
}
