//! `braid users import` as an operator runs it, against a fresh SQLite database or, with
//! BRAID_TEST_DATABASE_URL, a fresh PostgreSQL one.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use braid_core::{Email, Secret, Timestamp, UserEmail};
use braid_http::passwords;
use braid_storage::repo::{credentials, users};
use braid_storage::test_support::TestDb;
use std::path::Path;
use std::process::{Command, Output, Stdio};

/// `hunter2`, hashed by the system's libcrypt (bcrypt, cost 4): a hash from another
/// implementation, as an app's database would hold.
const BCRYPT_HUNTER2: &str = "$2b$04$yLAinGdZkG2PwdszO0.YKufNCACpn8N4r/63/XMIcftun2KWpulQe";

struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

fn import(t: &TestDb, lines: &[String], args: &[&str]) -> Run {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("users.jsonl");
    std::fs::write(&file, lines.join("\n") + "\n").unwrap();
    run_import(t, dir.path(), &file, args)
}

fn run_import(t: &TestDb, dir: &Path, file: &Path, args: &[&str]) -> Run {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_braid"));
    cmd.current_dir(dir)
        .stdin(Stdio::null())
        .args(["users", "import"])
        .args(args)
        .arg(file);
    for (k, _) in std::env::vars() {
        if k.starts_with("BRAID_") || k == "RUST_LOG" {
            cmd.env_remove(k);
        }
    }
    cmd.env("BRAID_DATABASE__URL", &t.settings.url);
    let Output {
        status,
        stdout,
        stderr,
    } = cmd.output().unwrap();
    Run {
        code: status.code(),
        stdout: String::from_utf8_lossy(&stdout).into_owned(),
        stderr: String::from_utf8_lossy(&stderr).into_owned(),
    }
}

fn ann() -> String {
    format!(
        r#"{{"external_id": "42", "display_name": "Ann", "emails": [{{"email": "Ann@Example.com", "verified": true}}, {{"email": "ann@work.example", "verified": false}}], "phones": [{{"phone": "+1 (202) 555-0100", "verified": false}}], "password_hash": "{BCRYPT_HUNTER2}"}}"#
    )
}

fn bob() -> String {
    r#"{"external_id": "43", "emails": [{"email": "bob@example.com", "verified": true}], "phones": [{"phone": "+442071838750", "verified": true}]}"#.into()
}

fn user(t: &TestDb, external_id: &str) -> Option<braid_core::User> {
    users::find_by_external_id(&mut t.db.conn().unwrap(), external_id).unwrap()
}

#[test]
fn a_valid_file_creates_users_with_their_emails_phones_and_passwords() {
    let t = TestDb::new().unwrap();
    let argon2 = passwords::hash("correct horse").unwrap();
    let carol = format!(r#"{{"external_id": "carol", "emails": [], "password_hash": "{argon2}"}}"#);
    let run = import(&t, &[ann(), bob(), carol], &[]);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert_eq!(
        run.stdout.trim(),
        "created 3, unchanged 0, differing 0 (left as they are), skipped 0 invalid"
    );
    assert_eq!(run.stderr, "");

    let mut c = t.db.conn().unwrap();
    let ann = user(&t, "42").unwrap();
    assert_eq!(ann.display_name.as_deref(), Some("Ann"));
    let emails = users::emails(&mut c, &ann.id).unwrap();
    let emails: Vec<_> = emails
        .iter()
        .map(|e| (e.email.as_str(), e.is_verified(), e.is_primary))
        .collect();
    assert_eq!(
        emails,
        [
            ("ann@example.com", true, true),
            ("ann@work.example", false, false)
        ]
    );
    let phones = users::phones(&mut c, &ann.id).unwrap();
    assert_eq!(phones[0].phone.as_str(), "+12025550100");
    assert!(!phones[0].is_verified());
    assert_eq!(
        credentials::password_hash(&mut c, &ann.id)
            .unwrap()
            .as_deref(),
        Some(BCRYPT_HUNTER2)
    );
    let bob = user(&t, "43").unwrap();
    assert!(users::phones(&mut c, &bob.id).unwrap()[0].is_verified());
    assert_eq!(credentials::password_hash(&mut c, &bob.id).unwrap(), None);
    let carol = user(&t, "carol").unwrap();
    assert_eq!(
        credentials::password_hash(&mut c, &carol.id).unwrap(),
        Some(argon2)
    );
    assert_eq!(t.count("users"), 3);
}

#[test]
fn one_bad_line_writes_nothing_and_names_the_line_and_the_reason() {
    let t = TestDb::new().unwrap();
    let bad = r#"{"external_id": "44", "emails": [{"email": "not-an-address", "verified": true}]}"#;
    let run = import(&t, &[ann(), bad.into(), bob()], &[]);
    assert_eq!(run.code, Some(1));
    assert_eq!(
        run.stderr.trim(),
        "line 2: emails[0]: invalid email address: missing @"
    );
    assert!(
        run.stdout.contains("skipped 1 invalid; nothing written"),
        "{}",
        run.stdout
    );
    assert_eq!(t.count("users"), 0);
    assert_eq!(t.count("credentials"), 0);
}

#[test]
fn every_kind_of_bad_line_is_reported_with_its_number_and_reason() {
    let t = TestDb::new().unwrap();
    let lines: Vec<String> = [
        ann().as_str(),
        "",
        "not json",
        r#"{"external_id": "44", "admin": true}"#,
        r#"{"external_id": "45", "emails": [{"email": "x@example.com"}]}"#,
        r#"{"external_id": "46", "phones": [{"phone": "202-555-0100", "verified": true}]}"#,
        r#"{"external_id": "47", "password_hash": "5f4dcc3b5aa765d61d8327deb882cf99"}"#,
        r#"{"external_id": "42"}"#,
        r#"{"external_id": "48", "emails": [{"email": "ANN@example.com", "verified": true}]}"#,
        r#"{"external_id": ""}"#,
        r#"{"external_id": "49", "emails": [{"email": "a@example.com", "verified": true}, {"email": "A@example.com", "verified": false}]}"#,
        r#"{"external_id": "50", "password_hash": "$2b$31$yLAinGdZkG2PwdszO0.YKufNCACpn8N4r/63/XMIcftun2KWpulQe"}"#,
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    let run = import(&t, &lines, &[]);
    assert_eq!(run.code, Some(1));
    let reported: Vec<&str> = run.stderr.lines().collect();
    let expected = [
        "line 3: not JSON: expected ident at column 2",
        "line 4: unknown field `admin`",
        "line 5: missing field `verified`",
        "line 6: phones[0]: invalid phone number: must start with + and a country code",
        "line 7: password_hash: not an argon2 PHC string",
        "line 8: external_id \"42\" is on line 1 already",
        "line 9: ann@example.com is verified on line 1 already",
        "line 10: external_id: 1 to 255 bytes",
        "line 11: emails[1]: a@example.com is listed twice",
        "line 12: password_hash: bcrypt cost outside 4..=16",
    ];
    assert_eq!(reported.len(), expected.len(), "{}", run.stderr);
    for (got, want) in reported.iter().zip(expected) {
        assert!(got.starts_with(want), "{got:?} should start with {want:?}");
    }
    assert_eq!(t.count("users"), 0);
}

#[test]
fn skip_invalid_writes_the_valid_lines_and_reports_the_rest() {
    let t = TestDb::new().unwrap();
    let bad = r#"{"external_id": "44", "emails": [{"email": "not-an-address", "verified": true}]}"#;
    let run = import(&t, &[ann(), bad.into(), bob()], &["--skip-invalid"]);
    assert_eq!(run.code, Some(1), "anything invalid is a failure");
    assert!(run.stderr.starts_with("line 2: "), "{}", run.stderr);
    assert_eq!(
        run.stdout.trim(),
        "created 2, unchanged 0, differing 0 (left as they are), skipped 1 invalid"
    );
    assert!(user(&t, "42").is_some() && user(&t, "43").is_some());
    assert!(user(&t, "44").is_none());
}

#[test]
fn a_second_run_changes_nothing_and_a_changed_line_is_reported_not_applied() {
    let t = TestDb::new().unwrap();
    assert_eq!(import(&t, &[ann(), bob()], &[]).code, Some(0));
    let before = (
        t.count("users"),
        t.count("user_emails"),
        t.count("user_phones"),
    );
    let ann_id = user(&t, "42").unwrap().id;

    let again = import(&t, &[ann(), bob()], &[]);
    assert_eq!(again.code, Some(0), "{}", again.stderr);
    assert_eq!(
        again.stdout.trim(),
        "created 0, unchanged 2, differing 0 (left as they are), skipped 0 invalid"
    );

    let changed_bob = bob().replace("bob@example.com", "robert@example.com");
    let changed = import(&t, &[ann(), changed_bob], &[]);
    assert_eq!(changed.code, Some(0));
    assert_eq!(
        changed.stderr.trim(),
        "line 2: external_id \"43\" exists with other data; left as it is (import never updates a user)"
    );
    assert!(
        changed
            .stdout
            .starts_with("created 0, unchanged 1, differing 1")
    );
    assert_eq!(
        (
            t.count("users"),
            t.count("user_emails"),
            t.count("user_phones")
        ),
        before
    );
    assert_eq!(user(&t, "42").unwrap().id, ann_id);
}

#[test]
fn i10_a_verified_email_already_verified_by_another_user_is_refused() {
    let t = TestDb::new().unwrap();
    let holder = users::create(
        &mut t.db.conn().unwrap(),
        &users::NewUser {
            emails: vec![UserEmail {
                email: Email::parse("ann@example.com").unwrap(),
                verified_at: Some(Timestamp::now()),
                is_primary: true,
            }],
            ..users::NewUser::default()
        },
        Timestamp::now(),
    )
    .unwrap();
    for args in [&[][..], &["--skip-invalid"][..]] {
        let run = import(&t, &[ann(), bob()], args);
        assert_eq!(run.code, Some(1), "{args:?}");
        assert_eq!(
            run.stderr.trim(),
            "line 1: ann@example.com is already verified for another user"
        );
    }
    assert!(user(&t, "42").is_none());
    assert!(
        user(&t, "43").is_some(),
        "written by the --skip-invalid run"
    );
    let kept = users::emails(&mut t.db.conn().unwrap(), &holder.id).unwrap();
    assert!(kept[0].is_verified(), "the holder keeps its address");
}

#[tokio::test]
async fn an_imported_bcrypt_password_works_and_is_rehashed_to_argon2id_at_its_first_check() {
    let t = TestDb::new().unwrap();
    assert_eq!(import(&t, &[ann()], &[]).code, Some(0));
    let imported = user(&t, "42").unwrap();
    let stored = || {
        credentials::password_hash(&mut t.db.conn().unwrap(), &imported.id)
            .unwrap()
            .unwrap()
    };
    assert!(
        !passwords::check_user_password(&t.db, &imported.id, Secret::new("hunter3"))
            .await
            .unwrap()
    );
    assert_eq!(stored(), BCRYPT_HUNTER2);
    assert!(
        passwords::check_user_password(&t.db, &imported.id, Secret::new("hunter2"))
            .await
            .unwrap()
    );
    let upgraded = stored();
    assert!(passwords::is_current(&upgraded), "{upgraded}");
    assert!(
        passwords::check_user_password(&t.db, &imported.id, Secret::new("hunter2"))
            .await
            .unwrap()
    );

    // The same file again: the re-hashed password still counts as unchanged.
    let again = import(&t, &[ann()], &[]);
    assert!(
        again
            .stdout
            .starts_with("created 0, unchanged 1, differing 0"),
        "{}",
        again.stderr
    );
    assert_eq!(stored(), upgraded);
}
