//! An in-process fake OpenID provider for tests (cargo feature `testing`).
//!
//! [`FakeIdp::start`] serves, on `127.0.0.1`, discovery, a JWKS with its own RSA key, an
//! authorize endpoint that answers at once with a 302 back to the `redirect_uri` carrying
//! `code`, the original `state` and `iss`, a token endpoint that checks client credentials,
//! the code, the `redirect_uri` and the PKCE verifier like a real provider, and UserInfo.
//!
//! A test scripts the person who logs in ([`FakeAccount`], kept until changed) and, for one
//! login, the attack to play ([`LoginScript`], bound to the next `/authorize` request). It can
//! then assert on what Braid did through the call counters (e.g. "the token endpoint was NOT
//! called").
//!
//! ```no_run
//! # async fn demo() {
//! use braid_providers::testing::{FakeIdp, LoginScript};
//! use std::collections::BTreeMap;
//! let idp = FakeIdp::start().await;
//! let settings = BTreeMap::from([("corp".to_owned(), idp.provider_settings())]);
//! let registry = braid_providers::ProviderRegistry::new(&settings, "http://127.0.0.1:8080").unwrap();
//! let corp = registry.get("corp").unwrap();
//! idp.script_next_login(LoginScript { tamper_signature: true, ..LoginScript::default() });
//! let request = corp.authorization_request().await.unwrap();
//! let redirect = idp.authorize(&request.url).await;   // what a browser would do
//! let result = corp.complete(redirect.callback_params(), &request.expected_flow()).await;
//! assert!(result.is_err());
//! # }
//! ```
//!
//! A browser-like client (reqwest following redirects) completes a login against Braid's own
//! routes the same way: `/authorize` redirects straight back to Braid's callback.

// Test support: a broken fixture must fail the test loudly.
#![allow(clippy::expect_used, clippy::unwrap_used)]

mod endpoints;
mod signing;

use crate::{CallbackParams, Document, Preset, ProviderSettings};
use braid_core::Secret;
use endpoints::{EndpointKind, FakeState, Responder};
use serde_json::{Map, Value};
use std::sync::{Arc, Mutex};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer};

/// The client id the fake provider knows.
pub const CLIENT_ID: &str = "braid-test-client";
/// Its client secret.
pub const CLIENT_SECRET: &str = "braid-test-secret";

/// The person who logs in. `email_verified` and `phone_number_verified` are raw JSON so tests
/// can send `"true"`, `"yes"` or `1` (B19).
#[derive(Debug, Clone, PartialEq)]
pub struct FakeAccount {
    pub sub: String,
    pub email: Option<String>,
    pub email_verified: Option<Value>,
    pub phone_number: Option<String>,
    pub phone_number_verified: Option<Value>,
    pub name: Option<String>,
    pub preferred_username: Option<String>,
    /// Any further claims (`hd`, `tid`, `xms_edov`, ...), in the ID token and UserInfo.
    pub extra_claims: Map<String, Value>,
}

impl Default for FakeAccount {
    fn default() -> Self {
        Self {
            sub: "fake-user-1".into(),
            email: Some("alice@example.com".into()),
            email_verified: Some(Value::Bool(true)),
            phone_number: None,
            phone_number_verified: None,
            name: Some("Alice Example".into()),
            preferred_username: Some("alice".into()),
            extra_claims: Map::new(),
        }
    }
}

/// What the authorize redirect says about the issuer (RFC 9207).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum RedirectIss {
    /// `iss` = the announced issuer when discovery advertises
    /// `authorization_response_iss_parameter_supported`, else none.
    #[default]
    Auto,
    Omit,
    Value(String),
}

/// One login's deviations from a well-behaved provider. Applied to the next `/authorize`
/// request and to the token and UserInfo answers of the code it issues.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LoginScript {
    /// Header `alg` (default `RS256`). `none` sends no signature; `RS384`, `RS512`, `PS256`,
    /// ... sign with the provider's key under that algorithm; `HS256` uses the public modulus
    /// as HMAC secret.
    pub header_alg: Option<String>,
    /// Header `kid` (default: the published key's).
    pub header_kid: Option<String>,
    /// Extra header members (`jwk`, `jku`, `x5u`, `crit`, ...).
    pub extra_header: Map<String, Value>,
    /// Claims to set or override (`iss`, `aud`, `azp`, `exp`, `iat`, `nbf`, `nonce`, `sub`,
    /// `at_hash`, ...).
    pub set_claims: Map<String, Value>,
    /// Claims to leave out.
    pub remove_claims: Vec<String>,
    /// Sign with an unpublished key (use with `extra_header` `jwk` for B05).
    pub sign_with_foreign_key: bool,
    /// Change one character of the signature.
    pub tamper_signature: bool,
    /// Replace the payload (another `sub`) and keep the signature.
    pub tamper_payload: bool,
    /// No `id_token` in the token response.
    pub omit_id_token: bool,
    /// `token_type` of the token response (default `Bearer`).
    pub token_type: Option<String>,
    /// `sub` of the UserInfo answer (default: the account's).
    pub userinfo_sub: Option<String>,
    pub redirect_iss: RedirectIss,
    /// Bytes of filler added to the token response (B17).
    pub pad_token_response: usize,
    /// A member repeated in the token response, the ID token or UserInfo (I-JSON).
    pub repeat_member: Option<RepeatMember>,
}

/// A member written a second time into one of the provider's JSON documents, ahead of the
/// real one: a first-wins parser reads `member`, a last-wins parser the real value. The ID
/// token is signed over the altered text, so only the repeat is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepeatMember {
    pub document: Document,
    /// The object member whose (object) value gets the repeat; `None`: the top level (for
    /// the key set, its first key).
    pub inside: Option<String>,
    /// `"name":value`, as JSON text.
    pub member: String,
}

impl RepeatMember {
    pub fn top(document: Document, member: &str) -> Self {
        Self {
            document,
            inside: None,
            member: member.to_owned(),
        }
    }

    pub fn inside(document: Document, object: &str, member: &str) -> Self {
        Self {
            document,
            inside: Some(object.to_owned()),
            member: member.to_owned(),
        }
    }

    /// `json` with the member inserted; unchanged when this repeat is for another document
    /// or the object is not there.
    pub(crate) fn apply(repeat: Option<&Self>, document: Document, json: String) -> String {
        let Some(r) = repeat.filter(|r| r.document == document) else {
            return json;
        };
        let anchor = match (&r.inside, document) {
            (Some(object), _) => format!("\"{object}\":{{"),
            (None, Document::KeySet) => "\"keys\":[{".to_owned(),
            (None, _) => "{".to_owned(),
        };
        match json.find(&anchor) {
            Some(at) => {
                let split = at + anchor.len();
                format!("{}{},{}", &json[..split], r.member, &json[split..])
            }
            None => json,
        }
    }
}

impl LoginScript {
    /// A script that only sets (or overrides) one ID token claim.
    pub fn claim(name: &str, value: Value) -> Self {
        let mut s = Self::default();
        s.set_claims.insert(name.to_owned(), value);
        s
    }

    /// A script that only leaves out one ID token claim.
    pub fn without_claim(name: &str) -> Self {
        Self {
            remove_claims: vec![name.to_owned()],
            ..Self::default()
        }
    }
}

/// Where `/authorize` sent the browser.
#[derive(Debug, Clone)]
pub struct AuthorizeRedirect {
    pub location: url::Url,
    pub code: String,
    pub state: Option<String>,
    pub iss: Option<String>,
}

impl AuthorizeRedirect {
    pub fn callback_params(&self) -> CallbackParams {
        CallbackParams {
            code: self.code.clone(),
            iss: self.iss.clone(),
        }
    }
}

/// The fake provider. Dropping it stops the server.
pub struct FakeIdp {
    server: MockServer,
    issuer: String,
    state: Arc<Mutex<FakeState>>,
}

impl FakeIdp {
    /// Starts a provider whose issuer is `http://127.0.0.1:{port}`.
    pub async fn start() -> Self {
        Self::start_at("").await
    }

    /// Starts a provider whose issuer and endpoints live under `path_prefix` (e.g.
    /// `/common/v2.0` to play Microsoft).
    pub async fn start_at(path_prefix: &str) -> Self {
        let server = MockServer::start().await;
        let prefix = path_prefix.trim_end_matches('/');
        let issuer = format!("{}{prefix}", server.uri());
        let state = Arc::new(Mutex::new(FakeState::new(issuer.clone())));
        for (verb, suffix, kind) in [
            (
                "GET",
                "/.well-known/openid-configuration",
                EndpointKind::Discovery,
            ),
            ("GET", "/jwks", EndpointKind::Jwks),
            ("GET", "/authorize", EndpointKind::Authorize),
            ("POST", "/token", EndpointKind::Token),
            ("GET", "/userinfo", EndpointKind::UserInfo),
        ] {
            Mock::given(method(verb))
                .and(path(format!("{prefix}{suffix}")))
                .respond_with(Responder::new(kind, state.clone()))
                .mount(&server)
                .await;
        }
        Self {
            server,
            issuer,
            state,
        }
    }

    fn with_state<T>(&self, f: impl FnOnce(&mut FakeState) -> T) -> T {
        f(&mut self.state.lock().expect("fake IdP state"))
    }

    pub fn issuer(&self) -> String {
        self.issuer.clone()
    }

    /// `http://127.0.0.1:{port}`, without the path prefix.
    pub fn base_url(&self) -> String {
        self.server.uri()
    }

    /// Settings for this provider: preset `oidc`, [`CLIENT_ID`]/[`CLIENT_SECRET`], the issuer,
    /// `trust_email = true`.
    pub fn provider_settings(&self) -> ProviderSettings {
        let mut s = ProviderSettings::new(Preset::Oidc, CLIENT_ID);
        s.client_secret = Some(Secret::new(CLIENT_SECRET));
        s.issuer = Some(self.issuer());
        s.trust_email = Some(true);
        s
    }

    /// Settings that make a fixed-issuer preset (google, apple) talk to this provider.
    pub fn preset_settings(&self, preset: Preset) -> ProviderSettings {
        let mut s = ProviderSettings::new(preset, CLIENT_ID);
        s.client_secret = Some(Secret::new(CLIENT_SECRET));
        s.upstream_base_url = Some(self.issuer());
        s
    }

    /// The person for every following login.
    pub fn set_account(&self, account: FakeAccount) {
        self.with_state(|s| s.account = account);
    }

    /// The deviations for the next login (the next `/authorize` request).
    pub fn script_next_login(&self, script: LoginScript) {
        self.with_state(|s| s.next_script = Some(script));
    }

    /// Whether discovery advertises `authorization_response_iss_parameter_supported`
    /// (default: yes).
    pub fn set_advertise_iss_parameter(&self, on: bool) {
        self.with_state(|s| s.advertise_iss = on);
    }

    /// The issuer discovery announces (default: the real one). Also the `iss` of ID tokens
    /// and authorize redirects.
    pub fn set_metadata_issuer(&self, issuer: impl Into<String>) {
        let issuer = issuer.into();
        self.with_state(|s| s.metadata_issuer = Some(issuer));
    }

    /// A member repeated in every discovery document or key set served from now on.
    pub fn repeat_member_in_metadata(&self, repeat: RepeatMember) {
        self.with_state(|s| s.metadata_repeat = Some(repeat));
    }

    /// The ID token algorithms discovery declares (default: `["RS256"]`).
    pub fn set_declared_algs(&self, algs: &[&str]) {
        let algs = algs.iter().map(|a| (*a).to_owned()).collect();
        self.with_state(|s| s.declared_algs = algs);
    }

    /// The `alg` member of the published RSA key (default `RS256`; `None` leaves it out, so
    /// the key may verify any RSA algorithm).
    pub fn set_published_key_alg(&self, alg: Option<&str>) {
        let alg = alg.map(str::to_owned);
        self.with_state(|s| s.key_alg = alg);
    }

    /// Publishes the signing key under a new `kid` (key rotation) and returns it.
    pub fn rotate_key_id(&self) -> String {
        self.with_state(|s| {
            s.key_generation += 1;
            s.kid = format!("fake-key-{}", s.key_generation);
            s.kid.clone()
        })
    }

    /// Requests the token endpoint received (including refused ones).
    pub fn token_calls(&self) -> usize {
        self.with_state(|s| s.calls.token)
    }

    pub fn jwks_calls(&self) -> usize {
        self.with_state(|s| s.calls.jwks)
    }

    pub fn discovery_calls(&self) -> usize {
        self.with_state(|s| s.calls.discovery)
    }

    pub fn userinfo_calls(&self) -> usize {
        self.with_state(|s| s.calls.userinfo)
    }

    pub fn authorize_calls(&self) -> usize {
        self.with_state(|s| s.calls.authorize)
    }

    /// The form parameters of the last token request (`code_verifier`, `redirect_uri`, ...).
    pub fn last_token_request(&self) -> Option<Vec<(String, String)>> {
        self.with_state(|s| s.last_token_request.clone())
    }

    /// The public JWK of a key the provider never published: what an attacker would embed in
    /// a token header (B05).
    pub fn attacker_jwk(&self) -> Value {
        let kid = self.with_state(|s| s.kid.clone());
        signing::public_jwk(&signing::keys().foreign, &kid)
    }

    /// Plays the browser at `/authorize`: sends `url` (which must point at this provider) and
    /// returns where the 302 leads. Panics if the provider refuses the request.
    pub async fn authorize(&self, url: &url::Url) -> AuthorizeRedirect {
        let client = openidconnect::reqwest::Client::builder()
            .redirect(openidconnect::reqwest::redirect::Policy::none())
            .build()
            .expect("reqwest client");
        let response = client
            .get(url.clone())
            .send()
            .await
            .expect("authorize request");
        assert_eq!(
            response.status().as_u16(),
            302,
            "fake IdP refused the authorization request"
        );
        let location = response
            .headers()
            .get("location")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| url::Url::parse(v).ok())
            .expect("redirect location");
        let param = |name: &str| {
            location
                .query_pairs()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.into_owned())
        };
        AuthorizeRedirect {
            code: param("code").expect("code in redirect"),
            state: param("state"),
            iss: param("iss"),
            location,
        }
    }
}
