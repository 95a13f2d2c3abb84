//! The server-side half of an upstream login: its single-use mark. The flow itself (state,
//! nonce, PKCE verifier, where the result goes) travels sealed in the browser's cookie; the
//! callback marks the cookie's `jti` used before anything goes upstream, so a replayed or
//! concurrently repeated callback finds the mark and stops (SECURITY-CASES A04).

use crate::conn::on_backend;
use crate::schema::used_login_flows;
use crate::{DbConn, StorageError};
use braid_core::Timestamp;
use diesel::prelude::*;

/// Marks the flow `jti` (expiring at `expires_at`) used. `false` when it already was: the
/// unique key settles concurrent callbacks, exactly one of them gets `true`.
pub fn mark_used(
    conn: &mut DbConn,
    jti: &[u8],
    expires_at: Timestamp,
) -> Result<bool, StorageError> {
    let inserted = on_backend!(conn, c => diesel::insert_into(used_login_flows::table)
        .values((
            used_login_flows::expires_at.eq(expires_at.as_millis()),
            used_login_flows::jti.eq(jti),
        ))
        .on_conflict_do_nothing()
        .execute(c))?;
    Ok(inserted == 1)
}
