//! One error type for every file operation, with a stable kind the adapters map in one place each (errno in
//! `fuse/errno.rs`, reply codes in `ftp/fs_reply.rs`). The store's own error is kept as the source, so logs can
//! show the whole chain while users see one sentence.

use std::error::Error as StdError;
use std::fmt;
use std::sync::Arc;

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
    /// The root directory cannot be removed or renamed.
    RootDirectory,
    /// Over `single_file_max_size`.
    TooLarge,
    /// A file's metadata (times, mode, owner, extended attributes) over what the store keeps per object (2 KB).
    NoSpace,
    /// `readlink` of something that is not a symbolic link.
    NotALink,
    /// An extended attribute the file does not have.
    NoAttribute,
    /// A write or truncate at an offset an object store cannot honour, or a resume offset that is not the end.
    InvalidOffset,
    /// A name the store cannot hold (control characters, surrounding whitespace, a directory into itself, …).
    InvalidName,
    /// A key, or one name in it, longer than the store allows.
    NameTooLong,
    /// A directory rename over `max_rename_objects`.
    TooManyObjects,
    /// Another writer has this file open.
    Busy,
    /// A conditional write lost: another client created or changed the name meanwhile.
    Conflict,
    /// The store refused the request (HTTP 403: credentials, bucket policy).
    StoreDenied,
    /// The store asked us to slow down and kept asking through every retry.
    RateLimited,
    /// The store does not offer this operation.
    Unsupported,
    /// The store failed or could not be reached (after retries).
    Store,
}

/// A failed file operation: its kind, a message fit for a user (never a secret), and the cause, if any.
#[derive(Clone)]
pub struct FsError {
    kind: FsErrorKind,
    message: String,
    source: Option<Arc<dyn StdError + Send + Sync>>,
}

impl FsError {
    pub fn new(kind: FsErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
            source: None,
        }
    }

    /// Adds the error this one was caused by.
    pub fn with_source(mut self, source: impl StdError + Send + Sync + 'static) -> Self {
        self.source = Some(Arc::new(source));
        self
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

    pub(crate) fn busy(path: &str) -> Self {
        Self::new(
            FsErrorKind::Busy,
            format!("{path}: the file is being written"),
        )
    }

    /// A store failure during `context` (e.g. `stat /a/b`), sorted into a kind the user can act on. The store's
    /// error is kept as the source; its text goes into the message only for failures the user cannot otherwise
    /// explain (a plain store error), not for the kinds that say it themselves.
    pub(crate) fn store(context: &str, err: opendal::Error) -> Self {
        use opendal::ErrorKind as K;
        let (kind, what) = match err.kind() {
            K::NotFound => (FsErrorKind::NotFound, "not found".to_string()),
            K::NotADirectory => (FsErrorKind::NotADirectory, "not a directory".to_string()),
            K::IsADirectory => (FsErrorKind::IsADirectory, "is a directory".to_string()),
            K::AlreadyExists => (FsErrorKind::AlreadyExists, "already exists".to_string()),
            K::ConditionNotMatch => (
                FsErrorKind::Conflict,
                "changed by another client meanwhile".to_string(),
            ),
            K::PermissionDenied => (
                FsErrorKind::StoreDenied,
                "the store refused access (check the account's keys and the bucket policy)"
                    .to_string(),
            ),
            K::RateLimited => (
                FsErrorKind::RateLimited,
                "the store asks to slow down; try again later".to_string(),
            ),
            K::Unsupported => (
                FsErrorKind::Unsupported,
                "not supported by this store".to_string(),
            ),
            _ => (
                FsErrorKind::Store,
                format!("store error: {}", one_line(&err)),
            ),
        };
        Self::new(kind, format!("{context}: {what}")).with_source(err)
    }
}

/// OpenDAL's Display of an error is one line already; this guards against a multi-line message from a store
/// (an HTML error page, say) reaching an FTP reply or a log line.
fn one_line(err: &opendal::Error) -> String {
    let text = err.to_string();
    let mut line: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    const MAX: usize = 400;
    if line.len() > MAX {
        let mut cut = MAX;
        while !line.is_char_boundary(cut) {
            cut -= 1;
        }
        line.truncate(cut);
        line.push('…');
    }
    line
}

impl fmt::Display for FsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

/// Debug shows the kind, the message and the source's Display — never a backtrace the source may have captured
/// (OpenDAL errors carry one when RUST_BACKTRACE is set, and symbolising it costs seconds and megabytes).
impl fmt::Debug for FsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = f.debug_struct("FsError");
        s.field("kind", &self.kind).field("message", &self.message);
        if let Some(source) = &self.source {
            s.field("source", &format_args!("{source}"));
        }
        s.finish()
    }
}

impl StdError for FsError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        self.source
            .as_deref()
            .map(|e| e as &(dyn StdError + 'static))
    }
}

pub type FsResult<T> = Result<T, FsError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_errors_keep_their_kind_and_source() {
        use opendal::ErrorKind as K;
        let cases = [
            (K::NotFound, FsErrorKind::NotFound),
            (K::PermissionDenied, FsErrorKind::StoreDenied),
            (K::RateLimited, FsErrorKind::RateLimited),
            (K::ConditionNotMatch, FsErrorKind::Conflict),
            (K::Unexpected, FsErrorKind::Store),
        ];
        for (store_kind, want) in cases {
            let err = FsError::store("stat /a", opendal::Error::new(store_kind, "boom"));
            assert_eq!(err.kind(), want, "{store_kind:?}");
            assert!(err.message().starts_with("stat /a: "), "{err}");
            let source = err.source().expect("the store error is the source");
            assert!(source.to_string().contains("boom"), "{source}");
        }
    }

    #[test]
    fn a_plain_store_error_says_what_the_store_said_on_one_line() {
        let err = FsError::store(
            "read /f",
            opendal::Error::new(opendal::ErrorKind::Unexpected, "line one\nline two"),
        );
        assert!(!err.message().contains('\n'), "{err}");
        assert!(err.message().contains("line one line two"), "{err}");
    }
}
