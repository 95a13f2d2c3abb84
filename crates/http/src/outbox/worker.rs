//! The background task that delivers queued messages: at once when woken (a request queued
//! one), when the next retry falls due, when a send ends, and otherwise every few seconds (for
//! messages another instance queued and did not send); it claims the due ones, sends them side
//! by side without waiting for each other (a webhook receiver that hangs until its timeout
//! delays no code email), and marks each sent, or failed with a retry time that backs off, or
//! given up. Every instance
//! runs one; claims keep them from sending the same message (see
//! `braid_storage::repo::outbox`). An idle outbox costs one small read per poll.
//!
//! Log lines name the message id, channel, masked recipient, attempt and outcome; never a
//! body, a code or a credential.

use super::{Outbox, SendError};
use crate::metrics::Metrics;
use braid_core::Timestamp;
use braid_storage::repo::outbox::{self, Channel, ClaimedMessage};
use braid_storage::{Database, StorageError};
use prometheus::{IntCounterVec, IntGauge};
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinSet;

/// The longest sleep between two looks at the queue. Local messages do not wait for it (the
/// request that queues one wakes the worker) and retries are due at their own time.
const POLL_EVERY: Duration = Duration::from_secs(5);
/// How long a claim holds a message. Longer than [`SEND_TIMEOUT`], so a message is never sent
/// by two workers at once.
pub const LEASE: Duration = Duration::from_secs(120);
const SEND_TIMEOUT: Duration = Duration::from_secs(60);
/// Messages claimed per round.
const BATCH: i64 = 10;
/// Sends in progress at once, at most.
const MAX_IN_FLIGHT: usize = 32;
/// A message still failing this long after it was queued, or after this many attempts (a
/// webhook's event: after its `max_attempts`), is given up (logged at ERROR). With [`backoff`] the age comes first; the count bounds the
/// attempts should the clock misbehave.
pub const MAX_ATTEMPTS: u32 = 30;
pub const GIVE_UP_AFTER: Duration = Duration::from_secs(24 * 3600);
const PENDING_GAUGE_EVERY: Duration = Duration::from_secs(15);

/// The wait before the next attempt after `attempt` failed: 5 s, 30 s, 2 min, 10 min,
/// 30 min, then hourly.
/// How long from now until `at`; zero when it has passed, `POLL_EVERY` when nothing is due.
fn until(at: Option<Timestamp>) -> Duration {
    at.map_or(POLL_EVERY, |at| {
        let ms = at.as_millis() - Timestamp::now().as_millis();
        Duration::from_millis(u64::try_from(ms.max(0)).unwrap_or(0))
    })
}

pub fn backoff(attempt: u32) -> Duration {
    Duration::from_secs(match attempt {
        0 | 1 => 5,
        2 => 30,
        3 => 120,
        4 => 600,
        5 => 1_800,
        _ => 3_600,
    })
}

#[derive(Clone)]
pub struct Worker {
    db: Database,
    outbox: Arc<Outbox>,
    messages_total: IntCounterVec,
    pending: IntGauge,
}

impl Worker {
    pub fn new(db: Database, outbox: Arc<Outbox>, metrics: &Metrics) -> Self {
        Self {
            db,
            outbox,
            messages_total: metrics.outbox_messages.clone(),
            pending: metrics.outbox_pending.clone(),
        }
    }

    /// Runs the worker for as long as the runtime does.
    pub fn spawn(self) {
        tokio::spawn(async move {
            let mut gauge_tick = tokio::time::interval(PENDING_GAUGE_EVERY);
            gauge_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut sleep = POLL_EVERY;
            let mut in_flight = JoinSet::new();
            loop {
                tokio::select! {
                    () = tokio::time::sleep(sleep) => {}
                    () = self.outbox.woken() => {}
                    // A send ended: its slot is free for a message that waited for one.
                    Some(_) = in_flight.join_next(), if !in_flight.is_empty() => {}
                    _ = gauge_tick.tick() => {
                        self.update_pending().await;
                        continue;
                    }
                }
                sleep = match self.start_due(&mut in_flight).await {
                    Ok(next) => until(next).min(POLL_EVERY),
                    Err(e) => {
                        tracing::warn!(error = %e, "outbox: cannot read or claim messages");
                        POLL_EVERY
                    }
                };
            }
        });
    }

    /// One round: claims the messages due now, as many as there are free slots in
    /// `in_flight`, and starts sending each there without waiting for it. Returns when the
    /// next pending message falls due, if any is pending (messages being sent are held by
    /// their lease), and `None` when every slot is taken (a send that ends wakes the worker).
    pub async fn start_due(
        &self,
        in_flight: &mut JoinSet<()>,
    ) -> Result<Option<Timestamp>, StorageError> {
        loop {
            while in_flight.try_join_next().is_some() {}
            let free = MAX_IN_FLIGHT.saturating_sub(in_flight.len());
            if free == 0 {
                return Ok(None);
            }
            let now = Timestamp::now();
            // A read first: an idle outbox costs no write transaction.
            let due = self.db.run(outbox::next_due_at).await?;
            if due.is_none_or(|at| at > now) {
                return Ok(due);
            }
            let limit = BATCH.min(i64::try_from(free).unwrap_or(BATCH));
            let batch = self
                .db
                .run_write(move |c| outbox::claim_due(c, now, LEASE, limit))
                .await?;
            let claimed = batch.len();
            for message in batch {
                let worker = self.clone();
                in_flight.spawn(async move { worker.deliver(message).await });
            }
            if (claimed as i64) < limit {
                return self.db.run(outbox::next_due_at).await;
            }
        }
    }

    async fn deliver(&self, claimed: ClaimedMessage) {
        let channel = claimed.message.channel;
        let to = channel.mask(&claimed.message.recipient);
        if let Some(expired) = claimed
            .message
            .expires_at
            .filter(|at| *at <= Timestamp::now())
        {
            self.count(channel, "expired");
            tracing::info!(
                message_id = %claimed.id, %channel, %to, attempt = claimed.attempt, outcome = "expired",
                expired_at_ms = expired.as_millis(),
                "message expired before it could be sent; not sending it"
            );
            let (id, attempt) = (claimed.id, claimed.attempt);
            let marked = self
                .db
                .run_write(move |c| {
                    outbox::give_up(c, &id, attempt, Timestamp::now(), "expired before delivery")
                })
                .await;
            if let Err(e) = marked {
                tracing::warn!(error = %e, "outbox: cannot record an expired message; it will be looked at again");
            }
            return;
        }
        let result = tokio::time::timeout(SEND_TIMEOUT, self.outbox.send(&claimed))
            .await
            .unwrap_or_else(|_| Err(SendError::transient("timed out")));
        let now = Timestamp::now();
        let (id, attempt) = (claimed.id.clone(), claimed.attempt);
        let error = match result {
            Ok(()) => {
                self.count(channel, "sent");
                tracing::info!(message_id = %id, %channel, %to, attempt, outcome = "sent", "message sent");
                let marked = self
                    .db
                    .run_write(move |c| outbox::mark_sent(c, &claimed.id, attempt, now))
                    .await;
                if !matches!(marked, Ok(true)) {
                    tracing::warn!(message_id = %id, error = ?marked.err(), "message sent but not marked sent: it may be sent again");
                }
                return;
            }
            Err(e) => e,
        };
        // What the server said may quote the address; logs and the table get the masked one.
        let detail = replace_ignoring_case(&error.detail, &claimed.message.recipient, &to);
        let too_old = now >= claimed.created_at.plus(GIVE_UP_AFTER);
        if error.permanent || attempt >= self.outbox.max_attempts(&claimed) || too_old {
            self.count(channel, "gave_up");
            tracing::error!(
                message_id = %id, %channel, %to, attempt, outcome = "gave_up",
                error = %detail, permanent = error.permanent,
                "message not delivered; giving up"
            );
            let stored = detail.clone();
            let marked = self
                .db
                .run_write(move |c| outbox::give_up(c, &id, attempt, now, &stored))
                .await;
            if let Err(e) = marked {
                tracing::warn!(error = %e, "outbox: cannot record giving up; the message will be tried again");
            }
        } else {
            self.count(channel, "failed");
            let retry_in = backoff(attempt);
            tracing::warn!(
                message_id = %id, %channel, %to, attempt, outcome = "failed",
                error = %detail, retry_in_secs = retry_in.as_secs(),
                "message not delivered; will retry"
            );
            let stored = detail.clone();
            let marked = self
                .db
                .run_write(move |c| {
                    outbox::mark_failed(c, &id, attempt, now.plus(retry_in), &stored)
                })
                .await;
            if let Err(e) = marked {
                tracing::warn!(error = %e, "outbox: cannot record the failure; the message will be tried again when its lease ends");
            }
        }
    }

    fn count(&self, channel: Channel, outcome: &str) {
        self.messages_total
            .with_label_values(&[channel.as_str(), outcome])
            .inc();
    }

    async fn update_pending(&self) {
        match self.db.run(outbox::pending_count).await {
            Ok(n) => self.pending.set(n),
            Err(e) => tracing::debug!(error = %e, "outbox: cannot count pending messages"),
        }
    }
}

/// `text` with every ASCII-case-insensitive occurrence of `needle` replaced.
fn replace_ignoring_case(text: &str, needle: &str, with: &str) -> String {
    if needle.is_empty() {
        return text.to_owned();
    }
    let lower = text.to_ascii_lowercase();
    let needle = needle.to_ascii_lowercase();
    let mut out = String::with_capacity(text.len());
    let mut rest = 0;
    while let Some(found) = lower[rest..].find(&needle) {
        let start = rest + found;
        out.push_str(&text[rest..start]);
        out.push_str(with);
        rest = start + needle.len();
    }
    out.push_str(&text[rest..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_is_capped() {
        let waits: Vec<u64> = (1..=8).map(|a| backoff(a).as_secs()).collect();
        assert_eq!(waits, [5, 30, 120, 600, 1_800, 3_600, 3_600, 3_600]);
        let total: u64 = (1..MAX_ATTEMPTS).map(|a| backoff(a).as_secs()).sum();
        assert!(
            total >= GIVE_UP_AFTER.as_secs(),
            "the attempts outlast the give-up age: {total} s"
        );
    }

    #[test]
    fn a_quoted_recipient_is_replaced_whatever_its_case() {
        assert_eq!(
            replace_ignoring_case(
                "550 5.1.1 <Alice@Example.com>: unknown; alice@example.com",
                "alice@example.com",
                "a***@e***.com"
            ),
            "550 5.1.1 <a***@e***.com>: unknown; a***@e***.com"
        );
        assert_eq!(
            replace_ignoring_case("421 busy", "x@y.z", "***"),
            "421 busy"
        );
    }
}
