//! One-time codes that prove a person owns an account's verified email or phone during a
//! manual link. Stored only as a hash, bound to one flow and one account; every guess is
//! counted by one atomic update that also enforces the limit, so concurrent guesses cannot
//! evaluate more than `max_attempts` of them (SECURITY-CASES E05, E06).

use crate::conn::on_backend;
use crate::schema::verification_codes;
use crate::{DbConn, StorageError};
use braid_core::{Timestamp, UserId};
use diesel::prelude::*;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewCode {
    pub id: String,
    pub flow_id_hash: Vec<u8>,
    pub user_id: UserId,
    /// `email` or `sms`.
    pub channel: String,
    /// The stored verified address it went to.
    pub destination: String,
    pub code_hash: Vec<u8>,
    pub max_attempts: i32,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
}

/// The code a flow is waiting for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenCode {
    pub id: String,
    pub user_id: UserId,
    pub channel: String,
    pub destination: String,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
}

/// One counted guess.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    pub code_hash: Vec<u8>,
    /// Including this one.
    pub attempts: i32,
    pub max_attempts: i32,
}

pub fn insert(conn: &mut DbConn, new: &NewCode) -> Result<(), StorageError> {
    on_backend!(conn, c => diesel::insert_into(verification_codes::table)
        .values((
            verification_codes::id.eq(&new.id),
            verification_codes::flow_id_hash.eq(&new.flow_id_hash),
            verification_codes::user_id.eq(new.user_id.as_str()),
            verification_codes::channel.eq(&new.channel),
            verification_codes::destination.eq(&new.destination),
            verification_codes::code_hash.eq(&new.code_hash),
            verification_codes::max_attempts.eq(new.max_attempts),
            verification_codes::created_at.eq(new.created_at.as_millis()),
            verification_codes::expires_at.eq(new.expires_at.as_millis()),
        ))
        .execute(c))?;
    Ok(())
}

/// Ends every code of the flow still open (a resend, another pick, the end of the flow).
pub fn end_open(
    conn: &mut DbConn,
    flow_id_hash: &[u8],
    now: Timestamp,
) -> Result<usize, StorageError> {
    Ok(on_backend!(conn, c => diesel::update(
        verification_codes::table
            .filter(verification_codes::flow_id_hash.eq(flow_id_hash))
            .filter(verification_codes::consumed_at.is_null()),
    )
    .set(verification_codes::consumed_at.eq(now.as_millis()))
    .execute(c))?)
}

/// How many codes the flow has sent (for the resend limit).
pub fn sent_for_flow(conn: &mut DbConn, flow_id_hash: &[u8]) -> Result<i64, StorageError> {
    Ok(on_backend!(conn, c => verification_codes::table
        .filter(verification_codes::flow_id_hash.eq(flow_id_hash))
        .count()
        .get_result(c))?)
}

/// The guesses counted so far on all of the flow's codes: the limit is the flow's, not each
/// code's, so asking for a new code gives no new tries.
pub fn attempts_for_flow(conn: &mut DbConn, flow_id_hash: &[u8]) -> Result<i32, StorageError> {
    let counts: Vec<i32> = on_backend!(conn, c => verification_codes::table
        .filter(verification_codes::flow_id_hash.eq(flow_id_hash))
        .select(verification_codes::attempts)
        .load(c))?;
    Ok(counts.iter().sum())
}

/// How many codes were sent to this account since `since` (across flows).
pub fn sent_to_user_since(
    conn: &mut DbConn,
    user: &UserId,
    since: Timestamp,
) -> Result<i64, StorageError> {
    Ok(on_backend!(conn, c => verification_codes::table
        .filter(verification_codes::user_id.eq(user.as_str()))
        .filter(verification_codes::created_at.ge(since.as_millis()))
        .count()
        .get_result(c))?)
}

/// The flow's open code, whether or not it has expired (the page says which).
pub fn open_for_flow(
    conn: &mut DbConn,
    flow_id_hash: &[u8],
) -> Result<Option<OpenCode>, StorageError> {
    let row: Option<(String, String, String, String, i64, i64)> = on_backend!(conn, c => verification_codes::table
        .filter(verification_codes::flow_id_hash.eq(flow_id_hash))
        .filter(verification_codes::consumed_at.is_null())
        .order(verification_codes::created_at.desc())
        .select((
            verification_codes::id,
            verification_codes::user_id,
            verification_codes::channel,
            verification_codes::destination,
            verification_codes::created_at,
            verification_codes::expires_at,
        ))
        .first(c)
        .optional())?;
    row.map(|(id, user, channel, destination, created_at, expires_at)| {
        Ok(OpenCode {
            id,
            user_id: UserId::parse(&user)
                .map_err(|_| StorageError::Corrupt("verification code user".into()))?,
            channel,
            destination,
            created_at: Timestamp::from_millis(created_at),
            expires_at: Timestamp::from_millis(expires_at),
        })
    })
    .transpose()
}

/// Counts one guess at the code, if it is still open, unexpired and below its limit; `None`
/// otherwise (nothing is evaluated then).
pub fn attempt(
    conn: &mut DbConn,
    id: &str,
    now: Timestamp,
) -> Result<Option<Attempt>, StorageError> {
    let row: Option<(Vec<u8>, i32, i32)> = on_backend!(conn, c => diesel::update(
        verification_codes::table
            .filter(verification_codes::id.eq(id))
            .filter(verification_codes::consumed_at.is_null())
            .filter(verification_codes::expires_at.gt(now.as_millis()))
            .filter(verification_codes::attempts.lt(verification_codes::max_attempts)),
    )
    .set(verification_codes::attempts.eq(verification_codes::attempts + 1))
    .returning((
        verification_codes::code_hash,
        verification_codes::attempts,
        verification_codes::max_attempts,
    ))
    .get_result(c)
    .optional())?;
    Ok(row.map(|(code_hash, attempts, max_attempts)| Attempt {
        code_hash,
        attempts,
        max_attempts,
    }))
}

/// Marks the code used; `false` when it already was.
pub fn consume(conn: &mut DbConn, id: &str, now: Timestamp) -> Result<bool, StorageError> {
    let n = on_backend!(conn, c => diesel::update(
        verification_codes::table
            .filter(verification_codes::id.eq(id))
            .filter(verification_codes::consumed_at.is_null()),
    )
    .set(verification_codes::consumed_at.eq(now.as_millis()))
    .execute(c))?;
    Ok(n == 1)
}
