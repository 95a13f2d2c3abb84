//! The `braid` binary as an operator runs it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn braid(dir: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_braid"));
    cmd.current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, _) in std::env::vars() {
        if k.starts_with("BRAID_") || k == "RUST_LOG" {
            cmd.env_remove(k);
        }
    }
    cmd
}

struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn wait_ready(url: &str, child: &mut Child) -> reqwest::Response {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            panic!("braid exited early with {status}");
        }
        if let Ok(r) = reqwest::get(url).await {
            return r;
        }
        assert!(Instant::now() < deadline, "braid did not answer at {url}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn starts_in_an_empty_directory_with_no_configuration_and_is_ready() {
    // Only the port is set, so the test does not depend on 8080 being free (the default port
    // itself is checked by the configuration's tests).
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dir = tempfile::tempdir().unwrap();
    let mut child = Running(
        braid(dir.path())
            .arg("serve")
            .env("BRAID_SERVER__PORT", port.to_string())
            .spawn()
            .unwrap(),
    );
    let ready = wait_ready(&format!("http://127.0.0.1:{port}/readyz"), &mut child.0).await;
    assert_eq!(ready.status(), 200);
    assert_eq!(
        ready.json::<serde_json::Value>().await.unwrap()["status"],
        "ready"
    );
    let health = reqwest::get(format!("http://127.0.0.1:{port}/healthz"))
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    assert!(
        dir.path().join("data/braid.db").is_file(),
        "SQLite database created at ./data/braid.db"
    );
}

#[test]
fn a_bad_database_url_is_a_clear_error_and_creates_no_file() {
    let dir = tempfile::tempdir().unwrap();
    for url in [
        "mysql://root@localhost/braid",
        "postgres:/u:p@127.0.0.1:1/",
        "braid.db",
    ] {
        let out = braid(dir.path())
            .arg("serve")
            .env("BRAID_DATABASE__URL", url)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{url}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("database.url: invalid database url"),
            "{stderr}"
        );
    }
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        0,
        "nothing was created"
    );
}

#[test]
fn an_unreachable_postgres_fails_at_start_without_falling_back_to_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    // Nothing listens on port 1; the password must not be printed.
    let out = braid(dir.path())
        .arg("serve")
        .env(
            "BRAID_DATABASE__URL",
            "postgres://braid:s3cret@127.0.0.1:1/braid",
        )
        .env("BRAID_SERVER__PORT", "0")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("database unavailable"), "{stderr}");
    assert!(!stderr.contains("s3cret"), "password leaked: {stderr}");
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        0,
        "no SQLite file named after the URL"
    );
}

#[test]
fn check_config_prints_one_line_per_problem_and_fails() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("bad.toml"),
        "[server]\nprot = 1\n[federated_login.providers.corp]\npreset = \"oidc\"\nclient_id = \"x\"\n",
    )
    .unwrap();
    let out = braid(dir.path())
        .args(["check-config", "--config", "bad.toml"])
        .output()
        .unwrap();
    assert_ne!(out.status.code(), Some(0));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<_> = stderr.lines().collect();
    assert!(
        lines.contains(&r#"server.prot: unknown key; did you mean "server.port"?"#),
        "{stderr}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("federated_login.providers.corp.issuer")),
        "{stderr}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("federated_login.providers.corp.client_secret")),
        "{stderr}"
    );

    let ok = braid(dir.path()).arg("check-config").output().unwrap();
    assert_eq!(
        ok.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    assert!(String::from_utf8_lossy(&ok.stdout).starts_with("configuration OK"));
}

#[test]
fn migrate_then_rotate_keys_on_the_configured_database() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("b.db").display());
    let out = braid(dir.path())
        .arg("migrate")
        .env("BRAID_DATABASE__URL", &url)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let migrations = std::fs::read_dir(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../migrations/sqlite"
    ))
    .unwrap()
    .count();
    assert!(
        String::from_utf8_lossy(&out.stdout)
            .starts_with(&format!("{migrations} migration(s) applied")),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let again = braid(dir.path())
        .arg("migrate")
        .env("BRAID_DATABASE__URL", &url)
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&again.stdout).starts_with("0 migration(s) applied"));
    let rotate = braid(dir.path())
        .args(["keys", "rotate"])
        .env("BRAID_DATABASE__URL", &url)
        .output()
        .unwrap();
    assert!(
        rotate.status.success(),
        "{}",
        String::from_utf8_lossy(&rotate.stderr)
    );
    // The database had no key yet (the server never ran): the first one signs at once.
    assert!(String::from_utf8_lossy(&rotate.stdout).contains("(ES256) signs now"));
    let again = braid(dir.path())
        .args(["keys", "rotate"])
        .env("BRAID_DATABASE__URL", &url)
        .env("BRAID_KEYS__PUBLISH_DELAY", "300")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&again.stdout);
    assert!(
        stdout.contains("(ES256) is published now and signs from ")
            && stdout.contains("(in 300 s)"),
        "{stdout}"
    );
    let list = braid(dir.path())
        .args(["keys", "list"])
        .env("BRAID_DATABASE__URL", &url)
        .output()
        .unwrap();
    assert!(list.status.success());
    let list = String::from_utf8_lossy(&list.stdout);
    let states: Vec<&str> = list
        .lines()
        .skip(1)
        .filter_map(|l| l.split_whitespace().nth(2))
        .collect();
    assert_eq!(states, ["active", "next"], "{list}");
}

#[tokio::test]
async fn healthcheck_reports_readiness_of_the_local_instance() {
    let dir = tempfile::tempdir().unwrap();
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
        .to_string();
    let down = braid(dir.path())
        .arg("healthcheck")
        .env("BRAID_SERVER__PORT", &port)
        .output()
        .unwrap();
    assert_eq!(down.status.code(), Some(1), "nothing listens yet");
    let mut child = Running(
        braid(dir.path())
            .arg("serve")
            .env("BRAID_SERVER__PORT", &port)
            .spawn()
            .unwrap(),
    );
    wait_ready(&format!("http://127.0.0.1:{port}/readyz"), &mut child.0).await;
    let up = braid(dir.path())
        .arg("healthcheck")
        .env("BRAID_SERVER__PORT", &port)
        .output()
        .unwrap();
    assert!(
        up.status.success(),
        "{}",
        String::from_utf8_lossy(&up.stderr)
    );
}

/// `BRAID_TEST_DATABASE_URL` with `sslmode=require`, or why the TLS test cannot run.
fn postgres_over_tls(db: &braid_storage::test_support::TestDb) -> Result<String, String> {
    let (base, query) = db
        .settings
        .url
        .split_once('?')
        .unwrap_or((&db.settings.url, ""));
    let mut params: Vec<&str> = query
        .split('&')
        .filter(|p| !p.is_empty() && !p.starts_with("sslmode="))
        .collect();
    params.push("sslmode=require");
    let url = format!("{base}?{}", params.join("&"));
    let settings = braid_storage::DatabaseSettings {
        url: url.clone(),
        ..db.settings.clone()
    };
    match braid_storage::Database::connect(&settings) {
        Ok(probe) => {
            probe.close(Duration::from_secs(5));
            Ok(url)
        }
        Err(e) => Err(format!(
            "the PostgreSQL server refuses TLS connections: {e}"
        )),
    }
}

/// A crash at exit (OpenSSL's exit-time cleanup racing a pool thread in a TLS handshake) hit
/// about one run in three; fifty clean runs in a row make a regression all but certain to show.
#[test]
fn keys_rotate_exits_0_in_50_of_50_runs_against_postgres_over_tls() {
    if std::env::var_os(braid_storage::test_support::TEST_DATABASE_URL_VAR).is_none() {
        eprintln!("not run: BRAID_TEST_DATABASE_URL is not set (PostgreSQL only)");
        return;
    }
    let db = braid_storage::test_support::TestDb::new().unwrap();
    let url = match postgres_over_tls(&db) {
        Ok(url) => url,
        Err(why) if std::env::var("CI").as_deref() == Ok("true") => {
            panic!("{why}; CI=true: this test may not be skipped")
        }
        Err(why) => {
            eprintln!(
                "SKIPPED keys_rotate_exits_0_in_50_of_50_runs_against_postgres_over_tls: {why}"
            );
            return;
        }
    };
    let dir = tempfile::tempdir().unwrap();
    let mut failures = Vec::new();
    for run in 1..=50 {
        let out = braid(dir.path())
            .args(["keys", "rotate"])
            .env("BRAID_DATABASE__URL", &url)
            .output()
            .unwrap();
        if !out.status.success() {
            use std::os::unix::process::ExitStatusExt;
            failures.push(format!(
                "run {run}: exit code {:?}, signal {:?}: {}",
                out.status.code(),
                out.status.signal(),
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of 50 runs failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// A config file with one `oidc` provider at `issuer`.
fn provider_config(dir: &Path, issuer: &str) -> std::path::PathBuf {
    let path = dir.join("braid.toml");
    std::fs::write(
        &path,
        format!(
            "[federated_login.providers.corp]\npreset = \"oidc\"\nissuer = \"{issuer}\"\nclient_id = \"{}\"\nclient_secret = \"{}\"\n",
            braid_providers::testing::CLIENT_ID,
            braid_providers::testing::CLIENT_SECRET,
        ),
    )
    .unwrap();
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_config_providers_fetches_each_provider_and_fails_on_a_misconfigured_one() {
    let idp = braid_providers::testing::FakeIdp::start().await;
    let dir = tempfile::tempdir().unwrap();
    let config = provider_config(dir.path(), &idp.issuer());
    let run = |config: &Path| {
        braid(dir.path())
            .args(["check-config", "--providers", "--config"])
            .arg(config)
            .output()
            .unwrap()
    };
    let out = tokio::task::block_in_place(|| run(&config));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(stdout.contains("provider corp: ready"), "{stdout}");
    assert_eq!(idp.discovery_calls(), 1);

    idp.set_metadata_issuer("https://evil.example");
    let out = tokio::task::block_in_place(|| run(&config));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success());
    assert!(
        stdout.contains("provider corp: misconfigured:")
            && stdout.contains("\"https://evil.example\"")
            && stdout.contains("set issuer"),
        "{stdout}"
    );

    // Without --providers nothing is fetched.
    let out = tokio::task::block_in_place(|| {
        braid(dir.path())
            .args(["check-config", "--config"])
            .arg(&config)
            .output()
            .unwrap()
    });
    assert!(out.status.success());
    assert_eq!(idp.discovery_calls(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_repeated_member_in_a_providers_document_is_logged_at_warn_with_provider_and_document() {
    use braid_providers::Document;
    use braid_providers::testing::{FakeIdp, RepeatMember};
    use std::io::BufRead;

    let idp = FakeIdp::start().await;
    idp.repeat_member_in_metadata(RepeatMember::top(
        Document::Discovery,
        r#""token_endpoint":"https://evil.example/token""#,
    ));
    let dir = tempfile::tempdir().unwrap();
    let config = provider_config(dir.path(), &idp.issuer());
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut child = Running(
        braid(dir.path())
            .args(["serve", "--config"])
            .arg(&config)
            .env("BRAID_SERVER__PORT", port.to_string())
            .env("BRAID_LOG__FORMAT", "json")
            .spawn()
            .unwrap(),
    );
    // The start-up check reads the discovery document without anyone signing in.
    let stderr = child.0.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let deadline = Instant::now() + Duration::from_secs(20);
    let warning = loop {
        let remaining = deadline.saturating_duration_since(Instant::now());
        let line = rx
            .recv_timeout(remaining)
            .expect("a WARN line about the repeated member within 20 s");
        if line.contains("names a member twice") {
            break serde_json::from_str::<serde_json::Value>(&line).unwrap();
        }
    };
    assert_eq!(warning["level"], "WARN", "{warning}");
    assert_eq!(warning["fields"]["provider"], "corp", "{warning}");
    assert_eq!(
        warning["fields"]["document"], "discovery document",
        "{warning}"
    );
    assert_eq!(idp.authorize_calls(), 0);
}

/// A configuration with one mistake of each kind an operator makes.
const FIVE_MISTAKES: &str = r#"
[server]
public_url = "https://auth.example.com"

[log]
level = "warning"

[federated_login.providers.google]
preset = "gogle"
client_id = "x"
client_secret = "y"

[federated_login.providers.apple]
preset = "apple"
client_id = "com.example.web"
team_id = "TEAM123456"
key_id = "KEY1234567"
private_key_file = "missing-apple-key.p8"

[clients.app]
redirect_uris = ["https://*.app.example/cb"]
public = true

[tokens]
acces_token_ttl = 300
"#;

const FIVE_EXPECTED: [&str; 5] = [
    r#"tokens.acces_token_ttl: unknown key; did you mean "tokens.access_token_ttl"?"#,
    // … then the catalogue's names, and `; did you mean "google"?`.
    r#"federated_login.providers.google.preset: "gogle": expected one of google, microsoft, apple, github, gitlab, discord, facebook, oidc, oauth2, amazon, "#,
    r#"clients.app.redirect_uris: "https://*.app.example/cb": no wildcards"#,
    r#"log.level: "warning": expected one of off, error, warn, info, debug, trace, or target=level directives; did you mean "warn"?"#,
    "federated_login.providers.apple.private_key_file: cannot read missing-apple-key.p8",
];

#[test]
fn check_config_finds_each_deliberate_mistake_in_one_run_and_serve_names_them_too() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("bad.toml"), FIVE_MISTAKES).unwrap();
    for command in ["check-config", "serve"] {
        let out = braid(dir.path())
            .args([command, "--config", "bad.toml"])
            .env("BRAID_SERVER__PORT", "0")
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{command}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        let lines: Vec<&str> = stderr.lines().collect();
        for expected in FIVE_EXPECTED {
            assert!(
                lines.iter().any(|l| l.starts_with(expected)),
                "{command}: {expected} not in\n{stderr}"
            );
        }
        assert_eq!(
            lines.len(),
            FIVE_EXPECTED.len() + 1,
            "one line per mistake and the count:\n{stderr}"
        );
        assert_eq!(
            lines.last(),
            Some(&"braid: 5 configuration problem(s); see config/braid.example.toml")
        );
        for jargon in ["variant", "invalid type", "serde", "struct "] {
            assert!(!stderr.contains(jargon), "{jargon} in {stderr}");
        }
    }
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        1,
        "serve created nothing"
    );
}

#[test]
fn the_first_lines_of_serve_say_what_was_read_and_what_is_configured() {
    use std::io::BufRead;

    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("braid.toml"),
        r#"
[server]
public_url = "https://auth.example.com/"

[federated_login.providers.github-corp]
preset = "github"
client_id = "gh-client"

[clients.my-app]
redirect_uris = ["https://app.example.com/cb", "http://127.0.0.1:3000/cb"]
"#,
    )
    .unwrap();
    let mut child = Running(
        braid(dir.path())
            .args(["serve", "--config", "braid.toml"])
            .env("BRAID_SERVER__PORT", "0")
            .env("BRAID_LOG__FORMAT", "json")
            .env(
                "BRAID_FEDERATED_LOGIN__PROVIDERS__GITHUB_CORP__CLIENT_SECRET",
                "gh-s3cret",
            )
            .env(
                "BRAID_CLIENTS__MY_APP__SECRET",
                "app-s3cret-0123456789012345678901234",
            )
            .spawn()
            .unwrap(),
    );
    let stderr = child.0.stderr.take().unwrap();
    let mut lines = Vec::new();
    for line in std::io::BufReader::new(stderr)
        .lines()
        .map_while(Result::ok)
    {
        let done = line.contains("braid is listening");
        lines.push(line);
        if done {
            break;
        }
    }
    let all = lines.join("\n");
    assert!(all.contains("braid is listening"), "{all}");
    assert!(!all.contains("s3cret"), "a secret was logged: {all}");
    let events: Vec<serde_json::Value> = lines
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let event = |message: &str| {
        events
            .iter()
            .find(|e| e["fields"]["message"] == message)
            .unwrap_or_else(|| panic!("no {message:?} line in {all}"))["fields"]
            .clone()
    };
    let config = event("configuration read");
    assert_eq!(config["file"], "braid.toml");
    assert_eq!(
        config["environment"],
        "BRAID_CLIENTS__MY_APP__SECRET, BRAID_FEDERATED_LOGIN__PROVIDERS__GITHUB_CORP__CLIENT_SECRET, \
         BRAID_LOG__FORMAT, BRAID_SERVER__PORT",
        "names, not values"
    );
    let db = event("database");
    assert_eq!(db["backend"], "sqlite");
    assert_eq!(db["location"], "data/braid.db");
    assert_eq!(
        event("public URL")["public_url"],
        "https://auth.example.com"
    );
    let provider = event("provider: register the callback URL at the provider");
    assert_eq!(provider["provider"], "github-corp");
    assert_eq!(provider["preset"], "github");
    assert_eq!(
        provider["callback_url"],
        "https://auth.example.com/auth/connect/github-corp/callback"
    );
    let client = event("client");
    assert_eq!(client["client"], "my-app");
    assert_eq!(
        client["redirect_uris"],
        "https://app.example.com/cb, http://127.0.0.1:3000/cb"
    );
    // These come first: before the database is opened and anything else is logged.
    let first: Vec<_> = events
        .iter()
        .take(5)
        .map(|e| {
            e["fields"]["message"]
                .as_str()
                .unwrap_or_default()
                .to_owned()
        })
        .collect();
    assert_eq!(
        first,
        [
            "configuration read",
            "database",
            "public URL",
            "provider: register the callback URL at the provider",
            "client"
        ]
    );
}

#[tokio::test]
async fn admin_keys_create_prints_a_key_and_the_config_line_that_lets_it_in() {
    let dir = tempfile::tempdir().unwrap();
    let out = braid(dir.path())
        .args(["admin-keys", "create", "--name", "ops"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let key = text
        .lines()
        .map(str::trim)
        .find(|l| l.starts_with("braid_ak_"))
        .expect("the key")
        .to_owned();
    let line = text
        .lines()
        .map(str::trim)
        .find(|l| l.starts_with("keys = "))
        .expect("the config line")
        .to_owned();
    assert!(
        !line.contains(&key),
        "the configuration gets the hash, not the key"
    );

    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    std::fs::write(
        dir.path().join("braid.toml"),
        format!("[server]\nport = {port}\n\n[admin]\n{line}\n"),
    )
    .unwrap();
    let mut child = Running(
        braid(dir.path())
            .args(["serve", "--config", "braid.toml"])
            .spawn()
            .unwrap(),
    );
    wait_ready(&format!("http://127.0.0.1:{port}/readyz"), &mut child.0).await;
    let client = reqwest::Client::new();
    let users = format!("http://127.0.0.1:{port}/admin/api/users");
    let ok = client.get(&users).bearer_auth(&key).send().await.unwrap();
    assert_eq!(ok.status(), 200);
    let other = client
        .get(&users)
        .bearer_auth(format!("{key}x"))
        .send()
        .await
        .unwrap();
    assert_eq!(other.status(), 401);

    let bad = braid(dir.path())
        .args(["admin-keys", "create", "--name", ""])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
}
