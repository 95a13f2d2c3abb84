//! Limits on guessing (SECURITY-CASES E16): how many password checks one account and one
//! client address get per window. Counted in the database, so every instance shares the counts
//! (DESIGN §8). Settings: `[limits]`.

use braid_core::{Timestamp, UserId};
use braid_storage::repo::rate_limits;
pub use braid_storage::repo::rate_limits::RateLimit;
use braid_storage::{Database, StorageError};
use serde::{Deserialize, Serialize};
use std::net::IpAddr;
use std::time::Duration;

/// `[limits]` in the configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct LimitSettings {
    /// Password checks one account gets per window, from any address.
    pub password_attempts_per_account: u32,
    /// Password checks one client address gets per window, whatever the accounts.
    pub password_attempts_per_address: u32,
    /// Window length in seconds; a window starts with its first attempt.
    pub password_window: u64,
}

impl Default for LimitSettings {
    fn default() -> Self {
        Self {
            password_attempts_per_account: 5,
            password_attempts_per_address: 20,
            password_window: 900,
        }
    }
}

impl LimitSettings {
    pub fn problems(&self) -> Vec<String> {
        let mut out = Vec::new();
        if self.password_attempts_per_account == 0 {
            out.push("limits.password_attempts_per_account: must be at least 1".into());
        }
        if self.password_attempts_per_address == 0 {
            out.push("limits.password_attempts_per_address: must be at least 1".into());
        }
        if !(1..=86_400).contains(&self.password_window) {
            out.push("limits.password_window: must be between 1 and 86400 seconds".into());
        }
        out
    }
}

/// Which limit answered `Limited`, for logs and pages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LimitedBy {
    Account,
    Address,
}

#[derive(Clone)]
pub struct Limiter {
    db: Database,
    settings: LimitSettings,
}

impl Limiter {
    pub fn new(db: Database, settings: LimitSettings) -> Self {
        Self { db, settings }
    }

    /// Counts one password attempt on `user`'s account from `peer` (the TCP peer address,
    /// `HttpRequest::peer_addr`; never a forwarded-for header a client can write) and answers
    /// whether the password may be checked. Call it before every check, whether or not the
    /// account has a password, so a limited answer tells nothing about the account.
    ///
    /// The address is counted first: an attempt refused for its address does not use up the
    /// account's attempts.
    pub async fn check_password_attempt(
        &self,
        user: &UserId,
        peer: Option<IpAddr>,
    ) -> Result<RateLimit, StorageError> {
        self.check_password_attempt_on(format!("pw:user:{user}"), user.to_string(), peer)
            .await
    }

    /// As [`Self::check_password_attempt`], for an attempt on an email address no account
    /// has: counted in a bucket of its own, so guessing at unknown addresses is limited
    /// exactly like guessing at accounts and a limited answer tells nothing.
    pub async fn check_password_attempt_on_address(
        &self,
        email: &braid_core::Email,
        peer: Option<IpAddr>,
    ) -> Result<RateLimit, StorageError> {
        let masked = braid_core::mask::mask_email(email.as_str());
        self.check_password_attempt_on(format!("pw:email:{}", email.as_str()), masked, peer)
            .await
    }

    async fn check_password_attempt_on(
        &self,
        bucket: String,
        account: String,
        peer: Option<IpAddr>,
    ) -> Result<RateLimit, StorageError> {
        let window = Duration::from_secs(self.settings.password_window);
        let per_address = self.settings.password_attempts_per_address;
        let per_account = self.settings.password_attempts_per_account;
        let address = peer.map(|ip| format!("pw:ip:{}", address_key(ip)));
        let verdict = self
            .db
            .run_write(move |c| {
                let now = Timestamp::now();
                if let Some(bucket) = &address
                    && let limited @ RateLimit::Limited { .. } =
                        rate_limits::hit(c, bucket, window, per_address, now)?
                {
                    return Ok((limited, Some(LimitedBy::Address)));
                }
                let answer = rate_limits::hit(c, &bucket, window, per_account, now)?;
                Ok((answer, (!answer.is_allowed()).then_some(LimitedBy::Account)))
            })
            .await?;
        if let (RateLimit::Limited { retry_after }, Some(by)) = verdict {
            tracing::warn!(account = %account, limited_by = ?by, retry_after_secs = retry_after.as_secs(), "password attempts limited");
        }
        Ok(verdict.0)
    }

    /// Counts one hit on any bucket: at most `max` per `window`. For other limits (code
    /// resends, code attempts per account); name buckets `<what>:<scope>:<key>`.
    pub async fn hit(
        &self,
        bucket: String,
        max: u32,
        window: Duration,
    ) -> Result<RateLimit, StorageError> {
        self.db
            .run_write(move |c| rate_limits::hit(c, &bucket, window, max, Timestamp::now()))
            .await
    }
}

/// What one client is counted as: an IPv4 address, or an IPv6 /64 (one subscriber's
/// allocation: counting single IPv6 addresses would give each client billions of buckets).
pub fn address_key(ip: IpAddr) -> String {
    match ip.to_canonical() {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => {
            let s = v6.segments();
            format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
        }
    }
}

/// The `Retry-After` value (whole seconds, rounded up) for a limited answer.
pub fn retry_after_secs(retry_after: Duration) -> u64 {
    retry_after.as_secs() + u64::from(retry_after.subsec_nanos() > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv6_clients_are_counted_by_their_64_and_mapped_ipv4_as_ipv4() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:bbbb::2".parse().unwrap();
        assert_eq!(address_key(a), address_key(b));
        assert_eq!(address_key(a), "2001:db8:1:2::/64");
        let mapped: IpAddr = "::ffff:192.0.2.7".parse().unwrap();
        assert_eq!(address_key(mapped), "192.0.2.7");
    }

    #[test]
    fn retry_after_rounds_up_to_whole_seconds() {
        assert_eq!(retry_after_secs(Duration::from_millis(1)), 1);
        assert_eq!(retry_after_secs(Duration::from_secs(60)), 60);
        assert_eq!(retry_after_secs(Duration::from_millis(60_001)), 61);
    }

    #[test]
    fn defaults_are_valid_and_zero_limits_are_not() {
        assert!(LimitSettings::default().problems().is_empty());
        let zero = LimitSettings {
            password_attempts_per_account: 0,
            password_attempts_per_address: 0,
            password_window: 0,
        };
        assert_eq!(zero.problems().len(), 3);
    }
}
