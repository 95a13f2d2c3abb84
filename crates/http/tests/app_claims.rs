//! Upstream claims for the app (`[clients.<id>] claims`, `claims_in_token`): the claims a
//! client asked for reach it and no others; a new sign-in refreshes them; a sign-in never
//! replaces the user's addresses (D09 style); a bad list is a start-up problem.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use base64::Engine as _;
use braid_http::Settings;
use braid_http::settings::ClientSettings;
use braid_providers::testing::FakeAccount;
use serde_json::{Map, Value, json};
use support::flow::*;

fn token_payload(tokens: &Value) -> Value {
    let payload = tokens["access_token"]
        .as_str()
        .unwrap()
        .split('.')
        .nth(1)
        .unwrap();
    serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .unwrap(),
    )
    .unwrap()
}

/// A person whose provider sends `groups`, `locale` and `department`, and an address.
fn person(email: &str, name: &str, groups: &[&str]) -> FakeAccount {
    let mut extra = Map::new();
    extra.insert("groups".into(), json!(groups));
    extra.insert("locale".into(), json!("fr-FR"));
    extra.insert("department".into(), json!("R&D"));
    FakeAccount {
        name: Some(name.into()),
        extra_claims: extra,
        ..account("sub-1", email, true)
    }
}

fn app_lists(claims: &[&str], in_token: bool) -> impl FnOnce(&mut Settings) {
    let claims: Vec<String> = claims.iter().map(|c| (*c).to_owned()).collect();
    move |s| {
        let app = s.clients.get_mut(CLIENT_ID).unwrap();
        app.claims = claims;
        app.claims_in_token = in_token;
    }
}

async fn sign_in(env: &Env, who: FakeAccount) -> Value {
    env.idp.set_account(who);
    let code = env.login().await.code();
    let r = env.redeem(&code).await;
    assert_eq!(r.status(), 200);
    r.json().await.unwrap()
}

#[tokio::test]
async fn listed_claims_reach_the_app_in_me_and_no_others() {
    let env = env_with(app_lists(&["groups", "name"], false)).await;
    let tokens = sign_in(&env, person("ada@example.com", "Ada", &["admins", "staff"])).await;

    let me = env.profile(&tokens).await;
    assert_eq!(
        me["claims"],
        json!({"groups": ["admins", "staff"], "name": "Ada"})
    );
    // Without claims_in_token the token carries none of them.
    let payload = token_payload(&tokens);
    assert!(payload.get("braid_claims").is_none(), "{payload}");
    for unlisted in ["locale", "department", "email", "groups"] {
        assert!(payload.get(unlisted).is_none(), "{unlisted} in {payload}");
    }
}

#[tokio::test]
async fn claims_in_token_puts_the_listed_ones_under_braid_claims() {
    let env = env_with(app_lists(&["groups"], true)).await;
    let tokens = sign_in(&env, person("ada@example.com", "Ada", &["admins"])).await;

    let payload = token_payload(&tokens);
    assert_eq!(payload["braid_claims"], json!({"groups": ["admins"]}));
    assert_eq!(
        env.profile(&tokens).await["claims"],
        json!({"groups": ["admins"]})
    );

    // A refreshed access token still carries them.
    let r = env.refresh(tokens["refresh_token"].as_str().unwrap()).await;
    assert_eq!(r.status(), 200);
    let refreshed: Value = r.json().await.unwrap();
    assert_eq!(
        token_payload(&refreshed)["braid_claims"],
        json!({"groups": ["admins"]})
    );
}

#[tokio::test]
async fn a_client_without_claims_sees_none() {
    let env = env().await;
    let tokens = sign_in(&env, person("ada@example.com", "Ada", &["admins"])).await;

    let me = env.profile(&tokens).await;
    assert!(me.get("claims").is_none(), "{me}");
    let payload = token_payload(&tokens);
    assert!(payload.get("braid_claims").is_none(), "{payload}");
    assert!(payload.get("identity_id").is_none(), "{payload}");
    assert!(payload.get("groups").is_none(), "{payload}");
}

#[tokio::test]
async fn a_new_sign_in_refreshes_the_claims_and_profile() {
    let env = env_with(app_lists(&["groups", "name"], true)).await;
    let first = sign_in(&env, person("ada@example.com", "Ada", &["staff"])).await;
    assert_eq!(
        token_payload(&first)["braid_claims"],
        json!({"groups": ["staff"], "name": "Ada"})
    );

    let second = sign_in(&env, person("ada@example.com", "Ada L.", &["admins"])).await;
    let expected = json!({"groups": ["admins"], "name": "Ada L."});
    assert_eq!(token_payload(&second)["braid_claims"], expected);
    assert_eq!(env.profile(&second).await["claims"], expected);
    // An older token's /auth/me reads the identity as it is now.
    assert_eq!(env.profile(&first).await["claims"], expected);
}

#[tokio::test]
async fn d09_a_sign_in_never_replaces_the_users_addresses() {
    let env = env_with(app_lists(&["groups"], false)).await;
    let first = sign_in(&env, person("ada@example.com", "Ada", &["staff"])).await;
    let user = env.user_of(&first).await;

    // Same upstream subject, now asserting another verified address and a phone.
    let mut changed = person("mallory@example.com", "Ada", &["admins"]);
    changed.phone_number = Some("+14155550123".into());
    changed.phone_number_verified = Some(Value::Bool(true));
    let second = sign_in(&env, changed).await;
    assert_eq!(env.user_of(&second).await, user);

    let me = env.profile(&second).await;
    assert_eq!(me["claims"], json!({"groups": ["admins"]}));
    let emails: Vec<&str> = me["emails"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["email"].as_str().unwrap())
        .collect();
    assert_eq!(emails, ["ada@example.com"]);
    assert_eq!(me["phones"], json!([]));
}

#[tokio::test]
async fn addresses_and_identifiers_in_the_list_are_a_start_up_problem() {
    let mut s = Settings::default();
    s.clients.insert(
        "app".into(),
        ClientSettings {
            redirect_uris: vec![REDIRECT_URI.into()],
            public: true,
            claims: vec!["groups".into(), "email".into(), "sub".into(), "".into()],
            ..Default::default()
        },
    );
    s.clients.insert(
        "other".into(),
        ClientSettings {
            redirect_uris: vec![REDIRECT_URI.into()],
            public: true,
            claims_in_token: true,
            ..Default::default()
        },
    );
    let problems = s.problems();
    let about = |needle: &str| problems.iter().filter(|p| p.contains(needle)).count();
    assert_eq!(about("clients.app.claims: \"email\""), 1, "{problems:?}");
    assert_eq!(about("clients.app.claims: \"sub\""), 1, "{problems:?}");
    assert_eq!(about("clients.app.claims: \"\""), 1, "{problems:?}");
    assert_eq!(about("\"groups\""), 0, "{problems:?}");
    assert_eq!(about("clients.other.claims_in_token"), 1, "{problems:?}");
}
