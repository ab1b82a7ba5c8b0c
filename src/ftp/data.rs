//! Data connections: passive listeners in the configured port range, active connects to the client (never to a
//! third party: no FTP bounce), TLS when PROT P is in force.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::ops::RangeInclusive;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use tokio::net::{TcpListener, TcpSocket};
use tokio::task::JoinHandle;
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
    /// PASV/EPSV: we listen; only the control connection's peer may connect, and its connection is taken as soon
    /// as it arrives.
    Passive(PassiveAccept),
    /// PORT/EPRT: we connect to the client, from the control connection's local address.
    Active { target: SocketAddr, local: IpAddr },
}

/// A passive listener's accept, running from PASV/EPSV on: the client's connection is taken when it arrives, and
/// under PROT P its TLS handshake is done then too, without waiting for the transfer command. Clients such as
/// aioftp finish the handshake before they send the command; waiting for the command would deadlock them until a
/// timeout. Dropping it (a new PASV, the session's end) closes the listener.
pub struct PassiveAccept {
    task: JoinHandle<io::Result<MaybeTls>>,
}

impl PassiveAccept {
    /// Starts accepting on `listener` for `peer`, with the handshake when `tls` is given.
    pub fn start(listener: TcpListener, peer: IpAddr, tls: Option<TlsAcceptor>) -> Self {
        Self {
            task: tokio::spawn(accept_passive(listener, peer, tls)),
        }
    }
}

impl std::fmt::Debug for PassiveAccept {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PassiveAccept")
            .field("connected", &self.task.is_finished())
            .finish()
    }
}

impl Drop for PassiveAccept {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Waits for `peer`'s connection on `listener`, refusing others, then does the TLS handshake if asked.
async fn accept_passive(
    listener: TcpListener,
    peer: IpAddr,
    tls: Option<TlsAcceptor>,
) -> io::Result<MaybeTls> {
    let mut refused = 0u64;
    let tcp = loop {
        let (stream, from) = listener.accept().await?;
        if canonical(from.ip()) == canonical(peer) {
            debug!(%from, "passive data connection");
            break stream;
        }
        // Someone else raced for the port: refuse, keep waiting for our client. Logged at WARN once per listener,
        // so that a flood of foreign connections cannot flood the log.
        refused += 1;
        if refused == 1 {
            warn!(%from, expected = %peer, "refused a data connection from a foreign address (more are logged at DEBUG)");
        } else {
            debug!(%from, expected = %peer, refused, "refused a data connection from a foreign address");
        }
    };
    drop(listener);
    tcp.set_nodelay(true)?;
    match tls {
        None => Ok(MaybeTls::Plain(tcp)),
        Some(acceptor) => handshake(&acceptor, tcp).await,
    }
}

async fn handshake(acceptor: &TlsAcceptor, tcp: tokio::net::TcpStream) -> io::Result<MaybeTls> {
    let stream = tokio::time::timeout(DATA_CONNECT_TIMEOUT, acceptor.accept(tcp))
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "data TLS handshake timed out"))??;
    Ok(MaybeTls::Tls(Box::new(stream)))
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
        let stream = tokio::time::timeout(DATA_CONNECT_TIMEOUT, self.open(tls))
            .await
            .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "data connection timed out"))??;
        Ok(Watched::new(stream, stall))
    }

    async fn open(self, tls: Option<&TlsAcceptor>) -> io::Result<MaybeTls> {
        match self {
            DataPlan::None => Err(io::Error::new(
                io::ErrorKind::NotConnected,
                "no PASV, EPSV, PORT or EPRT first",
            )),
            DataPlan::Passive(mut accept) => {
                let stream = (&mut accept.task).await.map_err(io::Error::other)??;
                match (stream, tls) {
                    (stream @ MaybeTls::Tls(_), Some(_)) | (stream @ MaybeTls::Plain(_), None) => {
                        Ok(stream)
                    }
                    // PROT P came after PASV: the handshake is done now.
                    (MaybeTls::Plain(tcp), Some(acceptor)) => handshake(acceptor, tcp).await,
                    (MaybeTls::Tls(_), None) => Err(io::Error::new(
                        io::ErrorKind::InvalidInput,
                        "PROT C came after PASV/EPSV; send PASV or EPSV again",
                    )),
                }
            }
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
                let tcp = socket.connect(target).await?;
                tcp.set_nodelay(true)?;
                match tls {
                    None => Ok(MaybeTls::Plain(tcp)),
                    Some(acceptor) => handshake(acceptor, tcp).await,
                }
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
        let log = CapturedLog::default();
        let _log = tracing::subscriber::set_default(log.subscriber());
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let plan = DataPlan::Passive(PassiveAccept::start(
            listener,
            "127.0.0.1".parse().unwrap(),
            None,
        ));
        let server = tokio::spawn(plan.connect(None, Duration::from_secs(30)));

        // Connections from another address (127.0.0.2 is loopback too) are closed at once…
        for _ in 0..5 {
            let socket = TcpSocket::new_v4().unwrap();
            socket.bind("127.0.0.2:0".parse().unwrap()).unwrap();
            let mut foreign = socket.connect(addr).await.unwrap();
            let mut buf = [0u8; 1];
            assert_eq!(
                foreign.read(&mut buf).await.unwrap(),
                0,
                "foreign peer is disconnected"
            );
        }
        assert!(!server.is_finished());

        // …and the client's own connection is the one accepted.
        let _client = tokio::net::TcpStream::connect(addr).await.unwrap();
        let stream = server.await.unwrap().unwrap();
        assert_eq!(
            stream.get_ref().tcp().peer_addr().unwrap().ip(),
            "127.0.0.1".parse::<IpAddr>().unwrap()
        );
        // One WARN line for the listener, however many were refused; the rest at DEBUG.
        let refusals = log.lines("refused a data connection");
        assert_eq!(refusals.len(), 5, "{refusals:#?}");
        let warned = refusals.iter().filter(|l| l.contains("WARN")).count();
        assert_eq!(warned, 1, "{refusals:#?}");
    }

    /// Log lines written while its subscriber is the thread's default (a current-thread runtime's tasks included).
    #[derive(Clone, Default)]
    struct CapturedLog(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

    impl CapturedLog {
        fn subscriber(&self) -> impl tracing::Subscriber + Send + Sync {
            let log = self.clone();
            tracing_subscriber::fmt()
                .with_max_level(tracing::Level::DEBUG)
                .with_ansi(false)
                .with_writer(move || log.clone())
                .finish()
        }

        fn lines(&self, containing: &str) -> Vec<String> {
            let bytes = self.0.lock().unwrap().clone();
            String::from_utf8_lossy(&bytes)
                .lines()
                .filter(|l| l.contains(containing))
                .map(str::to_string)
                .collect()
        }
    }

    impl std::io::Write for CapturedLog {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
}
