//! The one outbound HTTP client for every upstream call (discovery, JWKS, token, UserInfo and
//! profile APIs), with the limits SECURITY-CASES H04 asks for: redirects are never followed,
//! connect and total timeouts, a streamed body cap, and HTTPS only except on loopback.
//!
//! Every request names the [`Document`] it fetches, and every response body passes
//! [`refuse_duplicate_members`] before anyone reads it. oauth2/openidconnect get the client
//! through [`HttpClient::reading`], so the limits and the check apply to their requests too.

use crate::ProviderError;
use crate::upstream_json::{Document, refuse_duplicate_members};
use openidconnect::reqwest;
use openidconnect::{AsyncHttpClient, HttpRequest, HttpResponse};
use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};
use thiserror::Error;
use thread_local::ThreadLocal;

/// Limits of the outbound client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HttpLimits {
    pub connect_timeout: Duration,
    /// From sending the request to the last byte of the body.
    pub total_timeout: Duration,
    pub max_body_bytes: usize,
}

impl Default for HttpLimits {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(5),
            total_timeout: Duration::from_secs(10),
            max_body_bytes: 1024 * 1024,
        }
    }
}

/// A transport failure. Messages never contain the URL (it may carry a query) or a body.
#[derive(Debug, Error)]
pub enum HttpError {
    #[error("refused non-https URL")]
    InsecureUrl,
    #[error("timed out")]
    Timeout,
    #[error("could not connect")]
    Connect,
    #[error("response body larger than {limit} bytes")]
    TooLarge { limit: usize },
    #[error("server error {0}")]
    ServerError(u16),
    #[error("the {0} names a member twice")]
    DuplicateMember(Document),
    #[error("request failed: {0}")]
    Other(String),
}

impl From<HttpError> for ProviderError {
    fn from(e: HttpError) -> Self {
        match e {
            HttpError::InsecureUrl => ProviderError::InsecureUrl,
            HttpError::TooLarge { limit } => ProviderError::ResponseTooLarge { limit },
            HttpError::DuplicateMember(document) => ProviderError::DuplicateMember(document),
            HttpError::Timeout
            | HttpError::Connect
            | HttpError::ServerError(_)
            | HttpError::Other(_) => ProviderError::Unavailable(e.to_string()),
        }
    }
}

/// Told how long each upstream call took, e.g. to keep a latency histogram. The providers
/// crate keeps no metrics itself: the HTTP layer passes one in [`crate::RegistryOptions`].
pub trait UpstreamObserver: Send + Sync + std::fmt::Debug {
    /// `provider`: the provider's id (`"unknown"` for a client not bound to one); `seconds`:
    /// from sending the request to the last byte of the body, or to the failure.
    fn observe(&self, provider: &str, document: Document, seconds: f64);
}

/// Cheap to clone: clones share the connection pools.
///
/// One reqwest client (and so one connection pool) per thread, all built from the same
/// settings. A pooled connection is driven by a task on the runtime of the thread that opened
/// it; the server runs one runtime per worker thread, so a connection shared between workers
/// woke the other worker's thread twice per request (half of a login's context switches).
#[derive(Debug, Clone)]
pub struct HttpClient {
    clients: Arc<ThreadLocal<reqwest::Client>>,
    extra_roots: Arc<[reqwest::Certificate]>,
    limits: HttpLimits,
    /// The provider this client calls for, and who is told each call's duration.
    observed: Option<(Arc<str>, Arc<dyn UpstreamObserver>)>,
}

impl HttpClient {
    /// The default client: public web PKI roots, default limits.
    pub fn new() -> Result<Self, ProviderError> {
        Self::with_limits(HttpLimits::default(), None)
    }

    /// A client with other limits and, optionally, one extra trusted root CA (PEM), for a
    /// provider behind a private CA.
    pub fn with_limits(
        limits: HttpLimits,
        extra_root_pem: Option<&[u8]>,
    ) -> Result<Self, ProviderError> {
        let extra_roots: Arc<[reqwest::Certificate]> = match extra_root_pem {
            Some(pem) => reqwest::Certificate::from_pem_bundle(pem)
                .ok()
                .filter(|certs| !certs.is_empty())
                .ok_or_else(|| ProviderError::Config("ca_file: holds no PEM certificate".into()))?
                .into(),
            None => Arc::new([]),
        };
        // Built once here so that a bad setting fails at start-up, not on the first request.
        let first = build_client(limits, &extra_roots)
            .map_err(|e| ProviderError::Config(format!("HTTP client: {}", e.without_url())))?;
        let clients = ThreadLocal::new();
        clients.get_or(|| first);
        Ok(Self {
            clients: Arc::new(clients),
            extra_roots,
            limits,
            observed: None,
        })
    }

    /// This client (sharing its connection pools), reporting each call's duration for
    /// `provider` to `observer`.
    #[must_use]
    pub fn observed_by(&self, provider: &str, observer: Arc<dyn UpstreamObserver>) -> Self {
        Self {
            observed: Some((provider.into(), observer)),
            ..self.clone()
        }
    }

    /// This thread's client.
    fn client(&self) -> Result<&reqwest::Client, HttpError> {
        self.clients
            .get_or_try(|| build_client(self.limits, &self.extra_roots))
            .map_err(|e| HttpError::Other(e.without_url().to_string()))
    }

    pub fn limits(&self) -> HttpLimits {
        self.limits
    }

    /// This client for oauth2/openidconnect, reading one kind of document.
    pub(crate) fn reading(&self, document: Document) -> DocumentClient<'_> {
        DocumentClient {
            http: self,
            document,
        }
    }

    /// Sends one request: no redirect is followed (a 3xx comes back as it is), a 5xx becomes
    /// [`HttpError::ServerError`], the body is read in chunks and abandoned as soon as it
    /// passes the cap, and a JSON body with a repeated member name is refused.
    pub async fn execute(
        &self,
        request: HttpRequest,
        document: Document,
    ) -> Result<HttpResponse, HttpError> {
        let started = Instant::now();
        let result = self.send(request, document).await;
        if let Some((provider, observer)) = &self.observed {
            observer.observe(provider, document, started.elapsed().as_secs_f64());
        }
        result
    }

    async fn send(
        &self,
        request: HttpRequest,
        document: Document,
    ) -> Result<HttpResponse, HttpError> {
        let url =
            url::Url::parse(&request.uri().to_string()).map_err(|_| HttpError::InsecureUrl)?;
        if !is_allowed_url(&url) {
            return Err(HttpError::InsecureUrl);
        }
        let request: reqwest::Request = request
            .try_into()
            .map_err(|e: reqwest::Error| HttpError::Other(e.without_url().to_string()))?;
        let mut response = self.client()?.execute(request).await.map_err(classify)?;
        let status = response.status();
        if status.is_server_error() {
            return Err(HttpError::ServerError(status.as_u16()));
        }
        let limit = self.limits.max_body_bytes;
        if response
            .content_length()
            .is_some_and(|len| len > limit as u64)
        {
            return Err(HttpError::TooLarge { limit });
        }
        let mut builder = http_response_builder(status, response.headers());
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(classify)? {
            if body.len() + chunk.len() > limit {
                return Err(HttpError::TooLarge { limit });
            }
            body.extend_from_slice(&chunk);
        }
        refuse_duplicate_members(&body).map_err(|_| HttpError::DuplicateMember(document))?;
        builder = builder.version(response.version());
        builder
            .body(body)
            .map_err(|e| HttpError::Other(e.to_string()))
    }

    /// GET a JSON document with a bearer token (UserInfo, profile APIs). 401/403/404 and other
    /// non-2xx answers are [`ProviderError::UpstreamStatus`]; a non-JSON body is refused.
    pub(crate) async fn get_json(
        &self,
        url: &url::Url,
        bearer: &str,
        accept: &'static str,
        extra_headers: &[(&'static str, &'static str)],
        document: Document,
    ) -> Result<serde_json::Value, ProviderError> {
        let mut builder = openidconnect::http::Request::builder()
            .method(openidconnect::http::Method::GET)
            .uri(url.as_str())
            .header("authorization", format!("Bearer {bearer}"))
            .header("accept", accept);
        for (name, value) in extra_headers {
            builder = builder.header(*name, *value);
        }
        let request = builder
            .body(Vec::new())
            .map_err(|_| ProviderError::Config("invalid upstream API URL".into()))?;
        let response = self.execute(request, document).await?;
        if !response.status().is_success() {
            return Err(ProviderError::UpstreamStatus(response.status().as_u16()));
        }
        serde_json::from_slice(response.body()).map_err(|_| ProviderError::UserInfo("not JSON"))
    }
}

fn build_client(
    limits: HttpLimits,
    extra_roots: &[reqwest::Certificate],
) -> Result<reqwest::Client, reqwest::Error> {
    let mut builder = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(limits.connect_timeout)
        .timeout(limits.total_timeout)
        .user_agent(concat!("braid/", env!("CARGO_PKG_VERSION")));
    for cert in extra_roots {
        builder = builder.add_root_certificate(cert.clone());
    }
    builder.build()
}

fn http_response_builder(
    status: reqwest::StatusCode,
    headers: &reqwest::header::HeaderMap,
) -> openidconnect::http::response::Builder {
    let mut builder = openidconnect::http::Response::builder().status(status);
    for (name, value) in headers {
        builder = builder.header(name, value);
    }
    builder
}

fn classify(e: reqwest::Error) -> HttpError {
    if e.is_timeout() {
        HttpError::Timeout
    } else if e.is_connect() {
        HttpError::Connect
    } else {
        HttpError::Other(e.without_url().to_string())
    }
}

/// HTTPS anywhere; plain HTTP only to loopback (development and tests).
pub fn is_allowed_url(url: &url::Url) -> bool {
    match url.scheme() {
        "https" => true,
        "http" => is_loopback_host(url),
        _ => false,
    }
}

fn is_loopback_host(url: &url::Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => IpAddr::V4(ip).is_loopback(),
        Some(url::Host::Ipv6(ip)) => IpAddr::V6(ip).is_loopback(),
        None => false,
    }
}

type BoxedResponse<'c> = Pin<Box<dyn Future<Output = Result<HttpResponse, HttpError>> + Send + 'c>>;

/// The client as oauth2/openidconnect see it, for one kind of document.
pub(crate) struct DocumentClient<'a> {
    http: &'a HttpClient,
    document: Document,
}

impl<'c> AsyncHttpClient<'c> for DocumentClient<'_> {
    type Error = HttpError;
    type Future = BoxedResponse<'c>;

    fn call(&'c self, request: HttpRequest) -> Self::Future {
        Box::pin(self.http.execute(request, self.document))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(s: &str) -> url::Url {
        url::Url::parse(s).unwrap()
    }

    #[test]
    fn h04_only_https_or_loopback_http_is_allowed() {
        assert!(is_allowed_url(&url("https://idp.example/token")));
        assert!(is_allowed_url(&url("http://127.0.0.1:8080/token")));
        assert!(is_allowed_url(&url("http://127.8.9.10/token")));
        assert!(is_allowed_url(&url("http://localhost:3000/")));
        assert!(is_allowed_url(&url("http://[::1]:3000/")));
        assert!(!is_allowed_url(&url(
            "http://169.254.169.254/latest/meta-data"
        )));
        assert!(!is_allowed_url(&url("http://idp.example/token")));
        assert!(!is_allowed_url(&url("http://localhost.evil.example/")));
        assert!(!is_allowed_url(&url("file:///etc/passwd")));
        assert!(!is_allowed_url(&url("ftp://idp.example/")));
    }

    #[tokio::test]
    async fn h04_plain_http_to_a_remote_host_is_refused_before_sending() {
        let client = HttpClient::new().unwrap();
        let request = openidconnect::http::Request::builder()
            .uri("http://idp.example/token")
            .body(Vec::new())
            .unwrap();
        let err = client
            .execute(request, Document::Discovery)
            .await
            .unwrap_err();
        assert!(matches!(err, HttpError::InsecureUrl));
        assert!(!ProviderError::from(err).is_upstream_unavailable());
    }

    #[test]
    fn a_bad_extra_ca_is_a_configuration_error() {
        let err = HttpClient::with_limits(HttpLimits::default(), Some(b"not a pem")).unwrap_err();
        assert!(matches!(err, ProviderError::Config(_)));
    }
}
