//! Putting a finished file in place: rename(2) when it may replace what is there, and an atomic
//! "create, never replace" when it may not.
//!
//! [`Overwrite::Forbid`] tries, in order:
//! 1. `renameat2(RENAME_NOREPLACE)`: atomic, one step (ext4, xfs, btrfs, tmpfs, overlayfs on current kernels);
//! 2. `link(2)` to the destination, then unlink of the temporary name: atomic as well (EEXIST when the
//!    destination exists), for filesystems without RENAME_NOREPLACE such as NFS;
//! 3. where neither exists (filesystems without hard links, e.g. FAT or some FUSE filesystems): a check that
//!    the destination is absent, then rename(2). This last step is **not** atomic: a writer outside cosftpd
//!    can slip in between (cosftpd's own writers are serialised by the core's per-key lease).

use std::io;
use std::path::Path;

use rustix::fs::{renameat_with, RenameFlags, CWD};
use tracing::debug;

use crate::storage::objects::Overwrite;

#[derive(Debug)]
pub(super) enum CommitError {
    /// Something exists at the destination and `Overwrite::Forbid` was asked.
    Exists,
    Io(io::Error),
}

impl From<io::Error> for CommitError {
    fn from(e: io::Error) -> Self {
        CommitError::Io(e)
    }
}

/// Moves `temp` to `dest` (same filesystem). On `Exists`, `temp` is left where it was.
pub(super) fn commit(temp: &Path, dest: &Path, overwrite: Overwrite) -> Result<(), CommitError> {
    if overwrite == Overwrite::Allow {
        return std::fs::rename(temp, dest).map_err(CommitError::Io);
    }
    match renameat_with(CWD, temp, CWD, dest, RenameFlags::NOREPLACE) {
        Ok(()) => return Ok(()),
        Err(rustix::io::Errno::EXIST) => return Err(CommitError::Exists),
        Err(e) if !unsupported(e) => return Err(CommitError::Io(e.into())),
        Err(e) => debug!(error = %e, "RENAME_NOREPLACE unsupported here; trying link(2)"),
    }
    match std::fs::hard_link(temp, dest) {
        Ok(()) => {
            // The object is in place; a leftover temporary name would only waste space.
            if let Err(e) = std::fs::remove_file(temp) {
                debug!(path = %temp.display(), error = %e, "cannot remove the temporary name");
            }
            return Ok(());
        }
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => return Err(CommitError::Exists),
        Err(e) if !link_unsupported(&e) => return Err(CommitError::Io(e)),
        Err(e) => debug!(error = %e, "link(2) unsupported here; check, then rename"),
    }
    match std::fs::symlink_metadata(dest) {
        Ok(_) => Err(CommitError::Exists),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            std::fs::rename(temp, dest).map_err(CommitError::Io)
        }
        Err(e) => Err(CommitError::Io(e)),
    }
}

fn unsupported(e: rustix::io::Errno) -> bool {
    use rustix::io::Errno;
    matches!(e, Errno::INVAL | Errno::NOSYS | Errno::OPNOTSUPP)
}

fn link_unsupported(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EPERM | libc::EOPNOTSUPP | libc::ENOSYS | libc::EMLINK)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forbid_refuses_an_existing_destination_and_keeps_the_temp() {
        let dir = tempfile::tempdir().unwrap();
        let (temp, dest) = (dir.path().join("t"), dir.path().join("d"));
        std::fs::write(&temp, "new").unwrap();
        std::fs::write(&dest, "old").unwrap();
        assert!(matches!(
            commit(&temp, &dest, Overwrite::Forbid),
            Err(CommitError::Exists)
        ));
        assert_eq!(std::fs::read(&dest).unwrap(), b"old");
        assert_eq!(std::fs::read(&temp).unwrap(), b"new");
        commit(&temp, &dest, Overwrite::Allow).unwrap();
        assert_eq!(std::fs::read(&dest).unwrap(), b"new");
        assert!(!temp.exists());
    }

    #[test]
    fn forbid_creates_an_absent_destination() {
        let dir = tempfile::tempdir().unwrap();
        let (temp, dest) = (dir.path().join("t"), dir.path().join("d"));
        std::fs::write(&temp, "new").unwrap();
        commit(&temp, &dest, Overwrite::Forbid).unwrap();
        assert_eq!(std::fs::read(&dest).unwrap(), b"new");
        assert!(!temp.exists());
    }
}
