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
//! or kept is held against the memory budget, except, when the budget is spent, one GET of 128 KiB per reader
//! with nothing else on its way (so that a reader never waits for memory that idle open files hold).

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

/// The first GET of a RETR of a name the cache does not know: a small file in one request.
const FIRST_GET: u64 = 1024 * 1024;
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
/// How far into a file, in requests of its size, the first request after an open may be and still be taken for
/// the kernel's first readahead requests arriving out of order (its first window is 2 to 4 times its first read).
const FIRST_REORDER_REQUESTS: u64 = 4;

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

/// One ranged GET running as its own task, so that it proceeds while the reader is busy elsewhere. Dropping it
/// cancels the GET.
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

/// The bytes of one GET that arrived, as the response's chunks (not copied together: a request within one chunk
/// is answered with a slice of it), with the memory they hold.
struct Piece {
    start: u64,
    end: u64,
    /// Each chunk with its file offset, in order.
    chunks: Vec<(u64, Bytes)>,
    _memory: Option<Reservation>,
}

impl Piece {
    fn end(&self) -> u64 {
        self.end
    }

    /// The bytes at `cursor` (which lies in this piece) up to `end` or the end of their chunk.
    fn slice(&self, cursor: u64, end: u64) -> Option<Bytes> {
        let i = self.chunks.partition_point(|(start, _)| *start <= cursor);
        let (start, bytes) = self.chunks.get(i.checked_sub(1)?)?;
        let stop = start + bytes.len() as u64;
        (cursor < stop)
            .then(|| bytes.slice((cursor - start) as usize..(end.min(stop) - start) as usize))
    }
}

/// An open file for random-access reads (the mount). See the module documentation.
pub struct ReadHandle {
    fs: BucketFs,
    key: Key,
    meta: Metadata,
    /// The end of the furthest bytes handed to the reader: where a sequential read continues.
    pos: u64,
    /// GETs that arrived, in file order: what the reader is about to read, and what it read a little while ago
    /// (for requests that come late).
    pieces: VecDeque<Piece>,
    /// GETs in flight, contiguous up to `requested`, in order.
    fetches: VecDeque<Fetch>,
    /// The end of what was requested.
    requested: u64,
    /// How much to keep requested ahead of `pos`.
    ahead: u64,
    /// The largest request so far: how far requests may be reordered grows with it.
    largest_request: u64,
    /// Where a request that spans chunks is copied together.
    scratch: BytesMut,
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
            pieces: VecDeque::new(),
            fetches: VecDeque::new(),
            requested: 0,
            ahead: FIRST_AHEAD,
            largest_request: 0,
            scratch: BytesMut::new(),
            #[cfg(test)]
            fetched: 0,
        })
    }

    /// The bytes of a file from `offset` to its end as one stream with concurrent prefetch (FTP RETR after REST),
    /// and how many bytes that is.
    ///
    /// A name the cache does not know is opened with the GET of its first bytes, whose answer says the object's
    /// size, rather than with a HEAD and a listing first: one request instead of three for a small file, and no
    /// round trip before the first byte of a large one. Only when that GET finds no object (or the offset lies at
    /// or past its end) is the name looked at, for the answer it deserves: a directory, no such file, an empty
    /// transfer at the end, an offset past it.
    #[instrument(level = "debug", skip(self), fields(path = %key.display()))]
    pub async fn read_stream(&self, key: &Key, offset: u64) -> FsResult<(u64, ByteStream)> {
        self.may_read(key)?;
        if self.reads_report_size() && !self.stat_is_known(key) {
            if let Some(opened) = self.open_with_get(key, offset).await? {
                return Ok(opened);
            }
        }
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
        let stream = self.range_stream(key, offset, meta.size, None).await?;
        Ok((meta.size - offset, stream))
    }

    /// Opens `key` at `offset` with a GET of up to [`FIRST_GET`] bytes; the rest of the object, if any, follows
    /// in the chunks of [`Self::range_stream`], on condition that the object is still the one the first GET
    /// found. `None` when the GET found no object or no bytes at `offset`.
    async fn open_with_get(&self, key: &Key, offset: u64) -> FsResult<Option<(u64, ByteStream)>> {
        use opendal::ErrorKind;
        let context = format!("read {}", key.display());
        let mut first = self
            .op()
            .reader_with(key.as_str())
            .await
            .map_err(|e| FsError::store(&context, e))?
            .into_bytes_stream(offset..offset + FIRST_GET)
            .await
            .map_err(|e| FsError::store(&context, e))?;
        // Sends the GET and waits for the head of its answer.
        let object = match first.metadata().await {
            Ok(object) => object,
            Err(e) if matches!(e.kind(), ErrorKind::NotFound | ErrorKind::RangeNotSatisfied) => {
                debug!(path = %key.display(), offset, error = %e, "nothing to read there: looking the name up");
                return Ok(None);
            }
            Err(e) => return Err(FsError::store(&context, e)),
        };
        let size = object.content_length();
        if offset >= size {
            return Ok(None);
        }
        let first_end = (offset + FIRST_GET).min(size);
        let memory = self.budget().reserve(first_end - offset).await;
        let first = exactly(first_end - offset, first, context.clone());
        let inner: InnerStream = if first_end < size {
            let rest = self
                .range_stream(key, first_end, size, object.etag())
                .await?;
            Box::pin(futures::StreamExt::chain(first, rest))
        } else {
            Box::pin(first)
        };
        Ok(Some((
            size - offset,
            ByteStream {
                inner,
                _memory: vec![memory],
            },
        )))
    }

    /// Whether a GET's answer tells the object's size (object stores do; reads of the `fs` backend, which are
    /// positioned reads of a local file, do not).
    fn reads_report_size(&self) -> bool {
        !self.is_local_directory()
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
        let stream = self.range_stream(key, start, end, None).await?;
        Ok((end - start, stream))
    }

    fn may_read(&self, key: &Key) -> FsResult<()> {
        self.check_name(key)?;
        self.policy().check_read("read", &key.display())
    }

    async fn readable(&self, key: &Key) -> FsResult<Metadata> {
        self.may_read(key)?;
        let meta = self.stat_key(key).await?;
        if meta.is_dir() {
            return Err(FsError::new(
                FsErrorKind::IsADirectory,
                format!("{}: is a directory", key.display()),
            ));
        }
        Ok(meta)
    }

    /// A stream of `start..end`, fetched in chunks with up to four in flight, as the budget allows; with an
    /// ETag and a store that takes the condition, each chunk only of that version of the object (another version
    /// ends the stream with `Conflict`).
    async fn range_stream(
        &self,
        key: &Key,
        start: u64,
        end: u64,
        etag: Option<&str>,
    ) -> FsResult<ByteStream> {
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
        let mut reader = self
            .op()
            .reader_with(key.as_str())
            .chunk(chunk as usize)
            .concurrent(concurrent);
        let conditional = self.op().info().capability().read_with_if_match;
        if let Some(etag) = etag.filter(|_| conditional) {
            reader = reader.if_match(etag);
        }
        let reader = reader.await.map_err(|e| FsError::store(&context, e))?;
        let stream = reader
            .into_bytes_stream(start..end)
            .await
            .map_err(|e| FsError::store(&context, e))?;
        let inner = stream.map_err(move |e| stream_error(&context, e));
        Ok(ByteStream {
            inner: Box::pin(inner),
            _memory: memory,
        })
    }
}

/// An error in the middle of a stream of bytes; a failed condition (see [`BucketFs::range_stream`]) means the
/// object was replaced while it was read.
fn stream_error(context: &str, e: std::io::Error) -> FsError {
    let replaced = e
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<opendal::Error>())
        .is_some_and(|e| e.kind() == opendal::ErrorKind::ConditionNotMatch);
    if replaced {
        FsError::new(
            FsErrorKind::Conflict,
            format!("{context}: the file was replaced while it was read"),
        )
    } else {
        FsError::new(FsErrorKind::Store, format!("{context}: {e}"))
    }
}

/// `len` bytes of `stream`, no more (a store that ignored the range would send the whole object) and no fewer
/// (the object ended early: it changed while it was read).
fn exactly(
    len: u64,
    stream: impl Stream<Item = std::io::Result<Bytes>> + Send + 'static,
    context: String,
) -> impl Stream<Item = FsResult<Bytes>> + Send + 'static {
    futures::stream::try_unfold((Box::pin(stream), len), move |(mut stream, left)| {
        let context = context.clone();
        async move {
            if left == 0 {
                return Ok(None);
            }
            match stream.try_next().await {
                Ok(Some(mut bytes)) => {
                    bytes.truncate(usize::try_from(left).unwrap_or(usize::MAX));
                    let left = left - bytes.len() as u64;
                    Ok(Some((bytes, (stream, left))))
                }
                Ok(None) => Err(FsError::new(
                    FsErrorKind::Store,
                    format!("{context}: the object ended early (changed while it was read?)"),
                )),
                Err(e) => Err(stream_error(&context, e)),
            }
        }
    })
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
        // A request within one chunk of a response is handed out without a copy.
        let first = self.bytes_at(offset, end).await?;
        if offset + first.len() as u64 == end {
            return Ok(first);
        }
        // Copied together in the handle's scratch buffer, taken back once the previous answer has been sent
        // (a fresh buffer for each request would cost page faults).
        let mut out = std::mem::take(&mut self.scratch);
        out.clear();
        out.reserve((end - offset) as usize);
        out.extend_from_slice(&first);
        let mut cursor = offset + first.len() as u64;
        while cursor < end {
            let bytes = self.bytes_at(cursor, end).await?;
            cursor += bytes.len() as u64;
            out.extend_from_slice(&bytes);
        }
        let answer = out.split().freeze();
        self.scratch = out;
        Ok(answer)
    }

    /// Some bytes at `cursor` (at most up to `end`): from what arrived, after waiting for what is on its way
    /// (reading through a jump forward within reach), or from a new start after a seek.
    async fn bytes_at(&mut self, cursor: u64, end: u64) -> FsResult<Bytes> {
        let in_reach = self.pieces.front().map_or(self.pos, |p| p.start) <= cursor
            && cursor <= self.requested.max(self.pos + self.reorder());
        if !in_reach {
            debug!(path = %self.key.display(), offset = cursor, pos = self.pos, "read restarts at a seek");
            self.restart(cursor);
        }
        loop {
            if let Some(bytes) = self.arrived(cursor, end) {
                self.pos = self.pos.max(cursor + bytes.len() as u64);
                self.drop_behind();
                self.top_up(cursor).await;
                return Ok(bytes);
            }
            match self.fetches.front().map(|f| f.start) {
                // The first request of an open file, a little way in: the kernel's first readahead requests,
                // in flight together, came out of order, and the ones before it follow. Fetch from the start.
                None if self.is_fresh() && cursor <= FIRST_REORDER_REQUESTS * (end - cursor) => {}
                // Nothing on its way: continue at `cursor` rather than fetch the bytes before it.
                None if cursor >= self.requested => self.requested = cursor,
                // `cursor` lies in a gap left by a jump, which nothing on its way will fill.
                None => self.restart(cursor),
                Some(coming) if cursor < coming => self.restart(cursor),
                Some(_) => {}
            }
            self.top_up(cursor).await;
            self.arrive().await?;
        }
    }

    /// The bytes at `cursor` (up to `end`, or the end of the chunk that holds them) if they arrived.
    fn arrived(&self, cursor: u64, end: u64) -> Option<Bytes> {
        self.pieces
            .iter()
            .rev()
            .find(|p| p.start <= cursor && cursor < p.end())?
            .slice(cursor, end)
    }

    /// Forgets everything fetched and continues from `offset`, fetching the least ahead again.
    fn restart(&mut self, offset: u64) {
        self.pieces.clear();
        self.fetches.clear();
        self.pos = offset;
        self.requested = offset;
        self.ahead = FIRST_AHEAD;
    }

    /// Nothing read or fetched since the open.
    fn is_fresh(&self) -> bool {
        self.pos == 0 && self.requested == 0 && self.pieces.is_empty()
    }

    /// How far a request may come out of order and still be read through or served from memory.
    fn reorder(&self) -> u64 {
        (self.largest_request * REORDER_REQUESTS).clamp(MIN_REORDER, MAX_REORDER)
    }

    /// Releases the pieces the reader has left behind by more than a reorder.
    fn drop_behind(&mut self) {
        let oldest = self.pos.saturating_sub(self.reorder());
        while self.pieces.front().is_some_and(|p| p.end() <= oldest) {
            self.pieces.pop_front();
        }
    }

    /// Starts GETs until `ahead` bytes past `pos` (and at least up to `cursor`) are requested, as the budget
    /// allows. When the budget is spent, the reader goes on with what is on its way; with nothing on its way it
    /// lets go of what it holds and fetches the bytes at `cursor` without a reservation.
    async fn top_up(&mut self, cursor: u64) {
        let size = self.meta.size;
        let target = (self.pos + self.ahead).max(cursor + 1).min(size);
        while self.requested < target {
            let len = (self.ahead / 2)
                .clamp(MIN_FETCH, CHUNK)
                .min(size - self.requested);
            match self.fs.budget().try_reserve(len) {
                Some(memory) => self.start_fetch(len, Some(memory)),
                None if self.fetches.is_empty() && self.requested <= cursor => {
                    // Nothing on its way and the budget spent (other handles may hold it, idle, for as long as
                    // their files stay open): the request's own bytes are fetched outside the budget rather
                    // than waited for, so no reader waits on another. At most one small GET per reader.
                    self.pieces.clear();
                    self.start_fetch(MIN_FETCH.min(size - self.requested), None);
                    break;
                }
                None => break,
            }
        }
    }

    fn start_fetch(&mut self, len: u64, memory: Option<Reservation>) {
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
            memory,
        });
        self.requested = end;
    }

    /// Waits for the oldest GET and keeps its bytes; a failed GET ends everything fetched ahead.
    async fn arrive(&mut self) -> FsResult<()> {
        let Some(mut fetch) = self.fetches.pop_front() else {
            return Err(FsError::new(
                FsErrorKind::Store,
                format!("read {}: nothing is being fetched", self.key.display()),
            ));
        };
        let received = match (&mut fetch.task).await {
            Ok(Ok(received)) => received,
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
        let mut chunks = Vec::with_capacity(received.len());
        let mut at = fetch.start;
        for bytes in received.into_iter().filter(|b| !b.is_empty()) {
            let len = bytes.len() as u64;
            chunks.push((at, bytes));
            at += len;
        }
        self.pieces.push_back(Piece {
            start: fetch.start,
            end: fetch.end,
            chunks,
            _memory: fetch.memory.take(),
        });
        // The reader keeps up: fetch further ahead.
        self.ahead = (self.ahead * 2).min(MAX_AHEAD);
        Ok(())
    }

    /// Bytes fetched from the store so far.
    #[cfg(test)]
    pub(crate) fn fetched(&self) -> u64 {
        self.fetched
    }
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
