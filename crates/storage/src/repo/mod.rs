//! Repositories: plain functions over a `&mut DbConn`, so callers can compose several of them
//! in one transaction. Each multi-row write opens its own (nested: a savepoint) transaction.

pub mod audit;
pub mod exchange_codes;
pub mod housekeeping;
pub mod identities;
pub mod keys;
pub mod login_flows;
pub mod refresh_tokens;
pub mod revoked_access_tokens;
pub mod users;
