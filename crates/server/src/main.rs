//! `braid`: the identity broker's command line.

mod config;
mod import;
mod startup_lines;
mod telemetry;

use braid_core::{Timestamp, UserId};
use braid_http::{Application, Settings};
use braid_storage::repo::audit::AuditEvent;
use braid_storage::repo::{keys, users};
use braid_storage::{Database, StorageError};
use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

#[derive(Parser)]
#[command(
    name = "braid",
    version,
    about = "Braid: a self-hosted identity broker"
)]
struct Cli {
    /// Configuration file (TOML). Default: config/braid.toml when it exists.
    #[arg(long, global = true, env = "BRAID_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server (migrates the database first unless server.migrate_on_start = false).
    Serve {
        /// Development mode, not for production: loopback only, a throw-away database unless
        /// database.url is set, two built-in test providers and a demo app at /dev/app.
        #[arg(long)]
        dev: bool,
    },
    /// Apply pending database migrations and exit.
    Migrate,
    /// Validate the configuration: one line per problem, non-zero exit if any.
    CheckConfig {
        /// Also fetch each enabled provider's discovery document and keys, and report
        /// providers that cannot be used as configured (non-zero exit if any).
        #[arg(long)]
        providers: bool,
    },
    /// Exit 0 when this instance's /readyz answers 200 (for container health checks).
    Healthcheck,
    /// Manage signing keys.
    Keys {
        #[command(subcommand)]
        action: KeysAction,
    },
    /// Manage users.
    Users {
        #[command(subcommand)]
        action: UsersAction,
    },
    /// Manage the keys of the admin API and console.
    AdminKeys {
        #[command(subcommand)]
        action: AdminKeysAction,
    },
    /// The provider presets Braid knows.
    Providers {
        #[command(subcommand)]
        action: ProvidersAction,
    },
}

#[derive(Subcommand)]
enum AdminKeysAction {
    /// Make a new admin key: prints the key once (Braid keeps only its hash) and the line to
    /// add to [admin] keys in the configuration.
    Create {
        /// Who holds the key; audit events of what it does name it.
        #[arg(long)]
        name: String,
    },
}

#[derive(Subcommand)]
enum ProvidersAction {
    /// List every preset (`preset = "<name>"`): the built-in ones and the catalogue's, with
    /// their protocol, whether their addresses count as verified by default, and where they are.
    List,
}

#[derive(Subcommand)]
enum UsersAction {
    /// Import an app's existing users from a JSON Lines file, one user per line:
    /// {"external_id": "42", "display_name": "Ann", "emails": [{"email": "ann@example.com",
    /// "verified": true}], "phones": [{"phone": "+12025550100", "verified": false}],
    /// "password_hash": "$2b$12$…"}. Every line is checked first; nothing is written if one is
    /// bad. Users whose external_id exists are left as they are, so re-running is harmless.
    Import {
        /// The JSON Lines file.
        file: PathBuf,
        /// Import the valid lines even when some are bad (those are reported and skipped).
        #[arg(long)]
        skip_invalid: bool,
    },
    /// Mark a user an administrator: they may then sign in to the admin console through any
    /// provider linked to their account (audited). Not offered by the admin API: a leaked
    /// admin key must not be able to mint administrators, so this needs the server's shell.
    MakeAdmin {
        /// The user's Braid id.
        user_id: String,
        /// Take the administrator mark away instead; open console sessions end at once.
        #[arg(long)]
        revoke: bool,
    },
}

#[derive(Subcommand)]
enum KeysAction {
    /// Add a new signing key: published at once, signing after keys.publish_delay; the key it
    /// replaces stays published until the tokens it signed have expired.
    Rotate,
    /// List the signing keys: kid, algorithm, state and the times of their changes.
    List,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // Needs no configuration: its output is what goes into it.
    if let Command::AdminKeys {
        action: AdminKeysAction::Create { name },
    } = &cli.command
    {
        return create_admin_key(name);
    }
    if let Command::Providers {
        action: ProvidersAction::List,
    } = cli.command
    {
        return list_providers();
    }
    // serve and check-config check everything serve builds at start; the other commands
    // (healthcheck runs every few seconds) check the settings only.
    let checks = match cli.command {
        Command::Serve { .. } | Command::CheckConfig { .. } => config::Checks::Startup,
        _ => config::Checks::Settings,
    };
    let loaded = match config::load(checks, cli.config.as_deref(), std::env::vars()) {
        Ok(loaded) => loaded,
        Err(problems) => {
            for p in &problems {
                eprintln!("{p}");
            }
            eprintln!(
                "braid: {} configuration problem(s); see config/braid.example.toml",
                problems.len()
            );
            return ExitCode::from(2);
        }
    };
    let settings = &loaded.settings;
    match cli.command {
        Command::CheckConfig { providers } => check_config(settings, providers),
        Command::Migrate => run_blocking(|| migrate(settings)),
        Command::Keys {
            action: KeysAction::Rotate,
        } => run_blocking(|| rotate_keys(settings)),
        Command::Keys {
            action: KeysAction::List,
        } => run_blocking(|| list_keys(settings)),
        Command::Healthcheck => run_blocking(|| healthcheck(settings)),
        Command::Users {
            action: UsersAction::Import { file, skip_invalid },
        } => import_users(settings, &file, skip_invalid),
        Command::Users {
            action: UsersAction::MakeAdmin { user_id, revoke },
        } => run_blocking(|| make_admin(settings, &user_id, !revoke)),
        Command::AdminKeys { .. } => ExitCode::SUCCESS,
        // Answered above, before the configuration is read.
        Command::Providers { .. } => ExitCode::SUCCESS,
        Command::Serve { dev: false } => serve(loaded),
        Command::Serve { dev: true } => {
            let mut loaded = loaded;
            match braid_http::dev::enable(&mut loaded.settings) {
                Ok(()) => serve(loaded),
                Err(e) => {
                    eprintln!("braid: {e}");
                    ExitCode::from(2)
                }
            }
        }
    }
}

/// `braid providers list`: needs no configuration.
#[allow(clippy::print_stdout)]
fn list_providers() -> ExitCode {
    print!("{}", braid_providers::catalogue::listing());
    ExitCode::SUCCESS
}

#[allow(clippy::print_stdout)]
fn create_admin_key(name: &str) -> ExitCode {
    let checked = braid_http::admin::AdminSettings {
        keys: vec![braid_http::admin::keys::AdminKey {
            name: name.to_owned(),
            hash: "0".repeat(64),
        }],
        ..Default::default()
    };
    if let Some(problem) = checked.problems().first() {
        eprintln!(
            "braid: --name: {}",
            problem.split(": ").nth(1).unwrap_or(problem)
        );
        return ExitCode::from(2);
    }
    let Ok(new) = braid_http::admin::keys::generate() else {
        eprintln!("braid: the system random source failed");
        return ExitCode::FAILURE;
    };
    println!("Admin key (shown only now; Braid keeps its hash):");
    println!();
    println!("    {}", new.key);
    println!();
    println!("Add to the [admin] section of the configuration:");
    println!();
    println!(
        "    keys = [{{ name = {}, hash = \"{}\" }}]",
        serde_json::to_string(name).unwrap_or_default(),
        new.hash
    );
    println!();
    println!("Use it as: Authorization: Bearer <key>, or sign in at /admin.");
    ExitCode::SUCCESS
}

#[allow(clippy::print_stdout)]
fn check_config(settings: &Settings, providers: bool) -> ExitCode {
    println!(
        "configuration OK: {} provider(s), {} client(s), database {}",
        settings.federated_login.providers.len(),
        settings.clients.len(),
        braid_storage::redact(&settings.database.url)
    );
    if !providers {
        return ExitCode::SUCCESS;
    }
    let problems = match check_providers(settings) {
        Ok(problems) => problems,
        Err(e) => {
            eprintln!("braid: {e}");
            return ExitCode::FAILURE;
        }
    };
    if problems == 0 {
        ExitCode::SUCCESS
    } else {
        eprintln!("braid: {problems} provider(s) cannot be used as configured");
        ExitCode::FAILURE
    }
}

/// Fetches what each enabled provider publishes, one line per provider; returns how many
/// failed.
#[allow(clippy::print_stdout)]
fn check_providers(settings: &Settings) -> Result<usize, String> {
    let registry = braid_http::startup::provider_registry(settings).map_err(|e| e.to_string())?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))?;
    let mut problems = 0;
    for provider in registry.iter() {
        let id = provider.id();
        if !provider.enabled() {
            println!("provider {id}: disabled, not checked");
            continue;
        }
        match runtime.block_on(provider.check()) {
            Ok(()) => println!("provider {id}: ready"),
            Err(e) => {
                problems += 1;
                let state = if e.is_upstream_unavailable() {
                    "unreachable"
                } else {
                    "misconfigured"
                };
                println!("provider {id}: {state}: {e}");
            }
        }
    }
    Ok(problems)
}

fn run_blocking(f: impl FnOnce() -> Result<(), String>) -> ExitCode {
    match f() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("braid: {e}");
            ExitCode::FAILURE
        }
    }
}

/// How long a command waits for its database connection to close before it exits.
const CLOSE_WAIT: Duration = Duration::from_secs(5);

/// Runs `work` on the configured database and closes it before returning, so no connection
/// is still closing when `main` returns (a TLS connection to PostgreSQL closing during exit
/// can crash in OpenSSL's exit-time cleanup).
fn with_database<T>(
    settings: &Settings,
    work: impl FnOnce(&Database) -> Result<T, String>,
) -> Result<T, String> {
    let db = Database::connect(&settings.database).map_err(|e| e.to_string())?;
    let result = work(&db);
    db.close(CLOSE_WAIT);
    result
}

#[allow(clippy::print_stdout)]
fn migrate(settings: &Settings) -> Result<(), String> {
    with_database(settings, |db| {
        let applied = db.migrate().map_err(|e| e.to_string())?;
        println!("{applied} migration(s) applied to {}", db.display_url());
        Ok(())
    })
}

#[allow(clippy::print_stdout)]
fn rotate_keys(settings: &Settings) -> Result<(), String> {
    let key = braid_http::keys::generate(settings.tokens.signing_alg).map_err(|e| e.to_string())?;
    let times = settings.keys.rotation_times(&settings.tokens);
    let now = Timestamp::now();
    let new = with_database(settings, |db| {
        let mut conn = db.conn().map_err(|e| e.to_string())?;
        keys::rotate(&mut conn, &key, now, times).map_err(|e| match e {
            StorageError::Conflict(_) => {
                "another rotation ran at the same time and won; see `braid keys list`".to_owned()
            }
            other => other.to_string(),
        })
    })?;
    let activate_at = new.schedule.activate_at;
    if activate_at <= now {
        // The database had no key: nothing else signs, so nothing needs to learn of it first.
        println!("new signing key {} ({}) signs now", new.kid, new.alg);
        return Ok(());
    }
    let wait = Duration::from_millis(
        u64::try_from(activate_at.as_millis() - now.as_millis()).unwrap_or(0),
    );
    println!(
        "new signing key {} ({}) is published now and signs from {} (in {} s); \
         the key it replaces stays published until its tokens expire (see `braid keys list`)",
        new.kid,
        new.alg,
        activate_at.to_rfc3339(),
        wait.as_secs()
    );
    Ok(())
}

#[allow(clippy::print_stdout)]
fn list_keys(settings: &Settings) -> Result<(), String> {
    let all = with_database(settings, |db| {
        let mut conn = db.conn().map_err(|e| e.to_string())?;
        keys::all(&mut conn).map_err(|e| e.to_string())
    })?;
    let now = Timestamp::now();
    let time = |t: Option<Timestamp>| t.map_or_else(|| "-".to_owned(), Timestamp::to_rfc3339);
    println!(
        "{:<43}  {:<5}  {:<8}  {:<24}  {:<24}  {:<24}  PUBLISHED UNTIL",
        "KID", "ALG", "STATE", "PUBLISHED", "SIGNS FROM", "SIGNS UNTIL"
    );
    for key in &all {
        let s = &key.schedule;
        println!(
            "{:<43}  {:<5}  {:<8}  {:<24}  {:<24}  {:<24}  {}",
            key.kid,
            key.alg,
            s.state(now).as_str(),
            s.created_at.to_rfc3339(),
            s.activate_at.to_rfc3339(),
            time(s.retire_at),
            time(s.expire_at)
        );
    }
    Ok(())
}

/// `braid users import`: the summary on stdout, each bad line on stderr; exit 1 if any line
/// was bad (written or not).
#[allow(clippy::print_stdout)]
fn import_users(settings: &Settings, file: &std::path::Path, skip_invalid: bool) -> ExitCode {
    let run = || -> Result<import::Summary, String> {
        with_database(settings, |db| {
            if settings.server.migrate_on_start {
                db.migrate().map_err(|e| e.to_string())?;
            } else if db.has_pending_migrations().map_err(|e| e.to_string())? {
                return Err("the database is not migrated; run `braid migrate` first".into());
            }
            import::run(db, file, skip_invalid, &mut std::io::stderr())
        })
    };
    match run() {
        Ok(summary) => {
            println!("{summary}");
            if summary.invalid == 0 {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Err(e) => {
            eprintln!("braid: {e}");
            ExitCode::FAILURE
        }
    }
}

#[allow(clippy::print_stdout)]
fn make_admin(settings: &Settings, user_id: &str, is_admin: bool) -> Result<(), String> {
    let id = UserId::parse(user_id).map_err(|_| format!("{user_id:?} is not a user id"))?;
    let kind = if is_admin {
        "admin.user_made_admin"
    } else {
        "admin.user_admin_revoked"
    };
    let found = with_database(settings, |db| {
        let mut conn = db.conn().map_err(|e| e.to_string())?;
        let event = AuditEvent {
            kind: kind.into(),
            result: Some("success".into()),
            user_id: Some(id.to_string()),
            detail: Some(serde_json::json!({ "via": "cli" }).to_string()),
            ..AuditEvent::default()
        };
        users::set_admin(&mut conn, &id, is_admin, &event, Timestamp::now())
            .map_err(|e| e.to_string())
    })?;
    if !found {
        return Err(format!("there is no user {id}"));
    }
    if is_admin {
        println!("{id} is an administrator");
    } else {
        println!("{id} is no longer an administrator");
    }
    Ok(())
}

/// A plain HTTP/1.0 GET on loopback: the runtime image has no curl, and this needs no TLS.
fn healthcheck(settings: &Settings) -> Result<(), String> {
    use std::io::{Read, Write};
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], settings.server.port));
    let mut stream = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(2))
        .map_err(|e| format!("{addr}: {e}"))?;
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .map_err(|e| e.to_string())?;
    stream
        .write_all(b"GET /readyz HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
        .map_err(|e| e.to_string())?;
    let mut head = [0u8; 32];
    let n = stream.read(&mut head).map_err(|e| e.to_string())?;
    let status_line = String::from_utf8_lossy(&head[..n]);
    if status_line.starts_with("HTTP/1.0 200") || status_line.starts_with("HTTP/1.1 200") {
        Ok(())
    } else {
        Err(format!(
            "not ready: {}",
            status_line.lines().next().unwrap_or_default()
        ))
    }
}

fn serve(loaded: config::Loaded) -> ExitCode {
    telemetry::init(&loaded.settings.log);
    startup_lines::log(&loaded);
    let settings = loaded.settings;
    let result = actix_web::rt::System::new().block_on(async move {
        // A development run is configured on purpose: no advice for a deployment.
        let next = if settings.dev.is_some() {
            Vec::new()
        } else {
            settings.next_steps()
        };
        let app = Application::build(settings).await?;
        tracing::info!(port = app.port(), "braid is listening");
        if !next.is_empty() {
            tracing::info!("to configure next: {}", next.join("; "));
        }
        app.run_until_stopped()
            .await
            .map_err(|source| braid_http::StartupError::Bind {
                addr: "server".into(),
                source,
            })
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "braid stopped");
            eprintln!("braid: {e}");
            ExitCode::FAILURE
        }
    }
}
