//! A connection that is plain TCP or TLS over it: the control connection after AUTH TLS, data after PROT P.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::BytesMut;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::server::TlsStream;

pub enum MaybeTls {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

impl MaybeTls {
    pub fn is_tls(&self) -> bool {
        matches!(self, MaybeTls::Tls(_))
    }

    pub fn tcp(&self) -> &TcpStream {
        match self {
            MaybeTls::Plain(s) => s,
            MaybeTls::Tls(s) => s.get_ref().0,
        }
    }

    /// Reads what the control connection has into `buf` (0 at end of file), for the command loop.
    ///
    /// Clients send ABOR as TCP urgent data, and the kernel ends a read at the urgent mark even when more bytes
    /// are queued. `read_buf` takes such a short read as "socket drained" and waits for the next readiness event,
    /// which never comes if the client now waits for our reply (ftplib's urgent `ABOR\r\n` stopped at `ABOR\r`).
    /// `try_read_buf` forgets readiness only on `WouldBlock`, so the bytes past the mark are read at once. Cancel
    /// safe.
    pub async fn read_control(&mut self, buf: &mut BytesMut) -> io::Result<usize> {
        match self {
            MaybeTls::Plain(s) => loop {
                s.readable().await?;
                match s.try_read_buf(buf) {
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                    read => return read,
                }
            },
            MaybeTls::Tls(s) => s.read_buf(buf).await,
        }
    }
}

impl AsyncRead for MaybeTls {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            MaybeTls::Plain(s) => Pin::new(s).poll_read(cx, buf),
            MaybeTls::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for MaybeTls {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            MaybeTls::Plain(s) => Pin::new(s).poll_write(cx, buf),
            MaybeTls::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            MaybeTls::Plain(s) => Pin::new(s).poll_flush(cx),
            MaybeTls::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            MaybeTls::Plain(s) => Pin::new(s).poll_shutdown(cx),
            MaybeTls::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

/// Progress worth the name on a data connection: the stall clock restarts only once this much has moved since it
/// last did. A client that trickles a byte now and then would otherwise hold its transfer — and its share of the
/// memory budget — for ever; one that moves 64 KiB per `idle_timeout` is slow but real (with the default 300 s,
/// 220 bytes a second; with 20 s, 3.2 KiB a second, a third of a 56k modem).
pub const MIN_PROGRESS: u64 = 64 * 1024;

/// A data connection that fails with `TimedOut` when it moves less than [`MIN_PROGRESS`] bytes in `limit` (a
/// client that stops reading or sending, or trickles, would otherwise hold its transfer forever).
pub struct Watched<S> {
    inner: S,
    limit: std::time::Duration,
    timer: Pin<Box<tokio::time::Sleep>>,
    /// Bytes moved since the clock last restarted.
    moved: u64,
}

/// What transfers run over.
pub type DataStream = Watched<MaybeTls>;

impl<S> Watched<S> {
    pub fn new(inner: S, limit: std::time::Duration) -> Self {
        Self {
            inner,
            limit,
            timer: Box::pin(tokio::time::sleep(limit)),
            moved: 0,
        }
    }

    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    fn stalled(&self) -> io::Error {
        io::Error::new(
            io::ErrorKind::TimedOut,
            format!(
                "less than {} KiB moved in {} s",
                MIN_PROGRESS / 1024,
                self.limit.as_secs()
            ),
        )
    }

    /// Progress bookkeeping: `moved` bytes came with a ready poll; enough of them restart the clock, and a peer that
    /// stays under the bar fails once the clock runs out, whether its polls are ready or pending.
    fn watch<T>(
        &mut self,
        cx: &mut Context<'_>,
        poll: Poll<io::Result<T>>,
        moved: usize,
    ) -> Poll<io::Result<T>> {
        match poll {
            Poll::Ready(Ok(value)) => {
                self.moved += moved as u64;
                if self.moved >= MIN_PROGRESS {
                    self.moved = 0;
                    let deadline = tokio::time::Instant::now() + self.limit;
                    self.timer.as_mut().reset(deadline);
                } else if moved > 0 && self.timer.is_elapsed() {
                    return Poll::Ready(Err(self.stalled()));
                }
                Poll::Ready(Ok(value))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => match std::future::Future::poll(self.timer.as_mut(), cx) {
                Poll::Ready(()) => Poll::Ready(Err(self.stalled())),
                Poll::Pending => Poll::Pending,
            },
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Watched<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let poll = Pin::new(&mut this.inner).poll_read(cx, buf);
        let moved = buf.filled().len().saturating_sub(before);
        this.watch(cx, poll, moved)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Watched<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let poll = Pin::new(&mut this.inner).poll_write(cx, buf);
        let moved = match &poll {
            Poll::Ready(Ok(n)) => *n,
            _ => 0,
        };
        this.watch(cx, poll, moved)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let poll = Pin::new(&mut this.inner).poll_flush(cx);
        this.watch(cx, poll, 0)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let poll = Pin::new(&mut this.inner).poll_shutdown(cx);
        this.watch(cx, poll, 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn a_stalled_or_trickling_peer_times_out_and_progress_resets_the_clock() {
        let chunk = MIN_PROGRESS as usize;
        let (client, server) = tokio::io::duplex(2 * chunk);
        let limit = std::time::Duration::from_millis(200);
        let mut watched = Watched::new(server, limit);
        let mut client = client;
        let writer = tokio::spawn(async move {
            for _ in 0..4 {
                client.write_all(&vec![b'x'; chunk]).await.unwrap();
                tokio::time::sleep(limit / 2).await;
            }
            // Then a byte now and then, with the connection open.
            for _ in 0..20 {
                client.write_all(b"x").await.unwrap();
                tokio::time::sleep(limit / 4).await;
            }
            drop(client);
        });
        let mut buf = vec![0u8; chunk];
        let mut got = 0;
        // Steady progress, four times the limit long, keeps it alive.
        while got < 4 * chunk {
            got += watched.read(&mut buf).await.unwrap();
        }
        let err = loop {
            match watched.read(&mut buf).await {
                Ok(n) => assert!(n > 0, "the trickle outlasted the limit"),
                Err(e) => break e,
            }
        };
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        writer.abort();
    }
}
