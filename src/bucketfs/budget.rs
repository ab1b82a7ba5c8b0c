//! One memory budget for all upload part buffers and read-ahead. A writer or reader that would exceed it waits
//! (back-pressure); nothing fails and the process does not grow.

use std::sync::Arc;

use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Permits are KiB so that `acquire_many`'s u32 covers a 5 GiB part.
const UNIT: u64 = 1024;

#[derive(Debug, Clone)]
pub struct MemoryBudget {
    semaphore: Arc<Semaphore>,
    total_units: u32,
    /// Reservations waiting for memory now.
    waiting: Arc<AtomicUsize>,
}

/// Memory held against the budget; returned when dropped.
#[derive(Debug)]
pub struct Reservation {
    _permit: OwnedSemaphorePermit,
    bytes: u64,
}

impl Reservation {
    pub fn bytes(&self) -> u64 {
        self.bytes
    }
}

impl MemoryBudget {
    pub fn new(bytes: u64) -> Self {
        let total_units = u32::try_from(bytes / UNIT).unwrap_or(u32::MAX).max(1);
        Self {
            semaphore: Arc::new(Semaphore::new(total_units as usize)),
            total_units,
            waiting: Arc::new(AtomicUsize::new(0)),
        }
    }

    pub fn total(&self) -> u64 {
        u64::from(self.total_units) * UNIT
    }

    pub fn available(&self) -> u64 {
        self.semaphore.available_permits() as u64 * UNIT
    }

    /// Reservations waiting for memory now (back-pressure at work).
    pub fn waiting(&self) -> usize {
        self.waiting.load(Ordering::Relaxed)
    }

    fn units(&self, bytes: u64) -> u32 {
        u32::try_from(bytes.div_ceil(UNIT))
            .unwrap_or(u32::MAX)
            .clamp(1, self.total_units)
    }

    /// Waits until `bytes` (capped at the whole budget, so a request can always be met) are free.
    pub async fn reserve(&self, bytes: u64) -> Reservation {
        let units = self.units(bytes);
        if let Some(reservation) = self.try_reserve(bytes) {
            return reservation;
        }
        let _waiting = WaitingGuard::enter(&self.waiting);
        #[allow(clippy::expect_used)] // the semaphore is owned here and never closed
        let permit = Arc::clone(&self.semaphore)
            .acquire_many_owned(units)
            .await
            .expect("the budget semaphore is never closed");
        Reservation {
            _permit: permit,
            bytes: u64::from(units) * UNIT,
        }
    }

    /// Takes `bytes` only if they are free now.
    pub fn try_reserve(&self, bytes: u64) -> Option<Reservation> {
        let units = self.units(bytes);
        Arc::clone(&self.semaphore)
            .try_acquire_many_owned(units)
            .ok()
            .map(|permit| Reservation {
                _permit: permit,
                bytes: u64::from(units) * UNIT,
            })
    }

    /// Takes between `min` and `max` bytes in steps of `step`: waits for `min`, then grows without waiting.
    pub async fn reserve_between(&self, min: u64, max: u64, step: u64) -> Vec<Reservation> {
        let mut held = vec![self.reserve(min).await];
        let mut total = min;
        while total + step <= max {
            match self.try_reserve(step) {
                Some(r) => {
                    total += step;
                    held.push(r);
                }
                None => break,
            }
        }
        held
    }
}

/// Counts a reservation as waiting while it lives (also when the waiting future is dropped).
struct WaitingGuard<'a>(&'a AtomicUsize);

impl<'a> WaitingGuard<'a> {
    fn enter(count: &'a AtomicUsize) -> Self {
        count.fetch_add(1, Ordering::Relaxed);
        Self(count)
    }
}

impl Drop for WaitingGuard<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn waits_when_exhausted_and_resumes_on_release() {
        let budget = MemoryBudget::new(4 * 1024 * 1024);
        let a = budget.reserve(3 * 1024 * 1024).await;
        assert_eq!(budget.available(), 1024 * 1024);
        assert!(budget.try_reserve(2 * 1024 * 1024).is_none());
        let waiter = {
            let budget = budget.clone();
            tokio::spawn(async move { budget.reserve(2 * 1024 * 1024).await.bytes() })
        };
        while budget.waiting() == 0 {
            tokio::task::yield_now().await;
        }
        assert!(
            !waiter.is_finished(),
            "a reservation over the budget must wait"
        );
        drop(a);
        assert_eq!(waiter.await.unwrap(), 2 * 1024 * 1024);
        assert_eq!(budget.waiting(), 0);
        assert_eq!(budget.available(), 4 * 1024 * 1024);
    }

    #[tokio::test]
    async fn oversized_requests_are_capped_to_the_whole_budget() {
        let budget = MemoryBudget::new(1024 * 1024);
        let r = budget.reserve(10 * 1024 * 1024).await;
        assert_eq!(r.bytes(), 1024 * 1024);
    }

    #[tokio::test]
    async fn reserve_between_grows_only_into_free_memory() {
        let budget = MemoryBudget::new(10 * 1024 * 1024);
        let _other = budget.reserve(5 * 1024 * 1024).await;
        let held = budget
            .reserve_between(2 * 1024 * 1024, 8 * 1024 * 1024, 1024 * 1024)
            .await;
        let total: u64 = held.iter().map(|r| r.bytes()).sum();
        assert_eq!(total, 5 * 1024 * 1024);
    }
}
