//! Outgoing webhooks: events about users and their identities, POSTed to the operator's
//! endpoints and signed as Standard Webhooks specifies.
//!
//! A flow that changes something calls [`enqueue`] inside the transaction of that change: one
//! outbox row per webhook subscribed to the event, so a rolled-back change sends nothing, and
//! after the commit wakes the outbox worker ([`crate::outbox::Outbox::wake`]). The worker
//! POSTs each event with a bounded timeout and retries with backoff
//! (`crate::outbox::webhook`); nothing waits for a receiver on the request path.
//!
//! Payloads carry ids, the provider and the identity's subject, and for `user.created` the
//! primary email address: never a token, a code, a password or a secret.

pub mod settings;
pub mod signature;

use braid_core::{Timestamp, UserEmail, UserId};
use braid_storage::repo::outbox::{self, Channel, NewMessage};
use braid_storage::{DbConn, StorageError};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Arc;

pub use settings::WebhookSettings;

/// The events a webhook can subscribe to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum EventType {
    #[serde(rename = "user.created")]
    UserCreated,
    #[serde(rename = "user.disabled")]
    UserDisabled,
    #[serde(rename = "identity.linked")]
    IdentityLinked,
    #[serde(rename = "identity.unlinked")]
    IdentityUnlinked,
    #[serde(rename = "link.conflict")]
    LinkConflict,
}

impl EventType {
    pub const ALL: [EventType; 5] = [
        EventType::UserCreated,
        EventType::UserDisabled,
        EventType::IdentityLinked,
        EventType::IdentityUnlinked,
        EventType::LinkConflict,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EventType::UserCreated => "user.created",
            EventType::UserDisabled => "user.disabled",
            EventType::IdentityLinked => "identity.linked",
            EventType::IdentityUnlinked => "identity.unlinked",
            EventType::LinkConflict => "link.conflict",
        }
    }
}

/// The most user ids a `link.conflict` names; the payload stays small whatever matched.
pub const MAX_CONFLICT_USERS: usize = 20;

/// One event with its data (the payload's `data` member).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    UserCreated(UserCreated),
    UserDisabled(UserDisabled),
    IdentityLinked(IdentityLinked),
    IdentityUnlinked(IdentityUnlinked),
    LinkConflict(LinkConflict),
}

/// A user was created, by a sign-in (`provider`, `subject`: the identity it was created
/// with; `client_id`: the app the sign-in was for) or by another way without them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UserCreated {
    pub user_id: String,
    /// The primary email address, if the user has one.
    pub email: Option<String>,
    pub email_verified: bool,
    pub provider: Option<String>,
    pub subject: Option<String>,
    pub client_id: Option<String>,
}

impl UserCreated {
    /// `emails`: the new user's addresses; the primary one (else the first) is sent.
    pub fn new(user: &UserId, emails: &[UserEmail]) -> Self {
        let primary = emails.iter().find(|e| e.is_primary).or(emails.first());
        Self {
            user_id: user.to_string(),
            email: primary.map(|e| e.email.as_str().to_owned()),
            email_verified: primary.is_some_and(|e| e.verified_at.is_some()),
            provider: None,
            subject: None,
            client_id: None,
        }
    }

    /// Created by a sign-in with this identity, for this app.
    #[must_use]
    pub fn signed_in(mut self, provider: &str, subject: &str, client_id: &str) -> Self {
        self.provider = Some(provider.to_owned());
        self.subject = Some(subject.to_owned());
        self.client_id = Some(client_id.to_owned());
        self
    }
}

/// A user was disabled: they can no longer sign in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UserDisabled {
    pub user_id: String,
}

/// How an identity came to be linked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LinkMethod {
    /// One existing user matched on a verified address (`resolution = "automatic"`).
    Automatic,
    /// The signed-in user connected another provider.
    Connect,
    /// The person chose the account and proved owning it (`proof` says how).
    Manual,
    /// An operator moved the identity from another user (admin API or console).
    Admin,
}

/// A provider's identity was linked to an existing user. A new user's first identity comes
/// with `user.created` instead.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IdentityLinked {
    pub user_id: String,
    pub provider: String,
    pub subject: String,
    pub client_id: Option<String>,
    pub method: LinkMethod,
    /// Manual links: `password`, `email_code` or `sms_code`.
    pub proof: Option<String>,
}

/// A provider's identity was removed from a user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IdentityUnlinked {
    pub user_id: String,
    pub provider: String,
    pub subject: String,
}

/// What Braid did about a conflict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ConflictAction {
    /// The sign-in was refused.
    Refused,
    /// A new user was created (`conflict_action = "create_user"`); `user.created` follows.
    UserCreated,
}

/// A sign-in's identity could not be linked: several users matched (`ambiguous_match`), or
/// the identity belongs to another user than the one connecting it
/// (`identity_owned_by_another_user`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LinkConflict {
    pub provider: String,
    pub subject: String,
    pub client_id: Option<String>,
    /// The audit reason.
    pub reason: String,
    pub action: ConflictAction,
    /// The existing users involved (at most [`MAX_CONFLICT_USERS`]).
    pub user_ids: Vec<String>,
    /// The user created instead, when `action = "user_created"`.
    pub created_user_id: Option<String>,
}

impl Event {
    pub fn kind(&self) -> EventType {
        match self {
            Event::UserCreated(_) => EventType::UserCreated,
            Event::UserDisabled(_) => EventType::UserDisabled,
            Event::IdentityLinked(_) => EventType::IdentityLinked,
            Event::IdentityUnlinked(_) => EventType::IdentityUnlinked,
            Event::LinkConflict(_) => EventType::LinkConflict,
        }
    }

    /// `{"type": "...", "timestamp": "<RFC 3339, UTC>", "data": {...}}`.
    pub fn payload(&self, at: Timestamp) -> String {
        let data = match self {
            Event::UserCreated(d) => serde_json::to_value(d),
            Event::UserDisabled(d) => serde_json::to_value(d),
            Event::IdentityLinked(d) => serde_json::to_value(d),
            Event::IdentityUnlinked(d) => serde_json::to_value(d),
            Event::LinkConflict(d) => serde_json::to_value(d),
        }
        // Plain structs of strings: serialising them cannot fail.
        .unwrap_or_default();
        serde_json::json!({
            "type": self.kind().as_str(),
            "timestamp": at.to_rfc3339(),
            "data": data,
        })
        .to_string()
    }
}

/// Which webhook wants which events: built once from `[webhooks]`, cheap to clone into a
/// transaction.
#[derive(Debug, Clone, Default)]
pub struct Webhooks(Arc<BTreeMap<String, Vec<EventType>>>);

impl Webhooks {
    pub fn from_settings(webhooks: &BTreeMap<String, WebhookSettings>) -> Self {
        Self(Arc::new(
            webhooks
                .iter()
                .map(|(name, w)| (name.clone(), w.events.clone()))
                .collect(),
        ))
    }

    fn subscribed(&self, kind: EventType) -> impl Iterator<Item = &str> {
        self.0
            .iter()
            .filter(move |(_, events)| events.contains(&kind))
            .map(|(name, _)| name.as_str())
    }
}

/// Queues `event` for every webhook subscribed to it, in the caller's transaction; returns
/// how many were queued (wake the outbox after the commit when it is not zero). With no
/// webhook subscribed it writes nothing.
pub fn enqueue(
    c: &mut DbConn,
    webhooks: &Webhooks,
    event: &Event,
    now: Timestamp,
) -> Result<usize, StorageError> {
    let kind = event.kind();
    let mut queued = 0;
    let mut payload = None;
    for name in webhooks.subscribed(kind) {
        let body = payload.get_or_insert_with(|| event.payload(now)).clone();
        outbox::enqueue(
            c,
            &NewMessage {
                channel: Channel::Webhook,
                recipient: name.to_owned(),
                subject: Some(kind.as_str().to_owned()),
                text_body: body,
                html_body: None,
                expires_at: None,
            },
            now,
        )?;
        queued += 1;
    }
    Ok(queued)
}

#[cfg(test)]
mod tests {
    use super::*;
    use braid_core::Email;

    #[test]
    fn event_names_round_trip_through_settings() {
        for kind in EventType::ALL {
            let json = serde_json::to_string(&kind).unwrap();
            assert_eq!(json, format!("\"{}\"", kind.as_str()));
            assert_eq!(serde_json::from_str::<EventType>(&json).unwrap(), kind);
        }
    }

    #[test]
    fn a_payload_has_the_type_an_rfc3339_timestamp_and_the_data() {
        let user = UserId::generate();
        let emails = [UserEmail {
            email: Email::parse("alice@example.com").unwrap(),
            verified_at: Some(Timestamp::from_millis(1)),
            is_primary: true,
        }];
        let event =
            Event::UserCreated(UserCreated::new(&user, &emails).signed_in("idp", "sub-1", "app"));
        let payload: serde_json::Value =
            serde_json::from_str(&event.payload(Timestamp::from_millis(1_796_565_780_123)))
                .unwrap();
        assert_eq!(
            payload,
            serde_json::json!({
                "type": "user.created",
                "timestamp": "2026-12-06T14:03:00.123Z",
                "data": {
                    "user_id": user.to_string(),
                    "email": "alice@example.com",
                    "email_verified": true,
                    "provider": "idp",
                    "subject": "sub-1",
                    "client_id": "app",
                },
            })
        );
    }
}
