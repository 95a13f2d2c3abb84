//! `GET|POST /auth/connect/link/verify`: the person proves owning the account they picked —
//! its password, or the code sent to its stored verified address — and on success the
//! identity is linked and they go back to the app with an exchange code, exactly as a
//! completed callback sends them. Consuming the flow and the code, the link, the exchange code,
//! the audit row, the notice to the account's owner and the webhook event are one transaction.

use crate::client_addr::Client;
use crate::flows::callback::AppRedirect;
use crate::flows::link_proof::{CodeSend, Proofs, SendError};
use crate::flows::link_select::{provider_name, still_linkable};
use crate::flows::link_state::LinkState;
use crate::flows::token_issue::AuthContext;
use crate::limiter::retry_after_secs;
use crate::params::Params;
use crate::passwords;
use crate::state::AppState;
use crate::tokens::opaque::{self, RandomError};
use crate::webhooks::{self, Event};
use braid_core::Secret;
use braid_core::mask::{mask_email, mask_phone};
use braid_core::{Timestamp, UserId};
use braid_storage::repo::audit::{self, AuditEvent};
use braid_storage::repo::exchange_codes::{self, NewExchangeCode};
use braid_storage::repo::link_flows::{self, LinkFlow, Stage};
use braid_storage::repo::rate_limits::RateLimit;
use braid_storage::repo::verification_codes::{self, OpenCode};
use braid_storage::repo::{identities, outbox, users};
use braid_storage::{DbConn, StorageError};
use serde::Serialize;
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error("no account choice in progress in this browser, or it expired or ended")]
    NoFlow,
    #[error("the form is not from this page (CSRF token)")]
    Csrf,
    #[error("no account has been chosen yet")]
    NotChosen,
    #[error("this way of proving the account is not offered for it")]
    MethodNotOffered,
    #[error("the password is not right")]
    WrongPassword,
    #[error("the code is not right")]
    WrongCode { tries_left: i32 },
    #[error("the code has expired; ask for a new one")]
    CodeExpired,
    #[error("too many wrong codes: this sign-in has ended")]
    Locked,
    #[error("too many attempts; wait {retry_after_secs} s")]
    Limited { retry_after_secs: u64 },
    #[error("this account can no longer be linked")]
    NotLinkable,
    #[error("this sign-in is already connected to an account")]
    AlreadyLinked,
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error(transparent)]
    Random(#[from] RandomError),
}

impl From<SendError> for VerifyError {
    fn from(e: SendError) -> Self {
        match e {
            SendError::TooMany { retry_after_secs } => VerifyError::Limited { retry_after_secs },
            SendError::NoChannel => VerifyError::NotLinkable,
            SendError::Storage(s) => VerifyError::Storage(s),
            SendError::Random(r) => VerifyError::Random(r),
        }
    }
}

/// How the account was proven: recorded in the audit row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Proof {
    Password,
    EmailCode,
    SmsCode,
}

impl Proof {
    pub fn as_str(self) -> &'static str {
        match self {
            Proof::Password => "password",
            Proof::EmailCode => "email_code",
            Proof::SmsCode => "sms_code",
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct VerifyView {
    pub provider: String,
    /// `password` or `code`.
    pub method: &'static str,
    /// Where the code went, masked.
    pub sent_to: Option<String>,
    pub minutes_valid: u64,
    pub csrf: String,
    /// The app's redirect URI: where the page's forms may end up (its CSP allows it).
    #[serde(skip)]
    pub app_target: String,
}

pub async fn view(state: &AppState, link: &LinkState) -> Result<VerifyView, VerifyError> {
    let id_hash = link.id_hash();
    let (flow, code) = state
        .db
        .run(move |c| {
            let Some(flow) = link_flows::find_open(c, &id_hash, Timestamp::now())? else {
                return Ok(None);
            };
            let code = verification_codes::open_for_flow(c, &id_hash)?;
            Ok(Some((flow, code)))
        })
        .await?
        .ok_or(VerifyError::NoFlow)?;
    let method = match flow.stage {
        Stage::Select => return Err(VerifyError::NotChosen),
        Stage::Password => "password",
        Stage::Code => "code",
    };
    Ok(VerifyView {
        provider: provider_name(state, &flow),
        method,
        sent_to: code.as_ref().map(masked_destination),
        minutes_valid: state.settings.account_linking.codes.ttl.div_ceil(60),
        csrf: state.csrf.token(link),
        app_target: flow.redirect_uri.clone(),
    })
}

fn masked_destination(code: &OpenCode) -> String {
    if code.channel == "sms" {
        mask_phone(&code.destination)
    } else {
        mask_email(&code.destination)
    }
}

/// What a successful form led to.
pub enum Verified {
    /// Linked: back to the app with an exchange code.
    Done(AppRedirect),
    /// A new code went out; the verify page again.
    Resent,
}

/// The form: `method` = `password` (with `password`), `code` (with `code`) or `resend`.
pub async fn submit(
    state: &AppState,
    link: &LinkState,
    form: &Params,
    client: &Client,
) -> Result<Verified, VerifyError> {
    if !state.csrf.check(link, form.get("csrf")) {
        return Err(VerifyError::Csrf);
    }
    let id_hash = link.id_hash();
    let flow = {
        let id_hash = id_hash.clone();
        state
            .db
            .run(move |c| link_flows::find_open(c, &id_hash, Timestamp::now()))
            .await?
            .ok_or(VerifyError::NoFlow)?
    };
    let user = match (&flow.selected, flow.stage) {
        (Some(user), Stage::Password | Stage::Code) => user.clone(),
        _ => return Err(VerifyError::NotChosen),
    };
    match (form.get("method").unwrap_or_default(), flow.stage) {
        ("password", Stage::Password) => {
            let password = form.get("password").unwrap_or_default().to_owned();
            check_password(state, &user, client.ip, password).await?;
            let done = complete(state, link, flow, user, Proof::Password, None, client).await?;
            Ok(Verified::Done(done))
        }
        ("code", Stage::Code) => {
            let given = form.get("code").unwrap_or_default().to_owned();
            let (proof, code) = check_code(state, &id_hash, &user, &given).await?;
            let done = complete(state, link, flow, user, proof, Some(code), client).await?;
            Ok(Verified::Done(done))
        }
        ("resend", Stage::Code) => {
            resend(state, &id_hash, &user).await?;
            Ok(Verified::Resent)
        }
        _ => Err(VerifyError::MethodNotOffered),
    }
}

/// The limiter first (per account and per address, counted whether or not the account has a
/// password), then the password, off the event loop; a stored bcrypt hash is upgraded.
async fn check_password(
    state: &AppState,
    user: &UserId,
    peer: Option<std::net::IpAddr>,
    password: String,
) -> Result<(), VerifyError> {
    if let RateLimit::Limited { retry_after } =
        state.limiter.check_password_attempt(user, peer).await?
    {
        return Err(VerifyError::Limited {
            retry_after_secs: retry_after_secs(retry_after),
        });
    }
    if passwords::check_user_password(&state.db, user, Secret::new(password)).await? {
        Ok(())
    } else {
        Err(VerifyError::WrongPassword)
    }
}

/// Wrong codes one account may take per hour, across flows (SECURITY-CASES E05).
const CODE_GUESSES_PER_ACCOUNT_PER_HOUR: u32 = 100;

/// Counts one code guess on `user`'s account, whatever the code's purpose; `Some(seconds to
/// wait)` when the account is over the limit.
pub(crate) async fn code_guess_limit(
    state: &AppState,
    user: &UserId,
) -> Result<Option<u64>, StorageError> {
    let answer = state
        .limiter
        .hit(
            format!("code:user:{user}"),
            CODE_GUESSES_PER_ACCOUNT_PER_HOUR,
            Duration::from_secs(3600),
        )
        .await?;
    Ok(match answer {
        RateLimit::Limited { retry_after } => Some(retry_after_secs(retry_after)),
        RateLimit::Allowed => None,
    })
}

/// One counted guess (the update that counts it also refuses beyond the limit, so parallel
/// guesses cannot evaluate more than `max_attempts`); the last wrong one ends the flow.
async fn check_code(
    state: &AppState,
    id_hash: &[u8],
    user: &UserId,
    given: &str,
) -> Result<(Proof, OpenCode), VerifyError> {
    if let Some(retry_after_secs) = code_guess_limit(state, user).await? {
        return Err(VerifyError::Limited { retry_after_secs });
    }
    let id_hash = id_hash.to_vec();
    let given = given.to_owned();
    let key = state.code_key.clone();
    let user = user.clone();
    state
        .db
        .run_write(move |c| {
            let now = Timestamp::now();
            let Some(code) = verification_codes::open_for_flow(c, &id_hash)? else {
                return Ok(Err(VerifyError::Locked));
            };
            if code.user_id != user {
                return Ok(Err(VerifyError::NotChosen));
            }
            if code.expires_at <= now {
                return Ok(Err(VerifyError::CodeExpired));
            }
            let Some(attempt) = verification_codes::attempt(c, &code.id, now)? else {
                return Ok(Err(VerifyError::Locked));
            };
            if key.matches(&id_hash, &given, &attempt.code_hash) {
                let proof = if code.channel == "sms" {
                    Proof::SmsCode
                } else {
                    Proof::EmailCode
                };
                return Ok(Ok((proof, code)));
            }
            if attempt.attempts >= attempt.max_attempts {
                verification_codes::end_open(c, &id_hash, now)?;
                link_flows::consume(c, &id_hash, now)?;
                return Ok(Err(VerifyError::Locked));
            }
            Ok(Err(VerifyError::WrongCode {
                tries_left: attempt.max_attempts - attempt.attempts,
            }))
        })
        .await?
}

async fn resend(state: &AppState, id_hash: &[u8], user: &UserId) -> Result<(), VerifyError> {
    let id_hash = id_hash.to_vec();
    let user = user.clone();
    let code = crate::flows::link_proof::new_code()?;
    let delivery = state.delivery();
    let key = state.code_key.clone();
    let outbox = state.outbox.clone();
    let limits = state.settings.account_linking.codes.clone();
    state
        .db
        .run_write(move |c| {
            let now = Timestamp::now();
            let proofs = Proofs::of(c, &user, delivery)?;
            let send = CodeSend {
                key: &key,
                outbox: &outbox,
                limits: &limits,
                flow_id_hash: &id_hash,
                user: &user,
                proofs: &proofs,
                code: &code,
            };
            match crate::flows::link_proof::send_code(c, &send, now) {
                Ok(()) => Ok(Ok(())),
                Err(SendError::Storage(e)) => Err(e),
                Err(other) => Ok(Err(VerifyError::from(other))),
            }
        })
        .await??;
    state.outbox.wake();
    Ok(())
}

/// The exchange code row a finished manual link hands to the app: a sign-in through
/// `identity_id`, the identity just linked.
pub(crate) fn exchange_code(
    flow: &LinkFlow,
    user: &UserId,
    identity_id: &str,
    code_hash: Vec<u8>,
    now: Timestamp,
    ttl: Duration,
) -> NewExchangeCode {
    NewExchangeCode {
        code_hash,
        client_id: flow.client_id.clone(),
        redirect_uri: flow.redirect_uri.clone(),
        code_challenge: flow.code_challenge.clone(),
        code_challenge_method: flow.code_challenge.as_ref().map(|_| "S256".to_owned()),
        user_id: user.clone(),
        auth_context: AuthContext::federated(flow.identity.provider.as_str(), identity_id, now)
            .to_json(),
        created_at: now,
        expires_at: now.plus(ttl),
    }
}

/// Re-read in the linking transaction (SECURITY-CASES I11): the account still has an address
/// the sign-in asserted (it was offered for one), and a code proves something only while the
/// address it went to is still one of the account's verified ones — an address removed or
/// replaced since the code was sent (perhaps because someone else controls it) proves nothing.
fn still_answers(
    c: &mut DbConn,
    user: &UserId,
    flow: &LinkFlow,
    code: Option<&OpenCode>,
) -> Result<bool, StorageError> {
    let emails = users::emails(c, user)?;
    let phones = users::phones(c, user)?;
    let identity = &flow.identity;
    let matches = emails
        .iter()
        .any(|e| identity.emails.iter().any(|i| i.email == e.email))
        || phones
            .iter()
            .any(|p| identity.phones.iter().any(|i| i.phone == p.phone));
    let sent_to_own = match code {
        None => true,
        Some(code) if code.channel == "sms" => phones
            .iter()
            .any(|p| p.is_verified() && p.phone.as_str() == code.destination),
        Some(code) => emails
            .iter()
            .any(|e| e.is_verified() && e.email.as_str() == code.destination),
    };
    Ok(matches && sent_to_own)
}

async fn complete(
    state: &AppState,
    link: &LinkState,
    flow: LinkFlow,
    user: UserId,
    proof: Proof,
    sent: Option<OpenCode>,
    client: &Client,
) -> Result<AppRedirect, VerifyError> {
    let client = client.clone();
    let id_hash = link.id_hash();
    let code = opaque::random_token()?;
    let code_hash = opaque::hash(&code);
    let ttl = Duration::from_secs(state.settings.tokens.exchange_code_ttl);
    let delivery = state.delivery();
    let outbox = state.outbox.clone();
    let hooks = state.webhooks.clone();
    let provider = provider_name(state, &flow);
    let (redirect_uri, app_state) = (flow.redirect_uri.clone(), flow.app_state.clone());
    let linked_user = user.clone();
    state
        .db
        .run_write(move |c| {
            let now = Timestamp::now();
            if !link_flows::consume(c, &id_hash, now)? {
                return Ok(Err(VerifyError::NoFlow));
            }
            if let Some(sent) = &sent
                && !verification_codes::consume(c, &sent.id, now)?
            {
                return Err(StorageError::Conflict("code already used".into()));
            }
            verification_codes::end_open(c, &id_hash, now)?;
            if !still_linkable(c, &user, &flow)? || !still_answers(c, &user, &flow, sent.as_ref())?
            {
                return Err(StorageError::Conflict("account no longer linkable".into()));
            }
            let linked = identities::insert(c, &user, &flow.identity, now)?;
            exchange_codes::insert(
                c,
                &exchange_code(&flow, &user, &linked.id, code_hash, now, ttl),
            )?;
            audit::record(
                c,
                &client.stamp(AuditEvent {
                    kind: "manual_link".into(),
                    result: Some("complete".into()),
                    reason: Some("manual_link".into()),
                    user_id: Some(user.to_string()),
                    provider: Some(flow.identity.provider.to_string()),
                    subject: Some(flow.identity.subject.to_string()),
                    client_id: Some(flow.client_id.clone()),
                    detail: Some(serde_json::json!({ "proof": proof.as_str() }).to_string()),
                    ..AuditEvent::default()
                }),
                now,
            )?;
            notify_owner(c, &outbox, &user, delivery, &provider, now)?;
            let linked = Event::IdentityLinked(webhooks::IdentityLinked {
                user_id: user.to_string(),
                provider: flow.identity.provider.to_string(),
                subject: flow.identity.subject.to_string(),
                client_id: Some(flow.client_id.clone()),
                method: webhooks::LinkMethod::Manual,
                proof: Some(proof.as_str().to_owned()),
            });
            webhooks::enqueue(c, &hooks, &linked, now)?;
            Ok(Ok(()))
        })
        .await
        .map_err(|e| match e {
            // Another flow linked this identity, or the account changed, meanwhile: the
            // transaction rolled back and nothing was written.
            StorageError::Conflict(_) => VerifyError::AlreadyLinked,
            other => VerifyError::Storage(other),
        })??;
    state.outbox.wake();
    state
        .metrics
        .link_results
        .with_label_values(&["complete", "manual_link"])
        .inc();
    tracing::info!(user = %linked_user, proof = proof.as_str(), "manual link complete");
    Ok(AppRedirect::with_code(
        &redirect_uri,
        &code,
        app_state.as_deref(),
        &state.issuer,
    )?)
}

/// The account's owner hears of the new sign-in method at its verified address (through the
/// outbox, in the same transaction: a rolled-back link sends nothing).
pub(crate) fn notify_owner(
    c: &mut DbConn,
    outbox: &crate::outbox::Outbox,
    user: &UserId,
    delivery: crate::flows::link_proof::Delivery,
    provider: &str,
    now: Timestamp,
) -> Result<(), StorageError> {
    let Some(email) = Proofs::of(c, user, delivery)?.email else {
        return Ok(());
    };
    let message = outbox
        .messages()
        .identity_linked_email(&email, provider, now)
        .map_err(|e| StorageError::Corrupt(e.to_string()))?;
    outbox::enqueue(c, &message, now)?;
    Ok(())
}
