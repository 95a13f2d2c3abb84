//! The first log lines of `serve`: where the configuration came from and what it sets up, so
//! an operator sees at once what is running and what to register where. No secret appears:
//! the database is named by backend, host and name only, and environment variables by name.

use crate::config::Loaded;

pub fn log(loaded: &Loaded) {
    let s = &loaded.settings;
    let file = loaded.file.as_ref().map_or_else(
        || "none (built-in defaults)".to_owned(),
        |p| p.display().to_string(),
    );
    let environment = if loaded.env.is_empty() {
        "none".to_owned()
    } else {
        loaded.env.join(", ")
    };
    tracing::info!(file = %file, environment = %environment, "configuration read");
    let (backend, location) = database(&s.database.url);
    tracing::info!(backend, location = %location, "database");
    let public_url = s.server.public_url();
    tracing::info!(public_url = %public_url, "public URL");
    for (id, p) in &s.federated_login.providers {
        let callback_url = braid_providers::callback_url(&public_url, id).unwrap_or_default();
        tracing::info!(
            provider = %id,
            preset = p.preset.name(),
            enabled = p.enabled,
            callback_url = %callback_url,
            "provider: register the callback URL at the provider"
        );
    }
    for (id, c) in &s.clients {
        tracing::info!(
            client = %id,
            redirect_uris = %c.redirect_uris.join(", "),
            public = c.public,
            "client"
        );
    }
}

/// The backend and where its data is: a SQLite file path, or a PostgreSQL `host:port/db`
/// (never the user or password).
fn database(url: &str) -> (&'static str, String) {
    match braid_storage::DatabaseTarget::parse(url) {
        Ok(braid_storage::DatabaseTarget::Sqlite(path)) => ("sqlite", path.display().to_string()),
        Ok(braid_storage::DatabaseTarget::Postgres(raw)) => {
            let location = url::Url::parse(&raw)
                .map(|u| {
                    let host = u.host_str().unwrap_or_default();
                    let port = u.port().map(|p| format!(":{p}")).unwrap_or_default();
                    format!("{host}{port}{}", u.path())
                })
                .unwrap_or_default();
            ("postgres", location)
        }
        Err(_) => ("unknown", String::new()),
    }
}

#[cfg(test)]
mod tests {
    use super::database;

    #[test]
    fn the_database_is_named_without_user_or_password() {
        assert_eq!(
            database("postgres://braid:s3cret@db.internal:5433/braid?sslmode=require"),
            ("postgres", "db.internal:5433/braid".to_owned())
        );
        assert_eq!(
            database("sqlite://data/braid.db"),
            ("sqlite", "data/braid.db".to_owned())
        );
    }
}
