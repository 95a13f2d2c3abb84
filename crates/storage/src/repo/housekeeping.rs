//! Removing one-time rows nobody can use any more, so tables stay the size of the live traffic.

use crate::repo::rate_limits;
use crate::schema::{
    account_codes, exchange_codes, link_flows, link_tickets, outbox, refresh_tokens,
    revoked_access_tokens, sessions, used_login_flows,
};
use crate::{DbConn, StorageError};
use braid_core::Timestamp;
use diesel::prelude::*;
use std::time::Duration;

/// Expired rows are kept this long, so a late replay is still recognised as a replay.
const GRACE: Duration = Duration::from_secs(24 * 3600);

/// How long a used login flow's mark outlives the flow: more than any clock difference
/// between instances.
const FLOW_MARK_GRACE: Duration = Duration::from_secs(600);

/// Any outbox message is deleted this long after it was queued: by then it was sent, given up,
/// or waits for a channel no instance sends. Sent ones go after [`GRACE`].
const OUTBOX_MAX_AGE: Duration = Duration::from_secs(7 * 24 * 3600);

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Purged {
    pub login_flows: usize,
    pub exchange_codes: usize,
    pub refresh_tokens: usize,
    pub revoked_access_tokens: usize,
    pub rate_limits: usize,
    pub outbox: usize,
    pub sessions: usize,
    /// Manual link flows, with their verification codes (deleted with them).
    pub link_flows: usize,
    pub link_tickets: usize,
    /// Local accounts' confirmation and reset codes.
    pub account_codes: usize,
}

/// Rows deleted per table and statement: a purge holds the write lock for a bounded time.
pub const BATCH: i64 = 1_000;

/// Deletes up to [`BATCH`] expired rows of each table; run it in a write transaction. Call it again while
/// [`Purged::maybe_more`] says a table had a full batch.
pub fn purge_expired(conn: &mut DbConn, now: Timestamp) -> Result<Purged, StorageError> {
    let cutoff = now.minus(GRACE).as_millis();
    // A flow cookie past its expiry is refused for being expired: its mark has done its job.
    // Kept a little longer, so an instance whose clock runs behind still finds it.
    let flow_expiries: Vec<i64> = used_login_flows::table
        .filter(used_login_flows::expires_at.lt(now.minus(FLOW_MARK_GRACE).as_millis()))
        .order(used_login_flows::expires_at)
        .select(used_login_flows::expires_at)
        .limit(BATCH)
        .load(conn)?;
    let codes: Vec<Vec<u8>> = exchange_codes::table
        .filter(exchange_codes::expires_at.lt(cutoff))
        .select(exchange_codes::code_hash)
        .limit(BATCH)
        .load(conn)?;
    let refresh: Vec<Vec<u8>> = refresh_tokens::table
        .filter(refresh_tokens::family_expires_at.lt(cutoff))
        .select(refresh_tokens::token_hash)
        .limit(BATCH)
        .load(conn)?;
    // A revoked access token past its own expiry is refused for being expired anyway.
    let revoked: Vec<String> = revoked_access_tokens::table
        .filter(revoked_access_tokens::expires_at.lt(now.as_millis()))
        .select(revoked_access_tokens::jti)
        .limit(BATCH)
        .load(conn)?;
    let messages: Vec<String> = outbox::table
        .filter(
            outbox::sent_at
                .lt(cutoff)
                .or(outbox::created_at.lt(now.minus(OUTBOX_MAX_AGE).as_millis())),
        )
        .select(outbox::id)
        .limit(BATCH)
        .load(conn)?;
    // An expired session opens nothing; its row only waits here.
    let expired_sessions: Vec<Vec<u8>> = sessions::table
        .filter(sessions::expires_at.lt(now.as_millis()))
        .select(sessions::id_hash)
        .limit(BATCH)
        .load(conn)?;
    // Kept a day past expiry like the other one-time rows; their codes count towards the
    // per-account hourly limit only within the hour.
    let flows: Vec<Vec<u8>> = link_flows::table
        .filter(link_flows::expires_at.lt(cutoff))
        .select(link_flows::id_hash)
        .limit(BATCH)
        .load(conn)?;
    let tickets: Vec<Vec<u8>> = link_tickets::table
        .filter(link_tickets::expires_at.lt(cutoff))
        .select(link_tickets::ticket_hash)
        .limit(BATCH)
        .load(conn)?;
    let local_codes: Vec<String> = account_codes::table
        .filter(account_codes::expires_at.lt(cutoff))
        .select(account_codes::id)
        .limit(BATCH)
        .load(conn)?;
    Ok(Purged {
        login_flows: match flow_expiries.last() {
            // Marks are keyed by expiry first: everything up to the batch's last one.
            Some(last_expiry) => diesel::delete(
                used_login_flows::table.filter(used_login_flows::expires_at.le(last_expiry)),
            )
            .execute(conn)?,
            None => 0,
        },
        exchange_codes: diesel::delete(
            exchange_codes::table.filter(exchange_codes::code_hash.eq_any(&codes)),
        )
        .execute(conn)?,
        refresh_tokens: diesel::delete(
            refresh_tokens::table.filter(refresh_tokens::token_hash.eq_any(&refresh)),
        )
        .execute(conn)?,
        revoked_access_tokens: diesel::delete(
            revoked_access_tokens::table.filter(revoked_access_tokens::jti.eq_any(&revoked)),
        )
        .execute(conn)?,
        rate_limits: rate_limits::purge_expired(conn, now, BATCH)?,
        outbox: diesel::delete(outbox::table.filter(outbox::id.eq_any(&messages))).execute(conn)?,
        sessions: diesel::delete(
            sessions::table.filter(sessions::id_hash.eq_any(&expired_sessions)),
        )
        .execute(conn)?,
        link_flows: diesel::delete(link_flows::table.filter(link_flows::id_hash.eq_any(&flows)))
            .execute(conn)?,
        link_tickets: diesel::delete(
            link_tickets::table.filter(link_tickets::ticket_hash.eq_any(&tickets)),
        )
        .execute(conn)?,
        account_codes: diesel::delete(
            account_codes::table.filter(account_codes::id.eq_any(&local_codes)),
        )
        .execute(conn)?,
    })
}

impl Purged {
    /// Some table had a full batch: there may be more to delete.
    pub fn maybe_more(&self) -> bool {
        let full = |n: usize| n as i64 >= BATCH;
        full(self.login_flows)
            || full(self.exchange_codes)
            || full(self.refresh_tokens)
            || full(self.revoked_access_tokens)
            || full(self.rate_limits)
            || full(self.outbox)
            || full(self.sessions)
            || full(self.link_flows)
            || full(self.link_tickets)
            || full(self.account_codes)
    }

    pub fn add(&mut self, other: Purged) {
        self.login_flows += other.login_flows;
        self.exchange_codes += other.exchange_codes;
        self.refresh_tokens += other.refresh_tokens;
        self.revoked_access_tokens += other.revoked_access_tokens;
        self.rate_limits += other.rate_limits;
        self.outbox += other.outbox;
        self.sessions += other.sessions;
        self.link_flows += other.link_flows;
        self.link_tickets += other.link_tickets;
        self.account_codes += other.account_codes;
    }
}
