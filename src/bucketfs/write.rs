//! Streaming writes: sequential bytes go into a multipart upload while they arrive; close completes it, any
//! failure aborts it. Nothing is staged on local disk and a truncated object is never committed.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use tracing::{debug, info, instrument, warn};

use super::budget::Reservation;
use super::error::{FsError, FsErrorKind, FsResult};
use super::path::Key;
use super::types::Metadata;
use super::BucketFs;

/// A store accepts at most this much per server-side part copy.
const MAX_COPY_PART: u64 = 5 * 1024 * 1024 * 1024;

/// What the writer means to do; the core decides whether it may and how.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteIntent {
    /// Start a new object from byte 0 (`O_TRUNC`, FTP STOR). Replacing an existing file needs `delete_enable`.
    Replace,
    /// Continue at the current end (`O_APPEND`, FTP APPE); a missing file is created.
    Append,
    /// Continue at byte `n`, which must be the current end (FTP REST n + STOR); 0 is a plain `Replace`.
    ResumeAt(u64),
    /// Create a file that must not exist yet (`O_CREAT | O_EXCL`).
    CreateNew,
    /// Open without truncating (what vsftpd and many programs do): the first truncate or write decides —
    /// `truncate(0)` or a write at 0 of an empty file starts fresh, a write at the current size appends.
    Open,
}

/// What the upload will be built from, once decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Plan {
    Undecided,
    Fresh,
    /// The first `n` bytes are the old object, copied server-side where the store can.
    AppendTo(u64),
}

enum Upload {
    NotStarted,
    Running {
        writer: opendal::Writer,
        _memory: Vec<Reservation>,
    },
    Finished,
}

/// An open file being written. Call `close` to commit (its error is the upload's error) or `abort`; dropping it
/// without either aborts the upload in the background.
pub struct WriteHandle {
    fs: BucketFs,
    key: Key,
    /// Size of the object when the handle was opened (`None`: it did not exist).
    existing: Option<u64>,
    plan: Plan,
    upload: Upload,
    /// Logical size so far (copied bytes included); shared with `stat`.
    size: Arc<AtomicU64>,
}

/// How many names `create_unique` tries before giving up (FTP STOU).
const UNIQUE_ATTEMPTS: u32 = 100;

impl BucketFs {
    /// Opens `key` for writing. Refuses directories, a missing parent, and a second concurrent writer.
    #[instrument(level = "debug", skip(self), fields(path = %key.display()))]
    pub async fn open_write(&self, key: &Key, intent: WriteIntent) -> FsResult<WriteHandle> {
        self.check_name(key)?;
        if key.is_root() {
            return Err(FsError::new(FsErrorKind::IsADirectory, "/: is a directory"));
        }
        self.policy().check_write("write", &key.display())?;
        if let Some(parent) = key.parent() {
            self.require_dir(&parent).await?;
        }
        let key = key.clone();
        let existing = match self.lookup_key(&key).await? {
            Some(meta) if meta.is_dir() => {
                return Err(FsError::new(
                    FsErrorKind::IsADirectory,
                    format!("{}: is a directory", key.display()),
                ))
            }
            Some(meta) => Some(meta.size),
            None => None,
        };
        let plan = match (intent, existing) {
            (WriteIntent::CreateNew, Some(_)) => {
                return Err(FsError::new(
                    FsErrorKind::AlreadyExists,
                    format!("{}: already exists", key.display()),
                ))
            }
            (WriteIntent::ResumeAt(n), None) if n > 0 => {
                return Err(FsError::new(
                    FsErrorKind::InvalidOffset,
                    format!(
                        "{}: cannot resume at byte {n}: the file does not exist",
                        key.display()
                    ),
                ))
            }
            (WriteIntent::ResumeAt(n), Some(size)) if n > 0 && n != size => {
                return Err(FsError::new(
                    FsErrorKind::InvalidOffset,
                    format!(
                        "{}: cannot resume at byte {n}: an object can only be continued at its end ({size} bytes)",
                        key.display()
                    ),
                ))
            }
            // Replacing an empty object destroys nothing, so it needs no delete_enable.
            (WriteIntent::Replace | WriteIntent::ResumeAt(0), Some(1..)) => {
                self.policy().check_destroy("overwrite", &key.display())?;
                Plan::Fresh
            }
            (WriteIntent::Append | WriteIntent::ResumeAt(_), Some(size)) => Plan::AppendTo(size),
            (WriteIntent::Open, Some(1..)) => Plan::Undecided,
            (_, Some(_) | None) => Plan::Fresh,
        };
        // What `stat` shows while the handle is open: the old size until the file is truncated.
        let start = match plan {
            Plan::AppendTo(size) => size,
            Plan::Undecided => existing.unwrap_or(0),
            Plan::Fresh => 0,
        };
        let size = self.register_writer(&key, start)?;
        Ok(WriteHandle {
            fs: self.clone(),
            key,
            existing,
            plan,
            upload: Upload::NotStarted,
            size,
        })
    }

    /// Creates a file under a name that does not exist yet: `base`, else `base.1`, `base.2`, … (FTP STOU). The
    /// handle's `key` says which name was taken.
    #[instrument(level = "debug", skip(self), fields(path = %base.display()))]
    pub async fn create_unique(&self, base: &Key) -> FsResult<WriteHandle> {
        let (parent, name) = match base.parent() {
            Some(parent) => (parent, base.name().to_string()),
            // STOU of a directory (or the root): make the new file inside it.
            None => (Key::root(), "file".to_string()),
        };
        let (parent, name) = match self.lookup_key(base).await? {
            Some(meta) if meta.is_dir() => (base.clone(), "file".to_string()),
            _ => (parent, name),
        };
        for n in 0..UNIQUE_ATTEMPTS {
            let candidate = if n == 0 {
                parent.join(&name)?
            } else {
                parent.join(&format!("{name}.{n}"))?
            };
            match self.open_write(&candidate, WriteIntent::CreateNew).await {
                Ok(handle) => return Ok(handle),
                Err(e) if matches!(e.kind(), FsErrorKind::AlreadyExists | FsErrorKind::Busy) => {}
                Err(e) => return Err(e),
            }
        }
        Err(FsError::new(
            FsErrorKind::AlreadyExists,
            format!(
                "{}: no free name among {UNIQUE_ATTEMPTS} tries",
                base.display()
            ),
        ))
    }

    fn register_writer(&self, key: &Key, start: u64) -> FsResult<Arc<AtomicU64>> {
        let mut writing = self
            .inner
            .writing
            .lock()
            .map_err(|_| FsError::new(FsErrorKind::Store, "writer table poisoned"))?;
        if writing.contains_key(key) {
            return Err(FsError::new(
                FsErrorKind::Busy,
                format!("{}: the file is already being written", key.display()),
            ));
        }
        let size = Arc::new(AtomicU64::new(start));
        writing.insert(key.clone(), Arc::clone(&size));
        Ok(size)
    }

    fn unregister_writer(&self, key: &Key) {
        if let Ok(mut writing) = self.inner.writing.lock() {
            writing.remove(key);
        }
    }
}

impl WriteHandle {
    /// The name being written.
    pub fn key(&self) -> &Key {
        &self.key
    }

    /// Bytes in the file so far (the offset the next write must use).
    pub fn size(&self) -> u64 {
        self.size.load(Ordering::Relaxed)
    }

    /// Only `truncate(0)` (start over; replacing data needs `delete_enable`) and truncating to the current size
    /// (nothing to do) can be honoured on an object store.
    pub async fn truncate(&mut self, len: u64) -> FsResult<()> {
        let result = self.truncate_inner(len).await;
        self.poison_on_error(result).await
    }

    async fn truncate_inner(&mut self, len: u64) -> FsResult<()> {
        self.ensure_open()?;
        if len == self.size() {
            return Ok(());
        }
        if len != 0 {
            return Err(self.invalid_offset(format!(
                "truncate to {len}: an object can only be truncated to 0 or kept at its size ({})",
                self.size()
            )));
        }
        let replaces_data = self.existing.is_some_and(|n| n > 0) || self.size() > 0;
        if replaces_data {
            self.fs
                .policy()
                .check_destroy("overwrite", &self.key.display())?;
        }
        if matches!(self.upload, Upload::Running { .. }) {
            // Start over: the bytes uploaded so far are thrown away, the old object stays until close.
            self.abort_upload().await;
            self.upload = Upload::NotStarted;
        }
        self.plan = Plan::Fresh;
        self.size.store(0, Ordering::Relaxed);
        Ok(())
    }

    /// Writes at `offset`, which must be the current end; an undecided handle decides here.
    pub async fn write_at(&mut self, offset: u64, data: Bytes) -> FsResult<()> {
        let result = self.write_at_inner(offset, data).await;
        self.poison_on_error(result).await
    }

    async fn write_at_inner(&mut self, offset: u64, data: Bytes) -> FsResult<()> {
        self.ensure_open()?;
        self.decide_at(offset)?;
        if offset != self.size() {
            return Err(self.invalid_offset(format!(
                "write at offset {offset}: object store files are written sequentially; the next byte is at {}",
                self.size()
            )));
        }
        self.write_inner(data).await
    }

    /// An undecided handle's first write picks the plan: at the old size it appends; anything else needs a
    /// truncate first.
    fn decide_at(&mut self, offset: u64) -> FsResult<()> {
        if self.plan != Plan::Undecided {
            return Ok(());
        }
        match self.existing {
            Some(size) if offset == size => {
                self.plan = Plan::AppendTo(size);
                self.size.store(size, Ordering::Relaxed);
                Ok(())
            }
            Some(size) => Err(self.invalid_offset(format!(
                "write at offset {offset}: an existing object of {size} bytes can only be appended at its end, \
                 or truncated to 0 first"
            ))),
            None => {
                self.plan = Plan::Fresh;
                Ok(())
            }
        }
    }

    /// Appends `data` at the current end.
    pub async fn write(&mut self, data: Bytes) -> FsResult<()> {
        let result = self.write_inner(data).await;
        self.poison_on_error(result).await
    }

    /// A refused or failed write or truncate ends the handle: the program believes bytes are in the file that are
    /// not, so committing what came before would store a wrong file. The upload is aborted; `close` then fails
    /// and the old object (if any) stays as it was.
    async fn poison_on_error(&mut self, result: FsResult<()>) -> FsResult<()> {
        if result.is_err() {
            self.abort_upload().await;
        }
        result
    }

    async fn write_inner(&mut self, data: Bytes) -> FsResult<()> {
        self.ensure_open()?;
        let end = self.existing.unwrap_or(0);
        self.decide_at(if self.plan == Plan::Undecided {
            end
        } else {
            self.size()
        })?;
        if data.is_empty() {
            return Ok(());
        }
        let limit = self.fs.settings().single_file_max_size;
        let new_size = self.size() + data.len() as u64;
        if new_size > limit {
            self.abort_upload().await;
            return Err(FsError::new(
                FsErrorKind::TooLarge,
                format!("{}: over the size limit of {limit} bytes (single_file_max_size); nothing was stored", self.key.display()),
            ));
        }
        let writer = self.writer().await?;
        if let Err(e) = writer.write(data).await {
            let err = FsError::store(&format!("write {}", self.key.display()), e);
            self.abort_upload().await;
            return Err(err);
        }
        self.size.store(new_size, Ordering::Relaxed);
        Ok(())
    }

    /// Completes the upload; only now does the object (new or replaced) exist in the store.
    #[instrument(level = "info", skip(self), fields(path = %self.key.display(), size = self.size()))]
    pub async fn close(mut self) -> FsResult<Metadata> {
        self.ensure_open()?;
        let result = self.commit().await;
        self.upload = Upload::Finished;
        self.fs.unregister_writer(&self.key);
        let meta = result?;
        self.fs.cache().put(&self.key, Some(meta.clone()));
        info!(bytes = meta.size, "upload complete");
        Ok(meta)
    }

    /// Abandons the upload: no object is created and an existing one stays as it was.
    pub async fn abort(mut self) {
        self.abort_upload().await;
        self.fs.unregister_writer(&self.key);
    }

    async fn commit(&mut self) -> FsResult<Metadata> {
        let context = format!("close {}", self.key.display());
        match std::mem::replace(&mut self.upload, Upload::Finished) {
            Upload::Running {
                mut writer,
                _memory,
            } => {
                let meta = match writer.close().await {
                    Ok(meta) => meta,
                    Err(e) => {
                        // A failed completion may leave the multipart upload open: abort it explicitly.
                        if let Err(abort) = writer.abort().await {
                            warn!(path = %self.key.display(), error = %abort, "aborting after a failed close failed");
                        }
                        return Err(FsError::store(&context, e));
                    }
                };
                let mut meta = Metadata::from_store(&meta);
                meta.size = self.size();
                if meta.mtime.is_none() {
                    meta.mtime = Some(std::time::SystemTime::now());
                }
                Ok(meta)
            }
            Upload::NotStarted => match self.plan {
                // Nothing written to an existing file: it stays as it was.
                Plan::Undecided | Plan::AppendTo(_) if self.existing.is_some() => self
                    .fs
                    .stat_store(&self.key)
                    .await?
                    .ok_or_else(|| FsError::not_found(&self.key.display())),
                // A new or truncated file with no bytes: an empty object.
                _ => {
                    self.fs
                        .op()
                        .write(self.key.as_str(), Bytes::new())
                        .await
                        .map_err(|e| FsError::store(&context, e))?;
                    Ok(Metadata::file(0, Some(std::time::SystemTime::now())))
                }
            },
            Upload::Finished => Err(FsError::new(
                FsErrorKind::Store,
                format!("{context}: already closed"),
            )),
        }
    }

    /// The running upload, started on first use: memory is reserved from the shared budget (waiting if it is
    /// spent), and an append first copies the old object.
    async fn writer(&mut self) -> FsResult<&mut opendal::Writer> {
        if matches!(self.upload, Upload::NotStarted) {
            let settings = self.fs.settings();
            let part = settings.part_size;
            let wanted = part * parts_held(settings.upload_concurrency);
            // At least the two parts of a one-at-a-time upload; more only if free now (so writers never deadlock).
            let mut memory = self
                .fs
                .budget()
                .reserve_between(2 * part, wanted, part)
                .await;
            let concurrent = concurrency_for(reserved(&memory) / part);
            // Give back what that concurrency cannot use (three parts upload one at a time, in two).
            while memory.len() > 1 && reserved(&memory) > part * parts_held(concurrent) {
                memory.pop();
            }
            debug!(path = %self.key.display(), part, concurrent, "upload starting");
            let mut writer = self
                .fs
                .op()
                .writer_with(self.key.as_str())
                .chunk(part as usize)
                .concurrent(concurrent)
                .await
                .map_err(|e| FsError::store(&format!("open {}", self.key.display()), e))?;
            if let Plan::AppendTo(old_size) = self.plan {
                if let Err(e) = copy_old_object(&mut writer, self.key.as_str(), old_size).await {
                    let _ = writer.abort().await;
                    return Err(FsError::store(
                        &format!("append to {}", self.key.display()),
                        e,
                    ));
                }
            }
            self.upload = Upload::Running {
                writer,
                _memory: memory,
            };
        }
        match &mut self.upload {
            Upload::Running { writer, .. } => Ok(writer),
            _ => Err(FsError::new(
                FsErrorKind::Store,
                format!("{}: upload already finished", self.key.display()),
            )),
        }
    }

    async fn abort_upload(&mut self) {
        if let Upload::Running { mut writer, .. } =
            std::mem::replace(&mut self.upload, Upload::Finished)
        {
            if let Err(e) = writer.abort().await {
                warn!(path = %self.key.display(), error = %e, "aborting the upload failed");
            } else {
                info!(path = %self.key.display(), "upload aborted; nothing committed");
            }
        } else {
            self.upload = Upload::Finished;
        }
    }

    fn ensure_open(&self) -> FsResult<()> {
        match self.upload {
            Upload::Finished => Err(FsError::new(
                FsErrorKind::Store,
                format!(
                    "{}: the upload was aborted after an earlier error",
                    self.key.display()
                ),
            )),
            _ => Ok(()),
        }
    }

    fn invalid_offset(&self, message: String) -> FsError {
        warn!(path = %self.key.display(), "{message}");
        FsError::new(
            FsErrorKind::InvalidOffset,
            format!("{}: {message}", self.key.display()),
        )
    }
}

/// Memory an upload with `concurrent` parts in flight holds at most, in parts. OpenDAL's multipart writer keeps,
/// besides the parts in flight, the part being filled and one full part held back until the next one is full (a
/// file of one part is then a single PUT, not a multipart upload). With one part in flight it uploads inline,
/// holding two parts.
fn parts_held(concurrent: usize) -> u64 {
    if concurrent <= 1 {
        2
    } else {
        concurrent as u64 + 2
    }
}

/// The most parts in flight that `parts` parts of memory allow (the inverse of [`parts_held`]).
fn concurrency_for(parts: u64) -> usize {
    if parts >= 4 {
        (parts - 2) as usize
    } else {
        1
    }
}

fn reserved(memory: &[Reservation]) -> u64 {
    memory.iter().map(Reservation::bytes).sum()
}

/// Copies the old object into the new upload, server-side where the store can (UploadPartCopy).
async fn copy_old_object(
    writer: &mut opendal::Writer,
    key: &str,
    size: u64,
) -> opendal::Result<()> {
    let mut offset = 0;
    while offset < size {
        let end = (offset + MAX_COPY_PART).min(size);
        writer.copy_from(key, offset..end).await?;
        offset = end;
    }
    Ok(())
}

impl Drop for WriteHandle {
    fn drop(&mut self) {
        if let Upload::Running { mut writer, .. } =
            std::mem::replace(&mut self.upload, Upload::Finished)
        {
            warn!(path = %self.key.display(), "write handle dropped without close; aborting the upload");
            if let Ok(runtime) = tokio::runtime::Handle::try_current() {
                runtime.spawn(async move {
                    let _ = writer.abort().await;
                });
            }
        }
        self.fs.unregister_writer(&self.key);
    }
}

impl std::fmt::Debug for WriteHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WriteHandle")
            .field("key", &self.key)
            .field("size", &self.size())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reserved_memory_covers_what_the_writer_holds() {
        for parts in 2..=40 {
            let concurrent = concurrency_for(parts);
            assert!(concurrent >= 1);
            assert!(
                parts_held(concurrent) <= parts,
                "{parts} parts reserved, {concurrent} in flight hold {}",
                parts_held(concurrent)
            );
        }
        // A budget with room for everything gives every configured part in flight.
        for concurrent in 1..=32 {
            assert_eq!(concurrency_for(parts_held(concurrent)), concurrent);
        }
    }
}
