//! Signing keys and generated server secrets, shared by every instance through the database.
//! Concurrent first starts are settled by unique constraints: whoever inserts first wins and
//! the others read the winner's value.

use crate::conn::write_transaction;
use crate::schema::{server_secrets, signing_keys};
use crate::{DbConn, StorageError};
use braid_core::Timestamp;
use diesel::prelude::*;

const ACTIVE: &str = "active";
const RETIRED: &str = "retired";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SigningKeyRecord {
    pub kid: String,
    pub alg: String,
    /// PKCS#8 DER of the private key.
    pub private_key: Vec<u8>,
    /// The public JWK as JSON, as served at the JWKS endpoint.
    pub public_jwk: String,
    pub active: bool,
    pub created_at: Timestamp,
    pub retired_at: Option<Timestamp>,
}

type KeyRow = (String, String, Vec<u8>, String, String, i64, Option<i64>);

fn from_row(
    (kid, alg, private_key, public_jwk, status, created_at, retired_at): KeyRow,
) -> SigningKeyRecord {
    SigningKeyRecord {
        kid,
        alg,
        private_key,
        public_jwk,
        active: status == ACTIVE,
        created_at: Timestamp::from_millis(created_at),
        retired_at: retired_at.map(Timestamp::from_millis),
    }
}

pub fn active(conn: &mut DbConn) -> Result<Option<SigningKeyRecord>, StorageError> {
    Ok(signing_keys::table
        .filter(signing_keys::status.eq(ACTIVE))
        .get_result::<KeyRow>(conn)
        .optional()?
        .map(from_row))
}

fn insert_active(conn: &mut DbConn, key: &SigningKeyRecord) -> Result<(), StorageError> {
    diesel::insert_into(signing_keys::table)
        .values((
            signing_keys::kid.eq(&key.kid),
            signing_keys::alg.eq(&key.alg),
            signing_keys::private_key.eq(&key.private_key),
            signing_keys::public_jwk.eq(&key.public_jwk),
            signing_keys::status.eq(ACTIVE),
            signing_keys::created_at.eq(key.created_at.as_millis()),
        ))
        .execute(conn)?;
    Ok(())
}

/// Returns the active key, creating it with `make` when there is none.
pub fn ensure_active<F>(conn: &mut DbConn, make: F) -> Result<SigningKeyRecord, StorageError>
where
    F: FnOnce() -> Result<SigningKeyRecord, StorageError>,
{
    if let Some(key) = active(conn)? {
        return Ok(key);
    }
    let fresh = make()?;
    match insert_active(conn, &fresh) {
        Ok(()) => Ok(fresh),
        // Another instance won the race: use its key.
        Err(StorageError::Conflict(_)) => active(conn)?.ok_or(StorageError::NotFound),
        Err(e) => Err(e),
    }
}

/// Retires the active key and makes `next` the active one, atomically.
pub fn rotate(
    conn: &mut DbConn,
    next: &SigningKeyRecord,
    now: Timestamp,
) -> Result<(), StorageError> {
    write_transaction(conn, |c| {
        diesel::update(signing_keys::table.filter(signing_keys::status.eq(ACTIVE)))
            .set((
                signing_keys::status.eq(RETIRED),
                signing_keys::retired_at.eq(now.as_millis()),
            ))
            .execute(c)?;
        insert_active(c, next)
    })
}

/// Keys whose public half must still be published: the active one, and retired ones that
/// may have signed a token which has not expired yet (retired after `cutoff`).
pub fn published(
    conn: &mut DbConn,
    cutoff: Timestamp,
) -> Result<Vec<SigningKeyRecord>, StorageError> {
    Ok(signing_keys::table
        .filter(
            signing_keys::status
                .eq(ACTIVE)
                .or(signing_keys::retired_at.gt(cutoff.as_millis())),
        )
        .order(signing_keys::created_at.desc())
        .load::<KeyRow>(conn)?
        .into_iter()
        .map(from_row)
        .collect())
}

/// Returns the secret called `name`, storing the value of `make` first if there is none.
pub fn secret_get_or_create<F>(
    conn: &mut DbConn,
    name: &str,
    make: F,
) -> Result<Vec<u8>, StorageError>
where
    F: FnOnce() -> Result<Vec<u8>, StorageError>,
{
    let read = |c: &mut DbConn| -> Result<Option<Vec<u8>>, StorageError> {
        Ok(server_secrets::table
            .filter(server_secrets::name.eq(name))
            .select(server_secrets::value)
            .get_result::<Vec<u8>>(c)
            .optional()?)
    };
    if let Some(v) = read(conn)? {
        return Ok(v);
    }
    let value = make()?;
    let inserted = diesel::insert_into(server_secrets::table)
        .values((
            server_secrets::name.eq(name),
            server_secrets::value.eq(&value),
            server_secrets::created_at.eq(Timestamp::now().as_millis()),
        ))
        .execute(conn);
    match inserted {
        Ok(_) => Ok(value),
        Err(e) => match StorageError::from(e) {
            StorageError::Conflict(_) => read(conn)?.ok_or(StorageError::NotFound),
            other => Err(other),
        },
    }
}
