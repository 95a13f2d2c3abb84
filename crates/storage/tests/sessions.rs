//! Server-side sessions in the database, on SQLite and, with BRAID_TEST_DATABASE_URL, PostgreSQL.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use braid_core::Timestamp;
use braid_storage::repo::housekeeping;
use braid_storage::repo::sessions;
use braid_storage::test_support::TestDb;
use std::time::Duration;

const DAY: Duration = Duration::from_secs(24 * 3600);

#[test]
fn a_session_is_read_until_it_expires_and_an_expired_one_is_never_revived() {
    let t = TestDb::new().unwrap();
    let mut c = t.db.conn().unwrap();
    let now = Timestamp::from_millis(10_000_000);
    let expires = now.plus(Duration::from_secs(60));
    sessions::insert(&mut c, b"hash-a", r#"{"k":"1"}"#, now, expires).unwrap();
    assert_eq!(
        sessions::load(&mut c, b"hash-a", now).unwrap().as_deref(),
        Some(r#"{"k":"1"}"#)
    );
    assert_eq!(sessions::load(&mut c, b"hash-b", now).unwrap(), None);
    // Updated while live: new state, new expiry.
    let later = now.plus(Duration::from_secs(30));
    assert!(sessions::update(&mut c, b"hash-a", r#"{"k":"2"}"#, later, later.plus(DAY)).unwrap());
    assert_eq!(
        sessions::load(&mut c, b"hash-a", now.plus(Duration::from_secs(120)))
            .unwrap()
            .as_deref(),
        Some(r#"{"k":"2"}"#)
    );
    // Past its expiry it is absent, and neither an update nor a touch brings it back.
    let gone = later.plus(DAY);
    assert_eq!(sessions::load(&mut c, b"hash-a", gone).unwrap(), None);
    assert!(!sessions::update(&mut c, b"hash-a", "{}", gone, gone.plus(DAY)).unwrap());
    sessions::touch(&mut c, b"hash-a", gone, gone.plus(DAY)).unwrap();
    assert_eq!(sessions::load(&mut c, b"hash-a", gone).unwrap(), None);
}

#[test]
fn a_key_clash_is_an_error_never_an_overwrite() {
    let t = TestDb::new().unwrap();
    let mut c = t.db.conn().unwrap();
    let now = Timestamp::from_millis(10_000_000);
    sessions::insert(&mut c, b"same", r#"{"who":"first"}"#, now, now.plus(DAY)).unwrap();
    assert!(sessions::insert(&mut c, b"same", r#"{"who":"second"}"#, now, now.plus(DAY)).is_err());
    assert_eq!(
        sessions::load(&mut c, b"same", now).unwrap().as_deref(),
        Some(r#"{"who":"first"}"#)
    );
    sessions::delete(&mut c, b"same").unwrap();
    assert_eq!(sessions::load(&mut c, b"same", now).unwrap(), None);
}

#[test]
fn housekeeping_deletes_expired_sessions_and_keeps_live_ones() {
    let t = TestDb::new().unwrap();
    let mut c = t.db.conn().unwrap();
    let now = Timestamp::from_millis(100_000_000);
    sessions::insert(
        &mut c,
        b"old",
        "{}",
        now.minus(DAY),
        now.minus(Duration::from_secs(1)),
    )
    .unwrap();
    sessions::insert(&mut c, b"live", "{}", now, now.plus(DAY)).unwrap();
    let purged = housekeeping::purge_expired(&mut c, now).unwrap();
    assert_eq!(purged.sessions, 1);
    assert_eq!(t.count("sessions"), 1);
    assert!(sessions::load(&mut c, b"live", now).unwrap().is_some());
}
