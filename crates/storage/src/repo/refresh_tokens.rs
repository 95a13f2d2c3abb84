//! Refresh tokens: opaque, stored hashed, rotated on every use. A token used twice means it
//! leaked: the whole family is revoked (RFC 9700 §4.14.2).

use crate::conn::on_backend;
use crate::prepared::PreparedExt;
use crate::schema::refresh_tokens;
use crate::{DbConn, StorageError};
use braid_core::{Timestamp, UserId, new_id};
use diesel::prelude::*;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewRefreshToken {
    pub token_hash: Vec<u8>,
    pub family_id: String,
    pub client_id: String,
    pub user_id: UserId,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
    pub family_expires_at: Timestamp,
    /// The identity the family's sign-in went through: unlinking it revokes the family.
    pub identity_id: Option<String>,
    /// When the family's sign-in happened (`auth_time`), kept through rotations.
    pub auth_time: Option<Timestamp>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefreshToken {
    pub id: String,
    pub family_id: String,
    pub client_id: String,
    pub user_id: UserId,
    pub expires_at: Timestamp,
    pub family_expires_at: Timestamp,
    pub rotated_at: Option<Timestamp>,
    pub revoked_at: Option<Timestamp>,
    pub identity_id: Option<String>,
    pub auth_time: Option<Timestamp>,
}

type Row = (
    (String, String, String, String),
    (i64, i64, Option<i64>, Option<i64>),
    (Option<String>, Option<i64>),
);

fn from_row(
    (
        (id, family_id, client_id, user_id),
        (expires_at, family_expires_at, rotated_at, revoked_at),
        (identity_id, auth_time),
    ): Row,
) -> Result<RefreshToken, StorageError> {
    Ok(RefreshToken {
        id,
        family_id,
        client_id,
        user_id: UserId::parse(&user_id)?,
        expires_at: Timestamp::from_millis(expires_at),
        family_expires_at: Timestamp::from_millis(family_expires_at),
        rotated_at: rotated_at.map(Timestamp::from_millis),
        revoked_at: revoked_at.map(Timestamp::from_millis),
        identity_id,
        auth_time: auth_time.map(Timestamp::from_millis),
    })
}

pub fn insert(conn: &mut DbConn, new: &NewRefreshToken) -> Result<String, StorageError> {
    let id = new_id();
    on_backend!(conn, c => diesel::insert_into(refresh_tokens::table)
        .values((
            refresh_tokens::token_hash.eq(&new.token_hash),
            refresh_tokens::id.eq(&id),
            refresh_tokens::family_id.eq(&new.family_id),
            refresh_tokens::client_id.eq(&new.client_id),
            refresh_tokens::user_id.eq(new.user_id.as_str()),
            refresh_tokens::created_at.eq(new.created_at.as_millis()),
            refresh_tokens::expires_at.eq(new.expires_at.as_millis()),
            refresh_tokens::family_expires_at.eq(new.family_expires_at.as_millis()),
            refresh_tokens::identity_id.eq(new.identity_id.as_deref()),
            refresh_tokens::auth_time.eq(new.auth_time.map(Timestamp::as_millis)),
        ))
        .execute(c))?;
    Ok(id)
}

pub fn find(conn: &mut DbConn, token_hash: &[u8]) -> Result<Option<RefreshToken>, StorageError> {
    on_backend!(conn, c => refresh_tokens::table
        .filter(refresh_tokens::token_hash.eq(token_hash))
        .select((
            (
                refresh_tokens::id,
                refresh_tokens::family_id,
                refresh_tokens::client_id,
                refresh_tokens::user_id,
            ),
            (
                refresh_tokens::expires_at,
                refresh_tokens::family_expires_at,
                refresh_tokens::rotated_at,
                refresh_tokens::revoked_at,
            ),
            (refresh_tokens::identity_id, refresh_tokens::auth_time),
        ))
        .get_result::<Row>(c)
        .optional())?
    .map(from_row)
    .transpose()
}

/// Marks the token used. False when it was already used or revoked (a concurrent rotation lost).
pub fn mark_rotated(
    conn: &mut DbConn,
    token_hash: &[u8],
    now: Timestamp,
) -> Result<bool, StorageError> {
    let rotated = on_backend!(conn, c => diesel::update(refresh_tokens::table)
        .filter(refresh_tokens::token_hash.eq(token_hash))
        .filter(refresh_tokens::rotated_at.is_null())
        .filter(refresh_tokens::revoked_at.is_null())
        .set(refresh_tokens::rotated_at.eq(now.as_millis()))
        .returning(refresh_tokens::rotated_at)
        .prepared()
        .get_result::<Option<i64>>(c)
        .optional())?;
    Ok(rotated.is_some())
}

pub fn revoke_family(
    conn: &mut DbConn,
    family_id: &str,
    now: Timestamp,
) -> Result<usize, StorageError> {
    Ok(diesel::update(refresh_tokens::table)
        .filter(refresh_tokens::family_id.eq(family_id))
        .filter(refresh_tokens::revoked_at.is_null())
        .set(refresh_tokens::revoked_at.eq(now.as_millis()))
        .execute(conn)?)
}

pub fn revoke_all_of_user(
    conn: &mut DbConn,
    user: &UserId,
    now: Timestamp,
) -> Result<usize, StorageError> {
    Ok(diesel::update(refresh_tokens::table)
        .filter(refresh_tokens::user_id.eq(user.as_str()))
        .filter(refresh_tokens::revoked_at.is_null())
        .set(refresh_tokens::revoked_at.eq(now.as_millis()))
        .execute(conn)?)
}

/// Revokes every token obtained through this identity (SECURITY-CASES F18: an unlinked
/// sign-in method keeps no session alive).
pub fn revoke_of_identity(
    conn: &mut DbConn,
    identity_id: &str,
    now: Timestamp,
) -> Result<usize, StorageError> {
    Ok(diesel::update(refresh_tokens::table)
        .filter(refresh_tokens::identity_id.eq(identity_id))
        .filter(refresh_tokens::revoked_at.is_null())
        .set(refresh_tokens::revoked_at.eq(now.as_millis()))
        .execute(conn)?)
}

/// The family is still alive: some member neither revoked nor expired.
pub fn family_active(
    conn: &mut DbConn,
    family_id: &str,
    now: Timestamp,
) -> Result<bool, StorageError> {
    let n: i64 = refresh_tokens::table
        .filter(refresh_tokens::family_id.eq(family_id))
        .filter(refresh_tokens::revoked_at.is_null())
        .filter(refresh_tokens::family_expires_at.gt(now.as_millis()))
        .count()
        .get_result(conn)?;
    Ok(n > 0)
}
