use thiserror::Error;

#[derive(Debug, Error)]
pub enum StorageError {
    /// The configured URL cannot be used (wrong scheme, malformed, unusable path).
    #[error("invalid database url: {0}")]
    InvalidUrl(String),
    /// The database could not be reached or a connection could not be had in time.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    #[error("migration failed: {0}")]
    Migration(String),
    /// A unique constraint refused the write: a race or a duplicate, settled by the database.
    #[error("conflict: {0}")]
    Conflict(String),
    #[error("not found")]
    NotFound,
    /// A stored value no longer parses as its domain type.
    #[error("corrupt row: {0}")]
    Corrupt(String),
    #[error("query failed: {0}")]
    Query(diesel::result::Error),
}

impl From<diesel::result::Error> for StorageError {
    fn from(e: diesel::result::Error) -> Self {
        use diesel::result::{DatabaseErrorKind, Error};
        match e {
            Error::DatabaseError(DatabaseErrorKind::UniqueViolation, info) => {
                Self::Conflict(info.message().to_owned())
            }
            Error::NotFound => Self::NotFound,
            other => Self::Query(other),
        }
    }
}

impl From<braid_core::DomainError> for StorageError {
    fn from(e: braid_core::DomainError) -> Self {
        Self::Corrupt(e.to_string())
    }
}

impl From<serde_json::Error> for StorageError {
    fn from(e: serde_json::Error) -> Self {
        Self::Corrupt(e.to_string())
    }
}
