//! The whole configuration, section by section. Each section knows its defaults and the
//! problems an operator can fix; loading the layers (file, environment) is the server's job.

use crate::limiter::LimitSettings;
pub use crate::tokens::keyring::KeySettings;
use braid_core::Secret;
pub use braid_core::linking::{ConflictAction, MatchBy, OnAmbiguity, Resolution};
use braid_providers::ProviderSettings;
use braid_storage::DatabaseSettings;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Settings {
    pub server: ServerSettings,
    pub log: LogSettings,
    pub database: DatabaseSettings,
    pub federated_login: FederatedLoginSettings,
    pub account_linking: AccountLinkingSettings,
    pub clients: BTreeMap<String, ClientSettings>,
    pub tokens: TokenSettings,
    pub keys: KeySettings,
    pub sessions: SessionSettings,
    pub smtp: SmtpSettings,
    pub sms: SmsSettings,
    pub limits: LimitSettings,
    pub local_accounts: crate::local_accounts::LocalAccountSettings,
    pub views: crate::pages::ViewSettings,
    pub metrics: MetricsSettings,
    /// Outgoing webhooks, by name.
    pub webhooks: BTreeMap<String, crate::webhooks::WebhookSettings>,
    pub admin: crate::admin::AdminSettings,
    /// `braid serve --dev` (see [`crate::dev::enable`]); never read from a file or the
    /// environment.
    #[serde(skip)]
    pub dev: Option<crate::dev::DevMode>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct MetricsSettings {
    /// When set, `/metrics` answers only `Authorization: Bearer <token>`.
    pub bearer_token: Option<Secret>,
    pub bearer_token_file: Option<PathBuf>,
    /// `host:port` of a second listener that serves `/metrics` (and `/healthz`); the main
    /// listener then has no `/metrics`. Unset: `/metrics` on the main listener.
    pub listen: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ServerSettings {
    pub host: String,
    pub port: u16,
    /// The URL browsers and apps reach Braid at; default `http://{host}:{port}`.
    pub public_url: Option<String>,
    /// Worker threads; default: one per core.
    pub workers: Option<usize>,
    /// Apply pending database migrations when `braid serve` starts.
    pub migrate_on_start: bool,
    /// Reverse proxies (addresses or networks) whose forwarding header names the client's
    /// address; see [`crate::client_addr`].
    pub trusted_proxies: Vec<String>,
    pub client_ip_header: crate::client_addr::ClientIpHeader,
}

impl Default for ServerSettings {
    fn default() -> Self {
        Self {
            host: "127.0.0.1".into(),
            port: 8080,
            public_url: None,
            workers: None,
            migrate_on_start: true,
            trusted_proxies: Vec::new(),
            client_ip_header: Default::default(),
        }
    }
}

impl ServerSettings {
    pub fn client_addrs(&self) -> Result<crate::client_addr::ClientAddrs, String> {
        crate::client_addr::ClientAddrs::new(&self.trusted_proxies, self.client_ip_header)
    }

    pub fn public_url(&self) -> String {
        match &self.public_url {
            Some(u) => u.trim_end_matches('/').to_owned(),
            None => format!("http://{}:{}", self.host, self.port),
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Pretty,
    Json,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct LogSettings {
    pub format: LogFormat,
    /// An EnvFilter directive (`info`, `braid_http=debug,info`); `RUST_LOG` wins when set.
    pub level: String,
}

impl Default for LogSettings {
    fn default() -> Self {
        Self {
            format: LogFormat::Pretty,
            level: "info".into(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct FederatedLoginSettings {
    /// Where the browser goes after a login started without `client_id`/`redirect_uri`
    /// (a path on `default_client`'s origin or one of its redirect URIs).
    pub redirect_location: String,
    /// The client used when a login names none.
    pub default_client: Option<String>,
    /// How long a started upstream login may take, in seconds.
    pub flow_expiration: u64,
    pub providers: BTreeMap<String, ProviderSettings>,
}

impl Default for FederatedLoginSettings {
    fn default() -> Self {
        Self {
            redirect_location: "/".into(),
            default_client: None,
            flow_expiration: 600,
            providers: BTreeMap::new(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct LinkRoutes {
    pub select: Vec<String>,
    pub verify: Vec<String>,
}

impl LinkRoutes {
    /// `/auth/connect/link/select` with the default segments.
    pub fn select_path(&self) -> String {
        format!("/auth/connect/{}", self.select.join("/"))
    }

    pub fn verify_path(&self) -> String {
        format!("/auth/connect/{}", self.verify.join("/"))
    }
}

impl Default for LinkRoutes {
    fn default() -> Self {
        Self {
            select: vec!["link".into(), "select".into()],
            verify: vec!["link".into(), "verify".into()],
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct AccountLinkingSettings {
    pub resolution: Resolution,
    pub match_by: Vec<MatchBy>,
    pub on_ambiguity: OnAmbiguity,
    pub conflict_action: ConflictAction,
    /// Lifetime of a manual link flow, in seconds.
    pub state_expiration: u64,
    pub routes: LinkRoutes,
    pub codes: crate::flows::link_proof::CodeSettings,
    /// A signed-in user may connect another provider only this many seconds after signing in
    /// (the access token's `auth_time`); older sign-ins must sign in again first.
    pub connect_max_age: u64,
    /// Lifetime of a link ticket (`POST /auth/link-tickets`), in seconds.
    pub link_ticket_ttl: u64,
}

impl Default for AccountLinkingSettings {
    fn default() -> Self {
        Self {
            resolution: Resolution::Disabled,
            match_by: vec![MatchBy::Email, MatchBy::Phone],
            on_ambiguity: OnAmbiguity::Manual,
            conflict_action: ConflictAction::Error,
            state_expiration: 600,
            routes: LinkRoutes::default(),
            codes: Default::default(),
            connect_max_age: 300,
            link_ticket_ttl: 120,
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ClientSettings {
    /// Exact redirect URIs the exchange code may be delivered to.
    pub redirect_uris: Vec<String>,
    /// Confidential clients authenticate with this secret; public clients have none and use PKCE.
    pub secret: Option<Secret>,
    pub secret_file: Option<PathBuf>,
    pub public: bool,
    /// Where a sign-in that fails after this client and its redirect URI are checked ends.
    pub errors: ErrorDisplay,
    /// Upstream claims (`groups`, `picture`, `locale`, ...) of the identity a sign-in came
    /// through that this app sees in `/auth/me` (`claims`); none by default.
    pub claims: Vec<String>,
    /// Also put those claims in the access token, under `braid_claims`.
    pub claims_in_token: bool,
}

/// `redirect`: back to the app's redirect URI with `error` and `error_code`; `page`: on
/// Braid's error page.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ErrorDisplay {
    #[default]
    Redirect,
    Page,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum SigningAlg {
    #[default]
    ES256,
    EdDSA,
    RS256,
}

impl SigningAlg {
    pub fn as_str(self) -> &'static str {
        match self {
            SigningAlg::ES256 => "ES256",
            SigningAlg::EdDSA => "EdDSA",
            SigningAlg::RS256 => "RS256",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct TokenSettings {
    /// `iss` of Braid's tokens; default: the public URL.
    pub issuer: Option<String>,
    pub signing_alg: SigningAlg,
    /// Access token lifetime in seconds (at most 900).
    pub access_token_ttl: u64,
    /// Refresh token lifetime in seconds, renewed at each rotation.
    pub refresh_token_ttl: u64,
    /// Absolute lifetime of a refresh token family in seconds, whatever the rotations.
    pub refresh_token_max_lifetime: u64,
    /// Exchange code lifetime in seconds (at most 600).
    pub exchange_code_ttl: u64,
}

impl Default for TokenSettings {
    fn default() -> Self {
        Self {
            issuer: None,
            signing_alg: SigningAlg::ES256,
            access_token_ttl: 900,
            refresh_token_ttl: 14 * 24 * 3600,
            refresh_token_max_lifetime: 30 * 24 * 3600,
            exchange_code_ttl: 60,
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SessionStoreKind {
    #[default]
    Database,
    Redis,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct SessionSettings {
    /// Keep browser sessions (and manual link flow state) server-side; otherwise flow state
    /// lives in an encrypted cookie.
    pub enabled: bool,
    pub store: SessionStoreKind,
    pub redis_url: Option<String>,
    pub cookie_name: String,
    /// Session lifetime in seconds.
    pub ttl: u64,
    /// `Secure` cookies; default: when the public URL is https.
    pub cookie_secure: Option<bool>,
}

impl Default for SessionSettings {
    fn default() -> Self {
        Self {
            enabled: false,
            store: SessionStoreKind::Database,
            redis_url: None,
            cookie_name: "braid_session".into(),
            ttl: 24 * 3600,
            cookie_secure: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SmtpSettings {
    /// `smtp://host:port` (STARTTLS when offered), `smtps://host:465`; unset: no email is sent.
    pub url: Option<String>,
    pub username: Option<String>,
    pub password: Option<Secret>,
    pub password_file: Option<PathBuf>,
    /// From header of every message.
    pub from: String,
}

impl Default for SmtpSettings {
    fn default() -> Self {
        Self {
            url: None,
            username: None,
            password: None,
            password_file: None,
            from: "Braid <noreply@localhost.localdomain>".into(),
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SmsProvider {
    /// No SMS: codes go by email only.
    #[default]
    None,
    /// POST each message to `sms.webhook_url`.
    Webhook,
    /// Development: log that an SMS would go to a (masked) number; nothing is sent and the
    /// text, which holds the code, is never logged.
    Log,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SmsSettings {
    pub provider: SmsProvider,
    /// `webhook`: Braid POSTs `{"to": "+E164", "body": "..."}` here.
    pub webhook_url: Option<String>,
    /// Sent as `Authorization: Bearer …` to the webhook.
    pub webhook_token: Option<Secret>,
    pub webhook_token_file: Option<PathBuf>,
}

impl Settings {
    /// Every problem an operator can fix, one line each, prefixed with the setting's path.
    pub fn problems(&self) -> Vec<String> {
        let mut out = self.database.problems();
        out.extend(self.server_problems());
        for (id, p) in &self.federated_login.providers {
            out.extend(p.problems(id));
        }
        out.extend(self.client_problems());
        out.extend(self.token_problems());
        out.extend(self.keys.problems());
        out.extend(self.linking_problems());
        out.extend(self.session_problems());
        out.extend(self.delivery_problems());
        out.extend(self.limits.problems());
        out.extend(self.local_accounts.problems(self.smtp.url.is_some()));
        out.extend(self.metrics_problems());
        out.extend(crate::webhooks::settings::problems(&self.webhooks));
        out.extend(self.admin.problems());
        out
    }

    fn metrics_problems(&self) -> Vec<String> {
        let m = &self.metrics;
        let mut out = Vec::new();
        // Whether both were set is told by `load_secret_files`, which fills one from the other.
        if let Some(t) = &m.bearer_token
            && t.expose().len() < 16
        {
            out.push("metrics.bearer_token: must be at least 16 characters".into());
        }
        if let Some(listen) = &m.listen {
            match listen.parse::<std::net::SocketAddr>() {
                Ok(addr)
                    if addr.ip().to_string() == self.server.host
                        && addr.port() == self.server.port
                        && addr.port() != 0 =>
                {
                    out.push(
                        "metrics.listen: must differ from server.host:server.port".into(),
                    );
                }
                Ok(_) => {}
                Err(_) => out.push(format!(
                    "metrics.listen: {listen:?} is not an IP address and port (e.g. \"127.0.0.1:9090\")"
                )),
            }
        }
        out
    }

    fn server_problems(&self) -> Vec<String> {
        let mut out = Vec::new();
        if let Some(u) = &self.server.public_url {
            match url::Url::parse(u) {
                Ok(p) if matches!(p.scheme(), "http" | "https") && p.host_str().is_some() => {}
                _ => out.push(format!("server.public_url: {u:?} is not an http(s) URL")),
            }
        }
        if self.server.workers == Some(0) {
            out.push("server.workers: must be at least 1".into());
        }
        if self.server.host.trim().is_empty() {
            out.push("server.host: missing".into());
        }
        if let Err(bad) = self.server.client_addrs() {
            out.push(format!(
                "server.trusted_proxies: {bad:?} is not an IP address or network (e.g. \"10.0.0.0/8\")"
            ));
        }
        out
    }

    fn client_problems(&self) -> Vec<String> {
        let mut out = Vec::new();
        for (id, c) in &self.clients {
            let at = format!("clients.{id}");
            if id == crate::clients::CONSOLE_CLIENT_ID {
                out.push(format!(
                    "{at}: this client id is reserved for Braid's admin console"
                ));
            }
            if id.is_empty() || id.len() > 128 || !id.bytes().all(|b| b.is_ascii_graphic()) {
                out.push(format!(
                    "{at}: client id must be 1-128 printable ASCII characters"
                ));
            }
            if c.redirect_uris.is_empty() {
                out.push(format!("{at}.redirect_uris: at least one is required"));
            }
            for name in &c.claims {
                if let Some(problem) = braid_core::app_claim_problem(name) {
                    out.push(format!("{at}.claims: {problem}"));
                }
            }
            if c.claims_in_token && c.claims.is_empty() {
                out.push(format!(
                    "{at}.claims_in_token: list the claims to put in the token in {at}.claims"
                ));
            }
            for uri in &c.redirect_uris {
                if let Err(e) = check_redirect_uri(uri) {
                    out.push(format!("{at}.redirect_uris: {e}"));
                }
            }
            let has_secret =
                c.secret.as_ref().is_some_and(|s| !s.is_empty()) || c.secret_file.is_some();
            match (c.public, has_secret) {
                (true, true) => out.push(format!("{at}: a public client has no secret")),
                (false, false) => out.push(format!(
                    "{at}.secret: missing secret (or set public = true)"
                )),
                _ => {}
            }
            if c.secret.is_some() && c.secret_file.is_some() {
                out.push(format!("{at}: set secret or secret_file, not both"));
            }
            if let Some(s) = &c.secret
                && !s.is_empty()
                && s.expose().len() < 32
            {
                out.push(format!("{at}.secret: must be at least 32 characters"));
            }
        }
        if let Some(d) = &self.federated_login.default_client {
            match self.clients.get(d) {
                None => out.push(format!(
                    "federated_login.default_client: no client {d:?} in [clients]"
                )),
                Some(c) => {
                    let allowed = self
                        .default_redirect()
                        .is_some_and(|(_, target)| c.redirect_uris.contains(&target));
                    if !allowed {
                        out.push(format!(
                            "federated_login.redirect_location: {:?} must resolve to one of clients.{d}.redirect_uris",
                            self.federated_login.redirect_location
                        ));
                    }
                }
            }
        }
        out
    }

    fn token_problems(&self) -> Vec<String> {
        let t = &self.tokens;
        let mut out = Vec::new();
        if !(1..=900).contains(&t.access_token_ttl) {
            out.push("tokens.access_token_ttl: must be between 1 and 900 seconds".into());
        }
        if !(1..=600).contains(&t.exchange_code_ttl) {
            out.push("tokens.exchange_code_ttl: must be between 1 and 600 seconds".into());
        }
        if t.refresh_token_ttl == 0 || t.refresh_token_ttl > t.refresh_token_max_lifetime {
            out.push("tokens.refresh_token_ttl: must be at least 1 and at most refresh_token_max_lifetime".into());
        }
        if let Some(iss) = &t.issuer
            && url::Url::parse(iss).is_err()
        {
            out.push(format!("tokens.issuer: {iss:?} is not a URL"));
        }
        out
    }

    fn linking_problems(&self) -> Vec<String> {
        let l = &self.account_linking;
        let mut out = Vec::new();
        // SECURITY-CASES G11: a link flow may not outlive 30 minutes.
        if !(60..=1800).contains(&l.state_expiration) {
            out.push(
                "account_linking.state_expiration: must be between 60 and 1800 seconds".into(),
            );
        }
        if !(10..=3600).contains(&l.connect_max_age) {
            out.push("account_linking.connect_max_age: must be between 10 and 3600 seconds".into());
        }
        if !(10..=600).contains(&l.link_ticket_ttl) {
            out.push("account_linking.link_ticket_ttl: must be between 10 and 600 seconds".into());
        }
        if l.resolution != Resolution::Disabled && l.match_by.is_empty() {
            out.push("account_linking.match_by: empty, so linking can never find anyone".into());
        }
        for (name, path) in [("select", &l.routes.select), ("verify", &l.routes.verify)] {
            let segment_ok = |s: &String| {
                !s.is_empty()
                    && s.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            };
            if path.is_empty() || !path.iter().all(segment_ok) {
                out.push(format!(
                    "account_linking.routes.{name}: path segments of letters, digits, - and _"
                ));
            }
        }
        if l.routes.select == l.routes.verify {
            out.push("account_linking.routes: select and verify must differ".into());
        }
        for (name, path) in [("select", &l.routes.select), ("verify", &l.routes.verify)] {
            let taken = self.federated_login.providers.keys().find(|id| {
                matches!(path.as_slice(), [one] if one == *id)
                    || matches!(path.as_slice(), [one, two] if one == *id && two == "callback")
            });
            if let Some(id) = taken {
                out.push(format!(
                    "account_linking.routes.{name}: the path is provider {id}'s route; choose other segments"
                ));
            }
        }
        out.extend(l.codes.problems());
        if !(60..=3600).contains(&self.federated_login.flow_expiration) {
            out.push("federated_login.flow_expiration: must be between 60 and 3600 seconds".into());
        }
        out
    }

    fn session_problems(&self) -> Vec<String> {
        let s = &self.sessions;
        let mut out = Vec::new();
        if s.enabled && s.ttl < self.account_linking.state_expiration {
            out.push(format!(
                "sessions.ttl: must be at least account_linking.state_expiration ({} s), or a session ends before the account choice it holds",
                self.account_linking.state_expiration
            ));
        }
        if s.ttl == 0 || s.ttl > 30 * 24 * 3600 {
            out.push("sessions.ttl: must be between 1 second and 30 days".into());
        }
        if s.enabled && s.store == SessionStoreKind::Redis {
            match &s.redis_url {
                Some(u) if u.starts_with("redis://") || u.starts_with("rediss://") => {}
                Some(_) => {
                    out.push("sessions.redis_url: must start with redis:// or rediss://".into())
                }
                None => {
                    out.push("sessions.redis_url: required when sessions.store = \"redis\"".into())
                }
            }
        }
        if s.cookie_name.is_empty()
            || !s
                .cookie_name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        {
            out.push("sessions.cookie_name: letters, digits, _ and - only".into());
        }
        out
    }

    fn delivery_problems(&self) -> Vec<String> {
        let mut out = Vec::new();
        if let Some(u) = &self.smtp.url {
            match url::Url::parse(u) {
                Ok(p) if matches!(p.scheme(), "smtp" | "smtps") && p.host_str().is_some() => {
                    if p.password().is_some() {
                        out.push("smtp.url: put the password in smtp.password or smtp.password_file, not the URL".into());
                    }
                }
                _ => out.push(format!(
                    "smtp.url: {:?} must be smtp://host:port or smtps://host:port",
                    braid_storage::redact(u)
                )),
            }
        }
        if self.smtp.password.is_some() && self.smtp.password_file.is_some() {
            out.push("smtp: set password or password_file, not both".into());
        }
        if self.smtp.url.is_some() {
            out.extend(crate::outbox::smtp::problems(&self.smtp));
        }
        if self.sms.provider == SmsProvider::Webhook {
            match &self.sms.webhook_url {
                Some(u)
                    if url::Url::parse(u)
                        .is_ok_and(|p| braid_providers::http_client::is_allowed_url(&p)) => {}
                Some(_) => out.push(
                    "sms.webhook_url: must be https (plain http only to a loopback address)".into(),
                ),
                None => {
                    out.push("sms.webhook_url: required when sms.provider = \"webhook\"".into())
                }
            }
            if self.sms.webhook_token.is_some() && self.sms.webhook_token_file.is_some() {
                out.push("sms: set webhook_token or webhook_token_file, not both".into());
            }
            if self.sms.webhook_token.is_none() && self.sms.webhook_token_file.is_none() {
                out.push(
                    "sms.webhook_token: required when sms.provider = \"webhook\" (the gateway's proof that a request is Braid's)".into(),
                );
            }
        }
        out
    }

    /// Replaces every `*_file` secret by the file's content (trailing newline removed); the
    /// `*_file` setting is then cleared, as the secret is now set once. A secret set both
    /// ways is left for [`Settings::problems`] to report. Returns the files that could not be
    /// read, one line each.
    pub fn load_secret_files(&mut self) -> Vec<String> {
        let mut out = Vec::new();
        if self.metrics.bearer_token.is_some() && self.metrics.bearer_token_file.is_some() {
            out.push("metrics: set bearer_token or bearer_token_file, not both".into());
        }
        let mut load = |at: String, target: &mut Option<Secret>, file: &mut Option<PathBuf>| {
            if target.is_some() {
                return;
            }
            if let Some(path) = file.take() {
                match std::fs::read_to_string(&path) {
                    Ok(s) => *target = Some(Secret::new(s.trim_end_matches(['\n', '\r']))),
                    Err(e) => {
                        out.push(format!("{at}: cannot read {}: {e}", path.display()));
                        *file = Some(path);
                    }
                }
            }
        };
        for (id, p) in &mut self.federated_login.providers {
            load(
                format!("federated_login.providers.{id}.client_secret_file"),
                &mut p.client_secret,
                &mut p.client_secret_file,
            );
        }
        for (id, c) in &mut self.clients {
            load(
                format!("clients.{id}.secret_file"),
                &mut c.secret,
                &mut c.secret_file,
            );
        }
        load(
            "smtp.password_file".into(),
            &mut self.smtp.password,
            &mut self.smtp.password_file,
        );
        load(
            "sms.webhook_token_file".into(),
            &mut self.sms.webhook_token,
            &mut self.sms.webhook_token_file,
        );
        load(
            "metrics.bearer_token_file".into(),
            &mut self.metrics.bearer_token,
            &mut self.metrics.bearer_token_file,
        );
        for (name, w) in &mut self.webhooks {
            load(
                format!("webhooks.{name}.secret_file"),
                &mut w.secret,
                &mut w.secret_file,
            );
        }
        out
    }

    /// Where a login without `client_id`/`redirect_uri` sends the browser: `redirect_location`
    /// resolved against the default client's first redirect URI.
    pub fn default_redirect(&self) -> Option<(String, String)> {
        let client_id = self.federated_login.default_client.as_ref()?;
        let client = self.clients.get(client_id)?;
        let base = url::Url::parse(client.redirect_uris.first()?).ok()?;
        let target = base.join(&self.federated_login.redirect_location).ok()?;
        Some((client_id.clone(), target.to_string()))
    }

    /// `iss` of Braid's tokens and of its redirects to apps.
    pub fn issuer(&self) -> String {
        self.tokens
            .issuer
            .clone()
            .unwrap_or_else(|| self.server.public_url())
    }

    /// Cookies are `Secure` when configured so, else when the public URL is https.
    pub fn cookie_secure(&self) -> bool {
        self.sessions
            .cookie_secure
            .unwrap_or_else(|| self.server.public_url().starts_with("https://"))
    }

    /// What an operator still has to set for a useful deployment, for the start-up log line.
    pub fn next_steps(&self) -> Vec<&'static str> {
        let mut out = Vec::new();
        if self.federated_login.providers.is_empty() {
            out.push("add a provider under [federated_login.providers.<name>]");
        }
        if self.clients.is_empty() {
            out.push("register your app under [clients.<client_id>]");
        }
        if self.server.public_url.is_none() {
            out.push("set server.public_url to the https URL users reach Braid at");
        }
        out
    }
}

/// Redirect URIs: absolute, exact (no `*`), no fragment; https, http only on loopback
/// (RFC 8252 §7.3), or a private-use scheme with a dot for native apps (RFC 8252 §7.1).
pub fn check_redirect_uri(uri: &str) -> Result<url::Url, String> {
    if uri.contains('*') {
        return Err(format!(
            "{uri:?}: no wildcards; list each redirect URI exactly (a wildcard would let any matching page receive the exchange code)"
        ));
    }
    let u = url::Url::parse(uri).map_err(|e| format!("{uri:?}: {e}"))?;
    if u.fragment().is_some() || uri.contains('#') {
        return Err(format!(
            "{uri:?}: must not contain a fragment (#…); the exchange code goes in the query"
        ));
    }
    let loopback = matches!(u.host_str(), Some("localhost" | "127.0.0.1" | "[::1]"));
    match u.scheme() {
        "https" => Ok(u),
        "http" if loopback => Ok(u),
        "http" => Err(format!(
            "{uri:?}: http is allowed only on loopback (localhost, 127.0.0.1, [::1]); use https"
        )),
        s if s.contains('.') => Ok(u),
        _ => Err(format!(
            "{uri:?}: use https, http on loopback, or a reverse-domain scheme (com.example.app:/cb)"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_settings_are_checked() {
        let mut s = Settings::default();
        s.sessions.enabled = true;
        assert_eq!(s.problems(), Vec::<String>::new());
        s.sessions.ttl = 60;
        assert!(
            s.problems().iter().any(|p| p
                .starts_with("sessions.ttl: must be at least account_linking.state_expiration")),
            "{:?}",
            s.problems()
        );
        s.sessions.ttl = 3600;
        s.sessions.store = SessionStoreKind::Redis;
        assert!(
            s.problems()
                .iter()
                .any(|p| p.starts_with("sessions.redis_url: required")),
        );
        s.sessions.redis_url = Some("http://127.0.0.1:6379".into());
        assert!(
            s.problems()
                .iter()
                .any(|p| p.starts_with("sessions.redis_url: must start with")),
        );
        s.sessions.redis_url = Some("redis://127.0.0.1:6379/0".into());
        assert_eq!(s.problems(), Vec::<String>::new());
    }

    #[test]
    fn trusted_proxies_must_be_addresses_or_networks() {
        let mut s = Settings::default();
        s.server.trusted_proxies = vec!["10.0.0.0/8".into(), "::1".into()];
        assert_eq!(s.problems(), Vec::<String>::new());
        s.server.trusted_proxies.push("lb.internal".into());
        assert_eq!(
            s.problems(),
            [
                "server.trusted_proxies: \"lb.internal\" is not an IP address or network (e.g. \"10.0.0.0/8\")"
            ]
        );
    }

    #[test]
    fn defaults_are_valid_and_safe() {
        let s = Settings::default();
        assert_eq!(s.problems(), Vec::<String>::new());
        assert_eq!(s.server.public_url(), "http://127.0.0.1:8080");
        assert_eq!(s.account_linking.resolution, Resolution::Disabled);
        assert_eq!(s.database.url, "sqlite://data/braid.db");
        assert_eq!(s.next_steps().len(), 3);
    }

    #[test]
    fn redirect_uris_are_checked() {
        assert!(check_redirect_uri("https://app.example/cb").is_ok());
        assert!(check_redirect_uri("http://127.0.0.1:3000/cb").is_ok());
        assert!(check_redirect_uri("com.example.app:/oauth").is_ok());
        assert!(check_redirect_uri("http://app.example/cb").is_err());
        assert!(check_redirect_uri("https://app.example/cb#x").is_err());
        assert!(check_redirect_uri("javascript:alert(1)").is_err());
        assert!(check_redirect_uri("/relative").is_err());
        for (uri, reason) in [
            ("https://*.app.example/cb", "no wildcards"),
            ("https://app.example/*", "no wildcards"),
            ("https://app.example/cb#", "fragment"),
            ("http://app.example/cb", "only on loopback"),
            ("ftp://app.example/cb", "use https"),
        ] {
            let e = check_redirect_uri(uri).unwrap_err();
            assert!(e.contains(reason), "{uri}: {e}");
        }
    }

    #[test]
    fn clients_need_a_secret_or_to_be_public() {
        let mut s = Settings::default();
        s.clients.insert(
            "app".into(),
            ClientSettings {
                redirect_uris: vec!["https://app.example/cb".into()],
                ..Default::default()
            },
        );
        assert!(
            s.problems()
                .iter()
                .any(|p| p.starts_with("clients.app.secret: missing secret"))
        );
        s.clients.get_mut("app").unwrap().secret = Some(Secret::new("x".repeat(40)));
        assert_eq!(s.problems(), Vec::<String>::new());
    }

    #[test]
    fn metrics_settings_are_checked_and_the_token_may_come_from_a_file() {
        let mut s = Settings::default();
        s.metrics.listen = Some("localhost:9090".into());
        s.metrics.bearer_token = Some(Secret::new("short"));
        let problems = s.problems();
        assert!(
            problems
                .iter()
                .any(|p| p.starts_with("metrics.listen: \"localhost:9090\" is not")),
            "{problems:?}"
        );
        assert!(
            problems
                .iter()
                .any(|p| p.starts_with("metrics.bearer_token: must be at least 16")),
            "{problems:?}"
        );
        s.metrics.listen = Some("127.0.0.1:8080".into());
        assert!(
            s.problems()
                .iter()
                .any(|p| p.starts_with("metrics.listen: must differ")),
        );
        let file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(file.path(), "scrape-token-from-a-file\n").unwrap();
        let mut s = Settings::default();
        s.metrics.listen = Some("0.0.0.0:9090".into());
        s.metrics.bearer_token_file = Some(file.path().to_owned());
        assert_eq!(s.load_secret_files(), Vec::<String>::new());
        assert_eq!(s.problems(), Vec::<String>::new());
        assert_eq!(
            s.metrics.bearer_token.as_ref().map(Secret::expose),
            Some("scrape-token-from-a-file")
        );
        let mut both = Settings::default();
        both.metrics.bearer_token = Some(Secret::new("x".repeat(20)));
        both.metrics.bearer_token_file = Some(file.path().to_owned());
        assert_eq!(
            both.load_secret_files(),
            ["metrics: set bearer_token or bearer_token_file, not both"]
        );
    }

    #[test]
    fn secret_files_are_read_and_unreadable_ones_reported() {
        let dir = std::env::temp_dir().join(format!("braid-secret-{}", braid_core::new_id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("smtp");
        std::fs::write(&file, "p4ss\n").unwrap();
        let mut s = Settings::default();
        s.smtp.password_file = Some(file);
        s.clients.insert(
            "app".into(),
            ClientSettings {
                secret_file: Some(dir.join("missing")),
                ..Default::default()
            },
        );
        let problems = s.load_secret_files();
        assert_eq!(s.smtp.password.as_ref().map(Secret::expose), Some("p4ss"));
        assert_eq!(problems.len(), 1);
        assert!(problems[0].starts_with("clients.app.secret_file: cannot read"));
        std::fs::remove_dir_all(dir).unwrap();
    }
}
