//! Server-side browser sessions (`sessions.store = "database"`). The browser holds a random key
//! in an encrypted cookie; only its SHA-256 is stored, so a copy of this table opens no session.
//! A row past `expires_at` is treated as absent everywhere, purged or not.

use crate::schema::sessions;
use crate::{DbConn, StorageError};
use braid_core::Timestamp;
use diesel::prelude::*;

/// The session's state (JSON), if it exists and has not expired.
pub fn load(
    conn: &mut DbConn,
    id_hash: &[u8],
    now: Timestamp,
) -> Result<Option<String>, StorageError> {
    Ok(sessions::table
        .filter(sessions::id_hash.eq(id_hash))
        .filter(sessions::expires_at.gt(now.as_millis()))
        .select(sessions::state)
        .get_result(conn)
        .optional()?)
}

/// A new session. The key is 256 random bits: a clash is an error, never an overwrite.
pub fn insert(
    conn: &mut DbConn,
    id_hash: &[u8],
    state: &str,
    now: Timestamp,
    expires_at: Timestamp,
) -> Result<(), StorageError> {
    diesel::insert_into(sessions::table)
        .values((
            sessions::id_hash.eq(id_hash),
            sessions::state.eq(state),
            sessions::created_at.eq(now.as_millis()),
            sessions::expires_at.eq(expires_at.as_millis()),
        ))
        .execute(conn)?;
    Ok(())
}

/// Replaces a live session's state; `false` when it expired or was deleted meanwhile (the
/// caller then starts a new one rather than reviving it).
pub fn update(
    conn: &mut DbConn,
    id_hash: &[u8],
    state: &str,
    now: Timestamp,
    expires_at: Timestamp,
) -> Result<bool, StorageError> {
    let n = diesel::update(
        sessions::table
            .filter(sessions::id_hash.eq(id_hash))
            .filter(sessions::expires_at.gt(now.as_millis())),
    )
    .set((
        sessions::state.eq(state),
        sessions::expires_at.eq(expires_at.as_millis()),
    ))
    .execute(conn)?;
    Ok(n == 1)
}

/// Extends a live session.
pub fn touch(
    conn: &mut DbConn,
    id_hash: &[u8],
    now: Timestamp,
    expires_at: Timestamp,
) -> Result<(), StorageError> {
    diesel::update(
        sessions::table
            .filter(sessions::id_hash.eq(id_hash))
            .filter(sessions::expires_at.gt(now.as_millis())),
    )
    .set(sessions::expires_at.eq(expires_at.as_millis()))
    .execute(conn)?;
    Ok(())
}

pub fn delete(conn: &mut DbConn, id_hash: &[u8]) -> Result<(), StorageError> {
    diesel::delete(sessions::table.filter(sessions::id_hash.eq(id_hash))).execute(conn)?;
    Ok(())
}
