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
}

#[derive(Debug, Default)]
pub struct Params(HashMap<String, String>);

impl Params {
    /// Parses `application/x-www-form-urlencoded` (a query string or a form body).
    pub fn parse(raw: &[u8]) -> Result<Self, ParamError> {
        let mut map = HashMap::new();
        for (i, (k, v)) in form_urlencoded::parse(raw).enumerate() {
            if i >= 32 {
                return Err(ParamError::TooMany);
            }
            let key = k.into_owned();
            if v.len() > MAX_VALUE {
                return Err(ParamError::TooLong(printable(&key)));
            }
            // RFC 6749 VSCHAR (%x20-7E) for every value; invalid UTF-8 decodes to U+FFFD,
            // which fails here too.
            if !v.bytes().all(|b| (0x20..=0x7e).contains(&b))
                || !key.bytes().all(|b| (0x21..=0x7e).contains(&b))
            {
                return Err(ParamError::BadCharacters(printable(&key)));
            }
            if map.insert(key.clone(), v.into_owned()).is_some() {
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
