//! The pool, its settings, migrations and readiness.

use crate::StorageError;
use crate::conn::{ConnectionManager, DbConn, SqlitePragmas, write_transaction};
use crate::pool::Pool;
pub use crate::pool::PooledConn;
use crate::url::{Backend, DatabaseTarget};
use diesel::RunQueryDsl;
use diesel::connection::SimpleConnection;
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};
use serde::{Deserialize, Serialize};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("../../migrations/sqlite");
const POSTGRES_MIGRATIONS: EmbeddedMigrations = embed_migrations!("../../migrations/postgres");
/// Serialises migrations of several instances starting at once on one PostgreSQL database.
const MIGRATION_LOCK_KEY: i64 = 0x6272_6169_6400;

/// `[database]` in the configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct DatabaseSettings {
    /// `sqlite://PATH` (relative to the working directory, or `sqlite:///abs/path`) or `postgres://…`.
    pub url: String,
    /// Pool size per process.
    pub max_connections: u32,
    /// How long to wait for a connection, at start and per request.
    pub connect_timeout_secs: u64,
    /// SQLite only: how long a writer waits for the lock before giving up.
    pub sqlite_busy_timeout_ms: u64,
}

impl Default for DatabaseSettings {
    fn default() -> Self {
        Self {
            url: "sqlite://data/braid.db".into(),
            max_connections: 8,
            connect_timeout_secs: 5,
            sqlite_busy_timeout_ms: 5_000,
        }
    }
}

impl DatabaseSettings {
    /// Problems an operator can fix in the configuration, one sentence each.
    pub fn problems(&self) -> Vec<String> {
        let mut out = Vec::new();
        if let Err(e) = DatabaseTarget::parse(&self.url) {
            out.push(format!("database.url: {e}"));
        }
        if self.max_connections == 0 {
            out.push("database.max_connections: must be at least 1".into());
        }
        if self.connect_timeout_secs == 0 {
            out.push("database.connect_timeout_secs: must be at least 1".into());
        }
        out
    }
}

#[derive(Clone)]
pub struct Database {
    pool: Pool,
    target: DatabaseTarget,
    /// The runtime this database was opened on, if any: PostgreSQL work runs on its blocking
    /// threads, which it joins when it shuts down, whichever runtime (an actix worker's) asks.
    runtime: Option<tokio::runtime::Handle>,
    latest_migration: String,
    /// SQLite only: the one connection write transactions use. SQLite has one writer at a time
    /// anyway; keeping it on one connection keeps that connection's page cache warm (a pooled
    /// connection re-reads every page another connection changed) and queues writers in
    /// order instead of in SQLite's sleeping busy handler.
    writer: Option<Arc<Mutex<DbConn>>>,
    pragmas: SqlitePragmas,
}

impl std::fmt::Debug for Database {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Database")
            .field("target", &self.target.display())
            .finish()
    }
}

impl Database {
    /// Opens the pool. Fails at once, with the backend's own message, when the database cannot
    /// be reached; creates the SQLite file (and its folder) when it does not exist yet.
    pub fn connect(settings: &DatabaseSettings) -> Result<Self, StorageError> {
        let target = DatabaseTarget::parse(&settings.url)?;
        if let DatabaseTarget::Sqlite(path) = &target
            && let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty())
        {
            std::fs::create_dir_all(dir).map_err(|e| {
                StorageError::Unavailable(format!("cannot create {}: {e}", dir.display()))
            })?;
        }
        let timeout = Duration::from_secs(settings.connect_timeout_secs.max(1));
        let manager = ConnectionManager::new(target.clone(), timeout);
        // One connection at once, so a bad URL or a server that is down fails here, with the
        // backend's own message.
        let mut first = manager
            .connect()
            .map_err(|e| StorageError::Unavailable(format!("{}: {e}", target.display())))?;
        let pragmas = SqlitePragmas {
            busy_timeout_ms: settings.sqlite_busy_timeout_ms,
        };
        let (writer, first_idle) = if let DbConn::Sqlite(c) = &mut first {
            // Persistent at database level: readers no longer block the writer.
            c.batch_execute("PRAGMA journal_mode = WAL;")?;
            pragmas
                .apply(&mut first)
                .map_err(|e| StorageError::Unavailable(e.to_string()))?;
            (Some(Arc::new(Mutex::new(first))), None)
        } else {
            (None, Some(first))
        };
        let max = usize::try_from(settings.max_connections).unwrap_or(usize::MAX);
        let pool = Pool::new(manager, pragmas, max, timeout, first_idle);
        let latest_migration = match target.backend() {
            Backend::Sqlite => latest_version(&SQLITE_MIGRATIONS),
            Backend::Postgres => latest_version(&POSTGRES_MIGRATIONS),
        };
        Ok(Self {
            pool,
            target,
            runtime: tokio::runtime::Handle::try_current().ok(),
            latest_migration,
            writer,
            pragmas,
        })
    }

    pub fn backend(&self) -> Backend {
        self.target.backend()
    }

    /// The URL with any password hidden, for logs.
    pub fn display_url(&self) -> String {
        self.target.display()
    }

    pub fn conn(&self) -> Result<PooledConn, StorageError> {
        self.pool.get()
    }

    /// Closes the database for every holder of this handle and its clones: new work fails,
    /// idle connections close on this thread, and connections in use close as their work
    /// ends, waited for up to `wait`. Returns how many were still in use then (0: all closed).
    ///
    /// Call it before the process exits (after the server has stopped, at the end of a
    /// command): a PostgreSQL connection over TLS still closing while `main` returns can crash
    /// in OpenSSL's exit-time cleanup.
    pub fn close(&self, wait: Duration) -> usize {
        let still_open = self.pool.close(wait);
        if still_open > 0 {
            tracing::warn!(still_open, "database connections still in use at close");
        }
        still_open
    }

    /// Runs database work outside a transaction (reads) and returns its result. Writes go
    /// through [`Database::run_write`].
    ///
    /// SQLite runs in this process: a statement is a function call of tens of microseconds,
    /// cheaper than the two thread hand-offs that moving it off the event loop costs (those
    /// were a fifth of a login's CPU), so SQLite work runs on the calling thread. Checkpoints,
    /// the one SQLite step that waits for the disk, run in the background instead
    /// ([`Database::checkpoint`]). PostgreSQL work waits for the network and runs on a blocking
    /// thread.
    pub async fn run<T, F>(&self, f: F) -> Result<T, StorageError>
    where
        F: FnOnce(&mut DbConn) -> Result<T, StorageError> + Send + 'static,
        T: Send + 'static,
    {
        if self.writer.is_some() {
            return contain_panic(|| f(&mut *self.pool.get()?));
        }
        self.run_blocking(f).await
    }

    /// Runs `f` on a blocking thread, whatever the backend: for work that may take long.
    pub async fn run_blocking<T, F>(&self, f: F) -> Result<T, StorageError>
    where
        F: FnOnce(&mut DbConn) -> Result<T, StorageError> + Send + 'static,
        T: Send + 'static,
    {
        let pool = self.pool.clone();
        let work = move || {
            let mut conn = pool.get()?;
            f(&mut conn)
        };
        match &self.runtime {
            Some(runtime) => runtime.spawn_blocking(work).await,
            None => tokio::task::spawn_blocking(work).await,
        }
        .map_err(|e| StorageError::Unavailable(format!("database task failed: {e}")))?
    }

    /// Runs `f` in a write transaction (see [`write_transaction`]): on SQLite on the dedicated
    /// writer connection, on the calling thread (see [`Database::run`]); on PostgreSQL on a
    /// blocking thread.
    pub async fn run_write<T, F>(&self, f: F) -> Result<T, StorageError>
    where
        F: FnOnce(&mut DbConn) -> Result<T, StorageError> + Send + 'static,
        T: Send + 'static,
    {
        let Some(writer) = &self.writer else {
            return self.run_blocking(move |c| write_transaction(c, f)).await;
        };
        contain_panic(|| {
            let mut conn = match writer.lock() {
                Ok(conn) => conn,
                // A panic mid-transaction left this connection in an unknown state: replace it
                // (its open transaction is rolled back when the old connection closes).
                Err(poisoned) => {
                    let mut conn = poisoned.into_inner();
                    let mut fresh = ConnectionManager::new(self.target.clone(), Duration::ZERO)
                        .connect()
                        .map_err(|e| StorageError::Unavailable(e.to_string()))?;
                    self.pragmas
                        .apply(&mut fresh)
                        .map_err(|e| StorageError::Unavailable(e.to_string()))?;
                    *conn = fresh;
                    writer.clear_poison();
                    conn
                }
            };
            write_transaction(&mut conn, f)
        })
    }

    /// SQLite: copies committed pages from the write-ahead log into the database file, on a
    /// blocking thread. Connections do not checkpoint on commit (`wal_autocheckpoint = 0`), so
    /// no request waits for the disk; a background task calls this every second. PASSIVE: it
    /// never blocks readers or the writer. Does nothing on PostgreSQL.
    pub async fn checkpoint(&self) -> Result<(), StorageError> {
        if self.writer.is_none() {
            return Ok(());
        }
        self.run_blocking(|c| Ok(c.batch_execute("PRAGMA wal_checkpoint(PASSIVE);")?))
            .await
    }

    /// Applies pending migrations; returns how many ran. Safe to call from several instances
    /// at once: they take turns on a lock (an advisory lock on PostgreSQL, the write lock on SQLite).
    pub fn migrate(&self) -> Result<usize, StorageError> {
        let mut conn = self.conn()?;
        write_transaction(&mut conn, |c| -> Result<usize, StorageError> {
            let applied = match c {
                DbConn::Postgres(pg) => {
                    diesel::sql_query(format!(
                        "SELECT pg_advisory_xact_lock({MIGRATION_LOCK_KEY})"
                    ))
                    .execute(pg)?;
                    pg.run_pending_migrations(POSTGRES_MIGRATIONS)
                        .map_err(|e| StorageError::Migration(e.to_string()))?
                        .len()
                }
                DbConn::Sqlite(lite) => lite
                    .run_pending_migrations(SQLITE_MIGRATIONS)
                    .map_err(|e| StorageError::Migration(e.to_string()))?
                    .len(),
            };
            Ok(applied)
        })
    }

    /// Reverts the newest applied migration; returns its version. For tests of a migration.
    pub(crate) fn revert_last_migration(&self) -> Result<String, StorageError> {
        let mut conn = self.conn()?;
        let reverted = match &mut *conn {
            DbConn::Postgres(pg) => pg.revert_last_migration(POSTGRES_MIGRATIONS),
            DbConn::Sqlite(lite) => lite.revert_last_migration(SQLITE_MIGRATIONS),
        };
        reverted
            .map(|v| v.to_string())
            .map_err(|e| StorageError::Migration(e.to_string()))
    }

    pub fn has_pending_migrations(&self) -> Result<bool, StorageError> {
        let mut conn = self.conn()?;
        let pending = match &mut *conn {
            DbConn::Postgres(pg) => pg.has_pending_migration(POSTGRES_MIGRATIONS),
            DbConn::Sqlite(lite) => lite.has_pending_migration(SQLITE_MIGRATIONS),
        };
        pending.map_err(|e| StorageError::Migration(e.to_string()))
    }

    /// Ready means: a connection answers and the newest migration this binary knows is applied.
    pub async fn is_ready(&self) -> Result<bool, StorageError> {
        let latest = self.latest_migration.clone();
        self.run(move |c| {
            #[derive(diesel::QueryableByName)]
            struct Applied {
                #[diesel(sql_type = diesel::sql_types::BigInt)]
                n: i64,
            }
            let n = match c {
                DbConn::Postgres(pg) => diesel::sql_query(
                    "SELECT COUNT(*) AS n FROM __diesel_schema_migrations WHERE version = $1",
                )
                .bind::<diesel::sql_types::Text, _>(&latest)
                .get_result::<Applied>(pg),
                DbConn::Sqlite(lite) => diesel::sql_query(
                    "SELECT COUNT(*) AS n FROM __diesel_schema_migrations WHERE version = ?",
                )
                .bind::<diesel::sql_types::Text, _>(&latest)
                .get_result::<Applied>(lite),
            };
            match n {
                Ok(a) => Ok(a.n > 0),
                // No migrations table yet: reachable but not migrated.
                Err(diesel::result::Error::DatabaseError(..)) => Ok(false),
                Err(e) => Err(e.into()),
            }
        })
        .await
    }
}

/// A panic inside database work becomes an error for this request, as it did when the work ran
/// on a blocking thread; the connection it held is discarded (pooled: `has_broken` sees the
/// panic; writer: its mutex is poisoned and the connection replaced on next use).
fn contain_panic<T>(f: impl FnOnce() -> Result<T, StorageError>) -> Result<T, StorageError> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f))
        .unwrap_or_else(|_| Err(StorageError::Unavailable("database task panicked".into())))
}

fn latest_version(migrations: &EmbeddedMigrations) -> String {
    use diesel::migration::MigrationSource;
    let all: Vec<_> = MigrationSource::<diesel::sqlite::Sqlite>::migrations(migrations)
        .unwrap_or_default()
        .iter()
        .map(|m| m.name().version().to_string())
        .collect();
    all.into_iter().max().unwrap_or_default()
}
