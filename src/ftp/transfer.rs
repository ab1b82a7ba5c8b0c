//! The three data transfers: receive a file into a `WriteHandle`, send a `ByteStream`, send a listing. Each runs
//! as its own task so the session can keep reading the control connection (ABOR, STAT, QUIT) meanwhile.

use std::mem::MaybeUninit;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use futures::StreamExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufWriter};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tracing::debug;

use super::fs_reply::code_for;
use super::reply::ReplyCode;
use super::stream::DataStream;
use crate::bucketfs::{ByteStream, DirEntry, FsErrorKind, ReadDir, WriteHandle};

/// The longest the end of an upload's data waits for the end of the control connection before it counts as the
/// end of the file (see `Control::at_end_of_data`). Measured with `curl -T -` killed by SIGKILL mid-upload and
/// a raw client closing both connections, on loopback, 2 cores under a load average of 4 (tests/ftp_killed_clients.rs,
/// 400 kills over fs and moto): the control connection ended a median of 12 µs after the data connection, 99 %
/// within 0.37 ms, the worst 4.0 ms.
pub const UPLOAD_END_GRACE_MAX: Duration = Duration::from_millis(10);

/// tokio's timers tick in milliseconds: a shorter wait costs a whole one.
const TIMER_RESOLUTION: Duration = Duration::from_millis(1);

/// The wait at the end of an upload that took `duration` from the data connection's open to its end: half as long
/// as the upload took, at most `UPLOAD_END_GRACE_MAX`. A client can only be killed in the middle of an upload while
/// the upload lasts, so a file that arrived in one burst of under 2 ms (a small file on a fast link) waits no timer
/// — the session is let run once and the kernel asked — and small-file throughput is kept (500 sequential 4 KiB
/// STORs with ftplib on loopback: 1.0–1.3 ms a file with or without this wait); an upload of 20 ms or more (a slow
/// source, a large file, a distant client) waits the full grace, a cost of at most 50 % on the shortest of them.
pub fn upload_end_grace(duration: Duration) -> Duration {
    (duration / 2).min(UPLOAD_END_GRACE_MAX)
}

/// How much of an upload over `single_file_max_size` is read and thrown away so that the client sees 552 as the
/// STOR's answer. Reading costs no memory and no store request, only bandwidth the client spends anyway; past this
/// the data connection is closed (the client sees a reset, then the 552).
pub const TOO_LARGE_DRAIN_LIMIT: u64 = 1024 * 1024 * 1024;

/// The receive buffer of an upload: one per upload, reused for every read. The core copies what it is handed into
/// the file's part in memory (held against `memory_budget`), so this buffer is all an upload holds outside the
/// budget: 1,000 concurrent uploads take 64 MiB here. Larger buffers (it was 1 MiB) did not make a 1 GiB upload
/// faster (the store is the limit).
const RECEIVE_BUFFER: usize = 64 * 1024;

/// How a transfer ended: the final reply, and the bytes moved.
#[derive(Debug)]
pub struct Outcome {
    pub code: ReplyCode,
    pub text: String,
    pub bytes: u64,
}

impl Outcome {
    fn ok(text: impl Into<String>, bytes: u64) -> Self {
        Self {
            code: ReplyCode::ClosingDataConnection,
            text: text.into(),
            bytes,
        }
    }

    pub fn failed(code: ReplyCode, text: impl Into<String>, bytes: u64) -> Self {
        Self {
            code,
            text: text.into(),
            bytes,
        }
    }

    pub fn succeeded(&self) -> bool {
        self.code == ReplyCode::ClosingDataConnection
    }
}

/// What the session has read on the control connection that concerns the running transfer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    /// Nothing yet.
    Running,
    /// QUIT: the client wants the transfer finished and answered, then the session closed (RFC 959 §4.1.1).
    Quit,
    /// ABOR: stop now; the reply is 426.
    Abort,
    /// The control connection ended (or broke) without QUIT: the client is gone, and nothing is committed for it.
    ClientGone,
}

/// The transfer's side of the session's signals. A session that ends without a word (its task dropped) counts as
/// `ClientGone`.
pub struct Control {
    signals: watch::Receiver<Signal>,
    /// A second handle on the control connection's socket, for uploads: the kernel knows that the client's FIN has
    /// arrived before the session task has run to read it.
    socket: Option<socket2::Socket>,
}

impl Control {
    /// The session keeps the sender and sends `Quit`, `Abort` or `ClientGone` as it reads them.
    pub fn channel() -> (watch::Sender<Signal>, Control) {
        let (tx, rx) = watch::channel(Signal::Running);
        (
            tx,
            Control {
                signals: rx,
                socket: None,
            },
        )
    }

    /// Also look at the control connection's socket itself at the end of an upload.
    pub fn watch_socket(&mut self, control: &TcpStream) -> std::io::Result<()> {
        self.socket = Some(socket2::SockRef::from(control).try_clone()?);
        Ok(())
    }

    fn now(&self) -> Signal {
        *self.signals.borrow()
    }

    /// Resolves once the session has decided something (QUIT, ABOR or the client gone).
    async fn decided(&mut self) -> Signal {
        match self.signals.wait_for(|s| *s != Signal::Running).await {
            Ok(signal) => *signal,
            Err(_) => Signal::ClientGone,
        }
    }

    /// Resolves when the transfer must stop: ABOR or the client gone (QUIT lets it run on).
    async fn stopped(&mut self) -> Signal {
        match self
            .signals
            .wait_for(|s| matches!(s, Signal::Abort | Signal::ClientGone))
            .await
        {
            Ok(signal) => *signal,
            Err(_) => Signal::ClientGone,
        }
    }

    /// Whether the control connection has reached end of file (or broken) in the kernel. Never blocks, reads
    /// nothing.
    fn closed_in_kernel(&self) -> bool {
        let Some(socket) = &self.socket else {
            return false;
        };
        let mut byte = [MaybeUninit::uninit(); 1];
        match socket.recv_with_flags(&mut byte, libc::MSG_PEEK | libc::MSG_DONTWAIT) {
            Ok(0) => true,
            Ok(_) => false,
            Err(e) => e.kind() != std::io::ErrorKind::WouldBlock,
        }
    }

    /// At the end of an upload's data: what the session says then — `Running` or `Quit` when the client is still
    /// there to want the upload committed, `ClientGone` or `Abort` when not.
    ///
    /// In stream mode the end of the data is the end of the file, but a killed client's data connection ends the
    /// same way, and its control connection closes at about the same moment, in no fixed order. So unless the
    /// client has already said QUIT (it wants the upload: no wait) or something else is decided, wait up to
    /// `grace` for the session to see the control connection end — the session reads it all through the transfer
    /// and signals at once, so the wait ends early when anything arrives — and then ask the kernel whether the
    /// control connection's FIN has arrived meanwhile, in case the session has not run yet.
    async fn at_end_of_data(&mut self, grace: Duration) -> Signal {
        let started = Instant::now();
        let signal = match self.now() {
            Signal::Running if self.closed_in_kernel() => Signal::ClientGone,
            // Below the timer's resolution a timer would wait a whole millisecond: let the session run, then look.
            Signal::Running if grace < TIMER_RESOLUTION => {
                tokio::task::yield_now().await;
                self.now()
            }
            Signal::Running => tokio::time::timeout(grace, self.decided())
                .await
                .unwrap_or(Signal::Running),
            decided => decided,
        };
        let signal = match signal {
            Signal::Running if self.closed_in_kernel() => Signal::ClientGone,
            signal => signal,
        };
        if signal == Signal::ClientGone {
            debug!(
                after_us = started.elapsed().as_micros() as u64,
                grace_us = grace.as_micros() as u64,
                "the control connection ended with the data connection: the client is gone"
            );
        }
        signal
    }
}

/// Receives the data connection into `handle`; 226 only after the upload is complete in the store. Any failure
/// (client reset, store error, size limit, ABOR, a client that closed the control connection too) aborts the
/// upload, so nothing is committed; so does a client that ends its control connection at about the time its data
/// ends (see `Control::at_end_of_data`).
pub async fn receive(
    mut handle: WriteHandle,
    mut data: DataStream,
    mut control: Control,
    progress: Arc<AtomicU64>,
) -> Outcome {
    let started = Instant::now();
    let path = handle.key().display();
    let received = async {
        let mut buf = BytesMut::with_capacity(RECEIVE_BUFFER);
        loop {
            // The bytes handed over last time are copied and dropped by now: this takes the buffer back
            // without allocating.
            if buf.capacity() - buf.len() < RECEIVE_BUFFER / 4 {
                buf.reserve(RECEIVE_BUFFER - buf.len());
            }
            let n = data.read_buf(&mut buf).await.map_err(ReceiveError::Data)?;
            if n == 0 {
                // Answer the client's TLS close_notify with ours (ftplib waits for it before reading the 226).
                let _ = data.shutdown().await;
                break;
            }
            progress.fetch_add(n as u64, Ordering::Relaxed);
            // Hand over half a buffer or more; small reads accumulate first.
            if buf.len() >= RECEIVE_BUFFER / 2 {
                handle
                    .write(buf.split().freeze())
                    .await
                    .map_err(ReceiveError::Store)?;
            }
        }
        if !buf.is_empty() {
            handle
                .write(buf.split().freeze())
                .await
                .map_err(ReceiveError::Store)?;
        }
        Ok(())
    };
    let result = tokio::select! {
        r = received => r,
        signal = control.stopped() => Err(ReceiveError::Stopped(signal)),
    };
    // The end of the data is the end of the file only if the client is still there (see `Control::at_end_of_data`).
    let result = match result {
        Ok(()) => match control
            .at_end_of_data(upload_end_grace(started.elapsed()))
            .await
        {
            Signal::Running | Signal::Quit => Ok(()),
            signal => Err(ReceiveError::Stopped(signal)),
        },
        failed => failed,
    };
    let bytes = progress.load(Ordering::Relaxed);
    match result {
        // ABOR: the user cancelled; nothing is kept.
        Err(ReceiveError::Stopped(Signal::Abort)) => {
            handle.abort().await;
            Outcome::failed(
                ReplyCode::ConnectionClosed,
                "Transfer aborted; nothing was stored.",
                bytes,
            )
        }
        // The connection broke: nothing is committed, and what the store holds is kept for a resume.
        Err(ReceiveError::Stopped(_)) => Outcome::failed(
            ReplyCode::ConnectionClosed,
            format!(
                "The client closed the control connection during the upload; nothing was committed.{}",
                kept(handle.suspend().await)
            ),
            bytes,
        ),
        Err(ReceiveError::Data(e)) => Outcome::failed(
            ReplyCode::ConnectionClosed,
            format!(
                "Data connection failed ({e}); nothing was committed.{}",
                kept(handle.suspend().await)
            ),
            bytes,
        ),
        // The core already aborted the upload. The client is still sending: read the rest of its data first, so
        // that it gets the 552 as the answer to its STOR and not a reset while it sends (ftplib then reads the 552
        // as the answer to its next command, one reply off from then on).
        Err(ReceiveError::Store(e)) if e.kind() == FsErrorKind::TooLarge => {
            tokio::select! {
                drained = drain(&mut data, TOO_LARGE_DRAIN_LIMIT) => {
                    if let Err(why) = drained {
                        debug!(error = %why, "stopped reading the rest of an upload over the size limit");
                    }
                }
                _ = control.stopped() => {}
            }
            Outcome::failed(code_for(&e), e.to_string(), bytes)
        }
        Err(ReceiveError::Store(e)) => Outcome::failed(code_for(&e), e.to_string(), bytes),
        Ok(()) => match handle.close().await {
            Ok(meta) => Outcome::ok(
                format!("Transfer complete: {path} ({} bytes).", meta.size),
                bytes,
            ),
            Err(e) => Outcome::failed(code_for(&e), format!("{e}; nothing was stored."), bytes),
        },
    }
}

/// What a broken upload's reply says of the bytes kept for resume.
fn kept(durable: Option<u64>) -> String {
    match durable {
        Some(n) => format!(" {n} bytes are kept: send REST {n} and STOR (or APPE) to continue."),
        None => String::new(),
    }
}

/// Reads `data` to its end and throws it away, at most `limit` bytes (then fails with `FileTooLarge`). The data
/// connection's stall timeout bounds the time.
async fn drain(data: &mut DataStream, limit: u64) -> std::io::Result<()> {
    let mut scratch = vec![0u8; 64 * 1024];
    let mut drained = 0u64;
    loop {
        let n = data.read(&mut scratch).await?;
        if n == 0 {
            let _ = data.shutdown().await;
            return Ok(());
        }
        drained += n as u64;
        if drained > limit {
            return Err(std::io::Error::new(
                std::io::ErrorKind::FileTooLarge,
                format!("more than {limit} bytes past the size limit"),
            ));
        }
    }
}

enum ReceiveError {
    Data(std::io::Error),
    Store(crate::bucketfs::FsError),
    Stopped(Signal),
}

/// Sends a file's bytes; the reply is 226 once the client has them all.
pub async fn send(
    mut stream: ByteStream,
    data: DataStream,
    control: Control,
    progress: Arc<AtomicU64>,
) -> Outcome {
    let mut data = data;
    let sent = async {
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| Outcome::failed(code_for(&e), e.to_string(), 0))?;
            data.write_all(&chunk).await.map_err(|e| {
                Outcome::failed(
                    ReplyCode::ConnectionClosed,
                    format!("Data connection failed ({e})."),
                    0,
                )
            })?;
            progress.fetch_add(chunk.len() as u64, Ordering::Relaxed);
        }
        data.shutdown().await.map_err(|e| {
            Outcome::failed(
                ReplyCode::ConnectionClosed,
                format!("Data connection failed ({e})."),
                0,
            )
        })
    };
    finish(sent, control, &progress, "Transfer complete.").await
}

/// Sends a few bytes already in hand (the LIST of a single file).
pub async fn send_bytes(
    bytes: Vec<u8>,
    mut data: DataStream,
    control: Control,
    progress: Arc<AtomicU64>,
) -> Outcome {
    let sent = async {
        data.write_all(&bytes).await?;
        progress.fetch_add(bytes.len() as u64, Ordering::Relaxed);
        data.shutdown().await
    };
    let sent = async {
        sent.await.map_err(|e| {
            Outcome::failed(
                ReplyCode::ConnectionClosed,
                format!("Data connection failed ({e})."),
                0,
            )
        })
    };
    finish(sent, control, &progress, "Directory send OK.").await
}

/// Sends a listing as its pages arrive, one formatted line per entry.
pub async fn send_listing<F>(
    mut dir: ReadDir,
    format: F,
    data: DataStream,
    control: Control,
    progress: Arc<AtomicU64>,
) -> Outcome
where
    F: Fn(&DirEntry) -> Option<Vec<u8>> + Send,
{
    let mut out = BufWriter::with_capacity(64 * 1024, data);
    let sent = async {
        loop {
            let next = {
                let mut next = std::pin::pin!(dir.next_entry());
                match futures::poll!(next.as_mut()) {
                    std::task::Poll::Ready(next) => next,
                    std::task::Poll::Pending => {
                        // The store is being asked for the next page: send what is buffered first, so the client
                        // sees the first page now and not when the second arrives (measured: first byte of a
                        // 10,000-entry LIST 109 → 79 ms).
                        out.flush().await.map_err(|e| {
                            Outcome::failed(
                                ReplyCode::ConnectionClosed,
                                format!("Data connection failed ({e})."),
                                0,
                            )
                        })?;
                        next.await
                    }
                }
            };
            let entry = match next {
                Ok(Some(entry)) => entry,
                Ok(None) => break,
                Err(e) => return Err(Outcome::failed(code_for(&e), e.to_string(), 0)),
            };
            if let Some(line) = format(&entry) {
                out.write_all(&line).await.map_err(|e| {
                    Outcome::failed(
                        ReplyCode::ConnectionClosed,
                        format!("Data connection failed ({e})."),
                        0,
                    )
                })?;
                progress.fetch_add(line.len() as u64, Ordering::Relaxed);
            }
        }
        out.flush().await.map_err(|e| {
            Outcome::failed(
                ReplyCode::ConnectionClosed,
                format!("Data connection failed ({e})."),
                0,
            )
        })?;
        out.get_mut().shutdown().await.map_err(|e| {
            Outcome::failed(
                ReplyCode::ConnectionClosed,
                format!("Data connection failed ({e})."),
                0,
            )
        })
    };
    let text = String::new();
    let mut outcome = finish(sent, control, &progress, &text).await;
    if outcome.succeeded() {
        outcome.text = if dir.capped() {
            format!(
                "Directory send OK; listing truncated at {} entries (max_list_file).",
                dir.yielded()
            )
        } else {
            "Directory send OK.".to_string()
        };
    }
    outcome
}

async fn finish<F>(work: F, mut control: Control, progress: &AtomicU64, ok_text: &str) -> Outcome
where
    F: std::future::Future<Output = Result<(), Outcome>>,
{
    let result = tokio::select! {
        r = work => Some(r),
        _ = control.stopped() => None,
    };
    let bytes = progress.load(Ordering::Relaxed);
    match result {
        Some(Ok(())) => Outcome::ok(ok_text, bytes),
        Some(Err(mut failed)) => {
            failed.bytes = bytes;
            failed
        }
        None => Outcome::failed(ReplyCode::ConnectionClosed, "Transfer aborted.", bytes),
    }
}
