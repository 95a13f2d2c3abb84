//! The messages Braid sends, rendered from Tera templates embedded in the binary: a text and
//! an HTML body for each email (`templates/email/`), one text for each SMS (`templates/sms/`).
//! HTML templates are autoescaped; none loads anything from elsewhere.

use crate::pages::{PagesError, ViewSettings, template_sources};
use braid_core::{Email, Phone, Timestamp};
use braid_storage::repo::outbox::{Channel, NewMessage};
use tera::{Context, Tera};

const VERIFICATION_CODE_SUBJECT: &str = "Your verification code";
const IDENTITY_LINKED_SUBJECT: &str = "A new sign-in method was added to your account";
const IDENTITY_UNLINKED_SUBJECT: &str = "A sign-in method was removed from your account";

const VERIFY_EMAIL_SUBJECT: &str = "Confirm your email address";
const PASSWORD_RESET_SUBJECT: &str = "Reset your password";
const ACCOUNT_EXISTS_SUBJECT: &str = "You already have an account";

/// The message templates in the binary, by path under `templates/`.
const EMBEDDED: [(&str, &str); 14] = [
    (
        "email/layout.html",
        include_str!("../../../../templates/email/layout.html"),
    ),
    (
        "email/verification_code.txt",
        include_str!("../../../../templates/email/verification_code.txt"),
    ),
    (
        "email/verification_code.html",
        include_str!("../../../../templates/email/verification_code.html"),
    ),
    (
        "email/identity_linked.txt",
        include_str!("../../../../templates/email/identity_linked.txt"),
    ),
    (
        "email/identity_linked.html",
        include_str!("../../../../templates/email/identity_linked.html"),
    ),
    (
        "email/identity_unlinked.txt",
        include_str!("../../../../templates/email/identity_unlinked.txt"),
    ),
    (
        "email/identity_unlinked.html",
        include_str!("../../../../templates/email/identity_unlinked.html"),
    ),
    (
        "email/verify_email.txt",
        include_str!("../../../../templates/email/verify_email.txt"),
    ),
    (
        "email/verify_email.html",
        include_str!("../../../../templates/email/verify_email.html"),
    ),
    (
        "email/password_reset.txt",
        include_str!("../../../../templates/email/password_reset.txt"),
    ),
    (
        "email/password_reset.html",
        include_str!("../../../../templates/email/password_reset.html"),
    ),
    (
        "email/account_exists.txt",
        include_str!("../../../../templates/email/account_exists.txt"),
    ),
    (
        "email/account_exists.html",
        include_str!("../../../../templates/email/account_exists.html"),
    ),
    (
        "sms/verification_code.txt",
        include_str!("../../../../templates/sms/verification_code.txt"),
    ),
];

pub struct Messages {
    tera: Tera,
}

impl Messages {
    /// Every template compiled now; a file of the same name under `views.templates_dir`
    /// (`email/verification_code.html`, `sms/verification_code.txt`, ...) replaces the
    /// embedded one, and a broken one stops the start.
    pub fn new(views: &ViewSettings) -> Result<Self, PagesError> {
        let mut tera = Tera::default();
        tera.add_raw_templates(template_sources(&EMBEDDED, views)?)?;
        Ok(Self { tera })
    }

    /// A one-time code by email, valid for `minutes_valid` minutes.
    pub fn verification_code_email(
        &self,
        to: &Email,
        code: &str,
        minutes_valid: u64,
    ) -> Result<NewMessage, tera::Error> {
        let mut ctx = Context::new();
        ctx.insert("code", code);
        ctx.insert("minutes_valid", &minutes_valid);
        self.email(to, VERIFICATION_CODE_SUBJECT, "verification_code", &ctx)
    }

    /// A one-time code by SMS, valid for `minutes_valid` minutes.
    pub fn verification_code_sms(
        &self,
        to: &Phone,
        code: &str,
        minutes_valid: u64,
    ) -> Result<NewMessage, tera::Error> {
        let mut ctx = Context::new();
        ctx.insert("code", code);
        ctx.insert("minutes_valid", &minutes_valid);
        Ok(NewMessage {
            channel: Channel::Sms,
            recipient: to.as_str().to_owned(),
            subject: None,
            text_body: self
                .tera
                .render("sms/verification_code.txt", &ctx)?
                .trim()
                .to_owned(),
            html_body: None,
            expires_at: None,
        })
    }

    /// The notice to an account's verified address that a sign-in method (a provider's
    /// identity) was linked to it at `when`.
    pub fn identity_linked_email(
        &self,
        to: &Email,
        provider_display_name: &str,
        when: Timestamp,
    ) -> Result<NewMessage, tera::Error> {
        let ctx = provider_at(provider_display_name, when);
        self.email(to, IDENTITY_LINKED_SUBJECT, "identity_linked", &ctx)
    }

    /// The notice to an account's verified address that a sign-in method was removed from it
    /// at `when`.
    pub fn identity_unlinked_email(
        &self,
        to: &Email,
        provider_display_name: &str,
        when: Timestamp,
    ) -> Result<NewMessage, tera::Error> {
        let ctx = provider_at(provider_display_name, when);
        self.email(to, IDENTITY_UNLINKED_SUBJECT, "identity_unlinked", &ctx)
    }

    /// A local account's code: to confirm its address, or to choose a new password.
    pub fn local_code_email(
        &self,
        to: &Email,
        purpose: crate::local_accounts::Purpose,
        code: &str,
        minutes_valid: u64,
    ) -> Result<NewMessage, tera::Error> {
        let mut ctx = Context::new();
        ctx.insert("code", code);
        ctx.insert("minutes_valid", &minutes_valid);
        let (subject, template) = match purpose {
            crate::local_accounts::Purpose::VerifyEmail => (VERIFY_EMAIL_SUBJECT, "verify_email"),
            crate::local_accounts::Purpose::ResetPassword => {
                (PASSWORD_RESET_SUBJECT, "password_reset")
            }
        };
        self.email(to, subject, template, &ctx)
    }

    /// To an address someone signed up with that already has an account: the sign-up answers
    /// as for a new address, and only the address's owner learns it has an account.
    pub fn account_exists_email(&self, to: &Email) -> Result<NewMessage, tera::Error> {
        self.email(
            to,
            ACCOUNT_EXISTS_SUBJECT,
            "account_exists",
            &Context::new(),
        )
    }

    fn email(
        &self,
        to: &Email,
        subject: &str,
        template: &str,
        ctx: &Context,
    ) -> Result<NewMessage, tera::Error> {
        Ok(NewMessage {
            channel: Channel::Email,
            recipient: to.as_str().to_owned(),
            subject: Some(subject.to_owned()),
            text_body: self.tera.render(&format!("email/{template}.txt"), ctx)?,
            html_body: Some(self.tera.render(&format!("email/{template}.html"), ctx)?),
            expires_at: None,
        })
    }
}

/// The context of a notice about a sign-in method: which provider, and when.
fn provider_at(provider_display_name: &str, when: Timestamp) -> Context {
    let mut ctx = Context::new();
    ctx.insert("provider", provider_display_name);
    ctx.insert("when", &utc_minute(when));
    ctx
}

/// `2026-12-06 14:03 UTC`. The civil date from days since 1970 (H. Hinnant's algorithm), so
/// one timestamp format needs no date library.
fn utc_minute(t: Timestamp) -> String {
    let secs = t.as_secs();
    let days = secs.div_euclid(86_400);
    let minute_of_day = secs.rem_euclid(86_400) / 60;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02} UTC",
        minute_of_day / 60,
        minute_of_day % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn messages() -> Messages {
        Messages::new(&ViewSettings::default()).unwrap()
    }

    fn alice() -> Email {
        Email::parse("alice@example.com").unwrap()
    }

    #[test]
    fn the_code_email_has_the_code_in_both_parts_and_says_what_to_do_if_it_was_not_you() {
        let m = messages()
            .verification_code_email(&alice(), "042917", 10)
            .unwrap();
        assert_eq!(m.channel, Channel::Email);
        assert_eq!(m.recipient, "alice@example.com");
        assert_eq!(m.subject.as_deref(), Some("Your verification code"));
        let html = m.html_body.unwrap();
        for body in [&m.text_body, &html] {
            assert!(body.contains("042917"), "{body}");
            assert!(body.contains("10 minutes"), "{body}");
            assert!(body.contains("Didn't ask for a code?"), "{body}");
        }
        assert!(
            !m.subject.unwrap().contains("042917"),
            "no code in the subject"
        );
    }

    #[test]
    fn the_html_loads_nothing_from_elsewhere() {
        let m = messages();
        for html in [
            m.verification_code_email(&alice(), "042917", 10)
                .unwrap()
                .html_body
                .unwrap(),
            m.identity_linked_email(&alice(), "GitHub", Timestamp::from_millis(0))
                .unwrap()
                .html_body
                .unwrap(),
            m.identity_unlinked_email(&alice(), "GitHub", Timestamp::from_millis(0))
                .unwrap()
                .html_body
                .unwrap(),
        ] {
            let lower = html.to_lowercase();
            for needle in [
                "<img", "<script", "<link", "url(", "src=", "http://", "https://",
            ] {
                assert!(!lower.contains(needle), "{needle} in {html}");
            }
        }
    }

    #[test]
    fn one_minute_is_singular() {
        let m = messages()
            .verification_code_sms(&Phone::parse("+12025550100").unwrap(), "042917", 1)
            .unwrap();
        assert!(
            m.text_body.contains("expires in 1 minute."),
            "{}",
            m.text_body
        );
    }

    #[test]
    fn the_sms_is_short_plain_and_starts_with_the_code() {
        let m = messages()
            .verification_code_sms(&Phone::parse("+12025550100").unwrap(), "042917", 10)
            .unwrap();
        assert_eq!(m.channel, Channel::Sms);
        assert_eq!(m.recipient, "+12025550100");
        assert_eq!((m.subject, m.html_body), (None, None));
        assert!(m.text_body.starts_with("042917 is your verification code."));
        assert!(m.text_body.len() <= 160, "one SMS segment: {}", m.text_body);
        assert!(m.text_body.is_ascii());
    }

    #[test]
    fn the_linked_and_unlinked_notices_name_the_provider_and_the_time_escaped_in_html() {
        let when = Timestamp::from_millis(1_796_565_780_000);
        let m = messages();
        for (notice, subject, says) in [
            (
                m.identity_linked_email(&alice(), "Acme <SSO>", when),
                "A new sign-in method was added to your account",
                "If it was not you",
            ),
            (
                m.identity_unlinked_email(&alice(), "Acme <SSO>", when),
                "A sign-in method was removed from your account",
                "sessions started with it have ended",
            ),
        ] {
            let notice = notice.unwrap();
            assert_eq!(notice.subject.as_deref(), Some(subject));
            assert!(
                notice
                    .text_body
                    .contains("Acme <SSO>, on 2026-12-06 14:03 UTC")
            );
            assert!(notice.text_body.contains(says), "{}", notice.text_body);
            let html = notice.html_body.unwrap();
            assert!(html.contains("Acme &lt;SSO&gt;"), "{html}");
            assert!(!html.contains("<SSO>"));
            assert!(html.contains("Wasn't you?"));
        }
    }

    #[test]
    fn utc_minute_formats_civil_dates() {
        assert_eq!(
            utc_minute(Timestamp::from_millis(0)),
            "1970-01-01 00:00 UTC"
        );
        assert_eq!(
            utc_minute(Timestamp::from_millis(951_782_400_000)),
            "2000-02-29 00:00 UTC"
        );
        assert_eq!(
            utc_minute(Timestamp::from_millis(1_796_565_780_000)),
            "2026-12-06 14:03 UTC"
        );
        assert_eq!(
            utc_minute(Timestamp::from_millis(-60_000)),
            "1969-12-31 23:59 UTC"
        );
    }

    #[test]
    fn a_message_template_in_templates_dir_replaces_the_embedded_one_and_others_stay() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("email")).unwrap();
        std::fs::write(
            dir.path().join("email/verification_code.txt"),
            "Acme code: {{ code }} ({{ minutes_valid }} min)",
        )
        .unwrap();
        std::fs::write(
            dir.path().join("email/verification_code.html"),
            "<p>Acme: {{ code }} {{ '<b>' }}</p>",
        )
        .unwrap();
        let views = ViewSettings {
            templates_dir: Some(dir.path().to_owned()),
        };
        let custom = Messages::new(&views).unwrap();
        let m = custom
            .verification_code_email(&alice(), "042917", 10)
            .unwrap();
        assert_eq!(m.text_body, "Acme code: 042917 (10 min)");
        let html = m.html_body.unwrap();
        assert!(
            html.starts_with("<p>Acme: 042917 &lt;b&gt;</p>"),
            "autoescaped: {html}"
        );
        let sms = custom
            .verification_code_sms(&Phone::parse("+12025550100").unwrap(), "042917", 10)
            .unwrap();
        assert_eq!(
            sms.text_body,
            messages()
                .verification_code_sms(&Phone::parse("+12025550100").unwrap(), "042917", 10)
                .unwrap()
                .text_body,
            "templates the folder lacks stay embedded"
        );
    }

    #[test]
    fn a_broken_message_template_stops_the_start() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("sms")).unwrap();
        std::fs::write(dir.path().join("sms/verification_code.txt"), "{% if %}").unwrap();
        let views = ViewSettings {
            templates_dir: Some(dir.path().to_owned()),
        };
        assert!(Messages::new(&views).is_err());
    }
}
