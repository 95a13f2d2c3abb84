//! An upstream login in flight, as it travels in the browser's flow cookie: sealed (see
//! [`crate::tokens::sealed`]), so it binds the login to this browser and the browser can
//! neither read the PKCE verifier and nonce nor change where the result goes. The server keeps
//! only the single-use mark of its `jti` (`repo::login_flows`).

use crate::tokens::opaque::RandomError;
use crate::tokens::sealed::Sealer;
use braid_core::Timestamp;
use serde::{Deserialize, Serialize};

/// The purpose the flow cookie's key is derived for.
pub const PURPOSE: &str = "braid login flow v1";

/// Browsers keep cookies up to 4096 bytes, name and attributes included.
pub const MAX_COOKIE_VALUE: usize = 3600;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoginFlow {
    /// Random, 128 bits: what the single-use mark is keyed by.
    pub jti: String,
    /// Unix milliseconds.
    pub exp: i64,
    pub provider: String,
    /// The issuer expected in the ID token (DESIGN §4: pinned when the flow starts).
    pub issuer: String,
    /// The `state` sent upstream.
    pub state: String,
    pub nonce: Option<String>,
    pub pkce_verifier: String,
    pub client_id: String,
    pub redirect_uri: String,
    pub app_state: Option<String>,
    pub code_challenge: Option<String>,
    pub connect_user_id: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum SealError {
    #[error(transparent)]
    Random(#[from] RandomError),
    #[error("the sign-in state is too large for a cookie")]
    TooLarge,
}

impl LoginFlow {
    pub fn expires_at(&self) -> Timestamp {
        Timestamp::from_millis(self.exp)
    }

    pub fn seal(&self, sealer: &Sealer) -> Result<String, SealError> {
        // Serialising a struct of strings and integers cannot fail.
        let json = serde_json::to_vec(self).unwrap_or_default();
        let value = sealer.seal(&json)?;
        if value.len() > MAX_COOKIE_VALUE {
            return Err(SealError::TooLarge);
        }
        Ok(value)
    }

    pub fn is_expired(&self, now: Timestamp) -> bool {
        self.exp <= now.as_millis()
    }

    /// The flow in `cookie` if this deployment sealed it, expired or not: what it says of the
    /// app is still this browser's (a failure may go back there).
    pub fn open_authentic(sealer: &Sealer, cookie: &str) -> Option<Self> {
        if cookie.len() > MAX_COOKIE_VALUE {
            return None;
        }
        serde_json::from_slice(&sealer.open(cookie)?).ok()
    }

    /// The `jti` as the bytes the single-use mark stores.
    pub fn jti_bytes(&self) -> &[u8] {
        self.jti.as_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flow(exp: i64) -> LoginFlow {
        LoginFlow {
            jti: "j".repeat(22),
            exp,
            provider: "google".into(),
            issuer: "https://accounts.google.com".into(),
            state: "s".repeat(43),
            nonce: Some("n".repeat(43)),
            pkce_verifier: "v".repeat(43),
            client_id: "app".into(),
            redirect_uri: "https://app.example/cb".into(),
            app_state: Some("x".repeat(1024)),
            code_challenge: Some("c".repeat(43)),
            connect_user_id: None,
        }
    }

    #[test]
    fn round_trip_until_expiry() {
        let sealer = Sealer::new(&[1; 64], PURPOSE).unwrap();
        let now = Timestamp::from_millis(1_000_000);
        let f = flow(now.as_millis() + 600_000);
        let cookie = f.seal(&sealer).unwrap();
        assert!(cookie.len() <= MAX_COOKIE_VALUE, "{} bytes", cookie.len());
        assert!(!cookie.contains(&f.pkce_verifier[..10]));
        let opened = LoginFlow::open_authentic(&sealer, &cookie);
        assert_eq!(opened, Some(f.clone()));
        assert!(!f.is_expired(now));
        assert!(f.is_expired(Timestamp::from_millis(f.exp)));
        assert_eq!(LoginFlow::open_authentic(&sealer, &cookie[1..]), None);
    }

    #[test]
    fn a_flow_too_large_for_a_cookie_is_refused_when_sealed() {
        let sealer = Sealer::new(&[1; 64], PURPOSE).unwrap();
        let mut f = flow(1);
        f.redirect_uri = format!("https://app.example/{}", "p".repeat(3000));
        assert!(matches!(f.seal(&sealer), Err(SealError::TooLarge)));
    }
}
