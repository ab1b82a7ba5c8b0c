//! The FUSE mount: a thin adapter from the kernel's inode-and-handle protocol to `BucketFs`'s paths.
//!
//! FUSE translates, `bucketfs` decides: every rule (the policy table, what a write may do, what a name may be)
//! lives in the core; this module maps inodes to paths, file handles to readers and uploads, and errors to
//! errno (in `errno.rs`, one place). Each request runs as a task on the tokio runtime given to `mount`.
//!
//! What programs see:
//! - Files are written sequentially: a new file, `O_TRUNC`, `O_APPEND`, or `ftruncate(0)` then writing from 0.
//!   Another offset is EINVAL, and a failed write abandons the upload, so the file is left as it was.
//! - A file is committed (the object appears) when the process that opened it closes it after writing, or at
//!   `fsync`, or when its last descriptor is released; later writes through another copy of the descriptor
//!   are EINVAL. Commit errors (EIO, EFBIG, …) are returned by that `close()` or `fsync()`.
//! - A file open for writing cannot be read through the same descriptor (EBADF).
//! - Owner and mode are the mount's (`mount_uid`/`mount_gid`, `file_mode`/`dir_mode`), less what the account's
//!   policy rules out; the kernel enforces them for local users other than root (`default_permissions`).
//! - Mode, owner and times cannot be changed; `chmod`, `chown` and `touch` succeed and change nothing.
//! - `mknod` of a regular file creates an empty one; other node types, hard and symbolic links are EPERM.
//! - `renameat2` flags are EINVAL (tools then fall back to a plain rename).

mod attr;
mod errno;
mod filesystem;
mod handles;
mod inodes;
pub mod metrics;
mod mount;
mod mountinfo;
mod ops;
mod readahead;

pub use mount::{mount, MountError, MountHandle, MountOptions};
