//! Phone numbers in E.164, the only form ever compared (`+12025550100`).
//!
//! Input must be international: a leading `+`, or the ITU prefix `00` read as `+`. National
//! formats without a country are refused rather than guessed, letters (vanity numbers) are
//! refused, and the number must be valid for its country's numbering plan.

use crate::DomainError;
use phonenumber::Mode;
use serde::{Deserialize, Serialize};
use std::fmt;

const MAX_INPUT: usize = 64;

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Phone(String);

impl Phone {
    pub fn parse(input: &str) -> Result<Self, DomainError> {
        if input.len() > MAX_INPUT {
            return Err(DomainError::InvalidPhone("too long"));
        }
        let s = input.trim();
        let punctuation = |c: char| " ()-./".contains(c);
        if !s
            .chars()
            .enumerate()
            .all(|(i, c)| c.is_ascii_digit() || punctuation(c) || (c == '+' && i == 0))
        {
            return Err(DomainError::InvalidPhone(
                "only digits, spaces, ()-./ and a leading + are allowed",
            ));
        }
        let international = if let Some(rest) = s.strip_prefix("00") {
            format!("+{rest}")
        } else if s.starts_with('+') {
            s.to_owned()
        } else {
            return Err(DomainError::InvalidPhone(
                "must start with + and a country code",
            ));
        };
        let number = phonenumber::parse(None, &international)
            .map_err(|_| DomainError::InvalidPhone("unparseable"))?;
        if !phonenumber::is_valid(&number) {
            return Err(DomainError::InvalidPhone(
                "not a valid number for its country",
            ));
        }
        Ok(Self(number.format().mode(Mode::E164).to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// A hint safe to show before ownership is proven: `+1 ••• ••• 0100`.
    pub fn masked(&self) -> String {
        crate::mask::mask_phone(&self.0)
    }
}

impl TryFrom<String> for Phone {
    type Error = DomainError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(&s)
    }
}

impl From<Phone> for String {
    fn from(p: Phone) -> Self {
        p.0
    }
}

impl fmt::Display for Phone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e164(s: &str) -> String {
        Phone::parse(s)
            .map(String::from)
            .unwrap_or_else(|e| panic!("{s:?}: {e}"))
    }

    #[test]
    fn h11_formatting_variants_compare_equal_in_e164() {
        assert_eq!(e164("+1 (202) 555-0100"), "+12025550100");
        assert_eq!(e164("+12025550100"), "+12025550100");
        assert_eq!(e164("+1.202.555.0100"), "+12025550100");
        assert_eq!(e164("0044 20 7946 0958"), e164("+44 20 7946 0958"));
        assert_eq!(e164("+44 20 7946 0958"), "+442079460958");
    }

    #[test]
    fn h11_letters_and_garbage_do_not_parse() {
        for s in [
            "+1-800-FLOWERS",
            "call me",
            "",
            "+",
            "+1",
            "12025550100",
            "(202) 555-0100",
            "+1 202 555 0100 ext 5",
            "+12025550100\u{0000}",
            "+1+2025550100",
        ] {
            assert!(Phone::parse(s).is_err(), "{s:?} should be rejected");
        }
    }

    #[test]
    fn numbers_invalid_for_their_country_are_rejected() {
        assert!(Phone::parse("+1 000 000 0000").is_err());
        assert!(Phone::parse("+999 1234567").is_err());
    }

    #[test]
    fn masked_hint_keeps_country_and_last_digits() {
        assert_eq!(
            Phone::parse("+12025550100").unwrap().masked(),
            "+1 ••• ••• 0100"
        );
    }
}
