//! The catalogue of providers as data (`catalogue.toml`, shipped in the binary): one entry per
//! provider with its documented endpoints, default scopes, claim mapping and trust default.
//! `preset = "<entry>"` picks one; whatever the operator sets for that provider overrides the
//! entry ([`ProviderSettings::resolved`]).

use crate::profile_mapping::MappingSettings;
use crate::settings::TokenAuthMethod;
use crate::{Preset, ProviderSettings};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::sync::OnceLock;

const CATALOGUE: &str = include_str!("catalogue.toml");

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EntryProtocol {
    Oidc,
    Oauth2,
}

/// One provider of the catalogue.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    #[serde(skip)]
    pub name: String,
    pub display_name: String,
    /// Where the provider documents its endpoints.
    pub docs: String,
    pub protocol: EntryProtocol,
    /// OpenID Connect: the fixed issuer; without one the operator sets `issuer`.
    #[serde(default)]
    pub issuer: Option<String>,
    /// What the operator's `issuer` looks like, for a provider with one per tenant.
    #[serde(default)]
    pub issuer_hint: Option<String>,
    #[serde(default)]
    pub authorization_url: Option<String>,
    #[serde(default)]
    pub token_url: Option<String>,
    #[serde(default)]
    pub userinfo_url: Vec<String>,
    #[serde(default)]
    pub scopes: Vec<String>,
    #[serde(default)]
    pub scope_separator: Option<String>,
    #[serde(default)]
    pub token_endpoint_auth_method: Option<TokenAuthMethod>,
    #[serde(default)]
    pub authorization_params: BTreeMap<String, String>,
    #[serde(default)]
    pub mapping: Option<MappingSettings>,
    /// Whether the provider's addresses count as verified unless the operator says otherwise.
    #[serde(default)]
    pub trust_email: bool,
}

fn parsed() -> &'static Result<Vec<Entry>, String> {
    static ENTRIES: OnceLock<Result<Vec<Entry>, String>> = OnceLock::new();
    ENTRIES.get_or_init(|| parse(CATALOGUE))
}

/// Each entry is read on its own so that a malformed one is named with its key.
pub(crate) fn parse(text: &str) -> Result<Vec<Entry>, String> {
    let tables: BTreeMap<String, toml::Table> =
        toml::from_str(text).map_err(|e| format!("provider catalogue: {e}"))?;
    tables
        .into_iter()
        .map(|(name, table)| {
            let mut entry: Entry = toml::Value::Table(table)
                .try_into()
                .map_err(|e| format!("provider catalogue, entry {name}: {e}"))?;
            entry.name = name;
            Ok(entry)
        })
        .collect()
}

/// Every entry, by name. Empty only if the shipped catalogue does not parse, which the
/// catalogue test rules out.
pub fn entries() -> &'static [Entry] {
    parsed().as_deref().unwrap_or_default()
}

pub(crate) fn entry(index: u16) -> Option<&'static Entry> {
    entries().get(usize::from(index))
}

pub(crate) fn find(name: &str) -> Option<u16> {
    entries()
        .iter()
        .position(|e| e.name == name)
        .and_then(|i| u16::try_from(i).ok())
}

/// The names `preset` accepts: the built-in presets, then the catalogue's.
pub(crate) fn all_names() -> &'static [&'static str] {
    static NAMES: OnceLock<Vec<&'static str>> = OnceLock::new();
    NAMES.get_or_init(|| {
        Preset::BUILT_IN
            .iter()
            .map(|p| p.name())
            .chain(entries().iter().map(|e| e.name.as_str()))
            .collect()
    })
}

impl Entry {
    /// The operator's settings over this entry: what they set wins; scopes add to the entry's;
    /// `authorization_params` merge.
    pub(crate) fn under(&self, settings: &ProviderSettings) -> ProviderSettings {
        let mut out = settings.clone();
        out.preset = match self.protocol {
            EntryProtocol::Oidc => Preset::Oidc,
            EntryProtocol::Oauth2 => Preset::Oauth2,
        };
        out.display_name = Some(
            settings
                .display_name
                .clone()
                .unwrap_or_else(|| self.display_name.clone()),
        );
        out.issuer = settings.issuer.clone().or_else(|| self.issuer.clone());
        out.trust_email = Some(settings.trust_email.unwrap_or(self.trust_email));
        // The entry's scopes replace the preset's defaults; the operator's add to them.
        if !self.scopes.is_empty() || self.protocol == EntryProtocol::Oauth2 {
            out.base_scopes = Some(self.scopes.clone());
        }
        out.authorization_params = merged_params(&self.authorization_params, settings);
        if self.protocol == EntryProtocol::Oidc {
            return out;
        }
        let or = |mine: &Option<String>, theirs: &Option<String>| mine.clone().or(theirs.clone());
        out.authorization_url = or(&settings.authorization_url, &self.authorization_url);
        out.token_url = or(&settings.token_url, &self.token_url);
        if settings.userinfo_url.is_empty() {
            out.userinfo_url = self.userinfo_url.clone();
        }
        out.scope_separator = or(&settings.scope_separator, &self.scope_separator);
        out.token_endpoint_auth_method = settings
            .token_endpoint_auth_method
            .or(self.token_endpoint_auth_method);
        out.mapping = settings.mapping.clone().or_else(|| self.mapping.clone());
        out
    }
}

fn merged_params(
    base: &BTreeMap<String, String>,
    settings: &ProviderSettings,
) -> BTreeMap<String, String> {
    let mut out = base.clone();
    out.extend(settings.authorization_params.clone());
    out
}

/// What `braid providers list` prints: one line per preset, built-in first.
pub fn listing() -> String {
    let mut rows: Vec<[String; 4]> = vec![[
        "PRESET".into(),
        "PROTOCOL".into(),
        "TRUSTS EMAIL".into(),
        "ENDPOINT / ISSUER".into(),
    ]];
    for p in Preset::BUILT_IN {
        let (protocol, at) = match p {
            Preset::Google => ("oidc", "https://accounts.google.com (gmail.com or hd only)"),
            Preset::Microsoft => (
                "oidc",
                "https://login.microsoftonline.com/{tenant}/v2.0 (xms_edov)",
            ),
            Preset::Apple => ("oidc", "https://appleid.apple.com"),
            Preset::Github => (
                "oauth2",
                "https://github.com or base_url (/user/emails verified)",
            ),
            Preset::Gitlab => ("oauth2", "https://gitlab.com or base_url"),
            Preset::Discord => ("oauth2", "https://discord.com"),
            Preset::Facebook => ("oauth2", "https://www.facebook.com"),
            Preset::Oidc => ("oidc", "your issuer (discovery)"),
            Preset::Oauth2 | Preset::Catalogued(_) => ("oauth2", "your endpoints and mapping"),
        };
        rows.push([
            p.name().into(),
            protocol.into(),
            yes_no(p.trusts_email_by_default()).into(),
            at.into(),
        ]);
    }
    for e in entries() {
        let (protocol, at) = match e.protocol {
            EntryProtocol::Oidc => (
                "oidc",
                e.issuer
                    .clone()
                    .or_else(|| e.issuer_hint.as_ref().map(|h| format!("issuer like {h}")))
                    .unwrap_or_default(),
            ),
            EntryProtocol::Oauth2 => ("oauth2", e.authorization_url.clone().unwrap_or_default()),
        };
        rows.push([
            e.name.clone(),
            protocol.into(),
            yes_no(e.trust_email).into(),
            at,
        ]);
    }
    let width = |i: usize| rows.iter().map(|r| r[i].len()).max().unwrap_or(0);
    let widths = [width(0), width(1), width(2)];
    rows.iter()
        .map(|r| {
            format!(
                "{:w0$}  {:w1$}  {:w2$}  {}\n",
                r[0],
                r[1],
                r[2],
                r[3],
                w0 = widths[0],
                w1 = widths[1],
                w2 = widths[2]
            )
        })
        .collect()
}

fn yes_no(b: bool) -> &'static str {
    if b { "yes" } else { "no" }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::preset_endpoints::{Protocol, protocol_for};
    use braid_core::{ProviderId, Secret};

    fn settings_for(entry: &Entry) -> ProviderSettings {
        let mut s = ProviderSettings::new(Preset::from_name(&entry.name).unwrap(), "client-1");
        s.client_secret = Some(Secret::new("secret-1"));
        if entry.issuer.is_none() && entry.protocol == EntryProtocol::Oidc {
            s.issuer = entry.issuer_hint.clone();
        }
        s
    }

    #[test]
    fn the_shipped_catalogue_parses_and_every_entry_is_well_formed() {
        let parsed = parse(CATALOGUE).unwrap();
        assert!(parsed.len() >= 25, "{} entries", parsed.len());
        assert_eq!(entries().len(), parsed.len());
        for entry in entries() {
            let name = &entry.name;
            assert!(ProviderId::parse(name).is_ok(), "{name}");
            assert!(
                !Preset::BUILT_IN.iter().any(|p| p.name() == name.as_str()),
                "{name} repeats a built-in preset"
            );
            assert!(entry.docs.starts_with("https://"), "{name}");
            assert!(!entry.display_name.is_empty(), "{name}");
            match entry.protocol {
                EntryProtocol::Oidc => {
                    assert!(
                        entry.issuer.is_some() != entry.issuer_hint.is_some(),
                        "{name}"
                    );
                    assert!(
                        entry.authorization_url.is_none() && entry.mapping.is_none(),
                        "{name}"
                    );
                }
                EntryProtocol::Oauth2 => assert!(entry.issuer_hint.is_none(), "{name}"),
            }
            let settings = settings_for(entry);
            assert_eq!(settings.problems(name), Vec::<String>::new(), "{name}");
            assert!(protocol_for(&settings).is_ok(), "{name}");
        }
    }

    #[test]
    fn the_listing_has_a_line_per_preset() {
        let listing = listing();
        let lines: Vec<&str> = listing.lines().collect();
        assert_eq!(lines.len(), 1 + Preset::BUILT_IN.len() + entries().len());
        assert!(lines[0].starts_with("PRESET"));
        assert!(
            lines.iter().any(|l| l.starts_with("spotify ")
                && l.contains("https://accounts.spotify.com/authorize"))
        );
        assert!(
            lines
                .iter()
                .any(|l| l.starts_with("okta ") && l.contains("issuer like"))
        );
    }

    #[test]
    fn a_malformed_entry_names_the_entry_and_the_key() {
        let err = parse(
            "[acme]\ndisplay_name = \"Acme\"\ndocs = \"https://acme.example\"\nprotocol = \"oauth2\"\nauthorize_url = \"https://acme.example/a\"\n",
        )
        .unwrap_err();
        assert!(
            err.contains("entry acme") && err.contains("authorize_url"),
            "{err}"
        );
        let err = parse("[acme]\ndisplay_name = \"Acme\"\ndocs = \"d\"\nprotocol = \"saml\"\n")
            .unwrap_err();
        assert!(err.contains("entry acme") && err.contains("saml"), "{err}");
    }

    #[test]
    fn tenant_providers_ask_for_their_issuer_with_an_example() {
        let mut s = ProviderSettings::new(Preset::from_name("okta").unwrap(), "c");
        s.client_secret = Some(Secret::new("s"));
        assert_eq!(
            s.problems("okta"),
            [
                "federated_login.providers.okta.issuer: required for preset okta (like https://YOUR_DOMAIN.okta.com/oauth2/default)"
            ]
        );
        s.issuer = Some("https://corp.okta.com/oauth2/default".into());
        assert_eq!(s.problems("okta"), Vec::<String>::new());
        let Protocol::Oidc(spec) = protocol_for(&s).unwrap() else {
            panic!("okta is OpenID Connect")
        };
        assert_eq!(spec.issuer, "https://corp.okta.com/oauth2/default");
        assert_eq!(spec.scopes, ["openid", "email", "profile"]);
    }

    #[test]
    fn the_operators_settings_override_the_entry() {
        let mut s = ProviderSettings::new(Preset::from_name("spotify").unwrap(), "c");
        s.client_secret = Some(Secret::new("s"));
        s.scopes = vec!["playlist-read-private".into()];
        s.token_url = Some("https://accounts.example/token".into());
        s.trust_email = Some(true);
        s.authorization_params = BTreeMap::from([("show_dialog".to_owned(), "true".to_owned())]);
        let r = s.resolved();
        assert_eq!(r.preset, Preset::Oauth2);
        assert_eq!(r.display_name.as_deref(), Some("Spotify"));
        assert_eq!(
            r.token_url.as_deref(),
            Some("https://accounts.example/token")
        );
        assert_eq!(
            r.authorization_url.as_deref(),
            Some("https://accounts.spotify.com/authorize")
        );
        assert!(r.trust_email());
        let Protocol::OAuth2(spec) = protocol_for(&s).unwrap() else {
            panic!("spotify is plain OAuth 2.0")
        };
        assert_eq!(
            spec.scopes,
            [
                "user-read-email",
                "user-read-private",
                "playlist-read-private"
            ]
        );
        assert_eq!(
            spec.options.extra_params,
            [("show_dialog".to_owned(), "true".to_owned())]
        );
        let mut bad = s.clone();
        bad.mapping = Some(MappingSettings::default());
        assert_eq!(
            bad.problems("music"),
            [
                "federated_login.providers.music.mapping.subject: required: where the profile has the person's stable id"
            ]
        );
    }
}
