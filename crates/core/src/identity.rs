//! What an upstream provider told us about a person, after its trust rules were applied.

use crate::{DomainError, Email, Phone};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::fmt;

/// The operator's name for a configured provider (`google`, `github`, `corp-okta`): lowercase
/// ASCII letters, digits, `-` and `_`, starting with a letter, at most 32 characters.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ProviderId(String);

impl ProviderId {
    pub fn parse(s: &str) -> Result<Self, DomainError> {
        let ok_char =
            |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_';
        match s.as_bytes() {
            [] => Err(DomainError::InvalidProviderId("empty")),
            b if b.len() > 32 => Err(DomainError::InvalidProviderId("longer than 32 characters")),
            [first, ..] if !first.is_ascii_lowercase() => Err(DomainError::InvalidProviderId(
                "must start with a lowercase letter",
            )),
            b if !b.iter().all(|&c| ok_char(c)) => Err(DomainError::InvalidProviderId(
                "only lowercase letters, digits, - and _ are allowed",
            )),
            _ => Ok(Self(s.to_owned())),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for ProviderId {
    type Error = DomainError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(&s)
    }
}

impl From<ProviderId> for String {
    fn from(p: ProviderId) -> Self {
        p.0
    }
}

impl fmt::Display for ProviderId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The provider's stable identifier for the person (OIDC `sub`, GitHub's numeric `id`).
/// OIDC Core §2: at most 255 ASCII characters, case-sensitive. Control characters, spaces and
/// non-ASCII are refused so that no two distinct subjects can look alike.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Subject(String);

impl Subject {
    pub fn parse(s: &str) -> Result<Self, DomainError> {
        if s.is_empty() {
            return Err(DomainError::InvalidSubject("empty"));
        }
        if s.len() > 255 {
            return Err(DomainError::InvalidSubject("longer than 255 characters"));
        }
        if !s.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(DomainError::InvalidSubject(
                "only printable ASCII without spaces is allowed",
            ));
        }
        Ok(Self(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Subject {
    type Error = DomainError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(&s)
    }
}

impl From<Subject> for String {
    fn from(s: Subject) -> Self {
        s.0
    }
}

impl fmt::Display for Subject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An email the provider asserted, with `verified` already decided by the provider's trust
/// rules: true only if the provider said so in the documented form AND is trusted for email.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerifiableEmail {
    pub email: Email,
    pub verified: bool,
    /// What the provider itself asserted (`email_verified` in its documented form), whether
    /// or not Braid trusts it: shown to apps (`/auth/me`), never used to link anyone.
    #[serde(default)]
    pub provider_verified: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerifiablePhone {
    pub phone: Phone,
    pub verified: bool,
}

/// Display-only attributes. Never used to identify or match anyone.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Profile {
    pub name: Option<String>,
    pub preferred_username: Option<String>,
    pub picture: Option<String>,
    /// Further claims the provider sent (`groups`, `locale`, ...), for the apps that ask for
    /// them (`[clients.<id>] claims`).
    #[serde(default, skip_serializing_if = "ExtraClaims::is_empty")]
    pub extra: ExtraClaims,
}

impl Profile {
    const MAX_FIELD: usize = 1024;

    /// Keeps display fields within bounds: control characters removed, at most 1 KiB each.
    #[must_use]
    pub fn sanitized(self) -> Self {
        let clean = |v: Option<String>| {
            v.map(|s| {
                let mut out: String = s.chars().filter(|c| !c.is_control()).collect();
                if out.len() > Self::MAX_FIELD {
                    let mut cut = Self::MAX_FIELD;
                    while !out.is_char_boundary(cut) {
                        cut -= 1;
                    }
                    out.truncate(cut);
                }
                out
            })
            .filter(|s| !s.trim().is_empty())
        };
        Self {
            name: clean(self.name),
            preferred_username: clean(self.preferred_username),
            picture: clean(self.picture),
            extra: self.extra,
        }
    }

    /// The claims an app listed (`[clients.<id>] claims`) that this sign-in has: `name`,
    /// `preferred_username` and `picture` from the cleaned profile, the others from
    /// [`ExtraClaims`]. At most [`ExtraClaims::MAX_APP_BYTES`] of JSON: what would go beyond is
    /// left out.
    pub fn app_claims(&self, names: &[String]) -> Map<String, Value> {
        let mut out = Map::new();
        let mut size = 0;
        for name in names {
            let value = match name.as_str() {
                "name" => self.name.clone().map(Value::String),
                "preferred_username" => self.preferred_username.clone().map(Value::String),
                "picture" => self.picture.clone().map(Value::String),
                other => self.extra.0.get(other).cloned(),
            };
            let Some(value) = value else { continue };
            let cost = name.len() + value.to_string().len();
            if size + cost <= ExtraClaims::MAX_APP_BYTES {
                size += cost;
                out.insert(name.clone(), value);
            }
        }
        out
    }
}

/// Claims that never reach an app through `[clients.<id>] claims`: addresses reach apps only
/// through the verified-address fields, identifiers and token plumbing are Braid's own.
pub const NOT_APP_CLAIMS: &[&str] = &[
    "email",
    "email_verified",
    "emails",
    "phone_number",
    "phone_number_verified",
    "phones",
    "address",
    "sub",
    "iss",
    "aud",
    "exp",
    "iat",
    "nbf",
    "jti",
    "nonce",
    "azp",
    "at_hash",
    "c_hash",
    "s_hash",
    "auth_time",
    "acr",
    "amr",
    "sid",
    "cnf",
    "typ",
    "scope",
    "client_id",
    "idp",
    "external_id",
    "id_token",
    "access_token",
    "refresh_token",
];

/// Why `name` cannot be listed in `[clients.<id>] claims`, if it cannot.
pub fn app_claim_problem(name: &str) -> Option<String> {
    if NOT_APP_CLAIMS.contains(&name) {
        return Some(format!(
            "{name:?} cannot be passed to apps (addresses reach apps only as verified emails and phones in /auth/me; identifiers and token claims are Braid's own)"
        ));
    }
    if !ExtraClaims::is_good_name(name) {
        return Some(format!(
            "{name:?} is not a claim name (1 to {} printable ASCII characters)",
            ExtraClaims::MAX_NAME
        ));
    }
    None
}

/// The provider's further claims as of a sign-in. Bounded: at most [`Self::MAX_KEYS`] claims,
/// each a string, number, boolean or array of strings of at most [`Self::MAX_VALUE`] bytes of
/// JSON; never an address, an identifier or token plumbing ([`NOT_APP_CLAIMS`]).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ExtraClaims(BTreeMap<String, Value>);

impl ExtraClaims {
    pub const MAX_KEYS: usize = 32;
    pub const MAX_VALUE: usize = 1024;
    pub const MAX_NAME: usize = 64;
    /// What one app gets at most, so that an access token stays well under its size limit.
    pub const MAX_APP_BYTES: usize = 4096;

    /// Keeps what fits from `sources`, the first source that has a claim winning.
    pub fn collect<'a>(sources: impl IntoIterator<Item = &'a Map<String, Value>>) -> Self {
        let mut kept = BTreeMap::new();
        for source in sources {
            for (name, value) in source {
                if kept.len() == Self::MAX_KEYS {
                    return Self(kept);
                }
                if kept.contains_key(name)
                    || NOT_APP_CLAIMS.contains(&name.as_str())
                    || matches!(name.as_str(), "name" | "preferred_username" | "picture")
                    || !Self::is_good_name(name)
                    || !Self::is_good_value(value)
                {
                    continue;
                }
                kept.insert(name.clone(), value.clone());
            }
        }
        Self(kept)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn get(&self, name: &str) -> Option<&Value> {
        self.0.get(name)
    }

    fn is_good_name(name: &str) -> bool {
        !name.is_empty()
            && name.len() <= Self::MAX_NAME
            && name.bytes().all(|b| b.is_ascii_graphic())
    }

    fn is_good_value(value: &Value) -> bool {
        let clean = |s: &str| !s.chars().any(char::is_control);
        let shape = match value {
            Value::Bool(_) | Value::Number(_) => true,
            Value::String(s) => clean(s),
            Value::Array(items) => items.iter().all(|i| i.as_str().is_some_and(clean)),
            Value::Null | Value::Object(_) => false,
        };
        shape && value.to_string().len() <= Self::MAX_VALUE
    }
}

/// The result of a successful upstream login. Its key is (provider, subject), never an email,
/// a username or a UPN.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FederatedIdentity {
    pub provider: ProviderId,
    pub issuer: String,
    pub subject: Subject,
    pub emails: Vec<VerifiableEmail>,
    pub phones: Vec<VerifiablePhone>,
    pub profile: Profile,
}

impl FederatedIdentity {
    pub fn verified_emails(&self) -> impl Iterator<Item = &Email> {
        self.emails.iter().filter(|e| e.verified).map(|e| &e.email)
    }

    pub fn verified_phones(&self) -> impl Iterator<Item = &Phone> {
        self.phones.iter().filter(|p| p.verified).map(|p| &p.phone)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn provider_ids_are_lowercase_slugs() {
        assert!(ProviderId::parse("google").is_ok());
        assert!(ProviderId::parse("corp-okta_2").is_ok());
        for bad in [
            "",
            "GOOGLE",
            "Google",
            "..%2Fadmin",
            "../admin",
            "1google",
            "a b",
            &"a".repeat(33),
        ] {
            assert!(ProviderId::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn b14_bad_subjects_are_rejected() {
        assert!(Subject::parse("").is_err());
        assert!(Subject::parse(&"a".repeat(256)).is_err());
        assert!(Subject::parse("abc\u{0000}def").is_err());
        assert!(Subject::parse("abc def").is_err());
        assert!(Subject::parse("ab\u{202e}c").is_err());
        assert!(Subject::parse(&"a".repeat(255)).is_ok());
        assert!(Subject::parse("001234.abcdef0123456789.1234").is_ok());
    }

    #[test]
    fn subjects_are_case_sensitive() {
        assert_ne!(
            Subject::parse("AbC").unwrap(),
            Subject::parse("abc").unwrap()
        );
    }

    #[test]
    fn h09_profile_fields_are_bounded_and_cleaned() {
        let p = Profile {
            name: Some(format!("{}\u{0000}", "é".repeat(2000))),
            preferred_username: Some("  ".into()),
            picture: None,
            extra: ExtraClaims::default(),
        }
        .sanitized();
        let name = p.name.unwrap();
        assert!(name.len() <= 1024 && !name.contains('\u{0000}'));
        assert_eq!(p.preferred_username, None);
    }

    #[test]
    fn extra_claims_are_bounded_and_never_addresses() {
        let mut id_token = serde_json::Map::new();
        id_token.insert("groups".into(), serde_json::json!(["admins", "staff"]));
        id_token.insert("email".into(), serde_json::json!("a@example.com"));
        id_token.insert("sub".into(), serde_json::json!("1"));
        id_token.insert("nested".into(), serde_json::json!({"a": 1}));
        id_token.insert("mixed".into(), serde_json::json!(["a", 1]));
        id_token.insert("big".into(), serde_json::json!("x".repeat(2000)));
        id_token.insert("ctl".into(), serde_json::json!("a\u{0007}"));
        let mut userinfo = serde_json::Map::new();
        userinfo.insert("groups".into(), serde_json::json!(["other"]));
        userinfo.insert("locale".into(), serde_json::json!("fr-FR"));
        for i in 0..100 {
            userinfo.insert(format!("k{i:03}"), serde_json::json!(i));
        }
        let extra = ExtraClaims::collect([&id_token, &userinfo]);
        assert_eq!(
            extra.get("groups"),
            Some(&serde_json::json!(["admins", "staff"]))
        );
        for dropped in ["email", "sub", "nested", "mixed", "big", "ctl"] {
            assert_eq!(extra.get(dropped), None, "{dropped}");
        }
        assert_eq!(extra.0.len(), ExtraClaims::MAX_KEYS);
    }

    #[test]
    fn apps_get_only_the_claims_they_list() {
        let mut source = serde_json::Map::new();
        source.insert("groups".into(), serde_json::json!(["admins"]));
        source.insert("locale".into(), serde_json::json!("fr-FR"));
        let profile = Profile {
            name: Some("Ada".into()),
            picture: Some("https://example.com/a.png".into()),
            extra: ExtraClaims::collect([&source]),
            ..Profile::default()
        };
        let claims = profile.app_claims(&["groups".into(), "name".into(), "missing".into()]);
        assert_eq!(
            serde_json::Value::Object(claims),
            serde_json::json!({"groups": ["admins"], "name": "Ada"})
        );
        assert!(profile.app_claims(&[]).is_empty());
    }

    #[test]
    fn addresses_and_identifiers_cannot_be_listed() {
        for bad in [
            "email",
            "email_verified",
            "phone_number",
            "sub",
            "iss",
            "aud",
            "",
            "a b",
        ] {
            assert!(app_claim_problem(bad).is_some(), "{bad:?}");
        }
        for good in ["groups", "picture", "locale", "name"] {
            assert_eq!(app_claim_problem(good), None);
        }
    }

    #[test]
    fn only_verified_claims_are_listed_as_verified() {
        let id = FederatedIdentity {
            provider: ProviderId::parse("github").unwrap(),
            issuer: "https://github.com".into(),
            subject: Subject::parse("42").unwrap(),
            emails: vec![
                VerifiableEmail {
                    email: Email::parse("a@example.com").unwrap(),
                    verified: false,
                    provider_verified: true,
                },
                VerifiableEmail {
                    email: Email::parse("b@example.com").unwrap(),
                    verified: true,
                    provider_verified: true,
                },
            ],
            phones: vec![],
            profile: Profile::default(),
        };
        let verified: Vec<_> = id.verified_emails().map(Email::as_str).collect();
        assert_eq!(verified, ["b@example.com"]);
    }
}

/// A federated identity as stored: which user it signs in, and what the provider said last.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkedIdentity {
    pub id: String,
    pub user_id: crate::UserId,
    pub provider: ProviderId,
    pub issuer: String,
    pub subject: Subject,
    /// The claims as of the last sign-in, for display and audit; never for matching.
    pub snapshot: FederatedIdentity,
    pub created_at: crate::Timestamp,
    pub last_login_at: crate::Timestamp,
}
