//! Background tasks: purge expired one-time rows every few minutes, and (SQLite) checkpoint
//! the write-ahead log every second, so no request waits for either. Every instance runs them;
//! the deletes are idempotent, so several instances on one database do no harm.

use braid_core::Timestamp;
use braid_storage::Database;
use braid_storage::repo::housekeeping::{self, Purged};
use std::time::Duration;

const PURGE_EVERY: Duration = Duration::from_secs(600);
const CHECKPOINT_EVERY: Duration = Duration::from_secs(1);

pub fn spawn(db: Database) {
    let purge_db = db.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(PURGE_EVERY);
        tick.tick().await;
        loop {
            tick.tick().await;
            match purge(&purge_db).await {
                Ok(p) => tracing::debug!(?p, "expired rows purged"),
                Err(e) => tracing::warn!(error = %e, "purging expired rows failed"),
            }
        }
    });
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(CHECKPOINT_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            if let Err(e) = db.checkpoint().await {
                tracing::warn!(error = %e, "checkpoint failed");
            }
        }
    });
}

/// In batches, each its own short write transaction, so logins keep their turn at the lock.
pub async fn purge(db: &Database) -> Result<Purged, braid_storage::StorageError> {
    let mut total = Purged::default();
    loop {
        let batch = db
            .run_write(|c| housekeeping::purge_expired(c, Timestamp::now()))
            .await?;
        total.add(batch);
        if !batch.maybe_more() {
            return Ok(total);
        }
        tokio::task::yield_now().await;
    }
}
