//! Finding users for an operator (the admin API and console): by id, external id, email prefix
//! or name prefix, newest first, a page at a time.
//!
//! Pages are keyed by the user id: ids are UUIDv7, so their text order is creation order, and
//! "the next page" is "ids below the last one shown", which every index below serves without
//! counting skipped rows. A search over several fields runs one indexed query per field, each
//! for the page size plus one, and merges them: the newest `limit` of the union are among them.

use crate::schema::{identities, user_emails, users};
use crate::{DbConn, StorageError};
use braid_core::{User, UserId};
use diesel::prelude::*;

diesel::define_sql_function!(fn lower(x: diesel::sql_types::Nullable<diesel::sql_types::Text>) -> diesel::sql_types::Nullable<diesel::sql_types::Text>);

/// What to look for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SearchBy {
    /// Every user.
    All,
    Id(UserId),
    ExternalId(String),
    /// Canonical email addresses starting with this (lower case).
    EmailPrefix(String),
    /// Display names starting with this, ignoring case.
    NamePrefix(String),
    /// Any of: the id, the external id, an email prefix or a name prefix.
    Any(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Search {
    pub by: SearchBy,
    /// The last user id of the previous page.
    pub after: Option<UserId>,
    pub limit: i64,
}

/// A user as a search lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    pub user: User,
    pub emails: Vec<String>,
    /// The providers of the user's identities.
    pub providers: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page {
    pub users: Vec<Listed>,
    /// Set when there are more: the id to pass as `after` for the next page.
    pub next: Option<UserId>,
}

pub fn search(conn: &mut DbConn, search: &Search) -> Result<Page, StorageError> {
    let want = search.limit.max(1) + 1;
    let after = search.after.as_ref().map(UserId::as_str);
    let mut ids: Vec<String> = match &search.by {
        SearchBy::All => newest_ids(conn, after, want)?,
        SearchBy::Id(id) => exact_id(conn, id.as_str(), after)?,
        SearchBy::ExternalId(x) => external_id(conn, x, after)?,
        SearchBy::EmailPrefix(p) => email_prefix(conn, p, after, want)?,
        SearchBy::NamePrefix(p) => name_prefix(conn, p, after, want)?,
        SearchBy::Any(q) => {
            let mut all = external_id(conn, q, after)?;
            if let Ok(id) = UserId::parse(q) {
                all.extend(exact_id(conn, id.as_str(), after)?);
            }
            all.extend(email_prefix(conn, &q.to_ascii_lowercase(), after, want)?);
            all.extend(name_prefix(conn, q, after, want)?);
            all
        }
    };
    ids.sort_unstable_by(|a, b| b.cmp(a));
    ids.dedup();
    let more = ids.len() > usize::try_from(search.limit.max(1)).unwrap_or(usize::MAX);
    ids.truncate(usize::try_from(search.limit.max(1)).unwrap_or(usize::MAX));
    let users = listed(conn, &ids)?;
    let next = if more {
        users.last().map(|l| l.user.id.clone())
    } else {
        None
    };
    Ok(Page { users, next })
}

fn newest_ids(
    conn: &mut DbConn,
    after: Option<&str>,
    want: i64,
) -> Result<Vec<String>, StorageError> {
    let mut q = users::table.select(users::id).into_boxed();
    if let Some(after) = after {
        q = q.filter(users::id.lt(after.to_owned()));
    }
    Ok(q.order(users::id.desc()).limit(want).load(conn)?)
}

fn exact_id(conn: &mut DbConn, id: &str, after: Option<&str>) -> Result<Vec<String>, StorageError> {
    let mut q = users::table
        .filter(users::id.eq(id.to_owned()))
        .select(users::id)
        .into_boxed();
    if let Some(after) = after {
        q = q.filter(users::id.lt(after.to_owned()));
    }
    Ok(q.load(conn)?)
}

fn external_id(
    conn: &mut DbConn,
    x: &str,
    after: Option<&str>,
) -> Result<Vec<String>, StorageError> {
    let mut q = users::table
        .filter(users::external_id.eq(x.to_owned()))
        .select(users::id)
        .into_boxed();
    if let Some(after) = after {
        q = q.filter(users::id.lt(after.to_owned()));
    }
    Ok(q.load(conn)?)
}

/// SQLite compares text byte by byte (BINARY), so a prefix is the range [p, p + U+10FFFF),
/// served by the plain index; PostgreSQL's collation may order otherwise, so there it is
/// `LIKE 'p%'`, served by the `text_pattern_ops` index.
enum Prefix {
    Range(String, String),
    Like(String),
}

fn prefix_of(conn: &DbConn, p: &str) -> Prefix {
    match conn {
        DbConn::Sqlite(_) => Prefix::Range(p.to_owned(), format!("{p}\u{10FFFF}")),
        DbConn::Postgres(_) => {
            let mut pattern = String::with_capacity(p.len() + 1);
            for ch in p.chars() {
                if matches!(ch, '%' | '_' | '\\') {
                    pattern.push('\\');
                }
                pattern.push(ch);
            }
            pattern.push('%');
            Prefix::Like(pattern)
        }
    }
}

fn email_prefix(
    conn: &mut DbConn,
    p: &str,
    after: Option<&str>,
    want: i64,
) -> Result<Vec<String>, StorageError> {
    let mut q = user_emails::table
        .select(user_emails::user_id)
        .distinct()
        .into_boxed();
    q = match prefix_of(conn, p) {
        Prefix::Range(low, high) => q
            .filter(user_emails::email.ge(low))
            .filter(user_emails::email.lt(high)),
        Prefix::Like(pattern) => q.filter(user_emails::email.like(pattern)),
    };
    if let Some(after) = after {
        q = q.filter(user_emails::user_id.lt(after.to_owned()));
    }
    Ok(q.order(user_emails::user_id.desc())
        .limit(want)
        .load(conn)?)
}

fn name_prefix(
    conn: &mut DbConn,
    p: &str,
    after: Option<&str>,
    want: i64,
) -> Result<Vec<String>, StorageError> {
    // SQLite's lower() folds ASCII only; PostgreSQL's folds all of Unicode.
    let folded = match conn {
        DbConn::Sqlite(_) => p.to_ascii_lowercase(),
        DbConn::Postgres(_) => p.to_lowercase(),
    };
    let mut q = users::table.select(users::id).into_boxed();
    q = match prefix_of(conn, &folded) {
        Prefix::Range(low, high) => q
            .filter(lower(users::display_name).ge(low))
            .filter(lower(users::display_name).lt(high)),
        Prefix::Like(pattern) => q.filter(lower(users::display_name).like(pattern)),
    };
    if let Some(after) = after {
        q = q.filter(users::id.lt(after.to_owned()));
    }
    Ok(q.order(users::id.desc()).limit(want).load(conn)?)
}

/// The users of these ids with their emails and providers, in the order of `ids`.
fn listed(conn: &mut DbConn, ids: &[String]) -> Result<Vec<Listed>, StorageError> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let mut out = Vec::with_capacity(ids.len());
    let emails: Vec<(String, String)> = user_emails::table
        .filter(user_emails::user_id.eq_any(ids))
        .order((
            user_emails::is_primary.desc(),
            user_emails::created_at.asc(),
        ))
        .select((user_emails::user_id, user_emails::email))
        .load(conn)?;
    let providers: Vec<(String, String)> = identities::table
        .filter(identities::user_id.eq_any(ids))
        .order(identities::created_at.asc())
        .select((identities::user_id, identities::provider))
        .load(conn)?;
    let users = super::users::find_many(conn, ids)?;
    for id in ids {
        let Some(user) = users.iter().find(|u| u.id.as_str() == id).cloned() else {
            continue;
        };
        out.push(Listed {
            user,
            emails: emails
                .iter()
                .filter(|(u, _)| u == id)
                .map(|(_, e)| e.clone())
                .collect(),
            providers: providers
                .iter()
                .filter(|(u, _)| u == id)
                .map(|(_, p)| p.clone())
                .collect(),
        });
    }
    Ok(out)
}
