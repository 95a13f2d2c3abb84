//! Minting an access token and a refresh token for a user, shared by code redemption and
//! refresh. The database part runs inside the caller's transaction; the signature is made
//! after it commits, so the SQLite write lock is not held while signing.

use crate::clients::Client;
use crate::state::AppState;
use crate::tokens::access::{self, AccessClaims};
use crate::tokens::keyring::Keys;
use crate::tokens::opaque;
use braid_core::{Timestamp, UserId, new_id};
use braid_storage::repo::identities;
use braid_storage::repo::refresh_tokens::{self, NewRefreshToken};
use braid_storage::{DbConn, StorageError};
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;

/// What a grant needs to know to mint tokens, captured before the blocking transaction.
#[derive(Clone)]
pub struct Minter {
    pub keys: Arc<Keys>,
    pub issuer: String,
    pub access_ttl: Duration,
    pub refresh_ttl: Duration,
    pub family_lifetime: Duration,
}

/// The refresh-token family a mint belongs to.
pub enum Family {
    /// A new family (code redemption), with the id chosen by the caller.
    New(String),
    /// A rotation: the family continues with its absolute expiry.
    Continue { id: String, expires_at: Timestamp },
}

/// What the access token says about its user beyond `sub`.
#[derive(Debug, Clone, Default)]
pub struct UserClaims {
    /// The provider the user signed in with.
    pub idp: Option<String>,
    /// The user's id in the app (`users.external_id`).
    pub external_id: Option<String>,
    /// When the sign-in that started the refresh-token family happened.
    pub auth_time: Option<Timestamp>,
}

/// How a sign-in happened, carried by its exchange code (`auth_context`, JSON) into the
/// tokens: the provider, the identity it went through (unlinking that identity revokes the
/// tokens), and when (unix milliseconds).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthContext {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idp: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_time: Option<i64>,
}

impl AuthContext {
    /// A sign-in through `identity_id` of provider `idp`, at `at`.
    pub fn federated(idp: &str, identity_id: &str, at: Timestamp) -> Self {
        Self {
            idp: Some(idp.to_owned()),
            identity_id: Some(identity_id.to_owned()),
            auth_time: Some(at.as_millis()),
        }
    }

    pub fn to_json(&self) -> String {
        // Serialising a struct of strings and integers cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }

    /// What a stored code says; a code written by an older version may say less.
    pub fn parse(json: &str) -> Self {
        serde_json::from_str(json).unwrap_or_default()
    }
}

/// Tokens whose rows are written but whose access token is not signed yet.
pub struct Minted {
    claims: AccessClaims,
    refresh_token: String,
}

pub struct Issued {
    pub access_token: String,
    pub refresh_token: String,
    pub expires_in: u64,
}

impl Issued {
    pub fn response(&self) -> serde_json::Value {
        json!({
            "access_token": self.access_token,
            "token_type": "Bearer",
            "expires_in": self.expires_in,
            "refresh_token": self.refresh_token,
        })
    }
}

impl Minter {
    pub async fn new(state: &AppState) -> Result<Self, StorageError> {
        let t = &state.settings.tokens;
        Ok(Self {
            keys: state.keys.keys().await?,
            issuer: state.issuer.clone(),
            access_ttl: Duration::from_secs(t.access_token_ttl),
            refresh_ttl: Duration::from_secs(t.refresh_token_ttl),
            family_lifetime: Duration::from_secs(t.refresh_token_max_lifetime),
        })
    }

    /// Stores a new refresh token and prepares the access token's claims. `identity_id`: the
    /// identity the family's sign-in went through.
    #[allow(clippy::too_many_arguments)]
    pub fn mint(
        &self,
        c: &mut DbConn,
        user: &UserId,
        client: &Client,
        about: UserClaims,
        identity_id: Option<String>,
        family: Family,
        access_jti: String,
    ) -> Result<Minted, StorageError> {
        let now = Timestamp::now();
        let (family_id, family_expires_at) = match family {
            Family::New(id) => (id, now.plus(self.family_lifetime)),
            Family::Continue { id, expires_at } => (id, expires_at),
        };
        // Only for apps that list upstream claims: no extra read on the others' sign-ins.
        let identity_id_claim = identity_id.clone().filter(|_| !client.claims.is_empty());
        let braid_claims = match &identity_id_claim {
            Some(id) if client.claims_in_token => Some(
                identities::find_of_user(c, id, user)?
                    .map(|i| i.snapshot.profile.app_claims(&client.claims))
                    .unwrap_or_default(),
            ),
            _ => None,
        };
        let client_id = client.id.as_str();
        let refresh_token =
            opaque::random_token().map_err(|e| StorageError::Unavailable(e.to_string()))?;
        refresh_tokens::insert(
            c,
            &NewRefreshToken {
                token_hash: opaque::hash(&refresh_token),
                family_id,
                client_id: client_id.to_owned(),
                user_id: user.clone(),
                created_at: now,
                expires_at: now.plus(self.refresh_ttl).min(family_expires_at),
                family_expires_at,
                identity_id,
                auth_time: about.auth_time,
            },
        )?;
        let claims = AccessClaims {
            iss: self.issuer.clone(),
            sub: user.to_string(),
            aud: client_id.to_owned(),
            client_id: client_id.to_owned(),
            exp: now.plus(self.access_ttl).as_secs(),
            iat: now.as_secs(),
            jti: access_jti,
            idp: about.idp,
            external_id: about.external_id,
            auth_time: about.auth_time.map(Timestamp::as_secs),
            identity_id: identity_id_claim,
            braid_claims,
        };
        Ok(Minted {
            claims,
            refresh_token,
        })
    }

    /// Signs the access token, after the transaction that wrote the rows has committed.
    pub fn sign(&self, minted: Minted) -> Result<Issued, access::AccessTokenError> {
        Ok(Issued {
            access_token: access::sign(&self.keys, &minted.claims)?,
            refresh_token: minted.refresh_token,
            expires_in: self.access_ttl.as_secs(),
        })
    }

    pub fn new_jti() -> String {
        new_id()
    }
}
