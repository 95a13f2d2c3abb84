//! `braid serve --dev`: a throw-away instance for trying Braid on one machine. Two tiny
//! OpenID providers served by Braid itself ([`idp`]) and a demo app ([`demo_app`]) that
//! signs in through them, so a first sign-in exercises the real login path: Braid's `oidc`
//! provider code talks to the development providers over loopback HTTP, and the demo app
//! redeems its exchange code at `POST /auth/exchange-code` like any app's backend.
//!
//! Nothing here exists without `--dev`: the routes are registered only then.

pub mod demo_app;
pub mod idp;

use crate::settings::{ClientSettings, Resolution, Settings};
use crate::tokens::opaque::random_token;
use actix_web::web;
use braid_core::Secret;
use braid_providers::{Preset, ProviderSettings};
use std::path::PathBuf;
use std::sync::Arc;

/// The development providers: id and display name.
pub const PROVIDERS: [(&str, &str); 2] = [("dev-a", "Dev provider A"), ("dev-b", "Dev provider B")];
/// The demo app's client id.
pub const DEMO_CLIENT: &str = "demo";
/// Braid's client id at the development providers.
const IDP_CLIENT_ID: &str = "braid";

/// What `--dev` decided at start (secrets generated then; the throw-away database).
#[derive(Debug, Clone, PartialEq)]
pub struct DevMode {
    /// Braid's client secret at the development providers.
    pub idp_client_secret: Secret,
    /// The demo app's client secret at Braid.
    pub demo_secret: Secret,
    /// The folder of the throw-away database, removed when Braid stops.
    pub temp_dir: Option<PathBuf>,
}

#[derive(Debug, thiserror::Error)]
pub enum DevError {
    #[error("--dev binds loopback only; server.host is {0:?} (use 127.0.0.1 or leave it unset)")]
    Host(String),
    #[error(
        "--dev refuses a non-loopback server.public_url ({0:?}): development mode is not for production"
    )]
    PublicUrl(String),
    #[error("--dev adds {0} {1:?}, which the configuration already defines; rename yours")]
    Collision(&'static str, String),
    #[error("--dev cannot create its throw-away database folder: {0}")]
    TempDir(std::io::Error),
    #[error("the system random source failed")]
    Random,
}

fn is_loopback_host(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// Turns `settings` into a development instance: loopback only, a throw-away SQLite database
/// unless `database.url` was changed from its default, migrations on start, the development
/// providers and the demo client added, automatic linking unless `account_linking.resolution`
/// was set.
pub fn enable(settings: &mut Settings) -> Result<(), DevError> {
    if !is_loopback_host(&settings.server.host) {
        return Err(DevError::Host(settings.server.host.clone()));
    }
    if let Some(public) = &settings.server.public_url {
        let loopback = url::Url::parse(public).is_ok_and(|u| {
            matches!(u.scheme(), "http" | "https") && u.host_str().is_some_and(is_loopback_host)
        });
        if !loopback {
            return Err(DevError::PublicUrl(public.clone()));
        }
    }
    for (id, _) in PROVIDERS {
        if settings.federated_login.providers.contains_key(id) {
            return Err(DevError::Collision("provider", id.into()));
        }
    }
    if settings.clients.contains_key(DEMO_CLIENT) {
        return Err(DevError::Collision("client", DEMO_CLIENT.into()));
    }
    let secret = || {
        random_token()
            .map(Secret::new)
            .map_err(|_| DevError::Random)
    };
    let (idp_client_secret, demo_secret) = (secret()?, secret()?);
    let temp_dir = if settings.database.url == braid_storage::DatabaseSettings::default().url {
        let dir = std::env::temp_dir().join(format!(
            "braid-dev-{}",
            &random_token().map_err(|_| DevError::Random)?[..12]
        ));
        std::fs::create_dir_all(&dir).map_err(DevError::TempDir)?;
        settings.database.url = format!("sqlite://{}", dir.join("braid.db").display());
        Some(dir)
    } else {
        None
    };
    settings.server.migrate_on_start = true;
    let public_url = settings.server.public_url();
    for (id, name) in PROVIDERS {
        let mut p = ProviderSettings::new(Preset::Oidc, IDP_CLIENT_ID);
        p.client_secret = Some(idp_client_secret.clone());
        p.issuer = Some(format!("{public_url}/dev/idp/{id}"));
        p.display_name = Some(name.into());
        p.trust_email = Some(true);
        p.id_token_alg = Some("ES256".into());
        settings.federated_login.providers.insert(id.into(), p);
    }
    settings.clients.insert(
        DEMO_CLIENT.into(),
        ClientSettings {
            redirect_uris: vec![format!("{public_url}/dev/app/callback")],
            secret: Some(demo_secret.clone()),
            ..ClientSettings::default()
        },
    );
    if settings.account_linking.resolution == Resolution::Disabled {
        settings.account_linking.resolution = Resolution::Automatic;
    }
    settings.dev = Some(DevMode {
        idp_client_secret,
        demo_secret,
        temp_dir,
    });
    Ok(())
}

/// The development providers and the demo app, at run time.
pub struct DevState {
    pub idp: idp::Idps,
    pub demo: demo_app::Demo,
}

#[derive(Debug, thiserror::Error)]
pub enum DevStartError {
    #[error("development provider keys: {0}")]
    Keys(#[from] crate::keys::KeyError),
    #[error("demo app HTTP client: {0}")]
    Client(#[from] reqwest::Error),
}

impl DevState {
    pub fn new(settings: &Settings, dev: &DevMode) -> Result<Self, DevStartError> {
        let public_url = settings.server.public_url();
        tracing::warn!(
            demo = %format!("{public_url}/dev/app"),
            "development mode: not for production (a throw-away instance with built-in test \
             providers; open the demo app in a browser)"
        );
        Ok(Self {
            idp: idp::Idps::new(&public_url, IDP_CLIENT_ID, &dev.idp_client_secret)?,
            demo: demo_app::Demo::new(&public_url, &dev.demo_secret)?,
        })
    }
}

/// The `/dev/...` routes, and `/` sending a newcomer to the demo app.
pub fn configure(cfg: &mut web::ServiceConfig, dev: &Arc<DevState>) {
    cfg.app_data(web::Data::from(dev.clone()))
        .configure(idp::configure)
        .configure(demo_app::configure)
        .route(
            "/",
            web::get().to(|| async {
                actix_web::HttpResponse::SeeOther()
                    .insert_header((actix_web::http::header::LOCATION, "/dev/app"))
                    .finish()
            }),
        );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn non_loopback_hosts_and_public_urls_are_refused() {
        let mut s = Settings::default();
        s.server.host = "0.0.0.0".into();
        assert!(matches!(enable(&mut s), Err(DevError::Host(_))));
        let mut s = Settings::default();
        s.server.public_url = Some("https://id.example.com".into());
        assert!(matches!(enable(&mut s), Err(DevError::PublicUrl(_))));
        for ok in [
            "http://127.0.0.1:8080",
            "http://localhost:9000",
            "http://[::1]:8080",
        ] {
            let mut s = Settings::default();
            s.database.url = "sqlite://:memory:".into();
            s.server.public_url = Some(ok.into());
            assert!(enable(&mut s).is_ok(), "{ok}");
        }
    }

    #[test]
    fn dev_adds_providers_client_and_linking_and_refuses_collisions() {
        let mut s = Settings::default();
        s.database.url = "sqlite://kept.db".into();
        enable(&mut s).unwrap();
        assert_eq!(s.database.url, "sqlite://kept.db");
        assert!(s.federated_login.providers.contains_key("dev-a"));
        assert!(s.clients.contains_key(DEMO_CLIENT));
        assert_eq!(s.account_linking.resolution, Resolution::Automatic);
        assert_eq!(s.problems(), Vec::<String>::new());
        assert!(matches!(enable(&mut s), Err(DevError::Collision(..))));

        let mut s = Settings::default();
        enable(&mut s).unwrap();
        let dir = s.dev.as_ref().unwrap().temp_dir.clone().unwrap();
        assert!(s.database.url.ends_with("braid.db") && s.database.url.contains("braid-dev-"));
        std::fs::remove_dir_all(dir).unwrap();
    }
}
