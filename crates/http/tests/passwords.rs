//! What the manual-link verify page calls to check a password: the attempt limiter, then the
//! check against the stored hash with its re-hash. SQLite and, with BRAID_TEST_DATABASE_URL,
//! PostgreSQL.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use braid_core::{Secret, Timestamp, UserId};
use braid_http::limiter::{LimitSettings, Limiter, RateLimit};
use braid_http::passwords;
use braid_storage::repo::{credentials, users};
use braid_storage::test_support::TestDb;
use std::net::IpAddr;
use std::time::Duration;

fn limiter(t: &TestDb) -> Limiter {
    Limiter::new(t.db.clone(), LimitSettings::default())
}

fn ip(s: &str) -> Option<IpAddr> {
    Some(s.parse().unwrap())
}

#[tokio::test]
async fn e16_an_account_gets_five_attempts_per_window_from_any_address() {
    let t = TestDb::new().unwrap();
    let l = limiter(&t);
    let user = UserId::generate();
    for i in 0..5 {
        let from = ip(&format!("192.0.2.{i}"));
        assert_eq!(
            l.check_password_attempt(&user, from).await.unwrap(),
            RateLimit::Allowed
        );
    }
    let RateLimit::Limited { retry_after } = l
        .check_password_attempt(&user, ip("198.51.100.1"))
        .await
        .unwrap()
    else {
        panic!("the sixth attempt is limited");
    };
    assert!(retry_after > Duration::from_secs(890) && retry_after <= Duration::from_secs(900));
    assert!(
        l.check_password_attempt(&UserId::generate(), ip("198.51.100.1"))
            .await
            .unwrap()
            .is_allowed(),
        "another account is not limited"
    );
}

#[tokio::test]
async fn e16_an_address_gets_twenty_attempts_across_accounts_without_using_up_theirs() {
    let t = TestDb::new().unwrap();
    let l = limiter(&t);
    let attacker = ip("2001:db8:7:7::1");
    for _ in 0..20 {
        assert!(
            l.check_password_attempt(&UserId::generate(), attacker)
                .await
                .unwrap()
                .is_allowed()
        );
    }
    let victim = UserId::generate();
    // Another address in the same IPv6 /64 is the same client.
    let refused = l
        .check_password_attempt(&victim, ip("2001:db8:7:7::2"))
        .await
        .unwrap();
    assert!(!refused.is_allowed());
    for _ in 0..5 {
        assert!(
            l.check_password_attempt(&victim, ip("192.0.2.1"))
                .await
                .unwrap()
                .is_allowed(),
            "attempts refused for their address did not count against the account"
        );
    }
}

#[tokio::test]
async fn a_bcrypt_password_is_accepted_once_and_stored_as_argon2id_after() {
    let t = TestDb::new().unwrap();
    let user = {
        let mut c = t.db.conn().unwrap();
        let u = users::create(&mut c, &users::NewUser::default(), Timestamp::now()).unwrap();
        let bcrypt = bcrypt::hash("hunter2", 4).unwrap();
        credentials::set_password_hash(&mut c, &u.id, &bcrypt, Timestamp::now()).unwrap();
        u.id
    };
    let stored = |t: &TestDb, user: &UserId| {
        credentials::password_hash(&mut t.db.conn().unwrap(), user)
            .unwrap()
            .unwrap()
    };
    assert!(
        !passwords::check_user_password(&t.db, &user, Secret::new("wrong"))
            .await
            .unwrap()
    );
    assert!(
        stored(&t, &user).starts_with("$2b$"),
        "a wrong password changes nothing"
    );
    assert!(
        passwords::check_user_password(&t.db, &user, Secret::new("hunter2"))
            .await
            .unwrap()
    );
    let upgraded = stored(&t, &user);
    assert!(
        upgraded.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
        "{upgraded}"
    );
    assert!(
        passwords::check_user_password(&t.db, &user, Secret::new("hunter2"))
            .await
            .unwrap()
    );
    assert_eq!(stored(&t, &user), upgraded, "a current hash is kept");
}

#[tokio::test]
async fn an_account_without_a_password_never_passes_a_check() {
    let t = TestDb::new().unwrap();
    let user = users::create(
        &mut t.db.conn().unwrap(),
        &users::NewUser::default(),
        Timestamp::now(),
    )
    .unwrap()
    .id;
    assert!(
        !passwords::check_user_password(&t.db, &user, Secret::new(""))
            .await
            .unwrap()
    );
    assert!(
        !passwords::check_user_password(&t.db, &UserId::generate(), Secret::new("x"))
            .await
            .unwrap()
    );
    assert_eq!(t.count("credentials"), 0);
}
