//! What an operator does to users, for the admin API and the admin console alike: search,
//! look at one user, disable or enable, delete, unlink an identity, move an identity to
//! another user. Every change is one transaction with its audit event, and every change that
//! takes a way of signing in away revokes the user's refresh tokens (SECURITY-CASES F18);
//! access tokens of a disabled or deleted user are refused where they are checked
//! ([`crate::flows::me::still_active`]).

use crate::state::AppState;
use crate::webhooks::{self, Event};
use actix_web::http::StatusCode;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use braid_core::{Timestamp, UserId};
use braid_storage::repo::audit::{self, AuditEvent, StoredAuditEvent};
use braid_storage::repo::user_search::{self, Search, SearchBy};
use braid_storage::repo::{credentials, identities, refresh_tokens, users};
use braid_storage::{DbConn, StorageError};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

/// Page size when none is asked for, and the largest one allowed.
pub const DEFAULT_LIMIT: i64 = 50;
pub const MAX_LIMIT: i64 = 200;
/// How many of a user's audit events the detail shows.
const RECENT_EVENTS: i64 = 20;

#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("{0}")]
    BadRequest(String),
    #[error("there is no user with this id")]
    UserNotFound,
    #[error("the user has no identity with this id")]
    IdentityNotFound,
    #[error("this identity is the user's last way to sign in; remove it anyway with force=true")]
    LastWayToSignIn,
    #[error("the user already has an identity of provider {0}")]
    ProviderTaken(String),
    #[error("the identity already belongs to this user")]
    AlreadyLinked,
    #[error(transparent)]
    Storage(#[from] StorageError),
}

impl AdminError {
    pub fn status(&self) -> StatusCode {
        match self {
            AdminError::BadRequest(_) => StatusCode::BAD_REQUEST,
            AdminError::UserNotFound | AdminError::IdentityNotFound => StatusCode::NOT_FOUND,
            AdminError::LastWayToSignIn
            | AdminError::ProviderTaken(_)
            | AdminError::AlreadyLinked => StatusCode::CONFLICT,
            AdminError::Storage(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    pub fn title(&self) -> &'static str {
        match self {
            AdminError::BadRequest(_) => "Bad Request",
            AdminError::UserNotFound | AdminError::IdentityNotFound => "Not Found",
            AdminError::LastWayToSignIn
            | AdminError::ProviderTaken(_)
            | AdminError::AlreadyLinked => "Conflict",
            AdminError::Storage(_) => "Service Unavailable",
        }
    }
}

/// Who did it, for the audit trail: the administrator and where they acted.
#[derive(Debug, Clone)]
pub struct Actor {
    pub admin: Admin,
    /// `api` or `console`.
    pub via: &'static str,
    /// The address and user agent the change came from.
    pub client: crate::client_addr::Client,
}

/// An administrator: the holder of an admin key, or a Braid user marked administrator who
/// signed in to the console.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Admin {
    Key(String),
    User(UserId),
}

impl Admin {
    /// The audit detail's field naming the administrator.
    pub fn audit_field(&self) -> (&'static str, String) {
        match self {
            Admin::Key(name) => ("admin_key", name.clone()),
            Admin::User(id) => ("admin_user", id.to_string()),
        }
    }
}

/// The search of `GET /admin/api/users` and the console's user list. At most one of `q`,
/// `id`, `external_id`, `email`, `name`.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct SearchParams {
    /// Anything: a user id, an external id, the start of an email address or of a name.
    pub q: Option<String>,
    /// A user id, exactly.
    pub id: Option<String>,
    /// The application's id of the user (`braid users import`), exactly.
    pub external_id: Option<String>,
    /// The start of an email address (or the whole address).
    pub email: Option<String>,
    /// The start of the display name, ignoring case.
    pub name: Option<String>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
    /// Users per page, 1 to 200; default 50.
    pub limit: Option<i64>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct UserSummary {
    pub id: String,
    pub display_name: Option<String>,
    pub external_id: Option<String>,
    pub disabled: bool,
    pub is_admin: bool,
    /// RFC 3339, UTC.
    pub created_at: String,
    pub emails: Vec<String>,
    /// The providers of the user's linked identities.
    pub providers: Vec<String>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct UserPage {
    pub users: Vec<UserSummary>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct EmailView {
    pub email: String,
    pub verified: bool,
    pub primary: bool,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct PhoneView {
    pub phone: String,
    pub verified: bool,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct IdentityView {
    pub id: String,
    pub provider: String,
    pub issuer: String,
    pub subject: String,
    /// The first email the provider sent at the last sign-in.
    pub email: Option<String>,
    pub created_at: String,
    pub last_login_at: String,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct EventView {
    pub at: String,
    pub kind: String,
    pub result: Option<String>,
    pub reason: Option<String>,
    pub provider: Option<String>,
    pub client_id: Option<String>,
    pub detail: Option<String>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct UserDetail {
    pub id: String,
    pub display_name: Option<String>,
    pub external_id: Option<String>,
    pub disabled: bool,
    pub is_admin: bool,
    pub created_at: String,
    pub updated_at: String,
    /// Whether the user can sign in with a password.
    pub has_password: bool,
    pub emails: Vec<EmailView>,
    pub phones: Vec<PhoneView>,
    pub identities: Vec<IdentityView>,
    /// The user's latest audit events, newest first (at most 20).
    pub recent_events: Vec<EventView>,
}

/// The body of `POST /admin/api/users/{user_id}/identities`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LinkRequest {
    /// An identity of another user, to move to this one.
    pub identity_id: String,
    /// Move it even when it is the other user's last way to sign in.
    #[serde(default)]
    pub force: bool,
}

pub async fn search(state: &AppState, params: SearchParams) -> Result<UserPage, AdminError> {
    let search = parse_search(params)?;
    let page = state
        .db
        .run(move |c| user_search::search(c, &search))
        .await?;
    Ok(UserPage {
        users: page
            .users
            .into_iter()
            .map(|l| UserSummary {
                id: l.user.id.to_string(),
                display_name: l.user.display_name,
                external_id: l.user.external_id,
                disabled: l.user.disabled,
                is_admin: l.user.is_admin,
                created_at: l.user.created_at.to_rfc3339(),
                emails: l.emails,
                providers: l.providers,
            })
            .collect(),
        next_cursor: page.next.map(|id| B64.encode(id.as_str())),
    })
}

fn parse_search(p: SearchParams) -> Result<Search, AdminError> {
    let bad = |m: &str| AdminError::BadRequest(m.to_owned());
    let limit = p.limit.unwrap_or(DEFAULT_LIMIT);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(bad("limit must be between 1 and 200"));
    }
    let after = match p.cursor.as_deref().filter(|c| !c.is_empty()) {
        None => None,
        Some(c) => Some(
            B64.decode(c)
                .ok()
                .and_then(|raw| String::from_utf8(raw).ok())
                .and_then(|id| UserId::parse(&id).ok())
                .ok_or_else(|| bad("cursor is not one this API gave out"))?,
        ),
    };
    let given = |v: Option<String>| v.map(|s| s.trim().to_owned()).filter(|s| !s.is_empty());
    let filters = [
        given(p.q).map(SearchBy::Any),
        given(p.email).map(|e| SearchBy::EmailPrefix(e.to_ascii_lowercase())),
        given(p.name).map(SearchBy::NamePrefix),
        given(p.external_id).map(SearchBy::ExternalId),
        match given(p.id) {
            Some(id) => Some(SearchBy::Id(
                UserId::parse(&id).map_err(|_| bad("id is not a user id"))?,
            )),
            None => None,
        },
    ];
    let mut chosen = filters.into_iter().flatten();
    let by = chosen.next().unwrap_or(SearchBy::All);
    if chosen.next().is_some() {
        return Err(bad("give at most one of q, id, external_id, email, name"));
    }
    if let SearchBy::Any(q) | SearchBy::EmailPrefix(q) | SearchBy::NamePrefix(q) = &by
        && q.chars().count() > 256
    {
        return Err(bad("the search text is longer than 256 characters"));
    }
    Ok(Search { by, after, limit })
}

/// A user id from a path: anything that is not one names no user.
pub fn user_id(raw: &str) -> Result<UserId, AdminError> {
    UserId::parse(raw).map_err(|_| AdminError::UserNotFound)
}

pub async fn detail(state: &AppState, id: UserId) -> Result<UserDetail, AdminError> {
    state
        .db
        .run(move |c| load_detail(c, &id))
        .await?
        .ok_or(AdminError::UserNotFound)
}

fn load_detail(c: &mut DbConn, id: &UserId) -> Result<Option<UserDetail>, StorageError> {
    let Some(user) = users::find(c, id)? else {
        return Ok(None);
    };
    let emails = users::emails(c, id)?;
    let phones = users::phones(c, id)?;
    let linked = identities::of_user(c, id)?;
    let has_password = credentials::password_hash(c, id)?.is_some();
    let events = audit::of_user(c, id.as_str(), RECENT_EVENTS)?;
    Ok(Some(UserDetail {
        id: user.id.to_string(),
        display_name: user.display_name,
        external_id: user.external_id,
        disabled: user.disabled,
        is_admin: user.is_admin,
        created_at: user.created_at.to_rfc3339(),
        updated_at: user.updated_at.to_rfc3339(),
        has_password,
        emails: emails
            .iter()
            .map(|e| EmailView {
                email: e.email.to_string(),
                verified: e.is_verified(),
                primary: e.is_primary,
            })
            .collect(),
        phones: phones
            .iter()
            .map(|p| PhoneView {
                phone: p.phone.to_string(),
                verified: p.is_verified(),
            })
            .collect(),
        identities: linked
            .into_iter()
            .map(|i| IdentityView {
                email: i.snapshot.emails.first().map(|e| e.email.to_string()),
                id: i.id,
                provider: i.provider.to_string(),
                issuer: i.issuer,
                subject: i.subject.to_string(),
                created_at: i.created_at.to_rfc3339(),
                last_login_at: i.last_login_at.to_rfc3339(),
            })
            .collect(),
        recent_events: events.into_iter().map(event_view).collect(),
    }))
}

fn event_view(e: StoredAuditEvent) -> EventView {
    EventView {
        at: e.at.to_rfc3339(),
        kind: e.event.kind,
        result: e.event.result,
        reason: e.event.reason,
        provider: e.event.provider,
        client_id: e.event.client_id,
        detail: e.event.detail,
    }
}

/// Disables (refresh tokens revoked, access tokens refused from now on) or enables the user.
pub async fn set_disabled(
    state: &AppState,
    actor: &Actor,
    id: UserId,
    disabled: bool,
) -> Result<(), AdminError> {
    let actor = actor.clone();
    let webhooks = state.webhooks.clone();
    let queued = state
        .db
        .run_write(move |c| {
            let now = Timestamp::now();
            let was_disabled = match users::find(c, &id)? {
                Some(user) => user.disabled,
                None => return Ok(Err(AdminError::UserNotFound)),
            };
            if !users::set_disabled(c, &id, disabled, now)? {
                return Ok(Err(AdminError::UserNotFound));
            }
            let mut queued = 0;
            if disabled && !was_disabled {
                let event = Event::UserDisabled(webhooks::UserDisabled {
                    user_id: id.to_string(),
                });
                queued = webhooks::enqueue(c, &webhooks, &event, now)?;
            }
            let revoked = if disabled {
                refresh_tokens::revoke_all_of_user(c, &id, now)?
            } else {
                0
            };
            let kind = if disabled {
                "admin.user_disabled"
            } else {
                "admin.user_enabled"
            };
            record(c, &actor, kind, &id, None, revoked, now)?;
            Ok(Ok(queued))
        })
        .await??;
    wake_if(state, queued);
    Ok(())
}

/// Webhook events were queued: the outbox sends them now rather than at its next poll.
fn wake_if(state: &AppState, queued: usize) {
    if queued > 0 {
        state.outbox.wake();
    }
}

/// Deletes the user: emails, phones, identities, password, refresh tokens and pending codes go
/// with it (foreign keys cascade); its access tokens are refused from now on, as the user no
/// longer exists. The audit trail keeps the user's id.
pub async fn delete(state: &AppState, actor: &Actor, id: UserId) -> Result<(), AdminError> {
    let actor = actor.clone();
    state
        .db
        .run_write(move |c| {
            let now = Timestamp::now();
            let Some(user) = users::find(c, &id)? else {
                return Ok(Err(AdminError::UserNotFound));
            };
            let revoked = refresh_tokens::revoke_all_of_user(c, &id, now)?;
            let linked = identities::of_user(c, &id)?;
            users::delete(c, &user.id)?;
            let providers: Vec<String> = linked
                .iter()
                .map(|i| format!("{}:{}", i.provider, i.subject))
                .collect();
            record(
                c,
                &actor,
                "admin.user_deleted",
                &id,
                Some(("identities", serde_json::json!(providers))),
                revoked,
                now,
            )?;
            Ok(Ok(()))
        })
        .await?
}

/// Removes one identity from the user. Refused when it is the user's last way to sign in
/// (no other identity, no password) unless `force`.
pub async fn unlink(
    state: &AppState,
    actor: &Actor,
    id: UserId,
    identity_id: String,
    force: bool,
) -> Result<(), AdminError> {
    let actor = actor.clone();
    let webhooks = state.webhooks.clone();
    let queued = state
        .db
        .run_write(move |c| {
            let now = Timestamp::now();
            if users::find(c, &id)?.is_none() {
                return Ok(Err(AdminError::UserNotFound));
            }
            let Some(identity) = identities::find(c, &identity_id)?.filter(|i| i.user_id == id)
            else {
                return Ok(Err(AdminError::IdentityNotFound));
            };
            if !force && is_last_way_to_sign_in(c, &id, &identity.id)? {
                return Ok(Err(AdminError::LastWayToSignIn));
            }
            identities::delete_of_user(c, &identity.id, &id)?;
            let revoked = refresh_tokens::revoke_all_of_user(c, &id, now)?;
            let mut event = event(&actor, "admin.identity_unlinked", &id, None, revoked);
            event.provider = Some(identity.provider.to_string());
            event.subject = Some(identity.subject.to_string());
            audit::record(c, &event, now)?;
            let unlinked = Event::IdentityUnlinked(webhooks::IdentityUnlinked {
                user_id: id.to_string(),
                provider: identity.provider.to_string(),
                subject: identity.subject.to_string(),
            });
            Ok(Ok(webhooks::enqueue(c, &webhooks, &unlinked, now)?))
        })
        .await??;
    wake_if(state, queued);
    Ok(())
}

/// Moves an identity of another user to this one (an operator's merge of two accounts of one
/// person). Refused when this user has an identity of that provider already, and when it is
/// the other user's last way to sign in unless `force`. The other user's refresh tokens are
/// revoked.
pub async fn link(
    state: &AppState,
    actor: &Actor,
    to: UserId,
    request: LinkRequest,
) -> Result<(), AdminError> {
    let actor = actor.clone();
    let webhooks = state.webhooks.clone();
    let queued = state
        .db
        .run_write(move |c| {
            let now = Timestamp::now();
            if users::find(c, &to)?.is_none() {
                return Ok(Err(AdminError::UserNotFound));
            }
            let Some(identity) = identities::find(c, &request.identity_id)? else {
                return Ok(Err(AdminError::IdentityNotFound));
            };
            let from = identity.user_id.clone();
            if from == to {
                return Ok(Err(AdminError::AlreadyLinked));
            }
            if identities::user_has_provider(c, &to, &identity.provider)? {
                return Ok(Err(AdminError::ProviderTaken(
                    identity.provider.to_string(),
                )));
            }
            if !request.force && is_last_way_to_sign_in(c, &from, &identity.id)? {
                return Ok(Err(AdminError::LastWayToSignIn));
            }
            identities::move_to(c, &identity.id, &to)?;
            let revoked = refresh_tokens::revoke_all_of_user(c, &from, now)?;
            for (user, kind, other, revoked) in [
                (&to, "admin.identity_linked", ("from_user", &from), 0),
                (&from, "admin.identity_unlinked", ("to_user", &to), revoked),
            ] {
                let other = Some((other.0, serde_json::json!(other.1.as_str())));
                let mut event = event(&actor, kind, user, other, revoked);
                event.provider = Some(identity.provider.to_string());
                event.subject = Some(identity.subject.to_string());
                audit::record(c, &event, now)?;
            }
            let (provider, subject) = (identity.provider.to_string(), identity.subject.to_string());
            let unlinked = Event::IdentityUnlinked(webhooks::IdentityUnlinked {
                user_id: from.to_string(),
                provider: provider.clone(),
                subject: subject.clone(),
            });
            let linked = Event::IdentityLinked(webhooks::IdentityLinked {
                user_id: to.to_string(),
                provider,
                subject,
                client_id: None,
                method: webhooks::LinkMethod::Admin,
                proof: None,
            });
            let mut queued = webhooks::enqueue(c, &webhooks, &unlinked, now)?;
            queued += webhooks::enqueue(c, &webhooks, &linked, now)?;
            Ok(Ok(queued))
        })
        .await??;
    wake_if(state, queued);
    Ok(())
}

fn is_last_way_to_sign_in(
    c: &mut DbConn,
    user: &UserId,
    identity_id: &str,
) -> Result<bool, StorageError> {
    let others = identities::of_user(c, user)?
        .iter()
        .filter(|i| i.id != identity_id)
        .count();
    Ok(others == 0 && credentials::password_hash(c, user)?.is_none())
}

fn record(
    c: &mut DbConn,
    actor: &Actor,
    kind: &str,
    user: &UserId,
    extra: Option<(&str, serde_json::Value)>,
    revoked: usize,
    now: Timestamp,
) -> Result<(), StorageError> {
    audit::record(c, &event(actor, kind, user, extra, revoked), now)
}

fn event(
    actor: &Actor,
    kind: &str,
    user: &UserId,
    extra: Option<(&str, serde_json::Value)>,
    revoked: usize,
) -> AuditEvent {
    let mut detail = serde_json::json!({
        "via": actor.via,
        "refresh_tokens_revoked": revoked,
    });
    if let Some(map) = detail.as_object_mut() {
        let (field, who) = actor.admin.audit_field();
        map.insert(field.to_owned(), who.into());
        if let Some((k, v)) = extra {
            map.insert(k.to_owned(), v);
        }
    }
    actor.client.stamp(AuditEvent {
        kind: kind.to_owned(),
        result: Some("success".into()),
        user_id: Some(user.to_string()),
        detail: Some(detail.to_string()),
        ..AuditEvent::default()
    })
}
