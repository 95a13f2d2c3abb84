//! `GET|POST /auth/connect/link/select`: the person whose sign-in matched existing accounts
//! picks theirs (shown masked), chooses a new account instead where the policy allows, or
//! cancels. Picking an account with a password leads to the password prompt; otherwise a code
//! goes to the account's stored verified address, queued in the same transaction that records
//! the pick.

use crate::app_errors::{AppReturn, ErrorCode};
use crate::client_addr::Client;
use crate::flows::callback::{AppRedirect, new_user_from};
use crate::flows::link_proof::{self, CodeSend, Proofs, SendError};
use crate::flows::link_state::LinkState;
use crate::params::Params;
use crate::state::AppState;
use crate::tokens::opaque::{self, RandomError};
use crate::webhooks::{self, Event, UserCreated};
use braid_core::mask::{mask_email, mask_phone};
use braid_core::{Timestamp, UserId};
use braid_storage::repo::audit::{self, AuditEvent};
use braid_storage::repo::exchange_codes;
use braid_storage::repo::link_flows::{self, LinkFlow, Stage};
use braid_storage::repo::{identities, users, verification_codes};
use braid_storage::{DbConn, StorageError};
use serde::Serialize;

#[derive(Debug, thiserror::Error)]
pub enum SelectError {
    #[error("no account choice in progress in this browser, or it expired or ended")]
    NoFlow,
    #[error("the form is not from this page (CSRF token)")]
    Csrf,
    #[error("that is not one of the accounts offered")]
    UnknownChoice,
    #[error("a new account cannot be chosen for this sign-in")]
    CreateNotAllowed,
    #[error("this account can no longer be linked")]
    NotLinkable,
    #[error("too many codes were sent; wait {retry_after_secs} s")]
    TooManyCodes { retry_after_secs: u64 },
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error(transparent)]
    Random(#[from] RandomError),
}

impl From<SendError> for SelectError {
    fn from(e: SendError) -> Self {
        match e {
            SendError::TooMany { retry_after_secs } => {
                SelectError::TooManyCodes { retry_after_secs }
            }
            SendError::NoChannel => SelectError::NotLinkable,
            SendError::Storage(s) => SelectError::Storage(s),
            SendError::Random(r) => SelectError::Random(r),
        }
    }
}

/// One offered account, as the page shows it: a masked hint and how it would be proven.
#[derive(Debug, Clone, Serialize)]
pub struct Choice {
    pub index: usize,
    pub hint: String,
    pub proof: &'static str,
}

#[derive(Debug, Clone, Serialize)]
pub struct SelectView {
    pub provider: String,
    pub choices: Vec<Choice>,
    pub allow_create: bool,
    pub csrf: String,
    /// The app's redirect URI: where the page's forms may end up (its CSP allows it).
    #[serde(skip)]
    pub app_target: String,
}

/// What the page offers. Accounts that can no longer be linked are left out.
pub async fn view(state: &AppState, link: &LinkState) -> Result<SelectView, SelectError> {
    let (flow, proofs) = load(state, link).await?;
    let choices = proofs
        .into_iter()
        .enumerate()
        .filter_map(|(index, p)| {
            let p = p?;
            Some(Choice {
                index,
                hint: p.hint,
                proof: if p.proofs.password {
                    "you will enter its password"
                } else if p.proofs.email.is_some() {
                    "we will email you a code"
                } else {
                    "we will text you a code"
                },
            })
        })
        .collect();
    Ok(SelectView {
        provider: provider_name(state, &flow),
        choices,
        allow_create: flow.allow_create,
        csrf: state.csrf.token(link),
        app_target: flow.redirect_uri.clone(),
    })
}

pub(crate) fn provider_name(state: &AppState, flow: &LinkFlow) -> String {
    state
        .providers
        .get(flow.identity.provider.as_str())
        .map_or_else(
            || flow.identity.provider.to_string(),
            |p| p.display_name().to_owned(),
        )
}

/// A candidate that may still be linked, with its hint and proofs.
struct Offered {
    hint: String,
    proofs: Proofs,
}

async fn load(
    state: &AppState,
    link: &LinkState,
) -> Result<(LinkFlow, Vec<Option<Offered>>), SelectError> {
    let id_hash = link.id_hash();
    let delivery = state.delivery();
    state
        .db
        .run(move |c| {
            let now = Timestamp::now();
            let Some(flow) = link_flows::find_open(c, &id_hash, now)? else {
                return Ok(Err(SelectError::NoFlow));
            };
            let mut offered = Vec::with_capacity(flow.candidates.len());
            for user in &flow.candidates {
                offered.push(offer(c, user, &flow, delivery)?);
            }
            Ok(Ok((flow, offered)))
        })
        .await?
}

fn offer(
    c: &mut DbConn,
    user: &UserId,
    flow: &LinkFlow,
    delivery: link_proof::Delivery,
) -> Result<Option<Offered>, StorageError> {
    if !still_linkable(c, user, flow)? {
        return Ok(None);
    }
    let proofs = Proofs::of(c, user, delivery)?;
    if !proofs.any() {
        return Ok(None);
    }
    // The address the sign-in matched on, else what the account has: masked either way.
    let matched = flow.identity.emails.iter().map(|e| e.email.clone());
    let emails = users::emails(c, user)?;
    let hint = matched
        .filter_map(|m| emails.iter().find(|e| e.email == m))
        .map(|e| mask_email(e.email.as_str()))
        .next()
        .or_else(|| emails.first().map(|e| mask_email(e.email.as_str())))
        .or_else(|| proofs.phone.as_ref().map(|p| mask_phone(p.as_str())))
        .unwrap_or_else(|| "an account without an email address".to_owned());
    Ok(Some(Offered { hint, proofs }))
}

/// Not disabled, and no identity at this provider yet (it would be a second one).
pub(crate) fn still_linkable(
    c: &mut DbConn,
    user: &UserId,
    flow: &LinkFlow,
) -> Result<bool, StorageError> {
    let Some(found) = users::find(c, user)? else {
        return Ok(false);
    };
    Ok(!found.disabled && !identities::user_has_provider(c, user, &flow.identity.provider)?)
}

/// Where the browser goes after the form.
pub enum Chosen {
    /// To the verify page (password or code).
    Verify,
    /// Back to the app: with a code (new account) or with `error=access_denied` (cancelled).
    App(AppRedirect),
}

/// The form: `choice` = an offered index, `create` or `cancel`. Any other field (an email or
/// phone to send the code to, a user id) is ignored (SECURITY-CASES E02, E04, E20).
pub async fn choose(
    state: &AppState,
    link: &LinkState,
    form: &Params,
    client: &Client,
) -> Result<Chosen, SelectError> {
    if !state.csrf.check(link, form.get("csrf")) {
        return Err(SelectError::Csrf);
    }
    match form.get("choice").unwrap_or_default() {
        "cancel" => cancel(state, link, client).await,
        "create" => create_instead(state, link, client).await,
        index => {
            let index: usize = index.parse().map_err(|_| SelectError::UnknownChoice)?;
            pick(state, link, index).await
        }
    }
}

async fn cancel(
    state: &AppState,
    link: &LinkState,
    client: &Client,
) -> Result<Chosen, SelectError> {
    let id_hash = link.id_hash();
    let client = client.clone();
    let flow = state
        .db
        .run_write(move |c| {
            let now = Timestamp::now();
            let Some(flow) = link_flows::find_open(c, &id_hash, now)? else {
                return Ok(None);
            };
            if !link_flows::consume(c, &id_hash, now)? {
                return Ok(None);
            }
            record_end(
                c,
                &flow,
                ("cancelled", "cancelled_by_person"),
                None,
                &client,
                now,
            )?;
            Ok(Some(flow))
        })
        .await?
        .ok_or(SelectError::NoFlow)?;
    Ok(Chosen::App(AppRedirect::error(
        &flow.redirect_uri,
        ErrorCode::Cancelled,
        flow.app_state.as_deref(),
        &state.issuer,
    )?))
}

/// Where a failed manual link may go back to: the app of the flow this browser's link state
/// names, ended or expired, when its client still has that redirect URI. `None` also when the
/// database cannot say.
pub async fn app_return(state: &AppState, link: &LinkState) -> Option<AppReturn> {
    let id_hash = link.id_hash();
    let found = state
        .db
        .run(move |c| link_flows::find_return(c, &id_hash))
        .await
        .ok()??;
    let (client_id, redirect_uri, app_state) = found;
    AppReturn::checked(
        &state.clients,
        &client_id,
        &redirect_uri,
        app_state.as_deref(),
    )
}

/// The audit row of a manual link that ended without a link.
fn record_end(
    c: &mut DbConn,
    flow: &LinkFlow,
    (result, reason): (&str, &str),
    user: Option<&UserId>,
    client: &Client,
    now: Timestamp,
) -> Result<(), StorageError> {
    audit::record(
        c,
        &client.stamp(AuditEvent {
            kind: "manual_link".into(),
            result: Some(result.into()),
            reason: Some(reason.into()),
            user_id: user.map(ToString::to_string),
            provider: Some(flow.identity.provider.to_string()),
            subject: Some(flow.identity.subject.to_string()),
            client_id: Some(flow.client_id.clone()),
            ..AuditEvent::default()
        }),
        now,
    )
}

async fn create_instead(
    state: &AppState,
    link: &LinkState,
    client: &Client,
) -> Result<Chosen, SelectError> {
    let id_hash = link.id_hash();
    let client = client.clone();
    let code = opaque::random_token()?;
    let code_hash = opaque::hash(&code);
    let ttl = std::time::Duration::from_secs(state.settings.tokens.exchange_code_ttl);
    let hooks = state.webhooks.clone();
    let (flow, events) = state
        .db
        .run_write(move |c| {
            let now = Timestamp::now();
            let Some(flow) = link_flows::find_open(c, &id_hash, now)? else {
                return Ok(Err(SelectError::NoFlow));
            };
            if !flow.allow_create {
                return Ok(Err(SelectError::CreateNotAllowed));
            }
            if !link_flows::consume(c, &id_hash, now)? {
                return Ok(Err(SelectError::NoFlow));
            }
            let new = new_user_from(c, &flow.identity)?;
            let (user, linked) = users::create_with_identity(c, &new, &flow.identity, now)?;
            let created = Event::UserCreated(UserCreated::new(&user.id, &new.emails).signed_in(
                flow.identity.provider.as_str(),
                flow.identity.subject.as_str(),
                &flow.client_id,
            ));
            let events = webhooks::enqueue(c, &hooks, &created, now)?;
            exchange_codes::insert(
                c,
                &crate::flows::link_verify::exchange_code(
                    &flow, &user.id, &linked.id, code_hash, now, ttl,
                ),
            )?;
            record_end(
                c,
                &flow,
                ("skipped", "new_account_chosen"),
                Some(&user.id),
                &client,
                now,
            )?;
            Ok(Ok((flow, events)))
        })
        .await??;
    if events > 0 {
        state.outbox.wake();
    }
    state
        .metrics
        .link_results
        .with_label_values(&["skipped", "new_account_chosen"])
        .inc();
    Ok(Chosen::App(AppRedirect::with_code(
        &flow.redirect_uri,
        &code,
        flow.app_state.as_deref(),
        &state.issuer,
    )?))
}

async fn pick(state: &AppState, link: &LinkState, index: usize) -> Result<Chosen, SelectError> {
    let id_hash = link.id_hash();
    let delivery = state.delivery();
    let code = link_proof::new_code()?;
    let key = state.code_key.clone();
    let outbox = state.outbox.clone();
    let limits = state.settings.account_linking.codes.clone();
    let chosen = state
        .db
        .run_write(move |c| {
            let now = Timestamp::now();
            let Some(flow) = link_flows::find_open(c, &id_hash, now)? else {
                return Ok(Err(SelectError::NoFlow));
            };
            let Some(user) = flow.candidates.get(index).cloned() else {
                return Ok(Err(SelectError::UnknownChoice));
            };
            if !still_linkable(c, &user, &flow)? {
                return Ok(Err(SelectError::NotLinkable));
            }
            let proofs = Proofs::of(c, &user, delivery)?;
            if proofs.password {
                // Another pick (the back button) ends the codes the previous one sent.
                verification_codes::end_open(c, &id_hash, now)?;
                link_flows::select(c, &id_hash, &user, Stage::Password, now)?;
                return Ok(Ok(Chosen::Verify));
            }
            let send = CodeSend {
                key: &key,
                outbox: &outbox,
                limits: &limits,
                flow_id_hash: &id_hash,
                user: &user,
                proofs: &proofs,
                code: &code,
            };
            match link_proof::send_code(c, &send, now) {
                Ok(()) => {}
                Err(SendError::Storage(e)) => return Err(e),
                Err(other) => return Ok(Err(other.into())),
            }
            link_flows::select(c, &id_hash, &user, Stage::Code, now)?;
            Ok(Ok(Chosen::Verify))
        })
        .await?;
    // Committed: the worker may send the code now rather than at its next tick.
    state.outbox.wake();
    chosen
}
