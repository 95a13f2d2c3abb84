//! The catalogue's plain OAuth 2.0 entries build the authorization request each provider
//! documents (endpoint, scope string, fixed parameters), always with Braid's own parameters
//! and PKCE S256; its OpenID Connect entries discover from the documented issuer.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use braid_core::Secret;
use braid_providers::catalogue::{EntryProtocol, entries};
use braid_providers::{Preset, ProviderSettings};
use std::collections::BTreeMap;
use support::provider;

/// (entry, authorization endpoint, `scope` as sent, fixed parameters) from each provider's
/// documentation (the entry's `docs` link).
type Documented = (&'static str, &'static str, &'static str, Params);
type Params = &'static [(&'static str, &'static str)];

const DOCUMENTED: [Documented; 14] = [
    ("amazon", "https://www.amazon.com/ap/oa", "profile", &[]),
    (
        "atlassian",
        "https://auth.atlassian.com/authorize",
        "read:me",
        &[("audience", "api.atlassian.com"), ("prompt", "consent")],
    ),
    (
        "bitbucket",
        "https://bitbucket.org/site/oauth2/authorize",
        "account email",
        &[],
    ),
    (
        "box",
        "https://account.box.com/api/oauth2/authorize",
        "",
        &[],
    ),
    (
        "digitalocean",
        "https://cloud.digitalocean.com/v1/oauth/authorize",
        "read",
        &[],
    ),
    (
        "figma",
        "https://www.figma.com/oauth",
        "current_user:read",
        &[],
    ),
    (
        "patreon",
        "https://www.patreon.com/oauth2/authorize",
        "identity identity[email]",
        &[],
    ),
    (
        "reddit",
        "https://www.reddit.com/api/v1/authorize",
        "identity",
        &[("duration", "temporary")],
    ),
    (
        "spotify",
        "https://accounts.spotify.com/authorize",
        "user-read-email user-read-private",
        &[],
    ),
    (
        "strava",
        "https://www.strava.com/oauth/authorize",
        "read",
        &[],
    ),
    (
        "wordpress",
        "https://public-api.wordpress.com/oauth2/authorize",
        "auth",
        &[],
    ),
    (
        "x",
        "https://x.com/i/oauth2/authorize",
        "users.read tweet.read",
        &[],
    ),
    (
        "yandex",
        "https://oauth.yandex.com/authorize",
        "login:info login:email login:avatar",
        &[],
    ),
    (
        "zoom",
        "https://zoom.us/oauth/authorize",
        "user:read:user",
        &[],
    ),
];

const OURS: [&str; 7] = [
    "response_type",
    "client_id",
    "redirect_uri",
    "scope",
    "state",
    "code_challenge",
    "code_challenge_method",
];

#[tokio::test]
async fn every_oauth2_entry_builds_its_documented_authorization_request() {
    let oauth2: Vec<&str> = entries()
        .iter()
        .filter(|e| e.protocol == EntryProtocol::Oauth2)
        .map(|e| e.name.as_str())
        .collect();
    let documented: Vec<&str> = DOCUMENTED.iter().map(|d| d.0).collect();
    assert_eq!(oauth2, documented, "every plain OAuth 2.0 entry is checked");
    for (name, endpoint, scope, fixed) in DOCUMENTED {
        let mut s = ProviderSettings::new(Preset::from_name(name).unwrap(), "client-1");
        s.client_secret = Some(Secret::new("secret-1"));
        let p = provider(name, s);
        let request = p.authorization_request().await.unwrap();
        let url = &request.url;
        assert_eq!(
            format!("{}{}", url.origin().ascii_serialization(), url.path()),
            endpoint,
            "{name}"
        );
        let mut q: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (k, v) in url.query_pairs() {
            q.entry(k.into_owned()).or_default().push(v.into_owned());
        }
        let get = |k: &str| q.get(k).cloned().unwrap_or_default();
        assert_eq!(get("scope"), [scope], "{name}");
        assert_eq!(get("response_type"), ["code"], "{name}");
        assert_eq!(get("client_id"), ["client-1"], "{name}");
        assert_eq!(
            get("redirect_uri"),
            [format!(
                "https://braid.example/auth/connect/{name}/callback"
            )],
            "{name}"
        );
        assert_eq!(get("code_challenge_method"), ["S256"], "{name}");
        assert_eq!(get("state"), [request.state.as_str()], "{name}");
        for (k, v) in fixed {
            assert_eq!(get(k), [*v], "{name}: {k}");
        }
        let unexpected: Vec<&String> = q
            .keys()
            .filter(|k| !OURS.contains(&k.as_str()) && !fixed.iter().any(|(f, _)| f == k))
            .collect();
        assert!(unexpected.is_empty(), "{name}: {unexpected:?}");
        assert_eq!(
            p.display_name(),
            entries()
                .iter()
                .find(|e| e.name == name)
                .unwrap()
                .display_name
        );
    }
}

#[test]
fn strava_joins_its_scopes_with_commas() {
    let strava = entries().iter().find(|e| e.name == "strava").unwrap();
    assert_eq!(strava.scope_separator.as_deref(), Some(","));
}

#[test]
fn oidc_entries_name_a_documented_https_issuer_or_ask_for_one() {
    for e in entries()
        .iter()
        .filter(|e| e.protocol == EntryProtocol::Oidc)
    {
        let issuer = e.issuer.as_deref().or(e.issuer_hint.as_deref()).unwrap();
        assert!(issuer.starts_with("https://"), "{}: {issuer}", e.name);
        assert_eq!(
            Preset::from_name(&e.name).unwrap().needs_issuer(),
            e.issuer.is_none(),
            "{}",
            e.name
        );
    }
}
