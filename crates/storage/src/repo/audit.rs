//! The audit trail: every linking decision and token event, with its reason.

use crate::conn::on_backend;
use crate::schema::audit_events;
use crate::{DbConn, StorageError};
use braid_core::{Timestamp, new_id};
use diesel::prelude::*;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditEvent {
    pub kind: String,
    pub result: Option<String>,
    pub reason: Option<String>,
    pub user_id: Option<String>,
    pub provider: Option<String>,
    pub subject: Option<String>,
    pub client_id: Option<String>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub detail: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredAuditEvent {
    pub at: Timestamp,
    pub event: AuditEvent,
}

pub fn record(conn: &mut DbConn, e: &AuditEvent, at: Timestamp) -> Result<(), StorageError> {
    on_backend!(conn, c => diesel::insert_into(audit_events::table)
        .values((
            audit_events::id.eq(new_id()),
            audit_events::at.eq(at.as_millis()),
            audit_events::kind.eq(&e.kind),
            audit_events::result.eq(e.result.as_deref()),
            audit_events::reason.eq(e.reason.as_deref()),
            audit_events::user_id.eq(e.user_id.as_deref()),
            audit_events::provider.eq(e.provider.as_deref()),
            audit_events::subject.eq(e.subject.as_deref()),
            audit_events::client_id.eq(e.client_id.as_deref()),
            audit_events::ip.eq(e.ip.as_deref()),
            audit_events::user_agent.eq(e.user_agent.as_deref()),
            audit_events::detail.eq(e.detail.as_deref()),
        ))
        .execute(c))?;
    Ok(())
}

type Row = (
    i64,
    String,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
);

/// Newest first.
pub fn recent(conn: &mut DbConn, limit: i64) -> Result<Vec<StoredAuditEvent>, StorageError> {
    let rows: Vec<Row> = audit_events::table
        .order((audit_events::at.desc(), audit_events::id.desc()))
        .limit(limit)
        .select(COLUMNS)
        .load(conn)?;
    Ok(rows.into_iter().map(from_row).collect())
}

const COLUMNS: (
    audit_events::at,
    audit_events::kind,
    audit_events::result,
    audit_events::reason,
    audit_events::user_id,
    audit_events::provider,
    audit_events::subject,
    audit_events::client_id,
    audit_events::ip,
    audit_events::user_agent,
    audit_events::detail,
) = (
    audit_events::at,
    audit_events::kind,
    audit_events::result,
    audit_events::reason,
    audit_events::user_id,
    audit_events::provider,
    audit_events::subject,
    audit_events::client_id,
    audit_events::ip,
    audit_events::user_agent,
    audit_events::detail,
);

fn from_row(
    (at, kind, result, reason, user_id, provider, subject, client_id, ip, user_agent, detail): Row,
) -> StoredAuditEvent {
    StoredAuditEvent {
        at: Timestamp::from_millis(at),
        event: AuditEvent {
            kind,
            result,
            reason,
            user_id,
            provider,
            subject,
            client_id,
            ip,
            user_agent,
            detail,
        },
    }
}

/// The user's events, newest first.
pub fn of_user(
    conn: &mut DbConn,
    user_id: &str,
    limit: i64,
) -> Result<Vec<StoredAuditEvent>, StorageError> {
    let rows: Vec<Row> = audit_events::table
        .filter(audit_events::user_id.eq(user_id))
        .order((audit_events::at.desc(), audit_events::id.desc()))
        .limit(limit)
        .select(COLUMNS)
        .load(conn)?;
    Ok(rows.into_iter().map(from_row).collect())
}
