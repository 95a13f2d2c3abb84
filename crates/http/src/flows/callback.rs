//! `GET|POST /auth/connect/{provider}/callback`: open the browser's sealed flow and mark it
//! used, check state before anything goes upstream, let the provider validate what it sent,
//! decide who this is (DESIGN §4) and write the result — user, link, exchange code, audit
//! event, webhook events — in one transaction.

use crate::app_errors::{AppReturn, ErrorCode};
use crate::client_addr::Client;
use crate::flows::link_proof::{Delivery, Proofs};
use crate::flows::link_state::LinkState;
use crate::flows::login_flow::LoginFlow;
use crate::flows::token_issue::AuthContext;
use crate::params::{ParamError, Params};
use crate::settings::MatchBy;
use crate::state::AppState;
use crate::tokens::opaque::{self, RandomError};
use crate::webhooks::{self, Event, Webhooks};
use braid_core::linking::{self, Candidate, Decision, LinkInput, Outcome, Reason};
use braid_core::{Email, FederatedIdentity, Phone, Timestamp, UserEmail, UserId, UserPhone};
use braid_providers::{CallbackParams, ExpectedFlow, ProviderError};
use braid_storage::repo::audit::{self, AuditEvent};
use braid_storage::repo::exchange_codes::{self, NewExchangeCode};
use braid_storage::repo::link_flows::{self, NewLinkFlow};
use braid_storage::repo::{identities, login_flows, users};
use braid_storage::{DbConn, StorageError};
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum CallbackError {
    #[error("unknown provider")]
    UnknownProvider,
    #[error("no sign-in in progress in this browser, or it expired or was already used")]
    NoFlow,
    #[error("this callback belongs to another sign-in")]
    ProviderMismatch,
    #[error("this sign-in method is disabled")]
    ProviderDisabled,
    #[error("{0}")]
    BadParams(#[from] ParamError),
    #[error("the provider answered with both a code and an error")]
    CodeAndError,
    #[error("the provider refused the sign-in: {error}{}", .description.as_ref().map(|d| format!(": {d}")).unwrap_or_default())]
    ProviderRefused {
        error: String,
        description: Option<String>,
    },
    #[error("the sign-in response is not for this browser")]
    StateMismatch,
    #[error("the sign-in response has no code")]
    MissingCode,
    #[error(transparent)]
    Upstream(#[from] ProviderError),
    #[error("sign-in refused: {}", .0.as_str())]
    Refused(Reason),
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error(transparent)]
    Random(#[from] RandomError),
}

pub struct CallbackDone {
    pub next: Next,
    /// The linking decision's result and reason, for the request's log line.
    pub result: LoginResult,
}

/// Where the browser goes from the callback.
pub enum Next {
    /// The app's redirect URI with `code`, `state` and `iss`.
    App(AppRedirect),
    /// The select page of a manual link; the state goes into the link cookie.
    ManualLink(LinkState),
}

/// How a callback ended, logged on the callback request's closing line (one line per request
/// instead of a second one per login). Put in the response's extensions by the handler.
#[derive(Debug, Clone, Copy)]
pub struct LoginResult {
    pub result: &'static str,
    pub reason: Option<&'static str>,
}

/// A failed callback, with where the person may go back to: the app of the flow this browser
/// holds, when its sealed cookie opened (even expired or already used) and the client still has
/// that redirect URI. Nothing from the request's parameters is a way back.
pub struct Failed {
    pub error: CallbackError,
    pub app: Option<AppReturn>,
}

impl Failed {
    fn bare(error: CallbackError) -> Self {
        Self { error, app: None }
    }
}

pub async fn complete(
    state: &AppState,
    provider_id: &str,
    flow_cookie: Option<&str>,
    params: Result<Params, ParamError>,
    client: &Client,
) -> Result<CallbackDone, Failed> {
    let provider = state
        .providers
        .get(provider_id)
        .ok_or(Failed::bare(CallbackError::UnknownProvider))?;
    let Some(flow) =
        flow_cookie.and_then(|cookie| LoginFlow::open_authentic(&state.flow_sealer, cookie))
    else {
        let error = CallbackError::NoFlow;
        record_failure(state, provider_id, None, &error, client).await;
        return Err(Failed::bare(error));
    };
    match finish(state, &provider, &flow, params, client).await {
        Ok(done) => Ok(done),
        Err(error) => {
            record_failure(state, provider_id, Some(&flow.client_id), &error, client).await;
            Err(Failed {
                error,
                app: AppReturn::checked(
                    &state.clients,
                    &flow.client_id,
                    &flow.redirect_uri,
                    flow.app_state.as_deref(),
                ),
            })
        }
    }
}

/// The audit row of a failed callback: `result = failed`, the failure class as `reason`, and
/// the `error_code` the app was given in `detail`. A refused linking decision has its row
/// already, written with the decision.
async fn record_failure(
    state: &AppState,
    provider: &str,
    client_id: Option<&str>,
    error: &CallbackError,
    client: &Client,
) {
    if matches!(error, CallbackError::Refused(_)) {
        return;
    }
    let event = client.stamp(AuditEvent {
        kind: "federated_login".into(),
        result: Some("failed".into()),
        reason: Some(error.outcome().into()),
        provider: Some(provider.into()),
        client_id: client_id.map(str::to_owned),
        detail: Some(error_detail(error.error_code())),
        ..AuditEvent::default()
    });
    let written = state
        .db
        .run_write(move |c| audit::record(c, &event, Timestamp::now()))
        .await;
    if let Err(e) = written {
        tracing::warn!(error = %e, "the audit row of a failed sign-in could not be written");
    }
}

fn error_detail(code: ErrorCode) -> String {
    serde_json::json!({ "error_code": code.as_str() }).to_string()
}

async fn finish(
    state: &AppState,
    provider: &braid_providers::Provider,
    flow: &LoginFlow,
    params: Result<Params, ParamError>,
    client: &Client,
) -> Result<CallbackDone, CallbackError> {
    let now = Timestamp::now();
    if flow.is_expired(now) {
        return Err(CallbackError::NoFlow);
    }
    // Marked used first: whatever follows, this flow cannot be tried again.
    let (jti, expires_at) = (flow.jti_bytes().to_vec(), flow.expires_at());
    if !state
        .db
        .run_write(move |c| login_flows::mark_used(c, &jti, expires_at))
        .await?
    {
        return Err(CallbackError::NoFlow);
    }
    if flow.provider != provider.id().as_str() {
        return Err(CallbackError::ProviderMismatch);
    }
    if !provider.enabled() {
        return Err(CallbackError::ProviderDisabled);
    }
    let params = params?;
    if params.has("error") {
        if params.has("code") {
            return Err(CallbackError::CodeAndError);
        }
        return Err(CallbackError::ProviderRefused {
            error: params.get("error").unwrap_or("error").to_owned(),
            description: params.get("error_description").map(str::to_owned),
        });
    }
    let given_state = params.get("state").ok_or(CallbackError::StateMismatch)?;
    if !opaque::same_secret(given_state, &flow.state) {
        return Err(CallbackError::StateMismatch);
    }
    let code = params.get("code").ok_or(CallbackError::MissingCode)?;
    let identity = provider
        .complete(
            CallbackParams {
                code: code.to_owned(),
                iss: params.get("iss").map(str::to_owned),
            },
            &ExpectedFlow {
                nonce: flow.nonce.clone(),
                pkce_verifier: flow.pkce_verifier.clone(),
                issuer: flow.issuer.clone(),
            },
        )
        .await?;

    let code = opaque::random_token()?;
    let ttl = Duration::from_secs(state.settings.tokens.exchange_code_ttl);
    let provider_name = provider.display_name().to_owned();
    let job = Resolution {
        identity,
        connect_user: flow
            .connect_user_id
            .as_deref()
            .map(UserId::parse)
            .transpose()
            .map_err(|_| CallbackError::NoFlow)?,
        link_only: provider.link_only(),
        policy: state.link_policy.clone(),
        match_by: state.settings.account_linking.match_by.clone(),
        delivery: state.delivery(),
        webhooks: state.webhooks.clone(),
        outbox: state.outbox.clone(),
        provider_name,
        link_ttl: Duration::from_secs(state.settings.account_linking.state_expiration),
        app_state: flow.app_state.clone(),
        client: client.clone(),
        code: NewExchangeCode {
            code_hash: opaque::hash(&code),
            client_id: flow.client_id.clone(),
            redirect_uri: flow.redirect_uri.clone(),
            code_challenge: flow.code_challenge.clone(),
            code_challenge_method: flow.code_challenge.as_ref().map(|_| "S256".to_owned()),
            user_id: UserId::generate(),
            // Set once the identity's row is known (see `resolve`).
            auth_context: String::new(),
            created_at: now,
            expires_at: now.plus(ttl),
        },
    };
    // Two callbacks for the same new identity race on UNIQUE(provider, subject) (or on a
    // verified address): the loser's transaction rolls back and it decides again, now seeing
    // the winner's rows — so it logs in to the same user instead of creating a second one
    // (SECURITY-CASES I02).
    let job = std::sync::Arc::new(job);
    let first = job.clone();
    let Resolved {
        decision,
        link,
        events,
    } = match state.db.run_write(move |c| resolve(c, &first)).await {
        Err(StorageError::Conflict(_)) => {
            let again = job.clone();
            state.db.run_write(move |c| resolve(c, &again)).await?
        }
        other => other?,
    };
    if events > 0 {
        state.outbox.wake();
    }
    state
        .metrics
        .link_results
        .with_label_values(&[decision.outcome().as_str(), decision.reason().as_str()])
        .inc();
    if let Decision::Refuse { reason } = decision {
        return Err(CallbackError::Refused(reason));
    }
    if decision.reason() == Reason::Connected {
        state.outbox.wake();
    }
    let result = LoginResult {
        result: decision.outcome().as_str(),
        reason: Some(decision.reason().as_str()),
    };
    if let Some(link) = link {
        return Ok(CallbackDone {
            next: Next::ManualLink(link),
            result,
        });
    }
    let target = AppRedirect::with_code(
        &flow.redirect_uri,
        &code,
        flow.app_state.as_deref(),
        &state.issuer,
    )?;
    Ok(CallbackDone {
        next: Next::App(target),
        result,
    })
}

/// The app's registered redirect URI with the result of a sign-in: `code` (or, refused,
/// `error`), the app's `state`, and `iss` (RFC 9207).
pub struct AppRedirect(pub String);

impl AppRedirect {
    pub fn with_code(
        redirect_uri: &str,
        code: &str,
        app_state: Option<&str>,
        issuer: &str,
    ) -> Result<Self, StorageError> {
        Self::build(redirect_uri, &[("code", code)], app_state, issuer)
    }

    /// RFC 6749 §4.1.2.1: the failure as `error`, `error_description` and Braid's `error_code`.
    pub fn error(
        redirect_uri: &str,
        code: ErrorCode,
        app_state: Option<&str>,
        issuer: &str,
    ) -> Result<Self, StorageError> {
        Self::build(
            redirect_uri,
            &[
                ("error", code.oauth_error()),
                ("error_description", code.description()),
                ("error_code", code.as_str()),
            ],
            app_state,
            issuer,
        )
    }

    fn build(
        redirect_uri: &str,
        pairs: &[(&str, &str)],
        app_state: Option<&str>,
        issuer: &str,
    ) -> Result<Self, StorageError> {
        let mut target = url::Url::parse(redirect_uri)
            .map_err(|_| StorageError::Corrupt("stored redirect_uri".into()))?;
        {
            let mut q = target.query_pairs_mut();
            q.extend_pairs(pairs);
            if let Some(s) = app_state {
                q.append_pair("state", s);
            }
            q.append_pair("iss", issuer);
        }
        Ok(Self(target.into()))
    }
}

/// The origin of the app's redirect URI: somewhere to start again from.
pub(crate) fn back_link(redirect_uri: &str) -> Option<String> {
    let url = url::Url::parse(redirect_uri).ok()?;
    matches!(url.scheme(), "https" | "http").then(|| url.origin().ascii_serialization() + "/")
}

struct Resolution {
    identity: FederatedIdentity,
    connect_user: Option<UserId>,
    link_only: bool,
    policy: linking::LinkPolicy,
    match_by: Vec<MatchBy>,
    delivery: Delivery,
    webhooks: Webhooks,
    outbox: std::sync::Arc<crate::outbox::Outbox>,
    /// For the notice to the owner of an account a provider was connected to.
    provider_name: String,
    link_ttl: Duration,
    app_state: Option<String>,
    client: Client,
    code: NewExchangeCode,
}

/// What [`resolve`] wrote.
struct Resolved {
    decision: Decision,
    /// For a manual link, the state of the flow now stored.
    link: Option<LinkState>,
    /// Webhook events queued.
    events: usize,
}

fn resolve(c: &mut DbConn, job: &Resolution) -> Result<Resolved, StorageError> {
    let now = job.code.created_at;
    let identity = &job.identity;
    let linked = identities::find_by_key(c, &identity.provider, &identity.subject)?;
    let linked_user = match &linked {
        Some(l) => Some((
            l.user_id.clone(),
            users::find(c, &l.user_id)?.is_none_or(|u| u.disabled),
        )),
        None => None,
    };
    let candidates = if linked.is_none() && job.connect_user.is_none() {
        candidates(c, job)?
    } else {
        Vec::new()
    };
    // The user a connect started for may have been disabled (or deleted) since.
    let connect_user_gone = match &job.connect_user {
        Some(me) => users::find(c, me)?.is_none_or(|u| u.disabled),
        None => false,
    };
    let input = LinkInput {
        linked_user,
        connect_user: job.connect_user.clone(),
        provider_link_only: job.link_only,
        candidates,
    };
    let decision = if connect_user_gone {
        Decision::Refuse {
            reason: Reason::UserDisabled,
        }
    } else {
        linking::decide(&input, &job.policy)
    };
    let mut link = None;
    let mut events = Vec::new();
    let signed_in = match &decision {
        Decision::LogIn { user, .. } => match &linked {
            Some(l) => {
                identities::touch_login(c, &l.id, identity, now)?;
                Some((user.clone(), l.id.clone()))
            }
            None => return Err(StorageError::Corrupt("sign-in without an identity".into())),
        },
        Decision::Link { user, reason } => {
            let linked = identities::insert(c, user, identity, now)?;
            if *reason == Reason::Connected {
                crate::flows::link_verify::notify_owner(
                    c,
                    &job.outbox,
                    user,
                    job.delivery,
                    &job.provider_name,
                    now,
                )?;
            }
            events.push(Event::IdentityLinked(webhooks::IdentityLinked {
                user_id: user.to_string(),
                provider: identity.provider.to_string(),
                subject: identity.subject.to_string(),
                client_id: Some(job.code.client_id.clone()),
                method: if *reason == Reason::Connected {
                    webhooks::LinkMethod::Connect
                } else {
                    webhooks::LinkMethod::Automatic
                },
                proof: None,
            }));
            Some((user.clone(), linked.id))
        }
        Decision::CreateUser { reason } => {
            let new = new_user_from(c, identity)?;
            let (user, linked) = users::create_with_identity(c, &new, identity, now)?;
            if *reason == Reason::AmbiguousMatch {
                events.push(conflict_event(job, &input, *reason, Some(&user.id)));
            }
            events.push(Event::UserCreated(
                webhooks::UserCreated::new(&user.id, &new.emails).signed_in(
                    identity.provider.as_str(),
                    identity.subject.as_str(),
                    &job.code.client_id,
                ),
            ));
            Some((user.id, linked.id))
        }
        Decision::Manual { candidates, reason } => {
            let flow = LinkState::new(job.link_ttl, now, back_link(&job.code.redirect_uri))
                .map_err(|_| StorageError::Unavailable("no random source".into()))?;
            link_flows::insert(
                c,
                &NewLinkFlow {
                    id_hash: flow.id_hash(),
                    identity: identity.clone(),
                    candidates: candidates.clone(),
                    reason: reason.as_str().to_owned(),
                    allow_create: linking::may_create_instead(&job.policy, *reason),
                    client_id: job.code.client_id.clone(),
                    redirect_uri: job.code.redirect_uri.clone(),
                    app_state: job.app_state.clone(),
                    code_challenge: job.code.code_challenge.clone(),
                    created_at: now,
                    expires_at: flow.expires_at(),
                },
            )?;
            link = Some(flow);
            None
        }
        Decision::Refuse { reason } => {
            if matches!(
                reason,
                Reason::AmbiguousMatch | Reason::IdentityOwnedByAnotherUser
            ) {
                events.push(conflict_event(job, &input, *reason, None));
            }
            None
        }
    };
    if let Some((user, identity_id)) = &signed_in {
        let context = AuthContext::federated(identity.provider.as_str(), identity_id, now);
        exchange_codes::insert(
            c,
            &NewExchangeCode {
                user_id: user.clone(),
                auth_context: context.to_json(),
                ..job.code.clone()
            },
        )?;
    }
    let refused = match decision {
        Decision::Refuse { reason } => Some(error_detail(refused_code(reason))),
        _ => None,
    };
    let user = signed_in.map(|(user, _)| user).or(job.connect_user.clone());
    audit::record(
        c,
        &job.client.stamp(AuditEvent {
            kind: "federated_login".into(),
            result: Some(decision.outcome().as_str().into()),
            reason: Some(decision.reason().as_str().into()),
            user_id: user.map(String::from),
            provider: Some(identity.provider.to_string()),
            subject: Some(identity.subject.to_string()),
            client_id: Some(job.code.client_id.clone()),
            detail: refused,
            ..AuditEvent::default()
        }),
        now,
    )?;
    let mut queued = 0;
    for event in &events {
        queued += webhooks::enqueue(c, &job.webhooks, event, now)?;
    }
    Ok(Resolved {
        decision,
        link,
        events: queued,
    })
}

/// `link.conflict`: the users involved are the matching ones, or the identity's owner and
/// the user who tried to connect it.
fn conflict_event(
    job: &Resolution,
    input: &LinkInput,
    reason: Reason,
    created: Option<&UserId>,
) -> Event {
    let involved: Vec<String> = input
        .candidates
        .iter()
        .map(|c| c.user_id.to_string())
        .chain(input.linked_user.iter().map(|(owner, _)| owner.to_string()))
        .chain(input.connect_user.iter().map(ToString::to_string))
        .take(webhooks::MAX_CONFLICT_USERS)
        .collect();
    Event::LinkConflict(webhooks::LinkConflict {
        provider: job.identity.provider.to_string(),
        subject: job.identity.subject.to_string(),
        client_id: Some(job.code.client_id.clone()),
        reason: reason.as_str().to_owned(),
        action: if created.is_some() {
            webhooks::ConflictAction::UserCreated
        } else {
            webhooks::ConflictAction::Refused
        },
        user_ids: involved,
        created_user_id: created.map(ToString::to_string),
    })
}

/// Existing users whose email or phone equals one the provider asserted.
fn candidates(c: &mut DbConn, job: &Resolution) -> Result<Vec<Candidate>, StorageError> {
    if job.policy.resolution == linking::Resolution::Disabled {
        return Ok(Vec::new());
    }
    let identity = &job.identity;
    let emails: Vec<Email> = if job.match_by.contains(&MatchBy::Email) {
        identity.emails.iter().map(|e| e.email.clone()).collect()
    } else {
        Vec::new()
    };
    let phones: Vec<Phone> = if job.match_by.contains(&MatchBy::Phone) {
        identity.phones.iter().map(|p| p.phone.clone()).collect()
    } else {
        Vec::new()
    };
    let verified_claims: Vec<&str> = identity
        .verified_emails()
        .map(Email::as_str)
        .filter(|_| job.match_by.contains(&MatchBy::Email))
        .chain(
            identity
                .verified_phones()
                .map(Phone::as_str)
                .filter(|_| job.match_by.contains(&MatchBy::Phone)),
        )
        .collect();
    let mut by_user: BTreeMap<UserId, bool> = BTreeMap::new();
    for m in users::matching_contacts(c, &emails, &phones)? {
        let verified = m.user_verified && verified_claims.contains(&m.value.as_str());
        let entry = by_user.entry(m.user_id).or_insert(false);
        *entry |= verified;
    }
    let mut out = Vec::with_capacity(by_user.len());
    for (user_id, verified_match) in by_user {
        let Some(user) = users::find(c, &user_id)? else {
            continue;
        };
        out.push(Candidate {
            has_identity_at_provider: identities::user_has_provider(
                c,
                &user_id,
                &identity.provider,
            )?,
            can_prove: Proofs::of(c, &user_id, job.delivery)?.any(),
            user_id,
            verified_match,
            disabled: user.disabled,
            is_admin: user.is_admin,
        });
    }
    Ok(out)
}

/// The new user's contacts: the provider's verified claims, stored verified — unless another
/// user already holds that address verified, in which case it proves nothing new and is stored
/// unverified (one verified owner per address, SECURITY-CASES I10). Unverified claims are not
/// stored: they would only ever be a lead for someone else's account.
pub(crate) fn new_user_from(
    c: &mut DbConn,
    identity: &FederatedIdentity,
) -> Result<users::NewUser, StorageError> {
    let now = Timestamp::now();
    // In the provider's order (the first email becomes the primary one), without repeats.
    let mut email_list: Vec<Email> = Vec::new();
    for e in identity.verified_emails() {
        if !email_list.contains(e) {
            email_list.push(e.clone());
        }
    }
    let mut phone_list: Vec<Phone> = Vec::new();
    for p in identity.verified_phones() {
        if !phone_list.contains(p) {
            phone_list.push(p.clone());
        }
    }
    let taken: BTreeSet<String> = users::matching_contacts(c, &email_list, &phone_list)?
        .into_iter()
        .filter(|m| m.user_verified)
        .map(|m| m.value)
        .collect();
    let verified_at = |value: &str| (!taken.contains(value)).then_some(now);
    Ok(users::NewUser {
        display_name: identity.profile.name.clone(),
        is_admin: false,
        emails: email_list
            .into_iter()
            .enumerate()
            .map(|(i, email)| UserEmail {
                verified_at: verified_at(email.as_str()),
                is_primary: i == 0,
                email,
            })
            .collect(),
        phones: phone_list
            .into_iter()
            .map(|phone| UserPhone {
                verified_at: verified_at(phone.as_str()),
                phone,
            })
            .collect(),
    })
}

/// A provider that could not be used: unreachable, misconfigured, or answering unverifiably.
pub fn upstream_code(e: &ProviderError) -> ErrorCode {
    if e.is_upstream_unavailable() {
        ErrorCode::ProviderUnavailable
    } else if e.is_misconfigured() {
        ErrorCode::ProviderMisconfigured
    } else {
        ErrorCode::InvalidProviderResponse
    }
}

/// The linking decision's refusal ([`Reason`], the audit `reason`) as the app is told it.
pub fn refused_code(reason: Reason) -> ErrorCode {
    match reason {
        Reason::LinkOnlyProvider => ErrorCode::LinkOnlyProvider,
        Reason::UserDisabled => ErrorCode::UserDisabled,
        Reason::IdentityOwnedByAnotherUser => ErrorCode::IdentityAlreadyLinked,
        _ => ErrorCode::LinkConflict,
    }
}

impl CallbackError {
    pub fn login_result(&self) -> LoginResult {
        LoginResult {
            result: self.outcome(),
            reason: match self {
                CallbackError::Refused(reason) => Some(reason.as_str()),
                _ => None,
            },
        }
    }

    /// What the app is told (and the page shows): see [`ErrorCode`].
    pub fn error_code(&self) -> ErrorCode {
        use CallbackError as E;
        match self {
            // Unreachable in practice (each provider has its own routes), and never redirected.
            E::UnknownProvider | E::ProviderMismatch | E::StateMismatch => ErrorCode::FlowMismatch,
            E::NoFlow => ErrorCode::FlowExpired,
            E::ProviderDisabled => ErrorCode::ProviderDisabled,
            E::BadParams(_) | E::CodeAndError | E::MissingCode => {
                ErrorCode::InvalidProviderResponse
            }
            E::ProviderRefused { error, .. } => match error.as_str() {
                "access_denied" => ErrorCode::Cancelled,
                "temporarily_unavailable" | "server_error" => ErrorCode::ProviderUnavailable,
                _ => ErrorCode::ProviderRefused,
            },
            E::Upstream(e) => upstream_code(e),
            E::Refused(reason) => refused_code(*reason),
            E::Storage(_) | E::Random(_) => ErrorCode::Unavailable,
        }
    }

    /// The result label for metrics and logs: one per kind of failure, so that an operator
    /// (and a test) can tell them apart.
    pub fn outcome(&self) -> &'static str {
        match self {
            CallbackError::Refused(_) => Outcome::Conflict.as_str(),
            CallbackError::UnknownProvider => "unknown_provider",
            CallbackError::NoFlow => "no_flow",
            CallbackError::ProviderMismatch => "provider_mismatch",
            CallbackError::ProviderDisabled => "provider_disabled",
            CallbackError::BadParams(_)
            | CallbackError::CodeAndError
            | CallbackError::MissingCode => "malformed_response",
            CallbackError::ProviderRefused { .. } => "provider_refused",
            CallbackError::StateMismatch => "state_mismatch",
            CallbackError::Upstream(e) if e.is_upstream_unavailable() => "upstream_unavailable",
            CallbackError::Upstream(e) if e.is_misconfigured() => "provider_misconfigured",
            CallbackError::Upstream(_) => "invalid_response",
            CallbackError::Storage(_) | CallbackError::Random(_) => "error",
        }
    }
}
