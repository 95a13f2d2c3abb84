//! `GET /.well-known/oauth-authorization-server` (RFC 8414): what JWT middleware configured
//! with Braid's issuer URL reads to find the keys and the endpoints. Only what exists is named.

use crate::settings::Settings;
use serde_json::{Value, json};

/// `Cache-Control: max-age`: the document changes only with the configuration.
pub const MAX_AGE_SECS: u32 = 3600;

pub fn document(settings: &Settings) -> Value {
    let base = settings.server.public_url();
    let at = |path: &str| format!("{base}{path}");
    // Public clients name themselves with client_id and prove possession with PKCE.
    let token_auth = ["client_secret_basic", "client_secret_post", "none"];
    json!({
        "issuer": settings.issuer(),
        "jwks_uri": at("/.well-known/jwks.json"),
        "token_endpoint": at("/auth/exchange-code"),
        "token_endpoint_auth_methods_supported": token_auth,
        "revocation_endpoint": at("/auth/revoke"),
        "revocation_endpoint_auth_methods_supported": token_auth,
        "introspection_endpoint": at("/auth/introspect"),
        "introspection_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        "grant_types_supported": ["authorization_code", "refresh_token"],
        // `/auth/connect/{provider}` answers with a code (there is one such route per provider,
        // so no single authorization_endpoint is named).
        "response_types_supported": ["code"],
        "code_challenge_methods_supported": ["S256"],
    })
}

/// Whether `path` (what follows `/.well-known/oauth-authorization-server`) is the path of
/// `issuer`: empty for an issuer without one, `/tenant` for `https://auth.example.com/tenant`.
pub fn is_issuer_path(issuer: &str, path: &str) -> bool {
    let expected = url::Url::parse(issuer)
        .map(|u| u.path().trim_end_matches('/').to_owned())
        .unwrap_or_default();
    path == expected
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_metadata_lives_under_the_issuers_path() {
        assert!(is_issuer_path("https://auth.example.com", ""));
        assert!(is_issuer_path("https://auth.example.com/", ""));
        assert!(is_issuer_path("https://auth.example.com/tenant", "/tenant"));
        assert!(!is_issuer_path("https://auth.example.com/tenant", ""));
        assert!(!is_issuer_path("https://auth.example.com", "/other"));
        assert!(!is_issuer_path("https://auth.example.com", "x"));
    }
}
