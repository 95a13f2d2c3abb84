//! A minimal HTTP/1.1 server on loopback that receives webhooks: it records each request
//! (headers and body), checks its signature as Standard Webhooks specifies, and answers with
//! the next scripted answer (a status, or no answer at all), 204 when the script is done.

use aws_lc_rs::hmac;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// How the receiver answers one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    Status(u16),
    /// Reads the request and never answers (the connection stays open until the server stops).
    Hang,
}

#[derive(Debug, Clone)]
pub struct Received {
    pub path: String,
    /// Header names in lower case.
    pub headers: BTreeMap<String, String>,
    pub body: String,
    pub answered: Answer,
}

impl Received {
    pub fn header(&self, name: &str) -> &str {
        self.headers.get(name).map_or("", String::as_str)
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap()
    }

    /// Standard Webhooks verification: the signed content is `{id}.{timestamp}.{body}`, the
    /// key is the base64 after `whsec_`, the header holds space-separated `v1,<base64>`
    /// signatures of which one must match, and the timestamp must be within five minutes.
    pub fn verify(&self, secret: &str) -> Result<(), String> {
        let id = self.headers.get("webhook-id").ok_or("no webhook-id")?;
        let timestamp = self
            .headers
            .get("webhook-timestamp")
            .ok_or("no webhook-timestamp")?;
        let seconds: i64 = timestamp.parse().map_err(|_| "timestamp not a number")?;
        let now = braid_core::Timestamp::now().as_secs();
        if (now - seconds).abs() > 300 {
            return Err(format!("timestamp {seconds} too far from {now}"));
        }
        let key = STANDARD
            .decode(secret.strip_prefix("whsec_").ok_or("secret prefix")?)
            .map_err(|_| "secret not base64")?;
        let key = hmac::Key::new(hmac::HMAC_SHA256, &key);
        let expected = STANDARD.encode(
            hmac::sign(&key, format!("{id}.{timestamp}.{}", self.body).as_bytes()).as_ref(),
        );
        let signatures = self
            .headers
            .get("webhook-signature")
            .ok_or("no webhook-signature")?;
        let matched = signatures.split(' ').any(|s| {
            s.split_once(',')
                .is_some_and(|(version, sig)| version == "v1" && sig == expected)
        });
        matched
            .then_some(())
            .ok_or_else(|| format!("no signature matches in {signatures:?}"))
    }
}

pub struct Receiver {
    pub url: String,
    received: Arc<Mutex<Vec<Received>>>,
    script: Arc<Mutex<VecDeque<Answer>>>,
    server: JoinHandle<()>,
}

impl Receiver {
    /// Answers each request with the next of `script`, then 204.
    pub async fn start(script: &[Answer]) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hooks", listener.local_addr().unwrap());
        let received = Arc::new(Mutex::new(Vec::new()));
        let script = Arc::new(Mutex::new(script.iter().copied().collect::<VecDeque<_>>()));
        let (store, answers) = (received.clone(), script.clone());
        let server = tokio::spawn(async move {
            let mut connections = tokio::task::JoinSet::new();
            while let Ok((stream, _)) = listener.accept().await {
                connections.spawn(serve(stream, store.clone(), answers.clone()));
            }
        });
        Self {
            url,
            received,
            script,
            server,
        }
    }

    pub fn received(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }

    /// Waits (up to `timeout`) until `n` requests have arrived.
    pub async fn wait_for(&self, n: usize, timeout: Duration) -> Vec<Received> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let got = self.received();
            if got.len() >= n {
                return got;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{n} webhook requests within {timeout:?}; got {got:#?}"
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    pub fn answer_next(&self, answer: Answer) {
        self.script.lock().unwrap().push_back(answer);
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.server.abort();
    }
}

async fn serve(
    stream: TcpStream,
    store: Arc<Mutex<Vec<Received>>>,
    script: Arc<Mutex<VecDeque<Answer>>>,
) {
    let mut reader = BufReader::new(stream);
    loop {
        let mut request_line = String::new();
        if reader.read_line(&mut request_line).await.unwrap_or(0) == 0 {
            return;
        }
        let path = request_line
            .split(' ')
            .nth(1)
            .unwrap_or_default()
            .to_owned();
        let mut headers = BTreeMap::new();
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).await.unwrap_or(0) == 0 {
                return;
            }
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            if let Some((name, value)) = line.split_once(':') {
                headers.insert(name.trim().to_ascii_lowercase(), value.trim().to_owned());
            }
        }
        let length: usize = headers
            .get("content-length")
            .and_then(|l| l.parse().ok())
            .unwrap_or(0);
        let mut body = vec![0; length];
        if reader.read_exact(&mut body).await.is_err() {
            return;
        }
        let answer = script
            .lock()
            .unwrap()
            .pop_front()
            .unwrap_or(Answer::Status(204));
        store.lock().unwrap().push(Received {
            path,
            headers,
            body: String::from_utf8(body).unwrap(),
            answered: answer,
        });
        match answer {
            Answer::Hang => {
                std::future::pending::<()>().await;
            }
            Answer::Status(status) => {
                let response = format!("HTTP/1.1 {status} Scripted\r\ncontent-length: 0\r\n\r\n");
                if reader
                    .get_mut()
                    .write_all(response.as_bytes())
                    .await
                    .is_err()
                {
                    return;
                }
            }
        }
    }
}
