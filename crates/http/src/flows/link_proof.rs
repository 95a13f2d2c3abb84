//! How the owner of an account can prove it during a manual link: its password, or a code sent
//! to one of its STORED verified addresses — never to an address a request names
//! (SECURITY-CASES E04, E20) — through a channel this deployment can actually send on.

use crate::tokens::opaque::{self, RandomError};
use aws_lc_rs::hmac;
use braid_core::{Email, Phone, Timestamp, UserId};
use braid_storage::repo::outbox::{self, Channel};
use braid_storage::repo::verification_codes::{self, NewCode};
use braid_storage::repo::{credentials, users};
use braid_storage::{DbConn, StorageError};

/// The channels a code can go out on here.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Delivery {
    pub email: bool,
    pub sms: bool,
}

/// One account's ways of proving ownership.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Proofs {
    pub password: bool,
    /// Where an email code would go: the primary verified address, else the first verified.
    pub email: Option<Email>,
    /// Where an SMS code would go when there is no email to send to.
    pub phone: Option<Phone>,
}

impl Proofs {
    pub fn of(c: &mut DbConn, user: &UserId, delivery: Delivery) -> Result<Self, StorageError> {
        let email = if delivery.email {
            let mut verified: Vec<_> = users::emails(c, user)?
                .into_iter()
                .filter(|e| e.is_verified())
                .collect();
            verified.sort_by_key(|e| !e.is_primary);
            verified.into_iter().next().map(|e| e.email)
        } else {
            None
        };
        let phone = if delivery.sms {
            users::phones(c, user)?
                .into_iter()
                .find(|p| p.is_verified())
                .map(|p| p.phone)
        } else {
            None
        };
        Ok(Self {
            password: credentials::password_hash(c, user)?.is_some(),
            email,
            phone,
        })
    }

    pub fn any(&self) -> bool {
        self.password || self.email.is_some() || self.phone.is_some()
    }
}

/// Limits of the one-time codes (`[account_linking.codes]`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CodeSettings {
    /// Seconds a code stays valid (at most 600).
    pub ttl: u64,
    /// Wrong codes that end the flow.
    pub max_attempts: i32,
    /// Codes one flow may send: the first and its resends.
    pub max_sends_per_flow: i64,
    /// Codes one account may be sent per hour, across flows.
    pub max_sends_per_account_per_hour: i64,
}

impl Default for CodeSettings {
    fn default() -> Self {
        Self {
            ttl: 600,
            max_attempts: 5,
            max_sends_per_flow: 4,
            max_sends_per_account_per_hour: 10,
        }
    }
}

impl CodeSettings {
    pub fn problems(&self) -> Vec<String> {
        let mut out = Vec::new();
        if !(60..=600).contains(&self.ttl) {
            out.push("account_linking.codes.ttl: must be between 60 and 600 seconds".into());
        }
        if !(1..=10).contains(&self.max_attempts) {
            out.push("account_linking.codes.max_attempts: must be between 1 and 10".into());
        }
        if !(1..=10).contains(&self.max_sends_per_flow) {
            out.push("account_linking.codes.max_sends_per_flow: must be between 1 and 10".into());
        }
        if self.max_sends_per_account_per_hour < 1 {
            out.push("account_linking.codes.max_sends_per_account_per_hour: at least 1".into());
        }
        out
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SendError {
    #[error("too many codes were sent; wait {retry_after_secs} s")]
    TooMany { retry_after_secs: u64 },
    #[error("the account has no verified address this deployment can send to")]
    NoChannel,
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error(transparent)]
    Random(#[from] RandomError),
}

/// A 6-digit code, uniform over 000000–999999 (rejection sampling: no modulo bias).
pub fn new_code() -> Result<String, RandomError> {
    loop {
        let mut bytes = [0u8; 4];
        getrandom::fill(&mut bytes).map_err(|_| RandomError)?;
        let n = u32::from_le_bytes(bytes);
        // 4_294_000_000 is the largest multiple of 1_000_000 that fits in a u32.
        if n < 4_294_000_000 {
            return Ok(format!("{:06}", n % 1_000_000));
        }
    }
}

/// Keys the stored hash of a code, so a copy of the database does not give the codes away
/// (a million candidates are no work for an unkeyed hash).
pub struct CodeKey(hmac::Key);

impl CodeKey {
    pub fn new(session_key: &[u8]) -> Self {
        let derived = hmac::sign(
            &hmac::Key::new(hmac::HMAC_SHA256, session_key),
            b"braid verification code v1",
        );
        Self(hmac::Key::new(hmac::HMAC_SHA256, derived.as_ref()))
    }

    /// Bound to the flow: the same digits of another flow hash differently.
    pub fn hash(&self, flow_id_hash: &[u8], code: &str) -> Vec<u8> {
        let mut ctx = hmac::Context::with_key(&self.0);
        ctx.update(flow_id_hash);
        ctx.update(code.trim().as_bytes());
        ctx.sign().as_ref().to_vec()
    }

    pub fn matches(&self, flow_id_hash: &[u8], given: &str, stored: &[u8]) -> bool {
        let computed = self.hash(flow_id_hash, given);
        aws_lc_rs::constant_time::verify_slices_are_equal(&computed, stored).is_ok()
    }
}

/// Everything a code send needs besides the connection.
pub struct CodeSend<'a> {
    pub key: &'a CodeKey,
    pub outbox: &'a crate::outbox::Outbox,
    pub limits: &'a CodeSettings,
    pub flow_id_hash: &'a [u8],
    pub user: &'a UserId,
    pub proofs: &'a Proofs,
    pub code: &'a str,
}

/// Sends a code to the account's stored verified address, in the caller's transaction: the
/// code row and its message are written together or not at all. Ends the flow's earlier
/// codes (a resend makes the previous one useless, SECURITY-CASES E10). Checks the limits
/// before writing anything.
pub fn send_code(c: &mut DbConn, s: &CodeSend<'_>, now: Timestamp) -> Result<(), SendError> {
    let (channel, destination) = match (&s.proofs.email, &s.proofs.phone) {
        (Some(email), _) => (Channel::Email, email.as_str().to_owned()),
        (None, Some(phone)) => (Channel::Sms, phone.as_str().to_owned()),
        (None, None) => return Err(SendError::NoChannel),
    };
    if verification_codes::sent_for_flow(c, s.flow_id_hash)? >= s.limits.max_sends_per_flow {
        return Err(SendError::TooMany {
            retry_after_secs: s.limits.ttl,
        });
    }
    let hour_ago = Timestamp::from_millis(now.as_millis() - 3_600_000);
    if verification_codes::sent_to_user_since(c, s.user, hour_ago)?
        >= s.limits.max_sends_per_account_per_hour
    {
        return Err(SendError::TooMany {
            retry_after_secs: 3600,
        });
    }
    let tries_left =
        s.limits.max_attempts - verification_codes::attempts_for_flow(c, s.flow_id_hash)?;
    if tries_left < 1 {
        return Err(SendError::TooMany {
            retry_after_secs: s.limits.ttl,
        });
    }
    verification_codes::end_open(c, s.flow_id_hash, now)?;
    let ttl = std::time::Duration::from_secs(s.limits.ttl);
    verification_codes::insert(
        c,
        &NewCode {
            id: opaque::random_token()?,
            flow_id_hash: s.flow_id_hash.to_vec(),
            user_id: s.user.clone(),
            channel: channel.as_str().to_owned(),
            destination: destination.clone(),
            code_hash: s.key.hash(s.flow_id_hash, s.code),
            max_attempts: tries_left,
            created_at: now,
            expires_at: now.plus(ttl),
        },
    )?;
    let minutes = s.limits.ttl.div_ceil(60);
    let messages = s.outbox.messages();
    let message = match (&s.proofs.email, &s.proofs.phone) {
        (Some(email), _) => messages.verification_code_email(email, s.code, minutes),
        (None, Some(phone)) => messages.verification_code_sms(phone, s.code, minutes),
        (None, None) => return Err(SendError::NoChannel),
    };
    // Delivered late, after an outage, a dead code would only confuse: it is given up instead.
    let message = message
        .map_err(|e| StorageError::Corrupt(e.to_string()))?
        .until(now.plus(ttl));
    outbox::enqueue(c, &message, now)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_six_digits_and_spread_over_all_of_them() {
        let mut seen_first = [false; 10];
        for _ in 0..2000 {
            let code = new_code().unwrap();
            assert_eq!(code.len(), 6);
            assert!(code.bytes().all(|b| b.is_ascii_digit()));
            seen_first[usize::from(code.as_bytes()[0] - b'0')] = true;
        }
        assert!(seen_first.iter().all(|s| *s), "leading zeros too");
    }

    #[test]
    fn a_code_hash_is_keyed_and_bound_to_its_flow() {
        let key = CodeKey::new(&[3; 64]);
        let stored = key.hash(b"flow-a", "123456");
        assert!(key.matches(b"flow-a", "123456", &stored));
        assert!(key.matches(b"flow-a", " 123456 ", &stored));
        assert!(!key.matches(b"flow-b", "123456", &stored));
        assert!(!key.matches(b"flow-a", "123457", &stored));
        assert!(!CodeKey::new(&[4; 64]).matches(b"flow-a", "123456", &stored));
        assert_ne!(stored, opaque::hash("123456"));
    }
}
