//! The FTP(S) frontend: our own protocol engine over `bucketfs`.
//!
//! The modules here are the pure, I/O-free half of the engine: they turn bytes from the control connection into
//! typed commands, typed replies back into bytes, directory entries into listing lines, and raw path arguments into
//! normalised virtual paths. The session state machine and the sockets build on them.

pub mod addr;
pub mod command;
pub mod listing;
pub mod path;
pub mod reply;
