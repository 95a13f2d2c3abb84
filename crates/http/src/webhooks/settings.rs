//! `[webhooks.<name>]`: where events go, which ones, and the secret that signs them.

use super::EventType;
use super::signature::SigningKey;
use braid_core::Secret;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;

/// The most attempts a webhook may ask for: the outbox's own bound.
pub const MAX_ATTEMPTS_LIMIT: u32 = crate::outbox::worker::MAX_ATTEMPTS;
/// The longest wait for one attempt, in seconds: well within the outbox lease.
pub const MAX_TIMEOUT_SECS: u64 = 60;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WebhookSettings {
    /// Where events are POSTed: https, or plain http to a loopback address.
    pub url: String,
    /// `whsec_<base64>` (Standard Webhooks): 24 to 64 random bytes, base64-encoded.
    #[serde(default)]
    pub secret: Option<Secret>,
    #[serde(default)]
    pub secret_file: Option<PathBuf>,
    /// The event types sent to this webhook.
    #[serde(default)]
    pub events: Vec<EventType>,
    /// Seconds one attempt may take (connect, send, answer) before it counts as failed.
    #[serde(default = "default_timeout")]
    pub timeout: u64,
    /// Attempts before an event is given up (retries back off: 5 s, 30 s, 2 min, 10 min,
    /// 30 min, then hourly).
    #[serde(default = "default_max_attempts")]
    pub max_attempts: u32,
}

fn default_timeout() -> u64 {
    10
}

fn default_max_attempts() -> u32 {
    12
}

impl WebhookSettings {
    /// A webhook for `events` at `url`, signed with `secret`, with the default limits.
    pub fn new(url: impl Into<String>, secret: Secret, events: Vec<EventType>) -> Self {
        Self {
            url: url.into(),
            secret: Some(secret),
            secret_file: None,
            events,
            timeout: default_timeout(),
            max_attempts: default_max_attempts(),
        }
    }
}

/// Every problem of every webhook, one line each, prefixed with the setting's path.
pub fn problems(webhooks: &BTreeMap<String, WebhookSettings>) -> Vec<String> {
    let mut out = Vec::new();
    for (name, w) in webhooks {
        let at = format!("webhooks.{name}");
        if name.is_empty()
            || name.len() > 64
            || !name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        {
            out.push(format!(
                "{at}: a webhook name is 1-64 letters, digits, _ or -"
            ));
        }
        match url::Url::parse(&w.url) {
            Ok(u) if braid_providers::http_client::is_allowed_url(&u) => {
                if u.password().is_some() || !u.username().is_empty() {
                    out.push(format!(
                        "{at}.url: no credentials in the URL; the receiver checks the signature"
                    ));
                }
            }
            _ => out.push(format!(
                "{at}.url: must be an https URL (plain http only to a loopback address)"
            )),
        }
        match (&w.secret, &w.secret_file) {
            (Some(_), Some(_)) => out.push(format!("{at}: set secret or secret_file, not both")),
            (None, None) => out.push(format!(
                "{at}.secret: required (whsec_ followed by 24 to 64 random bytes in base64)"
            )),
            (Some(s), None) => {
                if let Err(e) = SigningKey::parse(s.expose()) {
                    out.push(format!("{at}.secret: {e}"));
                }
            }
            // Read by `Settings::load_secret_files`, then checked as `secret`.
            (None, Some(_)) => {}
        }
        if w.events.is_empty() {
            out.push(format!(
                "{at}.events: list the events to send, from {}",
                EventType::ALL.map(EventType::as_str).join(", ")
            ));
        }
        if !(1..=MAX_TIMEOUT_SECS).contains(&w.timeout) {
            out.push(format!(
                "{at}.timeout: must be between 1 and {MAX_TIMEOUT_SECS} seconds"
            ));
        }
        if !(1..=MAX_ATTEMPTS_LIMIT).contains(&w.max_attempts) {
            out.push(format!(
                "{at}.max_attempts: must be between 1 and {MAX_ATTEMPTS_LIMIT}"
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

    fn one(w: WebhookSettings) -> Vec<String> {
        problems(&BTreeMap::from([("crm".to_owned(), w)]))
    }

    fn valid() -> WebhookSettings {
        WebhookSettings::new(
            "https://crm.example.com/hooks",
            Secret::new(SECRET),
            vec![EventType::UserCreated],
        )
    }

    #[test]
    fn a_complete_webhook_has_no_problem_and_loopback_http_is_allowed() {
        assert_eq!(one(valid()), Vec::<String>::new());
        let local = WebhookSettings {
            url: "http://127.0.0.1:9000/hooks".into(),
            ..valid()
        };
        assert_eq!(one(local), Vec::<String>::new());
    }

    #[test]
    fn each_mistake_is_named_with_its_setting() {
        let bad = WebhookSettings {
            url: "http://crm.example.com/hooks".into(),
            secret: Some(Secret::new("hunter2-not-a-whsec")),
            events: Vec::new(),
            timeout: 0,
            max_attempts: 100,
            secret_file: None,
        };
        let p = one(bad);
        let starts = [
            "webhooks.crm.url: must be an https URL",
            "webhooks.crm.secret: must start with whsec_",
            "webhooks.crm.events: list the events to send, from user.created, user.disabled, identity.linked, identity.unlinked, link.conflict",
            "webhooks.crm.timeout: must be between 1 and 60",
            "webhooks.crm.max_attempts: must be between 1 and 30",
        ];
        assert_eq!(p.len(), starts.len(), "{p:?}");
        for (line, start) in p.iter().zip(starts) {
            assert!(
                line.starts_with(start),
                "{line:?} should start with {start:?}"
            );
        }
        assert!(!p.concat().contains("hunter2"), "never the secret: {p:?}");
    }

    #[test]
    fn names_secrets_and_credentials_in_urls_are_checked() {
        let p = problems(&BTreeMap::from([("crm hooks".to_owned(), valid())]));
        assert!(
            p[0].starts_with("webhooks.crm hooks: a webhook name is"),
            "{p:?}"
        );
        let with_user = WebhookSettings {
            url: "https://user:pw@crm.example.com/hooks".into(),
            ..valid()
        };
        assert!(one(with_user)[0].starts_with("webhooks.crm.url: no credentials"));
        let none = WebhookSettings {
            secret: None,
            ..valid()
        };
        assert!(one(none)[0].starts_with("webhooks.crm.secret: required"));
        let both = WebhookSettings {
            secret_file: Some("/run/secrets/crm".into()),
            ..valid()
        };
        assert_eq!(
            one(both),
            ["webhooks.crm: set secret or secret_file, not both"]
        );
    }
}
