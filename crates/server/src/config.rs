//! Loading the configuration: built-in defaults, then a TOML file, then `BRAID_…` environment
//! variables (`__` between levels). Every problem found is reported, one line each, naming
//! the setting; `check-config` and every other command go through [`load`], so they refuse
//! the same configurations.

mod reader;
mod suggest;

use braid_http::Settings;
use config::{Config, File, FileFormat, Value, ValueKind};
use reader::{ReadError, Segment, render};
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The file read when `--config` is not given, if it exists.
pub const DEFAULT_FILE: &str = "config/braid.toml";
const ENV_PREFIX: &str = "BRAID_";
/// Variables under the prefix that are not settings.
const RESERVED_ENV: [&str; 4] = ["BRAID_CONFIG", "BRAID_TEST_", "BRAID_E2E_", "BRAID_BENCH_"];
/// Settings that take a list; in the environment they are comma-separated.
const LIST_SUFFIXES: [&str; 6] = [
    "events",
    "match_by",
    "redirect_uris",
    "scopes",
    "routes.select",
    "routes.verify",
];
/// Tables whose keys are ids the operator chooses, and the setting path of each.
const ID_TABLES: [&[&str]; 3] = [
    &["clients"],
    &["federated_login", "providers"],
    &["webhooks"],
];
/// How many unreadable values one run reports before it gives up.
const MAX_READ_PROBLEMS: usize = 100;

/// The settings and where they came from (for the start-up lines).
#[derive(Debug)]
pub struct Loaded {
    pub settings: Settings,
    /// The configuration file read, if any.
    pub file: Option<PathBuf>,
    /// The names (never the values) of the `BRAID_…` variables applied.
    pub env: Vec<String>,
}

/// How far [`load`] checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Checks {
    /// The values and the rules between them, and the `*_file` secrets.
    Settings,
    /// Also what `serve` builds from them before it listens (providers with their files,
    /// templates, mail and SMS senders): for `serve` and `check-config`.
    Startup,
}

/// Loads and validates. `Err` holds every problem, one line each.
pub fn load(
    checks: Checks,
    file: Option<&Path>,
    env: impl IntoIterator<Item = (String, String)>,
) -> Result<Loaded, Vec<String>> {
    let file = match file {
        Some(path) if !path.is_file() => {
            return Err(vec![format!(
                "--config: {} is not a readable file",
                path.display()
            )]);
        }
        Some(path) => Some(path.to_path_buf()),
        None => Some(PathBuf::from(DEFAULT_FILE)).filter(|p| p.is_file()),
    };
    let mut builder = Config::builder();
    if let Some(path) = &file {
        builder = builder.add_source(File::from(path.clone()).format(FileFormat::Toml));
    }
    let from_file = builder
        .build_cloned()
        .map_err(|e| vec![one_line(&e.to_string())])?;
    let ids = existing_ids(&from_file.cache);
    let (overrides, mut problems) = env_overrides(env, &ids);
    let mut applied = Vec::new();
    for o in &overrides {
        builder = match &o.value {
            EnvValue::One(v) => builder.set_override(o.key.as_str(), v.as_str()),
            EnvValue::List(v) => builder.set_override(o.key.as_str(), v.clone()),
        }
        .map_err(|e| vec![format!("{}: {}", o.var, one_line(&e.to_string()))])?;
        applied.push(o.var.clone());
    }
    let config = builder
        .build()
        .map_err(|e| vec![one_line(&e.to_string())])?;
    let from_env: BTreeMap<String, String> =
        overrides.into_iter().map(|o| (o.key, o.var)).collect();
    let label = |path: &str| match from_env.get(path) {
        Some(var) => format!("{path} ({var})"),
        None => path.to_owned(),
    };

    let (settings, read_problems) = read_settings(config.cache, &label);
    problems.extend(read_problems);
    let Some(mut settings) = settings else {
        return Err(problems);
    };
    problems.extend(settings.load_secret_files());
    problems.extend(settings.problems());
    problems.extend(log_level_problems(&settings.log.level));
    // What serve builds at start (providers with their files, templates, senders); a setting
    // already reported above is not reported twice.
    let startup = match checks {
        Checks::Startup => braid_http::startup::startup_problems(&settings),
        Checks::Settings => Vec::new(),
    };
    for p in startup {
        let setting = p.split(':').next().unwrap_or_default();
        if !problems
            .iter()
            .any(|q| q.split(':').next() == Some(setting))
        {
            problems.push(p);
        }
    }
    if problems.is_empty() {
        Ok(Loaded {
            settings,
            file,
            env: applied,
        })
    } else {
        Err(problems)
    }
}

/// Reads the tree into [`Settings`], going on past each unreadable value: that value is
/// removed (so its default applies) and the read starts again; a table entry that then lacks
/// a required setting (a provider whose preset was unreadable) is removed whole without a
/// second line about it.
fn read_settings(
    mut tree: Value,
    label: &dyn Fn(&str) -> String,
) -> (Option<Settings>, Vec<String>) {
    let mut problems = Vec::new();
    let mut removed: Vec<Vec<Segment>> = Vec::new();
    let unknown = RefCell::new(Vec::new());
    let settings = loop {
        match reader::read::<Settings>(tree.clone(), &unknown) {
            Ok(s) => break Some(s),
            Err(e) => {
                let follows_a_removal = matches!(e.problem, reader::Problem::Missing(_))
                    && removed
                        .iter()
                        .any(|r| r.len() > e.path.len() && r.starts_with(&e.path));
                if !follows_a_removal {
                    problems.push(describe(&e, label));
                }
                if removed.len() >= MAX_READ_PROBLEMS || !remove(&mut tree, &e.path) {
                    break None;
                }
                removed.push(e.path);
            }
        }
    };
    let mut seen = Vec::new();
    let mut unknown_lines = Vec::new();
    for (path, near) in unknown.into_inner() {
        if seen.contains(&path) {
            continue;
        }
        let at = render(&path);
        let what = if lookup(&tree, &path).is_some_and(|v| matches!(v.kind, ValueKind::Table(_))) {
            "unknown section"
        } else {
            "unknown key"
        };
        let line = match near {
            Some(near) => {
                let mut suggested = path.clone();
                suggested.pop();
                suggested.push(Segment::Key(near.to_owned()));
                format!(
                    "{}: {what}; did you mean {:?}?",
                    label(&at),
                    render(&suggested)
                )
            }
            None => format!("{}: {what}", label(&at)),
        };
        unknown_lines.push(line);
        seen.push(path);
    }
    unknown_lines.extend(problems);
    (settings, unknown_lines)
}

fn describe(e: &ReadError, label: &dyn Fn(&str) -> String) -> String {
    format!("{}: {}", label(&e.setting()), e.problem)
}

fn lookup<'a>(tree: &'a Value, path: &[Segment]) -> Option<&'a Value> {
    let mut at = tree;
    for segment in path {
        at = match (&at.kind, segment) {
            (ValueKind::Table(t), Segment::Key(k)) => t.get(k)?,
            (ValueKind::Array(a), Segment::Index(i)) => a.get(*i)?,
            _ => return None,
        };
    }
    Some(at)
}

/// Removes the value at `path`; false when there is nothing there to remove.
fn remove(tree: &mut Value, path: &[Segment]) -> bool {
    let Some((last, parents)) = path.split_last() else {
        return false;
    };
    let mut at = tree;
    for segment in parents {
        at = match (&mut at.kind, segment) {
            (ValueKind::Table(t), Segment::Key(k)) => match t.get_mut(k) {
                Some(v) => v,
                None => return false,
            },
            (ValueKind::Array(a), Segment::Index(i)) => match a.get_mut(*i) {
                Some(v) => v,
                None => return false,
            },
            _ => return false,
        };
    }
    match (&mut at.kind, last) {
        (ValueKind::Table(t), Segment::Key(k)) => t.remove(k).is_some(),
        (ValueKind::Array(a), Segment::Index(i)) if *i < a.len() => {
            a.remove(*i);
            true
        }
        _ => false,
    }
}

/// The levels `log.level` accepts, alone or after `target=`.
const LOG_LEVELS: [&str; 6] = ["off", "error", "warn", "info", "debug", "trace"];

/// `log.level` is a level, or comma-separated `target=level` directives. A bare word that is
/// not a level (`warning`) would be read as a target name and silently hide every other log
/// line, so it is refused.
fn log_level_problems(level: &str) -> Vec<String> {
    let expected =
        "expected one of off, error, warn, info, debug, trace, or target=level directives";
    let mut out = Vec::new();
    if level.trim().is_empty() {
        out.push(format!("log.level: empty; {expected}"));
        return out;
    }
    for directive in level.split(',').map(str::trim).filter(|d| !d.is_empty()) {
        let word = match directive.rsplit_once('=') {
            Some((_, lvl)) => lvl.trim(),
            None => directive,
        };
        if !LOG_LEVELS.contains(&word.to_lowercase().as_str()) {
            let mut line = format!("log.level: {word:?}: {expected}");
            if let Some(near) = suggest::nearest(word, LOG_LEVELS) {
                line.push_str(&format!("; did you mean {near:?}?"));
            }
            out.push(line);
        }
    }
    if out.is_empty()
        && let Err(e) = tracing_subscriber::EnvFilter::try_new(level)
    {
        out.push(format!("log.level: {}", one_line(&e.to_string())));
    }
    out
}

enum EnvValue {
    One(String),
    List(Vec<String>),
}

struct EnvOverride {
    /// The variable's name, for messages and the start-up lines.
    var: String,
    /// The setting's path (`clients.my-app.secret`).
    key: String,
    value: EnvValue,
}

/// The ids under each id table of the file (`clients`, `federated_login.providers`).
fn existing_ids(tree: &Value) -> BTreeMap<&'static [&'static str], Vec<String>> {
    ID_TABLES
        .iter()
        .map(|table| {
            let path: Vec<Segment> = table.iter().map(|k| Segment::Key((*k).into())).collect();
            let ids = match lookup(tree, &path).map(|v| &v.kind) {
                Some(ValueKind::Table(t)) => t.keys().cloned().collect(),
                _ => Vec::new(),
            };
            let mut ids: Vec<String> = ids;
            ids.sort();
            (*table, ids)
        })
        .collect()
}

/// Environment variable names cannot hold `-` and are upper case, so an id segment of a
/// variable names the file's id that is equal to it with case and `-`/`_` ignored
/// (`BRAID_CLIENTS__MY_APP__…` is `clients.my-app`). With no such id in the file it creates one
/// as written, in lower case with `_`; when two ids of the file match, it is refused.
fn env_overrides(
    env: impl IntoIterator<Item = (String, String)>,
    ids: &BTreeMap<&'static [&'static str], Vec<String>>,
) -> (Vec<EnvOverride>, Vec<String>) {
    let norm = |s: &str| s.to_lowercase().replace('-', "_");
    let mut problems = Vec::new();
    let mut out: Vec<EnvOverride> = Vec::new();
    for (var, v) in env {
        if !var.starts_with(ENV_PREFIX) || RESERVED_ENV.iter().any(|r| var.starts_with(r)) {
            continue;
        }
        let mut segments: Vec<String> = var[ENV_PREFIX.len()..]
            .to_lowercase()
            .split("__")
            .map(String::from)
            .collect();
        if segments.iter().all(String::is_empty) {
            continue;
        }
        for (table, existing) in ids {
            let n = table.len();
            if segments.len() <= n || !segments.iter().zip(table.iter()).all(|(a, b)| a == b) {
                continue;
            }
            let wanted = norm(&segments[n]);
            let matching: Vec<&String> = existing.iter().filter(|id| norm(id) == wanted).collect();
            match matching.as_slice() {
                [] => {}
                [one] => segments[n] = (*one).clone(),
                several => problems.push(format!(
                    "{var}: matches {} in the file, which differ only by case, - or _; rename one",
                    several
                        .iter()
                        .map(|id| format!("{}.{id}", table.join(".")))
                        .collect::<Vec<_>>()
                        .join(" and ")
                )),
            }
        }
        let key = segments.join(".");
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
        out.push(EnvOverride { var, key, value });
    }
    // Deterministic order, so the same environment always gives the same result.
    out.sort_by(|a, b| a.key.cmp(&b.key));
    (out, problems)
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
fn load_all(
    file: Option<&Path>,
    env: impl IntoIterator<Item = (String, String)>,
) -> Result<Loaded, Vec<String>> {
    load(Checks::Startup, file, env)
}

#[cfg(test)]
mod tests {
    use super::load_all as load;
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
        let s = load(None, env(&[])).unwrap().settings;
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
        .unwrap()
        .settings;
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
                ("BRAID_SESSIONS__ENABLED", "yes"),
                ("BRAID_SERVER__MIGRATE_ON_START", "False"),
                ("BRAID_CONFIG", "ignored.toml"),
                ("BRAID_TEST_DATABASE_URL", "postgres://x@y/z"),
                ("OTHER", "x"),
            ]),
        )
        .unwrap()
        .settings;
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
        assert!(s.sessions.enabled && !s.server.migrate_on_start);
    }

    #[test]
    fn an_unknown_key_is_rejected_naming_every_one() {
        let f = toml("[server]\nprot = 1\n[databse]\nurl = \"x\"\n");
        let problems = load(Some(f.path()), env(&[("BRAID_SMTP__HOSTNAME", "mail")])).unwrap_err();
        for expected in [
            r#"server.prot: unknown key; did you mean "server.port"?"#,
            r#"databse: unknown section; did you mean "database"?"#,
            "smtp.hostname (BRAID_SMTP__HOSTNAME): unknown key",
        ] {
            assert!(problems.contains(&expected.to_owned()), "{problems:#?}");
        }
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
        let s = load(None, env(&[("BRAID_KEYS__PUBLISH_DELAY", "120")]))
            .unwrap()
            .settings;
        assert_eq!(s.keys.publish_delay, 120);
    }

    const SECRET: &str = "0000123456789012345678901234567890";

    #[test]
    fn an_environment_id_names_the_files_id_with_dashes() {
        let f = toml(
            "[clients.my-app]\nredirect_uris = [\"https://a.example/cb\"]\n\
             [federated_login.providers.github-corp]\npreset = \"github\"\nclient_id = \"x\"\n",
        );
        let loaded = load(
            Some(f.path()),
            env(&[
                ("BRAID_CLIENTS__MY_APP__SECRET", SECRET),
                (
                    "BRAID_FEDERATED_LOGIN__PROVIDERS__GITHUB_CORP__CLIENT_SECRET",
                    "gh",
                ),
            ]),
        )
        .unwrap();
        let s = &loaded.settings;
        assert_eq!(s.clients.keys().collect::<Vec<_>>(), ["my-app"]);
        assert_eq!(
            s.clients["my-app"].secret.as_ref().unwrap().expose(),
            SECRET
        );
        assert_eq!(
            s.federated_login.providers.keys().collect::<Vec<_>>(),
            ["github-corp"]
        );
        assert_eq!(
            loaded.env,
            [
                "BRAID_CLIENTS__MY_APP__SECRET",
                "BRAID_FEDERATED_LOGIN__PROVIDERS__GITHUB_CORP__CLIENT_SECRET"
            ]
        );
    }

    #[test]
    fn an_environment_id_new_to_the_file_is_created_as_written() {
        let s = load(
            None,
            env(&[
                ("BRAID_CLIENTS__MY_APP__SECRET", SECRET),
                (
                    "BRAID_CLIENTS__MY_APP__REDIRECT_URIS",
                    "https://a.example/cb",
                ),
            ]),
        )
        .unwrap()
        .settings;
        assert_eq!(s.clients.keys().collect::<Vec<_>>(), ["my_app"]);
    }

    #[test]
    fn an_environment_id_matching_two_of_the_files_ids_is_refused() {
        let f = toml(
            "[clients.my-app]\nredirect_uris = [\"https://a.example/cb\"]\npublic = true\n\
             [clients.my_app]\nredirect_uris = [\"https://b.example/cb\"]\npublic = true\n",
        );
        let problems = load(
            Some(f.path()),
            env(&[("BRAID_CLIENTS__MY_APP__PUBLIC", "true")]),
        )
        .unwrap_err();
        assert_eq!(
            problems,
            [
                "BRAID_CLIENTS__MY_APP__PUBLIC: matches clients.my-app and clients.my_app in the file, which differ only by case, - or _; rename one"
            ]
        );
    }

    #[test]
    fn an_unknown_value_lists_the_valid_ones_and_the_nearest() {
        let f = toml(
            "[federated_login.providers.google]\npreset = \"gogle\"\nclient_id = \"x\"\n\
             client_secret = \"y\"\n[account_linking]\nmatch_by = [\"email\", \"phon\"]\n",
        );
        let problems = load(Some(f.path()), env(&[])).unwrap_err();
        assert_eq!(problems.len(), 2, "{problems:#?}");
        assert_eq!(
            problems[0],
            r#"account_linking.match_by[1]: "phon": expected one of email, phone; did you mean "phone"?"#
        );
        assert!(
            problems[1].starts_with(
                r#"federated_login.providers.google.preset: "gogle": expected one of google, microsoft, apple, github, gitlab, discord, facebook, oidc, oauth2, amazon, "#
            ) && problems[1].ends_with(r#"; did you mean "google"?"#),
            "{}",
            problems[1]
        );
        assert!(problems.iter().all(|p| !p.contains("variant")));
    }

    #[test]
    fn a_webhook_event_typo_names_the_nearest_event_and_the_environment_lists_events() {
        let f = toml(
            "[webhooks.crm]\nurl = \"https://crm.example.com/hooks\"\n\
             secret = \"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\"\n\
             events = [\"user.created\", \"identity.linkd\"]\n",
        );
        let problems = load(Some(f.path()), env(&[])).unwrap_err();
        assert_eq!(
            problems,
            [
                r#"webhooks.crm.events[1]: "identity.linkd": expected one of user.created, user.disabled, identity.linked, identity.unlinked, link.conflict; did you mean "identity.linked"?"#
            ]
        );
        let s = load(
            None,
            env(&[
                ("BRAID_WEBHOOKS__CRM__URL", "https://crm.example.com/hooks"),
                (
                    "BRAID_WEBHOOKS__CRM__SECRET",
                    "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
                ),
                ("BRAID_WEBHOOKS__CRM__EVENTS", "user.created, link.conflict"),
            ]),
        )
        .unwrap()
        .settings;
        let crm = &s.webhooks["crm"];
        assert_eq!(
            crm.events,
            [
                braid_http::webhooks::EventType::UserCreated,
                braid_http::webhooks::EventType::LinkConflict
            ]
        );
        assert_eq!((crm.timeout, crm.max_attempts), (10, 12));
        let missing = load(
            None,
            env(&[("BRAID_WEBHOOKS__CRM__EVENTS", "user.created")]),
        )
        .unwrap_err();
        assert_eq!(missing[0], "webhooks.crm.url: required", "{missing:?}");
    }

    #[test]
    fn a_missing_required_setting_is_named() {
        let f = toml("[federated_login.providers.corp]\npreset = \"oidc\"\n");
        let problems = load(Some(f.path()), env(&[])).unwrap_err();
        assert_eq!(
            problems,
            ["federated_login.providers.corp.client_id: required"]
        );
    }

    #[test]
    fn a_log_level_that_is_not_a_level_is_refused_with_the_nearest() {
        for (level, near) in [
            ("warning", "warn"),
            ("information", "info"),
            ("debg", "debug"),
        ] {
            let problems = load(None, env(&[("BRAID_LOG__LEVEL", level)])).unwrap_err();
            assert_eq!(problems.len(), 1, "{problems:?}");
            assert!(
                problems[0].starts_with(&format!(
                    "log.level: {level:?}: expected one of off, error, warn"
                )) && problems[0].ends_with(&format!("did you mean {near:?}?")),
                "{problems:?}"
            );
        }
        for ok in ["warn", "INFO", "braid_http=debug,info", "off"] {
            assert!(load(None, env(&[("BRAID_LOG__LEVEL", ok)])).is_ok(), "{ok}");
        }
    }

    #[test]
    fn a_secret_from_a_file_counts_once() {
        let dir = tempfile::tempdir().unwrap();
        let secret = dir.path().join("secret");
        std::fs::write(&secret, format!("{SECRET}\n")).unwrap();
        let f = toml(&format!(
            "[clients.app]\nredirect_uris = [\"https://a.example/cb\"]\nsecret_file = {:?}\n",
            secret.display().to_string()
        ));
        let s = load(Some(f.path()), env(&[])).unwrap().settings;
        assert_eq!(s.clients["app"].secret.as_ref().unwrap().expose(), SECRET);
    }

    #[test]
    fn a_missing_config_file_is_an_error() {
        let problems = load(Some(Path::new("/nonexistent/braid.toml")), env(&[])).unwrap_err();
        assert!(problems[0].starts_with("--config:"));
    }

    #[test]
    fn the_example_configuration_is_valid_and_complete() {
        let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config/braid.example.toml");
        let s = load(Some(&example), env(&[])).unwrap().settings;
        assert_eq!(s.account_linking.routes.select, ["link", "select"]);
    }
}

#[cfg(test)]
mod example_tests {
    use super::load_all as load;
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
        // The example names a CA file and an Apple key of the operator's; everything else
        // must be valid.
        let others: Vec<_> = problems
            .iter()
            .filter(|p| {
                !(p.contains(".ca_file: cannot read")
                    || p.contains(".private_key_file: cannot read"))
            })
            .collect();
        assert_eq!(others, Vec::<&String>::new());
        assert_eq!(problems.len(), 2, "{problems:#?}");
    }
}
