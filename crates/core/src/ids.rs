use crate::DomainError;
use serde::{Deserialize, Serialize};
use std::fmt;

/// A fresh, time-ordered, globally unique id (UUIDv7, hyphenated lower case).
pub fn new_id() -> String {
    uuid::Uuid::now_v7().hyphenated().to_string()
}

/// The stable local identifier of a user; the `sub` of Braid's own tokens.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct UserId(String);

impl UserId {
    pub fn generate() -> Self {
        Self(new_id())
    }

    pub fn parse(s: &str) -> Result<Self, DomainError> {
        let id = uuid::Uuid::try_parse(s).map_err(|_| DomainError::InvalidId("not a UUID"))?;
        Ok(Self(id.hyphenated().to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for UserId {
    type Error = DomainError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(&s)
    }
}

impl From<UserId> for String {
    fn from(id: UserId) -> Self {
        id.0
    }
}

impl fmt::Display for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_ids_are_unique_and_ordered() {
        let a = UserId::generate();
        let b = UserId::generate();
        assert_ne!(a, b);
        assert!(a.as_str() < b.as_str());
    }

    #[test]
    fn parse_normalises_case_and_rejects_garbage() {
        let id = UserId::parse("0190C5A2-7E4B-7CC0-8C3E-1234567890AB").unwrap();
        assert_eq!(id.as_str(), "0190c5a2-7e4b-7cc0-8c3e-1234567890ab");
        assert!(UserId::parse("admin").is_err());
        assert!(UserId::parse("").is_err());
    }
}
