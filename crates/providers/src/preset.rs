use serde::{Deserialize, Serialize};

/// The kinds of upstream provider Braid knows. Each preset fixes endpoints and trust rules so
/// an operator sets only a client id and secret; `oidc` takes an issuer URL for anything else.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
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
}

impl Preset {
    pub const ALL: [Preset; 9] = [
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

    pub fn name(self) -> &'static str {
        match self {
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
        matches!(self, Preset::Oidc)
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
        for p in Preset::ALL {
            let json = format!("\"{}\"", p.name());
            assert_eq!(serde_json::from_str::<Preset>(&json).unwrap(), p);
        }
        assert!(serde_json::from_str::<Preset>("\"myspace\"").is_err());
    }

    #[test]
    fn c14_providers_with_their_own_verified_semantics_are_untrusted_by_default() {
        assert!(!Preset::Oidc.trusts_email_by_default());
        assert!(!Preset::Gitlab.trusts_email_by_default());
        assert!(!Preset::Facebook.trusts_email_by_default());
        assert!(!Preset::Oauth2.trusts_email_by_default());
    }
}
