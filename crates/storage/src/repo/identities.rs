use crate::conn::on_backend;
use crate::prepared::PreparedExt;
use crate::schema::identities;
use crate::{DbConn, StorageError};
use braid_core::{
    FederatedIdentity, LinkedIdentity, ProviderId, Subject, Timestamp, UserId, new_id,
};
use diesel::prelude::*;

#[derive(Queryable)]
struct IdentityRow {
    id: String,
    user_id: String,
    provider: String,
    issuer: String,
    subject: String,
    claims: String,
    created_at: i64,
    last_login_at: i64,
}

impl TryFrom<IdentityRow> for LinkedIdentity {
    type Error = StorageError;
    fn try_from(r: IdentityRow) -> Result<Self, StorageError> {
        Ok(LinkedIdentity {
            id: r.id,
            user_id: UserId::parse(&r.user_id)?,
            provider: ProviderId::parse(&r.provider)?,
            issuer: r.issuer,
            subject: Subject::parse(&r.subject)?,
            snapshot: serde_json::from_str(&r.claims)?,
            created_at: Timestamp::from_millis(r.created_at),
            last_login_at: Timestamp::from_millis(r.last_login_at),
        })
    }
}

/// Links `identity` to `user`. A second link of the same (provider, subject) is refused by
/// the unique constraint and comes back as `StorageError::Conflict`.
pub fn insert(
    conn: &mut DbConn,
    user: &UserId,
    identity: &FederatedIdentity,
    now: Timestamp,
) -> Result<LinkedIdentity, StorageError> {
    let linked = LinkedIdentity {
        id: new_id(),
        user_id: user.clone(),
        provider: identity.provider.clone(),
        issuer: identity.issuer.clone(),
        subject: identity.subject.clone(),
        snapshot: identity.clone(),
        created_at: now,
        last_login_at: now,
    };
    let claims = serde_json::to_string(identity)?;
    on_backend!(conn, c => diesel::insert_into(identities::table)
        .values((
            identities::id.eq(&linked.id),
            identities::user_id.eq(user.as_str()),
            identities::provider.eq(linked.provider.as_str()),
            identities::issuer.eq(&linked.issuer),
            identities::subject.eq(linked.subject.as_str()),
            identities::claims.eq(&claims),
            identities::created_at.eq(now.as_millis()),
            identities::last_login_at.eq(now.as_millis()),
        ))
        .execute(c))?;
    Ok(linked)
}

pub fn find_by_key(
    conn: &mut DbConn,
    provider: &ProviderId,
    subject: &Subject,
) -> Result<Option<LinkedIdentity>, StorageError> {
    on_backend!(conn, c => identities::table
        .filter(identities::provider.eq(provider.as_str()))
        .filter(identities::subject.eq(subject.as_str()))
        .get_result::<IdentityRow>(c)
        .optional())?
    .map(LinkedIdentity::try_from)
    .transpose()
}

pub fn of_user(conn: &mut DbConn, user: &UserId) -> Result<Vec<LinkedIdentity>, StorageError> {
    identities::table
        .filter(identities::user_id.eq(user.as_str()))
        .order(identities::created_at.asc())
        .load::<IdentityRow>(conn)?
        .into_iter()
        .map(LinkedIdentity::try_from)
        .collect()
}

pub fn count(conn: &mut DbConn) -> Result<i64, StorageError> {
    Ok(identities::table.count().get_result(conn)?)
}

/// Records a sign-in: last login time and the claims the provider sent this time.
pub fn touch_login(
    conn: &mut DbConn,
    id: &str,
    snapshot: &FederatedIdentity,
    now: Timestamp,
) -> Result<(), StorageError> {
    let claims = serde_json::to_string(snapshot)?;
    on_backend!(conn, c => diesel::update(identities::table.filter(identities::id.eq(id)))
        .set((
            identities::last_login_at.eq(now.as_millis()),
            identities::claims.eq(&claims),
        ))
        .returning(identities::id)
        .prepared()
        .get_result::<String>(c)
        .optional())?;
    Ok(())
}

pub fn user_has_provider(
    conn: &mut DbConn,
    user: &UserId,
    provider: &ProviderId,
) -> Result<bool, StorageError> {
    let n: i64 = identities::table
        .filter(identities::user_id.eq(user.as_str()))
        .filter(identities::provider.eq(provider.as_str()))
        .count()
        .get_result(conn)?;
    Ok(n > 0)
}

pub fn find(conn: &mut DbConn, id: &str) -> Result<Option<LinkedIdentity>, StorageError> {
    identities::table
        .filter(identities::id.eq(id))
        .get_result::<IdentityRow>(conn)
        .optional()?
        .map(LinkedIdentity::try_from)
        .transpose()
}

/// The user's identity with this id; `None` when there is none, or it is someone else's.
pub fn find_of_user(
    conn: &mut DbConn,
    id: &str,
    user: &UserId,
) -> Result<Option<LinkedIdentity>, StorageError> {
    on_backend!(conn, c => identities::table
        .filter(identities::id.eq(id))
        .filter(identities::user_id.eq(user.as_str()))
        .get_result::<IdentityRow>(c)
        .optional())?
    .map(LinkedIdentity::try_from)
    .transpose()
}

/// Unlinks the user's identity. False when the user has no identity with this id.
pub fn delete_of_user(conn: &mut DbConn, id: &str, user: &UserId) -> Result<bool, StorageError> {
    let n = diesel::delete(
        identities::table
            .filter(identities::id.eq(id))
            .filter(identities::user_id.eq(user.as_str())),
    )
    .execute(conn)?;
    Ok(n == 1)
}

/// Moves the identity to another user; false when no identity has that id.
pub fn move_to(conn: &mut DbConn, id: &str, to: &UserId) -> Result<bool, StorageError> {
    let n = diesel::update(identities::table.filter(identities::id.eq(id)))
        .set(identities::user_id.eq(to.as_str()))
        .execute(conn)?;
    Ok(n == 1)
}
