//! Fixed-window counters shared by every instance on the database (DESIGN §8): a bucket
//! (`pw:user:<id>`, `pw:ip:<addr>`) counts hits until its window ends, then starts again.

use crate::conn::on_backend;
use crate::schema::rate_limits;
use crate::{DbConn, StorageError};
use braid_core::Timestamp;
use diesel::dsl::case_when;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Integer};
use std::time::Duration;

/// What a hit was answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RateLimit {
    Allowed,
    /// Over the limit until the window ends, `retry_after` from now.
    Limited {
        retry_after: Duration,
    },
}

impl RateLimit {
    pub fn is_allowed(self) -> bool {
        self == RateLimit::Allowed
    }
}

/// Counts one hit on `bucket` and answers whether it is within `max` hits per `window`.
///
/// One statement (`INSERT … ON CONFLICT (bucket) DO UPDATE … RETURNING`): concurrent hits on
/// one bucket, from any number of instances, are counted one after the other by the database,
/// so no more than `max` are ever allowed in a window. A hit past the limit is counted too (up
/// to `max + 1`, so the counter cannot grow without bound) and does not extend the window.
pub fn hit(
    conn: &mut DbConn,
    bucket: &str,
    window: Duration,
    max: u32,
    now: Timestamp,
) -> Result<RateLimit, StorageError> {
    let now_ms = now.as_millis();
    let ends = now.plus(window).as_millis();
    let max = i32::try_from(max).unwrap_or(i32::MAX - 1);
    let over = max.saturating_add(1);
    let window_over = rate_limits::expires_at.le(now_ms);
    let (hits, expires_at): (i32, i64) = on_backend!(conn, c => diesel::insert_into(rate_limits::table)
        .values((
            rate_limits::bucket.eq(bucket),
            rate_limits::window_start.eq(now_ms),
            rate_limits::hits.eq(1),
            rate_limits::expires_at.eq(ends),
        ))
        .on_conflict(rate_limits::bucket)
        .do_update()
        .set((
            rate_limits::window_start.eq(case_when(window_over, now_ms.into_sql::<BigInt>())
                .otherwise(rate_limits::window_start)),
            rate_limits::expires_at.eq(case_when(window_over, ends.into_sql::<BigInt>())
                .otherwise(rate_limits::expires_at)),
            rate_limits::hits.eq(case_when(window_over, 1.into_sql::<Integer>())
                .when(rate_limits::hits.ge(over), over.into_sql::<Integer>())
                .otherwise(rate_limits::hits + 1)),
        ))
        .returning((rate_limits::hits, rate_limits::expires_at))
        .get_result(c))?;
    if hits <= max {
        return Ok(RateLimit::Allowed);
    }
    let retry_after = u64::try_from(expires_at.saturating_sub(now_ms)).unwrap_or(0);
    Ok(RateLimit::Limited {
        retry_after: Duration::from_millis(retry_after),
    })
}

/// Deletes up to `batch` buckets whose window has ended: a hit on them starts afresh anyway.
pub fn purge_expired(conn: &mut DbConn, now: Timestamp, batch: i64) -> Result<usize, StorageError> {
    let ended: Vec<String> = rate_limits::table
        .filter(rate_limits::expires_at.le(now.as_millis()))
        .select(rate_limits::bucket)
        .limit(batch)
        .load(conn)?;
    // Checked again on delete: a bucket hit meanwhile has started a new window and stays.
    Ok(diesel::delete(
        rate_limits::table
            .filter(rate_limits::bucket.eq_any(&ended))
            .filter(rate_limits::expires_at.le(now.as_millis())),
    )
    .execute(conn)?)
}
