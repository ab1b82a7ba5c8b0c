//! The permission table (docs/SEMANTICS.md, "Permissions"), decided here and only here.

use super::error::{FsError, FsErrorKind, FsResult};
use super::types::FileKind;
use crate::config::Authority;

/// What one account may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    pub authority: Authority,
    pub delete_enable: bool,
}

impl Policy {
    pub fn new(authority: Authority, delete_enable: bool) -> Self {
        Self {
            authority,
            delete_enable,
        }
    }

    /// Everything allowed (tools and tests).
    pub fn full() -> Self {
        Self::new(Authority::ReadWrite, true)
    }

    /// Listing a directory or reading a file's bytes.
    pub fn check_read(&self, what: &str, path: &str) -> FsResult<()> {
        if self.authority.can_read() {
            Ok(())
        } else {
            Err(FsError::new(
                FsErrorKind::PermissionDenied,
                format!(
                    "{what} {path}: this account may not read (authority {})",
                    self.authority.letters()
                ),
            ))
        }
    }

    /// Creating a file or directory, appending, renaming to a new name.
    pub fn check_write(&self, what: &str, path: &str) -> FsResult<()> {
        if self.authority.can_write() {
            Ok(())
        } else {
            Err(FsError::new(
                FsErrorKind::ReadOnly,
                format!(
                    "{what} {path}: this account is read-only (authority {})",
                    self.authority.letters()
                ),
            ))
        }
    }

    /// Deleting, or replacing an existing object (overwrite, rename onto it).
    pub fn check_destroy(&self, what: &str, path: &str) -> FsResult<()> {
        self.check_write(what, path)?;
        if self.delete_enable {
            Ok(())
        } else {
            Err(FsError::new(
                FsErrorKind::DeleteDenied,
                format!("{what} {path}: deleting or replacing data is disabled for this account (delete_enable = false)"),
            ))
        }
    }

    /// Whether the account can change anything at all (an R-only mount is mounted read-only).
    pub fn is_read_only(&self) -> bool {
        !self.authority.can_write()
    }

    /// What this account may do to an entry of this kind: the table above, as the adapters show it (MLSx `perm`
    /// facts, FUSE `access`). The checks themselves stay in `check_*`; this only describes them.
    pub fn permissions(&self, kind: FileKind) -> Permissions {
        let read = self.authority.can_read();
        let write = self.authority.can_write();
        let destroy = write && self.delete_enable;
        match kind {
            FileKind::File | FileKind::Symlink | FileKind::Special => Permissions {
                read,
                write: destroy,
                append: write,
                create: false,
                delete: destroy,
                rename: write,
                enter: false,
                list: false,
            },
            FileKind::Directory => Permissions {
                read,
                write,
                append: false,
                create: write,
                delete: destroy,
                rename: write,
                // Every account may `cd`, including W-only ones (the original refused them: a fault we fix).
                enter: true,
                list: read,
            },
        }
    }
}

/// What an account may do to one entry (see [`Policy::permissions`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Permissions {
    /// Read a file's bytes; for a directory, read its entries (same as `list`).
    pub read: bool,
    /// Replace a file's bytes (an overwrite destroys data, so it needs `delete_enable`); for a directory, change
    /// its entries (create, rename within).
    pub write: bool,
    /// Append to a file.
    pub append: bool,
    /// Create files and directories in a directory.
    pub create: bool,
    /// Delete it (a directory: when empty).
    pub delete: bool,
    /// Rename it to a new name.
    pub rename: bool,
    /// `cd` into a directory.
    pub enter: bool,
    /// List a directory.
    pub list: bool,
}

#[cfg(test)]
mod tests {
    use super::*;
    use Authority::*;

    #[test]
    fn the_table() {
        for (authority, delete_enable) in [
            (Read, true),
            (Read, false),
            (Write, true),
            (Write, false),
            (ReadWrite, true),
            (ReadWrite, false),
        ] {
            let p = Policy::new(authority, delete_enable);
            assert_eq!(p.check_read("read", "/f").is_ok(), authority != Write);
            assert_eq!(p.check_write("mkdir", "/d").is_ok(), authority != Read);
            assert_eq!(
                p.check_destroy("delete", "/f").is_ok(),
                authority != Read && delete_enable
            );
            if authority == Read {
                assert_eq!(
                    p.check_destroy("delete", "/f").unwrap_err().kind(),
                    FsErrorKind::ReadOnly
                );
            } else if !delete_enable {
                assert_eq!(
                    p.check_destroy("delete", "/f").unwrap_err().kind(),
                    FsErrorKind::DeleteDenied
                );
            }
            if authority == Write {
                assert_eq!(
                    p.check_read("list", "/").unwrap_err().kind(),
                    FsErrorKind::PermissionDenied
                );
            }
            // The description agrees with the checks.
            let file = p.permissions(FileKind::File);
            let dir = p.permissions(FileKind::Directory);
            assert_eq!(file.read, p.check_read("read", "/f").is_ok());
            assert_eq!(dir.list, p.check_read("list", "/d").is_ok());
            assert_eq!(file.append, p.check_write("append", "/f").is_ok());
            assert_eq!(dir.create, p.check_write("mkdir", "/d").is_ok());
            assert_eq!(file.write, p.check_destroy("overwrite", "/f").is_ok());
            assert_eq!(file.delete, p.check_destroy("delete", "/f").is_ok());
            assert!(dir.enter);
        }
    }
}
