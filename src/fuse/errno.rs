//! Every failure of the mount becomes an errno here, and only here.

use fuser::Errno;

use crate::bucketfs::{FsError, FsErrorKind};

/// Why the adapter itself refused a request (the core was not asked, or its answer needs no kind of its own).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// The kernel named an inode this mount no longer knows (forgotten, or removed by an unlink).
    StaleInode,
    /// The kernel named a file handle this mount never issued or already released.
    BadHandle,
    /// Object keys are UTF-8; the kernel passed a name that is not.
    NotUtf8,
    /// `renameat2` flags (`RENAME_NOREPLACE`, `RENAME_EXCHANGE`, …): tools fall back to a plain rename on EINVAL.
    RenameFlags,
    /// A write through a descriptor opened for reading.
    NotWritable,
    /// An operation the mount does not implement (`lseek` with SEEK_DATA, `fallocate`, `poll`,
    /// `copy_file_range`, …): ENOSYS, on which the kernel falls back to its generic way, or remembers the answer
    /// and tells programs EOPNOTSUPP.
    NotImplemented,
    /// An `ioctl` the mount does not know (all of them): ENOTTY, as for any file without that ioctl.
    UnknownIoctl,
    /// A node an object store cannot hold: a FIFO, socket or device (`mknod`), a hard link. EPERM: mknod(2) and
    /// link(2) say so for a filesystem without them.
    NodeType,
    /// An extended attribute in one of the kernel's namespaces, which a bucket does not keep: ENODATA, "no such
    /// attribute".
    NoXattr,
    /// An extended attribute's value or list is longer than the caller's buffer: ERANGE.
    XattrRange,
}

/// The errno of a core error kind. The choices that are not obvious:
/// - `DeleteDenied` is EPERM (the operation is forbidden outright), while the read side of the policy is EACCES
///   and an account without W is EROFS, as the policy table in docs/SEMANTICS.md says.
/// - `InvalidName` is EINVAL (control characters, surrounding whitespace; renaming a directory into itself is
///   EINVAL too, as rename(2) specifies); `NameTooLong` is ENAMETOOLONG.
/// - `RootDirectory` is EBUSY: rmdir(2) of a mount point says so.
/// - `StoreDenied` (the store refused our credentials) is EACCES; `RateLimited` and `Conflict` are EAGAIN: the
///   operation may succeed if tried again; `Unsupported` is ENOTSUP.
/// - `TooManyObjects` (a directory rename over `max_rename_objects`) is E2BIG, "Argument list too long": the
///   request is too big. Not EXDEV, because `mv` answers EXDEV by copying the whole tree through the mount and
///   deleting the originals — for a tree this large that is exactly what must not happen silently. Not EMFILE,
///   whose "Too many open files" sends users to `ulimit -n`.
/// - `Busy` (another writer has the file, or it is being written) is EBUSY.
/// - `NoSpace` (a file's metadata over the store's 2 KB) is ENOSPC, what setxattr(2) says when there is no room
///   for an attribute; `NotALink` is EINVAL (readlink(2)); `NoAttribute` is ENODATA (getxattr(2)).
/// - `Store` is EIO: the store failed or could not be reached.
pub(crate) fn errno_for(kind: FsErrorKind) -> Errno {
    match kind {
        FsErrorKind::NotFound => Errno::ENOENT,
        FsErrorKind::AlreadyExists => Errno::EEXIST,
        FsErrorKind::NotEmpty => Errno::ENOTEMPTY,
        FsErrorKind::NotADirectory => Errno::ENOTDIR,
        FsErrorKind::IsADirectory => Errno::EISDIR,
        FsErrorKind::PermissionDenied => Errno::EACCES,
        FsErrorKind::ReadOnly => Errno::EROFS,
        FsErrorKind::DeleteDenied => Errno::EPERM,
        FsErrorKind::TooLarge => Errno::EFBIG,
        FsErrorKind::NoSpace => Errno::ENOSPC,
        FsErrorKind::NotALink => Errno::EINVAL,
        FsErrorKind::NoAttribute => Errno::ENODATA,
        FsErrorKind::InvalidOffset => Errno::EINVAL,
        FsErrorKind::InvalidName => Errno::EINVAL,
        FsErrorKind::NameTooLong => Errno::ENAMETOOLONG,
        FsErrorKind::RootDirectory => Errno::EBUSY,
        FsErrorKind::TooManyObjects => Errno::E2BIG,
        FsErrorKind::Busy => Errno::EBUSY,
        FsErrorKind::StoreDenied => Errno::EACCES,
        FsErrorKind::RateLimited | FsErrorKind::Conflict => Errno::EAGAIN,
        FsErrorKind::Unsupported => Errno::ENOTSUP,
        FsErrorKind::Store => Errno::EIO,
    }
}

fn errno_for_refusal(refusal: Refusal) -> Errno {
    match refusal {
        Refusal::StaleInode => Errno::ENOENT,
        Refusal::BadHandle => Errno::EBADF,
        Refusal::NotUtf8 => Errno::EINVAL,
        Refusal::RenameFlags => Errno::EINVAL,
        Refusal::NotWritable => Errno::EBADF,
        Refusal::NotImplemented => Errno::ENOSYS,
        Refusal::UnknownIoctl => Errno::ENOTTY,
        Refusal::NodeType => Errno::EPERM,
        Refusal::NoXattr => Errno::ENODATA,
        Refusal::XattrRange => Errno::ERANGE,
    }
}

/// The symbolic name of an errno this mount answers with (the label of `cosftpd_fuse_errors_total`).
pub(crate) fn errno_name(errno: Errno) -> &'static str {
    match errno.code() {
        libc::ENOENT => "ENOENT",
        libc::EEXIST => "EEXIST",
        libc::ENOTEMPTY => "ENOTEMPTY",
        libc::ENOTDIR => "ENOTDIR",
        libc::EISDIR => "EISDIR",
        libc::EACCES => "EACCES",
        libc::EROFS => "EROFS",
        libc::EPERM => "EPERM",
        libc::EFBIG => "EFBIG",
        libc::EINVAL => "EINVAL",
        libc::ENAMETOOLONG => "ENAMETOOLONG",
        libc::EBUSY => "EBUSY",
        libc::E2BIG => "E2BIG",
        libc::EAGAIN => "EAGAIN",
        libc::ENOTSUP => "ENOTSUP",
        libc::EIO => "EIO",
        libc::EBADF => "EBADF",
        libc::ENOSYS => "ENOSYS",
        libc::ENOTTY => "ENOTTY",
        _ => "other",
    }
}

/// A failed FUSE request: the core's error, or the adapter's own refusal.
#[derive(Debug, Clone, thiserror::Error)]
pub(crate) enum FuseError {
    #[error(transparent)]
    Fs(#[from] FsError),
    #[error("{message}")]
    Refused { refusal: Refusal, message: String },
}

pub(crate) type FuseResult<T> = Result<T, FuseError>;

impl FuseError {
    pub(crate) fn refused(refusal: Refusal, message: impl Into<String>) -> Self {
        FuseError::Refused {
            refusal,
            message: message.into(),
        }
    }

    pub(crate) fn errno(&self) -> Errno {
        match self {
            FuseError::Fs(e) => errno_for(e.kind()),
            FuseError::Refused { refusal, .. } => errno_for_refusal(*refusal),
        }
    }

    /// Failures a user causes every day (a missing name, a denied operation) are logged quietly, and what
    /// programs probe routinely (ioctls, SEEK_DATA, special files) only at debug; store failures and lost
    /// uploads loudly. Logged inside the request's span, which names the operation.
    pub(crate) fn log(&self) {
        let errno = self.errno().code();
        match self {
            FuseError::Fs(e)
                if matches!(e.kind(), FsErrorKind::NotFound | FsErrorKind::NoAttribute) =>
            {
                tracing::debug!(errno, "{self}")
            }
            FuseError::Refused {
                refusal:
                    Refusal::NotImplemented
                    | Refusal::UnknownIoctl
                    | Refusal::NodeType
                    | Refusal::NoXattr
                    | Refusal::XattrRange,
                ..
            } => tracing::debug!(errno, "{self}"),
            FuseError::Fs(e)
                if matches!(
                    e.kind(),
                    FsErrorKind::Store
                        | FsErrorKind::TooLarge
                        | FsErrorKind::StoreDenied
                        | FsErrorKind::RateLimited
                ) =>
            {
                tracing::warn!(errno, "{self}")
            }
            FuseError::Refused {
                refusal: Refusal::BadHandle,
                ..
            } => tracing::warn!(errno, "{self}"),
            _ => tracing::info!(errno, "{self}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_errno_table() {
        use FsErrorKind::*;
        let table = [
            (NotFound, libc::ENOENT),
            (AlreadyExists, libc::EEXIST),
            (NotEmpty, libc::ENOTEMPTY),
            (NotADirectory, libc::ENOTDIR),
            (IsADirectory, libc::EISDIR),
            (PermissionDenied, libc::EACCES),
            (ReadOnly, libc::EROFS),
            (DeleteDenied, libc::EPERM),
            (TooLarge, libc::EFBIG),
            (NoSpace, libc::ENOSPC),
            (NotALink, libc::EINVAL),
            (NoAttribute, libc::ENODATA),
            (InvalidOffset, libc::EINVAL),
            (InvalidName, libc::EINVAL),
            (NameTooLong, libc::ENAMETOOLONG),
            (RootDirectory, libc::EBUSY),
            (TooManyObjects, libc::E2BIG),
            (Busy, libc::EBUSY),
            (Conflict, libc::EAGAIN),
            (StoreDenied, libc::EACCES),
            (RateLimited, libc::EAGAIN),
            (Unsupported, libc::ENOTSUP),
            (Store, libc::EIO),
        ];
        for (kind, errno) in table {
            let err = FuseError::from(FsError::new(kind, "x"));
            assert_eq!(err.errno().code(), errno, "{kind:?}");
        }
    }

    #[test]
    fn every_errno_of_the_tables_has_its_name() {
        use FsErrorKind::*;
        let kinds = [
            NotFound,
            AlreadyExists,
            NotEmpty,
            NotADirectory,
            IsADirectory,
            PermissionDenied,
            ReadOnly,
            DeleteDenied,
            TooLarge,
            InvalidOffset,
            InvalidName,
            NameTooLong,
            RootDirectory,
            TooManyObjects,
            Busy,
            StoreDenied,
            RateLimited,
            Conflict,
            Unsupported,
            Store,
        ];
        let refusals = [
            Refusal::StaleInode,
            Refusal::BadHandle,
            Refusal::NotUtf8,
            Refusal::RenameFlags,
            Refusal::NotWritable,
            Refusal::NotImplemented,
            Refusal::UnknownIoctl,
            Refusal::NodeType,
        ];
        let errnos = kinds
            .into_iter()
            .map(errno_for)
            .chain(refusals.into_iter().map(errno_for_refusal));
        for errno in errnos {
            assert_ne!(errno_name(errno), "other", "errno {}", errno.code());
        }
    }

    #[test]
    fn refusals() {
        assert_eq!(
            FuseError::refused(Refusal::StaleInode, "x").errno().code(),
            libc::ENOENT
        );
        for (refusal, errno) in [
            (Refusal::NotImplemented, libc::ENOSYS),
            (Refusal::UnknownIoctl, libc::ENOTTY),
            (Refusal::NodeType, libc::EPERM),
            (Refusal::NoXattr, libc::ENODATA),
            (Refusal::XattrRange, libc::ERANGE),
        ] {
            assert_eq!(FuseError::refused(refusal, "x").errno().code(), errno);
        }
    }
}
