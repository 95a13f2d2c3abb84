//! Email over SMTP (lettre, pooled connections).
//!
//! `smtps://HOST[:465]`: implicit TLS. `smtp://HOST[:25]`: STARTTLS when the server offers it,
//! and required when credentials are configured, so a password never crosses the network in
//! clear. To a loopback address `smtp://` is plain SMTP (development sinks such as mailpit).

use super::SendError;
use crate::settings::SmtpSettings;
use braid_storage::repo::outbox::ClaimedMessage;
use lettre::message::{Mailbox, MultiPart, SinglePart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use std::net::IpAddr;
use std::time::Duration;

/// Per SMTP command; a whole send is bounded by the worker.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(15);

pub struct SmtpSender {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    /// The password, kept only to blank it out of any error text a server might echo.
    password: Option<String>,
}

impl std::fmt::Debug for SmtpSender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmtpSender")
            .field("from", &self.from.to_string())
            .finish_non_exhaustive()
    }
}

/// `smtp.*` settings that cannot work, one line each (the URL itself is checked by
/// `Settings::delivery_problems`).
pub fn problems(s: &SmtpSettings) -> Vec<String> {
    let mut out = Vec::new();
    if s.from.parse::<Mailbox>().is_err() {
        out.push(format!(
            "smtp.from: {:?} is not an address (\"Name <user@example.com>\" or \"user@example.com\")",
            s.from
        ));
    }
    let has_password = s.password.is_some() || s.password_file.is_some();
    match (s.username.is_some(), has_password) {
        (true, false) => out.push("smtp.password: required when smtp.username is set".into()),
        (false, true) => out.push("smtp.username: required when smtp.password is set".into()),
        _ => {}
    }
    out
}

impl SmtpSender {
    /// `None` when `smtp.url` is unset: email is unavailable. Settings are expected to have
    /// passed `Settings::problems` (and their secret files to be loaded).
    pub fn from_settings(s: &SmtpSettings) -> Result<Option<Self>, String> {
        let Some(raw) = &s.url else {
            return Ok(None);
        };
        let url = url::Url::parse(raw).map_err(|e| format!("smtp.url: {e}"))?;
        let host = url
            .host_str()
            .ok_or("smtp.url: no host")?
            .trim_matches(['[', ']'])
            .to_owned();
        let credentials = match (&s.username, &s.password) {
            (Some(user), Some(password)) => {
                Some(Credentials::new(user.clone(), password.expose().to_owned()))
            }
            _ => None,
        };
        let tls_parameters =
            || TlsParameters::new(host.clone()).map_err(|e| format!("smtp.url: TLS: {e}"));
        let (tls, default_port) = match url.scheme() {
            "smtps" => (Tls::Wrapper(tls_parameters()?), 465),
            "smtp" if is_loopback(&host) => (Tls::None, 25),
            "smtp" if credentials.is_some() => (Tls::Required(tls_parameters()?), 25),
            "smtp" => (Tls::Opportunistic(tls_parameters()?), 25),
            other => return Err(format!("smtp.url: unsupported scheme {other:?}")),
        };
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host)
            .port(url.port().unwrap_or(default_port))
            .tls(tls)
            .timeout(Some(COMMAND_TIMEOUT));
        if let Some(c) = credentials {
            builder = builder.credentials(c);
        }
        let from = s
            .from
            .parse::<Mailbox>()
            .map_err(|e| format!("smtp.from: {e}"))?;
        Ok(Some(Self {
            transport: builder.build(),
            from,
            password: s.password.as_ref().map(|p| p.expose().to_owned()),
        }))
    }

    pub async fn send(&self, claimed: &ClaimedMessage) -> Result<(), SendError> {
        let message = self.build(claimed)?;
        match self.transport.send(message).await {
            Ok(_) => Ok(()),
            // A 5xx is the server's final word on this message (unknown recipient, refused
            // content); everything else (4xx, connection, TLS, timeouts) may pass later.
            Err(e) if e.is_permanent() => Err(SendError::permanent(self.scrub(&e.to_string()))),
            Err(e) => Err(SendError::transient(self.scrub(&e.to_string()))),
        }
    }

    fn build(&self, claimed: &ClaimedMessage) -> Result<Message, SendError> {
        let m = &claimed.message;
        let to: Mailbox = m
            .recipient
            .parse()
            .map_err(|_| SendError::permanent("the recipient is not an email address"))?;
        // The outbox id in the Message-ID: a message sent twice (a crash between sending and
        // marking it sent) can be recognised as one.
        let domain = self.from.email.domain();
        let builder = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(m.subject.clone().unwrap_or_default())
            .message_id(Some(format!("<{}@{domain}>", claimed.id)));
        let built = match &m.html_body {
            Some(html) => builder.multipart(MultiPart::alternative_plain_html(
                m.text_body.clone(),
                html.clone(),
            )),
            None => builder.singlepart(SinglePart::plain(m.text_body.clone())),
        };
        built.map_err(|e| SendError::permanent(format!("cannot build the email: {e}")))
    }

    fn scrub(&self, text: &str) -> String {
        match &self.password {
            Some(p) if !p.is_empty() => text.replace(p.as_str(), "***"),
            _ => text.to_owned(),
        }
    }
}

fn is_loopback(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost")
        || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;
    use braid_core::Secret;

    fn settings(url: &str) -> SmtpSettings {
        SmtpSettings {
            url: Some(url.into()),
            ..SmtpSettings::default()
        }
    }

    #[test]
    fn unset_url_means_no_email() {
        assert!(
            SmtpSender::from_settings(&SmtpSettings::default())
                .unwrap()
                .is_none()
        );
    }

    #[tokio::test]
    async fn every_url_form_builds() {
        for url in [
            "smtp://127.0.0.1:1025",
            "smtp://[::1]:1025",
            "smtp://localhost",
            "smtp://mail.example.com:587",
            "smtps://mail.example.com",
        ] {
            assert!(
                SmtpSender::from_settings(&settings(url)).unwrap().is_some(),
                "{url}"
            );
        }
    }

    #[test]
    fn from_and_credentials_are_checked() {
        let mut s = settings("smtp://mail.example.com:587");
        assert_eq!(problems(&s), Vec::<String>::new());
        s.from = "not an address".into();
        s.username = Some("braid".into());
        let p = problems(&s);
        assert!(p[0].starts_with("smtp.from:"), "{p:?}");
        assert!(p[1].starts_with("smtp.password: required"), "{p:?}");
        s.from = "Braid <noreply@example.com>".into();
        s.password = Some(Secret::new("pw"));
        assert_eq!(problems(&s), Vec::<String>::new());
    }

    #[tokio::test]
    async fn a_password_echoed_in_an_error_is_blanked() {
        let mut s = settings("smtp://mail.example.com:587");
        s.username = Some("braid".into());
        s.password = Some(Secret::new("hunter2"));
        let sender = SmtpSender::from_settings(&s).unwrap().unwrap();
        assert_eq!(
            sender.scrub("535 bad password hunter2"),
            "535 bad password ***"
        );
    }
}
