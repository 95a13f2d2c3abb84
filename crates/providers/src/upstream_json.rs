//! The one gate every JSON document from upstream passes before anything reads it.
//!
//! An object that names a member twice is read differently by different parsers (the first
//! value, the last, or an error), so a provider, a proxy and Braid could each see another
//! `sub` or `email_verified` in the same bytes. I-JSON (RFC 7493 §2.3) forbids such objects;
//! Braid refuses them at any depth. The HTTP client applies [`refuse_duplicate_members`] to
//! every response body ([`crate::HttpClient`] makes each caller name the [`Document`] it
//! reads), and the ID token parser to the JWT's header and payload, the only upstream JSON
//! that does not arrive as a body of its own.

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use std::borrow::Cow;
use std::fmt;

/// Which upstream document was read: named in errors and in the operator's log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Document {
    Discovery,
    KeySet,
    TokenResponse,
    IdTokenHeader,
    IdTokenClaims,
    UserInfo,
    /// A plain OAuth 2.0 provider's profile API (GitHub `/user` and `/user/emails`, ...).
    ProfileApi,
}

impl Document {
    pub fn as_str(self) -> &'static str {
        match self {
            Document::Discovery => "discovery document",
            Document::KeySet => "key set (JWKS)",
            Document::TokenResponse => "token response",
            Document::IdTokenHeader => "ID token header",
            Document::IdTokenClaims => "ID token claims",
            Document::UserInfo => "UserInfo response",
            Document::ProfileApi => "profile API response",
        }
    }

    /// A short label for the upstream endpoint that serves this document, for metrics.
    pub fn endpoint(self) -> &'static str {
        match self {
            Document::Discovery => "discovery",
            Document::KeySet => "jwks",
            Document::TokenResponse | Document::IdTokenHeader | Document::IdTokenClaims => "token",
            Document::UserInfo => "userinfo",
            Document::ProfileApi => "profile_api",
        }
    }

    /// The documents fetched over HTTP (ID token parts come inside the token response).
    pub const FETCHED: [Document; 5] = [
        Document::Discovery,
        Document::KeySet,
        Document::TokenResponse,
        Document::UserInfo,
        Document::ProfileApi,
    ];
}

impl fmt::Display for Document {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An object in the document names a member twice.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DuplicateMember;

/// Refuses JSON with a repeated member name in any object, however deep. Bytes that are not
/// JSON at all pass: whoever parses them next refuses them with its own, more precise error.
///
/// Every sign-in reads several documents, so the common case takes a byte scanner that only
/// looks for member names (a few instructions a byte; a serde pass cost four times as much on
/// the token response, whose ID token is one long string). Whatever the scanner is not sure of
/// (an escaped name it cannot decode, deep nesting, bytes that are not JSON) goes through
/// serde_json, which decides as the documents' parsers do.
pub fn refuse_duplicate_members(bytes: &[u8]) -> Result<(), DuplicateMember> {
    match Scanner::new(bytes).document() {
        Ok(()) => Ok(()),
        Err(Stop::Duplicate) => Err(DuplicateMember),
        Err(Stop::Unsure) => checked_by_serde(bytes),
    }
}

fn checked_by_serde(bytes: &[u8]) -> Result<(), DuplicateMember> {
    let mut reader = serde_json::Deserializer::from_slice(bytes);
    match Checked::deserialize(&mut reader) {
        // Only the visitor's own error is a data error: every value type is accepted.
        Err(e) if e.is_data() => Err(DuplicateMember),
        _ => Ok(()),
    }
}

/// Any JSON value, checked and dropped.
struct Checked;

impl<'de> Deserialize<'de> for Checked {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(CheckedVisitor)
    }
}

/// A member name after unescaping (`"a"` and `"\u0061"` are the same name), borrowed from
/// the input when it has no escapes.
struct Name<'de>(Cow<'de, str>);

impl<'de> Deserialize<'de> for Name<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_str(NameVisitor)
    }
}

struct NameVisitor;

impl<'de> Visitor<'de> for NameVisitor {
    type Value = Name<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a member name")
    }

    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Name(Cow::Borrowed(v)))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Name(Cow::Owned(v.to_owned())))
    }
}

/// Objects this small are compared pairwise; larger ones are sorted (an object of many
/// thousand members must not cost a quadratic number of comparisons).
const PAIRWISE_MAX: usize = 12;

fn has_repeats(names: &mut [Cow<'_, str>]) -> bool {
    if names.len() <= PAIRWISE_MAX {
        return names
            .iter()
            .enumerate()
            .any(|(i, a)| names[i + 1..].contains(a));
    }
    names.sort_unstable();
    names.windows(2).any(|w| w[0] == w[1])
}

struct CheckedVisitor;

impl<'de> Visitor<'de> for CheckedVisitor {
    type Value = Checked;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<Checked, E> {
        Ok(Checked)
    }
    fn visit_i64<E>(self, _: i64) -> Result<Checked, E> {
        Ok(Checked)
    }
    fn visit_u64<E>(self, _: u64) -> Result<Checked, E> {
        Ok(Checked)
    }
    fn visit_f64<E>(self, _: f64) -> Result<Checked, E> {
        Ok(Checked)
    }
    fn visit_str<E>(self, _: &str) -> Result<Checked, E> {
        Ok(Checked)
    }
    fn visit_unit<E>(self) -> Result<Checked, E> {
        Ok(Checked)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Checked, A::Error> {
        while seq.next_element::<Checked>()?.is_some() {}
        Ok(Checked)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Checked, A::Error> {
        let mut names: Vec<Cow<'de, str>> = Vec::new();
        while let Some(Name(name)) = map.next_key()? {
            names.push(name);
            map.next_value::<Checked>()?;
        }
        if has_repeats(&mut names) {
            return Err(de::Error::custom("duplicate member name"));
        }
        Ok(Checked)
    }
}

enum Stop {
    Duplicate,
    /// Not plainly well-formed JSON: serde_json decides.
    Unsure,
}

/// serde_json's own limit.
const MAX_DEPTH: usize = 128;

/// Walks a JSON text, comparing each object's member names; values are only skipped over.
struct Scanner<'a> {
    bytes: &'a [u8],
    at: usize,
    depth: usize,
}

impl<'a> Scanner<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        Self {
            bytes,
            at: 0,
            depth: 0,
        }
    }

    fn document(&mut self) -> Result<(), Stop> {
        self.value()?;
        self.whitespace();
        if self.at == self.bytes.len() {
            Ok(())
        } else {
            Err(Stop::Unsure)
        }
    }

    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.at).copied()
    }

    fn whitespace(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\n' | b'\r' | b'\t')) {
            self.at += 1;
        }
    }

    fn expect(&mut self, byte: u8) -> Result<(), Stop> {
        self.whitespace();
        if self.peek() == Some(byte) {
            self.at += 1;
            Ok(())
        } else {
            Err(Stop::Unsure)
        }
    }

    fn value(&mut self) -> Result<(), Stop> {
        self.whitespace();
        match self.peek() {
            Some(b'{') => self.object(),
            Some(b'[') => self.array(),
            Some(b'"') => self.string().map(|_| ()),
            Some(b't') => self.literal(b"true"),
            Some(b'f') => self.literal(b"false"),
            Some(b'n') => self.literal(b"null"),
            Some(b'-' | b'0'..=b'9') => {
                while matches!(
                    self.peek(),
                    Some(b'-' | b'+' | b'.' | b'e' | b'E' | b'0'..=b'9')
                ) {
                    self.at += 1;
                }
                Ok(())
            }
            _ => Err(Stop::Unsure),
        }
    }

    fn literal(&mut self, word: &[u8]) -> Result<(), Stop> {
        if self.bytes[self.at..].starts_with(word) {
            self.at += word.len();
            Ok(())
        } else {
            Err(Stop::Unsure)
        }
    }

    /// At an opening quote: moves past the closing one; the raw contents and whether they
    /// hold an escape.
    fn string(&mut self) -> Result<(&'a [u8], bool), Stop> {
        let start = self.at + 1;
        let mut i = start;
        let mut escaped = false;
        // memchr looks at many bytes per instruction: an ID token is a kilobyte of base64.
        while let Some(found) = self
            .bytes
            .get(i..)
            .and_then(|rest| memchr::memchr2(b'"', b'\\', rest))
        {
            i += found;
            if self.bytes[i] == b'"' {
                self.at = i + 1;
                return Ok((&self.bytes[start..i], escaped));
            }
            escaped = true;
            i += 2;
        }
        Err(Stop::Unsure)
    }

    fn nested(&mut self) -> Result<(), Stop> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(Stop::Unsure);
        }
        self.at += 1;
        Ok(())
    }

    fn array(&mut self) -> Result<(), Stop> {
        self.nested()?;
        self.whitespace();
        if self.peek() == Some(b']') {
            self.at += 1;
            self.depth -= 1;
            return Ok(());
        }
        loop {
            self.value()?;
            self.whitespace();
            match self.peek() {
                Some(b',') => self.at += 1,
                Some(b']') => {
                    self.at += 1;
                    self.depth -= 1;
                    return Ok(());
                }
                _ => return Err(Stop::Unsure),
            }
        }
    }

    fn object(&mut self) -> Result<(), Stop> {
        self.nested()?;
        self.whitespace();
        if self.peek() == Some(b'}') {
            self.at += 1;
            self.depth -= 1;
            return Ok(());
        }
        let mut names: Vec<Cow<'a, str>> = Vec::new();
        loop {
            self.whitespace();
            if self.peek() != Some(b'"') {
                return Err(Stop::Unsure);
            }
            let (raw, escaped) = self.string()?;
            names.push(member_name(raw, escaped).ok_or(Stop::Unsure)?);
            self.expect(b':')?;
            self.value()?;
            self.whitespace();
            match self.peek() {
                Some(b',') => self.at += 1,
                Some(b'}') => {
                    self.at += 1;
                    self.depth -= 1;
                    return if has_repeats(&mut names) {
                        Err(Stop::Duplicate)
                    } else {
                        Ok(())
                    };
                }
                _ => return Err(Stop::Unsure),
            }
        }
    }
}

/// A member name as its parsers see it: `"a"` and `"\u0061"` are the same name.
fn member_name(raw: &[u8], escaped: bool) -> Option<Cow<'_, str>> {
    if !escaped {
        return std::str::from_utf8(raw).ok().map(Cow::Borrowed);
    }
    let mut quoted = Vec::with_capacity(raw.len() + 2);
    quoted.push(b'"');
    quoted.extend_from_slice(raw);
    quoted.push(b'"');
    serde_json::from_slice::<String>(&quoted)
        .ok()
        .map(Cow::Owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(json: &str) -> bool {
        refuse_duplicate_members(json.as_bytes()).is_err()
    }

    #[test]
    fn documents_with_unique_members_pass() {
        for ok in [
            r#"{}"#,
            r#"[]"#,
            r#"{"sub":"1","email":"a@example.com","email_verified":true}"#,
            r#"{"a":{"a":{"a":1}},"b":[{"a":1},{"a":2}]}"#,
            r#"[{"kid":"1"},{"kid":"1"}]"#,
            r#"{"A":1,"a":2}"#,
            r#""just a string""#,
            r#"{"n":1.5e300,"m":-7,"z":null,"t":false}"#,
        ] {
            assert!(!refused(ok), "{ok}");
        }
    }

    #[test]
    fn a_repeated_member_is_refused_at_any_depth() {
        for bad in [
            r#"{"sub":"1","sub":"2"}"#,
            r#"{"email_verified":false,"email":"a@example.com","email_verified":true}"#,
            r#"{"address":{"country":"DE","country":"FR"}}"#,
            r#"{"keys":[{"kid":"1","n":"x","n":"y"}]}"#,
            r#"[[[{"deep":{"deeper":[{"x":1,"x":1}]}}]]]"#,
        ] {
            assert!(refused(bad), "{bad}");
        }
    }

    #[test]
    fn names_are_compared_after_unescaping() {
        assert!(refused(r#"{"sub":"1","s\u0075b":"2"}"#));
        assert!(refused(r#"{"\u00e9":1,"é":2}"#));
        assert!(!refused(r#"{"sub":"1","s\u0075c":"2"}"#));
    }

    #[test]
    fn large_objects_are_checked_too() {
        let members: Vec<String> = (0..5000).map(|i| format!("\"m{i}\":{i}")).collect();
        let unique = format!("{{{}}}", members.join(","));
        assert!(!refused(&unique));
        let repeated = format!("{{{},\"m42\":0}}", members.join(","));
        assert!(refused(&repeated));
    }

    #[test]
    fn the_scanner_and_serde_agree() {
        for json in [
            r#"{"a":1,"b":{"c":[1,2,{"d":"x\"y","e":null}],"f":true},"g":-1.5e3}"#,
            r#"{"a":"\\","a\\":"x"}"#,
            r#"{"x":"\u00e9","\u00e9":1,"é":2}"#,
            r#"[{"k":1},{"k":1,"k":2}]"#,
            r#" { "sp ace" : [ ] , "sp ace" : { } } "#,
            r#"{"esc\"aped":1,"esc\u0022aped":2}"#,
        ] {
            let fast = match Scanner::new(json.as_bytes()).document() {
                Ok(()) => Some(false),
                Err(Stop::Duplicate) => Some(true),
                Err(Stop::Unsure) => None,
            };
            let serde = checked_by_serde(json.as_bytes()).is_err();
            assert_eq!(fast, Some(serde), "{json}");
        }
    }

    #[test]
    fn bytes_that_are_not_json_are_left_to_the_parser() {
        for other in ["", "not json", "{\"a\":", "<html>", "{\"a\":1} trailing"] {
            assert!(!refused(other), "{other}");
        }
    }
}
