//! Email addresses in Braid's one canonical form, the only form ever compared.
//!
//! Rule (DESIGN §4): trim surrounding whitespace, ASCII-lowercase, domain to its IDNA A-label
//! (UTS #46). No dot or plus folding, no Unicode case folding of the local part. Anything that is
//! not a plain `local@domain` (quoted strings, comments, lists, control or format characters,
//! IP literals, a trailing dot) is refused: an address we cannot compare safely never matches.

use crate::DomainError;
use serde::{Deserialize, Serialize};
use std::fmt;

const MAX_TOTAL: usize = 254;
const MAX_LOCAL: usize = 64;
const MAX_LABEL: usize = 63;
/// Inputs longer than this are refused before any parsing work.
const MAX_INPUT: usize = 512;

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Email(String);

impl Email {
    pub fn parse(input: &str) -> Result<Self, DomainError> {
        if input.len() > MAX_INPUT {
            return Err(DomainError::InvalidEmail("too long"));
        }
        let trimmed = input.trim_matches(|c: char| c == ' ' || c == '\t');
        let (local, domain) = trimmed
            .split_once('@')
            .ok_or(DomainError::InvalidEmail("missing @"))?;
        if domain.contains('@') {
            return Err(DomainError::InvalidEmail("more than one @"));
        }
        let local = canonical_local(local)?;
        let domain = canonical_domain(domain)?;
        let email = format!("{local}@{domain}");
        if email.len() > MAX_TOTAL {
            return Err(DomainError::InvalidEmail("longer than 254 characters"));
        }
        Ok(Self(email))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn local_part(&self) -> &str {
        self.0.rsplit_once('@').map_or("", |(l, _)| l)
    }

    pub fn domain(&self) -> &str {
        self.0.rsplit_once('@').map_or("", |(_, d)| d)
    }

    /// A hint safe to show to someone who has not proven ownership: `a***@e***.com`.
    pub fn masked(&self) -> String {
        crate::mask::mask_email(&self.0)
    }
}

fn canonical_local(local: &str) -> Result<String, DomainError> {
    if local.is_empty() {
        return Err(DomainError::InvalidEmail("empty local part"));
    }
    if local.len() > MAX_LOCAL {
        return Err(DomainError::InvalidEmail("local part longer than 64 bytes"));
    }
    if local.starts_with('.') || local.ends_with('.') || local.contains("..") {
        return Err(DomainError::InvalidEmail("misplaced dot in local part"));
    }
    // RFC 5322 dot-atom text, plus non-ASCII letters and digits (RFC 6531). Everything else,
    // notably quotes, comments, commas, spaces, control and bidi characters, is refused.
    let allowed = |c: char| {
        c.is_ascii_alphanumeric()
            || "!#$%&'*+-/=?^_`{|}~.".contains(c)
            || (!c.is_ascii() && c.is_alphanumeric())
    };
    if !local.chars().all(allowed) {
        return Err(DomainError::InvalidEmail(
            "forbidden character in local part",
        ));
    }
    Ok(local.to_ascii_lowercase())
}

fn canonical_domain(domain: &str) -> Result<String, DomainError> {
    if domain.is_empty() {
        return Err(DomainError::InvalidEmail("empty domain"));
    }
    if domain.ends_with('.') {
        return Err(DomainError::InvalidEmail("trailing dot in domain"));
    }
    if domain.starts_with('[') {
        return Err(DomainError::InvalidEmail(
            "address literals are not accepted",
        ));
    }
    if domain.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err(DomainError::InvalidEmail("forbidden character in domain"));
    }
    let ascii = idna::domain_to_ascii_strict(domain)
        .map_err(|_| DomainError::InvalidEmail("domain is not a valid IDNA name"))?
        .to_ascii_lowercase();
    let labels: Vec<&str> = ascii.split('.').collect();
    if labels.len() < 2 {
        return Err(DomainError::InvalidEmail(
            "domain needs at least two labels",
        ));
    }
    for label in &labels {
        let ldh = label
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-');
        if label.is_empty()
            || label.len() > MAX_LABEL
            || !ldh
            || label.starts_with('-')
            || label.ends_with('-')
        {
            return Err(DomainError::InvalidEmail("malformed domain label"));
        }
    }
    if labels
        .last()
        .is_some_and(|tld| tld.bytes().all(|b| b.is_ascii_digit()))
    {
        return Err(DomainError::InvalidEmail("numeric top-level domain"));
    }
    Ok(ascii)
}

impl TryFrom<String> for Email {
    type Error = DomainError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(&s)
    }
}

impl From<Email> for String {
    fn from(e: Email) -> Self {
        e.0
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(s: &str) -> String {
        Email::parse(s)
            .map(String::from)
            .unwrap_or_else(|e| panic!("{s:?}: {e}"))
    }

    fn bad(s: &str) {
        assert!(Email::parse(s).is_err(), "{s:?} should be rejected");
    }

    #[test]
    fn d11_case_only_difference_matches_after_ascii_lowercase() {
        assert_eq!(ok("Alice@Example.COM"), ok("alice@example.com"));
    }

    #[test]
    fn no_dot_or_plus_folding() {
        assert_ne!(ok("a.lice@gmail.com"), ok("alice@gmail.com"));
        assert_ne!(ok("alice+x@gmail.com"), ok("alice@gmail.com"));
    }

    #[test]
    fn no_unicode_case_folding_of_local_part() {
        // Django CVE-2019-19844 class: "ı" (dotless i) must not fold to "i", nor "É" to "é".
        assert_ne!(ok("mıke@example.com"), ok("mike@example.com"));
        assert_eq!(ok("Émile@example.com"), "Émile@example.com");
    }

    #[test]
    fn h05_multi_address_email_is_invalid() {
        bad("victim@example.com,attacker@evil.example");
        bad("victim@example.com attacker@evil.example");
        bad("victim@example.com;attacker@evil.example");
    }

    #[test]
    fn h06_rfc5322_tricks_are_rejected() {
        bad("\"victim@example.com\"@evil.example");
        bad("victim@example.com(comment)");
        bad("victim(comment)@example.com");
        bad("victim@example.com\r\nBcc: x@evil.example");
        bad("Victim <victim@example.com>");
    }

    #[test]
    fn h08_idn_domains_compare_as_a_labels() {
        assert_eq!(ok("user@bücher.example"), "user@xn--bcher-kva.example");
        assert_eq!(ok("user@bücher.example"), ok("user@xn--bcher-kva.example"));
        assert_eq!(ok("user@BÜCHER.example"), ok("user@xn--bcher-kva.example"));
    }

    #[test]
    fn h08_homoglyph_domain_is_a_different_domain() {
        let cyrillic = ok("user@ex\u{0430}mple.com");
        assert_ne!(cyrillic, ok("user@example.com"));
        assert!(cyrillic.ends_with(".com") && cyrillic.contains("xn--"));
    }

    #[test]
    fn h09_length_limits() {
        let local64 = "a".repeat(64);
        ok(&format!("{local64}@example.com"));
        bad(&format!("{}@example.com", "a".repeat(65)));
        let long_domain = format!(
            "{}.{}.{}.{}.com",
            "b".repeat(63),
            "c".repeat(63),
            "d".repeat(63),
            "e".repeat(50)
        );
        bad(&format!("{local64}@{long_domain}"));
        bad(&format!("a@{}.com", "b".repeat(64)));
        bad(&"x".repeat(100_000));
    }

    #[test]
    fn h10_control_and_format_characters_are_rejected() {
        bad("ali\u{0000}ce@example.com");
        bad("alice@exam\u{0000}ple.com");
        bad("alice\u{202e}@example.com");
        bad("alice\u{200b}@example.com");
        bad("alice@example.com\u{202e}");
        bad("alice\u{feff}@example.com");
    }

    #[test]
    fn h12_trailing_dot_rejected_and_surrounding_whitespace_trimmed() {
        bad("alice@example.com.");
        assert_eq!(ok(" alice@example.com "), "alice@example.com");
        assert_eq!(ok("\talice@example.com"), "alice@example.com");
        bad("alice @example.com");
        bad("alice@ example.com");
        bad("alice@exa mple.com");
    }

    #[test]
    fn structurally_invalid_addresses_are_rejected() {
        for s in [
            "",
            "@",
            "alice",
            "alice@",
            "@example.com",
            "alice@@example.com",
            "a@b@example.com",
            ".alice@example.com",
            "alice.@example.com",
            "al..ice@example.com",
            "alice@localhost",
            "alice@[127.0.0.1]",
            "alice@127.0.0.1",
            "alice@-example.com",
            "alice@example-.com",
            "alice@exa_mple.com",
            "alice@.example.com",
            "alice@example..com",
        ] {
            bad(s);
        }
    }

    #[test]
    fn masked_hint_reveals_only_first_characters() {
        assert_eq!(
            Email::parse("alice@example.com").unwrap().masked(),
            "a***@e***.com"
        );
        assert_eq!(
            Email::parse("bob@mail.corp.co.uk").unwrap().masked(),
            "b***@m***.uk"
        );
    }

    #[test]
    fn serde_round_trip_canonicalises_and_validates() {
        let e: Email = serde_json::from_str("\"Bob@Example.Com\"").unwrap();
        assert_eq!(serde_json::to_string(&e).unwrap(), "\"bob@example.com\"");
        assert!(serde_json::from_str::<Email>("\"a,b@c.com\"").is_err());
    }
}
