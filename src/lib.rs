//! cosftpd: FTP(S) users and local programs on top of object storage.
//!
//! Rooms (see `docs/DESIGN.md` in the shared notes): `config` → `storage` → `bucketfs` → (`fuse`, `ftp`) → `daemon`.

// No unwrap()/expect() on what input or the network can reach: product code returns the error, or allows the lint
// at the one site with a comment saying why it cannot panic. Tests may panic: that is how they fail.
#![cfg_attr(not(test), warn(clippy::unwrap_used, clippy::expect_used))]

pub mod bucketfs;
pub mod config;
pub mod daemon;
pub mod ftp;
pub mod fuse;
pub mod logging;
pub mod storage;
