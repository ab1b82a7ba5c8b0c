//! One control connection: the state machine from greeting to QUIT. Commands are parsed by `command`, replies
//! encoded by `reply`; file operations go to the account's `BucketFs`, which decides every permission.

mod commands;
mod connection;
mod digests;
mod transfers;

use std::net::SocketAddr;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::Instant;

use bytes::BytesMut;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::{info, info_span, warn, Instrument};

use super::command::{self, AuthMechanism, Command, ListArgs, ParseError, SiteCommand};
use super::data::DataPlan;
use super::encoding::NameEncoding;
use super::fs_reply::reply_for;
use super::listing;
use super::metrics::{SessionGauge, SessionState};
use super::proxy::Peer;
use super::reply::{Reply, ReplyCode};
use super::server::{LiveContext, ServerContext, StopPhase};
use super::stream::MaybeTls;
use super::transfer::{Outcome, Signal};
use super::xferlog;
use crate::bucketfs::{FsError, Key};
use crate::config::LegacyEncoding;
use crate::daemon::AccountFs;

/// Longest control line we accept (RFC 959 has no limit; clients send far less).
const MAX_LINE: usize = 4096;
/// A "line" this long without an end is a flood: the session is closed.
const MAX_FLOOD: usize = 1024 * 1024;

/// Runs a session to its end. Never panics on input; every failure ends this connection only. `peer.client` is
/// the client everywhere (a PROXY header's source when the connection came through a balancer).
pub async fn run(
    stream: TcpStream,
    peer: Peer,
    implicit_tls: bool,
    contexts: LiveContext,
    stop: watch::Receiver<StopPhase>,
) {
    let span = info_span!("ftp", peer = %peer.client, via = tracing::field::Empty, user = tracing::field::Empty);
    if let Some(via) = peer.via {
        span.record("via", tracing::field::display(via));
    }
    async move {
        let context = Arc::clone(&contexts.borrow());
        let local = match stream.local_addr() {
            Ok(addr) => addr,
            Err(e) => {
                warn!(error = %e, "no local address");
                return;
            }
        };
        let _ = stream.set_nodelay(true);
        // Clients send ABOR (or the Telnet IAC DM before it) as TCP urgent data; without OOBINLINE the kernel takes
        // the urgent byte out of the stream (ftplib's `ABOR\r\n` would lose its `\n`, lftp's `IAC DM` its `DM`).
        if let Err(e) = socket2::SockRef::from(&stream).set_out_of_band_inline(true) {
            warn!(error = %e, "cannot set SO_OOBINLINE");
        }
        let control = if implicit_tls {
            let Some(acceptor) = context.tls.as_ref().map(|tls| tls.control.clone()) else {
                return;
            };
            match tokio::time::timeout(
                context.config.optional.login_timeout,
                acceptor.accept(stream),
            )
            .await
            {
                Ok(Ok(tls)) => MaybeTls::Tls(Box::new(tls)),
                Ok(Err(e)) => return info!(error = %e, "TLS handshake failed"),
                Err(_) => return info!("TLS handshake timed out"),
            }
        } else {
            MaybeTls::Plain(stream)
        };
        info!(implicit_tls, "session start");
        let started = Instant::now();
        let mut session = Session::new(context, contexts, control, peer, local, implicit_tls, stop);
        let reason = session.serve().await;
        // The span carries the user (once logged in) and the peer.
        info!(reason, seconds = started.elapsed().as_secs(), "session end");
    }
    .instrument(span)
    .await
}

enum Login {
    None,
    /// USER given, waiting for PASS.
    User(String),
    LoggedIn(AccountFs),
}

struct Transfer {
    task: JoinHandle<Outcome>,
    /// QUIT, ABOR and the end of the control connection, as the session reads them.
    signal: watch::Sender<Signal>,
    progress: Arc<AtomicU64>,
    info: TransferInfo,
}

/// What the transfer log says of a transfer.
struct TransferInfo {
    command: &'static str,
    /// The transfer log's name for it; `None` for listings, which are not logged there.
    op: Option<xferlog::Op>,
    key: Key,
    started: Instant,
    ascii: bool,
}

struct Session {
    /// The context this session runs under: the newest until login, then the one it logged in with.
    context: Arc<ServerContext>,
    /// The context in force, for logins and to see the account removed by a reload.
    contexts: LiveContext,
    /// The reload channel is gone (the server is being dropped): nothing more to watch.
    contexts_closed: bool,
    control: Option<MaybeTls>,
    /// The client (see `run`).
    peer: SocketAddr,
    /// The balancer's front end the client connected to, when the connection came through one.
    front: Option<SocketAddr>,
    local: SocketAddr,
    stop: watch::Receiver<StopPhase>,
    /// The server is stopping: the session ends once its running transfer has ended and been answered.
    draining: bool,
    /// A reload removed this session's account: the session ends once its running transfer has ended.
    account_removed: bool,
    gauge: SessionGauge,
    input: BytesMut,
    /// Bytes of an over-long line thrown away so far.
    discarded: usize,
    login: Login,
    /// The session's directory: `PWD` shows it, relative arguments start from it.
    cwd: Key,
    rest: u64,
    rename_from: Option<Key>,
    data: DataPlan,
    epsv_all: bool,
    binary: bool,
    pbsz: bool,
    protect_data: bool,
    mlst_facts: listing::Facts,
    /// HASH's algorithm (`OPTS HASH`).
    hash_algorithm: crate::bucketfs::digest::Algorithm,
    /// The bytes the next RETR or HASH covers (`RANG`), end exclusive.
    range: Option<std::ops::Range<u64>>,
    connected_at: Instant,
    transfer: Option<Transfer>,
    /// QUIT came during a transfer: the session ends once the transfer has ended and been answered.
    quit_pending: bool,
    /// The client closed the control connection after QUIT, while the transfer runs on.
    control_closed: bool,
}

impl Session {
    fn new(
        context: Arc<ServerContext>,
        contexts: LiveContext,
        control: MaybeTls,
        peer: Peer,
        local: SocketAddr,
        implicit_tls: bool,
        stop: watch::Receiver<StopPhase>,
    ) -> Self {
        Self {
            context,
            contexts,
            contexts_closed: false,
            control: Some(control),
            peer: peer.client,
            front: peer.via.map(|via| peer.target.unwrap_or(via)),
            local,
            stop,
            draining: false,
            account_removed: false,
            gauge: SessionGauge::new(),
            input: BytesMut::with_capacity(512),
            discarded: 0,
            login: Login::None,
            cwd: Key::root(),
            rest: 0,
            rename_from: None,
            data: DataPlan::None,
            epsv_all: false,
            binary: true,
            pbsz: implicit_tls,
            protect_data: implicit_tls,
            mlst_facts: listing::Facts::default(),
            hash_algorithm: crate::bucketfs::digest::Algorithm::Sha256,
            range: None,
            connected_at: Instant::now(),
            transfer: None,
            quit_pending: false,
            control_closed: false,
        }
    }

    fn user_name(&self) -> &str {
        match &self.login {
            Login::LoggedIn(a) => &a.account.user,
            Login::User(u) => u,
            Login::None => "-",
        }
    }

    /// Before login, the session follows the context in force (accounts, TLS, limits of a reload).
    fn follow_reloads(&mut self) {
        if !matches!(self.login, Login::LoggedIn(_)) {
            self.context = Arc::clone(&self.contexts.borrow_and_update());
        }
    }

    /// Whether the context in force still has this session's account.
    fn account_still_served(&mut self) -> bool {
        match &self.login {
            Login::LoggedIn(a) => self
                .contexts
                .borrow_and_update()
                .accounts
                .contains_key(&a.account.user),
            _ => true,
        }
    }

    fn sync_gauge(&mut self) {
        let state = match (&self.login, &self.transfer) {
            (Login::LoggedIn(_), Some(_)) => SessionState::Transferring,
            (Login::LoggedIn(_), None) => SessionState::Idle,
            _ => SessionState::Unauthenticated,
        };
        self.gauge.set(state);
    }

    fn encoding(&self) -> NameEncoding {
        match self.context.legacy_encoding {
            LegacyEncoding::None => NameEncoding::Utf8,
            LegacyEncoding::Gbk => NameEncoding::Gbk,
        }
    }

    fn tls_active(&self) -> bool {
        self.control.as_ref().is_some_and(MaybeTls::is_tls)
    }

    /// The command loop; returns why the session ended.
    async fn serve(&mut self) -> &'static str {
        if self
            .send(Reply::service_ready("cosftpd ready."))
            .await
            .is_err()
        {
            return "greeting failed";
        }
        loop {
            let line = match self.next_line().await {
                Ok(line) => line,
                Err(end) => {
                    let signal = if end.client_gone {
                        Signal::ClientGone
                    } else {
                        Signal::Abort
                    };
                    self.cancel_transfer(signal).await;
                    return end.reason;
                }
            };
            match self.handle_line(&line).await {
                Ok(Flow::Continue) => {}
                Ok(Flow::Quit) => {
                    self.cancel_transfer(Signal::Abort).await;
                    return "quit";
                }
                Err(_) => {
                    self.cancel_transfer(Signal::ClientGone).await;
                    return "control connection lost";
                }
            }
        }
    }

    /// The next control line, while also finishing a running transfer (its final reply is sent as soon as it
    /// ends). Errors carry why the session must end.
    ///
    /// Idle means "no complete command": the idle clock starts when the previous command has been answered (or
    /// the last transfer has ended) and bytes of an unfinished line do not restart it, so a client trickling a
    /// line byte by byte is cut like a silent one. Before login the clock is `login_timeout` from the connect.
    async fn next_line(&mut self) -> Result<Line, End> {
        let mut idle_since = tokio::time::Instant::now();
        loop {
            self.sync_gauge();
            if let Some(line) = self
                .take_line()
                .map_err(|_| End::session("control line flood"))?
            {
                return Ok(line);
            }
            let logged_in = matches!(self.login, Login::LoggedIn(_));
            // A long transfer is activity: no idle timeout while one runs.
            let deadline = if self.transfer.is_some() {
                None
            } else if logged_in {
                Some(idle_since + self.context.config.optional.idle_timeout)
            } else {
                Some(tokio::time::Instant::from_std(
                    self.connected_at + self.context.config.optional.login_timeout,
                ))
            };
            let watch_account = logged_in && !self.contexts_closed;
            let Some(control) = self.control.as_mut() else {
                return Err(End::session("no control connection"));
            };
            let read = tokio::select! {
                r = control.read_control(&mut self.input), if !self.control_closed => Event::Read(r),
                outcome = wait_transfer(&mut self.transfer) => Event::TransferDone(outcome),
                _ = idle(deadline) => Event::Timeout,
                _ = self.stop.changed() => Event::Stop,
                changed = self.contexts.changed(), if watch_account => Event::Reloaded(changed.is_ok()),
            };
            match read {
                Event::Read(Ok(0)) if self.quit_pending && self.transfer.is_some() => {
                    self.control_closed = true;
                }
                Event::Read(Ok(0)) => return Err(End::client_gone("client closed the connection")),
                Event::Read(Ok(_)) => {}
                Event::Read(Err(_)) => return Err(End::client_gone("control connection error")),
                Event::TransferDone(outcome) => {
                    let done = self.transfer.take().map(|t| t.info);
                    let answered = self.finish_transfer(done, outcome).await;
                    if self.quit_pending {
                        let _ = self.send(Reply::goodbye()).await;
                        return Err(End::session("quit"));
                    }
                    answered.map_err(|_| End::client_gone("control connection lost"))?;
                    if self.draining {
                        self.say_shutting_down().await;
                        return Err(End::session("server shutdown"));
                    }
                    if self.account_removed {
                        self.say_account_removed().await;
                        return Err(End::session("account removed"));
                    }
                    idle_since = tokio::time::Instant::now();
                }
                Event::Timeout => {
                    let text = if logged_in {
                        "Timeout: no command for too long."
                    } else {
                        "Timeout: login took too long."
                    };
                    let _ = self
                        .send(Reply::new(ReplyCode::ServiceNotAvailable, text))
                        .await;
                    return Err(End::session("timeout"));
                }
                Event::Stop => {
                    // Draining lets a running transfer finish (the session ends after it); an abort, or a stop
                    // with nothing running, ends the session now.
                    let phase = *self.stop.borrow_and_update();
                    if phase == StopPhase::Draining && self.transfer.is_some() {
                        self.draining = true;
                        continue;
                    }
                    self.say_shutting_down().await;
                    return Err(End::session("server shutdown"));
                }
                Event::Reloaded(false) => self.contexts_closed = true,
                Event::Reloaded(true) => {
                    if !self.account_still_served() {
                        if self.transfer.is_some() {
                            self.account_removed = true;
                        } else {
                            self.say_account_removed().await;
                            return Err(End::session("account removed"));
                        }
                    }
                }
            }
        }
    }

    /// What a session hears when a reload has removed its account.
    async fn say_account_removed(&mut self) {
        info!("account removed from the configuration: closing the session");
        let _ = self
            .send(Reply::new(
                ReplyCode::ServiceNotAvailable,
                "Your account was removed from this server.",
            ))
            .await;
    }

    /// What every session hears when the server stops (SIGTERM).
    async fn say_shutting_down(&mut self) {
        let _ = self
            .send(Reply::new(
                ReplyCode::ServiceNotAvailable,
                "Server shutting down.",
            ))
            .await;
    }

    /// Splits one line off the input buffer (CRLF or bare LF), dropping Telnet IAC sequences. An over-long line is
    /// discarded as it arrives (memory stays bounded) and answered with 500; a flood ends the session.
    fn take_line(&mut self) -> Result<Option<Line>, ()> {
        let Some(end) = self.input.iter().position(|&b| b == b'\n') else {
            if self.input.len() > MAX_LINE {
                self.discarded += self.input.len();
                self.input.clear();
                if self.discarded > MAX_FLOOD {
                    return Err(());
                }
            }
            return Ok(None);
        };
        let raw = self.input.split_to(end + 1);
        if self.discarded > 0 || raw.len() > MAX_LINE {
            self.discarded = 0;
            return Ok(Some(Line::TooLong));
        }
        Ok(Some(Line::Command(strip_telnet(&raw[..end]))))
    }

    async fn send(&mut self, reply: Reply) -> std::io::Result<()> {
        // GBK clients get names back in GBK; everything else in a reply is ASCII, the same in both.
        let bytes = reply.encode_as(self.encoding());
        let Some(control) = self.control.as_mut() else {
            return Err(std::io::Error::new(
                std::io::ErrorKind::NotConnected,
                "no control connection",
            ));
        };
        control.write_all(&bytes).await?;
        control.flush().await
    }

    async fn reply(&mut self, code: ReplyCode, text: impl Into<String>) -> std::io::Result<Flow> {
        self.send(Reply::new(code, text)).await?;
        Ok(Flow::Continue)
    }

    async fn fs_error(&mut self, err: &FsError) -> std::io::Result<Flow> {
        info!(error = %err, "refused");
        self.send_continue(reply_for(err)).await
    }

    async fn handle_line(&mut self, line: &Line) -> std::io::Result<Flow> {
        let line = match line {
            Line::TooLong => {
                return self
                    .reply(
                        ReplyCode::CommandSyntaxError,
                        format!("Command line too long (limit {MAX_LINE} bytes)."),
                    )
                    .await;
            }
            Line::Command(line) => line,
        };
        if line.is_empty() {
            return Ok(Flow::Continue);
        }
        let command = match command::parse(line) {
            Ok(command) => command,
            Err(e) => return self.parse_error(e).await,
        };
        if self.transfer.is_some() {
            return self.during_transfer(command).await;
        }
        self.dispatch(command).await
    }

    async fn parse_error(&mut self, e: ParseError) -> std::io::Result<Flow> {
        self.send(Reply::from(&e)).await?;
        Ok(Flow::Continue)
    }

    /// While a transfer runs, only ABOR, STAT, NOOP and QUIT are served (RFC 959 §4.1.3).
    async fn during_transfer(&mut self, command: Command) -> std::io::Result<Flow> {
        match command {
            Command::Abor => {
                let (done, outcome) = self.stop_transfer().await;
                if let Some(outcome) = outcome {
                    self.finish_transfer(done, outcome).await?;
                }
                self.reply(ReplyCode::ClosingDataConnection, "ABOR successful.")
                    .await
            }
            Command::Stat(_) => {
                let text = match &self.transfer {
                    Some(t) => format!(
                        "{} {}: {} bytes so far.",
                        t.info.command,
                        t.info.key.display(),
                        t.progress.load(std::sync::atomic::Ordering::Relaxed)
                    ),
                    None => "No transfer.".into(),
                };
                self.reply(ReplyCode::FileStatus, text).await
            }
            Command::Noop => self.reply(ReplyCode::CommandOkay, "NOOP ok.").await,
            Command::Quit => {
                // RFC 959 §4.1.1: the transfer completes and is answered, then the session closes.
                self.quit_pending = true;
                if let Some(t) = &self.transfer {
                    t.signal.send_replace(Signal::Quit);
                }
                Ok(Flow::Continue)
            }
            _ => {
                self.reply(
                    ReplyCode::BadCommandSequence,
                    "A transfer is in progress; send ABOR first.",
                )
                .await
            }
        }
    }

    async fn dispatch(&mut self, command: Command) -> std::io::Result<Flow> {
        self.follow_reloads();
        // Commands allowed before login.
        match command {
            Command::User(name) => return self.user(name).await,
            Command::Pass(password) => return self.pass(password.as_bytes()).await,
            Command::Quit => {
                self.send(Reply::goodbye()).await?;
                return Ok(Flow::Quit);
            }
            Command::Auth(AuthMechanism::Tls) => return self.auth().await,
            Command::Auth(AuthMechanism::Other(_)) => {
                return self.send_continue(Reply::parameter_not_implemented()).await
            }
            Command::Pbsz(_) => {
                if !self.tls_active() {
                    return self
                        .reply(
                            ReplyCode::BadCommandSequence,
                            "PBSZ needs a TLS connection (AUTH TLS first).",
                        )
                        .await;
                }
                self.pbsz = true;
                return self.reply(ReplyCode::CommandOkay, "PBSZ=0").await;
            }
            Command::Prot(level) => return self.prot(level).await,
            Command::Feat => return self.send_continue(self.feat()).await,
            Command::Syst => return self.send_continue(Reply::system_type()).await,
            Command::Noop => return self.send_continue(Reply::ok("NOOP ok.")).await,
            Command::Help(_) | Command::Site(SiteCommand::Help) => {
                return self.send_continue(help_reply()).await
            }
            Command::Opts(opts) => return self.opts(opts).await,
            Command::Abor => {
                return self
                    .reply(ReplyCode::DataConnectionOpen, "No transfer to abort.")
                    .await
            }
            Command::Unknown(verb) => {
                return self
                    .reply(
                        ReplyCode::CommandNotImplemented,
                        format!("{verb} not implemented."),
                    )
                    .await
            }
            _ => {}
        }
        let Login::LoggedIn(account) = &self.login else {
            return self.send_continue(Reply::not_logged_in()).await;
        };
        let account = account.clone();
        match command {
            Command::Pwd => {
                self.send_continue(Reply::current_directory(&self.cwd.display()))
                    .await
            }
            Command::Cwd(arg) => self.cwd(&account, arg.as_bytes()).await,
            Command::Cdup => self.cwd(&account, b"..").await,
            Command::Mkd(arg) => self.mkd(&account, arg.as_bytes()).await,
            Command::Rmd(arg) => self.simple(&account, arg.as_bytes(), Op::Rmdir).await,
            Command::Dele(arg) => self.simple(&account, arg.as_bytes(), Op::Delete).await,
            Command::Rnfr(arg) => self.rnfr(&account, arg.as_bytes()).await,
            Command::Rnto(arg) => self.rnto(&account, arg.as_bytes()).await,
            Command::Size(arg) => self.size(&account, arg.as_bytes()).await,
            Command::Mdtm(arg) => self.mdtm(&account, arg.as_bytes()).await,
            Command::Mfmt { mtime, path } => {
                self.set_times(&account, path.as_bytes(), None, mtime, TimeCommand::Mfmt)
                    .await
            }
            Command::Site(SiteCommand::Utime { atime, mtime, path }) => {
                self.set_times(
                    &account,
                    path.as_bytes(),
                    atime,
                    mtime,
                    TimeCommand::SiteUtime,
                )
                .await
            }
            Command::Mlst(arg) => {
                self.mlst(&account, arg.as_ref().map(|a| a.as_bytes()))
                    .await
            }
            Command::Stat(Some(ListArgs {
                path: Some(path), ..
            })) => self.stat_path(&account, path.as_bytes()).await,
            Command::Stat(_) => self.stat_session().await,
            Command::Type(kind) => self.type_(kind).await,
            Command::Mode(mode) => self.mode(mode).await,
            Command::Stru(stru) => self.stru(stru).await,
            Command::Allo => {
                self.reply(ReplyCode::CommandNotNeeded, "ALLO is not needed.")
                    .await
            }
            Command::Rest(offset) => {
                self.rest = offset;
                self.range = None;
                self.send_continue(Reply::restart_accepted(offset)).await
            }
            Command::Pasv => self.pasv().await,
            Command::Epsv(arg) => self.epsv(arg).await,
            Command::Port(target) => self.port(SocketAddr::V4(target)).await,
            Command::Eprt(target) => self.port(target).await,
            Command::Site(SiteCommand::Other { verb, .. }) => {
                self.reply(
                    ReplyCode::CommandNotImplemented,
                    format!("SITE {verb} not implemented (SITE HELP lists none)."),
                )
                .await
            }
            Command::Hash(arg) => self.hash(&account, arg.as_bytes()).await,
            Command::Rang(start, end) => self.rang(start, end).await,
            Command::Digest(request) => self.digest(&account, request).await,
            Command::Retr(arg) => self.retr(&account, arg.as_bytes()).await,
            Command::Stor(arg) => self.store(&account, arg.as_bytes(), StoreKind::Stor).await,
            Command::Appe(arg) => self.store(&account, arg.as_bytes(), StoreKind::Appe).await,
            Command::Stou(arg) => {
                let arg = arg.map(|a| a.into_bytes()).unwrap_or_default();
                self.store(&account, &arg, StoreKind::Stou).await
            }
            Command::List(args) => {
                self.list(
                    &account,
                    args.path.as_ref().map(|p| p.as_bytes()),
                    ListKind::List,
                )
                .await
            }
            Command::Nlst(args) => {
                self.list(
                    &account,
                    args.path.as_ref().map(|p| p.as_bytes()),
                    ListKind::Nlst,
                )
                .await
            }
            Command::Mlsd(arg) => {
                self.list(&account, arg.as_ref().map(|p| p.as_bytes()), ListKind::Mlsd)
                    .await
            }
            // Answered before the login check.
            _ => self.send_continue(Reply::not_implemented()).await,
        }
    }

    async fn send_continue(&mut self, reply: Reply) -> std::io::Result<Flow> {
        self.send(reply).await?;
        Ok(Flow::Continue)
    }

    fn feat(&self) -> Reply {
        let mut features = Vec::new();
        if self.context.tls.is_some() {
            features.extend([
                "AUTH TLS".to_string(),
                "PBSZ".to_string(),
                "PROT".to_string(),
            ]);
        }
        features.push("EPRT".to_string());
        if self.epsv_reaches_us() {
            features.push("EPSV".to_string());
        }
        features.extend(self.digest_features());
        features.extend(["MDTM", "MFMT"].map(String::from));
        features.push(listing::Facts::ALL.feat_line());
        features.extend(["PASV", "REST STREAM", "SIZE", "TVFS", "UTF8"].map(String::from));
        Reply::feat(features)
    }
}

enum Line {
    Command(Vec<u8>),
    TooLong,
}

/// Why the command loop ends the session.
struct End {
    reason: &'static str,
    /// The client went away (its control connection ended or broke without QUIT): a running upload is not
    /// committed for it.
    client_gone: bool,
}

impl End {
    fn session(reason: &'static str) -> Self {
        Self {
            reason,
            client_gone: false,
        }
    }

    fn client_gone(reason: &'static str) -> Self {
        Self {
            reason,
            client_gone: true,
        }
    }
}

enum Event {
    Read(std::io::Result<usize>),
    TransferDone(Outcome),
    Timeout,
    Stop,
    /// A reload (or, with `false`, the end of the reload channel).
    Reloaded(bool),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flow {
    Continue,
    Quit,
}

#[derive(Debug, Clone, Copy)]
enum Op {
    Rmdir,
    Delete,
}

/// Which command sets a time, for its answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TimeCommand {
    Mfmt,
    SiteUtime,
    /// `MDTM <time> <path>`.
    Mdtm,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StoreKind {
    Stor,
    Appe,
    Stou,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ListKind {
    List,
    Nlst,
    Mlsd,
}

/// Resolves at `deadline`, or never.
async fn idle(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(t) => tokio::time::sleep_until(t).await,
        None => std::future::pending().await,
    }
}

/// Resolves when the running transfer ends (never, when there is none).
async fn wait_transfer(transfer: &mut Option<Transfer>) -> Outcome {
    match transfer {
        Some(t) => match (&mut t.task).await {
            Ok(outcome) => outcome,
            Err(e) => Outcome::failed(ReplyCode::LocalError, format!("Transfer failed: {e}"), 0),
        },
        None => std::future::pending().await,
    }
}

/// Drops Telnet IAC command sequences (clients send IAC IP, IAC DM before ABOR) and a trailing CR.
fn strip_telnet(raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(raw.len());
    let mut bytes = raw.iter().copied();
    while let Some(b) = bytes.next() {
        if b == 0xFF {
            match bytes.next() {
                Some(0xFF) => out.push(0xFF),
                // WILL/WONT/DO/DONT carry one more option byte.
                Some(0xFB..=0xFE) => {
                    bytes.next();
                }
                _ => {}
            }
        } else {
            out.push(b);
        }
    }
    if out.last() == Some(&b'\r') {
        out.pop();
    }
    out
}

fn help_reply() -> Reply {
    Reply::multiline(
        ReplyCode::HelpMessage,
        vec![
            "The following commands are recognized.".to_string(),
            " ABOR ALLO APPE AUTH CDUP CWD  DELE EPRT EPSV FEAT HASH HELP LIST MD5".to_string(),
            " MDTM MFMT MKD  MLSD MLST MODE NLST NOOP OPTS PASS PASV PBSZ PORT PROT PWD"
                .to_string(),
            " QUIT RANG REST RETR RMD  RNFR RNTO SITE SIZE STAT STOR STOU STRU SYST".to_string(),
            " TYPE USER XCRC XCUP XCWD XMD5 XMKD XPWD XRMD XSHA XSHA1 XSHA256 XSHA512".to_string(),
            "SITE commands: HELP UTIME.".to_string(),
            "Help OK.".to_string(),
        ],
    )
}
