//! Passwords: new hashes are argon2id at OWASP's parameters; argon2 (any variant) and bcrypt
//! hashes imported from an app are accepted, and replaced by an argon2id hash on the first
//! successful check. Neither a password nor a hash is ever logged.
//!
//! A check costs tens of milliseconds of CPU and 19 MiB: call the `_async` functions (or
//! [`check_user_password`]) from request handlers, never [`verify`] on the executor.

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{Output, ParamsString, PasswordHash, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use braid_core::{Secret, Timestamp, UserId};
use braid_storage::repo::credentials;
use braid_storage::{Database, StorageError};
use std::sync::{Mutex, OnceLock};
use tokio::sync::Semaphore;

/// OWASP Password Storage Cheat Sheet: argon2id, 19 MiB, 2 iterations, 1 lane.
pub const M_COST_KIB: u32 = 19_456;
pub const T_COST: u32 = 2;
pub const P_COST: u32 = 1;

/// Stored hashes beyond these are refused (a check would cost the server too much): at most
/// 256 MiB, 16 iterations and 16 lanes for argon2, cost 16 for bcrypt.
const MAX_M_COST_KIB: u32 = 256 * 1024;
const MAX_T_COST: u32 = 16;
const MAX_P_COST: u32 = 16;
const BCRYPT_COSTS: std::ops::RangeInclusive<u32> = 4..=16;

/// An argon2id hash at [`M_COST_KIB`]/[`T_COST`]/[`P_COST`] of a random password nobody
/// knows: checked when an account has no password, so that the answer and the time it takes
/// are those of a wrong password.
const DUMMY_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$mdpqjw1TR/IiBKU0mvvZ2w$+pc2DXzksmd4c9nlmHqYDuyg9gbGNpDN0dbGpzujLpo";

/// The outcome of a check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    pub ok: bool,
    /// When `ok` and the stored hash is bcrypt or weaker argon2: an argon2id hash of the same
    /// password, to store in its place.
    pub rehash: Option<String>,
}

impl Verified {
    const WRONG: Verified = Verified {
        ok: false,
        rehash: None,
    };
}

#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    #[error("password hashing failed: {0}")]
    Hash(String),
    #[error("the password hashing task failed")]
    Task,
}

/// Why a stored hash (an imported one) cannot be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum HashFormatError {
    #[error("not an argon2 PHC string ($argon2id$…) or a bcrypt hash ($2a$, $2b$, $2y$)")]
    UnknownScheme,
    #[error("malformed argon2 PHC string")]
    MalformedArgon2,
    #[error("argon2 parameters beyond what Braid checks (m ≤ 262144, t ≤ 16, p ≤ 16)")]
    Argon2TooCostly,
    #[error("malformed bcrypt hash")]
    MalformedBcrypt,
    #[error("bcrypt cost outside 4..=16")]
    BcryptCost,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    Argon2,
    Bcrypt,
}

fn argon2id() -> Result<Argon2<'static>, PasswordError> {
    let params = Params::new(M_COST_KIB, T_COST, P_COST, None)
        .map_err(|e| PasswordError::Hash(e.to_string()))?;
    Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
}

/// A new argon2id PHC string for `password`, with a random salt.
pub fn hash(password: &str) -> Result<String, PasswordError> {
    let err = |e: &dyn std::fmt::Display| PasswordError::Hash(e.to_string());
    let salt = SaltString::generate(&mut OsRng);
    let mut salt_bytes = [0u8; 64];
    let salt_raw = salt.decode_b64(&mut salt_bytes).map_err(|e| err(&e))?;
    let argon = argon2id()?;
    let mut out = [0u8; Params::DEFAULT_OUTPUT_LEN];
    with_memory(argon.params(), |blocks| {
        argon.hash_password_into_with_memory(password.as_bytes(), salt_raw, &mut out, blocks)
    })
    .map_err(|e| err(&e))?;
    let phc = PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(argon.params()).map_err(|e| err(&e))?,
        salt: Some(salt.as_salt()),
        hash: Some(Output::new(&out).map_err(|e| err(&e))?),
    };
    Ok(phc.to_string())
}

/// Runs `f` with argon2 memory for `params`: a buffer at Braid's own cost taken from a pool
/// and given back after, or a fresh one for a costlier stored hash. Reusing the buffers keeps
/// memory at one buffer per hashing slot: a fresh 19 MiB allocation per check made the
/// allocator keep a heap per thread that had hashed (RSS past 1 GB under 16 concurrent
/// sign-ins), or, served by mmap, cost a page fault per KiB.
fn with_memory<T>(params: &Params, f: impl FnOnce(&mut [Block]) -> T) -> T {
    static POOL: Mutex<Vec<Vec<Block>>> = Mutex::new(Vec::new());
    let pooled = M_COST_KIB as usize;
    if params.block_count() > pooled {
        return f(&mut vec![Block::default(); params.block_count()]);
    }
    let taken = POOL.lock().ok().and_then(|mut p| p.pop());
    let mut blocks = taken.unwrap_or_else(|| vec![Block::default(); pooled]);
    let out = f(&mut blocks);
    if let Ok(mut pool) = POOL.lock()
        && pool.len() < slot_count()
    {
        pool.push(blocks);
    }
    out
}

/// Checks `password` against the stored hash. With no stored hash, or one that cannot be used,
/// the answer is `ok: false` after the same argon2id work as a real check.
pub fn verify(password: &str, stored: Option<&str>) -> Verified {
    let Some(stored) = stored else {
        return verify_dummy(password);
    };
    let ok = match check_format(stored) {
        Ok(Scheme::Argon2) => PasswordHash::new(stored)
            .map(|h| verify_argon2(password, &h))
            .unwrap_or(false),
        Ok(Scheme::Bcrypt) => bcrypt::verify(password, stored).unwrap_or(false),
        Err(_) => {
            tracing::warn!("a stored password hash cannot be used; the check fails");
            return verify_dummy(password);
        }
    };
    if !ok {
        return Verified::WRONG;
    }
    let rehash = if is_current(stored) {
        None
    } else {
        match hash(password) {
            Ok(h) => Some(h),
            Err(e) => {
                tracing::warn!(error = %e, "re-hashing a password failed; the old hash stays");
                None
            }
        }
    };
    Verified { ok: true, rehash }
}

fn verify_dummy(password: &str) -> Verified {
    if let Ok(h) = PasswordHash::new(DUMMY_HASH) {
        let _ = verify_argon2(password, &h);
    }
    Verified::WRONG
}

fn verify_argon2(password: &str, hash: &PasswordHash<'_>) -> bool {
    #[cfg(test)]
    tests::ARGON2_CHECKS.with(|n| n.set(n.get() + 1));
    argon2_matches(password, hash).unwrap_or(false)
}

/// Algorithm, version and parameters come from the hash itself (a missing version is 0x13, as
/// the argon2 crate reads it); `None` when the hash cannot be computed.
fn argon2_matches(password: &str, hash: &PasswordHash<'_>) -> Option<bool> {
    let algorithm = Algorithm::try_from(hash.algorithm).ok()?;
    let version = match hash.version {
        Some(v) => Version::try_from(v).ok()?,
        None => Version::default(),
    };
    let expected = hash.hash?;
    let stated = Params::try_from(hash).ok()?;
    let params = Params::new(
        stated.m_cost(),
        stated.t_cost(),
        stated.p_cost(),
        Some(expected.len()),
    )
    .ok()?;
    let mut salt_bytes = [0u8; 64];
    let salt = hash.salt?.decode_b64(&mut salt_bytes).ok()?;
    let argon = Argon2::new(algorithm, version, params);
    let mut out = vec![0u8; expected.len()];
    with_memory(argon.params(), |blocks| {
        argon.hash_password_into_with_memory(password.as_bytes(), salt, &mut out, blocks)
    })
    .ok()?;
    Some(aws_lc_rs::constant_time::verify_slices_are_equal(&out, expected.as_bytes()).is_ok())
}

/// Whether `stored` is a hash Braid can check: argon2 (id, i, d) in PHC form or bcrypt
/// (`$2a$`, `$2b$`, `$2y$`), within the cost limits.
pub fn check_format(stored: &str) -> Result<Scheme, HashFormatError> {
    if stored.starts_with("$argon2") {
        let hash = PasswordHash::new(stored).map_err(|_| HashFormatError::MalformedArgon2)?;
        Algorithm::try_from(hash.algorithm).map_err(|_| HashFormatError::MalformedArgon2)?;
        if let Some(v) = hash.version {
            Version::try_from(v).map_err(|_| HashFormatError::MalformedArgon2)?;
        }
        if hash.salt.is_none() || hash.hash.is_none() {
            return Err(HashFormatError::MalformedArgon2);
        }
        let params = Params::try_from(&hash).map_err(|_| HashFormatError::MalformedArgon2)?;
        if params.m_cost() > MAX_M_COST_KIB
            || params.t_cost() > MAX_T_COST
            || params.p_cost() > MAX_P_COST
        {
            return Err(HashFormatError::Argon2TooCostly);
        }
        return Ok(Scheme::Argon2);
    }
    if ["$2a$", "$2b$", "$2y$"]
        .iter()
        .any(|p| stored.starts_with(p))
    {
        let parts: bcrypt::HashParts = stored
            .parse()
            .map_err(|_| HashFormatError::MalformedBcrypt)?;
        if !BCRYPT_COSTS.contains(&parts.get_cost()) {
            return Err(HashFormatError::BcryptCost);
        }
        return Ok(Scheme::Bcrypt);
    }
    Err(HashFormatError::UnknownScheme)
}

/// Whether `stored` is argon2id at Braid's parameters or stronger: nothing to re-hash.
pub fn is_current(stored: &str) -> bool {
    let Ok(hash) = PasswordHash::new(stored) else {
        return false;
    };
    let Ok(params) = Params::try_from(&hash) else {
        return false;
    };
    Algorithm::try_from(hash.algorithm) == Ok(Algorithm::Argon2id)
        && hash.version.is_none_or(|v| v == u32::from(Version::V0x13))
        && params.m_cost() >= M_COST_KIB
        && params.t_cost() >= T_COST
}

/// At most this many checks or hashes run at once; more wait for a turn. Each takes 19 MiB,
/// and more at once than there are cores only makes every one of them slower.
fn slots() -> &'static Semaphore {
    static SLOTS: OnceLock<Semaphore> = OnceLock::new();
    SLOTS.get_or_init(|| Semaphore::new(slot_count()))
}

fn slot_count() -> usize {
    std::thread::available_parallelism().map_or(2, std::num::NonZero::get) * 2
}

/// [`hash`] on a blocking thread.
pub async fn hash_async(password: Secret) -> Result<String, PasswordError> {
    let _slot = slots().acquire().await.ok();
    tokio::task::spawn_blocking(move || hash(password.expose()))
        .await
        .map_err(|_| PasswordError::Task)?
}

/// [`verify`] on a blocking thread. A failed task is a failed check.
pub async fn verify_async(password: Secret, stored: Option<String>) -> Verified {
    let _slot = slots().acquire().await.ok();
    tokio::task::spawn_blocking(move || verify(password.expose(), stored.as_deref()))
        .await
        .unwrap_or_else(|_| {
            tracing::error!("the password check task failed");
            Verified::WRONG
        })
}

/// Checks `password` for `user` (see [`verify`]: same answer and work whether or not the user
/// has a password) and, when it was right against a bcrypt or weaker argon2 hash, stores the
/// argon2id one in its place. Ask the limiter first ([`crate::limiter::Limiter::check_password_attempt`]).
pub async fn check_user_password(
    db: &Database,
    user: &UserId,
    password: Secret,
) -> Result<bool, StorageError> {
    let uid = user.clone();
    let stored = db.run(move |c| credentials::password_hash(c, &uid)).await?;
    let verified = verify_async(password, stored.clone()).await;
    if let (Some(new), Some(old)) = (verified.rehash, stored) {
        let uid = user.clone();
        let replaced = db
            .run_write(move |c| {
                credentials::replace_password_hash(c, &uid, &old, &new, Timestamp::now())
            })
            .await;
        // The check itself succeeded: a failed upgrade is retried on the next one.
        if let Err(e) = replaced {
            tracing::warn!(user_id = %user, error = %e, "storing the re-hashed password failed");
        }
    }
    Ok(verified.ok)
}

#[cfg(test)]
mod tests {
    use super::*;
    use argon2::password_hash::{PasswordHasher, PasswordVerifier};
    use std::cell::Cell;

    thread_local! {
        pub(super) static ARGON2_CHECKS: Cell<u32> = const { Cell::new(0) };
    }

    fn argon2_checks() -> u32 {
        ARGON2_CHECKS.with(Cell::get)
    }

    #[test]
    fn argon2id_round_trip_at_owasp_parameters() {
        let h = hash("correct horse").unwrap();
        assert!(h.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{h}");
        assert!(is_current(&h));
        assert_eq!(
            verify("correct horse", Some(&h)),
            Verified {
                ok: true,
                rehash: None
            }
        );
        assert_ne!(hash("correct horse").unwrap(), h, "a fresh salt each time");
        // The pooled memory gives what the argon2 crate computes on its own, both ways.
        let parsed = PasswordHash::new(&h).unwrap();
        assert!(
            Argon2::default()
                .verify_password(b"correct horse", &parsed)
                .is_ok()
        );
        assert!(
            Argon2::default()
                .verify_password(b"correct hors", &parsed)
                .is_err()
        );
        let salt = SaltString::generate(&mut OsRng);
        let theirs = argon2id()
            .unwrap()
            .hash_password(b"pw", &salt)
            .unwrap()
            .to_string();
        assert!(verify("pw", Some(&theirs)).ok);
    }

    #[test]
    fn wrong_password_fails() {
        let h = hash("correct horse").unwrap();
        assert_eq!(verify("correct hors", Some(&h)), Verified::WRONG);
        assert_eq!(verify("", Some(&h)), Verified::WRONG);
    }

    #[test]
    fn bcrypt_hash_verifies_and_asks_for_an_argon2id_rehash() {
        for prefix in ["$2a$", "$2b$", "$2y$"] {
            let b = bcrypt::hash("hunter2", 4)
                .unwrap()
                .replacen("$2b$", prefix, 1);
            assert_eq!(check_format(&b), Ok(Scheme::Bcrypt));
            let v = verify("hunter2", Some(&b));
            assert!(v.ok, "{prefix}");
            let new = v.rehash.expect("a re-hash");
            assert!(is_current(&new));
            assert!(verify("hunter2", Some(&new)).ok);
            assert_eq!(verify("hunter3", Some(&b)), Verified::WRONG);
        }
    }

    #[test]
    fn weaker_argon2_hashes_verify_and_ask_for_a_rehash() {
        for (alg, params) in [
            (Algorithm::Argon2i, Params::new(M_COST_KIB, T_COST, 1, None)),
            (Algorithm::Argon2d, Params::new(M_COST_KIB, T_COST, 1, None)),
            (Algorithm::Argon2id, Params::new(4096, 3, 1, None)),
            (Algorithm::Argon2id, Params::new(M_COST_KIB, 1, 1, None)),
        ] {
            let salt = SaltString::generate(&mut OsRng);
            let old = Argon2::new(alg, Version::V0x13, params.unwrap())
                .hash_password(b"pw", &salt)
                .unwrap()
                .to_string();
            let v = verify("pw", Some(&old));
            assert!(v.ok, "{old}");
            assert!(v.rehash.as_deref().is_some_and(is_current), "{old}");
        }
    }

    #[test]
    fn no_stored_hash_fails_after_one_argon2_check() {
        let before = argon2_checks();
        assert_eq!(verify("anything", None), Verified::WRONG);
        assert_eq!(argon2_checks() - before, 1, "the dummy hash was checked");
        // The dummy costs what a real hash costs.
        assert!(is_current(DUMMY_HASH));
        assert_eq!(
            PasswordHash::new(DUMMY_HASH).unwrap().to_string().len(),
            hash("x").unwrap().len()
        );
    }

    #[test]
    fn garbage_hashes_fail_without_panicking_and_still_cost_a_check() {
        for garbage in [
            "",
            "$",
            "$argon2id$",
            "$argon2id$v=19$m=abc,t=2,p=1$c2FsdHNhbHQ$aGFzaA",
            "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0",
            "$argon2id$v=99$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaA",
            "$argon2id$v=19$m=4194304,t=2,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaA",
            "$argon2x$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaA",
            "$2b$04$short",
            "$2b$31$abcdefghijklmnopqrstuu5Hs2cMhJrGz2kq0GpWvP1YQpU1c9Y.a",
            "$2x$04$abcdefghijklmnopqrstuu5Hs2cMhJrGz2kq0GpWvP1YQpU1c9Y.a",
            "$2b$04$ééééééééééééééééééééééééééééééééééééééééééééééééééé",
            "$1$md5crypt$abc",
            "plaintext",
            "{SSHA}abc",
        ] {
            let before = argon2_checks();
            assert_eq!(verify("pw", Some(garbage)), Verified::WRONG, "{garbage}");
            assert_eq!(argon2_checks() - before, 1, "{garbage}");
            assert!(check_format(garbage).is_err(), "{garbage}");
        }
    }

    #[tokio::test]
    async fn async_wrappers_give_the_same_answers() {
        let h = hash_async(Secret::new("pw")).await.unwrap();
        assert!(verify_async(Secret::new("pw"), Some(h.clone())).await.ok);
        assert!(!verify_async(Secret::new("no"), Some(h)).await.ok);
        assert!(!verify_async(Secret::new("pw"), None).await.ok);
    }
}
