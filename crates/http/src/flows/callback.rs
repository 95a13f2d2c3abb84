//! `GET|POST /auth/connect/{provider}/callback`: open the browser's sealed flow and mark it
//! used, check state before anything goes upstream, let the provider validate what it sent,
//! decide who this is (DESIGN §4) and write the result — user, link, exchange code, audit
//! event — in one transaction.

use crate::app_errors::{AppReturn, ErrorCode};
use crate::flows::link_proof::{Delivery, Proofs};
use crate::flows::link_state::LinkState;
use crate::flows::login_flow::LoginFlow;
use crate::flows::token_issue::AuthContext;
use crate::params::{ParamError, Params};
use crate::settings::MatchBy;
use crate::state::AppState;
use crate::tokens::opaque::{self, RandomError};
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
) -> Result<CallbackDone, Failed> {
    let provider = state
        .providers
        .get(provider_id)
        .ok_or(Failed::bare(CallbackError::UnknownProvider))?;
    let flow = flow_cookie
        .and_then(|cookie| LoginFlow::open_authentic(&state.flow_sealer, cookie))
        .ok_or(Failed::bare(CallbackError::NoFlow))?;
    match finish(state, &provider, &flow, params).await {
        Ok(done) => Ok(done),
        Err(error) => Err(Failed {
            error,
            app: AppReturn::checked(
                &state.clients,
                &flow.client_id,
                &flow.redirect_uri,
                flow.app_state.as_deref(),
            ),
        }),
    }
}

async fn finish(
    state: &AppState,
    provider: &braid_providers::Provider,
    flow: &LoginFlow,
    params: Result<Params, ParamError>,
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
        outbox: state.outbox.clone(),
        provider_name,
        link_ttl: Duration::from_secs(state.settings.account_linking.state_expiration),
        app_state: flow.app_state.clone(),
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
    let (decision, link) = match state.db.run_write(move |c| resolve(c, &first)).await {
        Err(StorageError::Conflict(_)) => {
            let again = job.clone();
            state.db.run_write(move |c| resolve(c, &again)).await?
        }
        other => other?,
    };
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
    outbox: std::sync::Arc<crate::outbox::Outbox>,
    /// For the notice to the owner of an account a provider was connected to.
    provider_name: String,
    link_ttl: Duration,
    app_state: Option<String>,
    code: NewExchangeCode,
}

/// The decision, and for a manual link the state of the flow now stored.
fn resolve(
    c: &mut DbConn,
    job: &Resolution,
) -> Result<(Decision, Option<LinkState>), StorageError> {
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
    let decision = if connect_user_gone {
        Decision::Refuse {
            reason: Reason::UserDisabled,
        }
    } else {
        linking::decide(
            &LinkInput {
                linked_user,
                connect_user: job.connect_user.clone(),
                provider_link_only: job.link_only,
                candidates,
            },
            &job.policy,
        )
    };
    let mut link = None;
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
            Some((user.clone(), linked.id))
        }
        Decision::CreateUser { .. } => {
            let new = new_user_from(c, identity)?;
            let (user, linked) = users::create_with_identity(c, &new, identity, now)?;
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
        Decision::Refuse { .. } => None,
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
    let user = signed_in.map(|(user, _)| user).or(job.connect_user.clone());
    audit::record(
        c,
        &AuditEvent {
            kind: "federated_login".into(),
            result: Some(decision.outcome().as_str().into()),
            reason: Some(decision.reason().as_str().into()),
            user_id: user.map(String::from),
            provider: Some(identity.provider.to_string()),
            subject: Some(identity.subject.to_string()),
            client_id: Some(job.code.client_id.clone()),
            ..AuditEvent::default()
        },
        now,
    )?;
    Ok((decision, link))
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
