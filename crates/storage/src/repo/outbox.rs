//! Email, SMS and webhook events waiting to be sent. A message is written by [`enqueue`] in the same
//! transaction as the change that caused it, so a rolled-back change sends nothing; a worker
//! then [`claim_due`]s messages, sends them and marks each sent or failed.
//!
//! A claim moves the message's `next_attempt_at` one lease into the future and counts the
//! attempt, in one conditional UPDATE: of several workers (or instances) claiming the same
//! message, one gets it, and the others find it no longer due. A worker that dies mid-send
//! leaves the message to be claimed again when the lease ends (at least once, never twice at
//! the same time). The attempt number a claim returns fences the worker's later
//! [`mark_sent`]/[`mark_failed`]/[`give_up`]: a worker whose lease ran out and whose message
//! was claimed again changes nothing.

use crate::conn::on_backend;
use crate::prepared::PreparedExt;
use crate::schema::outbox;
use crate::{DbConn, StorageError};
use braid_core::{Timestamp, mask_email, mask_phone, new_id};
use diesel::prelude::*;
use std::fmt;
use std::time::Duration;

/// How a message travels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Channel {
    Email,
    Sms,
    /// An event POSTed to a configured webhook: the recipient is the webhook's name, the
    /// subject the event type, the body the JSON payload.
    Webhook,
}

impl Channel {
    pub const ALL: [Channel; 3] = [Channel::Email, Channel::Sms, Channel::Webhook];

    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Email => "email",
            Channel::Sms => "sms",
            Channel::Webhook => "webhook",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.as_str() == s)
    }

    /// The recipient as it may be shown or logged: `a***@e***.com`, `+1 ••• ••• 0100`, and a
    /// webhook's name as it is (it is the operator's, not a person's).
    pub fn mask(self, recipient: &str) -> String {
        match self {
            Channel::Email => mask_email(recipient),
            Channel::Sms => mask_phone(recipient),
            Channel::Webhook => recipient.to_owned(),
        }
    }
}

impl fmt::Display for Channel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A message to send. Its `Debug` shows the recipient masked and the bodies' lengths only:
/// a body may hold a one-time code.
#[derive(Clone, PartialEq, Eq)]
pub struct NewMessage {
    pub channel: Channel,
    /// An email address, an E.164 phone number, or a webhook's name.
    pub recipient: String,
    /// Email: the subject; webhook: the event type.
    pub subject: Option<String>,
    pub text_body: String,
    /// Email only: the HTML alternative of `text_body`.
    pub html_body: Option<String>,
    /// Not sent after this (a message with a one-time code that has expired is given up).
    pub expires_at: Option<Timestamp>,
}

impl NewMessage {
    /// The message is not sent after `at`.
    pub fn until(self, at: Timestamp) -> Self {
        Self {
            expires_at: Some(at),
            ..self
        }
    }
}

impl fmt::Debug for NewMessage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NewMessage")
            .field("channel", &self.channel)
            .field("recipient", &self.channel.mask(&self.recipient))
            .field("text_body", &format_args!("{} bytes", self.text_body.len()))
            .finish_non_exhaustive()
    }
}

/// A message this worker now holds for one lease.
#[derive(Clone, PartialEq, Eq)]
pub struct ClaimedMessage {
    pub id: String,
    pub message: NewMessage,
    pub created_at: Timestamp,
    /// 1 on the first try. Pass it back to [`mark_sent`], [`mark_failed`] or [`give_up`].
    pub attempt: u32,
}

impl fmt::Debug for ClaimedMessage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClaimedMessage")
            .field("id", &self.id)
            .field("message", &self.message)
            .field("attempt", &self.attempt)
            .finish_non_exhaustive()
    }
}

/// Where a message stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageStatus {
    pub channel: Channel,
    pub attempts: u32,
    pub next_attempt_at: Timestamp,
    pub sent_at: Option<Timestamp>,
    pub gave_up_at: Option<Timestamp>,
    pub last_error: Option<String>,
}

/// The longest error text kept per message, in characters.
pub const MAX_ERROR_CHARS: usize = 300;

/// Queues a message, due at once; returns its id. Runs in the caller's transaction, if any:
/// call it inside the transaction of the change the message tells about.
pub fn enqueue(
    conn: &mut DbConn,
    message: &NewMessage,
    now: Timestamp,
) -> Result<String, StorageError> {
    let id = new_id();
    on_backend!(conn, c => diesel::insert_into(outbox::table)
        .values((
            outbox::id.eq(&id),
            outbox::channel.eq(message.channel.as_str()),
            outbox::recipient.eq(&message.recipient),
            outbox::subject.eq(message.subject.as_deref()),
            outbox::body.eq(&message.text_body),
            outbox::html_body.eq(message.html_body.as_deref()),
            outbox::expires_at.eq(message.expires_at.map(Timestamp::as_millis)),
            outbox::created_at.eq(now.as_millis()),
            outbox::attempts.eq(0),
            outbox::next_attempt_at.eq(now.as_millis()),
        ))
        .execute(c))?;
    Ok(id)
}

/// The earliest time a pending message is due, if any message is pending: a cheap read that
/// lets a worker skip the write transaction of [`claim_due`] when there is nothing to do.
pub fn next_due_at(conn: &mut DbConn) -> Result<Option<Timestamp>, StorageError> {
    let at: Option<i64> = on_backend!(conn, c => outbox::table
        .filter(outbox::sent_at.is_null())
        .filter(outbox::gave_up_at.is_null())
        .select(diesel::dsl::min(outbox::next_attempt_at))
        .get_result(c))?;
    Ok(at.map(Timestamp::from_millis))
}

/// Messages neither sent nor given up.
pub fn pending_count(conn: &mut DbConn) -> Result<i64, StorageError> {
    Ok(on_backend!(conn, c => outbox::table
        .filter(outbox::sent_at.is_null())
        .filter(outbox::gave_up_at.is_null())
        .count()
        .get_result(c))?)
}

type ClaimedRow = (
    String,
    String,
    String,
    Option<String>,
    String,
    Option<String>,
    Option<i64>,
    i64,
    i32,
);

/// Claims up to `limit` due messages, oldest due first, for `lease`; each claim counts as an
/// attempt. Run it in a write transaction; see the module documentation for why two workers
/// never get the same message. The lease must outlast a send, or a slow send could be
/// claimed and sent again by another worker.
pub fn claim_due(
    conn: &mut DbConn,
    now: Timestamp,
    lease: Duration,
    limit: i64,
) -> Result<Vec<ClaimedMessage>, StorageError> {
    let candidates: Vec<String> = on_backend!(conn, c => outbox::table
        .filter(outbox::sent_at.is_null())
        .filter(outbox::gave_up_at.is_null())
        .filter(outbox::next_attempt_at.le(now.as_millis()))
        .order(outbox::next_attempt_at.asc())
        .select(outbox::id)
        .limit(limit)
        .load(c))?;
    let leased_until = now.plus(lease).as_millis();
    let mut claimed = Vec::with_capacity(candidates.len());
    for id in candidates {
        let row: Option<ClaimedRow> = on_backend!(conn, c => diesel::update(outbox::table)
            .filter(outbox::id.eq(&id))
            .filter(outbox::sent_at.is_null())
            .filter(outbox::gave_up_at.is_null())
            .filter(outbox::next_attempt_at.le(now.as_millis()))
            .set((
                outbox::next_attempt_at.eq(leased_until),
                outbox::attempts.eq(outbox::attempts + 1),
            ))
            .returning((
                outbox::id,
                outbox::channel,
                outbox::recipient,
                outbox::subject,
                outbox::body,
                outbox::html_body,
                outbox::expires_at,
                outbox::created_at,
                outbox::attempts,
            ))
            .prepared()
            .get_result(c)
            .optional())?;
        let Some((
            id,
            channel,
            recipient,
            subject,
            text_body,
            html_body,
            expires_at,
            created_at,
            attempts,
        )) = row
        else {
            // Another worker claimed it between the read and this update.
            continue;
        };
        let attempt = u32::try_from(attempts).unwrap_or(0);
        let Some(channel) = Channel::parse(&channel) else {
            // No sender will ever know this channel: retrying would only repeat the error.
            give_up(
                conn,
                &id,
                attempt,
                now,
                &format!("unknown channel {channel:?}"),
            )?;
            continue;
        };
        claimed.push(ClaimedMessage {
            id,
            message: NewMessage {
                channel,
                recipient,
                subject,
                text_body,
                html_body,
                expires_at: expires_at.map(Timestamp::from_millis),
            },
            created_at: Timestamp::from_millis(created_at),
            attempt,
        });
    }
    Ok(claimed)
}

/// Records a successful send. `false`: the claim was lost (the lease ran out and the message
/// was claimed again), so nothing changed.
pub fn mark_sent(
    conn: &mut DbConn,
    id: &str,
    attempt: u32,
    now: Timestamp,
) -> Result<bool, StorageError> {
    let n = diesel::update(still_claimed(id, attempt))
        .set(outbox::sent_at.eq(now.as_millis()))
        .execute(conn)?;
    Ok(n == 1)
}

/// Records a failed attempt; the message is due again at `next_attempt_at`. The error text is
/// stored bounded ([`MAX_ERROR_CHARS`]) and on one line; it must not hold a secret (callers
/// pass what the transport said, never a body or a credential).
pub fn mark_failed(
    conn: &mut DbConn,
    id: &str,
    attempt: u32,
    next_attempt_at: Timestamp,
    error: &str,
) -> Result<bool, StorageError> {
    let n = diesel::update(still_claimed(id, attempt))
        .set((
            outbox::next_attempt_at.eq(next_attempt_at.as_millis()),
            outbox::last_error.eq(bounded_error(error)),
        ))
        .execute(conn)?;
    Ok(n == 1)
}

/// Stops trying: the message is never claimed again, and is purged with the old ones.
pub fn give_up(
    conn: &mut DbConn,
    id: &str,
    attempt: u32,
    now: Timestamp,
    error: &str,
) -> Result<bool, StorageError> {
    let n = diesel::update(still_claimed(id, attempt))
        .set((
            outbox::gave_up_at.eq(now.as_millis()),
            outbox::last_error.eq(bounded_error(error)),
        ))
        .execute(conn)?;
    Ok(n == 1)
}

type StillClaimed<'a> = diesel::dsl::Filter<
    diesel::dsl::Filter<
        diesel::dsl::Filter<
            diesel::dsl::Filter<outbox::table, diesel::dsl::Eq<outbox::id, &'a str>>,
            diesel::dsl::Eq<outbox::attempts, i32>,
        >,
        diesel::dsl::IsNull<outbox::sent_at>,
    >,
    diesel::dsl::IsNull<outbox::gave_up_at>,
>;

fn still_claimed(id: &str, attempt: u32) -> StillClaimed<'_> {
    outbox::table
        .filter(outbox::id.eq(id))
        .filter(outbox::attempts.eq(i32::try_from(attempt).unwrap_or(i32::MAX)))
        .filter(outbox::sent_at.is_null())
        .filter(outbox::gave_up_at.is_null())
}

/// Where the message stands, or `None` when there is no such message (or it was purged).
pub fn status(conn: &mut DbConn, id: &str) -> Result<Option<MessageStatus>, StorageError> {
    type Row = (String, i32, i64, Option<i64>, Option<i64>, Option<String>);
    let row: Option<Row> = outbox::table
        .filter(outbox::id.eq(id))
        .select((
            outbox::channel,
            outbox::attempts,
            outbox::next_attempt_at,
            outbox::sent_at,
            outbox::gave_up_at,
            outbox::last_error,
        ))
        .get_result(conn)
        .optional()?;
    row.map(
        |(channel, attempts, next_attempt_at, sent_at, gave_up_at, last_error)| {
            Ok(MessageStatus {
                channel: Channel::parse(&channel)
                    .ok_or_else(|| StorageError::Corrupt(format!("outbox channel {channel:?}")))?,
                attempts: u32::try_from(attempts).unwrap_or(0),
                next_attempt_at: Timestamp::from_millis(next_attempt_at),
                sent_at: sent_at.map(Timestamp::from_millis),
                gave_up_at: gave_up_at.map(Timestamp::from_millis),
                last_error,
            })
        },
    )
    .transpose()
}

/// One line of at most [`MAX_ERROR_CHARS`] characters, control characters replaced.
fn bounded_error(error: &str) -> String {
    let mut out: String = error
        .trim()
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(MAX_ERROR_CHARS + 1)
        .collect();
    if out.chars().count() > MAX_ERROR_CHARS {
        out = out.chars().take(MAX_ERROR_CHARS - 1).collect();
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_text_is_one_bounded_line() {
        assert_eq!(bounded_error(" 451 try\r\nlater "), "451 try  later");
        let long = "x".repeat(1000);
        let bounded = bounded_error(&long);
        assert_eq!(bounded.chars().count(), MAX_ERROR_CHARS);
        assert!(bounded.ends_with('…'));
        assert_eq!(
            bounded_error(&"é".repeat(MAX_ERROR_CHARS)).chars().count(),
            MAX_ERROR_CHARS
        );
    }

    #[test]
    fn debug_never_shows_a_body_or_the_whole_recipient() {
        let m = NewMessage {
            channel: Channel::Sms,
            recipient: "+12025550100".into(),
            subject: None,
            text_body: "Your code is 123456".into(),
            expires_at: None,
            html_body: None,
        };
        let shown = format!("{m:?}");
        assert!(!shown.contains("123456"), "{shown}");
        assert!(!shown.contains("2025550100"), "{shown}");
        assert!(shown.contains("+1 ••• ••• 0100"), "{shown}");
    }
}
