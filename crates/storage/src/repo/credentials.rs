//! Password hashes, one per user. What a hash is and how it is checked is braid-http's
//! `passwords`; here it is an opaque string.

use crate::conn::on_backend;
use crate::schema::credentials;
use crate::{DbConn, StorageError};
use braid_core::{Timestamp, UserId};
use diesel::prelude::*;

/// The user's stored password hash, or `None` when the user has no password.
pub fn password_hash(conn: &mut DbConn, user: &UserId) -> Result<Option<String>, StorageError> {
    Ok(credentials::table
        .filter(credentials::user_id.eq(user.as_str()))
        .select(credentials::password_hash)
        .get_result(conn)
        .optional()?)
}

/// Sets (or replaces) the user's password hash.
pub fn set_password_hash(
    conn: &mut DbConn,
    user: &UserId,
    phc: &str,
    now: Timestamp,
) -> Result<(), StorageError> {
    on_backend!(conn, c => diesel::insert_into(credentials::table)
        .values((
            credentials::user_id.eq(user.as_str()),
            credentials::password_hash.eq(phc),
            credentials::created_at.eq(now.as_millis()),
            credentials::updated_at.eq(now.as_millis()),
        ))
        .on_conflict(credentials::user_id)
        .do_update()
        .set((
            credentials::password_hash.eq(phc),
            credentials::updated_at.eq(now.as_millis()),
        ))
        .execute(c))?;
    Ok(())
}

/// Replaces the hash only while it is still `old`: a re-hash after a successful check must not
/// overwrite a password changed in between.
pub fn replace_password_hash(
    conn: &mut DbConn,
    user: &UserId,
    old: &str,
    new: &str,
    now: Timestamp,
) -> Result<bool, StorageError> {
    let n = diesel::update(
        credentials::table
            .filter(credentials::user_id.eq(user.as_str()))
            .filter(credentials::password_hash.eq(old)),
    )
    .set((
        credentials::password_hash.eq(new),
        credentials::updated_at.eq(now.as_millis()),
    ))
    .execute(conn)?;
    Ok(n == 1)
}
