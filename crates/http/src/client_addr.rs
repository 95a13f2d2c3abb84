//! Who is on the other end of a request: the client's address and user agent, for audit rows
//! and per-address rate limits.
//!
//! The address is the socket's peer unless that peer is one of `server.trusted_proxies`; then
//! it is read from the one forwarding header the operator names (`server.client_ip_header`),
//! right to left, skipping the trusted proxies: the first address no trusted proxy vouches for
//! is the client. Reading a header the proxy does not write would let any client choose its
//! address, so exactly one header is read, never "whichever is present".

use actix_web::HttpRequest;
use actix_web::http::header::{self, HeaderName};
use braid_storage::repo::audit::AuditEvent;
use ipnet::IpNet;
use serde::{Deserialize, Serialize};
use std::net::IpAddr;

/// The forwarding header a trusted proxy writes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ClientIpHeader {
    /// `X-Forwarded-For: client, proxy1, proxy2` (nginx, HAProxy, most load balancers).
    #[default]
    XForwardedFor,
    /// RFC 7239 `Forwarded: for=client, for=proxy1` (Envoy, some CDNs).
    Forwarded,
}

/// User agents are kept to this many characters in audit rows.
const MAX_USER_AGENT: usize = 256;

/// The client address rule, built once at start-up from `server.trusted_proxies`.
#[derive(Debug, Clone, Default)]
pub struct ClientAddrs {
    trusted: Vec<IpNet>,
    header: ClientIpHeader,
}

/// The request's client, as written to audit rows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Client {
    pub ip: Option<IpAddr>,
    pub user_agent: Option<String>,
}

impl ClientAddrs {
    /// `trusted`: addresses (`10.0.0.5`) or networks (`10.0.0.0/8`); an entry that is neither
    /// is returned as the error.
    pub fn new(trusted: &[String], header: ClientIpHeader) -> Result<Self, String> {
        let trusted = trusted
            .iter()
            .map(|t| parse_net(t).ok_or_else(|| t.clone()))
            .collect::<Result<_, _>>()?;
        Ok(Self { trusted, header })
    }

    pub fn client(&self, req: &HttpRequest) -> Client {
        Client {
            ip: self.ip(req),
            user_agent: user_agent(req),
        }
    }

    pub fn ip(&self, req: &HttpRequest) -> Option<IpAddr> {
        let peer = req.peer_addr()?.ip().to_canonical();
        if !self.is_trusted(peer) {
            return Some(peer);
        }
        let name = match self.header {
            ClientIpHeader::XForwardedFor => HeaderName::from_static("x-forwarded-for"),
            ClientIpHeader::Forwarded => header::FORWARDED,
        };
        let mut hops: Vec<&str> = Vec::new();
        for value in req.headers().get_all(name) {
            let Ok(value) = value.to_str() else {
                return Some(peer);
            };
            hops.extend(value.split(','));
        }
        let mut client = peer;
        for hop in hops.iter().rev() {
            let parsed = match self.header {
                ClientIpHeader::XForwardedFor => parse_addr(hop),
                ClientIpHeader::Forwarded => forwarded_for(hop).and_then(parse_addr),
            };
            // An entry that is not an address (`unknown`, an obfuscated name, garbage) ends
            // the walk: what lies left of it was not written by a proxy we trust.
            let Some(ip) = parsed else { break };
            client = ip;
            if !self.is_trusted(ip) {
                break;
            }
        }
        Some(client)
    }

    fn is_trusted(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.trusted.iter().any(|net| net.contains(&ip))
    }
}

impl Client {
    /// `event` with this client's address and user agent.
    pub fn stamp(&self, event: AuditEvent) -> AuditEvent {
        AuditEvent {
            ip: self.ip.map(|ip| ip.to_string()),
            user_agent: self.user_agent.clone(),
            ..event
        }
    }
}

fn user_agent(req: &HttpRequest) -> Option<String> {
    let ua = req.headers().get(header::USER_AGENT)?.to_str().ok()?;
    let ua: String = ua
        .chars()
        .filter(|c| !c.is_control())
        .take(MAX_USER_AGENT)
        .collect();
    (!ua.trim().is_empty()).then_some(ua)
}

fn parse_net(s: &str) -> Option<IpNet> {
    let s = s.trim();
    s.parse::<IpNet>()
        .ok()
        .or_else(|| s.parse::<IpAddr>().ok().map(IpNet::from))
}

/// `192.0.2.1`, `192.0.2.1:4711`, `2001:db8::1`, `[2001:db8::1]:4711`, quoted or not.
fn parse_addr(s: &str) -> Option<IpAddr> {
    let s = s.trim().trim_matches('"');
    if let Ok(ip) = s.parse::<IpAddr>() {
        return Some(ip.to_canonical());
    }
    if let Some(rest) = s.strip_prefix('[') {
        let (inside, _) = rest.split_once(']')?;
        return inside.parse::<IpAddr>().ok();
    }
    let (host, port) = s.rsplit_once(':')?;
    port.parse::<u16>().ok()?;
    host.parse::<std::net::Ipv4Addr>().ok().map(IpAddr::V4)
}

/// The `for=` parameter of one RFC 7239 forwarded-element (`for=…;proto=https;by=…`).
fn forwarded_for(element: &str) -> Option<&str> {
    element.split(';').find_map(|pair| {
        let (key, value) = pair.split_once('=')?;
        key.trim().eq_ignore_ascii_case("for").then_some(value)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::test::TestRequest;

    fn rule(trusted: &[&str], header: ClientIpHeader) -> ClientAddrs {
        let trusted: Vec<String> = trusted.iter().map(|s| s.to_string()).collect();
        ClientAddrs::new(&trusted, header).unwrap()
    }

    fn from(peer: &str, headers: &[(&str, &str)]) -> HttpRequest {
        let mut req = TestRequest::default().peer_addr(peer.parse().unwrap());
        for (k, v) in headers {
            req = req.append_header((*k, *v));
        }
        req.to_http_request()
    }

    fn ip(s: &str) -> Option<IpAddr> {
        Some(s.parse().unwrap())
    }

    #[test]
    fn an_untrusted_peer_is_the_client_whatever_it_forwards() {
        let r = rule(&["10.0.0.0/8"], ClientIpHeader::XForwardedFor);
        let req = from("203.0.113.9:5000", &[("x-forwarded-for", "198.51.100.1")]);
        assert_eq!(r.ip(&req), ip("203.0.113.9"));
        let none = rule(&[], ClientIpHeader::XForwardedFor);
        assert_eq!(none.ip(&req), ip("203.0.113.9"));
    }

    #[test]
    fn a_trusted_proxy_names_the_client_and_spoofed_entries_to_its_left_are_ignored() {
        let r = rule(&["10.0.0.0/8", "192.0.2.7"], ClientIpHeader::XForwardedFor);
        // The client wrote "1.1.1.1" itself; the edge proxy 192.0.2.7 appended the client's
        // real address, the inner proxy 10.1.1.1 appended the edge's.
        let req = from(
            "10.1.1.1:443",
            &[("x-forwarded-for", "1.1.1.1, 198.51.100.20, 192.0.2.7")],
        );
        assert_eq!(r.ip(&req), ip("198.51.100.20"));
        // Split over two header lines, the order is kept.
        let req = from(
            "10.1.1.1:443",
            &[
                ("x-forwarded-for", "1.1.1.1, 198.51.100.20"),
                ("x-forwarded-for", "192.0.2.7"),
            ],
        );
        assert_eq!(r.ip(&req), ip("198.51.100.20"));
    }

    #[test]
    fn only_the_configured_header_is_read() {
        let xff = rule(&["10.0.0.1"], ClientIpHeader::XForwardedFor);
        let req = from("10.0.0.1:1", &[("forwarded", "for=198.51.100.3")]);
        assert_eq!(xff.ip(&req), ip("10.0.0.1"));
        let fwd = rule(&["10.0.0.1"], ClientIpHeader::Forwarded);
        let req = from(
            "10.0.0.1:1",
            &[
                ("x-forwarded-for", "1.1.1.1"),
                (
                    "forwarded",
                    "for=1.1.1.1, for=\"[2001:db8:cafe::17]:4711\";proto=https;by=10.0.0.1",
                ),
            ],
        );
        assert_eq!(fwd.ip(&req), ip("2001:db8:cafe::17"));
        let req = from("10.0.0.1:1", &[("forwarded", "For=198.51.100.4:80")]);
        assert_eq!(fwd.ip(&req), ip("198.51.100.4"));
    }

    #[test]
    fn garbage_ends_the_walk_at_the_last_proxy_that_wrote_an_address() {
        let r = rule(&["10.0.0.0/8"], ClientIpHeader::XForwardedFor);
        let req = from(
            "10.0.0.2:1",
            &[("x-forwarded-for", "198.51.100.1, unknown")],
        );
        assert_eq!(r.ip(&req), ip("10.0.0.2"));
        let req = from("10.0.0.2:1", &[("x-forwarded-for", "nonsense, 10.0.0.3")]);
        assert_eq!(r.ip(&req), ip("10.0.0.3"));
        // Only trusted hops: the leftmost is the best we know.
        let req = from("10.0.0.2:1", &[("x-forwarded-for", "10.0.0.9")]);
        assert_eq!(r.ip(&req), ip("10.0.0.9"));
        // No header at all: the proxy itself.
        assert_eq!(r.ip(&from("10.0.0.2:1", &[])), ip("10.0.0.2"));
    }

    #[test]
    fn ipv4_mapped_peers_match_ipv4_networks() {
        let r = rule(&["127.0.0.1"], ClientIpHeader::XForwardedFor);
        let req = from(
            "[::ffff:127.0.0.1]:9",
            &[("x-forwarded-for", "198.51.100.8")],
        );
        assert_eq!(r.ip(&req), ip("198.51.100.8"));
    }

    #[test]
    fn a_bad_entry_is_named() {
        let bad = ClientAddrs::new(
            &["10.0.0.0/8".into(), "10.0.0/33".into()],
            Default::default(),
        );
        assert_eq!(bad.unwrap_err(), "10.0.0/33");
        assert!(ClientAddrs::new(&["::1".into(), "fd00::/8".into()], Default::default()).is_ok());
    }

    #[test]
    fn user_agents_are_bounded_and_stripped_of_control_characters() {
        let long = "A".repeat(1000);
        let req = TestRequest::default()
            .insert_header(("user-agent", long.as_str()))
            .to_http_request();
        assert_eq!(user_agent(&req).map(|u| u.len()), Some(MAX_USER_AGENT));
        let req = TestRequest::default()
            .insert_header(("user-agent", "Mozilla/5.0\t(X11)"))
            .to_http_request();
        assert_eq!(user_agent(&req).as_deref(), Some("Mozilla/5.0(X11)"));
        assert_eq!(user_agent(&TestRequest::default().to_http_request()), None);
    }
}
