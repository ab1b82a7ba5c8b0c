//! The FUSE operations as async functions over the core: inodes and handles in, attributes and bytes out.
//! Nothing here decides what is allowed; the core does, and its errors go back as they are.

use std::ffi::OsStr;
use std::time::SystemTime;

use bytes::Bytes;
use fuser::FileAttr;
use tokio::sync::Mutex as AsyncMutex;

use super::attr::AttrMaker;
use super::errno::{FuseError, FuseResult, Refusal};
use super::handles::{
    died_of_signal, process_of, DirListing, DirState, Handle, HandleTable, ReadFile, WriteFile,
    WriteState,
};
use super::inodes::InodeTable;
use crate::bucketfs::{
    Access, AttrChange, BucketFs, FileAttrs, Key, Metadata, WriteHandle, WriteIntent, XattrWrite,
};

/// Where readdir and readdirplus put entries.
pub(crate) trait DirSink {
    /// Whether the kernel counts each entry as a lookup (readdirplus does; `.` and `..` aside).
    const COUNTS_LOOKUP: bool;

    /// Adds one entry; false when the reply is full and the entry was not added. `trusted`: the attributes may
    /// be kept for the TTL (otherwise the kernel asks again before it uses them).
    fn add(
        &mut self,
        ino: u64,
        next_offset: u64,
        name: &str,
        attr: &FileAttr,
        trusted: bool,
    ) -> bool;
}

/// Everything one mount shares between its requests.
pub(crate) struct Shared {
    pub fs: BucketFs,
    pub inodes: InodeTable,
    pub handles: HandleTable,
    pub attrs: AttrMaker,
}

/// Who creates a node and with which bits: the caller's ids and the mode the kernel passed (already masked by the
/// caller's umask).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Creator {
    pub uid: u32,
    pub gid: u32,
    pub mode: u32,
}

/// The longest name the mount takes, as `statfs` reports it (Linux's NAME_MAX).
pub(crate) const NAME_MAX: usize = 255;

/// The set-group-ID bit: a directory that has it passes its group (and, to directories, the bit) to new entries.
const S_ISGID: u32 = 0o2000;

/// What an open for writing means: the flags say it, the core decides what is allowed.
fn write_intent(flags: i32) -> WriteIntent {
    if flags & libc::O_CREAT != 0 && flags & libc::O_EXCL != 0 {
        WriteIntent::CreateNew
    } else if flags & libc::O_TRUNC != 0 {
        WriteIntent::Replace
    } else if flags & libc::O_APPEND != 0 {
        WriteIntent::Append
    } else {
        WriteIntent::Open
    }
}

fn is_read_only_open(flags: i32) -> bool {
    flags & libc::O_ACCMODE == libc::O_RDONLY
}

impl Shared {
    pub(crate) fn new(fs: BucketFs, attrs: AttrMaker) -> Self {
        Self {
            fs,
            inodes: InodeTable::new(),
            handles: HandleTable::new(),
            attrs,
        }
    }

    fn key_of(&self, ino: u64) -> FuseResult<Key> {
        self.inodes.key(ino).ok_or_else(|| {
            FuseError::refused(
                Refusal::StaleInode,
                format!("inode {ino} is no longer known"),
            )
        })
    }

    /// The key of `name` in directory `parent`; the core refuses `.`, `..` and other names a key cannot hold.
    /// A name longer than the mount's NAME_MAX (what `statfs` says, what programs size their buffers by) is
    /// ENAMETOOLONG here, whatever the store could hold.
    fn child_of(&self, parent: u64, name: &OsStr) -> FuseResult<Key> {
        let name = name.to_str().ok_or_else(|| {
            FuseError::refused(Refusal::NotUtf8, format!("the name {name:?} is not UTF-8"))
        })?;
        let key = self.key_of(parent)?.join(name)?;
        if name.len() > NAME_MAX {
            key.check_name_lengths(NAME_MAX)?;
        }
        Ok(key)
    }

    pub(crate) async fn lookup(&self, parent: u64, name: &OsStr) -> FuseResult<FileAttr> {
        let key = self.child_of(parent, name)?;
        let meta = self.fs.stat(&key).await?;
        Ok(self.attrs.attr(self.inodes.lookup(&key), &meta))
    }

    pub(crate) async fn getattr(&self, ino: u64) -> FuseResult<FileAttr> {
        let meta = self.fs.stat(&self.key_of(ino)?).await?;
        Ok(self.attrs.attr(ino, &meta))
    }

    /// `stat` of an inode the kernel may hold open: a file unlinked while open has no name any more but is still
    /// there for its descriptors (`fstat`), with no links.
    pub(crate) async fn getattr_open(&self, ino: u64, fh: Option<u64>) -> FuseResult<FileAttr> {
        let unlinked = match self.key_of(ino) {
            Ok(_) => return self.getattr(ino).await,
            Err(e) => e,
        };
        let handle = fh
            .and_then(|fh| self.handles.get(fh).ok())
            .or_else(|| self.handles.open_file(ino));
        let Some(handle) = handle else {
            return Err(unlinked);
        };
        let meta = match handle.as_ref() {
            Handle::Read(file) => file.meta.clone(),
            Handle::Write(file) => match file.state.lock().await.size() {
                Some(size) => Metadata::file(size, Some(SystemTime::now())),
                None => return Err(unlinked),
            },
            Handle::Dir(_) => return Err(unlinked),
        };
        let mut attr = self.attrs.attr(ino, &meta);
        attr.nlink = 0;
        Ok(attr)
    }

    /// Size (through the open upload or a short one of its own), then mode, owner and times, which the core
    /// stores with the object (or the upload that is open). The kernel has checked who may change what
    /// (`default_permissions`: only root gives a file away; the owner changes mode and times).
    pub(crate) async fn setattr(
        &self,
        ino: u64,
        size: Option<u64>,
        fh: Option<u64>,
        mut change: AttrChange,
        mtime_now: bool,
    ) -> FuseResult<FileAttr> {
        if let Some(len) = size {
            self.truncate(ino, fh, len).await?;
            // truncate(2) also sets the time to "now", which the new version's commit does anyway.
            if mtime_now {
                change.mtime = None;
            }
        }
        if !change.is_empty() {
            let key = self.key_of(ino)?;
            let meta = self.fs.set_attributes(&key, &change).await?;
            return Ok(self.attrs.attr(ino, &meta));
        }
        self.getattr(ino).await
    }

    /// Through the open upload of this file if there is one; otherwise a short upload of its own, which the
    /// core allows or refuses.
    async fn truncate(&self, ino: u64, fh: Option<u64>, len: u64) -> FuseResult<()> {
        let mut candidates: Vec<_> = fh
            .and_then(|fh| self.handles.get(fh).ok())
            .into_iter()
            .collect();
        candidates.extend(self.handles.writers_of(ino));
        for handle in candidates {
            if let Handle::Write(file) = handle.as_ref() {
                let mut state = file.state.lock().await;
                if state.is_open() {
                    return state.truncate(len).await;
                }
            }
        }
        let mut writer = self
            .fs
            .open_write(&self.key_of(ino)?, WriteIntent::Open)
            .await?;
        if let Err(e) = writer.truncate(len).await {
            writer.abort().await;
            return Err(e.into());
        }
        writer.close().await?;
        // Descriptors that committed earlier (fsync) read the old version through their own reader.
        let committed: Vec<_> = fh
            .and_then(|fh| self.handles.get(fh).ok())
            .into_iter()
            .chain(self.handles.writers_of(ino))
            .collect();
        for handle in committed {
            if let Handle::Write(file) = handle.as_ref() {
                file.state.lock().await.forget_reader();
            }
        }
        Ok(())
    }

    pub(crate) async fn mkdir(
        &self,
        parent: u64,
        name: &OsStr,
        creator: Creator,
    ) -> FuseResult<FileAttr> {
        let key = self.child_of(parent, name)?;
        let (gid, inherit_sgid) = self.group_for_new(parent, creator).await;
        let now = SystemTime::now();
        let mode = (creator.mode & 0o7777) | if inherit_sgid { S_ISGID } else { 0 };
        let attrs = FileAttrs {
            mode: Some(mode),
            uid: Some(creator.uid),
            gid: Some(gid),
            mtime: Some(now),
            ctime: Some(now),
            ..FileAttrs::default()
        };
        let meta = self.fs.mkdir_with(&key, &attrs).await?;
        Ok(self.attrs.attr(self.inodes.lookup(&key), &meta))
    }

    /// The group of a new entry in `parent`: the parent's when it has the set-group-ID bit (and then a new
    /// directory gets the bit too), else the creator's. An unreadable parent changes nothing.
    async fn group_for_new(&self, parent: u64, creator: Creator) -> (u32, bool) {
        let Ok(parent_key) = self.key_of(parent) else {
            return (creator.gid, false);
        };
        let Ok(meta) = self.fs.stat(&parent_key).await else {
            return (creator.gid, false);
        };
        match meta.attrs.as_deref() {
            Some(attrs) if attrs.mode.is_some_and(|m| m & S_ISGID != 0) => {
                (attrs.gid.unwrap_or(self.attrs.owner().1), true)
            }
            _ => (creator.gid, false),
        }
    }

    /// Gives a file being created its mode and owner.
    async fn stamp_new(&self, parent: u64, writer: &mut WriteHandle, creator: Creator) {
        let (gid, _) = self.group_for_new(parent, creator).await;
        writer.set_mode(creator.mode & 0o7777);
        writer.set_owner(creator.uid, gid);
    }

    pub(crate) async fn unlink(&self, parent: u64, name: &OsStr) -> FuseResult<()> {
        let key = self.child_of(parent, name)?;
        self.fs.remove_file(&key).await?;
        self.inodes.unlink(&key);
        Ok(())
    }

    pub(crate) async fn rmdir(&self, parent: u64, name: &OsStr) -> FuseResult<()> {
        let key = self.child_of(parent, name)?;
        self.fs.rmdir(&key).await?;
        self.inodes.unlink(&key);
        Ok(())
    }

    pub(crate) async fn rename(
        &self,
        parent: u64,
        name: &OsStr,
        new_parent: u64,
        new_name: &OsStr,
        flags: u32,
    ) -> FuseResult<()> {
        if flags != 0 {
            return Err(FuseError::refused(
                Refusal::RenameFlags,
                format!("rename flags {flags:#x} are not supported"),
            ));
        }
        let from = self.child_of(parent, name)?;
        let to = self.child_of(new_parent, new_name)?;
        self.fs.rename(&from, &to).await?;
        self.inodes.rename(&from, &to);
        Ok(())
    }

    /// Opens a file: for reading (the core's reader comes with the first read) or writing (an upload starts).
    pub(crate) async fn open(&self, ino: u64, flags: i32, pid: u32) -> FuseResult<u64> {
        let key = self.key_of(ino)?;
        let handle = if is_read_only_open(flags) {
            let read = Access {
                read: true,
                ..Access::default()
            };
            self.fs.access(&key, read).await?;
            let meta = self.fs.stat(&key).await?;
            self.read_handle(ino, meta)
        } else {
            let writer = self.fs.open_write(&key, write_intent(flags)).await?;
            self.write_handle(ino, pid, writer)
        };
        Ok(self.handles.insert(handle))
    }

    /// Creates and opens a file. The object appears when the upload is committed (see `WriteState`); until
    /// then the core shows it to `stat` as a file being written.
    pub(crate) async fn create(
        &self,
        parent: u64,
        name: &OsStr,
        flags: i32,
        pid: u32,
        creator: Creator,
    ) -> FuseResult<(FileAttr, u64)> {
        let key = self.child_of(parent, name)?;
        let mut writer = self.fs.open_write(&key, write_intent(flags)).await?;
        self.stamp_new(parent, &mut writer, creator).await;
        let meta = self.fs.stat(&key).await?;
        let ino = self.inodes.lookup(&key);
        let handle = if is_read_only_open(flags) {
            // O_RDONLY | O_CREAT: the (empty) file must exist when open returns; the descriptor only reads.
            let meta = writer.close().await?;
            self.read_handle(ino, meta)
        } else {
            self.write_handle(ino, pid, writer)
        };
        Ok((self.attrs.attr(ino, &meta), self.handles.insert(handle)))
    }

    /// `mknod`: a regular file is created empty through the core's create path (what `touch` would leave); a
    /// FIFO, socket or device node is stored as s3fs stores one (an empty object whose mode says what it is; the
    /// kernel gives it its meaning).
    pub(crate) async fn mknod(
        &self,
        parent: u64,
        name: &OsStr,
        creator: Creator,
        rdev: u32,
    ) -> FuseResult<FileAttr> {
        let key = self.child_of(parent, name)?;
        // The kernel sends S_IFREG for a plain file; 0 means the same to mknod(2).
        let kind = creator.mode & libc::S_IFMT;
        if kind != libc::S_IFREG && kind != 0 {
            let (gid, _) = self.group_for_new(parent, creator).await;
            let meta = self
                .fs
                .mknod(&key, kind, creator.mode, rdev, Some((creator.uid, gid)))
                .await?;
            return Ok(self.attrs.attr(self.inodes.lookup(&key), &meta));
        }
        let mut writer = self.fs.open_write(&key, WriteIntent::CreateNew).await?;
        self.stamp_new(parent, &mut writer, creator).await;
        let meta = writer.close().await?;
        Ok(self.attrs.attr(self.inodes.lookup(&key), &meta))
    }

    /// A symbolic link, stored as s3fs stores one (an object whose body is the target).
    pub(crate) async fn symlink(
        &self,
        parent: u64,
        name: &OsStr,
        target: &[u8],
        creator: Creator,
    ) -> FuseResult<FileAttr> {
        let key = self.child_of(parent, name)?;
        let (gid, _) = self.group_for_new(parent, creator).await;
        let meta = self
            .fs
            .symlink(&key, target, Some((creator.uid, gid)))
            .await?;
        Ok(self.attrs.attr(self.inodes.lookup(&key), &meta))
    }

    pub(crate) async fn readlink(&self, ino: u64) -> FuseResult<Bytes> {
        Ok(self.fs.readlink(&self.key_of(ino)?).await?)
    }

    /// The value of an extended attribute; the kernel's own namespaces are not kept, so such a name is answered
    /// at once (the kernel asks for `security.capability` before writes, `ls` for ACLs).
    pub(crate) async fn getxattr(&self, ino: u64, name: &OsStr) -> FuseResult<Vec<u8>> {
        if let Some(refusal) = getxattr_refusal(name) {
            return Err(refusal);
        }
        let name = xattr_name(name)?;
        Ok(self.fs.get_xattr(&self.key_of(ino)?, name).await?)
    }

    /// The names of the extended attributes, each followed by a NUL, as listxattr(2) returns them.
    pub(crate) async fn listxattr(&self, ino: u64) -> FuseResult<Vec<u8>> {
        let names = self.fs.list_xattrs(&self.key_of(ino)?).await?;
        let mut list = Vec::new();
        for name in names {
            list.extend_from_slice(name.as_bytes());
            list.push(0);
        }
        Ok(list)
    }

    pub(crate) async fn setxattr(
        &self,
        ino: u64,
        name: &OsStr,
        value: &[u8],
        flags: i32,
    ) -> FuseResult<()> {
        let name = xattr_name(name)?;
        let how = if flags & libc::XATTR_CREATE != 0 {
            XattrWrite::Create
        } else if flags & libc::XATTR_REPLACE != 0 {
            XattrWrite::Replace
        } else {
            XattrWrite::Any
        };
        self.fs
            .set_xattr(&self.key_of(ino)?, name, value, how)
            .await?;
        Ok(())
    }

    pub(crate) async fn removexattr(&self, ino: u64, name: &OsStr) -> FuseResult<()> {
        let name = xattr_name(name)?;
        self.fs.remove_xattr(&self.key_of(ino)?, name).await?;
        Ok(())
    }

    fn read_handle(&self, ino: u64, meta: Metadata) -> Handle {
        Handle::Read(ReadFile {
            ino,
            meta,
            reader: AsyncMutex::new(None),
        })
    }

    fn write_handle(&self, ino: u64, pid: u32, writer: WriteHandle) -> Handle {
        Handle::Write(WriteFile {
            ino,
            state: Box::new(AsyncMutex::new(WriteState::new(writer, process_of(pid)))),
        })
    }

    pub(crate) async fn read(&self, fh: u64, offset: u64, size: u32) -> FuseResult<Bytes> {
        let handle = self.handles.get(fh)?;
        let file = match handle.as_ref() {
            Handle::Read(file) => file,
            // Reading back through the descriptor that writes (O_RDWR).
            Handle::Write(file) => {
                // The name is needed only once the upload is committed: bytes still in the upload read back
                // after an unlink too.
                let open_reader = async { Ok(self.fs.open_read(&self.key_of(file.ino)?).await?) };
                return file
                    .state
                    .lock()
                    .await
                    .read(offset, size, open_reader)
                    .await;
            }
            Handle::Dir(_) => {
                return Err(FuseError::refused(
                    Refusal::BadHandle,
                    format!("file handle {fh} is a directory"),
                ))
            }
        };
        let mut reader = file.reader.lock().await;
        if reader.is_none() {
            *reader = Some(self.fs.open_read(&self.key_of(file.ino)?).await?);
        }
        match reader.as_mut() {
            Some(reader) => Ok(reader.read_at(offset, size).await?),
            None => Err(FuseError::refused(Refusal::BadHandle, "reader vanished")),
        }
    }

    pub(crate) async fn write(
        &self,
        fh: u64,
        offset: u64,
        data: Bytes,
        pid: u32,
    ) -> FuseResult<u32> {
        let handle = self.handles.get(fh)?;
        let Handle::Write(file) = handle.as_ref() else {
            return Err(FuseError::refused(
                Refusal::NotWritable,
                "the file is open for reading only",
            ));
        };
        let len = u32::try_from(data.len()).unwrap_or(u32::MAX);
        let mut state = file.state.lock().await;
        state.failure()?;
        if !state.is_open() {
            // Written again after a commit (fsync, or its opener closed it): a new upload continues the file.
            let writer = self
                .fs
                .open_write(&self.key_of(file.ino)?, WriteIntent::Open)
                .await?;
            state.reopen(writer, process_of(pid));
        }
        state.write(offset, data).await?;
        Ok(len)
    }

    /// A `close()` of one descriptor: commits if the process that opened the upload closes it (see `WriteState`).
    pub(crate) async fn flush(&self, fh: u64, pid: u32) -> FuseResult<()> {
        let handle = self.handles.get(fh)?;
        let Handle::Write(file) = handle.as_ref() else {
            return Ok(());
        };
        let process = process_of(pid);
        let mut state = file.state.lock().await;
        // Only the opener's close commits; another process's (a child's close-on-exec among them) is not asked
        // about its health at all.
        let dying = state.is_opener(process) && died_of_signal(pid).await;
        state.flush(process, dying).await
    }

    pub(crate) async fn fsync(&self, fh: u64) -> FuseResult<()> {
        let handle = self.handles.get(fh)?;
        match handle.as_ref() {
            Handle::Write(file) => file.state.lock().await.commit().await,
            _ => Ok(()),
        }
    }

    /// The last descriptor is gone: an upload still open is committed now.
    pub(crate) async fn release(&self, fh: u64) -> FuseResult<()> {
        let handle = self.handles.remove(fh)?;
        if let Handle::Write(file) = handle.as_ref() {
            file.state.lock().await.release().await;
        }
        Ok(())
    }

    /// The session ended (unmounted). A file closed just before may not have had its release delivered: the
    /// kernel drops queued requests when the connection ends. Its descriptors are all closed (an unmount only
    /// succeeds then), so what is still open is committed, as its release would have done.
    pub(crate) async fn release_all(&self) {
        for handle in self.handles.drain() {
            if let Handle::Write(file) = handle.as_ref() {
                file.state.lock().await.release().await;
            }
        }
    }

    /// Opens a listing; a denied or missing directory fails here, where `ls` expects it.
    pub(crate) async fn opendir(&self, ino: u64) -> FuseResult<u64> {
        let key = self.key_of(ino)?;
        let listing = self.fs.read_dir(&key).await?;
        Ok(self.handles.insert(Handle::Dir(DirListing {
            ino,
            key,
            state: AsyncMutex::new(DirState {
                listing: Some(listing),
                entries: Vec::new(),
            }),
        })))
    }

    /// Fills `sink` from entry `offset` on: `.` and `..`, then the children, fetched from the core as needed
    /// and kept, so a rewind or a repeated offset is answered from what was fetched.
    pub(crate) async fn readdir<S: DirSink + Send>(
        &self,
        fh: u64,
        offset: u64,
        sink: &mut S,
    ) -> FuseResult<()> {
        let handle = self.handles.get(fh)?;
        let Handle::Dir(dir) = handle.as_ref() else {
            return Err(FuseError::refused(
                Refusal::BadHandle,
                format!("file handle {fh} is not a directory"),
            ));
        };
        let dir_key = self.inodes.key(dir.ino).unwrap_or_else(|| dir.key.clone());
        let mut state = dir.state.lock().await;
        let mut index = offset;
        loop {
            let added = match index {
                0 => sink.add(
                    dir.ino,
                    1,
                    ".",
                    &self.attrs.attr(dir.ino, &Metadata::directory()),
                    false,
                ),
                1 => {
                    let parent = self.inodes.parent_of(dir.ino);
                    sink.add(
                        parent,
                        2,
                        "..",
                        &self.attrs.attr(parent, &Metadata::directory()),
                        false,
                    )
                }
                _ => {
                    let at = usize::try_from(index - 2).unwrap_or(usize::MAX);
                    match fetch_until(&mut state, at).await {
                        Ok(true) => {}
                        Ok(false) => break,
                        // Entries already added are delivered; the next readdir meets the error again.
                        Err(e) if index > offset => {
                            tracing::warn!(error = %e, "listing failed part way");
                            break;
                        }
                        Err(e) => return Err(e),
                    }
                    let entry = &state.entries[at];
                    // A file's listing data (size, time; default mode and owner unless its stored attributes
                    // are known) may be kept, so `ls -l` makes no request per entry. A directory's may not when
                    // its attributes are unknown: its mode guards what is below it, and a stat of it is cheap.
                    let trusted = !entry.meta.is_dir() || entry.meta.attrs.is_some();
                    // A name the listing gave cannot fail to join; such an entry is skipped all the same.
                    let Ok(key) = dir_key.join(&entry.name) else {
                        index += 1;
                        continue;
                    };
                    self.inodes.with_entry(&key, S::COUNTS_LOOKUP, |ino| {
                        sink.add(
                            ino,
                            index + 1,
                            &entry.name,
                            &self.attrs.attr(ino, &entry.meta),
                            trusted,
                        )
                    })
                }
            };
            if !added {
                break;
            }
            index += 1;
        }
        Ok(())
    }

    /// Inodes handed out by plain readdir and never looked up are dropped with the listing.
    pub(crate) async fn releasedir(&self, fh: u64) -> FuseResult<()> {
        let handle = self.handles.remove(fh)?;
        if let Handle::Dir(dir) = handle.as_ref() {
            let state = dir.state.lock().await;
            let dir_key = self.inodes.key(dir.ino).unwrap_or_else(|| dir.key.clone());
            let keys: Vec<Key> = state
                .entries
                .iter()
                .filter_map(|e| dir_key.join(&e.name).ok())
                .collect();
            self.inodes.prune(&keys);
        }
        Ok(())
    }
}

/// Extended attribute names are kept as text.
/// The answer to a getxattr that needs no look at the file: a name that is not UTF-8, or one of the kernel's
/// namespaces (`ls -l` asks `security.selinux` and `system.posix_acl_access` of every entry it shows).
pub(crate) fn getxattr_refusal(name: &OsStr) -> Option<FuseError> {
    match xattr_name(name) {
        Err(refusal) => Some(refusal),
        Ok(name) if !crate::bucketfs::object_meta::is_kept_xattr(name) => Some(FuseError::refused(
            Refusal::NoXattr,
            format!("no extended attribute {name:?} (the kernel's namespaces are not kept)"),
        )),
        Ok(_) => None,
    }
}

fn xattr_name(name: &OsStr) -> FuseResult<&str> {
    name.to_str().ok_or_else(|| {
        FuseError::refused(
            Refusal::NotUtf8,
            format!("the attribute name {name:?} is not UTF-8"),
        )
    })
}

/// Makes sure entry `at` has been fetched; false when the listing ends before it.
async fn fetch_until(state: &mut DirState, at: usize) -> FuseResult<bool> {
    while state.entries.len() <= at {
        let Some(listing) = state.listing.as_mut() else {
            return Ok(false);
        };
        match listing.next_entry().await? {
            Some(entry) => state.entries.push(entry),
            None => state.listing = None,
        }
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_flags_choose_the_write_intent() {
        assert_eq!(
            write_intent(libc::O_WRONLY | libc::O_TRUNC),
            WriteIntent::Replace
        );
        assert_eq!(
            write_intent(libc::O_WRONLY | libc::O_TRUNC | libc::O_APPEND),
            WriteIntent::Replace
        );
        assert_eq!(
            write_intent(libc::O_WRONLY | libc::O_APPEND),
            WriteIntent::Append
        );
        assert_eq!(
            write_intent(libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL),
            WriteIntent::CreateNew
        );
        assert_eq!(write_intent(libc::O_RDWR), WriteIntent::Open);
        assert!(is_read_only_open(libc::O_RDONLY | libc::O_NONBLOCK));
        assert!(!is_read_only_open(libc::O_WRONLY));
    }
}
