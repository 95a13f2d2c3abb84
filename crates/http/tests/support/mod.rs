//! Starting the application on a random port over a fresh test database.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

pub mod flow;
pub mod link;
pub mod outbox;
pub mod raw;
pub mod smtp_sink;
pub mod webhook_receiver;

use braid_http::{Application, Settings};
use braid_storage::test_support::TestDb;

/// What the test browser says it is (audit rows record it).
pub const USER_AGENT: &str = "braid-tests/1 (audit)";

pub struct TestApp {
    pub address: String,
    /// `http://127.0.0.1:{port}` of the `metrics.listen` listener, when one is configured.
    pub metrics_address: Option<String>,
    pub client: reqwest::Client,
    pub jar: std::sync::Arc<reqwest::cookie::Jar>,
    pub db: TestDb,
}

impl TestApp {
    /// The value of the browser's `braid_flow` cookie.
    pub fn flow_cookie(&self) -> String {
        use reqwest::cookie::CookieStore;
        let url = url::Url::parse(&format!("{}/auth/connect/x/callback", self.address)).unwrap();
        let header = self.jar.cookies(&url).expect("a flow cookie");
        header
            .to_str()
            .unwrap()
            .split("; ")
            .find_map(|c| c.strip_prefix("braid_flow="))
            .expect("braid_flow cookie")
            .to_owned()
    }
}

pub fn test_settings(db: &TestDb) -> Settings {
    let mut settings = Settings::default();
    settings.database = db.settings.clone();
    // A known port, so the public URL (and the callback URL given to providers) is right.
    settings.server.port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    settings.server.workers = Some(1);
    settings
}

pub async fn spawn_app_with(configure: impl FnOnce(&mut Settings)) -> TestApp {
    let db = TestDb::new().unwrap();
    let mut settings = test_settings(&db);
    configure(&mut settings);
    let app = Application::build(settings).await.unwrap();
    let address = format!("http://127.0.0.1:{}", app.port());
    let metrics_address = app
        .metrics_port()
        .map(|port| format!("http://127.0.0.1:{port}"));
    tokio::spawn(app.run_until_stopped());
    let jar = std::sync::Arc::new(reqwest::cookie::Jar::default());
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .cookie_provider(jar.clone())
        .user_agent(USER_AGENT)
        .build()
        .unwrap();
    TestApp {
        address,
        metrics_address,
        client,
        jar,
        db,
    }
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}
