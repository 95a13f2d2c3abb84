//! The admin console's sign-in, as the browser holds it: a sealed cookie (HttpOnly,
//! SameSite=Strict, `__Host-` over https) with a random id, an expiry and the name of the
//! admin key it was opened with. A visitor who has not signed in gets one without a name, so
//! the sign-in form has a CSRF token too; signing in replaces it with a new id.
//!
//! A session whose key was removed from `[admin] keys` ends at its next request.

use crate::flows::admin_users::Admin;
use crate::state::AppState;
use crate::tokens::opaque::{self, RandomError};
use actix_web::HttpRequest;
use actix_web::cookie::{Cookie, SameSite, time};
use braid_core::{Timestamp, UserId};
use braid_storage::StorageError;
use braid_storage::repo::{revoked_access_tokens, users};
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// The purpose the console cookie's key is derived for.
pub const PURPOSE: &str = "braid admin console v1";

/// Name and path of the console cookie.
pub fn cookie_name(secure: bool) -> (&'static str, &'static str) {
    if secure {
        ("__Host-braid_admin", "/")
    } else {
        ("braid_admin", "/admin")
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsoleSession {
    /// 256 random bits; the forms' CSRF tokens are derived from it.
    pub id: String,
    /// Unix milliseconds.
    pub exp: i64,
    /// The admin key's name once signed in with a key.
    pub admin: Option<String>,
    /// The user's id once signed in as a Braid user marked administrator.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub admin_user: Option<String>,
}

impl ConsoleSession {
    pub fn new(ttl: Duration, admin: Option<String>) -> Result<Self, RandomError> {
        Ok(Self {
            id: opaque::random_token()?,
            exp: Timestamp::now().plus(ttl).as_millis(),
            admin,
            admin_user: None,
        })
    }

    /// A session signed in as the administrator `user`.
    pub fn for_user(ttl: Duration, user: &UserId) -> Result<Self, RandomError> {
        Ok(Self {
            admin_user: Some(user.to_string()),
            ..Self::new(ttl, None)?
        })
    }

    /// Who is signed in: a key that is still configured, or a user who still exists, is not
    /// disabled and is still an administrator (read at every request, so a revocation or a
    /// disable ends the session at once).
    pub async fn who(&self, state: &AppState) -> Result<Option<Admin>, StorageError> {
        let ended = self.ended_key();
        if state
            .db
            .run(move |c| revoked_access_tokens::is_revoked(c, &ended))
            .await?
        {
            return Ok(None);
        }
        if let Some(name) = self.admin(state) {
            return Ok(Some(Admin::Key(name.to_owned())));
        }
        let Some(id) = self
            .admin_user
            .as_deref()
            .and_then(|u| UserId::parse(u).ok())
        else {
            return Ok(None);
        };
        let lookup = id.clone();
        let user = state.db.run(move |c| users::find(c, &lookup)).await?;
        Ok(user
            .filter(|u| u.is_admin && !u.disabled)
            .map(|_| Admin::User(id)))
    }

    /// Signing out ends the session on the server too (SECURITY-CASES G10): its cookie,
    /// replayed, opens nothing until it would have expired anyway. Kept beside revoked access
    /// tokens, which housekeeping purges after `exp`.
    pub async fn end(&self, state: &AppState) -> Result<(), StorageError> {
        let (key, exp) = (self.ended_key(), Timestamp::from_millis(self.exp));
        state
            .db
            .run_write(move |c| revoked_access_tokens::revoke(c, &key, exp))
            .await
    }

    fn ended_key(&self) -> String {
        let hash: String = opaque::hash(&self.id)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        format!("console:{hash}")
    }

    /// The browser's session, if it is one this deployment sealed and it has not expired.
    pub fn of(req: &HttpRequest, state: &AppState) -> Option<Self> {
        let cookie = req.cookie(cookie_name(state.cookie_secure).0)?;
        if cookie.value().len() > 1024 {
            return None;
        }
        let session: Self =
            serde_json::from_slice(&state.admin_sealer.open(cookie.value())?).ok()?;
        (session.exp > Timestamp::now().as_millis()).then_some(session)
    }

    /// The signed-in admin's key name, while that key is still configured.
    pub fn admin<'a>(&self, state: &'a AppState) -> Option<&'a str> {
        let name = self.admin.as_deref()?;
        state
            .settings
            .admin
            .keys
            .iter()
            .find(|k| k.name == name)
            .map(|k| k.name.as_str())
    }

    pub fn csrf(&self, state: &AppState) -> String {
        state.csrf.token_for(&self.id)
    }

    pub fn csrf_ok(&self, state: &AppState, given: Option<&str>) -> bool {
        state.csrf.check_for(&self.id, given)
    }

    pub fn cookie(&self, state: &AppState) -> Result<Cookie<'static>, RandomError> {
        // Serialising plain fields cannot fail.
        let value = state
            .admin_sealer
            .seal(&serde_json::to_vec(self).unwrap_or_default())?;
        let (name, path) = cookie_name(state.cookie_secure);
        let ttl = state.settings.admin.console_session_ttl;
        Ok(Cookie::build(name, value)
            .path(path)
            .http_only(true)
            .secure(state.cookie_secure)
            .same_site(SameSite::Strict)
            .max_age(time::Duration::seconds(i64::try_from(ttl).unwrap_or(1800)))
            .finish())
    }

    pub fn removal(state: &AppState) -> Cookie<'static> {
        let (name, path) = cookie_name(state.cookie_secure);
        let mut c = Cookie::build(name, "")
            .path(path)
            .http_only(true)
            .secure(state.cookie_secure)
            .same_site(SameSite::Strict)
            .finish();
        c.make_removal();
        c
    }
}
