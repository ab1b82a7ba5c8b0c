//! The signals the daemon answers: SIGTERM and SIGINT stop it (a second one stops it at once), SIGHUP reloads.

use tracing::info;

use super::DaemonError;

/// What a signal asks of the daemon.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum SignalEvent {
    /// SIGTERM, SIGINT: stop accepting, let transfers finish (`shutdown_grace`), unmount and exit.
    Stop,
    /// SIGHUP: read the config again and apply what can be applied.
    Reload,
}

/// The signals the daemon answers, caught from `install` on (one that arrives while the daemon is busy is kept
/// for the next `next`; several of one kind in a row count as one).
pub(super) struct Signals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
    hup: tokio::signal::unix::Signal,
}

impl Signals {
    pub(super) fn install() -> Result<Self, DaemonError> {
        use tokio::signal::unix::{signal, SignalKind};
        Ok(Self {
            term: signal(SignalKind::terminate()).map_err(DaemonError::Signal)?,
            int: signal(SignalKind::interrupt()).map_err(DaemonError::Signal)?,
            hup: signal(SignalKind::hangup()).map_err(DaemonError::Signal)?,
        })
    }

    /// Waits for the next signal (one that arrived since `install` is returned at once).
    pub(super) async fn next(&mut self) -> SignalEvent {
        tokio::select! {
            _ = self.term.recv() => {
                info!("SIGTERM received");
                SignalEvent::Stop
            }
            _ = self.int.recv() => {
                info!("SIGINT received");
                SignalEvent::Stop
            }
            _ = self.hup.recv() => {
                info!("SIGHUP received");
                SignalEvent::Reload
            }
        }
    }

    /// Waits for the next SIGTERM or SIGINT; a SIGHUP meanwhile is ignored (the daemon is stopping).
    pub(super) async fn next_stop(&mut self) {
        while self.next().await != SignalEvent::Stop {
            info!("SIGHUP ignored: stopping");
        }
    }
}
