//! Building the application: database, keys, listener, server. Tests start it on port 0.

use crate::clients::Clients;
use crate::flows::link_proof::CodeKey;
use crate::flows::link_state::{self, CsrfKey};
use crate::flows::login_flow;
use crate::keys::{self, KeyError};
use crate::limiter::Limiter;
use crate::limits::MAX_BODY_BYTES;
use crate::metrics::Metrics;
use crate::outbox::{Outbox, OutboxError};
use crate::pages::Pages;
use crate::routes::LinkPaths;
use crate::settings::Settings;
use crate::state::AppState;
use crate::telemetry::BraidRootSpan;
use crate::tokens::keyring::KeyRing;
use crate::tokens::sealed::{KeyDerivationError, Sealer};
use actix_web::dev::Server;
use actix_web::http::header;
use actix_web::middleware::DefaultHeaders;
use actix_web::{App, HttpMessage, HttpServer, web};
use braid_core::linking::{LinkPolicy, MatchBy};
use braid_providers::{
    MatchedClaims, ProviderError, ProviderRegistry, RegistryOptions, UpstreamObserver,
};
use braid_storage::repo::keys as key_repo;
use braid_storage::{Database, StorageError};
use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;
use tracing_actix_web::{RequestId, TracingLogger};

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: String,
        source: std::io::Error,
    },
    #[error(transparent)]
    Keys(#[from] KeyError),
    #[error(
        "the database is not migrated; run `braid migrate` or set server.migrate_on_start = true"
    )]
    NotMigrated,
    #[error("identity providers: {0}")]
    Providers(#[from] braid_providers::ProviderError),
    #[error("page templates: {0}")]
    Templates(#[from] crate::pages::PagesError),
    #[error("metrics: {0}")]
    Metrics(#[from] prometheus::Error),
    #[error("cookie key: {0}")]
    CookieKey(#[from] KeyDerivationError),
    #[error("email, SMS and webhooks: {0}")]
    Outbox(#[from] OutboxError),
    #[error("sessions: {0}")]
    Sessions(#[from] crate::sessions::SessionSetupError),
    #[error("development mode: {0}")]
    Dev(#[from] crate::dev::DevStartError),
    #[error("server.trusted_proxies: {0:?} is not an IP address or network")]
    TrustedProxy(String),
}

pub struct Application {
    db: CloseOnDrop,
    port: u16,
    server: Server,
    /// The `metrics.listen` server and its port, when one is configured.
    metrics: Option<(u16, Server)>,
    /// `--dev`'s throw-away database folder, removed once the server has stopped.
    dev_temp_dir: Option<std::path::PathBuf>,
}

/// How long a stopping server waits for database work still running (a background purge)
/// before it closes the connections anyway.
const CLOSE_WAIT: Duration = Duration::from_secs(10);

/// Closes the database when the application is dropped, whether it ran or not, so its
/// connections close here and not on whichever worker thread lets go of the state last.
struct CloseOnDrop(Database);

impl Drop for CloseOnDrop {
    fn drop(&mut self) {
        self.0.close(Duration::ZERO);
    }
}

impl Application {
    pub async fn build(settings: Settings) -> Result<Self, StartupError> {
        let settings = Arc::new(settings);
        let state = prepare_state(settings.clone()).await?;
        let (listener, port) = bind(&format!(
            "{}:{}",
            settings.server.host, settings.server.port
        ))?;
        let metrics_listener = match &settings.metrics.listen {
            Some(addr) => Some(bind(addr)?),
            None => None,
        };
        let metrics_on_main = metrics_listener.is_none();
        crate::housekeeping::spawn(state.db.clone());
        crate::outbox::worker::Worker::new(state.db.clone(), state.outbox.clone(), &state.metrics)
            .spawn();
        let db = CloseOnDrop(state.db.clone());
        let provider_ids: Vec<String> = state.providers.ids().map(ToString::to_string).collect();
        let link_paths = state.link_paths.clone();
        let dev = state.dev.clone();
        let local_accounts = settings.local_accounts.enabled;
        if local_accounts {
            crate::local_accounts::preload_common_passwords();
        }
        let state = web::Data::new(state);
        crate::provider_check::spawn(state.clone().into_inner());
        let metrics_state = state.clone();
        let mut server = HttpServer::new(move || {
            let sessions = state
                .sessions
                .as_ref()
                .map(crate::sessions::Sessions::middleware);
            App::new()
                .app_data(state.clone())
                .app_data(web::PayloadConfig::new(MAX_BODY_BYTES))
                .app_data(web::FormConfig::default().limit(MAX_BODY_BYTES))
                .app_data(web::JsonConfig::default().limit(MAX_BODY_BYTES))
                .configure(|cfg| {
                    crate::routes::configure(
                        cfg,
                        &provider_ids,
                        &link_paths,
                        sessions.as_ref(),
                        dev.as_ref(),
                    );
                    if local_accounts {
                        cfg.configure(crate::routes::local::configure);
                    }
                    if metrics_on_main {
                        cfg.route("/metrics", web::get().to(crate::metrics::metrics));
                    }
                })
                .default_service(web::to(crate::routes::not_found))
                .wrap(security_headers())
                .wrap(actix_web::middleware::from_fn(
                    crate::limits::request_limits,
                ))
                .wrap(actix_web::middleware::from_fn(request_id_header))
                .wrap(TracingLogger::<BraidRootSpan>::new())
        })
        .listen(listener)
        .map_err(|source| StartupError::Bind {
            addr: format!("port {port}"),
            source,
        })?
        .shutdown_timeout(10);
        if let Some(workers) = settings.server.workers {
            server = server.workers(workers);
        }
        let metrics = match metrics_listener {
            Some((listener, port)) => Some((port, metrics_server(metrics_state, listener)?)),
            None => None,
        };
        Ok(Self {
            db,
            port,
            server: server.run(),
            metrics,
            dev_temp_dir: settings.dev.as_ref().and_then(|d| d.temp_dir.clone()),
        })
    }

    /// The port of the `metrics.listen` listener, when one is configured.
    pub fn metrics_port(&self) -> Option<u16> {
        self.metrics.as_ref().map(|(port, _)| *port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Serves until SIGINT/SIGTERM, then drains in-flight requests and closes the database.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let served = match self.metrics {
            Some((_, metrics)) => {
                let (served, metrics_served) = tokio::join!(self.server, metrics);
                served.and(metrics_served)
            }
            None => self.server.await,
        };
        let db = self.db.0.clone();
        if let Err(e) = tokio::task::spawn_blocking(move || db.close(CLOSE_WAIT)).await {
            tracing::warn!(error = %e, "closing the database failed");
        }
        if let Some(dir) = &self.dev_temp_dir
            && let Err(e) = std::fs::remove_dir_all(dir)
        {
            tracing::warn!(error = %e, dir = %dir.display(), "the throw-away database was not removed");
        }
        served
    }
}

fn bind(addr: &str) -> Result<(TcpListener, u16), StartupError> {
    let listener = TcpListener::bind(addr).map_err(|source| StartupError::Bind {
        addr: addr.to_owned(),
        source,
    })?;
    let port = listener
        .local_addr()
        .map_err(|source| StartupError::Bind {
            addr: addr.to_owned(),
            source,
        })?
        .port();
    Ok((listener, port))
}

/// The `metrics.listen` server: `/metrics`, `/healthz` and `/readyz`, nothing else.
fn metrics_server(
    state: web::Data<AppState>,
    listener: TcpListener,
) -> Result<Server, StartupError> {
    let addr = listener
        .local_addr()
        .map_or_else(|_| "metrics.listen".to_owned(), |a| a.to_string());
    Ok(HttpServer::new(move || {
        App::new()
            .app_data(state.clone())
            .configure(crate::routes::health::configure)
            .route("/metrics", web::get().to(crate::metrics::metrics))
            .default_service(web::to(crate::problem::not_found))
            .wrap(security_headers())
    })
    .workers(1)
    .listen(listener)
    .map_err(|source| StartupError::Bind { addr, source })?
    .shutdown_timeout(10)
    .run())
}

/// Connects, migrates (when configured) and makes sure the shared keys exist.
async fn prepare_state(settings: Arc<Settings>) -> Result<AppState, StartupError> {
    let started = std::time::Instant::now();
    // aws-lc seeds its random generator on first use (~40 ms here): do it now, beside the
    // database work, rather than in the first request that signs a token.
    let seed_crypto = tokio::task::spawn_blocking(|| {
        let mut probe = [0u8; 1];
        aws_lc_rs::rand::SecureRandom::fill(&aws_lc_rs::rand::SystemRandom::new(), &mut probe)
            .is_ok()
    });
    let db_settings = settings.database.clone();
    let migrate = settings.server.migrate_on_start;
    let alg = settings.tokens.signing_alg;
    let (db, session_key, kid) = tokio::task::spawn_blocking(move || -> Result<_, StartupError> {
        let db = Database::connect(&db_settings)?;
        if migrate {
            let applied = db.migrate()?;
            if applied > 0 {
                tracing::info!(applied, "database migrated");
            }
        } else if db.has_pending_migrations()? {
            return Err(StartupError::NotMigrated);
        }
        let mut conn = db.conn()?;
        let key = key_repo::ensure_signing_key(&mut conn, braid_core::Timestamp::now(), || Ok(keys::generate(alg)?))?;
        if key.alg != alg.as_str() {
            tracing::warn!(signing = %key.alg, configured = alg.as_str(), "tokens.signing_alg differs from the signing key; run `braid keys rotate` to switch");
        }
        let session_key = key_repo::secret_get_or_create(&mut conn, "session_key", || Ok(keys::generate_session_key()?))?;
        Ok((db, session_key, key.kid))
    })
    .await
    .map_err(|e| StorageError::Unavailable(format!("start-up task failed: {e}")))??;
    if !seed_crypto.await.unwrap_or(false) {
        tracing::warn!("the crypto library's random generator did not answer at start");
    }
    tracing::debug!(
        ms = started.elapsed().as_millis(),
        "database and keys ready"
    );
    let keys = KeyRing::load(db.clone(), &settings.keys).await?;
    tracing::debug!(kid = %kid, "signing key ready");
    let metrics = Metrics::new()?;
    let providers = observed_provider_registry(&settings, Some(metrics.upstream_observer()))?;
    metrics.prepare(&providers);
    tracing::debug!(ms = started.elapsed().as_millis(), "providers ready");
    let clients =
        Clients::from_settings(&settings.clients).with_console(&settings.server.public_url());
    let linking = &settings.account_linking;
    let link_policy = LinkPolicy {
        resolution: linking.resolution,
        on_ambiguity: linking.on_ambiguity,
        conflict_action: linking.conflict_action,
        manual_available: true,
    };
    let flow_sealer = Sealer::new(&session_key, login_flow::PURPOSE)?;
    let link_sealer = Sealer::new(&session_key, link_state::PURPOSE)?;
    let admin_sealer = Sealer::new(&session_key, crate::admin::console_session::PURPOSE)?;
    let console_sign_in_sealer = Sealer::new(&session_key, crate::flows::console_sign_in::PURPOSE)?;
    let sessions = crate::sessions::Sessions::from_settings(&settings, &db, &session_key).await?;
    if let Some(s) = &sessions {
        tracing::info!(store = s.store_kind(), "server-side sessions on");
    }
    Ok(AppState {
        sessions,
        limiter: Limiter::new(db.clone(), settings.limits.clone()),
        client_addrs: settings
            .server
            .client_addrs()
            .map_err(StartupError::TrustedProxy)?,
        db,
        flow_sealer,
        link_sealer,
        admin_sealer,
        console_sign_in_sealer,
        csrf: CsrfKey::new(&session_key),
        code_key: Arc::new(CodeKey::new(&session_key)),
        link_paths: LinkPaths {
            select: settings.account_linking.routes.select_path(),
            verify: settings.account_linking.routes.verify_path(),
        },
        session_key,
        keys,
        providers,
        clients,
        pages: Pages::new(&settings.views)?.with_dev_banner(settings.dev.is_some()),
        metrics,
        issuer: settings.issuer(),
        cookie_secure: settings.cookie_secure(),
        link_policy,
        outbox: Arc::new(Outbox::from_settings(&settings)?),
        webhooks: crate::webhooks::Webhooks::from_settings(&settings.webhooks),
        dev: match &settings.dev {
            Some(dev) => Some(Arc::new(crate::dev::DevState::new(&settings, dev)?)),
            None => None,
        },
        settings,
    })
}

/// The configured providers, as `check-config --providers` builds them.
pub fn provider_registry(settings: &Settings) -> Result<ProviderRegistry, ProviderError> {
    observed_provider_registry(settings, None)
}

/// The configured providers, telling `observer` the duration of each upstream call.
fn observed_provider_registry(
    settings: &Settings,
    observer: Option<Arc<dyn UpstreamObserver>>,
) -> Result<ProviderRegistry, ProviderError> {
    ProviderRegistry::with_options(
        &settings.federated_login.providers,
        &settings.server.public_url(),
        RegistryOptions {
            upstream_observer: observer,
            ..registry_options(settings)
        },
    )
}

fn registry_options(settings: &Settings) -> RegistryOptions {
    let match_by = &settings.account_linking.match_by;
    RegistryOptions {
        matched_claims: MatchedClaims {
            email: match_by.contains(&MatchBy::Email),
            phone: match_by.contains(&MatchBy::Phone),
        },
        ..RegistryOptions::default()
    }
}

/// What `serve` builds from the settings and the files they name before it listens (every
/// provider with its CA file and Apple key, the page and message templates, the mail and SMS
/// senders), built here and dropped: one line per problem, prefixed with the setting's path.
/// The configuration loader runs it for every command, so `check-config` refuses exactly
/// what would stop `serve`.
pub fn startup_problems(settings: &Settings) -> Vec<String> {
    let mut out = ProviderRegistry::build(
        &settings.federated_login.providers,
        &settings.server.public_url(),
        registry_options(settings),
    )
    .err()
    .unwrap_or_default();
    if let Err(e) = Pages::new(&settings.views) {
        out.push(format!("views.templates_dir: {e}"));
    }
    // The mail sender's connection pool needs a runtime to be built and dropped in.
    let outbox = || match Outbox::from_settings(settings) {
        Ok(_) => None,
        Err(OutboxError::Config(e)) => Some(e),
        Err(e) => Some(format!("views.templates_dir: {e}")),
    };
    let outbox_problem = if tokio::runtime::Handle::try_current().is_ok() {
        outbox()
    } else {
        match tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        {
            Ok(runtime) => {
                let _entered = runtime.enter();
                outbox()
            }
            Err(e) => Some(format!("cannot start a runtime to check smtp: {e}")),
        }
    };
    out.extend(outbox_problem);
    out
}

fn security_headers() -> DefaultHeaders {
    DefaultHeaders::new()
        .add((
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
        ))
        .add((header::X_FRAME_OPTIONS, "DENY"))
        .add((header::REFERRER_POLICY, "no-referrer"))
        .add((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .add((header::CACHE_CONTROL, "no-store"))
}

/// Echoes the request id of the log lines in `X-Request-Id`, so a user's report can be traced.
async fn request_id_header(
    req: actix_web::dev::ServiceRequest,
    next: actix_web::middleware::Next<impl actix_web::body::MessageBody>,
) -> Result<actix_web::dev::ServiceResponse<impl actix_web::body::MessageBody>, actix_web::Error> {
    let id = req.extensions().get::<RequestId>().map(ToString::to_string);
    let mut res = next.call(req).await?;
    if let Some(value) = id.and_then(|id| header::HeaderValue::from_str(&id).ok()) {
        res.headers_mut()
            .insert(header::HeaderName::from_static("x-request-id"), value);
    }
    Ok(res)
}
