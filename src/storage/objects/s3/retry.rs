//! How long a request may take to fail, and when it is sent again.
//!
//! The rule: **the store has 15 s to show a sign of life** (a connection accepting request bytes, a response
//! head, response bytes). Within that budget:
//! * a connection attempt gives up after [`RetryPolicy::connect_timeout`] (3 s);
//! * an attempt that makes no progress (sends or receives nothing, or waits for an answer) for
//!   [`RetryPolicy::stall_timeout`] (4 s; 15 s for CompleteMultipartUpload and copies, which work on the
//!   server before answering, and for the answer to a large body once all of it is sent: the store still reads
//!   what the socket buffers hold, stores and hashes it — a loaded S3-compatible server took over 4 s for a
//!   20 MiB part, and the upload failed after three attempts) is abandoned;
//! * a temporary failure is retried after 200 ms, 400 ms, 800 ms, 1.6 s (doubling, up to 2 s, each plus up to
//!   100 % jitter), at most 4 times, and only while a new attempt can start with at least 1 s of the budget
//!   left;
//! * a permanent failure is never retried.
//!
//! So a dead store (connection refused) fails in under 7 s, a black-holed one (SYN dropped) or a stalled one
//! (connection accepted, no answer) in at most 15 s (checked by the unit test of `worst_case_without_life`); a transfer that
//! keeps moving is never cut, however long it takes.

use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use backon::ExponentialBuilder;
use tokio::time::Instant;

use crate::storage::silence::{Silent, StoreSilence, Waiting};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct RetryPolicy {
    pub connect_timeout: Duration,
    /// How long an attempt may go without progress.
    pub stall_timeout: Duration,
    /// The same for requests the server works on before it answers (complete, copies).
    pub server_work_timeout: Duration,
    /// How long the store may show no sign of life before a request fails, all attempts together.
    pub budget: Duration,
    /// The least budget left for a new attempt to be worth starting.
    pub min_attempt: Duration,
    pub min_delay: Duration,
    pub max_delay: Duration,
    pub max_retries: usize,
}

impl RetryPolicy {
    pub(super) const DEFAULT: RetryPolicy = RetryPolicy {
        connect_timeout: Duration::from_secs(3),
        stall_timeout: Duration::from_secs(4),
        server_work_timeout: Duration::from_secs(15),
        budget: Duration::from_secs(15),
        min_attempt: Duration::from_secs(1),
        min_delay: Duration::from_millis(200),
        max_delay: Duration::from_secs(2),
        max_retries: 4,
    };

    pub(super) fn backoff(&self) -> ExponentialBuilder {
        ExponentialBuilder::default()
            .with_min_delay(self.min_delay)
            .with_max_delay(self.max_delay)
            .with_factor(2.0)
            .with_max_times(self.max_retries)
            .with_jitter()
    }

    /// Whether another attempt may start after `delay`, the store having been silent for `idle`.
    pub(super) fn may_retry(&self, idle: Duration, delay: Duration) -> bool {
        idle + delay + self.min_attempt <= self.budget
    }

    /// The longest a request can take against a store that never shows life, with every delay at its
    /// jittered maximum and every attempt running into `stall` (or the budget).
    #[cfg(test)]
    pub(super) fn worst_case_without_life(&self, stall: Duration) -> Duration {
        let mut elapsed = Duration::ZERO;
        let mut delay = self.min_delay;
        for retry in 0..=self.max_retries {
            elapsed = (elapsed + stall).min(self.budget);
            if retry == self.max_retries {
                break;
            }
            let jittered = delay * 2;
            if !self.may_retry(elapsed, jittered) {
                break;
            }
            elapsed += jittered;
            delay = (delay * 2).min(self.max_delay);
        }
        elapsed
    }
}

/// Signs of life of the store during one request, over all its attempts.
#[derive(Debug)]
pub(super) struct Liveness {
    /// The store's clock, told of every sign of life too.
    store: StoreSilence,
    origin: Instant,
    /// Microseconds since `origin` of the last sign of life (or of the request's start).
    alive: AtomicU64,
    /// Microseconds since `origin` of the current attempt's last progress (or of its start).
    progress: AtomicU64,
    /// The current attempt has handed its whole (large) body over: the store works before it answers.
    body_sent: AtomicBool,
}

/// Why an attempt was abandoned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Stalled {
    /// The attempt made no progress for this long.
    NoProgress(Duration),
    /// The store has shown no sign of life for the whole budget.
    OutOfBudget(Duration),
    /// The store has shown no sign of life to any request for its budget (see `storage::silence`).
    StoreSilent(Silent),
}

impl Liveness {
    pub(super) fn new(store: StoreSilence) -> Self {
        Liveness {
            store,
            origin: Instant::now(),
            alive: AtomicU64::new(0),
            progress: AtomicU64::new(0),
            body_sent: AtomicBool::new(false),
        }
    }

    fn now_micros(&self) -> u64 {
        u64::try_from(self.origin.elapsed().as_micros()).unwrap_or(u64::MAX)
    }

    fn at(&self, micros: u64) -> Instant {
        self.origin + Duration::from_micros(micros)
    }

    pub(super) fn begin_attempt(&self) {
        self.body_sent.store(false, Ordering::Relaxed);
        self.progress.store(self.now_micros(), Ordering::Relaxed);
    }

    /// The last bytes of the request's body were handed over (a progress too).
    pub(super) fn body_sent(&self) {
        self.touch();
        self.body_sent.store(true, Ordering::Relaxed);
    }

    /// Bytes moved or an answer arrived.
    pub(super) fn touch(&self) {
        let now = self.now_micros();
        self.progress.store(now, Ordering::Relaxed);
        self.alive.store(now, Ordering::Relaxed);
        self.store.life();
    }

    /// How long the store has shown no sign of life.
    pub(super) fn idle(&self) -> Duration {
        self.origin
            .elapsed()
            .saturating_sub(Duration::from_micros(self.alive.load(Ordering::Relaxed)))
    }

    /// Runs `attempt` until it finishes, makes no progress for `stall` (`after_body` once the whole body was
    /// sent), or the store has been silent for `budget` — to this request, or (while `store` is given and the
    /// body is not all sent) to every request.
    pub(super) async fn watch<F: Future>(
        &self,
        stall: Duration,
        after_body: Duration,
        budget: Duration,
        store: Option<&Waiting>,
        attempt: F,
    ) -> Result<F::Output, Stalled> {
        tokio::pin!(attempt);
        loop {
            let stall = if self.body_sent.load(Ordering::Relaxed) {
                after_body.max(stall)
            } else {
                stall
            };
            let stall_at = self.at(self.progress.load(Ordering::Relaxed)) + stall;
            let budget_at = self.at(self.alive.load(Ordering::Relaxed)) + budget;
            let store_silent = async {
                match store {
                    // A store working on a body it has taken may be silent as long as `after_body`.
                    Some(waiting) if !self.body_sent.load(Ordering::Relaxed) => {
                        waiting.silent().await
                    }
                    _ => std::future::pending().await,
                }
            };
            tokio::select! {
                biased;
                out = &mut attempt => return Ok(out),
                silent = store_silent => return Err(Stalled::StoreSilent(silent)),
                _ = tokio::time::sleep_until(stall_at.min(budget_at)) => {
                    let now = Instant::now();
                    if now >= self.at(self.alive.load(Ordering::Relaxed)) + budget {
                        return Err(Stalled::OutOfBudget(budget));
                    }
                    if now >= self.at(self.progress.load(Ordering::Relaxed)) + stall {
                        return Err(Stalled::NoProgress(stall));
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `watch` with the default stall (4 s) and budget (15 s), and `after_body` once the body is sent.
    async fn watch<F: Future>(
        live: &Liveness,
        after_body: Duration,
        attempt: F,
    ) -> Result<F::Output, Stalled> {
        let p = RetryPolicy::DEFAULT;
        live.watch(p.stall_timeout, after_body, p.budget, None, attempt)
            .await
    }

    #[test]
    fn a_lifeless_store_fails_within_the_budget() {
        let p = RetryPolicy::DEFAULT;
        // Stalled or black-holed: every attempt runs into its timeout.
        assert!(p.worst_case_without_life(p.stall_timeout) <= p.budget);
        assert!(p.worst_case_without_life(p.connect_timeout) <= p.budget);
        assert!(p.worst_case_without_life(p.server_work_timeout) <= p.budget);
        // A refused connection fails at once: only the delays count.
        let refused = p.worst_case_without_life(Duration::ZERO);
        assert!(refused < Duration::from_secs(7), "{refused:?}");
    }

    #[test]
    fn retries_stop_when_the_budget_cannot_hold_another_attempt() {
        let p = RetryPolicy::DEFAULT;
        assert!(p.may_retry(Duration::from_secs(4), Duration::from_millis(400)));
        assert!(!p.may_retry(Duration::from_secs(13), Duration::from_millis(1600)));
        assert!(!p.may_retry(Duration::from_millis(14_500), Duration::ZERO));
    }

    #[tokio::test(start_paused = true)]
    async fn watch_abandons_an_attempt_without_progress() {
        let live = Liveness::new(StoreSilence::new());
        live.begin_attempt();
        let never = std::future::pending::<()>();
        let r = watch(&live, Duration::from_secs(4), never).await;
        assert_eq!(r, Err(Stalled::NoProgress(Duration::from_secs(4))));
    }

    #[tokio::test(start_paused = true)]
    async fn watch_lets_a_moving_transfer_run_past_every_timeout() {
        let live = Liveness::new(StoreSilence::new());
        live.begin_attempt();
        let transfer = async {
            for _ in 0..30 {
                tokio::time::sleep(Duration::from_secs(1)).await;
                live.touch();
            }
            "done"
        };
        let r = watch(&live, Duration::from_secs(4), transfer).await;
        assert_eq!(r, Ok("done"));
    }

    #[tokio::test(start_paused = true)]
    async fn watch_counts_silence_across_attempts() {
        let live = Liveness::new(StoreSilence::new());
        tokio::time::sleep(Duration::from_secs(13)).await;
        live.begin_attempt();
        let never = std::future::pending::<()>();
        let r = watch(&live, Duration::from_secs(4), never).await;
        assert_eq!(r, Err(Stalled::OutOfBudget(Duration::from_secs(15))));
        assert_eq!(live.idle(), Duration::from_secs(15));
    }

    #[tokio::test(start_paused = true)]
    async fn a_store_working_on_a_sent_body_gets_the_server_work_time() {
        let live = Liveness::new(StoreSilence::new());
        live.begin_attempt();
        live.body_sent();
        let answer = async {
            tokio::time::sleep(Duration::from_secs(9)).await;
            "stored"
        };
        let r = watch(&live, Duration::from_secs(15), answer).await;
        assert_eq!(r, Ok("stored"));

        // Still bounded: a store that never answers is given up after the server-work time.
        live.begin_attempt();
        live.body_sent();
        let r = watch(&live, Duration::from_secs(15), std::future::pending::<()>()).await;
        assert!(r.is_err());
    }
}
