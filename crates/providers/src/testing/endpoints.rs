//! The fake provider's endpoints and the state they share.

use super::signing::{keys, public_jwk, replace_payload, sign, tamper_signature};
use super::{CLIENT_ID, CLIENT_SECRET, FakeAccount, LoginScript, RedirectIss, RepeatMember};
use crate::Document;
use crate::flow_secrets::{pkce_s256_challenge, random_token};
use crate::oidc::id_token::access_token_hash;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use jsonwebtoken::Algorithm;
use serde_json::{Map, Value, json};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};
use wiremock::{Request, Respond, ResponseTemplate};

#[derive(Debug, Default)]
pub(crate) struct Calls {
    pub authorize: usize,
    pub token: usize,
    pub jwks: usize,
    pub discovery: usize,
    pub userinfo: usize,
}

struct IssuedCode {
    redirect_uri: String,
    challenge: Option<String>,
    nonce: Option<String>,
    script: LoginScript,
    account: FakeAccount,
    used: bool,
}

struct Grant {
    account: FakeAccount,
    script: LoginScript,
}

pub(crate) struct FakeState {
    issuer: String,
    pub metadata_issuer: Option<String>,
    pub advertise_iss: bool,
    pub kid: String,
    pub key_generation: u32,
    pub account: FakeAccount,
    pub next_script: Option<LoginScript>,
    codes: HashMap<String, IssuedCode>,
    grants: HashMap<String, Grant>,
    pub calls: Calls,
    pub last_token_request: Option<Vec<(String, String)>>,
    pub metadata_repeat: Option<RepeatMember>,
    pub declared_algs: Vec<String>,
    /// The `alg` member of the published key (`None`: left out).
    pub key_alg: Option<String>,
}

impl FakeState {
    pub(crate) fn new(issuer: String) -> Self {
        Self {
            issuer,
            metadata_issuer: None,
            advertise_iss: true,
            kid: "fake-key-1".into(),
            key_generation: 1,
            account: FakeAccount::default(),
            next_script: None,
            codes: HashMap::new(),
            grants: HashMap::new(),
            calls: Calls::default(),
            last_token_request: None,
            metadata_repeat: None,
            declared_algs: vec!["RS256".into()],
            key_alg: Some("RS256".into()),
        }
    }

    fn announced_issuer(&self) -> String {
        self.metadata_issuer
            .clone()
            .unwrap_or_else(|| self.issuer.clone())
    }
}

#[derive(Debug, Clone, Copy)]
pub(crate) enum EndpointKind {
    Discovery,
    Jwks,
    Authorize,
    Token,
    UserInfo,
}

pub(crate) struct Responder {
    kind: EndpointKind,
    state: Arc<Mutex<FakeState>>,
}

impl Responder {
    pub(crate) fn new(kind: EndpointKind, state: Arc<Mutex<FakeState>>) -> Self {
        Self { kind, state }
    }
}

impl Respond for Responder {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let mut state = self.state.lock().expect("fake IdP state");
        match self.kind {
            EndpointKind::Discovery => discovery(&mut state),
            EndpointKind::Jwks => jwks(&mut state),
            EndpointKind::Authorize => authorize(&mut state, request),
            EndpointKind::Token => token(&mut state, request),
            EndpointKind::UserInfo => userinfo(&mut state, request),
        }
    }
}

/// A JSON answer, with a repeated member inserted when one is scripted for `document`.
fn json_body(
    status: u16,
    body: &Value,
    repeat: Option<&RepeatMember>,
    document: Document,
) -> ResponseTemplate {
    ResponseTemplate::new(status).set_body_raw(
        RepeatMember::apply(repeat, document, body.to_string()),
        "application/json",
    )
}

fn oauth_error(status: u16, code: &str) -> ResponseTemplate {
    ResponseTemplate::new(status).set_body_json(json!({ "error": code }))
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

fn discovery(state: &mut FakeState) -> ResponseTemplate {
    state.calls.discovery += 1;
    let base = &state.issuer;
    let body = json!({
        "issuer": state.announced_issuer(),
        "authorization_endpoint": format!("{base}/authorize"),
        "token_endpoint": format!("{base}/token"),
        "userinfo_endpoint": format!("{base}/userinfo"),
        "jwks_uri": format!("{base}/jwks"),
        "response_types_supported": ["code"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": state.declared_algs,
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        "code_challenge_methods_supported": ["S256"],
        "authorization_response_iss_parameter_supported": state.advertise_iss,
    });
    json_body(
        200,
        &body,
        state.metadata_repeat.as_ref(),
        Document::Discovery,
    )
}

fn jwks(state: &mut FakeState) -> ResponseTemplate {
    state.calls.jwks += 1;
    let mut key = public_jwk(&keys().idp, &state.kid);
    match (&state.key_alg, key.as_object_mut()) {
        (Some(alg), Some(k)) => {
            k.insert("alg".into(), alg.clone().into());
        }
        (None, Some(k)) => {
            k.remove("alg");
        }
        _ => {}
    }
    let body = json!({ "keys": [key] });
    json_body(200, &body, state.metadata_repeat.as_ref(), Document::KeySet)
}

fn query(request: &Request) -> HashMap<String, String> {
    request.url.query_pairs().into_owned().collect()
}

fn authorize(state: &mut FakeState, request: &Request) -> ResponseTemplate {
    state.calls.authorize += 1;
    let q = query(request);
    let script = state.next_script.take().unwrap_or_default();
    let Some(redirect_uri) = q.get("redirect_uri").and_then(|r| url::Url::parse(r).ok()) else {
        return ResponseTemplate::new(400).set_body_string("missing redirect_uri");
    };
    if q.get("client_id").map(String::as_str) != Some(CLIENT_ID)
        || q.get("response_type").map(String::as_str) != Some("code")
    {
        return ResponseTemplate::new(400).set_body_string("unknown client or response type");
    }
    if q.contains_key("code_challenge")
        && q.get("code_challenge_method").map(String::as_str) != Some("S256")
    {
        return ResponseTemplate::new(400).set_body_string("only S256 PKCE");
    }
    let code = random_token().expect("random code");
    let iss = match &script.redirect_iss {
        RedirectIss::Auto => state.advertise_iss.then(|| state.announced_issuer()),
        RedirectIss::Omit => None,
        RedirectIss::Value(v) => Some(v.clone()),
    };
    state.codes.insert(
        code.clone(),
        IssuedCode {
            redirect_uri: redirect_uri.to_string(),
            challenge: q.get("code_challenge").cloned(),
            nonce: q.get("nonce").cloned(),
            script,
            account: state.account.clone(),
            used: false,
        },
    );
    let mut location = redirect_uri;
    {
        let mut pairs = location.query_pairs_mut();
        pairs.append_pair("code", &code);
        if let Some(s) = q.get("state") {
            pairs.append_pair("state", s);
        }
        if let Some(iss) = &iss {
            pairs.append_pair("iss", iss);
        }
    }
    ResponseTemplate::new(302).insert_header("location", location.as_str())
}

/// Client credentials from HTTP Basic (RFC 6749 §2.3.1, form-urlencoded parts) or the body.
fn client_credentials(
    request: &Request,
    form: &HashMap<String, String>,
) -> Option<(String, String)> {
    let basic = request
        .headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        .and_then(|b| STANDARD.decode(b).ok())
        .and_then(|raw| String::from_utf8(raw).ok());
    if let Some(pair) = basic {
        let (id, secret) = pair.split_once(':')?;
        let decode = |s: &str| {
            url::form_urlencoded::parse(format!("x={s}").as_bytes())
                .next()
                .map(|(_, v)| v.into_owned())
        };
        return Some((decode(id)?, decode(secret)?));
    }
    Some((
        form.get("client_id")?.clone(),
        form.get("client_secret")?.clone(),
    ))
}

fn token(state: &mut FakeState, request: &Request) -> ResponseTemplate {
    state.calls.token += 1;
    let pairs: Vec<(String, String)> = url::form_urlencoded::parse(&request.body)
        .into_owned()
        .collect();
    state.last_token_request = Some(pairs.clone());
    let form: HashMap<String, String> = pairs.into_iter().collect();
    match client_credentials(request, &form) {
        Some((id, secret)) if id == CLIENT_ID && secret == CLIENT_SECRET => {}
        _ => return oauth_error(401, "invalid_client"),
    }
    if form.get("grant_type").map(String::as_str) != Some("authorization_code") {
        return oauth_error(400, "unsupported_grant_type");
    }
    let Some(issued) = form.get("code").and_then(|c| state.codes.get_mut(c)) else {
        return oauth_error(400, "invalid_grant");
    };
    if issued.used || form.get("redirect_uri") != Some(&issued.redirect_uri) {
        return oauth_error(400, "invalid_grant");
    }
    // PKCE as a real provider enforces it, including the downgrade case.
    let pkce_ok = match (&issued.challenge, form.get("code_verifier")) {
        (Some(challenge), Some(verifier)) => pkce_s256_challenge(verifier) == *challenge,
        (None, None) => true,
        _ => false,
    };
    if !pkce_ok {
        return oauth_error(400, "invalid_grant");
    }
    issued.used = true;
    let (account, script, nonce) = (
        issued.account.clone(),
        issued.script.clone(),
        issued.nonce.clone(),
    );
    let access_token = random_token().expect("random token");
    let mut body = json!({
        "access_token": access_token,
        "token_type": script.token_type.clone().unwrap_or_else(|| "Bearer".into()),
        "expires_in": 300,
        "scope": "openid email profile",
    });
    if !script.omit_id_token {
        body["id_token"] = Value::String(id_token(state, &account, &script, nonce, &access_token));
    }
    if script.pad_token_response > 0 {
        body["padding"] = Value::String("x".repeat(script.pad_token_response));
    }
    let response = json_body(
        200,
        &body,
        script.repeat_member.as_ref(),
        Document::TokenResponse,
    )
    .insert_header("cache-control", "no-store");
    state.grants.insert(access_token, Grant { account, script });
    response
}

fn account_claims(account: &FakeAccount, sub: &str) -> Map<String, Value> {
    let mut c = Map::new();
    c.insert("sub".into(), sub.into());
    let mut put = |k: &str, v: Option<Value>| {
        if let Some(v) = v {
            c.insert(k.into(), v);
        }
    };
    put("email", account.email.clone().map(Value::String));
    put("email_verified", account.email_verified.clone());
    put(
        "phone_number",
        account.phone_number.clone().map(Value::String),
    );
    put(
        "phone_number_verified",
        account.phone_number_verified.clone(),
    );
    put("name", account.name.clone().map(Value::String));
    put(
        "preferred_username",
        account.preferred_username.clone().map(Value::String),
    );
    c.extend(account.extra_claims.clone());
    c
}

fn id_token(
    state: &FakeState,
    account: &FakeAccount,
    script: &LoginScript,
    nonce: Option<String>,
    access_token: &str,
) -> String {
    let t = now();
    let mut claims = account_claims(account, &account.sub);
    claims.insert("iss".into(), state.announced_issuer().into());
    claims.insert("aud".into(), CLIENT_ID.into());
    claims.insert("exp".into(), (t + 300).into());
    claims.insert("iat".into(), t.into());
    claims.insert("auth_time".into(), t.into());
    if let Some(n) = nonce {
        claims.insert("nonce".into(), n.into());
    }
    claims.insert(
        "at_hash".into(),
        access_token_hash(access_token, Algorithm::RS256).into(),
    );
    claims.extend(script.set_claims.clone());
    for name in &script.remove_claims {
        claims.remove(name);
    }

    let mut header = Map::new();
    header.insert(
        "alg".into(),
        script
            .header_alg
            .clone()
            .unwrap_or_else(|| "RS256".into())
            .into(),
    );
    header.insert("typ".into(), "JWT".into());
    header.insert(
        "kid".into(),
        script
            .header_kid
            .clone()
            .unwrap_or_else(|| state.kid.clone())
            .into(),
    );
    header.extend(script.extra_header.clone());

    let key = if script.sign_with_foreign_key {
        &keys().foreign
    } else {
        &keys().idp
    };
    let repeat = script.repeat_member.as_ref();
    let mut jwt = sign(
        &RepeatMember::apply(
            repeat,
            Document::IdTokenHeader,
            Value::Object(header).to_string(),
        ),
        &RepeatMember::apply(
            repeat,
            Document::IdTokenClaims,
            Value::Object(claims.clone()).to_string(),
        ),
        key,
    );
    if script.tamper_signature {
        jwt = tamper_signature(&jwt);
    }
    if script.tamper_payload {
        let mut forged = claims.clone();
        forged.insert("sub".into(), "someone-else".into());
        forged.insert("email".into(), "attacker@evil.example".into());
        jwt = replace_payload(&jwt, &forged);
    }
    jwt
}

fn userinfo(state: &mut FakeState, request: &Request) -> ResponseTemplate {
    state.calls.userinfo += 1;
    let token = request
        .headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    let Some(grant) = token.and_then(|t| state.grants.get(t)) else {
        return ResponseTemplate::new(401)
            .insert_header("www-authenticate", "Bearer error=\"invalid_token\"");
    };
    let sub = grant
        .script
        .userinfo_sub
        .clone()
        .unwrap_or_else(|| grant.account.sub.clone());
    json_body(
        200,
        &Value::Object(account_claims(&grant.account, &sub)),
        grant.script.repeat_member.as_ref(),
        Document::UserInfo,
    )
}
