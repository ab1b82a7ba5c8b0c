//! The metadata cache: what the store said about a name (including "does not exist"), for `metadata_ttl`.
//!
//! Two kinds of writes reach it, and they are not equal:
//! - what this account did itself (mkdir, delete, a completed upload, a rename) is the truth from that moment on;
//! - what a lookup *observed* in the store may be older than a change made while the lookup was in flight. Such
//!   an answer is cached only if no change of this account happened since the lookup began (an [`Observation`]
//!   carries the change count at its start). Otherwise an MLST racing a MKD could store "absent" after the MKD
//!   and a following `MKD d/sub` would fail for `metadata_ttl`.
//!
//! The cache is bounded by bytes (`metadata_cache_size`), with quick_cache's scan-resistant eviction: a client
//! asking for a flood of distinct names churns the cache's probation area, not the entries in regular use.
//! Changes made by other clients of the bucket show within the TTL.

use std::sync::Mutex;
use std::time::Duration;

// tokio's clock, so that tests can pause and advance it.
use tokio::time::Instant;

use quick_cache::sync::Cache;
use quick_cache::Weighter;

use super::path::Key;
use super::types::Metadata;

/// Bytes of an entry beyond its key and ETag: the metadata, the instant, the map's own bookkeeping.
const ENTRY_OVERHEAD: u64 = 160;

#[derive(Debug, Clone)]
struct Entry {
    meta: Option<Metadata>,
    at: Instant,
}

#[derive(Debug, Clone, Copy)]
struct EntryWeight;

impl Weighter<Key, Entry> for EntryWeight {
    fn weight(&self, key: &Key, entry: &Entry) -> u64 {
        let etag = entry
            .meta
            .as_ref()
            .and_then(|m| m.etag.as_ref())
            .map_or(0, String::len);
        ENTRY_OVERHEAD + key.as_str().len() as u64 + etag as u64
    }
}

pub(crate) struct MetaCache {
    ttl: Duration,
    entries: Cache<Key, Entry, EntryWeight>,
    /// Changes made through this account so far. Held while an observation is stored, so that a change cannot
    /// slip in between the check and the insert.
    changes: Mutex<u64>,
}

/// A cache answer: known to exist (with metadata), known not to exist, or unknown.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Cached {
    Present(Metadata),
    Absent,
    Unknown,
}

/// Taken before asking the store; the answer is cached only if nothing changed meanwhile.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Observation {
    changes_at_start: u64,
}

impl MetaCache {
    pub fn new(ttl: Duration, max_bytes: u64) -> Self {
        // quick_cache sizes its tables from an estimate of the item count.
        let estimated_items = usize::try_from(max_bytes / (ENTRY_OVERHEAD + 64))
            .unwrap_or(usize::MAX)
            .max(16);
        Self {
            ttl,
            entries: Cache::with_weighter(estimated_items, max_bytes.max(1), EntryWeight),
            changes: Mutex::new(0),
        }
    }

    fn enabled(&self) -> bool {
        !self.ttl.is_zero()
    }

    pub fn get(&self, key: &Key) -> Cached {
        if !self.enabled() {
            return Cached::Unknown;
        }
        match self.entries.get(key) {
            Some(entry) if entry.at.elapsed() < self.ttl => match entry.meta {
                Some(m) => Cached::Present(m),
                None => Cached::Absent,
            },
            Some(_) => {
                self.entries.remove(key);
                Cached::Unknown
            }
            None => Cached::Unknown,
        }
    }

    /// Starts an observation of the store (see the module documentation).
    pub fn observe(&self) -> Observation {
        Observation {
            changes_at_start: *self.lock(),
        }
    }

    /// Caches what a lookup saw, unless this account changed something since the lookup began.
    pub fn put_observed(&self, key: &Key, meta: Option<Metadata>, seen: Observation) {
        if !self.enabled() {
            return;
        }
        let changes = self.lock();
        if *changes == seen.changes_at_start {
            self.insert(key, meta);
        }
    }

    /// Records what this account just did to `key`: the truth from now on.
    pub fn put(&self, key: &Key, meta: Option<Metadata>) {
        let mut changes = self.lock();
        *changes += 1;
        if self.enabled() {
            self.insert(key, meta);
        }
    }

    /// Forgets `key` and everything below it (after a rename of a directory), as a change of this account.
    pub fn forget_tree(&self, key: &Key) {
        let mut changes = self.lock();
        *changes += 1;
        self.entries.retain(|k, _| !k.starts_with(key));
    }

    /// Bytes the entries take, by the cache's own weighing.
    #[cfg(test)]
    pub fn weight(&self) -> u64 {
        self.entries.weight()
    }

    fn insert(&self, key: &Key, meta: Option<Metadata>) {
        self.entries.insert(
            key.clone(),
            Entry {
                meta,
                at: Instant::now(),
            },
        );
    }

    /// A poisoned lock only means a panic elsewhere; the counter itself is always valid.
    fn lock(&self) -> std::sync::MutexGuard<'_, u64> {
        self.changes.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl std::fmt::Debug for MetaCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MetaCache")
            .field("ttl", &self.ttl)
            .field("entries", &self.entries.len())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn k(s: &str) -> Key {
        Key::parse(s).unwrap()
    }

    #[test]
    fn an_observation_older_than_a_change_is_not_cached() {
        let cache = MetaCache::new(Duration::from_secs(60), 1 << 20);
        let seen = cache.observe();
        // Meanwhile this account creates the directory…
        cache.put(&k("d"), Some(Metadata::directory()));
        // …and the lookup that began before it comes back with "absent".
        cache.put_observed(&k("d"), None, seen);
        assert_eq!(cache.get(&k("d")), Cached::Present(Metadata::directory()));
        // A lookup that began after the change is cached.
        let seen = cache.observe();
        cache.put_observed(&k("e"), None, seen);
        assert_eq!(cache.get(&k("e")), Cached::Absent);
    }

    #[test]
    fn bounded_by_bytes_and_scan_resistant() {
        let cache = MetaCache::new(Duration::from_secs(60), 256 * 1024);
        let hot = k("hot/file");
        cache.put(&hot, Some(Metadata::file(1, None)));
        for i in 0..200_000 {
            // The hot entry is in regular use…
            if i % 100 == 0 {
                assert!(matches!(
                    cache.get(&hot),
                    Cached::Present(_) | Cached::Unknown
                ));
            }
            // …while a client asks for a flood of names that do not exist.
            let seen = cache.observe();
            cache.put_observed(&k(&format!("missing/{i:0>200}")), None, seen);
        }
        assert!(cache.weight() <= 256 * 1024, "{}", cache.weight());
        assert_eq!(cache.get(&hot), Cached::Present(Metadata::file(1, None)));
    }

    #[tokio::test(start_paused = true)]
    async fn entries_expire_and_forget_tree_is_by_segment() {
        let cache = MetaCache::new(Duration::from_secs(1), 1 << 20);
        cache.put(&k("a"), None);
        tokio::time::advance(Duration::from_millis(999)).await;
        assert_eq!(cache.get(&k("a")), Cached::Absent);
        tokio::time::advance(Duration::from_millis(1)).await;
        assert_eq!(cache.get(&k("a")), Cached::Unknown);

        let cache = MetaCache::new(Duration::from_secs(60), 1 << 20);
        for name in ["d", "d/x", "dx"] {
            cache.put(&k(name), Some(Metadata::directory()));
        }
        cache.forget_tree(&k("d"));
        assert_eq!(cache.get(&k("d/x")), Cached::Unknown);
        assert_eq!(cache.get(&k("dx")), Cached::Present(Metadata::directory()));
    }

    #[test]
    fn a_zero_ttl_caches_nothing() {
        let cache = MetaCache::new(Duration::ZERO, 1 << 20);
        cache.put(&k("a"), None);
        assert_eq!(cache.get(&k("a")), Cached::Unknown);
    }
}
