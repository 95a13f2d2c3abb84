//! One file per flow. A flow parses nothing and renders nothing: handlers give it checked input
//! and turn its result or its error into a page, a redirect or JSON.

pub mod callback;
pub mod connect;
pub mod exchange;
pub mod grant;
pub mod me;
pub mod refresh;
pub mod revoke;
pub mod token_issue;

/// The browser cookie that binds an upstream login to the browser that started it.
pub const FLOW_COOKIE: &str = "braid_flow";
/// The cookie is only ever sent to the connect routes.
pub const FLOW_COOKIE_PATH: &str = "/auth/connect";
