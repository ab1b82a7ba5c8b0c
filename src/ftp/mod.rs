//! The FTP(S) frontend: our own protocol engine over `bucketfs`.

pub mod auth;
pub mod data;
pub mod fs_reply;
pub mod limits;
pub mod stream;
pub mod tls;
pub mod transfer;
