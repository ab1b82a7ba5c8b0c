//! cosftpd: FTP(S) users and local programs on top of object storage.
//!
//! Rooms (see `docs/DESIGN.md` in the shared notes): `config` → `storage` → `bucketfs` → (`fuse`, `ftp`) → `daemon`.

pub mod bucketfs;
pub mod config;
pub mod daemon;
pub mod ftp;
pub mod fuse;
pub mod logging;
pub mod storage;
