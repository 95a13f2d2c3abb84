//! Helpers of the manual link tests: accounts that a sign-in matches, the select and verify
//! pages as a browser walks them, and the codes the outbox holds.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use super::flow::*;
use braid_core::{Email, Phone, Timestamp, UserEmail, UserPhone};
use braid_http::Settings;
use braid_http::settings::Resolution;
use braid_storage::repo::credentials;
use braid_storage::repo::users::{self, NewUser};
use reqwest::StatusCode;
use serde_json::Value;

pub const SELECT: &str = "/auth/connect/link/select";
pub const VERIFY: &str = "/auth/connect/link/verify";

/// Manual resolution, and an SMTP server that is never up: messages stay in the outbox,
/// where the tests read them.
pub fn manual(s: &mut Settings) {
    s.account_linking.resolution = Resolution::Manual;
    s.smtp.url = Some("smtp://127.0.0.1:9".into());
}

pub async fn manual_env() -> Env {
    env_with(manual).await
}

/// A user with a verified email (and phone); no password.
pub fn create_user(env: &Env, email: &str, phone: Option<&str>) -> String {
    user_with(env, Some((email, true)), phone.map(|p| (p, true)))
}

/// A user with the given addresses, each verified or not; no password.
pub fn user_with(env: &Env, email: Option<(&str, bool)>, phone: Option<(&str, bool)>) -> String {
    let mut c = env.app.db.db.conn().unwrap();
    let verified = |yes: bool| yes.then(Timestamp::now);
    let new = NewUser {
        display_name: None,
        is_admin: false,
        emails: email
            .map(|(e, v)| UserEmail {
                email: Email::parse(e).unwrap(),
                verified_at: verified(v),
                is_primary: true,
            })
            .into_iter()
            .collect(),
        phones: phone
            .map(|(p, v)| UserPhone {
                phone: Phone::parse(p).unwrap(),
                verified_at: verified(v),
            })
            .into_iter()
            .collect(),
    };
    users::create(&mut c, &new, Timestamp::now())
        .unwrap()
        .id
        .to_string()
}

/// Two accounts the next sign-in matches: one by its email, the other by its phone.
pub fn two_matching_accounts(env: &Env) {
    create_user(env, "alice@example.com", None);
    create_user(env, "other@example.com", Some("+12025550100"));
    env.idp.set_account(braid_providers::testing::FakeAccount {
        sub: "sub-1".into(),
        email: Some("alice@example.com".into()),
        email_verified: Some(Value::Bool(true)),
        phone_number: Some("+12025550100".into()),
        phone_number_verified: Some(Value::Bool(true)),
        ..Default::default()
    });
}

pub fn give_password(env: &Env, user: &str, password: &str) {
    let mut c = env.app.db.db.conn().unwrap();
    let user = braid_core::UserId::parse(user).unwrap();
    let hash = braid_http::passwords::hash(password).unwrap();
    credentials::set_password_hash(&mut c, &user, &hash, Timestamp::now()).unwrap();
}

/// The hidden CSRF field of the first form on a page.
pub fn csrf(html: &str) -> String {
    let start = html.find(r#"name="csrf" value=""#).expect("a csrf field") + 19;
    html[start..].split('"').next().unwrap().to_owned()
}

/// The 6-digit codes sent so far, oldest first.
pub fn sent_codes(env: &Env) -> Vec<String> {
    env.app
        .db
        .texts("SELECT body AS t FROM outbox ORDER BY created_at, id")
        .into_iter()
        .filter_map(|body| {
            body.split(|c: char| !c.is_ascii_digit())
                .find(|run| run.len() == 6)
                .map(str::to_owned)
        })
        .collect()
}

/// The value of the browser's `braid_link` cookie.
pub fn link_cookie(env: &Env) -> String {
    use reqwest::cookie::CookieStore;
    let url = url::Url::parse(&env.url(SELECT)).unwrap();
    let header = env.app.jar.cookies(&url).expect("cookies");
    header
        .to_str()
        .unwrap()
        .split("; ")
        .find_map(|c| c.strip_prefix("braid_link="))
        .expect("braid_link cookie")
        .to_owned()
}

pub fn recipients(env: &Env) -> Vec<String> {
    env.app
        .db
        .texts("SELECT recipient AS t FROM outbox ORDER BY created_at, id")
}

impl Env {
    /// Signs in as a new identity with `email` (verified at the provider) and follows the
    /// callback: the landing (a 303 to the select page when a manual link starts).
    pub async fn arrive(&self, sub: &str, email: &str) -> Landing {
        self.login_as(sub, email, true).await
    }

    pub async fn get_page(&self, path: &str) -> Landing {
        land(self.app.client.get(self.url(path)).send().await.unwrap()).await
    }

    pub async fn post_form(&self, path: &str, form: &[(&str, &str)]) -> Landing {
        land(
            self.app
                .client
                .post(self.url(path))
                .form(form)
                .send()
                .await
                .unwrap(),
        )
        .await
    }

    /// Arrives and opens the select page; its HTML.
    pub async fn at_select(&self, sub: &str, email: &str) -> String {
        let landing = self.arrive(sub, email).await;
        assert_eq!(landing.status, StatusCode::SEE_OTHER, "{}", landing.body);
        assert_eq!(landing.location.as_ref().unwrap().path(), SELECT);
        let page = self.get_page(SELECT).await;
        assert_eq!(page.status, 200, "{}", page.body);
        page.body
    }

    /// Picks the first account; the verify page's HTML.
    pub async fn at_verify(&self, sub: &str, email: &str) -> String {
        let select = self.at_select(sub, email).await;
        let token = csrf(&select);
        let picked = self
            .post_form(SELECT, &[("csrf", &token), ("choice", "0")])
            .await;
        assert_eq!(picked.status, 303, "{}", picked.body);
        assert_eq!(picked.location.as_ref().unwrap().path(), VERIFY);
        let page = self.get_page(VERIFY).await;
        assert_eq!(page.status, 200, "{}", page.body);
        page.body
    }

    pub async fn enter_password(&self, page: &str, password: &str) -> Landing {
        self.post_form(
            VERIFY,
            &[
                ("csrf", &csrf(page)),
                ("method", "password"),
                ("password", password),
            ],
        )
        .await
    }

    pub async fn enter_code(&self, page: &str, code: &str) -> Landing {
        self.post_form(
            VERIFY,
            &[("csrf", &csrf(page)), ("method", "code"), ("code", code)],
        )
        .await
    }
}

pub fn assert_redirected_to_app_with_code(landing: &Landing) -> String {
    assert_eq!(landing.status, 303, "{}", landing.body);
    let to = landing.location.as_ref().unwrap();
    assert!(to.as_str().starts_with(REDIRECT_URI), "{to}");
    assert_eq!(landing.param("state").as_deref(), Some("app-state-1"));
    landing.param("code").expect("an exchange code")
}
