//! One connection type over both backends, and the pool manager that opens the right one.

use crate::url::DatabaseTarget;
use diesel::Connection;
use diesel::connection::{AnsiTransactionManager, SimpleConnection, TransactionManager};
use diesel::pg::PgConnection;
use diesel::r2d2::{CustomizeConnection, ManageConnection, R2D2Connection};
use diesel::sqlite::SqliteConnection;

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
}

impl ConnectionManager {
    pub fn new(target: DatabaseTarget) -> Self {
        Self { target }
    }
}

impl ManageConnection for ConnectionManager {
    type Connection = DbConn;
    type Error = diesel::r2d2::Error;

    fn connect(&self) -> Result<DbConn, Self::Error> {
        let conn = match &self.target {
            DatabaseTarget::Sqlite(path) => {
                let path = path.to_str().ok_or_else(|| {
                    diesel::r2d2::Error::ConnectionError(
                        diesel::ConnectionError::InvalidConnectionUrl(
                            "database path is not UTF-8".into(),
                        ),
                    )
                })?;
                DbConn::Sqlite(SqliteConnection::establish(path)?)
            }
            DatabaseTarget::Postgres(url) => DbConn::Postgres(PgConnection::establish(url)?),
        };
        Ok(conn)
    }

    fn is_valid(&self, conn: &mut DbConn) -> Result<(), Self::Error> {
        conn.ping().map_err(diesel::r2d2::Error::QueryError)
    }

    fn has_broken(&self, conn: &mut DbConn) -> bool {
        std::thread::panicking() || conn.is_broken()
    }
}

/// Per-connection SQLite settings: they are not persistent, so every new connection gets them.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SqlitePragmas {
    pub busy_timeout_ms: u64,
}

impl CustomizeConnection<DbConn, diesel::r2d2::Error> for SqlitePragmas {
    fn on_acquire(&self, conn: &mut DbConn) -> Result<(), diesel::r2d2::Error> {
        if let DbConn::Sqlite(c) = conn {
            c.batch_execute(&format!(
                "PRAGMA busy_timeout = {}; PRAGMA foreign_keys = ON; PRAGMA synchronous = NORMAL; PRAGMA wal_autocheckpoint = 0;",
                self.busy_timeout_ms
            ))
            .map_err(diesel::r2d2::Error::QueryError)?;
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
