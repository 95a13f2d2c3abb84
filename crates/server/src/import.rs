//! `braid users import FILE`: the app's existing users, one JSON object per line, become Braid
//! users its sign-ins can link to.
//!
//! Two passes over the file, so it is never held in memory: the first validates every line
//! (shape, addresses, hash format, repeats within the file, conflicts with users already in
//! the database) and reports each bad one; the second writes, in transactions of
//! [`BATCH`] lines, each user all or nothing. Nothing is written when a line is bad, unless
//! `--skip-invalid`.
//!
//! An `external_id` already in the database is never written again: the same line is
//! `unchanged`, a different one is reported and left as it is. Braid owns the sign-in data
//! from the import on (links, verified addresses, re-hashed passwords): overwriting it from a
//! later export would undo that, and swapping a verified address would silently change who
//! can sign in to the account.

use braid_core::{Email, Phone, Timestamp, UserEmail, UserPhone};
use braid_http::passwords;
use braid_storage::repo::credentials;
use braid_storage::repo::users::{self, Imported, ImportedUser, NewUser};
use braid_storage::{Database, DbConn, StorageError, write_transaction};
use serde::Deserialize;
use std::collections::{BTreeSet, HashMap};
use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;

/// Users written per transaction.
const BATCH: usize = 500;
const MAX_EXTERNAL_ID: usize = 255;
const MAX_DISPLAY_NAME: usize = 1024;

/// One line of the file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Line {
    external_id: String,
    #[serde(default)]
    display_name: Option<String>,
    #[serde(default)]
    emails: Vec<LineEmail>,
    #[serde(default)]
    phones: Vec<LinePhone>,
    #[serde(default)]
    password_hash: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct LineEmail {
    email: String,
    verified: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct LinePhone {
    phone: String,
    verified: bool,
}

/// What an import did, line by line counted.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Summary {
    pub created: usize,
    pub unchanged: usize,
    /// Lines whose `external_id` exists with other data: left as they are.
    pub differing: usize,
    pub invalid: usize,
    /// False when invalid lines stopped the import before anything was written.
    pub wrote: bool,
}

impl std::fmt::Display for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "created {}, unchanged {}, differing {} (left as they are), skipped {} invalid",
            self.created, self.unchanged, self.differing, self.invalid
        )?;
        if !self.wrote {
            write!(
                f,
                "; nothing written (fix the lines, or pass --skip-invalid to import the valid ones)"
            )?;
        }
        Ok(())
    }
}

/// What the first pass decided for a line (indexed by line number - 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Class {
    /// Blank, invalid, or an existing user: not written.
    Skip,
    Write,
}

/// Imports `file`, reporting each bad or differing line on `report` as `line N: reason`.
/// `Err` is a failure of the file or the database, not of a line.
pub fn run(
    db: &Database,
    file: &Path,
    skip_invalid: bool,
    report: &mut dyn Write,
) -> Result<Summary, String> {
    let mut conn = db.conn().map_err(|e| e.to_string())?;
    let mut summary = Summary::default();
    let classes = validate(&mut conn, file, &mut summary, report)?;
    if summary.invalid > 0 && !skip_invalid {
        return Ok(summary);
    }
    summary.wrote = true;
    let mut batch: Vec<(usize, ImportedUser)> = Vec::with_capacity(BATCH);
    let now = Timestamp::now();
    for_each_line(file, |n, text| {
        if classes.get(n - 1) != Some(&Class::Write) {
            return Ok(());
        }
        let user = text
            .and_then(|t| parse(t, now))
            .map_err(|_| format!("line {n} changed during the import"))?;
        batch.push((n, user));
        if batch.len() >= BATCH {
            write_batch(&mut conn, &mut batch, skip_invalid, &mut summary, report)?;
        }
        Ok(())
    })?;
    write_batch(&mut conn, &mut batch, skip_invalid, &mut summary, report)?;
    Ok(summary)
}

/// The first pass: every line checked, bad and differing ones reported, nothing written.
fn validate(
    conn: &mut DbConn,
    file: &Path,
    summary: &mut Summary,
    report: &mut dyn Write,
) -> Result<Vec<Class>, String> {
    let mut classes = Vec::new();
    let mut seen_ids: HashMap<String, usize> = HashMap::new();
    let mut seen_verified: HashMap<String, usize> = HashMap::new();
    let now = Timestamp::now();
    for_each_line(file, |n, text| {
        classes.resize(n, Class::Skip);
        let checked = text.and_then(|t| parse(t, now)).and_then(|user| {
            if let Some(first) = seen_ids.get(&user.external_id) {
                return Err(format!(
                    "external_id {:?} is on line {first} already",
                    user.external_id
                ));
            }
            if let Some((value, first)) =
                verified_values(&user).find_map(|v| seen_verified.get(&v).map(|first| (v, *first)))
            {
                return Err(format!("{value} is verified on line {first} already"));
            }
            Ok(user)
        });
        let user = match checked {
            Ok(user) => user,
            Err(reason) => {
                say(report, n, &reason);
                summary.invalid += 1;
                return Ok(());
            }
        };
        match against_database(conn, &user).map_err(|e| e.to_string())? {
            InDatabase::New => classes[n - 1] = Class::Write,
            InDatabase::Same => summary.unchanged += 1,
            InDatabase::Differs => {
                say(
                    report,
                    n,
                    &format!(
                        "external_id {:?} exists with other data; left as it is (import never updates a user)",
                        user.external_id
                    ),
                );
                summary.differing += 1;
            }
            InDatabase::Conflict(reason) => {
                say(report, n, &reason);
                summary.invalid += 1;
                return Ok(());
            }
        }
        seen_ids.insert(user.external_id.clone(), n);
        for value in verified_values(&user) {
            seen_verified.entry(value).or_insert(n);
        }
        Ok(())
    })?;
    Ok(classes)
}

/// Writes the batch in one transaction, each user in its own savepoint. A line refused now
/// passed the first pass: someone wrote meanwhile. With `skip_invalid` it is reported and the
/// others written; without, the batch is undone and the import stops.
fn write_batch(
    conn: &mut DbConn,
    batch: &mut Vec<(usize, ImportedUser)>,
    skip_invalid: bool,
    summary: &mut Summary,
    report: &mut dyn Write,
) -> Result<(), String> {
    if batch.is_empty() {
        return Ok(());
    }
    let lines = std::mem::take(batch);
    let written = write_transaction(conn, |c| {
        let now = Timestamp::now();
        let mut out = Vec::with_capacity(lines.len());
        for (n, user) in &lines {
            match users::import(c, user, now) {
                Ok(imported) => out.push((*n, Ok(imported))),
                Err(StorageError::Conflict(_)) => {
                    let reason = conflict_reason(c, user)?;
                    if !skip_invalid {
                        return Err(StorageError::Conflict(format!("line {n}: {reason}")));
                    }
                    out.push((*n, Err(reason)));
                }
                Err(e) => return Err(e),
            }
        }
        Ok(out)
    });
    let outcomes = match written {
        Ok(o) => o,
        Err(StorageError::Conflict(line)) => {
            return Err(format!(
                "{line} (written since the file was checked); the lines before it are imported, re-run the import to finish"
            ));
        }
        Err(e) => return Err(e.to_string()),
    };
    for (n, outcome) in outcomes {
        match outcome {
            Ok(Imported::Created(_)) => summary.created += 1,
            // Imported by someone else since the first pass.
            Ok(Imported::Exists(_)) => summary.unchanged += 1,
            Err(reason) => {
                say(report, n, &reason);
                summary.invalid += 1;
            }
        }
    }
    Ok(())
}

fn say(report: &mut dyn Write, n: usize, what: &str) {
    // A closed stderr must not stop the import.
    let _ = writeln!(report, "line {n}: {what}");
}

/// Calls `f` with each non-blank line (or why it cannot be read as text) and its number,
/// counted from 1.
fn for_each_line(
    file: &Path,
    mut f: impl FnMut(usize, Result<&str, String>) -> Result<(), String>,
) -> Result<(), String> {
    let opened = File::open(file).map_err(|e| format!("{}: {e}", file.display()))?;
    let mut reader = BufReader::new(opened);
    let mut buf = Vec::new();
    let mut n = 0;
    loop {
        buf.clear();
        let read = reader
            .read_until(b'\n', &mut buf)
            .map_err(|e| format!("{}: {e}", file.display()))?;
        if read == 0 {
            return Ok(());
        }
        n += 1;
        match std::str::from_utf8(&buf) {
            Ok(text) if text.trim().is_empty() => {}
            Ok(text) => f(n, Ok(text.trim_end_matches(['\n', '\r'])))?,
            Err(_) => f(n, Err("not UTF-8 text".into()))?,
        }
    }
}

/// One line as the user it describes, or why it cannot be.
fn parse(text: &str, now: Timestamp) -> Result<ImportedUser, String> {
    let line: Line = serde_json::from_str(text).map_err(|e| {
        let what = e.to_string().replace(" at line 1 column ", " at column ");
        match e.classify() {
            serde_json::error::Category::Data => what,
            _ => format!("not JSON: {what}"),
        }
    })?;
    let id = &line.external_id;
    if id.is_empty() || id.len() > MAX_EXTERNAL_ID || id.chars().any(char::is_control) {
        return Err(format!(
            "external_id: 1 to {MAX_EXTERNAL_ID} bytes without control characters"
        ));
    }
    if let Some(name) = &line.display_name
        && (name.len() > MAX_DISPLAY_NAME || name.chars().any(char::is_control))
    {
        return Err(format!(
            "display_name: at most {MAX_DISPLAY_NAME} bytes without control characters"
        ));
    }
    let mut emails: Vec<UserEmail> = Vec::with_capacity(line.emails.len());
    for (i, e) in line.emails.iter().enumerate() {
        let email = Email::parse(&e.email).map_err(|err| format!("emails[{i}]: {err}"))?;
        if emails.iter().any(|known| known.email == email) {
            return Err(format!("emails[{i}]: {email} is listed twice"));
        }
        emails.push(UserEmail {
            email,
            verified_at: e.verified.then_some(now),
            is_primary: i == 0,
        });
    }
    let mut phones: Vec<UserPhone> = Vec::with_capacity(line.phones.len());
    for (i, p) in line.phones.iter().enumerate() {
        let phone = Phone::parse(&p.phone).map_err(|err| format!("phones[{i}]: {err}"))?;
        if phones.iter().any(|known| known.phone == phone) {
            return Err(format!("phones[{i}]: {} is listed twice", phone.as_str()));
        }
        phones.push(UserPhone {
            phone,
            verified_at: p.verified.then_some(now),
        });
    }
    if let Some(hash) = &line.password_hash {
        passwords::check_format(hash).map_err(|e| format!("password_hash: {e}"))?;
    }
    Ok(ImportedUser {
        external_id: line.external_id,
        user: NewUser {
            display_name: line.display_name,
            is_admin: false,
            emails,
            phones,
        },
        password_hash: line.password_hash,
    })
}

/// The verified emails and phones of a line, canonical.
fn verified_values(user: &ImportedUser) -> impl Iterator<Item = String> + '_ {
    let emails = user
        .user
        .emails
        .iter()
        .filter(|e| e.is_verified())
        .map(|e| e.email.as_str().to_owned());
    let phones = user
        .user
        .phones
        .iter()
        .filter(|p| p.is_verified())
        .map(|p| p.phone.as_str().to_owned());
    emails.chain(phones)
}

enum InDatabase {
    New,
    /// The external_id exists with the same data.
    Same,
    /// The external_id exists with other data.
    Differs,
    Conflict(String),
}

fn against_database(c: &mut DbConn, user: &ImportedUser) -> Result<InDatabase, StorageError> {
    if let Some(existing) = users::find_by_external_id(c, &user.external_id)? {
        return Ok(if same_as_stored(c, user, &existing)? {
            InDatabase::Same
        } else {
            InDatabase::Differs
        });
    }
    Ok(match taken_address(c, user)? {
        Some(value) => {
            InDatabase::Conflict(format!("{value} is already verified for another user"))
        }
        None => InDatabase::New,
    })
}

/// A verified address of the line that another user holds verified.
fn taken_address(c: &mut DbConn, user: &ImportedUser) -> Result<Option<String>, StorageError> {
    let emails: Vec<Email> = user
        .user
        .emails
        .iter()
        .filter(|e| e.is_verified())
        .map(|e| e.email.clone())
        .collect();
    let phones: Vec<Phone> = user
        .user
        .phones
        .iter()
        .filter(|p| p.is_verified())
        .map(|p| p.phone.clone())
        .collect();
    Ok(users::matching_contacts(c, &emails, &phones)?
        .into_iter()
        .find(|m| m.user_verified)
        .map(|m| m.value))
}

/// Why the database refused a line that passed the first pass.
fn conflict_reason(c: &mut DbConn, user: &ImportedUser) -> Result<String, StorageError> {
    if users::find_by_external_id(c, &user.external_id)?.is_some() {
        return Ok(format!(
            "external_id {:?} was imported meanwhile",
            user.external_id
        ));
    }
    Ok(match taken_address(c, user)? {
        Some(value) => format!("{value} is already verified for another user"),
        None => "conflicts with another user".into(),
    })
}

/// Whether an existing user is what the line says: display name, emails and phones with
/// their verified state, and password. A stored argon2id hash at Braid's parameters where
/// the line has another hash counts as the same password: Braid re-hashed it at a sign-in.
fn same_as_stored(
    c: &mut DbConn,
    user: &ImportedUser,
    existing: &braid_core::User,
) -> Result<bool, StorageError> {
    let emails: BTreeSet<(String, bool)> = users::emails(c, &existing.id)?
        .iter()
        .map(|e| (e.email.as_str().to_owned(), e.is_verified()))
        .collect();
    let phones: BTreeSet<(String, bool)> = users::phones(c, &existing.id)?
        .iter()
        .map(|p| (p.phone.as_str().to_owned(), p.is_verified()))
        .collect();
    let line_emails: BTreeSet<(String, bool)> = user
        .user
        .emails
        .iter()
        .map(|e| (e.email.as_str().to_owned(), e.is_verified()))
        .collect();
    let line_phones: BTreeSet<(String, bool)> = user
        .user
        .phones
        .iter()
        .map(|p| (p.phone.as_str().to_owned(), p.is_verified()))
        .collect();
    let stored_hash = credentials::password_hash(c, &existing.id)?;
    let same_password = match (&user.password_hash, &stored_hash) {
        (None, None) => true,
        (Some(line), Some(stored)) => {
            line == stored || (passwords::is_current(stored) && !passwords::is_current(line))
        }
        _ => false,
    };
    Ok(existing.display_name == user.user.display_name
        && emails == line_emails
        && phones == line_phones
        && same_password)
}

#[cfg(test)]
mod tests {
    use super::*;
    use braid_storage::test_support::TestDb;

    fn line(external_id: &str, email: &str) -> ImportedUser {
        let text = format!(
            r#"{{"external_id": "{external_id}", "emails": [{{"email": "{email}", "verified": true}}]}}"#
        );
        parse(&text, Timestamp::now()).unwrap()
    }

    /// Two lines that passed the first pass, the first of which another writer has since made
    /// impossible (the verified address is now someone else's).
    fn raced(t: &TestDb) -> Vec<(usize, ImportedUser)> {
        let mut c = t.db.conn().unwrap();
        users::import(&mut c, &line("other", "ann@example.com"), Timestamp::now()).unwrap();
        vec![
            (1, line("42", "ann@example.com")),
            (2, line("43", "bob@example.com")),
        ]
    }

    #[test]
    fn a_conflict_met_while_writing_skips_its_line_with_skip_invalid() {
        let t = TestDb::new().unwrap();
        let mut batch = raced(&t);
        let (mut summary, mut report) = (Summary::default(), Vec::new());
        let mut c = t.db.conn().unwrap();
        write_batch(&mut c, &mut batch, true, &mut summary, &mut report).unwrap();
        assert_eq!((summary.created, summary.invalid), (1, 1));
        assert_eq!(
            String::from_utf8(report).unwrap(),
            "line 1: ann@example.com is already verified for another user\n"
        );
        assert!(users::find_by_external_id(&mut c, "43").unwrap().is_some());
        assert!(users::find_by_external_id(&mut c, "42").unwrap().is_none());
    }

    #[test]
    fn a_conflict_met_while_writing_undoes_the_batch_without_skip_invalid() {
        let t = TestDb::new().unwrap();
        let mut batch = raced(&t);
        let mut summary = Summary::default();
        let mut c = t.db.conn().unwrap();
        let err =
            write_batch(&mut c, &mut batch, false, &mut summary, &mut Vec::new()).unwrap_err();
        assert!(
            err.starts_with("line 1: ann@example.com is already verified for another user"),
            "{err}"
        );
        assert_eq!(summary.created, 0);
        assert!(users::find_by_external_id(&mut c, "43").unwrap().is_none());
        assert_eq!(t.count("users"), 1);
    }
}
