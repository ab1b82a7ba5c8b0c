//! What the FTP room counts, through the `metrics` facade (a no-op unless the daemon installed the Prometheus
//! recorder, `metrics_address`). The session calls these where it already logs; nothing here decides anything.

use metrics::{counter, describe_counter, describe_gauge, gauge, Unit};

const SESSIONS: &str = "cosftpd_ftp_sessions";
const REFUSED: &str = "cosftpd_ftp_connections_refused_total";
const LOGINS: &str = "cosftpd_ftp_logins_total";
const LOCKOUTS: &str = "cosftpd_ftp_lockouts_total";
const TRANSFERS: &str = "cosftpd_ftp_transfers_total";
const BYTES: &str = "cosftpd_ftp_transfer_bytes_total";
const OPERATIONS: &str = "cosftpd_ftp_operations_total";

pub fn describe() {
    describe_gauge!(
        SESSIONS,
        "FTP control connections now, by state: unauthenticated (not logged in yet), idle (logged in), \
         transferring (a transfer or listing running)"
    );
    describe_counter!(
        REFUSED,
        "FTP connections refused on arrival, by reason (max_connection_num, max_connection_per_ip, locked_out)"
    );
    describe_counter!(LOGINS, "FTP logins, by result (ok, failed)");
    describe_counter!(
        LOCKOUTS,
        "Client addresses locked out after login_fail_limit failed logins"
    );
    describe_counter!(
        TRANSFERS,
        "FTP file transfers ended, by direction (upload, download) and result (ok, failed, aborted)"
    );
    describe_counter!(
        BYTES,
        Unit::Bytes,
        "Bytes of FTP file transfers, by direction and result (an aborted upload's bytes were not stored)"
    );
    describe_counter!(
        OPERATIONS,
        "FTP file operations without data, by op (delete, rename, mkdir, rmdir) and result (ok, failed)"
    );
}

/// Where a session is, for the `cosftpd_ftp_sessions` gauge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum SessionState {
    Unauthenticated,
    Idle,
    Transferring,
}

impl SessionState {
    fn label(self) -> &'static str {
        match self {
            SessionState::Unauthenticated => "unauthenticated",
            SessionState::Idle => "idle",
            SessionState::Transferring => "transferring",
        }
    }
}

/// A session's place in the gauge: counted from creation, moved by `set`, gone when dropped (however the session
/// ends).
pub(super) struct SessionGauge {
    state: SessionState,
}

impl SessionGauge {
    pub(super) fn new() -> Self {
        let state = SessionState::Unauthenticated;
        gauge!(SESSIONS, "state" => state.label()).increment(1.0);
        Self { state }
    }

    pub(super) fn set(&mut self, state: SessionState) {
        if state != self.state {
            gauge!(SESSIONS, "state" => self.state.label()).decrement(1.0);
            gauge!(SESSIONS, "state" => state.label()).increment(1.0);
            self.state = state;
        }
    }
}

impl Drop for SessionGauge {
    fn drop(&mut self) {
        gauge!(SESSIONS, "state" => self.state.label()).decrement(1.0);
    }
}

pub(super) fn connection_refused(reason: &'static str) {
    counter!(REFUSED, "reason" => reason).increment(1);
}

pub(super) fn login(ok: bool) {
    counter!(LOGINS, "result" => if ok { "ok" } else { "failed" }).increment(1);
}

pub(super) fn lockout() {
    counter!(LOCKOUTS).increment(1);
}

pub(super) fn transfer(direction: &'static str, result: &'static str, bytes: u64) {
    counter!(TRANSFERS, "direction" => direction, "result" => result).increment(1);
    counter!(BYTES, "direction" => direction, "result" => result).increment(bytes);
}

pub(super) fn operation(op: &'static str, result: &'static str) {
    counter!(OPERATIONS, "op" => op, "result" => result).increment(1);
}
