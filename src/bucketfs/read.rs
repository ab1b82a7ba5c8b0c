//! Streaming reads.
//!
//! FTP RETR reads a file from an offset to its end: one ranged stream with concurrent chunks ([`ByteStream`]).
//!
//! The mount reads at offsets the kernel chooses ([`ReadHandle`]): requests of its readahead size (128 KiB by
//! default, up to `max_pages` = 1 MiB when `read_ahead_kb` is raised), roughly in order but reordered by the
//! readahead requests it keeps in flight. The handle fetches ahead of the reader with ranged GETs that run as
//! tasks of their own, so the next GET is under way while the bytes before it are still being read: the bytes
//! requested ahead start at 256 KiB after an open or a seek and double as the reads stay sequential, up to
//! 32 MiB in GETs of up to 8 MiB. Bytes already read are kept for a while, and a jump forward within reach reads
//! through, so a reordered request is served from memory instead of starting over; how far a request may be out
//! of order grows with the size of the kernel's requests (16 requests, between 2 and 16 MiB). Everything fetched
//! or kept is held against the memory budget.

use std::collections::VecDeque;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use futures::{Stream, TryStreamExt};
use tokio::task::JoinHandle;
use tracing::{debug, instrument};

use super::budget::Reservation;
use super::error::{FsError, FsErrorKind, FsResult};
use super::path::Key;
use super::types::Metadata;
use super::BucketFs;

/// One ranged GET of a RETR stream; chunks of one stream are fetched concurrently.
const CHUNK: u64 = 8 * 1024 * 1024;
const MAX_CHUNKS_IN_FLIGHT: u64 = 4;

/// Bytes requested ahead of the mount's reader right after an open or a seek.
const FIRST_AHEAD: u64 = 256 * 1024;
/// The most requested ahead of the reader (as for RETR: four GETs of 8 MiB).
const MAX_AHEAD: u64 = MAX_CHUNKS_IN_FLIGHT * CHUNK;
/// The smallest GET the reader makes; the bytes ahead are split in at least two GETs.
const MIN_FETCH: u64 = 128 * 1024;
/// How far out of order a request may come, in requests of the largest size seen so far…
const REORDER_REQUESTS: u64 = 16;
/// …but at least and at most this far.
const MIN_REORDER: u64 = 2 * 1024 * 1024;
const MAX_REORDER: u64 = 16 * 1024 * 1024;

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

/// One ranged GET running as its own task. Dropping it cancels the GET.
struct Fetch {
    start: u64,
    end: u64,
    task: JoinHandle<FsResult<Vec<Bytes>>>,
    memory: Option<Reservation>,
}

impl Drop for Fetch {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// An open file for random-access reads (the mount). See the module documentation.
pub struct ReadHandle {
    fs: BucketFs,
    key: Key,
    meta: Metadata,
    /// The offset just past the bytes handed to the reader or skipped: where a sequential read continues.
    pos: u64,
    /// Bytes that arrived and were not read yet, contiguous from `pos`.
    ready: VecDeque<(u64, Bytes)>,
    /// GETs in flight, contiguous after `ready`, in order.
    fetches: VecDeque<Fetch>,
    /// The end of what was requested (of `ready` and `fetches`).
    requested: u64,
    /// How much to keep requested ahead of `pos`.
    ahead: u64,
    /// Bytes already read, contiguous up to `pos`, kept for requests that come late.
    behind: VecDeque<(u64, Bytes)>,
    /// The memory of fetched bytes, by the end of their GET: released once `behind` no longer reaches them.
    held: VecDeque<(u64, Reservation)>,
    /// The largest request so far: how far requests may be reordered grows with it.
    largest_request: u64,
    /// Bytes fetched from the store, for tests that check nothing is fetched twice.
    #[cfg(test)]
    fetched: u64,
}

impl BucketFs {
    /// Opens a file for reading.
    #[instrument(level = "debug", skip(self), fields(path = %key.display()))]
    pub async fn open_read(&self, key: &Key) -> FsResult<ReadHandle> {
        let meta = self.readable(key).await?;
        Ok(ReadHandle {
            fs: self.clone(),
            key: key.clone(),
            meta,
            pos: 0,
            ready: VecDeque::new(),
            fetches: VecDeque::new(),
            requested: 0,
            ahead: FIRST_AHEAD,
            behind: VecDeque::new(),
            held: VecDeque::new(),
            largest_request: 0,
            #[cfg(test)]
            fetched: 0,
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
        let stream = self.range_stream(key, offset, meta.size).await?;
        Ok((meta, stream))
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
    async fn range_stream(&self, key: &Key, start: u64, end: u64) -> FsResult<ByteStream> {
        let len = end.saturating_sub(start);
        if len == 0 {
            return Ok(ByteStream {
                inner: Box::pin(futures::stream::empty()),
                _memory: Vec::new(),
            });
        }
        let chunk = len.min(CHUNK);
        let wanted = len.div_ceil(chunk).min(MAX_CHUNKS_IN_FLIGHT) * chunk;
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
        self.largest_request = self.largest_request.max(end - offset);
        // Most requests lie within one piece of one GET: handed out without a copy.
        let first = self.bytes_at(offset, end).await?;
        if offset + first.len() as u64 == end {
            return Ok(first);
        }
        let mut out = BytesMut::with_capacity((end - offset) as usize);
        out.extend_from_slice(&first);
        let mut cursor = offset + first.len() as u64;
        while cursor < end {
            let bytes = self.bytes_at(cursor, end).await?;
            cursor += bytes.len() as u64;
            out.extend_from_slice(&bytes);
        }
        Ok(out.freeze())
    }

    /// Some bytes at `cursor` (at most up to `end`): from what was read already, from what was fetched ahead
    /// (reading through a short jump forward), or from a new start after a seek.
    async fn bytes_at(&mut self, cursor: u64, end: u64) -> FsResult<Bytes> {
        if let Some(bytes) = slice_of(&self.behind, cursor, end) {
            return Ok(bytes);
        }
        let in_reach =
            cursor >= self.pos && cursor <= self.requested.max(self.pos + self.reorder());
        if !in_reach {
            debug!(path = %self.key.display(), offset = cursor, pos = self.pos, "read restarts at a seek");
            self.restart(cursor);
        } else if self.is_idle() {
            // Nothing is on its way: continue at `cursor` rather than fetch the bytes before it.
            self.pos = cursor;
            self.requested = cursor;
        }
        loop {
            self.top_up(cursor).await;
            let Some((start, bytes)) = self.ready.pop_front() else {
                self.arrive().await?;
                continue;
            };
            let stop = start + bytes.len() as u64;
            self.pos = stop;
            self.keep(start, bytes.clone());
            if stop <= cursor {
                continue; // read through a jump forward: the skipped bytes stay in `behind`
            }
            let from = (cursor - start) as usize;
            let to = (end.min(stop) - start) as usize;
            return Ok(bytes.slice(from..to));
        }
    }

    /// Whether nothing is fetched or on its way that the reader has not passed yet.
    fn is_idle(&self) -> bool {
        self.ready.is_empty() && self.fetches.is_empty()
    }

    /// Forgets everything fetched and continues from `offset`, fetching the least ahead again.
    fn restart(&mut self, offset: u64) {
        self.ready.clear();
        self.fetches.clear();
        self.behind.clear();
        self.held.clear();
        self.pos = offset;
        self.requested = offset;
        self.ahead = FIRST_AHEAD;
    }

    /// How far a request may come out of order and still be read through or served from memory.
    fn reorder(&self) -> u64 {
        (self.largest_request * REORDER_REQUESTS).clamp(MIN_REORDER, MAX_REORDER)
    }

    /// Starts GETs until `ahead` bytes past `pos` (and at least up to `cursor`) are requested, as the budget
    /// allows. When the budget is spent, the reader goes on with what is on its way; with nothing on its way it
    /// lets go of the bytes it keeps and waits for memory (holding nothing while it waits, so that readers
    /// waiting for each other cannot deadlock).
    async fn top_up(&mut self, cursor: u64) {
        let size = self.meta.size;
        let target = (self.pos + self.ahead).max(cursor + 1).min(size);
        while self.requested < target {
            let len = (self.ahead / 2)
                .clamp(MIN_FETCH, CHUNK)
                .min(size - self.requested);
            let memory = match self.fs.budget().try_reserve(len) {
                Some(memory) => memory,
                None if self.is_idle() => {
                    self.behind.clear();
                    self.held.clear();
                    self.fs.budget().reserve(len).await
                }
                None => break,
            };
            self.start_fetch(len, memory);
        }
    }

    fn start_fetch(&mut self, len: u64, memory: Reservation) {
        let (start, end) = (self.requested, self.requested + len);
        let op = self.fs.op().clone();
        let key = self.key.clone();
        let task = tokio::spawn(async move {
            let context = format!("read {}", key.display());
            let buffer = op
                .read_with(key.as_str())
                .range(start..end)
                .await
                .map_err(|e| FsError::store(&context, e))?;
            if buffer.len() as u64 != end - start {
                return Err(FsError::new(
                    FsErrorKind::Store,
                    format!("{context}: the object ended early (changed while open?)"),
                ));
            }
            Ok(buffer.collect())
        });
        #[cfg(test)]
        {
            self.fetched += len;
        }
        self.fetches.push_back(Fetch {
            start,
            end,
            task,
            memory: Some(memory),
        });
        self.requested = end;
    }

    /// Waits for the oldest GET and makes its bytes ready; a failed GET ends everything fetched ahead.
    async fn arrive(&mut self) -> FsResult<()> {
        let Some(mut fetch) = self.fetches.pop_front() else {
            return Err(FsError::new(
                FsErrorKind::Store,
                format!("read {}: nothing is being fetched", self.key.display()),
            ));
        };
        let pieces = match (&mut fetch.task).await {
            Ok(Ok(pieces)) => pieces,
            Ok(Err(e)) => {
                self.restart(self.pos);
                return Err(e);
            }
            Err(join) => {
                self.restart(self.pos);
                return Err(FsError::new(
                    FsErrorKind::Store,
                    format!("read {}: the fetch stopped: {join}", self.key.display()),
                ));
            }
        };
        let mut at = fetch.start;
        for piece in pieces.into_iter().filter(|p| !p.is_empty()) {
            let len = piece.len() as u64;
            self.ready.push_back((at, piece));
            at += len;
        }
        // A GET consumed in order: fetch further ahead.
        self.ahead = (self.ahead * 2).min(MAX_AHEAD);
        if let Some(memory) = fetch.memory.take() {
            self.held.push_back((fetch.end, memory));
        }
        Ok(())
    }

    /// Remembers bytes the reader has passed, dropping (and releasing) what is now too far behind.
    fn keep(&mut self, start: u64, bytes: Bytes) {
        self.behind.push_back((start, bytes));
        let oldest = self.pos.saturating_sub(self.reorder());
        while let Some((start, bytes)) = self.behind.front() {
            if start + bytes.len() as u64 > oldest {
                break;
            }
            self.behind.pop_front();
        }
        let kept_from = self.behind.front().map_or(self.pos, |(start, _)| *start);
        while self.held.front().is_some_and(|(end, _)| *end <= kept_from) {
            self.held.pop_front();
        }
    }

    /// Bytes fetched from the store so far.
    #[cfg(test)]
    pub(crate) fn fetched(&self) -> u64 {
        self.fetched
    }
}

/// The bytes at `cursor` (up to `end`) that `pieces` hold, if any.
fn slice_of(pieces: &VecDeque<(u64, Bytes)>, cursor: u64, end: u64) -> Option<Bytes> {
    let (start, bytes) = pieces
        .iter()
        .find(|(start, bytes)| cursor >= *start && cursor < start + bytes.len() as u64)?;
    let stop = start + bytes.len() as u64;
    Some(bytes.slice((cursor - start) as usize..(end.min(stop) - start) as usize))
}

impl std::fmt::Debug for ReadHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReadHandle")
            .field("key", &self.key)
            .field("size", &self.meta.size)
            .field("pos", &self.pos)
            .finish()
    }
}
