//! One connection type over both backends, and the manager that opens the right one.

use crate::url::DatabaseTarget;
use diesel::Connection;
use diesel::connection::{AnsiTransactionManager, SimpleConnection, TransactionManager};
use diesel::pg::PgConnection;
use diesel::sqlite::SqliteConnection;
use std::time::Duration;

#[derive(diesel::MultiConnection)]
pub enum DbConn {
    Postgres(PgConnection),
    Sqlite(SqliteConnection),
}

/// Opens connections for exactly the backend the URL names. diesel's derived `establish`
/// would try every backend in turn and could open a Postgres URL as a SQLite file.
#[derive(Debug, Clone)]
pub struct ConnectionManager {
    target: DatabaseTarget,
    /// The PostgreSQL URL as given to libpq: with a `connect_timeout` unless it has one, so
    /// an unreachable server fails within the configured time instead of TCP's minutes.
    pg_url: Option<String>,
}

impl ConnectionManager {
    pub fn new(target: DatabaseTarget, connect_timeout: Duration) -> Self {
        let pg_url = match &target {
            DatabaseTarget::Postgres(url) => Some(with_connect_timeout(url, connect_timeout)),
            DatabaseTarget::Sqlite(_) => None,
        };
        Self { target, pg_url }
    }

    pub fn target(&self) -> &DatabaseTarget {
        &self.target
    }

    pub fn connect(&self) -> Result<DbConn, diesel::ConnectionError> {
        match &self.target {
            DatabaseTarget::Postgres(url) => Ok(DbConn::Postgres(PgConnection::establish(
                self.pg_url.as_deref().unwrap_or(url),
            )?)),
            DatabaseTarget::Sqlite(path) => {
                let path = path.to_str().ok_or_else(|| {
                    diesel::ConnectionError::InvalidConnectionUrl(
                        "database path is not UTF-8".into(),
                    )
                })?;
                Ok(DbConn::Sqlite(SqliteConnection::establish(path)?))
            }
        }
    }
}

fn with_connect_timeout(raw: &str, timeout: Duration) -> String {
    match url::Url::parse(raw) {
        Ok(mut url) if !url.query_pairs().any(|(k, _)| k == "connect_timeout") => {
            url.query_pairs_mut()
                .append_pair("connect_timeout", &timeout.as_secs().max(1).to_string());
            url.to_string()
        }
        _ => raw.to_owned(),
    }
}

/// Per-connection SQLite settings: they are not persistent, so every new connection gets them.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SqlitePragmas {
    pub busy_timeout_ms: u64,
}

impl SqlitePragmas {
    pub fn apply(&self, conn: &mut DbConn) -> Result<(), diesel::result::Error> {
        if let DbConn::Sqlite(c) = conn {
            c.batch_execute(&format!(
                "PRAGMA busy_timeout = {}; PRAGMA foreign_keys = ON; PRAGMA synchronous = NORMAL; PRAGMA wal_autocheckpoint = 0;",
                self.busy_timeout_ms
            ))?;
        }
        Ok(())
    }
}

/// Runs a diesel query on the concrete connection inside a [`DbConn`]: `$body` is compiled
/// once per backend with `$c` bound to that backend's connection.
///
/// For the statements of the login and token paths. Through the `MultiConnection` enum diesel
/// serialises a query to SQL text twice per execution (to find the cached statement and to
/// bind it), which cost as much CPU as SQLite's own work; on the concrete connection a cached
/// statement is found by its Rust type and only the values are bound.
macro_rules! on_backend {
    ($conn:expr, $c:ident => $body:expr) => {
        match $conn {
            $crate::DbConn::Sqlite($c) => $body,
            $crate::DbConn::Postgres($c) => $body,
        }
    };
}
pub(crate) use on_backend;

static SQLITE_WRITER: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Runs `f` in a transaction that holds the write lock from its first statement.
///
/// On SQLite a plain (deferred) transaction that reads and then writes can fail with
/// `SQLITE_BUSY` when it tries to upgrade its lock, whatever `busy_timeout` says; `BEGIN
/// IMMEDIATE` takes the lock up front, where `busy_timeout` does apply. PostgreSQL gets an
/// ordinary transaction. Must not be nested; use `conn.transaction` inside it.
pub fn write_transaction<T, E, F>(conn: &mut DbConn, f: F) -> Result<T, E>
where
    F: FnOnce(&mut DbConn) -> Result<T, E>,
    E: From<diesel::result::Error>,
{
    // SQLite has one writer at a time. Writers of this process queue here, first come first
    // served, instead of colliding on SQLite's lock and sleeping in its busy handler (which
    // backs off up to 100 ms per try and left a quarter of the CPU idle under load). Other
    // processes on the same file still meet `busy_timeout`.
    let _writer = matches!(conn, DbConn::Sqlite(_)).then(|| {
        SQLITE_WRITER
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    });
    match conn {
        DbConn::Sqlite(c) => AnsiTransactionManager::begin_transaction_sql(c, "BEGIN IMMEDIATE")?,
        DbConn::Postgres(c) => AnsiTransactionManager::begin_transaction(c)?,
    }
    match f(conn) {
        Ok(value) => {
            match conn {
                DbConn::Sqlite(c) => AnsiTransactionManager::commit_transaction(c)?,
                DbConn::Postgres(c) => AnsiTransactionManager::commit_transaction(c)?,
            }
            Ok(value)
        }
        Err(user_error) => {
            let rollback = match conn {
                DbConn::Sqlite(c) => AnsiTransactionManager::rollback_transaction(c),
                DbConn::Postgres(c) => AnsiTransactionManager::rollback_transaction(c),
            };
            match rollback {
                Ok(()) | Err(diesel::result::Error::BrokenTransactionManager) => Err(user_error),
                Err(rollback_error) => Err(rollback_error.into()),
            }
        }
    }
}
