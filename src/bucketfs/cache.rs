//! A small metadata cache with a TTL, negative entries included. The core's own writes update it at once, so a
//! client sees its own changes immediately; other writers' changes show within the TTL.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::path::Key;
use super::types::Metadata;

/// Past this many entries the cache drops expired ones, then everything if still too big.
const MAX_ENTRIES: usize = 200_000;

#[derive(Debug)]
pub(crate) struct MetaCache {
    ttl: Duration,
    entries: Mutex<HashMap<Key, (Option<Metadata>, Instant)>>,
}

/// A cache answer: known to exist (with metadata), known not to exist, or unknown.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Cached {
    Present(Metadata),
    Absent,
    Unknown,
}

impl MetaCache {
    pub fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            entries: Mutex::new(HashMap::new()),
        }
    }

    pub fn get(&self, key: &Key) -> Cached {
        if self.ttl.is_zero() {
            return Cached::Unknown;
        }
        let Ok(entries) = self.entries.lock() else {
            return Cached::Unknown;
        };
        match entries.get(key) {
            Some((meta, at)) if at.elapsed() < self.ttl => match meta {
                Some(m) => Cached::Present(m.clone()),
                None => Cached::Absent,
            },
            _ => Cached::Unknown,
        }
    }

    pub fn put(&self, key: &Key, meta: Option<Metadata>) {
        if self.ttl.is_zero() {
            return;
        }
        let Ok(mut entries) = self.entries.lock() else {
            return;
        };
        if entries.len() >= MAX_ENTRIES {
            let ttl = self.ttl;
            entries.retain(|_, (_, at)| at.elapsed() < ttl);
            if entries.len() >= MAX_ENTRIES {
                entries.clear();
            }
        }
        entries.insert(key.clone(), (meta, Instant::now()));
    }

    /// Forgets `key` and everything below it (after a directory rename or delete).
    pub fn forget_tree(&self, key: &Key) {
        if let Ok(mut entries) = self.entries.lock() {
            entries.retain(|k, _| !k.starts_with(key));
        }
    }
}
