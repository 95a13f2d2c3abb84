//! Users imported from the app (`braid users import`) signing in: the app gets its own id for
//! them back in `/auth/me` and in the access token.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use base64::Engine;
use braid_core::{Email, Timestamp, UserEmail};
use braid_storage::repo::users::{self, Imported, ImportedUser, NewUser};
use serde_json::Value;
use support::flow::*;

fn access_claims(tokens: &Value) -> Value {
    let token = tokens["access_token"].as_str().unwrap();
    let payload = token.split('.').nth(1).unwrap();
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

fn import(env: &Env, external_id: &str, email: &str) -> String {
    let mut c = env.app.db.db.conn().unwrap();
    let imported = ImportedUser {
        external_id: external_id.into(),
        user: NewUser {
            display_name: Some("Ann".into()),
            emails: vec![UserEmail {
                email: Email::parse(email).unwrap(),
                verified_at: Some(Timestamp::now()),
                is_primary: true,
            }],
            ..NewUser::default()
        },
        password_hash: None,
    };
    let Imported::Created(user) = users::import(&mut c, &imported, Timestamp::now()).unwrap()
    else {
        panic!("created");
    };
    user.id.to_string()
}

#[tokio::test]
async fn an_imported_user_signing_in_carries_external_id_in_me_and_the_access_token() {
    let env = env().await;
    let ann = import(&env, "app-user-42", "ann@example.com");
    let tokens = env.tokens_for("sub-ann", "ann@example.com", true).await;

    let me = env.profile(&tokens).await;
    assert_eq!(
        me["id"],
        ann.as_str(),
        "linked automatically to the imported user"
    );
    assert_eq!(me["external_id"], "app-user-42");
    let claims = access_claims(&tokens);
    assert_eq!(claims["sub"], ann.as_str());
    assert_eq!(claims["external_id"], "app-user-42");

    let r = env.refresh(tokens["refresh_token"].as_str().unwrap()).await;
    assert_eq!(r.status(), 200);
    let refreshed: Value = r.json().await.unwrap();
    assert_eq!(access_claims(&refreshed)["external_id"], "app-user-42");
}

#[tokio::test]
async fn a_user_braid_created_has_no_external_id() {
    let env = env().await;
    let tokens = env.tokens_for("sub-bob", "bob@example.com", true).await;
    assert!(access_claims(&tokens).get("external_id").is_none());
    assert!(env.profile(&tokens).await.get("external_id").is_none());
}
