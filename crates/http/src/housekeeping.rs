//! A background task that purges expired one-time rows every few minutes. Every instance runs
//! it; the deletes are idempotent, so several instances on one database do no harm.

use braid_core::Timestamp;
use braid_storage::Database;
use braid_storage::repo::housekeeping;
use std::time::Duration;

const EVERY: Duration = Duration::from_secs(600);

pub fn spawn(db: Database) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(EVERY);
        tick.tick().await;
        loop {
            tick.tick().await;
            match db
                .run(|c| housekeeping::purge_expired(c, Timestamp::now()))
                .await
            {
                Ok(p) => tracing::debug!(?p, "expired rows purged"),
                Err(e) => tracing::warn!(error = %e, "purging expired rows failed"),
            }
        }
    });
}
