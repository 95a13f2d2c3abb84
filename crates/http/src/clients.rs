//! The applications that receive exchange codes, and how they authenticate at the token
//! endpoints (RFC 6749 §2.3: client_secret_basic or client_secret_post, never both).

use crate::settings::{ClientSettings, ErrorDisplay, check_redirect_uri};
use crate::tokens::opaque;
use actix_web::HttpRequest;
use actix_web::http::header;
use base64::Engine as _;
use std::collections::HashMap;
use subtle::ConstantTimeEq;

/// The client id of Braid's own admin console (see [`Clients::with_console`]).
pub const CONSOLE_CLIENT_ID: &str = "braid-admin-console";

#[derive(Debug, Clone)]
pub struct Client {
    pub id: String,
    pub redirect_uris: Vec<String>,
    pub errors: ErrorDisplay,
    /// The upstream claims this app sees (`[clients.<id>] claims`).
    pub claims: Vec<String>,
    pub claims_in_token: bool,
    /// SHA-256 of the secret; `None` for public clients.
    secret_hash: Option<Vec<u8>>,
}

impl Client {
    pub fn is_public(&self) -> bool {
        self.secret_hash.is_none()
    }

    /// Exact string match (RFC 9700 §2.1): no prefix, no normalisation.
    pub fn allows_redirect(&self, uri: &str) -> bool {
        self.redirect_uris.iter().any(|r| r == uri)
    }
}

#[derive(Debug, Clone, Default)]
pub struct Clients {
    by_id: HashMap<String, Client>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClientAuthError {
    #[error("client authentication failed")]
    Failed,
    #[error("use one client authentication method, not several")]
    MultipleMethods,
    #[error("malformed Authorization header")]
    MalformedHeader,
}

impl Clients {
    pub fn from_settings(settings: &std::collections::BTreeMap<String, ClientSettings>) -> Self {
        let by_id = settings
            .iter()
            .filter(|(_, c)| {
                c.redirect_uris
                    .iter()
                    .all(|u| check_redirect_uri(u).is_ok())
            })
            .map(|(id, c)| {
                let secret_hash = if c.public {
                    None
                } else {
                    c.secret.as_ref().map(|s| opaque::hash(s.expose()))
                };
                (
                    id.clone(),
                    Client {
                        id: id.clone(),
                        redirect_uris: c.redirect_uris.clone(),
                        errors: c.errors,
                        claims: c.claims.clone(),
                        claims_in_token: c.claims_in_token,
                        secret_hash,
                    },
                )
            })
            .collect();
        Self { by_id }
    }

    /// Adds Braid's own admin console as a public PKCE client whose only redirect URI is
    /// `{public_url}/admin/callback`: administrators sign in to it through the normal
    /// federated sign-in. Its id is reserved (the settings refuse an operator's client of that name).
    pub fn with_console(mut self, public_url: &str) -> Self {
        let redirect = format!("{}/admin/callback", public_url.trim_end_matches('/'));
        self.by_id.insert(
            CONSOLE_CLIENT_ID.to_owned(),
            Client {
                id: CONSOLE_CLIENT_ID.to_owned(),
                redirect_uris: vec![redirect],
                errors: ErrorDisplay::Page,
                secret_hash: None,
                claims: Vec::new(),
                claims_in_token: false,
            },
        );
        self
    }

    pub fn get(&self, id: &str) -> Option<&Client> {
        self.by_id.get(id)
    }

    pub fn ids(&self) -> Vec<&str> {
        self.by_id.keys().map(String::as_str).collect()
    }

    /// Authenticates the caller of a token endpoint. Public clients name themselves with
    /// `client_id` and prove possession later (PKCE); confidential ones must present their secret.
    pub fn authenticate(
        &self,
        req: &HttpRequest,
        form_id: Option<&str>,
        form_secret: Option<&str>,
    ) -> Result<&Client, ClientAuthError> {
        let basic = match req.headers().get(header::AUTHORIZATION) {
            Some(value) => Some(parse_basic(
                value
                    .to_str()
                    .map_err(|_| ClientAuthError::MalformedHeader)?,
            )?),
            None => None,
        };
        let (id, secret) = match (basic, form_secret) {
            (Some(_), Some(_)) => return Err(ClientAuthError::MultipleMethods),
            (Some((id, secret)), None) => {
                if form_id.is_some_and(|f| f != id) {
                    return Err(ClientAuthError::Failed);
                }
                (id, Some(secret))
            }
            (None, secret) => (
                form_id.ok_or(ClientAuthError::Failed)?.to_owned(),
                secret.map(str::to_owned),
            ),
        };
        let client = self.by_id.get(&id).ok_or(ClientAuthError::Failed)?;
        match (&client.secret_hash, secret) {
            (Some(expected), Some(given)) if bool::from(expected.ct_eq(&opaque::hash(&given))) => {
                Ok(client)
            }
            (None, None) => Ok(client),
            _ => Err(ClientAuthError::Failed),
        }
    }
}

/// RFC 6749 §2.3.1: both parts are form-urlencoded before base64.
fn parse_basic(value: &str) -> Result<(String, String), ClientAuthError> {
    let encoded = value
        .strip_prefix("Basic ")
        .or_else(|| value.strip_prefix("basic "))
        .ok_or(ClientAuthError::MalformedHeader)?;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .map_err(|_| ClientAuthError::MalformedHeader)?;
    let text = String::from_utf8(decoded).map_err(|_| ClientAuthError::MalformedHeader)?;
    let (id, secret) = text
        .split_once(':')
        .ok_or(ClientAuthError::MalformedHeader)?;
    let unescape = |s: &str| {
        form_urlencoded::parse(format!("v={s}").as_bytes())
            .next()
            .map(|(_, v)| v.into_owned())
            .unwrap_or_default()
    };
    Ok((unescape(id), unescape(secret)))
}
