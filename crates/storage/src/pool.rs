//! The connection pool. It has no threads of its own: a connection is opened on the thread
//! that asks for one, and closed on the thread that hands it back broken or that closes the
//! pool. Once [`Pool::close`] has returned, no connection exists and none can be opened, so
//! nothing of libpq (or of the OpenSSL under it) runs anywhere and the process may exit.
//!
//! r2d2, used before, opens and reaps connections on background threads that cannot be
//! joined; a process that exited while one of them was in a TLS handshake crashed in
//! OpenSSL's exit-time cleanup (SIGSEGV after `braid keys rotate` had printed success).

use crate::StorageError;
use crate::conn::{ConnectionManager, DbConn, SqlitePragmas};
use diesel::connection::{AnsiTransactionManager, TransactionManager};
use std::ops::{Deref, DerefMut};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

#[derive(Clone)]
pub(crate) struct Pool {
    shared: Arc<Shared>,
}

struct Shared {
    manager: ConnectionManager,
    pragmas: SqlitePragmas,
    max_size: usize,
    /// How long `get` waits for a connection when all of them are lent out.
    wait: Duration,
    state: Mutex<State>,
    /// Signalled whenever a connection comes back or goes away.
    changed: Condvar,
}

struct State {
    idle: Vec<DbConn>,
    /// Connections that exist or are being opened: idle, lent out or connecting.
    open: usize,
    closed: bool,
}

impl Pool {
    /// A pool of at most `max_size` connections; `first`, when given, is its first idle one.
    pub fn new(
        manager: ConnectionManager,
        pragmas: SqlitePragmas,
        max_size: usize,
        wait: Duration,
        first: Option<DbConn>,
    ) -> Self {
        let idle: Vec<DbConn> = first.into_iter().collect();
        Self {
            shared: Arc::new(Shared {
                manager,
                pragmas,
                max_size: max_size.max(1),
                wait,
                state: Mutex::new(State {
                    open: idle.len(),
                    idle,
                    closed: false,
                }),
                changed: Condvar::new(),
            }),
        }
    }

    /// An idle connection, or a new one opened on this thread, or the first one handed back
    /// within the wait.
    pub fn get(&self) -> Result<PooledConn, StorageError> {
        let shared = &self.shared;
        let deadline = Instant::now() + shared.wait;
        let mut state = shared.lock();
        loop {
            if state.closed {
                return Err(StorageError::Unavailable(
                    "the database pool is closed".into(),
                ));
            }
            if let Some(conn) = state.idle.pop() {
                return Ok(self.lend(conn));
            }
            if state.open < shared.max_size {
                state.open += 1;
                drop(state);
                return match shared.open_one() {
                    Ok(conn) => Ok(self.lend(conn)),
                    Err(e) => {
                        shared.forget_one();
                        Err(e)
                    }
                };
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(StorageError::Unavailable(format!(
                    "no database connection came free within {} s ({} in use)",
                    shared.wait.as_secs(),
                    shared.max_size
                )));
            }
            state = match shared.changed.wait_timeout(state, left) {
                Ok((guard, _)) => guard,
                Err(poisoned) => poisoned.into_inner().0,
            };
        }
    }

    /// Refuses new connections, closes the idle ones on this thread, and waits up to `wait`
    /// for the lent ones to come back (they are closed as they do). Returns how many were
    /// still lent out when it gave up: 0 means every connection is closed.
    pub fn close(&self, wait: Duration) -> usize {
        let shared = &self.shared;
        let idle = {
            let mut state = shared.lock();
            state.closed = true;
            std::mem::take(&mut state.idle)
        };
        let closed = idle.len();
        drop(idle);
        let deadline = Instant::now() + wait;
        let mut state = shared.lock();
        state.open -= closed;
        while state.open > 0 {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            state = match shared.changed.wait_timeout(state, left) {
                Ok((guard, _)) => guard,
                Err(poisoned) => poisoned.into_inner().0,
            };
        }
        state.open
    }

    fn lend(&self, conn: DbConn) -> PooledConn {
        PooledConn {
            conn: Some(conn),
            shared: self.shared.clone(),
        }
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn open_one(&self) -> Result<DbConn, StorageError> {
        let mut conn = self.manager.connect().map_err(|e| {
            StorageError::Unavailable(format!("{}: {e}", self.manager.target().display()))
        })?;
        self.pragmas
            .apply(&mut conn)
            .map_err(|e| StorageError::Unavailable(e.to_string()))?;
        Ok(conn)
    }

    /// A connection went away (closed, or never opened).
    fn forget_one(&self) {
        self.lock().open -= 1;
        self.changed.notify_all();
    }

    fn give_back(&self, mut conn: DbConn) {
        // A panic mid-work or an unfinished transaction leaves the connection unusable.
        let broken = match &mut conn {
            DbConn::Postgres(c) => AnsiTransactionManager::is_broken_transaction_manager(c),
            DbConn::Sqlite(c) => AnsiTransactionManager::is_broken_transaction_manager(c),
        };
        let reusable = !std::thread::panicking() && !broken;
        let mut state = self.lock();
        if reusable && !state.closed {
            state.idle.push(conn);
            drop(state);
            self.changed.notify_all();
            return;
        }
        drop(state);
        // Closed before it is counted out, so `close` returns only once it really is.
        drop(conn);
        self.forget_one();
    }
}

/// A connection lent by the pool; it goes back when dropped.
pub struct PooledConn {
    /// `None` only while `drop` hands it back.
    conn: Option<DbConn>,
    shared: Arc<Shared>,
}

impl Deref for PooledConn {
    type Target = DbConn;

    fn deref(&self) -> &DbConn {
        self.conn
            .as_ref()
            .unwrap_or_else(|| unreachable!("a pooled connection is taken only by drop"))
    }
}

impl DerefMut for PooledConn {
    fn deref_mut(&mut self) -> &mut DbConn {
        self.conn
            .as_mut()
            .unwrap_or_else(|| unreachable!("a pooled connection is taken only by drop"))
    }
}

impl Drop for PooledConn {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take() {
            self.shared.give_back(conn);
        }
    }
}
