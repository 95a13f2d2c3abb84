//! Imported users, their external ids and password hashes, on SQLite and, with
//! BRAID_TEST_DATABASE_URL, PostgreSQL.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use braid_core::{Email, Phone, Timestamp, UserEmail, UserPhone};
use braid_storage::StorageError;
use braid_storage::repo::credentials;
use braid_storage::repo::users::{self, Imported, ImportedUser, NewUser};
use braid_storage::test_support::TestDb;

fn imported(external_id: &str, email: &str, verified: bool) -> ImportedUser {
    ImportedUser {
        external_id: external_id.into(),
        user: NewUser {
            display_name: Some("Ann".into()),
            emails: vec![UserEmail {
                email: Email::parse(email).unwrap(),
                verified_at: verified.then(Timestamp::now),
                is_primary: true,
            }],
            phones: vec![UserPhone {
                phone: Phone::parse("+12025550100").unwrap(),
                verified_at: None,
            }],
            ..NewUser::default()
        },
        password_hash: Some("$2b$04$abcdefghijklmnopqrstuu5Hs2cMhJrGz2kq0GpWvP1YQpU1c9Y.a".into()),
    }
}

#[test]
fn an_imported_user_is_written_whole_and_found_by_its_external_id() {
    let t = TestDb::new().unwrap();
    let mut c = t.db.conn().unwrap();
    let line = imported("42", "ann@example.com", true);
    let Imported::Created(user) = users::import(&mut c, &line, Timestamp::now()).unwrap() else {
        panic!("created");
    };
    assert_eq!(user.external_id.as_deref(), Some("42"));
    let found = users::find_by_external_id(&mut c, "42").unwrap().unwrap();
    assert_eq!(found, user);
    assert_eq!(users::find(&mut c, &user.id).unwrap().unwrap(), user);
    assert_eq!(users::emails(&mut c, &user.id).unwrap(), line.user.emails);
    assert_eq!(users::phones(&mut c, &user.id).unwrap(), line.user.phones);
    assert_eq!(
        credentials::password_hash(&mut c, &user.id).unwrap(),
        line.password_hash
    );
    assert!(users::find_by_external_id(&mut c, "43").unwrap().is_none());
}

#[test]
fn importing_an_existing_external_id_writes_nothing() {
    let t = TestDb::new().unwrap();
    let mut c = t.db.conn().unwrap();
    let first = users::import(
        &mut c,
        &imported("42", "ann@example.com", true),
        Timestamp::now(),
    )
    .unwrap();
    let again = users::import(
        &mut c,
        &imported("42", "other@example.com", true),
        Timestamp::now(),
    )
    .unwrap();
    let (Imported::Created(a), Imported::Exists(b)) = (first, again) else {
        panic!("created, then found");
    };
    assert_eq!(a, b);
    assert_eq!(t.count("users"), 1);
    assert_eq!(t.count("user_emails"), 1);
}

#[test]
fn i10_an_import_never_takes_a_verified_address_from_its_holder_and_leaves_nothing() {
    let t = TestDb::new().unwrap();
    let mut c = t.db.conn().unwrap();
    users::import(
        &mut c,
        &imported("1", "ann@example.com", true),
        Timestamp::now(),
    )
    .unwrap();
    let mut thief = imported("2", "ANN@example.com", true);
    thief.user.emails.insert(
        0,
        UserEmail {
            email: Email::parse("fresh@example.com").unwrap(),
            verified_at: Some(Timestamp::now()),
            is_primary: false,
        },
    );
    let refused = users::import(&mut c, &thief, Timestamp::now());
    assert!(
        matches!(refused, Err(StorageError::Conflict(_))),
        "{refused:?}"
    );
    assert!(users::find_by_external_id(&mut c, "2").unwrap().is_none());
    assert_eq!(t.count("users"), 1, "no half-written user");
    assert_eq!(t.count("user_emails"), 1);
    assert_eq!(t.count("credentials"), 1);
    // Held unverified elsewhere, the address may be imported unverified too.
    users::import(
        &mut c,
        &imported("3", "ann@example.com", false),
        Timestamp::now(),
    )
    .unwrap();
}

#[test]
fn a_password_hash_is_set_replaced_and_swapped_only_while_unchanged() {
    let t = TestDb::new().unwrap();
    let mut c = t.db.conn().unwrap();
    let user = users::create(&mut c, &NewUser::default(), Timestamp::now()).unwrap();
    assert_eq!(credentials::password_hash(&mut c, &user.id).unwrap(), None);
    credentials::set_password_hash(&mut c, &user.id, "h1", Timestamp::now()).unwrap();
    credentials::set_password_hash(&mut c, &user.id, "h2", Timestamp::now()).unwrap();
    assert_eq!(
        credentials::password_hash(&mut c, &user.id)
            .unwrap()
            .as_deref(),
        Some("h2")
    );
    assert!(
        !credentials::replace_password_hash(&mut c, &user.id, "h1", "h3", Timestamp::now())
            .unwrap()
    );
    assert!(
        credentials::replace_password_hash(&mut c, &user.id, "h2", "h3", Timestamp::now()).unwrap()
    );
    assert_eq!(
        credentials::password_hash(&mut c, &user.id)
            .unwrap()
            .as_deref(),
        Some("h3")
    );
    assert_eq!(t.count("credentials"), 1);
}

#[test]
fn redeeming_an_exchange_code_returns_its_users_external_id() {
    use braid_storage::repo::exchange_codes::{self, NewExchangeCode};
    let t = TestDb::new().unwrap();
    let mut c = t.db.conn().unwrap();
    let now = Timestamp::now();
    let Imported::Created(user) =
        users::import(&mut c, &imported("42", "ann@example.com", true), now).unwrap()
    else {
        panic!("created");
    };
    let plain = users::create(&mut c, &NewUser::default(), now).unwrap();
    for (hash, user_id) in [(b"imported", &user.id), (b"plain-u1", &plain.id)] {
        exchange_codes::insert(
            &mut c,
            &NewExchangeCode {
                code_hash: hash.to_vec(),
                client_id: "app".into(),
                redirect_uri: "https://app.example/cb".into(),
                code_challenge: None,
                code_challenge_method: None,
                user_id: user_id.clone(),
                auth_context: "{}".into(),
                created_at: now,
                expires_at: now.plus(std::time::Duration::from_secs(60)),
            },
        )
        .unwrap();
    }
    let consumed = exchange_codes::consume(&mut c, b"imported", now)
        .unwrap()
        .unwrap();
    assert_eq!(consumed.external_id.as_deref(), Some("42"));
    let consumed = exchange_codes::consume(&mut c, b"plain-u1", now)
        .unwrap()
        .unwrap();
    assert_eq!(consumed.external_id, None);
}
