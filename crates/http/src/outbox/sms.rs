//! SMS: through an HTTPS webhook of the operator's SMS gateway, or (development) only a log
//! line saying that a message would have gone to a masked number.

use super::SendError;
use crate::settings::{SmsProvider, SmsSettings};
use braid_core::mask_phone;
use braid_storage::repo::outbox::ClaimedMessage;
use std::time::Duration;

const TOTAL_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug)]
pub enum SmsSender {
    Webhook(WebhookSender),
    Log,
}

impl SmsSender {
    /// `None` when `sms.provider = "none"`: SMS is unavailable.
    pub fn from_settings(s: &SmsSettings) -> Result<Option<Self>, String> {
        Ok(match s.provider {
            SmsProvider::None => None,
            SmsProvider::Log => Some(Self::Log),
            SmsProvider::Webhook => Some(Self::Webhook(WebhookSender::from_settings(s)?)),
        })
    }

    pub async fn send(&self, claimed: &ClaimedMessage) -> Result<(), SendError> {
        match self {
            Self::Webhook(w) => w.send(claimed).await,
            Self::Log => {
                // Never the text: it holds the code.
                tracing::info!(
                    message_id = %claimed.id,
                    to = %mask_phone(&claimed.message.recipient),
                    "SMS to {} not sent: sms.provider = \"log\" only logs that it was queued",
                    mask_phone(&claimed.message.recipient)
                );
                Ok(())
            }
        }
    }
}

/// POSTs `{"to": "+E164", "body": "..."}` with `Authorization: Bearer <sms.webhook_token>` and
/// the outbox id as `Idempotency-Key` (a retried message keeps its key). No redirect is
/// followed; the response body is never read, so nothing a gateway echoes (the text, the
/// code) reaches a log or the database.
pub struct WebhookSender {
    client: reqwest::Client,
    url: url::Url,
    token: String,
}

impl std::fmt::Debug for WebhookSender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookSender").finish_non_exhaustive()
    }
}

impl WebhookSender {
    fn from_settings(s: &SmsSettings) -> Result<Self, String> {
        let url = s
            .webhook_url
            .as_deref()
            .ok_or("sms.webhook_url: required")?;
        let url = url::Url::parse(url).map_err(|e| format!("sms.webhook_url: {e}"))?;
        // Checked by the settings too; again here because this is where it matters.
        if !braid_providers::http_client::is_allowed_url(&url) {
            return Err(
                "sms.webhook_url: must be https (plain http only to a loopback address)".into(),
            );
        }
        let token = s
            .webhook_token
            .as_ref()
            .map(|t| t.expose().to_owned())
            .ok_or("sms.webhook_token: required")?;
        let client = super::post::client(TOTAL_TIMEOUT, "sms webhook")?;
        Ok(Self { client, url, token })
    }

    async fn send(&self, claimed: &ClaimedMessage) -> Result<(), SendError> {
        let body = serde_json::json!({
            "to": claimed.message.recipient,
            "body": claimed.message.text_body,
        });
        let response = self
            .client
            .post(self.url.clone())
            .bearer_auth(&self.token)
            .header("idempotency-key", &claimed.id)
            .json(&body)
            .send()
            .await
            .map_err(|e| super::post::transport_error("SMS webhook", e))?;
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
        let error = format!("SMS webhook answered {}", status.as_u16());
        // 400 and 422: the gateway refuses this message (a number it cannot reach). Anything
        // else (a wrong token, a wrong path, a redirect, an outage) may pass once fixed.
        if matches!(status.as_u16(), 400 | 422) {
            Err(SendError::permanent(error))
        } else {
            Err(SendError::transient(error))
        }
    }
}
