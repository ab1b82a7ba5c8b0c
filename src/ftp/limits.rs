//! Connection limits: total (`max_connection_num`, 0 = unlimited) and per client IP (`max_connection_per_ip`).
//!
//! This node's counts are kept here. In a cluster (`[CLUSTER]`) the limits hold for all nodes together: each
//! admission asks Redis with this node's counts (`cluster::connections`), and every change is published. While
//! Redis is unreachable, the limits hold per node.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard, Weak};

use super::addr::canonical_ip as canonical;
use crate::cluster::connections::Full;
use crate::cluster::SharedConnections;

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum LimitError {
    #[error("too many connections to this server")]
    Total,
    #[error("too many connections from your address")]
    PerIp,
}

#[derive(Debug, Default)]
struct Counts {
    total: usize,
    per_ip: HashMap<IpAddr, usize>,
}

#[derive(Debug, Clone)]
pub struct ConnectionLimits {
    max_total: Option<usize>,
    max_per_ip: Option<usize>,
    counts: Arc<Mutex<Counts>>,
    shared: Option<Shared>,
}

/// The cluster's side of the limits.
#[derive(Debug, Clone)]
struct Shared {
    connections: SharedConnections,
    /// One admission or release of this node at a time, so that what Redis holds is what this node last knew.
    turn: Arc<tokio::sync::Mutex<()>>,
}

/// One admitted connection; frees its place when dropped.
#[derive(Debug)]
pub struct ConnectionPermit {
    ip: IpAddr,
    counts: Arc<Mutex<Counts>>,
    shared: Option<Shared>,
}

impl ConnectionLimits {
    pub fn new(max_total: Option<usize>, max_per_ip: Option<usize>) -> Self {
        Self {
            max_total,
            max_per_ip,
            counts: Arc::default(),
            shared: None,
        }
    }

    /// Limits for the whole cluster. Starts publishing this node's counts (every third of the lease time, so they
    /// stay alive and come back after a Redis outage or restart); needs a tokio runtime.
    pub fn cluster_wide(
        max_total: Option<usize>,
        max_per_ip: Option<usize>,
        connections: SharedConnections,
    ) -> Self {
        let limits = Self {
            shared: Some(Shared {
                connections,
                turn: Arc::default(),
            }),
            ..Self::new(max_total, max_per_ip)
        };
        if let Some(shared) = &limits.shared {
            tokio::spawn(republish(Arc::downgrade(&limits.counts), shared.clone()));
        }
        limits
    }

    /// The same connection counts under other maxima (a reload): connections over a lowered limit stay, new ones
    /// wait for room. In a cluster, still the cluster's limits.
    pub fn with_maxima(&self, max_total: Option<usize>, max_per_ip: Option<usize>) -> Self {
        Self {
            max_total,
            max_per_ip,
            counts: Arc::clone(&self.counts),
            shared: self.shared.clone(),
        }
    }

    pub async fn try_admit(&self, ip: IpAddr) -> Result<ConnectionPermit, LimitError> {
        let ip = canonical(ip);
        let Some(shared) = &self.shared else {
            return self.admit_locally(ip);
        };
        let _turn = shared.turn.lock().await;
        let (with_ip, with_total) = {
            let counts = lock(&self.counts)?;
            (
                counts.per_ip.get(&ip).copied().unwrap_or(0) + 1,
                counts.total + 1,
            )
        };
        let answer = shared
            .connections
            .admit(ip, with_ip, with_total, self.max_total, self.max_per_ip)
            .await;
        match answer {
            Some(Ok(())) => {
                let mut counts = lock(&self.counts)?;
                Ok(self.count_in(&mut counts, ip))
            }
            Some(Err(Full::Total)) => Err(LimitError::Total),
            Some(Err(Full::PerIp)) => Err(LimitError::PerIp),
            // Redis is away: this node's own limits.
            None => self.admit_locally(ip),
        }
    }

    fn admit_locally(&self, ip: IpAddr) -> Result<ConnectionPermit, LimitError> {
        let mut counts = lock(&self.counts)?;
        if self.max_total.is_some_and(|max| counts.total >= max) {
            return Err(LimitError::Total);
        }
        let from_ip = counts.per_ip.get(&ip).copied().unwrap_or(0);
        if self.max_per_ip.is_some_and(|max| from_ip >= max) {
            return Err(LimitError::PerIp);
        }
        Ok(self.count_in(&mut counts, ip))
    }

    fn count_in(&self, counts: &mut Counts, ip: IpAddr) -> ConnectionPermit {
        counts.total += 1;
        *counts.per_ip.entry(ip).or_insert(0) += 1;
        ConnectionPermit {
            ip,
            counts: Arc::clone(&self.counts),
            shared: self.shared.clone(),
        }
    }

    pub fn active(&self) -> usize {
        self.counts.lock().map(|c| c.total).unwrap_or(0)
    }
}

/// A poisoned table refuses rather than admitting uncounted.
fn lock(counts: &Mutex<Counts>) -> Result<MutexGuard<'_, Counts>, LimitError> {
    counts.lock().map_err(|_| LimitError::Total)
}

impl Drop for ConnectionPermit {
    fn drop(&mut self) {
        if let Ok(mut counts) = self.counts.lock() {
            counts.total = counts.total.saturating_sub(1);
            if let Some(n) = counts.per_ip.get_mut(&self.ip) {
                *n -= 1;
                if *n == 0 {
                    counts.per_ip.remove(&self.ip);
                }
            }
        }
        let Some(shared) = self.shared.take() else {
            return;
        };
        let (ip, counts) = (self.ip, Arc::clone(&self.counts));
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                let _turn = shared.turn.lock().await;
                let (from_ip, total) = match counts.lock() {
                    Ok(c) => (c.per_ip.get(&ip).copied().unwrap_or(0), c.total),
                    Err(_) => return,
                };
                shared.connections.publish(ip, from_ip, total).await;
            });
        }
    }
}

/// Publishes all of this node's counts every third of the lease time, until the limits are dropped.
async fn republish(counts: Weak<Mutex<Counts>>, shared: Shared) {
    let mut ticks = tokio::time::interval(shared.connections.renew_every());
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let Some(counts) = counts.upgrade() else {
            return;
        };
        let _turn = shared.turn.lock().await;
        let (per_ip, total) = match counts.lock() {
            Ok(c) => (c.per_ip.clone(), c.total),
            Err(_) => return,
        };
        drop(counts);
        shared.connections.publish_all(&per_ip, total).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn total_and_per_ip() {
        let limits = ConnectionLimits::new(Some(3), Some(2));
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        let a1 = limits.try_admit(a).await.unwrap();
        let _a2 = limits
            .try_admit("::ffff:10.0.0.1".parse().unwrap())
            .await
            .unwrap();
        assert_eq!(limits.try_admit(a).await.unwrap_err(), LimitError::PerIp);
        let _b1 = limits.try_admit(b).await.unwrap();
        assert_eq!(limits.try_admit(b).await.unwrap_err(), LimitError::Total);
        drop(a1);
        assert_eq!(limits.active(), 2);
        let _a3 = limits.try_admit(a).await.unwrap();
    }

    #[tokio::test]
    async fn new_maxima_count_the_connections_already_admitted() {
        let limits = ConnectionLimits::new(Some(3), None);
        let ip: IpAddr = "10.0.0.1".parse().unwrap();
        let _a = limits.try_admit(ip).await.unwrap();
        let _b = limits.try_admit(ip).await.unwrap();
        let lowered = limits.with_maxima(Some(2), None);
        assert_eq!(lowered.try_admit(ip).await.unwrap_err(), LimitError::Total);
        assert_eq!(lowered.active(), 2);
    }

    #[tokio::test]
    async fn none_means_unlimited() {
        let limits = ConnectionLimits::new(None, None);
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        let mut permits = Vec::new();
        for _ in 0..1000 {
            permits.push(limits.try_admit(ip).await.unwrap());
        }
        assert_eq!(limits.active(), 1000);
        drop(permits);
        assert_eq!(limits.active(), 0);
    }
}
