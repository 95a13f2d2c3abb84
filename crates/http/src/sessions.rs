//! Server-side browser sessions (`[sessions] enabled = true`), through actix-session: the browser
//! holds only a random key in an encrypted, HttpOnly cookie; the state lives in the database
//! (`store = "database"`, the default) or in Redis (`store = "redis"`). Either store keeps only a
//! SHA-256 of the key, so a copy of the table or of Redis opens no session.
//!
//! Only the routes that read or write a session are wrapped (the callback and the manual link
//! pages): no other request pays for a session lookup, and with sessions off nothing is wrapped.

use crate::settings::{SessionStoreKind, Settings};
use crate::state::AppState;
use crate::tokens::opaque;
use actix_session::config::{BrowserSession, CookieContentSecurity};
use actix_session::storage::{
    LoadError, RedisSessionStore, SaveError, SessionKey, SessionStore, UpdateError,
};
use actix_session::{Session, SessionMiddleware};
use actix_web::body::{EitherBody, MessageBody};
use actix_web::cookie::time::Duration as CookieDuration;
use actix_web::cookie::{Key, SameSite};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::StatusCode;
use actix_web::middleware::Next;
use actix_web::{HttpResponse, web};
use aws_lc_rs::hkdf::{HKDF_SHA256, KeyType, Salt};
use braid_core::Timestamp;
use braid_storage::Database;
use braid_storage::repo::sessions as repo;
use std::collections::HashMap;
use std::time::Duration;

/// How long the start waits for Redis.
const REDIS_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long one request waits for Redis before the person gets the "unavailable" page: while
/// Redis is down its client keeps reconnecting, and a command would wait with it.
const REDIS_COMMAND_TIMEOUT: Duration = Duration::from_secs(3);

#[derive(Debug, thiserror::Error)]
pub enum SessionSetupError {
    #[error("sessions.redis_url: Redis could not be reached: {0}")]
    Redis(String),
    #[error("the session cookie key could not be derived")]
    Key,
}

/// What every worker builds its session middleware from.
#[derive(Clone)]
pub struct Sessions {
    store: Store,
    key: Key,
    cookie_name: String,
    secure: bool,
    ttl: Duration,
}

impl Sessions {
    /// `None` when sessions are off. Connects to Redis when that is the store, so a wrong URL
    /// stops the start rather than the first person's sign-in.
    pub async fn from_settings(
        settings: &Settings,
        db: &Database,
        secret: &[u8],
    ) -> Result<Option<Self>, SessionSetupError> {
        let s = &settings.sessions;
        if !s.enabled {
            return Ok(None);
        }
        let store = match s.store {
            SessionStoreKind::Database => Store::Database(DatabaseStore { db: db.clone() }),
            SessionStoreKind::Redis => {
                let url = s.redis_url.clone().unwrap_or_default();
                let build = RedisSessionStore::builder(url)
                    .cache_keygen(|key| {
                        format!("braid:session:{}", opaque::hex(&opaque::hash(key)))
                    })
                    .build();
                // The connection manager retries a refused connection for minutes.
                let redis = tokio::time::timeout(REDIS_CONNECT_TIMEOUT, build)
                    .await
                    .map_err(|_| {
                        SessionSetupError::Redis(format!(
                            "no connection within {} s",
                            REDIS_CONNECT_TIMEOUT.as_secs()
                        ))
                    })?
                    .map_err(|e| SessionSetupError::Redis(e.to_string()))?;
                Store::Redis(redis)
            }
        };
        let secure = settings.cookie_secure();
        Ok(Some(Self {
            store,
            key: cookie_key(secret)?,
            // Over https the `__Host-` prefix pins the cookie to this host and path `/`, so a
            // sibling subdomain cannot plant a session in the browser (session fixation).
            cookie_name: if secure {
                format!("__Host-{}", s.cookie_name)
            } else {
                s.cookie_name.clone()
            },
            secure,
            ttl: Duration::from_secs(s.ttl),
        }))
    }

    pub fn store_kind(&self) -> &'static str {
        match self.store {
            Store::Database(_) => "database",
            Store::Redis(_) => "redis",
        }
    }

    /// One worker's middleware (it holds `Rc`s: build it inside the `App` factory).
    pub fn middleware(&self) -> SessionMiddleware<Store> {
        let ttl = CookieDuration::seconds(i64::try_from(self.ttl.as_secs()).unwrap_or(i64::MAX));
        SessionMiddleware::builder(self.store.clone(), self.key.clone())
            .cookie_name(self.cookie_name.clone())
            .cookie_secure(self.secure)
            .cookie_http_only(true)
            .cookie_same_site(SameSite::Lax)
            .cookie_path("/".into())
            .cookie_content_security(CookieContentSecurity::Private)
            .session_lifecycle(BrowserSession::default().state_ttl(ttl))
            .build()
    }
}

/// Ends what a session carried for a finished step and gives the browser a new session id
/// (or none, when nothing else is left in it): an id seen before the step opens nothing after.
pub fn renew_or_end(session: &Session) {
    if session.entries().is_empty() {
        session.purge();
    } else {
        session.renew();
    }
}

/// The session middleware answers a store it cannot reach with an empty 500: a person gets the
/// "unavailable" page (503) instead, and the operator an error line.
pub async fn unavailable_page(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    let request = req.request().clone();
    match next.call(req).await {
        Ok(res) => Ok(res.map_into_left_body()),
        Err(e) => {
            tracing::error!(error = %e, "the session store failed");
            let page = match request.app_data::<web::Data<AppState>>() {
                Some(state) => state.pages.error(
                    &request,
                    StatusCode::SERVICE_UNAVAILABLE,
                    "Sign-in is unavailable right now",
                    "Please try again in a moment.",
                    None,
                ),
                None => HttpResponse::ServiceUnavailable().finish(),
            };
            Ok(ServiceResponse::new(request, page).map_into_right_body())
        }
    }
}

/// 64 bytes for the cookie crate's `Key` (signing and encryption halves), derived from the
/// deployment's shared secret for this use only.
fn cookie_key(secret: &[u8]) -> Result<Key, SessionSetupError> {
    struct Len64;
    impl KeyType for Len64 {
        fn len(&self) -> usize {
            64
        }
    }
    let mut out = [0u8; 64];
    Salt::new(HKDF_SHA256, b"braid session cookie")
        .extract(secret)
        .expand(&[b"braid session cookie v1"], Len64)
        .and_then(|okm| okm.fill(&mut out))
        .map_err(|_| SessionSetupError::Key)?;
    Key::try_from(&out[..]).map_err(|_| SessionSetupError::Key)
}

/// The configured store, as one type for the middleware.
#[derive(Clone)]
pub enum Store {
    Database(DatabaseStore),
    Redis(RedisSessionStore),
}

impl SessionStore for Store {
    async fn load(&self, key: &SessionKey) -> Result<Option<State>, LoadError> {
        match self {
            Store::Database(s) => s.load(key).await,
            Store::Redis(s) => bounded(s.load(key)).await.map_err(LoadError::Other)?,
        }
    }

    async fn save(&self, state: State, ttl: &CookieDuration) -> Result<SessionKey, SaveError> {
        match self {
            Store::Database(s) => s.save(state, ttl).await,
            Store::Redis(s) => bounded(s.save(state, ttl))
                .await
                .map_err(SaveError::Other)?,
        }
    }

    async fn update(
        &self,
        key: SessionKey,
        state: State,
        ttl: &CookieDuration,
    ) -> Result<SessionKey, UpdateError> {
        match self {
            Store::Database(s) => s.update(key, state, ttl).await,
            Store::Redis(s) => bounded(s.update(key, state, ttl))
                .await
                .map_err(UpdateError::Other)?,
        }
    }

    async fn update_ttl(&self, key: &SessionKey, ttl: &CookieDuration) -> anyhow::Result<()> {
        match self {
            Store::Database(s) => s.update_ttl(key, ttl).await,
            Store::Redis(s) => bounded(s.update_ttl(key, ttl)).await?,
        }
    }

    async fn delete(&self, key: &SessionKey) -> anyhow::Result<()> {
        match self {
            Store::Database(s) => s.delete(key).await,
            Store::Redis(s) => bounded(s.delete(key)).await?,
        }
    }
}

/// A Redis command that did not finish in time is an error.
async fn bounded<T>(command: impl Future<Output = T>) -> anyhow::Result<T> {
    tokio::time::timeout(REDIS_COMMAND_TIMEOUT, command)
        .await
        .map_err(|_| {
            anyhow::anyhow!(
                "Redis did not answer within {} s",
                REDIS_COMMAND_TIMEOUT.as_secs()
            )
        })
}

type State = HashMap<String, String>;

/// Sessions in the `sessions` table of Braid's own database (SQLite or PostgreSQL).
#[derive(Clone)]
pub struct DatabaseStore {
    db: Database,
}

impl DatabaseStore {
    pub fn new(db: Database) -> Self {
        Self { db }
    }
}

fn expiry(now: Timestamp, ttl: &CookieDuration) -> Timestamp {
    now.plus(Duration::from_secs(
        u64::try_from(ttl.whole_seconds()).unwrap_or(0),
    ))
}

impl SessionStore for DatabaseStore {
    async fn load(&self, key: &SessionKey) -> Result<Option<State>, LoadError> {
        let id_hash = opaque::hash(key.as_ref());
        let stored = self
            .db
            .run(move |c| repo::load(c, &id_hash, Timestamp::now()))
            .await
            .map_err(|e| LoadError::Other(e.into()))?;
        stored
            .map(|json| serde_json::from_str(&json))
            .transpose()
            .map_err(|e| LoadError::Deserialization(e.into()))
    }

    async fn save(&self, state: State, ttl: &CookieDuration) -> Result<SessionKey, SaveError> {
        let json = serde_json::to_string(&state).map_err(|e| SaveError::Serialization(e.into()))?;
        let token = opaque::random_token().map_err(|e| SaveError::Other(e.into()))?;
        let id_hash = opaque::hash(&token);
        let now = Timestamp::now();
        let expires = expiry(now, ttl);
        self.db
            .run_write(move |c| repo::insert(c, &id_hash, &json, now, expires))
            .await
            .map_err(|e| SaveError::Other(e.into()))?;
        SessionKey::try_from(token).map_err(|e| SaveError::Other(e.into()))
    }

    async fn update(
        &self,
        key: SessionKey,
        state: State,
        ttl: &CookieDuration,
    ) -> Result<SessionKey, UpdateError> {
        let json =
            serde_json::to_string(&state).map_err(|e| UpdateError::Serialization(e.into()))?;
        let id_hash = opaque::hash(key.as_ref());
        let now = Timestamp::now();
        let expires = expiry(now, ttl);
        let updated = self
            .db
            .run_write(move |c| repo::update(c, &id_hash, &json, now, expires))
            .await
            .map_err(|e| UpdateError::Other(e.into()))?;
        if updated {
            return Ok(key);
        }
        // It expired (or was ended elsewhere) between load and update: a new session, never
        // the old key brought back to life.
        self.save(state, ttl).await.map_err(|e| match e {
            SaveError::Serialization(e) => UpdateError::Serialization(e),
            SaveError::Other(e) => UpdateError::Other(e),
        })
    }

    async fn update_ttl(&self, key: &SessionKey, ttl: &CookieDuration) -> anyhow::Result<()> {
        let id_hash = opaque::hash(key.as_ref());
        let now = Timestamp::now();
        let expires = expiry(now, ttl);
        self.db
            .run_write(move |c| repo::touch(c, &id_hash, now, expires))
            .await?;
        Ok(())
    }

    async fn delete(&self, key: &SessionKey) -> anyhow::Result<()> {
        let id_hash = opaque::hash(key.as_ref());
        self.db
            .run_write(move |c| repo::delete(c, &id_hash))
            .await?;
        Ok(())
    }
}
