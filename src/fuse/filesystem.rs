//! The fuser `Filesystem`: each request gets a span and runs as a task on the tokio runtime, so a slow store
//! call holds up only its own request; the reply is sent from the task. Errors become errno in `errno.rs`.

use std::ffi::{OsStr, OsString};
use std::future::Future;
use std::io;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use bytes::Bytes;
use fuser::{
    BsdFileFlags, CopyFileRangeFlags, Errno, FileAttr, FileHandle, Filesystem, FopenFlags,
    Generation, INodeNo, InitFlags, IoctlFlags, KernelConfig, LockOwner, OpenFlags, PollEvents,
    PollFlags, PollNotifier, RenameFlags, ReplyAttr, ReplyBmap, ReplyCreate, ReplyData,
    ReplyDirectory, ReplyDirectoryPlus, ReplyEmpty, ReplyEntry, ReplyIoctl, ReplyLock, ReplyLseek,
    ReplyOpen, ReplyPoll, ReplyStatfs, ReplyWrite, ReplyXattr, Request, TimeOrNow, WriteFlags,
};
use tokio::runtime::Handle as Runtime;
use tracing::{debug, Instrument, Span};

use super::errno::{FuseError, FuseResult, Refusal};
use super::metrics;
use super::ops::{Creator, DirSink, Shared};
use super::readahead::ReadAhead;
use crate::bucketfs::AttrChange;

/// Largest write request the kernel sends (and the unit `st_blksize` advertises).
const MAX_WRITE: u32 = 1024 * 1024;
/// Requests the kernel keeps in flight in the background (read-ahead, async releases).
const MAX_BACKGROUND: u16 = 64;
/// Inode numbers come from a counter and are never reused, so one generation serves.
const GENERATION: Generation = Generation(0);

/// A span for one request: the operation, the kernel's request id, and what it names.
macro_rules! request_span {
    ($op:literal, $req:expr $(, $($field:tt)*)?) => {
        tracing::warn_span!("fuse", op = $op, req = $req.unique().0 $(, $($field)*)?)
    };
}

/// Anything a request can be answered with: they all take an errno.
trait ErrorReply: Send + 'static {
    fn error(self, errno: Errno);
}

macro_rules! error_reply {
    ($($reply:ty),*) => {$(
        impl ErrorReply for $reply {
            fn error(self, errno: Errno) {
                <$reply>::error(self, errno)
            }
        }
    )*};
}

error_reply!(
    ReplyAttr,
    ReplyBmap,
    ReplyCreate,
    ReplyData,
    ReplyDirectory,
    ReplyDirectoryPlus,
    ReplyEmpty,
    ReplyEntry,
    ReplyIoctl,
    ReplyLock,
    ReplyLseek,
    ReplyOpen,
    ReplyPoll,
    ReplyWrite,
    ReplyXattr
);

/// Answers at once with the adapter's own refusal. fuser's defaults would answer the same errno but log a
/// "[Not Implemented]" warning for each call, and programs make some of these calls all the time.
fn refuse(op: &'static str, reply: impl ErrorReply, refusal: Refusal, message: &str) {
    let error = FuseError::refused(refusal, format!("{op}: {message}"));
    tracing::warn_span!("fuse", op).in_scope(|| error.log());
    metrics::answered(op, Some(error.errno()));
    reply.error(error.errno());
}

const NOT_IMPLEMENTED: &str = "not implemented by this mount";

/// The mount's side of the kernel protocol.
pub(crate) struct FuseFs {
    shared: Arc<Shared>,
    runtime: Runtime,
    read_ahead: ReadAhead,
}

impl FuseFs {
    pub(crate) fn new(shared: Shared, runtime: Runtime, read_ahead: ReadAhead) -> Self {
        Self {
            shared: Arc::new(shared),
            runtime,
            read_ahead,
        }
    }

    fn ttl(&self) -> Duration {
        self.shared.attrs.ttl
    }

    /// Runs `work` as a task in `span`; answers with `ok` or with the error's errno.
    fn run<R, T, F>(
        &self,
        op: &'static str,
        span: Span,
        reply: R,
        work: F,
        ok: impl FnOnce(R, T) + Send + 'static,
    ) where
        R: ErrorReply,
        T: Send + 'static,
        F: Future<Output = FuseResult<T>> + Send + 'static,
    {
        self.read_ahead.ensure();
        self.runtime.spawn(
            async move {
                match work.await {
                    Ok(value) => {
                        metrics::answered(op, None);
                        ok(reply, value)
                    }
                    Err(e) => {
                        e.log();
                        metrics::answered(op, Some(e.errno()));
                        reply.error(e.errno());
                    }
                }
            }
            .instrument(span),
        );
    }

    fn reply_entry(&self) -> impl FnOnce(ReplyEntry, FileAttr) + Send + 'static {
        let ttl = self.ttl();
        move |reply, attr| reply.entry(&ttl, &attr, GENERATION)
    }

    fn reply_attr(&self) -> impl FnOnce(ReplyAttr, FileAttr) + Send + 'static {
        let ttl = self.ttl();
        move |reply, attr| reply.attr(&ttl, &attr)
    }

    fn readdir_with<R>(&self, span: Span, op: &'static str, fh: u64, offset: u64, mut reply: R)
    where
        R: ErrorReply + Finish,
        for<'a> Sink<'a, R>: DirSink + Send,
    {
        self.read_ahead.ensure();
        let shared = Arc::clone(&self.shared);
        let ttl = self.ttl();
        self.runtime.spawn(
            async move {
                let mut sink = Sink {
                    reply: &mut reply,
                    ttl,
                };
                match shared.readdir(fh, offset, &mut sink).await {
                    Ok(()) => {
                        metrics::answered(op, None);
                        reply.finish()
                    }
                    Err(e) => {
                        e.log();
                        metrics::answered(op, Some(e.errno()));
                        reply.error(e.errno());
                    }
                }
            }
            .instrument(span),
        );
    }
}

/// A directory reply being filled.
struct Sink<'a, R> {
    reply: &'a mut R,
    ttl: Duration,
}

/// Sends a filled directory reply.
trait Finish {
    fn finish(self);
}

impl Finish for ReplyDirectory {
    fn finish(self) {
        self.ok()
    }
}

impl Finish for ReplyDirectoryPlus {
    fn finish(self) {
        self.ok()
    }
}

impl DirSink for Sink<'_, ReplyDirectory> {
    const COUNTS_LOOKUP: bool = false;

    fn add(&mut self, ino: u64, next_offset: u64, name: &str, attr: &FileAttr, _: bool) -> bool {
        // fuser's `add` answers "the buffer is full" (and the entry was not added).
        !self.reply.add(INodeNo(ino), next_offset, attr.kind, name)
    }
}

impl DirSink for Sink<'_, ReplyDirectoryPlus> {
    const COUNTS_LOOKUP: bool = true;

    fn add(
        &mut self,
        ino: u64,
        next_offset: u64,
        name: &str,
        attr: &FileAttr,
        trusted: bool,
    ) -> bool {
        let ttl = if trusted { self.ttl } else { Duration::ZERO };
        !self
            .reply
            .add(INodeNo(ino), next_offset, name, &ttl, attr, GENERATION)
    }
}

/// The caller of a creating request and the mode it asked for (the kernel applied the umask already).
fn creator(req: &Request, mode: u32) -> Creator {
    Creator {
        uid: req.uid(),
        gid: req.gid(),
        mode,
    }
}

/// An extended attribute's value (or the list of names): its size when asked with 0, ERANGE when it does not fit
/// the caller's buffer.
fn reply_xattr(reply: ReplyXattr, size: u32, value: &[u8]) {
    let len = u32::try_from(value.len()).unwrap_or(u32::MAX);
    if size == 0 {
        reply.size(len);
    } else if len > size {
        let error = FuseError::refused(
            Refusal::XattrRange,
            format!("the value ({len} bytes) is longer than the buffer ({size})"),
        );
        error.log();
        reply.error(error.errno());
    } else {
        reply.data(value);
    }
}

/// Asks for `wanted`, or the nearest value the kernel connection accepts.
fn nearest<T: Copy>(wanted: T, mut set: impl FnMut(T) -> Result<T, T>) {
    if let Err(nearest) = set(wanted) {
        let _ = set(nearest);
    }
}

impl Filesystem for FuseFs {
    fn init(&mut self, _req: &Request, config: &mut KernelConfig) -> io::Result<()> {
        nearest(MAX_WRITE, |v| config.set_max_write(v));
        nearest(MAX_BACKGROUND, |v| config.set_max_background(v));
        // O_TRUNC arrives with open (not as a separate setattr); listings carry attributes (no lookup per
        // entry for `ls -l`); lookups in one directory may run in parallel. Each only if the kernel has it.
        for capability in [
            InitFlags::FUSE_ATOMIC_O_TRUNC,
            InitFlags::FUSE_DO_READDIRPLUS,
            InitFlags::FUSE_PARALLEL_DIROPS,
        ] {
            if let Err(missing) = config.add_capabilities(capability) {
                debug!(?missing, "kernel lacks a FUSE capability");
            }
        }
        Ok(())
    }

    fn destroy(&mut self) {
        // A fuser thread, not a runtime thread: blocking here is allowed, and the unmount waits for it.
        let shared = Arc::clone(&self.shared);
        self.runtime.block_on(shared.release_all());
    }

    fn lookup(&self, req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        let span = request_span!("lookup", req, parent = parent.0, name = ?name);
        let (shared, name) = (Arc::clone(&self.shared), name.to_os_string());
        let ok = self.reply_entry();
        self.run(
            "lookup",
            span,
            reply,
            async move { shared.lookup(parent.0, &name).await },
            ok,
        );
    }

    fn forget(&self, _req: &Request, ino: INodeNo, nlookup: u64) {
        self.shared.inodes.forget(ino.0, nlookup);
    }

    fn getattr(&self, req: &Request, ino: INodeNo, fh: Option<FileHandle>, reply: ReplyAttr) {
        let span = request_span!("getattr", req, ino = ino.0, fh = ?fh);
        let shared = Arc::clone(&self.shared);
        let ok = self.reply_attr();
        self.run(
            "getattr",
            span,
            reply,
            async move { shared.getattr_open(ino.0, fh.map(|fh| fh.0)).await },
            ok,
        );
    }

    fn setattr(
        &self,
        req: &Request,
        ino: INodeNo,
        mode: Option<u32>,
        uid: Option<u32>,
        gid: Option<u32>,
        size: Option<u64>,
        atime: Option<TimeOrNow>,
        mtime: Option<TimeOrNow>,
        _ctime: Option<SystemTime>,
        fh: Option<FileHandle>,
        _crtime: Option<SystemTime>,
        _chgtime: Option<SystemTime>,
        _bkuptime: Option<SystemTime>,
        _flags: Option<BsdFileFlags>,
        reply: ReplyAttr,
    ) {
        let span = request_span!("setattr", req, ino = ino.0, size = ?size, mode = ?mode,
            uid = ?uid, gid = ?gid, atime = ?atime, mtime = ?mtime);
        let shared = Arc::clone(&self.shared);
        let fh = fh.map(|fh| fh.0);
        let ok = self.reply_attr();
        let at = |t: TimeOrNow| match t {
            TimeOrNow::SpecificTime(t) => t,
            TimeOrNow::Now => SystemTime::now(),
        };
        let mtime_now = matches!(mtime, Some(TimeOrNow::Now));
        let change = AttrChange {
            mode,
            uid,
            gid,
            atime: atime.map(at),
            mtime: mtime.map(at),
        };
        self.run(
            "setattr",
            span,
            reply,
            async move { shared.setattr(ino.0, size, fh, change, mtime_now).await },
            ok,
        );
    }

    fn mkdir(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        _umask: u32,
        reply: ReplyEntry,
    ) {
        let span = request_span!("mkdir", req, parent = parent.0, name = ?name, mode);
        let (shared, name) = (Arc::clone(&self.shared), name.to_os_string());
        let creator = creator(req, mode);
        let ok = self.reply_entry();
        self.run(
            "mkdir",
            span,
            reply,
            async move { shared.mkdir(parent.0, &name, creator).await },
            ok,
        );
    }

    fn unlink(&self, req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        let span = request_span!("unlink", req, parent = parent.0, name = ?name);
        let (shared, name) = (Arc::clone(&self.shared), name.to_os_string());
        self.run(
            "unlink",
            span,
            reply,
            async move { shared.unlink(parent.0, &name).await },
            |reply, ()| reply.ok(),
        );
    }

    fn rmdir(&self, req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        let span = request_span!("rmdir", req, parent = parent.0, name = ?name);
        let (shared, name) = (Arc::clone(&self.shared), name.to_os_string());
        self.run(
            "rmdir",
            span,
            reply,
            async move { shared.rmdir(parent.0, &name).await },
            |reply, ()| reply.ok(),
        );
    }

    fn rename(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        newparent: INodeNo,
        newname: &OsStr,
        flags: RenameFlags,
        reply: ReplyEmpty,
    ) {
        let span = request_span!("rename", req, parent = parent.0, name = ?name,
            newparent = newparent.0, newname = ?newname);
        let shared = Arc::clone(&self.shared);
        let (name, newname): (OsString, OsString) = (name.into(), newname.into());
        self.run(
            "rename",
            span,
            reply,
            async move {
                shared
                    .rename(parent.0, &name, newparent.0, &newname, flags.bits())
                    .await
            },
            |reply, ()| reply.ok(),
        );
    }

    fn open(&self, req: &Request, ino: INodeNo, flags: OpenFlags, reply: ReplyOpen) {
        let span = request_span!("open", req, ino = ino.0, flags = flags.0, pid = req.pid());
        let (shared, pid) = (Arc::clone(&self.shared), req.pid());
        self.run(
            "open",
            span,
            reply,
            async move { shared.open(ino.0, flags.0, pid).await },
            |reply, fh| reply.opened(FileHandle(fh), FopenFlags::empty()),
        );
    }

    fn read(
        &self,
        req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        size: u32,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyData,
    ) {
        let span = request_span!("read", req, ino = ino.0, fh = fh.0, offset, size);
        let shared = Arc::clone(&self.shared);
        self.run(
            "read",
            span,
            reply,
            async move { shared.read(fh.0, offset, size).await },
            |reply, bytes| reply.data(&bytes),
        );
    }

    fn write(
        &self,
        req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        data: &[u8],
        _write_flags: WriteFlags,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyWrite,
    ) {
        let span = request_span!(
            "write",
            req,
            ino = ino.0,
            fh = fh.0,
            offset,
            len = data.len()
        );
        // The request buffer is reused as soon as this returns: the task needs its own copy.
        let (shared, data, pid) = (
            Arc::clone(&self.shared),
            Bytes::copy_from_slice(data),
            req.pid(),
        );
        self.run(
            "write",
            span,
            reply,
            async move { shared.write(fh.0, offset, data, pid).await },
            |reply, written| reply.written(written),
        );
    }

    fn flush(
        &self,
        req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        _lock_owner: LockOwner,
        reply: ReplyEmpty,
    ) {
        let span = request_span!("flush", req, ino = ino.0, fh = fh.0, pid = req.pid());
        let (shared, pid) = (Arc::clone(&self.shared), req.pid());
        self.run(
            "flush",
            span,
            reply,
            async move { shared.flush(fh.0, pid).await },
            |reply, ()| reply.ok(),
        );
    }

    fn release(
        &self,
        req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        _flush: bool,
        reply: ReplyEmpty,
    ) {
        let span = request_span!("release", req, ino = ino.0, fh = fh.0);
        let shared = Arc::clone(&self.shared);
        self.run(
            "release",
            span,
            reply,
            async move { shared.release(fh.0).await },
            |reply, ()| reply.ok(),
        );
    }

    fn fsync(
        &self,
        req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        _datasync: bool,
        reply: ReplyEmpty,
    ) {
        let span = request_span!("fsync", req, ino = ino.0, fh = fh.0);
        let shared = Arc::clone(&self.shared);
        self.run(
            "fsync",
            span,
            reply,
            async move { shared.fsync(fh.0).await },
            |reply, ()| reply.ok(),
        );
    }

    fn opendir(&self, req: &Request, ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        let span = request_span!("opendir", req, ino = ino.0);
        let shared = Arc::clone(&self.shared);
        self.run(
            "opendir",
            span,
            reply,
            async move { shared.opendir(ino.0).await },
            |reply, fh| reply.opened(FileHandle(fh), FopenFlags::empty()),
        );
    }

    fn readdir(
        &self,
        req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        reply: ReplyDirectory,
    ) {
        let span = request_span!("readdir", req, ino = ino.0, fh = fh.0, offset);
        self.readdir_with(span, "readdir", fh.0, offset, reply);
    }

    fn readdirplus(
        &self,
        req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        reply: ReplyDirectoryPlus,
    ) {
        let span = request_span!("readdirplus", req, ino = ino.0, fh = fh.0, offset);
        self.readdir_with(span, "readdirplus", fh.0, offset, reply);
    }

    fn releasedir(
        &self,
        req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        reply: ReplyEmpty,
    ) {
        let span = request_span!("releasedir", req, ino = ino.0, fh = fh.0);
        let shared = Arc::clone(&self.shared);
        self.run(
            "releasedir",
            span,
            reply,
            async move { shared.releasedir(fh.0).await },
            |reply, ()| reply.ok(),
        );
    }

    /// An object store has no capacity to report; large round numbers keep `df` and free-space checks happy.
    fn statfs(&self, _req: &Request, _ino: INodeNo, reply: ReplyStatfs) {
        const BLOCK: u32 = 4096;
        const BLOCKS: u64 = (1 << 50) / BLOCK as u64; // 1 PiB
        const FILES: u64 = 1 << 32;
        let name_max = u32::try_from(super::ops::NAME_MAX).unwrap_or(u32::MAX);
        reply.statfs(BLOCKS, BLOCKS, BLOCKS, FILES, FILES, BLOCK, name_max, BLOCK);
    }

    // Extended attributes: `user.*` ones are kept in the object's metadata (s3fs's form); other names are
    // answered without asking the store (the kernel's `security.capability` lookup before writes, `ls` and
    // `cp -a` probing ACLs).
    fn getxattr(&self, req: &Request, ino: INodeNo, name: &OsStr, size: u32, reply: ReplyXattr) {
        let span = request_span!("getxattr", req, ino = ino.0, name = ?name, size);
        // Answered here, without a task: `ls -l` asks two such names of every entry it shows. Through the runtime
        // they made `ls -l` of 10,000 entries take 3.2–3.7 s instead of 1.4 s, long enough that the kernel's
        // entries from the listing expired (`metadata_ttl`) and it looked 1,200–1,700 of them up again.
        if let Some(error) = super::ops::getxattr_refusal(name) {
            span.in_scope(|| error.log());
            metrics::answered("getxattr", Some(error.errno()));
            reply.error(error.errno());
            return;
        }
        let (shared, name) = (Arc::clone(&self.shared), name.to_os_string());
        self.run(
            "getxattr",
            span,
            reply,
            async move { shared.getxattr(ino.0, &name).await },
            move |reply, value| reply_xattr(reply, size, &value),
        );
    }

    fn listxattr(&self, req: &Request, ino: INodeNo, size: u32, reply: ReplyXattr) {
        let span = request_span!("listxattr", req, ino = ino.0, size);
        let shared = Arc::clone(&self.shared);
        self.run(
            "listxattr",
            span,
            reply,
            async move { shared.listxattr(ino.0).await },
            move |reply, list| reply_xattr(reply, size, &list),
        );
    }

    fn setxattr(
        &self,
        req: &Request,
        ino: INodeNo,
        name: &OsStr,
        value: &[u8],
        flags: i32,
        _position: u32,
        reply: ReplyEmpty,
    ) {
        let span = request_span!("setxattr", req, ino = ino.0, name = ?name, len = value.len());
        let (shared, name, value) = (
            Arc::clone(&self.shared),
            name.to_os_string(),
            value.to_vec(),
        );
        self.run(
            "setxattr",
            span,
            reply,
            async move { shared.setxattr(ino.0, &name, &value, flags).await },
            |reply, ()| reply.ok(),
        );
    }

    fn removexattr(&self, req: &Request, ino: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        let span = request_span!("removexattr", req, ino = ino.0, name = ?name);
        let (shared, name) = (Arc::clone(&self.shared), name.to_os_string());
        self.run(
            "removexattr",
            span,
            reply,
            async move { shared.removexattr(ino.0, &name).await },
            |reply, ()| reply.ok(),
        );
    }

    // No `access`: with `default_permissions` the kernel answers access(2) itself, from the owner and mode in
    // the attributes (see `attr.rs`), and never asks.

    fn mknod(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        _umask: u32,
        rdev: u32,
        reply: ReplyEntry,
    ) {
        let span = request_span!("mknod", req, parent = parent.0, name = ?name, mode, rdev);
        let (shared, name) = (Arc::clone(&self.shared), name.to_os_string());
        let creator = creator(req, mode);
        let ok = self.reply_entry();
        self.run(
            "mknod",
            span,
            reply,
            async move { shared.mknod(parent.0, &name, creator, rdev).await },
            ok,
        );
    }

    fn symlink(
        &self,
        req: &Request,
        parent: INodeNo,
        link_name: &OsStr,
        target: &Path,
        reply: ReplyEntry,
    ) {
        let span =
            request_span!("symlink", req, parent = parent.0, name = ?link_name, target = ?target);
        let shared = Arc::clone(&self.shared);
        let (name, target) = (
            link_name.to_os_string(),
            target.as_os_str().as_bytes().to_vec(),
        );
        let creator = creator(req, 0o777);
        let ok = self.reply_entry();
        self.run(
            "symlink",
            span,
            reply,
            async move { shared.symlink(parent.0, &name, &target, creator).await },
            ok,
        );
    }

    fn link(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _newparent: INodeNo,
        _newname: &OsStr,
        reply: ReplyEntry,
    ) {
        refuse(
            "link",
            reply,
            Refusal::NodeType,
            "an object store has no hard links",
        );
    }

    fn readlink(&self, req: &Request, ino: INodeNo, reply: ReplyData) {
        let span = request_span!("readlink", req, ino = ino.0);
        let shared = Arc::clone(&self.shared);
        self.run(
            "readlink",
            span,
            reply,
            async move { shared.readlink(ino.0).await },
            |reply, target| reply.data(&target),
        );
    }

    // Directories have nothing to sync; on ENOSYS the kernel stops asking and reports success.
    fn fsyncdir(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _datasync: bool,
        reply: ReplyEmpty,
    ) {
        refuse("fsyncdir", reply, Refusal::NotImplemented, NOT_IMPLEMENTED);
    }

    // Locks: the kernel keeps POSIX locks locally unless the filesystem asks for them at init; answered in case.
    fn getlk(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _lock_owner: LockOwner,
        _start: u64,
        _end: u64,
        _typ: i32,
        _pid: u32,
        reply: ReplyLock,
    ) {
        refuse("getlk", reply, Refusal::NotImplemented, NOT_IMPLEMENTED);
    }

    fn setlk(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _lock_owner: LockOwner,
        _start: u64,
        _end: u64,
        _typ: i32,
        _pid: u32,
        _sleep: bool,
        reply: ReplyEmpty,
    ) {
        refuse("setlk", reply, Refusal::NotImplemented, NOT_IMPLEMENTED);
    }

    fn bmap(&self, _req: &Request, _ino: INodeNo, _blocksize: u32, _idx: u64, reply: ReplyBmap) {
        refuse("bmap", reply, Refusal::NotImplemented, NOT_IMPLEMENTED);
    }

    // `lsattr`, `chattr`, `cp --reflink` (FICLONE), terminal probes, …
    fn ioctl(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _flags: IoctlFlags,
        cmd: u32,
        _in_data: &[u8],
        _out_size: u32,
        reply: ReplyIoctl,
    ) {
        refuse(
            "ioctl",
            reply,
            Refusal::UnknownIoctl,
            &format!("ioctl {cmd:#x} is not supported"),
        );
    }

    // On ENOSYS the kernel answers poll itself (always ready), as for a regular file.
    fn poll(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _ph: PollNotifier,
        _events: PollEvents,
        _flags: PollFlags,
        reply: ReplyPoll,
    ) {
        refuse("poll", reply, Refusal::NotImplemented, NOT_IMPLEMENTED);
    }

    // Objects are written sequentially; there is nothing to preallocate (programs get EOPNOTSUPP).
    fn fallocate(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _offset: u64,
        _length: u64,
        _mode: i32,
        reply: ReplyEmpty,
    ) {
        refuse("fallocate", reply, Refusal::NotImplemented, NOT_IMPLEMENTED);
    }

    // SEEK_DATA / SEEK_HOLE (`cp` asks for every file): on ENOSYS the kernel treats the file as all data.
    fn lseek(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _offset: i64,
        _whence: i32,
        reply: ReplyLseek,
    ) {
        refuse("lseek", reply, Refusal::NotImplemented, NOT_IMPLEMENTED);
    }

    // On ENOSYS the kernel (or the program) copies through read and write.
    fn copy_file_range(
        &self,
        _req: &Request,
        _ino_in: INodeNo,
        _fh_in: FileHandle,
        _offset_in: u64,
        _ino_out: INodeNo,
        _fh_out: FileHandle,
        _offset_out: u64,
        _len: u64,
        _flags: CopyFileRangeFlags,
        reply: ReplyWrite,
    ) {
        refuse(
            "copy_file_range",
            reply,
            Refusal::NotImplemented,
            NOT_IMPLEMENTED,
        );
    }

    fn create(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        _umask: u32,
        flags: i32,
        reply: ReplyCreate,
    ) {
        let span = request_span!("create", req, parent = parent.0, name = ?name, flags, mode, pid = req.pid());
        let (shared, name, pid) = (Arc::clone(&self.shared), name.to_os_string(), req.pid());
        let creator = creator(req, mode);
        let ttl = self.ttl();
        self.run(
            "create",
            span,
            reply,
            async move { shared.create(parent.0, &name, flags, pid, creator).await },
            move |reply, (attr, fh)| {
                reply.created(&ttl, &attr, GENERATION, FileHandle(fh), FopenFlags::empty())
            },
        );
    }
}
