//! Upstream logins in flight. The row is found by the hash of a random value held only in the
//! browser's cookie, and consumed by one atomic update: a callback runs at most once.

use crate::conn::on_backend;
use crate::prepared::PreparedExt;
use crate::schema::login_flows;
use crate::{DbConn, StorageError};
use braid_core::{Timestamp, UserId};
use diesel::prelude::*;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginFlow {
    pub id_hash: Vec<u8>,
    pub state_hash: Vec<u8>,
    pub provider: String,
    pub issuer: String,
    pub nonce: String,
    pub pkce_verifier: String,
    pub client_id: String,
    pub redirect_uri: String,
    pub app_state: Option<String>,
    pub code_challenge: Option<String>,
    pub code_challenge_method: Option<String>,
    pub connect_user_id: Option<UserId>,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
}

pub fn insert(conn: &mut DbConn, f: &LoginFlow) -> Result<(), StorageError> {
    on_backend!(conn, c => diesel::insert_into(login_flows::table)
        .values((
            login_flows::id_hash.eq(&f.id_hash),
            login_flows::state_hash.eq(&f.state_hash),
            login_flows::provider.eq(&f.provider),
            login_flows::issuer.eq(&f.issuer),
            login_flows::nonce.eq(&f.nonce),
            login_flows::pkce_verifier.eq(&f.pkce_verifier),
            login_flows::client_id.eq(&f.client_id),
            login_flows::redirect_uri.eq(&f.redirect_uri),
            login_flows::app_state.eq(f.app_state.as_deref()),
            login_flows::code_challenge.eq(f.code_challenge.as_deref()),
            login_flows::code_challenge_method.eq(f.code_challenge_method.as_deref()),
            login_flows::connect_user_id.eq(f.connect_user_id.as_ref().map(UserId::as_str)),
            login_flows::created_at.eq(f.created_at.as_millis()),
            login_flows::expires_at.eq(f.expires_at.as_millis()),
        ))
        .execute(c))?;
    Ok(())
}

type Row = (
    Vec<u8>,
    Vec<u8>,
    String,
    String,
    String,
    String,
    String,
    String,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    i64,
    i64,
);

/// Marks the flow used and returns it; `None` when unknown, expired or already used.
pub fn consume(
    conn: &mut DbConn,
    id_hash: &[u8],
    now: Timestamp,
) -> Result<Option<LoginFlow>, StorageError> {
    let row: Option<Row> = on_backend!(conn, c => diesel::update(login_flows::table)
        .filter(login_flows::id_hash.eq(id_hash))
        .filter(login_flows::consumed_at.is_null())
        .filter(login_flows::expires_at.gt(now.as_millis()))
        .set(login_flows::consumed_at.eq(now.as_millis()))
        .returning((
            login_flows::id_hash,
            login_flows::state_hash,
            login_flows::provider,
            login_flows::issuer,
            login_flows::nonce,
            login_flows::pkce_verifier,
            login_flows::client_id,
            login_flows::redirect_uri,
            login_flows::app_state,
            login_flows::code_challenge,
            login_flows::code_challenge_method,
            login_flows::connect_user_id,
            login_flows::created_at,
            login_flows::expires_at,
        ))
        .prepared()
        .get_result(c)
        .optional())?;
    row.map(from_row).transpose()
}

fn from_row(
    (
        id_hash,
        state_hash,
        provider,
        issuer,
        nonce,
        pkce_verifier,
        client_id,
        redirect_uri,
        app_state,
        code_challenge,
        code_challenge_method,
        connect_user_id,
        created_at,
        expires_at,
    ): Row,
) -> Result<LoginFlow, StorageError> {
    Ok(LoginFlow {
        id_hash,
        state_hash,
        provider,
        issuer,
        nonce,
        pkce_verifier,
        client_id,
        redirect_uri,
        app_state,
        code_challenge,
        code_challenge_method,
        connect_user_id: connect_user_id.as_deref().map(UserId::parse).transpose()?,
        created_at: Timestamp::from_millis(created_at),
        expires_at: Timestamp::from_millis(expires_at),
    })
}
