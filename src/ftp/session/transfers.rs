//! RETR, STOR/APPE/STOU and LIST/NLST/MLSD: check everything the core can refuse before 150, then open the data
//! connection and run the transfer as a task while the control connection stays responsive.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use tokio::sync::watch;
use tracing::{debug, info};

use super::super::encoding;
use super::super::listing::{self, LineFormat};
use super::super::reply::{Reply, ReplyCode};
use super::super::server::StopPhase;
use super::super::stream::DataStream;
use super::super::transfer::{self, Control, Outcome, Signal};
use super::super::xferlog::{self, Ending, Entry, Op};
use super::{Flow, ListKind, Session, StoreKind, Transfer, TransferInfo};
use crate::bucketfs::{DirEntry, FsErrorKind, Key, Listing, WriteIntent};
use crate::config::TlsMode;
use crate::daemon::AccountFs;

type Io<T> = std::io::Result<T>;

impl Session {
    pub(super) async fn retr(&mut self, account: &AccountFs, arg: &[u8]) -> Io<Flow> {
        let offset = std::mem::take(&mut self.rest);
        let Some(target) = self.path_arg(arg).await? else {
            return Ok(Flow::Continue);
        };
        if !self.data.is_set() {
            return self.send_continue(Reply::no_data_connection()).await;
        }
        let opened = match self.range.take() {
            Some(range) => account.fs.read_stream_range(&target, range).await,
            None => account.fs.read_stream(&target, offset).await,
        };
        let (bytes, stream) = match opened {
            Ok(found) => found,
            Err(e) => return self.fs_error(&e).await,
        };
        let mode = if self.binary { "BINARY" } else { "ASCII" };
        let text = format!(
            "Opening {mode} mode data connection for {} ({bytes} bytes).",
            target.display(),
        );
        let Some(data) = self.open_data(text).await? else {
            return Ok(Flow::Continue);
        };
        let (signal, control) = Control::channel();
        let progress = Arc::new(AtomicU64::new(0));
        let task = tokio::spawn(transfer::send(stream, data, control, Arc::clone(&progress)));
        self.start_transfer(task, signal, progress, "RETR", target);
        Ok(Flow::Continue)
    }

    pub(super) async fn store(
        &mut self,
        account: &AccountFs,
        arg: &[u8],
        kind: StoreKind,
    ) -> Io<Flow> {
        let rest = std::mem::take(&mut self.rest);
        if self.range.take().is_some() {
            return self
                .reply(
                    ReplyCode::CommandNotImplementedForParameter,
                    "RANG applies to RETR and HASH only; the range is reset.",
                )
                .await;
        }
        let Some(target) = self.path_arg(arg).await? else {
            return Ok(Flow::Continue);
        };
        if !self.data.is_set() {
            return self.send_continue(Reply::no_data_connection()).await;
        }
        let opened = match kind {
            StoreKind::Stou => account.fs.create_unique(&target).await,
            StoreKind::Appe => account.fs.open_write(&target, WriteIntent::Append).await,
            StoreKind::Stor => {
                let intent = match rest {
                    0 => WriteIntent::Replace,
                    offset => WriteIntent::ResumeAt(offset),
                };
                account.fs.open_write(&target, intent).await
            }
        };
        let mut handle = match opened {
            Ok(h) => h,
            Err(e) => return self.fs_error(&e).await,
        };
        // An FTP client can continue a broken upload (REST + STOR, APPE): keep what the store holds then.
        handle.set_resumable(true);
        let target = handle.key().clone();
        let text = match kind {
            StoreKind::Stou => format!("FILE: {}", target.display()),
            _ => "Ok to send data.".to_string(),
        };
        let Some(data) = self.open_data(text).await? else {
            handle.abort().await;
            return Ok(Flow::Continue);
        };
        let (signal, mut control) = Control::channel();
        if let Some(Err(e)) = self.control.as_ref().map(|c| control.watch_socket(c.tcp())) {
            // Only the session's signals then; it reads the control connection all the same.
            info!(error = %e, "cannot watch the control connection's socket");
        }
        let progress = Arc::new(AtomicU64::new(0));
        let task = tokio::spawn(transfer::receive(
            handle,
            data,
            control,
            Arc::clone(&progress),
        ));
        let command = match kind {
            StoreKind::Stor => "STOR",
            StoreKind::Appe => "APPE",
            StoreKind::Stou => "STOU",
        };
        self.start_transfer(task, signal, progress, command, target);
        Ok(Flow::Continue)
    }

    pub(super) async fn list(
        &mut self,
        account: &AccountFs,
        arg: Option<&[u8]>,
        kind: ListKind,
    ) -> Io<Flow> {
        let target = match arg {
            Some(arg) if !arg.is_empty() => match self.path_arg(arg).await? {
                Some(t) => t,
                None => return Ok(Flow::Continue),
            },
            _ => self.cwd.clone(),
        };
        if !self.data.is_set() {
            return self.send_continue(Reply::no_data_connection()).await;
        }
        // LIST of a file lists that file (ls semantics); MLSD needs a directory.
        let listing = match kind {
            ListKind::Mlsd => account
                .fs
                .read_dir_with_partial(&target)
                .await
                .map(Listing::Directory),
            _ => account.fs.list_with_partial(&target).await,
        };
        // `NLST *.txt` (mget) and `LIST *.txt`, as vsftpd serves them: a last name that does not exist and has
        // pattern characters lists the matching names of its directory. MLSD takes no patterns (RFC 3659).
        let mut shown_prefix = None;
        let listing = match (listing, target.parent()) {
            (Err(e), Some(dir))
                if kind != ListKind::Mlsd
                    && e.kind() == FsErrorKind::NotFound
                    && is_pattern(target.name()) =>
            {
                if kind == ListKind::Nlst {
                    shown_prefix = arg.map(|arg| typed_directory(arg).to_vec());
                }
                account
                    .fs
                    .list_matching(&dir, target.name())
                    .await
                    .map(Listing::Directory)
            }
            (listing, _) => listing,
        };
        let listing = match listing {
            Ok(listing) => listing,
            // RFC 3659 §7.2.2: MLSD of a file is a syntax error in its argument.
            Err(e) if kind == ListKind::Mlsd && e.kind() == FsErrorKind::NotADirectory => {
                return self
                    .reply(
                        ReplyCode::ParameterSyntaxError,
                        format!("{e} (MLSD lists directories; MLST shows a file)."),
                    )
                    .await
            }
            Err(e) => return self.fs_error(&e).await,
        };
        let Some(data) = self
            .open_data("Here comes the directory listing.".to_string())
            .await?
        else {
            return Ok(Flow::Continue);
        };
        let encoding = self.encoding();
        let format = match kind {
            ListKind::List => LineFormat::List {
                now: SystemTime::now(),
            },
            ListKind::Nlst => LineFormat::Nlst,
            ListKind::Mlsd => LineFormat::Mlsd {
                format: listing::MlsxFormat {
                    facts: self.mlst_facts,
                    policy: account.fs.policy(),
                },
                dir: target.display(),
            },
        };
        // NLST of `sub/*.txt` names `sub/a.txt`, as typed, so that a client can fetch what it lists.
        let prefix = match shown_prefix.map(|raw| encoding::decode(&raw, encoding)) {
            Some(Ok(prefix)) => prefix,
            _ => String::new(),
        };
        let line = move |entry: &DirEntry| -> Option<Vec<u8>> {
            let mut line = String::new();
            let name = format!("{prefix}{}", entry.name);
            match format.write_marked(&mut line, &name, &entry.meta, entry.partial) {
                Ok(()) => Some(encoding::encode(&line, encoding).into_owned()),
                Err(_) => {
                    info!(
                        name = entry.name,
                        "entry left out of the listing: its name cannot be sent"
                    );
                    None
                }
            }
        };
        let (signal, control) = Control::channel();
        let progress = Arc::new(AtomicU64::new(0));
        let task = match listing {
            Listing::Directory(dir) => tokio::spawn(transfer::send_listing(
                dir,
                line,
                data,
                control,
                Arc::clone(&progress),
            )),
            Listing::File(entry) => tokio::spawn(transfer::send_bytes(
                line(&entry).unwrap_or_default(),
                data,
                control,
                Arc::clone(&progress),
            )),
        };
        let command = match kind {
            ListKind::List => "LIST",
            ListKind::Nlst => "NLST",
            ListKind::Mlsd => "MLSD",
        };
        self.start_transfer(task, signal, progress, command, target);
        Ok(Flow::Continue)
    }

    /// 150, then the data connection (TLS when PROT P); on failure 425 and `None`. With `tls_mode = required`,
    /// a data connection without PROT P is refused with 521 (RFC 4217 §9).
    async fn open_data(&mut self, preliminary: String) -> Io<Option<DataStream>> {
        if self.context.tls_mode == TlsMode::Required && !self.protect_data {
            self.reply(
                ReplyCode::DataProtectionRequired,
                "Data connections must be protected on this server: send PBSZ 0 and PROT P.",
            )
            .await?;
            return Ok(None);
        }
        self.reply(ReplyCode::FileStatusOkay, preliminary).await?;
        let plan = std::mem::take(&mut self.data);
        let tls = if self.protect_data {
            self.context.tls.as_ref().map(|tls| tls.data.clone())
        } else {
            None
        };
        // A transfer that moves nothing for idle_timeout ends, like an idle session.
        let stall = self.context.config.optional.idle_timeout;
        // The client may take its time to connect. A shutdown that aborts transfers ends the wait, and the command
        // loop answers it (a clone of the receiver, so the loop still sees the stop); one that lets transfers
        // finish lets this one start, since 150 has been sent.
        let mut stop = self.stop.clone();
        let connected = tokio::select! {
            connected = plan.connect(tls.as_ref(), stall) => connected,
            _ = stop.wait_for(|phase| *phase == StopPhase::Abort) => return Ok(None),
        };
        match connected {
            Ok(data) => Ok(Some(data)),
            Err(e) => {
                info!(error = %e, "data connection failed");
                self.reply(
                    ReplyCode::CantOpenDataConnection,
                    format!("Cannot open data connection: {e}."),
                )
                .await?;
                Ok(None)
            }
        }
    }

    fn start_transfer(
        &mut self,
        task: tokio::task::JoinHandle<Outcome>,
        signal: watch::Sender<Signal>,
        progress: Arc<AtomicU64>,
        command: &'static str,
        key: Key,
    ) {
        let op = match command {
            "RETR" => Some(Op::Download),
            "STOR" | "APPE" | "STOU" => Some(Op::Upload),
            _ => None,
        };
        let info = TransferInfo {
            command,
            op,
            key,
            started: Instant::now(),
            ascii: !self.binary,
        };
        self.transfer = Some(Transfer {
            task,
            signal,
            progress,
            info,
        });
    }

    /// Sends the transfer's final reply and writes the transfer log line (like vsftpd's xferlog).
    pub(super) async fn finish_transfer(
        &mut self,
        done: Option<TransferInfo>,
        outcome: Outcome,
    ) -> Io<()> {
        if let Some(t) = done {
            self.log_transfer(&t, outcome.bytes, Ending::Replied(outcome.code));
        }
        self.reply(outcome.code, outcome.text).await.map(|_| ())
    }

    /// The transfer log line of a file transfer; a listing only at debug.
    fn log_transfer(&self, t: &TransferInfo, bytes: u64, ending: Ending) {
        let Some(op) = t.op else {
            debug!(command = t.command, path = %t.key.display(), bytes, ?ending, "listing sent");
            return;
        };
        xferlog::record(&Entry {
            op,
            user: self.user_name(),
            client: self.peer.ip(),
            path: &t.key.display(),
            to: None,
            bytes,
            took: t.started.elapsed(),
            ending,
            ascii: t.ascii,
        });
    }

    /// ABOR: cancels the running transfer and waits for it to clean up (an upload is aborted in the store).
    pub(super) async fn stop_transfer(&mut self) -> (Option<TransferInfo>, Option<Outcome>) {
        let Some(t) = self.transfer.take() else {
            return (None, None);
        };
        t.signal.send_replace(Signal::Abort);
        let outcome = match t.task.await {
            Ok(outcome) => outcome,
            Err(e) => Outcome::failed(
                ReplyCode::ConnectionClosed,
                format!("Transfer aborted ({e})."),
                t.progress.load(Ordering::Relaxed),
            ),
        };
        (Some(t.info), Some(outcome))
    }

    /// Ends a running transfer without replying (the session is ending): `ClientGone` when the client went away,
    /// `Abort` otherwise. An upload is aborted either way, so nothing is committed for a session that ends.
    pub(super) async fn cancel_transfer(&mut self, signal: Signal) {
        if let Some(t) = self.transfer.take() {
            t.signal.send_replace(signal);
            let bytes = match t.task.await {
                Ok(outcome) => outcome.bytes,
                Err(_) => t.progress.load(Ordering::Relaxed),
            };
            self.log_transfer(&t.info, bytes, Ending::Cut);
        }
    }
}

/// Whether a name is a shell pattern for NLST/LIST: it has `*`, `?` or `[` (a name that exists never is one: the
/// caller asks only after the name was not found).
fn is_pattern(name: &str) -> bool {
    name.contains(['*', '?', '['])
}

/// The directory part of a LIST/NLST argument as the client typed it (`sub/` of `sub/*.txt`, empty for `*.txt`).
fn typed_directory(arg: &[u8]) -> &[u8] {
    match arg.iter().rposition(|&b| b == b'/') {
        Some(slash) => &arg[..=slash],
        None => &[],
    }
}
