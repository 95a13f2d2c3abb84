//! A manual link in progress, as the browser holds it: a sealed cookie with the flow's random
//! id (its `jti`) and expiry. Everything else — the pending identity, the candidates, the
//! picked account, codes and their attempt counters, whether the flow ended — is server-side
//! (`repo::link_flows`, `repo::verification_codes`), so a replayed older cookie gains nothing
//! (SECURITY-CASES E12–E15). The CSRF token of the flow's forms is derived from its id.

use crate::tokens::opaque::{self, RandomError};
use crate::tokens::sealed::Sealer;
use aws_lc_rs::hmac;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use braid_core::Timestamp;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// The purpose the link cookie's key is derived for.
pub const PURPOSE: &str = "braid link flow v1";

/// Name and path of the link cookie: `__Host-` over https, scoped to the connect routes over
/// plain http (as the login flow cookie).
pub fn link_cookie(secure: bool) -> (&'static str, &'static str) {
    if secure {
        ("__Host-braid_link", "/")
    } else {
        ("braid_link", "/auth/connect")
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkState {
    /// 256 random bits: the flow's id; the server stores only its hash.
    pub id: String,
    /// Unix milliseconds.
    pub exp: i64,
    /// The origin of the app's redirect URI: where an expired or ended flow's page points.
    pub back: Option<String>,
}

impl LinkState {
    pub fn new(ttl: Duration, now: Timestamp, back: Option<String>) -> Result<Self, RandomError> {
        Ok(Self {
            id: opaque::random_token()?,
            exp: now.plus(ttl).as_millis(),
            back,
        })
    }

    pub fn is_expired(&self, now: Timestamp) -> bool {
        self.exp <= now.as_millis()
    }

    pub fn expires_at(&self) -> Timestamp {
        Timestamp::from_millis(self.exp)
    }

    pub fn seal(&self, sealer: &Sealer) -> Result<String, RandomError> {
        // Serialising two plain fields cannot fail.
        sealer.seal(&serde_json::to_vec(self).unwrap_or_default())
    }

    /// The state in `cookie`, if this deployment sealed it (expired or not: the caller tells
    /// the person which, with the way back the state knows).
    pub fn open(sealer: &Sealer, cookie: &str) -> Option<Self> {
        if cookie.len() > 1024 {
            return None;
        }
        serde_json::from_slice(&sealer.open(cookie)?).ok()
    }

    /// What `repo::link_flows` keys the flow by.
    pub fn id_hash(&self) -> Vec<u8> {
        opaque::hash(&self.id)
    }
}

/// Signs CSRF tokens: one per flow, bound to its id, so a form of another flow (or none)
/// does not pass (SECURITY-CASES E03, G03, G04).
pub struct CsrfKey(hmac::Key);

impl CsrfKey {
    pub fn new(session_key: &[u8]) -> Self {
        let derived = hmac::sign(
            &hmac::Key::new(hmac::HMAC_SHA256, session_key),
            b"braid csrf v1",
        );
        Self(hmac::Key::new(hmac::HMAC_SHA256, derived.as_ref()))
    }

    pub fn token(&self, state: &LinkState) -> String {
        self.token_for(&state.id)
    }

    pub fn check(&self, state: &LinkState, given: Option<&str>) -> bool {
        self.check_for(&state.id, given)
    }

    /// The token of the forms bound to `id` (a link flow, an admin console session, or a
    /// browser's random form key).
    pub fn token_for(&self, id: &str) -> String {
        B64.encode(hmac::sign(&self.0, id.as_bytes()).as_ref())
    }

    pub fn check_for(&self, id: &str, given: Option<&str>) -> bool {
        given.is_some_and(|g| opaque::same_secret(g, &self.token_for(id)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn e12_e14_a_link_cookie_opens_only_as_sealed_and_until_it_expires() {
        let sealer = Sealer::new(&[7; 64], PURPOSE).unwrap();
        let now = Timestamp::from_millis(1_000_000);
        let state = LinkState::new(Duration::from_secs(600), now, None).unwrap();
        let cookie = state.seal(&sealer).unwrap();
        assert!(!cookie.contains(&state.id[..8]), "the id is not readable");
        assert_eq!(LinkState::open(&sealer, &cookie), Some(state.clone()));
        assert!(!state.is_expired(now));
        assert!(state.is_expired(state.expires_at()));
        let mut tampered = cookie.into_bytes();
        tampered[20] ^= 1;
        let tampered = String::from_utf8_lossy(&tampered).into_owned();
        assert_eq!(LinkState::open(&sealer, &tampered), None);
        let other = Sealer::new(&[8; 64], PURPOSE).unwrap();
        assert_eq!(LinkState::open(&other, &state.seal(&sealer).unwrap()), None);
        let login_flows = Sealer::new(&[7; 64], crate::flows::login_flow::PURPOSE).unwrap();
        assert_eq!(
            LinkState::open(&sealer, &state.seal(&login_flows).unwrap()),
            None
        );
    }

    #[test]
    fn e03_the_csrf_token_belongs_to_one_flow() {
        let key = CsrfKey::new(&[1; 64]);
        let now = Timestamp::from_millis(0);
        let a = LinkState::new(Duration::from_secs(60), now, None).unwrap();
        let b = LinkState::new(Duration::from_secs(60), now, None).unwrap();
        assert!(key.check(&a, Some(&key.token(&a))));
        assert!(!key.check(&a, Some(&key.token(&b))));
        assert!(!key.check(&a, None));
        assert!(!key.check(&a, Some("")));
        assert!(!CsrfKey::new(&[2; 64]).check(&a, Some(&key.token(&a))));
    }
}
