//! Outgoing webhooks end to end: sign-ins queue events in their own transaction, the outbox
//! worker POSTs them to a real HTTP server started here, which checks each signature as
//! Standard Webhooks specifies; failures are retried with the same id and a fresh signature;
//! a rolled-back change sends nothing; a receiver that hangs holds up no sign-in.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use braid_core::{Email, Secret, Timestamp, UserId};
use braid_http::Settings;
use braid_http::outbox::messages::Messages;
use braid_http::pages::ViewSettings;
use braid_http::settings::{ConflictAction, OnAmbiguity};
use braid_http::webhooks::{self, Event, EventType, WebhookSettings, Webhooks};
use braid_storage::StorageError;
use braid_storage::repo::outbox;
use serde_json::{Value, json};
use std::time::Duration;
use support::flow::{CLIENT_ID, Env, env_with};
use support::link::{SELECT, VERIFY, csrf, give_password, manual, user_with};
use support::outbox::{WAIT, due_now, status, wait_until};
use support::smtp_sink::SmtpSink;
use support::webhook_receiver::{Answer, Receiver};

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

fn hook(url: &str, events: &[EventType]) -> WebhookSettings {
    WebhookSettings::new(url, Secret::new(SECRET), events.to_vec())
}

fn with_hook(url: &str, events: &[EventType]) -> impl FnOnce(&mut Settings) {
    let w = hook(url, events);
    move |s| {
        s.webhooks.insert("crm".into(), w);
    }
}

/// The ids of the webhook rows in the outbox, oldest first.
fn webhook_rows(env: &Env) -> Vec<String> {
    env.app
        .db
        .texts("SELECT id AS t FROM outbox WHERE channel = 'webhook' ORDER BY created_at, id")
}

#[tokio::test]
async fn a_new_user_sends_user_created_signed_as_standard_webhooks_specifies() {
    let receiver = Receiver::start(&[]).await;
    let env = env_with(with_hook(&receiver.url, &EventType::ALL)).await;
    let tokens = env.tokens_for("sub-1", "alice@example.com", true).await;
    let user = env.user_of(&tokens).await;

    let got = receiver.wait_for(1, WAIT).await.remove(0);
    got.verify(SECRET).unwrap();
    assert_eq!(got.path, "/hooks");
    assert_eq!(got.header("content-type"), "application/json");
    let rows = webhook_rows(&env);
    assert_eq!(rows.len(), 1);
    assert_eq!(
        got.header("webhook-id"),
        rows[0],
        "the outbox id names the event"
    );
    let payload = got.json();
    assert_eq!(payload["type"], "user.created");
    let at = payload["timestamp"].as_str().unwrap();
    assert!(
        at.len() == 24 && at.ends_with('Z') && at.as_bytes()[10] == b'T',
        "{at}"
    );
    assert_eq!(
        payload["data"],
        json!({
            "user_id": user,
            "email": "alice@example.com",
            "email_verified": true,
            "provider": "idp",
            "subject": "sub-1",
            "client_id": CLIENT_ID,
        })
    );
    for secret in [
        tokens["access_token"].as_str().unwrap(),
        tokens["refresh_token"].as_str().unwrap(),
    ] {
        assert!(!got.body.contains(secret), "no token in a payload");
    }
    wait_until(&env.app, &rows[0], "marked sent", |s| s.sent_at.is_some()).await;
    env.wait_for_metric(
        r#"braid_outbox_messages_total{channel="webhook",outcome="sent"}"#,
        1.0,
    )
    .await;

    // The same identity signing in again changes nothing: no event.
    env.login_as("sub-1", "alice@example.com", true)
        .await
        .code();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(webhook_rows(&env).len(), 1);
    assert_eq!(receiver.received().len(), 1);
}

#[tokio::test]
async fn only_the_subscribed_events_are_sent_to_each_webhook() {
    let users = Receiver::start(&[]).await;
    let links = Receiver::start(&[]).await;
    let (users_url, links_url) = (users.url.clone(), links.url.clone());
    let env = env_with(move |s| {
        s.webhooks
            .insert("users".into(), hook(&users_url, &[EventType::UserCreated]));
        s.webhooks.insert(
            "links".into(),
            hook(&links_url, &[EventType::IdentityLinked]),
        );
    })
    .await;
    let existing = user_with(&env, Some(("bob@example.com", true)), None);
    // An automatic link (one verified match): identity.linked, to "links" only.
    env.login_as("sub-bob", "bob@example.com", true)
        .await
        .code();
    let linked = links.wait_for(1, WAIT).await.remove(0);
    linked.verify(SECRET).unwrap();
    assert_eq!(
        linked.json()["data"],
        json!({
            "user_id": existing,
            "provider": "idp",
            "subject": "sub-bob",
            "client_id": CLIENT_ID,
            "method": "automatic",
            "proof": null,
        })
    );
    // A new user: user.created, to "users" only.
    env.login_as("sub-carol", "carol@example.com", true)
        .await
        .code();
    let created = users.wait_for(1, WAIT).await.remove(0);
    assert_eq!(created.json()["type"], "user.created");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!((users.received().len(), links.received().len()), (1, 1));
    assert_eq!(
        env.app.db.texts(
            "SELECT recipient || ' ' || subject AS t FROM outbox WHERE channel = 'webhook' ORDER BY created_at, id"
        ),
        ["links identity.linked", "users user.created"]
    );
}

#[tokio::test]
async fn an_ambiguous_match_sends_link_conflict_with_the_users_involved() {
    let receiver = Receiver::start(&[]).await;
    let env = env_with(|s| {
        with_hook(&receiver.url, &EventType::ALL)(s);
        s.account_linking.on_ambiguity = OnAmbiguity::Conflict;
    })
    .await;
    let a = user_with(&env, Some(("shared@example.com", true)), None);
    let b = user_with(&env, Some(("shared@example.com", false)), None);
    let landing = env.login_as("sub-1", "shared@example.com", true).await;
    assert_eq!(landing.status, 409, "refused: {}", landing.body);

    let got = receiver.wait_for(1, WAIT).await.remove(0);
    got.verify(SECRET).unwrap();
    let payload = got.json();
    assert_eq!(payload["type"], "link.conflict");
    let data = &payload["data"];
    assert_eq!(data["reason"], "ambiguous_match");
    assert_eq!(data["action"], "refused");
    assert_eq!(data["created_user_id"], Value::Null);
    assert_eq!(
        (&data["provider"], &data["subject"]),
        (&json!("idp"), &json!("sub-1"))
    );
    let mut involved: Vec<&str> = data["user_ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    involved.sort_unstable();
    let mut expected = [a.as_str(), b.as_str()];
    expected.sort_unstable();
    assert_eq!(involved, expected);
    assert!(
        !got.body.contains("shared@example.com"),
        "no address in a conflict"
    );
}

#[tokio::test]
async fn a_manual_link_sends_identity_linked_with_the_proof() {
    let receiver = Receiver::start(&[]).await;
    let env = env_with(|s| {
        manual(s);
        with_hook(&receiver.url, &[EventType::IdentityLinked])(s);
    })
    .await;
    let alice = user_with(&env, Some(("alice@example.com", true)), None);
    give_password(&env, &alice, "correct horse battery staple");
    let select = env.at_select("sub-1", "alice@example.com").await;
    let picked = env
        .post_form(SELECT, &[("csrf", &csrf(&select)), ("choice", "0")])
        .await;
    assert_eq!(picked.status, 303, "{}", picked.body);
    let page = env.get_page(VERIFY).await.body;
    assert!(receiver.received().is_empty(), "nothing before the link");
    let done = env
        .enter_password(&page, "correct horse battery staple")
        .await;
    assert_eq!(done.status, 303, "{}", done.body);

    let got = receiver.wait_for(1, WAIT).await.remove(0);
    got.verify(SECRET).unwrap();
    let payload = got.json();
    assert_eq!(payload["type"], "identity.linked");
    assert_eq!(payload["data"]["user_id"], alice.as_str());
    assert_eq!(payload["data"]["method"], "manual");
    assert_eq!(payload["data"]["proof"], "password");
    assert!(!got.body.contains("correct horse"), "never the password");
}

#[tokio::test]
async fn a_failed_delivery_is_retried_with_the_same_id_and_a_fresh_signature() {
    let receiver = Receiver::start(&[Answer::Status(500)]).await;
    let env = env_with(with_hook(&receiver.url, &EventType::ALL)).await;
    env.login_as("sub-1", "alice@example.com", true)
        .await
        .code();
    let id = webhook_rows(&env).remove(0);
    let before = Timestamp::now();

    wait_until(&env.app, &id, "a failed attempt", |s| {
        s.last_error.is_some()
    })
    .await;
    let failed = status(&env.app, &id);
    assert_eq!(failed.last_error.as_deref(), Some("webhook answered 500"));
    assert_eq!((failed.attempts, failed.sent_at), (1, None));
    assert!(
        failed.next_attempt_at >= before.plus(Duration::from_secs(4)),
        "the retry waits for the backoff: {failed:?}"
    );
    // As if the backoff had passed.
    due_now(&env.app, &id);
    wait_until(&env.app, &id, "sent on the retry", |s| s.sent_at.is_some()).await;
    let both = receiver.received();
    assert_eq!(both.len(), 2);
    assert_eq!(both[0].answered, Answer::Status(500));
    assert_eq!(both[1].answered, Answer::Status(204));
    for got in &both {
        got.verify(SECRET).unwrap();
        assert_eq!(got.header("webhook-id"), id, "one id across retries");
    }
    assert_eq!(both[0].body, both[1].body, "the same event");
    assert_eq!(status(&env.app, &id).attempts, 2);
    env.wait_for_metric(
        r#"braid_outbox_messages_total{channel="webhook",outcome="failed"}"#,
        1.0,
    )
    .await;
}

#[tokio::test]
async fn an_event_is_given_up_after_the_webhooks_max_attempts() {
    let receiver = Receiver::start(&[Answer::Status(503), Answer::Status(302)]).await;
    let mut w = hook(&receiver.url, &EventType::ALL);
    w.max_attempts = 2;
    let env = env_with(move |s| {
        s.webhooks.insert("crm".into(), w);
    })
    .await;
    env.login_as("sub-1", "alice@example.com", true)
        .await
        .code();
    let id = webhook_rows(&env).remove(0);
    wait_until(&env.app, &id, "a failed attempt", |s| {
        s.last_error.is_some()
    })
    .await;
    due_now(&env.app, &id);
    wait_until(&env.app, &id, "given up", |s| s.gave_up_at.is_some()).await;
    let s = status(&env.app, &id);
    assert_eq!(
        (s.attempts, s.sent_at, s.last_error.as_deref()),
        (2, None, Some("webhook answered 302")),
        "a redirect is not followed, and counts as a failure"
    );
    assert_eq!(receiver.received().len(), 2);
}

#[tokio::test]
async fn i09_a_rolled_back_change_sends_no_webhook_and_a_committed_one_does() {
    let receiver = Receiver::start(&[]).await;
    let env = env_with(with_hook(&receiver.url, &EventType::ALL)).await;
    let hooks = Webhooks::from_settings(&env_settings_webhooks(&receiver.url));
    let user = UserId::generate();
    let unlinked = Event::IdentityUnlinked(webhooks::IdentityUnlinked {
        user_id: user.to_string(),
        provider: "idp".into(),
        subject: "sub-1".into(),
    });
    let disabled = Event::UserDisabled(webhooks::UserDisabled {
        user_id: user.to_string(),
    });

    let (h, e) = (hooks.clone(), unlinked.clone());
    let rolled_back = env
        .app
        .db
        .db
        .run_write(move |c| {
            assert_eq!(webhooks::enqueue(c, &h, &e, Timestamp::now())?, 1);
            Err::<(), _>(StorageError::Conflict("the change failed".into()))
        })
        .await;
    assert!(rolled_back.is_err());
    assert_eq!(webhook_rows(&env), Vec::<String>::new(), "nothing queued");

    let (h, events) = (hooks.clone(), [unlinked, disabled]);
    env.app
        .db
        .db
        .run_write(move |c| {
            for e in &events {
                webhooks::enqueue(c, &h, e, Timestamp::now())?;
            }
            Ok(())
        })
        .await
        .unwrap();
    let got = receiver.wait_for(2, WAIT).await;
    let mut types: Vec<String> = got
        .iter()
        .map(|r| {
            r.verify(SECRET).unwrap();
            r.json()["type"].as_str().unwrap().to_owned()
        })
        .collect();
    types.sort();
    assert_eq!(types, ["identity.unlinked", "user.disabled"]);
    let unlinked = got
        .iter()
        .find(|r| r.json()["type"] == "identity.unlinked")
        .unwrap();
    assert_eq!(
        unlinked.json()["data"],
        json!({"user_id": user.to_string(), "provider": "idp", "subject": "sub-1"})
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        receiver.received().len(),
        2,
        "the rolled-back event never went out"
    );
}

fn env_settings_webhooks(url: &str) -> std::collections::BTreeMap<String, WebhookSettings> {
    std::collections::BTreeMap::from([("crm".to_owned(), hook(url, &EventType::ALL))])
}

#[tokio::test]
async fn a_receiver_that_hangs_holds_up_no_sign_in_and_no_email() {
    // Every request is read and never answered; an attempt would wait the longest timeout.
    let receiver = Receiver::start(&[Answer::Hang, Answer::Hang, Answer::Hang]).await;
    let sink = SmtpSink::start().await;
    let mut w = hook(&receiver.url, &EventType::ALL);
    w.timeout = 60;
    let smtp = sink.url();
    let env = env_with(move |s| {
        s.webhooks.insert("crm".into(), w);
        s.smtp.url = Some(smtp);
    })
    .await;
    // Well under the 60 s a delivery may wait: the sign-ins finish while it waits.
    tokio::time::timeout(Duration::from_secs(30), async {
        env.login_as("sub-1", "alice@example.com", true)
            .await
            .code();
        receiver.wait_for(1, WAIT).await;
        env.login_as("sub-2", "bob@example.com", true).await.code();
        env.login_as("sub-1", "alice@example.com", true)
            .await
            .code();
    })
    .await
    .expect("sign-ins complete while the receiver hangs");
    let rows = webhook_rows(&env);
    assert_eq!(rows.len(), 2, "one user.created per new user");
    // A code email queued meanwhile goes out while the events still wait for the receiver.
    let code = Messages::new(&ViewSettings::default())
        .unwrap()
        .verification_code_email(&Email::parse("dave@example.com").unwrap(), "042917", 10)
        .unwrap();
    let mut c = env.app.db.db.conn().unwrap();
    outbox::enqueue(&mut c, &code, Timestamp::now()).unwrap();
    drop(c);
    let mail = sink.wait_for(1, WAIT).await.remove(0);
    assert_eq!(mail.rcpt_to, ["dave@example.com"]);
    assert_eq!(
        status(&env.app, &rows[0]).sent_at,
        None,
        "still waiting for the receiver"
    );
    assert_eq!(receiver.received()[0].answered, Answer::Hang);
}

#[tokio::test]
async fn an_ambiguous_match_settled_by_a_new_user_sends_link_conflict_then_user_created() {
    let receiver = Receiver::start(&[]).await;
    let env = env_with(|s| {
        with_hook(&receiver.url, &EventType::ALL)(s);
        s.account_linking.on_ambiguity = OnAmbiguity::Conflict;
        s.account_linking.conflict_action = ConflictAction::CreateUser;
    })
    .await;
    user_with(&env, Some(("shared@example.com", true)), None);
    user_with(&env, Some(("shared@example.com", false)), None);
    let tokens = env.tokens_for("sub-1", "shared@example.com", true).await;
    let created = env.user_of(&tokens).await;

    let got = receiver.wait_for(2, WAIT).await;
    let by_type = |t: &str| {
        got.iter()
            .map(|r| r.json())
            .find(|p| p["type"] == t)
            .unwrap_or_else(|| panic!("a {t} event in {got:#?}"))
    };
    let conflict = by_type("link.conflict");
    assert_eq!(conflict["data"]["action"], "user_created");
    assert_eq!(conflict["data"]["created_user_id"], created.as_str());
    assert_eq!(conflict["data"]["user_ids"].as_array().unwrap().len(), 2);
    let user = by_type("user.created");
    assert_eq!(user["data"]["user_id"], created.as_str());
    // The address another user holds verified is stored unverified for the new one.
    assert_eq!(user["data"]["email_verified"], false);
}

#[tokio::test]
async fn an_event_for_a_webhook_no_longer_configured_is_given_up_at_once() {
    let receiver = Receiver::start(&[]).await;
    let env = env_with(with_hook(&receiver.url, &EventType::ALL)).await;
    // Queued while a webhook "old" was configured; this instance no longer has it.
    let old = Webhooks::from_settings(&std::collections::BTreeMap::from([(
        "old".to_owned(),
        hook(&receiver.url, &[EventType::UserDisabled]),
    )]));
    let event = Event::UserDisabled(webhooks::UserDisabled {
        user_id: UserId::generate().to_string(),
    });
    env.app
        .db
        .db
        .run_write(move |c| webhooks::enqueue(c, &old, &event, Timestamp::now()))
        .await
        .unwrap();
    let id = webhook_rows(&env).remove(0);
    wait_until(&env.app, &id, "given up", |s| s.gave_up_at.is_some()).await;
    let s = status(&env.app, &id);
    assert_eq!(
        (s.attempts, s.last_error.as_deref()),
        (1, Some(r#"webhook "old" is no longer configured"#))
    );
    assert!(receiver.received().is_empty());
}
