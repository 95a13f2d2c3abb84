//! The HTTP client of the senders that POST (the SMS gateway, webhooks): no redirect is
//! followed, every attempt is bounded in time, and failures are described without the URL
//! (it may carry a credential in its query) or any body.

use super::SendError;
use std::time::Duration;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// A client whose requests give up after `total` (connecting within 5 s, or `total` if
/// shorter).
pub fn client(total: Duration, what: &str) -> Result<reqwest::Client, String> {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(CONNECT_TIMEOUT.min(total))
        .timeout(total)
        .user_agent(concat!("braid/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| format!("{what} client: {}", e.without_url()))
}

/// A request that got no answer: worth retrying.
pub fn transport_error(what: &str, e: reqwest::Error) -> SendError {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "could not connect"
    } else {
        "request failed"
    };
    SendError::transient(format!("{what}: {kind}: {}", e.without_url()))
}
