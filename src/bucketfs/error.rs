//! One error type for every file operation, with a stable kind the adapters map in one place each.

use std::fmt;

/// What went wrong, independent of FUSE or FTP. Adapters map these to errno / reply codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FsErrorKind {
    NotFound,
    AlreadyExists,
    NotEmpty,
    NotADirectory,
    IsADirectory,
    /// Read side of the policy (listing or reading without R).
    PermissionDenied,
    /// Write side of the policy for an account without W.
    ReadOnly,
    /// Delete or overwrite while `delete_enable = false`.
    DeleteDenied,
    /// Over `single_file_max_size`.
    TooLarge,
    /// A write or truncate at an offset an object store cannot honour.
    InvalidOffset,
    /// A name the store cannot hold (too long, control characters, …).
    InvalidName,
    /// A directory rename over `max_rename_objects`.
    TooManyObjects,
    /// Another writer has this file open.
    Busy,
    /// The store failed or could not be reached.
    Store,
}

/// A failed file operation: its kind, and a message fit for a user (never a secret).
#[derive(Debug, Clone, thiserror::Error)]
pub struct FsError {
    kind: FsErrorKind,
    message: String,
}

impl FsError {
    pub fn new(kind: FsErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
        }
    }

    pub fn kind(&self) -> FsErrorKind {
        self.kind
    }

    pub fn message(&self) -> &str {
        &self.message
    }

    pub(crate) fn not_found(path: &str) -> Self {
        Self::new(
            FsErrorKind::NotFound,
            format!("{path}: no such file or directory"),
        )
    }

    pub(crate) fn store(context: &str, err: opendal::Error) -> Self {
        if err.kind() == opendal::ErrorKind::NotFound {
            return Self::new(FsErrorKind::NotFound, format!("{context}: not found"));
        }
        Self::new(FsErrorKind::Store, format!("{context}: store error: {err}"))
    }
}

impl fmt::Display for FsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

pub type FsResult<T> = Result<T, FsError>;
