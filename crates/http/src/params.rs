//! Strict parameter parsing for browser and token endpoints: a parameter given twice, a value
//! that is not printable ASCII, or a value longer than its cap is an error before anything else
//! runs (SECURITY-CASES A14, G08, H02, H03).

use std::collections::HashMap;

pub const MAX_VALUE: usize = 2048;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParamError {
    #[error("parameter {0} is given more than once")]
    Duplicate(String),
    #[error("parameter {0} is too long")]
    TooLong(String),
    #[error("parameter {0} contains characters that are not allowed")]
    BadCharacters(String),
    #[error("too many parameters")]
    TooMany,
    #[error("the body is not a JSON object of strings")]
    NotJson,
}

/// A JSON object's members in order, duplicates kept (for [`Params::from_json`] to refuse).
struct JsonMembers(Vec<(String, String)>);

impl<'de> serde::Deserialize<'de> for JsonMembers {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Members;
        impl<'de> serde::de::Visitor<'de> for Members {
            type Value = JsonMembers;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an object of strings")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<JsonMembers, A::Error> {
                let mut out = Vec::new();
                while let Some(entry) = map.next_entry::<String, String>()? {
                    if out.len() > 32 {
                        return Err(serde::de::Error::custom("too many members"));
                    }
                    out.push(entry);
                }
                Ok(JsonMembers(out))
            }
        }
        d.deserialize_map(Members)
    }
}

#[derive(Debug, Default)]
pub struct Params(HashMap<String, String>);

impl Params {
    /// Parses `application/x-www-form-urlencoded` (a query string or a form body).
    pub fn parse(raw: &[u8]) -> Result<Self, ParamError> {
        Self::parse_with_text(raw, &[])
    }

    /// As [`Self::parse`], except that the values of the `text` keys are what a person typed
    /// (a password, an email address): any Unicode but control characters.
    pub fn parse_with_text(raw: &[u8], text: &[&str]) -> Result<Self, ParamError> {
        Self::from_pairs(
            form_urlencoded::parse(raw).map(|(k, v)| (k.into_owned(), v.into_owned())),
            text,
        )
    }

    /// A JSON object whose members are all strings, under the same rules as a form (a member
    /// named twice is refused, not "last one wins").
    pub fn from_json(raw: &[u8], text: &[&str]) -> Result<Self, ParamError> {
        let members = serde_json::from_slice::<JsonMembers>(raw)
            .map_err(|_| ParamError::NotJson)?
            .0;
        Self::from_pairs(members, text)
    }

    fn from_pairs(
        pairs: impl IntoIterator<Item = (String, String)>,
        text: &[&str],
    ) -> Result<Self, ParamError> {
        let mut map = HashMap::new();
        for (i, (key, v)) in pairs.into_iter().enumerate() {
            if i >= 32 {
                return Err(ParamError::TooMany);
            }
            if v.len() > MAX_VALUE {
                return Err(ParamError::TooLong(printable(&key)));
            }
            let value_ok = if text.contains(&key.as_str()) {
                !v.chars().any(char::is_control)
            } else {
                // RFC 6749 VSCHAR (%x20-7E) for every value; invalid UTF-8 decodes to U+FFFD,
                // which fails here too.
                v.bytes().all(|b| (0x20..=0x7e).contains(&b))
            };
            if !value_ok || !key.bytes().all(|b| (0x21..=0x7e).contains(&b)) {
                return Err(ParamError::BadCharacters(printable(&key)));
            }
            if map.insert(key.clone(), v).is_some() {
                return Err(ParamError::Duplicate(printable(&key)));
            }
        }
        Ok(Self(map))
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .get(key)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    pub fn has(&self, key: &str) -> bool {
        self.0.contains_key(key)
    }

    /// Sets a parameter the server decided, replacing what the request said.
    pub fn set(&mut self, key: &str, value: &str) {
        self.0.insert(key.to_owned(), value.to_owned());
    }
}

fn printable(key: &str) -> String {
    key.chars()
        .filter(|c| c.is_ascii_graphic())
        .take(40)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_values_may_be_unicode_and_json_objects_follow_the_form_rules() {
        let p = Params::parse_with_text("password=p%C3%A4ss&state=x".as_bytes(), &["password"])
            .unwrap();
        assert_eq!(p.get("password"), Some("päss"));
        assert!(Params::parse_with_text("state=p%C3%A4ss".as_bytes(), &["password"]).is_err());
        assert!(Params::parse_with_text(b"password=a%0Ab", &["password"]).is_err());
        let j = Params::from_json(
            r#"{"email":"a@b.example","password":"päss"}"#.as_bytes(),
            &["password"],
        )
        .unwrap();
        assert_eq!(j.get("password"), Some("päss"));
        assert_eq!(
            Params::from_json(br#"{"email":"a","email":"b"}"#, &[]).unwrap_err(),
            ParamError::Duplicate("email".into())
        );
        assert_eq!(
            Params::from_json(br#"{"n":1}"#, &[]).unwrap_err(),
            ParamError::NotJson
        );
        assert_eq!(
            Params::from_json(b"[]", &[]).unwrap_err(),
            ParamError::NotJson
        );
    }

    #[test]
    fn a14_duplicate_parameters_are_rejected() {
        assert_eq!(
            Params::parse(b"code=a&code=b&state=s").unwrap_err(),
            ParamError::Duplicate("code".into())
        );
    }

    #[test]
    fn h03_malformed_encoding_and_control_characters_are_rejected() {
        assert!(Params::parse(b"state=%C0%AF").is_err());
        assert!(Params::parse(b"code=%00").is_err());
        assert!(Params::parse(b"state=%FF%FE").is_err());
        assert!(Params::parse(b"return_to=/x%0d%0aSet-Cookie:%20a=b").is_err());
        // A literal percent that is not an escape is kept as text, which is printable.
        assert_eq!(
            Params::parse(b"state=%ZZ").unwrap().get("state"),
            Some("%ZZ")
        );
    }

    #[test]
    fn h02_long_values_and_many_parameters_are_rejected() {
        let long = format!("state={}", "a".repeat(MAX_VALUE + 1));
        assert!(matches!(
            Params::parse(long.as_bytes()),
            Err(ParamError::TooLong(_))
        ));
        let many: Vec<String> = (0..1000).map(|i| format!("p{i}=1")).collect();
        assert_eq!(
            Params::parse(many.join("&").as_bytes()).unwrap_err(),
            ParamError::TooMany
        );
    }

    #[test]
    fn empty_values_read_as_absent() {
        let p = Params::parse(b"state=&code=x").unwrap();
        assert_eq!(p.get("state"), None);
        assert!(p.has("state"));
        assert_eq!(p.get("code"), Some("x"));
    }
}
