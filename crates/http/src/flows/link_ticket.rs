//! `POST /auth/link-tickets`: the app of a signed-in user asks for a one-time ticket that
//! starts a "connect another provider" sign-in (`GET /auth/connect/{provider}?link_ticket=…`)
//! without an access token ever travelling in a URL. The ticket is bound to the token's user
//! and client and to where the result goes; it is issued only for a recent sign-in
//! (`account_linking.connect_max_age`, SECURITY-CASES D13), lives briefly
//! (`account_linking.link_ticket_ttl`) and starts one sign-in at most.

use crate::flows::connect::{self, ConnectError};
use crate::flows::me::{self, BearerError};
use crate::params::{ParamError, Params};
use crate::state::AppState;
use crate::tokens::opaque::{self, RandomError};
use braid_core::{Timestamp, UserId};
use braid_storage::StorageError;
use braid_storage::repo::link_tickets::{self, LinkTicket};
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum LinkTicketError {
    #[error(transparent)]
    Bearer(#[from] BearerError),
    #[error("the sign-in is older than {max_age} seconds: sign in again, then ask for the ticket")]
    StaleSignIn { max_age: u64 },
    #[error("{0}")]
    BadParams(#[from] ParamError),
    #[error("client_id must be the access token's client")]
    OtherClient,
    #[error("{0}")]
    BadTarget(ConnectError),
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error(transparent)]
    Random(#[from] RandomError),
}

pub struct Issued {
    pub ticket: String,
    pub expires_in: u64,
}

/// `params`: the app target as a sign-in link gives it (`redirect_uri`, `state`,
/// `code_challenge`, `code_challenge_method`); the client is the access token's.
pub async fn issue(
    state: &AppState,
    authorization: Option<&str>,
    mut params: Params,
) -> Result<Issued, LinkTicketError> {
    let (claims, user_id) = me::authenticate(state, authorization).await?;
    let settings = &state.settings.account_linking;
    let now = Timestamp::now();
    let fresh = claims
        .auth_time
        .is_some_and(|at| now.as_secs() - at <= secs(settings.connect_max_age));
    if !fresh {
        return Err(LinkTicketError::StaleSignIn {
            max_age: settings.connect_max_age,
        });
    }
    if params
        .get("client_id")
        .is_some_and(|id| id != claims.client_id)
    {
        return Err(LinkTicketError::OtherClient);
    }
    params.set("client_id", &claims.client_id);
    let target = connect::app_target(state, &params).map_err(LinkTicketError::BadTarget)?;
    let ticket = opaque::random_token()?;
    let hash = opaque::hash(&ticket);
    let ttl = Duration::from_secs(settings.link_ticket_ttl);
    let row = LinkTicket {
        user_id,
        client_id: target.client_id,
        redirect_uri: target.redirect_uri,
        app_state: target.state,
        code_challenge: target.code_challenge,
    };
    state
        .db
        .run_write(move |c| link_tickets::insert(c, &hash, &row, now, now.plus(ttl)))
        .await?;
    Ok(Issued {
        ticket,
        expires_in: ttl.as_secs(),
    })
}

/// Consumes a ticket for the sign-in it starts: the user the identity will be connected to,
/// and the app target. `None` when it is unknown, expired, used, or its user is disabled.
pub async fn redeem(
    state: &AppState,
    ticket: &str,
) -> Result<Option<(UserId, connect::AppTarget)>, StorageError> {
    let hash = opaque::hash(ticket);
    let found = state
        .db
        .run_write(move |c| link_tickets::consume(c, &hash, Timestamp::now()))
        .await?;
    Ok(found.map(|t| {
        (
            t.user_id,
            connect::AppTarget {
                client_id: t.client_id,
                redirect_uri: t.redirect_uri,
                state: t.app_state,
                code_challenge: t.code_challenge,
            },
        )
    }))
}

fn secs(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}
