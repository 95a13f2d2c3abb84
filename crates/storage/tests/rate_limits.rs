//! The shared rate-limit counters on SQLite and, with BRAID_TEST_DATABASE_URL, PostgreSQL.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use braid_core::Timestamp;
use braid_storage::repo::housekeeping;
use braid_storage::repo::rate_limits::{self, RateLimit};
use braid_storage::test_support::TestDb;
use braid_storage::write_transaction;
use std::sync::{Arc, Barrier};
use std::time::Duration;

const WINDOW: Duration = Duration::from_secs(900);

#[test]
fn max_hits_are_allowed_then_limited_until_the_window_ends() {
    let t = TestDb::new().unwrap();
    let mut c = t.db.conn().unwrap();
    let start = Timestamp::from_millis(1_000_000);
    for i in 0..5 {
        let at = start.plus(Duration::from_secs(i));
        assert_eq!(
            rate_limits::hit(&mut c, "pw:user:a", WINDOW, 5, at).unwrap(),
            RateLimit::Allowed,
            "hit {i}"
        );
    }
    let later = start.plus(Duration::from_secs(60));
    assert_eq!(
        rate_limits::hit(&mut c, "pw:user:a", WINDOW, 5, later).unwrap(),
        RateLimit::Limited {
            retry_after: WINDOW - Duration::from_secs(60)
        },
        "the window started with the first hit and is not extended by later ones"
    );
    assert_eq!(
        rate_limits::hit(&mut c, "pw:user:b", WINDOW, 5, later).unwrap(),
        RateLimit::Allowed,
        "another bucket counts on its own"
    );
}

#[test]
fn a_new_window_starts_counting_afresh() {
    let t = TestDb::new().unwrap();
    let mut c = t.db.conn().unwrap();
    let start = Timestamp::from_millis(1_000_000);
    for _ in 0..3 {
        rate_limits::hit(&mut c, "pw:ip:192.0.2.1", WINDOW, 2, start).unwrap();
    }
    let just_before = start.plus(WINDOW).minus(Duration::from_millis(1));
    assert_eq!(
        rate_limits::hit(&mut c, "pw:ip:192.0.2.1", WINDOW, 2, just_before).unwrap(),
        RateLimit::Limited {
            retry_after: Duration::from_millis(1)
        }
    );
    let after = start.plus(WINDOW);
    assert!(
        rate_limits::hit(&mut c, "pw:ip:192.0.2.1", WINDOW, 2, after)
            .unwrap()
            .is_allowed()
    );
    assert!(
        rate_limits::hit(&mut c, "pw:ip:192.0.2.1", WINDOW, 2, after)
            .unwrap()
            .is_allowed()
    );
    assert!(
        !rate_limits::hit(&mut c, "pw:ip:192.0.2.1", WINDOW, 2, after)
            .unwrap()
            .is_allowed(),
        "the new window has the same limit"
    );
}

#[test]
fn concurrent_hits_never_exceed_the_limit() {
    let t = TestDb::new().unwrap();
    let now = Timestamp::now();
    let max = 10;
    let barrier = Arc::new(Barrier::new(2));
    let threads: Vec<_> = (0..2)
        .map(|_| {
            let db = t.db.clone();
            let barrier = barrier.clone();
            std::thread::spawn(move || {
                let mut c = db.conn().unwrap();
                barrier.wait();
                (0..max)
                    .filter(|_| {
                        write_transaction(&mut c, |c| {
                            rate_limits::hit(c, "pw:user:shared", WINDOW, max, now)
                        })
                        .unwrap()
                        .is_allowed()
                    })
                    .count()
            })
        })
        .collect();
    let allowed: usize = threads.into_iter().map(|h| h.join().unwrap()).sum();
    assert_eq!(allowed, max as usize, "of {} hits", 2 * max);
}

#[test]
fn housekeeping_deletes_buckets_whose_window_ended() {
    let t = TestDb::new().unwrap();
    let mut c = t.db.conn().unwrap();
    let now = Timestamp::now();
    rate_limits::hit(&mut c, "old", WINDOW, 5, now.minus(WINDOW * 2)).unwrap();
    rate_limits::hit(&mut c, "live", WINDOW, 5, now).unwrap();
    let purged = housekeeping::purge_expired(&mut c, now).unwrap();
    assert_eq!(purged.rate_limits, 1);
    assert_eq!(t.count("rate_limits"), 1);
}
