//! Streaming reads: ranged GETs with a read-ahead window that starts small, doubles while reads stay sequential
//! (tolerating the small reorders the kernel makes), resets on a seek, and is held against the memory budget.

use std::collections::VecDeque;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use futures::{Stream, StreamExt, TryStreamExt};
use tracing::{debug, instrument};

use super::budget::Reservation;
use super::error::{FsError, FsErrorKind, FsResult};
use super::path::Key;
use super::types::Metadata;
use super::BucketFs;

const INITIAL_WINDOW: u64 = 256 * 1024;
const MAX_WINDOW: u64 = 64 * 1024 * 1024;
/// One GET request's chunk inside a window; chunks of one window are fetched concurrently.
const CHUNK: u64 = 8 * 1024 * 1024;
const MAX_CHUNKS_IN_FLIGHT: u64 = 4;
/// Bytes kept behind the read position so that a slightly reordered read is served without a new request.
const KEEP_BEHIND: u64 = 2 * 1024 * 1024;
/// A forward jump up to this far is read through rather than treated as a seek.
const SKIP_AHEAD: u64 = 2 * 1024 * 1024;

type InnerStream = Pin<Box<dyn Stream<Item = FsResult<Bytes>> + Send>>;

/// A file's bytes from some offset, holding its share of the memory budget while it lives.
pub struct ByteStream {
    inner: InnerStream,
    _memory: Vec<Reservation>,
}

impl Stream for ByteStream {
    type Item = FsResult<Bytes>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.inner.as_mut().poll_next(cx)
    }
}

/// One ranged GET in progress: bytes from `pos` up to `end`.
struct Window {
    pos: u64,
    end: u64,
    len: u64,
    stream: ByteStream,
}

/// An open file for random-access reads (the mount).
pub struct ReadHandle {
    fs: BucketFs,
    key: Key,
    meta: Metadata,
    window: Option<Window>,
    /// Recently read bytes, oldest first, ending at the window position: (offset, bytes).
    behind: VecDeque<(u64, Bytes)>,
}

impl BucketFs {
    /// Opens a file for reading.
    #[instrument(level = "debug", skip(self), fields(path = %key.display()))]
    pub async fn open_read(&self, key: &Key) -> FsResult<ReadHandle> {
        let meta = self.readable(key).await?;
        let key = key.clone();
        Ok(ReadHandle {
            fs: self.clone(),
            key,
            meta,
            window: None,
            behind: VecDeque::new(),
        })
    }

    /// The bytes of a file from `offset` to its end as one stream with concurrent prefetch (FTP RETR after REST).
    #[instrument(level = "debug", skip(self), fields(path = %key.display()))]
    pub async fn read_stream(&self, key: &Key, offset: u64) -> FsResult<(Metadata, ByteStream)> {
        let meta = self.readable(key).await?;
        if offset > meta.size {
            return Err(FsError::new(
                FsErrorKind::InvalidOffset,
                format!(
                    "{}: offset {offset} is past the end ({} bytes)",
                    key.display(),
                    meta.size
                ),
            ));
        }
        let stream = self
            .range_stream(key, offset, meta.size, meta.size - offset)
            .await?;
        Ok((meta, stream))
    }

    /// A stream of bytes `range` of the file (FTP `RANG` + `RETR`, digests of a range), and how many bytes that
    /// is: an end past the file's end is the file's end; a start past it is `InvalidOffset`.
    pub async fn read_stream_range(
        &self,
        key: &Key,
        range: std::ops::Range<u64>,
    ) -> FsResult<(u64, ByteStream)> {
        let meta = self.readable(key).await?;
        if range.start > meta.size {
            return Err(FsError::new(
                FsErrorKind::InvalidOffset,
                format!(
                    "{}: offset {} is past the end ({} bytes)",
                    key.display(),
                    range.start,
                    meta.size
                ),
            ));
        }
        let end = range.end.min(meta.size);
        let start = range.start.min(end);
        let stream = self.range_stream(key, start, end, end - start).await?;
        Ok((end - start, stream))
    }

    async fn readable(&self, key: &Key) -> FsResult<Metadata> {
        self.check_name(key)?;
        self.policy().check_read("read", &key.display())?;
        let meta = self.stat_key(key).await?;
        if meta.is_dir() {
            return Err(FsError::new(
                FsErrorKind::IsADirectory,
                format!("{}: is a directory", key.display()),
            ));
        }
        Ok(meta)
    }

    /// A stream of `start..end`, fetched in chunks with up to four in flight, as the budget allows.
    async fn range_stream(
        &self,
        key: &Key,
        start: u64,
        end: u64,
        window: u64,
    ) -> FsResult<ByteStream> {
        let len = end.saturating_sub(start);
        if len == 0 {
            return Ok(ByteStream {
                inner: Box::pin(futures::stream::empty()),
                _memory: Vec::new(),
            });
        }
        let chunk = window.clamp(1, CHUNK).min(len);
        let wanted = (window.min(len).div_ceil(chunk)).clamp(1, MAX_CHUNKS_IN_FLIGHT) * chunk;
        let memory = self.budget().reserve_between(chunk, wanted, chunk).await;
        let concurrent = memory.len().max(1);
        let context = format!("read {}", key.display());
        let reader = self
            .op()
            .reader_with(key.as_str())
            .chunk(chunk as usize)
            .concurrent(concurrent)
            .await
            .map_err(|e| FsError::store(&context, e))?;
        let stream = reader
            .into_bytes_stream(start..end)
            .await
            .map_err(|e| FsError::store(&context, e))?;
        let inner =
            stream.map_err(move |e| FsError::new(FsErrorKind::Store, format!("{context}: {e}")));
        Ok(ByteStream {
            inner: Box::pin(inner),
            _memory: memory,
        })
    }
}

impl ReadHandle {
    pub fn metadata(&self) -> &Metadata {
        &self.meta
    }

    /// Reads up to `len` bytes at `offset` (fewer only at the end of the file).
    pub async fn read_at(&mut self, offset: u64, len: u32) -> FsResult<Bytes> {
        let end = (offset + u64::from(len)).min(self.meta.size);
        if offset >= end {
            return Ok(Bytes::new());
        }
        let mut out = BytesMut::with_capacity((end - offset) as usize);
        let mut cursor = offset;
        while cursor < end {
            if let Some(bytes) = self.bytes_behind(cursor, end) {
                cursor += bytes.len() as u64;
                out.extend_from_slice(&bytes);
                continue;
            }
            let chunk = self.next_chunk_at(cursor).await?;
            let take = ((end - cursor) as usize).min(chunk.len());
            out.extend_from_slice(&chunk[..take]);
            cursor += take as u64;
        }
        Ok(out.freeze())
    }

    /// Bytes at `cursor` from the recently read data, if it holds them.
    fn bytes_behind(&self, cursor: u64, end: u64) -> Option<Bytes> {
        self.behind.iter().find_map(|(start, bytes)| {
            let stop = start + bytes.len() as u64;
            (cursor >= *start && cursor < stop)
                .then(|| bytes.slice((cursor - start) as usize..((end.min(stop)) - start) as usize))
        })
    }

    /// The next chunk starting exactly at `cursor`: continues the window, reads through a short skip, or opens a
    /// new window (after a seek, or when the old window is used up — then twice as large).
    async fn next_chunk_at(&mut self, cursor: u64) -> FsResult<Bytes> {
        loop {
            let sequential = self
                .window
                .as_ref()
                .map(|w| w.pos <= cursor && cursor - w.pos <= SKIP_AHEAD);
            match sequential {
                Some(true) => {
                    #[allow(clippy::expect_used)] // `sequential` is Some only with a window
                    let window = self.window.as_mut().expect("checked above");
                    if window.pos == window.end {
                        let (next_start, next_len) = (window.end, (window.len * 2).min(MAX_WINDOW));
                        self.open_window(next_start, next_len).await?;
                        continue;
                    }
                    let bytes = match window.stream.next().await {
                        Some(Ok(bytes)) if !bytes.is_empty() => bytes,
                        Some(Err(e)) => {
                            self.window = None;
                            return Err(e);
                        }
                        _ => {
                            self.window = None;
                            return Err(FsError::new(
                                FsErrorKind::Store,
                                format!(
                                    "read {}: the object ended early (changed while open?)",
                                    self.key.display()
                                ),
                            ));
                        }
                    };
                    let start = window.pos;
                    window.pos += bytes.len() as u64;
                    self.remember(start, bytes.clone());
                    if start + bytes.len() as u64 <= cursor {
                        continue; // read through a short forward skip
                    }
                    return Ok(bytes.slice((cursor - start) as usize..));
                }
                _ => {
                    debug!(path = %self.key.display(), offset = cursor, "read window reset");
                    self.behind.clear();
                    self.open_window(cursor, INITIAL_WINDOW).await?;
                }
            }
        }
    }

    async fn open_window(&mut self, start: u64, len: u64) -> FsResult<()> {
        self.window = None; // release the old window's memory first
        let end = (start + len).min(self.meta.size);
        let stream = self.fs.range_stream(&self.key, start, end, len).await?;
        self.window = Some(Window {
            pos: start,
            end,
            len,
            stream,
        });
        Ok(())
    }

    fn remember(&mut self, start: u64, bytes: Bytes) {
        self.behind.push_back((start, bytes));
        let mut kept: u64 = self.behind.iter().map(|(_, b)| b.len() as u64).sum();
        while kept > KEEP_BEHIND && self.behind.len() > 1 {
            if let Some((_, old)) = self.behind.pop_front() {
                kept -= old.len() as u64;
            }
        }
    }
}

impl std::fmt::Debug for ReadHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReadHandle")
            .field("key", &self.key)
            .field("size", &self.meta.size)
            .finish()
    }
}
