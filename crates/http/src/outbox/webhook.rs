//! Webhooks: each queued event is POSTed to its webhook's URL with the Standard Webhooks
//! headers (`webhook-id`: the outbox id, the same on every retry; `webhook-timestamp`: this
//! attempt's unix seconds; `webhook-signature`: `v1,<base64 HMAC-SHA256>`). A 2xx answer is
//! delivered; anything else (a redirect too: none is followed) is retried with the outbox's
//! backoff until the webhook's `max_attempts`. The answer's body is never read.

use super::SendError;
use crate::webhooks::WebhookSettings;
use crate::webhooks::signature::SigningKey;
use braid_core::Timestamp;
use braid_storage::repo::outbox::ClaimedMessage;
use std::collections::BTreeMap;
use std::time::Duration;

/// The senders of the configured webhooks, by name.
#[derive(Debug, Default)]
pub struct WebhookSenders(BTreeMap<String, WebhookSender>);

struct WebhookSender {
    client: reqwest::Client,
    url: url::Url,
    key: SigningKey,
    max_attempts: u32,
}

impl std::fmt::Debug for WebhookSender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookSender")
            .field("max_attempts", &self.max_attempts)
            .finish_non_exhaustive()
    }
}

impl WebhookSenders {
    pub fn from_settings(webhooks: &BTreeMap<String, WebhookSettings>) -> Result<Self, String> {
        let mut out = BTreeMap::new();
        for (name, w) in webhooks {
            let at = format!("webhooks.{name}");
            let url = url::Url::parse(&w.url).map_err(|e| format!("{at}.url: {e}"))?;
            // Checked by the settings too; again here because this is where it matters.
            if !braid_providers::http_client::is_allowed_url(&url) {
                return Err(format!(
                    "{at}.url: must be an https URL (plain http only to a loopback address)"
                ));
            }
            let secret = w
                .secret
                .as_ref()
                .ok_or_else(|| format!("{at}.secret: required"))?;
            let key =
                SigningKey::parse(secret.expose()).map_err(|e| format!("{at}.secret: {e}"))?;
            let timeout = Duration::from_secs(
                w.timeout
                    .clamp(1, crate::webhooks::settings::MAX_TIMEOUT_SECS),
            );
            out.insert(
                name.clone(),
                WebhookSender {
                    client: super::post::client(timeout, &at)?,
                    url,
                    key,
                    max_attempts: w.max_attempts,
                },
            );
        }
        Ok(Self(out))
    }

    /// Whether any webhook is configured.
    pub fn any(&self) -> bool {
        !self.0.is_empty()
    }

    /// The attempts an event for this webhook gets; `None` for a webhook no longer
    /// configured.
    pub fn max_attempts(&self, name: &str) -> Option<u32> {
        self.0.get(name).map(|s| s.max_attempts)
    }

    pub async fn send(&self, claimed: &ClaimedMessage) -> Result<(), SendError> {
        let name = &claimed.message.recipient;
        let Some(sender) = self.0.get(name) else {
            return Err(SendError::permanent(format!(
                "webhook {name:?} is no longer configured"
            )));
        };
        let body = &claimed.message.text_body;
        let timestamp = Timestamp::now().as_secs();
        let response = sender
            .client
            .post(sender.url.clone())
            .header("content-type", "application/json")
            .header("webhook-id", &claimed.id)
            .header("webhook-timestamp", timestamp.to_string())
            .header(
                "webhook-signature",
                sender.key.sign(&claimed.id, timestamp, body),
            )
            .body(body.clone())
            .send()
            .await
            .map_err(|e| super::post::transport_error("webhook", e))?;
        let status = response.status();
        if status.is_success() {
            Ok(())
        } else {
            // A receiver that refuses (a wrong secret, an outage, a redirect) may accept once
            // fixed: every other answer is retried.
            Err(SendError::transient(format!(
                "webhook answered {}",
                status.as_u16()
            )))
        }
    }
}
