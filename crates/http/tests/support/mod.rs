//! Starting the application on a random port over a fresh test database.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use braid_http::{Application, Settings};
use braid_storage::test_support::TestDb;

pub struct TestApp {
    pub address: String,
    pub client: reqwest::Client,
    pub db: TestDb,
}

pub fn test_settings(db: &TestDb) -> Settings {
    let mut settings = Settings::default();
    settings.database = db.settings.clone();
    settings.server.port = 0;
    settings.server.workers = Some(1);
    settings
}

pub async fn spawn_app_with(configure: impl FnOnce(&mut Settings)) -> TestApp {
    let db = TestDb::new().unwrap();
    let mut settings = test_settings(&db);
    configure(&mut settings);
    let app = Application::build(settings).await.unwrap();
    let address = format!("http://127.0.0.1:{}", app.port());
    tokio::spawn(app.run_until_stopped());
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .cookie_store(true)
        .build()
        .unwrap();
    TestApp {
        address,
        client,
        db,
    }
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}
