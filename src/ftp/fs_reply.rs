//! The one place where a failed file operation becomes an FTP reply: the core's `FsError` (by its kind) and a
//! path argument that cannot be decoded.

use super::encoding::PathError;
use super::reply::{Reply, ReplyCode};
use crate::bucketfs::{FsError, FsErrorKind};

/// The reply code for a failed file operation (RFC 959 §4.2).
pub fn code_for(err: &FsError) -> ReplyCode {
    match err.kind() {
        FsErrorKind::NotFound
        | FsErrorKind::AlreadyExists
        | FsErrorKind::NotEmpty
        | FsErrorKind::NotADirectory
        | FsErrorKind::IsADirectory
        | FsErrorKind::PermissionDenied
        | FsErrorKind::ReadOnly
        | FsErrorKind::DeleteDenied
        | FsErrorKind::RootDirectory
        | FsErrorKind::TooManyObjects
        | FsErrorKind::StoreDenied
        | FsErrorKind::NotALink
        | FsErrorKind::NoAttribute
        | FsErrorKind::Unsupported => ReplyCode::FileUnavailable,
        // "Requested file action aborted. Exceeded storage allocation."
        FsErrorKind::TooLarge | FsErrorKind::NoSpace => ReplyCode::ExceededStorageAllocation,
        // "File name not allowed."
        FsErrorKind::InvalidName | FsErrorKind::NameTooLong => ReplyCode::FileNameNotAllowed,
        // "Requested action not taken: invalid REST parameter." (RFC 3659 §5.5)
        FsErrorKind::InvalidOffset => ReplyCode::InvalidRestart,
        // "Requested file action not taken. File unavailable (e.g., file busy)." Transient: try again later.
        FsErrorKind::Busy | FsErrorKind::Conflict | FsErrorKind::RateLimited => ReplyCode::FileBusy,
        // "Requested action aborted: local error in processing."
        FsErrorKind::Store => ReplyCode::LocalError,
    }
}

/// The reply for a failed file operation: its code and the core's message.
pub fn reply_for(err: &FsError) -> Reply {
    Reply::new(code_for(err), err.to_string())
}

/// A path argument that is not text in the session's encoding: 553, "file name not allowed".
pub fn path_reply(err: &PathError) -> Reply {
    Reply::new(ReplyCode::FileNameNotAllowed, format!("{err}."))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn denials_are_550_and_limits_have_their_own_codes() {
        let code = |kind| code_for(&FsError::new(kind, "x")).number();
        assert_eq!(code(FsErrorKind::PermissionDenied), 550);
        assert_eq!(code(FsErrorKind::ReadOnly), 550);
        assert_eq!(code(FsErrorKind::DeleteDenied), 550);
        assert_eq!(code(FsErrorKind::RootDirectory), 550);
        assert_eq!(code(FsErrorKind::NotFound), 550);
        assert_eq!(code(FsErrorKind::TooLarge), 552);
        assert_eq!(code(FsErrorKind::NoSpace), 552);
        assert_eq!(code(FsErrorKind::InvalidName), 553);
        assert_eq!(code(FsErrorKind::NameTooLong), 553);
        assert_eq!(code(FsErrorKind::InvalidOffset), 554);
        assert_eq!(code(FsErrorKind::Busy), 450);
        assert_eq!(code(FsErrorKind::RateLimited), 450);
        assert_eq!(code(FsErrorKind::Store), 451);
        assert_eq!(path_reply(&PathError::NotUtf8).code.number(), 553);
    }
}
