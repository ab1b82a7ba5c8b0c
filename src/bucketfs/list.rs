//! Listing: ListObjects with delimiter `/`, streamed page by page, capped at `max_list_file`.
//!
//! One listing serves every adapter: FTP LIST, NLST, MLSD and STAT, and the mount's readdir.
//!
//! A file `x` and a directory `x/` can both exist in a bucket; the file wins (as in `stat`). S3 and COS answer a
//! page with its common prefixes *before* its keys, so the directory `x/` may arrive before the file `x` of the same
//! page. A directory is therefore held back until nothing later can be a file of its name: a file that sorts after
//! it (keys arrive sorted), the end of the listing, or a page's worth of entries later (a same-named file is always
//! on the same page as the prefix or an earlier one, since `x` < `x/`).

use std::collections::{HashSet, VecDeque};

use futures::TryStreamExt;
use tracing::{instrument, warn};

use super::cache::Observation;
use super::error::{FsError, FsErrorKind, FsResult};
use super::path::Key;
use super::types::{DirEntry, Metadata};
use super::BucketFs;

/// The answer to `list`: a directory's entries, or a single file.
#[derive(Debug)]
pub enum Listing {
    Directory(ReadDir),
    File(DirEntry),
}

/// Entries of one ListObjects page (the stores' default and maximum).
const PAGE: usize = 1000;

/// An open directory listing. Entries carry the metadata of the listing itself (size, Last-Modified, ETag), so
/// no per-entry HEAD is made; a file's stored attributes come with it only when the cache knows them for that
/// version.
pub struct ReadDir {
    fs: BucketFs,
    dir: Key,
    prefix: String,
    /// Boxed: the lister is most of a `ReadDir`, which `Listing` holds by value.
    lister: Option<Box<opendal::Lister>>,
    seen: HashSet<String>,
    /// Directories held back until no file of their name can follow, with the store entry count at arrival.
    held: VecDeque<(usize, DirEntry)>,
    /// Entries received from the store so far.
    received: usize,
    /// Ready to be returned, in order.
    ready: VecDeque<DirEntry>,
    /// Uploads kept for resume in this directory, listed after the objects (names not listed already).
    partial: VecDeque<DirEntry>,
    yielded: usize,
    cap: usize,
    capped: bool,
    /// Only names matching this are returned (`list_matching`).
    pattern: Option<Box<glob::Pattern>>,
    /// Taken before the first page was asked for: what the listing saw is cached only if this account changed
    /// nothing meanwhile.
    observation: Observation,
    /// The listing has been read to its end (and, when complete, recorded in the cache).
    finished: bool,
}

impl BucketFs {
    /// Opens a listing of the directory `dir`.
    #[instrument(level = "debug", skip(self), fields(path = %dir.display()))]
    pub async fn read_dir(&self, dir: &Key) -> FsResult<ReadDir> {
        self.check_name(dir)?;
        self.policy().check_read("list", &dir.display())?;
        let cap = self.settings().max_list_file;
        if self.stat_is_known(dir) {
            self.require_dir(dir).await?;
            return self.read_dir_key(dir.clone(), cap).await;
        }
        // Only the store can say whether the directory exists: its first page is asked for at the same time, so
        // that the first entry costs one round trip, not two.
        let (exists, listing) = tokio::join!(self.require_dir(dir), self.first_page(dir, cap));
        exists?;
        listing
    }

    /// A listing of `dir` whose first store entry has arrived.
    async fn first_page(&self, dir: &Key, cap: usize) -> FsResult<ReadDir> {
        let mut listing = self.read_dir_key(dir.clone(), cap).await?;
        listing.prefetch().await?;
        Ok(listing)
    }

    /// `list`, with the uploads of this account kept for resume shown as partial entries (FTP LIST and NLST).
    pub async fn list_with_partial(&self, key: &Key) -> FsResult<Listing> {
        let listing = self.list(key).await?;
        Ok(match listing {
            Listing::Directory(dir) => Listing::Directory(self.with_partial(dir)),
            file => file,
        })
    }

    /// `read_dir`, with the uploads kept for resume shown as partial entries (FTP MLSD).
    pub async fn read_dir_with_partial(&self, dir: &Key) -> FsResult<ReadDir> {
        let listing = self.read_dir(dir).await?;
        Ok(self.with_partial(listing))
    }

    fn with_partial(&self, mut listing: ReadDir) -> ReadDir {
        listing.partial = self
            .pending()
            .children(&listing.dir)
            .into_iter()
            .map(|(name, durable, at)| DirEntry {
                name,
                meta: Metadata::file(durable, at),
                partial: true,
            })
            .collect();
        listing
    }

    /// What `ls path` shows: a directory's entries, or a file as its own single entry. Both need read
    /// permission, as any listing does.
    #[instrument(level = "debug", skip(self), fields(path = %key.display()))]
    pub async fn list(&self, key: &Key) -> FsResult<Listing> {
        self.check_name(key)?;
        self.policy().check_read("list", &key.display())?;
        let cap = self.settings().max_list_file;
        // As in `read_dir`: when the store must say what `key` is, its first page is asked for at the same time
        // (and dropped if `key` is a file or nothing).
        let (meta, listing) = if self.stat_is_known(key) {
            (self.stat_key(key).await?, None)
        } else {
            let (meta, listing) = tokio::join!(self.stat_key(key), self.first_page(key, cap));
            (meta?, Some(listing))
        };
        if meta.is_dir() {
            let listing = match listing {
                Some(listing) => listing?,
                None => self.read_dir_key(key.clone(), cap).await?,
            };
            return Ok(Listing::Directory(listing));
        }
        Ok(Listing::File(DirEntry {
            name: key.name().to_string(),
            meta,
            partial: false,
        }))
    }

    /// The entries of the directory `dir` whose names match the shell pattern `pattern`: `*`, `?`, `[...]` and
    /// `[!...]`, within one name; a leading `.` is matched only by a literal one, as in a shell. For FTP's
    /// `NLST *.txt` (what `mget *.txt` sends); the caller decides that an argument is a pattern (vsftpd's rule: a
    /// name that exists is never one). `InvalidName` when `pattern` is not a pattern (an unclosed `[`).
    #[instrument(level = "debug", skip(self), fields(path = %dir.display()))]
    pub async fn list_matching(&self, dir: &Key, pattern: &str) -> FsResult<ReadDir> {
        let pattern = glob::Pattern::new(pattern).map_err(|e| {
            FsError::new(
                FsErrorKind::InvalidName,
                format!("{pattern:?} is not a name pattern: {e}"),
            )
        })?;
        let mut listing = self.read_dir(dir).await?;
        listing.pattern = Some(Box::new(pattern));
        Ok(listing)
    }

    pub(crate) async fn read_dir_key(&self, dir: Key, cap: usize) -> FsResult<ReadDir> {
        let prefix = dir.dir_prefix();
        let observation = self.cache().observe();
        let list_path = if dir.is_root() {
            "/".to_string()
        } else {
            prefix.clone()
        };
        let lister = match self.op().lister(&list_path).await {
            Ok(lister) => Some(Box::new(lister)),
            // A local directory that vanished between stat and list lists as empty.
            Err(e) if e.kind() == opendal::ErrorKind::NotFound => None,
            Err(e) => return Err(FsError::store(&format!("list {}", dir.display()), e)),
        };
        Ok(ReadDir {
            fs: self.clone(),
            dir,
            prefix,
            lister,
            seen: HashSet::new(),
            held: VecDeque::new(),
            received: 0,
            ready: VecDeque::new(),
            partial: VecDeque::new(),
            yielded: 0,
            cap,
            capped: false,
            pattern: None,
            observation,
            finished: false,
        })
    }
}

impl ReadDir {
    /// The next entry, or `None` at the end (or at the cap: see `capped`).
    pub async fn next_entry(&mut self) -> FsResult<Option<DirEntry>> {
        loop {
            if self.yielded >= self.cap {
                if !self.capped && self.has_more().await? {
                    self.capped = true;
                    warn!(dir = %self.dir.display(), cap = self.cap, "listing capped at max_list_file");
                }
                return Ok(None);
            }
            if let Some(mut entry) = self.ready.pop_front() {
                if let Ok(key) = self.dir.join(&entry.name) {
                    // The stored attributes of a version this server has seen come back without a HEAD.
                    entry.meta = self.fs.cache().enrich(&key, entry.meta);
                    self.fs
                        .cache()
                        .put_observed(&key, Some(entry.meta.clone()), self.observation);
                    entry.meta = self.fs.cache().with_local_times(&key, entry.meta);
                }
                if !self.wanted(&entry.name) {
                    continue;
                }
                self.yielded += 1;
                return Ok(Some(entry));
            }
            match self.next_store_entry().await? {
                Some(entry) => self.sort_in(entry),
                None if !self.held.is_empty() => self.release_held(|_| true),
                None => {
                    self.finish();
                    match self.partial.pop_front() {
                        Some(entry) if !self.seen.contains(&entry.name) => {
                            self.yielded += 1;
                            return Ok(Some(entry));
                        }
                        Some(_) => {}
                        None => return Ok(None),
                    }
                }
            }
        }
    }

    /// Takes one store entry: a file is ready at once (and discards a held directory of its name), a directory
    /// is held back (see the module documentation).
    fn sort_in(&mut self, entry: opendal::Entry) {
        self.received += 1;
        let Some(name) = self.child_name(entry.path()) else {
            return;
        };
        let meta = Metadata::from_store(entry.metadata());
        let received = self.received;
        if meta.is_dir() {
            if !self.seen.contains(&name) {
                self.held.push_back((
                    received,
                    DirEntry {
                        name,
                        meta,
                        partial: false,
                    },
                ));
            }
        } else {
            self.held.retain(|(_, dir)| dir.name != name);
            // Directories that sort before this file can no longer meet a file of their name.
            self.release_held(|dir| dir.name.as_str() < name.as_str());
            if self.seen.insert(name.clone()) {
                self.ready.push_back(DirEntry {
                    name,
                    meta,
                    partial: false,
                });
            }
        }
        while self
            .held
            .front()
            .is_some_and(|(at, _)| received.saturating_sub(*at) >= PAGE)
        {
            if let Some((_, dir)) = self.held.pop_front() {
                self.make_ready(dir);
            }
        }
    }

    /// The whole directory has been read: every name it holds is in `seen`, so any other name does not exist
    /// (the cache answers for it until the TTL ends).
    fn finish(&mut self) {
        if self.finished || self.capped {
            return;
        }
        self.finished = true;
        let names = self.seen.iter().map(|n| n.as_str().into()).collect();
        self.fs
            .cache()
            .put_listing(&self.dir, names, self.observation);
    }

    /// Makes the held directories that `release` picks ready, in arrival order.
    fn release_held(&mut self, release: impl Fn(&DirEntry) -> bool) {
        let mut kept = VecDeque::with_capacity(self.held.len());
        for (at, dir) in std::mem::take(&mut self.held) {
            if release(&dir) {
                self.make_ready(dir);
            } else {
                kept.push_back((at, dir));
            }
        }
        self.held = kept;
    }

    fn make_ready(&mut self, dir: DirEntry) {
        if self.seen.insert(dir.name.clone()) {
            self.ready.push_back(dir);
        }
    }

    fn wanted(&self, name: &str) -> bool {
        const SHELL: glob::MatchOptions = glob::MatchOptions {
            case_sensitive: true,
            require_literal_separator: true,
            require_literal_leading_dot: true,
        };
        self.pattern
            .as_ref()
            .is_none_or(|p| p.matches_with(name, SHELL))
    }

    /// Whether the listing stopped at `max_list_file` with entries left over.
    pub fn capped(&self) -> bool {
        self.capped
    }

    /// Entries returned so far.
    pub fn yielded(&self) -> usize {
        self.yielded
    }

    pub fn dir(&self) -> &Key {
        &self.dir
    }

    /// Waits for the store's first entry (the first page), so that it is under way while something else is.
    async fn prefetch(&mut self) -> FsResult<()> {
        match self.next_store_entry().await? {
            Some(entry) => self.sort_in(entry),
            // The listing is empty: nothing more to ask the store.
            None => self.lister = None,
        }
        Ok(())
    }

    async fn next_store_entry(&mut self) -> FsResult<Option<opendal::Entry>> {
        let Some(lister) = self.lister.as_mut() else {
            return Ok(None);
        };
        lister
            .try_next()
            .await
            .map_err(|e| FsError::store(&format!("list {}", self.dir.display()), e))
    }

    async fn has_more(&mut self) -> FsResult<bool> {
        if self.ready.iter().any(|e| self.wanted(&e.name))
            || self
                .held
                .iter()
                .any(|(_, d)| !self.seen.contains(&d.name) && self.wanted(&d.name))
        {
            return Ok(true);
        }
        while let Some(entry) = self.next_store_entry().await? {
            if let Some(name) = self.child_name(entry.path()) {
                if !self.seen.contains(&name) && self.wanted(&name) {
                    return Ok(true);
                }
            }
        }
        Ok(false)
    }

    /// The child's own name, or `None` for the directory itself and names a path cannot reach.
    fn child_name(&self, path: &str) -> Option<String> {
        let rest = path.strip_prefix(&self.prefix)?.trim_end_matches('/');
        if rest.is_empty() || rest == "." || rest == ".." || rest.contains('/') {
            return None;
        }
        if self.dir.join(rest).is_err() {
            return None;
        }
        Some(rest.to_string())
    }
}

impl std::fmt::Debug for ReadDir {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReadDir")
            .field("dir", &self.dir)
            .field("yielded", &self.yielded)
            .finish()
    }
}
