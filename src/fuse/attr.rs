//! Core metadata → the attributes the kernel shows (`stat`, `ls -l`) and checks local users against
//! (`default_permissions`). The one place owner, mode and times are decided: a file's own stored ones where it
//! has them (see `bucketfs::object_meta`), else the mount's configured owner and modes; the account's policy
//! removes what it rules out, on top of either.

use std::time::{Duration, SystemTime};

use fuser::{FileAttr, FileType, INodeNo};

use crate::bucketfs::{object_meta, FileKind, Metadata, Permissions, Policy};

/// `st_blksize`: programs size their buffers by it (`cp` reads and writes max(128 KiB, blksize) at a time), and
/// every FUSE request costs a round trip through the kernel, so 1 MiB — the mount's `max_write` — is a good
/// unit for an object store.
pub(crate) const BLOCK_SIZE: u32 = 1024 * 1024;

const READ_BITS: u16 = 0o444;
const WRITE_BITS: u16 = 0o222;

/// Owner, permission bits and cache lifetime of everything the mount shows.
#[derive(Debug, Clone)]
pub(crate) struct AttrMaker {
    uid: u32,
    gid: u32,
    file_mode: u16,
    dir_mode: u16,
    /// The bits the policy allows on files and directories (applied to stored modes too).
    file_mask: u16,
    dir_mask: u16,
    /// How long the kernel may trust an answer: the core's own `metadata_ttl`.
    pub ttl: Duration,
}

impl AttrMaker {
    /// The configured modes, less the bits the account's policy rules out: no `r` without the right to read or
    /// list, no `w` without any right to change. The kernel then answers `access(2)` and refuses local users
    /// the way the core would; what the bits cannot say (`delete_enable = false`) the core still refuses.
    pub(crate) fn new(
        uid: u32,
        gid: u32,
        file_mode: u16,
        dir_mode: u16,
        policy: Policy,
        ttl: Duration,
    ) -> Self {
        let file_mask = 0o7777 & allowed_bits(policy.permissions(FileKind::File));
        let dir_mask = 0o7777 & allowed_bits(policy.permissions(FileKind::Directory));
        Self {
            uid,
            gid,
            file_mode: file_mode & file_mask,
            dir_mode: dir_mode & dir_mask,
            file_mask,
            dir_mask,
            ttl,
        }
    }

    /// The mount's owner, for what a file does not say itself.
    pub(crate) fn owner(&self) -> (u32, u32) {
        (self.uid, self.gid)
    }

    pub(crate) fn attr(&self, ino: u64, meta: &Metadata) -> FileAttr {
        let stored = meta.attrs.as_deref();
        // The stored times where the file has them; else the object's one timestamp; implicit directories have
        // none (the epoch then).
        let mtime = meta.mtime.unwrap_or(SystemTime::UNIX_EPOCH);
        let atime = stored.and_then(|a| a.atime).unwrap_or(mtime);
        let ctime = stored.and_then(|a| a.ctime).unwrap_or(mtime);
        let stored_mode = stored.and_then(|a| a.mode).map(|m| (m & 0o7777) as u16);
        let (kind, perm, nlink) = match meta.kind {
            FileKind::File => (
                FileType::RegularFile,
                stored_mode.map_or(self.file_mode, |m| m & self.file_mask),
                1,
            ),
            FileKind::Directory => (
                FileType::Directory,
                stored_mode.map_or(self.dir_mode, |m| m & self.dir_mask),
                2,
            ),
            // A link's bits are never checked; Linux shows 0777.
            FileKind::Symlink => (FileType::Symlink, 0o777, 1),
            FileKind::Special => (
                node_type(stored.and_then(|a| a.file_type)),
                stored_mode.map_or(self.file_mode, |m| m & self.file_mask),
                1,
            ),
        };
        FileAttr {
            ino: INodeNo(ino),
            size: meta.size,
            blocks: meta.size.div_ceil(512),
            atime,
            mtime,
            ctime,
            crtime: mtime,
            kind,
            perm,
            nlink,
            uid: stored.and_then(|a| a.uid).unwrap_or(self.uid),
            gid: stored.and_then(|a| a.gid).unwrap_or(self.gid),
            rdev: stored.and_then(|a| a.rdev).unwrap_or(0),
            blksize: BLOCK_SIZE,
            flags: 0,
        }
    }
}

/// The kernel's type of a special node, from its stored `S_IF*` bits.
fn node_type(file_type: Option<u32>) -> FileType {
    match file_type {
        Some(object_meta::S_IFIFO) => FileType::NamedPipe,
        Some(object_meta::S_IFSOCK) => FileType::Socket,
        Some(object_meta::S_IFCHR) => FileType::CharDevice,
        Some(object_meta::S_IFBLK) => FileType::BlockDevice,
        _ => FileType::RegularFile,
    }
}

/// The permission bits an entry may show, given what the account may do to it.
fn allowed_bits(may: Permissions) -> u16 {
    let mut bits = !(READ_BITS | WRITE_BITS);
    if may.read || may.list {
        bits |= READ_BITS;
    }
    if may.write || may.append || may.create || may.delete || may.rename {
        bits |= WRITE_BITS;
    }
    bits
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Authority;

    fn maker(policy: Policy) -> AttrMaker {
        AttrMaker::new(7, 8, 0o640, 0o750, policy, Duration::from_secs(1))
    }

    #[test]
    fn files_and_directories() {
        let maker = maker(Policy::full());
        let t = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let f = maker.attr(5, &Metadata::file(1000, Some(t)));
        assert_eq!(
            (f.kind, f.perm, f.nlink, f.size, f.blocks),
            (FileType::RegularFile, 0o640, 1, 1000, 2)
        );
        assert_eq!((f.uid, f.gid, f.mtime, f.ino), (7, 8, t, INodeNo(5)));
        let d = maker.attr(1, &Metadata::directory());
        assert_eq!(
            (d.kind, d.perm, d.nlink, d.mtime),
            (FileType::Directory, 0o750, 2, SystemTime::UNIX_EPOCH)
        );
    }

    #[test]
    fn stored_attributes_take_precedence_and_the_policy_stays_on_top() {
        use std::sync::Arc;

        use crate::bucketfs::FileAttrs;
        let t = |s| SystemTime::UNIX_EPOCH + Duration::from_secs(s);
        let stored = Arc::new(FileAttrs {
            mode: Some(0o4750),
            uid: Some(1000),
            gid: Some(100),
            mtime: Some(t(10)),
            atime: Some(t(20)),
            ctime: Some(t(30)),
            ..FileAttrs::default()
        });
        let meta = Metadata::file(5, Some(t(1))).with_attrs(Arc::clone(&stored));
        let f = maker(Policy::full()).attr(2, &meta);
        assert_eq!((f.perm, f.uid, f.gid), (0o4750, 1000, 100));
        assert_eq!((f.mtime, f.atime, f.ctime), (t(10), t(20), t(30)));
        let read_only = maker(Policy::new(Authority::Read, true)).attr(2, &meta);
        assert_eq!(read_only.perm, 0o4550);
        let link = FileAttrs {
            file_type: Some(crate::bucketfs::object_meta::S_IFLNK),
            ..FileAttrs::default()
        };
        let l = maker(Policy::full()).attr(3, &Metadata::file(7, None).with_attrs(Arc::new(link)));
        assert_eq!((l.kind, l.perm, l.size), (FileType::Symlink, 0o777, 7));
    }

    #[test]
    fn the_policy_removes_what_it_rules_out() {
        let modes = |authority, delete_enable| {
            let maker = maker(Policy::new(authority, delete_enable));
            (
                maker.attr(2, &Metadata::file(1, None)).perm,
                maker.attr(1, &Metadata::directory()).perm,
            )
        };
        assert_eq!(modes(Authority::ReadWrite, true), (0o640, 0o750));
        // Appending and creating are still allowed: the core refuses what destroys data.
        assert_eq!(modes(Authority::ReadWrite, false), (0o640, 0o750));
        assert_eq!(modes(Authority::Read, true), (0o440, 0o550));
        // Every account may enter a directory, so `x` stays.
        assert_eq!(modes(Authority::Write, true), (0o200, 0o310));
    }
}
