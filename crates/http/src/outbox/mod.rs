//! Email, SMS and webhook events: the messages, the senders, and the worker that delivers
//! what the outbox table holds.
//!
//! A flow that sends something renders the message with [`Outbox::messages`], writes it with
//! `braid_storage::repo::outbox::enqueue` in the same write transaction as the change it
//! tells about, and after the commit calls [`Outbox::wake`]. The worker sends it, retries with
//! backoff when the server or gateway fails, and never holds up the request that queued it.

pub mod messages;
mod post;
pub mod sms;
pub mod smtp;
pub mod webhook;
pub mod worker;

use crate::settings::Settings;
use braid_storage::repo::outbox::{Channel, ClaimedMessage};
use messages::Messages;
use sms::SmsSender;
use smtp::SmtpSender;
use tokio::sync::Notify;
use webhook::WebhookSenders;

pub use braid_storage::repo::outbox::NewMessage;

#[derive(Debug, thiserror::Error)]
pub enum OutboxError {
    #[error("message templates: {0}")]
    Templates(#[from] crate::pages::PagesError),
    #[error("{0}")]
    Config(String),
}

/// Why one attempt failed. Its text is stored with the message and logged: it is what the
/// server or gateway said, never a body or a credential.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendError {
    /// The server refused this message for good: retrying cannot help.
    pub permanent: bool,
    pub detail: String,
}

impl SendError {
    pub fn transient(detail: impl Into<String>) -> Self {
        Self {
            permanent: false,
            detail: detail.into(),
        }
    }

    pub fn permanent(detail: impl Into<String>) -> Self {
        Self {
            permanent: true,
            detail: detail.into(),
        }
    }
}

/// The senders this instance has, the message templates, and the worker's wake-up call.
pub struct Outbox {
    messages: Messages,
    email: Option<SmtpSender>,
    sms: Option<SmsSender>,
    webhooks: WebhookSenders,
    wake: Notify,
}

impl Outbox {
    pub fn from_settings(settings: &Settings) -> Result<Self, OutboxError> {
        Ok(Self {
            messages: Messages::new(&settings.views)?,
            email: SmtpSender::from_settings(&settings.smtp).map_err(OutboxError::Config)?,
            sms: SmsSender::from_settings(&settings.sms).map_err(OutboxError::Config)?,
            webhooks: WebhookSenders::from_settings(&settings.webhooks)
                .map_err(OutboxError::Config)?,
            wake: Notify::new(),
        })
    }

    /// Whether this instance delivers messages of this channel (`smtp.url` set; `sms.provider`
    /// not `none`; a webhook configured). Offer a person only the channels for which this is
    /// true.
    pub fn can_send(&self, channel: Channel) -> bool {
        match channel {
            Channel::Email => self.email.is_some(),
            Channel::Sms => self.sms.is_some(),
            Channel::Webhook => self.webhooks.any(),
        }
    }

    /// The attempts this message gets before it is given up: its webhook's `max_attempts`,
    /// else the outbox's bound.
    pub fn max_attempts(&self, claimed: &ClaimedMessage) -> u32 {
        match claimed.message.channel {
            Channel::Webhook => self
                .webhooks
                .max_attempts(&claimed.message.recipient)
                .unwrap_or(1),
            Channel::Email | Channel::Sms => worker::MAX_ATTEMPTS,
        }
    }

    /// The message builders.
    pub fn messages(&self) -> &Messages {
        &self.messages
    }

    /// Tells the worker that a message was queued, so it goes out now rather than at the next
    /// poll. Call it after the transaction that queued the message has committed.
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    pub(crate) async fn woken(&self) {
        self.wake.notified().await;
    }

    pub async fn send(&self, claimed: &ClaimedMessage) -> Result<(), SendError> {
        let channel = claimed.message.channel;
        match channel {
            Channel::Email => match &self.email {
                Some(sender) => sender.send(claimed).await,
                None => Err(SendError::transient("email is not configured (smtp.url)")),
            },
            Channel::Sms => match &self.sms {
                Some(sender) => sender.send(claimed).await,
                None => Err(SendError::transient("SMS is not configured (sms.provider)")),
            },
            Channel::Webhook => self.webhooks.send(claimed).await,
        }
    }
}
