//! Data connections: passive listeners in the configured port range, active connects to the client (never to a
//! third party: no FTP bounce), TLS when PROT P is in force.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::ops::RangeInclusive;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use tokio::net::{TcpListener, TcpSocket};
use tokio_rustls::TlsAcceptor;
use tracing::{debug, warn};

use super::addr::canonical_ip as canonical;
use super::stream::{DataStream, MaybeTls, Watched};

/// How long a client has to open the data connection (or accept ours).
pub const DATA_CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

/// Hands out passive ports round-robin from the inclusive range, skipping ports in use.
#[derive(Debug)]
pub struct PassivePorts {
    range: RangeInclusive<u16>,
    next: AtomicU32,
}

impl PassivePorts {
    pub fn new(range: RangeInclusive<u16>) -> Self {
        Self {
            range,
            next: AtomicU32::new(0),
        }
    }

    /// Binds a listener on `ip` at the next free port of the range.
    pub async fn bind(&self, ip: IpAddr) -> io::Result<TcpListener> {
        let low = u32::from(*self.range.start());
        let count = u32::from(*self.range.end()) - low + 1;
        for _ in 0..count {
            let port = low + self.next.fetch_add(1, Ordering::Relaxed) % count;
            let Ok(port) = u16::try_from(port) else {
                continue;
            };
            match TcpListener::bind(SocketAddr::new(ip, port)).await {
                Ok(listener) => return Ok(listener),
                Err(e) if e.kind() == io::ErrorKind::AddrInUse => continue,
                Err(e) => return Err(e),
            }
        }
        Err(io::Error::new(
            io::ErrorKind::AddrInUse,
            "every passive port is in use",
        ))
    }
}

/// The data connection the next transfer will use.
#[derive(Debug, Default)]
pub enum DataPlan {
    #[default]
    None,
    /// PASV/EPSV: we listen; only the control connection's peer may connect.
    Passive { listener: TcpListener, peer: IpAddr },
    /// PORT/EPRT: we connect to the client, from the control connection's local address.
    Active { target: SocketAddr, local: IpAddr },
}

impl DataPlan {
    pub fn is_set(&self) -> bool {
        !matches!(self, DataPlan::None)
    }

    /// Opens the data connection (TLS-wrapped when `tls` is given).
    /// `stall`: how long the connection may make no progress before it fails with `TimedOut`.
    pub async fn connect(
        self,
        tls: Option<&TlsAcceptor>,
        stall: Duration,
    ) -> io::Result<DataStream> {
        let tcp = tokio::time::timeout(DATA_CONNECT_TIMEOUT, self.open_tcp())
            .await
            .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "data connection timed out"))??;
        tcp.set_nodelay(true)?;
        match tls {
            None => Ok(Watched::new(MaybeTls::Plain(tcp), stall)),
            Some(acceptor) => {
                let stream = tokio::time::timeout(DATA_CONNECT_TIMEOUT, acceptor.accept(tcp))
                    .await
                    .map_err(|_| {
                        io::Error::new(io::ErrorKind::TimedOut, "data TLS handshake timed out")
                    })??;
                Ok(Watched::new(MaybeTls::Tls(Box::new(stream)), stall))
            }
        }
    }

    async fn open_tcp(self) -> io::Result<tokio::net::TcpStream> {
        match self {
            DataPlan::None => Err(io::Error::new(
                io::ErrorKind::NotConnected,
                "no PASV, EPSV, PORT or EPRT first",
            )),
            DataPlan::Passive { listener, peer } => loop {
                let (stream, from) = listener.accept().await?;
                if canonical(from.ip()) == canonical(peer) {
                    debug!(%from, "passive data connection");
                    return Ok(stream);
                }
                // Someone else raced for the port: refuse, keep waiting for our client.
                warn!(%from, expected = %peer, "refused a data connection from a foreign address");
            },
            DataPlan::Active { target, local } => {
                let socket = if target.is_ipv4() {
                    TcpSocket::new_v4()?
                } else {
                    TcpSocket::new_v6()?
                };
                let local = canonical(local);
                if local.is_ipv4() == target.is_ipv4() {
                    socket.bind(SocketAddr::new(local, 0))?;
                }
                socket.connect(target).await
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn passive_ports_stay_in_range_and_skip_busy_ones() {
        let base = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let busy = base.local_addr().unwrap().port();
        // A two-port range whose first port is taken.
        let Some(second) = busy.checked_add(1) else {
            return;
        };
        let ports = PassivePorts::new(busy..=second);
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        match ports.bind(ip).await {
            Ok(l) => assert_eq!(l.local_addr().unwrap().port(), second),
            Err(e) => assert_eq!(
                e.kind(),
                io::ErrorKind::AddrInUse,
                "second port happened to be busy too"
            ),
        }
    }

    #[tokio::test]
    async fn passive_refuses_foreign_peers_until_the_client_connects() {
        use tokio::io::AsyncReadExt;
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let plan = DataPlan::Passive {
            listener,
            peer: "127.0.0.1".parse().unwrap(),
        };
        let server = tokio::spawn(plan.connect(None, Duration::from_secs(30)));

        // A connection from another address (127.0.0.2 is loopback too) is closed at once…
        let socket = TcpSocket::new_v4().unwrap();
        socket.bind("127.0.0.2:0".parse().unwrap()).unwrap();
        let mut foreign = socket.connect(addr).await.unwrap();
        let mut buf = [0u8; 1];
        assert_eq!(
            foreign.read(&mut buf).await.unwrap(),
            0,
            "foreign peer is disconnected"
        );
        assert!(!server.is_finished());

        // …and the client's own connection is the one accepted.
        let _client = tokio::net::TcpStream::connect(addr).await.unwrap();
        let stream = server.await.unwrap().unwrap();
        assert_eq!(
            stream.get_ref().tcp().peer_addr().unwrap().ip(),
            "127.0.0.1".parse::<IpAddr>().unwrap()
        );
    }
}
