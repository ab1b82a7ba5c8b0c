//! Data-connection addresses: the PASV and EPSV replies, and the FTP-bounce check for PORT and EPRT.
//!
//! Dual-stack sockets show IPv4 clients as IPv4-mapped IPv6 addresses (`::ffff:a.b.c.d`); every comparison and
//! every address we print goes through [`canonical_ip`] first, so the same client is the same address whichever
//! socket family carried it.

use std::net::{IpAddr, Ipv4Addr, SocketAddr, SocketAddrV4};

use super::command::NetProto;
use super::reply::{Reply, ReplyCode};

/// The lowest port an active data connection may target: below it are the well-known services an FTP-bounce
/// attack would aim at (CERT CA-1997-27; vsftpd refuses them too).
pub const MIN_ACTIVE_PORT: u16 = 1024;

/// Unwraps an IPv4-mapped IPv6 address (`::ffff:a.b.c.d` → `a.b.c.d`); other addresses are returned as they are.
///
/// Only the mapped form is unwrapped: the deprecated IPv4-compatible form (`::a.b.c.d`) would turn `::1` into
/// `0.0.0.1`.
pub fn canonical_ip(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        IpAddr::V4(_) => ip,
    }
}

/// The RFC 2428 protocol of an address, after unwrapping IPv4-mapped IPv6.
pub fn protocol_of(ip: IpAddr) -> NetProto {
    match canonical_ip(ip) {
        IpAddr::V4(_) => NetProto::V4,
        IpAddr::V6(_) => NetProto::V6,
    }
}

/// The IPv4 address to announce in a PASV reply, or `None` when the connection is truly IPv6: PASV can only
/// carry IPv4 (RFC 959), and such a client must use EPSV (answer 522 with [`protocol_not_supported`]).
pub fn pasv_ipv4(ip: IpAddr) -> Option<Ipv4Addr> {
    match canonical_ip(ip) {
        IpAddr::V4(v4) => Some(v4),
        IpAddr::V6(_) => None,
    }
}

/// `227 Entering Passive Mode (h1,h2,h3,h4,p1,p2).`, vsftpd's wording; clients read the six numbers.
pub fn pasv_reply(addr: SocketAddrV4) -> Reply {
    let [h1, h2, h3, h4] = addr.ip().octets();
    let [p1, p2] = addr.port().to_be_bytes();
    Reply::new(
        ReplyCode::EnteringPassiveMode,
        format!("Entering Passive Mode ({h1},{h2},{h3},{h4},{p1},{p2})."),
    )
}

/// `229 Entering Extended Passive Mode (|||port|)` (RFC 2428 §3): the client connects to the control connection's
/// address, so only the port is given.
pub fn epsv_reply(port: u16) -> Reply {
    Reply::new(
        ReplyCode::EnteringExtendedPassiveMode,
        format!("Entering Extended Passive Mode (|||{port}|)"),
    )
}

/// `522 Network protocol not supported, use (n)` (RFC 2428 §2–3), naming the protocol of the control connection,
/// the only one our data connections can use with this client.
pub fn protocol_not_supported(control_ip: IpAddr) -> Reply {
    let number = match protocol_of(control_ip) {
        NetProto::V4 => 1,
        NetProto::V6 => 2,
    };
    Reply::new(
        ReplyCode::NetworkProtocolNotSupported,
        format!("Network protocol not supported, use ({number})"),
    )
}

/// Whether PORT/EPRT may send data to `target`: only back to the client itself (the control connection's `peer`,
/// compared after unwrapping IPv4-mapped addresses) and only to an unprivileged port. Anything else is an FTP
/// bounce: the server used as a proxy to reach a third host, or a service on the client's host. Answer 500
/// ("Illegal PORT command.") when it returns false.
pub fn is_allowed_active_target(peer: IpAddr, target: SocketAddr) -> bool {
    canonical_ip(peer) == canonical_ip(target.ip()) && target.port() >= MIN_ACTIVE_PORT
}

#[cfg(test)]
mod tests {
    use std::net::Ipv6Addr;

    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    fn sock(text: &str) -> SocketAddr {
        text.parse().unwrap()
    }

    fn wire(reply: &Reply) -> String {
        String::from_utf8(reply.encode()).unwrap()
    }

    #[test]
    fn canonical_unwraps_only_mapped_addresses() {
        assert_eq!(canonical_ip(ip("::ffff:192.0.2.1")), ip("192.0.2.1"));
        assert_eq!(canonical_ip(ip("192.0.2.1")), ip("192.0.2.1"));
        assert_eq!(canonical_ip(ip("::1")), ip("::1"));
        assert_eq!(canonical_ip(ip("::192.0.2.1")), ip("::192.0.2.1"));
        assert_eq!(canonical_ip(ip("2001:db8::1")), ip("2001:db8::1"));
    }

    #[test]
    fn protocols() {
        assert_eq!(protocol_of(ip("10.0.0.1")), NetProto::V4);
        assert_eq!(protocol_of(ip("::ffff:10.0.0.1")), NetProto::V4);
        assert_eq!(protocol_of(ip("::1")), NetProto::V6);
    }

    #[test]
    fn pasv_reply_bytes() {
        let addr = SocketAddrV4::new(Ipv4Addr::new(192, 168, 1, 2), 60_001);
        assert_eq!(
            wire(&pasv_reply(addr)),
            "227 Entering Passive Mode (192,168,1,2,234,97).\r\n"
        );
        let addr = SocketAddrV4::new(Ipv4Addr::new(127, 0, 0, 1), 255);
        assert_eq!(
            wire(&pasv_reply(addr)),
            "227 Entering Passive Mode (127,0,0,1,0,255).\r\n"
        );
    }

    #[test]
    fn pasv_over_ipv6() {
        assert_eq!(
            pasv_ipv4(ip("::ffff:203.0.113.9")),
            Some(Ipv4Addr::new(203, 0, 113, 9))
        );
        assert_eq!(
            pasv_ipv4(ip("203.0.113.9")),
            Some(Ipv4Addr::new(203, 0, 113, 9))
        );
        assert_eq!(pasv_ipv4(ip("::1")), None);
        assert_eq!(pasv_ipv4(IpAddr::V6(Ipv6Addr::UNSPECIFIED)), None);
    }

    #[test]
    fn epsv_reply_bytes() {
        // RFC 2428 §3's example.
        assert_eq!(
            wire(&epsv_reply(6446)),
            "229 Entering Extended Passive Mode (|||6446|)\r\n"
        );
    }

    #[test]
    fn protocol_not_supported_names_the_control_protocol() {
        assert_eq!(
            wire(&protocol_not_supported(ip("10.0.0.1"))),
            "522 Network protocol not supported, use (1)\r\n"
        );
        assert_eq!(
            wire(&protocol_not_supported(ip("::ffff:10.0.0.1"))),
            "522 Network protocol not supported, use (1)\r\n"
        );
        assert_eq!(
            wire(&protocol_not_supported(ip("2001:db8::1"))),
            "522 Network protocol not supported, use (2)\r\n"
        );
    }

    #[test]
    fn active_target_must_be_the_peer() {
        let peer = ip("198.51.100.7");
        assert!(is_allowed_active_target(peer, sock("198.51.100.7:50000")));
        assert!(!is_allowed_active_target(peer, sock("198.51.100.8:50000")));
        assert!(!is_allowed_active_target(peer, sock("127.0.0.1:50000")));
        assert!(!is_allowed_active_target(peer, sock("[::1]:50000")));
    }

    #[test]
    fn active_target_port_must_be_unprivileged() {
        let peer = ip("198.51.100.7");
        assert!(is_allowed_active_target(peer, sock("198.51.100.7:1024")));
        assert!(!is_allowed_active_target(peer, sock("198.51.100.7:1023")));
        assert!(!is_allowed_active_target(peer, sock("198.51.100.7:25")));
        assert!(!is_allowed_active_target(peer, sock("198.51.100.7:0")));
    }

    #[test]
    fn active_target_compares_mapped_addresses() {
        // Dual-stack listener: the peer is mapped, PORT gives plain IPv4.
        assert!(is_allowed_active_target(
            ip("::ffff:198.51.100.7"),
            sock("198.51.100.7:40000")
        ));
        // And the other way round (EPRT |2|::ffff:…| from an IPv4 socket).
        assert!(is_allowed_active_target(
            ip("198.51.100.7"),
            sock("[::ffff:198.51.100.7]:40000")
        ));
        assert!(!is_allowed_active_target(
            ip("::ffff:198.51.100.7"),
            sock("198.51.100.70:40000")
        ));
        // IPv4-compatible is not mapped: ::198.51.100.7 is another address.
        assert!(!is_allowed_active_target(
            ip("198.51.100.7"),
            sock("[::198.51.100.7]:40000")
        ));
        assert!(is_allowed_active_target(
            ip("2001:db8::1"),
            sock("[2001:db8::1]:40000")
        ));
    }
}
