//! Core metadata → the attributes the kernel shows (`stat`, `ls -l`) and checks local users against
//! (`default_permissions`). The one place owner and mode are decided, so that they can later come from an
//! object's own metadata.

use std::time::{Duration, SystemTime};

use fuser::{FileAttr, FileType, INodeNo};

use crate::bucketfs::{FileKind, Metadata, Permissions, Policy};

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
        Self {
            uid,
            gid,
            file_mode: file_mode & 0o7777 & allowed_bits(policy.permissions(FileKind::File)),
            dir_mode: dir_mode & 0o7777 & allowed_bits(policy.permissions(FileKind::Directory)),
            ttl,
        }
    }

    pub(crate) fn attr(&self, ino: u64, meta: &Metadata) -> FileAttr {
        // Objects have one timestamp; implicit directories have none (the epoch then).
        let time = meta.mtime.unwrap_or(SystemTime::UNIX_EPOCH);
        let (kind, perm, nlink) = match meta.kind {
            FileKind::File => (FileType::RegularFile, self.file_mode, 1),
            FileKind::Directory => (FileType::Directory, self.dir_mode, 2),
        };
        FileAttr {
            ino: INodeNo(ino),
            size: meta.size,
            blocks: meta.size.div_ceil(512),
            atime: time,
            mtime: time,
            ctime: time,
            crtime: time,
            kind,
            perm,
            nlink,
            uid: self.uid,
            gid: self.gid,
            rdev: 0,
            blksize: BLOCK_SIZE,
            flags: 0,
        }
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
