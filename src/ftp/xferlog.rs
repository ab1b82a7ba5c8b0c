//! The transfer log: one event per upload, download, delete, rename, mkdir and rmdir, with the user, the client's
//! address, the path, bytes, seconds and the result; and the matching counters (`ftp::metrics`).
//!
//! The event has target `xferlog` and no parent span (the session's span would repeat the user and the peer), at
//! INFO: the log filter shows it whatever `log_level` says, and `logging::xferlog` writes it to `xferlog_file`. Its
//! fields are that module's contract.

use std::net::IpAddr;
use std::time::Duration;

use super::metrics;
use super::reply::ReplyCode;
use crate::logging::XFERLOG_TARGET;

/// What was done.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Op {
    Upload,
    Download,
    Delete,
    Rename,
    Mkdir,
    Rmdir,
}

impl Op {
    fn name(self) -> &'static str {
        match self {
            Op::Upload => "upload",
            Op::Download => "download",
            Op::Delete => "delete",
            Op::Rename => "rename",
            Op::Mkdir => "mkdir",
            Op::Rmdir => "rmdir",
        }
    }
}

/// How it ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Ending {
    /// The reply the client got (or would have got).
    Replied(ReplyCode),
    /// The session ended under the transfer (the client went away, the server stopped): nothing was replied, and an
    /// upload was not stored.
    Cut,
}

impl Ending {
    fn result(self) -> &'static str {
        match self {
            Ending::Replied(code) if !code.is_failure() => "ok",
            Ending::Replied(ReplyCode::ConnectionClosed) | Ending::Cut => "aborted",
            Ending::Replied(_) => "failed",
        }
    }

    fn code(self) -> Option<u16> {
        match self {
            Ending::Replied(code) => Some(code.number()),
            Ending::Cut => None,
        }
    }
}

/// One line of the transfer log.
pub(super) struct Entry<'a> {
    pub op: Op,
    pub user: &'a str,
    pub client: IpAddr,
    pub path: &'a str,
    /// The new name of a rename.
    pub to: Option<&'a str>,
    pub bytes: u64,
    pub took: Duration,
    pub ending: Ending,
    pub ascii: bool,
}

/// Logs `entry` and counts it.
pub(super) fn record(entry: &Entry<'_>) {
    let result = entry.ending.result();
    // Milliseconds are enough for a log line.
    let seconds = (entry.took.as_secs_f64() * 1000.0).round() / 1000.0;
    tracing::info!(
        target: XFERLOG_TARGET,
        parent: None,
        user = entry.user,
        client = %entry.client,
        path = entry.path,
        to = entry.to,
        bytes = entry.bytes,
        seconds,
        result,
        code = entry.ending.code(),
        mode = if entry.ascii { "ascii" } else { "binary" },
        "{}",
        entry.op.name()
    );
    match entry.op {
        Op::Upload | Op::Download => metrics::transfer(entry.op.name(), result, entry.bytes),
        Op::Delete | Op::Rename | Op::Mkdir | Op::Rmdir => {
            metrics::operation(entry.op.name(), result)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results() {
        let result = |ending: Ending| ending.result();
        assert_eq!(
            result(Ending::Replied(ReplyCode::ClosingDataConnection)),
            "ok"
        );
        assert_eq!(result(Ending::Replied(ReplyCode::PathCreated)), "ok");
        assert_eq!(
            result(Ending::Replied(ReplyCode::ConnectionClosed)),
            "aborted"
        );
        assert_eq!(result(Ending::Cut), "aborted");
        assert_eq!(result(Ending::Replied(ReplyCode::LocalError)), "failed");
        assert_eq!(
            result(Ending::Replied(ReplyCode::FileUnavailable)),
            "failed"
        );
    }
}
