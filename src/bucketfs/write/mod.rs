//! Writes: bytes go into the store while they arrive; close commits, any failure aborts. Nothing is staged on
//! local disk and a truncated object is never committed.
//!
//! A file being written is one part's worth of bytes in memory ([`buffer::PartBuffer`]) in front of what is
//! already in the store. Within that part any write pattern works — random writes, holes, truncates, reading
//! back — so a file of up to one part (`part_size`, ~20 MiB by default) can be written like a local file. When
//! data arrives past a full part, the part goes to the store as one part of a multipart upload
//! ([`upload::MultipartUpload`]) and the next part begins; bytes before it can no longer change. A file that stays
//! within one part is a single PUT at close.
//!
//! Continuing an existing file (append, or a write after opening without truncating) starts from its old bytes:
//! a small file is read into the part (so it can be edited anywhere), a big one is copied server-side
//! (UploadPartCopy) into the first parts of the new upload. The old object stays as it was until the commit.
//!
//! The name may move while the file is written (a rename of it or of a directory above it) and may be unlinked;
//! the handle follows its entry in the writer table, so the commit goes to the new name, or nowhere.

mod buffer;
mod resume;
mod upload;

pub(crate) use resume::PendingIndex;
pub use resume::{sweep_interval, SweepReport};

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::SystemTime;

use bytes::Bytes;
use tracing::{debug, info, instrument, warn};

use super::digest::{AlgorithmSet, Digests, HashWorker, Hasher};
use super::error::{FsError, FsErrorKind, FsResult};
use super::leases::{HeldLease, LeaseSlot, WriterLeases};
use super::object_meta::{AttrChange, FileAttrs};
use super::path::Key;
use super::types::{FileKind, Metadata};
use super::BucketFs;
use crate::storage::objects::{Committed, ObjectHead, ObjectMeta, Overwrite};
use buffer::PartBuffer;
use upload::MultipartUpload;

/// A store accepts at most this much per server-side part copy.
const MAX_COPY_PART: u64 = 5 * 1024 * 1024 * 1024;

/// How many names `create_unique` tries before giving up (FTP STOU).
const UNIQUE_ATTEMPTS: u32 = 100;
/// How long a complete listing of a directory is trusted to say that a name in it is new, for a conditional
/// create (longer than `metadata_ttl`: lftp's `mirror -R` lists once, then uploads for as long as it takes).
const NEW_NAME_TRUST: std::time::Duration = std::time::Duration::from_secs(30);

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
    /// Open without truncating (what vsftpd and many programs do): the file keeps its bytes; writes may change
    /// them (within the part in memory), extend it, or a truncate may start it over.
    Open,
}

/// One file being written, as the writer table knows it: shared by the handle and the namespace operations
/// (stat shows the size so far; a rename moves the name; an unlink drops it).
#[derive(Debug)]
pub(crate) struct WriterEntry {
    key: Mutex<Key>,
    size: AtomicU64,
    unlinked: AtomicBool,
    /// The writer's owner closed it without writing and waits for the last reference to go (a FUSE release
    /// comes after `close()` has returned): another open for writing takes the name over.
    idle: AtomicBool,
    /// The commit is under way: others wait for it (`WriterTable::settle`) rather than race it to the store.
    committing: AtomicBool,
    /// Woken when the writer leaves the table.
    gone: tokio::sync::Notify,
    /// The cluster-wide lease of the name (see `bucketfs::leases`); empty on a single node.
    lease: LeaseSlot,
    /// The attributes the commit gives the object (mode, owner, times, extended attributes): inherited from the
    /// old version, changed while the file is open (`chmod`, `utimens`, FTP `MFMT` from another session).
    attrs: Mutex<FileAttrs>,
}

impl WriterEntry {
    pub(crate) fn key(&self) -> Key {
        self.key.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub(crate) fn size(&self) -> u64 {
        self.size.load(Ordering::Relaxed)
    }

    /// The attributes the object will be committed with.
    pub(crate) fn attrs(&self) -> FileAttrs {
        self.attrs.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub(crate) fn update_attrs<T>(&self, change: impl FnOnce(&mut FileAttrs) -> T) -> T {
        change(&mut self.attrs.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

/// Files being written now, by name.
#[derive(Debug, Default)]
pub(crate) struct WriterTable {
    entries: Mutex<HashMap<Key, Arc<WriterEntry>>>,
    /// The other nodes' say (see `bucketfs::leases`); `None`: this process alone decides.
    leases: Option<Arc<dyn WriterLeases>>,
    /// Names being renamed now: writers at or under them wait to commit until the rename has moved them, so a
    /// commit never lands under the old name behind the rename's back (after it listed what to move).
    renaming: Mutex<Vec<Key>>,
    /// Woken when a rename ends.
    renamed: tokio::sync::Notify,
}

/// A rename in progress (`WriterTable::begin_rename`); dropping it lets the writers it held commit.
pub(crate) struct RenameGuard<'a> {
    table: &'a WriterTable,
    from: Key,
}

impl Drop for RenameGuard<'_> {
    fn drop(&mut self) {
        let mut renaming = self.table.renaming_lock();
        if let Some(i) = renaming.iter().position(|k| *k == self.from) {
            renaming.swap_remove(i);
        }
        drop(renaming);
        self.table.renamed.notify_waiters();
    }
}

impl WriterTable {
    pub(crate) fn new(leases: Option<Arc<dyn WriterLeases>>) -> Self {
        Self {
            leases,
            ..Self::default()
        }
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<Key, Arc<WriterEntry>>> {
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn get(&self, key: &Key) -> Option<Arc<WriterEntry>> {
        self.lock().get(key).cloned()
    }

    /// Adds a writer of `key`; waits for a writer in the middle of its commit, takes the name over from an
    /// idle one, refuses (busy) while another writes.
    async fn register(&self, key: &Key, start: u64) -> FsResult<Arc<WriterEntry>> {
        loop {
            self.settle(key).await;
            if let Some(entry) = self.try_register(key, start)? {
                // Another node may be writing the name: this table only knows this process's writers.
                if let Some(leases) = &self.leases {
                    match HeldLease::acquire(leases, key).await {
                        Ok(lease) => entry.lease.put(lease),
                        Err(busy) => {
                            self.unregister(&entry);
                            return Err(busy);
                        }
                    }
                }
                return Ok(entry);
            }
        }
    }

    /// `None`: a commit began meanwhile; settle and try again.
    fn try_register(&self, key: &Key, start: u64) -> FsResult<Option<Arc<WriterEntry>>> {
        let mut entries = self.lock();
        if let Some(current) = entries.get(key) {
            if current.committing.load(Ordering::Relaxed) {
                return Ok(None);
            }
            if !current.idle.load(Ordering::Relaxed) {
                return Err(FsError::new(
                    FsErrorKind::Busy,
                    format!("{}: the file is already being written", key.display()),
                ));
            }
            // Closed without writing by its owner: the new writer takes the name, the old one commits nothing
            // (`: > f; echo y > f` on the mount, before the first release arrives).
            current.unlinked.store(true, Ordering::Relaxed);
            current.lease.release_in_background();
        }
        let entry = Arc::new(WriterEntry {
            key: Mutex::new(key.clone()),
            size: AtomicU64::new(start),
            unlinked: AtomicBool::new(false),
            idle: AtomicBool::new(false),
            committing: AtomicBool::new(false),
            gone: tokio::sync::Notify::new(),
            lease: LeaseSlot::default(),
            attrs: Mutex::new(FileAttrs::default()),
        });
        entries.insert(key.clone(), Arc::clone(&entry));
        Ok(Some(entry))
    }

    fn renaming_lock(&self) -> MutexGuard<'_, Vec<Key>> {
        self.renaming.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The writer starts its commit: from now on nobody takes its name over, they wait for it. While its name
    /// (or a directory above it) is being renamed, it waits for the rename to move it first.
    async fn begin_commit(&self, entry: &WriterEntry) {
        loop {
            let renamed = self.renamed.notified();
            tokio::pin!(renamed);
            renamed.as_mut().enable();
            {
                let _entries = self.lock();
                let key = entry.key();
                if !self
                    .renaming_lock()
                    .iter()
                    .any(|from| key.starts_with(from))
                {
                    entry.idle.store(false, Ordering::Relaxed);
                    entry.committing.store(true, Ordering::Relaxed);
                    return;
                }
            }
            renamed.await;
        }
    }

    /// A rename of `from` (a file or a directory) begins: commits at or under it that are under way finish
    /// first, and new ones wait until the guard is dropped (after `rename` moved them).
    pub(crate) async fn begin_rename(&self, from: &Key) -> RenameGuard<'_> {
        {
            let _entries = self.lock();
            self.renaming_lock().push(from.clone());
        }
        let guard = RenameGuard {
            table: self,
            from: from.clone(),
        };
        loop {
            let committing = self
                .lock()
                .values()
                .find(|e| e.committing.load(Ordering::Relaxed) && e.key().starts_with(from))
                .map(Arc::clone);
            let Some(entry) = committing else {
                return guard;
            };
            let gone = entry.gone.notified();
            tokio::pin!(gone);
            gone.as_mut().enable();
            if !self
                .get(&entry.key())
                .is_some_and(|e| Arc::ptr_eq(&e, &entry))
            {
                continue;
            }
            gone.await;
        }
    }

    fn unregister(&self, entry: &Arc<WriterEntry>) {
        let mut entries = self.lock();
        let key = entry.key();
        if entries.get(&key).is_some_and(|e| Arc::ptr_eq(e, entry)) {
            entries.remove(&key);
        }
        entry.lease.release_in_background();
        entry.gone.notify_waiters();
    }

    /// Waits until no writer of `key` is in the middle of its commit, so that what comes next (another writer,
    /// an unlink, a rename) happens after the commit in the store too, not in a race with it.
    pub(crate) async fn settle(&self, key: &Key) {
        loop {
            let entry = match self.lock().get(key) {
                Some(entry) if entry.committing.load(Ordering::Relaxed) => Arc::clone(entry),
                _ => return,
            };
            let gone = entry.gone.notified();
            tokio::pin!(gone);
            gone.as_mut().enable();
            // Checked again after registering for the wake-up, so an unregister in between is not missed.
            if !self.get(key).is_some_and(|e| Arc::ptr_eq(&e, &entry)) {
                return;
            }
            gone.await;
        }
    }

    /// The name of a file being written went away (unlink): the writer commits nothing. A commit under way is
    /// waited for first (then there is no writer any more). True when a writer was there.
    pub(crate) async fn unlink(&self, key: &Key) -> bool {
        loop {
            self.settle(key).await;
            let mut entries = self.lock();
            match entries.get(key) {
                Some(entry) if entry.committing.load(Ordering::Relaxed) => continue,
                Some(_) => {
                    if let Some(entry) = entries.remove(key) {
                        entry.unlinked.store(true, Ordering::Relaxed);
                        entry.lease.release_in_background();
                    }
                    return true;
                }
                None => return false,
            }
        }
    }

    /// `from` (a file or a directory) is now `to`: writers under it follow.
    pub(crate) fn rename(&self, from: &Key, to: &Key) {
        let mut entries = self.lock();
        let moved: Vec<Key> = entries
            .keys()
            .filter(|k| k.starts_with(from))
            .cloned()
            .collect();
        for old in moved {
            let (Some(entry), Some(new)) = (entries.remove(&old), old.rebase(from, to)) else {
                continue;
            };
            *entry.key.lock().unwrap_or_else(|e| e.into_inner()) = new.clone();
            entry.lease.follow(&new);
            entries.insert(new, entry);
        }
    }

    /// Whether any file at or below `key` is being written.
    pub(crate) fn any_under(&self, key: &Key) -> bool {
        self.lock().keys().any(|k| k.starts_with(key))
    }
}

/// What the new object is built from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Base {
    /// Nothing: the file starts empty.
    Empty,
    /// The old object's `n` bytes, not brought in yet (an append, or an open without truncating).
    Old(u64),
    /// The old object's bytes are in place: in the part buffer (small) or copied into the upload (big).
    Loaded,
}

/// An open file being written. Call `close` to commit (its error is the upload's error) or `abort`; dropping it
/// without either aborts in the background.
pub struct WriteHandle {
    fs: BucketFs,
    entry: Arc<WriterEntry>,
    /// The name the multipart upload was created under (it may differ from the entry's name after a rename).
    upload_key: Option<Key>,
    base: Base,
    /// The leading bytes that are the old object's: changing them destroys data (`delete_enable`).
    old_len: u64,
    /// Whether the commit may replace an object that appeared meanwhile.
    overwrite: Overwrite,
    buffer: PartBuffer,
    upload: Option<MultipartUpload>,
    /// Whether anything was written or truncated (a handle that changed nothing commits nothing).
    changed: bool,
    /// The metadata the multipart upload was created with: if the attributes change before the commit, the
    /// completed object gets the new ones by a copy onto itself. `None` for an upload resumed from an earlier
    /// session (created with the metadata of then): the commit replaces it.
    upload_meta: Option<ObjectMeta>,
    /// The attributes at the open (inherited from the old version), to tell whether they changed since.
    attrs_at_open: FileAttrs,
    /// A client that can resume (FTP) writes this: a store failure keeps the upload for resume instead of
    /// aborting it.
    resumable: bool,
    /// Hashes the parts sent so far, in order (started with the first part of a multipart upload).
    hasher: Option<HashWorker>,
    /// Whether every byte of the file passes through this handle, so that its digests are the file's (not after
    /// a server-side copy of old bytes, or a resume).
    hashes_whole_file: bool,
    /// Set by a failed or refused operation and by close/abort: nothing more happens.
    finished: bool,
    /// The file was opened (with this intent) as new on the word of a listing older than `metadata_ttl`: the
    /// store has not been asked whether the name exists (see `verify_new`).
    unverified_new: Option<WriteIntent>,
}

impl BucketFs {
    /// Opens `key` for writing. Refuses directories, a missing parent, and a second concurrent writer.
    #[instrument(level = "debug", skip(self), fields(path = %key.display()))]
    pub async fn open_write(&self, key: &Key, intent: WriteIntent) -> FsResult<WriteHandle> {
        self.check_name(key)?;
        if key.is_root() {
            return Err(FsError::new(FsErrorKind::IsADirectory, "/: is a directory"));
        }
        self.policy().check_write("write", &key.display())?;
        // A name that a recent listing of its directory did not find is created without a look at the store
        // (FTP clients list a directory before they upload into it): the listing also showed the directory. The
        // create is then conditional, and the look is made after all if the name turns out to exist
        // (`verify_new`).
        let unverified_new = matches!(intent, WriteIntent::Replace | WriteIntent::CreateNew)
            && !self.stat_is_known(key)
            && self.cache().listed_absent_within(key, NEW_NAME_TRUST);
        if let Some(parent) = key.parent().filter(|_| !unverified_new) {
            self.require_dir(&parent).await?;
        }
        let (existing, inherited) = if unverified_new {
            (None, FileAttrs::default())
        } else {
            let found = self.lookup_key(key).await?;
            self.existing_file(key, found).await?
        };
        // An upload kept for resume is continued by REST n + STOR at its durable size, or by APPE.
        let resumable = match intent {
            WriteIntent::ResumeAt(1..) | WriteIntent::Append
                if self.writers().get(key).is_none() =>
            {
                self.find_resumable(key).await?
            }
            _ => None,
        };
        if let Some(resumable) = resumable {
            return self
                .resume_write(key, intent, existing, inherited, resumable)
                .await;
        }
        if matches!(
            intent,
            WriteIntent::Replace | WriteIntent::ResumeAt(0) | WriteIntent::CreateNew
        ) && self.pending().remove(key)
        {
            // A fresh upload from byte 0 replaces an upload kept for resume.
            if let Err(e) = self.discard_pending(key).await {
                warn!(path = %key.display(), error = %e, "discarding the upload kept for resume failed");
            }
        }
        let base = match (intent, existing) {
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
                Base::Empty
            }
            (WriteIntent::Append | WriteIntent::ResumeAt(_) | WriteIntent::Open, Some(n)) => {
                Base::Old(n)
            }
            (_, Some(_) | None) => Base::Empty,
        };
        let overwrite = if unverified_new {
            Overwrite::Forbid
        } else {
            self.overwrite_for(intent, existing.is_some())
        };
        let start = match base {
            Base::Old(n) => n,
            _ => 0,
        };
        let entry = self.writers().register(key, start).await?;
        entry.update_attrs(|attrs| *attrs = inherited.clone());
        if existing.is_none() {
            self.entry_changed(key);
        }
        let part_size = usize::try_from(self.settings().part_size).unwrap_or(usize::MAX);
        Ok(WriteHandle {
            fs: self.clone(),
            entry,
            upload_key: None,
            old_len: start,
            base,
            overwrite,
            buffer: PartBuffer::new(0, part_size),
            upload: None,
            // An O_TRUNC of an existing file, or a new file, is a change even if nothing is written.
            changed: matches!(base, Base::Empty),
            upload_meta: None,
            attrs_at_open: inherited,
            resumable: false,
            hasher: None,
            hashes_whole_file: true,
            finished: false,
            unverified_new: unverified_new.then_some(intent),
        })
    }

    /// Whether the commit may replace an object at `key`. Creating must never replace: with delete_enable =
    /// false (or O_EXCL) a file that appears before the commit is not overwritten (a conditional write where the
    /// store has one).
    fn overwrite_for(&self, intent: WriteIntent, exists: bool) -> Overwrite {
        if intent == WriteIntent::CreateNew || (!exists && !self.policy().delete_enable) {
            Overwrite::Forbid
        } else {
            Overwrite::Allow
        }
    }

    /// The size and inheritable attributes of the file `found` at `key`, if one is there; a directory there
    /// refuses the write.
    async fn existing_file(
        &self,
        key: &Key,
        found: Option<Metadata>,
    ) -> FsResult<(Option<u64>, FileAttrs)> {
        match found {
            Some(meta) if meta.is_dir() => Err(FsError::new(
                FsErrorKind::IsADirectory,
                format!("{}: is a directory", key.display()),
            )),
            Some(meta) => Ok((Some(meta.size), self.inherited_attrs(key, meta).await?)),
            None => Ok((None, FileAttrs::default())),
        }
    }

    /// Continues an upload kept for resume at its durable size (REST n + STOR with n the durable size, or APPE).
    async fn resume_write(
        &self,
        key: &Key,
        intent: WriteIntent,
        existing: Option<u64>,
        inherited: FileAttrs,
        resumable: resume::Resumable,
    ) -> FsResult<WriteHandle> {
        let durable = resumable.durable;
        if let WriteIntent::ResumeAt(n) = intent {
            if n != durable {
                return Err(FsError::new(
                    FsErrorKind::InvalidOffset,
                    format!(
                        "{}: cannot resume at byte {n}: the interrupted upload of this file holds {durable} bytes; \
                         resume at {durable} (REST {durable}), or send the whole file again",
                        key.display()
                    ),
                ));
            }
        }
        // The upload will replace the object of that name, if there is one.
        if existing.is_some_and(|n| n > 0) {
            self.policy().check_destroy("overwrite", &key.display())?;
        }
        let overwrite = if existing.is_none() && !self.policy().delete_enable {
            Overwrite::Forbid
        } else {
            Overwrite::Allow
        };
        let entry = self.writers().register(key, durable).await?;
        entry.update_attrs(|attrs| *attrs = inherited.clone());
        self.pending().remove(key);
        let part_size = usize::try_from(self.settings().part_size).unwrap_or(usize::MAX);
        let upload = MultipartUpload::resume(
            self.objects(),
            key.as_str(),
            resumable.id,
            resumable.parts,
            self.settings().upload_concurrency,
        );
        info!(path = %key.display(), durable, "resuming an interrupted upload");
        Ok(WriteHandle {
            fs: self.clone(),
            entry,
            upload_key: Some(key.clone()),
            old_len: 0,
            base: Base::Empty,
            overwrite,
            buffer: PartBuffer::new(durable, part_size),
            upload: Some(upload),
            changed: true,
            upload_meta: None,
            attrs_at_open: inherited,
            resumable: true,
            hasher: None,
            hashes_whole_file: false,
            finished: false,
            unverified_new: None,
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
}

impl WriteHandle {
    /// The name being written now (a rename may have moved it since the open).
    pub fn key(&self) -> Key {
        self.entry.key()
    }

    /// Bytes in the file so far: the offset after its last byte.
    pub fn size(&self) -> u64 {
        match self.base {
            Base::Old(n) => n,
            _ => self.buffer.end(),
        }
    }

    /// Whether the name was unlinked while this file was open: it will never be committed, and its bytes live
    /// only here (a reader through the same descriptor must be served from this handle).
    pub fn is_unlinked(&self) -> bool {
        self.entry.unlinked.load(Ordering::Relaxed)
    }

    /// Marks the writer as closed without writing by its owner, waiting only for its last reference: another open
    /// for writing may take the name over (then this one commits nothing). Writing again clears it.
    pub fn set_idle(&self, idle: bool) {
        let _entries = self.fs.writers().lock();
        self.entry.idle.store(idle, Ordering::Relaxed);
    }

    /// Says that the client can resume this upload (FTP REST/APPE): a broken connection or a store failure then
    /// keeps the upload in the store (see `suspend`) instead of aborting it, when `upload_resume_ttl` allows.
    pub fn set_resumable(&mut self, resumable: bool) {
        self.resumable = resumable;
    }

    /// The client went away (or the store failed) mid-upload: keep what is in the store for a later resume. The
    /// part in memory is sent first when the store accepts it as a part (at least the store's smallest part),
    /// so at most that much is sent again. Returns the durable size, or `None` when nothing was kept (resume
    /// off, nothing stored yet: then it is as `abort`).
    pub async fn suspend(mut self) -> Option<u64> {
        self.finished = true;
        let keep = self.fs.resume_enabled() && !self.entry.unlinked.load(Ordering::Relaxed);
        let Some(mut upload) = self.upload.take().filter(|_| keep) else {
            if let Some(upload) = self.upload.take() {
                upload.abort().await;
            }
            self.fs.writers().unregister(&self.entry);
            return None;
        };
        if self.buffer.len() as u64 >= self.fs.objects().limits().min_part {
            let (bytes, memory) = self.buffer.take();
            if let Err(e) = upload.send_part(bytes, memory).await {
                debug!(error = %e, "the last part before a suspend failed; resuming before it");
            }
        }
        let durable = upload.suspend().await;
        let key = self.upload_key.clone().unwrap_or_else(|| self.key());
        self.fs.writers().unregister(&self.entry);
        if durable == 0 {
            // Nothing useful is stored: leave nothing behind.
            let _ = self.fs.discard_pending(&key).await;
            return None;
        }
        self.fs
            .pending()
            .insert(&key, durable, Some(SystemTime::now()));
        info!(path = %key.display(), durable, "upload interrupted; kept for resume");
        Some(durable)
    }

    /// Sets the modification time the object is committed with (FTP MFMT before the upload ends, `utimens` on
    /// the mount); by default it is the time of the commit.
    pub fn set_mtime(&mut self, mtime: SystemTime) {
        self.set_attributes(&AttrChange {
            mtime: Some(mtime),
            ..AttrChange::default()
        });
    }

    /// Sets the permission bits the object is committed with (the create mode of `open`, `mknod`).
    pub fn set_mode(&mut self, mode: u32) {
        self.set_attributes(&AttrChange {
            mode: Some(mode),
            ..AttrChange::default()
        });
        self.created_with_attrs();
    }

    /// Sets the owner the object is committed with (the creating user on the mount).
    pub fn set_owner(&mut self, uid: u32, gid: u32) {
        self.set_attributes(&AttrChange {
            uid: Some(uid),
            gid: Some(gid),
            ..AttrChange::default()
        });
        self.created_with_attrs();
    }

    /// The attributes of the creation are part of the open, not a change made through the descriptor: a close
    /// that wrote nothing still waits for the last reference (`dd` opens its output, moves the descriptor and
    /// closes the first one before it writes).
    fn created_with_attrs(&mut self) {
        self.attrs_at_open = self.entry.attrs();
    }

    /// Whether the attributes changed since the open (`touch` sets the times through a descriptor it never
    /// writes to: its close should store them, not wait for the release).
    pub fn attrs_changed(&self) -> bool {
        self.entry.attrs() != self.attrs_at_open
    }

    /// Changes the attributes the object is committed with (see [`BucketFs::set_attributes`]).
    pub fn set_attributes(&mut self, change: &AttrChange) {
        let now = SystemTime::now();
        self.entry.update_attrs(|attrs| attrs.apply(change, now));
    }

    /// Appends `data` at the current end.
    pub async fn write(&mut self, data: Bytes) -> FsResult<()> {
        let at = self.size();
        self.write_at(at, data).await
    }

    /// Writes `data` at `offset`: anywhere in the part not yet uploaded (a gap reads as zeros), or past the end.
    /// Bytes before the part in memory are in the store already and cannot change (EINVAL / 554).
    pub async fn write_at(&mut self, offset: u64, data: Bytes) -> FsResult<()> {
        let result = self.write_inner(offset, &data).await;
        self.spend_on_error(result).await
    }

    /// Cuts or extends the file to `len`: within the part in memory (or past it, with zeros) anything goes;
    /// `0` starts the file over (replacing data needs `delete_enable`).
    pub async fn truncate(&mut self, len: u64) -> FsResult<()> {
        let result = self.truncate_inner(len).await;
        self.spend_on_error(result).await
    }

    /// Reads back bytes written through this handle (or kept from the old file): what is still in memory, and the
    /// old object's bytes that are still the file's (read from the store, also after a big file's old bytes were
    /// copied into the upload). New bytes already sent to the store as parts of the upload cannot be read until
    /// the commit.
    pub async fn read_at(&mut self, offset: u64, len: u32) -> FsResult<Bytes> {
        self.ensure_open()?;
        let end = (offset + u64::from(len)).min(self.size());
        if offset >= end {
            return Ok(Bytes::new());
        }
        if let Base::Old(n) = self.base {
            return self.read_old(offset, end.min(n) - offset).await;
        }
        if offset >= self.buffer.start() {
            let held = self.buffer.read_at(offset, (end - offset) as usize);
            return Ok(Bytes::copy_from_slice(held));
        }
        if offset < self.old_len && self.buffer.start() >= self.old_len {
            // The old object's bytes, copied into the upload server-side: unchanged, and still in the store.
            return self.read_old(offset, end.min(self.old_len) - offset).await;
        }
        Err(FsError::new(
            FsErrorKind::Unsupported,
            format!(
                "{}: bytes before offset {} are uploaded already and can be read once the file is closed",
                self.key().display(),
                self.buffer.start()
            ),
        ))
    }

    /// Commits: only now does the object (new or replaced) exist in the store.
    #[instrument(level = "info", skip(self), fields(path = %self.key().display(), size = self.size()))]
    pub async fn close(mut self) -> FsResult<Metadata> {
        self.ensure_open()?;
        self.finished = true;
        self.fs.writers().begin_commit(&self.entry).await;
        let result = self.commit().await;
        // Given back before the reply, so a writer on another node may start as soon as this one is answered.
        self.entry.lease.release().await;
        self.fs.writers().unregister(&self.entry);
        match &result {
            Ok(_) if self.entry.unlinked.load(Ordering::Relaxed) => {}
            Ok(meta) => {
                self.fs.cache().put(&self.key(), Some(meta.clone()));
                info!(bytes = meta.size, "upload complete");
            }
            Err(_) => self.fs.cache().forget_tree(&self.key()),
        }
        result
    }

    /// Abandons the upload: no object is created and an existing one stays as it was.
    pub async fn abort(mut self) {
        self.finished = true;
        if let Some(upload) = self.upload.take() {
            upload.abort().await;
        }
        self.entry.lease.release().await;
        self.fs.writers().unregister(&self.entry);
    }

    async fn write_inner(&mut self, offset: u64, data: &[u8]) -> FsResult<()> {
        self.ensure_open()?;
        if data.is_empty() {
            return Ok(());
        }
        let end = offset.saturating_add(data.len() as u64);
        let limit = self.fs.settings().single_file_max_size;
        if end > limit {
            return Err(FsError::new(
                FsErrorKind::TooLarge,
                format!(
                    "{}: over the size limit of {limit} bytes (single_file_max_size); nothing was stored",
                    self.key().display()
                ),
            ));
        }
        if offset < self.old_len {
            // Changing bytes of the old file destroys data.
            self.fs
                .policy()
                .check_destroy("overwrite", &self.key().display())?;
        }
        if let Base::Old(n) = self.base {
            self.load_old(n).await?;
        }
        if offset < self.buffer.start() {
            return Err(self.invalid_offset(format!(
                "write at offset {offset}: the bytes before {} are in the store already; an object can only \
                 change in its last part",
                self.buffer.start()
            )));
        }
        self.changed = true;
        let mut at = offset;
        let mut rest = data;
        while !rest.is_empty() {
            if self.buffer.is_full() && at >= self.buffer.end() {
                self.send_buffer().await?;
            }
            // Bytes beyond this part: fill the part up to its end first (with zeros if there is a gap).
            let whole_parts = self.upload.is_some();
            let taken = self
                .buffer
                .write_at(at, rest, self.fs.budget(), whole_parts)
                .await;
            if taken == 0 {
                // `at` lies past this part: complete it with zeros, send it, continue in the next.
                let part_end = self.buffer.start() + self.fs.settings().part_size;
                self.buffer
                    .truncate(part_end, self.fs.budget(), whole_parts)
                    .await;
                self.send_buffer().await?;
                continue;
            }
            at += taken as u64;
            rest = &rest[taken..];
        }
        self.entry.size.store(self.size(), Ordering::Relaxed);
        Ok(())
    }

    async fn truncate_inner(&mut self, len: u64) -> FsResult<()> {
        self.ensure_open()?;
        if len == self.size() {
            return Ok(());
        }
        if len < self.old_len {
            self.fs
                .policy()
                .check_destroy("truncate", &self.key().display())?;
        }
        if len == 0 {
            // Start over: what was uploaded is thrown away; the old object stays until the commit.
            if let Some(upload) = self.upload.take() {
                upload.abort().await;
            }
            self.upload_key = None;
            self.base = Base::Empty;
            self.old_len = 0;
            self.buffer.reset(0);
        } else {
            if let Base::Old(n) = self.base {
                self.load_old(n).await?;
            }
            if len < self.buffer.start() {
                return Err(self.invalid_offset(format!(
                    "truncate to {len}: the bytes before {} are in the store already",
                    self.buffer.start()
                )));
            }
            let limit = self.fs.settings().single_file_max_size;
            if len > limit {
                return Err(FsError::new(
                    FsErrorKind::TooLarge,
                    format!(
                        "{}: truncate to {len}: over the size limit of {limit} bytes (single_file_max_size)",
                        self.key().display()
                    ),
                ));
            }
            // Growing past this part: it is completed with zeros and sent, as for a write past it (a sparse file
            // is stored with its holes as zeros).
            while len > self.buffer.start() + self.fs.settings().part_size {
                let part_end = self.buffer.start() + self.fs.settings().part_size;
                let whole_parts = self.upload.is_some();
                self.buffer
                    .truncate(part_end, self.fs.budget(), whole_parts)
                    .await;
                self.send_buffer().await?;
            }
            let whole_parts = self.upload.is_some();
            self.buffer
                .truncate(len, self.fs.budget(), whole_parts)
                .await;
        }
        self.changed = true;
        self.entry.size.store(self.size(), Ordering::Relaxed);
        Ok(())
    }

    /// Brings the old object's bytes into the new file: a small one into the part in memory, a big one into the
    /// upload by server-side copy.
    async fn load_old(&mut self, size: u64) -> FsResult<()> {
        self.base = Base::Loaded;
        let key = self.key();
        let context = || format!("continue {}", key.display());
        if size < self.fs.settings().part_size {
            let old = self.read_old(0, size).await?;
            self.buffer.write_at(0, &old, self.fs.budget(), false).await;
            return Ok(());
        }
        // The old bytes are copied inside the store: the digests of the new file are computed later, from the store.
        self.hashes_whole_file = false;
        let upload = self.start_upload().await?;
        // Parts but the last must be at least the store's minimum: split evenly.
        let count = size.div_ceil(MAX_COPY_PART);
        let each = size.div_ceil(count);
        let mut start = 0;
        while start < size {
            let end = (start + each).min(size);
            upload
                .copy_part(key.as_str(), start..end)
                .await
                .map_err(|e| FsError::store(&context(), e))?;
            start = end;
        }
        self.buffer.reset(size);
        Ok(())
    }

    /// Bytes `[offset, offset + len)` of the old object, which is still in the store as it was.
    async fn read_old(&self, offset: u64, len: u64) -> FsResult<Bytes> {
        let key = self.existing_key();
        let context = format!("read {}", key.display());
        let buffer = self
            .fs
            .op()
            .read_with(key.as_str())
            .range(offset..offset + len)
            .await
            .map_err(|e| FsError::store(&context, e))?;
        Ok(buffer.to_bytes())
    }

    /// The name the old object was found under (the handle's name at open; reads of the old bytes happen
    /// before anything could move it in the store).
    fn existing_key(&self) -> Key {
        self.upload_key.clone().unwrap_or_else(|| self.key())
    }

    /// The file was opened as new on a listing's word (`unverified_new`), and now the store must be asked after
    /// all: a conditional create found the name taken, or a multipart upload is about to begin (a look costs
    /// nothing next to a part). Decides as `open_write` would have: a directory refuses the write, as does a file
    /// for a create-only open or, without `delete_enable`, a non-empty file; otherwise the file is replaced and its
    /// attributes inherited.
    async fn verify_new(&mut self) -> FsResult<()> {
        let Some(intent) = self.unverified_new.take() else {
            return Ok(());
        };
        let key = self.key();
        // The store, not the cache: the listing that said "new" may still be fresh there.
        let found = self.fs.stat_store(&key).await?;
        let (existing, inherited) = self.fs.existing_file(&key, found).await?;
        self.overwrite = self.fs.overwrite_for(intent, existing.is_some());
        let Some(size) = existing else {
            return Ok(());
        };
        if intent == WriteIntent::CreateNew {
            return Err(FsError::new(
                FsErrorKind::AlreadyExists,
                format!("{}: already exists", key.display()),
            ));
        }
        if size > 0 {
            self.fs
                .policy()
                .check_destroy("overwrite", &key.display())?;
        }
        let mut merged = inherited.clone();
        merged.overlay(&self.entry.attrs());
        self.entry.update_attrs(|attrs| *attrs = merged);
        let mut at_open = inherited;
        at_open.overlay(&self.attrs_at_open);
        self.attrs_at_open = at_open;
        Ok(())
    }

    /// The multipart upload, created on first use under the current name.
    async fn start_upload(&mut self) -> FsResult<&mut MultipartUpload> {
        if self.upload.is_none() {
            self.verify_new().await?;
            let key = self.key();
            let meta = self.object_meta(&key);
            self.upload_meta = Some(meta.clone());
            let upload = MultipartUpload::create(
                self.fs.objects(),
                key.as_str(),
                &meta,
                self.fs.settings().upload_concurrency,
            )
            .await
            .map_err(|e| FsError::store(&format!("upload {}", key.display()), e))?;
            self.upload_key = Some(key);
            self.upload = Some(upload);
        }
        match self.upload.as_mut() {
            Some(upload) => Ok(upload),
            None => Err(FsError::new(FsErrorKind::Store, "no upload")),
        }
    }

    /// Sends the full part in memory to the store; the next part starts where it ends.
    async fn send_buffer(&mut self) -> FsResult<()> {
        let key = self.key();
        let (bytes, memory) = self.buffer.take();
        self.hash(&bytes);
        let upload = self.start_upload().await?;
        upload
            .send_part(bytes, memory)
            .await
            .map_err(|e| FsError::store(&format!("upload {}", key.display()), e))
    }

    async fn commit(&mut self) -> FsResult<Metadata> {
        let key = self.key();
        if self.entry.unlinked.load(Ordering::Relaxed) {
            // The name went away while the file was open: what was written goes nowhere.
            if let Some(upload) = self.upload.take() {
                upload.abort().await;
            }
            debug!(path = %key.display(), "unlinked while open; nothing committed");
            return Ok(Metadata::file(self.size(), Some(SystemTime::now())));
        }
        if !self.changed {
            // Nothing written: the bytes stay as they were; attributes changed while it was open (`touch`
            // opens the file and sets the times through the descriptor) are stored.
            return self.fs.store_attrs(&key, &self.entry.attrs()).await;
        }
        if let Base::Old(n) = self.base {
            self.load_old(n).await?;
        }
        let size = self.size();
        let context = format!("close {}", key.display());
        let mut meta = self.object_meta(&key);
        let committed = match self.upload.take() {
            None => {
                let (bytes, _memory) = self.buffer.take();
                let md5_wanted = self.fs.objects().checks_content_md5();
                let (digests, md5) = digests_of(
                    &bytes,
                    self.fs.digest_set(),
                    self.crc64_wanted(),
                    md5_wanted,
                )
                .await;
                // The attributes and the digests share the object's user metadata.
                let with_digests = |meta: &ObjectMeta| {
                    let mut meta = meta.clone();
                    meta.user.extend(digests.to_user_meta());
                    meta
                };
                let mut put_meta = with_digests(&meta);
                let mut result = self
                    .fs
                    .objects()
                    .put_checked(key.as_str(), bytes.clone(), &put_meta, self.overwrite, md5)
                    .await;
                let taken = |r: &opendal::Result<Committed>| {
                    r.as_ref()
                        .is_err_and(|e| e.kind() == opendal::ErrorKind::ConditionNotMatch)
                };
                if self.unverified_new.is_some() && taken(&result) {
                    // Taken for new on a listing's word, and the name exists: decide as a look at open would
                    // have, then store again.
                    self.verify_new().await?;
                    meta = self.object_meta(&key);
                    put_meta = with_digests(&meta);
                    result = self
                        .fs
                        .objects()
                        .put_checked(key.as_str(), bytes, &put_meta, self.overwrite, md5)
                        .await;
                }
                let meta = put_meta;
                let committed = result.map_err(|e| self.commit_error(&context, e))?;
                // A store that ignores Content-MD5 still names the MD5 of what it stored in the ETag.
                if md5.is_some_and(|ours| {
                    committed.checksums.md5.is_some_and(|theirs| theirs != ours)
                }) {
                    return Err(self
                        .damaged(&key, "its ETag is not the MD5 of what was sent")
                        .await);
                }
                self.check_crc64(&key, committed.checksums.crc64ecma, digests.crc64)
                    .await?;
                self.fs.recent_writes().remember(
                    &key,
                    ObjectHead {
                        size,
                        etag: committed.etag.clone(),
                        last_modified: committed.last_modified,
                        meta,
                        checksums: committed.checksums.clone(),
                    },
                );
                committed
            }
            Some(upload) => {
                let (bytes, _memory) = self.buffer.take();
                self.hash(&bytes);
                let upload_key = self.upload_key.clone().unwrap_or_else(|| key.clone());
                let result = upload.complete(Some(bytes), self.overwrite).await;
                let mut committed = result.map_err(|e| self.commit_error(&context, e))?;
                let digests = match self.hasher.take() {
                    Some(hasher) if self.hashes_whole_file => hasher.finish().await,
                    _ => None,
                };
                self.check_crc64(
                    &upload_key,
                    committed.checksums.crc64ecma,
                    digests.as_ref().and_then(|d| d.crc64),
                )
                .await?;
                // Attributes changed after the upload began go in first; the digests are added to that version
                // (a copy onto itself changes the ETag they are conditional on).
                if self.upload_meta.as_ref() != Some(&meta) {
                    committed = self
                        .replace_committed_meta(&upload_key, size, committed, &meta)
                        .await?;
                }
                if upload_key != key {
                    self.move_committed(&upload_key, &key).await?;
                }
                // A multipart upload's metadata was fixed when it began: the digests are added afterwards.
                self.fs.recent_writes().forget(&key);
                keep_digests_later(&self.fs, &key, committed.etag.clone(), digests);
                committed
            }
        };
        Ok(committed_metadata(size, &meta, committed))
    }

    /// The attributes changed after the multipart upload was created (`cp -p` sets the times after writing): the
    /// completed object gets them by a copy onto itself.
    async fn replace_committed_meta(
        &self,
        key: &Key,
        size: u64,
        committed: Committed,
        meta: &ObjectMeta,
    ) -> FsResult<Committed> {
        let current = ObjectHead {
            size,
            etag: committed.etag.clone(),
            last_modified: committed.last_modified,
            meta: self.upload_meta.clone().unwrap_or_default(),
            checksums: committed.checksums.clone(),
        };
        self.fs
            .objects()
            .replace_metadata(key.as_str(), &current, meta)
            .await
            .map_err(|e| FsError::store(&format!("set the attributes of {}", key.display()), e))
    }

    /// Feeds bytes leaving the part in memory to the hasher (started on first use; not at all when nothing is to
    /// be computed).
    fn hash(&mut self, bytes: &Bytes) {
        if !self.hashes_whole_file {
            return;
        }
        let set = self.fs.digest_set();
        let crc64 = self.crc64_wanted();
        if set.is_empty() && !crc64 {
            return;
        }
        self.hasher
            .get_or_insert_with(|| HashWorker::start(set, crc64))
            .feed(bytes.clone());
    }

    /// COS reports the CRC-64 of what it stored: computing ours lets the two be compared.
    fn crc64_wanted(&self) -> bool {
        self.fs.objects().reports_crc64()
    }

    /// Compares the store's CRC-64 of the committed object with the one of the bytes streamed.
    async fn check_crc64(&self, key: &Key, store: Option<u64>, ours: Option<u64>) -> FsResult<()> {
        match (store, ours) {
            (Some(store), Some(ours)) if store != ours => Err(self
                .damaged(
                    key,
                    &format!("the store's CRC-64 is {store}, the bytes sent had {ours}"),
                )
                .await),
            _ => Ok(()),
        }
    }

    /// The committed object differs from what was sent: it is deleted (a damaged object is never left in the
    /// store), and the upload fails. An object it replaced is gone too (the store had replaced it already).
    async fn damaged(&self, key: &Key, why: &str) -> FsError {
        warn!(path = %key.display(), "{why}: the object is deleted");
        if let Err(e) = self.fs.op().delete(key.as_str()).await {
            warn!(path = %key.display(), error = %e, "deleting the damaged object failed");
        }
        self.fs.cache().forget_tree(key);
        FsError::new(
            FsErrorKind::Store,
            format!(
                "{}: the bytes were damaged on the way to the store ({why}); nothing was kept",
                key.display()
            ),
        )
    }

    /// A failed commit: the upload is gone (the store aborts it or it was never made); the reason is told.
    fn commit_error(&self, context: &str, e: opendal::Error) -> FsError {
        let err = FsError::store(context, e);
        if err.kind() == FsErrorKind::Conflict {
            return FsError::new(
                FsErrorKind::Conflict,
                format!(
                    "{context}: another client created this file meanwhile, and it is not replaced \
                     (delete_enable = false, or the file was opened to be created); nothing was stored"
                ),
            );
        }
        err
    }

    /// The file was renamed while being written, after its multipart upload began under the old name: the
    /// object is committed there and moved (server-side copy and delete) to where the name is now.
    async fn move_committed(&self, from: &Key, to: &Key) -> FsResult<()> {
        let context = format!("move {} to {}", from.display(), to.display());
        self.fs
            .copy_object(from.as_str(), to.as_str())
            .await
            .map_err(|e| FsError::store(&context, e))?;
        self.fs
            .op()
            .delete(from.as_str())
            .await
            .map_err(|e| FsError::store(&context, e))?;
        self.fs.cache().forget_tree(from);
        Ok(())
    }

    /// What the new object carries besides its bytes: the content type its name suggests and the file's
    /// attributes (see `object_meta.rs`); the times are those of the first call, when not set.
    fn object_meta(&self, key: &Key) -> ObjectMeta {
        let mut meta = ObjectMeta {
            content_type: mime_guess::from_path(key.as_str())
                .first()
                .map(|m| m.essence_str().to_string()),
            ..ObjectMeta::default()
        };
        let now = SystemTime::now();
        let attrs = self.entry.update_attrs(|attrs| {
            attrs.mtime.get_or_insert(now);
            attrs.ctime.get_or_insert(now);
            attrs.clone()
        });
        attrs.write_user_metadata(FileKind::File, self.fs.time_format(), &mut meta.user);
        meta
    }

    fn ensure_open(&self) -> FsResult<()> {
        if self.finished {
            return Err(FsError::new(
                FsErrorKind::Store,
                format!(
                    "{}: the upload was abandoned after an earlier error",
                    self.key().display()
                ),
            ));
        }
        Ok(())
    }

    /// A refused or failed write or truncate ends the handle: the program believes bytes are in the file that are
    /// not, so committing what came before would store a wrong file. The upload is aborted; `close` then fails
    /// and the old object (if any) stays as it was.
    async fn spend_on_error(&mut self, result: FsResult<()>) -> FsResult<()> {
        let Err(e) = &result else {
            return result;
        };
        if self.finished {
            return result;
        }
        self.finished = true;
        let store_failure = matches!(
            e.kind(),
            FsErrorKind::Store | FsErrorKind::RateLimited | FsErrorKind::StoreDenied
        );
        match self.upload.take() {
            // What the store holds can be resumed by a client that can (FTP); the failure is told as usual.
            Some(upload) if self.resumable && store_failure && self.fs.resume_enabled() => {
                let durable = upload.suspend().await;
                let key = self.upload_key.clone().unwrap_or_else(|| self.key());
                if durable > 0 {
                    self.fs
                        .pending()
                        .insert(&key, durable, Some(SystemTime::now()));
                    info!(path = %key.display(), durable, "upload failed; kept for resume");
                } else {
                    let _ = self.fs.discard_pending(&key).await;
                }
            }
            Some(upload) => upload.abort().await,
            None => {}
        }
        self.fs.writers().unregister(&self.entry);
        result
    }

    fn invalid_offset(&self, message: String) -> FsError {
        warn!(path = %self.key().display(), "{message}");
        FsError::new(
            FsErrorKind::InvalidOffset,
            format!("{}: {message}", self.key().display()),
        )
    }
}

/// The digests of a whole file in one buffer, and, when `md5` (a store whose bytes travel: S3, COS), its MD5
/// (sent as Content-MD5 and compared with the ETag). A buffer of more than a MiB is hashed off the async runtime.
async fn digests_of(
    bytes: &Bytes,
    set: AlgorithmSet,
    crc64: bool,
    md5: bool,
) -> (Digests, Option<[u8; 16]>) {
    let md5_of = move |bytes: &Bytes| md5.then(|| super::digest::md5(bytes));
    let hash = {
        let bytes = bytes.clone();
        move || {
            let mut hasher = Hasher::new(set, crc64);
            hasher.update(&bytes);
            (hasher.finish(), md5_of(&bytes))
        }
    };
    if bytes.len() <= 1024 * 1024 {
        return hash();
    }
    let fallback = bytes.clone();
    match tokio::task::spawn_blocking(hash).await {
        Ok(done) => done,
        Err(_) => (Digests::default(), md5_of(&fallback)),
    }
}

/// Adds the digests of a committed multipart upload to its metadata, in the background (a copy of the object onto
/// itself, conditional on its ETag, so a newer version is never overwritten). When they are not known (old bytes
/// were copied inside the store, or the upload was resumed), they are computed from the store's bytes first, up
/// to `hash_max_size`.
fn keep_digests_later(fs: &BucketFs, key: &Key, etag: Option<String>, digests: Option<Digests>) {
    let set = fs.digest_set();
    if set.is_empty() {
        return;
    }
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        return;
    };
    let (fs, key) = (fs.clone(), key.clone());
    runtime.spawn(async move {
        if let Err(e) = fs.store_digests(&key, etag, digests).await {
            debug!(path = %key.display(), error = %e, "digests not kept");
        }
    });
}

impl Drop for WriteHandle {
    fn drop(&mut self) {
        if let Some(upload) = self.upload.take() {
            warn!(path = %self.key().display(), "write handle dropped without close; aborting the upload");
            if let Ok(runtime) = tokio::runtime::Handle::try_current() {
                runtime.spawn(upload.abort());
            }
        }
        self.fs.writers().unregister(&self.entry);
    }
}

impl std::fmt::Debug for WriteHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WriteHandle")
            .field("key", &self.key())
            .field("size", &self.size())
            .field("base", &self.base)
            .finish()
    }
}

/// The metadata of a version this handle committed: the attributes as written (as they will read back).
fn committed_metadata(size: u64, meta: &ObjectMeta, committed: Committed) -> Metadata {
    let attrs = FileAttrs::from_user_metadata(&meta.user);
    Metadata {
        kind: FileKind::File,
        size,
        mtime: attrs.mtime.or(committed.last_modified),
        etag: committed.etag,
        modified: committed.last_modified,
        attrs: Some(Arc::new(attrs)),
    }
}
