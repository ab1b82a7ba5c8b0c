//! Open files and directories, by the file handle number the kernel quotes back.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::Mutex as AsyncMutex;
use tracing::{debug, warn};

use super::errno::{FuseError, FuseResult, Refusal};
use crate::bucketfs::{DirEntry, FsError, Key, Metadata, ReadDir, ReadHandle, WriteHandle};

pub(crate) enum Handle {
    Read(ReadFile),
    Write(WriteFile),
    Dir(DirListing),
}

/// A file open for reading; the core's reader is opened by the first read.
pub(crate) struct ReadFile {
    pub ino: u64,
    /// What the file was at the open (`fstat` of it after an unlink).
    pub meta: Metadata,
    pub reader: AsyncMutex<Option<ReadHandle>>,
}

/// A file open for writing: one upload in the core (boxed: it is much bigger than the other handles).
pub(crate) struct WriteFile {
    pub ino: u64,
    pub state: Box<AsyncMutex<WriteState>>,
}

/// An open directory: the listing so far, so that any offset the kernel asks for can be answered.
pub(crate) struct DirListing {
    pub ino: u64,
    pub key: Key,
    pub state: AsyncMutex<DirState>,
}

pub(crate) struct DirState {
    /// The core's listing while it has more; `None` once exhausted.
    pub listing: Option<ReadDir>,
    /// Children fetched so far, in listing order (the kernel's offsets index them, after `.` and `..`).
    pub entries: Vec<DirEntry>,
}

/// The upload behind an open file, and when it is committed.
///
/// Commit timing is the delicate part. `flush` runs on every `close()` of a descriptor, including copies made
/// by `dup2` and `fork` — a shell closes its copy of `> file` before the command writes a byte, and every child
/// in `for …; do cmd; done > file` closes its copy while the loop goes on. `release` comes only after the last
/// copy is gone, but asynchronously: `close()` has already returned, so an error there reaches nobody, and an
/// FTP server like vsftpd has answered 226 before the object exists. So `flush` commits when the closing process
/// is the one that opened the upload (its close returns the commit's error), and `release` commits whatever is
/// left. After a commit the file can be written again through the same descriptor: a new upload continues from
/// what was committed (`fsync` then more writes, or a child writing after its parent closed its copy).
///
/// A process killed by a signal closes its descriptors on its way out; that `flush` abandons the upload instead
/// of committing a file the program never finished (the old object, if any, stays).
pub(crate) struct WriteState {
    writer: Option<WriteHandle>,
    /// The process (thread group) that opened the current upload: its `close` commits.
    opener: u32,
    /// Whether the current upload was written or truncated through this handle.
    dirty: bool,
    /// A reader for bytes of this file once its upload is committed (reads through an O_RDWR descriptor).
    reader: Option<ReadHandle>,
    /// The error that ended this upload (a failed write or commit); every later flush reports it again.
    failed: Option<FuseError>,
}

impl WriteState {
    pub(crate) fn new(writer: WriteHandle, opener: u32) -> Self {
        Self {
            writer: Some(writer),
            opener,
            dirty: false,
            reader: None,
            failed: None,
        }
    }

    /// The size of the file being written, while an upload is open.
    pub(crate) fn size(&self) -> Option<u64> {
        self.writer.as_ref().map(WriteHandle::size)
    }

    /// Whether an upload is open now (otherwise a write must start a new one, see `reopen`).
    pub(crate) fn is_open(&self) -> bool {
        self.writer.is_some()
    }

    /// Continues the committed file with a new upload, opened by `opener`.
    pub(crate) fn reopen(&mut self, writer: WriteHandle, opener: u32) {
        self.writer = Some(writer);
        self.opener = opener;
        self.dirty = false;
        self.reader = None;
    }

    fn writer(&mut self) -> FuseResult<&mut WriteHandle> {
        if let Some(err) = &self.failed {
            return Err(err.clone());
        }
        self.writer.as_mut().ok_or_else(|| {
            FuseError::refused(Refusal::BadHandle, "no upload is open on this descriptor")
        })
    }

    /// The error that ended this upload, if one did.
    pub(crate) fn failure(&self) -> FuseResult<()> {
        match &self.failed {
            Some(err) => Err(err.clone()),
            None => Ok(()),
        }
    }

    /// Writes at `offset`. A failed write abandons the upload: the program has been told, and a file with a
    /// piece missing must never be committed by the `close` that follows.
    pub(crate) async fn write(&mut self, offset: u64, data: Bytes) -> FuseResult<()> {
        let writer = self.writer()?;
        writer.set_idle(false);
        let result = writer.write_at(offset, data).await;
        self.dirty = true;
        result.map_err(|e| self.spent(e))
    }

    /// Truncates through the open upload (`ftruncate`, or `truncate` of a path open for writing). A refused
    /// truncate spends the upload in the core, as a failed write does.
    pub(crate) async fn truncate(&mut self, len: u64) -> FuseResult<()> {
        let writer = self.writer()?;
        writer.set_idle(false);
        let result = writer.truncate(len).await;
        self.dirty = true;
        result.map_err(|e| self.spent(e))
    }

    /// The committed file was changed through another upload (a truncate without an open upload): what this
    /// descriptor read of the old version must not be served again.
    pub(crate) fn forget_reader(&mut self) {
        self.reader = None;
    }

    /// Reads through the descriptor that writes: from the open upload, or (after a commit) from the store.
    pub(crate) async fn read(
        &mut self,
        offset: u64,
        len: u32,
        open_reader: impl std::future::Future<Output = FuseResult<ReadHandle>>,
    ) -> FuseResult<Bytes> {
        self.failure()?;
        if let Some(writer) = self.writer.as_mut() {
            return Ok(writer.read_at(offset, len).await?);
        }
        if self.reader.is_none() {
            self.reader = Some(open_reader.await?);
        }
        match self.reader.as_mut() {
            Some(reader) => Ok(reader.read_at(offset, len).await?),
            None => Err(FuseError::refused(Refusal::BadHandle, "reader vanished")),
        }
    }

    /// Whether `process` opened the upload (only its `close()` commits, so only then does its health matter).
    pub(crate) fn is_opener(&self, process: u32) -> bool {
        process == self.opener
    }

    /// A `close()`: the opener's commits what it wrote (or, if the opener is dying of a signal, abandons it);
    /// others only hear of an earlier failure. An opener that wrote nothing lets the file wait for its last
    /// reference (a descriptor it duplicated may still write: `dd` reopens its output that way) without holding
    /// the name against a new writer.
    pub(crate) async fn flush(&mut self, process: u32, died_of_signal: bool) -> FuseResult<()> {
        self.failure()?;
        if process != self.opener {
            return Ok(());
        }
        if !self.dirty && !died_of_signal {
            match &self.writer {
                // Attributes set through the descriptor (`touch`): stored now, as a write would be.
                Some(writer) if writer.attrs_changed() => {}
                Some(writer) => {
                    writer.set_idle(true);
                    return Ok(());
                }
                None => return Ok(()),
            }
        }
        if died_of_signal {
            if let Some(writer) = self.writer.take() {
                warn!(path = %writer.key().display(), "the writing process was killed by a signal: upload abandoned, nothing committed");
                writer.abort().await;
            }
            return Ok(());
        }
        self.commit().await
    }

    /// Commits now (`fsync`, and `flush` from the opener); the descriptor stays usable.
    pub(crate) async fn commit(&mut self) -> FuseResult<()> {
        self.failure()?;
        // An unlinked file has no name to commit to: its bytes stay in the upload, readable through this
        // descriptor until the last reference goes (then nothing is stored).
        if self.writer.as_ref().is_some_and(WriteHandle::is_unlinked) {
            return Ok(());
        }
        let Some(writer) = self.writer.take() else {
            return Ok(());
        };
        self.dirty = false;
        match writer.close().await {
            Ok(_) => Ok(()),
            Err(e) => {
                let err = FuseError::from(e);
                self.failed = Some(err.clone());
                Err(err)
            }
        }
    }

    /// The last reference is gone: commit whatever is still open. Nobody can be told of an error any more, so
    /// it is logged.
    pub(crate) async fn release(&mut self) {
        // Unlinked while open: nothing to commit, and now nobody can read it any more either.
        if let Some(writer) = self.writer.take_if(|w| w.is_unlinked()) {
            if let Err(e) = writer.close().await {
                debug!(error = %e, "closing an unlinked upload");
            }
            return;
        }
        if self.writer.is_some() {
            if let Err(e) = self.commit().await {
                warn!(error = %e, "upload failed when the file was released");
            }
        }
    }

    /// The core already abandoned the upload on this error; remember it for every later flush.
    fn spent(&mut self, e: FsError) -> FuseError {
        let err = FuseError::from(e);
        self.writer = None;
        self.failed = Some(err.clone());
        err
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

    /// A handle of the file `ino` (to answer `fstat` of a file unlinked while open).
    pub(crate) fn open_file(&self, ino: u64) -> Option<Arc<Handle>> {
        self.lock()
            .values()
            .find(|h| match h.as_ref() {
                Handle::Read(r) => r.ino == ino,
                Handle::Write(w) => w.ino == ino,
                Handle::Dir(_) => false,
            })
            .cloned()
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

/// Whether the thread `tid` is exiting because a signal killed its process (SIGKILL, an unhandled SIGTERM or
/// SIGINT, …): then the `flush` it sends comes from the kernel closing a dying program's descriptors, not from
/// a `close()` the program asked for. /proc/<tid>/stat has the task's flags (field 9, PF_EXITING = 0x4) and,
/// since Linux 3.5, its exit code (field 52; the low 7 bits are the killing signal).
pub(crate) async fn died_of_signal(tid: u32) -> bool {
    let read = tokio::task::spawn_blocking(move || task_died_of_signal(tid));
    match tokio::time::timeout(DEATH_CHECK_TIMEOUT, read).await {
        Ok(dying) => dying.unwrap_or(false),
        Err(_) => {
            // The read goes on in its blocking thread and ends once our answer lets the exec continue.
            debug!(
                tid,
                "the closing task did not answer in time (in an exec?): taken as alive"
            );
            false
        }
    }
}

/// How long a `flush` waits to learn whether its task is dying. Reading /proc/<tid>/stat blocks while the task is
/// in the middle of an exec, and an exec closing a close-on-exec descriptor on this mount waits for this very
/// `flush`: waiting for the read would hang both. A task that exec's is not dying, so no answer means alive.
const DEATH_CHECK_TIMEOUT: Duration = Duration::from_millis(500);

/// The check of `died_of_signal`, reading /proc (may block: see `DEATH_CHECK_TIMEOUT`).
fn task_died_of_signal(tid: u32) -> bool {
    const PF_EXITING: u64 = 0x4;
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{tid}/stat")) else {
        return false;
    };
    // The command name (field 2) may hold spaces and parentheses: fields are counted after its last `)`.
    let Some((_, rest)) = stat.rsplit_once(')') else {
        return false;
    };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // `rest` starts at field 3.
    let field = |n: usize| fields.get(n - 3).and_then(|f| f.parse::<u64>().ok());
    let (Some(flags), Some(exit_code)) = (field(9), field(52)) else {
        return false;
    };
    flags & PF_EXITING != 0 && exit_code & 0x7f != 0
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

    #[tokio::test]
    async fn a_living_process_did_not_die_of_a_signal() {
        assert!(!died_of_signal(std::process::id()).await);
        assert!(!died_of_signal(u32::MAX).await, "no such task");
    }

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
