//! Notifications to systemd for `Type=notify` units (contrib/systemd/cosftpd.service).
//!
//! `systemctl start` returns, and units ordered after cosftpd start, only once the mounts and the FTP listener are
//! up, not when the process has merely been forked; `systemctl status` shows "reloading" while a SIGHUP is applied
//! and "deactivating" while transfers finish. Outside systemd (no `NOTIFY_SOCKET`) nothing is sent.

use sd_notify::NotifyState;
use tracing::warn;

/// Every mount and the FTP listener are up (also: a reload is over, applied or refused).
pub fn ready(status: &str) {
    send(&[NotifyState::Ready, NotifyState::Status(status)]);
}

/// A reload has begun; `ready` ends it. systemd wants the time of the request with it (`Type=notify-reload`).
pub fn reloading() {
    match NotifyState::monotonic_usec_now() {
        Ok(now) => send(&[
            NotifyState::Reloading,
            now,
            NotifyState::Status("reloading the config"),
        ]),
        Err(_) => send(&[
            NotifyState::Reloading,
            NotifyState::Status("reloading the config"),
        ]),
    }
}

/// Shutdown has begun (systemd then shows "deactivating" rather than a failure while transfers finish).
pub fn stopping() {
    send(&[NotifyState::Stopping, NotifyState::Status("stopping")]);
}

fn send(states: &[NotifyState<'_>]) {
    // The service manager is told about the daemon, not the other way round: a lost notification is logged, and
    // systemd's own start timeout handles a daemon that never reports ready.
    if let Err(e) = sd_notify::notify(states) {
        warn!(error = %e, "cannot notify the service manager (NOTIFY_SOCKET)");
    }
}
