//! cosftpd: FTP(S) users and local programs on top of object storage.
//!
//! Rooms: `config` → `storage` → `bucketfs` → (`fuse`, `ftp`) → `daemon`; docs/ARCHITECTURE.md says where each
//! rule lives and how a byte travels.

// No unwrap()/expect() on what input or the network can reach: product code returns the error, or allows the lint
// at the one site with a comment saying why it cannot panic. Tests may panic: that is how they fail.
#![cfg_attr(not(test), warn(clippy::unwrap_used, clippy::expect_used))]

pub mod bucketfs;
pub mod cluster;
pub mod config;
pub mod daemon;
pub mod ftp;
pub mod fuse;
pub mod logging;
pub mod storage;

/// `0.1.0 (git 1a2b3c4)`: the package version and the commit it was built from (`-dirty` when the tree had
/// changes), or the version alone when built outside a git checkout (see build.rs).
pub const VERSION: &str = {
    const COMMIT: &str = env!("COSFTPD_GIT_COMMIT");
    if COMMIT.is_empty() {
        env!("CARGO_PKG_VERSION")
    } else {
        concat!(
            env!("CARGO_PKG_VERSION"),
            " (git ",
            env!("COSFTPD_GIT_COMMIT"),
            ")"
        )
    }
};
