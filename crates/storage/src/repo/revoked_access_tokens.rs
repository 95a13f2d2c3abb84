//! Access tokens revoked before they expire (exchange code replay, explicit revocation).

use crate::schema::revoked_access_tokens;
use crate::{DbConn, StorageError};
use braid_core::Timestamp;
use diesel::prelude::*;

/// Idempotent: revoking twice is not an error.
pub fn revoke(conn: &mut DbConn, jti: &str, expires_at: Timestamp) -> Result<(), StorageError> {
    let inserted = diesel::insert_into(revoked_access_tokens::table)
        .values((
            revoked_access_tokens::jti.eq(jti),
            revoked_access_tokens::expires_at.eq(expires_at.as_millis()),
        ))
        .execute(conn);
    match inserted.map_err(StorageError::from) {
        Ok(_) | Err(StorageError::Conflict(_)) => Ok(()),
        Err(e) => Err(e),
    }
}

pub fn is_revoked(conn: &mut DbConn, jti: &str) -> Result<bool, StorageError> {
    let n: i64 = revoked_access_tokens::table
        .filter(revoked_access_tokens::jti.eq(jti))
        .count()
        .get_result(conn)?;
    Ok(n > 0)
}
