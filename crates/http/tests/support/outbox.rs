//! Reading and nudging the outbox of a running test app.

use super::TestApp;
use braid_storage::repo::outbox::{self, MessageStatus};
use std::time::Duration;

/// How long a test waits for the worker.
pub const WAIT: Duration = Duration::from_secs(15);

pub fn status(app: &TestApp, id: &str) -> MessageStatus {
    let mut c = app.db.db.conn().unwrap();
    outbox::status(&mut c, id)
        .unwrap()
        .expect("the message exists")
}

/// Waits (bounded) until the message's status satisfies `done`.
pub async fn wait_until(
    app: &TestApp,
    id: &str,
    what: &str,
    done: impl Fn(&MessageStatus) -> bool,
) -> MessageStatus {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let s = status(app, id);
        if done(&s) {
            return s;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what} within {WAIT:?}; the message is {s:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Makes a message due now, as if its backoff had passed.
pub fn due_now(app: &TestApp, id: &str) {
    app.db.execute(&format!(
        "UPDATE outbox SET next_attempt_at = 0 WHERE id = '{id}'"
    ));
}
