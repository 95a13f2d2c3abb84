//! One-time exchange codes. Stored only as a hash; consumed by one atomic UPDATE so that of
//! any number of concurrent redemptions exactly one gets the row.

use crate::conn::on_backend;
use crate::prepared::PreparedExt;
use crate::schema::{exchange_codes, users};
use crate::{DbConn, StorageError};
use braid_core::{Timestamp, UserId};
use diesel::prelude::*;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewExchangeCode {
    pub code_hash: Vec<u8>,
    pub client_id: String,
    pub redirect_uri: String,
    pub code_challenge: Option<String>,
    pub code_challenge_method: Option<String>,
    pub user_id: UserId,
    /// JSON describing how the user signed in (provider, method), copied into the tokens.
    pub auth_context: String,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumedExchangeCode {
    pub client_id: String,
    pub redirect_uri: String,
    pub code_challenge: Option<String>,
    pub code_challenge_method: Option<String>,
    pub user_id: UserId,
    pub auth_context: String,
    pub expires_at: Timestamp,
    /// The user's `external_id`, read by the statement that consumes the code.
    pub external_id: Option<String>,
}

pub fn insert(conn: &mut DbConn, new: &NewExchangeCode) -> Result<(), StorageError> {
    on_backend!(conn, c => diesel::insert_into(exchange_codes::table)
        .values((
            exchange_codes::code_hash.eq(&new.code_hash),
            exchange_codes::client_id.eq(&new.client_id),
            exchange_codes::redirect_uri.eq(&new.redirect_uri),
            exchange_codes::code_challenge.eq(new.code_challenge.as_deref()),
            exchange_codes::code_challenge_method.eq(new.code_challenge_method.as_deref()),
            exchange_codes::user_id.eq(new.user_id.as_str()),
            exchange_codes::auth_context.eq(&new.auth_context),
            exchange_codes::created_at.eq(new.created_at.as_millis()),
            exchange_codes::expires_at.eq(new.expires_at.as_millis()),
        ))
        .execute(c))?;
    Ok(())
}

type ConsumedRow = (
    String,
    String,
    Option<String>,
    Option<String>,
    String,
    String,
    i64,
    Option<String>,
);

/// What a redemption found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Redemption {
    /// First use: the code is now consumed.
    Fresh(ConsumedExchangeCode),
    /// The code was redeemed before: whatever that redemption issued must be revoked.
    Replayed {
        issued_family_id: Option<String>,
        issued_access_jti: Option<String>,
        expires_at: Timestamp,
    },
    /// Unknown or expired.
    Invalid,
}

/// The ids of the tokens a redemption will issue, recorded as the code is consumed so that a
/// replay can revoke them.
#[derive(Debug, Clone, Copy)]
pub struct ToIssue<'a> {
    pub family_id: &'a str,
    pub access_jti: &'a str,
}

/// Consumes the code (recording `to_issue` in the same statement), or reports a replay so the
/// caller can revoke what the first use issued.
pub fn redeem(
    conn: &mut DbConn,
    code_hash: &[u8],
    now: Timestamp,
    to_issue: ToIssue<'_>,
) -> Result<Redemption, StorageError> {
    if let Some(fresh) = consume_recording(conn, code_hash, now, Some(to_issue))? {
        return Ok(Redemption::Fresh(fresh));
    }
    let used: Option<(Option<String>, Option<String>, i64)> = exchange_codes::table
        .filter(exchange_codes::code_hash.eq(code_hash))
        .filter(exchange_codes::consumed_at.is_not_null())
        .select((
            exchange_codes::issued_family_id,
            exchange_codes::issued_access_jti,
            exchange_codes::expires_at,
        ))
        .get_result(conn)
        .optional()?;
    Ok(match used {
        Some((issued_family_id, issued_access_jti, expires_at)) => Redemption::Replayed {
            issued_family_id,
            issued_access_jti,
            expires_at: Timestamp::from_millis(expires_at),
        },
        None => Redemption::Invalid,
    })
}

/// Marks the code used and returns it, or `None` when it is unknown, expired, already used or
/// its user is disabled.
pub fn consume(
    conn: &mut DbConn,
    code_hash: &[u8],
    now: Timestamp,
) -> Result<Option<ConsumedExchangeCode>, StorageError> {
    consume_recording(conn, code_hash, now, None)
}

fn consume_recording(
    conn: &mut DbConn,
    code_hash: &[u8],
    now: Timestamp,
    to_issue: Option<ToIssue<'_>>,
) -> Result<Option<ConsumedExchangeCode>, StorageError> {
    let row: Option<ConsumedRow> = on_backend!(conn, c => diesel::update(exchange_codes::table)
        .filter(exchange_codes::code_hash.eq(code_hash))
        .filter(exchange_codes::consumed_at.is_null())
        .filter(exchange_codes::expires_at.gt(now.as_millis()))
        // A disabled user's codes are dead: checked here rather than by a second query while
        // the write lock is held. EXISTS on the user's primary key, not IN (all active users),
        // so its cost does not grow with the number of users.
        .filter(diesel::dsl::exists(
            users::table
                .filter(users::id.eq(exchange_codes::user_id))
                .filter(users::disabled.eq(false)),
        ))
        .set((
            exchange_codes::consumed_at.eq(now.as_millis()),
            exchange_codes::issued_family_id.eq(to_issue.map(|t| t.family_id)),
            exchange_codes::issued_access_jti.eq(to_issue.map(|t| t.access_jti)),
        ))
        .returning((
            exchange_codes::client_id,
            exchange_codes::redirect_uri,
            exchange_codes::code_challenge,
            exchange_codes::code_challenge_method,
            exchange_codes::user_id,
            exchange_codes::auth_context,
            exchange_codes::expires_at,
            // For the access token: read here, on the row the EXISTS above has just found,
            // rather than by a second query per redemption.
            users::table
                .filter(users::id.eq(exchange_codes::user_id))
                .select(users::external_id)
                .single_value(),
        ))
        .prepared()
        .get_result(c)
        .optional())?;
    row.map(
        |(
            client_id,
            redirect_uri,
            code_challenge,
            code_challenge_method,
            user_id,
            auth_context,
            expires_at,
            external_id,
        )| {
            Ok(ConsumedExchangeCode {
                client_id,
                redirect_uri,
                code_challenge,
                code_challenge_method,
                user_id: UserId::parse(&user_id)?,
                auth_context,
                expires_at: Timestamp::from_millis(expires_at),
                external_id,
            })
        },
    )
    .transpose()
}
