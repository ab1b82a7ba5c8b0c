//! Open files and directories, by the file handle number the kernel quotes back.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;
use tokio::sync::Mutex as AsyncMutex;
use tracing::warn;

use super::errno::{FuseError, FuseResult, Refusal};
use crate::bucketfs::{DirEntry, FsError, ReadDir, ReadHandle, WriteHandle};

pub(crate) enum Handle {
    Read(ReadFile),
    Write(WriteFile),
    Dir(DirListing),
}

/// A file open for reading; the core's reader is opened by the first read.
pub(crate) struct ReadFile {
    pub ino: u64,
    pub reader: AsyncMutex<Option<ReadHandle>>,
}

/// A file open for writing: one upload in the core.
pub(crate) struct WriteFile {
    pub ino: u64,
    /// The process (thread group) that opened it: only its `close` commits early, see `WriteState`.
    pub opener: u32,
    pub state: AsyncMutex<WriteState>,
}

/// An open directory: the listing so far, so that any offset the kernel asks for can be answered.
pub(crate) struct DirListing {
    pub ino: u64,
    pub path: String,
    pub state: AsyncMutex<DirState>,
}

pub(crate) struct DirState {
    /// The core's listing while it has more; `None` once exhausted.
    pub listing: Option<ReadDir>,
    /// Children fetched so far, in listing order (the kernel's offsets index them, after `.` and `..`).
    pub entries: Vec<DirEntry>,
}

/// The upload behind an open file, and whether `close` should commit it now.
///
/// Commit timing is the delicate part. `flush` runs on every `close()` of a descriptor, including copies made
/// by `dup2` and `fork` — a shell closes its copy of `> file` before the command writes a byte, and every child
/// in `for …; do cmd; done > file` closes its copy while the loop goes on. `release` comes only after the last
/// copy is gone, but asynchronously: `close()` has already returned, so an error there reaches nobody, and an
/// FTP server like vsftpd has answered 226 before the object exists. So: `flush` commits when the file has
/// changed (bytes written, or truncated to a new size) and the closing process is the one that opened it;
/// `release` commits whatever is left. After a commit, further writes are refused (EINVAL).
pub(crate) struct WriteState {
    writer: Option<WriteHandle>,
    dirty: bool,
    /// The error that ended this upload (a failed write or commit); every later flush reports it again.
    failed: Option<FuseError>,
}

impl WriteState {
    pub(crate) fn new(writer: WriteHandle) -> Self {
        Self {
            writer: Some(writer),
            dirty: false,
            failed: None,
        }
    }

    fn writer(&mut self) -> FuseResult<&mut WriteHandle> {
        if let Some(err) = &self.failed {
            return Err(err.clone());
        }
        self.writer.as_mut().ok_or_else(|| {
            FuseError::refused(
                Refusal::Committed,
                "the file was committed when it was closed or synced; open it again to write more",
            )
        })
    }

    /// Writes at `offset`. A failed write abandons the upload: the program has been told, and a file with a
    /// piece missing must never be committed by the `close` that follows.
    pub(crate) async fn write(&mut self, offset: u64, data: Bytes) -> FuseResult<()> {
        let result = self.writer()?.write_at(offset, data).await;
        match result {
            Ok(()) => {
                self.dirty = true;
                Ok(())
            }
            Err(e) => Err(self.spend(e).await),
        }
    }

    /// A refused or failed write or truncate abandons the upload: the program has been told, later writes and
    /// closes report this same error, and nothing is committed.
    async fn spend(&mut self, e: FsError) -> FuseError {
        let err = FuseError::from(e);
        if let Some(writer) = self.writer.take() {
            writer.abort().await;
        }
        self.failed = Some(err.clone());
        err
    }

    /// Truncates through the open upload (`ftruncate`, or `truncate` of a path open for writing). A refused
    /// truncate spends the upload in the core, as a failed write does: it is abandoned here the same way, so
    /// later writes and closes report the refusal itself (not a store error) and nothing is committed.
    pub(crate) async fn truncate(&mut self, len: u64) -> FuseResult<()> {
        let writer = self.writer()?;
        let before = writer.size();
        match writer.truncate(len).await {
            Ok(()) => {
                if writer.size() != before {
                    self.dirty = true;
                }
                Ok(())
            }
            Err(e) => Err(self.spend(e).await),
        }
    }

    /// Whether an upload is still open (not yet committed or abandoned).
    pub(crate) fn is_open(&self) -> bool {
        self.writer.is_some()
    }

    /// The error that ended this upload, if one did (a close by another process still hears of it).
    pub(crate) fn failure(&self) -> FuseResult<()> {
        match &self.failed {
            Some(err) => Err(err.clone()),
            None => Ok(()),
        }
    }

    /// Commits now if there is something to commit (`flush` from the opener, `fsync`).
    pub(crate) async fn commit_if_dirty(&mut self) -> FuseResult<()> {
        if let Some(err) = &self.failed {
            return Err(err.clone());
        }
        if self.dirty && self.writer.is_some() {
            self.commit().await?;
        }
        Ok(())
    }

    /// The last reference is gone: commit whatever is still open. Nobody can be told of an error any more, so
    /// it is logged.
    pub(crate) async fn release(&mut self) {
        if self.writer.is_some() {
            if let Err(e) = self.commit().await {
                warn!(error = %e, "upload failed when the file was released");
            }
        }
    }

    async fn commit(&mut self) -> FuseResult<()> {
        let Some(writer) = self.writer.take() else {
            return Ok(());
        };
        match writer.close().await {
            Ok(_) => Ok(()),
            Err(e) => {
                let err = FuseError::from(e);
                self.failed = Some(err.clone());
                Err(err)
            }
        }
    }
}

/// File handle numbers → open files and directories.
pub(crate) struct HandleTable {
    next: AtomicU64,
    open: Mutex<HashMap<u64, Arc<Handle>>>,
}

impl HandleTable {
    pub(crate) fn new() -> Self {
        Self {
            next: AtomicU64::new(1),
            open: Mutex::new(HashMap::new()),
        }
    }

    /// A poisoned lock only means another request panicked; the map itself is still consistent.
    fn lock(&self) -> MutexGuard<'_, HashMap<u64, Arc<Handle>>> {
        self.open.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn insert(&self, handle: Handle) -> u64 {
        let fh = self.next.fetch_add(1, Ordering::Relaxed);
        self.lock().insert(fh, Arc::new(handle));
        fh
    }

    pub(crate) fn get(&self, fh: u64) -> FuseResult<Arc<Handle>> {
        self.lock().get(&fh).cloned().ok_or_else(|| bad_handle(fh))
    }

    pub(crate) fn remove(&self, fh: u64) -> FuseResult<Arc<Handle>> {
        self.lock().remove(&fh).ok_or_else(|| bad_handle(fh))
    }

    /// Takes every handle out (the session is ending).
    pub(crate) fn drain(&self) -> Vec<Arc<Handle>> {
        self.lock().drain().map(|(_, handle)| handle).collect()
    }

    /// Every handle writing inode `ino` (a truncate by path goes through the open upload, if there is one).
    pub(crate) fn writers_of(&self, ino: u64) -> Vec<Arc<Handle>> {
        self.lock()
            .values()
            .filter(|h| matches!(h.as_ref(), Handle::Write(w) if w.ino == ino))
            .cloned()
            .collect()
    }
}

fn bad_handle(fh: u64) -> FuseError {
    FuseError::refused(Refusal::BadHandle, format!("no open file handle {fh}"))
}

/// The thread group (process) of a thread: FUSE requests carry the calling thread's id, and a program may open a
/// file in one thread and close it in another. Falls back to the id itself if /proc does not say.
pub(crate) fn process_of(pid: u32) -> u32 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|line| line.strip_prefix("Tgid:"))
                .and_then(|tgid| tgid.trim().parse().ok())
        })
        .unwrap_or(pid)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn process_of_a_thread_is_its_thread_group() {
        let me = std::process::id();
        assert_eq!(process_of(me), me);
        // SAFETY: gettid cannot fail and touches no memory of ours.
        let in_thread = std::thread::spawn(|| process_of(unsafe { libc::gettid() } as u32))
            .join()
            .expect("thread");
        assert_eq!(in_thread, me);
    }
}
