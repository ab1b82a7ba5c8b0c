//! When the whole store has gone silent: one time-to-error budget for the store, not one per request.
//!
//! Each request gives the store [`BUDGET`] to show a sign of life (`objects::s3::retry`; the timeout and retry
//! layers of the OpenDAL client come to about the same). But one operation may make several requests one after the
//! other — a mount's lookup and then the file's read; `mv` tries `rename`, then `stat`s both names after the
//! first failure — and each request waited its own budget: `mv` on a mount over a frozen store said "Input/output
//! error" after 55 s.
//!
//! So the budget is also counted for the store as a whole. The store's silence starts with the first request sent
//! after its last sign of life (an answer's head, a chunk of an answer, a slice of a body the connection took).
//! When it has lasted [`BUDGET`] the store is *silent*: the requests still waiting for a first answer fail with
//! it, and new ones fail at once, without being sent, for [`HOLD`]. After that requests are sent again with a
//! fresh budget; any sign of life ends the silence at once. An operation therefore waits at most one budget
//! however many requests it makes, and a store that comes back is used again within [`HOLD`].
//!
//! The clock only runs while somebody waits: when no request has been in flight for [`IDLE_GAP`] (longer than
//! the longest pause between two attempts of one request), the next request starts a new silence. A request its
//! caller dropped does not leave a clock running.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use futures::StreamExt;
use opendal::{Buffer, HttpBody, HttpTransport};
use tokio::time::Instant;
use tracing::{info, warn};

/// How long the store may show no sign of life to any request before requests fail.
pub const BUDGET: Duration = Duration::from_secs(15);
/// How long requests then fail without being sent.
pub const HOLD: Duration = Duration::from_secs(5);
/// A pause without any request in flight this long stops the clock (two attempts of one request are at most
/// 4 s apart: a 2 s delay plus 100 % jitter).
const IDLE_GAP: Duration = Duration::from_secs(5);

/// One store's silence clock. Cheap to clone; clones share the clock.
#[derive(Clone, Debug)]
pub struct StoreSilence {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    budget: Duration,
    hold: Duration,
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    /// When the current silence began: the first request sent after the last sign of life (None: no request has
    /// been sent since).
    silent_since: Option<Instant>,
    /// Requests sent and neither answered nor given up.
    in_flight: usize,
    /// When `in_flight` last fell to zero.
    idle_since: Instant,
    /// While the store is silent: requests fail without being sent until then; and how long it had been silent.
    failing: Option<(Instant, Duration)>,
}

/// The store has shown no sign of life for `silent_for`: the request failed, or was not sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Silent {
    pub silent_for: Duration,
    /// Requests are sent again after this much more time (or at the store's first sign of life).
    pub retry_in: Duration,
}

impl std::fmt::Display for Silent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "the store has not answered any request for {:.1} s; requests fail at once for {:.1} s more",
            self.silent_for.as_secs_f64(),
            self.retry_in.as_secs_f64()
        )
    }
}

impl Default for StoreSilence {
    fn default() -> Self {
        Self::with_limits(BUDGET, HOLD)
    }
}

impl StoreSilence {
    pub fn new() -> Self {
        Self::default()
    }

    pub(crate) fn with_limits(budget: Duration, hold: Duration) -> Self {
        StoreSilence {
            inner: Arc::new(Inner {
                budget,
                hold,
                state: Mutex::new(State {
                    silent_since: None,
                    in_flight: 0,
                    idle_since: Instant::now(),
                    failing: None,
                }),
            }),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.inner
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// A request the store works on before it answers (a copy, a completion) is about to be sent: refused while
    /// the store is silent, and not on the clock (its own, longer timeout applies).
    pub fn before_long_request(&self) -> Result<(), Silent> {
        let now = Instant::now();
        let mut state = self.state();
        Self::refusal(&mut state, now, self.inner.hold).map_or(Ok(()), Err)
    }

    /// While the store is silent: the refusal of a request sent now.
    fn refusal(state: &mut State, now: Instant, hold: Duration) -> Option<Silent> {
        let (until, silent_for) = state.failing?;
        if now < until {
            return Some(Silent {
                silent_for: silent_for + hold.saturating_sub(until - now),
                retry_in: until - now,
            });
        }
        // The hold is over: requests get a fresh budget.
        state.failing = None;
        state.silent_since = None;
        None
    }

    /// A request is about to be sent: refused while the store is silent; otherwise it counts as waiting until the
    /// returned guard is dropped.
    pub fn before_send(&self) -> Result<Waiting, Silent> {
        let now = Instant::now();
        let mut state = self.state();
        if let Some(refused) = Self::refusal(&mut state, now, self.inner.hold) {
            return Err(refused);
        }
        if state.in_flight == 0 && now.duration_since(state.idle_since) >= IDLE_GAP {
            state.silent_since = None;
        }
        // Requests that fail without waiting (refused connections) run the clock out too.
        if state
            .silent_since
            .is_some_and(|since| since + self.inner.budget <= now)
        {
            drop(state);
            if let Some(silent) = self.declare(now) {
                return Err(silent);
            }
            state = self.state();
        }
        state.in_flight += 1;
        state.silent_since.get_or_insert(now);
        Ok(Waiting {
            silence: self.clone(),
        })
    }

    /// Whether requests are being refused now.
    pub fn is_silent(&self) -> bool {
        self.state()
            .failing
            .is_some_and(|(until, _)| Instant::now() < until)
    }

    /// The store answered, or took bytes: whatever silence there was is over.
    pub fn life(&self) {
        let mut state = self.state();
        state.silent_since = None;
        if state.failing.take().is_some() {
            info!("the store answers again");
        }
    }

    /// When the store counts as silent unless it shows life first.
    fn deadline(&self) -> Option<Instant> {
        self.state()
            .silent_since
            .map(|since| since + self.inner.budget)
    }

    /// The deadline has passed: requests fail from now on (the first caller says so).
    fn declare(&self, now: Instant) -> Option<Silent> {
        let mut state = self.state();
        let since = state.silent_since?;
        if since + self.inner.budget > now {
            return None;
        }
        let silent_for = now.duration_since(since);
        let hold = self.inner.hold;
        if state.failing.is_none() {
            state.failing = Some((now + hold, silent_for));
            warn!(
                "the store has not answered any request for {:.1} s: failing its requests at once for {:.1} s",
                silent_for.as_secs_f64(),
                hold.as_secs_f64()
            );
        }
        let (until, _) = state.failing.unwrap_or((now + hold, silent_for));
        Some(Silent {
            silent_for,
            retry_in: until.saturating_duration_since(now),
        })
    }

    fn finished(&self) {
        let mut state = self.state();
        state.in_flight = state.in_flight.saturating_sub(1);
        if state.in_flight == 0 {
            state.idle_since = Instant::now();
        }
    }
}

/// A request in flight; dropping it says the request ended (answered, failed or abandoned).
#[derive(Debug)]
pub struct Waiting {
    silence: StoreSilence,
}

impl Waiting {
    /// Resolves when the store has been silent for the whole budget (never, while it keeps showing life).
    pub async fn silent(&self) -> Silent {
        loop {
            let now = Instant::now();
            match self.silence.deadline() {
                Some(at) if at <= now => {
                    if let Some(silent) = self.silence.declare(now) {
                        return silent;
                    }
                }
                Some(at) => tokio::time::sleep_until(at).await,
                // Life ended the silence; the next request sent starts a new one.
                None => tokio::time::sleep(self.silence.inner.budget).await,
            }
        }
    }
}

impl Drop for Waiting {
    fn drop(&mut self) {
        self.silence.finished();
    }
}

/// The OpenDAL client's HTTP transport, on the store's clock: a request is not sent while the store is silent,
/// waits no longer than the store's budget for its answer, and each answer (head and every chunk) is a sign of
/// life.
pub(crate) struct SilenceTransport<T> {
    inner: T,
    silence: StoreSilence,
    role: Role,
}

/// Whose requests a transport sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    /// Users' requests: on the store's clock, refused while it is silent.
    Requests,
    /// The health probe (`storage::health`): sent even while the store is silent, off the clock; its answer is a
    /// sign of life like any other, so a store that comes back is used again at the next probe.
    Probe,
}

impl<T> SilenceTransport<T> {
    pub(crate) fn new(inner: T, silence: StoreSilence, role: Role) -> Self {
        SilenceTransport {
            inner,
            silence,
            role,
        }
    }
}

impl Silent {
    /// As the error of a request of the OpenDAL client: permanent, because its retry layer retries every
    /// temporary error, and a retry now would only be refused again (the S3 client's own error for this is
    /// temporary and not retried: `objects::s3::transport`).
    pub fn into_error(self) -> opendal::Error {
        opendal::Error::new(opendal::ErrorKind::Unexpected, self.to_string()).set_permanent()
    }
}

impl<T: HttpTransport> HttpTransport for SilenceTransport<T> {
    async fn fetch(&self, req: http::Request<Buffer>) -> opendal::Result<http::Response<HttpBody>> {
        let response = match self.role {
            Role::Probe => self.inner.fetch(req).await?,
            Role::Requests => {
                let waiting = self.silence.before_send().map_err(Silent::into_error)?;
                tokio::select! {
                    biased;
                    response = self.inner.fetch(req) => response?,
                    silent = waiting.silent() => return Err(silent.into_error()),
                }
            }
        };
        self.silence.life();
        let silence = self.silence.clone();
        Ok(response.map(|body| {
            body.map_inner(move |chunks| {
                Box::new(chunks.inspect(move |chunk| {
                    if chunk.is_ok() {
                        silence.life();
                    }
                }))
            })
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEC: Duration = Duration::from_secs(1);

    #[tokio::test(start_paused = true)]
    async fn after_one_request_waited_the_budget_the_next_fails_at_once() {
        let silence = StoreSilence::new();
        let started = Instant::now();
        let first = silence.before_send().expect("nothing was silent yet");
        let silent = first.silent().await;
        assert_eq!(started.elapsed(), BUDGET);
        assert_eq!(silent.silent_for, BUDGET);
        drop(first);

        assert!(silence.is_silent());
        let refused = silence.before_send().expect_err("the store is silent");
        assert_eq!(refused.retry_in, HOLD);
        assert_eq!(started.elapsed(), BUDGET, "refused without waiting");
    }

    #[tokio::test(start_paused = true)]
    async fn a_request_sent_later_fails_when_the_store_has_been_silent_for_the_budget() {
        let silence = StoreSilence::new();
        let started = Instant::now();
        let _first = silence.before_send().expect("sent");
        tokio::time::sleep(10 * SEC).await;
        let second = silence.before_send().expect("sent");
        second.silent().await;
        assert_eq!(started.elapsed(), BUDGET, "not 10 s + a budget of its own");
    }

    #[tokio::test(start_paused = true)]
    async fn life_ends_the_silence_and_the_hold() {
        let silence = StoreSilence::new();
        let first = silence.before_send().expect("sent");
        first.silent().await;
        drop(first);
        assert!(silence.before_send().is_err());
        // A request sent before the silence gets its answer.
        silence.life();
        assert!(!silence.is_silent());
        let next = silence.before_send().expect("the store answers again");
        let started = Instant::now();
        next.silent().await;
        assert_eq!(started.elapsed(), BUDGET, "a fresh budget");
    }

    #[tokio::test(start_paused = true)]
    async fn after_the_hold_requests_are_sent_again_with_a_fresh_budget() {
        let silence = StoreSilence::new();
        silence.before_send().expect("sent").silent().await;
        tokio::time::sleep(HOLD - SEC).await;
        assert!(silence.before_send().is_err());
        tokio::time::sleep(SEC).await;
        let started = Instant::now();
        let retry = silence.before_send().expect("the hold is over");
        retry.silent().await;
        assert_eq!(started.elapsed(), BUDGET);
    }

    #[tokio::test(start_paused = true)]
    async fn a_request_abandoned_long_ago_does_not_leave_the_clock_running() {
        let silence = StoreSilence::new();
        drop(silence.before_send().expect("sent"));
        tokio::time::sleep(10 * 60 * SEC).await;
        let started = Instant::now();
        silence.before_send().expect("sent").silent().await;
        assert_eq!(started.elapsed(), BUDGET);
    }

    #[tokio::test(start_paused = true)]
    async fn the_pause_between_two_attempts_keeps_the_clock_running() {
        let silence = StoreSilence::new();
        let started = Instant::now();
        drop(silence.before_send().expect("first attempt"));
        tokio::time::sleep(2 * SEC).await;
        silence
            .before_send()
            .expect("second attempt")
            .silent()
            .await;
        assert_eq!(started.elapsed(), BUDGET);
    }

    #[tokio::test(start_paused = true)]
    async fn requests_refused_for_the_whole_budget_make_the_store_silent() {
        let silence = StoreSilence::new();
        for _ in 0..15 {
            drop(silence.before_send().expect("sent, and refused at once"));
            tokio::time::sleep(SEC).await;
        }
        assert!(silence.before_send().is_err());
    }

    #[tokio::test(start_paused = true)]
    async fn a_store_that_keeps_answering_is_never_silent() {
        let silence = StoreSilence::new();
        let waiting = silence.before_send().expect("sent");
        let answers = async {
            for _ in 0..60 {
                tokio::time::sleep(SEC).await;
                silence.life();
                drop(silence.before_send().expect("never refused"));
            }
        };
        tokio::select! {
            _ = waiting.silent() => panic!("declared silent while answering"),
            () = answers => {}
        }
    }
}
