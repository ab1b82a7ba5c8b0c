//! Connection limits: total (`max_connection_num`, 0 = unlimited) and per client IP (`max_connection_per_ip`).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use super::addr::canonical_ip as canonical;

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
}

/// One admitted connection; frees its place when dropped.
#[derive(Debug)]
pub struct ConnectionPermit {
    ip: IpAddr,
    counts: Arc<Mutex<Counts>>,
}

impl ConnectionLimits {
    pub fn new(max_total: Option<usize>, max_per_ip: Option<usize>) -> Self {
        Self {
            max_total,
            max_per_ip,
            counts: Arc::default(),
        }
    }

    /// The same connection counts under other maxima (a reload): connections over a lowered limit stay, new ones
    /// wait for room.
    pub fn with_maxima(&self, max_total: Option<usize>, max_per_ip: Option<usize>) -> Self {
        Self {
            max_total,
            max_per_ip,
            counts: Arc::clone(&self.counts),
        }
    }

    pub fn try_admit(&self, ip: IpAddr) -> Result<ConnectionPermit, LimitError> {
        let ip = canonical(ip);
        let mut counts = self.counts.lock().map_err(|_| LimitError::Total)?;
        if self.max_total.is_some_and(|max| counts.total >= max) {
            return Err(LimitError::Total);
        }
        let from_ip = counts.per_ip.get(&ip).copied().unwrap_or(0);
        if self.max_per_ip.is_some_and(|max| from_ip >= max) {
            return Err(LimitError::PerIp);
        }
        counts.total += 1;
        counts.per_ip.insert(ip, from_ip + 1);
        Ok(ConnectionPermit {
            ip,
            counts: Arc::clone(&self.counts),
        })
    }

    pub fn active(&self) -> usize {
        self.counts.lock().map(|c| c.total).unwrap_or(0)
    }
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
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn total_and_per_ip() {
        let limits = ConnectionLimits::new(Some(3), Some(2));
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        let a1 = limits.try_admit(a).unwrap();
        let _a2 = limits
            .try_admit("::ffff:10.0.0.1".parse().unwrap())
            .unwrap();
        assert_eq!(limits.try_admit(a).unwrap_err(), LimitError::PerIp);
        let _b1 = limits.try_admit(b).unwrap();
        assert_eq!(limits.try_admit(b).unwrap_err(), LimitError::Total);
        drop(a1);
        assert_eq!(limits.active(), 2);
        let _a3 = limits.try_admit(a).unwrap();
    }

    #[test]
    fn new_maxima_count_the_connections_already_admitted() {
        let limits = ConnectionLimits::new(Some(3), None);
        let ip: IpAddr = "10.0.0.1".parse().unwrap();
        let _a = limits.try_admit(ip).unwrap();
        let _b = limits.try_admit(ip).unwrap();
        let lowered = limits.with_maxima(Some(2), None);
        assert_eq!(lowered.try_admit(ip).unwrap_err(), LimitError::Total);
        assert_eq!(lowered.active(), 2);
    }

    #[test]
    fn none_means_unlimited() {
        let limits = ConnectionLimits::new(None, None);
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        let permits: Vec<_> = (0..1000).map(|_| limits.try_admit(ip).unwrap()).collect();
        assert_eq!(limits.active(), 1000);
        drop(permits);
        assert_eq!(limits.active(), 0);
    }
}
