//! RETR, STOR/APPE/STOU and LIST/NLST/MLSD: check everything the core can refuse before 150, then open the data
//! connection and run the transfer as a task while the control connection stays responsive.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use tokio::sync::oneshot;
use tracing::info;

use super::super::listing;
use super::super::path;
use super::super::reply::Reply;
use super::super::stream::DataStream;
use super::super::transfer::{self, Cancel, ClientWatch, Outcome};
use super::{Flow, ListKind, Session, StoreKind, Transfer, TransferInfo};
use crate::bucketfs::{DirEntry, FsErrorKind, Listing, OpenMode};
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
        let (meta, stream) = match account.fs.read_stream(&target, offset).await {
            Ok(found) => found,
            Err(e) => return self.fs_error(&e).await,
        };
        let mode = if self.binary { "BINARY" } else { "ASCII" };
        let text = format!(
            "Opening {mode} mode data connection for {target} ({} bytes).",
            meta.size - offset
        );
        let Some(data) = self.open_data(text).await? else {
            return Ok(Flow::Continue);
        };
        let (cancel_tx, cancel_rx) = oneshot::channel();
        let progress = Arc::new(AtomicU64::new(0));
        let task = tokio::spawn(transfer::send(
            stream,
            data,
            cancel_rx,
            Arc::clone(&progress),
        ));
        self.start_transfer(task, cancel_tx, progress, Arc::default(), "RETR", target);
        Ok(Flow::Continue)
    }

    pub(super) async fn store(
        &mut self,
        account: &AccountFs,
        arg: &[u8],
        kind: StoreKind,
    ) -> Io<Flow> {
        let rest = std::mem::take(&mut self.rest);
        let target = match kind {
            StoreKind::Stou => {
                let base = if arg.is_empty() {
                    "file".to_string()
                } else {
                    String::from_utf8_lossy(arg).into_owned()
                };
                let Some(base) = self.path_arg(base.as_bytes()).await? else {
                    return Ok(Flow::Continue);
                };
                match self.unique_name(account, &base).await {
                    Some(name) => name,
                    None => return self.reply(553, "Could not find a unique name.").await,
                }
            }
            _ => match self.path_arg(arg).await? {
                Some(t) => t,
                None => return Ok(Flow::Continue),
            },
        };
        if !self.data.is_set() {
            return self.send_continue(Reply::no_data_connection()).await;
        }
        let mode = match (kind, rest) {
            (StoreKind::Appe, _) => OpenMode::Append,
            (_, 0) => OpenMode::Truncate,
            // REST n + STOR resumes an upload: only at the current end of the object.
            (_, offset) => match account.fs.stat(&target).await {
                Ok(meta) if !meta.is_dir() && meta.size == offset => OpenMode::Append,
                Ok(meta) => {
                    return self
                        .reply(
                            554,
                            format!(
                                "REST {offset} + STOR: an object can only be resumed at its end ({} bytes).",
                                meta.size
                            ),
                        )
                        .await
                }
                Err(e) if e.kind() == FsErrorKind::NotFound => {
                    return self.reply(554, format!("REST {offset} + STOR: {target} does not exist.")).await
                }
                Err(e) => return self.fs_error(&e).await,
            },
        };
        let handle = match account.fs.open_write(&target, mode).await {
            Ok(h) => h,
            Err(e) => return self.fs_error(&e).await,
        };
        let text = match kind {
            StoreKind::Stou => format!("FILE: {target}"),
            _ => "Ok to send data.".to_string(),
        };
        let Some(data) = self.open_data(text).await? else {
            handle.abort().await;
            return Ok(Flow::Continue);
        };
        let (cancel_tx, cancel_rx) = oneshot::channel();
        let progress = Arc::new(AtomicU64::new(0));
        let quit = Arc::new(AtomicBool::new(false));
        let client = self
            .control
            .as_ref()
            .and_then(|c| ClientWatch::new(c.tcp(), Arc::clone(&quit)).ok());
        let task = tokio::spawn(transfer::receive(
            handle,
            data,
            cancel_rx,
            Arc::clone(&progress),
            client,
        ));
        let command = match kind {
            StoreKind::Stor => "STOR",
            StoreKind::Appe => "APPE",
            StoreKind::Stou => "STOU",
        };
        self.start_transfer(task, cancel_tx, progress, quit, command, target);
        Ok(Flow::Continue)
    }

    async fn unique_name(&self, account: &AccountFs, base: &str) -> Option<String> {
        for n in 0..1000u32 {
            let candidate = if n == 0 {
                base.to_string()
            } else {
                format!("{base}.{n}")
            };
            if matches!(account.fs.stat(&candidate).await, Err(ref e) if e.kind() == FsErrorKind::NotFound)
            {
                return Some(candidate);
            }
        }
        None
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
        let listing = match account.fs.list(&target).await {
            Ok(listing) => listing,
            Err(e) => return self.fs_error(&e).await,
        };
        if matches!(listing, Listing::File(_)) && kind == ListKind::Mlsd {
            let text = format!("{target}: not a directory (MLSD lists directories).");
            return self.reply(501, text).await;
        }
        let Some(data) = self
            .open_data("Here comes the directory listing.".to_string())
            .await?
        else {
            return Ok(Flow::Continue);
        };
        let encoding = self.encoding();
        let mlsx = listing::MlsxFormat {
            facts: self.mlst_facts,
            perms: self.perms(account),
        };
        let now = SystemTime::now();
        let dir_path = target.clone();
        let format = move |name: &str, meta: &crate::bucketfs::Metadata| -> Option<Vec<u8>> {
            let mut line = String::new();
            let listed = match kind {
                ListKind::List => listing::list_line(&mut line, name, meta, now),
                ListKind::Nlst => listing::nlst_line(&mut line, name),
                ListKind::Mlsd => mlsx.mlsd_line(&mut line, &dir_path, name, meta),
            };
            match listed {
                Ok(()) => Some(path::encode(&line, encoding).into_owned()),
                Err(_) => {
                    info!(
                        name,
                        "entry left out of the listing: its name cannot be sent"
                    );
                    None
                }
            }
        };
        let (cancel_tx, cancel_rx) = oneshot::channel();
        let progress = Arc::new(AtomicU64::new(0));
        let task = match listing {
            Listing::Directory(dir) => tokio::spawn(transfer::send_listing(
                dir,
                move |e: &DirEntry| format(&e.name, &e.meta),
                data,
                cancel_rx,
                Arc::clone(&progress),
            )),
            Listing::File(entry) => {
                let line = format(&entry.name, &entry.meta).unwrap_or_default();
                tokio::spawn(transfer::send_bytes(
                    line,
                    data,
                    cancel_rx,
                    Arc::clone(&progress),
                ))
            }
        };
        let command = match kind {
            ListKind::List => "LIST",
            ListKind::Nlst => "NLST",
            ListKind::Mlsd => "MLSD",
        };
        self.start_transfer(task, cancel_tx, progress, Arc::default(), command, target);
        Ok(Flow::Continue)
    }

    /// 150, then the data connection (TLS when PROT P); on failure 425 and `None`. With `tls_mode = required`,
    /// a data connection without PROT P is refused with 521 (RFC 4217 §9).
    async fn open_data(&mut self, preliminary: String) -> Io<Option<DataStream>> {
        if self.context.tls_mode == TlsMode::Required && !self.protect_data {
            self.reply(
                521,
                "Data connections must be protected on this server: send PBSZ 0 and PROT P.",
            )
            .await?;
            return Ok(None);
        }
        self.reply(150, preliminary).await?;
        let plan = std::mem::take(&mut self.data);
        let tls = if self.protect_data {
            self.context.tls.as_ref().map(|tls| tls.data.clone())
        } else {
            None
        };
        // A transfer that moves nothing for idle_timeout ends, like an idle session.
        let stall = self.context.config.optional.idle_timeout;
        match plan.connect(tls.as_ref(), stall).await {
            Ok(data) => Ok(Some(data)),
            Err(e) => {
                info!(error = %e, "data connection failed");
                self.reply(425, format!("Cannot open data connection: {e}."))
                    .await?;
                Ok(None)
            }
        }
    }

    fn start_transfer(
        &mut self,
        task: tokio::task::JoinHandle<Outcome>,
        cancel: oneshot::Sender<Cancel>,
        progress: Arc<AtomicU64>,
        quit: Arc<AtomicBool>,
        command: &'static str,
        path: String,
    ) {
        let info = TransferInfo {
            command,
            path,
            started: Instant::now(),
        };
        self.transfer = Some(Transfer {
            task,
            cancel,
            progress,
            quit,
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
            let seconds = t.started.elapsed().as_secs_f64();
            info!(
                target: "xferlog",
                user = self.user_name(),
                client = %self.peer.ip(),
                command = t.command,
                path = %t.path,
                bytes = outcome.bytes,
                seconds = format!("{seconds:.3}"),
                result = outcome.code,
                "transfer"
            );
        }
        self.reply(outcome.code, outcome.text).await.map(|_| ())
    }

    /// ABOR: cancels the running transfer and waits for it to clean up (an upload is aborted in the store).
    pub(super) async fn stop_transfer(&mut self) -> (Option<TransferInfo>, Option<Outcome>) {
        let Some(t) = self.transfer.take() else {
            return (None, None);
        };
        let _ = t.cancel.send(Cancel::Abort);
        let outcome = match t.task.await {
            Ok(outcome) => outcome,
            Err(e) => Outcome {
                code: 426,
                text: format!("Transfer aborted ({e})."),
                bytes: t.progress.load(Ordering::Relaxed),
            },
        };
        (Some(t.info), Some(outcome))
    }

    /// Ends a running transfer without replying (the session is ending).
    pub(super) async fn cancel_transfer(&mut self) {
        if let Some(t) = self.transfer.take() {
            let _ = t.cancel.send(Cancel::Abort);
            let _ = t.task.await;
        }
    }
}
