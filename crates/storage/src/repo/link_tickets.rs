//! One-time tickets that start a "connect another provider" sign-in for a signed-in user.
//! Stored only as a hash; consumed by one atomic UPDATE, so a ticket starts one sign-in at most.

use crate::conn::on_backend;
use crate::schema::{link_tickets, users};
use crate::{DbConn, StorageError};
use braid_core::{Timestamp, UserId};
use diesel::prelude::*;

/// A ticket: whom the connected identity goes to, and where the result goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkTicket {
    pub user_id: UserId,
    pub client_id: String,
    pub redirect_uri: String,
    pub app_state: Option<String>,
    pub code_challenge: Option<String>,
}

pub fn insert(
    conn: &mut DbConn,
    ticket_hash: &[u8],
    ticket: &LinkTicket,
    now: Timestamp,
    expires_at: Timestamp,
) -> Result<(), StorageError> {
    on_backend!(conn, c => diesel::insert_into(link_tickets::table)
        .values((
            link_tickets::ticket_hash.eq(ticket_hash),
            link_tickets::user_id.eq(ticket.user_id.as_str()),
            link_tickets::client_id.eq(&ticket.client_id),
            link_tickets::redirect_uri.eq(&ticket.redirect_uri),
            link_tickets::app_state.eq(ticket.app_state.as_deref()),
            link_tickets::code_challenge.eq(ticket.code_challenge.as_deref()),
            link_tickets::created_at.eq(now.as_millis()),
            link_tickets::expires_at.eq(expires_at.as_millis()),
        ))
        .execute(c))?;
    Ok(())
}

type Row = (String, String, String, Option<String>, Option<String>);

/// Marks the ticket used and returns it, or `None` when it is unknown, expired, already used
/// or its user is disabled.
pub fn consume(
    conn: &mut DbConn,
    ticket_hash: &[u8],
    now: Timestamp,
) -> Result<Option<LinkTicket>, StorageError> {
    let row: Option<Row> = on_backend!(conn, c => diesel::update(link_tickets::table)
        .filter(link_tickets::ticket_hash.eq(ticket_hash))
        .filter(link_tickets::consumed_at.is_null())
        .filter(link_tickets::expires_at.gt(now.as_millis()))
        .filter(diesel::dsl::exists(
            users::table
                .filter(users::id.eq(link_tickets::user_id))
                .filter(users::disabled.eq(false)),
        ))
        .set(link_tickets::consumed_at.eq(now.as_millis()))
        .returning((
            link_tickets::user_id,
            link_tickets::client_id,
            link_tickets::redirect_uri,
            link_tickets::app_state,
            link_tickets::code_challenge,
        ))
        .get_result(c)
        .optional())?;
    row.map(
        |(user_id, client_id, redirect_uri, app_state, code_challenge)| {
            Ok(LinkTicket {
                user_id: UserId::parse(&user_id)?,
                client_id,
                redirect_uri,
                app_state,
                code_challenge,
            })
        },
    )
    .transpose()
}
