//! Loading the configuration: built-in defaults, then a TOML file, then `BRAID_…` environment
//! variables (`__` between levels). Every problem found is reported, one line each.

use braid_http::Settings;
use config::{Config, File, FileFormat};
use std::path::{Path, PathBuf};

/// The file read when `--config` is not given, if it exists.
pub const DEFAULT_FILE: &str = "config/braid.toml";
const ENV_PREFIX: &str = "BRAID_";
/// Variables under the prefix that are not settings.
const RESERVED_ENV: [&str; 4] = ["BRAID_CONFIG", "BRAID_TEST_", "BRAID_E2E_", "BRAID_BENCH_"];
/// Settings that take a list; in the environment they are comma-separated.
const LIST_SUFFIXES: [&str; 5] = [
    "match_by",
    "redirect_uris",
    "scopes",
    "routes.select",
    "routes.verify",
];

/// Loads and validates. `Err` holds every problem, one line each.
pub fn load(
    file: Option<&Path>,
    env: impl IntoIterator<Item = (String, String)>,
) -> Result<Settings, Vec<String>> {
    let mut builder = Config::builder();
    match file {
        Some(path) => {
            if !path.is_file() {
                return Err(vec![format!(
                    "--config: {} is not a readable file",
                    path.display()
                )]);
            }
            builder = builder.add_source(File::from(path.to_path_buf()).format(FileFormat::Toml));
        }
        None => {
            let default = PathBuf::from(DEFAULT_FILE);
            if default.is_file() {
                builder = builder.add_source(File::from(default).format(FileFormat::Toml));
            }
        }
    }
    for (key, value) in env_overrides(env) {
        builder = match value {
            EnvValue::One(v) => builder.set_override(key.as_str(), v),
            EnvValue::List(v) => builder.set_override(key.as_str(), v),
        }
        .map_err(|e| vec![format!("environment: {e}")])?;
    }
    let config = builder
        .build()
        .map_err(|e| vec![one_line(&e.to_string())])?;

    let mut problems = Vec::new();
    let parsed: Result<Settings, _> = serde_ignored::deserialize(config, |path| {
        problems.push(format!("{path}: unknown key"));
    });
    let mut settings = match parsed {
        Ok(s) => s,
        Err(e) => {
            problems.push(one_line(&e.to_string()));
            return Err(problems);
        }
    };
    problems.extend(settings.load_secret_files());
    problems.extend(settings.problems());
    if let Err(e) = tracing_subscriber::EnvFilter::try_new(&settings.log.level) {
        problems.push(format!("log.level: {e}"));
    }
    if problems.is_empty() {
        Ok(settings)
    } else {
        Err(problems)
    }
}

enum EnvValue {
    One(String),
    List(Vec<String>),
}

fn env_overrides(env: impl IntoIterator<Item = (String, String)>) -> Vec<(String, EnvValue)> {
    let mut out: Vec<(String, EnvValue)> = env
        .into_iter()
        .filter(|(k, _)| {
            k.starts_with(ENV_PREFIX) && !RESERVED_ENV.iter().any(|r| k.starts_with(r))
        })
        .filter_map(|(k, v)| {
            let key = k[ENV_PREFIX.len()..].to_lowercase().replace("__", ".");
            if key.is_empty() {
                return None;
            }
            let value = if LIST_SUFFIXES
                .iter()
                .any(|s| key == *s || key.ends_with(&format!(".{s}")))
            {
                EnvValue::List(
                    v.split(',')
                        .map(str::trim)
                        .filter(|s| !s.is_empty())
                        .map(String::from)
                        .collect(),
                )
            } else {
                EnvValue::One(v)
            };
            Some((key, value))
        })
        .collect();
    // Deterministic order, so the same environment always gives the same result.
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use braid_http::settings::{MatchBy, Resolution};
    use std::io::Write;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn toml(content: &str) -> tempfile::NamedTempFile {
        let mut f = tempfile::Builder::new().suffix(".toml").tempfile().unwrap();
        f.write_all(content.as_bytes()).unwrap();
        f
    }

    #[test]
    fn defaults_load_with_no_file_and_no_environment() {
        let s = load(None, env(&[])).unwrap();
        assert_eq!(s, Settings::default());
        assert_eq!(s.server.port, 8080);
        assert_eq!(s.database.url, "sqlite://data/braid.db");
    }

    #[test]
    fn an_environment_override_wins_over_the_file() {
        let f = toml("[server]\nport = 9000\n[database]\nurl = \"sqlite://from-file.db\"\n");
        let s = load(
            Some(f.path()),
            env(&[
                ("BRAID_DATABASE__URL", "postgres://u@127.0.0.1/braid"),
                ("BRAID_ACCOUNT_LINKING__RESOLUTION", "automatic"),
            ]),
        )
        .unwrap();
        assert_eq!(s.database.url, "postgres://u@127.0.0.1/braid");
        assert_eq!(
            s.server.port, 9000,
            "file value kept where the environment is silent"
        );
        assert_eq!(s.account_linking.resolution, Resolution::Automatic);
    }

    #[test]
    fn environment_values_keep_their_text_and_lists_split_on_commas() {
        let s = load(
            None,
            env(&[
                ("BRAID_SERVER__PORT", "9090"),
                (
                    "BRAID_CLIENTS__APP__SECRET",
                    "0000123456789012345678901234567890",
                ),
                (
                    "BRAID_CLIENTS__APP__REDIRECT_URIS",
                    "https://a.example/cb, https://b.example/cb",
                ),
                ("BRAID_ACCOUNT_LINKING__MATCH_BY", "email"),
                ("BRAID_CONFIG", "ignored.toml"),
                ("BRAID_TEST_DATABASE_URL", "postgres://x@y/z"),
                ("OTHER", "x"),
            ]),
        )
        .unwrap();
        assert_eq!(s.server.port, 9090);
        let app = &s.clients["app"];
        assert_eq!(
            app.secret.as_ref().unwrap().expose(),
            "0000123456789012345678901234567890"
        );
        assert_eq!(
            app.redirect_uris,
            ["https://a.example/cb", "https://b.example/cb"]
        );
        assert_eq!(s.account_linking.match_by, [MatchBy::Email]);
    }

    #[test]
    fn an_unknown_key_is_rejected_naming_every_one() {
        let f = toml("[server]\nprot = 1\n[databse]\nurl = \"x\"\n");
        let problems = load(Some(f.path()), env(&[("BRAID_SMTP__HOSTNAME", "mail")])).unwrap_err();
        assert!(
            problems.contains(&"server.prot: unknown key".to_string()),
            "{problems:?}"
        );
        assert!(
            problems.contains(&"databse: unknown key".to_string()),
            "{problems:?}"
        );
        assert!(
            problems.contains(&"smtp.hostname: unknown key".to_string()),
            "{problems:?}"
        );
    }

    #[test]
    fn a_bad_database_url_is_rejected() {
        for url in ["mysql://root@localhost/braid", "braid.db", "postgres://"] {
            let problems = load(None, env(&[("BRAID_DATABASE__URL", url)])).unwrap_err();
            assert_eq!(problems.len(), 1, "{problems:?}");
            assert!(
                problems[0].starts_with("database.url: invalid database url"),
                "{problems:?}"
            );
        }
    }

    #[test]
    fn every_problem_is_reported_on_its_own_line() {
        let f = toml(
            "[server]\npublic_url = \"not a url\"\n[log]\nlevel = \"[[[\"\n\
             [federated_login.providers.corp]\npreset = \"oidc\"\nclient_id = \"braid\"\n\
             [clients.app]\nredirect_uris = [\"http://evil.example/cb\"]\n",
        );
        let problems = load(Some(f.path()), env(&[])).unwrap_err();
        for expected in [
            "server.public_url",
            "federated_login.providers.corp.client_secret: missing secret",
            "federated_login.providers.corp.issuer: required",
            "clients.app.redirect_uris",
            "clients.app.secret: missing secret",
            "log.level",
        ] {
            assert!(
                problems.iter().any(|p| p.starts_with(expected)),
                "{expected} not in {problems:#?}"
            );
        }
        assert!(problems.iter().all(|p| !p.contains('\n')));
    }

    #[test]
    fn a_type_error_names_the_key() {
        let problems = load(None, env(&[("BRAID_SERVER__PORT", "eighty")])).unwrap_err();
        assert_eq!(problems.len(), 1);
        assert!(problems[0].contains("port"), "{problems:?}");
    }

    #[test]
    fn a_publish_delay_shorter_than_instances_and_apps_keep_the_keys_is_refused() {
        let problems = load(
            None,
            env(&[
                ("BRAID_KEYS__RELOAD_INTERVAL", "30"),
                ("BRAID_KEYS__PUBLISH_DELAY", "89"),
            ]),
        )
        .unwrap_err();
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(
            problems[0].starts_with(
                "keys.publish_delay: must be at least keys.reload_interval + 60 s (how long apps may cache the JWKS) = 90 s"
            ),
            "{problems:?}"
        );
        let s = load(None, env(&[("BRAID_KEYS__PUBLISH_DELAY", "120")])).unwrap();
        assert_eq!(s.keys.publish_delay, 120);
    }

    #[test]
    fn a_missing_config_file_is_an_error() {
        let problems = load(Some(Path::new("/nonexistent/braid.toml")), env(&[])).unwrap_err();
        assert!(problems[0].starts_with("--config:"));
    }

    #[test]
    fn the_example_configuration_is_valid_and_complete() {
        let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config/braid.example.toml");
        let s = load(Some(&example), env(&[])).unwrap();
        assert_eq!(s.account_linking.routes.select, ["link", "select"]);
    }
}

#[cfg(test)]
mod example_tests {
    use super::*;
    use std::io::Write;

    /// Every commented-out setting in the example is a real key with a valid value.
    #[test]
    fn the_examples_commented_settings_are_real_keys() {
        let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config/braid.example.toml");
        let text = std::fs::read_to_string(example).unwrap();
        let uncommented: String = text
            .lines()
            .map(|l| match l.strip_prefix('#') {
                Some(rest)
                    if rest.starts_with('[')
                        || rest.starts_with(|c: char| c.is_ascii_lowercase()) =>
                {
                    rest
                }
                _ => l,
            })
            .collect::<Vec<_>>()
            .join("\n");
        // The example shows both a secret and a *_file for it; keep only the inline secrets.
        let uncommented: String = uncommented
            .lines()
            .filter(|l| {
                ![
                    "client_secret_file",
                    "secret_file",
                    "password_file",
                    "webhook_token_file",
                    "bearer_token_file",
                ]
                .iter()
                .any(|k| l.starts_with(k))
            })
            .collect::<Vec<_>>()
            .join("\n");
        let mut f = tempfile::Builder::new().suffix(".toml").tempfile().unwrap();
        f.write_all(uncommented.as_bytes()).unwrap();
        let problems = load(Some(f.path()), Vec::new()).err().unwrap_or_default();
        assert_eq!(problems, Vec::<String>::new());
    }
}
