//! Fresh, migrated databases for tests of this and later crates.
//!
//! SQLite in a new temporary folder by default. When `BRAID_TEST_DATABASE_URL` names a
//! PostgreSQL server, every `TestDb` gets a database of its own there, dropped afterwards, so
//! the same tests run on both backends and never see each other's rows.

use crate::{Database, DatabaseSettings, StorageError};
use diesel::{Connection, RunQueryDsl};
use std::path::PathBuf;

pub const TEST_DATABASE_URL_VAR: &str = "BRAID_TEST_DATABASE_URL";

pub struct TestDb {
    pub db: Database,
    pub settings: DatabaseSettings,
    cleanup: Cleanup,
}

enum Cleanup {
    SqliteDir(PathBuf),
    PostgresDb { admin_url: String, name: String },
}

impl TestDb {
    pub fn new() -> Result<Self, StorageError> {
        match std::env::var(TEST_DATABASE_URL_VAR) {
            Ok(url) if !url.trim().is_empty() => Self::postgres(url.trim()),
            _ => Self::sqlite(),
        }
    }

    fn sqlite() -> Result<Self, StorageError> {
        let dir =
            std::env::temp_dir().join(format!("braid-test-{}", uuid::Uuid::now_v7().simple()));
        std::fs::create_dir_all(&dir)
            .map_err(|e| StorageError::Unavailable(format!("{}: {e}", dir.display())))?;
        let settings = DatabaseSettings {
            url: format!("sqlite://{}", dir.join("braid.db").display()),
            ..DatabaseSettings::default()
        };
        let db = Database::connect(&settings)?;
        db.migrate()?;
        Ok(Self {
            db,
            settings,
            cleanup: Cleanup::SqliteDir(dir),
        })
    }

    fn postgres(admin_url: &str) -> Result<Self, StorageError> {
        let name = format!("braid_test_{}", uuid::Uuid::now_v7().simple());
        let mut admin = diesel::PgConnection::establish(admin_url)
            .map_err(|e| StorageError::Unavailable(format!("{}: {e}", crate::redact(admin_url))))?;
        diesel::sql_query(format!("CREATE DATABASE {name}")).execute(&mut admin)?;
        let mut url =
            url::Url::parse(admin_url).map_err(|e| StorageError::InvalidUrl(e.to_string()))?;
        url.set_path(&name);
        let settings = DatabaseSettings {
            url: url.to_string(),
            ..DatabaseSettings::default()
        };
        let cleanup = Cleanup::PostgresDb {
            admin_url: admin_url.to_owned(),
            name,
        };
        let db = Database::connect(&settings)?;
        db.migrate()?;
        Ok(Self {
            db,
            settings,
            cleanup,
        })
    }
}

impl TestDb {
    /// Reverts the newest migration, for tests that check how it treats existing rows;
    /// returns its version. `db.migrate()` applies it again.
    pub fn revert_last_migration(&self) -> String {
        self.db
            .revert_last_migration()
            .unwrap_or_else(|e| panic!("reverting the last migration: {e}"))
    }

    /// Runs a statement directly, for tests that simulate time passing or a crash.
    pub fn execute(&self, sql: &str) -> usize {
        let mut conn = self
            .db
            .conn()
            .unwrap_or_else(|e| panic!("test database: {e}"));
        diesel::sql_query(sql)
            .execute(&mut *conn)
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
    }

    pub fn count(&self, table: &str) -> i64 {
        #[derive(diesel::QueryableByName)]
        struct N {
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            n: i64,
        }
        let mut conn = self
            .db
            .conn()
            .unwrap_or_else(|e| panic!("test database: {e}"));
        let sql = format!("SELECT COUNT(*) AS n FROM {table}");
        let rows: Vec<N> = diesel::sql_query(&sql)
            .load(&mut *conn)
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
        rows.first().map_or(0, |r| r.n)
    }

    /// The one text column `t` of each row of a query (`SELECT body AS t FROM outbox`).
    pub fn texts(&self, sql: &str) -> Vec<String> {
        #[derive(diesel::QueryableByName)]
        struct T {
            #[diesel(sql_type = diesel::sql_types::Text)]
            t: String,
        }
        let mut conn = self
            .db
            .conn()
            .unwrap_or_else(|e| panic!("test database: {e}"));
        let rows: Vec<T> = diesel::sql_query(sql)
            .load(&mut *conn)
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
        rows.into_iter().map(|r| r.t).collect()
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        // Closed here, on the test's thread, rather than by whichever thread drops the last
        // clone, possibly while the test binary exits.
        self.db.close(std::time::Duration::from_secs(5));
        match &self.cleanup {
            Cleanup::SqliteDir(dir) => {
                let _ = std::fs::remove_dir_all(dir);
            }
            Cleanup::PostgresDb { admin_url, name } => {
                if let Ok(mut admin) = diesel::PgConnection::establish(admin_url) {
                    let _ =
                        diesel::sql_query(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                            .execute(&mut admin);
                }
            }
        }
    }
}
