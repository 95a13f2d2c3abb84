#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use braid_http::{Application, Settings, StartupError};
use support::spawn_app;

#[tokio::test]
async fn healthz_and_readyz_answer_on_a_migrated_database() {
    let app = spawn_app().await;
    let health = app
        .client
        .get(format!("{}/healthz", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    let ready = app
        .client
        .get(format!("{}/readyz", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), 200);
    assert_eq!(
        ready.json::<serde_json::Value>().await.unwrap()["status"],
        "ready"
    );
}

#[tokio::test]
async fn start_refuses_an_unmigrated_database_when_auto_migration_is_off() {
    let dir = tempfile::tempdir().unwrap();
    let mut settings = Settings::default();
    settings.database.url = format!("sqlite://{}", dir.path().join("b.db").display());
    settings.server.port = 0;
    settings.server.migrate_on_start = false;
    let err = Application::build(settings)
        .await
        .err()
        .expect("must not start");
    assert!(matches!(err, StartupError::NotMigrated), "{err}");
    assert!(err.to_string().contains("braid migrate"));
}

#[tokio::test]
async fn every_response_carries_the_security_headers_and_a_request_id() {
    let app = spawn_app().await;
    for path in ["/healthz", "/no-such-page"] {
        let r = app
            .client
            .get(format!("{}{path}", app.address))
            .send()
            .await
            .unwrap();
        let h = r.headers();
        assert_eq!(h["x-frame-options"], "DENY");
        assert!(
            h["content-security-policy"]
                .to_str()
                .unwrap()
                .contains("frame-ancestors 'none'")
        );
        assert_eq!(h["referrer-policy"], "no-referrer");
        assert_eq!(h["x-content-type-options"], "nosniff");
        assert_eq!(h["cache-control"], "no-store");
        assert_eq!(h["x-request-id"].to_str().unwrap().len(), 36);
        assert!(h.get("access-control-allow-origin").is_none());
    }
}

#[tokio::test]
async fn unknown_routes_get_a_json_problem_not_a_stack_trace() {
    let app = spawn_app().await;
    let r = app
        .client
        .get(format!("{}/admin/../etc/passwd", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    assert_eq!(r.headers()["content-type"], "application/problem+json");
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["status"], 404);
}

#[tokio::test]
async fn h01_huge_headers_are_refused_quickly() {
    let app = spawn_app().await;
    let cookie = format!("c={}", "x".repeat(64 * 1024));
    let r = app
        .client
        .get(format!("{}/healthz", app.address))
        .header("cookie", cookie)
        .send()
        .await;
    match r {
        Ok(resp) => assert!(
            matches!(resp.status().as_u16(), 400 | 431),
            "{}",
            resp.status()
        ),
        // The server may close the connection without a response; that is also a refusal.
        Err(e) => assert!(e.is_request() || e.is_connect() || e.is_body(), "{e}"),
    }
    // And the server is still there.
    let ok = app
        .client
        .get(format!("{}/healthz", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
}

#[tokio::test]
async fn two_instances_on_one_database_share_keys() {
    let first = spawn_app().await;
    let mut settings = support::test_settings(&first.db);
    settings.server.migrate_on_start = true;
    let second = Application::build(settings).await.unwrap();
    drop(second);
    let mut c = first.db.db.conn().unwrap();
    let published =
        braid_storage::repo::keys::published(&mut c, braid_core::Timestamp::now()).unwrap();
    assert_eq!(
        published.len(),
        1,
        "the second start reused the first one's key"
    );
}

#[tokio::test]
async fn h02_huge_query_strings_are_refused_before_routing() {
    let app = spawn_app().await;
    let r = app
        .client
        .get(format!(
            "{}/healthz?state={}",
            app.address,
            "a".repeat(20 * 1024)
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 414);
}
