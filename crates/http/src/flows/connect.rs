//! `GET /auth/connect/{provider}`: check who asks for the login and where the result may go,
//! then send the browser upstream with fresh state, nonce and PKCE bound to this browser.

use crate::app_errors::{AppReturn, ErrorCode};
use crate::flows::login_flow::{LoginFlow, SealError};
use crate::params::{ParamError, Params};
use crate::state::AppState;
use crate::tokens::opaque::{self, RandomError};
use braid_core::Timestamp;
use braid_providers::ProviderError;
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("unknown provider")]
    UnknownProvider,
    #[error("this sign-in method is disabled")]
    ProviderDisabled,
    #[error("{0}")]
    BadParams(#[from] ParamError),
    #[error("no application given (client_id) and no default application configured")]
    MissingClient,
    #[error("unknown application")]
    UnknownClient,
    #[error("redirect_uri is not registered for this application")]
    RedirectNotAllowed,
    #[error("redirect_uri is required: the application has several")]
    RedirectRequired,
    #[error("this application must use PKCE (code_challenge with S256)")]
    PkceRequired,
    #[error("code_challenge_method must be S256")]
    UnsupportedChallengeMethod,
    #[error("code_challenge is malformed")]
    BadChallenge,
    #[error("state is too long")]
    StateTooLong,
    #[error("the sign-in request is too large (state and redirect_uri together)")]
    FlowTooLarge,
    #[error("a link_ticket carries the application's parameters: send it alone")]
    TicketWithAppParams,
    #[error("the link ticket is invalid, expired or was already used")]
    TicketInvalid,
    #[error(transparent)]
    Storage(#[from] braid_storage::StorageError),
    #[error(transparent)]
    Upstream(#[from] ProviderError),
    #[error(transparent)]
    Random(#[from] RandomError),
}

impl From<SealError> for ConnectError {
    fn from(e: SealError) -> Self {
        match e {
            SealError::Random(r) => ConnectError::Random(r),
            SealError::TooLarge => ConnectError::FlowTooLarge,
        }
    }
}

/// Where the exchange code goes once the login completes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppTarget {
    pub client_id: String,
    pub redirect_uri: String,
    pub state: Option<String>,
    pub code_challenge: Option<String>,
}

pub struct ConnectStart {
    pub location: String,
    /// Value of the flow cookie: the sealed [`LoginFlow`].
    pub flow_cookie: String,
    pub max_age: Duration,
    pub form_post: bool,
}

const MAX_APP_STATE: usize = 1024;

/// What a sign-in link says about the app; a link ticket already holds all of it.
const APP_PARAMS: [&str; 5] = [
    "client_id",
    "redirect_uri",
    "state",
    "code_challenge",
    "code_challenge_method",
];

pub fn app_target(state: &AppState, params: &Params) -> Result<AppTarget, ConnectError> {
    let (client, redirect_uri) = match params.get("client_id") {
        Some(id) => {
            let client = state.clients.get(id).ok_or(ConnectError::UnknownClient)?;
            let redirect = match params.get("redirect_uri") {
                Some(uri) => uri.to_owned(),
                None if client.redirect_uris.len() == 1 => client.redirect_uris[0].clone(),
                None => return Err(ConnectError::RedirectRequired),
            };
            (client, redirect)
        }
        None => {
            if params.has("redirect_uri") {
                return Err(ConnectError::MissingClient);
            }
            let (id, redirect) = state
                .settings
                .default_redirect()
                .ok_or(ConnectError::MissingClient)?;
            (
                state.clients.get(&id).ok_or(ConnectError::UnknownClient)?,
                redirect,
            )
        }
    };
    if !client.allows_redirect(&redirect_uri) {
        return Err(ConnectError::RedirectNotAllowed);
    }
    let code_challenge = match (
        params.get("code_challenge"),
        params.get("code_challenge_method"),
    ) {
        (None, None) if client.is_public() => return Err(ConnectError::PkceRequired),
        (None, None) => None,
        (None, Some(_)) => return Err(ConnectError::BadChallenge),
        (Some(_), method) if method != Some("S256") => {
            return Err(ConnectError::UnsupportedChallengeMethod);
        }
        (Some(challenge), _) => {
            let b64url = challenge
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
            if challenge.len() != 43 || !b64url {
                return Err(ConnectError::BadChallenge);
            }
            Some(challenge.to_owned())
        }
    };
    let app_state = params.get("state").map(str::to_owned);
    if app_state.as_ref().is_some_and(|s| s.len() > MAX_APP_STATE) {
        return Err(ConnectError::StateTooLong);
    }
    Ok(AppTarget {
        client_id: client.id.clone(),
        redirect_uri,
        state: app_state,
        code_challenge,
    })
}

/// A sign-in that could not start, with the app it may go back to once the client and its
/// redirect URI are checked.
pub struct ConnectFailed {
    pub error: ConnectError,
    pub app: Option<AppReturn>,
}

impl From<ConnectError> for ConnectFailed {
    fn from(error: ConnectError) -> Self {
        Self { error, app: None }
    }
}

impl ConnectError {
    /// What the app is told when the failure goes back to it: see [`ErrorCode`].
    pub fn error_code(&self) -> Option<ErrorCode> {
        match self {
            ConnectError::ProviderDisabled => Some(ErrorCode::ProviderDisabled),
            ConnectError::Upstream(e) => Some(crate::flows::callback::upstream_code(e)),
            ConnectError::Random(_) | ConnectError::Storage(_) => Some(ErrorCode::Unavailable),
            _ => None,
        }
    }
}

/// Nothing is written here: the flow travels sealed in the cookie, and the callback marks it
/// used (a login abandoned upstream costs the server nothing).
pub async fn start(
    state: &AppState,
    provider_id: &str,
    params: &Params,
) -> Result<ConnectStart, ConnectFailed> {
    let provider = state
        .providers
        .get(provider_id)
        .ok_or(ConnectError::UnknownProvider)?;
    // A connect for a signed-in user: who and where come from the ticket alone, never from
    // the URL (SECURITY-CASES D13).
    let (connect_user, target) = match params.get("link_ticket") {
        Some(ticket) => {
            if APP_PARAMS.iter().any(|p| params.has(p)) {
                return Err(ConnectError::TicketWithAppParams.into());
            }
            let (user, target) = crate::flows::link_ticket::redeem(state, ticket)
                .await
                .map_err(ConnectError::from)?
                .ok_or(ConnectError::TicketInvalid)?;
            (Some(user), target)
        }
        None => (None, app_target(state, params)?),
    };
    let failed = |error: ConnectError, target: &AppTarget| ConnectFailed {
        error,
        app: AppReturn::checked(
            &state.clients,
            &target.client_id,
            &target.redirect_uri,
            target.state.as_deref(),
        ),
    };
    if !provider.enabled() {
        return Err(failed(ConnectError::ProviderDisabled, &target));
    }
    let upstream = match provider
        .authorization_request_forwarding(|name| params.get(name))
        .await
    {
        Ok(upstream) => upstream,
        Err(e) => return Err(failed(e.into(), &target)),
    };
    let ttl = Duration::from_secs(state.settings.federated_login.flow_expiration);
    let jti = match opaque::random_token() {
        Ok(jti) => jti,
        Err(e) => return Err(failed(e.into(), &target)),
    };
    let flow = LoginFlow {
        jti,
        exp: Timestamp::now().plus(ttl).as_millis(),
        provider: provider.id().to_string(),
        issuer: upstream.issuer.clone(),
        state: upstream.state.clone(),
        nonce: upstream.nonce.clone(),
        pkce_verifier: upstream.pkce_verifier.clone(),
        client_id: target.client_id,
        redirect_uri: target.redirect_uri,
        app_state: target.state,
        code_challenge: target.code_challenge,
        connect_user_id: connect_user.map(String::from),
    };
    let flow_cookie = match flow.seal(&state.flow_sealer) {
        Ok(sealed) => sealed,
        // Too large for a cookie: the app's link is at fault, shown on the page.
        Err(SealError::TooLarge) => return Err(ConnectError::FlowTooLarge.into()),
        Err(SealError::Random(r)) => {
            return Err(ConnectFailed {
                error: r.into(),
                app: AppReturn::checked(
                    &state.clients,
                    &flow.client_id,
                    &flow.redirect_uri,
                    flow.app_state.as_deref(),
                ),
            });
        }
    };
    Ok(ConnectStart {
        location: upstream.url.to_string(),
        flow_cookie,
        max_age: ttl,
        form_post: provider.uses_form_post(),
    })
}
