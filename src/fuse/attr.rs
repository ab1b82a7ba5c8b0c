//! Core metadata → the attributes the kernel shows (`stat`, `ls -l`).

use std::time::{Duration, SystemTime};

use fuser::{FileAttr, FileType, INodeNo};

use crate::bucketfs::{FileKind, Metadata};

/// `st_blksize`: programs size their buffers by it (`cp` reads and writes max(128 KiB, blksize) at a time), and
/// every FUSE request costs a round trip through the kernel, so 1 MiB — the mount's `max_write` — is a good
/// unit for an object store.
pub(crate) const BLOCK_SIZE: u32 = 1024 * 1024;

/// Owner, permission bits and cache lifetime of everything the mount shows.
#[derive(Debug, Clone)]
pub(crate) struct AttrMaker {
    pub uid: u32,
    pub gid: u32,
    pub file_mode: u16,
    pub dir_mode: u16,
    /// How long the kernel may trust an answer: the core's own `metadata_ttl`.
    pub ttl: Duration,
}

impl AttrMaker {
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
            perm: perm & 0o7777,
            nlink,
            uid: self.uid,
            gid: self.gid,
            rdev: 0,
            blksize: BLOCK_SIZE,
            flags: 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_and_directories() {
        let maker = AttrMaker {
            uid: 7,
            gid: 8,
            file_mode: 0o640,
            dir_mode: 0o750,
            ttl: Duration::from_secs(1),
        };
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
}
