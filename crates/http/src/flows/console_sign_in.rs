//! Signing in to the admin console as a Braid user marked administrator. The console is a
//! client of Braid's own sign-in ([`crate::clients::CONSOLE_CLIENT_ID`]): [`start`] keeps a
//! random `state` and PKCE verifier in a short-lived sealed cookie and sends the browser to
//! `GET /auth/connect/{provider}`; the normal sign-in ends with an exchange code at
//! `/admin/callback`, where [`finish`] checks the state, redeems the code in-process with the
//! verifier and accepts only an enabled administrator who has just signed in.

use crate::clients::CONSOLE_CLIENT_ID;
use crate::flows::token_issue::AuthContext;
use crate::state::AppState;
use crate::tokens::opaque::{self, RandomError};
use braid_core::{Timestamp, UserId};
use braid_storage::StorageError;
use braid_storage::repo::{exchange_codes, users};
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// The purpose the pending sign-in cookie's key is derived for.
pub const PURPOSE: &str = "braid admin console sign-in v1";
/// How long the browser has to come back from the provider.
pub const PENDING_TTL: Duration = Duration::from_secs(600);
/// How recent the user's authentication must be. The exchange code itself lives 60 s, so
/// this only refuses a code whose sign-in was older (e.g. a reused upstream session).
pub const MAX_AUTH_AGE: Duration = Duration::from_secs(300);

#[derive(Debug, thiserror::Error)]
pub enum ConsoleSignInError {
    #[error("the sign-in could not be matched to this browser (it expired or the state is wrong)")]
    StateMismatch,
    #[error("the sign-in code is invalid, expired or already used, or the account is disabled")]
    InvalidCode,
    #[error("this account is not an administrator")]
    NotAdmin,
    #[error("the sign-in is not recent enough; please sign in again")]
    NotFresh,
    #[error(transparent)]
    Random(#[from] RandomError),
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// What the pending cookie holds between [`start`] and [`finish`].
#[derive(Debug, Serialize, Deserialize)]
struct Pending {
    state: String,
    verifier: String,
    /// Unix milliseconds.
    exp: i64,
}

/// Where to send the browser, and the sealed value of the pending sign-in cookie.
pub struct Started {
    pub location: String,
    pub cookie_value: String,
}

pub fn start(state: &AppState, provider: &str) -> Result<Started, ConsoleSignInError> {
    let pending = Pending {
        state: opaque::random_token()?,
        verifier: opaque::random_token()?,
        exp: Timestamp::now().plus(PENDING_TTL).as_millis(),
    };
    let query: String = form_urlencoded::Serializer::new(String::new())
        .append_pair("client_id", CONSOLE_CLIENT_ID)
        .append_pair("redirect_uri", &redirect_uri(state))
        .append_pair("state", &pending.state)
        .append_pair("code_challenge", &opaque::pkce_s256(&pending.verifier))
        .append_pair("code_challenge_method", "S256")
        .finish();
    let provider: String = form_urlencoded::byte_serialize(provider.as_bytes()).collect();
    // Serialising plain fields cannot fail.
    let cookie_value = state
        .console_sign_in_sealer
        .seal(&serde_json::to_vec(&pending).unwrap_or_default())?;
    Ok(Started {
        location: format!("/auth/connect/{provider}?{query}"),
        cookie_value,
    })
}

/// The administrator the sign-in proves, or why it does not.
pub async fn finish(
    state: &AppState,
    cookie_value: Option<&str>,
    given_state: Option<&str>,
    code: Option<&str>,
) -> Result<UserId, ConsoleSignInError> {
    let pending: Pending = cookie_value
        .filter(|v| v.len() <= 1024)
        .and_then(|v| state.console_sign_in_sealer.open(v))
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .filter(|p: &Pending| p.exp > Timestamp::now().as_millis())
        .ok_or(ConsoleSignInError::StateMismatch)?;
    if !given_state.is_some_and(|s| opaque::same_secret(s, &pending.state)) {
        return Err(ConsoleSignInError::StateMismatch);
    }
    let code_hash = opaque::hash(code.ok_or(ConsoleSignInError::InvalidCode)?);
    let redirect = redirect_uri(state);
    state
        .db
        .run_write(move |c| {
            let now = Timestamp::now();
            // Consumed first: a code is used once whatever the outcome.
            let Some(found) = exchange_codes::consume(c, &code_hash, now)? else {
                return Ok(Err(ConsoleSignInError::InvalidCode));
            };
            let pkce_ok = found.code_challenge.as_deref().is_some_and(|challenge| {
                opaque::same_secret(&opaque::pkce_s256(&pending.verifier), challenge)
            });
            if found.client_id != CONSOLE_CLIENT_ID || found.redirect_uri != redirect || !pkce_ok {
                return Ok(Err(ConsoleSignInError::InvalidCode));
            }
            let fresh = AuthContext::parse(&found.auth_context)
                .auth_time
                .is_some_and(|t| t >= now.as_millis() - MAX_AUTH_AGE.as_millis() as i64);
            if !fresh {
                return Ok(Err(ConsoleSignInError::NotFresh));
            }
            match users::find(c, &found.user_id)? {
                Some(user) if user.is_admin && !user.disabled => Ok(Ok(user.id)),
                _ => Ok(Err(ConsoleSignInError::NotAdmin)),
            }
        })
        .await?
}

fn redirect_uri(state: &AppState) -> String {
    format!(
        "{}/admin/callback",
        state.settings.server.public_url().trim_end_matches('/')
    )
}
