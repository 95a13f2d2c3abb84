//! A minimal SMTP server on loopback that accepts every message and records it: EHLO/HELO,
//! MAIL, RCPT, DATA, RSET, NOOP, QUIT; no TLS, no AUTH. For tests of Braid's sender only: a
//! real SMTP server is exercised by the e2e suite.

use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::{JoinHandle, JoinSet};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceivedMail {
    pub mail_from: String,
    pub rcpt_to: Vec<String>,
    /// The message as sent after DATA (headers and body), dot-unstuffed, CRLF line ends.
    pub data: String,
}

impl ReceivedMail {
    /// The value of the first header with this name (unfolded).
    pub fn header(&self, name: &str) -> Option<String> {
        let head = self.data.split("\r\n\r\n").next()?;
        let mut value: Option<String> = None;
        for line in head.split("\r\n") {
            if let Some(v) = value.as_mut() {
                if line.starts_with([' ', '\t']) {
                    v.push_str(line);
                    continue;
                }
                break;
            }
            if let Some((n, v)) = line.split_once(':')
                && n.eq_ignore_ascii_case(name)
            {
                value = Some(v.trim().to_owned());
            }
        }
        value
    }
}

pub struct SmtpSink {
    pub port: u16,
    received: Arc<Mutex<Vec<ReceivedMail>>>,
    server: JoinHandle<()>,
}

impl SmtpSink {
    pub async fn start() -> Self {
        Self::start_on(0).await
    }

    /// On a given port (to bring a stopped server back where Braid expects it).
    pub async fn start_on(port: u16) -> Self {
        // A port given back may be held a moment longer (by the old server's task, or by an
        // outgoing connection that got it as its ephemeral port): retry for a few seconds.
        let mut tries = 0;
        let listener = loop {
            match TcpListener::bind(("127.0.0.1", port)).await {
                Ok(l) => break l,
                Err(_) if tries < 50 && port != 0 => {
                    tries += 1;
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(e) => panic!("SMTP sink cannot listen on port {port}: {e}"),
            }
        };
        let port = listener.local_addr().unwrap().port();
        let received = Arc::new(Mutex::new(Vec::new()));
        let store = received.clone();
        let server = tokio::spawn(async move {
            // Owned here, so stopping the server also drops every open connection.
            let mut connections = JoinSet::new();
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                connections.spawn(session(stream, store.clone()));
            }
        });
        Self {
            port,
            received,
            server,
        }
    }

    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    pub fn messages(&self) -> Vec<ReceivedMail> {
        self.received.lock().unwrap().clone()
    }

    /// Waits (bounded) until `n` messages have arrived.
    pub async fn wait_for(&self, n: usize, timeout: Duration) -> Vec<ReceivedMail> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let got = self.messages();
            if got.len() >= n {
                return got;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{n} message(s) expected within {timeout:?}, {} arrived",
                got.len()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Closes the port and every open connection.
    pub async fn stop(self) {
        self.server.abort();
        let _ = self.server.await;
    }
}

async fn session(stream: TcpStream, store: Arc<Mutex<Vec<ReceivedMail>>>) {
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read);
    if !reply(&mut write, "220 sink.test ESMTP test sink\r\n").await {
        return;
    }
    let mut mail_from = String::new();
    let mut rcpt_to = Vec::new();
    let mut line = String::new();
    loop {
        line.clear();
        if lines.read_line(&mut line).await.unwrap_or(0) == 0 {
            return;
        }
        let command = line.trim_end().to_owned();
        let upper = command.to_ascii_uppercase();
        let answer = if upper.starts_with("EHLO") {
            "250-sink.test\r\n250-8BITMIME\r\n250 SMTPUTF8\r\n".to_owned()
        } else if upper.starts_with("HELO") || upper.starts_with("NOOP") {
            "250 OK\r\n".to_owned()
        } else if upper.starts_with("MAIL FROM:") {
            mail_from = address(&command["MAIL FROM:".len()..]);
            rcpt_to.clear();
            "250 OK\r\n".to_owned()
        } else if upper.starts_with("RCPT TO:") {
            rcpt_to.push(address(&command["RCPT TO:".len()..]));
            "250 OK\r\n".to_owned()
        } else if upper == "DATA" {
            if !reply(&mut write, "354 end with <CRLF>.<CRLF>\r\n").await {
                return;
            }
            let mut data = String::new();
            loop {
                line.clear();
                if lines.read_line(&mut line).await.unwrap_or(0) == 0 {
                    return;
                }
                if line == ".\r\n" || line == ".\n" {
                    break;
                }
                data.push_str(line.strip_prefix('.').unwrap_or(&line));
            }
            store.lock().unwrap().push(ReceivedMail {
                mail_from: mail_from.clone(),
                rcpt_to: std::mem::take(&mut rcpt_to),
                data,
            });
            "250 OK queued\r\n".to_owned()
        } else if upper == "RSET" {
            rcpt_to.clear();
            "250 OK\r\n".to_owned()
        } else if upper == "QUIT" {
            let _ = reply(&mut write, "221 bye\r\n").await;
            return;
        } else {
            "502 not implemented\r\n".to_owned()
        };
        if !reply(&mut write, &answer).await {
            return;
        }
    }
}

async fn reply(w: &mut tokio::net::tcp::OwnedWriteHalf, text: &str) -> bool {
    w.write_all(text.as_bytes()).await.is_ok()
}

/// `<a@b> SIZE=123` → `a@b`.
fn address(arg: &str) -> String {
    let arg = arg.trim();
    let inner = arg
        .strip_prefix('<')
        .and_then(|rest| rest.split_once('>'))
        .map_or(arg, |(addr, _)| addr);
    inner.to_owned()
}
