//! One file per flow. A flow parses nothing and renders nothing: handlers give it checked input
//! and turn its result or its error into a page, a redirect or JSON.

pub mod admin_users;
pub mod callback;
pub mod connect;
pub mod console_sign_in;
pub mod exchange;
pub mod grant;
pub mod identities;
pub mod introspect;
pub mod link_proof;
pub mod link_select;
pub mod link_state;
pub mod link_ticket;
pub mod link_verify;
pub mod local_reset;
pub mod local_sign_in;
pub mod local_sign_up;
pub mod local_verify_email;
pub mod login_flow;
pub mod me;
pub mod metadata;
pub mod refresh;
pub mod revoke;
pub mod token_issue;

/// The browser cookie that binds an upstream login to the browser that started it: its name
/// and path. Over https it is a `__Host-` cookie (Secure, Path=/, no Domain: no subdomain can
/// set or shadow it); over plain http, where browsers refuse that prefix, it is scoped to the
/// connect routes.
pub fn flow_cookie(secure: bool) -> (&'static str, &'static str) {
    if secure {
        ("__Host-braid_flow", "/")
    } else {
        ("braid_flow", "/auth/connect")
    }
}
