//! All configured providers, built once at start-up.

use crate::http_client::{HttpClient, HttpLimits, UpstreamObserver};
use crate::provider::{MatchedClaims, Provider};
use crate::{ProviderError, ProviderSettings};
use braid_core::ProviderId;
use std::collections::BTreeMap;
use std::sync::Arc;

#[derive(Debug)]
pub struct ProviderRegistry {
    providers: BTreeMap<ProviderId, Arc<Provider>>,
}

impl ProviderRegistry {
    /// Built once at start-up. `callback_base` is Braid's public URL; each provider's redirect
    /// URI is `{callback_base}/auth/connect/{id}/callback`. Every provider shares one HTTP
    /// client, except those with a `ca_file`, which get their own.
    pub fn new(
        settings: &BTreeMap<String, ProviderSettings>,
        callback_base: &str,
    ) -> Result<Self, ProviderError> {
        Self::with_options(settings, callback_base, RegistryOptions::default())
    }

    /// As [`ProviderRegistry::new`], with other options.
    pub fn with_options(
        settings: &BTreeMap<String, ProviderSettings>,
        callback_base: &str,
        options: RegistryOptions,
    ) -> Result<Self, ProviderError> {
        Self::build(settings, callback_base, options)
            .map_err(|problems| ProviderError::Config(problems.join("; ")))
    }

    /// Builds every provider, reading the files they name (`ca_file`, Apple's
    /// `private_key_file`, `client_secret_file`). `Err` holds every problem of every provider,
    /// one line each, prefixed with the setting's path: `check-config` and `serve` both call
    /// this, so they refuse the same settings.
    pub fn build(
        settings: &BTreeMap<String, ProviderSettings>,
        callback_base: &str,
        options: RegistryOptions,
    ) -> Result<Self, Vec<String>> {
        let limits = options.http_limits;
        let base = callback_base_url(callback_base)
            .map_err(|e| vec![format!("server.public_url: {}", config_message(e))])?;
        let shared = HttpClient::with_limits(limits, None).map_err(|e| vec![config_message(e)])?;
        let mut providers = BTreeMap::new();
        let mut out = Vec::new();
        for (name, s) in settings {
            let at = format!("federated_login.providers.{name}");
            let problems = s.problems(name);
            if !problems.is_empty() {
                out.extend(problems);
                continue;
            }
            let id = match ProviderId::parse(name) {
                Ok(id) => id,
                Err(e) => {
                    out.push(format!("{at}: {e}"));
                    continue;
                }
            };
            let http = match &s.ca_file {
                Some(path) => match std::fs::read(path) {
                    Ok(pem) => match HttpClient::with_limits(limits, Some(&pem)) {
                        Ok(http) => http,
                        Err(e) => {
                            out.push(at_setting(&at, config_message(e)));
                            continue;
                        }
                    },
                    Err(e) => {
                        out.push(format!(
                            "{at}.ca_file: cannot read {}: {}",
                            path.display(),
                            e.kind()
                        ));
                        continue;
                    }
                },
                None => shared.clone(),
            };
            let http = match &options.upstream_observer {
                Some(observer) => http.observed_by(id.as_str(), observer.clone()),
                None => http,
            };
            let redirect_uri = join_callback(&base, id.as_str());
            match Provider::new(id.clone(), s, redirect_uri, http, options.matched_claims) {
                Ok(provider) => {
                    providers.insert(id, Arc::new(provider));
                }
                Err(e) => out.push(at_setting(&at, config_message(e))),
            }
        }
        if out.is_empty() {
            Ok(Self { providers })
        } else {
            Err(out)
        }
    }

    /// The provider with exactly this id (case-sensitive; `GOOGLE` is not `google`).
    pub fn get(&self, id: &str) -> Option<Arc<Provider>> {
        let id = ProviderId::parse(id).ok()?;
        self.providers.get(&id).cloned()
    }

    pub fn ids(&self) -> impl Iterator<Item = &ProviderId> {
        self.providers.keys()
    }

    pub fn iter(&self) -> impl Iterator<Item = &Arc<Provider>> {
        self.providers.values()
    }
}

/// What every provider of a registry shares.
#[derive(Debug, Clone, Default)]
pub struct RegistryOptions {
    pub http_limits: HttpLimits,
    pub matched_claims: MatchedClaims,
    /// Told the duration of every upstream call, by provider and document.
    pub upstream_observer: Option<Arc<dyn UpstreamObserver>>,
}

/// The settings a start-up error may name first (`private_key_file: cannot read …`).
const FILE_SETTINGS: [&str; 3] = ["ca_file", "private_key_file", "client_secret_file"];

/// `federated_login.providers.apple.private_key_file: cannot read …`.
fn at_setting(at: &str, message: String) -> String {
    match message.split_once(": ") {
        Some((head, rest)) if FILE_SETTINGS.contains(&head) => format!("{at}.{head}: {rest}"),
        _ => format!("{at}: {message}"),
    }
}

fn config_message(e: ProviderError) -> String {
    match e {
        ProviderError::Config(s) => s,
        other => other.to_string(),
    }
}

/// The callback URL of provider `id` when Braid's public URL is `public_url`: the redirect URI
/// to register at the provider (`None` when `public_url` is not an http(s) URL).
pub fn callback_url(public_url: &str, id: &str) -> Option<String> {
    callback_base_url(public_url)
        .ok()
        .map(|base| join_callback(&base, id))
}

fn join_callback(base: &str, id: &str) -> String {
    format!("{base}/auth/connect/{id}/callback")
}

/// An http(s) URL without query or fragment; a trailing slash is dropped.
fn callback_base_url(base: &str) -> Result<String, ProviderError> {
    let bad = || ProviderError::Config(format!("callback base {base:?} is not an http(s) URL"));
    let url = url::Url::parse(base).map_err(|_| bad())?;
    if !matches!(url.scheme(), "http" | "https")
        || url.host_str().is_none()
        || url.query().is_some()
        || url.fragment().is_some()
    {
        return Err(bad());
    }
    Ok(url.as_str().trim_end_matches('/').to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Preset;
    use braid_core::Secret;

    fn github() -> ProviderSettings {
        let mut s = ProviderSettings::new(Preset::Github, "gh-client");
        s.client_secret = Some(Secret::new("gh-secret"));
        s
    }

    #[test]
    fn redirect_uris_follow_the_callback_route() {
        let settings = BTreeMap::from([("github".to_owned(), github())]);
        let registry = ProviderRegistry::new(&settings, "https://braid.example/").unwrap();
        let p = registry.get("github").unwrap();
        assert_eq!(
            p.redirect_uri(),
            "https://braid.example/auth/connect/github/callback"
        );
        assert_eq!(p.display_name(), "GitHub");
        assert_eq!(p.preset(), Preset::Github);
        assert!(p.enabled() && !p.link_only() && !p.uses_form_post());
        assert_eq!(
            registry.ids().map(ProviderId::as_str).collect::<Vec<_>>(),
            ["github"]
        );
    }

    #[test]
    fn a20_lookup_is_exact() {
        let settings = BTreeMap::from([("github".to_owned(), github())]);
        let registry = ProviderRegistry::new(&settings, "https://braid.example").unwrap();
        for other in [
            "GITHUB",
            "Github",
            "github ",
            "..%2Fadmin",
            "../github",
            "gitlab",
            "",
        ] {
            assert!(registry.get(other).is_none(), "{other:?}");
        }
    }

    #[test]
    fn settings_problems_and_bad_bases_stop_start_up() {
        let mut bad = github();
        bad.client_secret = None;
        let settings = BTreeMap::from([("github".to_owned(), bad)]);
        assert!(matches!(
            ProviderRegistry::new(&settings, "https://braid.example"),
            Err(ProviderError::Config(_))
        ));
        let settings = BTreeMap::from([("GitHub".to_owned(), github())]);
        assert!(ProviderRegistry::new(&settings, "https://braid.example").is_err());
        let settings = BTreeMap::from([("github".to_owned(), github())]);
        for base in [
            "braid.example",
            "ftp://braid.example",
            "https://braid.example/?x=1",
        ] {
            assert!(ProviderRegistry::new(&settings, base).is_err(), "{base}");
        }
    }

    #[test]
    fn the_client_secret_may_come_from_a_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secret");
        std::fs::write(&path, "from-file\n").unwrap();
        let mut s = github();
        s.client_secret = None;
        s.client_secret_file = Some(path);
        let settings = BTreeMap::from([("github".to_owned(), s)]);
        let registry = ProviderRegistry::new(&settings, "https://braid.example").unwrap();
        let p = registry.get("github").unwrap();
        assert_eq!(p.client_secret("x").unwrap().expose(), "from-file");
    }
}
