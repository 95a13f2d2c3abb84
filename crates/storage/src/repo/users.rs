use crate::conn::on_backend;
use crate::repo::audit::{self, AuditEvent};
use crate::repo::{credentials, identities};
use crate::schema::{user_emails, user_phones, users};
use crate::{DbConn, StorageError};
use braid_core::{
    Email, FederatedIdentity, LinkedIdentity, Phone, Timestamp, User, UserEmail, UserId, UserPhone,
    new_id,
};
use diesel::prelude::*;

/// A user to create, with the contacts it starts with.
#[derive(Debug, Clone, Default)]
pub struct NewUser {
    pub display_name: Option<String>,
    pub is_admin: bool,
    pub emails: Vec<UserEmail>,
    pub phones: Vec<UserPhone>,
}

#[derive(Queryable)]
struct UserRow {
    id: String,
    display_name: Option<String>,
    disabled: bool,
    is_admin: bool,
    created_at: i64,
    updated_at: i64,
    external_id: Option<String>,
}

impl TryFrom<UserRow> for User {
    type Error = StorageError;
    fn try_from(r: UserRow) -> Result<Self, StorageError> {
        Ok(User {
            id: UserId::parse(&r.id)?,
            display_name: r.display_name,
            disabled: r.disabled,
            is_admin: r.is_admin,
            created_at: Timestamp::from_millis(r.created_at),
            updated_at: Timestamp::from_millis(r.updated_at),
            external_id: r.external_id,
        })
    }
}

/// Inserts the user and its emails and phones in one transaction.
pub fn create(conn: &mut DbConn, new: &NewUser, now: Timestamp) -> Result<User, StorageError> {
    conn.transaction(|c| insert_user(c, new, None, now))
}

/// A user of the application Braid was put beside, as `braid users import` writes it.
#[derive(Debug, Clone)]
pub struct ImportedUser {
    /// The user's id in the application; unique among Braid's users.
    pub external_id: String,
    pub user: NewUser,
    /// An argon2 PHC string or a bcrypt hash, checked by the caller.
    pub password_hash: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Imported {
    Created(User),
    /// A user with this `external_id` exists: nothing was written.
    Exists(User),
}

/// Creates the user with its emails, phones and password, all or nothing, unless a user
/// with the same `external_id` exists. An `external_id` or a verified address another user
/// holds (SECURITY-CASES I10), including one written meanwhile by someone else, is refused
/// by the unique indexes as `Conflict`: never taken from its holder.
pub fn import(
    conn: &mut DbConn,
    imported: &ImportedUser,
    now: Timestamp,
) -> Result<Imported, StorageError> {
    conn.transaction(|c| {
        if let Some(existing) = find_by_external_id(c, &imported.external_id)? {
            return Ok(Imported::Exists(existing));
        }
        let user = insert_user(c, &imported.user, Some(&imported.external_id), now)?;
        if let Some(phc) = &imported.password_hash {
            credentials::set_password_hash(c, &user.id, phc, now)?;
        }
        Ok(Imported::Created(user))
    })
}

pub fn find_by_external_id(
    conn: &mut DbConn,
    external_id: &str,
) -> Result<Option<User>, StorageError> {
    users::table
        .filter(users::external_id.eq(external_id))
        .get_result::<UserRow>(conn)
        .optional()?
        .map(User::try_from)
        .transpose()
}

/// Creates a user and links the identity to it, both or neither.
pub fn create_with_identity(
    conn: &mut DbConn,
    new: &NewUser,
    identity: &FederatedIdentity,
    now: Timestamp,
) -> Result<(User, LinkedIdentity), StorageError> {
    conn.transaction(|c| {
        let user = insert_user(c, new, None, now)?;
        let linked = identities::insert(c, &user.id, identity, now)?;
        Ok((user, linked))
    })
}

fn insert_user(
    c: &mut DbConn,
    new: &NewUser,
    external_id: Option<&str>,
    now: Timestamp,
) -> Result<User, StorageError> {
    let user = User {
        id: UserId::generate(),
        display_name: new.display_name.clone(),
        disabled: false,
        is_admin: new.is_admin,
        created_at: now,
        updated_at: now,
        external_id: external_id.map(str::to_owned),
    };
    diesel::insert_into(users::table)
        .values((
            users::id.eq(user.id.as_str()),
            users::display_name.eq(user.display_name.as_deref()),
            users::disabled.eq(false),
            users::is_admin.eq(user.is_admin),
            users::created_at.eq(now.as_millis()),
            users::updated_at.eq(now.as_millis()),
            users::external_id.eq(external_id),
        ))
        .execute(c)?;
    for e in &new.emails {
        diesel::insert_into(user_emails::table)
            .values((
                user_emails::id.eq(new_id()),
                user_emails::user_id.eq(user.id.as_str()),
                user_emails::email.eq(e.email.as_str()),
                user_emails::verified_at.eq(e.verified_at.map(Timestamp::as_millis)),
                user_emails::is_primary.eq(e.is_primary),
                user_emails::created_at.eq(now.as_millis()),
            ))
            .execute(c)?;
    }
    for p in &new.phones {
        diesel::insert_into(user_phones::table)
            .values((
                user_phones::id.eq(new_id()),
                user_phones::user_id.eq(user.id.as_str()),
                user_phones::phone.eq(p.phone.as_str()),
                user_phones::verified_at.eq(p.verified_at.map(Timestamp::as_millis)),
                user_phones::created_at.eq(now.as_millis()),
            ))
            .execute(c)?;
    }
    Ok(user)
}

pub fn find(conn: &mut DbConn, id: &UserId) -> Result<Option<User>, StorageError> {
    on_backend!(conn, c => users::table
        .filter(users::id.eq(id.as_str()))
        .get_result::<UserRow>(c)
        .optional())?
    .map(User::try_from)
    .transpose()
}

/// The users of these ids that exist, in no particular order.
pub fn find_many(conn: &mut DbConn, ids: &[String]) -> Result<Vec<User>, StorageError> {
    users::table
        .filter(users::id.eq_any(ids))
        .load::<UserRow>(conn)?
        .into_iter()
        .map(User::try_from)
        .collect()
}

pub fn emails(conn: &mut DbConn, id: &UserId) -> Result<Vec<UserEmail>, StorageError> {
    user_emails::table
        .filter(user_emails::user_id.eq(id.as_str()))
        .order(user_emails::created_at.asc())
        .select((
            user_emails::email,
            user_emails::verified_at,
            user_emails::is_primary,
        ))
        .load::<(String, Option<i64>, bool)>(conn)?
        .into_iter()
        .map(|(email, verified_at, is_primary)| {
            Ok(UserEmail {
                email: Email::parse(&email)?,
                verified_at: verified_at.map(Timestamp::from_millis),
                is_primary,
            })
        })
        .collect()
}

pub fn phones(conn: &mut DbConn, id: &UserId) -> Result<Vec<UserPhone>, StorageError> {
    user_phones::table
        .filter(user_phones::user_id.eq(id.as_str()))
        .order(user_phones::created_at.asc())
        .select((user_phones::phone, user_phones::verified_at))
        .load::<(String, Option<i64>)>(conn)?
        .into_iter()
        .map(|(phone, verified_at)| {
            Ok(UserPhone {
                phone: Phone::parse(&phone)?,
                verified_at: verified_at.map(Timestamp::from_millis),
            })
        })
        .collect()
}

pub fn count(conn: &mut DbConn) -> Result<i64, StorageError> {
    Ok(users::table.count().get_result(conn)?)
}

/// An existing user's email or phone equal (in canonical form) to a claimed one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContactMatch {
    pub user_id: UserId,
    /// The canonical email or E.164 phone that matched.
    pub value: String,
    pub user_verified: bool,
}

/// Users holding any of these emails or phones, verified or not.
pub fn matching_contacts(
    conn: &mut DbConn,
    emails: &[Email],
    phones: &[Phone],
) -> Result<Vec<ContactMatch>, StorageError> {
    let mut out = Vec::new();
    if !emails.is_empty() {
        let wanted: Vec<&str> = emails.iter().map(Email::as_str).collect();
        let rows: Vec<(String, String, Option<i64>)> = on_backend!(conn, c => user_emails::table
            .filter(user_emails::email.eq_any(&wanted))
            .select((
                user_emails::user_id,
                user_emails::email,
                user_emails::verified_at,
            ))
            .load(c))?;
        for (user_id, value, verified_at) in rows {
            out.push(ContactMatch {
                user_id: UserId::parse(&user_id)?,
                value,
                user_verified: verified_at.is_some(),
            });
        }
    }
    if !phones.is_empty() {
        let wanted: Vec<&str> = phones.iter().map(Phone::as_str).collect();
        let rows: Vec<(String, String, Option<i64>)> = on_backend!(conn, c => user_phones::table
            .filter(user_phones::phone.eq_any(&wanted))
            .select((
                user_phones::user_id,
                user_phones::phone,
                user_phones::verified_at,
            ))
            .load(c))?;
        for (user_id, value, verified_at) in rows {
            out.push(ContactMatch {
                user_id: UserId::parse(&user_id)?,
                value,
                user_verified: verified_at.is_some(),
            });
        }
    }
    Ok(out)
}

pub fn set_disabled(
    conn: &mut DbConn,
    id: &UserId,
    disabled: bool,
    now: Timestamp,
) -> Result<bool, StorageError> {
    let n = diesel::update(users::table.filter(users::id.eq(id.as_str())))
        .set((
            users::disabled.eq(disabled),
            users::updated_at.eq(now.as_millis()),
        ))
        .execute(conn)?;
    Ok(n == 1)
}

/// Marks the user an administrator of the console, or no longer one, and records `event` in
/// the same transaction; `false` (and nothing recorded) when there is no such user.
pub fn set_admin(
    conn: &mut DbConn,
    id: &UserId,
    is_admin: bool,
    event: &AuditEvent,
    now: Timestamp,
) -> Result<bool, StorageError> {
    conn.transaction(|c| {
        let n = diesel::update(users::table.filter(users::id.eq(id.as_str())))
            .set((
                users::is_admin.eq(is_admin),
                users::updated_at.eq(now.as_millis()),
            ))
            .execute(c)?;
        if n == 1 {
            audit::record(c, event, now)?;
        }
        Ok(n == 1)
    })
}

/// Adds an email to a user (verified when `verified_at` is set). A verified address another
/// user already holds is refused by the unique index (`Conflict`).
pub fn add_email(
    conn: &mut DbConn,
    id: &UserId,
    email: &UserEmail,
    now: Timestamp,
) -> Result<(), StorageError> {
    diesel::insert_into(user_emails::table)
        .values((
            user_emails::id.eq(new_id()),
            user_emails::user_id.eq(id.as_str()),
            user_emails::email.eq(email.email.as_str()),
            user_emails::verified_at.eq(email.verified_at.map(Timestamp::as_millis)),
            user_emails::is_primary.eq(email.is_primary),
            user_emails::created_at.eq(now.as_millis()),
        ))
        .execute(conn)?;
    Ok(())
}

pub fn delete(conn: &mut DbConn, id: &UserId) -> Result<bool, StorageError> {
    Ok(diesel::delete(users::table.filter(users::id.eq(id.as_str()))).execute(conn)? == 1)
}

/// Marks the user's row changed and, on PostgreSQL, holds its row lock until the transaction
/// ends: concurrent changes of one user's sign-in methods (two unlinks that would each leave
/// the other one) then run one after the other. False when there is no such user.
pub fn lock_for_change(
    conn: &mut DbConn,
    id: &UserId,
    now: Timestamp,
) -> Result<bool, StorageError> {
    let n = diesel::update(users::table.filter(users::id.eq(id.as_str())))
        .set(users::updated_at.eq(now.as_millis()))
        .execute(conn)?;
    Ok(n == 1)
}
