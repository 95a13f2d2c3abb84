use crate::Preset;
use crate::authorization_code::AUTHORIZATION_PARAMS;
use crate::profile_mapping::MappingSettings;
use crate::self_hosted::{base_url_problems, check_base_url};
use braid_core::{ProviderId, Secret};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
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
    /// Issuer URL: required for `oidc`. For `gitlab`, an older spelling of `base_url`.
    #[serde(default)]
    pub issuer: Option<String>,
    /// `github`: a GitHub Enterprise Server; `gitlab`: a self-managed GitLab. Default: the
    /// public service (github.com, gitlab.com).
    #[serde(default)]
    pub base_url: Option<String>,
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
    /// Apple: the Developer Team ID. With `key_id` and `private_key_file`, Braid signs the
    /// ES256 client secret itself (instead of a pre-made `client_secret`).
    #[serde(default)]
    pub team_id: Option<String>,
    /// Apple: the id of the "Sign in with Apple" key.
    #[serde(default)]
    pub key_id: Option<String>,
    /// Apple: the `.p8` private key file (PKCS#8 PEM) of that key.
    #[serde(default)]
    pub private_key_file: Option<PathBuf>,
    /// `oauth2`: the authorization endpoint.
    #[serde(default)]
    pub authorization_url: Option<String>,
    /// `oauth2`: the token endpoint.
    #[serde(default)]
    pub token_url: Option<String>,
    /// `oauth2`: the JSON profile endpoints, called in order with the access token.
    #[serde(default)]
    pub userinfo_url: Vec<String>,
    /// `oauth2`: what joins the scopes in the authorization request (default a space).
    #[serde(default)]
    pub scope_separator: Option<String>,
    /// `oauth2`: how Braid authenticates at the token endpoint.
    #[serde(default)]
    pub token_endpoint_auth_method: Option<TokenAuthMethod>,
    /// `oauth2`: send PKCE (default true; turn off only for a provider that refuses it).
    #[serde(default)]
    pub pkce: Option<bool>,
    /// `oauth2`: where the profile JSON has the subject, addresses and display fields.
    #[serde(default)]
    pub mapping: Option<MappingSettings>,
    /// Fixed extra parameters of the authorization request (`access_type = "offline"`).
    #[serde(default)]
    pub authorization_params: BTreeMap<String, String>,
    /// Parameters a sign-in start (`/auth/connect/<id>?login_hint=…`) may pass upstream.
    /// Nothing else from the browser ever is (A21).
    #[serde(default)]
    pub forward_params: Vec<String>,
    /// `form_post` when the provider must post its answer back (Apple always does).
    #[serde(default)]
    pub response_mode: Option<ResponseMode>,
    /// Set from a catalogue entry: its scopes, replacing the preset's defaults. Not read from
    /// configuration.
    #[doc(hidden)]
    #[serde(skip)]
    pub base_scopes: Option<Vec<String>>,
    /// Test seam: the base URL a preset's fixed endpoints are served from (a local mock),
    /// instead of the real service. Not configurable from files or the environment.
    #[doc(hidden)]
    #[serde(skip)]
    pub upstream_base_url: Option<String>,
}

fn yes() -> bool {
    true
}

/// RFC 7591 names of the token endpoint authentication methods.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenAuthMethod {
    /// HTTP Basic with the client id and secret (the default).
    ClientSecretBasic,
    /// Client id and secret in the form body.
    ClientSecretPost,
    /// A public client: no secret, PKCE only.
    None,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ResponseMode {
    Query,
    FormPost,
}

/// Settings only the generic `oauth2` preset reads.
const OAUTH2_ONLY: [&str; 7] = [
    "authorization_url",
    "token_url",
    "userinfo_url",
    "scope_separator",
    "token_endpoint_auth_method",
    "pkce",
    "mapping",
];

const ID_TOKEN_ALGS: [&str; 7] = [
    "RS256", "RS384", "RS512", "PS256", "ES256", "ES384", "EdDSA",
];

impl ProviderSettings {
    /// A provider with only a preset and a client id; every other setting at its default.
    pub fn new(preset: Preset, client_id: impl Into<String>) -> Self {
        Self {
            preset,
            client_id: client_id.into(),
            client_secret: None,
            client_secret_file: None,
            issuer: None,
            base_url: None,
            tenant: None,
            scopes: Vec::new(),
            display_name: None,
            trust_email: None,
            trust_phone: None,
            id_token_alg: None,
            enabled: true,
            link_only: false,
            ca_file: None,
            team_id: None,
            key_id: None,
            private_key_file: None,
            authorization_url: None,
            token_url: None,
            userinfo_url: Vec::new(),
            scope_separator: None,
            token_endpoint_auth_method: None,
            pkce: None,
            mapping: None,
            authorization_params: BTreeMap::new(),
            forward_params: Vec::new(),
            response_mode: None,
            base_scopes: None,
            upstream_base_url: None,
        }
    }

    /// Apple only: whether Braid signs the client secret from `team_id`, `key_id` and
    /// `private_key_file` (any of them set) rather than using a configured secret.
    pub fn signs_client_secret(&self) -> bool {
        self.team_id.is_some() || self.key_id.is_some() || self.private_key_file.is_some()
    }

    pub fn trust_email(&self) -> bool {
        self.trust_email
            .unwrap_or_else(|| self.preset.trusts_email_by_default())
    }

    /// A public client (`token_endpoint_auth_method = "none"`) has no secret.
    pub fn is_public_client(&self) -> bool {
        self.token_endpoint_auth_method == Some(TokenAuthMethod::None)
    }

    pub fn trust_phone(&self) -> bool {
        self.trust_phone.unwrap_or(false)
    }

    /// A catalogue preset as the generic preset it stands for, the operator's settings over
    /// the entry's; any other preset as it is.
    pub fn resolved(&self) -> std::borrow::Cow<'_, Self> {
        match self.preset.entry() {
            Some(entry) => std::borrow::Cow::Owned(entry.under(self)),
            None => std::borrow::Cow::Borrowed(self),
        }
    }

    /// Problems an operator can fix, one line each, prefixed with the setting's path.
    pub fn problems(&self, id: &str) -> Vec<String> {
        let at = format!("federated_login.providers.{id}");
        if let Some(entry) = self.preset.entry() {
            if self.issuer.is_none() && self.preset.needs_issuer() {
                let hint = entry.issuer_hint.as_deref().unwrap_or("https://…");
                return vec![format!(
                    "{at}.issuer: required for preset {} (like {hint})",
                    entry.name
                )];
            }
            return entry.under(self).problems(id);
        }
        let mut out = Vec::new();
        if let Err(e) = ProviderId::parse(id) {
            out.push(format!("{at}: {e}"));
        }
        if self.client_id.trim().is_empty() {
            out.push(format!("{at}.client_id: missing"));
        }
        let has_secret = self.client_secret.as_ref().is_some_and(|s| !s.is_empty());
        if self.signs_client_secret() {
            out.extend(self.signing_key_problems(&at, has_secret));
        } else if has_secret && self.client_secret_file.is_some() {
            out.push(format!(
                "{at}: set client_secret or client_secret_file, not both"
            ));
        } else if self.is_public_client() {
            if has_secret || self.client_secret_file.is_some() {
                out.push(format!(
                    "{at}.token_endpoint_auth_method: \"none\" sends no secret; remove client_secret"
                ));
            }
        } else if !has_secret && self.client_secret_file.is_none() {
            out.push(format!(
                "{at}.client_secret: missing secret (or set client_secret_file)"
            ));
        }
        match (&self.issuer, self.preset) {
            (None, p) if p.needs_issuer() => {
                out.push(format!("{at}.issuer: required for preset {}", p.name()))
            }
            (Some(issuer), Preset::Gitlab) => {
                if let Err(e) = check_base_url(Preset::Gitlab, issuer) {
                    out.push(format!("{at}.issuer: {e}"));
                }
            }
            (Some(issuer), _) => {
                if let Err(e) = check_issuer(issuer) {
                    out.push(format!("{at}.issuer: {e}"));
                }
            }
            _ => {}
        }
        out.extend(base_url_problems(self, &at));
        if self.tenant.is_some() && self.preset != Preset::Microsoft {
            out.push(format!(
                "{at}.tenant: only the microsoft preset has a tenant"
            ));
        }
        if let Some(alg) = &self.id_token_alg
            && !ID_TOKEN_ALGS.contains(&alg.as_str())
        {
            out.push(format!(
                "{at}.id_token_alg: {alg} is not one of {}",
                ID_TOKEN_ALGS.join(", ")
            ));
        }
        out.extend(self.oauth2_problems(&at));
        out.extend(self.authorization_param_problems(&at));
        out
    }

    /// The generic preset needs its endpoints and a mapping; other presets have their own.
    fn oauth2_problems(&self, at: &str) -> Vec<String> {
        let mut out = Vec::new();
        if self.preset != Preset::Oauth2 {
            let set = [
                self.authorization_url.is_some(),
                self.token_url.is_some(),
                !self.userinfo_url.is_empty(),
                self.scope_separator.is_some(),
                self.token_endpoint_auth_method.is_some(),
                self.pkce.is_some(),
                self.mapping.is_some(),
            ];
            for (key, _) in OAUTH2_ONLY.iter().zip(set).filter(|(_, set)| *set) {
                out.push(format!("{at}.{key}: only the oauth2 preset reads this"));
            }
            return out;
        }
        for (key, value) in [
            ("authorization_url", &self.authorization_url),
            ("token_url", &self.token_url),
        ] {
            match value {
                None => out.push(format!("{at}.{key}: required for preset oauth2")),
                Some(url) => {
                    if let Err(e) = check_endpoint(url) {
                        out.push(format!("{at}.{key}: {e}"));
                    }
                }
            }
        }
        if self.userinfo_url.is_empty() {
            out.push(format!(
                "{at}.userinfo_url: required for preset oauth2 (one or more JSON profile URLs)"
            ));
        }
        for (i, url) in self.userinfo_url.iter().enumerate() {
            if let Err(e) = check_endpoint(url) {
                out.push(format!("{at}.userinfo_url[{i}]: {e}"));
            }
        }
        if let Some(sep) = &self.scope_separator
            && (sep.is_empty() || sep.len() > 3)
        {
            out.push(format!(
                "{at}.scope_separator: {sep:?} must be 1 to 3 characters"
            ));
        }
        match &self.mapping {
            None => out.push(format!(
                "{at}.mapping: required for preset oauth2 (at least mapping.subject)"
            )),
            Some(m) => out.extend(m.problems(&format!("{at}.mapping"))),
        }
        out
    }

    /// Braid's own parameters (`state`, `redirect_uri`, …) are never set from configuration
    /// nor forwarded, and a forwarded one never doubles a fixed one.
    fn authorization_param_problems(&self, at: &str) -> Vec<String> {
        let ours = |k: &str| AUTHORIZATION_PARAMS.contains(&k) || k.is_empty();
        let mut out: Vec<String> = self
            .authorization_params
            .keys()
            .filter(|k| ours(k))
            .map(|k| format!("{at}.authorization_params.{k}: Braid sets this parameter itself"))
            .collect();
        for (i, name) in self.forward_params.iter().enumerate() {
            if ours(name) {
                out.push(format!(
                    "{at}.forward_params[{i}]: {name:?} is Braid's own parameter, never forwarded"
                ));
            } else if self.authorization_params.contains_key(name) {
                out.push(format!(
                    "{at}.forward_params[{i}]: {name:?} is already fixed in authorization_params"
                ));
            }
        }
        out
    }

    /// `team_id`, `key_id` and `private_key_file` go together, on Apple only, instead of a
    /// configured client secret.
    fn signing_key_problems(&self, at: &str, has_secret: bool) -> Vec<String> {
        let mut out = Vec::new();
        if self.preset != Preset::Apple {
            out.push(format!(
                "{at}: team_id, key_id and private_key_file are for the apple preset only"
            ));
            return out;
        }
        let missing: Vec<&str> = [
            ("team_id", self.team_id.as_deref().is_none_or(str::is_empty)),
            ("key_id", self.key_id.as_deref().is_none_or(str::is_empty)),
            ("private_key_file", self.private_key_file.is_none()),
        ]
        .into_iter()
        .filter_map(|(name, missing)| missing.then_some(name))
        .collect();
        if !missing.is_empty() {
            out.push(format!(
                "{at}: set {} too (Apple's client secret is signed with that key)",
                missing.join(", ")
            ));
        }
        if has_secret || self.client_secret_file.is_some() {
            out.push(format!(
                "{at}: set client_secret or the signing key (team_id, key_id, private_key_file), not both"
            ));
        }
        out
    }
}

/// Endpoints follow the issuer rules and may carry a query (`?fields=id,name`).
fn check_endpoint(url: &str) -> Result<url::Url, String> {
    let parsed = url::Url::parse(url).map_err(|e| format!("bad URL {url:?}: {e}"))?;
    let mut bare = parsed.clone();
    bare.set_query(None);
    if parsed.fragment().is_some() {
        return Err(format!("{url:?} must not have a fragment"));
    }
    check_issuer(bare.as_str())?;
    Ok(parsed)
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

    fn apple() -> ProviderSettings {
        let mut p = ProviderSettings::new(Preset::Apple, "com.example.web");
        p.team_id = Some("TEAM123456".into());
        p.key_id = Some("KEY1234567".into());
        p.private_key_file = Some("/run/secrets/apple.p8".into());
        p
    }

    #[test]
    fn apple_may_sign_its_client_secret_instead_of_configuring_one() {
        assert_eq!(apple().problems("apple"), Vec::<String>::new());
        let mut p = apple();
        p.key_id = None;
        let problems = p.problems("apple");
        assert_eq!(problems.len(), 1, "{problems:#?}");
        assert!(problems[0].contains("key_id"));
        let mut p = apple();
        p.client_secret = Some(Secret::new("premade"));
        assert!(p.problems("apple")[0].contains("not both"));
        let mut p = ProviderSettings::new(Preset::Apple, "com.example.web");
        assert!(p.problems("apple")[0].contains("missing secret"));
        p.client_secret = Some(Secret::new("premade.jwt"));
        assert_eq!(p.problems("apple"), Vec::<String>::new());
    }

    #[test]
    fn signing_key_settings_belong_to_apple_only() {
        let mut p = oidc();
        p.team_id = Some("TEAM".into());
        assert!(p.problems("corp")[0].contains("apple preset only"));
    }

    #[test]
    fn the_test_base_url_is_not_read_from_configuration() {
        let p: ProviderSettings =
            serde_json::from_str(r#"{"preset":"github","client_id":"x","client_secret":"s"}"#)
                .unwrap();
        assert_eq!(p.upstream_base_url, None);
        let dumped = serde_json::to_value(&p).unwrap();
        assert!(dumped.get("upstream_base_url").is_none());
    }

    #[test]
    fn base_url_is_a_configuration_setting_unlike_the_test_seam() {
        let p: ProviderSettings = serde_json::from_str(
            r#"{"preset":"github","client_id":"x","client_secret":"s","base_url":"https://github.example.com"}"#,
        )
        .unwrap();
        assert_eq!(p.base_url.as_deref(), Some("https://github.example.com"));
        assert_eq!(p.upstream_base_url, None);
        assert_eq!(p.problems("ghe"), Vec::<String>::new());
    }

    #[test]
    fn a21_braids_own_parameters_are_never_fixed_nor_forwarded() {
        let mut p = oidc();
        p.authorization_params = BTreeMap::from([
            ("access_type".to_owned(), "offline".to_owned()),
            ("state".to_owned(), "x".to_owned()),
        ]);
        p.forward_params = vec![
            "login_hint".into(),
            "redirect_uri".into(),
            "access_type".into(),
        ];
        assert_eq!(
            p.problems("corp"),
            [
                "federated_login.providers.corp.authorization_params.state: Braid sets this parameter itself",
                "federated_login.providers.corp.forward_params[1]: \"redirect_uri\" is Braid's own parameter, never forwarded",
                "federated_login.providers.corp.forward_params[2]: \"access_type\" is already fixed in authorization_params",
            ]
        );
    }

    #[test]
    fn oauth2_settings_belong_to_the_oauth2_preset_and_it_needs_them() {
        let mut p = oidc();
        p.token_url = Some("https://idp.example/token".into());
        assert_eq!(
            p.problems("corp"),
            ["federated_login.providers.corp.token_url: only the oauth2 preset reads this"]
        );
        let mut g = ProviderSettings::new(Preset::Oauth2, "c");
        g.client_secret = Some(Secret::new("s"));
        g.authorization_url = Some("http://acme.example/authorize".into());
        let problems = g.problems("acme");
        for key in ["authorization_url", "token_url", "userinfo_url", "mapping"] {
            assert!(
                problems
                    .iter()
                    .any(|l| l.starts_with(&format!("federated_login.providers.acme.{key}: "))),
                "{key}: {problems:#?}"
            );
        }
        g.token_endpoint_auth_method = Some(TokenAuthMethod::None);
        assert!(
            g.problems("acme")
                .iter()
                .any(|l| l.contains("sends no secret"))
        );
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
