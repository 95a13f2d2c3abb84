//! Requests over a plain socket, for what reqwest does not send here (a chunked body), and a
//! captured response either way.

use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use std::io::{Read, Write};
use std::time::Duration;

/// A response read to its end.
pub struct Captured {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl Captured {
    pub async fn read(r: reqwest::Response) -> Self {
        Self {
            status: r.status().as_u16(),
            headers: r.headers().clone(),
            body: r.bytes().await.unwrap().to_vec(),
        }
    }

    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .unwrap_or_else(|| panic!("no {name} header"))
            .to_str()
            .unwrap()
    }
}

/// POSTs `body` to `address` + `path` with chunked transfer encoding, 4 KiB a chunk, and reads
/// the answer until the server closes the connection.
pub async fn post_chunked(address: &str, path: &str, content_type: &str, body: &[u8]) -> Captured {
    let authority = address.strip_prefix("http://").unwrap().to_owned();
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {authority}\r\nContent-Type: {content_type}\r\n\
         Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    );
    let mut chunks = vec![head.into_bytes()];
    for piece in body.chunks(4096) {
        let mut chunk = format!("{:x}\r\n", piece.len()).into_bytes();
        chunk.extend_from_slice(piece);
        chunk.extend_from_slice(b"\r\n");
        chunks.push(chunk);
    }
    chunks.push(b"0\r\n\r\n".to_vec());
    tokio::task::spawn_blocking(move || {
        let mut stream = std::net::TcpStream::connect(&authority).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        for chunk in &chunks {
            // The server may answer and close before it has read the rest.
            if stream.write_all(chunk).is_err() {
                break;
            }
        }
        let mut raw = Vec::new();
        // Bytes read before an error (a reset after the answer) stay in `raw`.
        let _ = stream.read_to_end(&mut raw);
        parse(&raw)
    })
    .await
    .unwrap()
}

fn parse(raw: &[u8]) -> Captured {
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a complete response head");
    let head = std::str::from_utf8(&raw[..end]).unwrap();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|line| line.split(' ').nth(1))
        .unwrap()
        .parse()
        .unwrap();
    let mut headers = HeaderMap::new();
    for line in lines {
        let (name, value) = line.split_once(':').unwrap();
        headers.append(
            HeaderName::from_bytes(name.trim().as_bytes()).unwrap(),
            HeaderValue::from_str(value.trim()).unwrap(),
        );
    }
    Captured {
        status,
        headers,
        body: raw[end + 4..].to_vec(),
    }
}
