//! Signing keys and generated server secrets, shared by every instance through the database.
//!
//! A key's state (next, active, retiring, expired) follows from its stored times and the clock
//! (`braid_core::signing_key`), so instances agree on which key signs without coordination.
//! Races are settled by unique constraints: of two first starts or two rotations at once, the
//! one that inserts a generation first wins; a first start that loses reads the winner's key.

use crate::conn::write_transaction;
use crate::schema::{server_secrets, signing_keys};
use crate::{DbConn, StorageError};
use braid_core::Timestamp;
use braid_core::signing_key::{self, KeySchedule, plan_rotation};
use diesel::prelude::*;
use std::time::Duration;

/// A freshly generated key pair, before it has a schedule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewSigningKey {
    pub kid: String,
    pub alg: String,
    /// PKCS#8 DER of the private key.
    pub private_key: Vec<u8>,
    /// The public JWK as JSON, as served at the JWKS endpoint.
    pub public_jwk: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SigningKeyRecord {
    pub kid: String,
    pub alg: String,
    /// PKCS#8 DER of the private key.
    pub private_key: Vec<u8>,
    /// The public JWK as JSON, as served at the JWKS endpoint.
    pub public_jwk: String,
    pub schedule: KeySchedule,
}

type KeyRow = (
    String,
    String,
    Vec<u8>,
    String,
    i64,
    i64,
    i64,
    Option<i64>,
    Option<i64>,
);

fn from_row(
    (kid, alg, private_key, public_jwk, generation, created_at, activate_at, retire_at, expire_at): KeyRow,
) -> SigningKeyRecord {
    SigningKeyRecord {
        kid,
        alg,
        private_key,
        public_jwk,
        schedule: KeySchedule {
            generation,
            created_at: Timestamp::from_millis(created_at),
            activate_at: Timestamp::from_millis(activate_at),
            retire_at: retire_at.map(Timestamp::from_millis),
            expire_at: expire_at.map(Timestamp::from_millis),
        },
    }
}

fn insert(
    conn: &mut DbConn,
    key: &NewSigningKey,
    schedule: &KeySchedule,
) -> Result<SigningKeyRecord, StorageError> {
    diesel::insert_into(signing_keys::table)
        .values((
            signing_keys::kid.eq(&key.kid),
            signing_keys::alg.eq(&key.alg),
            signing_keys::private_key.eq(&key.private_key),
            signing_keys::public_jwk.eq(&key.public_jwk),
            signing_keys::generation.eq(schedule.generation),
            signing_keys::created_at.eq(schedule.created_at.as_millis()),
            signing_keys::activate_at.eq(schedule.activate_at.as_millis()),
            signing_keys::retire_at.eq(schedule.retire_at.map(Timestamp::as_millis)),
            signing_keys::expire_at.eq(schedule.expire_at.map(Timestamp::as_millis)),
        ))
        .execute(conn)?;
    Ok(SigningKeyRecord {
        kid: key.kid.clone(),
        alg: key.alg.clone(),
        private_key: key.private_key.clone(),
        public_jwk: key.public_jwk.clone(),
        schedule: *schedule,
    })
}

/// The key of the highest generation: the newest one, whatever its state.
fn newest(conn: &mut DbConn) -> Result<Option<SigningKeyRecord>, StorageError> {
    Ok(signing_keys::table
        .order(signing_keys::generation.desc())
        .limit(1)
        .load::<KeyRow>(conn)?
        .into_iter()
        .next()
        .map(from_row))
}

/// Every key, oldest first, whatever its state.
pub fn all(conn: &mut DbConn) -> Result<Vec<SigningKeyRecord>, StorageError> {
    Ok(signing_keys::table
        .order(signing_keys::generation.asc())
        .load::<KeyRow>(conn)?
        .into_iter()
        .map(from_row)
        .collect())
}

/// Keys whose public half is published at `now` (next, active and retiring), newest first.
pub fn published(conn: &mut DbConn, now: Timestamp) -> Result<Vec<SigningKeyRecord>, StorageError> {
    Ok(signing_keys::table
        .filter(
            signing_keys::expire_at
                .is_null()
                .or(signing_keys::expire_at.gt(now.as_millis())),
        )
        .order(signing_keys::generation.desc())
        .load::<KeyRow>(conn)?
        .into_iter()
        .map(from_row)
        .collect())
}

/// The key that signs at `now`, creating the first key with `make` when there is none.
pub fn ensure_signing_key<F>(
    conn: &mut DbConn,
    now: Timestamp,
    make: F,
) -> Result<SigningKeyRecord, StorageError>
where
    F: FnOnce() -> Result<NewSigningKey, StorageError>,
{
    let signing = |c: &mut DbConn| -> Result<SigningKeyRecord, StorageError> {
        let keys = published(c, now)?;
        signing_key::signing_key(&keys, |k| &k.schedule, now)
            .cloned()
            .ok_or(StorageError::NotFound)
    };
    if newest(conn)?.is_some() {
        return signing(conn);
    }
    match insert(conn, &make()?, &KeySchedule::first(now)) {
        Ok(first) => Ok(first),
        // Another instance won the race: use its key.
        Err(StorageError::Conflict(_)) => signing(conn),
        Err(e) => Err(e),
    }
}

/// How the keys change at a rotation.
#[derive(Debug, Clone, Copy)]
pub struct RotationTimes {
    /// How long the new key is published before it signs.
    pub publish_delay: Duration,
    /// How long the key it replaces stays published after it stops signing: the life of the
    /// last token it signed.
    pub token_lifetime: Duration,
}

/// Adds `new` as the next key (published now, signing after the publish delay) and schedules
/// the end of the newest key so far, in one transaction. Returns the new key with its
/// schedule. A concurrent rotation makes one of the two fail with `Conflict`.
pub fn rotate(
    conn: &mut DbConn,
    new: &NewSigningKey,
    now: Timestamp,
    times: RotationTimes,
) -> Result<SigningKeyRecord, StorageError> {
    write_transaction(conn, |c| {
        let Some(latest) = newest(c)? else {
            // Nothing signs yet, so nothing needs to learn of the key first.
            return insert(c, new, &KeySchedule::first(now));
        };
        let plan = plan_rotation(
            &latest.schedule,
            now,
            times.publish_delay,
            times.token_lifetime,
        );
        diesel::update(signing_keys::table.filter(signing_keys::kid.eq(&latest.kid)))
            .set((
                signing_keys::retire_at.eq(plan.previous_retire_at.as_millis()),
                signing_keys::expire_at.eq(plan.previous_expire_at.as_millis()),
            ))
            .execute(c)?;
        insert(c, new, &plan.new)
    })
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
