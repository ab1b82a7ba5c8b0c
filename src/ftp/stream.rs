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

/// A data connection that fails with `TimedOut` when it makes no progress for `limit` (a client that stops reading
/// or sending would otherwise hold its transfer — and its share of the memory budget — forever).
pub struct Watched<S> {
    inner: S,
    limit: std::time::Duration,
    timer: Pin<Box<tokio::time::Sleep>>,
}

/// What transfers run over.
pub type DataStream = Watched<MaybeTls>;

impl<S> Watched<S> {
    pub fn new(inner: S, limit: std::time::Duration) -> Self {
        Self {
            inner,
            limit,
            timer: Box::pin(tokio::time::sleep(limit)),
        }
    }

    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// Turns "not ready" into progress bookkeeping: ready resets the clock, pending checks it.
    fn watch<T>(&mut self, cx: &mut Context<'_>, poll: Poll<io::Result<T>>) -> Poll<io::Result<T>> {
        match poll {
            Poll::Ready(result) => {
                let deadline = tokio::time::Instant::now() + self.limit;
                self.timer.as_mut().reset(deadline);
                Poll::Ready(result)
            }
            Poll::Pending => match std::future::Future::poll(self.timer.as_mut(), cx) {
                Poll::Ready(()) => Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("no data moved for {} s", self.limit.as_secs()),
                ))),
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
        let poll = Pin::new(&mut this.inner).poll_read(cx, buf);
        this.watch(cx, poll)
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
        this.watch(cx, poll)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let poll = Pin::new(&mut this.inner).poll_flush(cx);
        this.watch(cx, poll)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let poll = Pin::new(&mut this.inner).poll_shutdown(cx);
        this.watch(cx, poll)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn a_stalled_peer_times_out_and_progress_resets_the_clock() {
        let (client, server) = tokio::io::duplex(64);
        let limit = std::time::Duration::from_millis(100);
        let mut watched = Watched::new(server, limit);
        let mut client = client;
        let writer = tokio::spawn(async move {
            for _ in 0..3 {
                client.write_all(b"x").await.unwrap();
                tokio::time::sleep(limit / 2).await;
            }
            // Then stall with the connection open.
            tokio::time::sleep(limit * 10).await;
            drop(client);
        });
        let mut buf = [0u8; 8];
        for _ in 0..3 {
            assert_eq!(
                watched.read(&mut buf).await.unwrap(),
                1,
                "steady progress keeps it alive"
            );
        }
        let err = watched.read(&mut buf).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        writer.abort();
    }
}
