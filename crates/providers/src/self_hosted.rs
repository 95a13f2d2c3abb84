//! `base_url`: where a GitHub Enterprise Server or a self-managed GitLab lives. The same checks
//! serve `check-config` (one line per problem) and start-up.

use crate::http_client::is_allowed_url;
use crate::{Preset, ProviderSettings};
use url::Url;

/// The presets an operator may run on their own server.
fn takes_base_url(preset: Preset) -> bool {
    matches!(preset, Preset::Github | Preset::Gitlab)
}

fn example(preset: Preset) -> &'static str {
    match preset {
        Preset::Gitlab => "https://gitlab.example.com",
        _ => "https://github.example.com",
    }
}

/// `raw` as the base URL of a `preset` server, normalised (the URL's canonical form without a
/// trailing slash, which is also the identity's issuer label), or what the operator must change.
pub(crate) fn check_base_url(preset: Preset, raw: &str) -> Result<String, String> {
    let url = Url::parse(raw).map_err(|e| {
        format!(
            "{raw:?} is not a URL ({e}); set the server's address, like {}",
            example(preset)
        )
    })?;
    if !is_allowed_url(&url) {
        return Err(format!(
            "{raw:?} must be an https URL (plain http only to a loopback address: 127.0.0.0/8, ::1 or localhost)"
        ));
    }
    // Not echoed: the point is that it may hold a password.
    if !url.username().is_empty() || url.password().is_some() {
        return Err(
            "must not carry a user name or password; remove them (the client's credentials are client_id and client_secret)"
                .to_owned(),
        );
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(format!(
            "{raw:?} must not have a query (?…) or fragment (#…); remove it"
        ));
    }
    if preset == Preset::Github {
        check_github_root(raw, &url)?;
    }
    Ok(url.as_str().trim_end_matches('/').to_owned())
}

/// GitHub Enterprise Server always answers at the root of its host and Braid adds
/// `/login/oauth/…` and `/api/v3/…` itself, so a path is a pasted page or API URL that would
/// only fail at the first sign-in. (GitLab, by contrast, may be installed under a path.)
fn check_github_root(raw: &str, url: &Url) -> Result<(), String> {
    if !url.path().trim_end_matches('/').is_empty() {
        return Err(format!(
            "{raw:?} must be the server's address without a path, like {} (Braid adds /api/v3 itself)",
            example(Preset::Github)
        ));
    }
    if matches!(url.host_str(), Some("github.com" | "api.github.com")) {
        return Err(format!(
            "{raw:?} is the public GitHub, which is the default; remove base_url (it is for GitHub Enterprise Server)"
        ));
    }
    Ok(())
}

/// The server a github or gitlab provider talks to instead of the public service: `base_url`,
/// or for gitlab the `issuer` that configs written before `base_url` use. `None`: the public one.
pub(crate) fn self_hosted_base(s: &ProviderSettings) -> Result<Option<String>, String> {
    if !takes_base_url(s.preset) {
        return Ok(None);
    }
    let checked = |key: &str, raw: Option<&String>| {
        raw.map(|raw| check_base_url(s.preset, raw).map_err(|e| format!("{key}: {e}")))
            .transpose()
    };
    let base_url = checked("base_url", s.base_url.as_ref())?;
    let issuer = match s.preset {
        Preset::Gitlab => checked("issuer", s.issuer.as_ref())?,
        _ => None,
    };
    match (base_url, issuer) {
        (Some(base), Some(issuer)) if base != issuer => Err(conflict(&base, &issuer)),
        (base, issuer) => Ok(base.or(issuer)),
    }
}

fn conflict(base: &str, issuer: &str) -> String {
    format!(
        "base_url {base:?} and issuer {issuer:?} name different GitLab servers; keep base_url and remove issuer"
    )
}

/// The `base_url` lines of `check-config`, prefixed with the provider's path `at`. A gitlab
/// `issuer` that is wrong on its own is reported under `issuer` by the caller.
pub(crate) fn base_url_problems(s: &ProviderSettings, at: &str) -> Vec<String> {
    let Some(raw) = &s.base_url else {
        return Vec::new();
    };
    if !takes_base_url(s.preset) {
        return vec![format!(
            "{at}.base_url: only the github (Enterprise Server) and gitlab (self-managed) presets take a base_url; remove it from this {} provider",
            s.preset.name()
        )];
    }
    let base = match check_base_url(s.preset, raw) {
        Ok(base) => base,
        Err(e) => return vec![format!("{at}.base_url: {e}")],
    };
    let issuer = match (s.preset, &s.issuer) {
        (Preset::Gitlab, Some(raw)) => check_base_url(Preset::Gitlab, raw).ok(),
        _ => None,
    };
    match issuer {
        Some(issuer) if issuer != base => vec![format!("{at}: {}", conflict(&base, &issuer))],
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use braid_core::Secret;

    fn with_base(preset: Preset, base_url: &str) -> ProviderSettings {
        let mut s = ProviderSettings::new(preset, "client");
        s.client_secret = Some(Secret::new("secret"));
        s.base_url = Some(base_url.into());
        s
    }

    /// The problems of provider `ghe`, each checked to be one line naming it.
    fn problems(s: &ProviderSettings) -> Vec<String> {
        let out = s.problems("ghe");
        for line in &out {
            assert!(
                line.starts_with("federated_login.providers.ghe") && !line.contains('\n'),
                "{line}"
            );
        }
        out
    }

    fn refused(preset: Preset, base_url: &str) -> String {
        let out = problems(&with_base(preset, base_url));
        assert_eq!(out.len(), 1, "{base_url}: {out:#?}");
        assert!(
            out[0].starts_with("federated_login.providers.ghe.base_url: "),
            "{}",
            out[0]
        );
        out[0].clone()
    }

    #[test]
    fn base_url_is_https_or_plain_http_only_to_loopback() {
        for ok in [
            "https://github.example.com",
            "https://github.example.com:8443/",
            "http://127.0.0.1:8080",
            "http://127.10.20.30",
            "http://[::1]:9000",
            "http://localhost:9000/",
        ] {
            assert_eq!(
                problems(&with_base(Preset::Github, ok)),
                Vec::<String>::new()
            );
        }
        for bad in [
            "http://github.example.com",
            "http://10.0.0.1",
            "http://[::2]",
            "ftp://github.example.com",
        ] {
            assert!(refused(Preset::Github, bad).contains("must be an https URL"));
        }
        assert!(refused(Preset::Gitlab, "gitlab.example.com").contains("is not a URL"));
    }

    #[test]
    fn base_url_with_credentials_is_refused_without_repeating_them() {
        let line = refused(Preset::Gitlab, "https://root:hunter2@gitlab.example.com");
        assert!(line.contains("user name or password"), "{line}");
        assert!(!line.contains("hunter2"), "{line}");
    }

    #[test]
    fn base_url_with_a_query_or_fragment_is_refused() {
        for bad in [
            "https://github.example.com/?org=x",
            "https://github.example.com/#x",
        ] {
            assert!(refused(Preset::Github, bad).contains("query"), "{bad}");
        }
    }

    #[test]
    fn github_enterprise_base_url_is_the_server_root() {
        for bad in [
            "https://github.example.com/api/v3",
            "https://github.example.com/login",
        ] {
            assert!(
                refused(Preset::Github, bad).contains("without a path"),
                "{bad}"
            );
        }
        assert!(refused(Preset::Github, "https://github.com").contains("public GitHub"));
        assert!(refused(Preset::Github, "https://api.github.com/").contains("public GitHub"));
    }

    #[test]
    fn gitlab_base_url_may_have_a_path_for_an_instance_under_a_relative_url() {
        let s = with_base(Preset::Gitlab, "https://example.com/gitlab/");
        assert_eq!(problems(&s), Vec::<String>::new());
        assert_eq!(
            self_hosted_base(&s).unwrap().as_deref(),
            Some("https://example.com/gitlab")
        );
    }

    #[test]
    fn base_url_is_normalised_to_one_spelling() {
        for spelling in [
            "https://GitHub.Example.com",
            "https://github.example.com/",
            "https://github.example.com:443//",
        ] {
            let s = with_base(Preset::Github, spelling);
            assert_eq!(
                self_hosted_base(&s).unwrap().as_deref(),
                Some("https://github.example.com"),
                "{spelling}"
            );
        }
    }

    #[test]
    fn base_url_on_another_preset_names_the_provider_and_the_key() {
        for preset in [Preset::Google, Preset::Discord, Preset::Oidc] {
            let mut s = with_base(preset, "https://github.example.com");
            s.issuer = Some("https://idp.example".into());
            let out = problems(&s);
            assert_eq!(out.len(), 1, "{out:#?}");
            assert!(out[0].starts_with("federated_login.providers.ghe.base_url: only the github"));
            assert!(out[0].contains(preset.name()), "{}", out[0]);
            assert_eq!(self_hosted_base(&s).unwrap(), None);
        }
    }

    #[test]
    fn gitlab_base_url_and_the_older_issuer_must_name_the_same_server() {
        let mut s = with_base(Preset::Gitlab, "https://gitlab.example.com");
        s.issuer = Some("https://gitlab.example.com/".into());
        assert_eq!(problems(&s), Vec::<String>::new());
        s.issuer = Some("https://git.other.example".into());
        let out = problems(&s);
        assert_eq!(out.len(), 1, "{out:#?}");
        assert!(out[0].contains("remove issuer"), "{}", out[0]);
        assert!(self_hosted_base(&s).unwrap_err().contains("remove issuer"));
    }

    #[test]
    fn gitlab_issuer_alone_still_names_a_self_managed_server_and_is_checked_as_one() {
        let mut s = ProviderSettings::new(Preset::Gitlab, "client");
        s.client_secret = Some(Secret::new("secret"));
        s.issuer = Some("https://gitlab.example.com/".into());
        assert_eq!(problems(&s), Vec::<String>::new());
        assert_eq!(
            self_hosted_base(&s).unwrap().as_deref(),
            Some("https://gitlab.example.com")
        );
        s.issuer = Some("http://gitlab.example.com".into());
        let out = problems(&s);
        assert_eq!(out.len(), 1, "{out:#?}");
        assert!(out[0].starts_with("federated_login.providers.ghe.issuer: "));
    }
}
