//! The outbox on the default SQLite and, with BRAID_TEST_DATABASE_URL, on PostgreSQL.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use braid_core::Timestamp;
use braid_storage::repo::housekeeping;
use braid_storage::repo::outbox::{self, Channel, NewMessage};
use braid_storage::test_support::TestDb;
use braid_storage::{StorageError, write_transaction};
use std::collections::HashSet;
use std::sync::{Arc, Barrier};
use std::time::Duration;

const LEASE: Duration = Duration::from_secs(60);

fn email(to: &str) -> NewMessage {
    NewMessage {
        channel: Channel::Email,
        recipient: to.into(),
        subject: Some("Your code".into()),
        text_body: "Your code is 123456".into(),
        html_body: Some("<p>Your code is <b>123456</b></p>".into()),
        expires_at: Some(Timestamp::from_millis(9_000_000_000_000)),
    }
}

fn sms(to: &str) -> NewMessage {
    NewMessage {
        channel: Channel::Sms,
        recipient: to.into(),
        subject: None,
        text_body: "Your code is 654321".into(),
        html_body: None,
        expires_at: None,
    }
}

#[test]
fn enqueue_inside_a_rolled_back_transaction_leaves_nothing() {
    let t = TestDb::new().unwrap();
    let mut c = t.db.conn().unwrap();
    let now = Timestamp::now();
    let result: Result<(), StorageError> = write_transaction(&mut c, |c| {
        outbox::enqueue(c, &email("alice@example.com"), now)?;
        Err(StorageError::Conflict(
            "the change that caused it failed".into(),
        ))
    });
    assert!(result.is_err());
    assert_eq!(t.count("outbox"), 0);
    assert!(
        outbox::claim_due(&mut c, now, LEASE, 10)
            .unwrap()
            .is_empty()
    );

    write_transaction(&mut c, |c| {
        outbox::enqueue(c, &email("alice@example.com"), now)
    })
    .unwrap();
    assert_eq!(t.count("outbox"), 1);
}

#[test]
fn a_claimed_message_round_trips_every_field() {
    let t = TestDb::new().unwrap();
    let mut c = t.db.conn().unwrap();
    let now = Timestamp::now();
    let mail_id = outbox::enqueue(&mut c, &email("alice@example.com"), now).unwrap();
    let sms_id = outbox::enqueue(&mut c, &sms("+12025550100"), now.plus(LEASE)).unwrap();
    let claimed = outbox::claim_due(&mut c, now, LEASE, 10).unwrap();
    assert_eq!(claimed.len(), 1, "the SMS is not due yet");
    assert_eq!(claimed[0].id, mail_id);
    assert_eq!(claimed[0].message, email("alice@example.com"));
    assert_eq!(claimed[0].created_at, now);
    assert_eq!(claimed[0].attempt, 1);
    let later = outbox::claim_due(&mut c, now.plus(LEASE), LEASE, 10).unwrap();
    assert_eq!(
        later.len(),
        2,
        "the SMS is due, and so is the email whose lease ran out"
    );
    let sms_claim = later.iter().find(|m| m.id == sms_id).unwrap();
    assert_eq!(sms_claim.message, sms("+12025550100"));
}

#[test]
fn a_due_message_is_claimed_by_exactly_one_of_two_claims() {
    let t = TestDb::new().unwrap();
    let now = Timestamp::now();
    let mut c = t.db.conn().unwrap();
    outbox::enqueue(&mut c, &email("alice@example.com"), now).unwrap();
    assert_eq!(outbox::claim_due(&mut c, now, LEASE, 10).unwrap().len(), 1);
    assert!(
        outbox::claim_due(&mut c, now, LEASE, 10)
            .unwrap()
            .is_empty(),
        "a held message is not due for anyone else"
    );
    drop(c);

    // Two workers at once, on their own connections, over the same due messages.
    const N: usize = 30;
    let mut c = t.db.conn().unwrap();
    let ids: HashSet<String> = (0..N)
        .map(|i| outbox::enqueue(&mut c, &email(&format!("u{i}@example.com")), now).unwrap())
        .collect();
    drop(c);
    let barrier = Arc::new(Barrier::new(2));
    let workers: Vec<_> = (0..2)
        .map(|_| {
            let db = t.db.clone();
            let barrier = barrier.clone();
            std::thread::spawn(move || {
                let mut c = db.conn().unwrap();
                barrier.wait();
                let mut mine = Vec::new();
                loop {
                    let batch =
                        write_transaction(&mut c, |c| outbox::claim_due(c, now, LEASE, 4)).unwrap();
                    if batch.is_empty() {
                        return mine;
                    }
                    mine.extend(batch.into_iter().map(|m| m.id));
                }
            })
        })
        .collect();
    let mut all = Vec::new();
    for w in workers {
        all.extend(w.join().unwrap());
    }
    assert_eq!(all.len(), N, "every message claimed once, none twice");
    assert_eq!(all.into_iter().collect::<HashSet<_>>(), ids);
}

#[test]
fn a_failed_message_comes_back_after_its_backoff_and_a_sent_one_never() {
    let t = TestDb::new().unwrap();
    let mut c = t.db.conn().unwrap();
    let now = Timestamp::now();
    let id = outbox::enqueue(&mut c, &email("alice@example.com"), now).unwrap();
    let first = outbox::claim_due(&mut c, now, LEASE, 10).unwrap().remove(0);
    let retry_at = now.plus(Duration::from_secs(5));
    assert!(outbox::mark_failed(&mut c, &id, first.attempt, retry_at, "421 try later").unwrap());
    let status = outbox::status(&mut c, &id).unwrap().unwrap();
    assert_eq!(status.attempts, 1);
    assert_eq!(status.next_attempt_at, retry_at);
    assert_eq!(status.last_error.as_deref(), Some("421 try later"));
    assert_eq!(status.sent_at, None);

    let before = retry_at.minus(Duration::from_millis(1));
    assert!(
        outbox::claim_due(&mut c, before, LEASE, 10)
            .unwrap()
            .is_empty()
    );
    let second = outbox::claim_due(&mut c, retry_at, LEASE, 10)
        .unwrap()
        .remove(0);
    assert_eq!((second.id.as_str(), second.attempt), (id.as_str(), 2));
    assert!(outbox::mark_sent(&mut c, &id, second.attempt, retry_at).unwrap());
    let status = outbox::status(&mut c, &id).unwrap().unwrap();
    assert_eq!(status.sent_at, Some(retry_at));

    let much_later = now.plus(Duration::from_secs(30 * 24 * 3600));
    assert!(
        outbox::claim_due(&mut c, much_later, LEASE, 10)
            .unwrap()
            .is_empty()
    );
    assert_eq!(outbox::pending_count(&mut c).unwrap(), 0);
    assert_eq!(outbox::next_due_at(&mut c).unwrap(), None);
}

#[test]
fn a_worker_whose_lease_ran_out_changes_nothing() {
    let t = TestDb::new().unwrap();
    let mut c = t.db.conn().unwrap();
    let now = Timestamp::now();
    let id = outbox::enqueue(&mut c, &email("alice@example.com"), now).unwrap();
    let slow = outbox::claim_due(&mut c, now, LEASE, 10).unwrap().remove(0);
    let expired = now.plus(LEASE);
    let other = outbox::claim_due(&mut c, expired, LEASE, 10)
        .unwrap()
        .remove(0);
    assert_eq!(other.attempt, slow.attempt + 1);

    assert!(!outbox::mark_failed(&mut c, &id, slow.attempt, now, "timed out").unwrap());
    assert!(!outbox::give_up(&mut c, &id, slow.attempt, now, "timed out").unwrap());
    assert!(!outbox::mark_sent(&mut c, &id, slow.attempt, now).unwrap());
    let status = outbox::status(&mut c, &id).unwrap().unwrap();
    assert_eq!(
        (status.sent_at, status.gave_up_at, status.last_error),
        (None, None, None)
    );
    assert!(outbox::mark_sent(&mut c, &id, other.attempt, expired).unwrap());
}

#[test]
fn a_message_given_up_is_never_claimed_again() {
    let t = TestDb::new().unwrap();
    let mut c = t.db.conn().unwrap();
    let now = Timestamp::now();
    let id = outbox::enqueue(&mut c, &sms("+12025550100"), now).unwrap();
    let claim = outbox::claim_due(&mut c, now, LEASE, 10).unwrap().remove(0);
    let long = format!("550 {}", "no such user ".repeat(100));
    assert!(outbox::give_up(&mut c, &id, claim.attempt, now, &long).unwrap());
    let status = outbox::status(&mut c, &id).unwrap().unwrap();
    assert_eq!(status.gave_up_at, Some(now));
    assert_eq!(
        status.last_error.unwrap().chars().count(),
        outbox::MAX_ERROR_CHARS,
        "the stored error is bounded"
    );
    let much_later = now.plus(Duration::from_secs(30 * 24 * 3600));
    assert!(
        outbox::claim_due(&mut c, much_later, LEASE, 10)
            .unwrap()
            .is_empty()
    );
    assert_eq!(outbox::pending_count(&mut c).unwrap(), 0);
}

#[test]
fn pending_count_and_next_due_at_follow_the_queue() {
    let t = TestDb::new().unwrap();
    let mut c = t.db.conn().unwrap();
    let now = Timestamp::now();
    assert_eq!(outbox::next_due_at(&mut c).unwrap(), None);
    outbox::enqueue(&mut c, &email("a@example.com"), now.plus(LEASE)).unwrap();
    outbox::enqueue(&mut c, &sms("+12025550100"), now).unwrap();
    assert_eq!(outbox::pending_count(&mut c).unwrap(), 2);
    assert_eq!(outbox::next_due_at(&mut c).unwrap(), Some(now));
    let claim = outbox::claim_due(&mut c, now, LEASE, 10).unwrap().remove(0);
    assert_eq!(outbox::next_due_at(&mut c).unwrap(), Some(now.plus(LEASE)));
    outbox::mark_sent(&mut c, &claim.id, claim.attempt, now).unwrap();
    assert_eq!(outbox::pending_count(&mut c).unwrap(), 1);
}

#[test]
fn housekeeping_purges_old_sent_and_stale_messages_and_keeps_the_rest() {
    let t = TestDb::new().unwrap();
    let mut c = t.db.conn().unwrap();
    let now = Timestamp::now();
    let day = Duration::from_secs(24 * 3600);

    let sent_long_ago =
        outbox::enqueue(&mut c, &email("old@example.com"), now.minus(day * 2)).unwrap();
    let claim = outbox::claim_due(&mut c, now.minus(day * 2), LEASE, 1)
        .unwrap()
        .remove(0);
    outbox::mark_sent(&mut c, &sent_long_ago, claim.attempt, now.minus(day * 2)).unwrap();

    let sent_recently = outbox::enqueue(&mut c, &email("new@example.com"), now).unwrap();
    let claim = outbox::claim_due(&mut c, now, LEASE, 1).unwrap().remove(0);
    outbox::mark_sent(&mut c, &sent_recently, claim.attempt, now).unwrap();

    let stale = outbox::enqueue(&mut c, &sms("+12025550100"), now.minus(day * 8)).unwrap();
    let pending = outbox::enqueue(&mut c, &sms("+12025550101"), now.minus(day * 2)).unwrap();

    let purged = housekeeping::purge_expired(&mut c, now).unwrap();
    assert_eq!(purged.outbox, 2);
    assert!(outbox::status(&mut c, &sent_long_ago).unwrap().is_none());
    assert!(outbox::status(&mut c, &stale).unwrap().is_none());
    assert!(outbox::status(&mut c, &sent_recently).unwrap().is_some());
    assert!(outbox::status(&mut c, &pending).unwrap().is_some());
}
