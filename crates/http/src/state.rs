use crate::settings::Settings;
use braid_storage::Database;
use std::sync::Arc;

/// Shared by every worker: created once, outside `HttpServer::new`.
pub struct AppState {
    pub db: Database,
    pub settings: Arc<Settings>,
    /// The cookie key for sessions and encrypted flow cookies; the same on every instance.
    pub session_key: Vec<u8>,
    pub signing_kid: String,
}
