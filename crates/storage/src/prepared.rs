//! Prepared-statement caching for statements diesel would prepare afresh on every call.
//!
//! diesel never caches an UPDATE (a changeset may skip `None` fields, so one Rust type can
//! produce several SQL texts). Braid's hot UPDATEs (consume a login flow, redeem an exchange
//! code, rotate a refresh token, touch an identity) have one fixed shape, and preparing them
//! again on every call was a measurable share of a login's CPU (SQLite re-parses and re-plans
//! the statement; PostgreSQL does the same server-side).

use diesel::QueryResult;
use diesel::backend::Backend;
use diesel::query_builder::{AstPass, Query, QueryFragment, QueryId};
use diesel::query_dsl::RunQueryDsl;

/// Marks a statement cacheable. The cache key stays the statement's SQL text (the query id is
/// deliberately not static), so a statement whose text varied would only get one cache entry
/// per text: use it for fixed-shape statements, or the cache grows with every variant.
///
/// Run it with `get_result`/`load` (add a `RETURNING` to an UPDATE): `execute` hands diesel
/// the statement by reference, and diesel's `&T` forwarding drops this override.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Prepared<Q>(pub(crate) Q);

pub(crate) trait PreparedExt: Sized {
    fn prepared(self) -> Prepared<Self> {
        Prepared(self)
    }
}

impl<Q> PreparedExt for Q {}

impl<Q, DB> QueryFragment<DB> for Prepared<Q>
where
    Q: QueryFragment<DB>,
    DB: Backend,
{
    fn walk_ast<'b>(&'b self, pass: AstPass<'_, 'b, DB>) -> QueryResult<()> {
        self.0.walk_ast(pass)
    }

    fn is_safe_to_cache_prepared(&self, _backend: &DB) -> QueryResult<bool> {
        Ok(true)
    }
}

impl<Q> QueryId for Prepared<Q> {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl<Q: Query> Query for Prepared<Q> {
    type SqlType = Q::SqlType;
}

impl<Q, Conn> RunQueryDsl<Conn> for Prepared<Q> {}
