//! Storage behaviour on the default SQLite and, with BRAID_TEST_DATABASE_URL, on PostgreSQL.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use braid_core::{
    Email, FederatedIdentity, Phone, Profile, ProviderId, Subject, Timestamp, UserEmail, UserId,
    UserPhone, VerifiableEmail,
};
use braid_storage::repo::{
    exchange_codes, identities, keys, link_flows, users, verification_codes,
};
use braid_storage::test_support::TestDb;
use braid_storage::{StorageError, write_transaction};
use std::sync::{Arc, Barrier};
use std::time::Duration;

fn identity(provider: &str, subject: &str, email: &str) -> FederatedIdentity {
    FederatedIdentity {
        provider: ProviderId::parse(provider).unwrap(),
        issuer: format!("https://{provider}.example"),
        subject: Subject::parse(subject).unwrap(),
        emails: vec![VerifiableEmail {
            email: Email::parse(email).unwrap(),
            verified: true,
            provider_verified: true,
        }],
        phones: vec![],
        profile: Profile {
            name: Some("Alice".into()),
            ..Profile::default()
        },
    }
}

fn verified_email(e: &str) -> UserEmail {
    UserEmail {
        email: Email::parse(e).unwrap(),
        verified_at: Some(Timestamp::now()),
        is_primary: true,
    }
}

fn new_user(email: &str) -> users::NewUser {
    users::NewUser {
        emails: vec![verified_email(email)],
        ..users::NewUser::default()
    }
}

#[test]
fn user_with_contacts_and_identity_round_trips() {
    let t = TestDb::new().unwrap();
    let mut c = t.db.conn().unwrap();
    let now = Timestamp::now();
    let new = users::NewUser {
        display_name: Some("Alice Example".into()),
        is_admin: false,
        emails: vec![
            verified_email("alice@example.com"),
            UserEmail {
                email: Email::parse("alice@work.example").unwrap(),
                verified_at: None,
                is_primary: false,
            },
        ],
        phones: vec![UserPhone {
            phone: Phone::parse("+12025550100").unwrap(),
            verified_at: Some(now),
        }],
    };
    let id = identity("github", "12345", "alice@example.com");
    let (user, linked) = users::create_with_identity(&mut c, &new, &id, now).unwrap();

    let loaded = users::find(&mut c, &user.id).unwrap().unwrap();
    assert_eq!(loaded, user);
    assert_eq!(
        loaded.created_at, now,
        "millisecond timestamps round-trip exactly"
    );
    let emails = users::emails(&mut c, &user.id).unwrap();
    assert_eq!(emails, new.emails);
    assert_eq!(users::phones(&mut c, &user.id).unwrap(), new.phones);

    let found = identities::find_by_key(&mut c, &id.provider, &id.subject)
        .unwrap()
        .unwrap();
    assert_eq!(found, linked);
    assert_eq!(found.user_id, user.id);
    assert_eq!(found.snapshot, id);
    assert_eq!(identities::of_user(&mut c, &user.id).unwrap(), vec![linked]);
    assert!(users::find(&mut c, &UserId::generate()).unwrap().is_none());
}

#[test]
fn unique_provider_subject_is_enforced() {
    let t = TestDb::new().unwrap();
    let mut c = t.db.conn().unwrap();
    let now = Timestamp::now();
    let a = users::create(&mut c, &new_user("a@example.com"), now).unwrap();
    let b = users::create(&mut c, &new_user("b@example.com"), now).unwrap();
    let id = identity("google", "sub-1", "a@example.com");
    identities::insert(&mut c, &a.id, &id, now).unwrap();

    let again = identities::insert(&mut c, &b.id, &id, now);
    assert!(matches!(again, Err(StorageError::Conflict(_))), "{again:?}");
    // The same subject at another provider is another identity.
    identities::insert(
        &mut c,
        &b.id,
        &identity("gitlab", "sub-1", "b@example.com"),
        now,
    )
    .unwrap();
    let owner = identities::find_by_key(&mut c, &id.provider, &id.subject)
        .unwrap()
        .unwrap();
    assert_eq!(owner.user_id, a.id);
}

#[test]
fn failed_multi_row_write_leaves_nothing_behind() {
    let t = TestDb::new().unwrap();
    let mut c = t.db.conn().unwrap();
    let now = Timestamp::now();
    let id = identity("google", "taken", "a@example.com");
    users::create_with_identity(&mut c, &new_user("a@example.com"), &id, now).unwrap();
    assert_eq!(users::count(&mut c).unwrap(), 1);

    // The user row is written first, then the identity insert fails: both must be gone.
    let err =
        users::create_with_identity(&mut c, &new_user("b@example.com"), &id, now).unwrap_err();
    assert!(matches!(err, StorageError::Conflict(_)), "{err:?}");
    assert_eq!(users::count(&mut c).unwrap(), 1, "no orphan user");
    assert_eq!(identities::count(&mut c).unwrap(), 1);

    // A failing contact row (same address twice) undoes the user row too.
    let dup = users::NewUser {
        emails: vec![
            verified_email("c@example.com"),
            verified_email("c@example.com"),
        ],
        ..users::NewUser::default()
    };
    assert!(users::create(&mut c, &dup, now).is_err());
    assert_eq!(users::count(&mut c).unwrap(), 1);

    // The retry after the failure succeeds.
    let fresh = identity("google", "fresh", "b@example.com");
    users::create_with_identity(&mut c, &new_user("b@example.com"), &fresh, now).unwrap();
    assert_eq!(users::count(&mut c).unwrap(), 2);
}

#[test]
fn failed_write_transaction_rolls_back_every_statement() {
    let t = TestDb::new().unwrap();
    let mut c = t.db.conn().unwrap();
    let now = Timestamp::now();
    let result: Result<(), StorageError> = write_transaction(&mut c, |c| {
        users::create(c, &new_user("x@example.com"), now)?;
        users::create(c, &new_user("y@example.com"), now)?;
        Err(StorageError::Conflict("injected failure".into()))
    });
    assert!(result.is_err());
    assert_eq!(users::count(&mut c).unwrap(), 0);
}

#[test]
fn verified_email_belongs_to_at_most_one_user() {
    let t = TestDb::new().unwrap();
    let mut c = t.db.conn().unwrap();
    let now = Timestamp::now();
    users::create(&mut c, &new_user("shared@example.com"), now).unwrap();
    let second = users::create(&mut c, &new_user("shared@example.com"), now);
    assert!(
        matches!(second, Err(StorageError::Conflict(_))),
        "{second:?}"
    );
    // Unverified copies of the address may exist (they prove nothing and match nothing).
    let unverified = users::NewUser {
        emails: vec![UserEmail {
            email: Email::parse("shared@example.com").unwrap(),
            verified_at: None,
            is_primary: true,
        }],
        ..users::NewUser::default()
    };
    users::create(&mut c, &unverified, now).unwrap();
    assert_eq!(users::count(&mut c).unwrap(), 2);
}

fn new_code(hash: &[u8], user: &UserId, ttl: Duration) -> exchange_codes::NewExchangeCode {
    let now = Timestamp::now();
    exchange_codes::NewExchangeCode {
        code_hash: hash.to_vec(),
        client_id: "app".into(),
        redirect_uri: "https://app.example/cb".into(),
        code_challenge: None,
        code_challenge_method: None,
        user_id: user.clone(),
        auth_context: "{}".into(),
        created_at: now,
        expires_at: now.plus(ttl),
    }
}

#[test]
fn i07_concurrent_consumers_of_one_code_exactly_one_wins() {
    let t = TestDb::new().unwrap();
    let user = {
        let mut c = t.db.conn().unwrap();
        let u = users::create(&mut c, &new_user("a@example.com"), Timestamp::now()).unwrap();
        exchange_codes::insert(&mut c, &new_code(b"hash-1", &u.id, Duration::from_secs(60)))
            .unwrap();
        u
    };
    const RACERS: usize = 8;
    let barrier = Arc::new(Barrier::new(RACERS));
    let handles: Vec<_> = (0..RACERS)
        .map(|_| {
            let db = t.db.clone();
            let barrier = barrier.clone();
            std::thread::spawn(move || {
                let mut c = db.conn().unwrap();
                barrier.wait();
                exchange_codes::consume(&mut c, b"hash-1", Timestamp::now()).unwrap()
            })
        })
        .collect();
    let winners: Vec<_> = handles
        .into_iter()
        .filter_map(|h| h.join().unwrap())
        .collect();
    assert_eq!(winners.len(), 1, "exactly one consumer gets the code");
    assert_eq!(winners[0].user_id, user.id);
    assert_eq!(winners[0].redirect_uri, "https://app.example/cb");
    let mut c = t.db.conn().unwrap();
    assert!(
        exchange_codes::consume(&mut c, b"hash-1", Timestamp::now())
            .unwrap()
            .is_none()
    );
}

#[test]
fn i08_concurrent_guesses_at_a_code_count_at_most_its_maximum() {
    let t = TestDb::new().unwrap();
    let now = Timestamp::now();
    {
        let mut c = t.db.conn().unwrap();
        let u = users::create(&mut c, &new_user("a@example.com"), now).unwrap();
        link_flows::insert(
            &mut c,
            &link_flows::NewLinkFlow {
                id_hash: b"flow-1".to_vec(),
                identity: identity("google", "sub-1", "a@example.com"),
                candidates: vec![u.id.clone()],
                reason: "manual_resolution".into(),
                allow_create: false,
                client_id: "app".into(),
                redirect_uri: "https://app.example/cb".into(),
                app_state: None,
                code_challenge: None,
                created_at: now,
                expires_at: now.plus(Duration::from_secs(600)),
            },
        )
        .unwrap();
        verification_codes::insert(
            &mut c,
            &verification_codes::NewCode {
                id: "code-1".into(),
                flow_id_hash: b"flow-1".to_vec(),
                user_id: u.id,
                channel: "email".into(),
                destination: "a@example.com".into(),
                code_hash: b"keyed-hash".to_vec(),
                max_attempts: 5,
                created_at: now,
                expires_at: now.plus(Duration::from_secs(600)),
            },
        )
        .unwrap();
    }
    const RACERS: usize = 8;
    let barrier = Arc::new(Barrier::new(RACERS));
    let handles: Vec<_> = (0..RACERS)
        .map(|_| {
            let db = t.db.clone();
            let barrier = barrier.clone();
            std::thread::spawn(move || {
                let mut c = db.conn().unwrap();
                barrier.wait();
                verification_codes::attempt(&mut c, "code-1", Timestamp::now()).unwrap()
            })
        })
        .collect();
    let mut counted: Vec<i32> = handles
        .into_iter()
        .filter_map(|h| h.join().unwrap())
        .map(|a| a.attempts)
        .collect();
    counted.sort();
    assert_eq!(
        counted,
        [1, 2, 3, 4, 5],
        "each guess got its own count, none past 5"
    );
    let mut c = t.db.conn().unwrap();
    assert_eq!(
        verification_codes::attempts_for_flow(&mut c, b"flow-1").unwrap(),
        5
    );
}

#[test]
fn expired_or_unknown_code_is_not_consumed() {
    let t = TestDb::new().unwrap();
    let mut c = t.db.conn().unwrap();
    let u = users::create(&mut c, &new_user("a@example.com"), Timestamp::now()).unwrap();
    exchange_codes::insert(&mut c, &new_code(b"short", &u.id, Duration::from_millis(1))).unwrap();
    let later = Timestamp::now().plus(Duration::from_secs(1));
    assert!(
        exchange_codes::consume(&mut c, b"short", later)
            .unwrap()
            .is_none()
    );
    assert!(
        exchange_codes::consume(&mut c, b"never-issued", Timestamp::now())
            .unwrap()
            .is_none()
    );
}

fn key(kid: &str) -> keys::NewSigningKey {
    keys::NewSigningKey {
        kid: kid.into(),
        alg: "ES256".into(),
        private_key: kid.as_bytes().to_vec(),
        public_jwk: format!("{{\"kid\":\"{kid}\"}}"),
    }
}

const MINUTE: Duration = Duration::from_secs(60);

/// A ten-minute publish delay; the replaced key stays published sixteen minutes more.
const TIMES: keys::RotationTimes = keys::RotationTimes {
    publish_delay: Duration::from_secs(600),
    token_lifetime: Duration::from_secs(960),
};

fn states(c: &mut braid_storage::DbConn, now: Timestamp) -> Vec<(String, &'static str)> {
    keys::all(c)
        .unwrap()
        .into_iter()
        .map(|k| (k.kid, k.schedule.state(now).as_str()))
        .collect()
}

fn kids(records: Vec<keys::SigningKeyRecord>) -> Vec<String> {
    records.into_iter().map(|k| k.kid).collect()
}

fn signing(c: &mut braid_storage::DbConn, now: Timestamp) -> String {
    keys::ensure_signing_key(c, now, || panic!("a key exists"))
        .unwrap()
        .kid
}

#[test]
fn concurrent_first_starts_agree_on_one_signing_key_and_secret() {
    let t = TestDb::new().unwrap();
    const STARTS: usize = 6;
    let barrier = Arc::new(Barrier::new(STARTS));
    let now = Timestamp::now();
    let handles: Vec<_> = (0..STARTS)
        .map(|i| {
            let db = t.db.clone();
            let barrier = barrier.clone();
            std::thread::spawn(move || {
                let mut c = db.conn().unwrap();
                barrier.wait();
                let k =
                    keys::ensure_signing_key(&mut c, now, || Ok(key(&format!("kid-{i}")))).unwrap();
                let s = keys::secret_get_or_create(&mut c, "session_key", || Ok(vec![i as u8; 64]))
                    .unwrap();
                (k.kid, s)
            })
        })
        .collect();
    let results: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    assert!(results.windows(2).all(|w| w[0] == w[1]), "{results:?}");
    let mut c = t.db.conn().unwrap();
    assert_eq!(keys::published(&mut c, Timestamp::now()).unwrap().len(), 1);
}

#[test]
fn the_key_lifecycle_follows_from_the_rows_and_the_clock() {
    let t = TestDb::new().unwrap();
    let mut c = t.db.conn().unwrap();
    let t0 = Timestamp::now();
    keys::ensure_signing_key(&mut c, t0, || Ok(key("old"))).unwrap();
    assert_eq!(states(&mut c, t0), [("old".into(), "active")]);

    let t1 = t0.plus(MINUTE);
    let new = keys::rotate(&mut c, &key("new"), t1, TIMES).unwrap();
    assert_eq!(new.schedule.activate_at, t1.plus(TIMES.publish_delay));
    let switch = new.schedule.activate_at;
    let gone = switch.plus(TIMES.token_lifetime);

    for (at, old, new) in [
        (t1, "active", "next"),
        (switch.minus(Duration::from_millis(1)), "active", "next"),
        (switch, "retiring", "active"),
        (gone.minus(Duration::from_millis(1)), "retiring", "active"),
        (gone, "expired", "active"),
    ] {
        assert_eq!(
            states(&mut c, at),
            [("old".into(), old), ("new".into(), new)],
            "at {}",
            at.to_rfc3339()
        );
    }
    // Whoever reads the rows sees the same thing at the same moment: published are the next,
    // active and retiring keys, newest first; expired ones are not.
    assert_eq!(kids(keys::published(&mut c, t1).unwrap()), ["new", "old"]);
    assert_eq!(
        kids(keys::published(&mut c, switch).unwrap()),
        ["new", "old"]
    );
    assert_eq!(kids(keys::published(&mut c, gone).unwrap()), ["new"]);
}

#[test]
fn rotate_does_not_change_the_signing_key_before_the_publish_delay() {
    let t = TestDb::new().unwrap();
    let mut c = t.db.conn().unwrap();
    let t0 = Timestamp::now();
    keys::ensure_signing_key(&mut c, t0, || Ok(key("old"))).unwrap();
    let new = keys::rotate(&mut c, &key("new"), t0, TIMES).unwrap();
    let switch = new.schedule.activate_at;
    assert_eq!(signing(&mut c, t0), "old");
    assert_eq!(
        signing(&mut c, switch.minus(Duration::from_millis(1))),
        "old"
    );
    assert_eq!(signing(&mut c, switch), "new");
}

#[test]
fn rotations_at_once_leave_every_key_signing_in_turn() {
    let t = TestDb::new().unwrap();
    let t0 = Timestamp::now();
    keys::ensure_signing_key(&mut t.db.conn().unwrap(), t0, || Ok(key("k0"))).unwrap();
    const ROTATIONS: usize = 6;
    let barrier = Arc::new(Barrier::new(ROTATIONS));
    let handles: Vec<_> = (1..=ROTATIONS)
        .map(|i| {
            let db = t.db.clone();
            let barrier = barrier.clone();
            std::thread::spawn(move || {
                let mut c = db.conn().unwrap();
                barrier.wait();
                keys::rotate(&mut c, &key(&format!("k{i}")), t0, TIMES)
            })
        })
        .collect();
    let mut won = 0;
    for h in handles {
        match h.join().unwrap() {
            Ok(_) => won += 1,
            // PostgreSQL: two rotations that read the same newest key; the second one's
            // generation is taken, and its whole transaction is refused.
            Err(StorageError::Conflict(_)) => {}
            Err(e) => panic!("{e}"),
        }
    }
    assert!(won >= 1);
    let all = keys::all(&mut t.db.conn().unwrap()).unwrap();
    assert_eq!(all.len(), won + 1, "a refused rotation left nothing behind");
    for (i, pair) in all.windows(2).enumerate() {
        let (older, newer) = (&pair[0].schedule, &pair[1].schedule);
        assert_eq!(newer.generation, older.generation + 1, "generation {i}");
        assert_eq!(
            older.retire_at,
            Some(newer.activate_at),
            "signing hands over"
        );
        assert!(older.activate_at <= newer.activate_at);
    }
    assert_eq!(all.last().unwrap().schedule.retire_at, None);
}

/// Back to the schema before the signing-key schedule migration (reverting the ones after it).
fn revert_through_schedule_migration(t: &TestDb) {
    let mut reverted: Vec<String> = Vec::new();
    while !reverted
        .last()
        .is_some_and(|v| v.starts_with("20261206000040"))
    {
        assert!(reverted.len() < 20, "no schedule migration: {reverted:?}");
        reverted.push(t.revert_last_migration());
    }
}

#[test]
fn existing_keys_keep_their_meaning_through_the_schedule_migration() {
    let t = TestDb::new().unwrap();
    revert_through_schedule_migration(&t);
    // As the previous schema had them: one active key, two retired ones.
    t.execute(
        "INSERT INTO signing_keys (kid, alg, private_key, public_jwk, status, created_at, retired_at) VALUES \
         ('a', 'ES256', 'x', '{}', 'retired', 1000, 5000), \
         ('b', 'ES256', 'x', '{}', 'retired', 4000, 9000), \
         ('c', 'ES256', 'x', '{}', 'active', 8000, NULL)",
    );
    t.db.migrate().unwrap();
    let mut c = t.db.conn().unwrap();
    let schedules: Vec<_> = keys::all(&mut c)
        .unwrap()
        .into_iter()
        .map(|k| {
            let s = k.schedule;
            (
                k.kid,
                s.generation,
                s.activate_at.as_millis(),
                s.retire_at.map(Timestamp::as_millis),
                s.expire_at.map(Timestamp::as_millis),
            )
        })
        .collect();
    assert_eq!(
        schedules,
        [
            ("a".into(), 1, 1000, Some(5000), Some(965_000)),
            ("b".into(), 2, 4000, Some(9000), Some(969_000)),
            ("c".into(), 3, 9000, None, None),
        ]
    );
    assert_eq!(signing(&mut c, Timestamp::from_millis(10_000)), "c");
    // And back: the key that signs is the active one again.
    drop(c);
    revert_through_schedule_migration(&t);
    assert_eq!(
        t.count("signing_keys WHERE status = 'active' AND kid = 'c'"),
        1
    );
    assert_eq!(t.count("signing_keys WHERE status = 'retired'"), 2);
    t.db.migrate().unwrap();
}

#[test]
fn deleting_a_user_removes_its_identities_and_contacts() {
    use diesel::RunQueryDsl;
    let t = TestDb::new().unwrap();
    let mut c = t.db.conn().unwrap();
    let id = identity("google", "gone", "a@example.com");
    let (user, _) =
        users::create_with_identity(&mut c, &new_user("a@example.com"), &id, Timestamp::now())
            .unwrap();
    let deleted = diesel::sql_query(format!("DELETE FROM users WHERE id = '{}'", user.id))
        .execute(&mut *c)
        .unwrap();
    assert_eq!(deleted, 1);
    assert!(
        identities::find_by_key(&mut c, &id.provider, &id.subject)
            .unwrap()
            .is_none()
    );
    assert!(users::emails(&mut c, &user.id).unwrap().is_empty());
}

#[tokio::test]
async fn migrations_are_idempotent_and_readiness_reports_them() {
    let t = TestDb::new().unwrap();
    assert!(t.db.is_ready().await.unwrap());
    assert_eq!(t.db.migrate().unwrap(), 0, "nothing left to apply");
    let n = t.db.run(users::count).await.unwrap();
    assert_eq!(n, 0);
}

#[tokio::test]
async fn an_unmigrated_database_is_reachable_but_not_ready() {
    let dir = std::env::temp_dir().join(format!("braid-fresh-{}", braid_core::new_id()));
    let settings = braid_storage::DatabaseSettings {
        url: format!("sqlite://{}", dir.join("fresh.db").display()),
        ..Default::default()
    };
    let db = braid_storage::Database::connect(&settings).unwrap();
    assert!(!db.is_ready().await.unwrap());
    assert!(db.has_pending_migrations().unwrap());
    db.migrate().unwrap();
    assert!(db.is_ready().await.unwrap());
    assert!(!db.has_pending_migrations().unwrap());
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn housekeeping_removes_only_rows_past_their_grace_period() {
    use braid_storage::repo::housekeeping;
    let t = TestDb::new().unwrap();
    let mut c = t.db.conn().unwrap();
    let u = users::create(&mut c, &new_user("a@example.com"), Timestamp::now()).unwrap();
    exchange_codes::insert(&mut c, &new_code(b"live", &u.id, Duration::from_secs(60))).unwrap();
    let mut recently_expired = new_code(b"recent", &u.id, Duration::from_secs(60));
    recently_expired.expires_at = Timestamp::now().minus(Duration::from_secs(60));
    exchange_codes::insert(&mut c, &recently_expired).unwrap();
    let mut long_gone = new_code(b"old", &u.id, Duration::from_secs(60));
    long_gone.expires_at = Timestamp::from_millis(1);
    exchange_codes::insert(&mut c, &long_gone).unwrap();
    let purged = housekeeping::purge_expired(&mut c, Timestamp::now()).unwrap();
    assert_eq!(purged.exchange_codes, 1);
    assert_eq!(
        t.count("exchange_codes"),
        2,
        "live and recently expired rows stay"
    );
    assert!(
        exchange_codes::consume(&mut c, b"live", Timestamp::now())
            .unwrap()
            .is_some()
    );
}

#[tokio::test]
async fn i04_a_crash_inside_a_write_transaction_leaves_nothing_and_the_next_write_works() {
    let t = TestDb::new().unwrap();
    let crashed =
        t.db.run_write(|c| {
            users::create(c, &new_user("x@example.com"), Timestamp::now())?;
            if t_is_true() {
                panic!("injected crash between two writes");
            }
            Ok(())
        })
        .await;
    assert!(
        matches!(crashed, Err(StorageError::Unavailable(_))),
        "{crashed:?}"
    );
    assert_eq!(
        t.count("users"),
        0,
        "the half-done transaction was rolled back"
    );
    let user =
        t.db.run_write(|c| users::create(c, &new_user("y@example.com"), Timestamp::now()))
            .await
            .unwrap();
    assert_eq!(t.count("users"), 1);
    let id = user.id.clone();
    let found =
        t.db.run(move |c| users::find(c, &id))
            .await
            .unwrap()
            .unwrap();
    assert_eq!(found.id, user.id);
}

fn t_is_true() -> bool {
    std::hint::black_box(true)
}

/// The writes on the login path are prepared once per connection, not on every call (diesel
/// would prepare an UPDATE afresh each time).
#[test]
fn hot_writes_are_prepared_once_per_connection() {
    use braid_storage::repo::{login_flows, refresh_tokens};
    use diesel::Connection;
    use diesel::connection::InstrumentationEvent;

    let t = TestDb::new().unwrap();
    let mut conn = t.db.conn().unwrap();
    let cached: Arc<std::sync::Mutex<Vec<String>>> = Arc::default();
    let sink = cached.clone();
    conn.set_instrumentation(move |event: InstrumentationEvent<'_>| {
        if let InstrumentationEvent::CacheQuery { sql, .. } = event {
            sink.lock().unwrap().push(sql.to_owned());
        }
    });
    for i in 0..3u8 {
        let now = Timestamp::now();
        assert!(login_flows::mark_used(&mut conn, &[i], now).unwrap());
        assert!(
            exchange_codes::consume(&mut conn, &[7; 32], now)
                .unwrap()
                .is_none()
        );
        assert!(!refresh_tokens::mark_rotated(&mut conn, &[7; 32], now).unwrap());
        identities::touch_login(&mut conn, "none", &identity("a", "s", "a@x.example"), now)
            .unwrap();
    }
    let cached = cached.lock().unwrap();
    let marks = cached
        .iter()
        .filter(|sql| sql.starts_with("INSERT") && sql.contains("used_login_flows"))
        .count();
    assert_eq!(marks, 1, "INSERT used_login_flows cached {marks} times");
    for table in ["exchange_codes", "refresh_tokens", "identities"] {
        let updates = cached
            .iter()
            .filter(|sql| sql.starts_with("UPDATE") && sql.contains(table))
            .count();
        assert_eq!(
            updates, 1,
            "UPDATE {table} cached {updates} times: {cached:?}"
        );
    }
}

/// A purge deletes in bounded batches, so it never holds the write lock for long.
#[test]
fn housekeeping_purges_in_batches() {
    use braid_storage::repo::{housekeeping, login_flows};
    let t = TestDb::new().unwrap();
    let mut c = t.db.conn().unwrap();
    let extra = 5;
    write_transaction(&mut c, |c| -> Result<(), StorageError> {
        for i in 0..housekeeping::BATCH + extra {
            assert!(login_flows::mark_used(
                c,
                b"jti",
                Timestamp::from_millis(i + 1)
            )?);
        }
        Ok(())
    })
    .unwrap();
    let first = housekeeping::purge_expired(&mut c, Timestamp::now()).unwrap();
    assert_eq!(first.login_flows as i64, housekeeping::BATCH);
    assert!(first.maybe_more());
    let second = housekeeping::purge_expired(&mut c, Timestamp::now()).unwrap();
    assert_eq!(second.login_flows as i64, extra);
    assert!(!second.maybe_more());
    assert_eq!(t.count("used_login_flows"), 0);
}

/// A login flow is marked used once: the second mark of the same flow says so, and the marks
/// are purged once the flow's cookie has expired anyway.
#[test]
fn a04_login_flow_marks_are_single_use_until_expiry() {
    use braid_storage::repo::{housekeeping, login_flows};
    let t = TestDb::new().unwrap();
    let mut c = t.db.conn().unwrap();
    let now = Timestamp::now();
    let live = now.plus(Duration::from_secs(600));
    assert!(login_flows::mark_used(&mut c, b"flow-1", live).unwrap());
    assert!(!login_flows::mark_used(&mut c, b"flow-1", live).unwrap());
    assert!(login_flows::mark_used(&mut c, b"flow-2", live).unwrap());
    // Expired a few seconds ago: kept (another instance's clock may run behind).
    let just_expired = Timestamp::from_millis(now.as_millis() - 5_000);
    assert!(login_flows::mark_used(&mut c, b"flow-3", just_expired).unwrap());
    let expired = Timestamp::from_millis(now.as_millis() - 3_600_000);
    assert!(login_flows::mark_used(&mut c, b"flow-4", expired).unwrap());
    let purged = housekeeping::purge_expired(&mut c, now).unwrap();
    assert_eq!(purged.login_flows, 1);
    assert_eq!(t.count("used_login_flows"), 3);
    assert!(!login_flows::mark_used(&mut c, b"flow-1", live).unwrap());
}

/// Connections never checkpoint on commit; `Database::checkpoint` (run by the server every
/// second) is what moves committed pages from the write-ahead log into the database file.
#[tokio::test]
async fn committed_pages_reach_the_database_file_only_through_the_checkpoint() {
    let t = TestDb::new().unwrap();
    let Some(path) = t.settings.url.strip_prefix("sqlite://").map(str::to_owned) else {
        // PostgreSQL: nothing to checkpoint, and the call is a no-op.
        t.db.checkpoint().await.unwrap();
        return;
    };
    let file_size = || std::fs::metadata(&path).unwrap().len();
    t.db.checkpoint().await.unwrap();
    let before = file_size();
    // Well past SQLite's default auto-checkpoint threshold of 1,000 WAL frames.
    for i in 0..1000 {
        t.db.run_write(move |c| {
            users::create(c, &new_user(&format!("u{i}@example.com")), Timestamp::now())
        })
        .await
        .unwrap();
    }
    assert_eq!(file_size(), before, "a commit checkpointed on its own");
    t.db.checkpoint().await.unwrap();
    assert!(file_size() > before, "the checkpoint copied nothing");
    assert_eq!(t.count("users"), 1000);
}

#[test]
fn closing_the_database_waits_for_lent_connections_and_then_refuses_work() {
    let t = TestDb::new().unwrap();
    let lent = t.db.conn().unwrap();
    let closer = {
        let db = t.db.clone();
        std::thread::spawn(move || db.close(Duration::from_secs(10)))
    };
    std::thread::sleep(Duration::from_millis(200));
    assert!(!closer.is_finished(), "close waits for the lent connection");
    drop(lent);
    assert_eq!(closer.join().unwrap(), 0, "every connection closed");
    assert!(matches!(t.db.conn(), Err(StorageError::Unavailable(_))));
}

#[test]
fn closing_gives_up_after_its_wait_and_says_how_many_are_still_lent() {
    let t = TestDb::new().unwrap();
    let lent = t.db.conn().unwrap();
    assert_eq!(t.db.close(Duration::from_millis(50)), 1);
    drop(lent);
    assert_eq!(t.db.close(Duration::ZERO), 0, "closed when handed back");
}

#[test]
fn a_full_pool_hands_a_returned_connection_to_the_next_waiter() {
    let t = TestDb::new().unwrap();
    let settings = braid_storage::DatabaseSettings {
        max_connections: 1,
        connect_timeout_secs: 5,
        ..t.settings.clone()
    };
    let db = braid_storage::Database::connect(&settings).unwrap();
    let held = db.conn().unwrap();
    let waiter = {
        let db = db.clone();
        std::thread::spawn(move || db.conn().map(drop))
    };
    std::thread::sleep(Duration::from_millis(100));
    drop(held);
    waiter.join().unwrap().unwrap();
    assert_eq!(db.close(Duration::from_secs(5)), 0);
}

/// diesel knows a migration by its version alone: two folders with one version (two branches
/// that picked the same number) would leave one of them silently unapplied.
#[test]
fn every_migration_has_a_version_of_its_own_and_both_backends_have_the_same_ones() {
    let versions = |backend: &str| -> Vec<String> {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../migrations")
            .join(backend);
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    };
    let sqlite = versions("sqlite");
    assert_eq!(sqlite, versions("postgres"));
    let mut seen = std::collections::HashSet::new();
    for name in &sqlite {
        let version: String = name
            .split('_')
            .next()
            .unwrap()
            .chars()
            .filter(char::is_ascii_digit)
            .collect();
        assert!(
            seen.insert(version.clone()),
            "{name}: version {version} is taken"
        );
    }
}
