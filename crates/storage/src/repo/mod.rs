//! Repositories: plain functions over a `&mut DbConn`, so callers can compose several of them
//! in one transaction. Each multi-row write opens its own (nested: a savepoint) transaction.
//!
//! Lookups by a unique key use `get_result`, not `first`: `first` binds its `LIMIT 1` as a
//! parameter, and SQLite (3.53) marks a statement whose LIMIT is a bound parameter as
//! plan-dependent on it, so every execution re-prepared the cached statement.

pub mod account_codes;
pub mod audit;
pub mod credentials;
pub mod exchange_codes;
pub mod housekeeping;
pub mod identities;
pub mod keys;
pub mod link_flows;
pub mod link_tickets;
pub mod local_accounts;
pub mod login_flows;
pub mod outbox;
pub mod rate_limits;
pub mod refresh_tokens;
pub mod revoked_access_tokens;
pub mod sessions;
pub mod user_search;
pub mod users;
pub mod verification_codes;
