//! Local accounts (`[local_accounts]`): sign-up with an email address and a password, email
//! verification and password reset by emailed code. What the flows share lives here: the
//! settings, the password rules, the one-time codes and the limits on the mail they send.
//! The flows are `flows::local_*`, the routes `routes::local`.

use crate::flows::link_proof::{CodeKey, new_code};
use crate::limiter::retry_after_secs;
use crate::outbox::Outbox;
use crate::state::AppState;
use crate::tokens::opaque;
use braid_core::{Email, Timestamp, UserId};
use braid_storage::repo::account_codes::{self, NewAccountCode};
use braid_storage::repo::outbox;
use braid_storage::repo::rate_limits::RateLimit;
use braid_storage::{DbConn, StorageError};
use serde::{Deserialize, Serialize};
use std::collections::HashSet;
use std::net::IpAddr;
use std::sync::OnceLock;
use std::time::Duration;

/// `[local_accounts]` in the configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LocalAccountSettings {
    /// Whether people may sign up and sign in with an email address and a password.
    pub enabled: bool,
    /// Fewest characters (Unicode scalar values) a new password may have; at least 8.
    pub password_min_length: usize,
    /// Most characters a new password may have (long passphrases welcome; the cap bounds the
    /// hashing work of one request).
    pub password_max_length: usize,
    /// Seconds a verification or reset code stays valid (60–600).
    pub code_ttl: u64,
    /// Wrong guesses that void a code.
    pub code_max_attempts: i32,
    /// Requests that send mail (sign-up, new code, reset) per email address per hour,
    /// whether or not the address has an account.
    pub emails_per_address_per_hour: u32,
    /// Such requests per client address (IPv4 or IPv6 /64) per hour.
    pub requests_per_client_per_hour: u32,
}

impl Default for LocalAccountSettings {
    fn default() -> Self {
        Self {
            enabled: false,
            password_min_length: 8,
            password_max_length: 128,
            code_ttl: 600,
            code_max_attempts: 5,
            emails_per_address_per_hour: 5,
            requests_per_client_per_hour: 30,
        }
    }
}

impl LocalAccountSettings {
    pub fn problems(&self, smtp_configured: bool) -> Vec<String> {
        let mut out = Vec::new();
        if self.password_min_length < 8 {
            out.push("local_accounts.password_min_length: must be at least 8".into());
        }
        if !(64..=1024).contains(&self.password_max_length) {
            out.push("local_accounts.password_max_length: must be between 64 and 1024".into());
        }
        if self.password_min_length > self.password_max_length {
            out.push(
                "local_accounts.password_min_length: must not exceed password_max_length".into(),
            );
        }
        if !(60..=600).contains(&self.code_ttl) {
            out.push("local_accounts.code_ttl: must be between 60 and 600 seconds".into());
        }
        if !(1..=10).contains(&self.code_max_attempts) {
            out.push("local_accounts.code_max_attempts: must be between 1 and 10".into());
        }
        if self.emails_per_address_per_hour == 0 {
            out.push("local_accounts.emails_per_address_per_hour: must be at least 1".into());
        }
        if self.requests_per_client_per_hour == 0 {
            out.push("local_accounts.requests_per_client_per_hour: must be at least 1".into());
        }
        if self.enabled && !smtp_configured {
            out.push(
                "local_accounts.enabled: needs smtp.url: addresses are verified and passwords reset by emailed codes"
                    .into(),
            );
        }
        out
    }
}

/// Why a new password is refused (OWASP ASVS V2.1: length and a list of common passwords,
/// no composition rules).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PasswordRefused {
    #[error("the password must have at least {0} characters")]
    TooShort(usize),
    #[error("the password must have at most {0} characters")]
    TooLong(usize),
    #[error("this password is one of the most common passwords; choose another")]
    Common,
}

/// The most common passwords, lower-cased (see the file's header for where they come from).
fn common_passwords() -> &'static HashSet<&'static str> {
    static LIST: OnceLock<HashSet<&'static str>> = OnceLock::new();
    LIST.get_or_init(|| {
        include_str!("common_passwords.txt")
            .lines()
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .collect()
    })
}

/// Loads the list now, so the first sign-up does not pay for it.
pub fn preload_common_passwords() {
    common_passwords();
}

impl LocalAccountSettings {
    /// Whether `password` may be a new password. Any Unicode is allowed and nothing is
    /// trimmed or truncated; length counts characters.
    pub fn check_new_password(&self, password: &str) -> Result<(), PasswordRefused> {
        let chars = password.chars().count();
        if chars < self.password_min_length {
            return Err(PasswordRefused::TooShort(self.password_min_length));
        }
        if chars > self.password_max_length {
            return Err(PasswordRefused::TooLong(self.password_max_length));
        }
        if common_passwords().contains(password.to_lowercase().as_str()) {
            return Err(PasswordRefused::Common);
        }
        Ok(())
    }
}

/// What a code proves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    VerifyEmail,
    ResetPassword,
}

impl Purpose {
    pub fn as_str(self) -> &'static str {
        match self {
            Purpose::VerifyEmail => "verify_email",
            Purpose::ResetPassword => "reset_password",
        }
    }

    /// What the code's hash is bound to: the same digits for another account or purpose hash
    /// differently.
    fn binding(self, user: &UserId) -> Vec<u8> {
        format!("local:{}:{user}", self.as_str()).into_bytes()
    }
}

/// The mail limits, counted for every request whether or not the address has an account, so
/// a refusal tells nothing about the address.
pub async fn check_mail_limits(
    state: &AppState,
    email: &Email,
    peer: Option<IpAddr>,
) -> Result<Option<u64>, StorageError> {
    let s = &state.settings.local_accounts;
    let hour = Duration::from_secs(3600);
    if let Some(ip) = peer {
        let bucket = format!("local:ip:{}", crate::limiter::address_key(ip));
        if let RateLimit::Limited { retry_after } = state
            .limiter
            .hit(bucket, s.requests_per_client_per_hour, hour)
            .await?
        {
            return Ok(Some(retry_after_secs(retry_after)));
        }
    }
    let bucket = format!("local:mail:{}", email.as_str());
    match state
        .limiter
        .hit(bucket, s.emails_per_address_per_hour, hour)
        .await?
    {
        RateLimit::Limited { retry_after } => Ok(Some(retry_after_secs(retry_after))),
        RateLimit::Allowed => Ok(None),
    }
}

/// Everything sending a code needs besides the connection.
pub struct CodeMail {
    pub key: std::sync::Arc<CodeKey>,
    pub outbox: std::sync::Arc<Outbox>,
    pub ttl: Duration,
    pub max_attempts: i32,
}

impl CodeMail {
    pub fn of(state: &AppState) -> Self {
        let s = &state.settings.local_accounts;
        Self {
            key: state.code_key.clone(),
            outbox: state.outbox.clone(),
            ttl: Duration::from_secs(s.code_ttl),
            max_attempts: s.code_max_attempts,
        }
    }

    /// Stores a new code for `user` (ending its open one of the same purpose) and queues the
    /// mail with it, in the caller's transaction. The mail is given up once the code expired.
    pub fn send(
        &self,
        c: &mut DbConn,
        user: &UserId,
        email: &Email,
        purpose: Purpose,
        now: Timestamp,
    ) -> Result<(), StorageError> {
        let code = new_code().map_err(|e| StorageError::Unavailable(e.to_string()))?;
        let id = opaque::random_token().map_err(|e| StorageError::Unavailable(e.to_string()))?;
        account_codes::replace(
            c,
            &NewAccountCode {
                id,
                user_id: user.clone(),
                purpose: purpose.as_str(),
                email: email.as_str().to_owned(),
                code_hash: self.key.hash(&purpose.binding(user), &code),
                max_attempts: self.max_attempts,
                created_at: now,
                expires_at: now.plus(self.ttl),
            },
        )?;
        let minutes = self.ttl.as_secs().div_ceil(60);
        let message = self
            .outbox
            .messages()
            .local_code_email(email, purpose, &code, minutes)
            .map_err(|e| StorageError::Corrupt(e.to_string()))?
            .until(now.plus(self.ttl));
        outbox::enqueue(c, &message, now)?;
        Ok(())
    }

    /// Queues the "you already have an account" mail to an address someone signed up with.
    pub fn send_account_exists(
        &self,
        c: &mut DbConn,
        email: &Email,
        now: Timestamp,
    ) -> Result<(), StorageError> {
        let message = self
            .outbox
            .messages()
            .account_exists_email(email)
            .map_err(|e| StorageError::Corrupt(e.to_string()))?;
        outbox::enqueue(c, &message, now)?;
        Ok(())
    }
}

/// The answer to a guess at a code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CodeCheck {
    /// Right, and now used.
    Right,
    Wrong {
        tries_left: i32,
    },
    /// No open code: never sent, expired, used, or voided by wrong guesses.
    NoCode,
}

/// One counted guess at `user`'s open code of `purpose`, consumed when right; in the caller's
/// transaction, so what the code proves is written with its consumption.
pub fn check_code(
    c: &mut DbConn,
    key: &CodeKey,
    user: &UserId,
    purpose: Purpose,
    given: &str,
    now: Timestamp,
) -> Result<CodeCheck, StorageError> {
    let Some(guess) = account_codes::guess(c, user, purpose.as_str(), now)? else {
        return Ok(CodeCheck::NoCode);
    };
    if key.matches(&purpose.binding(user), given, &guess.code_hash) {
        if account_codes::consume(c, &guess.id, now)? {
            return Ok(CodeCheck::Right);
        }
        return Ok(CodeCheck::NoCode);
    }
    Ok(CodeCheck::Wrong {
        tries_left: guess.max_attempts - guess.attempts,
    })
}

/// Wrong codes one account may take per hour, whatever their purpose (shared with manual
/// linking's codes: SECURITY-CASES E05).
pub async fn check_code_guess_limit(
    state: &AppState,
    user: &UserId,
) -> Result<Option<u64>, StorageError> {
    crate::flows::link_verify::code_guess_limit(state, user).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn length_counts_characters_and_common_passwords_are_refused_in_any_case() {
        let s = LocalAccountSettings::default();
        assert_eq!(
            s.check_new_password("short12"),
            Err(PasswordRefused::TooShort(8))
        );
        assert_eq!(
            s.check_new_password("ünïcödé"),
            Err(PasswordRefused::TooShort(8))
        );
        assert_eq!(s.check_new_password("ünïcödé!"), Ok(()));
        assert_eq!(
            s.check_new_password(&"x".repeat(129)),
            Err(PasswordRefused::TooLong(128))
        );
        assert_eq!(s.check_new_password(&"x1".repeat(64)), Ok(()));
        for common in ["password", "PassWord", "12345678", "iloveyou", "QWERTYUIOP"] {
            assert_eq!(
                s.check_new_password(common),
                Err(PasswordRefused::Common),
                "{common}"
            );
        }
        assert_eq!(s.check_new_password("correct horse battery"), Ok(()));
        assert_eq!(common_passwords().len(), 10_000);
    }

    #[test]
    fn defaults_are_valid_and_bad_values_are_named() {
        assert!(LocalAccountSettings::default().problems(false).is_empty());
        let on = LocalAccountSettings {
            enabled: true,
            ..Default::default()
        };
        assert_eq!(on.problems(false).len(), 1);
        assert!(on.problems(true).is_empty());
        let bad = LocalAccountSettings {
            password_min_length: 6,
            password_max_length: 10,
            code_ttl: 3600,
            code_max_attempts: 0,
            emails_per_address_per_hour: 0,
            requests_per_client_per_hour: 0,
            enabled: false,
        };
        assert_eq!(bad.problems(true).len(), 6);
    }
}
