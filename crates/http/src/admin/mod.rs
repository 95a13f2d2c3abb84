//! Administration: the admin API's keys (`[admin]`) and the console's sign-in. The user
//! operations both share are [`crate::flows::admin_users`]; their routes are
//! [`crate::routes::admin_api`] and [`crate::routes::admin_console`].

pub mod console_session;
pub mod keys;

use serde::{Deserialize, Serialize};

/// `[admin]`: who may use the admin API and console. No keys: both are off (404).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AdminSettings {
    /// `[{ name = "ops", hash = "<sha-256 hex>" }]`, as `braid admin-keys create` prints them.
    pub keys: Vec<keys::AdminKey>,
    /// How long a console sign-in lasts, in seconds.
    pub console_session_ttl: u64,
}

impl Default for AdminSettings {
    fn default() -> Self {
        Self {
            keys: Vec::new(),
            console_session_ttl: 1800,
        }
    }
}

impl AdminSettings {
    pub fn enabled(&self) -> bool {
        !self.keys.is_empty()
    }

    pub fn problems(&self) -> Vec<String> {
        let mut out = Vec::new();
        for (i, key) in self.keys.iter().enumerate() {
            let at = format!("admin.keys[{i}]");
            if key.name.trim().is_empty()
                || key.name.len() > 64
                || !key.name.bytes().all(|b| b.is_ascii_graphic())
            {
                out.push(format!(
                    "{at}.name: must be 1-64 printable ASCII characters"
                ));
            }
            if self.keys[..i].iter().any(|k| k.name == key.name) {
                out.push(format!("{at}.name: {:?} is used twice", key.name));
            }
            if keys::decode_hash(&key.hash).is_none() {
                out.push(format!(
                    "{at}.hash: must be the 64 hexadecimal characters `braid admin-keys create` prints"
                ));
            }
        }
        if !(60..=86_400).contains(&self.console_session_ttl) {
            out.push("admin.console_session_ttl: must be between 60 and 86400 seconds".into());
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_checked() {
        let good = keys::generate().unwrap();
        let mut s = AdminSettings {
            keys: vec![
                keys::AdminKey {
                    name: "ops".into(),
                    hash: good.hash.clone(),
                },
                keys::AdminKey {
                    name: "ops".into(),
                    hash: "abc".into(),
                },
            ],
            ..AdminSettings::default()
        };
        assert_eq!(
            s.problems(),
            vec![
                "admin.keys[1].name: \"ops\" is used twice".to_owned(),
                "admin.keys[1].hash: must be the 64 hexadecimal characters `braid admin-keys create` prints".to_owned(),
            ]
        );
        s.keys.pop();
        assert!(s.problems().is_empty());
        assert!(AdminSettings::default().problems().is_empty());
    }
}
