use crate::Preset;
use braid_core::{ProviderId, Secret};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// One entry of `[federated_login.providers.<id>]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProviderSettings {
    pub preset: Preset,
    pub client_id: String,
    #[serde(default)]
    pub client_secret: Option<Secret>,
    /// Read the client secret from this file instead (Docker/Kubernetes secrets).
    #[serde(default)]
    pub client_secret_file: Option<PathBuf>,
    /// Issuer URL: required for `oidc`; for `gitlab` the base URL of a self-managed instance.
    #[serde(default)]
    pub issuer: Option<String>,
    /// Microsoft Entra tenant (`common`, `organizations`, `consumers` or a tenant id).
    #[serde(default)]
    pub tenant: Option<String>,
    /// Extra scopes on top of the preset's.
    #[serde(default)]
    pub scopes: Vec<String>,
    /// Shown on pages; defaults to the preset's name.
    #[serde(default)]
    pub display_name: Option<String>,
    /// Whether this provider's verified emails may be used to match existing users.
    #[serde(default)]
    pub trust_email: Option<bool>,
    /// Whether this provider's verified phone numbers may be used to match existing users.
    #[serde(default)]
    pub trust_phone: Option<bool>,
    /// ID token signing algorithm expected from this provider (default RS256).
    #[serde(default)]
    pub id_token_alg: Option<String>,
    /// A disabled provider refuses new logins and callbacks still in flight.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Usable only to connect to a signed-in user, never to sign in.
    #[serde(default)]
    pub link_only: bool,
    /// Extra CA certificate (PEM) for a provider behind a private CA.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
}

fn yes() -> bool {
    true
}

const ID_TOKEN_ALGS: [&str; 7] = [
    "RS256", "RS384", "RS512", "PS256", "ES256", "ES384", "EdDSA",
];

impl ProviderSettings {
    pub fn trust_email(&self) -> bool {
        self.trust_email
            .unwrap_or_else(|| self.preset.trusts_email_by_default())
    }

    pub fn trust_phone(&self) -> bool {
        self.trust_phone.unwrap_or(false)
    }

    /// Problems an operator can fix, one line each, prefixed with the setting's path.
    pub fn problems(&self, id: &str) -> Vec<String> {
        let at = format!("federated_login.providers.{id}");
        let mut out = Vec::new();
        if let Err(e) = ProviderId::parse(id) {
            out.push(format!("{at}: {e}"));
        }
        if self.client_id.trim().is_empty() {
            out.push(format!("{at}.client_id: missing"));
        }
        let has_secret = self.client_secret.as_ref().is_some_and(|s| !s.is_empty());
        if has_secret && self.client_secret_file.is_some() {
            out.push(format!(
                "{at}: set client_secret or client_secret_file, not both"
            ));
        } else if !has_secret && self.client_secret_file.is_none() {
            out.push(format!(
                "{at}.client_secret: missing secret (or set client_secret_file)"
            ));
        }
        match (&self.issuer, self.preset) {
            (None, p) if p.needs_issuer() => {
                out.push(format!("{at}.issuer: required for preset {}", p.name()))
            }
            (Some(issuer), _) => {
                if let Err(e) = check_issuer(issuer) {
                    out.push(format!("{at}.issuer: {e}"));
                }
            }
            _ => {}
        }
        if self.tenant.is_some() && self.preset != Preset::Microsoft {
            out.push(format!(
                "{at}.tenant: only the microsoft preset has a tenant"
            ));
        }
        if let Some(alg) = &self.id_token_alg {
            if !ID_TOKEN_ALGS.contains(&alg.as_str()) {
                out.push(format!(
                    "{at}.id_token_alg: {alg} is not one of {}",
                    ID_TOKEN_ALGS.join(", ")
                ));
            }
        }
        out
    }
}

/// Issuers are HTTPS URLs; plain HTTP only on loopback, for development and tests.
pub fn check_issuer(issuer: &str) -> Result<url::Url, String> {
    let url = url::Url::parse(issuer).map_err(|e| format!("bad URL {issuer:?}: {e}"))?;
    let loopback = matches!(url.host_str(), Some("localhost" | "127.0.0.1" | "[::1]"));
    match url.scheme() {
        "https" => {}
        "http" if loopback => {}
        _ => {
            return Err(format!(
                "{issuer:?} must be an https URL (http only on loopback)"
            ));
        }
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(format!("{issuer:?} must not have a query or fragment"));
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn oidc() -> ProviderSettings {
        serde_json::from_str(
            r#"{"preset":"oidc","client_id":"braid","client_secret":"s","issuer":"https://idp.example"}"#,
        )
        .unwrap()
    }

    #[test]
    fn a_complete_provider_has_no_problems() {
        assert_eq!(oidc().problems("corp"), Vec::<String>::new());
        assert!(oidc().enabled && !oidc().link_only);
    }

    #[test]
    fn each_problem_is_one_line_naming_the_setting() {
        let mut p = oidc();
        p.client_id = String::new();
        p.client_secret = None;
        p.issuer = Some("ftp://idp.example".into());
        p.id_token_alg = Some("none".into());
        let problems = p.problems("Corp");
        assert_eq!(problems.len(), 5, "{problems:#?}");
        assert!(
            problems
                .iter()
                .all(|l| l.starts_with("federated_login.providers.Corp") && !l.contains('\n'))
        );
        assert!(problems.iter().any(|l| l.contains("missing secret")));
    }

    #[test]
    fn issuers_must_be_https_except_on_loopback() {
        assert!(check_issuer("https://accounts.example.com").is_ok());
        assert!(check_issuer("http://127.0.0.1:9000/oidc").is_ok());
        assert!(check_issuer("http://localhost:9000").is_ok());
        assert!(check_issuer("http://idp.example").is_err());
        assert!(check_issuer("https://idp.example/?x=1").is_err());
        assert!(check_issuer("not a url").is_err());
    }

    #[test]
    fn trust_defaults_come_from_the_preset_and_can_be_overridden() {
        let mut p = oidc();
        assert!(!p.trust_email());
        p.trust_email = Some(true);
        assert!(p.trust_email());
        assert!(!p.trust_phone());
    }
}
