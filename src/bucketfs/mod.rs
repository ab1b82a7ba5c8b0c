//! The filesystem core: names ↔ keys, directories, listing, streaming reads and writes, policy.
//! Knows nothing of FUSE or FTP.

mod types;

pub use types::{DirEntry, FileKind, Metadata};
