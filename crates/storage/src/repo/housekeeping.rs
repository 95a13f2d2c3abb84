//! Removing one-time rows nobody can use any more, so tables stay the size of the live traffic.

use crate::schema::{exchange_codes, login_flows, refresh_tokens, revoked_access_tokens};
use crate::{DbConn, StorageError};
use braid_core::Timestamp;
use diesel::prelude::*;
use std::time::Duration;

/// Expired rows are kept this long, so a late replay is still recognised as a replay.
const GRACE: Duration = Duration::from_secs(24 * 3600);

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Purged {
    pub login_flows: usize,
    pub exchange_codes: usize,
    pub refresh_tokens: usize,
    pub revoked_access_tokens: usize,
}

pub fn purge_expired(conn: &mut DbConn, now: Timestamp) -> Result<Purged, StorageError> {
    let cutoff = now.minus(GRACE).as_millis();
    Ok(Purged {
        login_flows: diesel::delete(login_flows::table.filter(login_flows::expires_at.lt(cutoff)))
            .execute(conn)?,
        exchange_codes: diesel::delete(
            exchange_codes::table.filter(exchange_codes::expires_at.lt(cutoff)),
        )
        .execute(conn)?,
        refresh_tokens: diesel::delete(
            refresh_tokens::table.filter(refresh_tokens::family_expires_at.lt(cutoff)),
        )
        .execute(conn)?,
        // A revoked access token past its own expiry is refused for being expired anyway.
        revoked_access_tokens: diesel::delete(
            revoked_access_tokens::table
                .filter(revoked_access_tokens::expires_at.lt(now.as_millis())),
        )
        .execute(conn)?,
    })
}
