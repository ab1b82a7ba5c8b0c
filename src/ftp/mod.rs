//! The FTP(S) frontend: our own protocol engine over `bucketfs`.
//!
//! Pure, I/O-free parts: `command` (bytes → typed commands), `reply` (typed replies → bytes), `listing`
//! (directory entries → LIST/NLST/MLSx lines), `path` (raw arguments → normalised virtual paths), `addr`
//! (PASV/EPSV/PORT/EPRT). The engine: `server` (listeners, admission), `session` (the state machine), `data` and
//! `transfer` (data connections and the transfers over them), `auth`, `limits`, `tls`, `stream`, and `fs_reply`,
//! the one place a filesystem error becomes a reply code.

pub mod addr;
pub mod auth;
pub mod command;
pub mod data;
pub mod encoding;
pub mod fs_reply;
pub mod limits;
pub mod listing;
pub mod metrics;
pub mod proxy;
pub mod reply;
pub mod server;
mod session;
pub mod stream;
pub mod tls;
pub mod transfer;
mod xferlog;
