//! Admin API keys: `braid_ak_` and 256 random bits. The configuration holds only their
//! SHA-256: a key this random cannot be found from its hash by guessing, so a slow password
//! hash would add nothing but its cost to every API call.

use crate::tokens::opaque::{self, RandomError};
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;

/// What every admin key starts with, so a leaked one is recognised (secret scanners, logs).
pub const PREFIX: &str = "braid_ak_";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminKey {
    /// Who holds the key; recorded in the audit events of what it does.
    pub name: String,
    /// SHA-256 of the key, hexadecimal.
    pub hash: String,
}

/// A key as `braid admin-keys create` makes it: shown once, stored as `hash`.
pub struct NewKey {
    pub key: String,
    pub hash: String,
}

pub fn generate() -> Result<NewKey, RandomError> {
    let key = format!("{PREFIX}{}", opaque::random_token()?);
    let hash = opaque::hex(&opaque::hash(&key));
    Ok(NewKey { key, hash })
}

pub fn decode_hash(hex: &str) -> Option<[u8; 32]> {
    let hex = hex.trim();
    if hex.len() != 64 || !hex.is_ascii() {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(out)
}

/// The name of the configured key `presented` is, if any. Every configured hash is compared,
/// in constant time, whichever matches.
pub fn holder<'a>(keys: &'a [AdminKey], presented: &str) -> Option<&'a str> {
    let given = opaque::hash(presented);
    let mut found = None;
    for key in keys {
        let Some(expected) = decode_hash(&key.hash) else {
            continue;
        };
        if bool::from(expected.ct_eq(given.as_slice())) {
            found = Some(key.name.as_str());
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_generated_key_is_found_by_its_hash_and_others_are_not() {
        let a = generate().unwrap();
        let b = generate().unwrap();
        assert!(a.key.starts_with(PREFIX) && a.key.len() > 50);
        assert_ne!(a.key, b.key);
        let keys = vec![
            AdminKey {
                name: "ops".into(),
                hash: a.hash.clone(),
            },
            AdminKey {
                name: "ci".into(),
                hash: b.hash.to_uppercase(),
            },
        ];
        assert_eq!(holder(&keys, &a.key), Some("ops"));
        assert_eq!(holder(&keys, &b.key), Some("ci"));
        assert_eq!(holder(&keys, "braid_ak_guess"), None);
        assert_eq!(holder(&keys, &a.hash), None, "the hash is not the key");
    }
}
