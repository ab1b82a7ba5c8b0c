//! The FTP(S) frontend: our own protocol engine over `bucketfs`.

pub mod auth;
pub mod limits;
