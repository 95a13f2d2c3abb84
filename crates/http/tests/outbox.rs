//! The outbox worker in the running application: email to an SMTP sink, SMS to a webhook
//! (wiremock) or to the log, retries with backoff, and what reaches the logs.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use braid_core::{Email, Phone, Secret, Timestamp};
use braid_http::Settings;
use braid_http::outbox::messages::Messages;
use braid_http::outbox::{NewMessage, Outbox};
use braid_http::settings::SmsProvider;
use braid_storage::repo::outbox::{self, Channel};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use support::outbox::{WAIT, due_now, wait_until};
use support::smtp_sink::SmtpSink;
use support::{TestApp, spawn_app_with};
use wiremock::matchers::{body_json, header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const FROM: &str = "Braid Test <noreply@braid.test>";

fn messages() -> Messages {
    Messages::new(&braid_http::pages::ViewSettings::default()).unwrap()
}

fn alice() -> Email {
    Email::parse("alice@example.com").unwrap()
}

fn phone() -> Phone {
    Phone::parse("+12025550100").unwrap()
}

fn enqueue(app: &TestApp, message: &NewMessage) -> String {
    let mut c = app.db.db.conn().unwrap();
    outbox::enqueue(&mut c, message, Timestamp::now()).unwrap()
}

async fn metric(app: &TestApp, channel: &str, outcome: &str) -> u64 {
    let text = app
        .client
        .get(format!("{}/metrics", app.address))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let series =
        format!("braid_outbox_messages_total{{channel=\"{channel}\",outcome=\"{outcome}\"}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&series))
        .map_or(0, |v| v.parse().unwrap())
}

fn with_smtp(url: String) -> impl FnOnce(&mut Settings) {
    move |s| {
        s.smtp.url = Some(url);
        s.smtp.from = FROM.into();
    }
}

fn with_webhook(url: String) -> impl FnOnce(&mut Settings) {
    move |s| {
        s.sms.provider = SmsProvider::Webhook;
        s.sms.webhook_url = Some(url);
        s.sms.webhook_token = Some(Secret::new("gateway-token"));
    }
}

#[tokio::test]
async fn a_queued_email_arrives_with_both_parts_and_the_right_headers() {
    let (logs, _guard) = capture_logs();
    let sink = SmtpSink::start().await;
    let app = spawn_app_with(with_smtp(sink.url())).await;
    let message = messages()
        .verification_code_email(&alice(), "042917", 10)
        .unwrap();
    let id = enqueue(&app, &message);

    let mail = sink.wait_for(1, WAIT).await.remove(0);
    assert_eq!(mail.mail_from, "noreply@braid.test");
    assert_eq!(mail.rcpt_to, ["alice@example.com"]);
    assert_eq!(
        mail.header("From").unwrap(),
        "\"Braid Test\" <noreply@braid.test>"
    );
    assert_eq!(mail.header("To").unwrap(), "alice@example.com");
    assert_eq!(mail.header("Subject").unwrap(), "Your verification code");
    assert_eq!(
        mail.header("Message-ID").unwrap(),
        format!("<{id}@braid.test>"),
        "the outbox id names the message"
    );
    assert!(
        mail.header("Content-Type")
            .unwrap()
            .starts_with("multipart/alternative"),
        "{}",
        mail.data
    );
    assert!(
        mail.data
            .contains("Content-Type: text/plain; charset=utf-8")
    );
    assert!(mail.data.contains("Content-Type: text/html; charset=utf-8"));
    assert_eq!(
        mail.data.matches("042917").count(),
        2,
        "the code in each part: {}",
        mail.data
    );

    let sent = wait_until(&app, &id, "marked sent", |s| s.sent_at.is_some()).await;
    assert_eq!(sent.attempts, 1);
    assert_eq!(sink.messages().len(), 1, "sent once");
    assert_eq!(metric(&app, "email", "sent").await, 1);

    let logs = String::from_utf8(logs.lock().unwrap().clone()).unwrap();
    assert!(logs.contains("to=a***@e***.com"), "{logs}");
    assert!(
        !logs.contains("042917"),
        "never the code, even at TRACE: {logs}"
    );
    assert!(
        !logs.contains("alice@example.com"),
        "never the address: {logs}"
    );
}

#[tokio::test]
async fn with_the_smtp_server_down_the_email_stays_queued_and_goes_out_once_it_is_back() {
    let down = SmtpSink::start().await;
    let port = down.port;
    down.stop().await;
    let app = spawn_app_with(with_smtp(format!("smtp://127.0.0.1:{port}"))).await;
    let before = Timestamp::now();
    let id = enqueue(
        &app,
        &messages()
            .verification_code_email(&alice(), "042917", 10)
            .unwrap(),
    );

    let failed = wait_until(&app, &id, "a failed attempt recorded", |s| {
        s.last_error.is_some()
    })
    .await;
    assert_eq!(failed.attempts, 1);
    assert_eq!(failed.sent_at, None);
    assert_eq!(failed.gave_up_at, None);
    assert!(
        failed.next_attempt_at >= before.plus(Duration::from_secs(5)),
        "the retry waits for the backoff: {failed:?}"
    );
    assert!(
        !failed.last_error.as_deref().unwrap().contains("042917"),
        "{failed:?}"
    );
    assert_eq!(metric(&app, "email", "failed").await, 1);

    let sink = SmtpSink::start_on(port).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(
        sink.messages().is_empty(),
        "nothing before the backoff ends"
    );
    due_now(&app, &id);
    let mail = sink.wait_for(1, WAIT).await.remove(0);
    assert_eq!(mail.rcpt_to, ["alice@example.com"]);
    let sent = wait_until(&app, &id, "marked sent", |s| s.sent_at.is_some()).await;
    assert_eq!(sent.attempts, 2);
    assert_eq!(metric(&app, "email", "sent").await, 1);
}

#[tokio::test]
async fn a_code_that_expired_while_the_smtp_server_was_down_is_given_up_not_sent_late() {
    let down = SmtpSink::start().await;
    let port = down.port;
    down.stop().await;
    let app = spawn_app_with(with_smtp(format!("smtp://127.0.0.1:{port}"))).await;
    let code = messages()
        .verification_code_email(&alice(), "042917", 10)
        .unwrap();
    let stale = enqueue(
        &app,
        &code
            .clone()
            .until(Timestamp::now().plus(Duration::from_secs(2))),
    );
    wait_until(&app, &stale, "a failed attempt recorded", |s| {
        s.last_error.is_some()
    })
    .await;
    // The server comes back after the code's expiry: the message is dropped, not sent.
    let sink = SmtpSink::start_on(port).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    due_now(&app, &stale);
    let dropped = wait_until(&app, &stale, "given up", |s| s.gave_up_at.is_some()).await;
    assert_eq!(dropped.sent_at, None);
    assert_eq!(
        dropped.last_error.as_deref(),
        Some("expired before delivery")
    );
    assert_eq!(metric(&app, "email", "expired").await, 1);
    // A code still valid goes out as usual.
    let fresh = enqueue(
        &app,
        &code.until(Timestamp::now().plus(Duration::from_secs(600))),
    );
    sink.wait_for(1, WAIT).await;
    wait_until(&app, &fresh, "marked sent", |s| s.sent_at.is_some()).await;
    assert_eq!(sink.messages().len(), 1, "only the fresh code was sent");
}

#[tokio::test]
async fn an_sms_goes_to_the_webhook_as_json_with_the_bearer_token() {
    let gateway = MockServer::start().await;
    let message = messages()
        .verification_code_sms(&phone(), "042917", 10)
        .unwrap();
    Mock::given(method("POST"))
        .and(path("/send"))
        .and(header("authorization", "Bearer gateway-token"))
        .and(header("content-type", "application/json"))
        .and(body_json(serde_json::json!({
            "to": "+12025550100",
            "body": message.text_body,
        })))
        .respond_with(ResponseTemplate::new(202))
        .expect(1)
        .mount(&gateway)
        .await;
    let app = spawn_app_with(with_webhook(format!("{}/send", gateway.uri()))).await;
    let id = enqueue(&app, &message);

    let sent = wait_until(&app, &id, "marked sent", |s| s.sent_at.is_some()).await;
    assert_eq!(sent.attempts, 1);
    let requests = gateway.received_requests().await.unwrap();
    assert_eq!(
        requests[0].headers["idempotency-key"].to_str().unwrap(),
        id,
        "a retried message keeps its key"
    );
    assert_eq!(metric(&app, "sms", "sent").await, 1);
    gateway.verify().await;
}

#[tokio::test]
async fn a_5xx_from_the_webhook_is_retried_and_a_400_gives_up_at_once() {
    let gateway = MockServer::start().await;
    Mock::given(path("/send"))
        .respond_with(ResponseTemplate::new(503).set_body_string("042917 echoed"))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&gateway)
        .await;
    Mock::given(path("/send"))
        .respond_with(ResponseTemplate::new(200))
        .with_priority(2)
        .mount(&gateway)
        .await;
    let app = spawn_app_with(with_webhook(format!("{}/send", gateway.uri()))).await;
    let message = messages()
        .verification_code_sms(&phone(), "042917", 10)
        .unwrap();
    let id = enqueue(&app, &message);

    let failed = wait_until(&app, &id, "a failed attempt", |s| s.last_error.is_some()).await;
    assert_eq!(
        failed.last_error.as_deref(),
        Some("SMS webhook answered 503"),
        "the status only: a gateway's body may echo the code"
    );
    assert_eq!((failed.attempts, failed.sent_at), (1, None));
    due_now(&app, &id);
    let sent = wait_until(&app, &id, "sent on the retry", |s| s.sent_at.is_some()).await;
    assert_eq!(sent.attempts, 2);

    gateway.reset().await;
    Mock::given(path("/send"))
        .respond_with(ResponseTemplate::new(400))
        .mount(&gateway)
        .await;
    let refused = enqueue(&app, &message);
    let given_up = wait_until(&app, &refused, "given up", |s| s.gave_up_at.is_some()).await;
    assert_eq!(
        given_up.attempts, 1,
        "no retry of a message the gateway refuses"
    );
    assert_eq!(metric(&app, "sms", "gave_up").await, 1);
}

#[tokio::test]
async fn the_webhook_must_be_https_or_loopback_and_carry_a_token() {
    let problems = |url: &str, token: Option<&str>| {
        let mut s = Settings::default();
        s.sms.provider = SmsProvider::Webhook;
        s.sms.webhook_url = Some(url.into());
        s.sms.webhook_token = token.map(Secret::new);
        s.problems()
    };
    assert_eq!(
        problems("https://sms.example.com/send", Some("t")),
        Vec::<String>::new()
    );
    assert_eq!(
        problems("http://127.0.0.1:9000/send", Some("t")),
        Vec::<String>::new()
    );
    assert_eq!(
        problems("http://localhost:9000/send", Some("t")),
        Vec::<String>::new()
    );
    for refused in [
        "http://sms.example.com/send",
        "http://10.0.0.5/send",
        "ftp://sms.example.com/",
    ] {
        let p = problems(refused, Some("t"));
        assert!(
            p.iter()
                .any(|l| l.starts_with("sms.webhook_url: must be https")),
            "{refused}: {p:?}"
        );
    }
    let p = problems("https://sms.example.com/send", None);
    assert!(
        p.iter()
            .any(|l| l.starts_with("sms.webhook_token: required")),
        "{p:?}"
    );

    let mut s = Settings::default();
    with_webhook("http://sms.example.com/send".into())(&mut s);
    assert!(
        Outbox::from_settings(&s).is_err(),
        "refused again where the client is built"
    );
}

#[tokio::test]
async fn only_configured_channels_can_send() {
    let none = Outbox::from_settings(&Settings::default()).unwrap();
    assert!(!none.can_send(Channel::Email));
    assert!(!none.can_send(Channel::Sms));
    let mut s = Settings::default();
    s.smtp.url = Some("smtp://127.0.0.1:2525".into());
    s.sms.provider = SmsProvider::Log;
    let both = Outbox::from_settings(&s).unwrap();
    assert!(both.can_send(Channel::Email));
    assert!(both.can_send(Channel::Sms));
}

/// Log lines written while the guard lives, on this thread (the test's runtime runs the
/// worker on it).
/// What this test's thread logs, at every level, until the guard drops. One global
/// subscriber routes each line to the buffer of the thread that emitted it: the outbox worker
/// runs on the test's own (current-thread) runtime. Per-test scoped subscribers were not
/// reliable with tests running side by side (log lines first reached on another thread were
/// cached as uninteresting).
fn capture_logs() -> (Arc<Mutex<Vec<u8>>>, CaptureGuard) {
    static INSTALL: std::sync::Once = std::sync::Once::new();
    INSTALL.call_once(|| {
        let subscriber = tracing_subscriber::fmt()
            .with_ansi(false)
            .with_max_level(tracing::Level::TRACE)
            .with_writer(|| ThreadBuffer)
            .finish();
        tracing::subscriber::set_global_default(subscriber).unwrap();
    });
    let buffer = Arc::new(Mutex::new(Vec::new()));
    CAPTURE.with(|c| *c.borrow_mut() = Some(buffer.clone()));
    (buffer, CaptureGuard)
}

thread_local! {
    static CAPTURE: std::cell::RefCell<Option<Arc<Mutex<Vec<u8>>>>> = const { std::cell::RefCell::new(None) };
}

struct CaptureGuard;

impl Drop for CaptureGuard {
    fn drop(&mut self) {
        CAPTURE.with(|c| *c.borrow_mut() = None);
    }
}

struct ThreadBuffer;

impl std::io::Write for ThreadBuffer {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        CAPTURE.with(|c| {
            if let Some(buffer) = &*c.borrow() {
                buffer.lock().unwrap().extend_from_slice(b);
            }
        });
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn the_log_sender_logs_a_masked_number_and_never_the_code() {
    let (logs, _guard) = capture_logs();
    let app = spawn_app_with(|s| s.sms.provider = SmsProvider::Log).await;
    let id = enqueue(
        &app,
        &messages()
            .verification_code_sms(&phone(), "042917", 10)
            .unwrap(),
    );
    wait_until(&app, &id, "marked sent", |s| s.sent_at.is_some()).await;

    let logs = String::from_utf8(logs.lock().unwrap().clone()).unwrap();
    assert!(
        logs.contains("SMS to +1 ••• ••• 0100 not sent: sms.provider = \"log\""),
        "{logs}"
    );
    assert!(logs.contains(&id), "the message id is logged: {logs}");
    assert!(!logs.contains("042917"), "never the code: {logs}");
    assert!(
        !logs.contains("2025550100"),
        "never the whole number: {logs}"
    );
}

#[tokio::test]
async fn failures_are_logged_with_a_masked_recipient_and_without_the_body() {
    let (logs, _guard) = capture_logs();
    let down = SmtpSink::start().await;
    let port = down.port;
    down.stop().await;
    let app = spawn_app_with(with_smtp(format!("smtp://127.0.0.1:{port}"))).await;
    let id = enqueue(
        &app,
        &messages()
            .verification_code_email(&alice(), "042917", 10)
            .unwrap(),
    );
    wait_until(&app, &id, "a failed attempt", |s| s.last_error.is_some()).await;

    let logs = String::from_utf8(logs.lock().unwrap().clone()).unwrap();
    let line = logs
        .lines()
        .find(|l| l.contains("will retry"))
        .unwrap_or_else(|| panic!("a retry line in {logs}"));
    for field in [
        format!("message_id={id}"),
        "channel=email".into(),
        "to=a***@e***.com".into(),
        "attempt=1".into(),
        "outcome=\"failed\"".into(),
        "retry_in_secs=5".into(),
    ] {
        assert!(line.contains(&field), "{field} in {line}");
    }
    assert!(!logs.contains("042917"), "never the code: {logs}");
    assert!(
        !logs.contains("alice@example.com"),
        "never the address: {logs}"
    );
}
