use crate::catalogue::{self, Entry};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The kinds of upstream provider Braid knows. Each preset fixes endpoints and trust rules so
/// an operator sets only a client id and secret; `oidc` takes an issuer URL for anything else,
/// `oauth2` endpoints and a claim mapping, and the catalogue's entries are presets as data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Preset {
    Google,
    Microsoft,
    Apple,
    Github,
    Gitlab,
    Discord,
    Facebook,
    Oidc,
    /// Any OAuth 2.0 provider: endpoints and claim mapping come from the settings.
    Oauth2,
    /// An entry of the catalogue (its index there).
    Catalogued(u16),
}

impl Serialize for Preset {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

impl<'de> Deserialize<'de> for Preset {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let name = String::deserialize(d)?;
        Preset::from_name(&name)
            .ok_or_else(|| serde::de::Error::unknown_variant(&name, catalogue::all_names()))
    }
}

impl Preset {
    /// The presets in code (the catalogue's are in [`catalogue::entries`]).
    pub const BUILT_IN: [Preset; 9] = [
        Preset::Google,
        Preset::Microsoft,
        Preset::Apple,
        Preset::Github,
        Preset::Gitlab,
        Preset::Discord,
        Preset::Facebook,
        Preset::Oidc,
        Preset::Oauth2,
    ];

    /// A built-in preset or a catalogue entry by its configuration name.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::BUILT_IN
            .into_iter()
            .find(|p| p.name() == name)
            .or_else(|| catalogue::find(name).map(Preset::Catalogued))
    }

    /// The catalogue entry behind this preset, if it is one.
    pub fn entry(self) -> Option<&'static Entry> {
        match self {
            Preset::Catalogued(i) => catalogue::entry(i),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Preset::Catalogued(i) => catalogue::entry(i).map_or("", |e| e.name.as_str()),
            Preset::Google => "google",
            Preset::Microsoft => "microsoft",
            Preset::Apple => "apple",
            Preset::Github => "github",
            Preset::Gitlab => "gitlab",
            Preset::Discord => "discord",
            Preset::Facebook => "facebook",
            Preset::Oidc => "oidc",
            Preset::Oauth2 => "oauth2",
        }
    }

    /// Presets whose issuer is fixed; `oidc` needs one configured, GitLab takes an optional
    /// base URL for self-managed instances, Microsoft a tenant.
    pub fn needs_issuer(self) -> bool {
        match self {
            Preset::Oidc => true,
            Preset::Catalogued(_) => self.entry().is_some_and(|e| {
                e.protocol == catalogue::EntryProtocol::Oidc && e.issuer.is_none()
            }),
            _ => false,
        }
    }

    /// Whether, by default, the provider's email claims may count as verified at all (the
    /// per-claim rules of the preset still apply). Operators override with `trust_email`.
    pub fn trusts_email_by_default(self) -> bool {
        match self {
            // Google: only gmail.com or with `hd`; Microsoft: only with `xms_edov`; Apple,
            // GitHub (`/user/emails` verified entries) and Discord (`verified`) flag addresses.
            Preset::Google
            | Preset::Microsoft
            | Preset::Apple
            | Preset::Github
            | Preset::Discord => true,
            // Self-managed GitLab, Facebook and arbitrary OIDC providers have their own idea of
            // "verified": the operator must opt in.
            Preset::Gitlab | Preset::Facebook | Preset::Oidc | Preset::Oauth2 => false,
            Preset::Catalogued(_) => self.entry().is_some_and(|e| e.trust_email),
        }
    }

    /// Apple posts the callback (`response_mode=form_post`).
    pub fn uses_form_post(self) -> bool {
        matches!(self, Preset::Apple)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_through_serde() {
        for p in Preset::BUILT_IN {
            let json = format!("\"{}\"", p.name());
            assert_eq!(serde_json::from_str::<Preset>(&json).unwrap(), p);
        }
        assert!(serde_json::from_str::<Preset>("\"myspace\"").is_err());
        let okta = serde_json::from_str::<Preset>("\"okta\"").unwrap();
        assert!(matches!(okta, Preset::Catalogued(_)));
        assert_eq!(serde_json::to_string(&okta).unwrap(), "\"okta\"");
    }

    #[test]
    fn c14_providers_with_their_own_verified_semantics_are_untrusted_by_default() {
        assert!(!Preset::Oidc.trusts_email_by_default());
        assert!(!Preset::Gitlab.trusts_email_by_default());
        assert!(!Preset::Facebook.trusts_email_by_default());
        assert!(!Preset::Oauth2.trusts_email_by_default());
    }
}
