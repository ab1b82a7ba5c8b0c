//! Whether an account's store answers: what `GET /healthz` and the `cosftpd_store_up` gauge report.
//!
//! The decision is one cheap request, the start-up check (`check`: the first entry of a listing of the root), run
//! again every [`PROBE_INTERVAL`] and at once when a request of either client has just failed with a temporary
//! error (a refused or reset connection, a timeout, 5xx, 429: the errors that are retried). The store is up when its
//! last probe succeeded. A request failing does not by itself mark the store down — a download cancelled by its
//! client is not the store's fault — it only makes the next probe come sooner, so a dead store is reported within
//! its time to error (15 s at most, see `objects::s3::retry`) rather than at the next period.

use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, SystemTime};

use opendal::Operator;
use tokio::sync::Notify;
use tracing::{info, warn};

use super::metrics;
use super::silence::StoreSilence;
use crate::logging::ErrorChain;

/// How often every store is probed while nothing fails.
pub const PROBE_INTERVAL: Duration = Duration::from_secs(10);
/// Probes triggered by failures come at most this often.
const MIN_PROBE_GAP: Duration = Duration::from_secs(1);

/// What the last probe found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreStatus {
    /// No probe has answered yet (the daemon started with `--no-check`, or the first probe is under way).
    Unknown,
    Up,
    /// The probe failed; why.
    Down(String),
}

/// One account's store health. Cheap to clone; the clones share one state.
#[derive(Clone, Debug)]
pub struct StoreHealth {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    /// The account's user name, the label of `cosftpd_store_up`.
    user: String,
    status: Mutex<(StoreStatus, Option<SystemTime>)>,
    probe_now: Notify,
    /// The operator probes go through (the account's, without OpenDAL's metrics); set once the store is built,
    /// which needs this value first (its retries report here).
    probe: OnceLock<Operator>,
    /// The time-to-error clock both of the store's clients share.
    silence: StoreSilence,
}

impl StoreHealth {
    pub fn new(user: &str) -> Self {
        Self {
            inner: Arc::new(Inner {
                user: user.to_string(),
                status: Mutex::new((StoreStatus::Unknown, None)),
                probe_now: Notify::new(),
                probe: OnceLock::new(),
                silence: StoreSilence::new(),
            }),
        }
    }

    /// A store nobody watches (tools and tests that build stores directly).
    pub fn detached() -> Self {
        Self::new("")
    }

    pub fn user(&self) -> &str {
        &self.inner.user
    }

    /// The store's silence clock: every request of either client counts its signs of life there.
    pub fn silence(&self) -> &StoreSilence {
        &self.inner.silence
    }

    /// The last probe's result, and when it answered.
    pub fn status(&self) -> (StoreStatus, Option<SystemTime>) {
        self.inner
            .status
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    pub(super) fn set_probe(&self, op: Operator) {
        let _ = self.inner.probe.set(op);
    }

    /// The probe's request (no record).
    async fn check(&self) -> Result<(), super::StorageError> {
        match self.inner.probe.get() {
            Some(op) => super::check(op).await,
            None => Ok(()),
        }
    }

    /// One probe now; its result is recorded.
    pub async fn probe(&self) {
        let result = self.check().await;
        self.record(result.map_err(|e| ErrorChain(&e).to_string()));
    }

    /// The start-up check: the first probe. A failure is the caller's to report (the start stops), so only success
    /// is recorded.
    pub async fn first_check(&self) -> Result<(), super::StorageError> {
        self.check().await?;
        self.record(Ok(()));
        Ok(())
    }

    /// A request just failed as a dead store's would: probe now rather than at the next period.
    pub fn probe_soon(&self) {
        self.inner.probe_now.notify_one();
    }

    /// Records a probe's result (the start-up check counts as the first probe).
    pub fn record(&self, result: Result<(), String>) {
        let status = match result {
            Ok(()) => StoreStatus::Up,
            Err(why) => StoreStatus::Down(why),
        };
        metrics::store_up(&self.inner.user, status == StoreStatus::Up);
        let mut current = self
            .inner
            .status
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match (&current.0, &status) {
            (StoreStatus::Down(_), StoreStatus::Down(_)) => {}
            (_, StoreStatus::Down(why)) => warn!(user = %self.inner.user, "store down: {why}"),
            (StoreStatus::Down(_), StoreStatus::Up) => {
                info!(user = %self.inner.user, "store up again")
            }
            _ => {}
        }
        *current = (status, Some(SystemTime::now()));
    }

    /// Probes every `PROBE_INTERVAL`, and soon after `probe_soon`, until the task is aborted.
    pub async fn watch(self) {
        let mut last = tokio::time::Instant::now() - MIN_PROBE_GAP;
        loop {
            tokio::select! {
                _ = tokio::time::sleep(PROBE_INTERVAL) => {}
                _ = self.inner.probe_now.notified() => {
                    tokio::time::sleep_until(last + MIN_PROBE_GAP).await;
                }
            }
            last = tokio::time::Instant::now();
            self.probe().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_failure_brings_the_next_probe_forward() {
        let op = Operator::new(opendal::services::Memory::default()).unwrap();
        let health = StoreHealth::new("alice");
        health.set_probe(op);
        assert_eq!(health.status().0, StoreStatus::Unknown);
        let task = tokio::spawn(health.clone().watch());
        health.probe_soon();
        // Paused time: the probe runs as soon as the task gets to it, long before the period.
        while health.status().0 == StoreStatus::Unknown {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(health.status().0, StoreStatus::Up);
        task.abort();
    }

    #[test]
    fn the_last_probe_decides() {
        let health = StoreHealth::new("bob");
        health.record(Err("connection refused".into()));
        assert_eq!(
            health.status().0,
            StoreStatus::Down("connection refused".into())
        );
        health.record(Ok(()));
        assert_eq!(health.status().0, StoreStatus::Up);
        assert!(health.status().1.is_some());
    }
}
