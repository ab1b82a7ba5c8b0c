//! The PROXY protocol (HAProxy's; v1 text, v2 binary): a load balancer in front of the server begins each
//! connection with a header that names the real client. Connections from `proxy_protocol_from` must begin with
//! one; any other connection is served as it is, so a client can never claim an address by sending a header.
//!
//! The header is read exactly, never past its end: the client may speak right after it (a TLS ClientHello on the
//! implicit-TLS listener), and those bytes belong to the session.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use ipnet::IpNet;
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;

use super::addr::canonical_ip;

/// How long a balancer has to send the header after connecting (it sends it at once).
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(5);

/// Version 2 begins with these 12 bytes.
const V2_SIGNATURE: [u8; 12] = *b"\r\n\r\n\0\r\nQUIT\n";
/// A version 1 line is at most 107 bytes, CRLF included.
const V1_MAX: usize = 107;

/// Who is at the other end of a control connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Peer {
    /// The client: the TCP peer, or the source named by the PROXY header. Limits, the lockout, logs, the transfer
    /// log and the data-connection checks all use this address.
    pub client: SocketAddr,
    /// The balancer the connection came through (the TCP peer), when it carried a PROXY header.
    pub via: Option<SocketAddr>,
    /// The address the client connected to, as the header names it (the balancer's front end).
    pub target: Option<SocketAddr>,
}

impl Peer {
    /// A connection straight from the client.
    pub fn direct(client: SocketAddr) -> Self {
        Self {
            client,
            via: None,
            target: None,
        }
    }
}

/// Which connections begin with a PROXY header: those from `proxy_protocol_from`.
#[derive(Debug, Clone, Default)]
pub struct ProxyPolicy {
    trusted: Vec<IpNet>,
}

impl ProxyPolicy {
    pub fn new(trusted: Vec<IpNet>) -> Self {
        Self { trusted }
    }

    /// Whether a connection from `ip` must carry a header (IPv4-mapped addresses count as IPv4).
    pub fn expects_header(&self, ip: IpAddr) -> bool {
        let ip = canonical_ip(ip);
        self.trusted.iter().any(|net| net.contains(&ip))
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    #[error("no PROXY protocol header within {} s", HEADER_TIMEOUT.as_secs())]
    Timeout,
    #[error("closed before a PROXY protocol header")]
    Closed,
    #[error("the connection does not begin with a PROXY protocol header")]
    Missing,
    #[error("malformed PROXY protocol header: {0}")]
    Malformed(String),
    #[error("reading the PROXY protocol header: {0}")]
    Io(#[source] io::Error),
}

impl From<io::Error> for ProxyError {
    fn from(e: io::Error) -> Self {
        if e.kind() == io::ErrorKind::UnexpectedEof {
            ProxyError::Closed
        } else {
            ProxyError::Io(e)
        }
    }
}

/// What a PROXY header says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Header {
    /// A client's connection, relayed. Without addresses in the header (v1 `UNKNOWN`, v2 over a UNIX socket or
    /// of an unspecified family), the balancer's own address stands for the client, as the spec says.
    Relayed(Peer),
    /// v2 `LOCAL`: the balancer's own connection, a health check.
    Local,
}

/// Reads the header a balancer at `tcp_peer` put in front of the connection and says who the client is.
pub async fn accept_header(
    stream: &mut TcpStream,
    tcp_peer: SocketAddr,
) -> Result<Header, ProxyError> {
    let raw = tokio::time::timeout(HEADER_TIMEOUT, read_raw(stream))
        .await
        .map_err(|_| ProxyError::Timeout)??;
    Ok(match parse(&raw)? {
        Parsed::Local => Header::Local,
        Parsed::Addresses(client, target) => Header::Relayed(Peer {
            client,
            via: Some(tcp_peer),
            target: Some(target),
        }),
        Parsed::NoAddresses => Header::Relayed(Peer {
            client: tcp_peer,
            via: Some(tcp_peer),
            target: None,
        }),
    })
}

enum Parsed {
    Local,
    /// The client's and the front end's addresses.
    Addresses(SocketAddr, SocketAddr),
    NoAddresses,
}

/// The header's bytes, and not one byte more.
async fn read_raw(stream: &mut TcpStream) -> Result<Vec<u8>, ProxyError> {
    // 12 bytes tell the versions apart, and both are at least that long ("PROXY UNKNOWN\r\n" is 15).
    let mut bytes = vec![0u8; V2_SIGNATURE.len()];
    stream.read_exact(&mut bytes).await?;
    if bytes == V2_SIGNATURE {
        // Version and command, family and protocol, then the length of the rest.
        let mut fixed = [0u8; 4];
        stream.read_exact(&mut fixed).await?;
        bytes.extend_from_slice(&fixed);
        let rest = usize::from(u16::from_be_bytes([fixed[2], fixed[3]]));
        let start = bytes.len();
        bytes.resize(start + rest, 0);
        stream.read_exact(&mut bytes[start..]).await?;
        return Ok(bytes);
    }
    if !bytes.starts_with(b"PROXY ") {
        return Err(ProxyError::Missing);
    }
    // Version 1: up to the line end. Peeking shows what has arrived; only the bytes up to the end are taken.
    while !bytes.ends_with(b"\r\n") {
        if bytes.len() >= V1_MAX {
            return Err(ProxyError::Malformed(format!(
                "a version 1 line longer than {V1_MAX} bytes"
            )));
        }
        let mut peeked = [0u8; V1_MAX];
        let room = V1_MAX - bytes.len();
        let n = stream.peek(&mut peeked[..room]).await?;
        if n == 0 {
            return Err(ProxyError::Closed);
        }
        let take = peeked[..n]
            .iter()
            .position(|&b| b == b'\n')
            .map_or(n, |at| at + 1);
        let start = bytes.len();
        bytes.resize(start + take, 0);
        stream.read_exact(&mut bytes[start..]).await?;
    }
    Ok(bytes)
}

fn parse(raw: &[u8]) -> Result<Parsed, ProxyError> {
    use ppp::{v1, v2, HeaderResult};
    let malformed = |e: &dyn std::fmt::Display| ProxyError::Malformed(e.to_string());
    match HeaderResult::parse(raw) {
        HeaderResult::V1(Ok(header)) => Ok(match header.addresses {
            v1::Addresses::Tcp4(a) => Parsed::Addresses(
                SocketAddr::from((a.source_address, a.source_port)),
                SocketAddr::from((a.destination_address, a.destination_port)),
            ),
            v1::Addresses::Tcp6(a) => Parsed::Addresses(
                SocketAddr::from((a.source_address, a.source_port)),
                SocketAddr::from((a.destination_address, a.destination_port)),
            ),
            v1::Addresses::Unknown => Parsed::NoAddresses,
        }),
        HeaderResult::V1(Err(e)) => Err(malformed(&e)),
        HeaderResult::V2(Ok(header)) => {
            if header.command == v2::Command::Local {
                return Ok(Parsed::Local);
            }
            Ok(match header.addresses {
                v2::Addresses::IPv4(a) => Parsed::Addresses(
                    SocketAddr::from((a.source_address, a.source_port)),
                    SocketAddr::from((a.destination_address, a.destination_port)),
                ),
                v2::Addresses::IPv6(a) => Parsed::Addresses(
                    SocketAddr::from((a.source_address, a.source_port)),
                    SocketAddr::from((a.destination_address, a.destination_port)),
                ),
                v2::Addresses::Unspecified | v2::Addresses::Unix(_) => Parsed::NoAddresses,
            })
        }
        HeaderResult::V2(Err(e)) => Err(malformed(&e)),
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::AsyncWriteExt;
    use tokio::net::TcpListener;

    use super::*;

    fn sock(text: &str) -> SocketAddr {
        text.parse().unwrap()
    }

    fn v2(command: u8, client: &str, target: &str) -> Vec<u8> {
        let addresses: ppp::v2::Addresses = (sock(client), sock(target)).into();
        ppp::v2::Builder::with_addresses(0x20 | command, ppp::v2::Protocol::Stream, addresses)
            .write_tlv(ppp::v2::Type::NoOp, b"padding")
            .unwrap()
            .build()
            .unwrap()
    }

    /// Sends `chunks` (with a pause between them, as separate segments) over loopback and reads the header;
    /// returns what it said and the bytes left in the stream for the session.
    async fn through_socket(chunks: Vec<Vec<u8>>) -> (Result<Header, ProxyError>, Vec<u8>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let sender = tokio::spawn(async move {
            let mut client = TcpStream::connect(addr).await.unwrap();
            for chunk in chunks {
                client.write_all(&chunk).await.unwrap();
                client.flush().await.unwrap();
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        });
        let (mut stream, tcp_peer) = listener.accept().await.unwrap();
        let result = accept_header(&mut stream, tcp_peer).await;
        sender.await.unwrap();
        let mut rest = Vec::new();
        if result.is_ok() {
            stream.read_to_end(&mut rest).await.unwrap();
        }
        (result, rest)
    }

    fn relayed(header: Result<Header, ProxyError>) -> Peer {
        match header {
            Ok(Header::Relayed(peer)) => peer,
            other => panic!("not a relayed connection: {other:?}"),
        }
    }

    #[tokio::test]
    async fn v1_names_the_client_and_leaves_the_rest() {
        let (peer, rest) = through_socket(vec![
            b"PROXY TCP4 192.0.2.7 198.51.100.1 40000 21\r\nUSER x\r\n".to_vec(),
        ])
        .await;
        let peer = relayed(peer);
        assert_eq!(peer.client, sock("192.0.2.7:40000"));
        assert_eq!(peer.target, Some(sock("198.51.100.1:21")));
        assert_eq!(
            peer.via.unwrap().ip(),
            "127.0.0.1".parse::<IpAddr>().unwrap()
        );
        assert_eq!(rest, b"USER x\r\n");
    }

    #[tokio::test]
    async fn v1_split_over_segments() {
        let (peer, rest) = through_socket(vec![
            b"PROXY TCP6 2001:db8::7 ".to_vec(),
            b"2001:db8::1 40000".to_vec(),
            b" 21\r\n\x16\x03\x01".to_vec(),
        ])
        .await;
        assert_eq!(relayed(peer).client, sock("[2001:db8::7]:40000"));
        assert_eq!(
            rest, b"\x16\x03\x01",
            "a TLS ClientHello after the header is the session's"
        );
    }

    #[tokio::test]
    async fn v2_proxy_and_local() {
        let mut bytes = v2(1, "192.0.2.9:5555", "198.51.100.1:2121");
        bytes.extend_from_slice(b"\x16\x03\x01");
        let (peer, rest) = through_socket(vec![bytes]).await;
        let peer = relayed(peer);
        assert_eq!(peer.client, sock("192.0.2.9:5555"));
        assert_eq!(peer.target, Some(sock("198.51.100.1:2121")));
        assert_eq!(rest, b"\x16\x03\x01");

        // A health check of the balancer.
        let (header, _) = through_socket(vec![v2(0, "192.0.2.9:5555", "198.51.100.1:2121")]).await;
        assert_eq!(header.unwrap(), Header::Local);
        // A relayed connection without addresses: the balancer stands for the client.
        let (peer, _) = through_socket(vec![b"PROXY UNKNOWN\r\n".to_vec()]).await;
        let peer = relayed(peer);
        assert_eq!(Some(peer.client), peer.via);
        assert_eq!(peer.target, None);
    }

    #[tokio::test]
    async fn what_is_not_a_header_is_refused() {
        let (result, _) = through_socket(vec![b"USER anonymous\r\n".to_vec()]).await;
        assert!(matches!(result, Err(ProxyError::Missing)), "{result:?}");
        let (result, _) =
            through_socket(vec![b"PROXY TCP4 999.0.0.1 1.2.3.4 1 2\r\n".to_vec()]).await;
        assert!(
            matches!(result, Err(ProxyError::Malformed(_))),
            "{result:?}"
        );
        let (result, _) =
            through_socket(vec![[b"PROXY TCP4 ".as_slice(), &[b'1'; 120]].concat()]).await;
        assert!(
            matches!(result, Err(ProxyError::Malformed(_))),
            "{result:?}"
        );
        let (result, _) = through_socket(vec![b"PROXY TCP4".to_vec()]).await;
        assert!(matches!(result, Err(ProxyError::Closed)), "{result:?}");
        let (result, _) = through_socket(vec![]).await;
        assert!(matches!(result, Err(ProxyError::Closed)), "{result:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_silent_balancer_times_out() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let _client = TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let (mut stream, tcp_peer) = listener.accept().await.unwrap();
        let result = accept_header(&mut stream, tcp_peer).await;
        assert!(matches!(result, Err(ProxyError::Timeout)), "{result:?}");
    }

    #[test]
    fn policy_matches_networks_and_mapped_addresses() {
        let policy = ProxyPolicy::new(vec![
            "10.0.0.0/8".parse().unwrap(),
            "2001:db8::1/128".parse().unwrap(),
        ]);
        assert!(policy.expects_header("10.1.2.3".parse().unwrap()));
        assert!(policy.expects_header("::ffff:10.1.2.3".parse().unwrap()));
        assert!(policy.expects_header("2001:db8::1".parse().unwrap()));
        assert!(!policy.expects_header("11.0.0.1".parse().unwrap()));
        assert!(!policy.expects_header("2001:db8::2".parse().unwrap()));
        assert!(!ProxyPolicy::default().expects_header("10.0.0.1".parse().unwrap()));
    }
}
