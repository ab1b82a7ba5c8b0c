//! The one place where a filesystem error becomes an FTP reply code.

use crate::bucketfs::{FsError, FsErrorKind};

/// The reply code for a failed file operation (RFC 959 §4.2).
pub fn code_for(err: &FsError) -> u16 {
    match err.kind() {
        FsErrorKind::NotFound
        | FsErrorKind::AlreadyExists
        | FsErrorKind::NotEmpty
        | FsErrorKind::NotADirectory
        | FsErrorKind::IsADirectory
        | FsErrorKind::PermissionDenied
        | FsErrorKind::ReadOnly
        | FsErrorKind::DeleteDenied
        | FsErrorKind::TooManyObjects => 550,
        // "Requested file action aborted. Exceeded storage allocation."
        FsErrorKind::TooLarge => 552,
        // "File name not allowed."
        FsErrorKind::InvalidName => 553,
        // "Requested action not taken: invalid REST parameter." (RFC 1123 / common usage)
        FsErrorKind::InvalidOffset => 554,
        // "Requested file action not taken. File unavailable (e.g., file busy)."
        FsErrorKind::Busy => 450,
        // "Requested action aborted: local error in processing."
        FsErrorKind::Store => 451,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn denials_are_550_and_limits_have_their_own_codes() {
        let code = |kind| code_for(&FsError::new(kind, "x"));
        assert_eq!(code(FsErrorKind::PermissionDenied), 550);
        assert_eq!(code(FsErrorKind::ReadOnly), 550);
        assert_eq!(code(FsErrorKind::DeleteDenied), 550);
        assert_eq!(code(FsErrorKind::NotFound), 550);
        assert_eq!(code(FsErrorKind::TooLarge), 552);
        assert_eq!(code(FsErrorKind::InvalidName), 553);
        assert_eq!(code(FsErrorKind::InvalidOffset), 554);
        assert_eq!(code(FsErrorKind::Store), 451);
    }
}
