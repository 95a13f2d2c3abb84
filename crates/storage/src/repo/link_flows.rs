//! Manual links in progress (DESIGN §4, "Manual flow"): the pending identity, the users it may
//! be linked to, the one the person picked, and where the result goes. Found by the hash of the
//! random flow id the browser holds; ended (linked, new account, cancelled, locked) by one
//! atomic update, so a replayed or doubled request finds it consumed.

use crate::conn::on_backend;
use crate::schema::link_flows;
use crate::{DbConn, StorageError};
use braid_core::{FederatedIdentity, Timestamp, UserId};
use diesel::prelude::*;

/// Where a flow stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// The person picks an account.
    Select,
    /// The picked account proves ownership with its password.
    Password,
    /// A code was sent to the picked account's verified address.
    Code,
}

impl Stage {
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Select => "select",
            Stage::Password => "password",
            Stage::Code => "code",
        }
    }

    fn parse(s: &str) -> Result<Self, StorageError> {
        match s {
            "select" => Ok(Stage::Select),
            "password" => Ok(Stage::Password),
            "code" => Ok(Stage::Code),
            other => Err(StorageError::Corrupt(format!("link flow stage {other:?}"))),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewLinkFlow {
    pub id_hash: Vec<u8>,
    pub identity: FederatedIdentity,
    pub candidates: Vec<UserId>,
    /// The linking reason that led here (`ambiguous_match`, ...).
    pub reason: String,
    pub allow_create: bool,
    pub client_id: String,
    pub redirect_uri: String,
    pub app_state: Option<String>,
    pub code_challenge: Option<String>,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkFlow {
    pub identity: FederatedIdentity,
    pub candidates: Vec<UserId>,
    pub selected: Option<UserId>,
    pub stage: Stage,
    pub reason: String,
    pub allow_create: bool,
    pub client_id: String,
    pub redirect_uri: String,
    pub app_state: Option<String>,
    pub code_challenge: Option<String>,
    pub expires_at: Timestamp,
}

pub fn insert(conn: &mut DbConn, new: &NewLinkFlow) -> Result<(), StorageError> {
    let identity = serde_json::to_string(&new.identity)?;
    let candidates = serde_json::to_string(&new.candidates)?;
    on_backend!(conn, c => diesel::insert_into(link_flows::table)
        .values((
            link_flows::id_hash.eq(&new.id_hash),
            link_flows::provider.eq(new.identity.provider.as_str()),
            link_flows::issuer.eq(&new.identity.issuer),
            link_flows::subject.eq(new.identity.subject.as_str()),
            link_flows::identity.eq(&identity),
            link_flows::candidates.eq(&candidates),
            link_flows::stage.eq(Stage::Select.as_str()),
            link_flows::reason.eq(&new.reason),
            link_flows::allow_create.eq(new.allow_create),
            link_flows::client_id.eq(&new.client_id),
            link_flows::redirect_uri.eq(&new.redirect_uri),
            link_flows::app_state.eq(new.app_state.as_deref()),
            link_flows::code_challenge.eq(new.code_challenge.as_deref()),
            link_flows::code_challenge_method
                .eq(new.code_challenge.as_ref().map(|_| "S256")),
            link_flows::created_at.eq(new.created_at.as_millis()),
            link_flows::updated_at.eq(new.created_at.as_millis()),
            link_flows::expires_at.eq(new.expires_at.as_millis()),
        ))
        .execute(c))?;
    Ok(())
}

type Row = (
    String,
    String,
    Option<String>,
    String,
    String,
    bool,
    String,
    String,
    Option<String>,
    Option<String>,
    i64,
);

/// The flow, unless it ended or expired.
pub fn find_open(
    conn: &mut DbConn,
    id_hash: &[u8],
    now: Timestamp,
) -> Result<Option<LinkFlow>, StorageError> {
    let row: Option<Row> = on_backend!(conn, c => link_flows::table
        .filter(link_flows::id_hash.eq(id_hash))
        .filter(link_flows::consumed_at.is_null())
        .filter(link_flows::expires_at.gt(now.as_millis()))
        .select((
            link_flows::identity,
            link_flows::candidates,
            link_flows::selected_user_id,
            link_flows::stage,
            link_flows::reason,
            link_flows::allow_create,
            link_flows::client_id,
            link_flows::redirect_uri,
            link_flows::app_state,
            link_flows::code_challenge,
            link_flows::expires_at,
        ))
        .get_result(c)
        .optional())?;
    let Some((
        identity,
        candidates,
        selected,
        stage,
        reason,
        allow_create,
        client_id,
        redirect_uri,
        app_state,
        code_challenge,
        expires_at,
    )) = row
    else {
        return Ok(None);
    };
    let candidates: Vec<UserId> = serde_json::from_str(&candidates)?;
    Ok(Some(LinkFlow {
        identity: serde_json::from_str(&identity)?,
        candidates,
        selected: selected
            .map(|s| UserId::parse(&s))
            .transpose()
            .map_err(|_| StorageError::Corrupt("link flow selected user".into()))?,
        stage: Stage::parse(&stage)?,
        reason,
        allow_create,
        client_id,
        redirect_uri,
        app_state,
        code_challenge,
        expires_at: Timestamp::from_millis(expires_at),
    }))
}

/// Records the picked account and the next stage; `false` when the flow ended meanwhile.
pub fn select(
    conn: &mut DbConn,
    id_hash: &[u8],
    user: &UserId,
    stage: Stage,
    now: Timestamp,
) -> Result<bool, StorageError> {
    let n = on_backend!(conn, c => diesel::update(
        link_flows::table
            .filter(link_flows::id_hash.eq(id_hash))
            .filter(link_flows::consumed_at.is_null())
            .filter(link_flows::expires_at.gt(now.as_millis())),
    )
    .set((
        link_flows::selected_user_id.eq(user.as_str()),
        link_flows::stage.eq(stage.as_str()),
        link_flows::updated_at.eq(now.as_millis()),
    ))
    .execute(c))?;
    Ok(n == 1)
}

/// Ends the flow (linked, new account, cancelled or locked). Of any number of concurrent
/// callers exactly one gets `true`.
pub fn consume(conn: &mut DbConn, id_hash: &[u8], now: Timestamp) -> Result<bool, StorageError> {
    let n = on_backend!(conn, c => diesel::update(
        link_flows::table
            .filter(link_flows::id_hash.eq(id_hash))
            .filter(link_flows::consumed_at.is_null())
            .filter(link_flows::expires_at.gt(now.as_millis())),
    )
    .set((
        link_flows::consumed_at.eq(now.as_millis()),
        link_flows::updated_at.eq(now.as_millis()),
    ))
    .execute(c))?;
    Ok(n == 1)
}

/// Where a flow's sign-in goes back to, open, ended or expired (until purged): its client,
/// redirect URI and the app's state.
pub fn find_return(
    conn: &mut DbConn,
    id_hash: &[u8],
) -> Result<Option<(String, String, Option<String>)>, StorageError> {
    Ok(on_backend!(conn, c => link_flows::table
        .filter(link_flows::id_hash.eq(id_hash))
        .select((
            link_flows::client_id,
            link_flows::redirect_uri,
            link_flows::app_state,
        ))
        .get_result(c)
        .optional())?)
}
