//! Reading `database.url`: the scheme alone decides the backend, and a URL that is not clearly
//! one of ours is an error, never a SQLite file named after it.

use crate::StorageError;
use std::path::PathBuf;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DatabaseTarget {
    Sqlite(PathBuf),
    Postgres(String),
}

impl DatabaseTarget {
    pub fn parse(raw: &str) -> Result<Self, StorageError> {
        let raw = raw.trim();
        if let Some(path) = raw.strip_prefix("sqlite://") {
            return Self::sqlite(path);
        }
        if raw.starts_with("postgres://") || raw.starts_with("postgresql://") {
            let parsed = url::Url::parse(raw)
                .map_err(|e| StorageError::InvalidUrl(format!("{}: {e}", redact(raw))))?;
            if parsed.host_str().is_none_or(str::is_empty) {
                return Err(StorageError::InvalidUrl(format!(
                    "{}: no host",
                    redact(raw)
                )));
            }
            return Ok(Self::Postgres(raw.to_owned()));
        }
        Err(StorageError::InvalidUrl(format!(
            "{}: use sqlite://PATH or postgres://USER@HOST/DB",
            redact(raw)
        )))
    }

    fn sqlite(path: &str) -> Result<Self, StorageError> {
        if path.is_empty() {
            return Err(StorageError::InvalidUrl(
                "sqlite:// needs a file path".into(),
            ));
        }
        if path.contains(':') || path.contains('?') || path.contains('#') {
            // ":memory:" would give every pooled connection its own empty database, and URI
            // parameters would change how the file is opened behind the operator's back.
            return Err(StorageError::InvalidUrl(format!(
                "sqlite://{path}: only a plain file path is accepted"
            )));
        }
        Ok(Self::Sqlite(PathBuf::from(path)))
    }

    pub fn backend(&self) -> Backend {
        match self {
            Self::Sqlite(_) => Backend::Sqlite,
            Self::Postgres(_) => Backend::Postgres,
        }
    }

    /// A form safe to print: the password of a PostgreSQL URL replaced by `***`.
    pub fn display(&self) -> String {
        match self {
            Self::Sqlite(p) => format!("sqlite://{}", p.display()),
            Self::Postgres(u) => redact(u),
        }
    }
}

/// Hides the password (and any `password=` query parameter) of a URL for logs and errors.
pub fn redact(raw: &str) -> String {
    match url::Url::parse(raw) {
        Ok(mut u) => {
            if u.password().is_some() {
                let _ = u.set_password(Some("***"));
            }
            if u.query().is_some_and(|q| q.contains("password")) {
                u.set_query(Some("***"));
            }
            u.to_string()
        }
        Err(_) => match raw.split_once("://") {
            Some((scheme, _)) => format!("{scheme}://***"),
            None => "***".into(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scheme_picks_the_backend() {
        assert_eq!(
            DatabaseTarget::parse("sqlite://data/braid.db").unwrap(),
            DatabaseTarget::Sqlite("data/braid.db".into())
        );
        assert_eq!(
            DatabaseTarget::parse("sqlite:///var/lib/braid/braid.db").unwrap(),
            DatabaseTarget::Sqlite("/var/lib/braid/braid.db".into())
        );
        assert_eq!(
            DatabaseTarget::parse("postgres://u:p@127.0.0.1:5432/braid")
                .unwrap()
                .backend(),
            Backend::Postgres
        );
        assert_eq!(
            DatabaseTarget::parse("postgresql://db.internal/braid")
                .unwrap()
                .backend(),
            Backend::Postgres
        );
    }

    #[test]
    fn anything_else_is_an_error_not_a_file() {
        for bad in [
            "",
            "braid.db",
            "./data/braid.db",
            "mysql://root@localhost/braid",
            "postgres:/u:p@127.0.0.1:1/",
            "postgres://",
            "sqlite://",
            "sqlite://:memory:",
            "sqlite://x.db?mode=ro",
            "file:braid.db",
        ] {
            assert!(
                DatabaseTarget::parse(bad).is_err(),
                "{bad:?} should be refused"
            );
        }
    }

    #[test]
    fn passwords_never_appear_in_errors_or_display() {
        let t = DatabaseTarget::parse("postgres://braid:s3cret@db:5432/braid").unwrap();
        assert!(!t.display().contains("s3cret"));
        let err = DatabaseTarget::parse("postgres://braid:s3cret@:5432/braid").unwrap_err();
        assert!(!err.to_string().contains("s3cret"), "{err}");
        assert!(!redact("postgres://db/braid?password=s3cret").contains("s3cret"));
        assert!(!redact("mysql://root:s3cret@x").contains("s3cret"));
    }
}
