//! One-time codes of local accounts: email verification and password reset. Stored only as a
//! keyed hash (the key and the binding to account and purpose are braid-http's), single use,
//! with every guess counted by one atomic update that also enforces the limit (SECURITY-CASES
//! E05, E06, E23).

use crate::conn::on_backend;
use crate::schema::account_codes;
use crate::{DbConn, StorageError};
use braid_core::{Timestamp, UserId};
use diesel::prelude::*;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAccountCode {
    pub id: String,
    pub user_id: UserId,
    /// `verify_email` or `reset_password`.
    pub purpose: &'static str,
    /// The address the code went to.
    pub email: String,
    pub code_hash: Vec<u8>,
    pub max_attempts: i32,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
}

/// Ends the account's open codes of this purpose (a new code makes the previous one useless),
/// then stores the new one.
pub fn replace(conn: &mut DbConn, new: &NewAccountCode) -> Result<(), StorageError> {
    end_open(conn, &new.user_id, new.purpose, new.created_at)?;
    on_backend!(conn, c => diesel::insert_into(account_codes::table)
        .values((
            account_codes::id.eq(&new.id),
            account_codes::user_id.eq(new.user_id.as_str()),
            account_codes::purpose.eq(new.purpose),
            account_codes::email.eq(&new.email),
            account_codes::code_hash.eq(&new.code_hash),
            account_codes::max_attempts.eq(new.max_attempts),
            account_codes::created_at.eq(new.created_at.as_millis()),
            account_codes::expires_at.eq(new.expires_at.as_millis()),
        ))
        .execute(c))?;
    Ok(())
}

pub fn end_open(
    conn: &mut DbConn,
    user: &UserId,
    purpose: &str,
    now: Timestamp,
) -> Result<usize, StorageError> {
    Ok(on_backend!(conn, c => diesel::update(
        account_codes::table
            .filter(account_codes::user_id.eq(user.as_str()))
            .filter(account_codes::purpose.eq(purpose))
            .filter(account_codes::consumed_at.is_null()),
    )
    .set(account_codes::consumed_at.eq(now.as_millis()))
    .execute(c))?)
}

/// Codes of any purpose sent to the account since `since`.
pub fn sent_since(conn: &mut DbConn, user: &UserId, since: Timestamp) -> Result<i64, StorageError> {
    Ok(on_backend!(conn, c => account_codes::table
        .filter(account_codes::user_id.eq(user.as_str()))
        .filter(account_codes::created_at.ge(since.as_millis()))
        .count()
        .get_result(c))?)
}

/// One counted guess at the account's open code of `purpose`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Guess {
    pub id: String,
    pub email: String,
    pub code_hash: Vec<u8>,
    /// Including this one.
    pub attempts: i32,
    pub max_attempts: i32,
}

/// Counts one guess at the open, unexpired code of this purpose below its limit; `None` when
/// there is none (nothing is evaluated then).
pub fn guess(
    conn: &mut DbConn,
    user: &UserId,
    purpose: &str,
    now: Timestamp,
) -> Result<Option<Guess>, StorageError> {
    let row: Option<(String, String, Vec<u8>, i32, i32)> = on_backend!(conn, c => diesel::update(
        account_codes::table
            .filter(account_codes::user_id.eq(user.as_str()))
            .filter(account_codes::purpose.eq(purpose))
            .filter(account_codes::consumed_at.is_null())
            .filter(account_codes::expires_at.gt(now.as_millis()))
            .filter(account_codes::attempts.lt(account_codes::max_attempts)),
    )
    .set(account_codes::attempts.eq(account_codes::attempts + 1))
    .returning((
        account_codes::id,
        account_codes::email,
        account_codes::code_hash,
        account_codes::attempts,
        account_codes::max_attempts,
    ))
    .get_result(c)
    .optional())?;
    Ok(
        row.map(|(id, email, code_hash, attempts, max_attempts)| Guess {
            id,
            email,
            code_hash,
            attempts,
            max_attempts,
        }),
    )
}

/// Marks the code used; `false` when it already was (a concurrent use won).
pub fn consume(conn: &mut DbConn, id: &str, now: Timestamp) -> Result<bool, StorageError> {
    let n = on_backend!(conn, c => diesel::update(
        account_codes::table
            .filter(account_codes::id.eq(id))
            .filter(account_codes::consumed_at.is_null()),
    )
    .set(account_codes::consumed_at.eq(now.as_millis()))
    .execute(c))?;
    Ok(n == 1)
}
