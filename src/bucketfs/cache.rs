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
//!
//! Beside it, the stored attributes (mode, owner, times, extended attributes: user metadata, which only a HEAD
//! brings) of the object versions seen lately, without a TTL: a version's metadata cannot change without the
//! version changing (a metadata change is a copy, with a new Last-Modified), so a listing entry of the same
//! size, ETag and Last-Modified gets them back without a HEAD. That is how `ls -l` and FTP `LIST` show a file's
//! own time and mode after this server has seen it once, and stay free of per-entry HEADs. Bounded by
//! `metadata_cache_size` as well. Directories are listed as bare prefixes, with no version to compare: theirs
//! come back to a listing only from a stat within the TTL.
//!
//! And the times this account moved without writing them: a directory's modification and change times when
//! one of its entries is added, removed or renamed, an entry's change time when it is renamed (a rename is a
//! copy that keeps the metadata), the root's when its attributes change (it has no object). As on a local disk,
//! but without a write of a marker or an object per change: kept in memory only (bounded), shown as long as they
//! are later than what is stored; an explicit time set on a directory (`touch`, `rsync -t`) wins.
//!
//! A complete listing of a directory is remembered too, as the names it found ([`Listed`]): for the TTL, a name
//! it did not find is known not to exist, without asking the store. FTP clients list a directory before they
//! upload into it (lftp's mirror, FileZilla, rclone), so a new file's STOR needs no HEAD and no listing of its
//! own. The names are those that *may* exist: what this account creates or forgets afterwards is added, and
//! nothing is ever taken out (a name deleted meanwhile is asked for again), so an entry evicted or expired
//! never turns "exists" into "does not exist".

use std::collections::HashSet;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, SystemTime};

// tokio's clock, so that tests can pause and advance it.
use tokio::time::Instant;

use quick_cache::sync::Cache;
use quick_cache::Weighter;

use super::object_meta::FileAttrs;
use super::path::Key;
use super::types::Metadata;

/// Bytes of an entry beyond its key and ETag: the metadata, the instant, the map's own bookkeeping.
const ENTRY_OVERHEAD: u64 = 160;

/// Entries whose unstored times are remembered (the most recently changed ones).
const LOCAL_TIMES: usize = 16 * 1024;

/// Times moved by this account and not stored (see the module documentation).
#[derive(Debug, Clone, Copy)]
struct LocalTimes {
    /// A directory's entries changed.
    modified: Option<SystemTime>,
    changed: SystemTime,
}

/// Bytes of a listed name beyond its own: the set's slot and the string's header.
const LISTED_NAME_OVERHEAD: u64 = 40;

#[derive(Debug, Clone)]
struct Entry {
    meta: Option<Metadata>,
    at: Instant,
    /// For a directory: what a complete listing of it found.
    listed: Option<Arc<Listed>>,
    /// The listing's weight when this entry was stored: the cache weighs an entry again when it is replaced,
    /// and must find the weight it was stored with (names added since are weighed by storing the entry again).
    listed_weight: u64,
}

/// The names a complete listing of a directory found, plus those this account created or forgot since: any other
/// name did not exist when the listing began (`at`).
#[derive(Debug)]
struct Listed {
    at: Instant,
    names: RwLock<Names>,
}

#[derive(Debug, Default)]
struct Names {
    set: HashSet<Box<str>>,
    /// Bytes the names take, by the cache's weighing.
    weight: u64,
}

impl Listed {
    fn new(at: Instant, set: HashSet<Box<str>>) -> Self {
        let weight = set.iter().map(|n| name_weight(n)).sum();
        Listed {
            at,
            names: RwLock::new(Names { set, weight }),
        }
    }

    fn may_exist(&self, name: &str) -> bool {
        self.names
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .set
            .contains(name)
    }

    /// Adds `name`; false when it was there already.
    fn add(&self, name: &str) -> bool {
        let mut names = self.names.write().unwrap_or_else(|e| e.into_inner());
        if names.set.contains(name) {
            return false;
        }
        names.weight += name_weight(name);
        names.set.insert(name.into())
    }

    fn weight(&self) -> u64 {
        self.names.read().unwrap_or_else(|e| e.into_inner()).weight
    }
}

fn name_weight(name: &str) -> u64 {
    name.len() as u64 + LISTED_NAME_OVERHEAD
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
        let attrs = entry
            .meta
            .as_ref()
            .and_then(|m| m.attrs.as_ref())
            .map_or(0, |a| a.heap_size());
        ENTRY_OVERHEAD
            + key.as_str().len() as u64
            + etag as u64
            + attrs as u64
            + entry.listed_weight
    }
}

/// The stored attributes of one version of an object (see the module documentation).
#[derive(Debug, Clone)]
struct Known {
    /// The version: kind, size, ETag and Last-Modified (its attributes are not used).
    version: Metadata,
    attrs: Arc<FileAttrs>,
}

#[derive(Debug, Clone, Copy)]
struct KnownWeight;

impl Weighter<Key, Known> for KnownWeight {
    fn weight(&self, key: &Key, known: &Known) -> u64 {
        let etag = known.version.etag.as_ref().map_or(0, String::len);
        ENTRY_OVERHEAD + (key.as_str().len() + etag + known.attrs.heap_size()) as u64
    }
}

pub(crate) struct MetaCache {
    ttl: Duration,
    entries: Cache<Key, Entry, EntryWeight>,
    /// Stored attributes by version, kept beyond the TTL (see the module documentation).
    known: Cache<Key, Known, KnownWeight>,
    /// Times this account moved without storing them (see the module documentation).
    local_times: Cache<Key, LocalTimes>,
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
    at: Instant,
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
            known: Cache::with_weighter(estimated_items, max_bytes.max(1), KnownWeight),
            local_times: Cache::new(LOCAL_TIMES),
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
            Some(entry) if entry.at.elapsed() < self.ttl => {
                return match entry.meta {
                    Some(m) => Cached::Present(m),
                    None => Cached::Absent,
                }
            }
            Some(_) => {
                self.entries.remove(key);
            }
            None => {}
        }
        match self.listing_of_parent(key) {
            Some(listed) if !listed.may_exist(key.name()) => Cached::Absent,
            _ => Cached::Unknown,
        }
    }

    /// Whether a complete listing of `key`'s directory made within `window` (which may be longer than the TTL)
    /// did not find `key`: good enough to create the name without a look, when the create is conditional.
    pub fn listed_absent_within(&self, key: &Key, window: Duration) -> bool {
        if !self.enabled() {
            return false;
        }
        let Some(listed) = key
            .parent()
            .and_then(|parent| self.entries.get(&parent))
            .and_then(|entry| entry.listed)
        else {
            return false;
        };
        listed.at.elapsed() < window && !listed.may_exist(key.name())
    }

    /// A fresh complete listing of `key`'s directory.
    fn listing_of_parent(&self, key: &Key) -> Option<Arc<Listed>> {
        let parent = key.parent()?;
        let listed = self.entries.get(&parent)?.listed?;
        (listed.at.elapsed() < self.ttl).then_some(listed)
    }

    /// Records a complete listing of the directory `dir`: the names it found. Kept only if this account changed
    /// nothing since the listing began (then `names` may miss what it created).
    pub fn put_listing(&self, dir: &Key, names: HashSet<Box<str>>, seen: Observation) {
        if !self.enabled() {
            return;
        }
        let changes = self.lock();
        if *changes != seen.changes_at_start {
            return;
        }
        let listed = Arc::new(Listed::new(seen.at, names));
        let listed_weight = listed.weight();
        // The directory exists: the listing was of a directory found to exist when it began.
        let meta = match self.entries.get(dir) {
            Some(Entry {
                meta: Some(meta), ..
            }) if meta.is_dir() => meta,
            _ => Metadata::directory(),
        };
        self.entries.insert(
            dir.clone(),
            Entry {
                meta: Some(meta),
                at: seen.at,
                listed: Some(listed),
                listed_weight,
            },
        );
    }

    /// Starts an observation of the store (see the module documentation).
    pub fn observe(&self) -> Observation {
        Observation {
            changes_at_start: *self.lock(),
            at: Instant::now(),
        }
    }

    /// Caches what a lookup saw, unless this account changed something since the lookup began.
    pub fn put_observed(&self, key: &Key, meta: Option<Metadata>, seen: Observation) {
        let changes = self.lock();
        if *changes == seen.changes_at_start {
            let meta = meta.map(|m| self.enrich(key, m));
            self.remember(key, meta.as_ref());
            if self.enabled() {
                self.insert(key, meta);
            }
        }
    }

    /// Records what this account just did to `key`: the truth from now on.
    pub fn put(&self, key: &Key, meta: Option<Metadata>) {
        let mut changes = self.lock();
        *changes += 1;
        let meta = meta.map(|m| self.enrich(key, m));
        self.remember(key, meta.as_ref());
        if self.enabled() {
            if meta.is_some() {
                self.note_in_listings(key);
            }
            self.insert(key, meta);
        }
    }

    /// Forgets `key` and everything below it (after a rename of a directory), as a change of this account.
    pub fn forget_tree(&self, key: &Key) {
        let mut changes = self.lock();
        *changes += 1;
        self.entries.retain(|k, _| !k.starts_with(key));
        self.known.retain(|k, _| !k.starts_with(key));
        self.note_in_listings(key);
    }

    /// `key` may exist now: its name goes into the listing of its directory, and each ancestor's name into the
    /// listing of its own (creating `a/b/c` makes an implicit `a/b` appear).
    fn note_in_listings(&self, key: &Key) {
        let mut child = key.clone();
        while let Some(parent) = child.parent() {
            if let Some(mut entry) = self.entries.get(&parent) {
                if let Some(listed) = &entry.listed {
                    if listed.add(child.name()) {
                        // Stored again, to be weighed with the name.
                        entry.listed_weight = listed.weight();
                        self.entries.insert(parent.clone(), entry);
                    }
                }
            }
            child = parent;
        }
    }

    /// This account added, removed or renamed an entry of the directory `dir` at `at`.
    pub fn dir_changed(&self, dir: &Key, at: SystemTime) {
        self.local_times.insert(
            dir.clone(),
            LocalTimes {
                modified: Some(at),
                changed: at,
            },
        );
    }

    /// `key` changed at `at` in a way that is not stored (a rename; the root's attributes): its change time.
    pub fn node_changed(&self, key: &Key, at: SystemTime) {
        let modified = self.local_times.get(key).and_then(|t| t.modified);
        self.local_times.insert(
            key.clone(),
            LocalTimes {
                modified,
                changed: at,
            },
        );
    }

    /// The directory's times were set explicitly: they are what it shows from now on.
    pub fn times_set(&self, key: &Key) {
        self.local_times.remove(key);
    }

    /// `key` is gone (removed by this account): what it showed is forgotten with it, so that a new entry of the
    /// same name starts from its own times.
    pub fn forget_local_times(&self, key: &Key) {
        self.local_times.remove(key);
    }

    /// `from` (and what is below it) is now `to`: its unstored times move with it, and those of what `to`
    /// replaced are forgotten.
    pub fn move_local_times(&self, from: &Key, to: &Key) {
        self.local_times.retain(|k, _| !k.starts_with(to));
        let moved = Mutex::new(Vec::new());
        self.local_times
            .retain(|k, times| match k.rebase(from, to) {
                Some(new) => {
                    moved
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .push((new, *times));
                    false
                }
                None => true,
            });
        for (key, times) in moved.into_inner().unwrap_or_else(|e| e.into_inner()) {
            self.local_times.insert(key, times);
        }
    }

    /// `meta` of `key` with the times this account moved without storing them, where they are later.
    pub fn with_local_times(&self, key: &Key, meta: Metadata) -> Metadata {
        match self.local_times.get(key) {
            Some(times) => meta.changed_at(times.modified, times.changed),
            None => meta,
        }
    }

    /// `meta` with the stored attributes of its version, if they are known (a listing entry of an object this
    /// server has seen since, unchanged).
    pub fn enrich(&self, key: &Key, meta: Metadata) -> Metadata {
        if meta.attrs.is_some() {
            return meta;
        }
        if meta.is_dir() {
            // A listing shows a directory as a bare prefix, with nothing to tell a marker's versions apart: its
            // attributes are only as good as a stat within the TTL.
            return match self.get(key) {
                Cached::Present(cached) if cached.is_dir() && cached.attrs.is_some() => cached,
                _ => meta,
            };
        }
        let Some(known) = self.known.get(key) else {
            return meta;
        };
        if known.version.same_version(&meta) {
            return meta.with_attrs(known.attrs);
        }
        // A version this server committed itself, whose Last-Modified the store did not say (S3 answers a PUT
        // with its ETag only): the first listing of the same size and ETag tells it.
        let adopt = known.version.modified.is_none()
            && meta.modified.is_some()
            && Metadata {
                modified: meta.modified,
                ..known.version.clone()
            }
            .same_version(&meta);
        if adopt {
            let mut version = known.version.clone();
            version.modified = meta.modified;
            self.known.insert(
                key.clone(),
                Known {
                    version,
                    attrs: Arc::clone(&known.attrs),
                },
            );
            return meta.with_attrs(known.attrs);
        }
        meta
    }

    /// Remembers the stored attributes of the version `meta` describes (or forgets them: `None`).
    fn remember(&self, key: &Key, meta: Option<&Metadata>) {
        match meta {
            Some(m) => {
                if let (Some(attrs), Some(_)) = (&m.attrs, &m.etag) {
                    let version = Metadata {
                        attrs: None,
                        ..m.clone()
                    };
                    let attrs = Arc::clone(attrs);
                    self.known.insert(key.clone(), Known { version, attrs });
                }
            }
            None => {
                self.known.remove(key);
            }
        }
    }

    /// Bytes the entries take, by the cache's own weighing.
    #[cfg(test)]
    pub fn weight(&self) -> u64 {
        self.entries.weight()
    }

    /// A directory keeps the listing it has (the listing of the root names the directory again, say).
    fn insert(&self, key: &Key, meta: Option<Metadata>) {
        let (listed, listed_weight) = match &meta {
            Some(m) if m.is_dir() => self
                .entries
                .get(key)
                .map_or((None, 0), |e| (e.listed, e.listed_weight)),
            _ => (None, 0),
        };
        self.entries.insert(
            key.clone(),
            Entry {
                meta,
                at: Instant::now(),
                listed,
                listed_weight,
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

    fn names(list: &[&str]) -> HashSet<Box<str>> {
        list.iter().map(|n| Box::from(*n)).collect()
    }

    #[tokio::test(start_paused = true)]
    async fn a_complete_listing_proves_absence_for_the_ttl() {
        let cache = MetaCache::new(Duration::from_secs(1), 1 << 20);
        let seen = cache.observe();
        cache.put_listing(&k("d"), names(&["a", "sub"]), seen);
        assert_eq!(cache.get(&k("d/new")), Cached::Absent, "not in the listing");
        assert_eq!(
            cache.get(&k("d/a")),
            Cached::Unknown,
            "listed: its metadata is asked for"
        );
        assert_eq!(
            cache.get(&k("d/sub/x")),
            Cached::Unknown,
            "d/sub was not listed"
        );
        assert_eq!(cache.get(&k("d")), Cached::Present(Metadata::directory()));
        tokio::time::advance(Duration::from_secs(1)).await;
        assert_eq!(
            cache.get(&k("d/new")),
            Cached::Unknown,
            "the listing is too old"
        );
    }

    #[test]
    fn a_listing_older_than_a_change_is_not_kept() {
        let cache = MetaCache::new(Duration::from_secs(60), 1 << 20);
        let seen = cache.observe();
        // This account creates d/new while the listing of d is under way…
        cache.put(&k("d/new"), Some(Metadata::file(1, None)));
        cache.put_listing(&k("d"), names(&["a"]), seen);
        // …and forgets it again (as a failed upload does): the listing must not say it does not exist.
        cache.forget_tree(&k("d/new"));
        assert_eq!(cache.get(&k("d/new")), Cached::Unknown);
    }

    #[test]
    fn what_this_account_creates_after_a_listing_may_exist() {
        let cache = MetaCache::new(Duration::from_secs(60), 1 << 20);
        cache.put_listing(&k(""), names(&["d"]), cache.observe());
        cache.put_listing(&k("d"), names(&[]), cache.observe());
        // Created, then its own entry is gone (forgotten here; evicted would be the same)…
        cache.put(&k("d/f"), Some(Metadata::file(1, None)));
        cache.forget_tree(&k("d/f"));
        assert_eq!(cache.get(&k("d/f")), Cached::Unknown);
        // …a renamed tree that appears under a listed directory…
        cache.forget_tree(&k("d/moved"));
        assert_eq!(cache.get(&k("d/moved")), Cached::Unknown);
        // …and ancestors that appear with a file deep below them.
        cache.put(&k("e/g/h"), Some(Metadata::file(1, None)));
        assert_eq!(cache.get(&k("e")), Cached::Unknown);
        // Deleting leaves the name in the listing: it is asked for again, never wrongly "absent".
        cache.put(&k("d/f"), None);
        assert_eq!(cache.get(&k("d/f")), Cached::Absent);
        assert_eq!(cache.get(&k("d/other")), Cached::Absent);
        // The listing of d survives d being named again by the listing of its parent.
        cache.put_observed(&k("d"), Some(Metadata::directory()), cache.observe());
        assert_eq!(cache.get(&k("d/other")), Cached::Absent);
    }

    #[test]
    fn local_times_move_forward_follow_renames_and_go_with_removals() {
        let cache = MetaCache::new(Duration::from_secs(60), 1 << 20);
        let t = |s: u64| SystemTime::UNIX_EPOCH + Duration::from_secs(s);
        let stored = |mtime: u64| {
            Metadata::file(1, Some(t(mtime))).with_attrs(Arc::new(FileAttrs {
                mtime: Some(t(mtime)),
                ..FileAttrs::default()
            }))
        };
        let times = |meta: &Metadata| {
            let attrs = meta.attrs.as_deref().expect("attributes");
            // The change time shown: the modification time where none is kept.
            (meta.mtime, attrs.mtime, attrs.ctime.or(meta.mtime))
        };

        // A directory whose entries changed: modification and change time move; a file renamed: its change time.
        cache.dir_changed(&k("d/sub"), t(100));
        cache.node_changed(&k("d/sub/f"), t(100));
        let dir = cache.with_local_times(&k("d/sub"), stored(50));
        assert_eq!(times(&dir), (Some(t(100)), Some(t(100)), Some(t(100))));
        let file = cache.with_local_times(&k("d/sub/f"), stored(50));
        assert_eq!(times(&file), (Some(t(50)), Some(t(50)), Some(t(100))));
        // Never back: what is stored later wins.
        let newer = cache.with_local_times(&k("d/sub"), stored(200));
        assert_eq!(times(&newer), (Some(t(200)), Some(t(200)), Some(t(200))));

        // A rename takes them along, and drops those of what it replaced.
        cache.dir_changed(&k("e/sub"), t(300));
        cache.move_local_times(&k("d"), &k("e"));
        assert_eq!(
            times(&cache.with_local_times(&k("d/sub"), stored(50))).0,
            Some(t(50))
        );
        assert_eq!(
            times(&cache.with_local_times(&k("e/sub"), stored(50))).0,
            Some(t(100))
        );
        assert_eq!(
            times(&cache.with_local_times(&k("e/sub/f"), stored(50))).2,
            Some(t(100))
        );

        // A removed entry's are forgotten; an explicit time set on a directory wins.
        cache.forget_local_times(&k("e/sub/f"));
        assert_eq!(
            times(&cache.with_local_times(&k("e/sub/f"), stored(50))).2,
            Some(t(50))
        );
        cache.times_set(&k("e/sub"));
        assert_eq!(
            times(&cache.with_local_times(&k("e/sub"), stored(50))).0,
            Some(t(50))
        );
    }

    #[test]
    fn a_zero_ttl_caches_nothing() {
        let cache = MetaCache::new(Duration::ZERO, 1 << 20);
        cache.put(&k("a"), None);
        assert_eq!(cache.get(&k("a")), Cached::Unknown);
    }
}
