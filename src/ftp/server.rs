//! The listeners: admit or refuse each connection (PROXY header, lockout, limits), hand it to a session task, stop
//! on request.

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tracing::{debug, info, warn};

use super::addr::canonical_ip as canonical;
use super::auth::LoginGuard;
use super::data::PassivePorts;
use super::limits::{ConnectionLimits, LimitError};
use super::metrics;
use super::proxy::{self, Peer, ProxyPolicy};
use super::reply::{Reply, ReplyCode};
use super::session;
use super::tls::Acceptors;
use crate::cluster::Cluster;
use crate::config::{Config, LegacyEncoding, TlsMode};
use crate::daemon::AccountFs;

/// Once transfers are aborted, how long a shutdown waits for the sessions to say goodbye and settle them (an
/// upload is aborted in the store); a session still busy then (a store request that hangs) is cut.
const SHUTDOWN_SETTLE: std::time::Duration = std::time::Duration::from_secs(10);

/// Everything sessions share. One per configuration: a reload (SIGHUP) builds the next with `reloaded` and the
/// server hands it out with `FtpServer::reload`; the login lockout table and the connection counts carry over.
pub struct ServerContext {
    pub accounts: HashMap<String, AccountFs>,
    pub config: Arc<Config>,
    pub limits: ConnectionLimits,
    pub logins: Arc<LoginGuard>,
    /// Which connections come through a load balancer and begin with a PROXY header.
    pub proxy: ProxyPolicy,
    pub passive: PassivePorts,
    /// The address announced in PASV replies, when `masquerade_address` is set (resolved at start).
    pub masquerade: Option<IpAddr>,
    pub tls: Option<Acceptors>,
    pub tls_mode: TlsMode,
    pub legacy_encoding: LegacyEncoding,
}

/// The context in force: sessions read it until they log in, the accept loops for each connection.
pub type LiveContext = watch::Receiver<Arc<ServerContext>>;

/// How far a shutdown has gone; sessions watch it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopPhase {
    Running,
    /// No new connections. Sessions without a transfer are closed (421); a running transfer finishes and is
    /// answered, then its session is closed.
    Draining,
    /// Every session is closed now (421); a running upload is aborted, nothing of it stored.
    Abort,
}

#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("cannot listen on {addr}: {source}")]
    Listen { addr: SocketAddr, source: io::Error },
    #[error("masquerade_address {name}: {message}")]
    Masquerade { name: String, message: String },
    #[error(transparent)]
    Tls(#[from] super::tls::TlsError),
}

impl ServerContext {
    /// `cluster`: the shared state of a cluster (`[CLUSTER]`), for the lockout and the connection limits (they
    /// stay the cluster's across reloads).
    pub async fn new(
        config: Arc<Config>,
        accounts: &[AccountFs],
        cluster: Option<&Arc<Cluster>>,
    ) -> Result<Self, ServerError> {
        let opt = &config.optional;
        let limits = match cluster {
            Some(cluster) => ConnectionLimits::cluster_wide(
                opt.max_connection_num,
                opt.max_connection_per_ip,
                cluster.connections(),
            ),
            None => ConnectionLimits::new(opt.max_connection_num, opt.max_connection_per_ip),
        };
        let logins = LoginGuard::new(
            opt.login_fail_limit,
            opt.login_fail_window,
            opt.login_ban_time,
        );
        let logins = Arc::new(match cluster {
            Some(cluster) => logins.cluster_wide(cluster.lockout()),
            None => logins,
        });
        Self::build(config, accounts, limits, logins).await
    }

    /// The context of a new configuration: TLS certificate and key read again (renewed files are picked up),
    /// `masquerade_address` resolved again; the connection counts and the lockout table are this one's, under
    /// the new limits. Nothing changes for this context's sessions.
    pub async fn reloaded(
        &self,
        config: Arc<Config>,
        accounts: &[AccountFs],
    ) -> Result<Self, ServerError> {
        let opt = &config.optional;
        let limits = self
            .limits
            .with_maxima(opt.max_connection_num, opt.max_connection_per_ip);
        let context = Self::build(
            Arc::clone(&config),
            accounts,
            limits,
            Arc::clone(&self.logins),
        )
        .await?;
        // Last, once nothing can fail: the lockout table is shared with the running sessions.
        self.logins.set_rules(
            opt.login_fail_limit,
            opt.login_fail_window,
            opt.login_ban_time,
        );
        Ok(context)
    }

    async fn build(
        config: Arc<Config>,
        accounts: &[AccountFs],
        limits: ConnectionLimits,
        logins: Arc<LoginGuard>,
    ) -> Result<Self, ServerError> {
        let net = &config.network;
        let masquerade = match &net.masquerade_address {
            None => None,
            Some(name) => Some(resolve(name).await?),
        };
        let tls = match (&net.tls_cert_file, &net.tls_key_file) {
            (Some(cert), Some(key)) => Some(super::tls::acceptor(cert, key)?),
            _ => None,
        };
        Ok(Self {
            accounts: accounts
                .iter()
                .map(|a| (a.account.user.clone(), a.clone()))
                .collect(),
            limits,
            logins,
            proxy: ProxyPolicy::new(net.proxy_protocol_from.clone()),
            passive: PassivePorts::new(net.passive_ports.clone()),
            masquerade,
            tls_mode: if tls.is_some() {
                net.tls_mode
            } else {
                TlsMode::Off
            },
            tls,
            legacy_encoding: net.legacy_encoding,
            config,
        })
    }
}

/// `masquerade_address` may be an IP address or a host name (the original silently ignored names).
async fn resolve(name: &str) -> Result<IpAddr, ServerError> {
    if let Ok(ip) = name.parse::<IpAddr>() {
        return Ok(ip);
    }
    let mut addrs =
        tokio::net::lookup_host((name, 0))
            .await
            .map_err(|e| ServerError::Masquerade {
                name: name.to_string(),
                message: e.to_string(),
            })?;
    let first = addrs.next();
    // PASV can only announce IPv4; prefer it when the name has both.
    let v4 = std::iter::once(first)
        .flatten()
        .chain(addrs)
        .find(|a| a.is_ipv4());
    v4.or(first)
        .map(|a| a.ip())
        .ok_or_else(|| ServerError::Masquerade {
            name: name.to_string(),
            message: "no address found".into(),
        })
}

/// The running listeners; `shutdown_gracefully` (SIGTERM) stops accepting and ends every session.
pub struct FtpServer {
    contexts: watch::Sender<Arc<ServerContext>>,
    stop: watch::Sender<StopPhase>,
    tasks: JoinSet<()>,
    local_addrs: Vec<SocketAddr>,
}

impl FtpServer {
    /// Binds the control listener (and the implicit-TLS one when configured) and starts accepting.
    pub async fn start(context: Arc<ServerContext>) -> Result<FtpServer, ServerError> {
        let net = &context.config.network;
        let mut listeners = vec![(
            bind(SocketAddr::new(net.listen_address, net.listen_port)).await?,
            false,
        )];
        if let (Some(port), Some(_)) = (net.tls_implicit_port, &context.tls) {
            listeners.push((bind(SocketAddr::new(net.listen_address, port)).await?, true));
        }
        let listen_address = net.listen_address;
        let (contexts, _) = watch::channel(context);
        let (stop, _) = watch::channel(StopPhase::Running);
        let mut tasks = JoinSet::new();
        let mut local_addrs = Vec::new();
        for (listener, implicit_tls) in listeners {
            let addr = listener
                .local_addr()
                .map_err(|source| ServerError::Listen {
                    addr: SocketAddr::new(listen_address, 0),
                    source,
                })?;
            info!(%addr, implicit_tls, "FTP listening");
            local_addrs.push(addr);
            tasks.spawn(accept_loop(
                listener,
                implicit_tls,
                contexts.subscribe(),
                stop.subscribe(),
            ));
        }
        Ok(FtpServer {
            contexts,
            stop,
            tasks,
            local_addrs,
        })
    }

    /// The bound addresses (the control listener first), for tests that listen on port 0.
    pub fn local_addrs(&self) -> &[SocketAddr] {
        &self.local_addrs
    }

    /// The context in force.
    pub fn context(&self) -> Arc<ServerContext> {
        Arc::clone(&self.contexts.borrow())
    }

    /// From now on, new connections and logins use `context` (SIGHUP). Sessions logged in keep their account
    /// as it was, unless it is gone from `context`: then they end after their running transfer (421).
    pub fn reload(&self, context: ServerContext) {
        self.contexts.send_replace(Arc::new(context));
    }

    /// Control connections admitted and not yet ended (a session ends after its transfer has been settled).
    pub fn connections(&self) -> usize {
        self.contexts.borrow().limits.active()
    }

    /// Stops at once: no new connections, every session closed (421), running uploads aborted.
    pub async fn shutdown(self) {
        self.shutdown_gracefully(std::time::Duration::ZERO, std::future::pending())
            .await
    }

    /// SIGTERM: no new connections; sessions without a transfer are closed (421) and running transfers may
    /// finish for `grace` (or until `now` resolves: a second signal), then the rest are aborted as `shutdown`
    /// does.
    pub async fn shutdown_gracefully(
        mut self,
        grace: std::time::Duration,
        now: impl std::future::Future<Output = ()>,
    ) {
        self.stop.send_replace(StopPhase::Draining);
        if !grace.is_zero() {
            let sessions = self.connections();
            if sessions > 0 {
                info!(
                    sessions,
                    "no new connections; running transfers may finish within {} s (shutdown_grace; a second \
                     signal aborts them)",
                    grace.as_secs_f64()
                );
            }
            let drained = async { while self.tasks.join_next().await.is_some() {} };
            tokio::select! {
                _ = drained => return,
                _ = tokio::time::sleep(grace) => {
                    info!("shutdown_grace is over: aborting the transfers still running")
                }
                _ = now => info!("second signal: aborting the transfers still running"),
            }
        }
        self.stop.send_replace(StopPhase::Abort);
        while self.tasks.join_next().await.is_some() {}
    }
}

async fn bind(addr: SocketAddr) -> Result<TcpListener, ServerError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| ServerError::Listen { addr, source })
}

async fn accept_loop(
    listener: TcpListener,
    implicit_tls: bool,
    contexts: LiveContext,
    mut stop: watch::Receiver<StopPhase>,
) {
    let mut sessions = JoinSet::new();
    loop {
        tokio::select! {
            _ = stop.changed() => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, tcp_peer)) => {
                    // Everything that may wait (a PROXY header, Redis) runs in the connection's own task, never
                    // in this loop.
                    sessions.spawn(admit(stream, tcp_peer, implicit_tls, contexts.clone(), stop.clone()));
                }
                Err(e) => {
                    // Out of file descriptors and the like: back off briefly instead of spinning.
                    warn!(error = %e, "accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                }
            },
            Some(_) = sessions.join_next(), if !sessions.is_empty() => {}
        }
    }
    drop(listener);
    // Draining: every session sees the stop itself and ends after its transfer (or at once, without one).
    let drained = async { while sessions.join_next().await.is_some() {} };
    tokio::select! {
        _ = drained => return,
        _ = stop.wait_for(|phase| *phase == StopPhase::Abort) => {}
    }
    // Aborting: every session says `421 Server shutting down.` and settles its transfer (an upload is aborted).
    // Aborting the tasks at once instead raced their goodbyes: some clients got a bare close.
    let all_ended = async { while sessions.join_next().await.is_some() {} };
    if tokio::time::timeout(SHUTDOWN_SETTLE, all_ended)
        .await
        .is_err()
    {
        warn!(
            sessions = sessions.len(),
            "sessions still busy {} s after the shutdown: closing them",
            SHUTDOWN_SETTLE.as_secs()
        );
    }
    sessions.shutdown().await;
}

async fn admit(
    mut stream: TcpStream,
    tcp_peer: SocketAddr,
    implicit_tls: bool,
    contexts: LiveContext,
    stop: watch::Receiver<StopPhase>,
) {
    let context = Arc::clone(&contexts.borrow());
    let peer = if context.proxy.expects_header(tcp_peer.ip()) {
        match proxy::accept_header(&mut stream, tcp_peer).await {
            Ok(proxy::Header::Relayed(peer)) => peer,
            // The balancer's health check: the greeting (for checks that expect it), no session.
            Ok(proxy::Header::Local) => {
                debug!(%tcp_peer, "health check of the load balancer");
                let _ = stream
                    .write_all(&Reply::service_ready("cosftpd ready.").encode())
                    .await;
                return;
            }
            // A balancer's health check connects and closes; anything else is worth a line.
            Err(proxy::ProxyError::Closed) => {
                return debug!(%tcp_peer, "closed before a PROXY header (a health check?)")
            }
            Err(e) => return info!(%tcp_peer, error = %e, "connection refused"),
        }
    } else {
        Peer::direct(tcp_peer)
    };
    let client = peer.client;
    let ip = canonical(client.ip());
    if context.logins.is_banned(ip).await {
        info!(peer = %client, "connection refused: address locked out after failed logins");
        metrics::connection_refused("locked_out");
        let reply = Reply::new(
            ReplyCode::ServiceNotAvailable,
            "Too many failed logins from your address; try again later.",
        );
        let _ = stream.write_all(&reply.encode()).await;
        return;
    }
    let permit = match context.limits.try_admit(ip).await {
        Ok(permit) => permit,
        Err(e) => {
            info!(peer = %client, reason = %e, "connection refused");
            metrics::connection_refused(match e {
                LimitError::Total => "max_connection_num",
                LimitError::PerIp => "max_connection_per_ip",
            });
            let reply = Reply::new(
                ReplyCode::ServiceNotAvailable,
                format!("{e}; try again later."),
            );
            let _ = stream.write_all(&reply.encode()).await;
            return;
        }
    };
    // The session reads the context in force from `contexts` (a reload may replace it before the login).
    drop(context);
    session::run(stream, peer, implicit_tls, contexts, stop).await;
    drop(permit);
}
