//! Local accounts: people who signed up with an email address and a password. The account is
//! a user (with the address unverified and a password in `credentials`) plus its row here, one
//! per address; what a password is and how it is checked is braid-http's `passwords`.

use crate::conn::on_backend;
use crate::repo::users::{self, NewUser};
use crate::repo::{credentials, identities};
use crate::schema::{identities as identities_t, local_accounts, user_emails};
use crate::{DbConn, StorageError};
use braid_core::{Email, Timestamp, UserEmail, UserId};
use diesel::prelude::*;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignUp {
    Created(UserId),
    /// Some user already has this address (verified or not), or another sign-up took it
    /// meanwhile: nothing was written.
    Exists,
}

/// Creates the user with `email` unverified, its password hash and its local account row, all
/// or nothing. A concurrent sign-up for the same address loses on the primary key and gets
/// `Exists`, as does any address a user already has.
pub fn sign_up(
    conn: &mut DbConn,
    email: &Email,
    password_hash: &str,
    now: Timestamp,
) -> Result<SignUp, StorageError> {
    if address_taken(conn, email)? {
        return Ok(SignUp::Exists);
    }
    let created = conn.transaction(|c| {
        let user = users::create(
            c,
            &NewUser {
                emails: vec![UserEmail {
                    email: email.clone(),
                    verified_at: None,
                    is_primary: true,
                }],
                ..NewUser::default()
            },
            now,
        )?;
        credentials::set_password_hash(c, &user.id, password_hash, now)?;
        on_backend!(c, c => diesel::insert_into(local_accounts::table)
            .values((
                local_accounts::email.eq(email.as_str()),
                local_accounts::user_id.eq(user.id.as_str()),
                local_accounts::created_at.eq(now.as_millis()),
            ))
            .execute(c))?;
        Ok(user.id)
    });
    match created {
        Ok(user) => Ok(SignUp::Created(user)),
        Err(StorageError::Conflict(_)) => Ok(SignUp::Exists),
        Err(e) => Err(e),
    }
}

fn address_taken(conn: &mut DbConn, email: &Email) -> Result<bool, StorageError> {
    let users: i64 = on_backend!(conn, c => user_emails::table
        .filter(user_emails::email.eq(email.as_str()))
        .count()
        .get_result(c))?;
    let local: i64 = on_backend!(conn, c => local_accounts::table
        .filter(local_accounts::email.eq(email.as_str()))
        .count()
        .get_result(c))?;
    Ok(users + local > 0)
}

/// The account an address signs in to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub user_id: UserId,
    /// The address is verified for this user.
    pub verified: bool,
    /// The unverified window of a local sign-up (`None` for other users, or once verified).
    pub unverified_since: Option<Timestamp>,
}

/// Who `email` belongs to: the user holding it verified (there is at most one), else the local
/// sign-up with it. Users who merely hold it unverified (imported, or from a provider Braid
/// does not trust) are nobody's account here.
pub fn account_for(conn: &mut DbConn, email: &Email) -> Result<Option<Account>, StorageError> {
    let verified: Option<String> = on_backend!(conn, c => user_emails::table
        .filter(user_emails::email.eq(email.as_str()))
        .filter(user_emails::verified_at.is_not_null())
        .select(user_emails::user_id)
        .get_result(c)
        .optional())?;
    if let Some(user) = verified {
        return Ok(Some(Account {
            user_id: UserId::parse(&user)?,
            verified: true,
            unverified_since: None,
        }));
    }
    let local: Option<(String, i64, Option<i64>)> = on_backend!(conn, c => local_accounts::table
        .filter(local_accounts::email.eq(email.as_str()))
        .select((
            local_accounts::user_id,
            local_accounts::created_at,
            local_accounts::verified_at,
        ))
        .get_result(c)
        .optional())?;
    local
        .map(|(user, created_at, verified_at)| {
            Ok(Account {
                user_id: UserId::parse(&user)?,
                verified: verified_at.is_some(),
                unverified_since: verified_at
                    .is_none()
                    .then(|| Timestamp::from_millis(created_at)),
            })
        })
        .transpose()
}

/// What marking an address verified did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Verified {
    /// Identities removed because they were linked while the address was unverified.
    pub removed_identities: Vec<String>,
}

/// Marks `email` verified for `user` (its `user_emails` row and its local account row) and
/// removes the identities linked to the user since the local sign-up, while nobody had proven
/// the address (SECURITY-CASES D10: whoever pre-created the account may have linked their
/// own provider account to it). A verified address another user holds is refused by the
/// unique index (`Conflict`). Call it in the transaction that consumed the proof.
pub fn mark_verified(
    conn: &mut DbConn,
    user: &UserId,
    email: &Email,
    now: Timestamp,
) -> Result<Verified, StorageError> {
    let since: Option<i64> = on_backend!(conn, c => local_accounts::table
        .filter(local_accounts::email.eq(email.as_str()))
        .filter(local_accounts::user_id.eq(user.as_str()))
        .filter(local_accounts::verified_at.is_null())
        .select(local_accounts::created_at)
        .get_result(c)
        .optional())?;
    on_backend!(conn, c => diesel::update(
        user_emails::table
            .filter(user_emails::user_id.eq(user.as_str()))
            .filter(user_emails::email.eq(email.as_str()))
            .filter(user_emails::verified_at.is_null()),
    )
    .set(user_emails::verified_at.eq(now.as_millis()))
    .execute(c))?;
    let Some(since) = since else {
        return Ok(Verified::default());
    };
    on_backend!(conn, c => diesel::update(
        local_accounts::table.filter(local_accounts::email.eq(email.as_str())),
    )
    .set(local_accounts::verified_at.eq(now.as_millis()))
    .execute(c))?;
    let linked: Vec<String> = identities::of_user(conn, user)?
        .into_iter()
        .filter(|i| i.created_at.as_millis() >= since)
        .map(|i| i.id)
        .collect();
    if !linked.is_empty() {
        on_backend!(conn, c => diesel::delete(
            identities_t::table.filter(identities_t::id.eq_any(&linked)),
        )
        .execute(c))?;
    }
    Ok(Verified {
        removed_identities: linked,
    })
}
