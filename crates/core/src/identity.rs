//! What an upstream provider told us about a person, after its trust rules were applied.

use crate::{DomainError, Email, Phone};
use serde::{Deserialize, Serialize};
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
        }
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
        }
        .sanitized();
        let name = p.name.unwrap();
        assert!(name.len() <= 1024 && !name.contains('\u{0000}'));
        assert_eq!(p.preferred_username, None);
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
